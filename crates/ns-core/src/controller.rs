//! Which controller serves which setting, decided once for every backend.
//!
//! Both backends drive the same controllers for the same [`Resources`]; what differs is
//! the kernel's files. So the identity of a controller ([`Controller`]), the settings it
//! serves ([`Setting`], one per field of `Resources`), whether `Resources` needs it
//! ([`Controller::wanted`]) and how a setting is named when a backend cannot honour it
//! ([`Setting::unsupported`]: by its `Resources` field, `memory.swap_max`, never by a
//! kernel file) live here. The kernel's names for the controllers are each backend's
//! (v1 mounts `io` as `blkio`; on v2 the freezer and devices are not controllers one
//! enables).

use std::fmt;

use crate::resources::Resources;
use crate::Error;

/// A cgroup controller, as isol's backends drive it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Controller {
    /// CPU weight and bandwidth (`cpu.weight`/`cpu.max`; v1 `cpu.shares`, `cpu.cfs_*`).
    Cpu,
    /// v1's cpu accounting (`cpuacct.usage*`): statistics only, no setting.
    Cpuacct,
    /// Which cpus and memory nodes may be used.
    Cpuset,
    /// Memory limits and protection.
    Memory,
    /// The number of tasks.
    Pids,
    /// Block I/O weight and per-device limits (v1: `blkio`).
    Io,
    /// Huge page limits.
    Hugetlb,
    /// Device access rules (v1 `devices.*`, v2 an eBPF program).
    Devices,
    /// Stopping and resuming the tasks (v1 `freezer.state`, v2 `cgroup.freeze`).
    Freezer,
}

impl Controller {
    /// Every controller, in declaration order.
    pub const ALL: [Controller; 9] = [
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Cpuset,
        Controller::Memory,
        Controller::Pids,
        Controller::Io,
        Controller::Hugetlb,
        Controller::Devices,
        Controller::Freezer,
    ];

    /// isol's name for it: the `Resources` field it serves (`io`), `cpuacct` and
    /// `freezer` aside. A backend maps it to the kernel's name where they differ.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Cpuset => "cpuset",
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Io => "io",
            Controller::Hugetlb => "hugetlb",
            Controller::Devices => "devices",
            Controller::Freezer => "freezer",
        }
    }

    /// The settings it serves, in the order of `Resources`' fields.
    pub fn settings(self) -> &'static [Setting] {
        use Setting::*;
        match self {
            Controller::Cpu => &[CpuWeight, CpuMax],
            Controller::Cpuacct => &[],
            Controller::Cpuset => &[CpusetCpus, CpusetMems],
            Controller::Memory => &[
                MemoryMin,
                MemoryLow,
                MemoryHigh,
                MemoryMax,
                MemorySwapMax,
                MemoryOomGroup,
            ],
            Controller::Pids => &[PidsMax],
            Controller::Io => &[IoWeight, IoDevices],
            Controller::Hugetlb => &[Hugetlb],
            Controller::Devices => &[Devices],
            Controller::Freezer => &[Frozen],
        }
    }

    /// Whether `r` sets anything this controller serves (so it must be enabled).
    pub fn wanted(self, r: &Resources) -> bool {
        self.first_set(r).is_some()
    }

    /// The first of its settings that `r` sets: what an error names when the
    /// controller itself is missing.
    pub fn first_set(self, r: &Resources) -> Option<Setting> {
        self.settings().iter().copied().find(|s| s.is_set(r))
    }
}

