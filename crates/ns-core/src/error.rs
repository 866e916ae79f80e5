//! The one error type every isol library returns.
//!
//! Backends are plugins behind trait objects, so their errors must share a type with
//! ns-core. Each variant carries what a person needs to fix the problem: the operation,
//! the path and the value, with the OS error kept as `source()`.

use std::io;
use std::path::PathBuf;

/// ` PATH`, or nothing for an empty path (a step that acts on none).
fn after_space(path: &std::path::Path) -> String {
    if path.as_os_str().is_empty() {
        String::new()
    } else {
        format!(" {}", path.display())
    }
}

/// Shorthand for results in isol's libraries.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, with enough context to act on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value given by the caller is not acceptable. `reason` says what would be.
    /// The message names the value too, unless the reason does already.
    #[error("{field}: {}", with_value(value, reason))]
    Invalid {
        /// The setting, e.g. `memory` or `cpu.max`.
        field: String,
        /// The value as given.
        value: String,
        /// Why it is wrong and what would be accepted.
        reason: String,
    },
    /// Reading a file failed.
    #[error("read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Writing a value to a (usually cgroup) file failed.
    #[error("write {value:?} to {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The value written.
        value: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Another filesystem or system-call operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// The operation, e.g. `mkdir` or `rmdir`.
        op: &'static str,
        /// The path it acted on (empty when there is none).
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A kernel file did not have the expected format.
    #[error("parse {}: {reason}", path.display())]
    Parse {
        /// The file (or a description of the input).
        path: PathBuf,
        /// What was wrong, quoting the offending line.
        reason: String,
    },
    /// A setting the chosen backend (or the running kernel) cannot honour.
    #[error("{setting} is not supported by {backend}: {reason}")]
    Unsupported {
        /// The setting, named as in `Resources` (e.g. `memory.min`).
        setting: String,
        /// The backend's registry name.
        backend: &'static str,
        /// Why, and what to do instead.
        reason: String,
    },
    /// No backend fits, or the one asked for is unknown or unusable here.
    #[error("backend {name}: {reason}")]
    Backend {
        /// The backend asked for (or `auto`).
        name: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// Something isol must not or cannot do, with the hint to get around it.
    #[error("{what}: {reason}")]
    Refused {
        /// What was attempted.
        what: String,
        /// Why it was refused and how to proceed.
        reason: String,
    },
    /// A step of spawning a process failed: in the parent (`clone3`, finding the
    /// program) or in the child between clone and exec (`pivot_root`, `sethostname`,
    /// `setns`, `execve`…), with the errno the kernel gave.
    #[error("spawn: {step}{}: {source}", after_space(path))]
    Spawn {
        /// The step, e.g. [`SpawnStep::Execve`](crate::SpawnStep::Execve).
        step: crate::SpawnStep,
        /// The path (or value) it acted on; empty when there is none.
        path: PathBuf,
        /// The OS error; `kind()` is `NotFound` for a missing program.
        #[source]
        source: io::Error,
    },
    /// Waiting for a cgroup state (frozen, empty) timed out.
    #[error("timed out after {waited_ms} ms waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        waited_ms: u64,
    },
}

impl Error {
    /// An [`Error::Invalid`] for `field`, quoting `value`.
    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            field: field.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }

    /// An [`Error::Io`] for `op` on `path`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Parse`] for `path`.
    pub fn parse(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Parse {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// Creating the cgroup directory `dir` was refused: it exists, and isol manages only
    /// the cgroups it created. (Every backend's wording.)
    pub fn cgroup_exists(dir: &std::path::Path) -> Self {
        let reason = if dir.is_dir() {
            "it already exists, and isol did not make it for this box (another program's, or a box's of another state directory): isol touches only cgroups it made; pick another name"
        } else {
            "that name is a file of the parent cgroup (pick another name)"
        };
        Error::Refused {
            what: format!("create cgroup {}", dir.display()),
            reason: reason.into(),
        }
    }

    /// The cgroup directory `dir` cannot be made because its parent does not exist.
    pub fn cgroup_parent_missing(dir: &std::path::Path) -> Self {
        let parent = dir.parent().unwrap_or(dir);
        Error::Refused {
            what: format!("create cgroup {}", dir.display()),
            reason: format!(
                "its parent cgroup {} does not exist (create it first, or choose another parent)",
                parent.display()
            ),
        }
    }

    /// The errno behind this error, when there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Read { source, .. }
            | Error::Write { source, .. }
            | Error::Io { source, .. }
            | Error::Spawn { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// `reason`, after the value it is about unless it names it (or there is none).
fn with_value(value: &str, reason: &str) -> String {
    if value.is_empty() || reason.contains(value) {
        reason.to_string()
    } else {
        format!("{value:?}: {reason}")
    }
}
