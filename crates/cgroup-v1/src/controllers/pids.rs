//! The v1 `pids` controller: the most tasks a cgroup may hold.
//!
//! Reference: Documentation/admin-guide/cgroup-v1/pids.rst. `pids.max` takes a number or
//! `max`; `0` means no task may be created inside (fork and clone fail with EAGAIN),
//! while moving tasks in is never refused. `pids.events` counts refused forks.

use std::path::Path;

use isol_ns_core::stats::PidsStats;
use isol_ns_core::{parse, Controller, ResourceController, Resources, Result, Setting, Stats};

use super::{optional, read, read_u64, write};

/// `pids.max`.
pub struct Pids;

impl ResourceController for Pids {
    fn controller(&self) -> Controller {
        Controller::Pids
    }

    fn apply(&self, dir: &Path, r: &Resources) -> Result<()> {
        if let Some(max) = r.pids.max {
            write(dir, Setting::PidsMax, "pids.max", &max.to_string())?;
        }
        Ok(())
    }

    fn read(&self, dir: &Path, out: &mut Resources) -> Result<()> {
        out.pids.max = Some(parse::single_limit(
            &dir.join("pids.max"),
            &read(dir, "pids.max")?,
        )?);
        Ok(())
    }

    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<()> {
        let events = match optional(read(dir, "pids.events"))? {
            Some(text) => parse::flat_keyed(&dir.join("pids.events"), &text)?
                .get("max")
                .copied(),
            None => None,
        };
        stats.pids = Some(PidsStats {
            current: read_u64(dir, "pids.current")?,
            max: Some(parse::single_limit(
                &dir.join("pids.max"),
                &read(dir, "pids.max")?,
            )?),
            events_max: events,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_ns_core::units::Limit;
    use isol_testkit::FakeTree;

    #[test]
    fn zero_and_max() {
        let t = FakeTree::new();
        t.file("pids.max", "max\n");
        let mut r = Resources::default();
        r.pids.max = Some(Limit::Value(0));
        Pids.apply(t.path(), &r).unwrap();
        assert_eq!(t.read("pids.max"), "0");
        let mut back = Resources::default();
        Pids.read(t.path(), &mut back).unwrap();
        assert_eq!(back.pids.max, Some(Limit::Value(0)));
        r.pids.max = Some(Limit::Max);
        Pids.apply(t.path(), &r).unwrap();
        assert_eq!(t.read("pids.max"), "max");
        Pids.read(t.path(), &mut back).unwrap();
        assert_eq!(back.pids.max, Some(Limit::Max));
    }

    #[test]
    fn stats_with_and_without_events() {
        let t = FakeTree::new();
        t.file("pids.max", "8\n").file("pids.current", "3\n");
        let mut s = Stats::default();
        Pids.stats(t.path(), &mut s).unwrap();
        assert_eq!(
            s.pids.unwrap(),
            PidsStats {
                current: 3,
                max: Some(Limit::Value(8)),
                events_max: None
            }
        );
        t.file("pids.events", "max 5\n");
        Pids.stats(t.path(), &mut s).unwrap();
        assert_eq!(s.pids.unwrap().events_max, Some(5));
        t.file("pids.current", "three\n");
        assert!(Pids
            .stats(t.path(), &mut s)
            .unwrap_err()
            .to_string()
            .contains("pids.current"));
    }
}
