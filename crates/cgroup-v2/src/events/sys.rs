//! inotify as an fd tokio polls: the watches on a cgroup's event files and its
//! directory (inotify(7)), read without blocking when tokio says the fd is readable.
//!
//! # Safety
//! Registering an fd with tokio (`AsyncFd::register`) is `unsafe`: the caller promises
//! the fd stays open, and is the same fd, for as long as it is registered. [`InotifyFd`]
//! owns the fd (nix's `Inotify` holds an `OwnedFd`), is moved into the `AsyncFd`, which
//! never hands it out mutably, and always returns that fd.
#![allow(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;

use isol_ns_core::{Error, Result};
use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor};
use tokio::io::unix::AsyncFd;

/// Lets tokio poll the inotify fd.
struct InotifyFd(Inotify);

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// An inotify instance whose watches are added first, then registered with tokio.
pub(super) struct Watches(Inotify);

/// The registered instance, to read events from.
pub(super) struct AsyncWatches(AsyncFd<InotifyFd>);

impl Watches {
    /// `inotify_init1(IN_NONBLOCK | IN_CLOEXEC)`.
    pub(super) fn new(dir: &Path) -> Result<Watches> {
        Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map(Watches)
            .map_err(|e| Error::io("inotify_init1", dir, e.into()))
    }

    /// `inotify_add_watch(fd, path, mask)`.
    pub(super) fn add(&self, path: &Path, mask: AddWatchFlags) -> Result<WatchDescriptor> {
        self.0
            .add_watch(path, mask)
            .map_err(|e| Error::io("inotify_add_watch", path, e.into()))
    }

    /// Registers the fd with the current tokio runtime (which the caller has checked
    /// exists; `dir` names the cgroup in errors).
    pub(super) fn register(self, dir: &Path) -> Result<AsyncWatches> {
        // SAFETY: InotifyFd owns the inotify fd and moves into the AsyncFd, so the fd stays
        // open and unchanged until the AsyncFd drops it (see the module's Safety section).
        unsafe { AsyncFd::register(InotifyFd(self.0)) }
            .map(AsyncWatches)
            .map_err(|e| Error::io("register inotify fd with tokio", dir, e.into()))
    }
}

impl AsyncWatches {
    /// The next batch of events, waiting until there is one.
    pub(super) async fn read(&self) -> std::io::Result<Vec<InotifyEvent>> {
        loop {
            let mut guard = self.0.readable().await?;
            match guard.get_inner().0.read_events() {
                Ok(events) => return Ok(events),
                Err(Errno::EAGAIN) => guard.clear_ready(),
                Err(e) => return Err(e.into()),
            }
        }
    }
}
