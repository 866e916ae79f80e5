//! The mount namespace as a plan of what the box's file tree is: [`MntNs`] says which
//! root the box gets — the caller's tree, a rootfs, or an empty root — and each root
//! carries only the settings that mean something for it, so no setting is ever ignored.
//!
//! The child's steps are recorded in named parts: the caller's tree
//! ([`callers`]), a rootfs with its `/proc`, `/sys`, `/tmp` and pivot ([`rootfs`]),
//! a rootfs's `/dev` and the console ([`dev`]), and the extra mounts of both
//! ([`mounts`]). [`check`] refuses what cannot work before the clone, among it the
//! rootfs's symlinks on the way to a mount point. The little the steps ask of the host's
//! files while they are recorded goes through [`record::HostFiles`], so that tests can
//! record a plan for a host they describe.

mod callers;
mod check;
mod dev;
mod mounts;
pub(in crate::namespace) mod record;
mod rootfs;

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use super::{cpath, Context, Namespace};
use crate::spawn::program::{Op, Program};
use crate::spawn::MountStep;
use crate::{NamespaceKind, Result};

pub use mounts::{Mount, MountSource};
use record::{HostFiles, RealHost, Steps};

/// A new mount namespace: made private (`MS_REC|MS_PRIVATE`) before anything is mounted,
/// so nothing propagates to the host; then the root the box gets, with what is mounted
/// in it.
///
/// The [`crate::spawn::Command`] setters change it in place: `rootfs` makes any root a
/// rootfs (keeping the mounts and the console given before); `mount` and `console`
/// add to the caller's tree or the rootfs, and make an empty root the caller's tree
/// again — the last call wins, nothing is silently dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MntNs {
    /// The caller's tree: the namespace's copies of the caller's mounts, with a few
    /// mounts of the box's own over them.
    Callers(CallersTree),
    /// A directory of the host as the box's root.
    Rootfs(Rootfs),
    /// Nothing but an empty read-only tmpfs as the root, the caller's mounts detached,
    /// and nothing else mounted: for a process that needs no files (a pod's holder,
    /// whose `/proc/PID/mountinfo` every member can read).
    Empty,
}

/// The box keeps the caller's tree ([`MntNs::Callers`]).
///
/// A hardening policy ([`Context`]) adds to it: the copies of the caller's mounts made
/// read-only and a `/run` of the box's own (`read_only_host`), a devpts of its own
/// (`hardened`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallersTree {
    /// Extra mounts, in order.
    pub mounts: Vec<Mount>,
    /// Mount a fresh `/proc` when the pid namespace is new or joined (inherited, the
    /// box keeps the caller's).
    pub proc: bool,
    /// A terminal of the caller's (`/dev/pts/N`, the command's stdin) to bind at
    /// `/dev/console`, taken before the box's own devpts covers the caller's: there
    /// `ttyname` finds it, where its own name leads into the box's devpts.
    pub console: Option<PathBuf>,
}

impl Default for CallersTree {
    fn default() -> Self {
        CallersTree {
            mounts: Vec::new(),
            proc: true,
            console: None,
        }
    }
}

/// A directory of the host as the box's root ([`MntNs::Rootfs`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rootfs {
    /// The directory to `pivot_root` into (bound onto itself first); absolute. Where
    /// `pivot_root` cannot work (the old root is an initramfs), the rootfs is moved onto
    /// `/` with `MS_MOVE` and `chroot`ed into instead.
    pub dir: PathBuf,
    /// Extra mounts, in order; their targets lie inside the rootfs.
    pub mounts: Vec<Mount>,
    /// `/proc` is always provided: a fresh one when the pid namespace is new or joined
    /// and this is set, else a bind of the caller's.
    pub proc: bool,
    /// A minimal `/dev` of the box's own, see [`Dev`]; `None` leaves the rootfs's.
    pub dev: Option<Dev>,
    /// `/sys` read-only: a fresh sysfs when the net namespace is new, a bind of the
    /// host's otherwise.
    pub sys: bool,
    /// A tmpfs at `/tmp`.
    pub tmp: bool,
    /// Skip `pivot_root` and go straight to `MS_MOVE` + `chroot` (runc's `--no-pivot`,
    /// for roots on a ramdisk). The old root then stays reachable to a process that can
    /// escape a chroot (it needs `CAP_SYS_CHROOT`).
    pub no_pivot: bool,
}

