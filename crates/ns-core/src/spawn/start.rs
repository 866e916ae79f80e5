//! [`Command::spawn`], read top-down: its phases, each a function over what the
//! earlier ones made.
//!
//! 1. [`Command::check`] and [`Command::build`] (prepare.rs): the plan and ids checked,
//!    the child's program recorded — before anything exists.
//! 2. [`Command::place`]: the cgroup, created or existing, and how the child enters it.
//! 3. [`Command::clone_child`]: the pipes, `argv`/`envp`, [`sys::Prepared`], `clone3`.
//! 4. [`Command::handshake`]: the parent's part while the child waits — id maps, the go
//!    byte, time offsets — then the wait for the exec and the persisted namespace files.
//!
//! A [`Guard`] is the single undo of a failed spawn: from the cgroup's creation on it
//! holds what must go again (the child, the cgroup the spawn created) until the spawn
//! succeeds.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;

use super::child::read_record;
use super::prepare::{Built, Shape};
use super::program::Program;
use super::sys::{self, CStrArray, Record};
use super::{CgroupSpec, Child, Command, SpawnStep};
use crate::namespace::{self, NsHandle, Persisted};
use crate::{Cgroup, Error, KernelFeatures, NamespaceKind, Result};

impl Command {
    /// Spawns the process. On error nothing is left: no process, no cgroup the spawn
    /// created, no persisted namespace file.
    pub fn spawn(&mut self) -> Result<Child> {
        let privileged = nix::unistd::geteuid().is_root();
        let shape = self.check(privileged, KernelFeatures::running())?;
        let mut built = self.build(&shape)?;
        let mut guard = Guard::default();
        let placement = self.place(&shape, &mut built, &mut guard)?;
        let cloned = self.clone_child(&shape, built, &placement, &mut guard)?;
        self.handshake(&shape, cloned, placement, guard)
    }

    /// Creates the cgroup ([`CgroupSpec::Create`], which `guard` destroys again should the
    /// spawn fail) or takes the existing one, and records the child's steps into it.
    ///
    /// The child is cloned into the cgroup's cgroup2 directory where there is one (v2, or
    /// a v1 cgroup's unified twin on a hybrid host): a parent moving a whole process there
    /// waits for an RCU grace period on the threadgroup lock, up to 13 ms on the
    /// development host. Every other hierarchy (v1) it joins itself, first thing, before
    /// any namespace change: a single-threaded process moving itself skips that lock (see
    /// `Cgroup::self_attach_files`).
    fn place(&self, shape: &Shape, built: &mut Built, guard: &mut Guard) -> Result<Placement> {
        let (cgroup, created): (Arc<dyn Cgroup>, bool) = match &self.cgroup {
            None => {
                return Ok(Placement {
                    cgroup: None,
                    clone_into: false,
                })
            }
            Some(CgroupSpec::Existing(cg)) => (cg.clone(), false),
            Some(CgroupSpec::Create {
                backend,
                parent,
                name,
                resources,
            }) => {
                let resources = self.with_policy_devices(resources);
                (Arc::from(backend.create(parent, name, &resources)?), true)
            }
        };
        if created {
            guard.cgroup = Some(cgroup.clone());
            tracing::debug!("created cgroup {}", cgroup.path());
        }
        let clone_into = shape.features.clone_into_cgroup && cgroup.clone_into_fd().is_some();
        built.join_cgroup_first(cgroup.self_attach_files(clone_into)?);
        Ok(Placement {
            cgroup: Some(cgroup),
            clone_into,
        })
    }

