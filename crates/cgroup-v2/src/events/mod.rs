//! Cgroup events as an async stream: inotify watches on `memory.events`, `pids.events`
//! and `cgroup.events`, which the kernel marks modified whenever a counter or state
//! changes (cgroup-v2.rst, "Core Interface Files": "a value change in this file generates
//! a file modified event"). On each wake-up the files are read again and compared with
//! what was read before; the stream starts from the values read when it was created.
//!
//! The inotify fd is in `sys`, the one module with `unsafe` (registering it with tokio).

mod sys;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use isol_ns_core::cgroupfs::read_optional;
use isol_ns_core::stats::MemoryEvents;
use isol_ns_core::{require_tokio_runtime, CgroupEvent, Error, EventStream, Result};
use nix::sys::inotify::{AddWatchFlags, WatchDescriptor};

use crate::controllers::{memory, pids};
use crate::files::events_key;

/// The counters and states the stream compares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Snapshot {
    memory: MemoryEvents,
    pids_max: u64,
    populated: Option<u64>,
    frozen: Option<u64>,
}

fn snapshot(dir: &Path) -> Result<Snapshot> {
    let memory = match read_optional(dir, "memory.events")? {
        Some(text) => memory::events(dir, &text)?,
        None => MemoryEvents::default(),
    };
    Ok(Snapshot {
        memory,
        pids_max: pids::events_max(dir)?.unwrap_or(0),
        populated: events_key(dir, "populated")?,
        frozen: events_key(dir, "frozen")?,
    })
}

/// The events that lead from `old` to `new`, in a fixed order. `events_modified` says
/// whether the kernel marked `cgroup.events` modified in between: it does so only when
/// `populated` or `frozen` changes, so when `frozen` did not change and the cgroup is
/// empty now, it was populated and emptied again between two reads.
fn diff(old: &Snapshot, new: &Snapshot, events_modified: bool) -> Vec<CgroupEvent> {
    let mut out = Vec::new();
    let (o, n) = (&old.memory, &new.memory);
    if n.high > o.high {
        out.push(CgroupEvent::MemoryHigh { count: n.high });
    }
    if n.max > o.max {
        out.push(CgroupEvent::MemoryMax { count: n.max });
    }
    if n.oom > o.oom {
        out.push(CgroupEvent::Oom { count: n.oom });
    }
    if n.oom_kill > o.oom_kill {
        out.push(CgroupEvent::OomKill { count: n.oom_kill });
    }
    if new.pids_max > old.pids_max {
        out.push(CgroupEvent::PidsMax {
            count: new.pids_max,
        });
    }
    match (old.frozen, new.frozen) {
        (Some(0), Some(1)) => out.push(CgroupEvent::Frozen),
        (Some(1), Some(0)) => out.push(CgroupEvent::Thawed),
        _ => {}
    }
    let toggled = events_modified && old.frozen == new.frozen;
    if new.populated == Some(0) && (old.populated == Some(1) || toggled) {
        out.push(CgroupEvent::Emptied);
    }
    out
}

/// The event stream of one cgroup.
pub(crate) struct V2Events {
    fd: sys::AsyncWatches,
    dir: PathBuf,
    last: Snapshot,
    queue: VecDeque<CgroupEvent>,
    gone: bool,
    cgroup_events: Option<WatchDescriptor>,
}

impl V2Events {
    /// Watches `dir`'s event files, then reads the starting values (in that order, so no
    /// change is missed). Needs a tokio runtime with IO enabled.
    pub(crate) fn open(dir: &Path) -> Result<V2Events> {
        require_tokio_runtime(&format!("watch the events of {}", dir.display()))?;
        let watches = sys::Watches::new(dir)?;
        let mut cgroup_events = None;
        for file in ["memory.events", "pids.events", "cgroup.events"] {
            let path = dir.join(file);
            if path.exists() {
                let wd = watches.add(&path, AddWatchFlags::IN_MODIFY)?;
                if file == "cgroup.events" {
                    cgroup_events = Some(wd);
                }
            }
        }
        watches.add(
            dir,
            AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_ONLYDIR,
        )?;
        let last = snapshot(dir)?;
        let fd = watches.register(dir)?;
        Ok(V2Events {
            fd,
            dir: dir.to_path_buf(),
            last,
            queue: VecDeque::new(),
            gone: false,
            cgroup_events,
        })
    }
}

