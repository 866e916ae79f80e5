//! The v2 controllers, one file each, every one a [`ResourceController`] that reads and
//! writes the interface files of one cgroup directory (Documentation/admin-guide/
//! cgroup-v2.rst, "Controllers"). `kill` is not a controller but a core interface file;
//! it lives here because it too is one file's worth of kernel interface.

use isol_ns_core::{ResourceController, Resources};

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
        &pids::Pids,
        &io::Io,
        &hugetlb::Hugetlb,
        &devices::Devices,
        &freezer::Freezer,
    ]
}

/// The controllers that are enabled through `cgroup.subtree_control` (freezer and
/// devices are not: the freezer is a core file on v2, devices an eBPF program). Domain
/// controllers come first: they are the ones the no-internal-processes rule refuses, so
/// a refusal comes before anything was written. cpu and pids are threaded controllers,
/// which the kernel lets be enabled beside tasks (cgroup-v2.rst, "Threads").
pub const ENABLEABLE: [&str; 6] = ["memory", "io", "cpuset", "hugetlb", "cpu", "pids"];

/// Enabled by default when available, so that stats work even without limits.
pub const DEFAULT_ENABLED: [&str; 4] = ["memory", "pids", "cpu", "io"];

/// The `subtree_control` names of the controllers `resources` needs.
pub fn needed(resources: &Resources) -> Vec<&'static str> {
    all()
        .iter()
        .filter(|c| ENABLEABLE.contains(&c.name()) && c.wanted(resources))
        .map(|c| c.name())
        .collect()
}
