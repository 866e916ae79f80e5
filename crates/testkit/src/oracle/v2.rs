//! cgroups-rs reader for the unified hierarchy (owned by the cgroup-v2 backend work).
//!
//! cgroups-rs's own `V2` hierarchy is fixed at `/sys/fs/cgroup`; [`Unified`] is the same
//! hierarchy rooted at the mount point the test was given, so the VM's and any host's
//! mount work alike. What it reads goes through cgroups-rs's controllers only: memory
//! (`get_mem`), pids (`get_pid_max`, `get_pid_events`), cpu (`shares` = `cpu.weight` on
//! v2, `cfs_quota`/`cfs_period` from `cpu.max`), cpuset (`cpuset().cpus`), hugetlb
//! (`limit_in_bytes`), freezer (`state`), io (`blkio().io_stat`) and `procs`.
//! cgroups-rs 0.5 has no v2 reader of `io.weight` (it writes `io.bfq.weight`), so io
//! weight cannot be cross-checked here.

use std::path::{Path, PathBuf};

use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuset::CpuSetController;
use cgroups_rs::fs::freezer::FreezerController;
use cgroups_rs::fs::hugetlb::HugeTlbController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::{blkio::BlkIoController, Cgroup, Hierarchy, MaxValue, Subsystem};
use cgroups_rs::FreezerState;
use isol_ns_core::units::Limit;

/// The unified hierarchy mounted at `root`, as cgroups-rs sees it.
#[derive(Clone, Debug)]
pub struct Unified {
    root: PathBuf,
}

impl Unified {
    /// The hierarchy mounted at `mount_point`.
    pub fn new(mount_point: &Path) -> Unified {
        Unified {
            root: mount_point.to_path_buf(),
        }
    }

    /// Loads the cgroup whose directory is `dir` (beneath the mount point).
    pub fn load(&self, dir: &Path) -> Cgroup {
        let rel = dir.strip_prefix(&self.root).unwrap_or_else(|_| {
            panic!(
                "{} is not beneath the cgroup2 mount {}",
                dir.display(),
                self.root.display()
            )
        });
        Cgroup::load(Box::new(self.clone()), rel)
    }
}

impl Hierarchy for Unified {
    fn subsystems(&self) -> Vec<Subsystem> {
        let text =
            std::fs::read_to_string(self.root.join("cgroup.controllers")).unwrap_or_default();
        let root = || self.root.clone();
        let mut subs = vec![Subsystem::Freezer(FreezerController::new(
            root(),
            PathBuf::new(),
            true,
        ))];
        for c in text.split_whitespace() {
            subs.push(match c {
                "cpu" => Subsystem::Cpu(CpuController::new(root(), PathBuf::new(), true)),
                "io" => Subsystem::BlkIo(BlkIoController::new(root(), PathBuf::new(), true)),
                "cpuset" => Subsystem::CpuSet(CpuSetController::new(root(), PathBuf::new(), true)),
                "memory" => Subsystem::Mem(MemController::new(root(), PathBuf::new(), true)),
                "pids" => Subsystem::Pid(PidController::new(root(), PathBuf::new(), true)),
                "hugetlb" => {
                    Subsystem::HugeTlb(HugeTlbController::new(root(), PathBuf::new(), true))
                }
                _ => continue,
            });
        }
        subs
    }

    fn root(&self) -> PathBuf {
        self.root.clone()
    }

    fn root_control_group(&self) -> Cgroup {
        Cgroup::load(Box::new(self.clone()), "")
    }

    fn parent_control_group(&self, path: &str) -> Cgroup {
        let parent = Path::new(path)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Cgroup::load(Box::new(self.clone()), parent)
    }

    fn v2(&self) -> bool {
        true
    }
}

