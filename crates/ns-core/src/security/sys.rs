//! The hardening system calls the child makes between clone and exec (and
//! [`probe_last_cap`], which the parent calls before the clone).
//!
//! # Safety
//!
//! [`run`] is called in the cloned child (see `spawn::sys`): it may only make system
//! calls on data prepared before the clone — no allocation, no lock, no panic. Each
//! [`ChildOp`] carries plain numbers, C strings or a `Vec` filled before the clone, which
//! the child only reads; the kernel structures (`__user_cap_header_struct`, `sock_fprog`,
//! `rlimit64`, `mount_attr`) are built on the child's stack.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::ptr::null;

use seccompiler::BpfProgram;

/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW` (linux/seccomp.h, Linux 4.17): installing a filter
/// does not also force the Spectre v4 (SSBD) and v2-user (STIBP/IBPB) mitigations on the
/// task. They guard code against other code *in its own address space* (a browser's JS
/// sandbox), not a box against the host, and cost ~0.8 ms per spawn of /bin/true on a
/// VM here; runc (since 1.1.5, PR 3588) and crun set it by default too.
const SECCOMP_FILTER_FLAG_SPEC_ALLOW: usize = 1 << 2;

/// `_LINUX_CAPABILITY_VERSION_3` (linux/capability.h): two 32-bit words per set.
const CAP_V3: u32 = 0x2008_0522;

/// `MOUNT_ATTR_RDONLY` (linux/mount.h).
const MOUNT_ATTR_RDONLY: u64 = 0x1;

/// A path to mask, and whether it is expected to be a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskedPath {
    /// The path (beneath the new root, before pivot_root).
    pub dst: CString,
    /// Expected to be a directory (else a file); the other kind is tried when wrong.
    pub dir: bool,
}

/// One hardening step of the child (built by the security policy's plan).
#[derive(Clone, Debug)]
pub enum ChildOp {
    /// Masks each path that exists: `/dev/null` bound over a file; over a directory an
    /// empty read-only tmpfs, mounted once and bound over the other directories (a bind
    /// costs less than a new tmpfs). Absent paths are skipped.
    MaskPaths {
        /// In order.
        paths: Vec<MaskedPath>,
    },
    /// Binds the path onto itself (with what is mounted beneath) and makes it all
    /// read-only: `mount_setattr(MOUNT_ATTR_RDONLY, AT_RECURSIVE)`. Where the kernel
    /// lacks that (before 5.12), a bind gets `statfs` and a read-only remount of its top
    /// that keeps the locked flags; a mount already there (`bind: false`: /sys, the
    /// host's), whose submounts a remount would leave writable, fails with `ENOSYS`.
    /// An absent path is skipped.
    ReadOnly {
        /// The path.
        dst: CString,
        /// Bind it onto itself first; without, `dst` is a mount already (`/sys`), and
        /// only its attributes change.
        bind: bool,
    },
    /// The mount at the path writable (it alone, not what is beneath): a bind whose
    /// source the box sees read-only, where the host's is writable. `mount_setattr`
    /// clearing `MOUNT_ATTR_RDONLY` (needed anyway to make the host's mounts read-only).
    Writable {
        /// The path.
        dst: CString,
    },
    /// `prctl(PR_CAPBSET_DROP, n)` for every `n ≤ last_cap` not in `keep`.
    DropBounding {
        /// The kernel's highest capability.
        last_cap: u32,
        /// The mask kept.
        keep: u64,
    },
    /// `prctl(PR_SET_KEEPCAPS, 1)`: keep the permitted set across a uid change (execve
    /// resets it).
    KeepCaps,
    /// `capset(v3)`: effective = permitted = `caps`, inheritable empty, which empties
    /// the ambient set too (the kernel keeps no ambient capability that is not both
    /// permitted and inheritable).
    Capset {
        /// The mask.
        caps: u64,
    },
    /// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
    NoNewPrivs,
    /// `seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_SPEC_ALLOW, &prog)`.
    Seccomp {
        /// The compiled filter.
        program: BpfProgram,
    },
    /// `prlimit64(0, resource, &{soft, hard}, NULL)`.
    Setrlimit {
        /// `RLIMIT_*`.
        resource: u32,
        /// The soft limit (`u64::MAX`: unlimited).
        soft: u64,
        /// The hard limit.
        hard: u64,
    },
}

impl ChildOp {
    /// The step's name in errors.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            ChildOp::DropBounding { .. } => "drop bounding set",
            ChildOp::KeepCaps => "keep capabilities",
            ChildOp::Capset { .. } => "capset",
            ChildOp::NoNewPrivs => "no_new_privs",
            ChildOp::Seccomp { .. } => "seccomp",
            ChildOp::Setrlimit { .. } => "setrlimit",
            ChildOp::MaskPaths { .. } => "mask",
            ChildOp::ReadOnly { .. } => "make read-only",
            ChildOp::Writable { .. } => "make writable",
        }
    }

    /// What the step acts on, for its error: the limit's name for setrlimit.
    pub(crate) fn detail(&self) -> &'static str {
        match self {
            ChildOp::Setrlimit { resource, .. } => super::Rlimit::name_of(*resource),
            _ => "",
        }
    }
}

fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

fn check(r: libc::c_long) -> Result<(), i32> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// `prctl(option, arg2, 0, 0, 0)` as a raw system call.
fn prctl(option: libc::c_int, arg2: libc::c_ulong) -> Result<(), i32> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_prctl, option, arg2, 0usize, 0usize, 0usize) })
}

/// The kernel's highest capability number, as `PR_CAPBSET_READ` tells it (it refuses a
/// higher one with EINVAL): six calls in a binary search, cheaper than opening
/// `/proc/sys/kernel/cap_last_cap` in a fresh process. `None` if prctl fails otherwise
/// (a seccomp filter of the caller's, say).
pub(crate) fn probe_last_cap() -> Option<u32> {
    let (mut lo, mut hi) = (0u32, 63u32);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        match prctl(libc::PR_CAPBSET_READ, mid as libc::c_ulong) {
            Ok(()) => lo = mid,
            Err(libc::EINVAL) => hi = mid - 1,
            Err(_) => return None,
        }
    }
    // Capability 0 (CAP_CHOWN) is always there.
    Some(lo)
}

/// The calling thread's permitted capabilities (`capget(2)`): what a box started from
/// it can keep, unless the box gets a user namespace of its own.
pub(crate) fn permitted_capabilities() -> std::io::Result<u64> {
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
    let r = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(u64::from(data[0].permitted) | (u64::from(data[1].permitted) << 32))
}

/// `capset(v3)` of the calling thread: effective = permitted = `caps`, inheritable
/// empty. Only system calls, on the stack: the child runs it between clone and exec, and
/// tests that need a caller holding less run it on a thread of their own.
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

#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const seccompiler::sock_filter,
}

fn opt(c: Option<&CStr>) -> *const libc::c_char {
    c.map_or(null(), CStr::as_ptr)
}

/// `mount(src, dst, fstype, flags, data)`.
fn mount(
    src: Option<&CStr>,
    dst: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> Result<(), i32> {
    // SAFETY: NUL-terminated strings (or NULL) that outlive the call.
    check(unsafe {
        libc::mount(
            opt(src),
            dst.as_ptr(),
            opt(fstype),
            flags,
            opt(data).cast::<libc::c_void>(),
        )
    } as libc::c_long)
}

/// One mask of [`ChildOp::MaskPaths`]; `tmpfs` is where the shared tmpfs was last
/// mounted or bound (always the tmpfs: a later directory that was beneath it is absent,
/// and one above it becomes the new place).
fn mask<'a>(dst: &'a CStr, dir: bool, tmpfs: &mut Option<&'a CStr>) -> Result<(), i32> {
    if !dir {
        return mount(Some(c"/dev/null"), dst, None, libc::MS_BIND, None);
    }
    match *tmpfs {
        Some(src) => mount(Some(src), dst, None, libc::MS_BIND, None)?,
        None => mount(
            Some(c"tmpfs"),
            dst,
            Some(c"tmpfs"),
            libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            Some(c"size=4k,mode=555"),
        )?,
    }
    *tmpfs = Some(dst);
    Ok(())
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(dirfd, path, flags, {attr_set: set, attr_clr: clr})`.
fn set_mount_attr(
    dirfd: libc::c_int,
    path: &CStr,
    flags: libc::c_int,
    set: u64,
    clr: u64,
) -> Result<(), i32> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: a C string and a mount_attr on our stack, of the size passed.
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

