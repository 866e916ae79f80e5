//! The child's program: every step it takes between clone and exec, prepared before the
//! clone as plain data (C strings, numbers, fds), so the child never allocates.
//!
//! Steps come in two lists: the *leader*'s (the cloned process: joining and unsharing
//! namespaces, which must precede the fork into the pid and time namespaces) and the
//! *command*'s (the process that execs: hostname, loopback, mounts, pivot_root, stdio,
//! cwd, ids). Without an init the leader is the command and runs both lists. Each step
//! has an id; a failing step reports `(id, errno)` and the parent names it from
//! `Program::label`, a [`SpawnStep`].
//!
//! [`SpawnStep`] is what each step is called, in the program and in an
//! [`Error::Spawn`](crate::Error::Spawn), so that callers match on a type rather than on
//! a message (the CLI's exit codes 126 and 127 come from [`SpawnStep::FindProgram`] and
//! [`SpawnStep::Execve`]). The caller's and the parent's steps have variants of their
//! own, and so do the child's, grouped where there are many of a kind: a mount plan's
//! steps are a [`MountStep`], the hardening's (capabilities, no_new_privs, seccomp,
//! rlimits, masked and read-only paths) a [`SecurityStep`]. `Display` gives the name
//! messages and the spawn's step listing (the golden files) show. A new kind of step is
//! an [`Op`] and its name here, and its system call in `sys/step.rs`.

use std::ffi::CString;
use std::fmt;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

