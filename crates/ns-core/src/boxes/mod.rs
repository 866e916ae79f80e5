//! Boxes as the state directory knows them, so that every program using isol sees the
//! same boxes as `isol ps`: the record (`boxes/NAME.json`), how to tell whether its
//! processes still live (pid plus start time, so a reused pid is not mistaken for the
//! box), how to clean up after a box (its cgroup, its persisted namespace files, its
//! place in a pod), and how to start a command inside a running box ([`BoxRecord::join`],
//! what `isol exec` does).
//!
//! Starting a box and supervising it (forwarding signals, recording the exit) is the
//! caller's: the CLI claims the name with a placeholder record, spawns, fills the record
//! from the [`Child`] ([`BoxRecord::record_child`]) and writes it.
//!
//! ```no_run
//! use isol_ns_core::boxes::{BoxRecord, JoinOptions};
//! use isol_ns_core::state::StateDir;
//! use isol_ns_core::HostInfo;
//!
//! let state = StateDir::open(StateDir::default_path())?;
//! let host = HostInfo::probe()?;
//! for (name, rec) in BoxRecord::list(&state)? {
//!     println!("{name}: {}", rec?.state(&host));
//! }
//! if let Some(web) = BoxRecord::load(&state, "web")? {
//!     // `isol exec web -- ps`, as the box's user, with its environment.
//!     let status = web.join(&host, "ps", &JoinOptions::default())?.spawn()?.wait()?;
//!     println!("ps in web: {status:?}");
//! }
//! # Ok::<(), isol_ns_core::Error>(())
//! ```
//!
//! - mod.rs: the record and its liveness;
//! - cleanup.rs: releasing what a box holds and removing its record;
//! - join.rs: a command that joins a running box, and the environment and user a box's
//!   commands run with.

mod cleanup;
mod join;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::namespace::NsHandle;
pub use crate::pod::ProcessId;
use crate::security::SecurityPolicy;
use crate::spawn::{Child, ExitStatus};
use crate::state::{Record, RecordKind, StateDir};
use crate::{
    registry, Cgroup, CgroupLocation, Error, HostInfo, NamespaceKind, NamespaceSet, Resources,
    Result,
};

pub use join::{set_env, JoinOptions, DEFAULT_PATH};

/// How a box's command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    /// The exit code, when it exited.
    pub code: Option<i32>,
    /// The signal, when it was killed by one.
    pub signal: Option<i32>,
    /// Whether the OOM killer killed a task of the box.
    pub oom_killed: bool,
    /// The status a shell would see: code, or 128 + signal.
    pub status: i32,
}

impl Exit {
    /// The end `s`, and whether the box's cgroup counted an OOM kill.
    pub fn of(s: ExitStatus, oom_killed: bool) -> Exit {
        Exit {
            code: s.code(),
            signal: s.signal(),
            oom_killed,
            status: s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
        }
    }
}

/// A namespace of a box.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsInfo {
    /// Its inode (as `ls -l /proc/PID/ns` shows it).
    pub inode: u64,
    /// Whether the box created it (else it was inherited or joined).
    pub new: bool,
    /// Where it is bind-mounted, when persisted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

/// Who a box's command runs as (`isol run --user UID[:GID]`); a command joining the box
/// runs as the same unless told otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoxUser {
    /// The user id.
    pub uid: u32,
    /// The group id, when given (else the kernel's: the caller's, or 0 in a user
    /// namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

impl std::fmt::Display for BoxUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.gid {
            Some(g) => write!(f, "{}:{g}", self.uid),
            None => write!(f, "{}", self.uid),
        }
    }
}

