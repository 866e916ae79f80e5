//! Before the clone: the checks of a spawn and the child's program.
//!
//! [`Command::check`] refuses what cannot work before anything exists and says what kind
//! of spawn this is ([`Shape`]); [`Command::build`] records every step the child will take
//! into a [`Program`] of plain data — the namespaces it joins and makes, each new
//! namespace's own steps, the hardening, stdio, session, working directory, ids and death
//! signal — and keeps the fds those steps name. Nothing here clones or creates a cgroup,
//! so a test can read the program a `Command` would run (the golden tests below).

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::program::{Op, Program};
use super::SpawnStep;
use super::{sys, Command, Stdio};
use crate::namespace::{self, Context, IdMap, Joinable, MntNs, NsHandle, Slot};
use crate::security;
use crate::{Error, KernelFeatures, NamespaceKind, NamespaceSet, Result};

/// What the checks found about a spawn, which every later phase reads.
pub(super) struct Shape {
    /// The kinds made anew.
    pub new: NamespaceSet,
    /// The kinds joined.
    pub joined: NamespaceSet,
    /// The spawner is root in its user namespace.
    pub privileged: bool,
    /// What the running kernel offers (`setns` on a pidfd, `CLONE_INTO_CGROUP`).
    pub features: KernelFeatures,
    /// A tiny init forks the command: a pid or time namespace is new or joined.
    pub init: bool,
    /// The command enters a time namespace (new or joined), so the init forks it rather
    /// than start it in its own memory.
    pub enters_time_ns: bool,
}

/// The child's program, and what the parent holds for it until the clone.
pub(super) struct Built {
    /// Every step, with its label.
    pub prog: Program,
    /// What `execve` is given (`/` for [`Command::hold`], which execs nothing).
    pub exec_path: PathBuf,
    /// The label of the `execve`, a step outside the program's lists.
    pub exec_id: u32,
    /// The label of the init's fork of the command, another.
    pub fork_id: u32,
    /// The `CLONE_NEW*` flags for clone3 (none when the leader unshares instead).
    pub clone_flags: libc::c_int,
    /// The command's environment, `KEY=value`.
    pub env: Vec<CString>,
    /// Fds the steps name — the spawner's pidfd, namespace files opened here, the cgroup
    /// files — open across the clone and closed in the parent right after it.
    pub keep: Vec<OwnedFd>,
    /// The parent's ends of piped stdio, for the [`super::Child`].
    pub parent_ends: [Option<File>; 3],
    /// The child's stdio fds (the init closes its copies once the command runs).
    pub child_ends: Vec<OwnedFd>,
}

impl Command {
    /// Refuses a plan or ids that cannot work, before anything exists, and says what the
    /// spawn is. `privileged` (root in our user namespace) and `features` (the running
    /// kernel's) are given, so that a test can fix them.
    pub(super) fn check(&self, privileged: bool, features: KernelFeatures) -> Result<Shape> {
        let new = self.plan.new_set();
        let joined = self.plan.joined_set();
        let enters_time_ns =
            new.contains(NamespaceKind::Time) || joined.contains(NamespaceKind::Time);
        let shape = Shape {
            new,
            joined,
            privileged,
            features,
            init: new.contains(NamespaceKind::Pid)
                || joined.contains(NamespaceKind::Pid)
                || enters_time_ns,
            enters_time_ns,
        };
        let ctx = self.context(&shape);
        for ns in self.plan.new_namespaces() {
            ns.check(&ctx)?;
        }
        self.check_ids()?;
        if joined.contains(NamespaceKind::User) && new.contains(NamespaceKind::Pid) {
            return Err(Error::invalid("namespaces", "user joined, pid new", "a new pid namespace cannot be made inside a joined user namespace by isol; join the pid namespace too or keep the user namespace"));
        }
        Ok(shape)
    }

    /// (uid_t)-1 is "leave it unchanged" to setresuid and setresgid: the command would
    /// keep running as root.
    fn check_ids(&self) -> Result<()> {
        let ids = [("uid", self.uid), ("gid", self.gid)];
        let groups = self.groups.iter().flatten().map(|&g| ("group", Some(g)));
        match ids
            .into_iter()
            .chain(groups)
            .find(|(_, id)| *id == Some(u32::MAX))
        {
            Some((what, _)) => Err(Error::invalid(
                what,
                u32::MAX.to_string(),
                format!("{} is (uid_t)-1, which the kernel takes as \"leave the {what} unchanged\", so the command would keep isol's; give another number", u32::MAX),
            )),
            None => Ok(()),
        }
    }

