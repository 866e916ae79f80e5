//! `isol run` and `isol exec`: build the spawn from the command line (validating
//! everything before anything is created), start the box, and either stay in the
//! foreground — forwarding signals, passing the exit status through, removing the box
//! when it ends — or leave a supervisor behind (`-d`) that records the exit status.
//!
//! - prepare.rs: the command line → a `Command` and what the record will say
//!   (namespaces, pod, `--share`, mounts, hardening, user, environment, cgroup);
//! - terminal.rs: the box's terminal and session (`/dev/console`, `setsid`);
//! - start.rs: claiming the name, spawning, writing the record;
//! - forward.rs: waiting for the box while forwarding signals to it;
//! - detach.rs: `run -d`, the supervisor;
//! - exec.rs: `isol exec`, through the library's join of a running box.

mod detach;
mod exec;
mod forward;
mod prepare;
mod start;
mod terminal;

use std::path::PathBuf;

use anyhow::Result;
use isol_ns_core::boxes::{BoxRecord, BoxUser};
use isol_ns_core::spawn::{Child, Command, ExitStatus};
use isol_ns_core::state::StateDir;
use isol_ns_core::units::{format_size, Limit};
use isol_ns_core::{CgroupLocation, NamespaceSet, Resources};

use crate::cli::RunArgs;
use crate::sys::InheritedFds;

pub use exec::exec;
use forward::Forwarder;

/// A box ready to start: everything checked, nothing created yet.
struct Prepared {
    name: String,
    cmd: Command,
    backend: &'static str,
    /// Where the box's cgroup will be, named in the record before it is created.
    cgroup: CgroupLocation,
    resources: Resources,
    new: NamespaceSet,
    argv: Vec<String>,
    hostname: Option<String>,
    pod: Option<String>,
    /// The pod the box joins as a member (`--pod`).
    pod_handle: Option<isol_ns_core::Pod>,
    user: Option<BoxUser>,
    /// `--env` (as `K=V`), `--inherit-env` and `--workdir`, recorded for `exec`.
    env: Vec<String>,
    inherit_env: bool,
    workdir: Option<PathBuf>,
}

/// `isol run`.
pub fn run(state: &StateDir, a: RunArgs) -> Result<u8> {
    if a.detach {
        let inherited = InheritedFds::find();
        let prep = prepare::prepare(state, &a)?;
        return detach::detach(state, prep, inherited);
    }
    let prep = prepare::prepare(state, &a)?;
    let forwarder = Forwarder::install()?;
    let (mut child, rec) = start::start(state, prep, false)?;
    let status = forwarder.wait(&mut child);
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            cleanup(state, &rec, &child);
            return Err(e);
        }
    };
    tracing::debug!("box {}: its command ended: {status:?}", rec.name);
    if oom_killed(&child) {
        eprintln!("{}", oom_message(state, &rec, status));
    }
    cleanup(state, &rec, &child);
    Ok(shell_status(status))
}

/// What the OOM killer did, with the limits that bound the box: its own, and its pod's.
fn oom_message(state: &StateDir, rec: &BoxRecord, status: ExitStatus) -> String {
    let size = |l: Option<Limit>| match l {
        Some(Limit::Value(v)) => Some(format_size(v)),
        _ => None,
    };
    let mut limits = Vec::new();
    if let Some(v) = size(rec.resources.memory.max) {
        limits.push(format!("memory limit {v}"));
    }
    let pod_limit = rec.pod.as_deref().and_then(|p| {
        let pod = isol_ns_core::Pod::open_on(state, p, crate::host().ok()?).ok()?;
        size(pod.record().resources.memory.max)
    });
    if let Some(v) = pod_limit {
        limits.push(format!("its pod's {v}"));
    }
    let limits = if limits.is_empty() {
        String::new()
    } else {
        format!(" ({})", limits.join("; "))
    };
    if status == ExitStatus::Signaled(libc::SIGKILL) {
        format!(
            "isol: box {} was killed by the OOM killer{limits}",
            rec.name
        )
    } else {
        format!(
            "isol: box {}: the OOM killer ended a process of the box, not its command{limits}",
            rec.name
        )
    }
}

fn oom_killed(child: &Child) -> bool {
    child
        .cgroup()
        .and_then(|cg| cg.oom_kills().ok())
        .is_some_and(|n| n > 0)
}

/// Removes a foreground box: its cgroup, namespace files and record.
fn cleanup(state: &StateDir, rec: &BoxRecord, child: &Child) {
    let removed = crate::host().and_then(|h| Ok(rec.remove(state, h, child.cgroup())?));
    match removed {
        Ok(()) => tracing::debug!("box {}: cgroup and record removed", rec.name),
        Err(e) => eprintln!("isol: {e:#}"),
    }
}

/// 128+N for a signal, the code otherwise.
pub fn shell_status(s: ExitStatus) -> u8 {
    match s {
        ExitStatus::Exited(c) => (c & 0xff) as u8,
        ExitStatus::Signaled(n) => (128 + n).clamp(0, 255) as u8,
    }
}

/// A fork refused with EAGAIN in a box with a pids limit: the limit is the likely cause,
/// which the kernel's "Resource temporarily unavailable" does not say.
fn pids_hint(e: isol_ns_core::Error, r: &Resources) -> anyhow::Error {
    match (e.raw_os_error(), r.pids.max) {
        (Some(libc::EAGAIN), Some(Limit::Value(max))) => {
            let what = if max == 1 { "process" } else { "processes" };
            anyhow::Error::from(e)
                .context(format!("the box may hold {max} {what}, its init included"))
        }
        _ => e.into(),
    }
}
