//! What the v2 controllers share beyond `isol_ns_core::cgroupfs`: writing a setting as
//! this backend, the controller lists (`cgroup.controllers`, `cgroup.subtree_control`),
//! and `cgroup.events`, whose keys say whether a cgroup is populated or frozen.
//!
//! The formats themselves are parsed by `isol_ns_core::parse`; nothing here parses.

use std::path::Path;
use std::time::Duration;

use isol_ns_core::cgroupfs::{self, Backoff};
use isol_ns_core::{parse, Result, Setting};

use crate::NAME;

/// Writes `value` to `dir/file` for `setting`; a file the running kernel lacks (or
/// whose controller is not enabled for the cgroup) is [`isol_ns_core::Error::Unsupported`]
/// naming the setting ([`cgroupfs::write_setting`]).
pub(crate) fn write_setting(dir: &Path, setting: Setting, file: &str, value: &str) -> Result<()> {
    cgroupfs::write_setting(dir, file, value, setting, NAME)
}

/// The controllers listed in `dir/file` (`cgroup.controllers`, `cgroup.subtree_control`).
pub(crate) fn controller_list(dir: &Path, file: &str) -> Result<Vec<String>> {
    Ok(parse::read(&dir.join(file))?
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

/// The value of `key` in `dir/cgroup.events` (`populated`, `frozen`).
pub(crate) fn events_key(dir: &Path, key: &str) -> Result<Option<u64>> {
    let path = dir.join("cgroup.events");
    Ok(parse::flat_keyed(&path, &parse::read(&path)?)?
        .get(key)
        .copied())
}

/// Polls `dir/cgroup.events` until `key` equals `want`, with a growing back-off (1 ms up
/// to 50 ms), for at most `timeout`.
pub(crate) fn wait_events_key(dir: &Path, key: &str, want: u64, timeout: Duration) -> Result<()> {
    let mut backoff = Backoff::new(timeout, Duration::from_millis(50));
    loop {
        if events_key(dir, key)? == Some(want) {
            return Ok(());
        }
        if !backoff.pause() {
            let file = dir.join("cgroup.events");
            return Err(backoff.timed_out(format!("{key} {want} in {}", file.display())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_ns_core::Error;
    use isol_testkit::FakeTree;

    #[test]
    fn missing_file_is_unsupported_naming_it() {
        let t = FakeTree::new();
        let err =
            write_setting(t.path(), Setting::MemorySwapMax, "memory.swap.max", "0").unwrap_err();
        assert!(
            matches!(&err, Error::Unsupported { setting, backend: "cgroup-v2", .. } if setting == "memory.swap_max"),
            "{err}"
        );
        assert!(
            err.to_string().contains("memory.swap.max does not exist"),
            "{err}"
        );
        t.files(&["pids.max"]);
        write_setting(t.path(), Setting::PidsMax, "pids.max", "5").unwrap();
        assert_eq!(t.read("pids.max"), "5");
    }

    #[test]
    fn waits_for_events_and_times_out() {
        let t = FakeTree::new();
        t.file("cgroup.events", "populated 0\nfrozen 1\n");
        wait_events_key(t.path(), "frozen", 1, Duration::from_millis(10)).unwrap();
        let err = wait_events_key(t.path(), "populated", 1, Duration::from_millis(20)).unwrap_err();
        assert!(err.to_string().contains("populated 1 in"), "{err}");
    }
}
