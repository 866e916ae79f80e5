//! Safe wrappers of the raw system calls the hardening steps make: one function per call
//! and use, in the manner of rustix (a `prctl` option that writes through its argument
//! gets no wrapper, so no caller can pass it one).
//!
//! # Safety
//!
//! `libc::syscall` and `libc::mount` are unsafe because the kernel reads and writes
//! through the pointers they are given. Each wrapper here passes only integers, C strings
//! the caller lends for the call, and kernel structures (`__user_cap_header_struct`,
//! `sock_fprog`, `rlimit64`, `mount_attr`, `statfs`) built on its own stack with the size
//! the call expects; a descriptor the kernel returns is owned at once by an `OwnedFd`. So
//! any arguments make a wrapper safe to call. None allocates, locks or panics: the child
//! calls them between clone and exec.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::null;

use seccompiler::sock_filter;

/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW` (linux/seccomp.h, Linux 4.17): installing a filter
/// does not also force the Spectre v4 (SSBD) and v2-user (STIBP/IBPB) mitigations on the
/// task. They guard code against other code *in its own address space* (a browser's JS
/// sandbox), not a box against the host, and cost ~0.8 ms per spawn of /bin/true on a
/// VM here; runc (since 1.1.5, PR 3588) and crun set it by default too.
const SECCOMP_FILTER_FLAG_SPEC_ALLOW: usize = 1 << 2;

/// `_LINUX_CAPABILITY_VERSION_3` (linux/capability.h): two 32-bit words per set.
const CAP_V3: u32 = 0x2008_0522;

/// `MOVE_MOUNT_F_EMPTY_PATH` (linux/mount.h).
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// The calling thread's errno (no allocation: a read of its slot).
pub(super) fn errno() -> i32 {
    nix::errno::Errno::last_raw()
}

fn check(r: libc::c_long) -> Result<(), i32> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// `prctl(option, arg2, 0, 0, 0)`, private: only for the options below, which read
/// `arg2` as a number (others write through it).
fn prctl_number(option: libc::c_int, arg2: libc::c_ulong) -> Result<libc::c_long, i32> {
    // SAFETY: the callers below pass PR_CAPBSET_READ, PR_CAPBSET_DROP, PR_SET_KEEPCAPS or
    // PR_SET_NO_NEW_PRIVS, which take `arg2` as a number and read no pointer.
    let r = unsafe { libc::syscall(libc::SYS_prctl, option, arg2, 0usize, 0usize, 0usize) };
    check(r).map(|()| r)
}

/// `prctl(PR_CAPBSET_READ, cap)`: whether `cap` is in the calling thread's bounding set
/// (EINVAL: the kernel has no such capability).
///
/// # References
/// prctl(2)
pub(super) fn capbset_read(cap: u32) -> Result<bool, i32> {
    prctl_number(libc::PR_CAPBSET_READ, cap.into()).map(|r| r == 1)
}

/// `prctl(PR_CAPBSET_DROP, cap)`: drops `cap` from the calling thread's bounding set.
pub(super) fn capbset_drop(cap: u32) -> Result<(), i32> {
    prctl_number(libc::PR_CAPBSET_DROP, cap.into()).map(drop)
}

/// `prctl(PR_SET_KEEPCAPS, 1)`: the permitted set survives a change of uid.
pub(super) fn set_keepcaps() -> Result<(), i32> {
    prctl_number(libc::PR_SET_KEEPCAPS, 1).map(drop)
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
pub(super) fn set_no_new_privs() -> Result<(), i32> {
    prctl_number(libc::PR_SET_NO_NEW_PRIVS, 1).map(drop)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `capget(v3)` of the calling thread: its permitted set.
///
/// # References
/// capget(2)
pub(super) fn capget_permitted() -> Result<u64, i32> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: a v3 header and room for the two data words it fills, on our stack.
    check(unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    })?;
    Ok(u64::from(data[0].permitted) | (u64::from(data[1].permitted) << 32))
}

/// `capset(v3)` of the calling thread: effective = permitted = `caps`, inheritable
/// empty (and with it the ambient set).
///
/// # References
/// capset(2)
pub(crate) fn capset(caps: u64) -> Result<(), i32> {
    let hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let word = |w: u32| CapData {
        effective: w,
        permitted: w,
        inheritable: 0,
    };
    let data = [word(caps as u32), word((caps >> 32) as u32)];
    // SAFETY: a v3 header and the two data words it reads, on our stack.
    check(unsafe { libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) })
}

fn opt(c: Option<&CStr>) -> *const libc::c_char {
    c.map_or(null(), CStr::as_ptr)
}

/// `mount(src, dst, fstype, flags, data)`.
///
/// # References
/// mount(2)
pub(super) fn mount(
    src: Option<&CStr>,
    dst: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> Result<(), i32> {
    // SAFETY: NUL-terminated strings (or NULL) that the caller lends for the call.
    let r = unsafe {
        libc::mount(
            opt(src),
            dst.as_ptr(),
            opt(fstype),
            flags,
            opt(data).cast::<libc::c_void>(),
        )
    };
    check(r as libc::c_long)
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(dirfd, path, flags, {attr_set: set, attr_clr: clr})`, where `dirfd` is
/// `at`, or `AT_FDCWD` when `None`.
///
/// # References
/// mount_setattr(2)
pub(super) fn mount_setattr(
    at: Option<BorrowedFd<'_>>,
    path: &CStr,
    flags: libc::c_int,
    set: u64,
    clr: u64,
) -> Result<(), i32> {
    let dirfd = at.map_or(libc::AT_FDCWD, |fd| fd.as_raw_fd());
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: a C string the caller lends, and a mount_attr on our stack, of the size
    // passed; `dirfd` is borrowed for the call or AT_FDCWD.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
}

