//! Spawning a process into namespaces and a cgroup, in the spirit of
//! `std::process::Command`.
//!
//! [`Command`] collects the program, arguments, environment, stdio, ids, a
//! [`NamespacePlan`] and a cgroup; [`Command::spawn`] returns a [`Child`] with the host
//! pid, a pidfd, `wait`/`wait_async`, `signal`, `stats`, its cgroup and its namespaces.
//!
//! The flow of a spawn:
//! 1. Check the plan, resolve the program against `PATH` (inside the rootfs when there
//!    is one), create the cgroup, and record every step the child takes into a
//!    [`program::Program`] of ready-made C strings.
//! 2. `clone3(CLONE_PIDFD | CLONE_NEW…)`, into the cgroup with `CLONE_INTO_CGROUP` where
//!    the backend offers an fd (v2); otherwise the child's first step is to write `0` to
//!    the cgroup's `cgroup.procs` files opened for it before the clone, so the command
//!    never runs a single instruction outside its cgroup.
//! 3. The parent writes `uid_map`/`gid_map` and time offsets while the child waits.
//! 4. The child joins and unshares what remains, and, when a pid or time namespace is new
//!    or joined, forks the command from a tiny init (pid 1 of a new pid namespace) that
//!    forwards signals, reaps zombies and reports the command's exact status.
//! 5. The command's process mounts, pivots, sets its ids and stdio, and execs. A failure
//!    anywhere comes back over a close-on-exec pipe as `(step, errno)` and becomes
//!    [`Error::Spawn`]; then the child is killed and reaped and a cgroup the spawn
//!    created is destroyed, so nothing is left.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

pub mod program;
pub(crate) mod sys;

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::namespace::{self, Context, Joinable, NamespacePlan, NsHandle, Persisted, Slot};
use crate::security::{self, SecurityPolicy};
use crate::{
    Backend, Cgroup, Error, NamespaceKind, NamespaceSet, Parent, Resources, Result, Stats,
};
use program::{Op, Program};
use sys::Record;

/// How a process ended: exactly one of exit code or fatal signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExitStatus {
    /// It called `exit(code)`.
    Exited(i32),
    /// It was killed by this signal.
    Signaled(i32),
}

impl ExitStatus {
    /// From a raw `wait(2)` status.
    pub fn from_raw(status: i32) -> ExitStatus {
        if libc::WIFEXITED(status) {
            ExitStatus::Exited(libc::WEXITSTATUS(status))
        } else {
            ExitStatus::Signaled(libc::WTERMSIG(status))
        }
    }

    /// Exited with code 0.
    pub fn success(self) -> bool {
        self == ExitStatus::Exited(0)
    }

    /// The exit code, if it exited.
    pub fn code(self) -> Option<i32> {
        match self {
            ExitStatus::Exited(c) => Some(c),
            ExitStatus::Signaled(_) => None,
        }
    }

    /// The signal, if it was killed by one.
    pub fn signal(self) -> Option<i32> {
        match self {
            ExitStatus::Signaled(s) => Some(s),
            ExitStatus::Exited(_) => None,
        }
    }
}

/// Where a standard stream of the child goes.
#[derive(Debug, Default)]
pub enum Stdio {
    /// The parent's.
    #[default]
    Inherit,
    /// `/dev/null`.
    Null,
    /// A pipe; the parent's end is in [`Child::stdin`] / `stdout` / `stderr`.
    Piped,
    /// This fd (duplicated at each spawn).
    Fd(OwnedFd),
}

/// The cgroup a spawned process is placed in.
// `Create` holds the `Resources` by value, as callers build it; a spec is made once per
// spawn, so its size does not matter, and boxing would change the public API.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum CgroupSpec {
    /// Create `parent/name` with `resources` through `backend`; destroyed again if the
    /// spawn fails.
    Create {
        /// The backend.
        backend: Arc<dyn Backend>,
        /// Where.
        parent: Parent,
        /// Its name.
        name: String,
        /// Its limits.
        resources: Resources,
    },
    /// An existing cgroup; left in place if the spawn fails.
    Existing(Arc<dyn Cgroup>),
}

#[derive(Debug, Clone)]
enum Env {
    Inherit(BTreeMap<OsString, Option<OsString>>),
    Clear(BTreeMap<OsString, OsString>),
}

/// A process to spawn into namespaces and a cgroup.
#[derive(Debug)]
pub struct Command {
    program: OsString,
    args: Vec<OsString>,
    env: Env,
    cwd: Option<PathBuf>,
    stdin: Stdio,
    stdout: Stdio,
    stderr: Stdio,
    uid: Option<u32>,
    gid: Option<u32>,
    groups: Option<Vec<u32>>,
    plan: NamespacePlan,
    cgroup: Option<CgroupSpec>,
    persist: Vec<(NamespaceKind, PathBuf)>,
    security: Option<SecurityPolicy>,
    die_with_parent: bool,
    new_session: bool,
    /// [`Command::hold`]: no program.
    hold: bool,
}

