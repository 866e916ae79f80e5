//! The v1 `cpuset` controller: which cpus and memory nodes the tasks may use.
//!
//! Reference: Documentation/admin-guide/cgroup-v1/cpusets.rst, 1.7 "What is exclusive?"
//! and 2.1 "Basic Usage". A new v1 cpuset starts with empty `cpuset.cpus` and
//! `cpuset.mems` (unless the parent has `cgroup.clone_children`), and no task may join a
//! cpuset with either empty (ENOSPC), so [`prepare`] copies the parent's values into
//! every cpuset cgroup isol creates.

use std::path::Path;

use isol_ns_core::cgroupfs;
use isol_ns_core::units::CpuList;
use isol_ns_core::{Controller, Error, ResourceController, Resources, Result, Setting};

use super::{read, write};

/// `cpuset.cpus`, `cpuset.mems`.
pub struct Cpuset;

fn list(dir: &Path, name: &str) -> Result<CpuList> {
    CpuList::parse(name, &read(dir, name)?)
}

/// Gives a freshly made cpuset cgroup at `dir` its parent's cpus and mems, so that tasks
/// can join it. Written whether or not the kernel copied them already (the parent's
/// `cgroup.clone_children`): the kernel takes an unchanged list as a no-op, and reading
/// first cost two more opens of the new directory's files.
pub fn prepare(dir: &Path) -> Result<()> {
    let parent = dir.parent().ok_or_else(|| {
        Error::invalid(
            "cpuset",
            dir.display().to_string(),
            "a cgroup directory has a parent",
        )
    })?;
    for name in ["cpuset.cpus", "cpuset.mems"] {
        cgroupfs::write(dir, name, read(parent, name)?.trim())?;
    }
    Ok(())
}

impl ResourceController for Cpuset {
    fn controller(&self) -> Controller {
        Controller::Cpuset
    }

    /// Writes the cpus (after checking that they lie within the parent's effective cpus)
    /// and the memory nodes (likewise within the parent's effective mems).
    fn apply(&self, dir: &Path, r: &Resources) -> Result<()> {
        let parent = dir.parent();
        for (setting, name, effective, wanted) in [
            (
                Setting::CpusetCpus,
                "cpuset.cpus",
                "cpuset.effective_cpus",
                &r.cpuset.cpus,
            ),
            (
                Setting::CpusetMems,
                "cpuset.mems",
                "cpuset.effective_mems",
                &r.cpuset.mems,
            ),
        ] {
            let Some(wanted) = wanted else { continue };
            if let Some(parent) = parent {
                let allowed = list(parent, effective)?;
                if !wanted.is_subset(&allowed) {
                    return Err(Error::invalid(
                        name,
                        wanted.to_string(),
                        format!("{wanted} is not within the parent's {effective} ({allowed})"),
                    ));
                }
            }
            write(dir, setting, name, &wanted.to_string())?;
        }
        Ok(())
    }

    fn read(&self, dir: &Path, out: &mut Resources) -> Result<()> {
        out.cpuset.cpus = Some(list(dir, "cpuset.cpus")?);
        out.cpuset.mems = Some(list(dir, "cpuset.mems")?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_testkit::FakeTree;

    fn tree() -> FakeTree {
        let t = FakeTree::new();
        t.file("cpuset.cpus", "0-3\n")
            .file("cpuset.mems", "0\n")
            .file("cpuset.effective_cpus", "0-3\n")
            .file("cpuset.effective_mems", "0\n")
            .files(&["box/cpuset.cpus", "box/cpuset.mems"]);
        t
    }

    #[test]
    fn prepare_copies_the_parent() {
        let t = tree();
        prepare(&t.path().join("box")).unwrap();
        assert_eq!(t.read("box/cpuset.cpus"), "0-3");
        assert_eq!(t.read("box/cpuset.mems"), "0");
    }

    #[test]
    fn apply_checks_against_the_parent() {
        let t = tree();
        let dir = t.path().join("box");
        let mut r = Resources::default();
        r.cpuset.cpus = Some(CpuList::parse("c", "1,3").unwrap());
        Cpuset.apply(&dir, &r).unwrap();
        assert_eq!(t.read("box/cpuset.cpus"), "1,3");
        r.cpuset.cpus = Some(CpuList::parse("c", "2-5").unwrap());
        let err = Cpuset.apply(&dir, &r).unwrap_err().to_string();
        assert!(
            err.starts_with("cpuset.cpus:") && err.contains("0-3"),
            "{err}"
        );
        assert_eq!(
            t.read("box/cpuset.cpus"),
            "1,3",
            "nothing written on refusal"
        );
        r.cpuset.cpus = None;
        r.cpuset.mems = Some(CpuList::parse("m", "1").unwrap());
        assert!(Cpuset
            .apply(&dir, &r)
            .unwrap_err()
            .to_string()
            .starts_with("cpuset.mems:"));
    }

    #[test]
    fn read_parses_lists() {
        let t = tree();
        t.file("box/cpuset.cpus", "0,2-3\n")
            .file("box/cpuset.mems", "0\n");
        let mut r = Resources::default();
        Cpuset.read(&t.path().join("box"), &mut r).unwrap();
        assert_eq!(
            r.cpuset.cpus.clone().unwrap().iter().collect::<Vec<_>>(),
            vec![0, 2, 3]
        );
        t.file("box/cpuset.cpus", "0-x\n");
        assert!(Cpuset
            .read(&t.path().join("box"), &mut r)
            .unwrap_err()
            .to_string()
            .contains("cpuset.cpus"));
    }
}