/// A box record, as written to `boxes/NAME.json`. Field names are stable: records
/// written by older isols still read.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BoxRecord {
    /// The box's name.
    pub name: String,
    /// The box's first process (the init when the pid namespace is new).
    pub process: ProcessId,
    /// The isol process that is the box's parent and records its exit.
    pub supervisor: ProcessId,
    /// Whether it runs under a supervisor of its own (`isol run -d`).
    pub detached: bool,
    /// The pod it is a member of.
    pub pod: Option<String>,
    /// The command line.
    pub command: Vec<String>,
    /// The hostname of its own UTS namespace.
    pub hostname: Option<String>,
    /// The backend that made its cgroup (`cgroup-v1`, `cgroup-v2`).
    pub backend: String,
    /// Its cgroup.
    pub cgroup: CgroupLocation,
    /// The kinds created anew.
    pub new_namespaces: NamespaceSet,
    /// The persisted namespaces: kind → inode and the path of the bind mount, which
    /// cleanup checks before it unmounts. The box's other namespaces are read from its
    /// live process when asked ([`BoxRecord::namespaces_now`]): reading all eight at
    /// spawn cost ~0.1 ms a box, mostly /proc and nsfs making their inodes. (Records
    /// written before this have every kind.) In JSON the keys are the kinds' short
    /// names (`net`).
    pub namespaces: BTreeMap<NamespaceKind, NsInfo>,
    /// Its limits.
    pub resources: Resources,
    /// RFC 3339, UTC.
    pub created: String,
    /// Set once the command has ended.
    pub exit: Option<Exit>,
    /// RFC 3339, UTC; when the command ended.
    pub finished: Option<String>,
    /// Where a detached box's stdout and stderr go.
    pub log: Option<PathBuf>,
    /// How the box is hardened (`None` in records written before isol had hardening);
    /// a command joining it is hardened the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecurityPolicy>,
    /// The user given with `--user` (`None`: root, or the caller in a user namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<BoxUser>,
    /// The variables given with `--env` (`K=V`; a bare `K` as the caller's value was),
    /// which a joining command gets too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// `--inherit-env`: the command took the caller's environment, and a joining
    /// command takes its caller's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inherit_env: bool,
    /// The working directory given with `--workdir`, where a joining command starts too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<PathBuf>,
}

impl Record for BoxRecord {
    const KIND: RecordKind = RecordKind::Box;

    fn name(&self) -> &str {
        &self.name
    }
}

/// What a box is doing now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BoxState {
    /// Its first process runs.
    Running,
    /// It runs, and its cgroup is frozen.
    Frozen,
    /// Its command ended (recorded, or about to be by its supervisor).
    Exited,
    /// Its processes are gone and nobody recorded how: a leftover to clean up.
    Dead,
}

impl std::fmt::Display for BoxState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BoxState::Running => "running",
            BoxState::Frozen => "frozen",
            BoxState::Exited => "exited",
            BoxState::Dead => "dead",
        })
    }
}

impl BoxRecord {
    /// Reads the record of box `name`; `None` when there is none.
    pub fn load(state: &StateDir, name: &str) -> Result<Option<BoxRecord>> {
        state.read(name)
    }

    /// Every box record, by name, sorted; a record that cannot be read is an error of
    /// its own, so that one damaged record does not hide the others. Hold the state lock
    /// for a consistent view.
    pub fn list(state: &StateDir) -> Result<Vec<(String, Result<BoxRecord>)>> {
        Ok(state
            .list(RecordKind::Box)?
            .into_iter()
            .filter_map(|name| match state.read(&name) {
                Ok(Some(rec)) => Some((name, Ok(rec))),
                // Removed since the listing.
                Ok(None) => None,
                Err(e) => Some((name, Err(e))),
            })
            .collect())
    }

    /// Running, exited, or dead (without asking the cgroup whether it is frozen).
    pub fn liveness(&self) -> BoxState {
        if self.exit.is_some() {
            BoxState::Exited
        } else if self.process.alive() {
            BoxState::Running
        } else if self.supervisor.alive() {
            // The supervisor is about to record the status.
            BoxState::Exited
        } else {
            BoxState::Dead
        }
    }

    /// The state, asking the cgroup whether a running box is frozen.
    pub fn state(&self, host: &HostInfo) -> BoxState {
        match self.liveness() {
            BoxState::Running => match self.open_cgroup(host).and_then(|cg| cg.read()) {
                Ok(r) if r.frozen == Some(true) => BoxState::Frozen,
                _ => BoxState::Running,
            },
            s => s,
        }
    }

    /// Every namespace of the box, kind → inode, whether new, and the persisted path:
    /// read from the box's process while it runs (`/proc/PID/ns`, `*_for_children` for
    /// pid and time, where the init put the command), else what the record holds.
    pub fn namespaces_now(&self) -> BTreeMap<NamespaceKind, NsInfo> {
        // A kind the kernel lacks (time before 5.6) has no file and is left out.
        let live: BTreeMap<NamespaceKind, NsInfo> = NamespaceKind::ALL
            .iter()
            .filter_map(|&kind| {
                let inode = NsHandle::inode_of_pid(self.process.pid, kind, true).ok()?;
                let info = NsInfo {
                    inode,
                    new: self.new_namespaces.contains(kind),
                    path: self.namespaces.get(&kind).and_then(|n| n.path.clone()),
                };
                Some((kind, info))
            })
            .collect();
        // Read from the box's own process only if it is still there afterwards (same
        // start time): an ended box, or its pid reused, falls back to the record.
        if self.exit.is_none() && self.process.alive() {
            return live;
        }
        self.namespaces.clone()
    }

