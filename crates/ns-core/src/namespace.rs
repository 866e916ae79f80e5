//! Namespaces as isol creates, joins and keeps them: the [`Namespace`] trait with one
//! implementation per kind, the [`NamespacePlan`] a spawn follows, and [`NsHandle`], an
//! open namespace file that can be joined or persisted by a bind mount.
//!
//! Each kind's settings know what must happen *inside* the child between clone and exec
//! (sethostname, bringing `lo` up, mounts and `pivot_root`) and what the *parent* must do
//! while the child waits (writing `uid_map`/`gid_map`, `timens_offsets`). The steps for
//! the child are recorded into a [`Program`] before the clone, as ready-made C strings,
//! so the child only ever makes system calls.
//!
//! # References
//! namespaces(7), user_namespaces(7), pid_namespaces(7), time_namespaces(7),
//! cgroup_namespaces(7), mount_namespaces(7), setns(2), pivot_root(2).

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::mount::{MntFlags, MsFlags};

use crate::security::sys::ChildOp;
use crate::spawn::program::{Beneath, Op, Program};
use crate::{Error, NamespaceKind, NamespaceSet, Result};

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
/// `child_steps` records what the child does inside the new namespace (in the order the
/// spawn calls the kinds: cgroup, time, uts, ipc, net, pid, mnt); `parent_setup` is what
/// the parent does from outside once the child exists and waits for it.
pub trait Namespace: fmt::Debug + Send + Sync {
    /// The kind.
    fn kind(&self) -> NamespaceKind;

    /// Refuses settings that cannot work with the rest of the plan.
    fn check(&self, _ctx: &Context) -> Result<()> {
        Ok(())
    }

    /// Records the child's steps for this namespace.
    fn child_steps(&self, ctx: &Context, program: &mut Program) -> Result<()>;

    /// Whether [`Namespace::parent_setup`] has work to do.
    fn needs_parent(&self) -> bool {
        false
    }

    /// Work done by the parent for child `pid` while the child waits (maps, offsets).
    fn parent_setup(&self, _pid: u32) -> Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// uts, ipc, net, pid, cgroup

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
            p.command("sethostname", h, Op::Sethostname { name: cstr(h)? });
        }
        if let Some(d) = &self.domainname {
            p.command("setdomainname", d, Op::Setdomainname { name: cstr(d)? });
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
            p.command("bring lo up", "lo", Op::LoopbackUp);
        }
        Ok(())
    }
}

/// A new pid namespace. The child cloned into it is pid 1: a tiny init that forks the
/// command, forwards signals to it, reaps every zombie and reports the command's exact
/// status (pid_namespaces(7)). A fresh `/proc` is mounted when the mount namespace is
/// new too ([`MntNs::proc`]).
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
            "unshare cgroup",
            "",
            Op::Unshare {
                flags: libc::CLONE_NEWCGROUP,
            },
        );
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// time

/// A clock offset: seconds and nanoseconds (`0 ≤ nanos < 1e9`), possibly negative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockOffset {
    /// Whole seconds.
    pub secs: i64,
    /// Nanoseconds, `0..1_000_000_000`.
    pub nanos: u32,
}

impl ClockOffset {
    /// An offset of whole seconds.
    pub const fn secs(secs: i64) -> ClockOffset {
        ClockOffset { secs, nanos: 0 }
    }
}

/// A new time namespace with offsets for `CLOCK_MONOTONIC` and `CLOCK_BOOTTIME`.
///
/// The child unshares `CLONE_NEWTIME` (which only affects its children), the parent
/// writes `/proc/PID/timens_offsets` before any process enters the namespace, and then
/// the child forks the command into it (time_namespaces(7)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimeNs {
    /// Added to `CLOCK_MONOTONIC` inside.
    pub monotonic: ClockOffset,
    /// Added to `CLOCK_BOOTTIME` inside.
    pub boottime: ClockOffset,
}

impl TimeNs {
    /// What is written to `timens_offsets`.
    pub fn offsets_text(&self) -> String {
        format!(
            "monotonic {} {}\nboottime {} {}\n",
            self.monotonic.secs, self.monotonic.nanos, self.boottime.secs, self.boottime.nanos
        )
    }
}

impl Namespace for TimeNs {
    fn kind(&self) -> NamespaceKind {
        NamespaceKind::Time
    }
    fn check(&self, _ctx: &Context) -> Result<()> {
        for (n, o) in [("monotonic", self.monotonic), ("boottime", self.boottime)] {
            if o.nanos >= 1_000_000_000 {
                return Err(Error::invalid(
                    format!("time offset {n}"),
                    o.nanos.to_string(),
                    "nanoseconds must be below 1000000000",
                ));
            }
        }
        Ok(())
    }
    fn child_steps(&self, _ctx: &Context, p: &mut Program) -> Result<()> {
        p.leader(
            "unshare time",
            "",
            Op::Unshare {
                flags: libc::CLONE_NEWTIME,
            },
        );
        p.leader("wait for time offsets", "", Op::TimeReady);
        Ok(())
    }
    fn needs_parent(&self) -> bool {
        self.monotonic != ClockOffset::default() || self.boottime != ClockOffset::default()
    }
    fn parent_setup(&self, pid: u32) -> Result<()> {
        crate::parse::write(
            Path::new(&format!("/proc/{pid}/timens_offsets")),
            &self.offsets_text(),
        )
    }
}

