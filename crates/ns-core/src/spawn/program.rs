//! The child's program: every step it takes between clone and exec, prepared before the
//! clone as plain data (C strings, numbers, fds), so the child never allocates.
//!
//! Steps come in two lists: the *leader*'s (the cloned process: joining and unsharing
//! namespaces, which must precede the fork into the pid and time namespaces) and the
//! *command*'s (the process that execs: hostname, loopback, mounts, pivot_root, stdio,
//! cwd, ids). Without an init the leader is the command and runs both lists. Each step
//! has an id; a failing step reports `(id, errno)` and the parent names it from
//! `Program::label`.

use std::ffi::CString;
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
    labels: Vec<(&'static str, PathBuf)>,
}

impl Program {
    fn label_of(&mut self, step: &'static str, path: impl AsRef<Path>) -> u32 {
        self.labels.push((step, path.as_ref().to_path_buf()));
        (self.labels.len() - 1) as u32
    }

    /// Appends a step the leader takes (before the fork into new pid/time namespaces).
    pub(crate) fn leader(&mut self, step: &'static str, path: impl AsRef<Path>, op: Op) {
        let id = self.label_of(step, path);
        self.leader.push(Step { id, op });
    }

    /// Puts a step before every other step of the leader.
    pub(crate) fn leader_first(&mut self, step: &'static str, path: impl AsRef<Path>, op: Op) {
        let id = self.label_of(step, path);
        self.leader.insert(0, Step { id, op });
    }

    /// Appends a step the command's process takes before exec.
    pub(crate) fn command(&mut self, step: &'static str, path: impl AsRef<Path>, op: Op) {
        let id = self.label_of(step, path);
        self.command.push(Step { id, op });
    }

    /// Inserts a step the command takes before its `pivot_root` (appended when there is
    /// none): the hardening mounts lie beneath the new root and bind the host's
    /// `/dev/null`.
    pub(crate) fn command_before_pivot(
        &mut self,
        step: &'static str,
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
    pub(crate) fn reserve(&mut self, step: &'static str, path: impl AsRef<Path>) -> u32 {
        self.label_of(step, path)
    }

    /// The step name and path of `id`.
    pub(crate) fn label(&self, id: u32) -> (&'static str, PathBuf) {
        self.labels
            .get(id as usize)
            .cloned()
            .unwrap_or(("unknown step", PathBuf::new()))
    }

    /// The program as text, a line per step in the order the steps run: `leader` or
    /// `command`, the step's name and, after `: `, what it acts on; then `outside` for the
    /// steps named but taken outside the lists (`execve`, the init's fork of the
    /// command). For the spawn's trace log and the golden tests.
    pub(crate) fn listing(&self) -> String {
        let mut out = String::new();
        let mut line = |part: &str, id: u32| {
            let (step, path) = self.label(id);
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
