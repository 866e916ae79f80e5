//! The system calls of spawning: `clone3`, everything the child does until `execve`, the
//! tiny init that stays as pid 1, and the parent's pidfd calls.
//!
//! # Safety
//!
//! The child of `clone3` (no `CLONE_VM`: a copy of the parent's memory, one thread) may
//! run while another of the parent's threads held a lock — the allocator's, stdio's,
//! glibc's. So from the clone until `execve` or `_exit` the child code here only reads
//! data prepared before the clone ([`Prepared`], borrowed from the parent's stack and
//! heap, which the child sees as a private copy) and makes system calls: no allocation,
//! no lock, no Rust I/O, no panics (every error path ends in `_exit`). Id changes and
//! signal masks go through raw `syscall`s because glibc's wrappers for `setresuid`,
//! `setgroups` and `sigprocmask` consult per-thread bookkeeping that describes the
//! parent's threads, not the child's. Every pointer handed to the kernel points into
//! `Prepared`, which the parent keeps alive across the clone, or into the child's own
//! stack. The init starts the command with `clone(CLONE_VM | CLONE_VFORK)` on a stack
//! of its own ([`fork_command`]; libc's `clone` is a thin wrapper that runs no fork
//! handlers and takes no lock), or, into a time namespace, with a raw `clone(SIGCHLD)`.
#![allow(unsafe_code)]
#[cfg(not(target_pointer_width = "64"))]
compile_error!("isol's spawn path reads the kernel's 64-bit struct statfs");

use std::ffi::{c_char, CStr};
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::null;

use super::program::{Beneath, Op, Program, Step};
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

/// Everything the child needs, prepared before the clone.
pub(crate) struct Prepared<'a> {
    pub program: &'a Program,
    pub exec_path: &'a CStr,
    /// NULL-terminated.
    pub argv: &'a [*const c_char],
    /// NULL-terminated.
    pub envp: &'a [*const c_char],
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
    // SAFETY: `args` is a valid clone_args of the size passed; without CLONE_VM and with
    // a zero stack the kernel duplicates our address space, so the child continues here
    // on its own copy of this stack. The child branch never returns (see the module's
    // Safety section for what it may do).
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
        // SAFETY: we are the freshly cloned child; `prep` is our copy of the parent's data.
        unsafe { child_main(prep) }
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
        // SAFETY: siginfo_t is plain data; zeroed is a valid value.
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
        // SAFETY: waitid filled in a SIGCHLD siginfo (or left it zeroed with WNOHANG).
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        return Ok(Some(match info.si_code {
            libc::CLD_EXITED => ExitStatus::Exited(status),
            _ => ExitStatus::Signaled(status),
        }));
    }
}

// ---------------------------------------------------------------------------------------
// the child

fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

/// Writes a record; the pipe is ours and the write is atomic.
unsafe fn send(fd: RawFd, tag: u32, id: u32, value: i32) {
    let rec = Record {
        tag,
        id,
        value,
        pad: 0,
    };
    libc::write(
        fd,
        &rec as *const Record as *const libc::c_void,
        size_of::<Record>(),
    );
}

unsafe fn fail(fd: RawFd, id: u32, err: i32) -> ! {
    send(fd, TAG_ERROR, id, err);
    libc::_exit(127)
}

/// Blocks until the parent writes a byte; false on EOF (the parent gave up).
unsafe fn wait_go(fd: RawFd) -> bool {
    let mut b = 0u8;
    loop {
        let n = libc::read(fd, &mut b as *mut u8 as *mut libc::c_void, 1);
        if n == 1 {
            return true;
        }
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        return false;
    }
}

/// Reads exactly 16 bytes or up to EOF; the count read.
unsafe fn read_record(fd: RawFd, out: &mut [u8; 16]) -> usize {
    let mut got = 0;
    while got < out.len() {
        let n = libc::read(
            fd,
            out.as_mut_ptr().add(got) as *mut libc::c_void,
            out.len() - got,
        );
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            break;
        }
        got += n as usize;
    }
    got
}

unsafe fn sigmask(how: libc::c_int, set: u64) {
    libc::syscall(
        libc::SYS_rt_sigprocmask,
        how,
        &set as *const u64,
        null::<u64>(),
        8usize,
    );
}

