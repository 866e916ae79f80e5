//! The v1 controllers, one file each, and what they share: the kernel's names for them,
//! writing a setting as this backend (a file the kernel lacks names the setting), and
//! reading and writing v1's byte limits, whose "unlimited" `isol_ns_core::convert`
//! translates.
//!
//! Every controller is called with its own hierarchy's directory of the cgroup (the
//! backend finds it); a controller never looks at another hierarchy.
//! Reference: the kernel's Documentation/admin-guide/cgroup-v1/ (one file per controller).

use std::path::Path;

use isol_ns_core::units::Limit;
use isol_ns_core::{
    cgroupfs, convert, parse, Controller, Error, ResourceController, Result, Setting,
};

pub mod blkio;
pub mod cpu;
pub mod cpuacct;
pub mod cpuset;
pub mod devices;
pub mod freezer;
pub mod hugetlb;
pub mod memory;

/// The backend's registry name, as it appears in [`isol_ns_core::Error::Unsupported`].
pub const BACKEND: &str = "cgroup-v1";

/// Every controller this backend drives, in the order they are applied: cpuset first (a
/// cpuset cgroup needs cpus and mems before anything joins it), freezer last (so that the
/// other settings are in place when the tasks stop).
pub fn all(memsw: bool) -> Vec<Box<dyn ResourceController>> {
    vec![
        Box::new(cpuset::Cpuset),
        Box::new(cpu::Cpu),
        Box::new(cpuacct::Cpuacct),
        Box::new(memory::Memory { memsw }),
        // v1's pids files are v2's: one controller serves both backends.
        Box::new(isol_cgroup_v2::controllers::pids::Pids::v1(BACKEND)),
        Box::new(blkio::Blkio),
        Box::new(hugetlb::HUGETLB),
        Box::new(devices::Devices),
        Box::new(freezer::Freezer),
    ]
}

/// The kernel's name of a controller: the one in `/proc/self/cgroup`, the mount options
/// and [`isol_ns_core::CgroupLocation`]'s hierarchy keys. v1 calls `io` `blkio`.
pub fn kernel_name(c: Controller) -> &'static str {
    match c {
        Controller::Io => "blkio",
        c => c.name(),
    }
}

pub use isol_ns_core::cgroupfs::{optional, read, read_u64};

/// Writes `value` to `dir/file` for `setting`; a file this kernel lacks is
/// [`isol_ns_core::Error::Unsupported`] naming the setting.
pub fn write(dir: &Path, setting: Setting, file: &str, value: &str) -> Result<()> {
    cgroupfs::write_setting(dir, file, value, setting, BACKEND)
}

/// The signed number in `dir/file` (`cpu.cfs_quota_us`, the byte limits: `-1` is their
/// "unlimited").
pub fn read_i64(dir: &Path, file: &str) -> Result<i64> {
    let path = dir.join(file);
    let text = parse::read(&path)?;
    text.trim()
        .parse()
        .map_err(|_| Error::parse(&path, format!("expected a number, found {:?}", text.trim())))
}

/// A byte limit of `dir` (`memory.limit_in_bytes`, `hugetlb.*.limit_in_bytes`), with
/// the kernel's unlimited as `max` ([`convert::bytes_from_v1`]).
pub fn read_bytes_limit(dir: &Path, file: &str) -> Result<Limit> {
    read_i64(dir, file).map(convert::bytes_from_v1)
}

/// Writes a byte limit to `dir/file` for `setting`, `max` as `-1`
/// ([`convert::bytes_to_v1`]).
pub fn write_bytes_limit(dir: &Path, setting: Setting, file: &str, limit: Limit) -> Result<()> {
    write(dir, setting, file, &convert::bytes_to_v1(limit).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_limits_as_the_kernel_shows_them() {
        let t = isol_testkit::FakeTree::new();
        for (shown, limit) in [
            ("9223372036854771712\n", Limit::Max),
            ("9223372036854710272\n", Limit::Max),
            ("-1", Limit::Max),
            ("67108864\n", Limit::Value(64 << 20)),
        ] {
            t.file("memory.limit_in_bytes", shown);
            assert_eq!(
                read_bytes_limit(t.path(), "memory.limit_in_bytes").unwrap(),
                limit
            );
        }
        t.file("memory.limit_in_bytes", "lots\n");
        let err = read_bytes_limit(t.path(), "memory.limit_in_bytes")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"lots\""), "{err}");
        write_bytes_limit(
            t.path(),
            Setting::MemoryMax,
            "memory.limit_in_bytes",
            Limit::Max,
        )
        .unwrap();
        assert_eq!(t.read("memory.limit_in_bytes"), "-1");
    }

    /// A controller with settings that no controller of this backend serves would see
    /// its settings ignored here, not refused.
    #[test]
    fn every_setting_has_a_controller() {
        let ours: Vec<Controller> = all(true).iter().map(|c| c.controller()).collect();
        for c in Controller::ALL {
            assert!(c.settings().is_empty() || ours.contains(&c), "{c}");
        }
    }

    #[test]
    fn kernel_names() {
        let names: Vec<&str> = all(true)
            .iter()
            .map(|c| kernel_name(c.controller()))
            .collect();
        assert_eq!(
            names,
            [
                "cpuset", "cpu", "cpuacct", "memory", "pids", "blkio", "hugetlb", "devices",
                "freezer"
            ]
        );
    }
}
