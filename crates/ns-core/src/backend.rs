//! The traits a cgroup backend plugin implements.
//!
//! A [`Backend`] creates and opens [`Cgroup`]s; a `Cgroup` is a handle on one cgroup (one
//! directory per hierarchy on v1, one directory on v2). Each backend implements its
//! controllers as [`ResourceController`]s, one per file, each saying which
//! [`Controller`] it is. Backends take their cgroup root from [`crate::HostInfo`] and
//! never assume `/sys/fs/cgroup`.

use std::collections::BTreeMap;
use std::fmt;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::controller::Controller;
use crate::resources::Resources;
use crate::stats::{CgroupEvent, Stats};
use crate::{Error, Result};

/// A cgroup's path relative to its hierarchy's root, as in `/proc/PID/cgroup`:
/// always starts with `/`, never has `.`/`..` components or a trailing `/`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CgroupPath(String);

impl CgroupPath {
    /// The root of the hierarchy, `/`.
    pub fn root() -> CgroupPath {
        CgroupPath("/".into())
    }

    /// Checks and normalises `path` (a leading `/` is added when missing).
    pub fn new(path: &str) -> Result<CgroupPath> {
        let mut out = String::from("/");
        for part in path.split('/').filter(|p| !p.is_empty()) {
            if part == "." || part == ".." {
                return Err(Error::invalid(
                    "cgroup path",
                    path,
                    format!(
                        "{path:?} has a {part:?} component (give a plain path like /isol/box1)"
                    ),
                ));
            }
            if out.len() > 1 {
                out.push('/');
            }
            out.push_str(part);
        }
        Ok(CgroupPath(out))
    }

    /// `self/name`. `name` must be a single, plain component.
    pub fn join(&self, name: &str) -> Result<CgroupPath> {
        if name.is_empty()
            || name.contains('/')
            || name == "."
            || name == ".."
            || name.contains('\0')
        {
            return Err(Error::invalid(
                "cgroup name",
                name,
                format!("{name:?} is not a plain directory name (letters, digits, - _ .)"),
            ));
        }
        CgroupPath::new(&format!("{}/{}", self.0, name))
    }

    /// The path as a string (`/a/b`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path relative to the hierarchy root, for joining to a mount point (`a/b`).
    pub fn relative(&self) -> &Path {
        Path::new(self.0.trim_start_matches('/'))
    }

    /// The parent cgroup, `None` for the root.
    pub fn parent(&self) -> Option<CgroupPath> {
        if self.0 == "/" {
            return None;
        }
        let cut = self.0.rfind('/').unwrap_or(0);
        Some(CgroupPath(if cut == 0 {
            "/".into()
        } else {
            self.0[..cut].to_string()
        }))
    }

    /// Whether `self` is `other` or lies beneath it.
    pub fn starts_with(&self, other: &CgroupPath) -> bool {
        Path::new(&self.0).starts_with(Path::new(&other.0))
    }
}

impl fmt::Display for CgroupPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CgroupPath {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        CgroupPath::new(&s)
    }
}

impl From<CgroupPath> for String {
    fn from(p: CgroupPath) -> String {
        p.0
    }
}

/// Where one cgroup lives: its path in each hierarchy it spans, keyed by hierarchy.
///
/// On v2 there is one key, `unified`. On v1 the key is the hierarchy's controllers joined
/// by commas (`cpu,cpuacct`, `memory`, `name=systemd`), plus `unified` on hybrid hosts.
/// The paths can differ between hierarchies because isol creates beneath the caller's own
/// cgroup in each, and a process may sit in different cgroups in different hierarchies
/// (this host's supervisor is in memory:/process_api/… but cpu:/). This is what isol
/// persists to find a cgroup again from another process.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupLocation(pub BTreeMap<String, CgroupPath>);

impl CgroupLocation {
    /// The key of the v2 hierarchy.
    pub const UNIFIED: &'static str = "unified";

    /// A location with one path in the unified hierarchy.
    pub fn unified(path: CgroupPath) -> CgroupLocation {
        CgroupLocation(BTreeMap::from([(Self::UNIFIED.to_string(), path)]))
    }

    /// The child `name` in every hierarchy.
    pub fn join(&self, name: &str) -> Result<CgroupLocation> {
        self.0
            .iter()
            .map(|(k, p)| Ok((k.clone(), p.join(name)?)))
            .collect::<Result<_>>()
            .map(CgroupLocation)
    }

    /// The path in hierarchy `key`.
    pub fn get(&self, key: &str) -> Option<&CgroupPath> {
        self.0.get(key)
    }