/// One system call (or a short fixed sequence of them) the child makes.
#[derive(Debug)]
pub enum Op {
    /// `setns(fd, nstype)`.
    Setns {
        /// An fd on a namespace file or a pidfd.
        fd: RawFd,
        /// `CLONE_NEW*` flags (several with a pidfd).
        nstype: libc::c_int,
    },
    /// `unshare(flags)`.
    Unshare {
        /// `CLONE_NEW*` flags.
        flags: libc::c_int,
    },
    /// Tell the parent the time namespace is unshared; wait for it to write the offsets.
    TimeReady,
    /// `sethostname(name)`.
    Sethostname {
        /// The name.
        name: CString,
    },
    /// `setdomainname(name)`.
    Setdomainname {
        /// The name.
        name: CString,
    },
    /// `ioctl(SIOCGIFFLAGS/SIOCSIFFLAGS)` on `lo` to set `IFF_UP`.
    LoopbackUp,
    /// `mount(src, dst, fstype, flags, data)`.
    Mount {
        /// Source (or `NULL`).
        src: Option<CString>,
        /// Target.
        dst: CString,
        /// Filesystem type (or `NULL`).
        fstype: Option<CString>,
        /// `MS_*` flags.
        flags: libc::c_ulong,
        /// Options (or `NULL`).
        data: Option<CString>,
    },
    /// `statfs(dst)` then `mount(NULL, dst, NULL, MS_BIND|MS_REMOUNT|MS_RDONLY|<locked flags>)`.
    RemountReadOnly {
        /// Target.
        dst: CString,
    },
    /// A recursive bind of `src` at `dst` that is read-only before it is attached:
    /// `open_tree(OPEN_TREE_CLONE)`, `mount_setattr(MOUNT_ATTR_RDONLY)`, `move_mount`.
    /// (A bind and then a remount by path could remount something else, should the
    /// path change in between.) Before 5.12: the bind, then the remount.
    BindReadOnly {
        /// Source.
        src: CString,
        /// Target.
        dst: CString,
    },
    /// `mkdir(path, mode)`; an existing directory is fine. In a rootfs (`beneath`), made
    /// in its parent directory as opened beneath the rootfs without following a symlink.
    Mkdir {
        /// The directory.
        path: CString,
        /// Its mode.
        mode: libc::mode_t,
        /// Where it lies in a rootfs.
        beneath: Option<Beneath>,
    },
    /// `open(path, O_CREAT)` + `close`: an empty file to bind-mount onto. In a rootfs
    /// (`beneath`), made as [`Op::Mkdir`] is, and never through a symlink.
    Touch {
        /// The file.
        path: CString,
        /// Where it lies in a rootfs.
        beneath: Option<Beneath>,
    },
    /// `mknod(path, S_IFCHR | mode, dev)`, then `chmod(path, mode)` (the umask would
    /// narrow the mode). Where the device cgroup refuses the mknod (EPERM: a policy
    /// whose allow-list leaves the device out), `host` is bound there read-only instead,
    /// as it is in a user namespace, and the allow-list decides who opens it.
    Mknod {
        /// The node.
        path: CString,
        /// The host's node of the same device.
        host: CString,
        /// The character device's number.
        dev: libc::dev_t,
        /// Its permission bits.
        mode: libc::mode_t,
    },
    /// `symlink(target, link)`; an existing link is fine.
    Symlink {
        /// What it points to.
        target: CString,
        /// The link.
        link: CString,
    },
    /// `chdir(root); pivot_root(".", "."); umount2(".", MNT_DETACH); chdir("/")`, or where
    /// pivot_root fails with EINVAL (an initramfs root) or is not wanted:
    /// `mount(".", "/", MS_MOVE); chroot("."); chdir("/")`.
    PivotRoot {
        /// The new root (already a mount point).
        root: CString,
        /// Try `pivot_root` first.
        pivot: bool,
    },
    /// `chdir(path)`.
    Chdir {
        /// The directory.
        path: CString,
    },
    /// `dup2(fd, to)` (clearing close-on-exec when `fd == to`).
    Dup2 {
        /// The fd to copy.
        fd: RawFd,
        /// Where (0, 1 or 2).
        to: RawFd,
    },
    /// `setgroups(groups)` (raw system call: glibc's wrapper would signal the parent's
    /// threads, which do not exist in the child).
    Setgroups {
        /// The supplementary groups.
        groups: Vec<libc::gid_t>,
    },
    /// `setresgid(gid, gid, gid)` (raw system call).
    Setgid {
        /// The gid.
        gid: libc::gid_t,
    },
    /// `setresuid(uid, uid, uid)` (raw system call).
    Setuid {
        /// The uid.
        uid: libc::uid_t,
    },
    /// `prctl(PR_SET_PDEATHSIG, SIGKILL)`, then `poll(pidfd, POLLIN, 0)` on a pidfd of
    /// the spawner: readable means the spawner is already gone (it died before the
    /// signal was armed, so the signal will never come), and the step fails with ESRCH.
    DieWithParent {
        /// A pidfd of the spawning process.
        pidfd: RawFd,
    },
    /// `setsid()`: the command leaves the caller's session and process group (a
    /// `kill(0)` inside reaches only the box) and its controlling terminal.
    Setsid,
    /// In the command under an init that is not its pid namespace's first process:
    /// `prctl(PR_SET_PDEATHSIG, SIGKILL)`, so that killing the init (`Child::kill`)
    /// takes the command along; ESRCH if the init (its parent) was gone already.
    DieWithInit,
    /// `write(fd, "0")` on a cgroup's `cgroup.procs`, opened before the clone: the
    /// process moves itself into its cgroup (see `Cgroup::self_attach_files`).
    JoinCgroup {
        /// The open `cgroup.procs`.
        fd: RawFd,
    },
    /// A hardening step (capabilities, no_new_privs, seccomp, rlimits), see
    /// [`crate::security`].
    Security(crate::security::sys::ChildOp),
}

/// A step and its id.
#[derive(Debug)]
pub struct Step {
    /// Index into the labels.
    pub id: u32,
    /// What to do.
    pub op: Op,
}

/// The child's steps and what to call each in an error.
#[derive(Debug, Default)]
pub struct Program {
    pub(crate) leader: Vec<Step>,
    pub(crate) command: Vec<Step>,
    labels: Vec<(SpawnStep, PathBuf)>,
}

impl Program {
    fn label_of(&mut self, step: impl Into<SpawnStep>, path: impl AsRef<Path>) -> u32 {
        self.labels.push((step.into(), path.as_ref().to_path_buf()));
        (self.labels.len() - 1) as u32
    }

    /// Appends a step the leader takes (before the fork into new pid/time namespaces).
    pub(crate) fn leader(&mut self, step: impl Into<SpawnStep>, path: impl AsRef<Path>, op: Op) {
        let id = self.label_of(step, path);
        self.leader.push(Step { id, op });
    }

    /// Puts a step before every other step of the leader.
    pub(crate) fn leader_first(
        &mut self,
        step: impl Into<SpawnStep>,
        path: impl AsRef<Path>,
        op: Op,
    ) {
        let id = self.label_of(step, path);
        self.leader.insert(0, Step { id, op });
    }

    /// Appends a step the command's process takes before exec.
    pub(crate) fn command(&mut self, step: impl Into<SpawnStep>, path: impl AsRef<Path>, op: Op) {
        let id = self.label_of(step, path);
        self.command.push(Step { id, op });
    }