#[async_trait]
impl EventStream for V2Events {
    async fn next(&mut self) -> Option<Result<CgroupEvent>> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(Ok(e));
            }
            if self.gone {
                return None;
            }
            let events = match self.fd.read().await {
                Ok(events) => events,
                Err(e) => return Some(Err(Error::io("read inotify events", &self.dir, e))),
            };
            let events_modified = events.iter().any(|e| {
                Some(e.wd) == self.cgroup_events && e.mask.contains(AddWatchFlags::IN_MODIFY)
            });
            if events.iter().any(|e| {
                e.mask
                    .intersects(AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_IGNORED)
            }) {
                self.gone = true;
            }
            match snapshot(&self.dir) {
                Ok(now) => {
                    self.queue.extend(diff(&self.last, &now, events_modified));
                    self.last = now;
                }
                Err(_) if self.gone || !self.dir.exists() => {
                    // Removed, so it is empty now: report the emptying if it was
                    // populated, or became populated since the last read; then end.
                    if self.last.populated == Some(1) || events_modified {
                        self.queue.push_back(CgroupEvent::Emptied);
                    }
                    self.gone = true;
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_testkit::FakeTree;

    #[test]
    fn diff_reports_growth_and_transitions() {
        let old = Snapshot {
            populated: Some(1),
            frozen: Some(0),
            ..Default::default()
        };
        let mut new = old;
        new.memory.oom_kill = 2;
        new.memory.oom = 1;
        new.memory.max = 5;
        new.pids_max = 3;
        new.frozen = Some(1);
        new.populated = Some(0);
        assert_eq!(
            diff(&old, &new, true),
            vec![
                CgroupEvent::MemoryMax { count: 5 },
                CgroupEvent::Oom { count: 1 },
                CgroupEvent::OomKill { count: 2 },
                CgroupEvent::PidsMax { count: 3 },
                CgroupEvent::Frozen,
                CgroupEvent::Emptied,
            ]
        );
        assert!(diff(&new, &new, false).is_empty());
        let thawed = Snapshot {
            frozen: Some(0),
            ..new
        };
        assert_eq!(
            diff(&new, &thawed, true),
            vec![CgroupEvent::Thawed],
            "a freeze change alone is not an emptying"
        );
        // Populated and emptied again between two reads: only the modification shows it.
        assert_eq!(diff(&thawed, &thawed, true), vec![CgroupEvent::Emptied]);
    }

    #[test]
    fn outside_a_runtime_is_refused() {
        let t = FakeTree::new();
        match V2Events::open(t.path()) {
            Err(e @ Error::Refused { .. }) => {
                assert!(e.to_string().contains("no tokio runtime"), "{e}")
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("events outside a runtime"),
        }
    }

    #[tokio::test]
    async fn stream_follows_file_changes_in_a_fake_tree() {
        // A regular file fires IN_MODIFY on write just as kernfs does for cgroup files.
        let t = FakeTree::new();
        t.file("cgroup.events", "populated 1\nfrozen 0\n")
            .file("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n")
            .file("pids.events", "max 0\n");
        let mut events = V2Events::open(t.path()).unwrap();
        t.file(
            "memory.events",
            "low 0\nhigh 0\nmax 1\noom 1\noom_kill 1\noom_group_kill 0\n",
        );
        assert_eq!(
            events.next().await.unwrap().unwrap(),
            CgroupEvent::MemoryMax { count: 1 }
        );
        assert_eq!(
            events.next().await.unwrap().unwrap(),
            CgroupEvent::Oom { count: 1 }
        );
        assert_eq!(
            events.next().await.unwrap().unwrap(),
            CgroupEvent::OomKill { count: 1 }
        );
        t.file("pids.events", "max 4\n");
        assert_eq!(
            events.next().await.unwrap().unwrap(),
            CgroupEvent::PidsMax { count: 4 }
        );
        t.file("cgroup.events", "populated 0\nfrozen 0\n");
        assert_eq!(events.next().await.unwrap().unwrap(), CgroupEvent::Emptied);
        let path = t.path().to_path_buf();
        drop(t);
        assert!(!path.exists());
        assert!(
            events.next().await.is_none(),
            "the stream ends when the directory goes"
        );
    }
}
