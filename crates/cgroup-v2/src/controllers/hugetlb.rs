//! The hugetlb controller: `hugetlb.<size>.max`
//! (cgroup-v2.rst, "Controllers / HugeTLB / HugeTLB Interface Files").

use std::path::Path;

use isol_ns_core::resources::HugetlbLimit;
use isol_ns_core::{cgroupfs, Controller, ResourceController, Resources, Result, Setting};

use crate::NAME;

/// `hugetlb.<size>.max`, one file per page size the kernel supports.
#[derive(Debug)]
pub struct Hugetlb;

impl ResourceController for Hugetlb {
    fn controller(&self) -> Controller {
        Controller::Hugetlb
    }

    /// Checks that the kernel has every page size before writing any.
    fn apply(&self, dir: &Path, r: &Resources) -> Result<()> {
        let writes: Vec<(String, String)> = r
            .hugetlb
            .iter()
            .map(|h| (file(&h.page_size), h.max.to_string()))
            .collect();
        cgroupfs::write_all(dir, &writes, Setting::Hugetlb, NAME)
    }

    /// Every `hugetlb.<size>.max` file, sorted by size (not `.rsvd.max`).
    fn read(&self, dir: &Path, out: &mut Resources) -> Result<()> {
        out.hugetlb = cgroupfs::file_keys(dir, "hugetlb.", ".max")?
            .into_iter()
            .map(|size| {
                let max = cgroupfs::read_limit(dir, &file(&size))?;
                Ok(HugetlbLimit {
                    page_size: size,
                    max,
                })
            })
            .collect::<Result<_>>()?;
        Ok(())
    }
}

fn file(size: &str) -> String {
    format!("hugetlb.{size}.max")
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_ns_core::units::Limit;
    use isol_ns_core::Error;
    use isol_testkit::FakeTree;

    #[test]
    fn apply_and_read_back() {
        let t = FakeTree::new();
        t.files(&["hugetlb.2MB.max", "hugetlb.1GB.max"])
            .file("hugetlb.2MB.rsvd.max", "max\n")
            .file("hugetlb.2MB.current", "0\n");
        let r = Resources {
            hugetlb: vec![HugetlbLimit {
                page_size: "2MB".into(),
                max: Limit::Value(4 << 20),
            }],
            ..Default::default()
        };
        Hugetlb.apply(t.path(), &r).unwrap();
        assert_eq!(t.read("hugetlb.2MB.max"), (4u64 << 20).to_string());
        t.file("hugetlb.1GB.max", "max\n");
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
    fn unknown_page_size_is_unsupported_and_nothing_written() {
        let t = FakeTree::new();
        t.file("hugetlb.2MB.max", "max\n");
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
            ..Default::default()
        };
        let err = Hugetlb.apply(t.path(), &r).unwrap_err();
        assert_eq!(t.read("hugetlb.2MB.max"), "max", "no half-applied limit");
        assert!(err.to_string().contains("hugetlb.16GB.max"), "{err}");
        assert!(
            matches!(&err, Error::Unsupported { setting, .. } if setting == "hugetlb"),
            "{err}"
        );
    }
}
