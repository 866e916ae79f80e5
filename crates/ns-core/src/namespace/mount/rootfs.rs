//! The steps of a box with a rootfs ([`Rootfs`]): the rootfs bound onto itself, its
//! `/proc`, `/dev` (see [`super::dev`]), `/sys` and `/tmp`, the extra mounts, and last
//! the move into it (`pivot_root`, or `MS_MOVE` + `chroot`).

use std::path::Path;

use nix::mount::MsFlags;

use super::record::Steps;
use super::{dev, mounts, Rootfs};
use crate::namespace::{cpath, Context};
use crate::spawn::program::Op;
use crate::spawn::MountStep;
use crate::{NamespaceKind, Result};

impl Rootfs {
    pub(super) fn steps(&self, ctx: &Context, s: &mut Steps<'_>) -> Result<()> {
        let root = self.dir.as_path();
        s.mount(
            MountStep::BindRootfs,
            Some(root),
            root,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
        self.proc_steps(ctx, s)?;
        if let Some(d) = &self.dev {
            let user_ns =
                ctx.new.contains(NamespaceKind::User) || ctx.joined.contains(NamespaceKind::User);
            dev::steps(s, user_ns)?;
            s.console(d.console.as_deref())?;
        }
        if self.sys {
            sys_steps(ctx, s)?;
        }
        if self.tmp {
            let tmp = s.inside(Path::new("/tmp"));
            s.mkdir(&tmp)?;
            s.mount(
                MountStep::Tmp,
                Some(Path::new("tmpfs")),
                &tmp,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some("mode=1777"),
            )?;
        }
        mounts::steps(s, &self.mounts, false)?;
        let step = if self.no_pivot {
            MountStep::MoveRoot
        } else {
            MountStep::PivotRoot
        };
        let op = Op::PivotRoot {
            root: cpath(root)?,
            pivot: !self.no_pivot,
        };
        s.command(step, root, op);
        Ok(())
    }

    /// `/proc`, always: a fresh one showing the pid namespace the command runs in (new,
    /// or joined: a pod's shared one), or a bind of the caller's when it is inherited.
    fn proc_steps(&self, ctx: &Context, s: &mut Steps<'_>) -> Result<()> {
        let pid_new =
            ctx.new.contains(NamespaceKind::Pid) || ctx.joined.contains(NamespaceKind::Pid);
        let proc = s.inside(Path::new("/proc"));
        s.mkdir(&proc)?;
        if pid_new && self.proc {
            return s.fresh_proc(&proc);
        }
        s.mount(
            MountStep::BindProc,
            Some(Path::new("/proc")),
            &proc,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )
    }
}

/// `/sys`, read-only: a fresh sysfs showing the box's net namespace when it is new,
/// else a bind of the caller's, remounted read-only.
fn sys_steps(ctx: &Context, s: &mut Steps<'_>) -> Result<()> {
    let sys = s.inside(Path::new("/sys"));
    s.mkdir(&sys)?;
    if ctx.new.contains(NamespaceKind::Net) {
        let ro = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        return s.mount(
            MountStep::Sysfs,
            Some(Path::new("sysfs")),
            &sys,
            Some("sysfs"),
            ro,
            None,
        );
    }
    s.mount(
        MountStep::BindSys,
        Some(Path::new("/sys")),
        &sys,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    let op = Op::RemountReadOnly { dst: cpath(&sys)? };
    s.command(MountStep::RemountSysReadOnly, &sys, op);
    Ok(())
}
