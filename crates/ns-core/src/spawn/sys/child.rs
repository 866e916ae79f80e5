//! The cloned child from `clone3` to `execve`: the leader's steps, then either the
//! command's steps and `execve`, or the tiny init that starts the command, stays as pid 1,
//! forwards signals, reaps zombies and reports the command's exact status.
//!
//! Everything here runs in a process that may only make system calls (see the Safety
//! section of [`super`]); what changes the process's fds, ids or signal handling, and so
//! would break any other process it ran in, is an `unsafe fn`.

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::RawFd;
use std::ptr::null;

use super::step::run;
use super::{Prepared, Record, TAG_ERROR, TAG_EXEC_OK, TAG_STATUS};

/// The calling thread's errno (no allocation: an OS error is a number).
pub(super) fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `_exit(code)`: ends the process at once, running no exit handler or destructor.
fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes an integer and does not return; the process ends without
    // touching memory that another thread could hold.
    unsafe { libc::_exit(code) }
}

/// Writes a record; the pipe is ours and the write is atomic.
pub(super) fn send(fd: RawFd, tag: u32, id: u32, value: i32) {
    let rec = Record {
        tag,
        id,
        value,
        pad: 0,
    };
    // SAFETY: the buffer is `rec`, on our stack, of the length given.
    unsafe {
        libc::write(
            fd,
            &rec as *const Record as *const libc::c_void,
            size_of::<Record>(),
        )
    };
}

/// Reports the failure of step `id` with `err` and ends the process.
fn fail(fd: RawFd, id: u32, err: i32) -> ! {
    send(fd, TAG_ERROR, id, err);
    exit_now(127)
}

