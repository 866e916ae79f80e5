//! The few kinds of step a mount plan is made of — a mount, a directory or an empty file
//! to mount on (made beneath the rootfs, see [`Beneath`]), a fresh `/proc`, a devpts, the
//! console — recorded as ready-made C strings, and [`HostFiles`], what the recording
//! asks of the host's files.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use crate::namespace::{cpath, cstr};
use crate::spawn::program::{Beneath, Op, Program};
use crate::spawn::{MountStep, SpawnStep};
use crate::Result;

/// What recording a mount plan needs to know of the host's files (read before the
/// clone, never by the child). Tests describe a host instead of asking this one.
pub(in crate::namespace) trait HostFiles {
    /// `path` is a directory (following symlinks, as [`Path::is_dir`]).
    fn is_dir(&self, path: &Path) -> bool;
    /// The filesystem at `path` is mounted writable (`statvfs` without `ST_RDONLY`);
    /// `false` when that cannot be told.
    fn writable(&self, path: &Path) -> bool;
}

/// This host's files.
pub(in crate::namespace) struct RealHost;

impl HostFiles for RealHost {
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
    fn writable(&self, path: &Path) -> bool {
        nix::sys::statvfs::statvfs(path)
            .is_ok_and(|v| !v.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
    }
}

/// `path` split beneath `root` for the child ([`Beneath`]); `None` without a rootfs, or
/// for a path outside it.
fn beneath(root: Option<&Path>, path: &Path) -> Result<Option<Beneath>> {
    let Some(root) = root else { return Ok(None) };
    let Ok(rel) = path.strip_prefix(root) else {
        return Ok(None);
    };
    let (Some(name), parent) = (rel.file_name(), rel.parent().unwrap_or(Path::new(""))) else {
        return Ok(None);
    };
    Ok(Some(Beneath {
        root: cpath(root)?,
        parent: cpath(parent)?,
        name: cpath(Path::new(name))?,
    }))
}

/// A program being recorded for one root: the command's steps, with the paths laid
/// beneath the rootfs when there is one.
pub(in crate::namespace) struct Steps<'a> {
    p: &'a mut Program,
    /// What the steps need to know of the host's files.
    pub host: &'a dyn HostFiles,
    /// The rootfs, when the box has one.
    pub root: Option<&'a Path>,
}

impl<'a> Steps<'a> {
    pub fn new(p: &'a mut Program, host: &'a dyn HostFiles, root: Option<&'a Path>) -> Self {
        Steps { p, host, root }
    }

    /// Where the box's absolute `path` is before the pivot: beneath the rootfs, or the
    /// path itself in the caller's tree.
    pub fn inside(&self, path: &Path) -> PathBuf {
        match self.root {
            Some(root) => root.join(path.strip_prefix("/").unwrap_or(path)),
            None => path.to_path_buf(),
        }
    }

    /// Any other step of the command.
    pub fn command(&mut self, step: impl Into<SpawnStep>, path: impl AsRef<Path>, op: Op) {
        self.p.command(step, path, op);
    }

    /// `mount(src, dst, fstype, flags, data)`.
    pub fn mount(
        &mut self,
        step: MountStep,
        src: Option<&Path>,
        dst: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<()> {
        let op = Op::Mount {
            src: src.map(cpath).transpose()?,
            dst: cpath(dst)?,
            fstype: fstype.map(cstr).transpose()?,
            flags: flags.bits(),
            data: data.map(cstr).transpose()?,
        };
        self.p.command(step, dst, op);
        Ok(())
    }

    /// `mkdir` of `dir`, made beneath the rootfs (see [`Beneath`]) when it lies in one.
    pub fn mkdir(&mut self, dir: &Path) -> Result<()> {
        let op = Op::Mkdir {
            path: cpath(dir)?,
            mode: 0o755,
            beneath: beneath(self.root, dir)?,
        };
        self.p.command(MountStep::Mkdir, dir, op);
        Ok(())
    }

    /// An empty file to mount on, made beneath the rootfs when it lies in one.
    pub fn touch(&mut self, step: MountStep, file: &Path) -> Result<()> {
        let op = Op::Touch {
            path: cpath(file)?,
            beneath: beneath(self.root, file)?,
        };
        self.p.command(step, file, op);
        Ok(())
    }

    /// A fresh `/proc` at `at`, showing the pid namespace the command runs in.
    pub fn fresh_proc(&mut self, at: &Path) -> Result<()> {
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        self.mount(
            MountStep::Proc,
            Some(Path::new("proc")),
            at,
            Some("proc"),
            flags,
            None,
        )
    }

    /// A devpts of the box's own at `at`: its ptmx opens new terminals there.
    pub fn devpts(&mut self, at: &Path) -> Result<()> {
        self.mount(
            MountStep::Devpts,
            Some(Path::new("devpts")),
            at,
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620"),
        )
    }

    /// The caller's terminal `tty` bound at the box's `/dev/console`.
    pub fn console(&mut self, tty: Option<&Path>) -> Result<()> {
        let Some(tty) = tty else {
            return Ok(());
        };
        let console = self.inside(Path::new("/dev/console"));
        self.touch(MountStep::MountPoint, &console)?;
        self.mount(
            MountStep::Console,
            Some(tty),
            &console,
            None,
            MsFlags::MS_BIND,
            None,
        )
    }
}
