//! The v1 `hugetlb` controller: limits on huge pages, per page size.
//!
//! Reference: Documentation/admin-guide/cgroup-v1/hugetlb.rst. One
//! `hugetlb.<size>.limit_in_bytes` per page size the kernel supports (`2MB`, `1GB`); `-1`
//! is unlimited. On hybrid hosts hugetlb is often bound to the unified hierarchy instead,
//! and then the backend refuses hugetlb limits before reaching this file.

use isol_ns_core::cgroupfs::{KeyedFiles, PageSizeLimits};
use isol_ns_core::convert;

use super::{read_bytes_limit, BACKEND};

/// `hugetlb.<size>.limit_in_bytes`, one file per page size; `-1` unlimited.
pub const HUGETLB: PageSizeLimits = PageSizeLimits {
    files: KeyedFiles {
        prefix: "hugetlb.",
        suffix: ".limit_in_bytes",
    },
    backend: BACKEND,
    to_kernel: |limit| convert::bytes_to_v1(limit).to_string(),
    read: read_bytes_limit,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hugetlb_contract() {
        isol_testkit::contract::hugetlb(
            &HUGETLB,
            |size| HUGETLB.files.file(size),
            "9223372036854771712\n",
        );
    }
}
