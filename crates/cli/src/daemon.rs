//! Forking the supervisor of a detached box.
//!
//! A detached box needs a process that outlives `isol run -d` and can learn the box's
//! exit status. Only the parent of a process can `waitid(2)` on it, so the supervisor is
//! forked *before* the box is spawned: it claims the name, spawns the box (becoming its
//! parent), reports the outcome to the waiting `isol run -d` over a pipe, and then waits
//! for the box and writes its exit status into the box record.
//!
//! # Safety
//!
//! `fork(2)` in a multi-threaded process leaves the child with only the calling thread,
//! while locks held by the others (the allocator's, stdio's) stay locked forever. So
//! [`fork`] first checks that the process has exactly one thread (`/proc/self/task`)
//! and refuses otherwise; isol forks before it starts any runtime or thread.
#![allow(unsafe_code)]

use std::os::fd::{OwnedFd, RawFd};

use anyhow::{bail, Context, Result};

/// Which side of the fork we are on.
pub enum Forked {
    /// The original process, and the new one's pid.
    Parent(nix::unistd::Pid),
    /// The new process.
    Child,
}

/// `fork(2)`, refused unless the caller is single-threaded.
pub fn fork() -> Result<Forked> {
    let threads = std::fs::read_dir("/proc/self/task")
        .context("read /proc/self/task")?
        .count();
    if threads != 1 {
        bail!("fork the supervisor: isol has {threads} threads, and forking is only safe with one");
    }
    // SAFETY: the process has exactly one thread (checked above), so no lock can be held
    // by a thread that does not exist in the child; the child goes on as a normal
    // single-threaded Rust program.
    match unsafe { nix::unistd::fork() }.context("fork the supervisor")? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
    }
}

/// The fds above stderr that isol's caller left open to it, from `/proc/self/fd`: read
/// before isol opens anything of its own, so that the supervisor can close them once the
/// box is started and hold no pipe, socket or file of the caller's for the box's life.
pub fn inherited_fds() -> Vec<RawFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    let fds: Vec<RawFd> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    // The directory's own fd was in the listing and is closed now.
    fds.into_iter()
        // SAFETY: F_GETFD only asks whether the fd is open.
        .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0)
        .collect()
}

/// Closes what [`inherited_fds`] found.
pub fn close_inherited(fds: &[RawFd]) {
    for &fd in fds {
        // SAFETY: these fds were the caller's, open before isol opened any, and nothing
        // of isol's owns them.
        unsafe { libc::close(fd) };
    }
}

/// Becomes a session leader and points stdin, stdout and stderr at `/dev/null`, so
/// the supervisor holds no terminal and no pipe of whoever started `isol run -d`
/// (`$(isol run -d …)` returns as soon as the name is printed).
pub fn detach_stdio() -> Result<()> {
    nix::unistd::setsid().context("setsid")?;
    let null: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .context("open /dev/null")?
        .into();
    nix::unistd::dup2_stdin(&null).context("dup2 /dev/null")?;
    nix::unistd::dup2_stdout(&null).context("dup2 /dev/null")?;
    nix::unistd::dup2_stderr(&null).context("dup2 /dev/null")?;
    Ok(())
}
