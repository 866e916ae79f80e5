//! seccomp filters: docker's default profile (an allow-list), or a profile in docker's
//! JSON format, compiled into one classic BPF program before the clone.
//!
//! A profile becomes a list of rules (a call, conditions on its arguments, an action),
//! and the rules one filter. The parts, one file each:
//!
//! - `default.rs`: docker's default profile, the calls it allows (some only to a box
//!   that keeps a capability, some only with certain arguments), as rules;
//! - `docker.rs`: profiles in docker's JSON format (`--seccomp FILE`), as rules;
//! - `layout.rs`: the rules laid out as isol's one filter — the architecture check, x32
//!   call numbers refused, then a binary search on the call number over runs of calls
//!   that return the same action (seccompiler compiles each rule's argument checks);
//! - here: which rules a [`SeccompProfile`] means for a box's capabilities, and the
//!   compiled programs kept: the default for docker's default capabilities is stored in
//!   the source for x86_64 and aarch64 (`stored_filter.rs`, checked against the compiler
//!   by a test), any other capability set is compiled once per process.
//!
//! # References
//! seccomp(2); moby's `profiles/seccomp/default.json` and its documentation ("Seccomp
//! security profiles for Docker"), whose gating by capability the default follows.

mod default;
mod docker;
mod layout;
mod stored_filter;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use seccompiler::{BpfProgram, SeccompAction, SeccompCondition};
use serde::{Deserialize, Serialize};

use super::caps::CapSet;
use super::syscalls::{self, Syscalls};
use crate::{Error, Result};

pub use default::{default_allowlist, PERSONAS};
pub use docker::{DockerArg, DockerFilter, DockerProfile, DockerSyscall};

/// Which seccomp filter a box gets.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeccompProfile {
    /// Docker's default, an allow-list: the calls docker's default profile allows a box
    /// with the capabilities it keeps ([`default_allowlist`]; `personality` only with
    /// one of [`PERSONAS`], `socket` of any family but `AF_VSOCK`, `clone` without
    /// CAP_SYS_ADMIN only without namespace flags, `clone3` only with it). Other calls
    /// the system call table knows get EPERM, calls newer than it ENOSYS (so a libc
    /// falls back, e.g. from `clone3` to `clone`); and, isol's own, the terminal's
    /// `TIOCSTI` and `TIOCLINUX` ioctls, with which a box on its caller's terminal would
    /// type into it, and x32 calls get EPERM.
    #[default]
    Default,
    /// No filter.
    Unconfined,
    /// A profile in docker's JSON format.
    Docker {
        /// The file it was read from.
        path: PathBuf,
        /// The parsed profile (read again from `path` when absent, e.g. deserialized).
        #[serde(skip)]
        profile: Option<Arc<DockerProfile>>,
    },
}

impl PartialEq for SeccompProfile {
    /// Profiles read from files are equal when their paths are.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (SeccompProfile::Default, SeccompProfile::Default)
            | (SeccompProfile::Unconfined, SeccompProfile::Unconfined) => true,
            (SeccompProfile::Docker { path: a, .. }, SeccompProfile::Docker { path: b, .. }) => {
                a == b
            }
            _ => false,
        }
    }
}

impl SeccompProfile {
    /// `default`, `unconfined`, or the path of a docker-format JSON profile (read now).
    pub fn parse(s: &str) -> Result<SeccompProfile> {
        match s {
            "default" => Ok(SeccompProfile::Default),
            "unconfined" => Ok(SeccompProfile::Unconfined),
            path if !Path::new(path).exists() => Err(Error::invalid(
                "seccomp",
                path,
                format!(
                    "{path:?} is neither default, unconfined, nor a file (a docker JSON profile)"
                ),
            )),
            path => SeccompProfile::from_docker_json(path),
        }
    }

    /// Reads a docker-format JSON profile (`defaultAction`, `syscalls[].names/action/args`).
    pub fn from_docker_json(path: impl AsRef<Path>) -> Result<SeccompProfile> {
        let path = path.as_ref();
        let profile = DockerProfile::read(path)?;
        // Refuse what cannot be compiled now, not in the child.
        profile.rules(CapSet::all(), path)?;
        Ok(SeccompProfile::Docker {
            path: path.to_path_buf(),
            profile: Some(Arc::new(profile)),
        })
    }

    /// The BPF programs to install, in order, for a box that keeps `caps` (docker gates
    /// some rules on capabilities): one filter, none for `Unconfined`.
    pub fn compile(&self, caps: CapSet) -> Result<Vec<BpfProgram>> {
        match self {
            SeccompProfile::Unconfined => Ok(Vec::new()),
            SeccompProfile::Default => default_programs(caps),
            SeccompProfile::Docker { path, profile } => {
                let read;
                let p = match profile {
                    Some(p) => p.as_ref(),
                    None => {
                        read = DockerProfile::read(path)?;
                        &read
                    }
                };
                let (default, rules) = (p.default_action(path)?, p.rules(caps, path)?);
                Ok(vec![layout::filter(default, &rules)?])
            }
        }
    }
}

/// Docker's default profile compiled for a box keeping `caps`: stored for docker's default
/// capabilities, and compiled once per other capability set (the same for every box).
fn default_programs(caps: CapSet) -> Result<Vec<BpfProgram>> {
    // The common case, stored as compiled: compiling it in a fresh process (the CLI's
    // case) costs ~45 µs, cold, against ~3 µs warm.
    if caps == CapSet::docker_default() {
        if let Some(p) = stored_filter::docker_default(syscalls::native().arch) {
            return Ok(vec![p]);
        }
    }
    type Cache = std::sync::Mutex<Vec<(CapSet, Vec<BpfProgram>)>>;
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let hit = cache
        .lock()
        .ok()
        .and_then(|c| c.iter().find(|(k, _)| *k == caps).map(|(_, p)| p.clone()));
    if let Some(p) = hit {
        return Ok(p);
    }
    let out = vec![default_filter(syscalls::native(), caps)?];
    if let Ok(mut c) = cache.lock() {
        c.push((caps, out.clone()));
    }
    Ok(out)
}

/// Docker's default profile as one filter for a box keeping `caps`, on the architecture
/// of `calls`: the default action is ENOSYS (a call the table does not know), the rules
/// answer ALLOW or EPERM for the others.
pub(crate) fn default_filter(calls: &Syscalls, caps: CapSet) -> Result<BpfProgram> {
    let rules = default::rules(calls, caps)?;
    layout::filter_for(calls, SeccompAction::Errno(libc::ENOSYS as u32), &rules)
}

/// One rule: a call, the conditions on its arguments (all must hold; none: always), and
/// the action.
#[derive(Clone, Debug)]
pub(crate) struct Rule {
    pub nr: i64,
    pub conds: Vec<SeccompCondition>,
    pub action: SeccompAction,
}

/// A rule or filter that seccompiler (or the layout) refused.
fn invalid(what: &str, e: impl std::fmt::Display) -> Error {
    Error::invalid("seccomp", what, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_modes_and_files() {
        assert!(SeccompProfile::parse("/nonexistent/profile.json").is_err());
        assert_eq!(
            SeccompProfile::parse("default").unwrap(),
            SeccompProfile::Default
        );
        assert_eq!(
            SeccompProfile::parse("unconfined").unwrap(),
            SeccompProfile::Unconfined
        );
    }
}