/// The cloned child. Never returns.
unsafe fn child_main(p: &Prepared<'_>) -> ! {
    for &fd in p.close_first {
        libc::close(fd);
    }
    if let Some(go) = p.go_rd {
        if !wait_go(go) {
            libc::_exit(127);
        }
    }
    // Until its execve the child is isol, with isol's fds (cgroup directories, `tasks`
    // files, namespace files, the state lock) and, once it joins a box's pid namespace
    // (exec, a pod member), in sight of the box's processes, with their uid and
    // capabilities: not dumpable, so that none can trace it or open its /proc/PID/fd,
    // cwd or root. (After the wait: a parent without privilege writes a new user
    // namespace's maps in /proc/PID, which would be root's.) The init and the command
    // inherit it; execve makes the command dumpable again as the program it runs.
    libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    for s in &p.program.leader {
        if let Err(e) = run(s, p) {
            fail(p.err_wr, s.id, e);
        }
    }
    if p.init {
        init_main(p)
    } else {
        command_main(p, p.err_wr)
    }
}

/// The process that execs: its steps, then `execve`. Failures go to `report`.
unsafe fn command_main(p: &Prepared<'_>, report: RawFd) -> ! {
    sigmask(libc::SIG_SETMASK, 0);
    // Rust ignores SIGPIPE; a command expects the default (ignored dispositions survive
    // execve and CLONE_CLEAR_SIGHAND).
    libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    for s in &p.program.command {
        if let Err(e) = run(s, p) {
            fail(report, s.id, e);
        }
    }
    if p.hold {
        hold(report);
    }
    cloexec_from(3);
    libc::execve(p.exec_path.as_ptr(), p.argv.as_ptr(), p.envp.as_ptr());
    fail(report, p.exec_id, errno())
}

/// [`super::Command::hold`]'s end, where a command would exec: closes every fd (`report`
/// among them, which tells the waiting side the steps succeeded, as an exec would),
/// makes itself non-dumpable and waits for signals until one ends it.
unsafe fn hold(report: RawFd) -> ! {
    libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    libc::close(report);
    if libc::syscall(libc::SYS_close_range, 0, libc::c_uint::MAX, 0) != 0 {
        for fd in 0..4096 {
            libc::close(fd);
        }
    }
    loop {
        libc::pause();
    }
}