// ---------------------------------------------------------------------------------------
// user

/// One line of `uid_map`/`gid_map`: ids `inside..inside+count` map to
/// `outside..outside+count` (user_namespaces(7)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdMap {
    /// First id inside the namespace.
    pub inside: u32,
    /// First id outside (in the parent's user namespace).
    pub outside: u32,
    /// How many.
    pub count: u32,
}

/// Whether the child may call `setgroups(2)` (`/proc/PID/setgroups`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SetGroups {
    /// `deny` when the spawner is unprivileged (the kernel requires it before an
    /// unprivileged `gid_map` write), else leave `allow`.
    #[default]
    Auto,
    /// Write `allow`.
    Allow,
    /// Write `deny`.
    Deny,
}

/// A new user namespace with its id maps, written by the parent while the child waits.
/// Inside, the command runs as uid/gid 0 unless [`crate::spawn::Command::uid`] says
/// otherwise, holding every capability in the namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserNs {
    /// `uid_map` lines; none leaves every uid unmapped (the overflow uid inside).
    pub uid_map: Vec<IdMap>,
    /// `gid_map` lines.
    pub gid_map: Vec<IdMap>,
    /// `setgroups` policy.
    pub setgroups: SetGroups,
}

impl UserNs {
    /// The rootless mapping: the caller's effective uid and gid become 0 inside (one id
    /// each), and setgroups is denied, as `unshare --map-root-user` does.
    pub fn rootless() -> UserNs {
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        UserNs {
            uid_map: vec![IdMap {
                inside: 0,
                outside: uid,
                count: 1,
            }],
            gid_map: vec![IdMap {
                inside: 0,
                outside: gid,
                count: 1,
            }],
            setgroups: SetGroups::Deny,
        }
    }

    /// A range mapping `0 outside count` for both uids and gids (needs privilege).
    pub fn range(outside: u32, count: u32) -> UserNs {
        let m = IdMap {
            inside: 0,
            outside,
            count,
        };
        UserNs {
            uid_map: vec![m],
            gid_map: vec![m],
            setgroups: SetGroups::Auto,
        }
    }

    fn map_text(map: &[IdMap]) -> String {
        map.iter()
            .map(|m| format!("{} {} {}\n", m.inside, m.outside, m.count))
            .collect()
    }

    fn deny(&self) -> bool {
        match self.setgroups {
            SetGroups::Deny => true,
            SetGroups::Allow => false,
            SetGroups::Auto => !nix::unistd::geteuid().is_root(),
        }
    }
}