    /// The path to show people: the unified one, else memory's, else the first.
    pub fn primary(&self) -> Option<&CgroupPath> {
        self.0
            .get(Self::UNIFIED)
            .or_else(|| self.0.get("memory"))
            .or_else(|| self.0.values().next())
    }
}

/// Where to create a cgroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parent {
    /// Beneath the caller's own cgroup, in each hierarchy (the default).
    Own,
    /// Beneath this path, the same in every hierarchy (`--cgroup-parent`).
    Path(CgroupPath),
    /// Beneath an existing cgroup (a pod's, a test's scratch cgroup).
    At(CgroupLocation),
}

/// A cgroup backend: cgroup v2 (unified) or v1 (legacy and hybrid).
pub trait Backend: Send + Sync + fmt::Debug {
    /// The registry name (`cgroup-v1`, `cgroup-v2`).
    fn name(&self) -> &'static str;

    /// The caller's own cgroup (in each hierarchy), the default parent of what isol
    /// creates.
    fn own_cgroup(&self) -> Result<CgroupLocation>;

    /// The controllers this backend can use here.
    fn controllers(&self) -> Vec<String>;

    /// Refuses, without touching anything, every set field of `resources` that this
    /// backend or the running kernel cannot honour ([`Error::Unsupported`], naming it).
    fn check(&self, resources: &Resources) -> Result<()>;

    /// Creates the cgroup `parent/name` (in every hierarchy on v1), enables what the
    /// resources need, and applies them. On any failure it removes what it created.
    /// An existing cgroup of that name is an error: isol only manages what it made.
    fn create(&self, parent: &Parent, name: &str, resources: &Resources)
        -> Result<Box<dyn Cgroup>>;

    /// Opens an existing cgroup (one isol created earlier, e.g. by another process).
    fn open(&self, location: &CgroupLocation) -> Result<Box<dyn Cgroup>>;
}

/// A handle on one cgroup.
pub trait Cgroup: Send + Sync + fmt::Debug {
    /// The backend's registry name.
    fn backend(&self) -> &'static str;

    /// Its path in every hierarchy.
    fn location(&self) -> &CgroupLocation;

    /// The path to show people ([`CgroupLocation::primary`]).
    fn path(&self) -> &CgroupPath;

    /// Its directories: one on v2, one per hierarchy on v1.
    fn dirs(&self) -> Vec<PathBuf>;

    /// Moves task `pid` into the cgroup (in every hierarchy on v1, and the unified one on
    /// hybrid hosts). Only ever called for processes isol started.
    fn attach(&self, pid: u32) -> Result<()>;

    /// Opens (write-only, close-on-exec) a file in each of the cgroup's directories for a
    /// process isol is about to start, paired with its directory: the new process writes
    /// `0` to each and so moves *itself* in, before it execs. On cgroup v1 a process moving
    /// itself costs about 0.5 ms, while the parent writing the child's pid waits for the
    /// kernel (an RCU grace period on the threadgroup lock): 11 ms median on the
    /// development host (kernel 6.18, hybrid). With `cloned_into`, the process is cloned
    /// straight into [`Cgroup::clone_into_fd`]'s directory, which then needs no file.
    fn self_attach_files(&self, cloned_into: bool) -> Result<Vec<(std::os::fd::OwnedFd, PathBuf)>> {
        if cloned_into {
            return Ok(Vec::new());
        }
        self.dirs()
            .into_iter()
            .map(|d| Ok((open_for_attach(&d.join("cgroup.procs"))?, d)))
            .collect()
    }

    /// Applies `resources` (only the fields that are set).
    fn apply(&self, resources: &Resources) -> Result<()>;

    /// Reads back the settings in force, in the backend-neutral model, for every
    /// controller enabled on the cgroup (v1 values converted back to v2 terms; a kernel
    /// "unlimited" reads as `Limit::Max`). Applying `r` and reading back gives `r` for
    /// every field `r` set — the conformance suite checks exactly that.
    fn read(&self) -> Result<Resources>;

    /// Reads usage.
    fn stats(&self) -> Result<Stats>;

    /// How many tasks the OOM killer has killed in the cgroup (`oom_kill` of
    /// [`Stats`]' memory events; 0 without a memory controller): what a caller reads
    /// after a box ends to say whether it died of its memory limit, without the whole
    /// of [`Cgroup::stats`].
    fn oom_kills(&self) -> Result<u64> {
        Ok(self.stats()?.memory.map_or(0, |m| m.events.oom_kill))
    }

    /// Freezes every task and waits until the kernel reports the cgroup frozen.
    fn freeze(&self) -> Result<()>;