/// Marks every fd from `first` on close-on-exec (`close_range(2)` with
/// `CLOSE_RANGE_CLOEXEC`, Linux 5.11; a loop where it is missing), so that the command
/// gets its stdio and nothing else the spawner had open without `O_CLOEXEC`: a
/// directory fd would reach around a rootfs, a socket or a pipe would stay open.
unsafe fn cloexec_from(first: RawFd) {
    /// `CLOSE_RANGE_CLOEXEC` in linux/close_range.h.
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    let r = libc::syscall(
        libc::SYS_close_range,
        first as libc::c_uint,
        libc::c_uint::MAX,
        CLOSE_RANGE_CLOEXEC,
    );
    if r != 0 {
        for fd in first..4096 {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
}

/// The tiny init: forks the command, relays its exec outcome, forwards signals, reaps
/// zombies and reports the command's raw wait status over the error pipe.
unsafe fn init_main(p: &Prepared<'_>) -> ! {
    // Block everything (pid 1 drops unhandled signals; blocked ones queue) and take
    // signals with sigtimedwait.
    sigmask(libc::SIG_BLOCK, !0u64);
    // An inherited SIG_IGN for SIGCHLD would make the kernel reap the command for us.
    libc::signal(libc::SIGCHLD, libc::SIG_DFL);
    // The command's pid; none when the init holds on itself (`Command::hold`): then it
    // takes the command's steps, and as the pid namespace's first process no process
    // in the namespace can signal it away.
    let pid = if p.hold {
        for s in &p.program.command {
            if let Err(e) = run(s, p) {
                fail(p.err_wr, s.id, e);
            }
        }
        None
    } else {
        Some(start_command(p))
    };
    close_all_but(p.err_wr);
    // From here the init only reaps and forwards signals, beside the box's processes,
    // which must not reach into it: not dumpable (no ptrace, no /proc/1/mem, cwd, root
    // or environ for them; set again, as the command's id change in the memory it
    // shared with the init until its exec set it to fs.suid_dumpable), no directory of
    // the caller's as its cwd, no new privileges from an exec, and of its creator's
    // capabilities only CAP_KILL (the command may run as another user). Before the
    // parent hears of the exec, so that a spawn that returned finds it done.
    libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    libc::chdir(c"/".as_ptr());
    libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if crate::security::sys::capset(1 << crate::security::Capability::KILL.number()).is_err() {
        let _ = crate::security::sys::capset(0);
    }
    send(p.err_wr, TAG_EXEC_OK, 0, pid.unwrap_or(0));
    let all: u64 = !0;
    loop {
        let mut info: libc::siginfo_t = zeroed();
        let sig = libc::syscall(
            libc::SYS_rt_sigtimedwait,
            &all as *const u64,
            &mut info as *mut libc::siginfo_t,
            null::<libc::timespec>(),
            8usize,
        ) as i32;
        if sig <= 0 {
            continue;
        }
        if sig == libc::SIGCHLD {
            loop {
                let mut st = 0;
                let r = libc::waitpid(-1, &mut st, libc::WNOHANG);
                if r <= 0 {
                    break;
                }
                if Some(r) == pid {
                    send(p.err_wr, TAG_STATUS, 0, st);
                    libc::_exit(0);
                }
            }
        } else if let Some(pid) = pid {
            libc::kill(pid, sig);
        }
    }
}

/// Forks the command, waits for its exec and returns its pid; when it fails before the
/// exec, passes its record on, reaps it and ends the init.
unsafe fn start_command(p: &Prepared<'_>) -> libc::pid_t {
    let mut exec_pipe = [-1; 2];
    if libc::pipe2(exec_pipe.as_mut_ptr(), libc::O_CLOEXEC) < 0 {
        fail(p.err_wr, p.fork_id, errno());
    }
    let pid = fork_command(&CommandStart {
        p,
        exec_rd: exec_pipe[0],
        exec_wr: exec_pipe[1],
    });
    if pid < 0 {
        fail(p.err_wr, p.fork_id, -pid);
    }
    libc::close(exec_pipe[1]);
    for &fd in p.close_in_init {
        libc::close(fd);
    }
    if let Some(go) = p.go_rd {
        libc::close(go);
    }
    let mut rec = [0u8; 16];
    if read_record(exec_pipe[0], &mut rec) == rec.len() {
        libc::write(p.err_wr, rec.as_ptr() as *const libc::c_void, rec.len());
        let mut st = 0;
        libc::waitpid(pid, &mut st, 0);
        libc::_exit(127);
    }
    libc::close(exec_pipe[0]);
    pid
}

/// What the command's process needs from the init.
struct CommandStart<'a, 'p> {
    p: &'a Prepared<'p>,
    exec_rd: RawFd,
    exec_wr: RawFd,
}

/// The command's stack: far more than its steps use (they keep no large buffers), and
/// only the pages it touches are ever allocated.
const COMMAND_STACK: usize = 512 * 1024;
/// A page left inaccessible below the command's stack, so that an overflow faults.
const GUARD: usize = 4096;

/// Starts the command: `clone(CLONE_VM | CLONE_VFORK)` onto a stack of its own, the
/// way `posix_spawn` starts a program. The command runs in the init's memory and the
/// init sleeps until it execs or exits, so nothing of the init's memory is copied (its
/// page tables are isol's, which a fork copied and the exec threw away again; 0.2 ms a
/// spawn). The command only reads [`Prepared`] and writes its own stack; file
/// descriptors, credentials, seccomp filters, signal handlers and rlimits stay its own,
/// since no `CLONE_FILES`, `CLONE_THREAD` or `CLONE_SIGHAND` is given. A command that
/// enters a time namespace is forked (see [`Prepared::command_shares_memory`]). The
/// child pid, or minus the errno.
unsafe fn fork_command(start: &CommandStart<'_, '_>) -> libc::pid_t {
    if !start.p.command_shares_memory {
        let pid = libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        );
        if pid == 0 {
            command_entry(start as *const CommandStart<'_, '_> as *mut libc::c_void);
        }
        return if pid < 0 {
            -errno()
        } else {
            pid as libc::pid_t
        };
    }
    let stack = libc::mmap(
        std::ptr::null_mut(),
        GUARD + COMMAND_STACK,
        libc::PROT_NONE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
        -1,
        0,
    );
    if stack == libc::MAP_FAILED {
        return -errno();
    }
    let usable = (stack as *mut u8).add(GUARD) as *mut libc::c_void;
    if libc::mprotect(usable, COMMAND_STACK, libc::PROT_READ | libc::PROT_WRITE) < 0 {
        let e = errno();
        libc::munmap(stack, GUARD + COMMAND_STACK);
        return -e;
    }
    let top = (usable as *mut u8).add(COMMAND_STACK) as *mut libc::c_void;
    let pid = libc::clone(
        command_entry,
        top,
        libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
        start as *const CommandStart<'_, '_> as *mut libc::c_void,
    );
    let pid = if pid < 0 { -errno() } else { pid };
    // The command has exec'd or exited: the stack is the init's again.
    libc::munmap(stack, GUARD + COMMAND_STACK);
    pid
}

/// The command's first function, on its own stack (see [`fork_command`]).
extern "C" fn command_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `CommandStart` that `fork_command`'s caller keeps alive on
    // its stack, which CLONE_VFORK keeps suspended until this process execs or exits.
    unsafe {
        let start = &*(arg as *const CommandStart<'_, '_>);
        let p = start.p;
        libc::close(start.exec_rd);
        libc::close(p.err_wr);
        if let Some(go) = p.go_rd {
            libc::close(go);
        }
        command_main(p, start.exec_wr)
    }
}