    /// Clones the child with everything it needs ready-made, and hands its pidfd to
    /// `guard`. What the steps needed open until the clone closes here.
    fn clone_child(
        &self,
        shape: &Shape,
        built: Built,
        placement: &Placement,
        guard: &mut Guard,
    ) -> Result<Cloned> {
        let needs_go = self.plan.user_new().is_some() || shape.new.contains(NamespaceKind::Time);
        let (err_rd, err_wr) = pipe()?;
        let go = if needs_go { Some(pipe()?) } else { None };
        let mut close_first: Vec<RawFd> = vec![err_rd.as_raw_fd()];
        if let Some((_, w)) = &go {
            close_first.push(w.as_raw_fd());
        }
        close_first.extend(built.parent_ends.iter().flatten().map(|f| f.as_raw_fd()));
        let close_in_init: Vec<RawFd> = built.child_ends.iter().map(|f| f.as_raw_fd()).collect();
        let exec_path = namespace::cpath(&built.exec_path)?;
        let args = self.argv()?;
        let (argv, envp) = (CStrArray::new(&args), CStrArray::new(&built.env));
        let prep = sys::Prepared {
            program: &built.prog,
            exec_path: &exec_path,
            argv: &argv,
            envp: &envp,
            exec_id: built.exec_id,
            fork_id: built.fork_id,
            go_rd: go.as_ref().map(|(r, _)| r.as_raw_fd()),
            err_wr: err_wr.as_raw_fd(),
            close_first: &close_first,
            close_in_init: &close_in_init,
            init: shape.init,
            command_shares_memory: !shape.enters_time_ns,
            hold: self.hold,
        };
        let (pid, pidfd) = sys::clone(built.clone_flags, placement.clone_into_fd(), &prep)
            .map_err(|e| Error::Spawn {
                step: SpawnStep::Clone3,
                path: PathBuf::new(),
                source: e,
            })?;
        guard.pidfd = Some((pid, pidfd));
        let (leader_steps, command_steps) = built.prog.len();
        tracing::debug!(
            "cloned pid {pid}, new namespaces [{}]; {leader_steps} steps there, {command_steps} before {:?}",
            shape.new,
            self.program
        );
        tracing::trace!("the child's program:\n{}", built.prog.listing());
        drop(err_wr);
        let Built {
            prog,
            parent_ends,
            child_ends,
            keep,
            ..
        } = built;
        drop(child_ends);
        drop(keep);
        let go_wr = go.map(|(r, w)| {
            drop(r);
            File::from(w)
        });
        Ok(Cloned {
            pid,
            prog,
            err_rd: File::from(err_rd),
            go_wr,
            parent_ends,
        })
    }

    /// The parent's part while the child waits: a new user namespace's id maps, then the
    /// go byte; a new time namespace's offsets once the child has unshared it, then the
    /// go byte again; then the wait for the exec (with an init, its word that the command
    /// exec'd; without one, the error pipe closing on exec) and the namespace files to
    /// persist. On success `guard` lets go of the child and the cgroup.
    fn handshake(
        &self,
        shape: &Shape,
        mut c: Cloned,
        placement: Placement,
        guard: Guard,
    ) -> Result<Child> {
        let pid = c.pid;
        let cgroup = placement.cgroup.as_deref();
        if let Some(u) = self.plan.user_new() {
            u.parent_setup(pid)?;
        }
        release(&mut c.go_wr)?;
        if let Some(t) = self.plan.time_new() {
            match read_record(&mut c.err_rd)? {
                Some(r) if r.tag == sys::TAG_TIME_READY => {
                    if t.needs_parent() {
                        t.parent_setup(pid)?;
                    }
                    release(&mut c.go_wr)?;
                }
                Some(r) if r.tag == sys::TAG_ERROR => return Err(failed(&c.prog, r)),
                other => return Err(died(other, cgroup)),
            }
        }
        c.go_wr = None;
        match read_record(&mut c.err_rd)? {
            Some(r) if r.tag == sys::TAG_ERROR => return Err(failed(&c.prog, r)),
            Some(r) if r.tag == sys::TAG_EXEC_OK && shape.init => {}
            None if !shape.init => {}
            other => return Err(died(other, cgroup)),
        }
        let persisted = self.persist_namespaces(pid)?;
        let (pid, pidfd) = guard.disarm();
        let [stdin, stdout, stderr] = c.parent_ends;
        Ok(Child {
            pid,
            pidfd,
            status_pipe: shape.init.then_some(c.err_rd),
            status: None,
            cgroup: placement.cgroup,
            persisted,
            new: shape.new,
            stdin,
            stdout,
            stderr,
        })
    }