impl Command {
    /// A command running `program` (looked up in `PATH` when it has no `/`), with no new
    /// namespace, inheriting environment and stdio.
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env: Env::Inherit(BTreeMap::new()),
            cwd: None,
            stdin: Stdio::Inherit,
            stdout: Stdio::Inherit,
            stderr: Stdio::Inherit,
            uid: None,
            gid: None,
            groups: None,
            plan: NamespacePlan::none(),
            cgroup: None,
            persist: Vec::new(),
            security: None,
            die_with_parent: false,
            new_session: false,
            hold: false,
        }
    }

    /// No program: a process that takes every step of a command (namespaces, ids,
    /// hardening) and then, instead of `execve`, holds on — not dumpable, without an fd,
    /// waiting for a signal — until it is killed. With an init (a new pid namespace)
    /// the init itself takes the steps and holds, as the namespace's first process,
    /// which no process inside can signal. It keeps namespaces alive (a pod's pid
    /// namespace) without a program of the host's, and nothing that shares a namespace
    /// with it can trace it or follow its `/proc/PID/root` out.
    pub fn hold() -> Command {
        Command {
            hold: true,
            ..Command::new("")
        }
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Command {
        let (k, v) = (key.as_ref().to_owned(), value.as_ref().to_owned());
        match &mut self.env {
            Env::Inherit(m) => drop(m.insert(k, Some(v))),
            Env::Clear(m) => drop(m.insert(k, v)),
        }
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        match &mut self.env {
            Env::Inherit(m) => drop(m.insert(key.as_ref().to_owned(), None)),
            Env::Clear(m) => drop(m.remove(key.as_ref())),
        }
        self
    }

    /// Starts from an empty environment instead of the parent's.
    pub fn env_clear(&mut self) -> &mut Command {
        self.env = Env::Clear(BTreeMap::new());
        self
    }

    /// The working directory (inside the rootfs when there is one).
    pub fn current_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Command {
        self.cwd = Some(dir.into());
        self
    }

    /// Standard input.
    pub fn stdin(&mut self, s: Stdio) -> &mut Command {
        self.stdin = s;
        self
    }

    /// Standard output.
    pub fn stdout(&mut self, s: Stdio) -> &mut Command {
        self.stdout = s;
        self
    }

    /// Standard error.
    pub fn stderr(&mut self, s: Stdio) -> &mut Command {
        self.stderr = s;
        self
    }

    /// The uid to run as (inside the user namespace when it is new; default 0 there).
    pub fn uid(&mut self, uid: u32) -> &mut Command {
        self.uid = Some(uid);
        self
    }

    /// The gid to run as.
    pub fn gid(&mut self, gid: u32) -> &mut Command {
        self.gid = Some(gid);
        self
    }

    /// The supplementary groups.
    pub fn groups(&mut self, groups: &[u32]) -> &mut Command {
        self.groups = Some(groups.to_vec());
        self
    }

    /// Replaces the namespace plan.
    pub fn namespaces(&mut self, plan: NamespacePlan) -> &mut Command {
        self.plan = plan;
        self
    }

    /// The namespace plan, to adjust one kind.
    pub fn plan_mut(&mut self) -> &mut NamespacePlan {
        &mut self.plan
    }

    /// Creates new namespaces of `kinds` (default settings, keeping settings given).
    pub fn new_namespaces(&mut self, kinds: NamespaceSet) -> &mut Command {
        for k in kinds.iter() {
            self.plan.set_new(k);
        }
        self
    }

    /// Joins the namespace behind `handle`.
    pub fn join(&mut self, handle: NsHandle) -> &mut Command {
        self.plan.join(handle);
        self
    }

    /// The host name in a new UTS namespace.
    pub fn hostname(&mut self, name: impl Into<String>) -> &mut Command {
        self.plan.uts.new_mut().hostname = Some(name.into());
        self
    }

    /// The domain name in a new UTS namespace.
    pub fn domainname(&mut self, name: impl Into<String>) -> &mut Command {
        self.plan.uts.new_mut().domainname = Some(name.into());
        self
    }

    /// The root filesystem (new mount namespace; `pivot_root`).
    pub fn rootfs(&mut self, dir: impl Into<PathBuf>) -> &mut Command {
        self.plan.mnt.new_mut().set_rootfs(dir);
        self
    }

    /// The caller's terminal (`/dev/pts/N`) bound at `/dev/console` (new mount
    /// namespace; see [`namespace::CallersTree::console`]).
    pub fn console(&mut self, tty: impl Into<PathBuf>) -> &mut Command {
        self.plan.mnt.new_mut().set_console(tty);
        self
    }

    /// An extra mount (new mount namespace).
    pub fn mount(&mut self, m: namespace::Mount) -> &mut Command {
        self.plan.mnt.new_mut().add_mount(m);
        self
    }

    /// Time offsets (new time namespace).
    pub fn time_offsets(
        &mut self,
        monotonic: namespace::ClockOffset,
        boottime: namespace::ClockOffset,
    ) -> &mut Command {
        let t = self.plan.time.new_mut();
        t.monotonic = monotonic;
        t.boottime = boottime;
        self
    }

    /// Uid and gid maps (new user namespace).
    pub fn user_namespace(&mut self, user: namespace::UserNs) -> &mut Command {
        self.plan.user = Slot::New(user);
        self
    }

    /// The cgroup to place the process in.
    pub fn cgroup(&mut self, spec: CgroupSpec) -> &mut Command {
        self.cgroup = Some(spec);
        self
    }

    /// Hardens the command with `policy` (see [`crate::security`]): capabilities,
    /// no_new_privs, seccomp, masked and read-only `/proc` paths (when the mount and pid
    /// namespaces are new), without a rootfs the caller's mounts read-only in the new
    /// mount namespace, rlimits, and the device allow-list in a cgroup this spawn
    /// creates (unless its resources name device rules). Without a policy nothing is
    /// hardened: `SecurityPolicy::default()` is docker's default, `privileged()` opts out.
    pub fn security(&mut self, policy: SecurityPolicy) -> &mut Command {
        self.security = Some(policy);
        self
    }

    /// The child is SIGKILLed when the spawning thread ends (`PR_SET_PDEATHSIG`), so a
    /// foreground box cannot outlive a killed `isol run`. With an init (new pid
    /// namespace) the init gets the signal, and with it every process of the namespace;
    /// without one the command does, and what it forked stays in the cgroup for the
    /// caller to destroy. The signal is armed first thing in the child, re-armed after
    /// every credential change (which clears it) and checked against a pidfd of the
    /// spawner, so a spawner that died before it was armed is noticed too.
    ///
    /// The kernel ties the signal to the *thread* that spawned: spawn from a thread that
    /// lives as long as the child should (isol's CLI spawns from its only thread).
    ///
    /// # References
    /// prctl(2) `PR_SET_PDEATHSIG`, pidfd_open(2).
    pub fn die_with_parent(&mut self) -> &mut Command {
        self.die_with_parent = true;
        self
    }

    /// The command starts a session of its own (`setsid`): out of the caller's process
    /// group, which a `kill(0)` inside would otherwise reach, and without the caller's
    /// controlling terminal, which `/dev/tty` would otherwise open.
    pub fn new_session(&mut self) -> &mut Command {
        self.new_session = true;
        self
    }

    /// The security policy, if one was given.
    pub fn security_policy(&self) -> Option<&SecurityPolicy> {
        self.security.as_ref()
    }

    /// The cgroup resources with the policy's device allow-list, unless they name device
    /// rules of their own.
    fn with_policy_devices<'a>(&self, r: &'a Resources) -> std::borrow::Cow<'a, Resources> {
        match &self.security {
            Some(p) if r.devices.is_empty() && !p.devices.is_empty() => {
                let mut r = r.clone();
                r.devices = p.devices.clone();
                std::borrow::Cow::Owned(r)
            }
            _ => std::borrow::Cow::Borrowed(r),
        }
    }

    /// After a successful spawn, bind-mount the child's `kind` namespace file at `path`
    /// (see [`NsHandle::persist`]); [`Child::persisted`] lists them.
    pub fn persist(&mut self, kind: NamespaceKind, path: impl Into<PathBuf>) -> &mut Command {
        self.persist.push((kind, path.into()));
        self
    }

    /// Spawns the process. On error nothing is left: no process, no cgroup the spawn
    /// created, no persisted namespace file.
    pub fn spawn(&mut self) -> Result<Child> {
        let plan = &self.plan;
        let new = plan.new_set();
        let joined = plan.joined_set();
        let privileged = nix::unistd::geteuid().is_root();
        let ctx = Context {
            new,
            joined,
            privileged,
            read_only_host: self.security.as_ref().is_some_and(|p| p.read_only_host),
            hardened: self.security.as_ref().is_some_and(|p| !p.privileged),
        };
        let namespaces = plan.new_namespaces();
        for ns in &namespaces {
            ns.check(&ctx)?;
        }
        // (uid_t)-1 is "leave it unchanged" to setresuid and setresgid: the command would
        // keep running as root.
        let ids = [("uid", self.uid), ("gid", self.gid)];
        let groups = self.groups.iter().flatten().map(|&g| ("group", Some(g)));
        if let Some((what, _)) = ids
            .into_iter()
            .chain(groups)
            .find(|(_, id)| *id == Some(u32::MAX))
        {
            return Err(Error::invalid(
                what,
                u32::MAX.to_string(),
                format!("{} is (uid_t)-1, which the kernel takes as \"leave the {what} unchanged\", so the command would keep isol's; give another number", u32::MAX),
            ));
        }
        let user_joined = joined.contains(NamespaceKind::User);
        if user_joined && new.contains(NamespaceKind::Pid) {
            return Err(Error::invalid("namespaces", "user joined, pid new", "a new pid namespace cannot be made inside a joined user namespace by isol; join the pid namespace too or keep the user namespace"));
        }
        let features = crate::KernelFeatures::running();
        let enters_time_ns =
            new.contains(NamespaceKind::Time) || joined.contains(NamespaceKind::Time);
        let init = new.contains(NamespaceKind::Pid)
            || joined.contains(NamespaceKind::Pid)
            || enters_time_ns;

        // --- the program --------------------------------------------------------------
        let mnt = if let Slot::New(m) = &plan.mnt {
            Some(m)
        } else {
            None
        };
        let env = self.envp();
        let joined_root = match &plan.mnt {
            Slot::Join(Joinable::Ns(h)) => proc_root_of(h.path()),
            _ => None,
        };
        let view = match &joined_root {
            Some(root) => View::rooted(root),
            None => View::new(mnt),
        };
        let exec_path = if self.hold {
            PathBuf::from("/")
        } else {
            resolve(&self.program, &view, &env)?
        };
        let mut prog = Program::default();
        let mut keep: Vec<OwnedFd> = Vec::new();
        // Armed first, re-armed after the leader's namespace changes (setns into a user
        // namespace changes credentials, which clears it) and after the command's id
        // changes.
        let parent_pidfd = if self.die_with_parent {
            Some(sys::pidfd_self().map_err(|e| Error::io("pidfd_open", "self", e))?)
        } else {
            None
        };
        let die_with_parent = parent_pidfd.as_ref().map(|fd| fd.as_raw_fd());
        if let Some(pidfd) = die_with_parent {
            prog.leader("prctl PR_SET_PDEATHSIG", "", Op::DieWithParent { pidfd });
        }
        let mut seen_pidfds: Vec<*const OwnedFd> = Vec::new();
        for (kind, j) in plan.joins() {
            match j {
                Joinable::Ns(h) => prog.leader(
                    "setns",
                    h.path(),
                    Op::Setns {
                        fd: h.as_fd().as_raw_fd(),
                        nstype: kind.clone_flag(),
                    },
                ),
                Joinable::Pidfd(fd) => {
                    let ptr = Arc::as_ptr(fd);
                    if seen_pidfds.contains(&ptr) {
                        continue;
                    }
                    seen_pidfds.push(ptr);
                    let kinds: NamespaceSet = plan
                        .joins()
                        .into_iter()
                        .filter(|(_, j)| matches!(j, Joinable::Pidfd(f) if Arc::as_ptr(f) == ptr))
                        .map(|(k, _)| k)
                        .collect();
                    if features.setns_pidfd {
                        prog.leader(
                            "setns pidfd",
                            kinds.to_string(),
                            Op::Setns {
                                fd: fd.as_raw_fd(),
                                nstype: kinds.clone_flags(),
                            },
                        );
                    } else {
                        let pid = pidfd_pid(fd.as_fd())?;
                        for k in kinds.iter() {
                            let h = NsHandle::of_pid(pid, k, false)?;
                            prog.leader(
                                "setns",
                                h.path(),
                                Op::Setns {
                                    fd: h.as_fd().as_raw_fd(),
                                    nstype: k.clone_flag(),
                                },
                            );
                            keep.push(
                                h.as_fd()
                                    .try_clone_to_owned()
                                    .map_err(|e| Error::io("dup", h.path(), e))?,
                            );
                        }
                    }
                }
            }
        }
        let by_clone = NamespaceSet::from_iter(
            new.iter()
                .filter(|k| !matches!(k, NamespaceKind::Time | NamespaceKind::Cgroup)),
        );
        let clone_flags = if user_joined {
            prog.leader(
                "unshare",
                by_clone.to_string(),
                Op::Unshare {
                    flags: by_clone.clone_flags(),
                },
            );
            0
        } else {
            by_clone.clone_flags()
        };
        if let Some(pidfd) = die_with_parent {
            prog.leader("prctl PR_SET_PDEATHSIG", "", Op::DieWithParent { pidfd });
        }
        for ns in &namespaces {
            ns.child_steps(&ctx, &mut prog)?;
        }
        // Hardening: prepared now; its mounts go before pivot_root, its other steps
        // around the id changes below.
        let hardening = match &self.security {
            Some(policy) => {
                let w = security::Where {
                    changes_uid: self.uid.is_some_and(|u| u != 0),
                    new_user_ns: new.contains(NamespaceKind::User),
                    own_mnt: mnt.is_some(),
                    callers_mnt: matches!(plan.mnt, Slot::Inherit),
                    rootfs: mnt.and_then(|m| m.rootfs()),
                    sys_is_kernels: mnt.is_some_and(|m| m.kernels_sys()),
                };
                let h = policy.plan(&w)?;
                security::record_mounts(&h.mounts, &mut prog)?;
                Some(h)
            }
            None => None,
        };

        // stdio
        let mut parent_ends: [Option<File>; 3] = [None, None, None];
        let mut child_ends: Vec<OwnedFd> = Vec::new();
        for (n, s) in [(0, &self.stdin), (1, &self.stdout), (2, &self.stderr)] {
            let child_fd: Option<OwnedFd> = match s {
                Stdio::Inherit => None,
                Stdio::Null => {
                    let f = std::fs::OpenOptions::new()
                        .read(n == 0)
                        .write(n != 0)
                        .open("/dev/null")
                        .map_err(|e| Error::io("open", "/dev/null", e))?;
                    Some(f.into())
                }
                Stdio::Piped => {
                    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                        .map_err(|e| Error::io("pipe2", "", e.into()))?;
                    let (mine, theirs) = if n == 0 { (w, r) } else { (r, w) };
                    parent_ends[n as usize] = Some(File::from(mine));
                    Some(theirs)
                }
                Stdio::Fd(fd) => Some(fd.try_clone().map_err(|e| Error::io("dup", "", e))?),
            };
            if let Some(fd) = child_fd {
                prog.command(
                    "dup2",
                    format!("fd {n}"),
                    Op::Dup2 {
                        fd: fd.as_raw_fd(),
                        to: n,
                    },
                );
                child_ends.push(fd);
            }
        }
        if self.new_session {
            prog.command("setsid", "", Op::Setsid);
        }
        if let Some(dir) = &self.cwd {
            prog.command(
                "chdir",
                dir,
                Op::Chdir {
                    path: namespace::cpath(dir)?,
                },
            );
        }
        let user_new = plan.user_new();
        let maps_root = |m: &[namespace::IdMap]| m.iter().any(|m| m.inside == 0);
        let gid = self
            .gid
            .or_else(|| user_new.filter(|u| maps_root(&u.gid_map)).map(|_| 0));
        let uid = self
            .uid
            .or_else(|| user_new.filter(|u| maps_root(&u.uid_map)).map(|_| 0));
        for op in hardening.iter().flat_map(|h| &h.before_ids) {
            prog.command(op.name(), op.detail(), Op::Security(op.clone()));
        }
        if let Some(groups) = &self.groups {
            prog.command(
                "setgroups",
                "",
                Op::Setgroups {
                    groups: groups.clone(),
                },
            );
        } else if self.uid.is_some() && privileged && user_new.is_none() {
            prog.command("setgroups", "", Op::Setgroups { groups: Vec::new() });
        }
        if let Some(gid) = gid {
            prog.command("setgid", gid.to_string(), Op::Setgid { gid });
        }
        if let Some(uid) = uid {
            prog.command("setuid", uid.to_string(), Op::Setuid { uid });
        }
        if let Some(pidfd) = die_with_parent {
            prog.command("prctl PR_SET_PDEATHSIG", "", Op::DieWithParent { pidfd });
        } else if init && !new.contains(NamespaceKind::Pid) && !self.hold {
            // The init's end ends a new pid namespace's every process; in any other,
            // the command must be told to follow it.
            prog.command("prctl PR_SET_PDEATHSIG", "", Op::DieWithInit);
        }
        for op in hardening.iter().flat_map(|h| &h.after_ids) {
            prog.command(op.name(), "", Op::Security(op.clone()));
        }
        let exec_id = prog.reserve("execve", &exec_path);
        let fork_id = prog.reserve("fork the command from init", "");

        // --- the cgroup -----------------------------------------------------------------
        let (cgroup, created): (Option<Arc<dyn Cgroup>>, bool) = match &self.cgroup {
            None => (None, false),
            Some(CgroupSpec::Existing(cg)) => (Some(cg.clone()), false),
            Some(CgroupSpec::Create {
                backend,
                parent,
                name,
                resources,
            }) => (
                Some(Arc::from(backend.create(
                    parent,
                    name,
                    &self.with_policy_devices(resources),
                )?)),
                true,
            ),
        };
        let mut guard = Guard {
            pidfd: None,
            cgroup: if created { cgroup.clone() } else { None },
        };
        // The child is cloned into the cgroup's cgroup2 directory where there is one
        // (v2, or a v1 cgroup's unified twin on a hybrid host): a parent moving a whole
        // process there waits for an RCU grace period on the threadgroup lock, up to
        // 13 ms on the development host. Every other hierarchy (v1) it joins itself,
        // first thing, before any namespace change: a single-threaded process moving
        // itself skips that lock (see `Cgroup::self_attach_files`).
        let into_fd = cgroup
            .as_ref()
            .and_then(|c| c.clone_into_fd())
            .filter(|_| features.clone_into_cgroup);
        if let Some(cg) = &cgroup {
            if created {
                tracing::debug!("created cgroup {}", cg.path());
            }
            let files = cg.self_attach_files(into_fd.is_some())?;
            for (f, dir) in files.iter().rev() {
                prog.leader_first("join the cgroup", dir, Op::JoinCgroup { fd: f.as_raw_fd() });
            }
            keep.extend(files.into_iter().map(|(f, _)| f));
        }

        // --- pipes, pointers, clone ---------------------------------------------------------
        let needs_go = user_new.is_some() || new.contains(NamespaceKind::Time);
        let (err_rd, err_wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| Error::io("pipe2", "", e.into()))?;
        let go = if needs_go {
            Some(
                nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                    .map_err(|e| Error::io("pipe2", "", e.into()))?,
            )
        } else {
            None
        };
        let mut close_first: Vec<RawFd> = vec![err_rd.as_raw_fd()];
        if let Some((_, w)) = &go {
            close_first.push(w.as_raw_fd());
        }
        close_first.extend(parent_ends.iter().flatten().map(|f| f.as_raw_fd()));
        let close_in_init: Vec<RawFd> = child_ends.iter().map(|f| f.as_raw_fd()).collect();
        let exec_c = namespace::cpath(&exec_path)?;
        let mut argv_c: Vec<CString> = Vec::with_capacity(self.args.len() + 1);
        argv_c.push(CString::new(self.program.as_bytes()).map_err(|_| {
            Error::invalid(
                "program",
                self.program.to_string_lossy(),
                "must not contain NUL",
            )
        })?);
        for a in &self.args {
            argv_c.push(CString::new(a.as_bytes()).map_err(|_| {
                Error::invalid("argument", a.to_string_lossy(), "must not contain NUL")
            })?);
        }
        let argv = sys::CStrArray::new(&argv_c);
        let envp = sys::CStrArray::new(&env);
        let prep = sys::Prepared {
            program: &prog,
            exec_path: &exec_c,
            argv: &argv,
            envp: &envp,
            exec_id,
            fork_id,
            go_rd: go.as_ref().map(|(r, _)| r.as_raw_fd()),
            err_wr: err_wr.as_raw_fd(),
            close_first: &close_first,
            close_in_init: &close_in_init,
            init,
            command_shares_memory: !enters_time_ns,
            hold: self.hold,
        };
        let (pid, pidfd) = sys::clone(clone_flags, into_fd, &prep).map_err(|e| Error::Spawn {
            step: "clone3",
            path: PathBuf::new(),
            source: e,
        })?;
        guard.pidfd = Some((pid, pidfd));
        let (leader_steps, command_steps) = prog.len();
        tracing::debug!(
            "cloned pid {pid}, new namespaces [{new}]; {leader_steps} steps there, {command_steps} before {:?}",
            self.program
        );
        drop(err_wr);
        drop(child_ends);
        drop(keep);
        drop(parent_pidfd);
        let go_wr = go.map(|(r, w)| {
            drop(r);
            File::from(w)
        });

        // --- the parent's part ------------------------------------------------------------------
        if let Some(u) = user_new {
            u.parent_setup(pid)?;
        }
        let mut go_wr = go_wr;
        let go = |go_wr: &mut Option<File>| -> Result<()> {
            if let Some(w) = go_wr.as_mut() {
                w.write_all(b"g").map_err(|e| Error::Spawn {
                    step: "signal the child",
                    path: PathBuf::new(),
                    source: e,
                })?;
            }
            Ok(())
        };
        go(&mut go_wr)?;
        let mut err_rd = File::from(err_rd);
        let failed = |rec: Record| -> Error {
            let (step, path) = prog.label(rec.id);
            Error::Spawn {
                step,
                path,
                source: io::Error::from_raw_os_error(rec.value),
            }
        };
        if let Some(t) = plan.time_new() {
            match read_record(&mut err_rd)? {
                Some(r) if r.tag == sys::TAG_TIME_READY => {
                    if t.needs_parent() {
                        t.parent_setup(pid)?;
                    }
                    go(&mut go_wr)?;
                }
                Some(r) if r.tag == sys::TAG_ERROR => return Err(failed(r)),
                other => return Err(died(other, cgroup.as_deref())),
            }
        }
        drop(go_wr);
        match read_record(&mut err_rd)? {
            Some(r) if r.tag == sys::TAG_ERROR => return Err(failed(r)),
            Some(r) if r.tag == sys::TAG_EXEC_OK && init => {}
            None if !init => {}
            other => return Err(died(other, cgroup.as_deref())),
        }
        let mut persisted: Vec<Persisted> = Vec::new();
        for (kind, path) in &self.persist {
            let p = NsHandle::of_pid(pid, *kind, true).and_then(|h| h.persist(path));
            match p {
                Ok(p) => persisted.push(p),
                Err(e) => {
                    for p in persisted {
                        let _ = p.release();
                    }
                    return Err(e);
                }
            }
        }
        let (pid, pidfd) = guard.pidfd.take().expect("set after clone");
        guard.cgroup = None;
        let [stdin, stdout, stderr] = parent_ends;
        Ok(Child {
            pid,
            pidfd,
            status_pipe: if init { Some(err_rd) } else { None },
            status: None,
            cgroup,
            persisted,
            new,
            stdin,
            stdout,
            stderr,
        })
    }

    fn envp(&self) -> Vec<CString> {
        let vars: BTreeMap<OsString, OsString> = match &self.env {
            Env::Clear(m) => m.clone(),
            Env::Inherit(over) => {
                let mut all: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
                for (k, v) in over {
                    match v {
                        Some(v) => drop(all.insert(k.clone(), v.clone())),
                        None => drop(all.remove(k)),
                    }
                }
                all
            }
        };
        vars.into_iter()
            .filter_map(|(k, v)| {
                let mut kv = k.into_vec();
                kv.push(b'=');
                kv.extend(v.into_vec());
                CString::new(kv).ok()
            })
            .collect()
    }
}

