//! The v1 `hugetlb` controller: limits on huge pages, per page size.
//!
//! Reference: Documentation/admin-guide/cgroup-v1/hugetlb.rst. One
//! `hugetlb.<size>.limit_in_bytes` per page size the kernel supports (`2MB`, `1GB`); `-1`
//! is unlimited. On hybrid hosts hugetlb is often bound to the unified hierarchy instead,
//! and then the backend refuses hugetlb limits before reaching this file.

use std::path::Path;

use isol_ns_core::resources::HugetlbLimit;
use isol_ns_core::{cgroupfs, convert, Controller, ResourceController, Resources, Result, Setting};

use super::{read_bytes_limit, BACKEND};

/// `hugetlb.<size>.limit_in_bytes`.
pub struct Hugetlb;

fn file(size: &str) -> String {
    format!("hugetlb.{size}.limit_in_bytes")
}

impl ResourceController for Hugetlb {
    fn controller(&self) -> Controller {
        Controller::Hugetlb
    }

    /// Checks that the kernel has every page size before writing any.
    fn apply(&self, dir: &Path, r: &Resources) -> Result<()> {
        let writes: Vec<(String, String)> = r
            .hugetlb
            .iter()
            .map(|h| (file(&h.page_size), convert::bytes_to_v1(h.max).to_string()))
            .collect();
        cgroupfs::write_all(dir, &writes, Setting::Hugetlb, BACKEND)
    }

    /// Every `hugetlb.<size>.limit_in_bytes` file, sorted by size (not the
    /// `.rsvd.limit_in_bytes` reservation limits of Linux 5.7).
    fn read(&self, dir: &Path, out: &mut Resources) -> Result<()> {
        out.hugetlb = cgroupfs::file_keys(dir, "hugetlb.", ".limit_in_bytes")?
            .into_iter()
            .map(|size| {
                let max = read_bytes_limit(dir, &file(&size))?;
                Ok(HugetlbLimit {
                    page_size: size,
                    max,
                })
            })
            .collect::<Result<_>>()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_ns_core::units::Limit;
    use isol_testkit::FakeTree;

    #[test]
    fn apply_and_read() {
        let t = FakeTree::new();
        // Linux 5.7 added the reservation limits beside the fault limits.
        t.file("hugetlb.2MB.limit_in_bytes", "9223372036854771712\n")
            .file("hugetlb.1GB.limit_in_bytes", "9223372036854771712\n")
            .file("hugetlb.2MB.rsvd.limit_in_bytes", "9223372036854771712\n");
        let r = Resources {
            hugetlb: vec![HugetlbLimit {
                page_size: "2MB".into(),
                max: Limit::Value(4 << 20),
            }],
            ..Resources::default()
        };
        Hugetlb.apply(t.path(), &r).unwrap();
        assert_eq!(
            t.read("hugetlb.2MB.limit_in_bytes"),
            (4u64 << 20).to_string()
        );
        let mut back = Resources::default();
        Hugetlb.read(t.path(), &mut back).unwrap();
        assert_eq!(
            back.hugetlb,
            vec![
                HugetlbLimit {
                    page_size: "1GB".into(),
                    max: Limit::Max
                },
                HugetlbLimit {
                    page_size: "2MB".into(),
                    max: Limit::Value(4 << 20)
                },
            ]
        );
    }

    #[test]
    fn unknown_size_is_unsupported_and_nothing_written() {
        let t = FakeTree::new();
        t.file("hugetlb.2MB.limit_in_bytes", "-1\n");
        let r = Resources {
            hugetlb: vec![
                HugetlbLimit {
                    page_size: "2MB".into(),
                    max: Limit::Value(2 << 20),
                },
                HugetlbLimit {
                    page_size: "16GB".into(),
                    max: Limit::Max,
                },
            ],
            ..Resources::default()
        };
        let err = Hugetlb.apply(t.path(), &r).unwrap_err().to_string();
        assert!(
            err.contains("hugetlb.16GB.limit_in_bytes") && err.contains("cgroup-v1"),
            "{err}"
        );
        assert_eq!(t.read("hugetlb.2MB.limit_in_bytes"), "-1");
    }
}
