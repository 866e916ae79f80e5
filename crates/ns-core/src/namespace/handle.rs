//! Handles on namespaces: [`NsHandle`], an open namespace file that keeps its namespace
//! alive, is joined with `setns(2)` and can be persisted by a bind mount; [`Persisted`],
//! such a bind mount, released explicitly.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use crate::{Error, NamespaceKind, Result};

/// An open namespace file (`/proc/PID/ns/KIND` or a bind-mounted copy of one), which keeps
/// the namespace alive while open and can be joined with `setns(2)` or persisted.
#[derive(Debug)]
pub struct NsHandle {
    kind: NamespaceKind,
    fd: OwnedFd,
    inode: u64,
    path: PathBuf,
}

/// Refuses a file that is not a namespace of `kind` (`NS_GET_NSTYPE`), which `setns`
/// would only answer with EINVAL in the child.
fn check_ns_type(file: &File, kind: NamespaceKind, path: &Path) -> Result<()> {
    let what = match crate::spawn::sys::ns_type(file.as_fd()) {
        Ok(found) if found == kind.clone_flag() => return Ok(()),
        Ok(found) => match NamespaceKind::ALL.iter().find(|k| k.clone_flag() == found) {
            Some(k) => format!("a namespace of kind {k}, not {kind}"),
            None => format!("not a namespace of kind {kind}"),
        },
        Err(_) => "not a namespace file".to_string(),
    };
    Err(Error::invalid(
        "namespace file",
        path.display().to_string(),
        format!(
            "{} is {what} (give /proc/PID/ns/{} of a process in the one to join, or a bind-mounted copy of it)",
            path.display(),
            kind.proc_name()
        ),
    ))
}

impl NsHandle {
    /// Opens the namespace file at `path`, which must be of kind `kind`.
    pub fn open(kind: NamespaceKind, path: impl Into<PathBuf>) -> Result<NsHandle> {
        let path = path.into();
        let file = File::open(&path).map_err(|e| Error::io("open namespace", &path, e))?;
        check_ns_type(&file, kind, &path)?;
        let md = file
            .metadata()
            .map_err(|e| Error::io("stat namespace", &path, e))?;
        Ok(NsHandle {
            kind,
            fd: file.into(),
            inode: md.ino(),
            path,
        })
    }

    /// Opens `/proc/PID/ns/KIND` (for pid and time: `pid_for_children`/`time_for_children`
    /// when `for_children`, the namespace the process's next children go in).
    pub fn of_pid(pid: u32, kind: NamespaceKind, for_children: bool) -> Result<NsHandle> {
        Self::open(kind, Self::proc_file(pid, kind, for_children))
    }

    /// The inode of `pid`'s `kind` namespace (as [`NsHandle::of_pid`] would open it),
    /// with one `stat` and no fd: for a caller that only records which namespace it is.
    pub fn inode_of_pid(pid: u32, kind: NamespaceKind, for_children: bool) -> Result<u64> {
        let path = Self::proc_file(pid, kind, for_children);
        std::fs::metadata(&path)
            .map(|m| m.ino())
            .map_err(|e| Error::io("stat", path, e))
    }

    /// `/proc/PID/ns/KIND`, or the `*_for_children` file of pid and time.
    fn proc_file(pid: u32, kind: NamespaceKind, for_children: bool) -> String {
        let name = match (kind, for_children) {
            (NamespaceKind::Pid, true) => "pid_for_children",
            (NamespaceKind::Time, true) => "time_for_children",
            _ => kind.proc_name(),
        };
        format!("/proc/{pid}/ns/{name}")
    }

    /// The kind.
    pub fn kind(&self) -> NamespaceKind {
        self.kind
    }

    /// The namespace's inode number (what `ls -l /proc/PID/ns` shows in brackets).
    pub fn inode(&self) -> u64 {
        self.inode
    }

    /// The file it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `mount --bind /proc/self/fd/FD PATH`: keeps the namespace alive at `path` (an
    /// empty file is created) after its processes are gone, as `ip netns add` does under
    /// `/run/netns`. Release it with [`Persisted::release`].
    pub fn persist(&self, path: impl Into<PathBuf>) -> Result<Persisted> {
        let path = path.into();
        let created = !path.exists();
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("create namespace file", &path, e))?;
        let src = PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()));
        if let Err(e) = nix::mount::mount(
            Some(&src),
            &path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        ) {
            if created {
                let _ = std::fs::remove_file(&path);
            }
            return Err(Error::io("bind-mount namespace file", &path, e.into()));
        }
        Ok(Persisted {
            kind: self.kind,
            path,
            inode: self.inode,
        })
    }
}

impl AsFd for NsHandle {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A namespace kept alive by a bind mount of its file. Dropping it does *not* release it
/// (that is the point); call [`Persisted::release`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persisted {
    /// The kind.
    pub kind: NamespaceKind,
    /// Where it is bind-mounted.
    pub path: PathBuf,
    /// The namespace's inode.
    pub inode: u64,
}

impl Persisted {
    /// Opens the persisted namespace, e.g. to join it.
    pub fn open(&self) -> Result<NsHandle> {
        NsHandle::open(self.kind, &self.path)
    }

    /// `umount2(path, MNT_DETACH)` and removes the file.
    pub fn release(self) -> Result<()> {
        nix::mount::umount2(&self.path, MntFlags::MNT_DETACH)
            .map_err(|e| Error::io("unmount namespace file", &self.path, e.into()))?;
        std::fs::remove_file(&self.path)
            .map_err(|e| Error::io("remove namespace file", &self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_is_of_the_kind_it_was_opened_as() {
        for kind in NamespaceKind::ALL {
            let h = NsHandle::of_pid(std::process::id(), kind, false).unwrap();
            assert_eq!(h.kind(), kind);
        }
        // Another kind's file, or no namespace at all: named, before any setns.
        let err = NsHandle::open(NamespaceKind::Net, "/proc/self/ns/uts").unwrap_err();
        assert!(err.to_string().contains("kind uts, not net"), "{err}");
        let err = NsHandle::open(NamespaceKind::Pid, "/proc/self/status").unwrap_err();
        assert!(err.to_string().contains("not a namespace file"), "{err}");
    }
}