/// `open_tree(AT_FDCWD, path, flags)`: with `OPEN_TREE_CLONE`, a detached copy of the
/// mount at `path` (dissolved when the descriptor closes, unless moved into place).
///
/// # References
/// open_tree(2) (Linux 5.2)
pub(super) fn open_tree(path: &CStr, flags: libc::c_uint) -> Result<OwnedFd, i32> {
    // SAFETY: a C string the caller lends; the kernel returns a new descriptor or an
    // error.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    check(fd)?;
    // SAFETY: `fd` is a descriptor the kernel has just created for us, held nowhere else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// `move_mount(tree, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH)`: attaches a detached
/// tree at `dst`.
///
/// # References
/// move_mount(2) (Linux 5.2)
pub(super) fn move_mount(tree: BorrowedFd<'_>, dst: &CStr) -> Result<(), i32> {
    // SAFETY: a descriptor borrowed for the call and two C strings.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            dst.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })
}

/// `statfs(path)`: the mount's `f_flags` (`ST_*`). The raw call: glibc's statvfs may
/// read /proc/mounts, which allocates.
///
/// # References
/// statfs(2)
pub(super) fn statfs_flags(path: &CStr) -> Result<libc::c_ulong, i32> {
    // The kernel's 64-bit `struct statfs`: f_flags is the 11th word.
    let mut st = [0i64; 15];
    // SAFETY: a C string and a buffer the size of the kernel's struct statfs.
    check(unsafe { libc::syscall(libc::SYS_statfs, path.as_ptr(), st.as_mut_ptr()) })?;
    Ok(st[10] as libc::c_ulong)
}

#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const sock_filter,
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_SPEC_ALLOW, &prog)`: installs
/// `program` on the calling thread.
///
/// # References
/// seccomp(2)
pub(super) fn seccomp_filter(program: &[sock_filter]) -> Result<(), i32> {
    let prog = SockFprog {
        len: program.len() as libc::c_ushort,
        filter: program.as_ptr(),
    };
    // SAFETY: `prog` points at `len` instructions borrowed for the call; the kernel copies
    // them in.
    check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            &prog as *const SockFprog,
        )
    })
}

/// `prlimit64(0, resource, &{soft, hard}, NULL)`.
///
/// # References
/// prlimit(2)
pub(super) fn prlimit(resource: u32, soft: u64, hard: u64) -> Result<(), i32> {
    let lim = [soft, hard];
    // SAFETY: `lim` is a struct rlimit64 on our stack; the old-limit pointer is NULL.
    check(unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            0,
            resource,
            lim.as_ptr(),
            std::ptr::null_mut::<u64>(),
        )
    })
}
