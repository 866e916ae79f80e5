//! isol's cgroup v2 backend: the unified hierarchy.
//!
//! Registered in ns-core's registry as `cgroup-v2` (see [`NAME`]). It is the
//! preferred backend on unified hosts; on hybrid hosts (where the unified hierarchy
//! usually has few or no controllers) and legacy hosts it declines, and isol uses
//! `cgroup-v1` instead — which handles a cgroup's unified twin on a hybrid host through
//! this crate's [`V2Cgroup`] ([`V2Cgroup::open`]).
//!
//! - [`V2Backend`] creates and opens cgroups beneath the caller's own cgroup (or a given
//!   parent), enabling the controllers the resources need in each ancestor's
//!   `cgroup.subtree_control`.
//! - [`V2Cgroup`] is a handle on one cgroup directory: attach, apply, read, stats,
//!   freeze/thaw, kill, destroy, events (inotify on `memory.events`, `pids.events`,
//!   `cgroup.events`) and an `O_DIRECTORY` fd for `clone3(CLONE_INTO_CGROUP)`.
//! - [`controllers`] holds one [`isol_ns_core::ResourceController`] per file of the
//!   kernel interface: cpu, cpuset, memory, pids (whose files v1's pids hierarchy has
//!   too, so the v1 backend uses it as well), io, hugetlb, devices (an eBPF program of
//!   type `BPF_PROG_TYPE_CGROUP_DEVICE` assembled from the rules), freezer; plus `kill`
//!   (`cgroup.kill` with a freeze-and-SIGKILL fallback); pressure files are read by
//!   `isol_ns_core::stats::PsiStats::read`. What both backends do alike (the subtree
//!   walk, `cgroup.procs`, the SIGKILL loop, rmdir retried on EBUSY) is
//!   `isol_ns_core::cgroupfs`'s.
//! - `unsafe` is confined to two modules of system calls: `bpf(2)` in
//!   `controllers::devices::sys`, and registering the inotify fd with tokio in
//!   `events::sys`.
//!
//! ```no_run
//! use isol_ns_core::{registry, HostInfo, Parent, Resources};
//! let host = HostInfo::probe()?;
//! let backend = registry::open(isol_cgroup_v2::NAME, &host)?;
//! let mut r = Resources::default();
//! r.pids.max = Some(isol_ns_core::units::Limit::Value(64));
//! let cg = backend.create(&Parent::Own, "box1", &r)?;
//! cg.destroy()?;
//! # Ok::<(), isol_ns_core::Error>(())
//! ```
//!
//! What it does **not** do: read device rules back (a loaded program is not rules
//! again, so [`isol_ns_core::Cgroup::read`] leaves `devices` empty), threaded cgroups,
//! and it never writes to a cgroup it did not create — except `cgroup.subtree_control`
//! of the ancestors on the path to its own cgroups, which the kernel makes unavoidable
//! (a controller can only be enabled in a child when every ancestor has enabled it for
//! its children).

mod backend;
mod cgroup;
pub mod controllers;
mod events;
mod files;

pub use backend::V2Backend;
pub use cgroup::V2Cgroup;

use isol_ns_core::host::HostInfo;
use isol_ns_core::registry::{BackendPlugin, Fit};
use isol_ns_core::{CgroupMode, Result};

/// The name this backend is registered under.
pub const NAME: &str = "cgroup-v2";

/// Judges `host` for the v2 backend: preferred on unified hosts, refused elsewhere.
pub fn fit(host: &HostInfo) -> Fit {
    let unified = host.unified();
    match (host.mode, unified) {
        (CgroupMode::Unified, Some(h)) => Fit {
            usable: true,
            preferred: true,
            reason: format!(
                "cgroup2 is mounted at {} with controllers: {}",
                h.mount_point.display(),
                if h.controllers.is_empty() {
                    "none".to_string()
                } else {
                    h.controllers.join(" ")
                }
            ),
        },
        (CgroupMode::Hybrid, Some(h)) => Fit {
            usable: false,
            preferred: false,
            reason: format!(
                "the unified hierarchy at {} has only {} enabled; isol uses cgroup-v1 there",
                h.mount_point.display(),
                if h.controllers.is_empty() {
                    "no controllers".to_string()
                } else {
                    h.controllers.join(" ")
                }
            ),
        },
        _ => Fit {
            usable: false,
            preferred: false,
            reason: "no cgroup2 hierarchy is mounted (a legacy host); isol uses cgroup-v1 there"
                .to_string(),
        },
    }
}

fn open(host: &HostInfo) -> Result<Box<dyn isol_ns_core::Backend>> {
    Ok(Box::new(V2Backend::new(host)?))
}

const PLUGIN: BackendPlugin = BackendPlugin {
    name: NAME,
    description: "cgroup v2: the unified hierarchy (cgroup.subtree_control, cgroup.kill, PSI)",
    fit,
    open,
};

/// The plugin as registered. Calling this from a binary also makes sure the crate (and
/// so its registration) is linked in.
pub fn plugin() -> &'static BackendPlugin {
    &PLUGIN
}

isol_ns_core::inventory::submit!(PLUGIN);