    /// Inserts a step the command takes before its `pivot_root` (appended when there is
    /// none): the hardening mounts lie beneath the new root and bind the host's
    /// `/dev/null`.
    pub(crate) fn command_before_pivot(
        &mut self,
        step: impl Into<SpawnStep>,
        path: impl AsRef<Path>,
        op: Op,
    ) {
        let id = self.label_of(step, path);
        let at = self
            .command
            .iter()
            .position(|s| matches!(s.op, Op::PivotRoot { .. }))
            .unwrap_or(self.command.len());
        self.command.insert(at, Step { id, op });
    }

    /// Reserves an id for a step taken outside the lists (exec, fork).
    pub(crate) fn reserve(&mut self, step: impl Into<SpawnStep>, path: impl AsRef<Path>) -> u32 {
        self.label_of(step, path)
    }

    /// The step and path of `id`; `None` for an id the program never gave out.
    pub(crate) fn label(&self, id: u32) -> Option<(SpawnStep, &Path)> {
        self.labels.get(id as usize).map(|(s, p)| (*s, p.as_path()))
    }

    /// The program as text, a line per step in the order the steps run: `leader` or
    /// `command`, the step's name and, after `: `, what it acts on; then `outside` for the
    /// steps named but taken outside the lists (`execve`, the init's fork of the
    /// command). For the spawn's trace log and the golden tests.
    pub(crate) fn listing(&self) -> String {
        let mut out = String::new();
        let mut line = |part: &str, id: u32| {
            let Some((step, path)) = self.label(id) else {
                return;
            };
            out.push_str(&format!("{part:<8}{step}"));
            if !path.as_os_str().is_empty() {
                out.push_str(&format!(": {}", path.display()));
            }
            out.push('\n');
        };
        for s in &self.leader {
            line("leader", s.id);
        }
        for s in &self.command {
            line("command", s.id);
        }
        let listed = |id: u32| self.leader.iter().chain(&self.command).any(|s| s.id == id);
        for id in (0..self.labels.len() as u32).filter(|&id| !listed(id)) {
            line("outside", id);
        }
        out
    }

    /// How many steps the leader and the command take.
    pub fn len(&self) -> (usize, usize) {
        (self.leader.len(), self.command.len())
    }

    /// Whether there is no step.
    pub fn is_empty(&self) -> bool {
        self.leader.is_empty() && self.command.is_empty()
    }
}

/// A path in a rootfs, split for a child that must not follow a symlink the rootfs may
/// hold by then (a box sharing it can swap a directory for one after the parent's check):
/// the rootfs, the parent directory relative to it (empty: the rootfs itself) and the
/// last component. The child opens the parent with `openat2(RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS)` and makes the entry there.
#[derive(Clone, Debug)]
pub struct Beneath {
    /// The rootfs (trusted as given).
    pub root: CString,
    /// The parent directory, relative to `root`.
    pub parent: CString,
    /// The name to make.
    pub name: CString,
}

/// A step of a spawn: before the clone, in the parent, or in the child between clone and
/// exec.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpawnStep {
    // Before the clone, in the caller.
    /// Finding the program on `PATH`, in the tree the command will see: `NotFound` when
    /// there is none, `PermissionDenied` when it is not executable.
    FindProgram,
    /// Checking the rootfs: it must be a directory.
    Rootfs,
    /// Checking a bind mount's source: it must exist.
    BindMountSource,

    // The parent.
    /// `clone3` itself.
    Clone3,
    /// Letting the waiting child go on (a byte on the go pipe).
    SignalChild,
    /// Reading the child's report.
    ReadFromChild,
    /// The child ended, or said something unexpected, before its command started.
    WaitForExec,

    // The child's leader: namespaces.
    /// Moving itself into a cgroup (v1's `tasks`, the hybrid host's unified twin).
    JoinCgroup,
    /// `prctl(PR_SET_PDEATHSIG)`: dying with the spawner (or with the init).
    DeathSignal,
    /// `setns` on a namespace file.
    Setns,
    /// `setns` on a pidfd, joining several of its namespaces at once.
    SetnsPidfd,
    /// `unshare` of the namespaces the clone could not make.
    Unshare,
    /// `unshare(CLONE_NEWCGROUP)`, once in the cgroup.
    UnshareCgroup,
    /// `unshare(CLONE_NEWTIME)`.
    UnshareTime,
    /// Waiting for the parent to write the time namespace's offsets.
    WaitForTimeOffsets,
    /// The init's fork of the command (into the new pid or time namespace).
    ForkCommand,

    // The command's process.
    /// `sethostname`.
    Sethostname,
    /// `setdomainname`.
    Setdomainname,
    /// Bringing the loopback interface up.
    LoopbackUp,
    /// A step of the mount plan.
    Mount(MountStep),
    /// A hardening step.
    Security(SecurityStep),
    /// `dup2` of a stdio fd.
    Dup2,
    /// `setsid`.
    Setsid,
    /// `chdir` to the working directory.
    Chdir,
    /// `setgroups`.
    Setgroups,
    /// `setresgid`.
    Setgid,
    /// `setresuid`.
    Setuid,
    /// `execve` of the program: `NotFound`, `ENOEXEC`, `EACCES`… mean it could not be
    /// executed.
    Execve,
}

