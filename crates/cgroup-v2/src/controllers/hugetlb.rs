//! The hugetlb controller: `hugetlb.<size>.max`
//! (cgroup-v2.rst, "Controllers / HugeTLB / HugeTLB Interface Files").

use std::path::Path;

use isol_ns_core::cgroupfs::KeyedFiles;
use isol_ns_core::resources::HugetlbLimit;
use isol_ns_core::{cgroupfs, Controller, ResourceController, Resources, Result, Setting};

use crate::NAME;

/// `hugetlb.<size>.max`, one file per page size the kernel supports.
#[derive(Debug)]
pub struct Hugetlb;

/// One limit file per page size.
const FILES: KeyedFiles = KeyedFiles {
    prefix: "hugetlb.",
    suffix: ".max",
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
            .map(|h| (h.page_size.as_str(), h.max.to_string()))
            .collect();
        FILES.write_all(dir, &values, Setting::Hugetlb, NAME)
    }

    /// Every page size's limit, sorted by size.
    fn read(&self, dir: &Path, out: &mut Resources) -> Result<()> {
        let limits = FILES.read_all(dir, cgroupfs::read_limit)?;
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
        isol_testkit::contract::hugetlb(&Hugetlb, |size| FILES.file(size), "max\n");
    }
}
