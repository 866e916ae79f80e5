//! The builder: [`Command`] and what it is given — [`Stdio`] for each standard stream,
//! a [`CgroupSpec`] — in the spirit of `std::process::Command`. It only collects;
//! [`Command::spawn`] (start.rs) does the work.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::namespace::{self, NamespacePlan, NsHandle, Slot};
use crate::security::SecurityPolicy;
use crate::{Backend, Cgroup, NamespaceKind, NamespaceSet, Parent, Resources};

/// Where a standard stream of the child goes.
#[derive(Debug, Default)]
pub enum Stdio {
    /// The parent's.
    #[default]
    Inherit,
    /// `/dev/null`.
    Null,
    /// A pipe; the parent's end is in [`Child::stdin`](super::Child::stdin) / `stdout` / `stderr`.
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
pub(super) enum Env {
    Inherit(BTreeMap<OsString, Option<OsString>>),
    Clear(BTreeMap<OsString, OsString>),
}

/// A process to spawn into namespaces and a cgroup.
#[derive(Debug)]
pub struct Command {
    pub(super) program: OsString,
    pub(super) args: Vec<OsString>,
    pub(super) env: Env,
    pub(super) cwd: Option<PathBuf>,
    pub(super) stdin: Stdio,
    pub(super) stdout: Stdio,
    pub(super) stderr: Stdio,
    pub(super) uid: Option<u32>,
    pub(super) gid: Option<u32>,
    pub(super) groups: Option<Vec<u32>>,
    pub(super) plan: NamespacePlan,
    pub(super) cgroup: Option<CgroupSpec>,
    pub(super) persist: Vec<(NamespaceKind, PathBuf)>,
    pub(super) security: Option<SecurityPolicy>,
    pub(super) die_with_parent: bool,
    pub(super) new_session: bool,
    /// [`Command::hold`]: no program.
    pub(super) hold: bool,
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
    /// namespace; see [`namespace::MntNs::console`]).
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
    pub(super) fn with_policy_devices<'a>(
        &self,
        r: &'a Resources,
    ) -> std::borrow::Cow<'a, Resources> {
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
    /// (see [`NsHandle::persist`]); [`Child::persisted`](super::Child::persisted) lists them.
    pub fn persist(&mut self, kind: NamespaceKind, path: impl Into<PathBuf>) -> &mut Command {
        self.persist.push((kind, path.into()));
        self
    }

    /// The environment the command gets, as `KEY=value` C strings.
    pub(super) fn envp(&self) -> Vec<CString> {
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
