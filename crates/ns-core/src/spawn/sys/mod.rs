//! The system calls of spawning. This file holds what the parent calls — `clone3`, the
//! pidfd calls, the namespace-file ioctl — as safe wrappers; [`child`] is everything the
//! cloned child does until `execve` (and the tiny init that stays as pid 1), and [`step`]
//! runs one step of the child's [`Program`].
//!
//! # Safety
//!
//! The child of `clone3` (no `CLONE_VM`: a copy of the parent's memory, one thread) may
//! run while another of the parent's threads held a lock — the allocator's, stdio's,
//! glibc's. So from the clone until `execve` or `_exit` the child code only reads data
//! prepared before the clone ([`Prepared`], borrowed from the parent's stack and heap,
//! which the child sees as a private copy) and makes system calls: no allocation, no
//! lock, no Rust I/O, no panics (every error path ends in `_exit`). Id changes and signal
//! masks go through raw `syscall`s because glibc's wrappers for `setresuid`, `setgroups`
//! and `sigprocmask` consult per-thread bookkeeping that describes the parent's threads,
//! not the child's. Every pointer handed to the kernel points into `Prepared`, which the
//! parent keeps alive across the clone, or into the child's own stack. The init starts
//! the command with `clone(CLONE_VM | CLONE_VFORK)` on a stack of its own
//! (`child::fork_command`; libc's `clone` is a thin wrapper that runs no fork handlers and
//! takes no lock), or, into a time namespace, with a raw `clone(SIGCHLD)`.
//!
//! What would break the process it runs in when called anywhere else — the child's
//! `child_main` and what it calls to change ids, namespaces, fds and signal masks — is an
//! `unsafe fn` whose `# Safety` section says so; [`clone`] is the one place that calls
//! into it, in the freshly cloned child.
#![allow(unsafe_code)]
#[cfg(not(target_pointer_width = "64"))]
compile_error!("isol's spawn path reads the kernel's 64-bit struct statfs");

mod child;
mod step;

use std::ffi::{c_char, CStr, CString};
use std::io;
use std::marker::PhantomData;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::null;

use super::program::Program;
use super::ExitStatus;

/// `CLONE_PIDFD`: return a pidfd of the child (Linux 5.2).
const CLONE_PIDFD: u64 = 0x1000;
/// `CLONE_CLEAR_SIGHAND`: reset handled signals to their default in the child (Linux 5.5).
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
/// `CLONE_INTO_CGROUP`: create the child in the cgroup given by fd (Linux 5.7, v2).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Record tags sent over the error pipe.
pub(crate) const TAG_ERROR: u32 = 1;
pub(crate) const TAG_EXEC_OK: u32 = 2;
pub(crate) const TAG_TIME_READY: u32 = 3;
pub(crate) const TAG_STATUS: u32 = 4;

/// A fixed-size message from the child: what happened, at which step, and the errno
/// (or the command's raw wait status). 16 bytes: written atomically (< PIPE_BUF).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Record {
    pub tag: u32,
    pub id: u32,
    pub value: i32,
    pub pad: u32,
}

impl Record {
    pub(crate) fn from_bytes(b: [u8; 16]) -> Record {
        let word = |i: usize| [b[i], b[i + 1], b[i + 2], b[i + 3]];
        Record {
            tag: u32::from_ne_bytes(word(0)),
            id: u32::from_ne_bytes(word(4)),
            value: i32::from_ne_bytes(word(8)),
            pad: 0,
        }
    }
}

/// `struct clone_args` (linux/sched.h), `CLONE_ARGS_SIZE_VER2`.
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

/// A NULL-terminated array of pointers to C strings, as `execve` takes its `argv` and
/// `envp`, borrowing the strings: built before the clone, so the child only reads it.
pub(crate) struct CStrArray<'a> {
    ptrs: Vec<*const c_char>,
    strings: PhantomData<&'a [CString]>,
}

impl<'a> CStrArray<'a> {
    /// The pointers of `strings`, then NULL.
    pub(crate) fn new(strings: &'a [CString]) -> CStrArray<'a> {
        let ptrs = strings
            .iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(null()))
            .collect();
        CStrArray {
            ptrs,
            strings: PhantomData,
        }
    }

    /// The array, valid (and NULL-terminated) while `self` lives.
    fn as_ptr(&self) -> *const *const c_char {
        self.ptrs.as_ptr()
    }
}