/// Blocks until the parent writes a byte; false on EOF (the parent gave up).
pub(super) fn wait_go(fd: RawFd) -> bool {
    let mut b = 0u8;
    loop {
        // SAFETY: a one-byte buffer on our stack.
        let n = unsafe { libc::read(fd, &mut b as *mut u8 as *mut libc::c_void, 1) };
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
fn read_record(fd: RawFd, out: &mut [u8; 16]) -> usize {
    let mut got = 0;
    while got < out.len() {
        let rest = &mut out[got..];
        // SAFETY: `rest` is a writable buffer of the length given.
        let n = unsafe { libc::read(fd, rest.as_mut_ptr() as *mut libc::c_void, rest.len()) };
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

/// `rt_sigprocmask(how, set)` of the calling thread, as a raw system call (glibc's
/// wrapper keeps signals of its own out of `set`).
fn sigmask(how: libc::c_int, set: u64) {
    // SAFETY: `set` is an 8-byte mask on our stack; no old mask is asked for.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            how,
            &set as *const u64,
            null::<u64>(),
            8usize,
        )
    };
}

/// `close(fd)`.
///
/// # Safety
///
/// `fd` is the caller's to close: nothing else uses it afterwards (in the child, which
/// execs or exits, the fds it was given for its steps and the parent's pipe ends).
unsafe fn close(fd: RawFd) {
    // SAFETY: the caller gives up `fd`.
    unsafe { libc::close(fd) };
}

/// `prctl(PR_SET_DUMPABLE, 0)`: no process of another uid can ptrace this one or open its
/// `/proc/PID/fd`, cwd or root.
fn not_dumpable() {
    // SAFETY: integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
}

/// The cloned child. Never returns.
///
/// # Safety
///
/// Only in the child of [`super::clone`]: one thread, a private copy of the parent's
/// memory with `p` in it, which may only make system calls until it execs or exits. It
/// closes the parent's pipe ends, changes namespaces, ids and signal masks.
pub(super) unsafe fn child_main(p: &Prepared<'_>) -> ! {
    for &fd in p.close_first {
        // SAFETY: the parent's ends of the pipes, which the child never uses.
        unsafe { close(fd) };
    }
    if let Some(go) = p.go_rd {
        if !wait_go(go) {
            exit_now(127);
        }
    }
    // Until its execve the child is isol, with isol's fds (cgroup directories, `tasks`
    // files, namespace files, the state lock) and, once it joins a box's pid namespace
    // (exec, a pod member), in sight of the box's processes, with their uid and
    // capabilities: not dumpable, so that none can trace it or open its /proc/PID/fd,
    // cwd or root. (After the wait: a parent without privilege writes a new user
    // namespace's maps in /proc/PID, which would be root's.) The init and the command
    // inherit it; execve makes the command dumpable again as the program it runs.
    not_dumpable();
    for s in &p.program.leader {
        // SAFETY: we are the cloned child (this function's contract).
        if let Err(e) = unsafe { run(s, p) } {
            fail(p.err_wr, s.id, e);
        }
    }
    if p.init {
        // SAFETY: as above; the init is this process.
        unsafe { init_main(p) }
    } else {
        // SAFETY: as above; without an init this process is the command.
        unsafe { command_main(p, p.err_wr) }
    }
}

/// The process that execs: its steps, then `execve`. Failures go to `report`.
///
/// # Safety
///
/// Only in the cloned child, or in the command's process the init started
/// ([`fork_command`]): it resets the signal mask and SIGPIPE, runs the command's steps
/// and execs or exits.
unsafe fn command_main(p: &Prepared<'_>, report: RawFd) -> ! {
    sigmask(libc::SIG_SETMASK, 0);
    // Rust ignores SIGPIPE; a command expects the default (ignored dispositions survive
    // execve and CLONE_CLEAR_SIGHAND).
    // SAFETY: SIG_DFL is a valid disposition; no handler of ours is installed.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    for s in &p.program.command {
        // SAFETY: this function's contract is `run`'s.
        if let Err(e) = unsafe { run(s, p) } {
            fail(report, s.id, e);
        }
    }
    if p.hold {
        // SAFETY: as above; holding is this process's end.
        unsafe { hold(report) };
    }
    // SAFETY: as above: the fds are this process's, and it execs next.
    unsafe { cloexec_from(3) };
    // SAFETY: a C string and two NULL-terminated arrays of C strings (`CStrArray`), all
    // prepared before the clone and alive in this copy of the parent's memory.
    unsafe { libc::execve(p.exec_path.as_ptr(), p.argv.as_ptr(), p.envp.as_ptr()) };
    fail(report, p.exec_id, errno())
}

/// [`super::super::Command::hold`]'s end, where a command would exec: closes every fd
/// (`report` among them, which tells the waiting side the steps succeeded, as an exec
/// would), makes itself non-dumpable and waits for signals until one ends it.
///
/// # Safety
///
/// Only where the process is the child's: it closes every fd.
unsafe fn hold(report: RawFd) -> ! {
    not_dumpable();
    // SAFETY: the caller's report pipe, which it gives up here.
    unsafe { close(report) };
    // SAFETY: integer arguments; closing every fd is this function's contract.
    if unsafe { libc::syscall(libc::SYS_close_range, 0, libc::c_uint::MAX, 0) } != 0 {
        for fd in 0..4096 {
            // SAFETY: as above.
            unsafe { close(fd) };
        }
    }
    loop {
        // SAFETY: no arguments; it returns when a signal was caught.
        unsafe { libc::pause() };
    }
}

/// Marks every fd from `first` on close-on-exec (`close_range(2)` with
/// `CLOSE_RANGE_CLOEXEC`, Linux 5.11; a loop where it is missing), so that the command
/// gets its stdio and nothing else the spawner had open without `O_CLOEXEC`: a
/// directory fd would reach around a rootfs, a socket or a pipe would stay open.
///
/// # Safety
///
/// Only in a process that execs next: every fd it holds from `first` on closes then.
unsafe fn cloexec_from(first: RawFd) {
    /// `CLOSE_RANGE_CLOEXEC` in linux/close_range.h.
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: integer arguments; the caller is about to exec.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if r != 0 {
        for fd in first..4096 {
            // SAFETY: integer arguments; as above.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
}

/// The tiny init: forks the command, relays its exec outcome, forwards signals, reaps
/// zombies and reports the command's raw wait status over the error pipe.
///
/// # Safety
///
/// Only in the cloned child, as [`child_main`] is: it blocks every signal, closes every
/// fd but the error pipe, drops its capabilities and never returns.
unsafe fn init_main(p: &Prepared<'_>) -> ! {
    // Block everything (pid 1 drops unhandled signals; blocked ones queue) and take
    // signals with sigtimedwait.
    sigmask(libc::SIG_BLOCK, !0u64);
    // An inherited SIG_IGN for SIGCHLD would make the kernel reap the command for us.
    // SAFETY: SIG_DFL is a valid disposition; no handler of ours is installed.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    // The command's pid; none when the init holds on itself (`Command::hold`): then it
    // takes the command's steps, and as the pid namespace's first process no process
    // in the namespace can signal it away.
    let pid = if p.hold {
        for s in &p.program.command {
            // SAFETY: this function's contract is `run`'s.
            if let Err(e) = unsafe { run(s, p) } {
                fail(p.err_wr, s.id, e);
            }
        }
        None
    } else {
        // SAFETY: as above.
        Some(unsafe { start_command(p) })
    };
    // SAFETY: as above; the init keeps only its report pipe.
    unsafe { close_all_but(p.err_wr) };
    // From here the init only reaps and forwards signals, beside the box's processes,
    // which must not reach into it: not dumpable (no ptrace, no /proc/1/mem, cwd, root
    // or environ for them; set again, as the command's id change in the memory it
    // shared with the init until its exec set it to fs.suid_dumpable), no directory of
    // the caller's as its cwd, no new privileges from an exec, and of its creator's
    // capabilities only CAP_KILL (the command may run as another user). Before the
    // parent hears of the exec, so that a spawn that returned finds it done.
    not_dumpable();
    // SAFETY: a static C string.
    unsafe { libc::chdir(c"/".as_ptr()) };
    // SAFETY: integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if crate::security::sys::capset(1 << crate::security::Capability::KILL.number()).is_err() {
        let _ = crate::security::sys::capset(0);
    }
    send(p.err_wr, TAG_EXEC_OK, 0, pid.unwrap_or(0));
    // SAFETY: as above.
    unsafe { reap_and_forward(p.err_wr, pid) }
}

/// The init's life once the command runs: waits for signals (all blocked), reaps every
/// child that ends, forwards every other signal to the command, and when the command
/// ends reports its raw wait status to `report` and exits.
///
/// # Safety
///
/// Only in the init, with every signal blocked: it reaps every child of the process.
unsafe fn reap_and_forward(report: RawFd, pid: Option<libc::pid_t>) -> ! {
    let all: u64 = !0;
    loop {
        // SAFETY: siginfo_t is plain data, for which all zeroes is a valid value.
        let mut info: libc::siginfo_t = unsafe { zeroed() };
        // SAFETY: an 8-byte mask and a siginfo on our stack; no timeout.
        let sig = unsafe {
            libc::syscall(
                libc::SYS_rt_sigtimedwait,
                &all as *const u64,
                &mut info as *mut libc::siginfo_t,
                null::<libc::timespec>(),
                8usize,
            )
        } as i32;
        if sig <= 0 {
            continue;
        }
        if sig == libc::SIGCHLD {
            loop {
                let mut st = 0;
                // SAFETY: `st` is on our stack; reaping every child is this
                // function's contract.
                let r = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
                if r <= 0 {
                    break;
                }
                if Some(r) == pid {
                    send(report, TAG_STATUS, 0, st);
                    exit_now(0);
                }
            }
        } else if let Some(pid) = pid {
            // SAFETY: integer arguments: the command's pid, which the init has not
            // reaped, so it names no other process.
            unsafe { libc::kill(pid, sig) };
        }
    }
}

/// Forks the command, waits for its exec and returns its pid; when it fails before the
/// exec, passes its record on, reaps it and ends the init.
///
/// # Safety
///
/// Only in the init: it closes the command's stdio and the go pipe in this process.
unsafe fn start_command(p: &Prepared<'_>) -> libc::pid_t {
    let mut exec_pipe = [-1; 2];
    // SAFETY: a two-fd array on our stack.
    if unsafe { libc::pipe2(exec_pipe.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        fail(p.err_wr, p.fork_id, errno());
    }
    let start = CommandStart {
        p,
        exec_rd: exec_pipe[0],
        exec_wr: exec_pipe[1],
    };
    // SAFETY: `start` lives on our stack until the command has exec'd or exited.
    let pid = unsafe { fork_command(&start) };
    if pid < 0 {
        fail(p.err_wr, p.fork_id, -pid);
    }
    // SAFETY: the command's copies are its own; the init gives up the write end of the
    // exec pipe, the command's stdio and the go pipe.
    unsafe { close(exec_pipe[1]) };
    for &fd in p.close_in_init {
        // SAFETY: as above.
        unsafe { close(fd) };
    }
    if let Some(go) = p.go_rd {
        // SAFETY: as above.
        unsafe { close(go) };
    }
    let mut rec = [0u8; 16];
    if read_record(exec_pipe[0], &mut rec) == rec.len() {
        // SAFETY: the 16 bytes just read, on our stack.
        unsafe { libc::write(p.err_wr, rec.as_ptr() as *const libc::c_void, rec.len()) };
        let mut st = 0;
        // SAFETY: `st` is on our stack; the command is our child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        exit_now(127);
    }
    // SAFETY: the read end, done with.
    unsafe { close(exec_pipe[0]) };
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
///
/// # Safety
///
/// Only in the init (one thread, only system calls), with `start` alive until the call
/// returns: the command runs on it in the init's memory.
unsafe fn fork_command(start: &CommandStart<'_, '_>) -> libc::pid_t {
    let arg = start as *const CommandStart<'_, '_> as *mut libc::c_void;
    if !start.p.command_shares_memory {
        // SAFETY: a fork (SIGCHLD only, no new stack): the command continues on its own
        // copy of this stack, with its own copy of `start`.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                libc::SIGCHLD as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        if pid == 0 {
            command_entry(arg);
        }
        return if pid < 0 {
            -errno()
        } else {
            pid as libc::pid_t
        };
    }
    // SAFETY: a fresh anonymous private mapping; nothing else refers to it.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            GUARD + COMMAND_STACK,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return -errno();
    }
    let usable = stack
        .cast::<u8>()
        .wrapping_add(GUARD)
        .cast::<libc::c_void>();
    // SAFETY: the part of our mapping above its guard page.
    if unsafe { libc::mprotect(usable, COMMAND_STACK, libc::PROT_READ | libc::PROT_WRITE) } < 0 {
        let e = errno();
        // SAFETY: our mapping, unused.
        unsafe { libc::munmap(stack, GUARD + COMMAND_STACK) };
        return -e;
    }
    let top = usable.cast::<u8>().wrapping_add(COMMAND_STACK).cast();
    // SAFETY: `top` is the top of a writable stack that stays mapped until the command
    // has exec'd or exited (CLONE_VFORK suspends us until then); `arg` points to `start`,
    // alive on our stack as long; `command_entry` never returns into the clone.
    let pid = unsafe {
        libc::clone(
            command_entry,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            arg,
        )
    };
    let pid = if pid < 0 { -errno() } else { pid };
    // The command has exec'd or exited: the stack is the init's again.
    // SAFETY: our mapping, which nothing uses any more.
    unsafe { libc::munmap(stack, GUARD + COMMAND_STACK) };
    pid
}

/// The command's first function, on its own stack (see [`fork_command`], the only one
/// that starts it).
extern "C" fn command_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `CommandStart` that `fork_command`'s caller keeps alive on
    // its stack, which CLONE_VFORK keeps suspended until this process execs or exits.
    let start = unsafe { &*(arg as *const CommandStart<'_, '_>) };
    let p = start.p;
    // SAFETY: this process's copies of the init's end of the exec pipe, the error pipe
    // and the go pipe, which the command never uses.
    unsafe { close(start.exec_rd) };
    // SAFETY: as above.
    unsafe { close(p.err_wr) };
    if let Some(go) = p.go_rd {
        // SAFETY: as above.
        unsafe { close(go) };
    }
    // SAFETY: this process is the command's, freshly started by the init.
    unsafe { command_main(p, start.exec_wr) }
}

/// Closes every fd but `keep` (`close_range(2)`, Linux 5.9; a loop where it is missing).
/// The init never execs, so close-on-exec does not apply to it: without this it would
/// hold every fd the spawner had open for the box's whole life — an `flock`ed file
/// (and with it the lock), the write end of a pipe someone reads to EOF.
///
/// # Safety
///
/// Only in the init: every other fd of the process closes.
unsafe fn close_all_but(keep: RawFd) {
    let k = keep as libc::c_uint;
    let mut ok = true;
    if k > 0 {
        // SAFETY: integer arguments; closing is this function's contract.
        let r = unsafe { libc::syscall(libc::SYS_close_range, 0 as libc::c_uint, k - 1, 0u32) };
        ok &= r == 0;
    }
    // SAFETY: as above.
    let r = unsafe { libc::syscall(libc::SYS_close_range, k + 1, libc::c_uint::MAX, 0u32) };
    ok &= r == 0;
    if !ok {
        for fd in 0..4096 {
            if fd != keep {
                // SAFETY: as above.
                unsafe { close(fd) };
            }
        }
    }
}