    /// What the new namespaces' checks and steps are told about the spawn.
    fn context(&self, shape: &Shape) -> Context {
        Context {
            new: shape.new,
            joined: shape.joined,
            privileged: shape.privileged,
            read_only_host: self.security.as_ref().is_some_and(|p| p.read_only_host),
            hardened: self.security.as_ref().is_some_and(|p| !p.privileged),
        }
    }

    /// Records every step the child will take, in the order it takes them: the leader's
    /// (the death signal, joins, unshares, each new namespace's leader steps), then the
    /// command's (each new namespace's, the hardening's mounts, stdio, session, working
    /// directory, hardening and ids, the death signal again). The cgroup's steps come
    /// later ([`Built::join_cgroup_first`]), once the cgroup exists.
    pub(super) fn build(&self, shape: &Shape) -> Result<Built> {
        let env = self.envp();
        let exec_path = self.exec_path(&env)?;
        let mut prog = Program::default();
        let mut keep: Vec<OwnedFd> = Vec::new();
        // Armed first, re-armed after the leader's namespace changes (setns into a user
        // namespace changes credentials, which clears it) and after the command's id
        // changes.
        let spawner = if self.die_with_parent {
            Some(sys::pidfd_self().map_err(|e| Error::io("pidfd_open", "self", e))?)
        } else {
            None
        };
        let death = spawner.as_ref().map(|fd| fd.as_raw_fd());
        keep.extend(spawner);
        if let Some(pidfd) = death {
            prog.leader(SpawnStep::DeathSignal, "", Op::DieWithParent { pidfd });
        }
        self.record_joins(shape, &mut prog, &mut keep)?;
        let clone_flags = self.record_unshare(shape, &mut prog);
        if let Some(pidfd) = death {
            prog.leader(SpawnStep::DeathSignal, "", Op::DieWithParent { pidfd });
        }
        let ctx = self.context(shape);
        for ns in self.plan.new_namespaces() {
            ns.child_steps(&ctx, &mut prog)?;
        }
        let hardening = self.plan_hardening(shape, &mut prog)?;
        let (parent_ends, child_ends) = self.record_stdio(&mut prog)?;
        self.record_session_and_cwd(&mut prog)?;
        let (before_ids, after_ids) = match &hardening {
            Some(h) => (&h.before_ids[..], &h.after_ids[..]),
            None => (&[][..], &[][..]),
        };
        record_security(before_ids, &mut prog);
        self.record_ids(shape, &mut prog);
        self.record_death_signal(shape, death, &mut prog);
        record_security(after_ids, &mut prog);
        let exec_id = prog.reserve(SpawnStep::Execve, &exec_path);
        let fork_id = prog.reserve(SpawnStep::ForkCommand, "");
        Ok(Built {
            prog,
            exec_path,
            exec_id,
            fork_id,
            clone_flags,
            env,
            keep,
            parent_ends,
            child_ends,
        })
    }

    /// The leader's `setns` steps, user first: one per namespace file, one per pidfd for
    /// all the kinds joined through it (or, where the kernel cannot `setns` a pidfd, one
    /// per kind through the files of the process behind it, kept open in `keep`).
    fn record_joins(
        &self,
        shape: &Shape,
        prog: &mut Program,
        keep: &mut Vec<OwnedFd>,
    ) -> Result<()> {
        let joins = self.plan.joins();
        let mut seen_pidfds: Vec<*const OwnedFd> = Vec::new();
        for (kind, j) in &joins {
            let fd = match j {
                Joinable::Ns(h) => {
                    prog.leader(
                        SpawnStep::Setns,
                        h.path(),
                        setns(h.as_fd(), kind.clone_flag()),
                    );
                    continue;
                }
                Joinable::Pidfd(fd) => fd,
            };
            let ptr = Arc::as_ptr(fd);
            if seen_pidfds.contains(&ptr) {
                continue;
            }
            seen_pidfds.push(ptr);
            let kinds: NamespaceSet = joins
                .iter()
                .filter(|(_, j)| matches!(j, Joinable::Pidfd(f) if Arc::as_ptr(f) == ptr))
                .map(|(k, _)| *k)
                .collect();
            if shape.features.setns_pidfd {
                let op = setns(fd.as_fd(), kinds.clone_flags());
                prog.leader(SpawnStep::SetnsPidfd, kinds.to_string(), op);
                continue;
            }
            let pid = pidfd_pid(fd.as_fd())?;
            for k in kinds.iter() {
                let h = NsHandle::of_pid(pid, k, false)?;
                prog.leader(SpawnStep::Setns, h.path(), setns(h.as_fd(), k.clone_flag()));
                keep.push(
                    h.as_fd()
                        .try_clone_to_owned()
                        .map_err(|e| Error::io("dup", h.path(), e))?,
                );
            }
        }
        Ok(())
    }

