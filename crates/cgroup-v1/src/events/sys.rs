//! The OOM notification of a v1 memory cgroup as an fd tokio polls: an eventfd
//! registered in `cgroup.event_control` against `memory.oom_control`
//! (Documentation/admin-guide/cgroup-v1/memory.rst, 13 "Notification API"), which the
//! kernel signals at each OOM of the cgroup and once when the cgroup is removed.
//!
//! # Safety
//! Registering an fd with tokio (`AsyncFd::register_with_interest`) is `unsafe`: the
//! caller promises the fd stays open, and is the same fd, for as long as it is
//! registered. The `EventFd` (which owns its fd) is moved into the `AsyncFd`, which
//! owns it, never hands it out mutably and closes it only when dropped.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use isol_ns_core::{parse, Error, Result};
use nix::sys::eventfd::{EfdFlags, EventFd};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// The OOM notifications of one memory cgroup.
pub(super) struct OomEventFd {
    fd: AsyncFd<EventFd>,
    /// Kept open: the registration lasts as long as both fds.
    _control: File,
}

impl OomEventFd {
    /// `eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)`, registered in `dir/cgroup.event_control`
    /// against `dir/memory.oom_control`, and with tokio. Called within a tokio runtime
    /// with IO enabled.
    pub(super) fn open(dir: &Path) -> Result<OomEventFd> {
        let control_path = dir.join("memory.oom_control");
        let control = File::open(&control_path).map_err(|e| Error::io("open", &control_path, e))?;
        let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|e| Error::io("eventfd", "", e.into()))?;
        parse::write(
            &dir.join("cgroup.event_control"),
            &format!("{} {}", efd.as_raw_fd(), control.as_raw_fd()),
        )?;
        // SAFETY: `efd` owns an open eventfd and is moved into the AsyncFd, which keeps
        // it (and so the same fd) open until it is dropped; nothing else holds it.
        let fd = unsafe { AsyncFd::register_with_interest(efd, Interest::READABLE) }
            .map_err(|e| Error::io("register eventfd with tokio", "", e.into()))?;
        Ok(OomEventFd {
            fd,
            _control: control,
        })
    }

    /// Waits for the next notifications: how many came since the last read.
    pub(super) async fn wait(&self) -> std::io::Result<u64> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| fd.get_ref().read().map_err(std::io::Error::from)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}