/// Closes every fd but `keep` (`close_range(2)`, Linux 5.9; a loop where it is missing).
/// The init never execs, so close-on-exec does not apply to it: without this it would
/// hold every fd the spawner had open for the box's whole life — an `flock`ed file
/// (and with it the lock), the write end of a pipe someone reads to EOF.
unsafe fn close_all_but(keep: RawFd) {
    let k = keep as libc::c_uint;
    let mut ok = true;
    if k > 0 {
        ok &= libc::syscall(
            libc::SYS_close_range,
            0 as libc::c_uint,
            k - 1,
            0 as libc::c_uint,
        ) == 0;
    }
    ok &= libc::syscall(
        libc::SYS_close_range,
        k + 1,
        libc::c_uint::MAX,
        0 as libc::c_uint,
    ) == 0;
    if !ok {
        for fd in 0..4096 {
            if fd != keep {
                libc::close(fd);
            }
        }
    }
}

/// `struct ifreq` with the flags member (netdevice(7)).
#[repr(C)]
struct IfReqFlags {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    pad: [u8; 22],
}

fn check(r: libc::c_int) -> Result<(), i32> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

fn opt(c: &Option<std::ffi::CString>) -> *const c_char {
    c.as_ref().map_or(null(), |c| c.as_ptr())
}

