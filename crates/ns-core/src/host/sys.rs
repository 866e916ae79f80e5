//! The system calls behind the probes of [`KernelFeatures`](super::KernelFeatures): each
//! asks the kernel whether a call exists by making it where it can do nothing.
//!
//! # Safety
//!
//! `libc::syscall` is unsafe because the kernel reads and writes through whatever
//! pointers it is given. Here it gets integers and one NULL pointer with a size of 0,
//! which the kernel refuses before following it; the one thing a probe is given, a
//! pidfd, is owned at once by an `OwnedFd`, which closes it.
#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd};

/// `clone3(NULL, 0)`: whether the call exists. Where it does the kernel refuses the size
/// (EINVAL) before it reads anything or creates a process; where it does not, ENOSYS.
///
/// # References
/// clone(2)
pub(super) fn clone3_exists() -> bool {
    // SAFETY: a NULL `clone_args` of size 0, which the kernel refuses before reading
    // through it; no process is created.
    let r = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) };
    r == -1 && std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS)
}

/// `pidfd_open(getpid(), 0)`: whether the call works. The pidfd is closed again.
///
/// # References
/// pidfd_open(2)
pub(super) fn pidfd_open_works() -> bool {
    let pid = std::process::id() as libc::pid_t;
    // SAFETY: integer arguments only; the kernel reads and writes nothing of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return false;
    }
    // SAFETY: `fd` was just returned by the kernel, a new descriptor nothing else holds:
    // ours to own, and closed when the `OwnedFd` drops.
    drop(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) });
    true
}

#[cfg(test)]
mod tests {
    #[test]
    fn probes_the_running_kernel() {
        // These syscalls exist on every kernel isol supports (≥ 5.3); the probe must see them.
        assert!(super::clone3_exists());
        assert!(super::pidfd_open_works());
    }
}