/// The child ended (or spoke out of turn) before its command started. When the OOM
/// killer ended it, the memory limit is too small to start anything, and the error
/// says so rather than leave it to the kernel log.
fn died(rec: Option<Record>, cgroup: Option<&dyn Cgroup>) -> Error {
    let oom = || {
        cgroup
            .and_then(|c| c.oom_kills().ok())
            .is_some_and(|n| n > 0)
    };
    let what = match rec {
        None if oom() => {
            "the OOM killer ended the box before its command started: its memory limit is too small"
                .to_string()
        }
        None => "the child exited before it could exec".to_string(),
        Some(r) => format!("unexpected message {} from the child", r.tag),
    };
    Error::Spawn {
        step: "wait for exec",
        path: PathBuf::new(),
        source: io::Error::other(what),
    }
}

fn read_record(f: &mut File) -> Result<Option<Record>> {
    let mut buf = [0u8; 16];
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Error::Spawn {
                    step: "read from the child",
                    path: PathBuf::new(),
                    source: e,
                })
            }
        }
    }
    Ok(if got == buf.len() {
        Some(Record::from_bytes(buf))
    } else {
        None
    })
}

/// Undoes a spawn that failed: kills and reaps the child, destroys the cgroup it created.
struct Guard {
    pidfd: Option<(u32, OwnedFd)>,
    cgroup: Option<Arc<dyn Cgroup>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some((_, fd)) = self.pidfd.take() {
            let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
            let _ = sys::wait_pidfd(fd.as_fd(), false);
        }
        if let Some(cg) = self.cgroup.take() {
            if let Err(e) = cg.destroy() {
                tracing::warn!("destroy cgroup {} after a failed spawn: {e}", cg.path());
            }
        }
    }
}

