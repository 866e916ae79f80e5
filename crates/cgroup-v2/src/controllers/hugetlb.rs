//! The hugetlb controller: `hugetlb.<size>.max`
//! (cgroup-v2.rst, "Controllers / HugeTLB / HugeTLB Interface Files").

use std::path::Path;

use isol_ns_core::resources::HugetlbLimit;
use isol_ns_core::{parse, Controller, Error, ResourceController, Resources, Result, Setting};

use crate::files::write_setting;

/// `hugetlb.<size>.max`, one file per page size the kernel supports.
#[derive(Debug)]
pub struct Hugetlb;

impl ResourceController for Hugetlb {
    fn controller(&self) -> Controller {
        Controller::Hugetlb
    }

    fn apply(&self, dir: &Path, r: &Resources) -> Result<()> {
        for h in &r.hugetlb {
            write_setting(
                dir,
                Setting::Hugetlb,
                &format!("hugetlb.{}.max", h.page_size),
                &h.max.to_string(),
            )?;
        }
        Ok(())
    }

    /// Every `hugetlb.<size>.max` file, sorted by file name (not `.rsvd.max`).
    fn read(&self, dir: &Path, out: &mut Resources) -> Result<()> {
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io("read directory", dir, e))?;
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("read directory", dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(size) = name
                .strip_prefix("hugetlb.")
                .and_then(|n| n.strip_suffix(".max"))
            else {
                continue;
            };
            if size.contains('.') {
                continue;
            }
            let path = dir.join(&name);
            found.push(HugetlbLimit {
                page_size: size.to_string(),
                max: parse::single_limit(&path, &parse::read(&path)?)?,
            });
        }
        found.sort_by(|a, b| a.page_size.cmp(&b.page_size));
        out.hugetlb = found;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_ns_core::units::Limit;
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
    fn unknown_page_size_is_unsupported() {
        let t = FakeTree::new();
        let r = Resources {
            hugetlb: vec![HugetlbLimit {
                page_size: "16GB".into(),
                max: Limit::Max,
            }],
            ..Default::default()
        };
        let err = Hugetlb.apply(t.path(), &r).unwrap_err();
        assert!(
            matches!(&err, Error::Unsupported { setting, .. } if setting == "hugetlb"),
            "{err}"
        );
    }
}