    /// The new namespaces clone3 makes — all but time and cgroup, which their own steps
    /// unshare later — as its flags. In a joined user namespace, which the leader must
    /// enter first, the leader unshares them instead, and clone3 gets none.
    fn record_unshare(&self, shape: &Shape, prog: &mut Program) -> libc::c_int {
        let by_clone = NamespaceSet::from_iter(
            shape
                .new
                .iter()
                .filter(|k| !matches!(k, NamespaceKind::Time | NamespaceKind::Cgroup)),
        );
        let flags = by_clone.clone_flags();
        if shape.joined.contains(NamespaceKind::User) {
            prog.leader(
                SpawnStep::Unshare,
                by_clone.to_string(),
                Op::Unshare { flags },
            );
            0
        } else {
            flags
        }
    }

    /// The security policy's plan, prepared now: its mounts recorded before the
    /// pivot_root; its other steps go around the id changes ([`record_security`]).
    fn plan_hardening(&self, shape: &Shape, prog: &mut Program) -> Result<Option<security::Plan>> {
        let Some(policy) = &self.security else {
            return Ok(None);
        };
        let mnt = match &self.plan.mnt {
            Slot::New(m) => Some(m),
            _ => None,
        };
        let (rootfs, sys_is_kernels) = hardening_mount_facts(mnt);
        let w = security::Where {
            changes_uid: self.uid.is_some_and(|u| u != 0),
            new_user_ns: shape.new.contains(NamespaceKind::User),
            own_mnt: mnt.is_some(),
            callers_mnt: matches!(self.plan.mnt, Slot::Inherit),
            rootfs,
            sys_is_kernels,
        };
        let h = policy.plan(&w)?;
        security::record_mounts(&h.mounts, prog)?;
        Ok(Some(h))
    }

    /// A `dup2` step for each standard stream that is not inherited; the parent's ends
    /// of the pipes and the child's fds.
    fn record_stdio(&self, prog: &mut Program) -> Result<([Option<File>; 3], Vec<OwnedFd>)> {
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
                let op = Op::Dup2 {
                    fd: fd.as_raw_fd(),
                    to: n,
                };
                prog.command(SpawnStep::Dup2, format!("fd {n}"), op);
                child_ends.push(fd);
            }
        }
        Ok((parent_ends, child_ends))
    }

    /// `setsid` for [`Command::new_session`], `chdir` for [`Command::current_dir`].
    fn record_session_and_cwd(&self, prog: &mut Program) -> Result<()> {
        if self.new_session {
            prog.command(SpawnStep::Setsid, "", Op::Setsid);
        }
        if let Some(dir) = &self.cwd {
            let path = namespace::cpath(dir)?;
            prog.command(SpawnStep::Chdir, dir, Op::Chdir { path });
        }
        Ok(())
    }

    /// The command's groups, gid and uid. In a new user namespace that maps root, the
    /// ids default to 0 there; root outside one that changes uid drops its groups.
    fn record_ids(&self, shape: &Shape, prog: &mut Program) {
        let user_new = self.plan.user_new();
        let maps_root = |m: &[IdMap]| m.iter().any(|m| m.inside == 0);
        let gid = self
            .gid
            .or_else(|| user_new.filter(|u| maps_root(&u.gid_map)).map(|_| 0));
        let uid = self
            .uid
            .or_else(|| user_new.filter(|u| maps_root(&u.uid_map)).map(|_| 0));
        if let Some(groups) = &self.groups {
            let groups = groups.clone();
            prog.command(SpawnStep::Setgroups, "", Op::Setgroups { groups });
        } else if self.uid.is_some() && shape.privileged && user_new.is_none() {
            prog.command(
                SpawnStep::Setgroups,
                "",
                Op::Setgroups { groups: Vec::new() },
            );
        }
        if let Some(gid) = gid {
            prog.command(SpawnStep::Setgid, gid.to_string(), Op::Setgid { gid });
        }
        if let Some(uid) = uid {
            prog.command(SpawnStep::Setuid, uid.to_string(), Op::Setuid { uid });
        }
    }

    /// The command's death signal, after its id changes (which clear it): the spawner's
    /// (`death`, a pidfd of it) for [`Command::die_with_parent`], else the init's where
    /// the init is not its pid namespace's first process (whose end ends every process
    /// of the namespace anyway).
    fn record_death_signal(&self, shape: &Shape, death: Option<RawFd>, prog: &mut Program) {
        if let Some(pidfd) = death {
            prog.command(SpawnStep::DeathSignal, "", Op::DieWithParent { pidfd });
        } else if shape.init && !shape.new.contains(NamespaceKind::Pid) && !self.hold {
            prog.command(SpawnStep::DeathSignal, "", Op::DieWithInit);
        }
    }
}

