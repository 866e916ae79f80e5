//! isol's core: the vocabulary of namespaces and cgroups that does not depend on the
//! cgroup version, and the registry through which the cgroup backends plug in.
//!
//! - [`NamespaceKind`] and [`NamespaceSet`] name the eight namespace kinds.
//! - [`Resources`] is one backend-neutral model of cgroup limits, in human units
//!   ([`units`]), with pure v1⇄v2 conversions in [`convert`].
//! - [`parse`] reads the kernel's file formats; [`HostInfo`] describes the host's cgroup
//!   mode, hierarchies and kernel features.
//! - [`Backend`], [`Cgroup`], [`ResourceController`] and [`EventStream`] are what a
//!   backend plugin implements; [`registry`] finds the plugins (`cgroup-v1`, `cgroup-v2`).
//! - [`Controller`] and [`Setting`] name, once for both backends, the controllers and
//!   the settings of `Resources` they serve; [`cgroupfs`] holds the cgroup-file
//!   mechanics both backends share (subtree walk, `cgroup.procs`, the SIGKILL loop,
//!   rmdir retried on EBUSY, writing a setting).
//! - [`spawn::Command`] starts a process in namespaces and a cgroup, hardened by a
//!   [`security::SecurityPolicy`]; [`Pod`] and [`BoxRecord`] are the pods and boxes the
//!   state directory ([`state`]) knows, the same ones the `isol` CLI shows.
//! - [`Error`] is the one error type of isol's libraries; a spawn that failed names its
//!   step as a [`SpawnStep`].
//!
//! ```
//! use isol_ns_core::{NamespaceSet, Resources, units::parse_size};
//! let ns: NamespaceSet = "mnt,pid,net".parse()?;
//! assert_eq!(ns.iter().count(), 3);
//! let mut r = Resources::default();
//! r.memory.max = Some(parse_size("memory", "64M")?);
//! r.validate()?;
//! # Ok::<(), isol_ns_core::Error>(())
//! ```
//!
//! What it does not do: write to a cgroup but on a backend's behalf (through
//! [`cgroupfs`], with the file names the backend hands in), or hold backend-specific
//! knowledge — a controller's file name appears only in a backend crate, and the backends
//! themselves are other crates (`isol-cgroup-v1`, `isol-cgroup-v2`) that a program links
//! for the registry to find. It parses no command line and prints nothing.

pub mod backend;
pub mod boxes;
pub mod cgroupfs;
pub mod controller;
pub mod convert;
mod error;
pub mod host;
mod kind;
pub mod namespace;
pub mod parse;
pub mod pod;
#[cfg(test)]
mod proptests;
pub mod registry;
pub mod resources;
pub mod security;
pub mod spawn;
pub mod state;
pub mod stats;
pub mod units;

pub use backend::{
    open_for_attach, require_tokio_runtime, Backend, Cgroup, CgroupLocation, CgroupPath,
    EventStream, Parent, ResourceController,
};
pub use boxes::BoxRecord;
pub use controller::{Controller, Setting};
pub use error::{Error, Result};
pub use host::{CgroupMode, HostInfo, KernelFeatures};
pub use kind::{NamespaceKind, NamespaceSet};
pub use namespace::{Namespace, NamespacePlan, NsHandle};
pub use pod::{Pod, PodRecord};
pub use registry::{BackendPlugin, Fit};
pub use resources::Resources;
pub use spawn::{Child, Command, ExitStatus, SpawnStep, Stdio};
pub use stats::{CgroupEvent, Stats};

/// Re-exported so backend crates can register without depending on inventory themselves.
pub use inventory;
