//! What isol remembers about a box between invocations: the record in the state
//! directory (`boxes/NAME.json`), how to tell whether its processes still live (pid
//! plus start time, so a reused pid is not mistaken for the box), and how to clean up
//! after a box whose processes are gone without a trace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use isol_ns_core::security::SecurityPolicy;
use isol_ns_core::state::StateDir;
use isol_ns_core::{
    parse, registry, Cgroup, CgroupLocation, NamespaceKind, NamespaceSet, Resources,
};
use serde::{Deserialize, Serialize};

/// The record kind in the state directory.
pub const BOXES: &str = "boxes";

/// A process, identified so that pid reuse is detected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    /// The host pid.
    pub pid: u32,
    /// Field 22 of `/proc/PID/stat`: clock ticks after boot at which it started.
    pub start_time: u64,
}

impl Proc {
    /// The process `pid` as it is now, if it exists.
    pub fn of(pid: u32) -> Option<Proc> {
        start_time(pid).map(|start_time| Proc { pid, start_time })
    }

    /// The calling process.
    pub fn me() -> Proc {
        // Cached for the process that first asked; a forked supervisor is another pid.
        static ME: std::sync::OnceLock<Proc> = std::sync::OnceLock::new();
        let pid = std::process::id();
        if let Some(me) = ME.get().filter(|me| me.pid == pid) {
            return *me;
        }
        let me = Proc::of(pid).expect("/proc/self/stat is readable");
        let _ = ME.set(me);
        me
    }

    /// Whether the same process still exists (and is not a zombie).
    pub fn alive(&self) -> bool {
        match parse::read_text(Path::new(&format!("/proc/{}/stat", self.pid))) {
            Ok(stat) => {
                let fields = stat_fields(&stat);
                fields.first().is_some_and(|s| *s != "Z" && *s != "X")
                    && fields.get(19).and_then(|s| s.parse().ok()) == Some(self.start_time)
            }
            Err(_) => false,
        }
    }
}

/// The fields of `/proc/PID/stat` after the `(comm)`: index 0 is field 3 (state).
fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default()
}

/// Field 22 (starttime) of `/proc/PID/stat`.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = parse::read_text(Path::new(&format!("/proc/{pid}/stat"))).ok()?;
    stat_fields(&stat).get(19)?.parse().ok()
}

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
    pub fn of(s: isol_ns_core::ExitStatus, oom_killed: bool) -> Exit {
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

/// Who the command runs as (`isol run --user UID[:GID]`); `exec` runs as the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoxUser {
    pub uid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

/// A box record, as written to `boxes/NAME.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BoxRecord {
    pub name: String,
    /// The box's first process (the init when the pid namespace is new).
    pub process: Proc,
    /// The isol process that is the box's parent and records its exit.
    pub supervisor: Proc,
    pub detached: bool,
    pub pod: Option<String>,
    pub command: Vec<String>,
    pub hostname: Option<String>,
    pub backend: String,
    pub cgroup: CgroupLocation,
    /// The kinds created anew.
    pub new_namespaces: NamespaceSet,
    /// The persisted namespaces: kind → inode and the path of the bind mount, which
    /// cleanup checks before it unmounts. The box's other namespaces are read from its
    /// live process when asked ([`BoxRecord::namespaces_now`]): reading all eight at
    /// spawn cost ~0.1 ms a box, mostly /proc and nsfs making their inodes. (Records
    /// written before this have every kind.)
    pub namespaces: BTreeMap<String, NsInfo>,
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
    /// `exec` hardens its command the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecurityPolicy>,
    /// The user given with `--user` (`None`: root, or the caller in a user namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<BoxUser>,
    /// The variables given with `--env` (`K=V`; a bare `K` as the caller's value was),
    /// which `exec` sets too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// `--inherit-env`: the command took the caller's environment, and `exec`'s takes
    /// its caller's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inherit_env: bool,
    /// The working directory given with `--workdir`, where `exec` starts too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<PathBuf>,
}