impl Built {
    /// Puts the steps that move the child into each of its cgroup's v1 hierarchies
    /// (`files`: the `tasks` or `cgroup.procs` files opened for it, with their cgroup
    /// directories) before every other step of the leader, in the order given, and keeps
    /// the files open until the clone.
    pub(super) fn join_cgroup_first(&mut self, files: Vec<(OwnedFd, PathBuf)>) {
        for (f, dir) in files.iter().rev() {
            let op = Op::JoinCgroup { fd: f.as_raw_fd() };
            self.prog.leader_first(SpawnStep::JoinCgroup, dir, op);
        }
        self.keep.extend(files.into_iter().map(|(f, _)| f));
    }
}

/// A `setns` step on `fd` (a namespace file or a pidfd).
fn setns(fd: BorrowedFd<'_>, nstype: libc::c_int) -> Op {
    Op::Setns {
        fd: fd.as_raw_fd(),
        nstype,
    }
}

/// The hardening's steps around the id changes (rlimits, the bounding set and keepcaps
/// before them; capset, no_new_privs and seccomp after).
fn record_security(ops: &[security::sys::ChildOp], prog: &mut Program) {
    for op in ops {
        prog.command(op.name(), op.detail(), Op::Security(op.clone()));
    }
}

/// What the hardening needs of a new mount namespace's plan: its rootfs, and whether its
/// `/sys` is the kernel's. The one place the hardening reads `MntNs`.
fn hardening_mount_facts(mnt: Option<&MntNs>) -> (Option<&Path>, bool) {
    (
        mnt.and_then(|m| m.rootfs()),
        mnt.is_some_and(|m| m.kernels_sys()),
    )
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

#[cfg(test)]
mod tests {
    //! Golden tests of the recorded steps: the program a `Command` would run, as
    //! [`Program::listing`] writes it, against `golden/NAME.txt` beside this file
    //! (`ISOL_BLESS=1 cargo test -p isol-ns-core golden` writes them). A new mount
    //! namespace's own steps are the namespace module's to test.
    use super::*;
    use crate::namespace::UserNs;
    use crate::security::{Rlimit, SecurityPolicy};

    /// The kernel isol is written for: `setns` on a pidfd (5.8), `CLONE_INTO_CGROUP`.
    fn current_kernel() -> KernelFeatures {
        KernelFeatures {
            setns_pidfd: true,
            clone_into_cgroup: true,
            ..KernelFeatures::default()
        }
    }

    /// What `cmd` would run, spawned by root on a kernel with `features`.
    fn built(cmd: &Command, features: KernelFeatures) -> Built {
        let shape = cmd.check(true, features).unwrap();
        cmd.build(&shape).unwrap()
    }

    /// Compares `prog`'s listing with `golden/NAME.txt`, whose first line says what it
    /// shows; `ISOL_BLESS=1` writes the file instead.
    fn golden(name: &str, about: &str, prog: &Program) {
        let listing = prog
            .listing()
            .replace(&format!("/proc/{}/", std::process::id()), "/proc/PID/");
        let text = format!("# {about}\n{listing}");
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/spawn/golden")
            .join(format!("{name}.txt"));
        if std::env::var_os("ISOL_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
            return;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            want == text,
            "{name}: the recorded steps differ from {} (ISOL_BLESS=1 cargo test -p isol-ns-core golden writes it):\n--- golden\n{want}--- now\n{text}",
            path.display()
        );
    }

    /// `isol exec`'s shape: a box's namespaces joined through a pidfd of its init, user
    /// among them, as another uid.
    fn exec_into_box() -> Command {
        let mut cmd = Command::new("/bin/sh");
        cmd.env_clear().uid(1000).gid(1000);
        let kinds: NamespaceSet = "user,ipc,uts,net,pid".parse().unwrap();
        cmd.plan_mut()
            .join_process(sys::pidfd_self().unwrap(), kinds);
        cmd
    }

    #[test]
    fn golden_join_by_pidfd() {
        let b = built(&exec_into_box(), current_kernel());
        golden(
            "join_by_pidfd",
            "a box's user, ipc, uts, net and pid namespaces joined by a pidfd; uid and gid 1000",
            &b.prog,
        );
        // In a joined user namespace the leader unshares; clone3 makes nothing. The
        // command follows the init, which is not its pid namespace's first process.
        assert_eq!(b.clone_flags, 0);
        assert!(matches!(b.prog.command.last().unwrap().op, Op::DieWithInit));
    }

    #[test]
    fn golden_join_by_pidfd_before_5_8() {
        let old = KernelFeatures {
            setns_pidfd: false,
            ..current_kernel()
        };
        golden(
            "join_by_pidfd_before_5_8",
            "join_by_pidfd where setns takes no pidfd (before Linux 5.8): each namespace file of the process behind it",
            &built(&exec_into_box(), old).prog,
        );
    }

    #[test]
    fn golden_join_by_handle() {
        let mut cmd = Command::new("/bin/sh");
        cmd.env_clear()
            .new_namespaces("pid".parse().unwrap())
            .die_with_parent()
            .new_session()
            .current_dir("/srv")
            .stdin(Stdio::Null)
            .stdout(Stdio::Piped)
            .stderr(Stdio::Fd(File::open("/dev/null").unwrap().into()));
        for kind in [NamespaceKind::Net, NamespaceKind::Ipc, NamespaceKind::Uts] {
            let path = format!("/proc/self/ns/{}", kind.proc_name());
            cmd.join(NsHandle::open(kind, path).unwrap());
        }
        let b = built(&cmd, current_kernel());
        golden(
            "join_by_handle",
            "a pod member's shape: net, ipc and uts joined by namespace file, a new pid namespace; die_with_parent, new_session, a working directory, stdin null, stdout piped, stderr an fd",
            &b.prog,
        );
        assert_eq!(b.clone_flags, libc::CLONE_NEWPID);
        assert!(matches!(
            b.prog.command.last().unwrap().op,
            Op::DieWithParent { .. }
        ));
        // The parent keeps stdout's read end; the child gets three fds.
        assert!(matches!(b.parent_ends, [None, Some(_), None]));
        assert_eq!(b.child_ends.len(), 3);
    }

    #[test]
    fn golden_hardened_in_a_user_namespace() {
        let mut policy = SecurityPolicy {
            masked_paths: Vec::new(),
            readonly_paths: Vec::new(),
            read_only_host: false,
            ..SecurityPolicy::default()
        };
        policy
            .rlimits
            .push(Rlimit::parse("nofile=1024:2048").unwrap());
        let mut cmd = Command::new("/bin/sh");
        cmd.env_clear()
            .user_namespace(UserNs::range(100_000, 65_536))
            .new_namespaces("pid,net,uts".parse().unwrap())
            .hostname("box")
            .uid(1000)
            .gid(1000)
            .security(policy);
        golden(
            "hardened_in_a_user_namespace",
            "docker's default hardening (no path masked: no mount namespace) with an rlimit, in new user, pid, net and uts namespaces, as uid and gid 1000",
            &built(&cmd, current_kernel()).prog,
        );
    }

    #[test]
    fn golden_cgroup_joins_go_first() {
        let mut cmd = Command::new("/bin/sh");
        cmd.env_clear().die_with_parent().uid(1000);
        let mut b = built(&cmd, current_kernel());
        let file = || OwnedFd::from(File::open("/dev/null").unwrap());
        b.join_cgroup_first(vec![
            (file(), PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/box")),
            (file(), PathBuf::from("/sys/fs/cgroup/memory/box")),
        ]);
        golden(
            "cgroup_joins_go_first",
            "a v1 cgroup joined through its tasks files, before the death signal; root running the command as uid 1000",
            &b.prog,
        );
    }

    #[test]
    fn held_command_execs_nothing() {
        let mut cmd = Command::hold();
        cmd.new_namespaces("pid".parse().unwrap());
        let b = built(&cmd, current_kernel());
        assert_eq!(b.exec_path, Path::new("/"));
        assert_eq!(
            b.prog.listing(),
            "outside execve: /\noutside fork the command from init\n"
        );
    }
}