/// A spawned process.
#[derive(Debug)]
pub struct Child {
    pid: u32,
    pidfd: OwnedFd,
    status_pipe: Option<File>,
    status: Option<ExitStatus>,
    cgroup: Option<Arc<dyn Cgroup>>,
    persisted: Vec<Persisted>,
    new: NamespaceSet,
    /// The parent's end of the child's stdin, when [`Stdio::Piped`].
    pub stdin: Option<File>,
    /// The parent's end of the child's stdout, when [`Stdio::Piped`].
    pub stdout: Option<File>,
    /// The parent's end of the child's stderr, when [`Stdio::Piped`].
    pub stderr: Option<File>,
}

impl Child {
    /// The host pid of the process isol cloned: the init (pid 1 inside) when a pid or
    /// time namespace was new or joined, else the command itself.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its pidfd.
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// The cgroup it was placed in.
    pub fn cgroup(&self) -> Option<&dyn Cgroup> {
        self.cgroup.as_deref()
    }

    /// The kinds created anew for it.
    pub fn new_namespaces(&self) -> NamespaceSet {
        self.new
    }

    /// The namespace files persisted after the spawn.
    pub fn persisted(&self) -> &[Persisted] {
        &self.persisted
    }

    /// Opens the command's `kind` namespace (`/proc/PID/ns/KIND`; for pid and time the
    /// `*_for_children` file, which is where the init put the command).
    pub fn namespace(&self, kind: NamespaceKind) -> Result<NsHandle> {
        NsHandle::of_pid(self.pid, kind, true)
    }