impl fmt::Display for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One field of [`Resources`] a backend honours (or refuses) as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Setting {
    /// `cpu.weight`.
    CpuWeight,
    /// `cpu.max`.
    CpuMax,
    /// `cpuset.cpus`.
    CpusetCpus,
    /// `cpuset.mems`.
    CpusetMems,
    /// `memory.min`.
    MemoryMin,
    /// `memory.low`.
    MemoryLow,
    /// `memory.high`.
    MemoryHigh,
    /// `memory.max`.
    MemoryMax,
    /// `memory.swap_max`.
    MemorySwapMax,
    /// `memory.oom_group`.
    MemoryOomGroup,
    /// `pids.max`.
    PidsMax,
    /// `io.weight`.
    IoWeight,
    /// `io.devices`: the per-device limits.
    IoDevices,
    /// `hugetlb`: the limits per page size.
    Hugetlb,
    /// `devices`: the access rules.
    Devices,
    /// `frozen`.
    Frozen,
}

impl Setting {
    /// Every setting, in the order of `Resources`' fields.
    pub const ALL: [Setting; 16] = [
        Setting::CpuWeight,
        Setting::CpuMax,
        Setting::CpusetCpus,
        Setting::CpusetMems,
        Setting::MemoryMin,
        Setting::MemoryLow,
        Setting::MemoryHigh,
        Setting::MemoryMax,
        Setting::MemorySwapMax,
        Setting::MemoryOomGroup,
        Setting::PidsMax,
        Setting::IoWeight,
        Setting::IoDevices,
        Setting::Hugetlb,
        Setting::Devices,
        Setting::Frozen,
    ];