impl Rootfs {
    /// `dir` as the root, with everything a box needs: a fresh `/proc`, `/dev`, a
    /// read-only `/sys` and a `/tmp`, and `pivot_root`.
    pub fn new(dir: impl Into<PathBuf>) -> Rootfs {
        Rootfs {
            dir: dir.into(),
            mounts: Vec::new(),
            proc: true,
            dev: Some(Dev::default()),
            sys: true,
            tmp: true,
            no_pivot: false,
        }
    }
}

/// A rootfs's `/dev`: a tmpfs with null, zero, full, random, urandom and tty (made with
/// `mknod`, or bound from the host's where a user namespace forbids it), a devpts with
/// its own ptmx, the usual links and a tmpfs at `/dev/shm`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dev {
    /// A terminal of the caller's (`/dev/pts/N`) bound at `/dev/console`.
    pub console: Option<PathBuf>,
}

impl Default for MntNs {
    fn default() -> Self {
        MntNs::Callers(CallersTree::default())
    }
}

impl MntNs {
    /// The rootfs directory, when the root is one.
    pub fn rootfs(&self) -> Option<&Path> {
        match self {
            MntNs::Rootfs(r) => Some(&r.dir),
            _ => None,
        }
    }

    /// The extra mounts, in order (none in an empty root).
    pub fn mounts(&self) -> &[Mount] {
        match self {
            MntNs::Callers(c) => &c.mounts,
            MntNs::Rootfs(r) => &r.mounts,
            MntNs::Empty => &[],
        }
    }

    /// The terminal bound at `/dev/console`, if any.
    pub fn console(&self) -> Option<&Path> {
        match self {
            MntNs::Callers(c) => c.console.as_deref(),
            MntNs::Rootfs(r) => r.dev.as_ref().and_then(|d| d.console.as_deref()),
            MntNs::Empty => None,
        }
    }

    /// Whether the box's `/sys` is the kernel's, so that host paths under it tell what
    /// exists inside: the caller's, or the one a rootfs gets with `sys`; an empty root
    /// has none.
    pub fn kernels_sys(&self) -> bool {
        match self {
            MntNs::Callers(_) => true,
            MntNs::Rootfs(r) => r.sys,
            MntNs::Empty => false,
        }
    }

    /// Makes the root the rootfs `dir`, keeping the mounts and the console given so far
    /// (an empty root becomes a default [`Rootfs`]).
    pub fn set_rootfs(&mut self, dir: impl Into<PathBuf>) {
        let dir = dir.into();
        *self = match std::mem::take(self) {
            MntNs::Rootfs(r) => MntNs::Rootfs(Rootfs { dir, ..r }),
            MntNs::Callers(c) => MntNs::Rootfs(Rootfs {
                mounts: c.mounts,
                proc: c.proc,
                dev: Some(Dev { console: c.console }),
                ..Rootfs::new(dir)
            }),
            MntNs::Empty => MntNs::Rootfs(Rootfs::new(dir)),
        };
    }

    /// Adds an extra mount (an empty root becomes the caller's tree with it).
    pub fn add_mount(&mut self, m: Mount) {
        match self {
            MntNs::Callers(c) => c.mounts.push(m),
            MntNs::Rootfs(r) => r.mounts.push(m),
            MntNs::Empty => {
                *self = MntNs::Callers(CallersTree {
                    mounts: vec![m],
                    ..CallersTree::default()
                })
            }
        }
    }

    /// Binds the caller's terminal `tty` at `/dev/console` (a rootfs without a `/dev`
    /// of the box's own gets one; an empty root becomes the caller's tree).
    pub fn set_console(&mut self, tty: impl Into<PathBuf>) {
        let console = Some(tty.into());
        match self {
            MntNs::Callers(c) => c.console = console,
            MntNs::Rootfs(r) => r.dev.get_or_insert_with(Dev::default).console = console,
            MntNs::Empty => {
                *self = MntNs::Callers(CallersTree {
                    console,
                    ..CallersTree::default()
                })
            }
        }
    }

