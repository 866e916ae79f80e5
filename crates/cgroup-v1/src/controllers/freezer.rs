//! The v1 `freezer` controller: stop and resume every task of a cgroup.
//!
//! Reference: Documentation/admin-guide/cgroup-v1/freezer-subsystem.rst. Writing `FROZEN`
//! to `freezer.state` starts freezing; the file reads `FREEZING` until every task has
//! stopped, then `FROZEN`. [`set`] writes the state and waits for it.

use std::path::Path;
use std::time::Duration;

use isol_ns_core::cgroupfs::{self, Backoff};
use isol_ns_core::convert;
use isol_ns_core::{Controller, ResourceController, Resources, Result, Setting};

use super::{read, write};

/// `freezer.state`.
pub struct Freezer;

/// Reads `freezer.state`: `THAWED`, `FREEZING` or `FROZEN`.
pub fn state(dir: &Path) -> Result<String> {
    Ok(read(dir, "freezer.state")?.trim().to_string())
}

/// Writes `FROZEN` or `THAWED` and waits (at most [`cgroupfs::WAIT`]) until
/// `freezer.state` shows it.
pub fn set(dir: &Path, frozen: bool) -> Result<()> {
    let want = convert::frozen_to_v1(frozen);
    let mut backoff = Backoff::new(cgroupfs::WAIT, Duration::from_millis(50));
    loop {
        // Re-writing FROZEN retries tasks that could not be frozen yet.
        write(dir, Setting::Frozen, "freezer.state", want)?;
        if state(dir)? == want {
            return Ok(());
        }
        if !backoff.pause() {
            let file = dir.join("freezer.state");
            return Err(backoff.timed_out(format!("{} to read {want}", file.display())));
        }
    }
}

impl ResourceController for Freezer {
    fn controller(&self) -> Controller {
        Controller::Freezer
    }

    fn apply(&self, dir: &Path, r: &Resources) -> Result<()> {
        match r.frozen {
            Some(frozen) => set(dir, frozen),
            None => Ok(()),
        }
    }

    /// `FROZEN` is frozen; `THAWED` and `FREEZING` (not yet stopped) are not.
    fn read(&self, dir: &Path, out: &mut Resources) -> Result<()> {
        out.frozen = Some(convert::frozen_from_v1(&state(dir)?));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_testkit::FakeTree;

    #[test]
    fn apply_and_read() {
        let t = FakeTree::new();
        t.file("freezer.state", "THAWED\n");
        let mut r = Resources::default();
        Freezer.read(t.path(), &mut r).unwrap();
        assert_eq!(r.frozen, Some(false));
        r.frozen = Some(true);
        // A plain file shows what was written, as a cgroup that froze at once would.
        Freezer.apply(t.path(), &r).unwrap();
        assert_eq!(t.read("freezer.state"), "FROZEN");
        let mut back = Resources::default();
        Freezer.read(t.path(), &mut back).unwrap();
        assert_eq!(back.frozen, Some(true));
        t.file("freezer.state", "FREEZING\n");
        Freezer.read(t.path(), &mut back).unwrap();
        assert_eq!(back.frozen, Some(false));
    }

    #[test]
    fn missing_file_names_it() {
        let t = FakeTree::new();
        let err = set(t.path(), true).unwrap_err().to_string();
        assert!(
            err.starts_with("frozen is not supported by cgroup-v1")
                && err.contains("freezer.state does not exist"),
            "{err}"
        );
    }
}