    /// The inode of the command's `kind` namespace (the file [`Child::namespace`] opens),
    /// without opening it.
    pub fn namespace_inode(&self, kind: NamespaceKind) -> Result<u64> {
        NsHandle::inode_of_pid(self.pid, kind, true)
    }

    /// Opens all eight namespaces.
    pub fn namespaces(&self) -> Result<BTreeMap<NamespaceKind, NsHandle>> {
        NamespaceKind::ALL
            .iter()
            .map(|&k| Ok((k, self.namespace(k)?)))
            .collect()
    }

    /// `pidfd_send_signal(2)`: with an init, it forwards the signal to the command
    /// (SIGKILL and SIGSTOP act on the init itself, and so on the whole pid namespace).
    pub fn signal(&self, sig: i32) -> Result<()> {
        sys::pidfd_send_signal(self.pidfd.as_fd(), sig)
            .map_err(|e| Error::io("pidfd_send_signal", format!("/proc/{}", self.pid), e))
    }

    /// SIGKILL.
    pub fn kill(&self) -> Result<()> {
        self.signal(libc::SIGKILL)
    }

    /// The cgroup's usage.
    pub fn stats(&self) -> Result<Stats> {
        match &self.cgroup {
            Some(cg) => cg.stats(),
            None => Err(Error::Refused {
                what: "stats".into(),
                reason: "the process was spawned without a cgroup".into(),
            }),
        }
    }

