//! The CLI's few system calls that Rust cannot check: forking the supervisor of a
//! detached box, closing the fds isol's caller left open to it, and restoring SIGPIPE's
//! default for the commands that only print. Everything else the CLI does goes through
//! safe wrappers (nix, the libraries).
//!
//! # Safety
//!
//! - [`fork`]: `fork(2)` in a multi-threaded process leaves the child with only the
//!   calling thread, while locks held by the others (the allocator's, stdio's) stay
//!   locked forever. So it first checks that the process has exactly one thread
//!   (`/proc/self/task`) and refuses otherwise; isol forks before it starts any runtime
//!   or thread.
//! - [`InheritedFds`]: closes fds that nothing in isol owns, found open before isol
//!   opened any of its own.
//! - [`default_sigpipe`]: changes one signal's disposition, which isol never handles.
#![allow(unsafe_code)]

use std::os::fd::RawFd;

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

/// The fds above stderr that isol's caller left open to it, found before isol opens
/// anything of its own, so that the supervisor of a detached box can close them once
/// the box is started and hold no pipe, socket or file of the caller's for the box's
/// life.
pub struct InheritedFds(Vec<RawFd>);

impl InheritedFds {
    /// The fds above stderr open now, from `/proc/self/fd`. Called first thing, while
    /// every such fd is the caller's: nothing in isol owns them.
    pub fn find() -> InheritedFds {
        let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
            return InheritedFds(Vec::new());
        };
        let fds: Vec<RawFd> = dir
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter(|&fd| fd > 2)
            .collect();
        // The directory's own fd was in the listing and is closed now.
        let open = fds
            .into_iter()
            // SAFETY: F_GETFD only asks whether the fd is open; it changes nothing.
            .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0)
            .collect();
        InheritedFds(open)
    }

    /// Closes them.
    pub fn close(self) {
        for fd in self.0 {
            // SAFETY: the caller's fds, open before isol opened any, so no `OwnedFd` or
            // `File` of isol's holds them; `self` is consumed, so none is closed twice.
            unsafe { libc::close(fd) };
        }
    }
}

/// `signal(SIGPIPE, SIG_DFL)`: a write to a pipe without a reader kills the process, as
/// it does other Unix tools (Rust starts programs with SIGPIPE ignored).
pub fn default_sigpipe() {
    // SAFETY: restores the default disposition of one signal; isol installs no handler
    // for it, so no handler of ours is replaced while it might run.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