/// Everything the child needs, prepared before the clone.
pub(crate) struct Prepared<'a> {
    pub program: &'a Program,
    pub exec_path: &'a CStr,
    pub argv: &'a CStrArray<'a>,
    pub envp: &'a CStrArray<'a>,
    pub exec_id: u32,
    pub fork_id: u32,
    /// Read end of the go pipe: wait for one byte before anything else.
    pub go_rd: Option<RawFd>,
    /// Write end of the error pipe (close-on-exec).
    pub err_wr: RawFd,
    /// The parent's ends of every pipe: closed first thing in the child.
    pub close_first: &'a [RawFd],
    /// The command's stdio fds: the init closes its copies after the fork.
    pub close_in_init: &'a [RawFd],
    /// Fork the command from a tiny init (new or joined pid/time namespace).
    pub init: bool,
    /// The init may start the command in its own memory (`CLONE_VM`): not when the
    /// command enters another time namespace, whose clock offsets live in a vDSO data
    /// page of their own (the kernel refuses `CLONE_VM` there with EINVAL).
    pub command_shares_memory: bool,
    /// No `execve`: the command holds on instead ([`super::Command::hold`]).
    pub hold: bool,
}

/// `clone3(CLONE_PIDFD | CLONE_CLEAR_SIGHAND | ns_flags [| CLONE_INTO_CGROUP])`, fork-like
/// (no new stack). In the child this runs [`Prepared`]'s program and never returns. In
/// the parent it returns the child's pid and pidfd.
pub(crate) fn clone(
    ns_flags: libc::c_int,
    cgroup: Option<BorrowedFd<'_>>,
    prep: &Prepared<'_>,
) -> io::Result<(u32, OwnedFd)> {
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: CLONE_PIDFD | CLONE_CLEAR_SIGHAND | (ns_flags as u32 as u64),
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: `args` is a valid clone_args of the size passed, and `pidfd` outlives the
    // call; without CLONE_VM and with a zero stack the kernel duplicates our address
    // space, so the child continues here on its own copy of this stack.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            size_of::<CloneArgs>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    if ret == 0 {
        // SAFETY: we are the freshly cloned child — one thread, a private copy of the
        // parent's memory, `prep` among it — and `child_main` never returns: it ends in
        // execve or _exit.
        unsafe { child::child_main(prep) }
    }
    // SAFETY: CLONE_PIDFD stored a new fd that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok((ret as u32, pidfd))
}

/// Registers a pidfd with tokio's reactor (readable when the process exits).
pub(crate) fn async_pidfd(fd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd owns `fd` (an OwnedFd, whose raw fd cannot change or be closed
    // by anyone else) for its whole life.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

/// `ioctl(fd, NS_GET_NSTYPE)` (Linux 4.11): the `CLONE_NEW*` flag of the namespace `fd`
/// refers to; an error (ENOTTY) when it is not a namespace file.
pub(crate) fn ns_type(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    /// `_IO(0xb7, 0x3)` in linux/nsfs.h.
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: an ioctl that takes no argument, on a borrowed (so open) fd.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE as _) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)`.
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: integer arguments and a NULL siginfo; the fd is borrowed, so open.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `waitid(P_PIDFD, pidfd, WEXITED [| WNOHANG])`: the exit of the process behind `pidfd`,
/// `None` with `nohang` while it runs.
pub(crate) fn wait_pidfd(pidfd: BorrowedFd<'_>, nohang: bool) -> io::Result<Option<ExitStatus>> {
    loop {
        // SAFETY: siginfo_t is plain data, for which all zeroes is a valid value.
        let mut info: libc::siginfo_t = unsafe { zeroed() };
        let flags = libc::WEXITED | if nohang { libc::WNOHANG } else { 0 };
        // SAFETY: `info` is a valid out-pointer; the fd is borrowed, so open.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                flags,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        // SAFETY: waitid filled in a SIGCHLD siginfo (or left it zeroed with WNOHANG),
        // which holds si_pid and si_status.
        let pid = unsafe { info.si_pid() };
        // SAFETY: as for si_pid.
        let status = unsafe { info.si_status() };
        if pid == 0 {
            return Ok(None);
        }
        return Ok(Some(match info.si_code {
            libc::CLD_EXITED => ExitStatus::Exited(status),
            _ => ExitStatus::Signaled(status),
        }));
    }
}

/// `pidfd_open(getpid(), 0)`: a pidfd of the calling process (close-on-exec).
pub(crate) fn pidfd_self() -> io::Result<OwnedFd> {
    let pid = std::process::id() as libc::pid_t;
    // SAFETY: two integer arguments; on success the kernel returns a new fd nobody else owns.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh fd that only we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
