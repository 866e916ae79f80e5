//! The handle on a spawned process: [`Child`] (pid, pidfd, `wait`, `try_wait`,
//! `wait_async`, `signal`, `stats`, its cgroup and namespaces) and the [`ExitStatus`] it
//! reports — with an init, the command's own, which the init sends over the status pipe.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

use super::sys::{self, Record};
use crate::namespace::{NsHandle, Persisted};
use crate::{Cgroup, Error, NamespaceKind, NamespaceSet, Result, Stats};

/// How a process ended: exactly one of exit code or fatal signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExitStatus {
    /// It called `exit(code)`.
    Exited(i32),
    /// It was killed by this signal.
    Signaled(i32),
}

impl ExitStatus {
    /// From a raw `wait(2)` status.
    pub fn from_raw(status: i32) -> ExitStatus {
        if libc::WIFEXITED(status) {
            ExitStatus::Exited(libc::WEXITSTATUS(status))
        } else {
            ExitStatus::Signaled(libc::WTERMSIG(status))
        }
    }

    /// Exited with code 0.
    pub fn success(self) -> bool {
        self == ExitStatus::Exited(0)
    }

    /// The exit code, if it exited.
    pub fn code(self) -> Option<i32> {
        match self {
            ExitStatus::Exited(c) => Some(c),
            ExitStatus::Signaled(_) => None,
        }
    }

    /// The signal, if it was killed by one.
    pub fn signal(self) -> Option<i32> {
        match self {
            ExitStatus::Signaled(s) => Some(s),
            ExitStatus::Exited(_) => None,
        }
    }
}

/// A spawned process.
#[derive(Debug)]
pub struct Child {
    pub(super) pid: u32,
    pub(super) pidfd: OwnedFd,
    pub(super) status_pipe: Option<File>,
    pub(super) status: Option<ExitStatus>,
    pub(super) cgroup: Option<Arc<dyn Cgroup>>,
    pub(super) persisted: Vec<Persisted>,
    pub(super) new: NamespaceSet,
    /// The parent's end of the child's stdin, when [`Stdio::Piped`](super::Stdio::Piped).
    pub stdin: Option<File>,
    /// The parent's end of the child's stdout, when [`Stdio::Piped`](super::Stdio::Piped).
    pub stdout: Option<File>,
    /// The parent's end of the child's stderr, when [`Stdio::Piped`](super::Stdio::Piped).
    pub stderr: Option<File>,
}

impl Child {
    /// The host pid of the process isol cloned: the init (pid 1 inside) when a pid or
    /// time namespace was new or joined, else the command itself.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its pidfd.
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// The cgroup it was placed in.
    pub fn cgroup(&self) -> Option<&dyn Cgroup> {
        self.cgroup.as_deref()
    }

    /// The kinds created anew for it.
    pub fn new_namespaces(&self) -> NamespaceSet {
        self.new
    }

    /// The namespace files persisted after the spawn.
    pub fn persisted(&self) -> &[Persisted] {
        &self.persisted
    }

    /// Opens the command's `kind` namespace (`/proc/PID/ns/KIND`; for pid and time the
    /// `*_for_children` file, which is where the init put the command).
    pub fn namespace(&self, kind: NamespaceKind) -> Result<NsHandle> {
        NsHandle::of_pid(self.pid, kind, true)
    }

    /// The inode of the command's `kind` namespace (the file [`Child::namespace`] opens),
    /// without opening it.
    pub fn namespace_inode(&self, kind: NamespaceKind) -> Result<u64> {
        NsHandle::inode_of_pid(self.pid, kind, true)
    }

    /// Opens all eight namespaces.
    pub fn namespaces(&self) -> Result<BTreeMap<NamespaceKind, NsHandle>> {
        NamespaceKind::ALL
            .iter()
            .map(|&k| Ok((k, self.namespace(k)?)))
            .collect()
    }

    /// `pidfd_send_signal(2)`: with an init, it forwards the signal to the command
    /// (SIGKILL and SIGSTOP act on the init itself, and so on the whole pid namespace).
    pub fn signal(&self, sig: i32) -> Result<()> {
        sys::pidfd_send_signal(self.pidfd.as_fd(), sig)
            .map_err(|e| Error::io("pidfd_send_signal", format!("/proc/{}", self.pid), e))
    }

    /// SIGKILL.
    pub fn kill(&self) -> Result<()> {
        self.signal(libc::SIGKILL)
    }

    /// The cgroup's usage.
    pub fn stats(&self) -> Result<Stats> {
        match &self.cgroup {
            Some(cg) => cg.stats(),
            None => Err(Error::Refused {
                what: "stats".into(),
                reason: "the process was spawned without a cgroup".into(),
            }),
        }
    }

    /// Waits for the command to end and reports exactly how.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        self.finish(false)
            .map(|s| s.expect("blocking wait returns a status"))
    }

    /// The status if the command has ended, without blocking.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        self.finish(true)
    }

    /// Waits without blocking a thread: the pidfd becomes readable when the process ends
    /// (needs a tokio runtime with IO enabled).
    pub async fn wait_async(&mut self) -> Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        let fd = self
            .pidfd
            .try_clone()
            .map_err(|e| Error::io("dup", "pidfd", e))?;
        let afd = sys::async_pidfd(fd).map_err(|e| Error::io("register pidfd", "pidfd", e))?;
        loop {
            let mut ready = afd
                .readable()
                .await
                .map_err(|e| Error::io("poll pidfd", "pidfd", e))?;
            if let Some(s) = self.finish(true)? {
                return Ok(s);
            }
            ready.clear_ready();
        }
    }

    fn finish(&mut self, nohang: bool) -> Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let Some(leader) = sys::wait_pidfd(self.pidfd.as_fd(), nohang)
            .map_err(|e| Error::io("waitid", format!("/proc/{}", self.pid), e))?
        else {
            return Ok(None);
        };
        let mut status = leader;
        if let Some(mut pipe) = self.status_pipe.take() {
            while let Some(r) = read_record(&mut pipe)? {
                if r.tag == sys::TAG_STATUS {
                    status = ExitStatus::from_raw(r.value);
                }
            }
        }
        self.status = Some(status);
        Ok(Some(status))
    }
}

/// Reads one [`Record`] from the child: `None` at EOF (or a partial record, which the
/// child never writes).
pub(super) fn read_record(f: &mut File) -> Result<Option<Record>> {
    let mut buf = [0u8; 16];
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Error::Spawn {
                    step: super::SpawnStep::ReadFromChild,
                    path: PathBuf::new(),
                    source: e,
                })
            }
        }
    }
    Ok(if got == buf.len() {
        Some(Record::from_bytes(buf))
    } else {
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_from_raw() {
        assert_eq!(ExitStatus::from_raw(3 << 8), ExitStatus::Exited(3));
        assert_eq!(ExitStatus::from_raw(9), ExitStatus::Signaled(9));
        assert!(ExitStatus::Exited(0).success());
        assert_eq!(ExitStatus::Signaled(15).signal(), Some(15));
    }
}