/// What cgroups-rs reports for one v2 cgroup. A field is `None` when cgroups-rs has no
/// controller for it on this hierarchy or reports an error reading it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct V2View {
    /// `memory.max`.
    pub memory_max: Option<Limit>,
    /// `memory.high`.
    pub memory_high: Option<Limit>,
    /// `memory.low`.
    pub memory_low: Option<Limit>,
    /// `memory.min`.
    pub memory_min: Option<Limit>,
    /// `memory.current`.
    pub memory_current: Option<u64>,
    /// `pids.max`.
    pub pids_max: Option<Limit>,
    /// `pids.current`.
    pub pids_current: Option<u64>,
    /// The `max` counter of `pids.events`.
    pub pids_events_max: Option<u64>,
    /// `cpu.weight`.
    pub cpu_weight: Option<u64>,
    /// `cpu.max` as (quota, period); quota `Max` for no limit.
    pub cpu_max: Option<(Limit, u64)>,
    /// `cpuset.cpus` in the kernel's list form (`1-3,5`), `None` when empty.
    pub cpuset_cpus: Option<String>,
    /// `cgroup.freeze`.
    pub frozen: Option<bool>,
    /// Devices in `io.stat` as (major, minor).
    pub io_stat_devices: Vec<(i16, i16)>,
    /// The pids in `cgroup.procs`.
    pub procs: Vec<u64>,
}

fn limit(v: MaxValue) -> Limit {
    match v {
        MaxValue::Max => Limit::Max,
        MaxValue::Value(v) => Limit::Value(u64::try_from(v).unwrap_or(0)),
    }
}

/// Reads the cgroup at `dir` of the unified hierarchy mounted at `mount_point`.
pub fn read(mount_point: &Path, dir: &Path) -> V2View {
    let cg = Unified::new(mount_point).load(dir);
    let mut v = V2View::default();
    if let Some(mem) = cg.controller_of::<MemController>() {
        if let Ok(m) = mem.get_mem() {
            v.memory_max = m.max.map(limit);
            v.memory_high = m.high.map(limit);
            v.memory_low = m.low.map(limit);
            v.memory_min = m.min.map(limit);
        }
        v.memory_current = Some(mem.memory_stat().usage_in_bytes);
    }
    if let Some(pids) = cg.controller_of::<PidController>() {
        v.pids_max = pids.get_pid_max().ok().map(limit);
        v.pids_current = pids.get_pid_current().ok();
        v.pids_events_max = pids.get_pid_events().ok();
    }
    if let Some(cpu) = cg.controller_of::<CpuController>() {
        v.cpu_weight = cpu.shares().ok();
        if let (Ok(q), Ok(p)) = (cpu.cfs_quota(), cpu.cfs_period()) {
            v.cpu_max = Some((
                if q < 0 {
                    Limit::Max
                } else {
                    Limit::Value(q as u64)
                },
                p,
            ));
        }
    }
    if let Some(cpuset) = cg.controller_of::<CpuSetController>() {
        let cpus = cpuset.cpuset().cpus;
        if !cpus.is_empty() {
            v.cpuset_cpus = Some(
                cpus.iter()
                    .map(|(a, b)| {
                        if a == b {
                            a.to_string()
                        } else {
                            format!("{a}-{b}")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
    }
    if let Some(f) = cg.controller_of::<FreezerController>() {
        v.frozen = f.state().ok().map(|s| matches!(s, FreezerState::Frozen));
    }
    if let Some(io) = cg.controller_of::<BlkIoController>() {
        v.io_stat_devices = io
            .blkio()
            .io_stat
            .iter()
            .map(|s| (s.major, s.minor))
            .collect();
    }
    v.procs = cg.procs().into_iter().map(|p| p.pid).collect();
    v
}

/// `hugetlb.<size>.max` through cgroups-rs (`None` without the controller or the file).
pub fn hugetlb_max(mount_point: &Path, dir: &Path, page_size: &str) -> Option<u64> {
    let cg = Unified::new(mount_point).load(dir);
    cg.controller_of::<HugeTlbController>()?
        .limit_in_bytes(page_size)
        .ok()
}
