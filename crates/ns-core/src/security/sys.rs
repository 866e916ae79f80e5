//! The hardening steps the child takes between clone and exec ([`ChildOp`], [`run`]),
//! and [`probe_last_cap`] and [`permitted_capabilities`], which the parent calls before
//! the clone.
//!
//! [`run`] is called in the cloned child (see `spawn::sys`), so everything here only
//! makes system calls on data prepared before the clone — no allocation, no lock, no
//! panic: each [`ChildOp`] carries plain numbers, C strings or a `Vec` filled before the
//! clone, which the child only reads. The system calls themselves are safe wrappers in
//! `raw`, the one part that needs unsafe code. Calling [`run`] elsewhere is memory-safe
//! too, and would harden (or mount in) the calling process.

mod raw;

use std::ffi::{CStr, CString};
use std::os::fd::AsFd;

use seccompiler::BpfProgram;

use crate::spawn::SecurityStep;

pub(crate) use raw::capset;

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
    pub(crate) fn name(&self) -> SecurityStep {
        match self {
            ChildOp::DropBounding { .. } => SecurityStep::DropBounding,
            ChildOp::KeepCaps => SecurityStep::KeepCaps,
            ChildOp::Capset { .. } => SecurityStep::Capset,
            ChildOp::NoNewPrivs => SecurityStep::NoNewPrivs,
            ChildOp::Seccomp { .. } => SecurityStep::Seccomp,
            ChildOp::Setrlimit { .. } => SecurityStep::Setrlimit,
            ChildOp::MaskPaths { .. } => SecurityStep::MaskPaths,
            ChildOp::ReadOnly { bind: true, .. } => SecurityStep::BindReadOnly,
            ChildOp::ReadOnly { bind: false, .. } => SecurityStep::ReadOnly,
            ChildOp::Writable { .. } => SecurityStep::Writable,
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

/// The kernel's highest capability number, as `PR_CAPBSET_READ` tells it (it refuses a
/// higher one with EINVAL): six calls in a binary search, cheaper than opening
/// `/proc/sys/kernel/cap_last_cap` in a fresh process. `None` if prctl fails otherwise
/// (a seccomp filter of the caller's, say).
pub(crate) fn probe_last_cap() -> Option<u32> {
    let (mut lo, mut hi) = (0u32, 63u32);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        match raw::capbset_read(mid) {
            Ok(_) => lo = mid,
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
    raw::capget_permitted().map_err(std::io::Error::from_raw_os_error)
}

/// One mask of [`ChildOp::MaskPaths`]; `tmpfs` is where the shared tmpfs was last
/// mounted or bound (always the tmpfs: a later directory that was beneath it is absent,
/// and one above it becomes the new place).
fn mask<'a>(dst: &'a CStr, dir: bool, tmpfs: &mut Option<&'a CStr>) -> Result<(), i32> {
    if !dir {
        return raw::mount(Some(c"/dev/null"), dst, None, libc::MS_BIND, None);
    }
    match *tmpfs {
        Some(src) => raw::mount(Some(src), dst, None, libc::MS_BIND, None)?,
        None => raw::mount(
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

/// [`ChildOp::MaskPaths`].
fn mask_paths(paths: &[MaskedPath]) -> Result<(), i32> {
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

/// [`ChildOp::ReadOnly`].
fn read_only(dst: &CStr, bind: bool) -> Result<(), i32> {
    if bind {
        match raw::mount(Some(dst), dst, None, libc::MS_BIND | libc::MS_REC, None) {
            Err(libc::ENOENT) => return Ok(()),
            r => r?,
        }
    }
    match raw::mount_setattr(None, dst, libc::AT_RECURSIVE, MOUNT_ATTR_RDONLY, 0) {
        // Before 5.12, or refused by a seccomp filter that does not know it: a remount
        // makes the top read-only, which is all a fresh bind of a /proc path is. A mount
        // with others beneath it (/sys, or all the host's) would keep them writable:
        // refused (the spawn fails and says so).
        Err(libc::ENOSYS) | Err(libc::EPERM) if bind => remount_read_only(dst),
        r => r,
    }
}

/// [`crate::spawn::program::Op::BindReadOnly`]: a detached copy of `src` and what is
/// mounted beneath it (`open_tree`), made read-only (`mount_setattr`) and attached at
/// `dst` (`move_mount`); before Linux 5.12, a recursive bind and a remount of its top.
pub(crate) fn bind_read_only(src: &CStr, dst: &CStr) -> Result<(), i32> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let bind_and_remount = || {
        raw::mount(Some(src), dst, None, libc::MS_BIND | libc::MS_REC, None)?;
        remount_read_only(dst)
    };
    let flags =
        OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_RECURSIVE as libc::c_uint;
    let tree = match raw::open_tree(src, flags) {
        Ok(tree) => tree,
        Err(libc::ENOSYS) => return bind_and_remount(),
        Err(e) => return Err(e),
    };
    let r = raw::mount_setattr(
        Some(tree.as_fd()),
        c"",
        libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
        MOUNT_ATTR_RDONLY,
        0,
    )
    .and_then(|()| raw::move_mount(tree.as_fd(), dst));
    drop(tree);
    match r {
        // mount_setattr before 5.12: the tree is dropped unattached; bind and remount.
        Err(libc::ENOSYS) => bind_and_remount(),
        r => r,
    }
}

/// `statfs(dst)`, then `mount(NULL, dst, NULL, MS_BIND|MS_REMOUNT|MS_RDONLY|<its flags>)`:
/// flags locked by a less privileged mount namespace must be kept. (Also the spawn's
/// read-only bind mounts.)
pub(crate) fn remount_read_only(dst: &CStr) -> Result<(), i32> {
    let f = raw::statfs_flags(dst)?;
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
    raw::mount(None, dst, None, flags, None)
}

/// [`ChildOp::DropBounding`].
fn drop_bounding(last_cap: u32, keep: u64) -> Result<(), i32> {
    for cap in 0..=last_cap {
        if keep & (1u64 << cap) != 0 {
            continue;
        }
        match raw::capbset_drop(cap) {
            // A capability this kernel does not have.
            Err(libc::EINVAL) => {}
            r => r?,
        }
    }
    Ok(())
}

/// Runs one step in the child; the errno on failure.
pub(crate) fn run(op: &ChildOp) -> Result<(), i32> {
    match op {
        ChildOp::MaskPaths { paths } => mask_paths(paths),
        ChildOp::ReadOnly { dst, bind } => read_only(dst, *bind),
        ChildOp::Writable { dst } => raw::mount_setattr(None, dst, 0, 0, MOUNT_ATTR_RDONLY),
        ChildOp::DropBounding { last_cap, keep } => drop_bounding(*last_cap, *keep),
        ChildOp::KeepCaps => raw::set_keepcaps(),
        ChildOp::Capset { caps } => raw::capset(*caps),
        ChildOp::NoNewPrivs => raw::set_no_new_privs(),
        ChildOp::Seccomp { program } => raw::seccomp_filter(program),
        ChildOp::Setrlimit {
            resource,
            soft,
            hard,
        } => raw::prlimit(*resource, *soft, *hard),
    }
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    //! The child's steps run for real, in a forked child that makes only system calls
    //! (the test binary has other threads) and reports numbers through a pipe.
    //!
    //! # Safety
    //!
    //! The tests fork, pipe and make the calls a box would make, through libc; each block
    //! says what it passes.
    use std::ptr::null;

    use super::raw::{errno, mount, set_no_new_privs};
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
            if set_no_new_privs().is_err() || run(&op).is_err() {
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
