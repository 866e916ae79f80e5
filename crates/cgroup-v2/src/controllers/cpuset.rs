//! The cpuset controller: `cpuset.cpus` and `cpuset.mems`, checked against the parent's
//! `cpuset.cpus.effective` and `cpuset.mems.effective`
//! (cgroup-v2.rst, "Controllers / Cpuset / Cpuset Interface Files").

use std::path::Path;

use isol_ns_core::cgroupfs::read_optional;
use isol_ns_core::units::CpuList;
use isol_ns_core::{parse, Controller, Error, ResourceController, Resources, Result, Setting};

use crate::files::write_setting;

/// `cpuset.cpus` and `cpuset.mems`.
#[derive(Debug)]
pub struct Cpuset;

impl ResourceController for Cpuset {
    fn controller(&self) -> Controller {
        Controller::Cpuset
    }

    fn apply(&self, dir: &Path, r: &Resources) -> Result<()> {
        for (setting, file, want) in [
            (Setting::CpusetCpus, "cpuset.cpus", &r.cpuset.cpus),
            (Setting::CpusetMems, "cpuset.mems", &r.cpuset.mems),
        ] {
            let Some(want) = want else { continue };
            within_parent(dir, file, want)?;
            write_setting(dir, setting, file, &want.to_string())?;
        }
        Ok(())
    }

    /// An empty file means "not set" (the parent's effective set is used), read as `None`.
    fn read(&self, dir: &Path, out: &mut Resources) -> Result<()> {
        for (file, slot) in [
            ("cpuset.cpus", &mut out.cpuset.cpus),
            ("cpuset.mems", &mut out.cpuset.mems),
        ] {
            if let Some(text) = read_optional(dir, file)? {
                let list = CpuList::parse(file, &text)?;
                *slot = if list.is_empty() { None } else { Some(list) };
            }
        }
        Ok(())
    }
}

/// Refuses a list that is not within the parent's effective list, naming both.
fn within_parent(dir: &Path, file: &str, want: &CpuList) -> Result<()> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    let eff_file = format!("{file}.effective");
    let eff_path = parent.join(&eff_file);
    let Some(text) = read_optional(parent, &eff_file)? else {
        return Ok(());
    };
    let effective = CpuList::parse(&eff_file, &text)?;
    if !want.is_subset(&effective) {
        return Err(Error::invalid(
            file,
            want.to_string(),
            format!(
                "{file} {want} is not within the parent's {} ({}): use a subset of it",
                eff_path.display(),
                parse::read(&eff_path)
                    .map(|t| t.trim().to_string())
                    .unwrap_or_else(|_| effective.to_string())
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_testkit::FakeTree;

    #[test]
    fn apply_within_parent_and_read_back() {
        let t = FakeTree::new();
        t.file("cpuset.cpus.effective", "0-3\n")
            .file("cpuset.mems.effective", "0\n");
        t.files(&["child/cpuset.cpus", "child/cpuset.mems"]);
        let dir = t.path().join("child");
        let mut r = Resources::default();
        r.cpuset.cpus = Some(CpuList::parse("c", "1,2,3").unwrap());
        r.cpuset.mems = Some(CpuList::parse("m", "0").unwrap());
        Cpuset.apply(&dir, &r).unwrap();
        assert_eq!(t.read("child/cpuset.cpus"), "1-3");
        assert_eq!(t.read("child/cpuset.mems"), "0");
        let mut back = Resources::default();
        Cpuset.read(&dir, &mut back).unwrap();
        assert_eq!(back.cpuset, r.cpuset);
        t.file("child/cpuset.cpus", "\n");
        Cpuset.read(&dir, &mut back).unwrap();
        assert_eq!(back.cpuset.cpus, None);
    }

    #[test]
    fn outside_parent_is_refused_naming_both() {
        let t = FakeTree::new();
        t.file("cpuset.cpus.effective", "0-1\n");
        t.files(&["child/cpuset.cpus"]);
        let mut r = Resources::default();
        r.cpuset.cpus = Some(CpuList::parse("c", "1-2").unwrap());
        let err = Cpuset
            .apply(&t.path().join("child"), &r)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cpuset.cpus 1-2")
                && err.contains("(0-1)")
                && err.contains("cpuset.cpus.effective"),
            "{err}"
        );
        assert_eq!(t.read("child/cpuset.cpus"), "", "nothing written");
    }
}
