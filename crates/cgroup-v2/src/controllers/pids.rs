//! The pids controller: `pids.max`, `pids.current`, `pids.events`
//! (cgroup-v2.rst, "Controllers / PID / PID Interface Files").

use std::path::Path;

use isol_ns_core::stats::PidsStats;
use isol_ns_core::{parse, Controller, ResourceController, Resources, Result, Setting, Stats};

use isol_ns_core::cgroupfs::read_optional;

use crate::files::write_setting;

/// `pids.max`. A limit of 0 is written as `0`: no task may be created (forks fail with
/// EAGAIN), as the neutral model says.
#[derive(Debug)]
pub struct Pids;

impl ResourceController for Pids {
    fn controller(&self) -> Controller {
        Controller::Pids
    }

    fn apply(&self, dir: &Path, r: &Resources) -> Result<()> {
        if let Some(max) = r.pids.max {
            write_setting(dir, Setting::PidsMax, "pids.max", &max.to_string())?;
        }
        Ok(())
    }

    fn read(&self, dir: &Path, out: &mut Resources) -> Result<()> {
        if let Some(text) = read_optional(dir, "pids.max")? {
            out.pids.max = Some(parse::single_limit(&dir.join("pids.max"), &text)?);
        }
        Ok(())
    }

    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<()> {
        let Some(current) = read_optional(dir, "pids.current")? else {
            return Ok(());
        };
        let mut out = PidsStats {
            current: parse::single_u64(&dir.join("pids.current"), &current)?,
            ..Default::default()
        };
        if let Some(text) = read_optional(dir, "pids.max")? {
            out.max = Some(parse::single_limit(&dir.join("pids.max"), &text)?);
        }
        out.events_max = events_max(dir)?;
        stats.pids = Some(out);
        Ok(())
    }
}

/// The `max` counter of `pids.events` (forks refused by this cgroup's or an ancestor's
/// limit, as the kernel counts them).
pub(crate) fn events_max(dir: &Path) -> Result<Option<u64>> {
    let Some(text) = read_optional(dir, "pids.events")? else {
        return Ok(None);
    };
    Ok(parse::flat_keyed(&dir.join("pids.events"), &text)?
        .get("max")
        .copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_ns_core::units::Limit;
    use isol_testkit::FakeTree;

    #[test]
    fn zero_is_zero_and_max_is_max() {
        let t = FakeTree::new();
        let mut r = Resources::default();
        for (limit, text) in [
            (Limit::Value(0), "0"),
            (Limit::Max, "max"),
            (Limit::Value(64), "64"),
        ] {
            t.files(&["pids.max"]);
            r.pids.max = Some(limit);
            Pids.apply(t.path(), &r).unwrap();
            assert_eq!(t.read("pids.max"), text);
            let mut back = Resources::default();
            Pids.read(t.path(), &mut back).unwrap();
            assert_eq!(back.pids.max, Some(limit));
        }
    }

    #[test]
    fn stats_from_fixtures() {
        let t = FakeTree::new();
        t.file("pids.current", "3\n")
            .file("pids.max", "16\n")
            .file("pids.events", "max 5\nmax.imposed 5\n");
        let mut s = Stats::default();
        Pids.stats(t.path(), &mut s).unwrap();
        assert_eq!(
            s.pids.unwrap(),
            PidsStats {
                current: 3,
                max: Some(Limit::Value(16)),
                events_max: Some(5)
            }
        );
    }
}
