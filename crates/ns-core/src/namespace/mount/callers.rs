//! The steps of a box that keeps the caller's tree ([`CallersTree`]): what a hardening
//! policy takes away from the copies of the caller's mounts, a fresh `/proc`, the
//! console and a devpts of the box's own, then the extra mounts.

use std::path::Path;

use nix::mount::MsFlags;

use super::record::Steps;
use super::{mounts, CallersTree};
use crate::namespace::{cpath, Context};
use crate::security::sys::ChildOp;
use crate::spawn::program::Op;
use crate::spawn::{MountStep, SecurityStep};
use crate::{NamespaceKind, Result};

impl CallersTree {
    pub(super) fn steps(&self, ctx: &Context, s: &mut Steps<'_>) -> Result<()> {
        if ctx.read_only_host {
            read_only_host(s)?;
        }
        // A fresh /proc shows the pid namespace the command runs in: a new one, or one it
        // joined (a pod's shared pid namespace); only an inherited one keeps the host's.
        let pid_new =
            ctx.new.contains(NamespaceKind::Pid) || ctx.joined.contains(NamespaceKind::Pid);
        if pid_new && self.proc {
            s.fresh_proc(Path::new("/proc"))?;
        }
        // Taken while the caller's devpts is still there to take it from.
        s.console(self.console.as_deref())?;
        // The host's devpts holds every session's terminal, which the device allow-list
        // lets a box open (and read what is typed there): a devpts of its own instead,
        // where /dev/ptmx (which opens the devpts at `pts` beside it) makes its new
        // terminals.
        let pts = Path::new("/dev/pts");
        if ctx.hardened && s.host.is_dir(pts) {
            s.devpts(pts)?;
        }
        mounts::steps(s, &self.mounts, ctx.read_only_host)
    }
}

/// The box's root is the caller's: its copies of the caller's mounts go read-only, all
/// at once, before anything is mounted for it.
fn read_only_host(s: &mut Steps<'_>) -> Result<()> {
    let op = ChildOp::ReadOnly {
        dst: cpath(Path::new("/"))?,
        bind: false,
    };
    s.command(SecurityStep::HostReadOnly, "/", Op::Security(op));
    // The host's daemons keep their sockets in /run (systemd's, dbus's, docker's), and a
    // read-only mount does not stop a connect: root in the box would talk to them as the
    // host's root. It gets a /run of its own.
    let run = Path::new("/run");
    if s.host.is_dir(run) {
        s.mount(
            MountStep::Run,
            Some(Path::new("tmpfs")),
            run,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=755"),
        )?;
    }
    Ok(())
}
