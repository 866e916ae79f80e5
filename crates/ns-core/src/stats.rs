//! What a cgroup has used, and what happened to it: the backend-neutral [`Stats`] and
//! [`CgroupEvent`] types that both backends fill in.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::units::Limit;
use crate::{parse, Error, Result};

/// A snapshot of a cgroup's usage. A part is `None` (or empty) when its controller is not
/// enabled for the cgroup.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// Memory usage and events.
    pub memory: Option<MemoryStats>,
    /// CPU time and throttling.
    pub cpu: Option<CpuStats>,
    /// Task counts.
    pub pids: Option<PidsStats>,
    /// Block I/O per device.
    pub io: Vec<IoDeviceStats>,
    /// Pressure stall information, where the kernel has it (v2).
    pub psi: Option<PsiStats>,
}

/// Memory usage (`memory.current`, `memory.peak`, `memory.stat`, `memory.events`; v1
/// `memory.usage_in_bytes`, `max_usage_in_bytes`, `failcnt`, `memory.stat`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryStats {
    /// Bytes in use now.
    pub current: u64,
    /// The most bytes ever in use, where the kernel tracks it.
    pub peak: Option<u64>,
    /// The hard limit in force.
    pub max: Option<Limit>,
    /// v1: how often the limit was hit.
    pub failcnt: Option<u64>,
    /// The keys of `memory.stat`, as the kernel names them.
    pub stat: BTreeMap<String, u64>,
    /// Event counters.
    pub events: MemoryEvents,
}

/// Counters of `memory.events` (v1 fills `oom` and `oom_kill` from `memory.oom_control`
/// and `max` from `failcnt`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryEvents {
    /// Reclaimed below `memory.low`.
    pub low: u64,
    /// Throttled past `memory.high`.
    pub high: u64,
    /// Hit `memory.max`.
    pub max: u64,
    /// Went out of memory.
    pub oom: u64,
    /// Tasks killed by the OOM killer.
    pub oom_kill: u64,
}

/// CPU time in microseconds (`cpu.stat`; v1 `cpuacct.usage*`, `cpu.stat`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuStats {
    /// Total cpu time.
    pub usage_usec: u64,
    /// In user mode.
    pub user_usec: u64,
    /// In kernel mode.
    pub system_usec: u64,
    /// Enforcement periods elapsed.
    pub nr_periods: u64,
    /// Periods in which the cgroup was throttled.
    pub nr_throttled: u64,
    /// Time spent throttled.
    pub throttled_usec: u64,
}

/// Task counts (`pids.current`, `pids.max`, `pids.events`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PidsStats {
    /// Tasks now.
    pub current: u64,
    /// The limit in force.
    pub max: Option<Limit>,
    /// Forks refused because of the limit, where the kernel counts them.
    pub events_max: Option<u64>,
}

/// I/O done on one device (`io.stat`; v1 `blkio.throttle.io_service_bytes` / `_serviced`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IoDeviceStats {
    /// Device major number.
    pub major: u32,
    /// Device minor number.
    pub minor: u32,
    /// Bytes read.
    pub rbytes: u64,
    /// Bytes written.
    pub wbytes: u64,
    /// Read operations.
    pub rios: u64,
    /// Write operations.
    pub wios: u64,
}

/// Pressure stall information for the three resources (`cpu.pressure`, …).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PsiStats {
    /// CPU pressure.
    pub cpu: Option<Pressure>,
    /// Memory pressure.
    pub memory: Option<Pressure>,
    /// I/O pressure.
    pub io: Option<Pressure>,
}

impl PsiStats {
    /// Reads `cpu.pressure`, `memory.pressure` and `io.pressure` of a cgroup2 directory;
    /// `None` when the kernel offers none of them. cgroup2 keeps these files for every
    /// cgroup whether or not controllers are enabled, so the v2 backend reads them for
    /// its cgroups and the v1 backend for their unified twins on hybrid hosts
    /// (Documentation/accounting/psi.rst, "Cgroup2 interface"). A missing file
    /// (no CONFIG_PSI) or EOPNOTSUPP (`psi=0`) means "no PSI", not an error.
    pub fn read(dir: &Path) -> Result<Option<PsiStats>> {
        let psi = PsiStats {
            cpu: Pressure::read(&dir.join("cpu.pressure"))?,
            memory: Pressure::read(&dir.join("memory.pressure"))?,
            io: Pressure::read(&dir.join("io.pressure"))?,
        };
        Ok((psi.cpu.is_some() || psi.memory.is_some() || psi.io.is_some()).then_some(psi))
    }
}

