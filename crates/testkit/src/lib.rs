//! Test support for isol: what the other crates' tests share. Nothing here is part of a
//! public API; test doubles live here, never in the libraries.
//!
//! - [`gate`]: whether a privileged test may run here, skip, or must fail, and what cgroup
//!   mode the host must be in ([`gate::backend`] turns "this backend does not fit this
//!   mode" into an assertion instead of a skip).
//! - [`Scratch`]: a uniquely named cgroup beneath the test process's own cgroup, removed
//!   on drop even when the test panics.
//! - [`FakeTree`]: a tempdir that looks like a cgroup directory, for tests without root.
//! - [`block_device`]: a disk of this host, for the I/O limits.
//! - [`contract`]: what a controller of either backend must do, on a [`FakeTree`].
//! - [`conformance`]: what a `Resources` must mean on every backend, checked on the
//!   kernel through a [`Scratch`] cgroup.
//! - [`oracle`]: an independent reader (cgroups-rs) of what isol wrote.
//!
//! ```
//! use isol_ns_core::{cgroupfs, Setting};
//! use isol_testkit::FakeTree;
//!
//! let t = FakeTree::new();
//! t.files(&["pids.max"]);
//! cgroupfs::write_setting(t.path(), "pids.max", "64", Setting::PidsMax, "cgroup-v2")?;
//! assert_eq!(t.read("pids.max"), "64");
//! # Ok::<(), isol_ns_core::Error>(())
//! ```
//!
//! What it does not do: create a cgroup anywhere but beneath the test's own (through
//! [`Scratch`]), signal a process the test did not start, or let a privileged test pass
//! by skipping where `ISOL_REQUIRE_PRIVILEGED` is set.

pub mod conformance;
pub mod contract;
pub mod gate;
pub mod oracle;
mod scratch;

pub use gate::{backend, host, privileged, require_root};
pub use scratch::Scratch;

use std::path::{Path, PathBuf};

/// A block device of this host to throttle, as (major, minor): the first disk by name
/// that is not a loop, zram or ram device, else any; `None` without `/sys/block`.
pub fn block_device() -> Option<(u32, u32)> {
    let mut devs: Vec<(String, (u32, u32))> = std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let dev = std::fs::read_to_string(e.path().join("dev")).ok()?;
            let (a, b) = dev.trim().split_once(':')?;
            Some((name, (a.parse().ok()?, b.parse().ok()?)))
        })
        .collect();
    devs.sort_by_key(|(n, _)| {
        (
            n.starts_with("loop") || n.starts_with("zram") || n.starts_with("ram"),
            n.clone(),
        )
    });
    devs.first().map(|(_, d)| *d)
}

/// A temporary directory standing in for a cgroup directory: write the files a
/// controller reads, run the controller, read back what it wrote.
pub struct FakeTree {
    dir: tempfile::TempDir,
}

impl FakeTree {
    /// An empty fake cgroup directory.
    pub fn new() -> FakeTree {
        FakeTree {
            dir: tempfile::tempdir().expect("create a tempdir"),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Creates (or overwrites) `name` (may contain `/`) with `content`.
    pub fn file(&self, name: &str, content: &str) -> &FakeTree {
        let p = self.dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create fake cgroup subdirectory");
        }
        std::fs::write(&p, content).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        self
    }

    /// Creates empty files for each name (cgroup files a controller will write).
    pub fn files(&self, names: &[&str]) -> &FakeTree {
        for n in names {
            self.file(n, "");
        }
        self
    }

    /// The content of `name`, trimmed.
    pub fn read(&self, name: &str) -> String {
        let p: PathBuf = self.dir.path().join(name);
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
            .trim()
            .to_string()
    }
}

impl Default for FakeTree {
    fn default() -> Self {
        Self::new()
    }
}