    /// Opens the box's cgroup through the backend that made it.
    pub fn open_cgroup(&self, host: &HostInfo) -> Result<Box<dyn Cgroup>> {
        registry::open(&self.backend, host)?.open(&self.cgroup)
    }

    /// The cgroup's directories, from the host's hierarchies (without opening it).
    pub fn cgroup_dirs(&self, host: &HostInfo) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for (key, path) in &self.cgroup.0 {
            let h = if key == CgroupLocation::UNIFIED {
                host.unified()
            } else {
                host.hierarchies
                    .iter()
                    .find(|h| h.version == 1 && h.controllers.join(",") == *key)
            };
            if let Some(dir) = h.and_then(|h| h.dir_of(path.as_str())) {
                out.push(dir);
            }
        }
        out
    }

    /// Fills in what only the running box can tell: its process, persisted namespaces,
    /// cgroup. (Its other namespaces are read from the process when asked.)
    pub fn record_child(&mut self, child: &Child) -> Result<()> {
        for per in child.persisted() {
            let info = NsInfo {
                inode: per.inode,
                new: self.new_namespaces.contains(per.kind),
                path: Some(per.path.clone()),
            };
            self.namespaces.insert(per.kind, info);
        }
        let cg = child.cgroup().ok_or_else(|| Error::Refused {
            what: "record the box".into(),
            reason: "the box has no cgroup".into(),
        })?;
        self.cgroup = cg.location().clone();
        self.process = ProcessId::of(child.pid()).map_err(|_| Error::Refused {
            what: "record the box".into(),
            reason: format!("its process {} is already gone", child.pid()),
        })?;
        Ok(())
    }
}

/// Now, as RFC 3339 UTC (`2024-05-01T12:34:56Z`).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// Seconds since the epoch as RFC 3339 UTC (civil-from-days, H. Hinnant).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn own_process_is_alive_and_a_changed_start_time_is_not() {
        let me = ProcessId::me();
        assert!(me.alive());
        assert_eq!(me, ProcessId::of(std::process::id()).unwrap());
        let reused = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!reused.alive());
        assert!(ProcessId::of(u32::MAX).is_err());
    }

    #[test]
    fn exit_status_is_what_a_shell_sees() {
        assert_eq!(Exit::of(ExitStatus::Exited(3), false).status, 3);
        let k = Exit::of(ExitStatus::Signaled(9), true);
        assert_eq!((k.status, k.signal, k.code), (137, Some(9), None));
    }

    /// A record as an isol from before the typed keys wrote it (string-keyed
    /// namespaces, fields added later absent) still reads, and writes back the same JSON.
    #[test]
    fn records_on_disk_read_and_round_trip() {
        // Written by `isol run -d` before this module existed (trimmed), with the
        // namespaces of a record from before they were read on demand.
        let old = r#"{
  "name": "web",
  "process": { "pid": 16435, "start_time": 150227 },
  "supervisor": { "pid": 16434, "start_time": 150226 },
  "detached": true,
  "pod": null,
  "command": ["sleep", "30"],
  "hostname": "web",
  "backend": "cgroup-v1",
  "cgroup": {
    "memory": "/process_api/01d1821740e7331693e4d14a75d499cb/web",
    "pids": "/web",
    "unified": "/web"
  },
  "new_namespaces": ["cgroup", "ipc", "uts", "net", "pid", "mnt"],
  "namespaces": {
    "net": { "inode": 4026532001, "new": true, "path": "/run/isol/boxes/web.d/net" },
    "mnt": { "inode": 4026532000, "new": true },
    "user": { "inode": 4026531837, "new": false }
  },
  "resources": { "memory": { "max": 67108864 } },
  "created": "2026-12-07T04:42:47Z",
  "exit": null,
  "finished": null,
  "log": "/tmp/tmp.JXn8doMxlg/boxes/web.d/output",
  "user": { "uid": 0 },
  "env": ["A=b"],
  "workdir": "/tmp"
}"#;
        let rec: BoxRecord = serde_json::from_str(old).unwrap();
        assert_eq!(rec.namespaces[&NamespaceKind::Net].inode, 4026532001);
        assert!(rec.namespaces[&NamespaceKind::Mnt].path.is_none());
        assert_eq!(rec.process.pid, 16435);
        assert!(!rec.namespaces[&NamespaceKind::User].new);
        assert!(rec.security.is_none() && !rec.inherit_env);
        assert_eq!(rec.user, Some(BoxUser { uid: 0, gid: None }));
        let json: serde_json::Value = serde_json::to_value(&rec).unwrap();
        let want: serde_json::Value = serde_json::from_str(old).unwrap();
        assert_eq!(json, want);
        let back: BoxRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back.namespaces, rec.namespaces);
    }
}