impl Pressure {
    /// Reads one pressure file; `None` when the kernel has none.
    pub fn read(path: &Path) -> Result<Option<Pressure>> {
        match parse::read(path) {
            Ok(text) => Pressure::parse(path, &text).map(Some),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EOPNOTSUPP)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Parses a pressure file: a `some` line and, except for cpu on older kernels, a
    /// `full` line, each `avg10=… avg60=… avg300=… total=…`.
    pub fn parse(path: &Path, text: &str) -> Result<Pressure> {
        let lines = parse::nested_keyed(path, text)?;
        let line = |key: &str| -> Result<Option<PressureLine>> {
            let Some(l) = lines.iter().find(|l| l.key == key) else {
                return Ok(None);
            };
            let avg = |sub: &str| {
                l.f64(sub)
                    .ok_or_else(|| Error::parse(path, format!("{key} line has no number {sub}=")))
            };
            Ok(Some(PressureLine {
                avg10: avg("avg10")?,
                avg60: avg("avg60")?,
                avg300: avg("avg300")?,
                total: l
                    .u64("total")
                    .ok_or_else(|| Error::parse(path, format!("{key} line has no total=")))?,
            }))
        };
        Ok(Pressure {
            some: line("some")?.ok_or_else(|| Error::parse(path, "no \"some\" line"))?,
            full: line("full")?,
        })
    }
}

/// One pressure file: the `some` line and, where present, the `full` line.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pressure {
    /// Share of time at least one task stalled.
    pub some: PressureLine,
    /// Share of time all tasks stalled.
    pub full: Option<PressureLine>,
}

/// `avg10=… avg60=… avg300=… total=…`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PressureLine {
    /// Percent stalled over 10 s.
    pub avg10: f64,
    /// Percent stalled over 60 s.
    pub avg60: f64,
    /// Percent stalled over 300 s.
    pub avg300: f64,
    /// Total stall time in microseconds.
    pub total: u64,
}

/// Something that happened to a cgroup, reported by [`crate::backend::Cgroup::events`].
/// Counters are the kernel's running totals at the time of the event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CgroupEvent {
    /// The OOM killer killed a task; `count` kills so far.
    OomKill {
        /// Total kills.
        count: u64,
    },
    /// The cgroup ran out of memory; `count` times so far.
    Oom {
        /// Total OOM events.
        count: u64,
    },
    /// Usage went past `memory.high`.
    MemoryHigh {
        /// Total.
        count: u64,
    },
    /// Usage hit `memory.max`.
    MemoryMax {
        /// Total.
        count: u64,
    },
    /// A fork failed because of `pids.max`.
    PidsMax {
        /// Total.
        count: u64,
    },
    /// The last task left the cgroup.
    Emptied,
    /// The cgroup's tasks are frozen.
    Frozen,
    /// The cgroup's tasks are running again.
    Thawed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pressure_files() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(PsiStats::read(dir.path()).unwrap(), None);
        std::fs::write(
            dir.path().join("cpu.pressure"),
            "some avg10=98.47 avg60=97.22 avg300=73.34 total=472090834\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("memory.pressure"),
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=66857\n",
        )
        .unwrap();
        let psi = PsiStats::read(dir.path()).unwrap().unwrap();
        let cpu = psi.cpu.unwrap();
        assert_eq!((cpu.some.avg10, cpu.some.total), (98.47, 472_090_834));
        assert_eq!(cpu.full.unwrap().total, 0);
        assert!(
            psi.memory.unwrap().full.is_none(),
            "older kernels have no full line"
        );
        assert!(psi.io.is_none());
    }

    #[test]
    fn odd_pressure_content_is_an_error_naming_the_file() {
        let p = Path::new("io.pressure");
        let err = Pressure::parse(p, "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("io.pressure") && err.contains("no \"some\" line"),
            "{err}"
        );
        let err = Pressure::parse(p, "some avg10=x avg60=0.00 avg300=0.00 total=0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("avg10"), "{err}");
        assert!(Pressure::parse(p, "some avg10=1 avg60=0 avg300=0\n").is_err());
    }
}