    /// Thaws the cgroup and waits until it is running again.
    fn thaw(&self) -> Result<()>;

    /// SIGKILLs every task in the cgroup and its descendants and waits until it is empty.
    fn kill(&self) -> Result<()>;

    /// The pids of the tasks directly in the cgroup (thread-group ids, as in cgroup.procs).
    fn pids(&self) -> Result<Vec<u32>>;

    /// Kills everything inside and removes the cgroup and its descendants, retrying while
    /// the kernel reports EBUSY. Leaves nothing behind on success.
    fn destroy(&self) -> Result<()>;

    /// A stream of events (OOM kills, limit hits, emptied, frozen/thawed), starting from
    /// the state now. Called within a tokio runtime with IO and time enabled (the stream
    /// registers its fds with it); without one it is [`Error::Refused`].
    fn events(&self) -> Result<Box<dyn EventStream>>;

    /// An open `O_DIRECTORY` fd on the cgroup's cgroup2 directory, for
    /// `clone3(CLONE_INTO_CGROUP)`: the cgroup itself on v2, its unified twin on a hybrid
    /// host; `None` where there is none (v1 on a legacy host).
    fn clone_into_fd(&self) -> Option<BorrowedFd<'_>>;
}

/// Opens a cgroup's `cgroup.procs` or `tasks` write-only and close-on-exec, for
/// [`Cgroup::self_attach_files`].
pub fn open_for_attach(path: &Path) -> Result<std::os::fd::OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map(std::os::fd::OwnedFd::from)
        .map_err(|e| Error::io("open", path, e))
}

/// Refuses, as [`Error::Refused`] naming `what`, to go on outside a tokio runtime: an
/// [`EventStream`] registers its fds with the runtime it is made in, which would
/// otherwise panic.
pub fn require_tokio_runtime(what: &str) -> Result<()> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => Ok(()),
        Err(_) => Err(Error::Refused {
            what: what.to_string(),
            reason: "there is no tokio runtime (call it from within one with IO and time enabled)"
                .into(),
        }),
    }
}

/// Events of one cgroup, in the order they happened.
#[async_trait]
pub trait EventStream: Send {
    /// The next event; `None` when the cgroup is gone.
    async fn next(&mut self) -> Option<Result<CgroupEvent>>;
}

/// One controller of one backend (cpu, memory, pids, …), implemented in a file of its
/// own. The backend calls it with the directory the controller's files live in: the
/// cgroup's directory on v2, the controller's hierarchy's on v1; it calls `apply` only
/// when the controller is [`Controller::wanted`].
pub trait ResourceController: Send + Sync {
    /// Which controller it is (the backend knows the kernel's name for it).
    fn controller(&self) -> Controller;

    /// Refuses the settings this controller cannot honour ([`Error::Unsupported`], named
    /// with [`crate::controller::Setting::unsupported`]).
    fn check(&self, _resources: &Resources) -> Result<()> {
        Ok(())
    }

    /// Writes the set fields of `resources` into `dir`.
    fn apply(&self, dir: &Path, resources: &Resources) -> Result<()>;

    /// Reads this controller's settings from `dir` into `out` (see [`Cgroup::read`]).
    fn read(&self, dir: &Path, out: &mut Resources) -> Result<()>;

    /// Reads this controller's part of the stats from `dir`; nothing for a controller
    /// without usage files.
    fn stats(&self, _dir: &Path, _stats: &mut Stats) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_paths() {
        assert_eq!(CgroupPath::new("a//b/").unwrap().as_str(), "/a/b");
        assert_eq!(CgroupPath::new("/").unwrap(), CgroupPath::root());
        assert!(CgroupPath::new("/a/../b").is_err());
        let p = CgroupPath::new("/isol").unwrap().join("box1").unwrap();
        assert_eq!(p.as_str(), "/isol/box1");
        assert_eq!(p.relative(), Path::new("isol/box1"));
        assert_eq!(p.parent().unwrap().as_str(), "/isol");
        assert_eq!(p.parent().unwrap().parent().unwrap(), CgroupPath::root());
        assert!(CgroupPath::root().parent().is_none());
        assert!(p.starts_with(&CgroupPath::new("/isol").unwrap()));
        assert!(!CgroupPath::new("/isolx")
            .unwrap()
            .starts_with(&CgroupPath::new("/isol").unwrap()));
        for bad in ["", "a/b", "..", "."] {
            assert!(p.join(bad).is_err(), "{bad:?}");
        }
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, "\"/isol/box1\"");
        assert!(serde_json::from_str::<CgroupPath>("\"/a/..\"").is_err());
    }
}
