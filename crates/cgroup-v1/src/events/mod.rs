//! The v1 event stream: OOM through an eventfd, emptied and frozen/thawed by polling.
//!
//! Reference: Documentation/admin-guide/cgroup-v1/memory.rst, 9 "OOM Control" and 13
//! "Notification API"; cgroups.rst, 1.4 "What does notify_on_release do?".
//! - OOM: an eventfd registered in `cgroup.event_control` against `memory.oom_control`
//!   is signalled each time the cgroup goes out of memory (and once when the cgroup is
//!   removed). Each signal yields [`CgroupEvent::Oom`] (`count` = OOMs seen by this
//!   stream, since v1 keeps no counter) and, once the kernel's `oom_kill` counter has
//!   grown, [`CgroupEvent::OomKill`] with that counter.
//! - Emptied, frozen/thawed, refused forks (`pids.events` `max`, as
//!   [`CgroupEvent::PidsMax`]) and hits of the memory limit (`memory.failcnt`, as
//!   [`CgroupEvent::MemoryMax`]) are polled every [`POLL`]: v1 has no file to wait on for
//!   them (the release agent is host-global and runs a program, which a library must not
//!   install), and a 50 ms poll is cheap and prompt enough for a supervisor.
//!
//! The eventfd is in `sys`, the one module with `unsafe` (registering it with tokio).

mod sys;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use isol_cgroup_v2::controllers::pids;
use isol_ns_core::{
    cgroupfs, convert, parse, require_tokio_runtime, CgroupEvent, Error, EventStream, Result,
};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::controllers::freezer;
use crate::controllers::memory::oom_kills;

/// How often emptiness and the freezer state are polled.
pub const POLL: Duration = Duration::from_millis(50);

/// How long to wait, after an OOM notification, for the kill counter to move.
const KILL_GRACE: Duration = Duration::from_secs(2);

struct OomWatch {
    fd: sys::OomEventFd,
    dir: PathBuf,
}

/// The events of one v1 cgroup.
pub(crate) struct V1Events {
    main: PathBuf,
    oom: Option<OomWatch>,
    freezer: Option<PathBuf>,
    pids: Option<PathBuf>,
    memory: Option<PathBuf>,
    pids_max: u64,
    failcnt: u64,
    populated: bool,
    frozen: Option<bool>,
    ooms: u64,
    kills: u64,
    pending: VecDeque<CgroupEvent>,
    tick: Interval,
}

/// `pids.events` `max` (0 where the kernel has no pids.events, or it cannot be read).
fn pids_refused(dir: &Path) -> u64 {
    pids::events_max(dir).ok().flatten().unwrap_or(0)
}

/// `memory.failcnt` (0 when unreadable, e.g. while the cgroup is being removed).
fn failcnt(dir: &Path) -> u64 {
    let path = dir.join("memory.failcnt");
    parse::read(&path)
        .ok()
        .and_then(|t| parse::single_u64(&path, &t).ok())
        .unwrap_or(0)
}

fn is_frozen(dir: &Path) -> Option<bool> {
    freezer::state(dir)
        .ok()
        .map(|s| convert::frozen_from_v1(&s))
}

impl V1Events {
    /// Registers the OOM eventfd (when there is a memory hierarchy) and records the
    /// current state, so that only changes are reported. Needs a tokio runtime with IO.
    pub(crate) fn new(
        main: &Path,
        memory: Option<&Path>,
        freezer: Option<&Path>,
        pids: Option<&Path>,
    ) -> Result<V1Events> {
        require_tokio_runtime(&format!("watch the events of {}", main.display()))?;
        let oom = match memory {
            Some(dir) => Some(OomWatch {
                fd: sys::OomEventFd::open(dir)?,
                dir: dir.to_path_buf(),
            }),
            None => None,
        };
        let kills = match &oom {
            Some(o) => oom_kills(&o.dir)?,
            None => 0,
        };
        let mut tick = tokio::time::interval_at(Instant::now() + POLL, POLL);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ok(V1Events {
            main: main.to_path_buf(),
            populated: !cgroupfs::subtree_pids(&[main])?.is_empty(),
            frozen: freezer.and_then(is_frozen),
            freezer: freezer.map(Path::to_path_buf),
            pids_max: pids.map_or(0, pids_refused),
            failcnt: memory.map_or(0, failcnt),
            pids: pids.map(Path::to_path_buf),
            memory: memory.map(Path::to_path_buf),
            oom,
            ooms: 0,
            kills,
            pending: VecDeque::new(),
            tick,
        })
    }