/// A step of a mount plan ([`MntNs`](crate::namespace::MntNs)), in the command's process.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MountStep {
    /// `MS_REC|MS_PRIVATE` on `/`, before anything is mounted.
    MakePrivate,
    /// The empty read-only tmpfs of `MntNs::Empty`.
    EmptyRoot,
    /// `pivot_root` into the empty root.
    PivotIntoEmptyRoot,
    /// The rootfs bound onto itself, so that it is a mount point.
    BindRootfs,
    /// The rootfs's `/tmp`.
    Tmp,
    /// A bind of the caller's `/proc` (the pid namespace is the caller's).
    BindProc,
    /// A fresh `/proc`.
    Proc,
    /// A fresh sysfs.
    Sysfs,
    /// A bind of the caller's `/sys`.
    BindSys,
    /// That bind made read-only.
    RemountSysReadOnly,
    /// The tmpfs at the rootfs's `/dev`.
    DevTmpfs,
    /// `/dev/shm`.
    DevShm,
    /// An empty file for a device node to be bound on.
    DeviceNode,
    /// The host's device node bound read-only.
    BindDevice,
    /// `mknod` of a device node.
    Mknod,
    /// A symlink in `/dev`.
    Symlink,
    /// A devpts of the box's own.
    Devpts,
    /// An empty file to mount on.
    MountPoint,
    /// The caller's terminal bound at `/dev/console`.
    Console,
    /// A directory to mount on.
    Mkdir,
    /// A `--tmpfs` mount.
    Tmpfs,
    /// A bind mount.
    Bind,
    /// A read-only bind mount.
    BindReadOnly,
    /// A tmpfs at `/run` of the box's own.
    Run,
    /// `pivot_root` into the rootfs.
    PivotRoot,
    /// `MS_MOVE` of the rootfs onto `/` and `chroot` (an initramfs root, or no pivot).
    MoveRoot,
}

/// A hardening step ([`SecurityPolicy`](crate::security::SecurityPolicy)), in the
/// command's process.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SecurityStep {
    /// Dropping capabilities from the bounding set.
    DropBounding,
    /// `PR_SET_KEEPCAPS` across the uid change.
    KeepCaps,
    /// `capset`.
    Capset,
    /// `PR_SET_NO_NEW_PRIVS`.
    NoNewPrivs,
    /// Installing the seccomp filter.
    Seccomp,
    /// `setrlimit`.
    Setrlimit,
    /// The masked paths.
    MaskPaths,
    /// A read-only path bound onto itself read-only.
    BindReadOnly,
    /// A read-only path's mount made read-only.
    ReadOnly,
    /// The copies of the caller's mounts made read-only (a hardened box without a rootfs).
    HostReadOnly,
    /// A bind given its source's writability back.
    Writable,
}