/// [`crate::spawn::program::Op::BindReadOnly`].
pub(crate) fn bind_read_only(src: &CStr, dst: &CStr) -> Result<(), i32> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    // SAFETY: a C string; the kernel returns a new fd (or an error).
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            src.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_RECURSIVE as libc::c_uint,
        )
    };
    if tree < 0 {
        let e = errno();
        if e != libc::ENOSYS {
            return Err(e);
        }
        mount(Some(src), dst, None, libc::MS_BIND | libc::MS_REC, None)?;
        return remount_read_only(dst);
    }
    let tree = tree as libc::c_int;
    let mut r = set_mount_attr(
        tree,
        c"",
        libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
        MOUNT_ATTR_RDONLY,
        0,
    );
    // SAFETY: the detached tree's fd and a C string; the fd is ours to close.
    unsafe {
        if r.is_ok() {
            r = check(libc::syscall(
                libc::SYS_move_mount,
                tree,
                c"".as_ptr(),
                libc::AT_FDCWD,
                dst.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH,
            ));
        }
        libc::close(tree);
    }
    match r {
        // mount_setattr before 5.12: the tree is dropped unattached; bind and remount.
        Err(libc::ENOSYS) => {
            mount(Some(src), dst, None, libc::MS_BIND | libc::MS_REC, None)?;
            remount_read_only(dst)
        }
        r => r,
    }
}