    async fn on_oom(&mut self, n: u64) -> Result<()> {
        let Some(o) = &self.oom else { return Ok(()) };
        self.ooms += n;
        self.pending
            .push_back(CgroupEvent::Oom { count: self.ooms });
        // The notification comes before the OOM killer picks its victim.
        let deadline = Instant::now() + KILL_GRACE;
        while Instant::now() < deadline && o.dir.exists() {
            let kills = oom_kills(&o.dir)?;
            if kills > self.kills {
                self.kills = kills;
                self.pending
                    .push_back(CgroupEvent::OomKill { count: kills });
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    fn poll_state(&mut self) -> Result<()> {
        // A kill the OOM notification's grace period missed (a slow machine picks its
        // victim late) still counts, and comes before the cgroup empties.
        if let Some(o) = &self.oom {
            if let Ok(kills) = oom_kills(&o.dir) {
                if kills > self.kills {
                    self.kills = kills;
                    self.pending
                        .push_back(CgroupEvent::OomKill { count: kills });
                }
            }
        }
        let populated = !cgroupfs::subtree_pids(&[&self.main])?.is_empty();
        if self.populated && !populated {
            self.pending.push_back(CgroupEvent::Emptied);
        }
        self.populated = populated;
        if let Some(dir) = &self.memory {
            let now = failcnt(dir);
            if now > self.failcnt {
                self.pending
                    .push_back(CgroupEvent::MemoryMax { count: now });
            }
            self.failcnt = now;
        }
        if let Some(dir) = &self.pids {
            let now = pids_refused(dir);
            if now > self.pids_max {
                self.pending.push_back(CgroupEvent::PidsMax { count: now });
            }
            self.pids_max = now;
        }
        if let Some(dir) = &self.freezer {
            let now = is_frozen(dir);
            match (self.frozen, now) {
                (Some(false) | None, Some(true)) => self.pending.push_back(CgroupEvent::Frozen),
                (Some(true), Some(false)) => self.pending.push_back(CgroupEvent::Thawed),
                _ => {}
            }
            self.frozen = now;
        }
        Ok(())
    }
}

async fn wait_oom(oom: Option<&OomWatch>) -> std::io::Result<u64> {
    let Some(o) = oom else {
        return std::future::pending().await;
    };
    o.fd.wait().await
}

#[async_trait]
impl EventStream for V1Events {
    async fn next(&mut self) -> Option<Result<CgroupEvent>> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(Ok(e));
            }
            if !self.main.exists() {
                return None;
            }
            let Self { oom, tick, .. } = self;
            tokio::select! {
                n = wait_oom(oom.as_ref()) => {
                    match n {
                        Ok(n) => {
                            // The kernel also signals when the cgroup is removed.
                            if !self.main.exists() {
                                return None;
                            }
                            if let Err(e) = self.on_oom(n).await {
                                return Some(Err(e));
                            }
                        }
                        Err(e) => return Some(Err(Error::io("read eventfd", "", e))),
                    }
                }
                _ = tick.tick() => {
                    if let Err(e) = self.poll_state() {
                        if !self.main.exists() {
                            return None;
                        }
                        return Some(Err(e));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_testkit::FakeTree;

    #[test]
    fn outside_a_runtime_is_refused_not_a_panic() {
        let t = FakeTree::new();
        match V1Events::new(t.path(), None, None, None) {
            Err(e @ Error::Refused { .. }) => {
                assert!(e.to_string().contains("no tokio runtime"), "{e}")
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("events outside a runtime"),
        }
    }
}
