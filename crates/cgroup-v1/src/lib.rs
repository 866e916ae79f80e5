//! isol's cgroup v1 backend plugin, registered as `cgroup-v1`: legacy hosts (v1
//! hierarchies only) and hybrid ones (v1 controllers plus a cgroup2 mount at `unified`).
//!
//! - [`V1Backend`] is built from the host's hierarchies ([`isol_ns_core::HostInfo`]),
//!   co-mounted (`cpu,cpuacct`) and named (`name=systemd`) ones included.
//! - A cgroup ([`cgroup::V1Cgroup`]) is a directory in every hierarchy, created all or
//!   none; on hybrid hosts also in the unified hierarchy, so cgroup2 tools see its tasks.
//! - [`controllers`] holds one [`isol_ns_core::ResourceController`] per v1 controller,
//!   converting the backend-neutral (v2-termed) `Resources` with `isol_ns_core::convert`.
//! - Events ([`isol_ns_core::EventStream`]) come from an OOM eventfd and a short poll.
//! - On hybrid hosts a cgroup's unified twin is a cgroup2 cgroup, so this crate depends
//!   on `isol-cgroup-v2` and handles the twin through its [`isol_cgroup_v2::V2Cgroup`]
//!   ([`cgroup::V1Cgroup::twin`]): attaching to it, its `cgroup.kill`, its pressure
//!   stall information (in stats) and its directory fd for `CLONE_INTO_CGROUP`. The
//!   mechanics both backends share (subtree walk, `cgroup.procs`, the SIGKILL loop,
//!   rmdir retried on EBUSY) are `isol_ns_core::cgroupfs`'s.
//!
//! ```no_run
//! use isol_ns_core::{registry, HostInfo, Parent, Resources};
//! let host = HostInfo::probe()?;
//! let backend = registry::open(isol_cgroup_v1::NAME, &host)?;
//! let mut r = Resources::default();
//! r.pids.max = Some(isol_ns_core::units::Limit::Value(64));
//! let cg = backend.create(&Parent::Own, "box1", &r)?;
//! cg.destroy()?;
//! # Ok::<(), isol_ns_core::Error>(())
//! ```
//!
//! `unsafe` is confined to `events::sys`, which registers the OOM eventfd with tokio.
//!
//! A new process joins the v1 hierarchies itself (it writes `0` to each `tasks`); on
//! hybrid hosts it is cloned into the unified twin (`clone_into_fd`). The backend does not
//! offer v2-only settings (`memory.min`, `memory.high`, `memory.oom_group`: those are
//! `Error::Unsupported`), and never touches a cgroup it did not create.

mod backend;
pub mod cgroup;
pub mod controllers;
mod events;

pub use backend::V1Backend;

use isol_ns_core::registry::{BackendPlugin, Fit};
use isol_ns_core::{Backend, CgroupMode, HostInfo, Result};

/// The registry name.
pub const NAME: &str = "cgroup-v1";

/// Why the backend refuses a unified host.
pub const UNIFIED_REASON: &str = "the host is unified (cgroup v2 only); use cgroup-v2";

/// Whether the backend fits `host`: usable and preferred on legacy and hybrid hosts.
pub fn fit(host: &HostInfo) -> Fit {
    match host.mode {
        CgroupMode::Unified => Fit {
            usable: false,
            preferred: false,
            reason: UNIFIED_REASON.into(),
        },
        mode if host.v1().next().is_none() => Fit {
            usable: false,
            preferred: false,
            reason: format!("the host is {mode} but no cgroup v1 hierarchy is mounted"),
        },
        CgroupMode::Hybrid => Fit {
            usable: true,
            preferred: true,
            reason: "the host is hybrid: its resource controllers are on v1 hierarchies".into(),
        },
        CgroupMode::Legacy => Fit {
            usable: true,
            preferred: true,
            reason: "the host is legacy (cgroup v1 only)".into(),
        },
    }
}

fn open(host: &HostInfo) -> Result<Box<dyn Backend>> {
    Ok(Box::new(V1Backend::new(host)?))
}

/// The plugin as registered. Calling this from a binary also makes sure the crate (and
/// so its registration) is linked in.
pub fn plugin() -> &'static BackendPlugin {
    &PLUGIN
}

static PLUGIN: BackendPlugin = BackendPlugin {
    name: NAME,
    description: "cgroup v1 (legacy and hybrid hosts): one directory per hierarchy",
    fit,
    open,
};

isol_ns_core::inventory::submit! {
    BackendPlugin { name: NAME, description: "cgroup v1 (legacy and hybrid hosts): one directory per hierarchy", fit, open }
}
