//! The system calls the benchmark makes itself: waiting with `wait4(2)` for the tool's
//! resource usage, the two raw floors (a bare `clone3(2)` + `execve(2)`, and the same with
//! namespaces and a cgroup), and the private mount namespace crun needs on hybrid hosts.
//!
//! # Safety
//! - Every child made here by `clone3` (without `CLONE_VM`, so it has its own copy of
//!   our memory, like after `fork`) runs only async-signal-safe system calls before it
//!   execs or `_exit`s: `close`, `read`, `write`, `unshare`, `execve`, `_exit`. Everything it touches (the
//!   program path, `argv`, `envp`, the pipe's fd) is prepared before the clone, so it
//!   neither allocates nor takes a lock, which keeps it correct when the parent has
//!   other threads (the parallel workers).
//! - The `pre_exec` hook for crun runs in the child of `fork` inside `std::process`; it
//!   too makes only system calls (`unshare`, `mount`, `umount2`) on static C strings.
//! - `wait4` is given a pid we spawned and not yet reaped, and pointers to a local status
//!   and a zeroed `rusage` that outlive the call.
#![allow(unsafe_code)]

use std::ffi::{c_char, CString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::ptr;

/// How a child ended and what it used.
#[derive(Clone, Copy, Debug)]
pub struct Reaped {
    /// The raw wait status.
    pub status: i32,
    /// `ru_maxrss` in KiB: the largest resident set of the child and of the children
    /// it reaped itself.
    pub maxrss_kib: u64,
}

impl Reaped {
    /// Whether it exited with code 0.
    pub fn success(&self) -> bool {
        libc::WIFEXITED(self.status) && libc::WEXITSTATUS(self.status) == 0
    }

    /// The status in words, for errors.
    pub fn describe(&self) -> String {
        if libc::WIFEXITED(self.status) {
            format!("exit code {}", libc::WEXITSTATUS(self.status))
        } else {
            format!("signal {}", libc::WTERMSIG(self.status))
        }
    }
}

/// `wait4(pid, &status, 0, &rusage)` — waits for `pid`, retrying on EINTR.
pub fn wait4(pid: i32) -> io::Result<Reaped> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our unreaped child; status and usage are valid for writes.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            return Ok(Reaped {
                status,
                maxrss_kib: usage.ru_maxrss as u64,
            });
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Makes `cmd` start in a private mount namespace without `/sys/fs/cgroup/unified`:
/// `unshare(CLONE_NEWNS)`, `mount(NULL, "/", NULL, MS_REC|MS_PRIVATE)`,
/// `umount2("/sys/fs/cgroup/unified", MNT_DETACH)` in the child before exec. crun 1.8
/// refuses hybrid hosts otherwise; the host's own mount namespace is never touched.
pub fn private_mounts_without_unified(cmd: &mut Command) {
    // SAFETY: the hook makes only system calls, on static NUL-terminated strings (see the
    // module's safety notes).
    unsafe {
        cmd.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(io::Error::last_os_error());
            }
            let root = c"/".as_ptr();
            if libc::mount(
                ptr::null(),
                root,
                ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                ptr::null(),
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            if libc::umount2(c"/sys/fs/cgroup/unified".as_ptr(), libc::MNT_DETACH) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Makes `cmd` start with `fork` rather than `posix_spawn`'s `vfork`: after a `vfork`
/// the child shares our memory until it execs, and the kernel records our resident set
/// as the child's `ru_maxrss`, so every tool would show at least xtask's size. After a
/// `fork` only the anonymous pages copied before exec count (well under 1 MiB here).
pub fn fork_not_vfork(cmd: &mut Command) {
    // SAFETY: the hook does nothing; its presence alone makes std use fork.
    unsafe {
        cmd.pre_exec(|| Ok(()));
    }
}

/// `struct clone_args` of `clone3(2)` (the kernel's v2 layout, with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// A program and its argv/envp as C arrays, made before any clone.
pub struct Exec {
    path: CString,
    _args: Vec<CString>,
    _env: CString,
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
}

// SAFETY: the raw pointers point into `path`/`_args` (owned, never mutated) or are null;
// sharing them between threads is sharing immutable strings.
unsafe impl Send for Exec {}
// SAFETY: as above.
unsafe impl Sync for Exec {}

impl Exec {
    /// `path` with `argv = [path]` and the environment every contender gets
    /// ([`super::setup::PATH`]).
    pub fn new(path: &str) -> Exec {
        let path = CString::new(path).expect("no NUL in the program path");
        let args = vec![path.clone()];
        let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(ptr::null());
        let env = CString::new(format!("PATH={}", super::setup::PATH)).expect("no NUL");
        Exec {
            envp: vec![env.as_ptr(), ptr::null()],
            path,
            _args: args,
            _env: env,
            argv,
        }
    }
}

/// The floor without namespaces: `clone3({.exit_signal = SIGCHLD})`, `execve` in the
/// child, `wait4` in the parent.
pub fn clone_exec(exec: &Exec) -> io::Result<Reaped> {
    let pid = clone3(0)?;
    if pid == 0 {
        // SAFETY: in the child; only execve and _exit (see the module's safety notes).
        unsafe { child_exec(exec) }
    }
    wait4(pid)
}

/// The namespaces of the floor: new mnt, pid, net, ipc and uts (the cgroup namespace is
/// unshared by the child once it is in its cgroup, so that its root is the new cgroup).
const FLOOR_NS: i32 = libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS;

/// The floor with namespaces and a cgroup, attached the usual way: the child blocks on a
/// pipe while the parent writes its pid into each `cgroup.procs` in `procs` (v1 places a
/// task only after it exists), then unshares its cgroup namespace and execs.
///
/// Moving a whole process takes `cgroup_threadgroup_rwsem` for writing, whose
/// `percpu_down_write` waits for an RCU grace period unless another writer was there
/// moments before: 5–27 ms on this VM after 50 ms of quiet, 0.1 ms back to back.
pub fn clone_ns_cgroup_exec(exec: &Exec, procs: &mut [File]) -> io::Result<Reaped> {
    let (rx, tx) = pipe()?;
    let (rx_fd, tx_fd) = (rx.as_raw_fd(), tx.as_raw_fd());
    let pid = clone3(FLOOR_NS as u64)?;
    if pid == 0 {
        // SAFETY: in the child; only close, read, unshare, execve and _exit on data
        // prepared before the clone (see the module's safety notes).
        unsafe {
            libc::close(tx_fd);
            let mut byte = 0u8;
            if libc::read(rx_fd, (&mut byte as *mut u8).cast(), 1) != 1 {
                libc::_exit(126);
            }
            if libc::unshare(libc::CLONE_NEWCGROUP) != 0 {
                libc::_exit(125);
            }
            child_exec(exec)
        }
    }
    drop(rx);
    let attached = procs
        .iter_mut()
        .try_for_each(|f| f.write_all(pid.to_string().as_bytes()));
    if let Err(err) = attached {
        // The child never runs the command: it is killed while it waits on the pipe.
        // SAFETY: pid is our child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = wait4(pid);
        return Err(err);
    }
    let mut tx = File::from(tx);
    tx.write_all(&[1])?;
    drop(tx);
    wait4(pid)
}

/// The floor with namespaces and a cgroup, attached by the child itself: before exec
/// it writes `0` (itself) into each v1 `tasks` file in `tasks` (opened by the parent
/// before the clone), then unshares its cgroup namespace and execs. Moving a single
/// thread by pid 0 skips `cgroup_threadgroup_rwsem` (kernel/cgroup/cgroup.c,
/// `cgroup_procs_write_start`), so no RCU grace period is waited for; a freshly cloned
/// child has one thread, so moving the thread moves the process.
pub fn clone_ns_self_attach_exec(exec: &Exec, tasks: &[File]) -> io::Result<Reaped> {
    let fds: Vec<i32> = tasks.iter().map(AsRawFd::as_raw_fd).collect();
    let pid = clone3(FLOOR_NS as u64)?;
    if pid == 0 {
        // SAFETY: in the child; only write, unshare, execve and _exit on data prepared
        // before the clone (see the module's safety notes).
        unsafe {
            for &fd in &fds {
                if libc::write(fd, c"0".as_ptr().cast(), 1) != 1 {
                    libc::_exit(124);
                }
            }
            if libc::unshare(libc::CLONE_NEWCGROUP) != 0 {
                libc::_exit(125);
            }
            child_exec(exec)
        }
    }
    wait4(pid)
}

/// `clone3` with `flags` and `SIGCHLD` as the exit signal: the child's pid in the parent,
/// 0 in the child.
fn clone3(flags: u64) -> io::Result<i32> {
    let mut args = CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    // SAFETY: args is a valid clone_args of the size passed; without CLONE_VM the child
    // gets a copy of our memory and returns here like after fork.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc as i32)
}

/// `execve(path, argv, envp)`, then `_exit(127)` if it returns.
///
/// # Safety
/// Only in a child of `clone3` (see the module's safety notes).
unsafe fn child_exec(exec: &Exec) -> ! {
    // SAFETY: path, argv and envp are NUL-terminated and null-terminated arrays that live
    // in our (copied) memory.
    unsafe {
        libc::execve(exec.path.as_ptr(), exec.argv.as_ptr(), exec.envp.as_ptr());
        libc::_exit(127)
    }
}

/// `pipe2(O_CLOEXEC)`: (read end, write end).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is valid for two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
