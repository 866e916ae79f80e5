//! The v1 `freezer` controller: stop and resume every task of a cgroup.
//!
//! Reference: Documentation/admin-guide/cgroup-v1/freezer-subsystem.rst. Writing `FROZEN`
//! to `freezer.state` starts freezing; the file reads `FREEZING` until every task has
//! stopped, then `FROZEN`. [`set`] writes the state and waits for it.

use std::path::Path;
use std::time::{Duration, Instant};

use isol_ns_core::{Controller, Error, ResourceController, Resources, Result};

use super::{read, write};

/// `freezer.state`.
pub struct Freezer;

/// How long [`set`] waits for the kernel to reach the state.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Reads `freezer.state`: `THAWED`, `FREEZING` or `FROZEN`.
pub fn state(dir: &Path) -> Result<String> {
    Ok(read(dir, "freezer.state")?.trim().to_string())
}

/// Writes `FROZEN` or `THAWED` and waits until `freezer.state` shows it.
pub fn set(dir: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        // Re-writing FROZEN retries tasks that could not be frozen yet.
        write(dir, "freezer.state", want)?;
        if state(dir)? == want {
            return Ok(());
        }
        if start.elapsed() > TIMEOUT {
            return Err(Error::Timeout {
                what: format!("{} to read {want}", dir.join("freezer.state").display()),
                waited_ms: start.elapsed().as_millis() as u64,
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
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
        out.frozen = Some(state(dir)? == "FROZEN");
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
            err.contains("freezer.state") && err.contains("FROZEN"),
            "{err}"
        );
    }
}
