//! The v1 `cpu` controller: `cpu.shares` and CFS bandwidth (`cpu.cfs_quota_us`,
//! `cpu.cfs_period_us`), and the throttling counters of `cpu.stat`.
//!
//! Reference: Documentation/scheduler/sched-bwc.rst ("Management", "Statistics") and
//! Documentation/admin-guide/cgroup-v1/cgroups.rst. Values are converted from and to v2
//! terms with `isol_ns_core::convert` (`cpu_weight_to_shares`, `cpu_weight_of_shares`,
//! `cpu_max_to_v1`, `usec_from_ns`).

use std::path::Path;

use isol_ns_core::convert;
use isol_ns_core::stats::CpuStats;
use isol_ns_core::{parse, Controller, ResourceController, Resources, Result, Setting, Stats};

use super::{read, read_i64, read_u64, write};

/// `cpu.shares`, `cpu.cfs_*`.
pub struct Cpu;

impl ResourceController for Cpu {
    fn controller(&self) -> Controller {
        Controller::Cpu
    }

    /// Writes `cpu.shares` (from the weight) and the bandwidth: the period before the
    /// quota, so the quota is judged against the period it is meant for.
    fn apply(&self, dir: &Path, r: &Resources) -> Result<()> {
        if let Some(weight) = r.cpu.weight {
            write(
                dir,
                Setting::CpuWeight,
                "cpu.shares",
                &convert::cpu_weight_to_shares(weight).to_string(),
            )?;
        }
        if let Some(max) = &r.cpu.max {
            let (quota, period) = convert::cpu_max_to_v1(max);
            write(
                dir,
                Setting::CpuMax,
                "cpu.cfs_period_us",
                &period.to_string(),
            )?;
            write(dir, Setting::CpuMax, "cpu.cfs_quota_us", &quota.to_string())?;
        }
        Ok(())
    }

    fn read(&self, dir: &Path, out: &mut Resources) -> Result<()> {
        out.cpu.weight = Some(convert::cpu_weight_of_shares(read_u64(dir, "cpu.shares")?));
        let quota = read_i64(dir, "cpu.cfs_quota_us")?;
        let period = read_u64(dir, "cpu.cfs_period_us")?;
        out.cpu.max = Some(convert::cpu_max_from_v1(quota, period));
        Ok(())
    }

    /// `cpu.stat`: `nr_periods`, `nr_throttled`, and `throttled_time` in ns (→ µs).
    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<()> {
        let path = dir.join("cpu.stat");
        let stat = parse::flat_keyed(&path, &read(dir, "cpu.stat")?)?;
        let cpu = stats.cpu.get_or_insert_with(CpuStats::default);
        cpu.nr_periods = stat.get("nr_periods").copied().unwrap_or(0);
        cpu.nr_throttled = stat.get("nr_throttled").copied().unwrap_or(0);
        cpu.throttled_usec =
            convert::usec_from_ns(stat.get("throttled_time").copied().unwrap_or(0));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_ns_core::units::{parse_cpus, CpuMax, Limit};
    use isol_testkit::FakeTree;

    #[test]
    fn apply_writes_shares_period_and_quota() {
        let t = FakeTree::new();
        t.files(&["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"]);
        let mut r = Resources::default();
        r.cpu.weight = Some(100);
        r.cpu.max = Some(parse_cpus("cpus", "0.5").unwrap());
        Cpu.apply(t.path(), &r).unwrap();
        assert_eq!(t.read("cpu.shares"), "1024");
        assert_eq!(t.read("cpu.cfs_period_us"), "100000");
        assert_eq!(t.read("cpu.cfs_quota_us"), "50000");
        r.cpu.max = Some(CpuMax {
            quota: Limit::Max,
            period: 20_000,
        });
        Cpu.apply(t.path(), &r).unwrap();
        assert_eq!(t.read("cpu.cfs_quota_us"), "-1");
        assert_eq!(t.read("cpu.cfs_period_us"), "20000");
    }

    #[test]
    fn apply_nothing_writes_nothing() {
        let t = FakeTree::new();
        Cpu.apply(t.path(), &Resources::default()).unwrap();
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
    }

    #[test]
    fn read_converts_back() {
        let t = FakeTree::new();
        t.file("cpu.shares", "1024\n")
            .file("cpu.cfs_quota_us", "-1\n")
            .file("cpu.cfs_period_us", "100000\n");
        let mut r = Resources::default();
        Cpu.read(t.path(), &mut r).unwrap();
        assert_eq!(r.cpu.weight, Some(100));
        assert_eq!(
            r.cpu.max,
            Some(CpuMax {
                quota: Limit::Max,
                period: 100_000
            })
        );
        t.file("cpu.cfs_quota_us", "25000\n")
            .file("cpu.shares", "2\n");
        Cpu.read(t.path(), &mut r).unwrap();
        assert_eq!(r.cpu.max.unwrap().quota, Limit::Value(25_000));
        assert_eq!(r.cpu.weight, Some(1));
        t.file("cpu.cfs_quota_us", "lots\n");
        let err = Cpu.read(t.path(), &mut r).unwrap_err().to_string();
        assert!(
            err.contains("cpu.cfs_quota_us") && err.contains("lots"),
            "{err}"
        );
    }

    #[test]
    fn stats_parse_cpu_stat() {
        let t = FakeTree::new();
        // 6.x adds burst counters; unknown keys are ignored.
        t.file(
            "cpu.stat",
            "nr_periods 40\nnr_throttled 12\nthrottled_time 1500000\nnr_bursts 0\nburst_time 0\n",
        );
        let mut s = Stats::default();
        Cpu.stats(t.path(), &mut s).unwrap();
        let c = s.cpu.unwrap();
        assert_eq!(
            (c.nr_periods, c.nr_throttled, c.throttled_usec),
            (40, 12, 1500)
        );
        t.file("cpu.stat", "nr_periods forty\n");
        assert!(Cpu.stats(t.path(), &mut s).is_err());
    }
}
