//! The v2 controllers, one file each, every one a [`ResourceController`] that reads and
//! writes the interface files of one cgroup directory (Documentation/admin-guide/
//! cgroup-v2.rst, "Controllers"). `kill` is not a controller but a core interface file;
//! it lives here because it too is one file's worth of kernel interface.

use isol_ns_core::{Controller, ResourceController, Resources, Setting};

pub mod cpu;
pub mod cpuset;
pub mod devices;
pub mod freezer;
pub mod hugetlb;
pub mod io;
pub mod kill;
pub mod memory;
pub mod pids;

/// Every controller of this backend, in the order settings are applied (cpuset before
/// the rest, so a task never runs on a cpu it must not; freezer last, so the limits are
/// in force before a thaw).
pub fn all() -> [&'static dyn ResourceController; 8] {
    [
        &cpuset::Cpuset,
        &cpu::Cpu,
        &memory::Memory,
        &pids::Pids::V2,
        &io::Io,
        &hugetlb::HUGETLB,
        &devices::Devices,
        &freezer::Freezer,
    ]
}

/// The controllers that are enabled through `cgroup.subtree_control` (freezer and
/// devices are not: the freezer is a core file on v2, devices an eBPF program). Domain
/// controllers come first: they are the ones the no-internal-processes rule refuses, so
/// a refusal comes before anything was written. cpu and pids are threaded controllers,
/// which the kernel lets be enabled beside tasks (cgroup-v2.rst, "Threads").
pub const ENABLEABLE: [Controller; 6] = [
    Controller::Memory,
    Controller::Io,
    Controller::Cpuset,
    Controller::Hugetlb,
    Controller::Cpu,
    Controller::Pids,
];

/// Enabled by default when available, so that stats work even without limits.
pub const DEFAULT_ENABLED: [Controller; 4] = [
    Controller::Memory,
    Controller::Pids,
    Controller::Cpu,
    Controller::Io,
];

/// The kernel's name of a controller in `cgroup.controllers` and
/// `cgroup.subtree_control`; `None` for those not enabled there ([`ENABLEABLE`]).
/// On v2 the kernel's names are isol's.
pub fn kernel_name(c: Controller) -> Option<&'static str> {
    ENABLEABLE.contains(&c).then(|| c.name())
}

/// The enableable controllers `resources` needs, each as the first setting it serves
/// (what an error names when the controller cannot be enabled).
pub fn needed(resources: &Resources) -> Vec<Setting> {
    ENABLEABLE
        .into_iter()
        .filter_map(|c| c.first_set(resources))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_enableable_controller_is_one_of_ours() {
        let ours: Vec<Controller> = all().iter().map(|c| c.controller()).collect();
        for c in ENABLEABLE {
            assert!(ours.contains(&c), "{c}");
            assert_eq!(kernel_name(c), Some(c.name()));
        }
        for c in [
            Controller::Freezer,
            Controller::Devices,
            Controller::Cpuacct,
        ] {
            assert_eq!(kernel_name(c), None, "{c}");
        }
        assert!(DEFAULT_ENABLED.iter().all(|c| ENABLEABLE.contains(c)));
    }

    /// A controller with settings that no controller of this backend serves would see
    /// its settings ignored here, not refused.
    #[test]
    fn every_setting_has_a_controller() {
        let ours: Vec<Controller> = all().iter().map(|c| c.controller()).collect();
        for c in Controller::ALL {
            assert!(c.settings().is_empty() || ours.contains(&c), "{c}");
        }
    }
}
