//! The v1 `hugetlb` controller: limits on huge pages, per page size.
//!
//! Reference: Documentation/admin-guide/cgroup-v1/hugetlb.rst. One
//! `hugetlb.<size>.limit_in_bytes` per page size the kernel supports (`2MB`, `1GB`); `-1`
//! is unlimited. On hybrid hosts hugetlb is often bound to the unified hierarchy instead,
//! and then the backend refuses hugetlb limits before reaching this file.

use std::path::Path;

use isol_ns_core::cgroupfs::KeyedFiles;
use isol_ns_core::resources::HugetlbLimit;
use isol_ns_core::{convert, Controller, ResourceController, Resources, Result, Setting};

use super::{read_bytes_limit, BACKEND};

/// `hugetlb.<size>.limit_in_bytes`.
pub struct Hugetlb;

/// One limit file per page size.
const FILES: KeyedFiles = KeyedFiles {
    prefix: "hugetlb.",
    suffix: ".limit_in_bytes",
};

impl ResourceController for Hugetlb {
    fn controller(&self) -> Controller {
        Controller::Hugetlb
    }

    /// Checks that the kernel has every page size before writing any.
    fn apply(&self, dir: &Path, r: &Resources) -> Result<()> {
        let values: Vec<(&str, String)> = r
            .hugetlb
            .iter()
            .map(|h| {
                (
                    h.page_size.as_str(),
                    convert::bytes_to_v1(h.max).to_string(),
                )
            })
            .collect();
        FILES.write_all(dir, &values, Setting::Hugetlb, BACKEND)
    }

    /// Every page size's limit, sorted by size.
    fn read(&self, dir: &Path, out: &mut Resources) -> Result<()> {
        let limits = FILES.read_all(dir, read_bytes_limit)?;
        out.hugetlb = limits
            .into_iter()
            .map(|(size, max)| HugetlbLimit::new(&size, max))
            .collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hugetlb_contract() {
        isol_testkit::contract::hugetlb(&Hugetlb, |size| FILES.file(size), "9223372036854771712\n");
    }
}