/// What a box is doing now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BoxState {
    Running,
    Frozen,
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

    /// Every namespace of the box, kind → inode, whether new, and the persisted path:
    /// read from the box's process while it runs (`/proc/PID/ns`, `*_for_children` for
    /// pid and time, where the init put the command), else what the record holds.
    pub fn namespaces_now(&self) -> BTreeMap<String, NsInfo> {
        use isol_ns_core::namespace::NsHandle;
        // A kind the kernel lacks (time before 5.6) has no file and is left out.
        let live: BTreeMap<String, NsInfo> = NamespaceKind::ALL
            .iter()
            .filter_map(|&kind| {
                let inode = NsHandle::inode_of_pid(self.process.pid, kind, true).ok()?;
                let name = kind.proc_name();
                let info = NsInfo {
                    inode,
                    new: self.new_namespaces.contains(kind),
                    path: self.namespaces.get(name).and_then(|n| n.path.clone()),
                };
                Some((name.to_string(), info))
            })
            .collect();
        // Read from the box's own process only if it is still there afterwards (same
        // start time): an ended box, or its pid reused, falls back to the record.
        if self.exit.is_none() && self.process.alive() {
            return live;
        }
        self.namespaces.clone()
    }

    /// The state, asking the cgroup whether a running box is frozen.
    pub fn state(&self) -> BoxState {
        match self.liveness() {
            BoxState::Running => match self.open_cgroup().and_then(|cg| Ok(cg.read()?)) {
                Ok(r) if r.frozen == Some(true) => BoxState::Frozen,
                _ => BoxState::Running,
            },
            s => s,
        }
    }

    /// Opens the box's cgroup through its backend.
    pub fn open_cgroup(&self) -> Result<Box<dyn Cgroup>> {
        let backend = registry::open(&self.backend, crate::host()?)?;
        backend
            .open(&self.cgroup)
            .with_context(|| format!("open the cgroup of box {}", self.name))
    }

    /// Destroys the cgroup (if it is still there), releases persisted namespace files.
    /// Errors are collected, not fatal: cleanup does all it can. `cgroup` is the box's
    /// cgroup when the caller has it open already (it is opened from the record if not).
    pub fn release(&self, cgroup: Option<&dyn Cgroup>) -> Vec<String> {
        let mut errors = Vec::new();
        let opened;
        let cgroup = match cgroup {
            Some(cg) => Ok(cg),
            None => {
                opened = self.open_cgroup();
                opened.as_deref()
            }
        };
        match cgroup {
            Ok(cg) => {
                if let Err(e) = cg.destroy() {
                    errors.push(format!("destroy cgroup {}: {e}", cg.path()));
                }
            }
            Err(e) => {
                // Gone already is fine. Part of it (isol died while creating or
                // destroying it, v1 making one directory per hierarchy) is taken down
                // directory by directory; anything else is worth saying.
                for dir in self.cgroup_dirs().iter().filter(|d| d.exists()) {
                    if let Err(why) = remove_cgroup_dir(dir) {
                        errors.push(format!("{e:#}; remove {}: {why}", dir.display()));
                    }
                }
            }
        }
        for (kind, ns) in &self.namespaces {
            if let Some(path) = &ns.path {
                if let Ok(kind) = kind.parse() {
                    let p = isol_ns_core::namespace::Persisted {
                        kind,
                        path: path.clone(),
                        inode: ns.inode,
                    };
                    if path.exists() {
                        if let Err(e) = p.release() {
                            errors.push(e.to_string());
                        }
                    }
                }
            }
        }
        errors
    }

    /// The cgroup's directories, from the host's hierarchies (without opening it).
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let Ok(host) = crate::host() else {
            return Vec::new();
        };
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
}

/// Removes a cgroup directory the record names, for when its backend cannot open it
/// (only part of a v1 cgroup exists): SIGKILLs the tasks in it and its descendants
/// (processes of the box: nothing else can be in a cgroup isol made for it), then
/// removes the directories deepest first, retrying while the kernel is still freeing the
/// tasks (EBUSY). cgroup-v1.txt §2.3 and cgroup-v2.rst "Removing a cgroup": a cgroup
/// without tasks or children can be rmdir'ed.
fn remove_cgroup_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut dirs = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d)?.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(e.path());
            }
        }
        dirs.push(d);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    for d in dirs.iter().rev() {
        loop {
            let procs = parse::read_text(&d.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            match std::fs::remove_dir(d) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    if std::time::Instant::now() > deadline {
                        return Err(e);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Reads the record of box `name`, or fails saying there is none.
pub fn load(state: &StateDir, name: &str) -> Result<BoxRecord> {
    isol_ns_core::state::check_name(name)?;
    state
        .read::<BoxRecord>(BOXES, name)?
        .with_context(|| format!("box {name}: no such box (see isol ps)"))
}

/// Cleans up after a dead box and removes its record. The caller holds the lock, so a
/// pod member is only dropped from its pod by [`remove_box`].
pub fn remove_dead(state: &StateDir, rec: &BoxRecord) -> Result<()> {
    let errors = rec.release(None);
    if !errors.is_empty() {
        anyhow::bail!("clean up box {}: {}", rec.name, errors.join("; "));
    }
    state.remove(BOXES, &rec.name)?;
    Ok(())
}

/// Removes a box whose processes are gone or being killed: drops it from its pod (which
/// destroys the member cgroup), destroys its cgroup, releases namespace files, removes
/// the record. Takes the lock itself; the caller must not hold it. `cgroup` is the box's
/// cgroup if the caller has it open.
pub fn remove_box(state: &StateDir, rec: &BoxRecord, cgroup: Option<&dyn Cgroup>) -> Result<()> {
    if let Some(pod) = &rec.pod {
        if let Ok(mut pod) =
            crate::host().and_then(|h| Ok(isol_ns_core::Pod::open_on(state, pod, h)?))
        {
            if pod.record().members.contains_key(&rec.name)
                && pod.remove_member(&rec.name, true).is_err()
            {
                // A member cgroup half destroyed (its remover died between two v1
                // hierarchies) cannot be opened: take it down directory by directory,
                // then drop the member. If that fails too the box record stays, so the
                // next gc tries again; a member is never forgotten silently.
                let _ = rec.release(None);
                pod.remove_member(&rec.name, true)
                    .with_context(|| format!("drop box {} from pod {}", rec.name, pod.name()))?;
            }
        }
    }
    let errors = rec.release(cgroup);
    if !errors.is_empty() {
        anyhow::bail!("remove box {}: {}", rec.name, errors.join("; "));
    }
    let _lock = state.lock()?;
    state.remove(BOXES, &rec.name)?;
    Ok(())
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
        let me = Proc::me();
        assert!(me.alive());
        let reused = Proc {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!reused.alive());
        assert!(Proc::of(u32::MAX).is_none());
    }

    #[test]
    fn exit_status_is_what_a_shell_sees() {
        use isol_ns_core::ExitStatus;
        assert_eq!(Exit::of(ExitStatus::Exited(3), false).status, 3);
        let k = Exit::of(ExitStatus::Signaled(9), true);
        assert_eq!((k.status, k.signal, k.code), (137, Some(9), None));
    }
}