    /// Its path in `Resources` (and in its JSON form): `memory.swap_max`.
    pub fn name(self) -> &'static str {
        match self {
            Setting::CpuWeight => "cpu.weight",
            Setting::CpuMax => "cpu.max",
            Setting::CpusetCpus => "cpuset.cpus",
            Setting::CpusetMems => "cpuset.mems",
            Setting::MemoryMin => "memory.min",
            Setting::MemoryLow => "memory.low",
            Setting::MemoryHigh => "memory.high",
            Setting::MemoryMax => "memory.max",
            Setting::MemorySwapMax => "memory.swap_max",
            Setting::MemoryOomGroup => "memory.oom_group",
            Setting::PidsMax => "pids.max",
            Setting::IoWeight => "io.weight",
            Setting::IoDevices => "io.devices",
            Setting::Hugetlb => "hugetlb",
            Setting::Devices => "devices",
            Setting::Frozen => "frozen",
        }
    }

    /// The controller that serves it.
    pub fn controller(self) -> Controller {
        use Setting::*;
        match self {
            CpuWeight | CpuMax => Controller::Cpu,
            CpusetCpus | CpusetMems => Controller::Cpuset,
            MemoryMin | MemoryLow | MemoryHigh | MemoryMax | MemorySwapMax | MemoryOomGroup => {
                Controller::Memory
            }
            PidsMax => Controller::Pids,
            IoWeight | IoDevices => Controller::Io,
            Hugetlb => Controller::Hugetlb,
            Devices => Controller::Devices,
            Frozen => Controller::Freezer,
        }
    }

    /// Whether `r` sets it.
    pub fn is_set(self, r: &Resources) -> bool {
        let (m, io) = (&r.memory, &r.io);
        match self {
            Setting::CpuWeight => r.cpu.weight.is_some(),
            Setting::CpuMax => r.cpu.max.is_some(),
            Setting::CpusetCpus => r.cpuset.cpus.is_some(),
            Setting::CpusetMems => r.cpuset.mems.is_some(),
            Setting::MemoryMin => m.min.is_some(),
            Setting::MemoryLow => m.low.is_some(),
            Setting::MemoryHigh => m.high.is_some(),
            Setting::MemoryMax => m.max.is_some(),
            Setting::MemorySwapMax => m.swap_max.is_some(),
            Setting::MemoryOomGroup => m.oom_group.is_some(),
            Setting::PidsMax => r.pids.max.is_some(),
            Setting::IoWeight => io.weight.is_some(),
            Setting::IoDevices => !io.devices.is_empty(),
            Setting::Hugetlb => !r.hugetlb.is_empty(),
            Setting::Devices => !r.devices.is_empty(),
            Setting::Frozen => r.frozen.is_some(),
        }
    }

    /// The [`Error::Unsupported`] of `backend` for this setting: the one way a setting a
    /// backend cannot honour is named.
    pub fn unsupported(self, backend: &'static str, reason: impl Into<String>) -> Error {
        Error::Unsupported {
            setting: self.name().to_string(),
            backend,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{HugetlbLimit, IoDeviceLimit};
    use crate::units::{CpuList, CpuMax, Limit};

    /// `Resources` with only `s` set.
    fn only(s: Setting) -> Resources {
        let mut r = Resources::default();
        let v = Some(Limit::Value(4096));
        match s {
            Setting::CpuWeight => r.cpu.weight = Some(100),
            Setting::CpuMax => {
                r.cpu.max = Some(CpuMax {
                    quota: Limit::Max,
                    period: CpuMax::DEFAULT_PERIOD,
                })
            }
            Setting::CpusetCpus => r.cpuset.cpus = Some(CpuList::from_iter([0])),
            Setting::CpusetMems => r.cpuset.mems = Some(CpuList::from_iter([0])),
            Setting::MemoryMin => r.memory.min = v,
            Setting::MemoryLow => r.memory.low = v,
            Setting::MemoryHigh => r.memory.high = v,
            Setting::MemoryMax => r.memory.max = v,
            Setting::MemorySwapMax => r.memory.swap_max = v,
            Setting::MemoryOomGroup => r.memory.oom_group = Some(true),
            Setting::PidsMax => r.pids.max = v,
            Setting::IoWeight => r.io.weight = Some(100),
            Setting::IoDevices => r.io.devices.push(IoDeviceLimit {
                rbps: v,
                ..Default::default()
            }),
            Setting::Hugetlb => r.hugetlb.push(HugetlbLimit::new("2MB", Limit::Max)),
            Setting::Devices => r.devices.push("c 1:3 rwm".parse().unwrap()),
            Setting::Frozen => r.frozen = Some(false),
        }
        r
    }

    /// The dotted paths of the leaves of `Resources`' JSON form.
    fn json_paths(r: &Resources) -> Vec<String> {
        let v = serde_json::to_value(r).unwrap();
        let mut out = Vec::new();
        for (k, v) in v.as_object().unwrap() {
            match v.as_object() {
                Some(inner) => out.extend(inner.keys().map(|i| format!("{k}.{i}"))),
                None => out.push(k.clone()),
            }
        }
        out
    }

    #[test]
    fn every_setting_is_named_as_its_resources_field() {
        for s in Setting::ALL {
            let r = only(s);
            assert_eq!(json_paths(&r), vec![s.name()], "{s:?}");
            let set: Vec<Setting> = Setting::ALL.into_iter().filter(|t| t.is_set(&r)).collect();
            assert_eq!(set, vec![s], "is_set of {s:?}");
            let wanted: Vec<Controller> = Controller::ALL
                .into_iter()
                .filter(|c| c.wanted(&r))
                .collect();
            assert_eq!(wanted, vec![s.controller()], "{s:?}");
            assert_eq!(s.controller().first_set(&r), Some(s));
        }
        assert!(Controller::ALL
            .iter()
            .all(|c| !c.wanted(&Resources::default())));
    }

    #[test]
    fn every_setting_has_one_controller() {
        let mut all: Vec<Setting> = Controller::ALL
            .iter()
            .flat_map(|c| c.settings().iter().copied())
            .collect();
        assert_eq!(all, Setting::ALL, "settings in Resources' order");
        all.dedup();
        assert_eq!(all.len(), Setting::ALL.len());
        assert_eq!(Setting::Frozen.controller(), Controller::Freezer);
        assert_eq!(Setting::IoDevices.controller(), Controller::Io);
    }

    #[test]
    fn unsupported_names_the_field() {
        let e = Setting::MemorySwapMax.unsupported("cgroup-v2", "no swap accounting");
        assert_eq!(
            e.to_string(),
            "memory.swap_max is not supported by cgroup-v2: no swap accounting"
        );
    }
}