/// Runs one step; the errno on failure.
unsafe fn run(s: &Step, p: &Prepared<'_>) -> Result<(), i32> {
    match &s.op {
        Op::Setns { fd, nstype } => check(libc::setns(*fd, *nstype)),
        Op::Unshare { flags } => check(libc::unshare(*flags)),
        Op::JoinCgroup { fd } => {
            // SAFETY (of the call): a two-byte static buffer and an fd the parent opened
            // for us before the clone.
            let n = libc::write(*fd, b"0".as_ptr().cast(), 1);
            if n == 1 {
                Ok(())
            } else {
                Err(errno())
            }
        }
        Op::TimeReady => {
            send(p.err_wr, TAG_TIME_READY, s.id, 0);
            match p.go_rd {
                Some(go) if wait_go(go) => Ok(()),
                _ => Err(libc::EPIPE),
            }
        }
        Op::Sethostname { name } => check(libc::sethostname(name.as_ptr(), name.as_bytes().len())),
        Op::Setdomainname { name } => {
            check(libc::setdomainname(name.as_ptr(), name.as_bytes().len()))
        }
        Op::LoopbackUp => {
            let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            check(sock)?;
            let mut req: IfReqFlags = zeroed();
            req.name[..2].copy_from_slice(b"lo");
            let mut r = libc::ioctl(sock, libc::SIOCGIFFLAGS as _, &mut req as *mut IfReqFlags);
            if r == 0 {
                req.flags |= libc::IFF_UP as libc::c_short;
                r = libc::ioctl(sock, libc::SIOCSIFFLAGS as _, &mut req as *mut IfReqFlags);
            }
            closing(sock, r.into()).map(drop)
        }
        Op::Mount {
            src,
            dst,
            fstype,
            flags,
            data,
        } => check(libc::mount(
            opt(src),
            dst.as_ptr(),
            opt(fstype),
            *flags,
            opt(data) as *const libc::c_void,
        )),
        Op::RemountReadOnly { dst } => crate::security::sys::remount_read_only(dst),
        Op::BindReadOnly { src, dst } => crate::security::sys::bind_read_only(src, dst),
        Op::Mkdir {
            path,
            mode,
            beneath,
        } => {
            let r = match beneath {
                Some(b) => mkdir_beneath(b, *mode),
                None => check(libc::mkdir(path.as_ptr(), *mode)),
            };
            match r {
                Err(libc::EEXIST) => Ok(()),
                r => r,
            }
        }
        Op::Mknod {
            path,
            host,
            dev,
            mode,
        } => match check(libc::mknod(path.as_ptr(), libc::S_IFCHR | *mode, *dev)) {
            Err(libc::EPERM) => {
                touch(path, None)?;
                crate::security::sys::bind_read_only(host, path)
            }
            r => {
                r?;
                check(libc::chmod(path.as_ptr(), *mode))
            }
        },
        Op::Touch { path, beneath } => touch(path, beneath.as_ref()),
        Op::Symlink { target, link } => {
            if libc::symlink(target.as_ptr(), link.as_ptr()) < 0 && errno() != libc::EEXIST {
                return Err(errno());
            }
            Ok(())
        }
        Op::PivotRoot { root, pivot } => {
            let dot = c".".as_ptr();
            check(libc::chdir(root.as_ptr()))?;
            if *pivot && libc::syscall(libc::SYS_pivot_root, dot, dot) == 0 {
                check(libc::umount2(dot, libc::MNT_DETACH))?;
            } else if !*pivot || errno() == libc::EINVAL {
                // An initramfs root cannot be pivoted away from: move the new root onto
                // `/` and chroot into it, as switch_root does.
                check(libc::mount(
                    dot,
                    c"/".as_ptr(),
                    null(),
                    libc::MS_MOVE,
                    null(),
                ))?;
                check(libc::chroot(dot))?;
            } else {
                return Err(errno());
            }
            check(libc::chdir(c"/".as_ptr()))
        }
        Op::Chdir { path } => check(libc::chdir(path.as_ptr())),
        Op::Setsid => check(libc::setsid()),
        Op::Dup2 { fd, to } => {
            if fd == to {
                check(libc::fcntl(*fd, libc::F_SETFD, 0))
            } else {
                check(libc::dup2(*fd, *to))
            }
        }
        Op::Setgroups { groups } => {
            check(libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) as libc::c_int)
        }
        Op::Setgid { gid } => {
            check(libc::syscall(libc::SYS_setresgid, *gid, *gid, *gid) as libc::c_int)
        }
        Op::Setuid { uid } => {
            check(libc::syscall(libc::SYS_setresuid, *uid, *uid, *uid) as libc::c_int)
        }
        Op::Security(op) => crate::security::sys::run(op),
        Op::DieWithInit => {
            let init = libc::getppid();
            check(libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
            ))?;
            // The init waits for the command (in vfork, or in its loop); only a SIGKILL
            // ends it before this, and then the command has another parent.
            if libc::getppid() != init {
                return Err(libc::ESRCH);
            }
            Ok(())
        }
        Op::DieWithParent { pidfd } => {
            check(libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
            ))?;
            let mut pfd = libc::pollfd {
                fd: *pidfd,
                events: libc::POLLIN,
                revents: 0,
            };
            if libc::poll(&mut pfd, 1, 0) > 0 && pfd.revents & libc::POLLIN != 0 {
                return Err(libc::ESRCH);
            }
            Ok(())
        }
    }
}

/// [`Op::Touch`]: an empty file to mount onto, made beneath a rootfs when in one
/// (`O_CREAT | O_EXCL`). A file already there is used as it is, never opened: a device
/// node would open the device, which the box's device list may refuse, and a file on a
/// read-only mount refuses opening for writing. Beneath a rootfs, a symlink in its place
/// is refused (ELOOP), since the mount would follow it.
unsafe fn touch(path: &CStr, beneath: Option<&Beneath>) -> Result<(), i32> {
    let flags = libc::O_CREAT | libc::O_EXCL | libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY;
    let Some(b) = beneath else {
        let fd = libc::open(path.as_ptr(), flags, 0o644);
        return match check(fd) {
            Ok(()) => check(libc::close(fd)),
            Err(libc::EEXIST) => Ok(()),
            Err(e) => Err(e),
        };
    };
    let dir = open_beneath(b)?;
    let fd = libc::openat(dir, b.name.as_ptr(), flags | libc::O_NOFOLLOW, 0o644);
    let r = match check(fd) {
        Ok(()) => check(libc::close(fd)),
        Err(libc::EEXIST) => {
            let mut st: libc::stat = std::mem::zeroed();
            let found = libc::fstatat(dir, b.name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW);
            match check(found) {
                Ok(()) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => Err(libc::ELOOP),
                r => r,
            }
        }
        Err(e) => Err(e),
    };
    closing(dir, 0).and(r)
}