impl Namespace for UserNs {
    fn kind(&self) -> NamespaceKind {
        NamespaceKind::User
    }
    fn check(&self, _ctx: &Context) -> Result<()> {
        for (name, map) in [("uid_map", &self.uid_map), ("gid_map", &self.gid_map)] {
            if map.len() > 340 || map.iter().any(|m| m.count == 0) {
                return Err(Error::invalid(
                    name,
                    Self::map_text(map),
                    "1 to 340 lines, each with a count above 0",
                ));
            }
        }
        Ok(())
    }
    fn child_steps(&self, _ctx: &Context, _p: &mut Program) -> Result<()> {
        Ok(())
    }
    fn needs_parent(&self) -> bool {
        true
    }
    fn parent_setup(&self, pid: u32) -> Result<()> {
        let proc = PathBuf::from(format!("/proc/{pid}"));
        if self.deny() {
            crate::parse::write(&proc.join("setgroups"), "deny")?;
        }
        if !self.uid_map.is_empty() {
            crate::parse::write(&proc.join("uid_map"), &Self::map_text(&self.uid_map))?;
        }
        if !self.gid_map.is_empty() {
            crate::parse::write(&proc.join("gid_map"), &Self::map_text(&self.gid_map))?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// mnt

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

/// A new mount namespace: made private (`MS_REC|MS_PRIVATE`) before anything is mounted,
/// so nothing propagates to the host; optionally a new root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MntNs {
    /// The directory to `pivot_root` into (bound onto itself first). Where
    /// `pivot_root` cannot work (the old root is an initramfs), the rootfs is moved onto
    /// `/` with `MS_MOVE` and `chroot`ed into instead.
    pub rootfs: Option<PathBuf>,
    /// Extra mounts, in order.
    pub mounts: Vec<Mount>,
    /// Mount a fresh `/proc` when the pid namespace is new or joined (with a rootfs,
    /// `/proc` is always provided: fresh, or a bind of the host's when the pid namespace
    /// is inherited).
    pub proc: bool,
    /// With a rootfs: a minimal `/dev` (tmpfs with null, zero, full, random, urandom and
    /// tty bound from the host, devpts with its own ptmx, a tmpfs at `/dev/shm`).
    pub dev: bool,
    /// With a rootfs: `/sys` read-only (fresh sysfs when the net namespace is new, a
    /// bind of the host's otherwise).
    pub sys: bool,
    /// With a rootfs: a tmpfs at `/tmp`.
    pub tmp: bool,
    /// With a rootfs: skip `pivot_root` and go straight to `MS_MOVE` + `chroot` (runc's
    /// `--no-pivot`, for roots on a ramdisk). The old root then stays reachable to a
    /// process that can escape a chroot (it needs `CAP_SYS_CHROOT`).
    pub no_pivot: bool,
    /// Nothing but an empty read-only tmpfs as the root, the caller's mounts detached,
    /// and nothing else mounted: for a process that needs no files (a pod's holder,
    /// whose `/proc/PID/mountinfo` every member can read). The other fields are ignored.
    pub empty_root: bool,
    /// A terminal of the caller's (`/dev/pts/N`, the command's stdin) to bind at
    /// `/dev/console`, taken before the box's own devpts covers the caller's: there
    /// `ttyname` finds it, where its own name leads into the box's devpts. Applies
    /// without a rootfs, and with one when `dev` makes its `/dev`.
    pub console: Option<PathBuf>,
}

impl Default for MntNs {
    fn default() -> Self {
        MntNs {
            rootfs: None,
            mounts: Vec::new(),
            proc: true,
            dev: true,
            sys: true,
            tmp: true,
            no_pivot: false,
            empty_root: false,
            console: None,
        }
    }
}

/// The nodes of a rootfs's /dev: name, major, minor (all mode 0666, as docker makes them).
const DEVICES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

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

/// Refuses a mount point in `root` reached through a symlink of the rootfs: isol makes
/// and mounts on it before `pivot_root`, when an absolute link (`/mnt -> /etc`) would
/// lead to the host's files and a relative one could climb out, so a rootfs that a box
/// can write could make the next box's mount points on the host. The existing part of
/// the path is checked; what is missing isol creates. (A rootfs changed while this runs
/// is not covered: the check is done once, before the clone.)
fn no_symlink_on_the_way(root: &Path, target: &Path) -> Result<()> {
    let mut at = root.to_path_buf();
    for part in target.components() {
        let std::path::Component::Normal(name) = part else {
            continue;
        };
        at.push(name);
        match std::fs::symlink_metadata(&at) {
            Ok(md) if md.file_type().is_symlink() => {
                let to = std::fs::read_link(&at).unwrap_or_default();
                let inside = Path::new("/").join(at.strip_prefix(root).unwrap_or(&at));
                return Err(Error::invalid(
                    "mount target",
                    target.display().to_string(),
                    format!(
                        "{} is a symlink in the rootfs (to {}): isol does not follow the rootfs's symlinks to the places it mounts on; give the path it stands for",
                        inside.display(),
                        to.display()
                    ),
                ));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(())
}

impl MntNs {
    fn inside(&self, path: &Path) -> PathBuf {
        match &self.rootfs {
            Some(root) => root.join(path.strip_prefix("/").unwrap_or(path)),
            None => path.to_path_buf(),
        }
    }

    fn mount(
        p: &mut Program,
        step: &'static str,
        src: Option<&Path>,
        dst: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<()> {
        p.command(
            step,
            dst,
            Op::Mount {
                src: src.map(cpath).transpose()?,
                dst: cpath(dst)?,
                fstype: fstype.map(cstr).transpose()?,
                flags: flags.bits(),
                data: data.map(cstr).transpose()?,
            },
        );
        Ok(())
    }

    /// `mkdir` of `dir`, made beneath `root` (see [`Beneath`]) when it lies in one.
    fn mkdir(p: &mut Program, dir: &Path, root: Option<&Path>) -> Result<()> {
        p.command(
            "mkdir",
            dir,
            Op::Mkdir {
                path: cpath(dir)?,
                mode: 0o755,
                beneath: beneath(root, dir)?,
            },
        );
        Ok(())
    }

    fn fresh_proc(p: &mut Program, at: &Path) -> Result<()> {
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        Self::mount(
            p,
            "mount proc",
            Some(Path::new("proc")),
            at,
            Some("proc"),
            flags,
            None,
        )
    }

    /// A rootfs's /dev: a tmpfs with the usual nodes, devpts, shm and the links. The
    /// nodes are made with mknod (the box owns them; a chmod inside stays inside), or,
    /// where a user namespace forbids mknod, bound from the host's /dev read-only (a
    /// read-only device node still reads and writes as the device, but its mode and
    /// owner, the host's, cannot be changed).
    /// [`MntNs::console`]: the terminal bound at `/dev/console` (made in a rootfs's
    /// `/dev`).
    fn console_step(&self, p: &mut Program, root: Option<&Path>) -> Result<()> {
        let Some(tty) = &self.console else {
            return Ok(());
        };
        let console = self.inside(Path::new("/dev/console"));
        let touch = Op::Touch {
            path: cpath(&console)?,
            beneath: beneath(root, &console)?,
        };
        p.command("create mount point", &console, touch);
        Self::mount(
            p,
            "bind the terminal at /dev/console",
            Some(tty),
            &console,
            None,
            MsFlags::MS_BIND,
            None,
        )
    }

    /// A devpts of the box's own at `at`: its ptmx opens new terminals there.
    fn devpts(p: &mut Program, at: &Path) -> Result<()> {
        Self::mount(
            p,
            "mount a devpts of the box's own",
            Some(Path::new("devpts")),
            at,
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620"),
        )
    }

    fn dev_steps(p: &mut Program, dev: &Path, root: &Path, user_ns: bool) -> Result<()> {
        Self::mkdir(p, dev, Some(root))?;
        Self::mount(
            p,
            "mount /dev tmpfs",
            Some(Path::new("tmpfs")),
            dev,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
            Some("mode=755,size=65536k"),
        )?;
        for (name, major, minor) in DEVICES {
            let node = dev.join(name);
            let host = Path::new("/dev").join(name);
            if !user_ns {
                p.command(
                    "mknod",
                    &node,
                    Op::Mknod {
                        path: cpath(&node)?,
                        host: cpath(&host)?,
                        dev: libc::makedev(major, minor),
                        mode: 0o666,
                    },
                );
                continue;
            }
            p.command(
                "create device node",
                &node,
                Op::Touch {
                    path: cpath(&node)?,
                    beneath: beneath(Some(root), &node)?,
                },
            );
            p.command(
                "bind device read-only",
                &node,
                Op::BindReadOnly {
                    src: cpath(&host)?,
                    dst: cpath(&node)?,
                },
            );
        }
        let pts = dev.join("pts");
        Self::mkdir(p, &pts, Some(root))?;
        Self::devpts(p, &pts)?;
        for (target, link) in [
            ("pts/ptmx", "ptmx"),
            ("/proc/self/fd", "fd"),
            ("/proc/self/fd/0", "stdin"),
            ("/proc/self/fd/1", "stdout"),
            ("/proc/self/fd/2", "stderr"),
        ] {
            let l = dev.join(link);
            p.command(
                "symlink",
                &l,
                Op::Symlink {
                    target: cstr(target)?,
                    link: cpath(&l)?,
                },
            );
        }
        let shm = dev.join("shm");
        Self::mkdir(p, &shm, Some(root))?;
        Self::mount(
            p,
            "mount /dev/shm",
            Some(Path::new("shm")),
            &shm,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=1777,size=65536k"),
        )
    }
}

impl Namespace for MntNs {
    fn kind(&self) -> NamespaceKind {
        NamespaceKind::Mnt
    }

    fn check(&self, ctx: &Context) -> Result<()> {
        if let Some(root) = &self.rootfs {
            let md = std::fs::metadata(root).map_err(|e| Error::Spawn {
                step: "rootfs",
                path: root.clone(),
                source: e,
            })?;
            if !md.is_dir() {
                return Err(Error::Spawn {
                    step: "rootfs",
                    path: root.clone(),
                    source: std::io::Error::from_raw_os_error(libc::ENOTDIR),
                });
            }
            if !root.is_absolute() {
                return Err(Error::invalid(
                    "rootfs",
                    root.display().to_string(),
                    "give an absolute path",
                ));
            }
        }
        if let Some(root) = &self.rootfs {
            let own = [
                (self.proc, "/proc"),
                (self.dev, "/dev"),
                (self.sys, "/sys"),
                (self.tmp, "/tmp"),
            ];
            for (_, at) in own.iter().filter(|(made, _)| *made) {
                no_symlink_on_the_way(root, Path::new(at))?;
            }
            for m in &self.mounts {
                no_symlink_on_the_way(root, &m.target)?;
            }
        }
        for m in &self.mounts {
            if !m.target.is_absolute() {
                return Err(Error::invalid(
                    "mount target",
                    m.target.display().to_string(),
                    "give an absolute path (inside the rootfs)",
                ));
            }
            // Over the root the mount would hide nothing from a process whose root stays
            // the old one, and steps that look the path up again would find the old one.
            let at_root = m
                .target
                .components()
                .all(|c| !matches!(c, std::path::Component::Normal(_)))
                || (self.rootfs.is_none()
                    && std::fs::canonicalize(&m.target).is_ok_and(|t| t == Path::new("/")));
            if at_root {
                return Err(Error::invalid(
                    "mount target",
                    m.target.display().to_string(),
                    format!(
                        "{} is /: a mount over / would not become the box's root (give the tree as its rootfs instead)",
                        m.target.display()
                    ),
                ));
            }
            if let MountSource::Bind(src) = &m.source {
                if let Err(e) = std::fs::symlink_metadata(src) {
                    return Err(Error::Spawn {
                        step: "bind mount source",
                        path: src.clone(),
                        source: e,
                    });
                }
            }
        }
        if ctx.joined.contains(NamespaceKind::Mnt) {
            return Err(Error::invalid(
                "mnt",
                "new and joined",
                "a mount namespace is either new or joined",
            ));
        }
        Ok(())
    }

    fn child_steps(&self, ctx: &Context, p: &mut Program) -> Result<()> {
        // Nothing we mount may propagate back to the host.
        Self::mount(
            p,
            "make / private",
            None,
            Path::new("/"),
            None,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None,
        )?;
        if self.empty_root {
            // Stacked on `/`, the tmpfs is what `/..` leads to from the old root.
            Self::mount(
                p,
                "mount an empty root",
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
            p.command("pivot_root into it", root, op);
            return Ok(());
        }
        // A fresh /proc shows the pid namespace the command runs in: a new one, or one it
        // joined (a pod's shared pid namespace); only an inherited one keeps the host's.
        let pid_new =
            ctx.new.contains(NamespaceKind::Pid) || ctx.joined.contains(NamespaceKind::Pid);
        if let Some(root) = &self.rootfs {
            Self::mount(
                p,
                "bind rootfs onto itself",
                Some(root),
                root,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )?;
            let proc = self.inside(Path::new("/proc"));
            Self::mkdir(p, &proc, Some(root))?;
            if pid_new && self.proc {
                Self::fresh_proc(p, &proc)?;
            } else {
                Self::mount(
                    p,
                    "bind /proc",
                    Some(Path::new("/proc")),
                    &proc,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                )?;
            }
            if self.dev {
                let user_ns = ctx.new.contains(NamespaceKind::User)
                    || ctx.joined.contains(NamespaceKind::User);
                Self::dev_steps(p, &self.inside(Path::new("/dev")), root, user_ns)?;
                self.console_step(p, Some(root))?;
            }
            if self.sys {
                let sys = self.inside(Path::new("/sys"));
                Self::mkdir(p, &sys, Some(root))?;
                let ro = MsFlags::MS_RDONLY
                    | MsFlags::MS_NOSUID
                    | MsFlags::MS_NODEV
                    | MsFlags::MS_NOEXEC;
                if ctx.new.contains(NamespaceKind::Net) {
                    Self::mount(
                        p,
                        "mount sysfs",
                        Some(Path::new("sysfs")),
                        &sys,
                        Some("sysfs"),
                        ro,
                        None,
                    )?;
                } else {
                    Self::mount(
                        p,
                        "bind /sys",
                        Some(Path::new("/sys")),
                        &sys,
                        None,
                        MsFlags::MS_BIND | MsFlags::MS_REC,
                        None,
                    )?;
                    p.command(
                        "remount /sys read-only",
                        &sys,
                        Op::RemountReadOnly { dst: cpath(&sys)? },
                    );
                }
            }
            if self.tmp {
                let tmp = self.inside(Path::new("/tmp"));
                Self::mkdir(p, &tmp, Some(root))?;
                Self::mount(
                    p,
                    "mount /tmp",
                    Some(Path::new("tmpfs")),
                    &tmp,
                    Some("tmpfs"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                    Some("mode=1777"),
                )?;
            }
        } else {
            if ctx.read_only_host {
                // The box's root is the caller's: its copies of the caller's mounts go
                // read-only, all at once, before anything is mounted for it.
                let op = ChildOp::ReadOnly {
                    dst: cpath(Path::new("/"))?,
                    bind: false,
                };
                p.command("make the host's mounts read-only", "/", Op::Security(op));
                // The host's daemons keep their sockets in /run (systemd's, dbus's,
                // docker's), and a read-only mount does not stop a connect: root in the
                // box would talk to them as the host's root. It gets a /run of its own.
                if Path::new("/run").is_dir() {
                    Self::mount(
                        p,
                        "mount a /run of the box's own",
                        Some(Path::new("tmpfs")),
                        Path::new("/run"),
                        Some("tmpfs"),
                        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                        Some("mode=755"),
                    )?;
                }
            }
            if pid_new && self.proc {
                Self::fresh_proc(p, Path::new("/proc"))?;
            }
            // Taken while the caller's devpts is still there to take it from.
            self.console_step(p, None)?;
            // The host's devpts holds every session's terminal, which the device
            // allow-list lets a box open (and read what is typed there): a devpts of its
            // own instead, where /dev/ptmx (which opens the devpts at `pts` beside it)
            // makes its new terminals.
            if ctx.hardened && Path::new("/dev/pts").is_dir() {
                Self::devpts(p, Path::new("/dev/pts"))?;
            }
        }
        // A writable bind copies the read-only flag of the box's copy of its source: it
        // gets back the host's writability (of its top mount; what is mounted beneath
        // the source stays read-only).
        let rewrite = |src: &Path| {
            self.rootfs.is_none()
                && ctx.read_only_host
                && nix::sys::statvfs::statvfs(src)
                    .is_ok_and(|v| !v.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
        };
        for m in &self.mounts {
            let dst = self.inside(&m.target);
            match &m.source {
                MountSource::Bind(src) => {
                    if src.is_dir() {
                        Self::mkdir(p, &dst, self.rootfs.as_deref())?;
                    } else {
                        let touch = Op::Touch {
                            path: cpath(&dst)?,
                            beneath: beneath(self.rootfs.as_deref(), &dst)?,
                        };
                        p.command("create mount point", &dst, touch);
                    }
                    if m.read_only {
                        p.command(
                            "bind mount read-only",
                            &dst,
                            Op::BindReadOnly {
                                src: cpath(src)?,
                                dst: cpath(&dst)?,
                            },
                        );
                    } else {
                        Self::mount(
                            p,
                            "bind mount",
                            Some(src),
                            &dst,
                            None,
                            MsFlags::MS_BIND | MsFlags::MS_REC,
                            None,
                        )?;
                        if rewrite(src) {
                            let op = ChildOp::Writable { dst: cpath(&dst)? };
                            p.command("make the bind writable", &dst, Op::Security(op));
                        }
                    }
                }
                MountSource::Tmpfs(opts) => {
                    Self::mkdir(p, &dst, self.rootfs.as_deref())?;
                    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
                    if m.read_only {
                        flags |= MsFlags::MS_RDONLY;
                    }
                    Self::mount(
                        p,
                        "mount tmpfs",
                        Some(Path::new("tmpfs")),
                        &dst,
                        Some("tmpfs"),
                        flags,
                        (!opts.is_empty()).then_some(opts.as_str()),
                    )?;
                }
            }
        }
        if let Some(root) = &self.rootfs {
            let step = if self.no_pivot {
                "move rootfs onto / and chroot"
            } else {
                "pivot_root"
            };
            p.command(
                step,
                root,
                Op::PivotRoot {
                    root: cpath(root)?,
                    pivot: !self.no_pivot,
                },
            );
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// plans

/// What to do about one kind.
#[derive(Debug, Default)]
pub enum Slot<T> {
    /// Stay in the caller's namespace.
    #[default]
    Inherit,
    /// Create a new one with these settings.
    New(T),
    /// Join an existing one.
    Join(Joinable),
}

impl<T> Slot<T> {
    /// The settings of a new namespace, created with defaults when the slot is not `New`.
    pub fn new_mut(&mut self) -> &mut T
    where
        T: Default,
    {
        if !matches!(self, Slot::New(_)) {
            *self = Slot::New(T::default());
        }
        match self {
            Slot::New(t) => t,
            _ => unreachable!("just set to New"),
        }
    }
}

/// A namespace to join: one kind through its namespace file, or several kinds at once
/// through a pidfd (`setns(pidfd, flags)`, Linux 5.8).
#[derive(Clone, Debug)]
pub enum Joinable {
    /// An open namespace file.
    Ns(Arc<NsHandle>),
    /// The namespaces of the process behind this pidfd.
    Pidfd(Arc<OwnedFd>),
}

/// Per kind: new (with settings), joined or inherited.
#[derive(Debug, Default)]
pub struct NamespacePlan {
    /// Mount namespace.
    pub mnt: Slot<MntNs>,
    /// UTS namespace.
    pub uts: Slot<UtsNs>,
    /// IPC namespace.
    pub ipc: Slot<IpcNs>,
    /// Network namespace.
    pub net: Slot<NetNs>,
    /// Pid namespace.
    pub pid: Slot<PidNs>,
    /// User namespace.
    pub user: Slot<UserNs>,
    /// Cgroup namespace.
    pub cgroup: Slot<CgroupNs>,
    /// Time namespace.
    pub time: Slot<TimeNs>,
}

impl NamespacePlan {
    /// Everything inherited: a plain process.
    pub fn none() -> NamespacePlan {
        NamespacePlan::default()
    }

    /// New namespaces of every kind in `kinds`, with default settings.
    pub fn new_kinds(kinds: NamespaceSet) -> NamespacePlan {
        let mut plan = NamespacePlan::default();
        for k in kinds.iter() {
            plan.set_new(k);
        }
        plan
    }

    /// What a container gets: new mnt, pid, net, ipc, uts and cgroup namespaces.
    pub fn container() -> NamespacePlan {
        Self::new_kinds(NamespaceSet::CONTAINER)
    }

    /// Makes `kind` new with default settings (keeping settings already given).
    pub fn set_new(&mut self, kind: NamespaceKind) {
        match kind {
            NamespaceKind::Mnt => drop(self.mnt.new_mut()),
            NamespaceKind::Uts => drop(self.uts.new_mut()),
            NamespaceKind::Ipc => drop(self.ipc.new_mut()),
            NamespaceKind::Net => drop(self.net.new_mut()),
            NamespaceKind::Pid => drop(self.pid.new_mut()),
            NamespaceKind::User => drop(self.user.new_mut()),
            NamespaceKind::Cgroup => drop(self.cgroup.new_mut()),
            NamespaceKind::Time => drop(self.time.new_mut()),
        }
    }

    /// Joins `handle`'s namespace in its kind's slot.
    pub fn join(&mut self, handle: NsHandle) {
        let j = Joinable::Ns(Arc::new(handle));
        self.set_join(j.clone(), NamespaceSet::from_iter([self.kind_of(&j)]));
    }

    /// Joins the namespaces of `kinds` of the process behind `pidfd`.
    pub fn join_process(&mut self, pidfd: OwnedFd, kinds: NamespaceSet) {
        self.set_join(Joinable::Pidfd(Arc::new(pidfd)), kinds);
    }

    fn kind_of(&self, j: &Joinable) -> NamespaceKind {
        match j {
            Joinable::Ns(h) => h.kind(),
            Joinable::Pidfd(_) => NamespaceKind::Mnt,
        }
    }

    fn set_join(&mut self, j: Joinable, kinds: NamespaceSet) {
        for k in kinds.iter() {
            let j = j.clone();
            match k {
                NamespaceKind::Mnt => self.mnt = Slot::Join(j),
                NamespaceKind::Uts => self.uts = Slot::Join(j),
                NamespaceKind::Ipc => self.ipc = Slot::Join(j),
                NamespaceKind::Net => self.net = Slot::Join(j),
                NamespaceKind::Pid => self.pid = Slot::Join(j),
                NamespaceKind::User => self.user = Slot::Join(j),
                NamespaceKind::Cgroup => self.cgroup = Slot::Join(j),
                NamespaceKind::Time => self.time = Slot::Join(j),
            }
        }
    }

    /// The kinds created anew.
    pub fn new_set(&self) -> NamespaceSet {
        self.slots()
            .filter(|(_, s)| matches!(s, SlotRef::New(_)))
            .map(|(k, _)| k)
            .collect()
    }

    /// The kinds joined.
    pub fn joined_set(&self) -> NamespaceSet {
        self.slots()
            .filter(|(_, s)| matches!(s, SlotRef::Join(_)))
            .map(|(k, _)| k)
            .collect()
    }

    /// The new namespaces' settings, in the order their child steps run.
    pub fn new_namespaces(&self) -> Vec<&dyn Namespace> {
        let order = [
            NamespaceKind::User,
            NamespaceKind::Cgroup,
            NamespaceKind::Time,
            NamespaceKind::Uts,
            NamespaceKind::Ipc,
            NamespaceKind::Net,
            NamespaceKind::Pid,
            NamespaceKind::Mnt,
        ];
        let by_kind: BTreeMap<NamespaceKind, &dyn Namespace> = self
            .slots()
            .filter_map(|(k, s)| {
                if let SlotRef::New(n) = s {
                    Some((k, n))
                } else {
                    None
                }
            })
            .collect();
        order
            .iter()
            .filter_map(|k| by_kind.get(k).copied())
            .collect()
    }

    /// The joined namespaces, in join order ([`NamespaceKind::ALL`]: user first).
    pub fn joins(&self) -> Vec<(NamespaceKind, &Joinable)> {
        self.slots()
            .filter_map(|(k, s)| {
                if let SlotRef::Join(j) = s {
                    Some((k, j))
                } else {
                    None
                }
            })
            .collect()
    }

    /// The user namespace settings, when new.
    pub fn user_new(&self) -> Option<&UserNs> {
        if let Slot::New(u) = &self.user {
            Some(u)
        } else {
            None
        }
    }

    /// The time namespace settings, when new.
    pub fn time_new(&self) -> Option<&TimeNs> {
        if let Slot::New(t) = &self.time {
            Some(t)
        } else {
            None
        }
    }

    fn slots(&self) -> impl Iterator<Item = (NamespaceKind, SlotRef<'_>)> {
        fn r<T: Namespace>(s: &Slot<T>) -> SlotRef<'_> {
            match s {
                Slot::Inherit => SlotRef::Inherit,
                Slot::New(t) => SlotRef::New(t),
                Slot::Join(j) => SlotRef::Join(j),
            }
        }
        NamespaceKind::ALL.into_iter().map(move |k| {
            let s = match k {
                NamespaceKind::Mnt => r(&self.mnt),
                NamespaceKind::Uts => r(&self.uts),
                NamespaceKind::Ipc => r(&self.ipc),
                NamespaceKind::Net => r(&self.net),
                NamespaceKind::Pid => r(&self.pid),
                NamespaceKind::User => r(&self.user),
                NamespaceKind::Cgroup => r(&self.cgroup),
                NamespaceKind::Time => r(&self.time),
            };
            (k, s)
        })
    }
}

enum SlotRef<'a> {
    Inherit,
    New(&'a dyn Namespace),
    Join(&'a Joinable),
}

// ---------------------------------------------------------------------------------------
// handles and persistence

/// An open namespace file (`/proc/PID/ns/KIND` or a bind-mounted copy of one), which keeps
/// the namespace alive while open and can be joined with `setns(2)` or persisted.
#[derive(Debug)]
pub struct NsHandle {
    kind: NamespaceKind,
    fd: OwnedFd,
    inode: u64,
    path: PathBuf,
}

/// Refuses a file that is not a namespace of `kind` (`NS_GET_NSTYPE`), which `setns`
/// would only answer with EINVAL in the child.
fn check_ns_type(file: &File, kind: NamespaceKind, path: &Path) -> Result<()> {
    let what = match crate::spawn::sys::ns_type(file.as_fd()) {
        Ok(found) if found == kind.clone_flag() => return Ok(()),
        Ok(found) => match NamespaceKind::ALL.iter().find(|k| k.clone_flag() == found) {
            Some(k) => format!("a namespace of kind {k}, not {kind}"),
            None => format!("not a namespace of kind {kind}"),
        },
        Err(_) => "not a namespace file".to_string(),
    };
    Err(Error::invalid(
        "namespace file",
        path.display().to_string(),
        format!(
            "{} is {what} (give /proc/PID/ns/{} of a process in the one to join, or a bind-mounted copy of it)",
            path.display(),
            kind.proc_name()
        ),
    ))
}

impl NsHandle {
    /// Opens the namespace file at `path`, which must be of kind `kind`.
    pub fn open(kind: NamespaceKind, path: impl Into<PathBuf>) -> Result<NsHandle> {
        let path = path.into();
        let file = File::open(&path).map_err(|e| Error::io("open namespace", &path, e))?;
        check_ns_type(&file, kind, &path)?;
        let md = file
            .metadata()
            .map_err(|e| Error::io("stat namespace", &path, e))?;
        Ok(NsHandle {
            kind,
            fd: file.into(),
            inode: md.ino(),
            path,
        })
    }

    /// Opens `/proc/PID/ns/KIND` (for pid and time: `pid_for_children`/`time_for_children`
    /// when `for_children`, the namespace the process's next children go in).
    pub fn of_pid(pid: u32, kind: NamespaceKind, for_children: bool) -> Result<NsHandle> {
        Self::open(kind, Self::proc_file(pid, kind, for_children))
    }

    /// The inode of `pid`'s `kind` namespace (as [`NsHandle::of_pid`] would open it),
    /// with one `stat` and no fd: for a caller that only records which namespace it is.
    pub fn inode_of_pid(pid: u32, kind: NamespaceKind, for_children: bool) -> Result<u64> {
        use std::os::unix::fs::MetadataExt;
        let path = Self::proc_file(pid, kind, for_children);
        std::fs::metadata(&path)
            .map(|m| m.ino())
            .map_err(|e| Error::io("stat", path, e))
    }

    /// `/proc/PID/ns/KIND`, or the `*_for_children` file of pid and time.
    fn proc_file(pid: u32, kind: NamespaceKind, for_children: bool) -> String {
        let name = match (kind, for_children) {
            (NamespaceKind::Pid, true) => "pid_for_children",
            (NamespaceKind::Time, true) => "time_for_children",
            _ => kind.proc_name(),
        };
        format!("/proc/{pid}/ns/{name}")
    }

    /// The kind.
    pub fn kind(&self) -> NamespaceKind {
        self.kind
    }

    /// The namespace's inode number (what `ls -l /proc/PID/ns` shows in brackets).
    pub fn inode(&self) -> u64 {
        self.inode
    }

    /// The file it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `mount --bind /proc/self/fd/FD PATH`: keeps the namespace alive at `path` (an
    /// empty file is created) after its processes are gone, as `ip netns add` does under
    /// `/run/netns`. Release it with [`Persisted::release`].
    pub fn persist(&self, path: impl Into<PathBuf>) -> Result<Persisted> {
        let path = path.into();
        let created = !path.exists();
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("create namespace file", &path, e))?;
        let src = PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()));
        if let Err(e) = nix::mount::mount(
            Some(&src),
            &path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        ) {
            if created {
                let _ = std::fs::remove_file(&path);
            }
            return Err(Error::io("bind-mount namespace file", &path, e.into()));
        }
        Ok(Persisted {
            kind: self.kind,
            path,
            inode: self.inode,
        })
    }
}

impl AsFd for NsHandle {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A namespace kept alive by a bind mount of its file. Dropping it does *not* release it
/// (that is the point); call [`Persisted::release`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persisted {
    /// The kind.
    pub kind: NamespaceKind,
    /// Where it is bind-mounted.
    pub path: PathBuf,
    /// The namespace's inode.
    pub inode: u64,
}

impl Persisted {
    /// Opens the persisted namespace, e.g. to join it.
    pub fn open(&self) -> Result<NsHandle> {
        NsHandle::open(self.kind, &self.path)
    }

    /// `umount2(path, MNT_DETACH)` and removes the file.
    pub fn release(self) -> Result<()> {
        nix::mount::umount2(&self.path, MntFlags::MNT_DETACH)
            .map_err(|e| Error::io("unmount namespace file", &self.path, e.into()))?;
        std::fs::remove_file(&self.path)
            .map_err(|e| Error::io("remove namespace file", &self.path, e))
    }
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
mod tests {
    use super::*;

    #[test]
    fn plan_sets() {
        let plan = NamespacePlan::container();
        assert_eq!(plan.new_set(), NamespaceSet::CONTAINER);
        assert!(plan.joined_set().is_empty());
        let kinds: Vec<_> = plan.new_namespaces().iter().map(|n| n.kind()).collect();
        assert_eq!(kinds.last(), Some(&NamespaceKind::Mnt));
        assert_eq!(kinds.len(), 6);
    }

    #[test]
    fn a_handle_is_of_the_kind_it_was_opened_as() {
        for kind in NamespaceKind::ALL {
            let h = NsHandle::of_pid(std::process::id(), kind, false).unwrap();
            assert_eq!(h.kind(), kind);
        }
        // Another kind's file, or no namespace at all: named, before any setns.
        let err = NsHandle::open(NamespaceKind::Net, "/proc/self/ns/uts").unwrap_err();
        assert!(err.to_string().contains("kind uts, not net"), "{err}");
        let err = NsHandle::open(NamespaceKind::Pid, "/proc/self/status").unwrap_err();
        assert!(err.to_string().contains("not a namespace file"), "{err}");
    }

    #[test]
    fn map_and_offset_text() {
        let u = UserNs::range(100000, 65536);
        assert_eq!(UserNs::map_text(&u.uid_map), "0 100000 65536\n");
        let t = TimeNs {
            monotonic: ClockOffset::secs(-5),
            boottime: ClockOffset {
                secs: 86400,
                nanos: 7,
            },
        };
        assert_eq!(t.offsets_text(), "monotonic -5 0\nboottime 86400 7\n");
        let bad = TimeNs {
            monotonic: ClockOffset {
                secs: 0,
                nanos: 1_000_000_000,
            },
            ..TimeNs::default()
        };
        let ctx = Context {
            new: NamespaceSet::EMPTY,
            joined: NamespaceSet::EMPTY,
            privileged: true,
            read_only_host: false,
            hardened: false,
        };
        assert!(bad.check(&ctx).is_err());
    }
}