    /// Records the child's steps, asking `host` what they need to know of its files.
    pub(in crate::namespace) fn record(
        &self,
        ctx: &Context,
        host: &dyn HostFiles,
        p: &mut Program,
    ) -> Result<()> {
        let root = self.rootfs();
        let mut s = Steps::new(p, host, root);
        // Nothing we mount may propagate back to the host.
        s.mount(
            MountStep::MakePrivate,
            None,
            Path::new("/"),
            None,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None,
        )?;
        match self {
            MntNs::Callers(c) => c.steps(ctx, &mut s),
            MntNs::Rootfs(r) => r.steps(ctx, &mut s),
            MntNs::Empty => empty_root_steps(&mut s),
        }
    }
}

/// [`MntNs::Empty`]: an empty read-only tmpfs stacked on `/`, then `pivot_root` into it.
fn empty_root_steps(s: &mut Steps<'_>) -> Result<()> {
    // Stacked on `/`, the tmpfs is what `/..` leads to from the old root.
    s.mount(
        MountStep::EmptyRoot,
        Some(Path::new("tmpfs")),
        Path::new("/"),
        Some("tmpfs"),
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("size=4k,mode=555"),
    )?;
    let root = Path::new("/..");
    let op = Op::PivotRoot {
        root: cpath(root)?,
        pivot: true,
    };
    s.command(MountStep::PivotIntoEmptyRoot, root, op);
    Ok(())
}

impl Namespace for MntNs {
    fn kind(&self) -> NamespaceKind {
        NamespaceKind::Mnt
    }

    fn check(&self, ctx: &Context) -> Result<()> {
        check::plan(self, ctx)
    }

    fn child_steps(&self, ctx: &Context, p: &mut Program) -> Result<()> {
        self.record(ctx, &RealHost, p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setters_carry_what_was_given_across_roots() {
        let tty = Path::new("/dev/pts/3");
        let mut m = MntNs::default();
        m.add_mount(Mount::tmpfs("/scratch", ""));
        m.set_console(tty);
        m.set_rootfs("/srv/box");
        let MntNs::Rootfs(r) = &m else {
            panic!("{m:?}")
        };
        assert_eq!(r.dir, Path::new("/srv/box"));
        assert_eq!(m.mounts(), [Mount::tmpfs("/scratch", "")]);
        assert_eq!(m.console(), Some(tty));
        // Given after the rootfs, the same.
        let mut m = MntNs::default();
        m.set_rootfs("/srv/box");
        m.add_mount(Mount::tmpfs("/scratch", ""));
        m.set_console(tty);
        assert_eq!(
            m,
            MntNs::Rootfs(Rootfs {
                mounts: vec![Mount::tmpfs("/scratch", "")],
                dev: Some(Dev {
                    console: Some(tty.into())
                }),
                ..Rootfs::new("/srv/box")
            })
        );
        // A console asked of a rootfs without a /dev of its own brings one.
        let mut m = MntNs::Rootfs(Rootfs {
            dev: None,
            ..Rootfs::new("/srv/box")
        });
        m.set_console(tty);
        assert_eq!(m.console(), Some(tty));
    }

    #[test]
    fn an_empty_root_holds_nothing_and_is_left_by_the_last_call() {
        let mut m = MntNs::Empty;
        assert!(m.mounts().is_empty() && m.rootfs().is_none() && m.console().is_none());
        assert!(!m.kernels_sys());
        m.add_mount(Mount::bind("/data", "/data"));
        assert_eq!(
            m,
            MntNs::Callers(CallersTree {
                mounts: vec![Mount::bind("/data", "/data")],
                ..CallersTree::default()
            })
        );
        let mut m = MntNs::Empty;
        m.set_rootfs("/srv/box");
        assert_eq!(m, MntNs::Rootfs(Rootfs::new("/srv/box")));
    }
}
