//! Waiting for a box in the foreground (`isol run`, `isol exec`, and the supervisor of
//! `run -d`) while passing on the signals isol receives: one `poll` on a signalfd and
//! the box's pidfd, no event loop on the path of every spawn.

use anyhow::{Context, Result};
use isol_ns_core::spawn::{Child, ExitStatus};

/// The signals a foreground isol forwards to the box.
const FORWARDED: [libc::c_int; 7] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

/// The forwarded signals, blocked in isol and read from a signalfd while it waits for
/// the box. They stay blocked until isol exits (it ends with the box); the child
/// unblocks every signal before its first step.
pub(super) struct Forwarder {
    fd: nix::sys::signalfd::SignalFd,
}

impl Forwarder {
    /// Installed before the spawn, so that no signal is lost between spawn and wait: one
    /// that comes earlier waits, blocked, and is forwarded once the box runs.
    pub(super) fn install() -> Result<Forwarder> {
        use nix::sys::signal::{SigSet, SigmaskHow, Signal};
        use nix::sys::signalfd::{SfdFlags, SignalFd};
        let mut set = SigSet::empty();
        for s in FORWARDED {
            set.add(Signal::try_from(s).context("a forwarded signal")?);
        }
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
            .context("block the signals isol forwards")?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .context("open a signalfd for the signals isol forwards")?;
        Ok(Forwarder { fd })
    }

    /// Waits for `child`, forwarding every signal isol receives meanwhile. The pid stays
    /// ours until the wait reaps it, so `kill(pid)` cannot hit another process.
    pub(super) fn wait(self, child: &mut Child) -> Result<ExitStatus> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let pid = nix::unistd::Pid::from_raw(child.pid() as i32);
        loop {
            let (box_ended, signalled) = {
                let mut fds = [
                    PollFd::new(child.pidfd(), PollFlags::POLLIN),
                    PollFd::new(self.fd.as_fd(), PollFlags::POLLIN),
                ];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(e).context("wait for the box"),
                }
                let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
                (ready(&fds[0]), ready(&fds[1]))
            };
            if signalled {
                while let Ok(Some(info)) = self.fd.read_signal() {
                    let sig = nix::sys::signal::Signal::try_from(info.ssi_signo as i32).ok();
                    let _ = nix::sys::signal::kill(pid, sig);
                }
            }
            if box_ended {
                if let Some(status) = child.try_wait()? {
                    return Ok(status);
                }
            }
        }
    }
}
