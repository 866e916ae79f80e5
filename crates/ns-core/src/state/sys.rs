//! The one system call of the state directory that std and nix do not offer here:
//! `renameat2(RENAME_EXCHANGE)` (nix wraps it only for glibc, and isol's static build
//! links musl).
//!
//! # Safety
//!
//! `libc::syscall` is unsafe because the kernel reads through the pointers it is given:
//! here two NUL-terminated C strings, owned by the caller's frame for the whole call.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE)`: atomically exchanges the
/// names `a` and `b`, which must both exist.
///
/// # References
/// rename(2)
pub(super) fn rename_exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    let a = CString::new(a.as_os_str().as_bytes())?;
    let b = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: `a` and `b` are NUL-terminated strings that live until the end of this
    // function; the kernel only reads them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn exchanges_two_names() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "new").unwrap();
        std::fs::write(&b, "old").unwrap();
        super::rename_exchange(&a, &b).unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "old");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "new");
        // Both must exist: an exchange never creates a name.
        let gone = dir.path().join("gone");
        let e = super::rename_exchange(&a, &gone).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        assert!(!gone.exists() && a.exists());
    }
}
