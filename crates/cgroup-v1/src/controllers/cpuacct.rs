//! The v1 `cpuacct` controller: cpu time used, in total and split into user and system.
//!
//! Reference: Documentation/admin-guide/cgroup-v1/cpuacct.rst. `cpuacct.usage` is in ns;
//! the user/system split comes from `cpuacct.usage_user`/`cpuacct.usage_sys` (ns, since
//! Linux 4.7) and, where those are missing, from `cpuacct.stat` in USER_HZ ticks.

use std::path::Path;

use isol_ns_core::convert;
use isol_ns_core::stats::CpuStats;
use isol_ns_core::{parse, Controller, ResourceController, Resources, Result, Stats};

use super::{optional, read, read_u64};

/// `cpuacct.*`: statistics only, nothing to set.
pub struct Cpuacct;

/// Clock ticks per second for `cpuacct.stat` (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
fn user_hz() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|v| *v > 0)
        .map_or(100, |v| v as u64)
}

/// `cpuacct.stat` (`user N`, `system N` in ticks) → (user µs, system µs).
pub fn ticks_to_usec(path: &Path, text: &str, hz: u64) -> Result<(u64, u64)> {
    let stat = parse::flat_keyed(path, text)?;
    let us = |k: &str| convert::usec_from_ticks(stat.get(k).copied().unwrap_or(0), hz);
    Ok((us("user"), us("system")))
}

impl ResourceController for Cpuacct {
    fn controller(&self) -> Controller {
        Controller::Cpuacct
    }

    fn apply(&self, _dir: &Path, _r: &Resources) -> Result<()> {
        Ok(())
    }

    fn read(&self, _dir: &Path, _out: &mut Resources) -> Result<()> {
        Ok(())
    }

    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<()> {
        let cpu = stats.cpu.get_or_insert_with(CpuStats::default);
        cpu.usage_usec = convert::usec_from_ns(read_u64(dir, "cpuacct.usage")?);
        let user = optional(read_u64(dir, "cpuacct.usage_user"))?;
        let sys = optional(read_u64(dir, "cpuacct.usage_sys"))?;
        if let (Some(user), Some(sys)) = (user, sys) {
            cpu.user_usec = convert::usec_from_ns(user);
            cpu.system_usec = convert::usec_from_ns(sys);
        } else {
            let path = dir.join("cpuacct.stat");
            (cpu.user_usec, cpu.system_usec) =
                ticks_to_usec(&path, &read(dir, "cpuacct.stat")?, user_hz())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_testkit::FakeTree;

    #[test]
    fn usage_in_ns_becomes_usec() {
        let t = FakeTree::new();
        t.file("cpuacct.usage", "2500000\n")
            .file("cpuacct.usage_user", "2000000\n")
            .file("cpuacct.usage_sys", "500999\n");
        let mut s = Stats::default();
        Cpuacct.stats(t.path(), &mut s).unwrap();
        let c = s.cpu.unwrap();
        assert_eq!(
            (c.usage_usec, c.user_usec, c.system_usec),
            (2500, 2000, 500)
        );
    }

    #[test]
    fn falls_back_to_ticks() {
        let t = FakeTree::new();
        t.file("cpuacct.usage", "0\n")
            .file("cpuacct.stat", "user 250\nsystem 3\n");
        let mut s = Stats::default();
        Cpuacct.stats(t.path(), &mut s).unwrap();
        let hz = user_hz();
        let c = s.cpu.unwrap();
        assert_eq!(
            (c.user_usec, c.system_usec),
            (250 * 1_000_000 / hz, 3 * 1_000_000 / hz)
        );
        assert_eq!(
            ticks_to_usec(Path::new("f"), "user 100\nsystem 50\n", 100).unwrap(),
            (1_000_000, 500_000)
        );
        assert!(ticks_to_usec(Path::new("f"), "user\n", 100).is_err());
    }

    #[test]
    fn missing_usage_is_an_error_naming_the_file() {
        let t = FakeTree::new();
        let err = Cpuacct
            .stats(t.path(), &mut Stats::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("cpuacct.usage"), "{err}");
    }
}
