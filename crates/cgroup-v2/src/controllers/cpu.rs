//! The cpu controller: `cpu.weight`, `cpu.max` and `cpu.stat`
//! (cgroup-v2.rst, "Controllers / CPU / CPU Interface Files").

use std::path::Path;

use isol_ns_core::cgroupfs::read_optional;
use isol_ns_core::stats::CpuStats;
use isol_ns_core::units::CpuMax;
use isol_ns_core::{
    parse, Controller, Error, ResourceController, Resources, Result, Setting, Stats,
};

use crate::files::write_setting;

/// `cpu.weight` (1..=10000) and `cpu.max` (`$MAX $PERIOD`).
#[derive(Debug)]
pub struct Cpu;

impl ResourceController for Cpu {
    fn controller(&self) -> Controller {
        Controller::Cpu
    }

    fn apply(&self, dir: &Path, r: &Resources) -> Result<()> {
        if let Some(w) = r.cpu.weight {
            write_setting(dir, Setting::CpuWeight, "cpu.weight", &w.to_string())?;
        }
        if let Some(max) = &r.cpu.max {
            write_setting(dir, Setting::CpuMax, "cpu.max", &max.to_string())?;
        }
        Ok(())
    }

    fn read(&self, dir: &Path, out: &mut Resources) -> Result<()> {
        if let Some(text) = read_optional(dir, "cpu.weight")? {
            out.cpu.weight = Some(parse::single_u64(&dir.join("cpu.weight"), &text)?);
        }
        if let Some(text) = read_optional(dir, "cpu.max")? {
            out.cpu.max = Some(parse_cpu_max(&dir.join("cpu.max"), &text)?);
        }
        Ok(())
    }

    /// `cpu.stat` is a core file (usage is accounted without the controller); the
    /// throttling keys appear only with the controller enabled and read as 0 otherwise.
    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<()> {
        let Some(text) = read_optional(dir, "cpu.stat")? else {
            return Ok(());
        };
        let m = parse::flat_keyed(&dir.join("cpu.stat"), &text)?;
        let get = |k: &str| m.get(k).copied().unwrap_or(0);
        stats.cpu = Some(CpuStats {
            usage_usec: get("usage_usec"),
            user_usec: get("user_usec"),
            system_usec: get("system_usec"),
            nr_periods: get("nr_periods"),
            nr_throttled: get("nr_throttled"),
            throttled_usec: get("throttled_usec"),
        });
        Ok(())
    }
}

/// `cpu.max`: `QUOTA PERIOD`, QUOTA a number or `max`.
fn parse_cpu_max(path: &Path, text: &str) -> Result<CpuMax> {
    let mut words = text.split_whitespace();
    let (Some(quota), Some(period), None) = (words.next(), words.next(), words.next()) else {
        return Err(Error::parse(
            path,
            format!("expected \"QUOTA PERIOD\", found {:?}", text.trim()),
        ));
    };
    Ok(CpuMax {
        quota: parse::single_limit(path, quota)?,
        period: parse::single_u64(path, period)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_ns_core::units::{parse_cpus, Limit};
    use isol_testkit::FakeTree;

    #[test]
    fn apply_and_read_back() {
        let t = FakeTree::new();
        t.files(&["cpu.weight", "cpu.max"]);
        let mut r = Resources::default();
        r.cpu.weight = Some(250);
        r.cpu.max = Some(parse_cpus("cpus", "0.5").unwrap());
        Cpu.apply(t.path(), &r).unwrap();
        assert_eq!(t.read("cpu.weight"), "250");
        assert_eq!(t.read("cpu.max"), "50000 100000");
        let mut back = Resources::default();
        Cpu.read(t.path(), &mut back).unwrap();
        assert_eq!(back.cpu, r.cpu);
        t.file("cpu.max", "max 100000\n");
        Cpu.read(t.path(), &mut back).unwrap();
        assert_eq!(
            back.cpu.max,
            Some(CpuMax {
                quota: Limit::Max,
                period: 100_000
            })
        );
        t.file("cpu.max", "max\n");
        assert!(Cpu
            .read(t.path(), &mut back)
            .unwrap_err()
            .to_string()
            .contains("QUOTA PERIOD"));
    }

    #[test]
    fn missing_files_are_unsupported() {
        let t = FakeTree::new();
        let mut r = Resources::default();
        r.cpu.weight = Some(100);
        let err = Cpu.apply(t.path(), &r).unwrap_err();
        assert!(err.to_string().contains("cpu.weight"), "{err}");
        assert!(matches!(err, Error::Unsupported { .. }));
        // io's and freezer's files are named otherwise than their Resources fields.
        let mut r = Resources::default();
        r.io.devices
            .push(isol_ns_core::resources::IoDeviceLimit::parse("8:0:rbps=1").unwrap());
        let err = super::super::io::Io.apply(t.path(), &r).unwrap_err();
        assert!(
            matches!(&err, Error::Unsupported { setting, .. } if setting == "io.devices"),
            "{err}"
        );
        let r = Resources {
            frozen: Some(true),
            ..Resources::default()
        };
        let err = super::super::freezer::Freezer
            .apply(t.path(), &r)
            .unwrap_err();
        assert!(
            matches!(&err, Error::Unsupported { setting, .. } if setting == "frozen"),
            "{err}"
        );
    }

    #[test]
    fn stats_with_and_without_the_controller() {
        let t = FakeTree::new();
        t.file(
            "cpu.stat",
            "usage_usec 900\nuser_usec 600\nsystem_usec 300\ncore_sched.force_idle_usec 0\n",
        );
        let mut s = Stats::default();
        Cpu.stats(t.path(), &mut s).unwrap();
        let c = s.cpu.unwrap();
        assert_eq!(
            (c.usage_usec, c.user_usec, c.system_usec, c.nr_throttled),
            (900, 600, 300, 0)
        );
        t.file("cpu.stat", "usage_usec 1\nuser_usec 1\nsystem_usec 0\nnr_periods 50\nnr_throttled 7\nthrottled_usec 4200\nnr_bursts 0\nburst_usec 0\n");
        Cpu.stats(t.path(), &mut s).unwrap();
        let c = s.cpu.unwrap();
        assert_eq!(
            (c.nr_periods, c.nr_throttled, c.throttled_usec),
            (50, 7, 4200)
        );
    }
}
