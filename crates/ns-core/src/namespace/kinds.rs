//! The kinds whose settings are a name or nothing: uts (host and domain name), ipc,
//! net (the loopback device), pid (the init is the spawn's, not a step) and cgroup
//! (unshared once the child is in its cgroup). Each records a step or two for the child.

use super::{cstr, Context, Namespace};
use crate::spawn::program::{Op, Program};
use crate::spawn::SpawnStep;
use crate::{Error, NamespaceKind, Result};

/// A new UTS namespace with its host and domain name (`sethostname(2)`, `setdomainname(2)`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UtsNs {
    /// The host name inside; unchanged (a copy of the host's) when `None`.
    pub hostname: Option<String>,
    /// The NIS domain name inside.
    pub domainname: Option<String>,
}

impl Namespace for UtsNs {
    fn kind(&self) -> NamespaceKind {
        NamespaceKind::Uts
    }
    fn check(&self, _ctx: &Context) -> Result<()> {
        for (field, v) in [
            ("hostname", &self.hostname),
            ("domainname", &self.domainname),
        ] {
            if let Some(v) = v {
                if v.len() > 64 || v.contains('\0') {
                    return Err(Error::invalid(field, v, "at most 64 bytes, no NUL"));
                }
            }
        }
        Ok(())
    }
    fn child_steps(&self, _ctx: &Context, p: &mut Program) -> Result<()> {
        if let Some(h) = &self.hostname {
            p.command(
                SpawnStep::Sethostname,
                h,
                Op::Sethostname { name: cstr(h)? },
            );
        }
        if let Some(d) = &self.domainname {
            p.command(
                SpawnStep::Setdomainname,
                d,
                Op::Setdomainname { name: cstr(d)? },
            );
        }
        Ok(())
    }
}

/// A new IPC namespace: fresh System V IPC objects and POSIX message queues. Nothing to set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpcNs;

impl Namespace for IpcNs {
    fn kind(&self) -> NamespaceKind {
        NamespaceKind::Ipc
    }
    fn child_steps(&self, _ctx: &Context, _p: &mut Program) -> Result<()> {
        Ok(())
    }
}

/// A new network namespace. It starts with a loopback device that is down; isol brings
/// it up (`ioctl(SIOCSIFFLAGS, IFF_UP)`, netdevice(7)) unless told not to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetNs {
    /// Bring `lo` up inside.
    pub loopback_up: bool,
}

impl Default for NetNs {
    fn default() -> Self {
        NetNs { loopback_up: true }
    }
}

impl Namespace for NetNs {
    fn kind(&self) -> NamespaceKind {
        NamespaceKind::Net
    }
    fn child_steps(&self, _ctx: &Context, p: &mut Program) -> Result<()> {
        if self.loopback_up {
            p.command(SpawnStep::LoopbackUp, "lo", Op::LoopbackUp);
        }
        Ok(())
    }
}

/// A new pid namespace. The child cloned into it is pid 1: a tiny init that forks the
/// command, forwards signals to it, reaps every zombie and reports the command's exact
/// status (pid_namespaces(7)). A fresh `/proc` is mounted when the mount namespace is
/// new too (`proc` of [`super::CallersTree`] and [`super::Rootfs`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PidNs;

impl Namespace for PidNs {
    fn kind(&self) -> NamespaceKind {
        NamespaceKind::Pid
    }
    fn child_steps(&self, _ctx: &Context, _p: &mut Program) -> Result<()> {
        Ok(())
    }
}

/// A new cgroup namespace: the process sees its own cgroup as `/`. It is unshared after
/// the child has been placed in its cgroup (cgroup_namespaces(7)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupNs;

impl Namespace for CgroupNs {
    fn kind(&self) -> NamespaceKind {
        NamespaceKind::Cgroup
    }
    fn child_steps(&self, _ctx: &Context, p: &mut Program) -> Result<()> {
        p.leader(
            SpawnStep::UnshareCgroup,
            "",
            Op::Unshare {
                flags: libc::CLONE_NEWCGROUP,
            },
        );
        Ok(())
    }
}