    /// Bind-mounts the namespace files [`Command::persist`] asked for; all or none.
    fn persist_namespaces(&self, pid: u32) -> Result<Vec<Persisted>> {
        let mut persisted: Vec<Persisted> = Vec::new();
        for (kind, path) in &self.persist {
            match NsHandle::of_pid(pid, *kind, true).and_then(|h| h.persist(path)) {
                Ok(p) => persisted.push(p),
                Err(e) => {
                    for p in persisted {
                        let _ = p.release();
                    }
                    return Err(e);
                }
            }
        }
        Ok(persisted)
    }

    /// `argv`: the program's name as given, then the arguments.
    fn argv(&self) -> Result<Vec<CString>> {
        let mut argv: Vec<CString> = Vec::with_capacity(self.args.len() + 1);
        argv.push(CString::new(self.program.as_bytes()).map_err(|_| {
            Error::invalid(
                "program",
                self.program.to_string_lossy(),
                "must not contain NUL",
            )
        })?);
        for a in &self.args {
            argv.push(CString::new(a.as_bytes()).map_err(|_| {
                Error::invalid("argument", a.to_string_lossy(), "must not contain NUL")
            })?);
        }
        Ok(argv)
    }
}

/// Where the child goes: its cgroup, and whether clone3 puts it there.
struct Placement {
    cgroup: Option<Arc<dyn Cgroup>>,
    /// `CLONE_INTO_CGROUP` with the cgroup's cgroup2 directory.
    clone_into: bool,
}

impl Placement {
    /// The cgroup2 directory clone3 creates the child in, if it does.
    fn clone_into_fd(&self) -> Option<BorrowedFd<'_>> {
        self.cgroup
            .as_ref()
            .filter(|_| self.clone_into)
            .and_then(|c| c.clone_into_fd())
    }
}

/// What the clone leaves the parent: the child's pid (its pidfd is the guard's), the
/// pipes to it, and the program, whose labels name a step that failed.
struct Cloned {
    pid: u32,
    prog: Program,
    /// The error pipe: `(step, errno)` records, the init's word, the command's status.
    err_rd: File,
    /// The go pipe, when the child waits for the parent.
    go_wr: Option<File>,
    /// The parent's ends of piped stdio.
    parent_ends: [Option<File>; 3],
}

/// `pipe2(O_CLOEXEC)`: the read end, the write end.
fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::io("pipe2", "", e.into()))
}

/// Lets the waiting child go on: one byte on the go pipe, when there is one.
fn release(go_wr: &mut Option<File>) -> Result<()> {
    if let Some(w) = go_wr.as_mut() {
        w.write_all(b"g").map_err(|e| Error::Spawn {
            step: SpawnStep::SignalChild,
            path: PathBuf::new(),
            source: e,
        })?;
    }
    Ok(())
}

/// The error of the step the child reported failing (a step id the program never gave
/// out is the child speaking out of turn).
fn failed(prog: &Program, rec: Record) -> Error {
    let Some((step, path)) = prog.label(rec.id) else {
        return died(Some(rec), None);
    };
    Error::Spawn {
        step,
        path: path.to_path_buf(),
        source: io::Error::from_raw_os_error(rec.value),
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
        step: SpawnStep::WaitForExec,
        path: PathBuf::new(),
        source: io::Error::other(what),
    }
}

/// Undoes a spawn that failed: kills and reaps the child, destroys the cgroup it created.
#[derive(Default)]
struct Guard {
    pidfd: Option<(u32, OwnedFd)>,
    cgroup: Option<Arc<dyn Cgroup>>,
}

impl Guard {
    /// The spawn succeeded: the child (its pid and pidfd) goes to the caller, the cgroup
    /// stays.
    fn disarm(mut self) -> (u32, OwnedFd) {
        self.cgroup = None;
        self.pidfd.take().expect("set after clone")
    }
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
