//! One step of the child's [`Program`](super::Program): the system calls behind each
//! [`Op`], made in the cloned child between clone and exec.
//!
//! [`run`] is the one entry, an `unsafe fn`: it changes the ids, namespaces, fds and
//! session of the process it runs in. What only makes a path-based call on C strings
//! prepared before the clone (mounts, directories, the host name) is a safe function.

use std::ffi::{c_char, CStr, CString};
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::ptr::null;

use super::child::{errno, send, wait_go};
use super::{Prepared, TAG_TIME_READY};
use crate::spawn::program::{Beneath, Op, Step};

/// Runs one step; the errno on failure.
///
/// # Safety
///
/// Only in the cloned child (see [`super`]'s Safety section), on the program prepared
/// for it: its fds are open there until exec (the parent keeps them open across the
/// clone). The step may change the process's ids by raw system calls (which change only
/// the calling thread's in a multi-threaded process), its namespaces, its fds 0–2, its
/// session and parent-death signal.
pub(super) unsafe fn run(s: &Step, p: &Prepared<'_>) -> Result<(), i32> {
    match &s.op {
        // SAFETY: integer arguments; `fd` is a namespace file or pidfd of the program.
        Op::Setns { fd, nstype } => check(unsafe { libc::setns(*fd, *nstype) }),
        // SAFETY: integer arguments; the flags are CLONE_NEW* only.
        Op::Unshare { flags } => check(unsafe { libc::unshare(*flags) }),
        Op::JoinCgroup { fd } => {
            // SAFETY: a one-byte static buffer and the `cgroup.procs` or `tasks` fd the
            // parent opened for us before the clone.
            let n = unsafe { libc::write(*fd, b"0".as_ptr().cast(), 1) };
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
        Op::Sethostname { name } => sethostname(name),
        Op::Setdomainname { name } => setdomainname(name),
        Op::LoopbackUp => loopback_up(),
        Op::Mount {
            src,
            dst,
            fstype,
            flags,
            data,
        } => mount(
            src.as_deref(),
            dst,
            fstype.as_deref(),
            *flags,
            data.as_deref(),
        ),
        Op::RemountReadOnly { dst } => crate::security::sys::remount_read_only(dst),
        Op::BindReadOnly { src, dst } => crate::security::sys::bind_read_only(src, dst),
        Op::Mkdir {
            path,
            mode,
            beneath,
        } => mkdir(path, *mode, beneath.as_ref()),
        Op::Mknod {
            path,
            host,
            dev,
            mode,
        } => mknod(path, host, *dev, *mode),
        Op::Touch { path, beneath } => touch(path, beneath.as_ref()),
        Op::Symlink { target, link } => symlink(target, link),
        Op::PivotRoot { root, pivot } => pivot_root(root, *pivot),
        Op::Chdir { path } => chdir(path),
        // SAFETY: no arguments; the child leaves the caller's session.
        Op::Setsid => check(unsafe { libc::setsid() }),
        // SAFETY: the program's fd; fds 0–2 are the child's to replace.
        Op::Dup2 { fd, to } => unsafe { dup_to(*fd, *to) },
        Op::Setgroups { groups } => {
            // SAFETY: the buffer is `groups`, of the length given; in the child, the only
            // thread, the raw call changes the process's groups.
            let r = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
            check(r as libc::c_int)
        }
        Op::Setgid { gid } => {
            // SAFETY: integer arguments; as for setgroups.
            let r = unsafe { libc::syscall(libc::SYS_setresgid, *gid, *gid, *gid) };
            check(r as libc::c_int)
        }
        Op::Setuid { uid } => {
            // SAFETY: integer arguments; as for setgroups.
            let r = unsafe { libc::syscall(libc::SYS_setresuid, *uid, *uid, *uid) };
            check(r as libc::c_int)
        }
        Op::Security(op) => crate::security::sys::run(op),
        // SAFETY: the child's parent is the init (this function's contract).
        Op::DieWithInit => unsafe { die_with_init() },
        // SAFETY: the program's pidfd of the spawner.
        Op::DieWithParent { pidfd } => unsafe { die_with_parent(*pidfd) },
    }
}

/// `r`, a system call's result, as `Ok` or the errno.
fn check(r: libc::c_int) -> Result<(), i32> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// The fd `open` (or `socket`, …) returned, owned; its errno when it failed.
fn opened(fd: libc::c_int) -> Result<OwnedFd, i32> {
    check(fd)?;
    // SAFETY: a fresh fd the call just returned, which nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `close(fd)`, its failure reported.
fn close(fd: OwnedFd) -> Result<(), i32> {
    // SAFETY: the fd is ours, given up here.
    check(unsafe { libc::close(fd.into_raw_fd()) })
}

/// A C string's pointer, or NULL.
fn opt(c: Option<&CStr>) -> *const c_char {
    c.map_or(null(), |c| c.as_ptr())
}

/// `sethostname(name)`.
fn sethostname(name: &CString) -> Result<(), i32> {
    // SAFETY: a C string and its length.
    check(unsafe { libc::sethostname(name.as_ptr(), name.as_bytes().len()) })
}

/// `setdomainname(name)`.
fn setdomainname(name: &CString) -> Result<(), i32> {
    // SAFETY: a C string and its length.
    check(unsafe { libc::setdomainname(name.as_ptr(), name.as_bytes().len()) })
}

/// `struct ifreq` with the flags member (netdevice(7)).
#[repr(C)]
struct IfReqFlags {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    pad: [u8; 22],
}

/// [`Op::LoopbackUp`]: `SIOCGIFFLAGS`, then `SIOCSIFFLAGS` with `IFF_UP`, on `lo`.
fn loopback_up() -> Result<(), i32> {
    // SAFETY: integer arguments.
    let sock =
        opened(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: a plain C struct, for which all zeroes is a valid value.
    let mut req: IfReqFlags = unsafe { zeroed() };
    req.name[..2].copy_from_slice(b"lo");
    let fd = sock.as_raw_fd();
    // SAFETY: the ioctl reads and writes an `ifreq` on our stack.
    let mut r = unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut req as *mut IfReqFlags) };
    if r == 0 {
        req.flags |= libc::IFF_UP as libc::c_short;
        // SAFETY: as above.
        r = unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &mut req as *mut IfReqFlags) };
    }
    check(r)
}

