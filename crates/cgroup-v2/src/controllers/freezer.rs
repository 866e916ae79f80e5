//! The freezer: `cgroup.freeze`, with the state reported by `frozen` in `cgroup.events`
//! (cgroup-v2.rst, "Core Interface Files", cgroup.freeze and cgroup.events). On v2 it is a
//! core file, not a controller: it needs no enabling and exists in every non-root cgroup.

use std::path::Path;
use std::time::Duration;

use isol_ns_core::cgroupfs::{self, WAIT};
use isol_ns_core::{Controller, ResourceController, Resources, Result, Setting};

use crate::files::{wait_events_key, write_setting};

/// `Resources::frozen`.
#[derive(Debug)]
pub struct Freezer;

/// Writes `cgroup.freeze` and waits until `cgroup.events` reports `frozen` as wanted.
/// Freezing is asynchronous: the kernel reports `frozen 1` once every task has stopped.
pub fn set_frozen(dir: &Path, frozen: bool, timeout: Duration) -> Result<()> {
    write_setting(
        dir,
        Setting::Frozen,
        "cgroup.freeze",
        if frozen { "1" } else { "0" },
    )?;
    wait_events_key(dir, "frozen", u64::from(frozen), timeout)
}

impl ResourceController for Freezer {
    fn controller(&self) -> Controller {
        Controller::Freezer
    }

    fn apply(&self, dir: &Path, r: &Resources) -> Result<()> {
        match r.frozen {
            Some(f) => set_frozen(dir, f, WAIT),
            None => Ok(()),
        }
    }

    fn read(&self, dir: &Path, out: &mut Resources) -> Result<()> {
        if let Some(frozen) = cgroupfs::read_flag(dir, "cgroup.freeze")? {
            out.frozen = Some(frozen);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_testkit::FakeTree;

    #[test]
    fn freeze_waits_for_the_kernel() {
        let t = FakeTree::new();
        t.files(&["cgroup.freeze"])
            .file("cgroup.events", "populated 1\nfrozen 1\n");
        let r = Resources {
            frozen: Some(true),
            ..Default::default()
        };
        Freezer.apply(t.path(), &r).unwrap();
        assert_eq!(t.read("cgroup.freeze"), "1");
        let mut back = Resources::default();
        Freezer.read(t.path(), &mut back).unwrap();
        assert_eq!(back.frozen, Some(true));
        // The fake kernel never reports thawed: the wait must time out, naming the file.
        let err = set_frozen(t.path(), false, Duration::from_millis(30))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("timed out") && err.contains("frozen 0"),
            "{err}"
        );
    }
}
