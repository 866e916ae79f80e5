//! The extra mounts a box asks for (`--bind`, `--tmpfs`): what they are, and the steps
//! that make their mount points and mount them, in the caller's tree or a rootfs alike.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use super::record::Steps;
use crate::namespace::cpath;
use crate::security::sys::ChildOp;
use crate::spawn::program::Op;
use crate::spawn::{MountStep, SecurityStep};
use crate::Result;

/// What to mount at a destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountSource {
    /// A recursive bind mount of a host path.
    Bind(PathBuf),
    /// A fresh tmpfs with these mount options (e.g. `size=64m,mode=1777`).
    Tmpfs(String),
}

/// An extra mount inside the child's mount namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// What.
    pub source: MountSource,
    /// Where, as seen inside (beneath the rootfs when there is one).
    pub target: PathBuf,
    /// Remounted read-only (`MS_BIND|MS_REMOUNT|MS_RDONLY` for binds).
    pub read_only: bool,
}

impl Mount {
    /// A read-write recursive bind of `source` at `target`.
    pub fn bind(source: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Mount {
        Mount {
            source: MountSource::Bind(source.into()),
            target: target.into(),
            read_only: false,
        }
    }

    /// A tmpfs at `target`.
    pub fn tmpfs(target: impl Into<PathBuf>, options: impl Into<String>) -> Mount {
        Mount {
            source: MountSource::Tmpfs(options.into()),
            target: target.into(),
            read_only: false,
        }
    }

    /// Makes it read-only.
    pub fn read_only(mut self) -> Mount {
        self.read_only = true;
        self
    }
}

/// Records `mounts` in order. With `rewritable`, a writable bind whose source the host
/// has writable is made writable again after it is mounted: a bind copies the
/// read-only flag of the box's copy of its source, which a read-only host made
/// read-only (of its top mount; what is mounted beneath the source stays read-only).
pub(super) fn steps(s: &mut Steps<'_>, mounts: &[Mount], rewritable: bool) -> Result<()> {
    for m in mounts {
        let dst = s.inside(&m.target);
        match &m.source {
            MountSource::Bind(src) => bind(s, src, &dst, m.read_only, rewritable)?,
            MountSource::Tmpfs(opts) => {
                s.mkdir(&dst)?;
                let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
                if m.read_only {
                    flags |= MsFlags::MS_RDONLY;
                }
                s.mount(
                    MountStep::Tmpfs,
                    Some(Path::new("tmpfs")),
                    &dst,
                    Some("tmpfs"),
                    flags,
                    (!opts.is_empty()).then_some(opts.as_str()),
                )?;
            }
        }
    }
    Ok(())
}

/// A bind of `src` at `dst`: its mount point (a directory or an empty file, as `src`
/// is), then the bind, read-only from the start or writable.
fn bind(
    s: &mut Steps<'_>,
    src: &Path,
    dst: &Path,
    read_only: bool,
    rewritable: bool,
) -> Result<()> {
    if s.host.is_dir(src) {
        s.mkdir(dst)?;
    } else {
        s.touch(MountStep::MountPoint, dst)?;
    }
    if read_only {
        let op = Op::BindReadOnly {
            src: cpath(src)?,
            dst: cpath(dst)?,
        };
        s.command(MountStep::BindReadOnly, dst, op);
        return Ok(());
    }
    s.mount(
        MountStep::Bind,
        Some(src),
        dst,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    if rewritable && s.host.writable(src) {
        let op = ChildOp::Writable { dst: cpath(dst)? };
        s.command(SecurityStep::Writable, dst, Op::Security(op));
    }
    Ok(())
}