/// `mount(src, dst, fstype, flags, data)`.
fn mount(
    src: Option<&CStr>,
    dst: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> Result<(), i32> {
    // SAFETY: C strings or NULL, which the kernel reads.
    check(unsafe {
        libc::mount(
            opt(src),
            dst.as_ptr(),
            opt(fstype),
            flags,
            opt(data) as *const libc::c_void,
        )
    })
}

/// [`Op::Mkdir`]: an existing directory is fine.
fn mkdir(path: &CStr, mode: libc::mode_t, beneath: Option<&Beneath>) -> Result<(), i32> {
    let r = match beneath {
        Some(b) => mkdir_beneath(b, mode),
        // SAFETY: a C string.
        None => check(unsafe { libc::mkdir(path.as_ptr(), mode) }),
    };
    match r {
        Err(libc::EEXIST) => Ok(()),
        r => r,
    }
}

/// [`Op::Mknod`]: the node, its mode set; the host's node bound read-only where the
/// device cgroup refuses the mknod.
fn mknod(path: &CStr, host: &CStr, dev: libc::dev_t, mode: libc::mode_t) -> Result<(), i32> {
    // SAFETY: a C string and integers.
    match check(unsafe { libc::mknod(path.as_ptr(), libc::S_IFCHR | mode, dev) }) {
        Err(libc::EPERM) => {
            touch(path, None)?;
            crate::security::sys::bind_read_only(host, path)
        }
        r => {
            r?;
            // SAFETY: a C string and a mode.
            check(unsafe { libc::chmod(path.as_ptr(), mode) })
        }
    }
}

/// `symlink(target, link)`; an existing link is fine.
fn symlink(target: &CStr, link: &CStr) -> Result<(), i32> {
    // SAFETY: two C strings.
    if unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) } < 0 && errno() != libc::EEXIST {
        return Err(errno());
    }
    Ok(())
}

/// `chdir(path)`.
fn chdir(path: &CStr) -> Result<(), i32> {
    // SAFETY: a C string.
    check(unsafe { libc::chdir(path.as_ptr()) })
}

/// [`Op::PivotRoot`]: `root` becomes `/`, by `pivot_root` or, from an initramfs (or when
/// `pivot` is false), by moving it onto `/` and `chroot`.
fn pivot_root(root: &CStr, pivot: bool) -> Result<(), i32> {
    let dot = c".".as_ptr();
    chdir(root)?;
    // SAFETY: two static C strings.
    if pivot && unsafe { libc::syscall(libc::SYS_pivot_root, dot, dot) } == 0 {
        // SAFETY: a static C string.
        check(unsafe { libc::umount2(dot, libc::MNT_DETACH) })?;
    } else if !pivot || errno() == libc::EINVAL {
        // An initramfs root cannot be pivoted away from: move the new root onto
        // `/` and chroot into it, as switch_root does.
        mount(Some(c"."), c"/", None, libc::MS_MOVE, None)?;
        // SAFETY: a static C string.
        check(unsafe { libc::chroot(dot) })?;
    } else {
        return Err(errno());
    }
    chdir(c"/")
}

/// [`Op::Dup2`]: `fd` onto `to`, or, when they are the same, `fd` kept across exec.
///
/// # Safety
///
/// `to` (0, 1 or 2) is the caller's to replace, and `fd` is open.
unsafe fn dup_to(fd: RawFd, to: RawFd) -> Result<(), i32> {
    if fd == to {
        // SAFETY: integer arguments (the caller's contract).
        check(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) })
    } else {
        // SAFETY: as above.
        check(unsafe { libc::dup2(fd, to) })
    }
}

