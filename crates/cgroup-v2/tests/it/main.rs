//! Integration tests of the cgroup v2 backend: one binary (see STYLE.md).
//!
//! Every privileged test starts at `testkit::backend("cgroup-v2", …)`: on a unified host
//! (the VM's v2 mode) it gets the backend and tests the kernel for real; on hybrid and
//! legacy hosts the gate asserts that the registry refuses cgroup-v2 with its reason, and
//! the test ends there. Child processes are this binary re-executed in a helper mode
//! ([`helper`]), so the same tests work on any host and in the VM's busybox initramfs.

mod behaviour;
mod conformance;
mod controllers;
mod helper;
mod lifecycle;
mod registry;

use std::path::PathBuf;

use isol_ns_core::Cgroup;

/// The registry name under test (a pub item of the crate, so the crate — and with it
/// its `inventory::submit!` — is linked into this binary).
pub const NAME: &str = isol_cgroup_v2::NAME;

/// The unified hierarchy's mount point, from the probed host.
pub fn mount_point() -> PathBuf {
    testkit::host()
        .unified()
        .expect("a unified hierarchy")
        .mount_point
        .clone()
}

/// The one directory of a v2 cgroup.
pub fn dir(cg: &dyn Cgroup) -> PathBuf {
    let dirs = cg.dirs();
    assert_eq!(dirs.len(), 1, "a v2 cgroup has one directory: {dirs:?}");
    dirs[0].clone()
}

/// A kernel file of `cg`, trimmed.
pub fn file(cg: &dyn Cgroup, name: &str) -> String {
    let p = dir(cg).join(name);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// A key of a flat-keyed kernel file of `cg` (`cgroup.events`, `memory.events`).
pub fn key(cg: &dyn Cgroup, name: &str, key: &str) -> u64 {
    let text = file(cg, name);
    text.lines()
        .find_map(|l| {
            l.strip_prefix(key)
                .and_then(|r| r.strip_prefix(' '))
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("{name} has no {key}: {text:?}"))
}

/// `isol_testkit` under a shorter name.
pub use isol_testkit as testkit;
