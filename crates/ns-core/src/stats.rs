//! What a cgroup has used, and what happened to it: the backend-neutral [`Stats`] and
//! [`CgroupEvent`] types that both backends fill in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::units::Limit;

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
