//! The v1 controllers, one file each, and what they share: how v1 spells "unlimited",
//! and the errors that name a setting this backend cannot honour.
//!
//! Every controller is called with its own hierarchy's directory of the cgroup (the
//! backend finds it); a controller never looks at another hierarchy.
//! Reference: the kernel's Documentation/admin-guide/cgroup-v1/ (one file per controller).

use std::path::Path;

use isol_ns_core::units::Limit;
use isol_ns_core::{cgroupfs, parse, Controller, ResourceController, Result, Setting};

pub mod blkio;
pub mod cpu;
pub mod cpuacct;
pub mod cpuset;
pub mod devices;
pub mod freezer;
pub mod hugetlb;
pub mod memory;
pub mod pids;

/// The backend's registry name, as it appears in [`isol_ns_core::Error::Unsupported`].
pub const BACKEND: &str = "cgroup-v1";

/// The smallest value the kernel shows for an unlimited page counter.
///
/// An unlimited memory (or hugetlb) limit reads back as `PAGE_COUNTER_MAX` rounded down
/// to a page: 9223372036854771712 with 4 KiB pages, 9223372036854710272 with 64 KiB
/// pages. Anything at or above this (i64::MAX rounded down to 64 KiB) is "unlimited".
pub const UNLIMITED_BYTES: u64 = 0x7FFF_FFFF_FFFF_0000;

/// Every controller this backend drives, in the order they are applied: cpuset first (a
/// cpuset cgroup needs cpus and mems before anything joins it), freezer last (so that the
/// other settings are in place when the tasks stop).
pub fn all(memsw: bool) -> Vec<Box<dyn ResourceController>> {
    vec![
        Box::new(cpuset::Cpuset),
        Box::new(cpu::Cpu),
        Box::new(cpuacct::Cpuacct),
        Box::new(memory::Memory { memsw }),
        Box::new(pids::Pids),
        Box::new(blkio::Blkio),
        Box::new(hugetlb::Hugetlb),
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

/// A v1 byte limit as the kernel takes it: the number, or `-1` for unlimited.
pub fn bytes_v1(limit: Limit) -> String {
    match limit {
        Limit::Value(v) => v.to_string(),
        Limit::Max => "-1".to_string(),
    }
}

/// Parses a v1 byte counter limit (`memory.limit_in_bytes`, `hugetlb.*.limit_in_bytes`):
/// at or above [`UNLIMITED_BYTES`] (or `-1`) is `Limit::Max`.
pub fn bytes_limit(path: &Path, text: &str) -> Result<Limit> {
    if text.trim() == "-1" {
        return Ok(Limit::Max);
    }
    let v = parse::single_u64(path, text)?;
    Ok(if v >= UNLIMITED_BYTES {
        Limit::Max
    } else {
        Limit::Value(v)
    })
}

/// Reads a byte limit file of `dir`.
pub fn read_bytes_limit(dir: &Path, name: &str) -> Result<Limit> {
    let path = dir.join(name);
    bytes_limit(&path, &parse::read(&path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_bytes() {
        let p = Path::new("fixture");
        assert_eq!(bytes_limit(p, "9223372036854771712\n").unwrap(), Limit::Max);
        assert_eq!(bytes_limit(p, "9223372036854710272\n").unwrap(), Limit::Max);
        assert_eq!(bytes_limit(p, "-1").unwrap(), Limit::Max);
        assert_eq!(
            bytes_limit(p, "67108864\n").unwrap(),
            Limit::Value(64 << 20)
        );
        assert!(bytes_limit(p, "lots").is_err());
        assert_eq!(bytes_v1(Limit::Max), "-1");
        assert_eq!(bytes_v1(Limit::Value(4096)), "4096");
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