    /// Waits for the command to end and reports exactly how.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        self.finish(false)
            .map(|s| s.expect("blocking wait returns a status"))
    }

    /// The status if the command has ended, without blocking.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        self.finish(true)
    }

    /// Waits without blocking a thread: the pidfd becomes readable when the process ends
    /// (needs a tokio runtime with IO enabled).
    pub async fn wait_async(&mut self) -> Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        let fd = self
            .pidfd
            .try_clone()
            .map_err(|e| Error::io("dup", "pidfd", e))?;
        let afd = sys::async_pidfd(fd).map_err(|e| Error::io("register pidfd", "pidfd", e))?;
        loop {
            let mut ready = afd
                .readable()
                .await
                .map_err(|e| Error::io("poll pidfd", "pidfd", e))?;
            if let Some(s) = self.finish(true)? {
                return Ok(s);
            }
            ready.clear_ready();
        }
    }

    fn finish(&mut self, nohang: bool) -> Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let Some(leader) = sys::wait_pidfd(self.pidfd.as_fd(), nohang)
            .map_err(|e| Error::io("waitid", format!("/proc/{}", self.pid), e))?
        else {
            return Ok(None);
        };
        let mut status = leader;
        if let Some(mut pipe) = self.status_pipe.take() {
            while let Some(r) = read_record(&mut pipe)? {
                if r.tag == sys::TAG_STATUS {
                    status = ExitStatus::from_raw(r.value);
                }
            }
        }
        self.status = Some(status);
        Ok(Some(status))
    }
}

