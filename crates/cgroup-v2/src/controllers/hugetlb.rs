//! The hugetlb controller: `hugetlb.<size>.max`
//! (cgroup-v2.rst, "Controllers / HugeTLB / HugeTLB Interface Files"); the logic, which
//! v1's shares, is `isol_ns_core::cgroupfs::PageSizeLimits`.

use isol_ns_core::cgroupfs::{self, KeyedFiles, PageSizeLimits};

use crate::NAME;

/// `hugetlb.<size>.max`, one file per page size the kernel supports; `max` unlimited.
pub const HUGETLB: PageSizeLimits = PageSizeLimits {
    files: KeyedFiles {
        prefix: "hugetlb.",
        suffix: ".max",
    },
    backend: NAME,
    to_kernel: |limit| limit.to_string(),
    read: cgroupfs::read_limit,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hugetlb_contract() {
        isol_testkit::contract::hugetlb(&HUGETLB, |size| HUGETLB.files.file(size), "max\n");
    }
}
