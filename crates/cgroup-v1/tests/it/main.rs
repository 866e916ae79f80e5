//! Integration tests of the cgroup v1 backend: one binary (see STYLE.md).
//!
//! Every privileged test starts at `testkit::backend("cgroup-v1", …)`: on legacy and
//! hybrid hosts (this host, the VM's v1 and hybrid modes) it gets the backend and tests
//! the kernel for real; on a unified host the gate asserts that the registry refuses
//! cgroup-v1 with its reason, and the test ends there. Each test works in a
//! `testkit::Scratch` cgroup beneath the test process's own, removed even on failure.
//! Child processes are `/bin/sh -c` scripts using only busybox applets (sh, sleep, dd,
//! head), attached by pid, and killed by pid on drop.

mod behaviour;
mod conformance;
mod controllers;
mod lifecycle;
mod registry;

use std::path::PathBuf;

pub use isol_testkit as testkit;

use isol_ns_core::{Backend, Cgroup};
use testkit::Scratch;

/// The registry name under test. Calling a function of the crate links it (and its
/// `inventory::submit!`) into this binary.
pub fn name() -> &'static str {
    isol_cgroup_v1::plugin().name
}

/// The backend for a privileged test, or `None` after the gate asserted its refusal.
pub fn backend(test: &str) -> Option<Box<dyn Backend>> {
    testkit::backend(name(), test)
}

/// A scratch cgroup through the v1 backend, or `None` (see [`backend`]).
pub fn scratch(test: &str) -> Option<Scratch> {
    backend(test).map(|b| Scratch::new(b, test))
}

/// The directory of `cg` in the v1 hierarchy `controller` is bound to, if mounted.
pub fn dir(cg: &dyn Cgroup, controller: &str) -> Option<PathBuf> {
    let host = testkit::host();
    let h = host.v1_hierarchy(controller)?;
    let path = cg
        .location()
        .get(&h.controllers.join(","))
        .expect("location names every hierarchy");
    Some(h.dir_of(path.as_str()).expect("inside the mount"))
}

/// A kernel file of `cg` in `controller`'s hierarchy, trimmed.
pub fn file(cg: &dyn Cgroup, controller: &str, name: &str) -> String {
    let p = dir(cg, controller)
        .unwrap_or_else(|| panic!("no {controller} hierarchy"))
        .join(name);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// Whether `controller` has a v1 hierarchy here.
pub fn has(controller: &str) -> bool {
    testkit::host().v1_hierarchy(controller).is_some()
}

/// The oracle: the cgroup read through cgroups-rs.
pub fn oracle(cg: &dyn Cgroup) -> testkit::oracle::v1::V1Oracle {
    testkit::oracle::v1::V1Oracle::new(cg.location())
}

/// A tokio runtime with IO and time, for the event stream.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}