/// [`Op::DieWithInit`]: `PR_SET_PDEATHSIG`, and ESRCH if the init is gone already.
///
/// # Safety
///
/// Only in the command's process, whose parent is the init: the signal is the process's.
unsafe fn die_with_init() -> Result<(), i32> {
    // SAFETY: no arguments.
    let init = unsafe { libc::getppid() };
    // SAFETY: integer arguments (the caller's contract).
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) })?;
    // The init waits for the command (in vfork, or in its loop); only a SIGKILL
    // ends it before this, and then the command has another parent.
    // SAFETY: no arguments.
    if unsafe { libc::getppid() } != init {
        return Err(libc::ESRCH);
    }
    Ok(())
}

/// [`Op::DieWithParent`]: `PR_SET_PDEATHSIG`, and ESRCH if the spawner behind `pidfd` is
/// gone already (its pidfd readable).
///
/// # Safety
///
/// Only in the cloned child, with `pidfd` a pidfd of the spawner, open.
unsafe fn die_with_parent(pidfd: RawFd) -> Result<(), i32> {
    // SAFETY: integer arguments (the caller's contract).
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) })?;
    let mut pfd = libc::pollfd {
        fd: pidfd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd on our stack, no wait.
    if unsafe { libc::poll(&mut pfd, 1, 0) } > 0 && pfd.revents & libc::POLLIN != 0 {
        return Err(libc::ESRCH);
    }
    Ok(())
}

/// [`Op::Touch`]: an empty file to mount onto, made beneath a rootfs when in one
/// (`O_CREAT | O_EXCL`). A file already there is used as it is, never opened: a device
/// node would open the device, which the box's device list may refuse, and a file on a
/// read-only mount refuses opening for writing. Beneath a rootfs, a symlink in its place
/// is refused (ELOOP), since the mount would follow it.
fn touch(path: &CStr, beneath: Option<&Beneath>) -> Result<(), i32> {
    let flags = libc::O_CREAT | libc::O_EXCL | libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY;
    let Some(b) = beneath else {
        // SAFETY: a C string and integers.
        return match opened(unsafe { libc::open(path.as_ptr(), flags, 0o644) }) {
            Ok(fd) => close(fd),
            Err(libc::EEXIST) => Ok(()),
            Err(e) => Err(e),
        };
    };
    let dir = open_beneath(b)?;
    let name = b.name.as_ptr();
    // SAFETY: our directory fd, a C string and integers.
    match opened(unsafe { libc::openat(dir.as_raw_fd(), name, flags | libc::O_NOFOLLOW, 0o644) }) {
        Ok(fd) => close(fd),
        Err(libc::EEXIST) => {
            // SAFETY: a plain C struct, for which all zeroes is a valid value.
            let mut st: libc::stat = unsafe { zeroed() };
            // SAFETY: our directory fd, a C string and a stat buffer on our stack.
            let found =
                unsafe { libc::fstatat(dir.as_raw_fd(), name, &mut st, libc::AT_SYMLINK_NOFOLLOW) };
            match check(found) {
                Ok(()) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => Err(libc::ELOOP),
                r => r,
            }
        }
        Err(e) => Err(e),
    }
}

/// `mkdirat` of a [`Beneath`] path in its parent, opened beneath the rootfs.
fn mkdir_beneath(b: &Beneath, mode: libc::mode_t) -> Result<(), i32> {
    let dir = open_beneath(b)?;
    // SAFETY: our directory fd, a C string and a mode.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), b.name.as_ptr(), mode) })
}

/// The parent directory of a [`Beneath`] path, opened (`O_PATH`) beneath its rootfs
/// without following any symlink (`openat2`, Linux 5.6): ELOOP when the rootfs holds one
/// on the way, EXDEV when `..` would climb out. Where the kernel lacks openat2 (ENOSYS),
/// the parent's path as it is.
fn open_beneath(b: &Beneath) -> Result<OwnedFd, i32> {
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
    // SAFETY: a C string and integers.
    let root = opened(unsafe { libc::open(b.root.as_ptr(), dir_flags) })?;
    if b.parent.as_bytes().is_empty() {
        return Ok(root);
    }
    let how = OpenHow {
        flags: dir_flags as u64,
        mode: 0,
        resolve: RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: our directory fd, a C string, and an open_how on our stack of the size given.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            b.parent.as_ptr(),
            &how as *const OpenHow,
            size_of::<OpenHow>(),
        )
    };
    if fd < 0 && errno() == libc::ENOSYS {
        // SAFETY: our directory fd, a C string and integers.
        opened(unsafe { libc::openat(root.as_raw_fd(), b.parent.as_ptr(), dir_flags) })
    } else {
        opened(fd as libc::c_int)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        touch(&c(fifo.to_str().unwrap()), None).unwrap();
        assert_eq!(
            std::fs::read_dir(host.path()).unwrap().count(),
            0,
            "nothing on the host's side"
        );
        assert!(root.path().join("d/sub/file").is_file());
        assert!(root.path().join("top").is_dir());
    }
}
