//! Small helpers around the kernel's interface files that every controller shares:
//! writing a setting (refusing a file the kernel lacks as unsupported), reading optional
//! files, and waiting for a key of `cgroup.events` to take a value.
//!
//! The formats themselves are parsed by `isol_ns_core::parse`; nothing here parses.

use std::path::Path;
use std::time::{Duration, Instant};

use isol_ns_core::{parse, Error, Result, Setting};

use crate::NAME;

/// Writes `value` to `dir/file` for `setting`. When the file does not exist (the running
/// kernel lacks it, or its controller is not enabled for the cgroup) the error is
/// [`Error::Unsupported`] naming the setting as `Resources` does, and the file in its
/// reason.
pub(crate) fn write_setting(dir: &Path, setting: Setting, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    if !path.exists() {
        return Err(unsupported_file(dir, setting, file));
    }
    parse::write(&path, value)
}

/// The error for an interface file the cgroup does not have.
pub(crate) fn unsupported_file(dir: &Path, setting: Setting, file: &str) -> Error {
    setting.unsupported(
        NAME,
        format!(
            "{} does not exist: the running kernel lacks {file}, or its controller is not enabled for this cgroup",
            dir.join(file).display()
        ),
    )
}

/// The text of `dir/file`, or `None` when the file does not exist.
pub(crate) fn read_optional(dir: &Path, file: &str) -> Result<Option<String>> {
    let path = dir.join(file);
    match parse::read_text(&path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read { path, source }),
    }
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

/// How long isol waits for the kernel to freeze, thaw or empty a cgroup.
pub(crate) const WAIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Polls `dir/cgroup.events` until `key` equals `want`, with a growing back-off (1 ms up
/// to 50 ms), for at most `timeout`.
pub(crate) fn wait_events_key(dir: &Path, key: &str, want: u64, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if events_key(dir, key)? == Some(want) {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(Error::Timeout {
                what: format!("{key} {want} in {}", dir.join("cgroup.events").display()),
                waited_ms: start.elapsed().as_millis() as u64,
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert_eq!(read_optional(t.path(), "nope").unwrap(), None);
    }
}