/// `statfs(dst)`, then `mount(NULL, dst, NULL, MS_BIND|MS_REMOUNT|MS_RDONLY|<its flags>)`:
/// flags locked by a less privileged mount namespace must be kept. (Also the spawn's
/// read-only bind mounts.)
pub(crate) fn remount_read_only(dst: &CStr) -> Result<(), i32> {
    // The kernel's 64-bit `struct statfs`: f_flags is the 11th word. (glibc's statvfs
    // may read /proc/mounts, which allocates.)
    let mut st = [0i64; 15];
    // SAFETY: a C string and a buffer the size of the kernel's struct statfs.
    check(unsafe { libc::syscall(libc::SYS_statfs, dst.as_ptr(), st.as_mut_ptr()) })?;
    let f = st[10] as libc::c_ulong;
    let mut flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
    // ST_* from linux/statfs.h (not all libc targets define them).
    for (st_flag, ms_flag) in [
        (0x0002, libc::MS_NOSUID),
        (0x0004, libc::MS_NODEV),
        (0x0008, libc::MS_NOEXEC),
        (0x0400, libc::MS_NOATIME),
        (0x0800, libc::MS_NODIRATIME),
        (0x1000, libc::MS_RELATIME),
    ] {
        if f & st_flag != 0 {
            flags |= ms_flag;
        }
    }
    mount(None, dst, None, flags, None)
}

