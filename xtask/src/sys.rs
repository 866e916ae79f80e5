//! The few facts about the host that need a system call: who we are and how cgroups
//! are mounted.
//!
//! # Safety
//! `geteuid(2)` cannot fail and touches no memory of ours; `statfs(2)` is given a
//! NUL-terminated path that outlives the call and a zeroed `struct statfs` it fills in.
#![allow(unsafe_code)]

use std::ffi::CString;
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
