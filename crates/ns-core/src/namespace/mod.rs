//! Namespaces as isol creates, joins and keeps them: the [`Namespace`] trait with one
//! implementation per kind, the [`NamespacePlan`] a spawn follows, and [`NsHandle`], an
//! open namespace file that can be joined or persisted by a bind mount.
//!
//! Each kind's settings know what must happen *inside* the child between clone and exec
//! (sethostname, bringing `lo` up, mounts and `pivot_root`); the steps for the child are
//! recorded into a [`Program`] before the clone, as ready-made C strings, so the child
//! only ever makes system calls. Two kinds also have a part for the *parent* while the
//! child waits — [`UserNs::parent_setup`] (`uid_map`/`gid_map`) and
//! [`TimeNs::parent_setup`] (`timens_offsets`) — which the spawn calls on them by name.
//!
//! The modules follow the seams: `plan` (the slots and their order), the simple kinds
//! (`kinds`: uts, ipc, net, pid, cgroup), `user`, `time`, `mount` (the mount plan, a
//! folder of its own) and `handle` (namespace files, persisted or not); `golden` tests
//! the steps they record.
//!
//! # References
//! namespaces(7), user_namespaces(7), pid_namespaces(7), time_namespaces(7),
//! cgroup_namespaces(7), mount_namespaces(7), setns(2), pivot_root(2).

mod handle;
mod kinds;
mod mount;
mod plan;
mod time;
mod user;

use std::ffi::CString;
use std::fmt;
use std::path::Path;

use crate::spawn::program::Program;
use crate::{Error, NamespaceKind, NamespaceSet, Result};

pub use handle::{NsHandle, Persisted};
pub use kinds::{CgroupNs, IpcNs, NetNs, PidNs, UtsNs};
pub use mount::{CallersTree, Dev, MntNs, Mount, MountSource, Rootfs};
pub use plan::{Joinable, NamespacePlan, Slot};
pub use time::{ClockOffset, TimeNs};
pub use user::{IdMap, SetGroups, UserNs};

/// What a spawn knows when it asks each namespace for its steps.
#[derive(Clone, Copy, Debug)]
pub struct Context {
    /// The kinds created anew for this spawn.
    pub new: NamespaceSet,
    /// The kinds joined.
    pub joined: NamespaceSet,
    /// Whether the spawning process is root in its user namespace.
    pub privileged: bool,
    /// A new mount namespace without a rootfs makes its copies of the caller's mounts
    /// read-only before it mounts anything ([`crate::security::SecurityPolicy::read_only_host`]).
    pub read_only_host: bool,
    /// The spawn is hardened (a policy, not privileged): a new mount namespace without a
    /// rootfs gets a devpts of its own, out of reach of the host's terminals.
    pub hardened: bool,
}

/// One kind of namespace with its settings.
///
/// `child_steps` records what the child does inside the new namespace, in the order of
/// [`NamespacePlan::new_namespaces`] (user, cgroup, time, uts, ipc, net, pid, mnt).
pub trait Namespace: fmt::Debug + Send + Sync {
    /// The kind.
    fn kind(&self) -> NamespaceKind;

    /// Refuses settings that cannot work with the rest of the plan.
    fn check(&self, _ctx: &Context) -> Result<()> {
        Ok(())
    }

    /// Records the child's steps for this namespace.
    fn child_steps(&self, ctx: &Context, program: &mut Program) -> Result<()>;
}

pub(crate) fn cstr(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::invalid("string", s, "must not contain NUL"))
}

pub(crate) fn cpath(p: &Path) -> Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::invalid("path", p.display().to_string(), "must not contain NUL"))
}

#[cfg(test)]
mod golden;