/// `mkdirat` of a [`Beneath`] path in its parent, opened beneath the rootfs.
unsafe fn mkdir_beneath(b: &Beneath, mode: libc::mode_t) -> Result<(), i32> {
    let dir = open_beneath(b)?;
    closing(dir, libc::mkdirat(dir, b.name.as_ptr(), mode).into()).map(drop)
}

/// The parent directory of a [`Beneath`] path, opened (`O_PATH`) beneath its rootfs
/// without following any symlink (`openat2`, Linux 5.6): ELOOP when the rootfs holds one
/// on the way, EXDEV when `..` would climb out. Where the kernel lacks openat2 (ENOSYS),
/// the parent's path as it is.
unsafe fn open_beneath(b: &Beneath) -> Result<RawFd, i32> {
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
    const RESOLVE_NO_SYMLINKS: u64 = 0x04;
    const RESOLVE_BENEATH: u64 = 0x08;
    let dir_flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
    let root = libc::open(b.root.as_ptr(), dir_flags);
    check(root)?;
    if b.parent.as_bytes().is_empty() {
        return Ok(root);
    }
    let how = OpenHow {
        flags: dir_flags as u64,
        mode: 0,
        resolve: RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    let fd = libc::syscall(
        libc::SYS_openat2,
        root,
        b.parent.as_ptr(),
        &how as *const OpenHow,
        size_of::<OpenHow>(),
    );
    let e = errno();
    let fd = if fd < 0 && e == libc::ENOSYS {
        libc::openat(root, b.parent.as_ptr(), dir_flags) as libc::c_long
    } else {
        fd
    };
    closing(root, fd).map(|fd| fd as RawFd)
}

/// `r`, the result of a call made with `fd` (negative on failure: its errno is read
/// first), once `fd` is closed.
unsafe fn closing(fd: RawFd, r: libc::c_long) -> Result<libc::c_long, i32> {
    let e = errno();
    libc::close(fd);
    if r < 0 {
        Err(e)
    } else {
        Ok(r)
    }
}

/// `pidfd_open(getpid(), 0)`: a pidfd of the calling process (close-on-exec).
pub(crate) fn pidfd_self() -> io::Result<OwnedFd> {
    // SAFETY: two integer arguments; on success the kernel returns a new fd nobody else owns.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh fd that only we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    /// What a box sharing a rootfs could plant there after the parent's check: a
    /// directory swapped for a symlink to the host, a file for a (dangling) one. The
    /// child's mkdir and create follow neither; a plain path they follow do.
    #[test]
    fn nothing_is_made_through_a_rootfs_symlink() {
        let root = tempfile::tempdir().unwrap();
        let host = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("d")).unwrap();
        std::os::unix::fs::symlink(host.path(), root.path().join("link")).unwrap();
        std::os::unix::fs::symlink(host.path().join("planted"), root.path().join("d/f")).unwrap();
        let c = |s: &str| CString::new(s).unwrap();
        let at = |parent: &str, name: &str| Beneath {
            root: c(root.path().to_str().unwrap()),
            parent: c(parent),
            name: c(name),
        };
        // SAFETY: system calls on C strings; the fds made are closed.
        unsafe {
            assert_eq!(mkdir_beneath(&at("link", "x"), 0o755), Err(libc::ELOOP));
            assert_eq!(mkdir_beneath(&at("d/../..", "x"), 0o755), Err(libc::EXDEV));
            let p = c("unused");
            assert_eq!(touch(&p, Some(&at("d", "f"))), Err(libc::ELOOP));
            assert_eq!(touch(&p, Some(&at("link", "y"))), Err(libc::ELOOP));
            // Where nothing was swapped they make what they should, and a file there
            // already is taken as it is, even one that cannot be opened.
            mkdir_beneath(&at("d", "sub"), 0o755).unwrap();
            mkdir_beneath(&at("", "top"), 0o755).unwrap();
            touch(&p, Some(&at("d/sub", "file"))).unwrap();
            touch(&p, Some(&at("d/sub", "file"))).unwrap();
            // (Opening a FIFO for reading would wait for a writer.)
            let fifo = root.path().join("fifo");
            assert_eq!(libc::mkfifo(c(fifo.to_str().unwrap()).as_ptr(), 0o600), 0);
            touch(&c(fifo.to_str().unwrap()), None).unwrap();
        }
        assert_eq!(
            std::fs::read_dir(host.path()).unwrap().count(),
            0,
            "nothing on the host's side"
        );
        assert!(root.path().join("d/sub/file").is_file());
        assert!(root.path().join("top").is_dir());
    }
}
