//! Killing everything in a cgroup: `cgroup.kill` (Linux 5.14; cgroup-v2.rst, "Core
//! Interface Files", cgroup.kill), or on older kernels the fallback of freezing the
//! cgroup, SIGKILLing every task listed in `cgroup.procs` of it and its descendants, and
//! thawing (the SIGKILL loop is `isol_ns_core::cgroupfs`'s, which v1 uses too). Either
//! way it waits until `cgroup.events` says `populated 0`.
//!
//! Only ever called on cgroups isol created, so every task in them is one isol started
//! (or a descendant of one).

use std::path::Path;
use std::time::Duration;

use isol_ns_core::{cgroupfs, parse, Result};

use super::freezer::set_frozen;
use crate::files::{events_key, wait_events_key};

/// SIGKILLs every task in `dir` and its descendants and waits until it is empty.
/// Refuses when the calling process is inside (as the v1 backend does).
pub fn kill_all(dir: &Path, timeout: Duration) -> Result<()> {
    if events_key(dir, "populated")? == Some(0) {
        return Ok(());
    }
    let what = format!("cgroup {}", dir.display());
    cgroupfs::refuse_self(&cgroupfs::subtree_pids(&[dir])?, &what)?;
    if !write_kill(dir)? {
        kill_frozen(dir, timeout)?;
    }
    wait_events_key(dir, "populated", 0, timeout)
}

/// Writes `1` to `dir/cgroup.kill`; `false` where the kernel has none.
pub fn write_kill(dir: &Path) -> Result<bool> {
    match parse::write(&dir.join("cgroup.kill"), "1") {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The fallback without `cgroup.kill`: freeze (so nothing forks meanwhile), SIGKILL every
/// listed task, thaw (fatal signals are delivered to frozen tasks on v2, but thawing makes
/// sure they run to their exit), and SIGKILL what is still listed until nothing is.
pub fn kill_frozen(dir: &Path, timeout: Duration) -> Result<()> {
    set_frozen(dir, true, timeout)?;
    let what = dir.display().to_string();
    cgroupfs::sigkill_until_empty(&[dir], &what, timeout, || set_frozen(dir, false, timeout))
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_testkit::FakeTree;

    #[test]
    fn empty_cgroup_needs_no_kill() {
        let t = FakeTree::new();
        t.file("cgroup.events", "populated 0\nfrozen 0\n");
        kill_all(t.path(), Duration::from_millis(10)).unwrap();
        assert!(
            !t.path().join("cgroup.kill").exists(),
            "nothing written to an empty cgroup"
        );
    }

    #[test]
    fn refuses_to_kill_the_calling_process() {
        let t = FakeTree::new();
        t.files(&["cgroup.kill"])
            .file("cgroup.events", "populated 1\nfrozen 0\n")
            .file("inner/cgroup.procs", &format!("{}\n", std::process::id()));
        let err = kill_all(t.path(), Duration::from_millis(20))
            .unwrap_err()
            .to_string();
        assert!(err.contains("this process"), "{err}");
        assert_eq!(t.read("cgroup.kill"), "", "nothing killed");
    }

    #[test]
    fn writes_cgroup_kill_then_waits() {
        let t = FakeTree::new();
        t.files(&["cgroup.kill"])
            .file("cgroup.events", "populated 1\nfrozen 0\n");
        let err = kill_all(t.path(), Duration::from_millis(20))
            .unwrap_err()
            .to_string();
        assert_eq!(t.read("cgroup.kill"), "1");
        assert!(err.contains("populated 0"), "{err}");
    }
}