/// The pid behind a pidfd (`Pid:` in `/proc/self/fdinfo/FD`).
fn pidfd_pid(fd: BorrowedFd<'_>) -> Result<u32> {
    let path = PathBuf::from(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()));
    let text = crate::parse::read(&path)?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("Pid:")
                .and_then(|v| v.trim().parse::<i64>().ok())
        })
        .filter(|p| *p > 0)
        .map(|p| p as u32)
        .ok_or_else(|| {
            Error::parse(
                &path,
                "no positive Pid: line (not a pidfd, or the process is gone)",
            )
        })
}

/// The file tree the command will see, judged before the clone: the rootfs (or the
/// host's `/`) with the planned mounts laid over it.
struct View<'a> {
    rootfs: Option<&'a Path>,
    /// Mount targets inside, with the host directory they show (`None`: an empty tmpfs),
    /// later mounts last.
    mounts: Vec<(&'a Path, Option<&'a Path>)>,
}

impl<'a> View<'a> {
    fn new(mnt: Option<&'a namespace::MntNs>) -> View<'a> {
        let Some(m) = mnt else {
            return View {
                rootfs: None,
                mounts: Vec::new(),
            };
        };
        let mounts = m
            .mounts()
            .iter()
            .map(|x| match &x.source {
                namespace::MountSource::Bind(src) => (x.target.as_path(), Some(src.as_path())),
                namespace::MountSource::Tmpfs(_) => (x.target.as_path(), None),
            })
            .collect();
        View {
            rootfs: m.rootfs(),
            mounts,
        }
    }

    /// A joined mount namespace's tree, seen through a process in it (`/proc/PID/root`).
    fn rooted(root: &'a Path) -> View<'a> {
        View {
            rootfs: Some(root),
            mounts: Vec::new(),
        }
    }

    /// Where the absolute `inside` path is on the host now; `None` inside an empty tmpfs.
    fn host_of(&self, inside: &Path) -> Option<PathBuf> {
        for (target, src) in self.mounts.iter().rev() {
            if let Ok(rest) = inside.strip_prefix(target) {
                return src.map(|s| {
                    if rest.as_os_str().is_empty() {
                        s.to_path_buf()
                    } else {
                        s.join(rest)
                    }
                });
            }
        }
        let rel = inside.strip_prefix("/").unwrap_or(inside);
        Some(match self.rootfs {
            Some(r) => r.join(rel),
            None => Path::new("/").join(rel),
        })
    }

    /// Follows symlinks inside the view (absolute ones restart at its root); the
    /// resolved inside path and the host file it is.
    fn resolve(&self, path: &Path) -> io::Result<(PathBuf, PathBuf)> {
        use std::path::Component;
        let mut todo: Vec<std::ffi::OsString> = Vec::new();
        let push_front = |todo: &mut Vec<std::ffi::OsString>, p: &Path| {
            let comps: Vec<_> = p
                .components()
                .filter_map(|c| match c {
                    Component::Normal(n) => Some(n.to_owned()),
                    Component::ParentDir => Some("..".into()),
                    _ => None,
                })
                .collect();
            for c in comps.into_iter().rev() {
                todo.push(c);
            }
        };
        push_front(&mut todo, path);
        let mut cur = PathBuf::from("/");
        let mut hops = 0;
        while let Some(c) = todo.pop() {
            if c == ".." {
                cur.pop();
                continue;
            }
            let next = cur.join(&c);
            let host = self
                .host_of(&next)
                .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
            let md = std::fs::symlink_metadata(&host)?;
            if md.file_type().is_symlink() {
                hops += 1;
                if hops > 40 {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = std::fs::read_link(&host)?;
                if target.is_absolute() {
                    cur = PathBuf::from("/");
                }
                push_front(&mut todo, &target);
            } else {
                cur = next;
            }
        }
        let host = self
            .host_of(&cur)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        Ok((cur, host))
    }

    /// `Ok(true)`: an executable file; `Ok(false)`: present, not executable; `Err`: absent.
    fn executable(&self, path: &Path) -> io::Result<bool> {
        let (_, host) = self.resolve(path)?;
        let md = std::fs::metadata(host)?;
        if md.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::EISDIR));
        }
        Ok(md.is_file() && md.permissions().mode() & 0o111 != 0)
    }
}

