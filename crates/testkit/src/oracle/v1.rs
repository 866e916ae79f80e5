//! cgroups-rs reader for v1 hierarchies (owned by the cgroup-v1 backend work).
//!
//! [`V1Oracle`] loads a cgroup that isol created, by its [`CgroupLocation`], through
//! cgroups-rs's own v1 hierarchy discovery (`cgroups_rs::fs::hierarchies::V1`, which reads
//! `/proc/self/mountinfo` itself) and reads its settings with cgroups-rs's controllers.
//! None of isol's parsers or conversions are involved, so a test that compares isol's
//! `Cgroup::read` with this reader compares two independent implementations.

use std::path::PathBuf;

use cgroups_rs::fs::blkio::BlkIoController;
use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuset::CpuSetController;
use cgroups_rs::fs::devices::DevicesController;
use cgroups_rs::fs::freezer::FreezerController;
use cgroups_rs::fs::hierarchies::V1;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::{Cgroup, MaxValue};
use cgroups_rs::FreezerState;
use isol_ns_core::{CgroupLocation, HostInfo};

/// A v1 cgroup as cgroups-rs sees it.
pub struct V1Oracle {
    host: HostInfo,
    location: CgroupLocation,
}

impl V1Oracle {
    /// The cgroup at `location` (the keys are hierarchy keys: `memory`, `cpu,cpuacct`, …).
    pub fn new(location: &CgroupLocation) -> V1Oracle {
        V1Oracle {
            host: HostInfo::probe().expect("probe the host"),
            location: location.clone(),
        }
    }

    /// The cgroup's path relative to `controller`'s mount point, as cgroups-rs wants it.
    fn relative(&self, controller: &str) -> PathBuf {
        let h = self
            .host
            .v1_hierarchy(controller)
            .unwrap_or_else(|| panic!("no v1 hierarchy has {controller}"));
        let key = h.controllers.join(",");
        let path = self
            .location
            .get(&key)
            .unwrap_or_else(|| panic!("location has no {key} path: {:?}", self.location));
        let dir = h
            .dir_of(path.as_str())
            .expect("cgroup inside the mounted subtree");
        dir.strip_prefix(&h.mount_point)
            .expect("dir below its mount point")
            .to_path_buf()
    }

    /// Loads the cgroup with only `controller`.
    fn load(&self, controller: &str) -> Cgroup {
        let rel = self.relative(controller);
        assert!(
            rel.is_relative() && !rel.as_os_str().is_empty(),
            "oracle reads cgroups isol created, not a root"
        );
        Cgroup::load_with_specified_controllers(
            Box::new(V1::new()),
            rel,
            vec![controller.to_string()],
        )
    }

    /// `memory.limit_in_bytes` as cgroups-rs reads it (a raw i64).
    pub fn memory_limit(&self) -> i64 {
        let cg = self.load("memory");
        cg.controller_of::<MemController>()
            .expect("memory controller")
            .memory_stat()
            .limit_in_bytes
    }

    /// `memory.memsw.limit_in_bytes`.
    pub fn memsw_limit(&self) -> i64 {
        let cg = self.load("memory");
        cg.controller_of::<MemController>()
            .expect("memory controller")
            .memswap()
            .limit_in_bytes
    }

    /// `memory.soft_limit_in_bytes`.
    pub fn memory_soft_limit(&self) -> i64 {
        let cg = self.load("memory");
        cg.controller_of::<MemController>()
            .expect("memory controller")
            .memory_stat()
            .soft_limit_in_bytes
    }

    /// The OOM kill counter of `memory.oom_control`.
    pub fn oom_kills(&self) -> u64 {
        let cg = self.load("memory");
        cg.controller_of::<MemController>()
            .expect("memory controller")
            .memory_stat()
            .oom_control
            .oom_kill
    }

    /// `pids.max`: `None` for `max`.
    pub fn pids_max(&self) -> Option<i64> {
        let cg = self.load("pids");
        match cg
            .controller_of::<PidController>()
            .expect("pids controller")
            .get_pid_max()
            .expect("read pids.max")
        {
            MaxValue::Max => None,
            MaxValue::Value(v) => Some(v),
        }
    }

    /// `cpu.shares`.
    pub fn cpu_shares(&self) -> u64 {
        let cg = self.load("cpu");
        cg.controller_of::<CpuController>()
            .expect("cpu controller")
            .shares()
            .expect("read cpu.shares")
    }

    /// (`cpu.cfs_quota_us`, `cpu.cfs_period_us`).
    pub fn cpu_quota_period(&self) -> (i64, u64) {
        let cg = self.load("cpu");
        let c = cg.controller_of::<CpuController>().expect("cpu controller");
        (
            c.cfs_quota().expect("read cfs_quota_us"),
            c.cfs_period().expect("read cfs_period_us"),
        )
    }

    /// `cpuset.cpus` as ranges, e.g. `[(0, 1)]`.
    pub fn cpuset_cpus(&self) -> Vec<(u64, u64)> {
        let cg = self.load("cpuset");
        cg.controller_of::<CpuSetController>()
            .expect("cpuset controller")
            .cpuset()
            .cpus
    }

    /// `cpuset.mems` as ranges.
    pub fn cpuset_mems(&self) -> Vec<(u64, u64)> {
        let cg = self.load("cpuset");
        cg.controller_of::<CpuSetController>()
            .expect("cpuset controller")
            .cpuset()
            .mems
    }

    /// Whether `freezer.state` is FROZEN (`Some(true)`), THAWED (`Some(false)`) or
    /// FREEZING (`None`).
    pub fn frozen(&self) -> Option<bool> {
        let cg = self.load("freezer");
        match cg
            .controller_of::<FreezerController>()
            .expect("freezer controller")
            .state()
            .expect("read freezer.state")
        {
            FreezerState::Frozen => Some(true),
            FreezerState::Thawed => Some(false),
            FreezerState::Freezing => None,
        }
    }

    /// `blkio.throttle.read_bps_device` as (major, minor, bytes/s).
    pub fn read_bps(&self) -> Vec<(i16, i16, u64)> {
        let cg = self.load("blkio");
        let b = cg
            .controller_of::<BlkIoController>()
            .expect("blkio controller")
            .blkio();
        b.throttle
            .read_bps_device
            .iter()
            .map(|d| (d.major, d.minor, d.data))
            .collect()
    }

    /// `devices.list` as (type, major, minor, access) with `-1` for `*`.
    pub fn allowed_devices(&self) -> Vec<String> {
        let cg = self.load("devices");
        let list = cg
            .controller_of::<DevicesController>()
            .expect("devices controller")
            .allowed_devices()
            .expect("read devices.list");
        list.iter()
            .map(|d| {
                let access: String = d.access.iter().map(|a| a.to_char()).collect();
                format!("{} {}:{} {access}", d.devtype.to_char(), d.major, d.minor)
            })
            .collect()
    }

    /// The pids in `controller`'s `cgroup.procs`.
    pub fn procs(&self, controller: &str) -> Vec<u64> {
        self.load(controller)
            .procs()
            .into_iter()
            .map(|p| p.pid)
            .collect()
    }
}