impl SpawnStep {
    /// The step's name, as messages show it.
    pub fn name(self) -> &'static str {
        match self {
            SpawnStep::FindProgram => "find program",
            SpawnStep::Rootfs => "rootfs",
            SpawnStep::BindMountSource => "bind mount source",
            SpawnStep::Clone3 => "clone3",
            SpawnStep::SignalChild => "signal the child",
            SpawnStep::ReadFromChild => "read from the child",
            SpawnStep::WaitForExec => "wait for exec",
            SpawnStep::JoinCgroup => "join the cgroup",
            SpawnStep::DeathSignal => "prctl PR_SET_PDEATHSIG",
            SpawnStep::Setns => "setns",
            SpawnStep::SetnsPidfd => "setns pidfd",
            SpawnStep::Unshare => "unshare",
            SpawnStep::UnshareCgroup => "unshare cgroup",
            SpawnStep::UnshareTime => "unshare time",
            SpawnStep::WaitForTimeOffsets => "wait for time offsets",
            SpawnStep::ForkCommand => "fork the command from init",
            SpawnStep::Sethostname => "sethostname",
            SpawnStep::Setdomainname => "setdomainname",
            SpawnStep::LoopbackUp => "bring lo up",
            SpawnStep::Mount(m) => m.name(),
            SpawnStep::Security(s) => s.name(),
            SpawnStep::Dup2 => "dup2",
            SpawnStep::Setsid => "setsid",
            SpawnStep::Chdir => "chdir",
            SpawnStep::Setgroups => "setgroups",
            SpawnStep::Setgid => "setgid",
            SpawnStep::Setuid => "setuid",
            SpawnStep::Execve => "execve",
        }
    }
}

impl MountStep {
    /// The step's name, as messages show it.
    pub fn name(self) -> &'static str {
        match self {
            MountStep::MakePrivate => "make / private",
            MountStep::EmptyRoot => "mount an empty root",
            MountStep::PivotIntoEmptyRoot => "pivot_root into it",
            MountStep::BindRootfs => "bind rootfs onto itself",
            MountStep::Tmp => "mount /tmp",
            MountStep::BindProc => "bind /proc",
            MountStep::Proc => "mount proc",
            MountStep::Sysfs => "mount sysfs",
            MountStep::BindSys => "bind /sys",
            MountStep::RemountSysReadOnly => "remount /sys read-only",
            MountStep::DevTmpfs => "mount /dev tmpfs",
            MountStep::DevShm => "mount /dev/shm",
            MountStep::DeviceNode => "create device node",
            MountStep::BindDevice => "bind device read-only",
            MountStep::Mknod => "mknod",
            MountStep::Symlink => "symlink",
            MountStep::Devpts => "mount a devpts of the box's own",
            MountStep::MountPoint => "create mount point",
            MountStep::Console => "bind the terminal at /dev/console",
            MountStep::Mkdir => "mkdir",
            MountStep::Tmpfs => "mount tmpfs",
            MountStep::Bind => "bind mount",
            MountStep::BindReadOnly => "bind mount read-only",
            MountStep::Run => "mount a /run of the box's own",
            MountStep::PivotRoot => "pivot_root",
            MountStep::MoveRoot => "move rootfs onto / and chroot",
        }
    }
}

impl SecurityStep {
    /// The step's name, as messages show it.
    pub fn name(self) -> &'static str {
        match self {
            SecurityStep::DropBounding => "drop bounding set",
            SecurityStep::KeepCaps => "keep capabilities",
            SecurityStep::Capset => "capset",
            SecurityStep::NoNewPrivs => "no_new_privs",
            SecurityStep::Seccomp => "seccomp",
            SecurityStep::Setrlimit => "setrlimit",
            SecurityStep::MaskPaths => "mask with /dev/null or an empty tmpfs",
            SecurityStep::BindReadOnly => "bind read-only",
            SecurityStep::ReadOnly => "make read-only",
            SecurityStep::HostReadOnly => "make the host's mounts read-only",
            SecurityStep::Writable => "make the bind writable",
        }
    }
}

impl From<MountStep> for SpawnStep {
    fn from(m: MountStep) -> Self {
        SpawnStep::Mount(m)
    }
}

impl From<SecurityStep> for SpawnStep {
    fn from(s: SecurityStep) -> Self {
        SpawnStep::Security(s)
    }
}

impl fmt::Display for SpawnStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for MountStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for SecurityStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names people and scripts see in messages stay as they were when the step was
    /// a string; the child's steps are pinned by the golden listings.
    #[test]
    fn the_names_in_messages() {
        for (step, name) in [
            (SpawnStep::FindProgram, "find program"),
            (SpawnStep::Execve, "execve"),
            (SpawnStep::Clone3, "clone3"),
            (SpawnStep::WaitForExec, "wait for exec"),
            (SpawnStep::Rootfs, "rootfs"),
            (SpawnStep::Mount(MountStep::PivotRoot), "pivot_root"),
            (SecurityStep::Seccomp.into(), "seccomp"),
        ] {
            assert_eq!(step.to_string(), name);
        }
    }
}