/// `/proc/PID/root` for a namespace file opened as `/proc/PID/ns/mnt`: where a command
/// joining it will find its files (the process's root is its mount namespace's, which a
/// box's pivot_root made its rootfs). `None` for any other file (a persisted one).
fn proc_root_of(ns_file: &Path) -> Option<PathBuf> {
    let pid = ns_file
        .strip_prefix("/proc")
        .ok()?
        .to_str()?
        .strip_suffix("/ns/mnt")?;
    pid.parse::<u32>().ok()?;
    Some(Path::new("/proc").join(pid).join("root"))
}

/// Finds `program` as execve will see it: a path with a `/` as is, else the first
/// executable in `PATH` (the command's, else the usual default), all looked up in the
/// tree the command will see (rootfs and binds, symlinks followed inside it). Missing is
/// `NotFound`, present but not executable `PermissionDenied`, both as [`Error::Spawn`]
/// with step `find program`.
fn resolve(program: &OsStr, view: &View<'_>, env: &[CString]) -> Result<PathBuf> {
    let err = |path: PathBuf, source: io::Error| Error::Spawn {
        step: "find program",
        path,
        source,
    };
    if program.is_empty() {
        return Err(Error::invalid("command", "", "the command's name is empty"));
    }
    if program.as_bytes().contains(&b'/') {
        let p = PathBuf::from(program);
        if p.is_relative() {
            return Ok(p);
        }
        return match view.executable(&p) {
            Ok(true) => Ok(p),
            Ok(false) => Err(err(p, io::Error::from_raw_os_error(libc::EACCES))),
            Err(e) => Err(err(p, e)),
        };
    }
    let path_var = env
        .iter()
        .find_map(|kv| {
            kv.as_bytes()
                .strip_prefix(b"PATH=")
                .map(|v| OsStr::from_bytes(v).to_owned())
        })
        .unwrap_or_else(|| {
            OsString::from("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        });
    let mut denied = false;
    for dir in std::env::split_paths(&path_var) {
        let candidate = dir.join(program);
        match view.executable(&candidate) {
            Ok(true) => return Ok(candidate),
            Ok(false) => denied = true,
            Err(_) => {}
        }
    }
    let errno = if denied { libc::EACCES } else { libc::ENOENT };
    Err(err(
        PathBuf::from(program),
        io::Error::from_raw_os_error(errno),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_from_raw() {
        assert_eq!(ExitStatus::from_raw(3 << 8), ExitStatus::Exited(3));
        assert_eq!(ExitStatus::from_raw(9), ExitStatus::Signaled(9));
        assert!(ExitStatus::Exited(0).success());
        assert_eq!(ExitStatus::Signaled(15).signal(), Some(15));
    }

    #[test]
    fn resolves_in_path_and_reports_missing() {
        let env = vec![CString::new("PATH=/nonexistent:/bin:/usr/bin").unwrap()];
        let sh = resolve(OsStr::new("sh"), &View::new(None), &env).unwrap();
        assert!(sh.ends_with("sh"), "{}", sh.display());
        let err = resolve(OsStr::new("isol-no-such-program"), &View::new(None), &env).unwrap_err();
        assert!(
            matches!(&err, Error::Spawn { source, .. } if source.kind() == io::ErrorKind::NotFound),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("noexec");
        std::fs::write(&f, "#!/bin/sh\n").unwrap();
        let err = resolve(f.as_os_str(), &View::new(None), &env).unwrap_err();
        assert!(
            matches!(&err, Error::Spawn { source, .. } if source.kind() == io::ErrorKind::PermissionDenied),
            "{err}"
        );
    }

    #[test]
    fn resolves_through_the_rootfs_its_binds_and_symlinks() {
        use std::os::unix::fs::symlink;
        let host = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(host.path().join("usr/bin")).unwrap();
        let prog = host.path().join("usr/bin/prog");
        std::fs::write(&prog, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        symlink("/usr/bin/prog", host.path().join("usr/bin/abs-link")).unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("usr")).unwrap();
        symlink("usr/bin", root.path().join("bin")).unwrap();
        let mnt = namespace::MntNs::Rootfs(namespace::Rootfs {
            mounts: vec![namespace::Mount::bind(host.path().join("usr"), "/usr")],
            ..namespace::Rootfs::new(root.path())
        });
        let view = View::new(Some(&mnt));
        let env = vec![CString::new("PATH=/bin").unwrap()];
        assert_eq!(
            resolve(OsStr::new("prog"), &view, &env).unwrap(),
            Path::new("/bin/prog")
        );
        assert_eq!(
            resolve(OsStr::new("abs-link"), &view, &env).unwrap(),
            Path::new("/bin/abs-link")
        );
        assert_eq!(view.resolve(Path::new("/bin/abs-link")).unwrap().1, prog);
        // Without the bind the rootfs's /usr is empty.
        let bare = namespace::MntNs::Rootfs(namespace::Rootfs::new(root.path()));
        let err = resolve(OsStr::new("prog"), &View::new(Some(&bare)), &env).unwrap_err();
        assert!(
            matches!(&err, Error::Spawn { source, .. } if source.kind() == io::ErrorKind::NotFound),
            "{err}"
        );
    }
}