/// Runs one step in the child; the errno on failure.
pub(crate) fn run(op: &ChildOp) -> Result<(), i32> {
    match op {
        ChildOp::MaskPaths { paths } => {
            let mut tmpfs = None;
            for p in paths {
                let r = match mask(&p.dst, p.dir, &mut tmpfs) {
                    // A file where a directory was expected, or the other way round.
                    Err(libc::ENOTDIR) => mask(&p.dst, !p.dir, &mut tmpfs),
                    r => r,
                };
                match r {
                    // Absent (ENOTDIR both ways: a component is not a directory).
                    Ok(()) | Err(libc::ENOENT) | Err(libc::ENOTDIR) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
        ChildOp::ReadOnly { dst, bind } => {
            let made = if *bind {
                mount(Some(dst), dst, None, libc::MS_BIND | libc::MS_REC, None)
            } else {
                Ok(())
            };
            match made {
                Err(libc::ENOENT) => return Ok(()),
                r => r?,
            }
            let r = set_mount_attr(
                libc::AT_FDCWD,
                dst,
                libc::AT_RECURSIVE,
                MOUNT_ATTR_RDONLY,
                0,
            );
            match r {
                // Before 5.12, or refused by a seccomp filter that does not know it: a
                // remount makes the top read-only, which is all a fresh bind of a /proc
                // path is. A mount with others beneath it (/sys, or all the host's) would
                // keep them writable: refused (the spawn fails and says so).
                Err(libc::ENOSYS) | Err(libc::EPERM) if *bind => remount_read_only(dst),
                r => r,
            }
        }
        ChildOp::Writable { dst } => set_mount_attr(libc::AT_FDCWD, dst, 0, 0, MOUNT_ATTR_RDONLY),
        ChildOp::DropBounding { last_cap, keep } => {
            for cap in 0..=*last_cap {
                if keep & (1u64 << cap) != 0 {
                    continue;
                }
                match prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong) {
                    // A capability this kernel does not have.
                    Err(libc::EINVAL) => {}
                    r => r?,
                }
            }
            Ok(())
        }
        ChildOp::KeepCaps => prctl(libc::PR_SET_KEEPCAPS, 1),
        ChildOp::Capset { caps } => capset(*caps),
        ChildOp::NoNewPrivs => prctl(libc::PR_SET_NO_NEW_PRIVS, 1),
        ChildOp::Seccomp { program } => {
            let prog = SockFprog {
                len: program.len() as libc::c_ushort,
                filter: program.as_ptr(),
            };
            // SAFETY: `prog` points at the instructions compiled before the clone (the
            // child's copy); the kernel copies them in.
            check(unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    SECCOMP_FILTER_FLAG_SPEC_ALLOW,
                    &prog as *const SockFprog,
                )
            })
        }
        ChildOp::Setrlimit {
            resource,
            soft,
            hard,
        } => {
            let lim = [*soft, *hard];
            // SAFETY: `lim` is a struct rlimit64 on our stack; the old-limit pointer is NULL.
            check(unsafe {
                libc::syscall(
                    libc::SYS_prlimit64,
                    0,
                    *resource,
                    lim.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    //! The child's steps run for real, in a forked child that makes only system calls
    //! (the test binary has other threads) and reports numbers through a pipe.
    use super::*;
    use crate::security::{CapSet, SeccompProfile};

    /// Forks; the child runs `f` (system calls only) and writes what it returns; the
    /// parent reads it and reaps the child.
    fn in_child<const N: usize>(f: impl FnOnce() -> [i64; N]) -> [i64; N] {
        let mut fds = [0; 2];
        // SAFETY: a two-int array for pipe2(2). Close-on-exec: a process another test
        // spawns meanwhile must not hold the write end open.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: the child only makes system calls on memory prepared before the fork
        // and leaves through _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let out = f();
            // SAFETY: writes the array, on the stack, and exits without unwinding.
            unsafe {
                libc::write(fds[1], out.as_ptr().cast(), std::mem::size_of_val(&out));
                libc::_exit(0);
            }
        }
        let mut out = [i64::MIN; N];
        // SAFETY: reads into the array; waits for our own child.
        unsafe {
            libc::close(fds[1]);
            let n = libc::read(fds[0], out.as_mut_ptr().cast(), std::mem::size_of_val(&out));
            libc::close(fds[0]);
            let mut st = 0;
            libc::waitpid(pid, &mut st, 0);
            assert_eq!(
                n as usize,
                std::mem::size_of_val(&out),
                "the child died: {st:#x}"
            );
        }
        out
    }

    /// `-errno` of a failed raw system call, else its result (`c_long` is 64-bit where
    /// isol builds).
    fn sys(r: i64) -> i64 {
        if r < 0 {
            -i64::from(errno())
        } else {
            r
        }
    }

    /// Docker's default filter, compiled as for a box, installed in a real process: the
    /// kernel accepts it, and the calls it must refuse are refused with EPERM (ENOSYS for
    /// clone3) while others go through. Needs no privilege (no_new_privs is set first).
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_kernel_enforces_the_default_filter() {
        let program = SeccompProfile::Default
            .compile(CapSet::docker_default())
            .unwrap()
            .remove(0);
        let op = ChildOp::Seccomp { program };
        let path = c"/nonexistent-isol-test";
        let out = in_child(|| {
            if prctl(libc::PR_SET_NO_NEW_PRIVS, 1).is_err() || run(&op).is_err() {
                return [i64::MAX; 9];
            }
            // SAFETY: integer arguments, NULL pointers, and a C string; none of these
            // calls can do harm where the filter lets one through (they fail, or act
            // on this short-lived child only).
            unsafe {
                [
                    sys(libc::syscall(libc::SYS_getppid)),
                    // KEYCTL_GET_KEYRING_ID of the user keyring.
                    sys(libc::syscall(libc::SYS_keyctl, 0, -4, 0)),
                    // Gated by CAP_SYS_ADMIN, which the default set lacks.
                    sys(libc::syscall(
                        libc::SYS_mount,
                        null::<libc::c_char>(),
                        path.as_ptr(),
                        null::<libc::c_char>(),
                        0,
                        null::<libc::c_void>(),
                    )),
                    sys(libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER)),
                    // A new namespace through clone: refused by the filter before the
                    // kernel would refuse NEWUSER with FS (EINVAL).
                    sys(libc::syscall(
                        libc::SYS_clone,
                        libc::CLONE_NEWUSER | libc::CLONE_FS,
                        0,
                        0,
                        0,
                        0,
                    )),
                    sys(libc::syscall(libc::SYS_clone3, null::<u8>(), 0)),
                    // The x32 number of getpid.
                    sys(libc::syscall(0x4000_0000 | libc::SYS_getpid)),
                    // Allowed with its conditions unmet: no namespace flag (EINVAL:
                    // CLONE_SIGHAND without CLONE_VM).
                    sys(libc::syscall(
                        libc::SYS_clone,
                        libc::CLONE_SIGHAND,
                        0,
                        0,
                        0,
                        0,
                    )),
                    // Not in the profile: fails in the kernel, not the filter.
                    sys(libc::syscall(libc::SYS_chdir, path.as_ptr())),
                ]
            }
        });
        let eperm = -i64::from(libc::EPERM);
        assert!(out[0] > 0, "getppid: {out:?}");
        assert_eq!(
            &out[1..7],
            [eperm, eperm, eperm, eperm, -i64::from(libc::ENOSYS), eperm],
            "keyctl, mount, unshare, clone, clone3, x32: {out:?}"
        );
        assert_eq!(out[7], -i64::from(libc::EINVAL), "{out:?}");
        assert_eq!(out[8], -i64::from(libc::ENOENT), "{out:?}");
    }

    /// The masks and read-only binds in a private mount namespace (root): directories
    /// share one empty read-only tmpfs, files become /dev/null, a wrong guess of the
    /// kind gets the other mask, absent paths are skipped, and a read-only path is
    /// read-only with what is mounted beneath it.
    #[test]
    fn masks_and_read_only_binds() {
        if !isol_testkit::require_root("masks_and_read_only_binds") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name);
        for d in ["d1/inner", "d2", "dir-guessed-file.d", "ro/sub"] {
            std::fs::create_dir_all(p(d)).unwrap();
        }
        std::fs::write(p("d1/inside"), "x").unwrap();
        std::fs::write(p("f1"), "secret").unwrap();
        std::fs::write(p("dir-guessed-file"), "secret").unwrap();
        let c = |name: &str| CString::new(p(name).into_os_string().into_encoded_bytes()).unwrap();
        let masked = |name: &str, dir: bool| MaskedPath { dst: c(name), dir };
        let mask = ChildOp::MaskPaths {
            paths: vec![
                masked("absent-dir", true),
                masked("d1", true),
                masked("d1/inner", true),
                masked("f1", false),
                masked("absent-file", false),
                masked("d2", true),
                // A file where a directory is expected, and the other way round.
                masked("dir-guessed-file", true),
                masked("dir-guessed-file.d", false),
                masked("f1/below-a-file", true),
            ],
        };
        let ro = ChildOp::ReadOnly {
            dst: c("ro"),
            bind: true,
        };
        let ro_absent = ChildOp::ReadOnly {
            dst: c("absent-ro"),
            bind: true,
        };
        let sub = c("ro/sub");
        let names: Vec<CString> = ["d1", "d2", "dir-guessed-file.d", "f1", "dir-guessed-file"]
            .iter()
            .map(|n| c(n))
            .collect();
        let creates: Vec<CString> = ["d1/new", "ro/new", "ro/sub/new"]
            .iter()
            .map(|n| c(n))
            .collect();
        let inside = c("d1/inside");
        let mkdir = c("d2/new");
        let out = in_child(|| {
            let mut out = [0i64; 14];
            // SAFETY: system calls on C strings and stat/statfs buffers on our stack.
            unsafe {
                if libc::unshare(libc::CLONE_NEWNS) != 0
                    || mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None).is_err()
                    || mount(Some(c"tmpfs"), &sub, Some(c"tmpfs"), 0, None).is_err()
                {
                    return [i64::MAX; 14];
                }
                out[0] = run(&mask).map_or_else(|e| -i64::from(e), |()| 0);
                out[1] = run(&ro).map_or_else(|e| -i64::from(e), |()| 0);
                out[2] = run(&ro_absent).map_or_else(|e| -i64::from(e), |()| 0);
                // The directories: one tmpfs (its device number), each empty.
                let mut st: libc::stat = std::mem::zeroed();
                let mut fs: libc::statfs = std::mem::zeroed();
                for (i, n) in names[..3].iter().enumerate() {
                    libc::stat(n.as_ptr(), &mut st);
                    libc::statfs(n.as_ptr(), &mut fs);
                    // f_type is signed on glibc, unsigned on musl.
                    out[3 + i] = if fs.f_type as u64 == libc::TMPFS_MAGIC as u64 {
                        st.st_dev as i64
                    } else {
                        -1
                    };
                }
                // The files: /dev/null.
                for (i, n) in names[3..].iter().enumerate() {
                    libc::stat(n.as_ptr(), &mut st);
                    out[6 + i] = (st.st_mode & libc::S_IFMT == libc::S_IFCHR
                        && st.st_rdev == libc::makedev(1, 3))
                        as i64;
                }
                out[8] = sys(libc::open(inside.as_ptr(), libc::O_RDONLY) as i64);
                for (i, n) in creates.iter().enumerate() {
                    out[9 + i] =
                        sys(libc::open(n.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o600) as i64);
                }
                out[12] = sys(libc::mkdir(mkdir.as_ptr(), 0o700) as i64);
                out[13] = sys(libc::open(names[3].as_ptr(), libc::O_RDONLY) as i64);
            }
            out
        });
        assert_eq!(&out[..3], [0, 0, 0], "mask, read-only, absent: {out:?}");
        assert!(out[3] > 0, "d1 is a tmpfs: {out:?}");
        assert_eq!([out[4], out[5]], [out[3], out[3]], "one tmpfs: {out:?}");
        assert_eq!([out[6], out[7]], [1, 1], "files are /dev/null: {out:?}");
        let (enoent, erofs) = (-i64::from(libc::ENOENT), -i64::from(libc::EROFS));
        assert_eq!(out[8], enoent, "the tmpfs is empty: {out:?}");
        assert_eq!(
            &out[9..13],
            [erofs, erofs, erofs, erofs],
            "read-only: {out:?}"
        );
        assert!(out[13] >= 0, "a masked file opens (as /dev/null): {out:?}");
        // Nothing leaked out of the child's namespace.
        assert_eq!(std::fs::read(p("f1")).unwrap(), b"secret");
        assert!(p("d1/inside").exists() && !p("ro/new").exists());
    }
}
