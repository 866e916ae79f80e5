//! The few things that need a system call: who we are, how cgroups are mounted, and
//! a lock that keeps concurrent xtask runs from sharing the VM's files.
//!
//! # Safety
//! `geteuid(2)` cannot fail and touches no memory of ours; `statfs(2)` is given a
//! NUL-terminated path that outlives the call and a zeroed `struct statfs` it fills in;
//! `flock(2)` is given a descriptor owned by the `File` it is called on.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Whether we run as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The filesystem magic of the filesystem holding `path` (`statfs(2)`'s `f_type`).
fn fs_type(path: &Path) -> Option<i64> {
    let c_path = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero statfs is a valid value of this plain C struct.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is NUL-terminated and lives across the call; buf is a valid,
    // writable statfs.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), &mut buf) };
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between libcs
    (rc == 0).then_some(buf.f_type as i64)
}

/// How this host mounts cgroups, as the tests' `ISOL_EXPECT_MODE` names it:
/// cgroup2 at `/sys/fs/cgroup` is `unified`; a tmpfs there with cgroup2 at
/// `/sys/fs/cgroup/unified` is `hybrid`; a tmpfs without it is `legacy`. `None` when
/// `/sys/fs/cgroup` holds neither (no cgroups mounted at all).
pub fn host_cgroup_mode() -> Option<&'static str> {
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let root = Path::new("/sys/fs/cgroup");
    match fs_type(root)? {
        CGROUP2_SUPER_MAGIC => Some("unified"),
        TMPFS_MAGIC if fs_type(&root.join("unified")) == Some(CGROUP2_SUPER_MAGIC) => {
            Some("hybrid")
        }
        TMPFS_MAGIC => Some("legacy"),
        _ => None,
    }
}

/// `flock(fd, LOCK_EX)` on `path` (created if needed): held until the returned file
/// is dropped. `on_wait` runs once when another process holds the lock.
pub fn lock_exclusive(path: &Path, on_wait: impl FnOnce()) -> io::Result<File> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    let flock = |op| {
        // SAFETY: the descriptor belongs to `file`, which outlives the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    match flock(libc::LOCK_EX | libc::LOCK_NB) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            on_wait();
            flock(libc::LOCK_EX)?;
        }
        other => other?,
    }
    Ok(file)
}
