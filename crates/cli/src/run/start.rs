//! Starting a prepared box: claim its name in the state directory, spawn it (as a pod
//! member through its pod), and write its record. On failure nothing is left: no
//! record, no cgroup, no process.
//!
//! The state lock is *not* held across the spawn: the box's init (pid 1 of a new pid
//! namespace) never execs, so it keeps every fd isol had open, close-on-exec or not, and
//! would hold the lock's open file description — and with it the flock — for the box's
//! whole life. So the name is claimed under the lock with a placeholder record (this
//! process as the box's process: if isol dies, the placeholder reads as dead and is
//! cleaned up), and the full record replaces it once the box runs.
//!
//! The placeholder already names the cgroup the spawn will create, and the cgroup is
//! checked not to exist yet, so a crash at any point after the claim leaves a record
//! that `isol gc` (or `ps`) finds dead and that leads to everything the box made. The
//! record is removed last on every path, so no cgroup ever outlives it.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use isol_ns_core::boxes::{self, BoxRecord, BoxState, ProcessId};
use isol_ns_core::spawn::{Child, Command, Stdio};
use isol_ns_core::state::{RecordKind, StateDir};
use isol_ns_core::HostInfo;

use super::{pids_hint, terminal, Prepared};

/// Claims the name, spawns the box and writes its record.
pub(super) fn start(
    state: &StateDir,
    mut p: Prepared,
    detached: bool,
) -> Result<(Child, BoxRecord)> {
    let host = crate::host()?;
    let mut rec = placeholder(&p, detached);
    claim(state, host, &rec)?;
    let name = p.name.clone();
    let unclaim = |state: &StateDir| {
        let _lock = state.lock();
        let _ = state.remove(RecordKind::Box, &name);
    };
    let child = match spawn(state, &mut p, detached) {
        Ok((child, log)) => {
            rec.log = log;
            child
        }
        Err(e) => {
            unclaim(state);
            return Err(e);
        }
    };
    let written = rec.record_child(&child).and_then(|()| {
        let _lock = state.lock()?;
        state.write(&rec)
    });
    if let Err(e) = written {
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
        if let Some(cg) = child.cgroup() {
            let _ = cg.destroy();
        }
        unclaim(state);
        return Err(e.into());
    }
    Ok((child, rec))
}

/// Writes the placeholder `rec` under the lock, once no live box has the name and no
/// cgroup is where the box's will be. A dead box of the same name is cleaned up first.
fn claim(state: &StateDir, host: &HostInfo, rec: &BoxRecord) -> Result<()> {
    let name = &rec.name;
    // The cgroup is looked for before the lock, which every isol on the host waits for,
    // and again under it only after a dead box of the same name was cleaned up. A cgroup
    // of this name that another program makes after the check is refused by the
    // backend's mkdir; another isol would have to claim the name first.
    let existing = |rec: &BoxRecord| rec.cgroup_dirs(host).into_iter().find(|d| d.exists());
    let mut clash = existing(rec);
    let _lock = state.lock()?;
    if let Some(old) = BoxRecord::load(state, name)? {
        if old.liveness() == BoxState::Dead {
            old.remove_dead(state, host)?;
            clash = existing(rec);
        } else {
            bail!(
                "box {name}: the name is in use (remove it with `isol rm {name}`, or choose another --name)"
            );
        }
    }
    if let Some(dir) = clash {
        return Err(
            anyhow::Error::from(isol_ns_core::Error::cgroup_exists(&dir))
                .context(format!("box {name}")),
        );
    }
    state.write(rec)?;
    Ok(())
}

/// Spawns the claimed box: a detached one's output goes to a file in its entry
/// directory (returned for the record), and the box dies with its isol or supervisor.
fn spawn(state: &StateDir, p: &mut Prepared, detached: bool) -> Result<(Child, Option<PathBuf>)> {
    let mut log = None;
    if detached {
        let (path, out, err) = open_log(state, &p.name)?;
        p.cmd
            .stdin(Stdio::Null)
            .stdout(Stdio::Fd(out))
            .stderr(Stdio::Fd(err));
        log = Some(path);
    }
    terminal::own_session(&mut p.cmd, !detached);
    // A box lives no longer than its `isol run` or its supervisor: killed with it, it
    // is found dead by the next `isol gc` or `ps`, which removes the rest.
    p.cmd.die_with_parent();
    let spawned = match p.pod_handle.as_mut() {
        // Claims the member name in the pod record under the lock, joins the pod's
        // namespaces, creates the member cgroup beneath the pod's.
        Some(pod) => {
            let cmd = std::mem::replace(&mut p.cmd, Command::new("/"));
            pod.add_member(&p.name, cmd, &p.resources)
        }
        None => p.cmd.spawn(),
    };
    let child = spawned.map_err(|e| pids_hint(e, &p.resources))?;
    Ok((child, log))
}

/// The output file of a detached box, opened twice (stdout, stderr) for appending.
fn open_log(state: &StateDir, name: &str) -> Result<(PathBuf, OwnedFd, OwnedFd)> {
    let dir = state.create_entry_dir(RecordKind::Box, name)?;
    let path = dir.join("output");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("create {}", path.display()))?;
    let f2 = f.try_clone().context("dup the log file")?;
    Ok((path, f.into(), f2.into()))
}

/// The record that claims the name while the box is being spawned.
fn placeholder(p: &Prepared, detached: bool) -> BoxRecord {
    BoxRecord {
        name: p.name.clone(),
        process: ProcessId::me(),
        supervisor: ProcessId::me(),
        detached,
        pod: p.pod.clone(),
        command: p.argv.clone(),
        hostname: p.hostname.clone(),
        backend: p.backend.to_string(),
        cgroup: p.cgroup.clone(),
        new_namespaces: p.new,
        namespaces: BTreeMap::new(),
        resources: p.resources.clone(),
        created: boxes::now_rfc3339(),
        exit: None,
        finished: None,
        log: None,
        security: p.cmd.security_policy().cloned(),
        user: p.user,
        env: p.env.clone(),
        inherit_env: p.inherit_env,
        workdir: p.workdir.clone(),
    }
}
