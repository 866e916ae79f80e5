//! The pids controller: `pids.max`, `pids.current`, `pids.events`
//! (cgroup-v2.rst, "Controllers / PID / PID Interface Files").
//!
//! cgroup v1's pids controller has the same files with the same meaning
//! (Documentation/admin-guide/cgroup-v1/pids.rst), so the v1 backend drives its pids
//! hierarchy with this controller too, as [`Pids::v1`]: one implementation, named in
//! errors by the backend that uses it.

use std::path::Path;

use isol_ns_core::cgroupfs::{self, read_optional};
use isol_ns_core::stats::PidsStats;
use isol_ns_core::{parse, Controller, ResourceController, Resources, Result, Setting, Stats};

use crate::NAME;

/// `pids.max`. A limit of 0 is written as `0`: no task may be created (forks fail with
/// EAGAIN), as the neutral model says; `max` is `max`, on v1 as on v2.
#[derive(Debug)]
pub struct Pids {
    /// The backend's registry name, for [`isol_ns_core::Error::Unsupported`].
    backend: &'static str,
}

impl Pids {
    /// The pids controller of this backend.
    pub const V2: Pids = Pids { backend: NAME };

    /// The same controller for the v1 backend `backend` (its pids hierarchy's files are
    /// v2's).
    pub const fn v1(backend: &'static str) -> Pids {
        Pids { backend }
    }
}

impl ResourceController for Pids {
    fn controller(&self) -> Controller {
        Controller::Pids
    }

    fn apply(&self, dir: &Path, r: &Resources) -> Result<()> {
        match r.pids.max {
            Some(max) => cgroupfs::write_setting(
                dir,
                "pids.max",
                &max.to_string(),
                Setting::PidsMax,
                self.backend,
            ),
            None => Ok(()),
        }
    }

    fn read(&self, dir: &Path, out: &mut Resources) -> Result<()> {
        if let Some(text) = read_optional(dir, "pids.max")? {
            out.pids.max = Some(parse::single_limit(&dir.join("pids.max"), &text)?);
        }
        Ok(())
    }

    /// Nothing without `pids.current` (the controller is not enabled for the cgroup).
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
/// limit, as the kernel counts them); `None` where the kernel has no `pids.events`.
pub fn events_max(dir: &Path) -> Result<Option<u64>> {
    Ok(cgroupfs::read_flat_keyed(dir, "pids.events")?.and_then(|m| m.get("max").copied()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_ns_core::units::Limit;
    use isol_ns_core::Error;
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
            Pids::V2.apply(t.path(), &r).unwrap();
            assert_eq!(t.read("pids.max"), text);
            let mut back = Resources::default();
            Pids::V2.read(t.path(), &mut back).unwrap();
            assert_eq!(back.pids.max, Some(limit));
        }
    }

    #[test]
    fn a_missing_file_names_the_backend_that_uses_it() {
        let t = FakeTree::new();
        let mut r = Resources::default();
        r.pids.max = Some(Limit::Value(1));
        for (pids, backend) in [
            (Pids::V2, "cgroup-v2"),
            (Pids::v1("cgroup-v1"), "cgroup-v1"),
        ] {
            let err = pids.apply(t.path(), &r).unwrap_err();
            assert!(
                matches!(&err, Error::Unsupported { setting, backend: b, .. } if setting == "pids.max" && *b == backend),
                "{err}"
            );
        }
    }

    #[test]
    fn stats_from_fixtures() {
        let t = FakeTree::new();
        let mut s = Stats::default();
        Pids::V2.stats(t.path(), &mut s).unwrap();
        assert_eq!(s.pids, None, "no pids.current, no pids stats");
        t.file("pids.current", "3\n").file("pids.max", "16\n");
        Pids::V2.stats(t.path(), &mut s).unwrap();
        assert_eq!(
            s.pids.unwrap(),
            PidsStats {
                current: 3,
                max: Some(Limit::Value(16)),
                events_max: None
            },
            "a kernel without pids.events"
        );
        t.file("pids.events", "max 5\nmax.imposed 5\n");
        Pids::V2.stats(t.path(), &mut s).unwrap();
        assert_eq!(s.pids.unwrap().events_max, Some(5));
        t.file("pids.current", "three\n");
        assert!(Pids::V2
            .stats(t.path(), &mut s)
            .unwrap_err()
            .to_string()
            .contains("pids.current"));
    }
}
