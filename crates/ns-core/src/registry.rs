//! The registry of backend plugins.
//!
//! Each backend crate submits a [`BackendPlugin`] with `inventory::submit!`; this module
//! collects them. A crate nothing references is not linked, so a binary that wants both
//! backends names both crates (the CLI does, and a test asserts both are registered).

use serde::Serialize;

use crate::backend::Backend;
use crate::host::HostInfo;
use crate::{Error, Result};

/// How well a backend fits a host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fit {
    /// Whether it can work here at all.
    pub usable: bool,
    /// Whether it is the natural choice for this host's mode.
    pub preferred: bool,
    /// Why, in a sentence.
    pub reason: String,
}

/// A registered backend.
pub struct BackendPlugin {
    /// The registry name (`cgroup-v1`).
    pub name: &'static str,
    /// One line on what it drives.
    pub description: &'static str,
    /// Judges the host.
    pub fit: fn(&HostInfo) -> Fit,
    /// Opens the backend on the host.
    pub open: fn(&HostInfo) -> Result<Box<dyn Backend>>,
}

inventory::collect!(BackendPlugin);

impl std::fmt::Debug for BackendPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendPlugin")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Every registered backend, sorted by name.
pub fn backends() -> Vec<&'static BackendPlugin> {
    let mut all: Vec<_> = inventory::iter::<BackendPlugin>.into_iter().collect();
    all.sort_by_key(|p| p.name);
    all
}

/// The backend registered as `name`.
pub fn by_name(name: &str) -> Result<&'static BackendPlugin> {
    let all = backends();
    all.iter()
        .copied()
        .find(|p| p.name == name)
        .ok_or_else(|| Error::Backend {
            name: name.to_string(),
            reason: format!(
                "no such backend (registered: {})",
                all.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
            ),
        })
}

/// The backend that fits `host` best: a preferred one, else any usable one.
pub fn detect(host: &HostInfo) -> Result<(&'static BackendPlugin, Fit)> {
    let judged: Vec<_> = backends().into_iter().map(|p| (p, (p.fit)(host))).collect();
    if let Some(best) = judged
        .iter()
        .find(|(_, f)| f.preferred && f.usable)
        .or_else(|| judged.iter().find(|(_, f)| f.usable))
    {
        return Ok(best.clone());
    }
    let why: Vec<String> = judged
        .iter()
        .map(|(p, f)| format!("{}: {}", p.name, f.reason))
        .collect();
    Err(Error::Backend {
        name: "auto".into(),
        reason: if why.is_empty() {
            "no backend is registered".into()
        } else {
            format!("none fits this host ({})", why.join("; "))
        },
    })
}

/// Opens the backend named `name`, or the detected one for `auto`. A named backend that
/// does not fit the host is refused with its reason.
pub fn open(name: &str, host: &HostInfo) -> Result<Box<dyn Backend>> {
    let plugin = if name == "auto" {
        detect(host)?.0
    } else {
        let p = by_name(name)?;
        let fit = (p.fit)(host);
        if !fit.usable {
            return Err(Error::Backend {
                name: name.into(),
                reason: fit.reason,
            });
        }
        p
    };
    (plugin.open)(host)
}
