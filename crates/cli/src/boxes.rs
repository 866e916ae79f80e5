//! The commands that look at and act on existing boxes: `ps`, `inspect`, `stats`,
//! `events`, `kill`, `wait`, `freeze`, `thaw`, `rm`. Each reads the box record from the
//! state directory, checks the box is still the process it recorded, and goes through
//! the box's backend for its cgroup.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use isol_ns_core::boxes::{self, BoxRecord, BoxState, BoxUser, Exit, NsInfo, ProcessId};
use isol_ns_core::security::SecurityPolicy;
use isol_ns_core::state::{RecordKind, StateDir};
use isol_ns_core::units::format_size;
use isol_ns_core::{Cgroup, CgroupLocation, Resources, Stats};
use serde::Serialize;

use crate::opts;
use crate::render::{command_line, outln, print_rows, print_table};

/// Reads the record of box `name`, or fails saying there is none.
pub fn load(state: &StateDir, name: &str) -> Result<BoxRecord> {
    BoxRecord::load(state, name)?.with_context(|| format!("box {name}: no such box (see isol ps)"))
}

/// Opens the box's cgroup through its backend.
fn open_cgroup(rec: &BoxRecord) -> Result<Box<dyn Cgroup>> {
    rec.open_cgroup(crate::host()?)
        .with_context(|| format!("open the cgroup of box {}", rec.name))
}

/// One row of `isol ps --json`. Field names are stable; fields are only ever added.
#[derive(Serialize)]
pub struct PsEntry {
    pub name: String,
    /// Host pid of the box's first process.
    pub pid: u32,
    pub state: BoxState,
    pub pod: Option<String>,
    pub backend: String,
    /// The cgroup's path relative to its hierarchy root (`CgroupLocation::primary`).
    pub cgroup: Option<String>,
    pub command: Vec<String>,
    pub created: String,
    pub detached: bool,
    /// The status a shell would see, once exited.
    pub exit_status: Option<i32>,
}

impl PsEntry {
    fn of(rec: &BoxRecord, state: BoxState) -> PsEntry {
        PsEntry {
            name: rec.name.clone(),
            pid: rec.process.pid,
            state,
            pod: rec.pod.clone(),
            backend: rec.backend.clone(),
            cgroup: rec.cgroup.primary().map(|p| p.to_string()),
            command: rec.command.clone(),
            created: rec.created.clone(),
            detached: rec.detached,
            exit_status: rec.exit.map(|e| e.status),
        }
    }
}

/// `isol inspect --json`: the `ps` fields and everything else isol recorded.
#[derive(Serialize)]
pub struct Inspect {
    #[serde(flatten)]
    pub summary: PsEntry,
    pub hostname: Option<String>,
    /// Kind → inode (and path where persisted), read from the box while it runs.
    pub namespaces: BTreeMap<String, NsInfo>,
    /// The kinds the box created anew.
    pub new_namespaces: Vec<String>,
    /// Hierarchy → path.
    pub cgroup_location: CgroupLocation,
    /// The cgroup's directories.
    pub cgroup_dirs: Vec<PathBuf>,
    pub resources: Resources,
    pub supervisor_pid: u32,
    pub exit: Option<Exit>,
    pub finished: Option<String>,
    pub log: Option<PathBuf>,
    /// The hardening in force (absent for a record from before isol had it).
    pub security: Option<SecurityPolicy>,
    /// `--user`, when given.
    pub user: Option<BoxUser>,
    /// `--env` (`K=V`), over PATH, HOME and TERM, or over the caller's environment
    /// (`inherit_env`).
    pub env: Vec<String>,
    pub inherit_env: bool,
    /// `--workdir`, when given.
    pub workdir: Option<PathBuf>,
}

/// A live box and its state.
type Listed = (BoxRecord, BoxState);

/// Reads every box record, cleaning up the dead ones (pid gone or reused and nobody
/// recorded an exit) and what writers that died left in the state directory. Holds the
/// lock while it reads. The live boxes, and a line for each thing removed; with `tell`,
/// each dead box removed is said on stderr too (its output went with it).
fn all_boxes(state: &StateDir, tell: bool) -> Result<(Vec<Listed>, Vec<String>)> {
    let mut out = Vec::new();
    let mut dead = Vec::new();
    let mut removed = Vec::new();
    let host = crate::host()?;
    {
        let _lock = state.lock()?;
        for kind in RecordKind::ALL {
            for path in state.remove_leftovers(kind)? {
                removed.push(format!("removed {}", path.display()));
            }
        }
        for (name, rec) in BoxRecord::list(state)? {
            let rec = match rec {
                Ok(rec) => rec,
                // One damaged record must not hide every other box. It names no cgroup
                // isol could trust, so it is left for the user to look at and remove.
                Err(e) => {
                    eprintln!("isol: {e}; skipped (isol rm -f {name} removes the record)");
                    continue;
                }
            };
            match rec.state(host) {
                BoxState::Dead => dead.push(rec),
                st => out.push((rec, st)),
            }
        }
    }
    for rec in dead {
        match rec.remove(state, host, None) {
            Ok(()) => {
                if tell {
                    eprintln!(
                        "isol: box {} was dead (its isol was killed before it could record the end): removed, with its cgroup and output",
                        rec.name
                    );
                }
                removed.push(format!("removed dead box {}", rec.name));
            }
            Err(e) => eprintln!("isol: {e:#}"),
        }
    }
    Ok((out, removed))
}

/// `isol gc`: what `ps` cleans up on the way, said line by line.
pub fn gc(state: &StateDir) -> Result<u8> {
    let (_, removed) = all_boxes(state, false)?;
    for line in removed {
        outln!("{line}")?;
    }
    Ok(0)
}

/// `isol ps`.
pub fn ps(state: &StateDir, json: bool) -> Result<u8> {
    let rows: Vec<PsEntry> = all_boxes(state, true)?
        .0
        .iter()
        .map(|(r, s)| PsEntry::of(r, *s))
        .collect();
    if json {
        outln!("{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(0);
    }
    let mut table = vec![[
        "NAME".to_string(),
        "PID".into(),
        "STATE".into(),
        "POD".into(),
        "CREATED".into(),
        "CGROUP".into(),
        "COMMAND".into(),
    ]];
    for r in &rows {
        let state = match r.exit_status {
            Some(s) => format!("exited ({s})"),
            None => r.state.to_string(),
        };
        table.push([
            r.name.clone(),
            r.pid.to_string(),
            state,
            r.pod.clone().unwrap_or_else(|| "-".into()),
            r.created.clone(),
            r.cgroup.clone().unwrap_or_default(),
            command_line(&r.command),
        ]);
    }
    print_table(&table)?;
    Ok(0)
}

/// `isol inspect`.
pub fn inspect(state: &StateDir, name: &str, json: bool) -> Result<u8> {
    let rec = load(state, name)?;
    let host = crate::host()?;
    let st = rec.state(host);
    let out = Inspect {
        summary: PsEntry::of(&rec, st),
        hostname: rec.hostname.clone(),
        namespaces: rec
            .namespaces_now()
            .into_iter()
            .map(|(k, ns)| (k.to_string(), ns))
            .collect(),
        new_namespaces: rec.new_namespaces.iter().map(|k| k.to_string()).collect(),
        cgroup_location: rec.cgroup.clone(),
        cgroup_dirs: rec.cgroup_dirs(host),
        resources: rec.resources.clone(),
        supervisor_pid: rec.supervisor.pid,
        exit: rec.exit,
        finished: rec.finished.clone(),
        log: rec.log.clone(),
        security: rec.security.clone(),
        user: rec.user,
        env: rec.env.clone(),
        inherit_env: rec.inherit_env,
        workdir: rec.workdir.clone(),
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
        return Ok(0);
    }
    print_inspect(&out)?;
    Ok(0)
}

/// `isol inspect` for people: the summary, then namespaces, cgroup and hardening.
fn print_inspect(out: &Inspect) -> Result<()> {
    let s = &out.summary;
    outln!("name:       {}", s.name)?;
    outln!("state:      {}", s.state)?;
    outln!("pid:        {}", s.pid)?;
    outln!("command:    {}", command_line(&s.command))?;
    outln!("created:    {}", s.created)?;
    if let Some(f) = &out.finished {
        outln!("finished:   {f}")?;
    }
    if let Some(e) = &out.exit {
        outln!(
            "exit:       {}{}",
            e.status,
            match (e.oom_killed, e.signal) {
                (true, Some(libc::SIGKILL)) => " (OOM killed)",
                (true, _) => " (the OOM killer ended a process of the box)",
                (false, _) => "",
            }
        )?;
    }
    outln!("pod:        {}", s.pod.as_deref().unwrap_or("-"))?;
    outln!("hostname:   {}", out.hostname.as_deref().unwrap_or("-"))?;
    if let Some(u) = out.user {
        match u.gid {
            Some(g) => outln!("user:       {}:{g}", u.uid)?,
            None => outln!("user:       {}", u.uid)?,
        }
    }
    // The names alone: values may be secrets, and `--json` has them.
    let base = if out.inherit_env {
        "the caller's"
    } else {
        "PATH, HOME, TERM"
    };
    let given: Vec<&str> = out
        .env
        .iter()
        .filter_map(|e| e.split_once('='))
        .map(|(k, _)| k)
        .collect();
    if given.is_empty() {
        outln!("env:        {base}")?;
    } else {
        outln!("env:        {base}; given: {}", given.join(", "))?;
    }
    if let Some(w) = &out.workdir {
        outln!("workdir:    {}", w.display())?;
    }
    outln!("backend:    {}", s.backend)?;
    if !out.resources.is_empty() {
        outln!("limits:     {}", crate::render::limits_line(&out.resources))?;
    }
    if let Some(log) = &out.log {
        outln!("output:     {}", log.display())?;
    }
    outln!()?;
    let mut rows = vec![["NAMESPACE".to_string(), "INODE".into(), "".into()]];
    for (k, ns) in &out.namespaces {
        let how = match (&ns.path, ns.new) {
            (Some(p), _) => format!("new, persisted at {}", p.display()),
            (None, true) => "new".into(),
            (None, false) => "shared".into(),
        };
        rows.push([k.clone(), ns.inode.to_string(), how]);
    }
    print_table(&rows)?;
    outln!()?;
    let mut rows = vec![["HIERARCHY".to_string(), "CGROUP".into()]];
    for (k, p) in &out.cgroup_location.0 {
        rows.push([k.clone(), p.to_string()]);
    }
    print_table(&rows)?;
    if !out.resources.is_empty() {
        outln!()?;
        outln!(
            "resources:  {}",
            serde_json::to_string(&out.resources).unwrap_or_default()
        )?;
    }
    if let Some(p) = &out.security {
        outln!()?;
        for (what, value) in crate::security::describe(p) {
            outln!("{what:<17}{value}")?;
        }
    }
    Ok(())
}

/// `isol stats --json`.
#[derive(Serialize)]
pub struct StatsOut {
    pub name: String,
    pub state: BoxState,
    #[serde(flatten)]
    pub stats: Stats,
}

/// `isol stats`.
pub fn stats(state: &StateDir, name: &str, json: bool, watch: bool) -> Result<u8> {
    let rec = load(state, name)?;
    let host = crate::host()?;
    let cg = open_cgroup(&rec)?;
    let mut header = true;
    loop {
        let st = match rec.state(host) {
            s @ (BoxState::Running | BoxState::Frozen) => s,
            // Ended since the record was read: what its supervisor has recorded since.
            s => match BoxRecord::load(state, name)? {
                Some(now) => now.state(host),
                None => s,
            },
        };
        let stats = cg.stats()?;
        let out = StatsOut {
            name: rec.name.clone(),
            state: st,
            stats,
        };
        if json {
            if watch {
                outln!("{}", serde_json::to_string(&out)?)?;
            } else {
                outln!("{}", serde_json::to_string_pretty(&out)?)?;
            }
        } else {
            print_stats(&out, header)?;
            header = false;
        }
        if !watch || !matches!(st, BoxState::Running | BoxState::Frozen) {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn print_stats(out: &StatsOut, header: bool) -> Result<()> {
    let mem = out.stats.memory.as_ref();
    let mem_use = mem.map(|m| format_size(m.current)).unwrap_or("-".into());
    let mem_max = mem
        .and_then(|m| m.max)
        .map(|l| match l.value() {
            Some(v) => format_size(v),
            None => "max".into(),
        })
        .unwrap_or("-".into());
    let cpu = out
        .stats
        .cpu
        .map(|c| format!("{:.2}s", c.usage_usec as f64 / 1e6))
        .unwrap_or("-".into());
    let pids = out
        .stats
        .pids
        .map(|p| match p.max.and_then(|m| m.value()) {
            Some(m) => format!("{} / {m}", p.current),
            None => p.current.to_string(),
        })
        .unwrap_or("-".into());
    let oom = mem
        .map(|m| m.events.oom_kill.to_string())
        .unwrap_or("-".into());
    // The header counts for the widths even when printed once, above a --watch.
    let mut rows = vec![[
        "NAME".to_string(),
        "STATE".into(),
        "MEMORY".into(),
        "LIMIT".into(),
        "CPU TIME".into(),
        "PIDS".into(),
        "OOM KILLS".into(),
    ]];
    rows.push([
        out.name.clone(),
        out.state.to_string(),
        mem_use,
        mem_max,
        cpu,
        pids,
        oom,
    ]);
    print_rows(&rows, usize::from(!header))
}

/// `isol logs`: the output file of a detached box; with `follow`, what it writes next
/// too, until its process is gone (then what is left in the file).
pub fn logs(state: &StateDir, name: &str, follow: bool) -> Result<u8> {
    use std::io::{Read, Write};
    let rec = load(state, name)?;
    let Some(path) = &rec.log else {
        bail!("box {name} has no output file: only a detached box (run -d) has one, and a foreground box's output goes where its isol's went");
    };
    let mut file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; 64 << 10];
    let mut ended = !follow;
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("read {}", path.display()))?;
        if n > 0 {
            out.write_all(&buf[..n])
                .context("write to standard output")?;
            continue;
        }
        if ended {
            return Ok(0);
        }
        out.flush().context("write to standard output")?;
        // Read once more after the process is gone: what it wrote last.
        ended = !rec.process.alive();
        if !ended {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `isol events`: the backend's event stream, then the box's exit.
pub fn events(state: &StateDir, name: &str, json: bool) -> Result<u8> {
    let rec = load(state, name)?;
    let emit_at = |time: String, event: serde_json::Value| -> Result<()> {
        if json {
            let mut v = serde_json::json!({ "time": time, "box": name });
            if let (Some(o), serde_json::Value::Object(e)) = (v.as_object_mut(), event) {
                o.extend(e);
            }
            outln!("{v}")?;
        } else {
            let kind = event["event"].as_str().unwrap_or("?").to_string();
            let mut line = format!("{time} {name} {kind}");
            for (k, v) in event.as_object().into_iter().flatten() {
                if k != "event" {
                    line.push_str(&format!(" {k}={v}"));
                }
            }
            outln!("{line}")?;
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        Ok(())
    };
    let exit_event = |exit: Option<Exit>| {
        let mut v = serde_json::json!({ "event": "exit" });
        if let Some(e) = exit {
            v["status"] = e.status.into();
            v["oom_killed"] = e.oom_killed.into();
        }
        v
    };
    match rec.liveness() {
        BoxState::Running => {}
        // Its end, as recorded: what a watcher would have seen last.
        _ if rec.exit.is_some() => {
            let time = rec.finished.clone().unwrap_or_else(boxes::now_rfc3339);
            emit_at(time, exit_event(rec.exit))?;
            return Ok(0);
        }
        _ => bail!("box {name} is not running"),
    }
    let emit = |event: serde_json::Value| emit_at(boxes::now_rfc3339(), event);
    let cg = open_cgroup(&rec)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the event loop")?;
    rt.block_on(async {
        let mut stream = cg.events()?;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                ev = stream.next() => match ev {
                    Some(Ok(ev)) => emit(serde_json::to_value(&ev)?)?,
                    Some(Err(e)) => return Err(anyhow::Error::from(e).context("read the box's events")),
                    None => {}
                },
                _ = tick.tick() => {
                    if !rec.process.alive() {
                        // What the stream has yet to say (an OOM kill that v1 counted
                        // after its notification, the cgroup emptying) comes first.
                        while let Ok(Some(Ok(ev))) =
                            tokio::time::timeout(Duration::from_millis(150), stream.next()).await
                        {
                            emit(serde_json::to_value(&ev)?)?;
                        }
                        // Let the supervisor record the status.
                        let deadline = Instant::now() + Duration::from_secs(2);
                        let mut exit = None;
                        while Instant::now() < deadline {
                            match BoxRecord::load(state, name) {
                                Ok(Some(r)) if r.exit.is_some() => { exit = r.exit; break; }
                                Ok(Some(r)) if r.supervisor.alive() => {}
                                // It may have written the status and exited since the read.
                                Ok(Some(_)) => {
                                    exit = BoxRecord::load(state, name).ok().flatten().and_then(|r| r.exit);
                                    break;
                                }
                                _ => break,
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        emit(exit_event(exit))?;
                        return Ok(0);
                    }
                }
            }
        }
    })
}

/// `isol kill`.
pub fn kill(state: &StateDir, name: &str, signal: &str, timeout: Option<f64>) -> Result<u8> {
    // 0, as kill(1) takes it: only whether the box runs (exit 0), or an error.
    let probe = signal.trim() == "0";
    let sig = if probe {
        None
    } else {
        Some(opts::signal(signal)?)
    };
    if let Some(t) = timeout.filter(|t| !(0.0..=1e6).contains(t)) {
        bail!("timeout: {t} is not a number of seconds from 0 to 1000000");
    }
    if probe && timeout.is_some() {
        bail!("signal 0 only asks whether the box runs: leave out --timeout");
    }
    let rec = load(state, name)?;
    if rec.liveness() != BoxState::Running {
        bail!("box {name} is not running");
    }
    let Some(sig) = sig else {
        return Ok(0);
    };
    // A frozen box takes SIGKILL only once thawed on v1 (v2 lets it through): thawed
    // after it, as `docker kill` unpauses, so that the kill is not left pending.
    let thaw_after =
        sig == nix::sys::signal::Signal::SIGKILL && rec.state(crate::host()?) == BoxState::Frozen;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(rec.process.pid as i32), sig)
        .with_context(|| format!("send {sig} to box {name} (pid {})", rec.process.pid))?;
    if thaw_after {
        open_cgroup(&rec)?
            .thaw()
            .with_context(|| format!("thaw box {name} so that SIGKILL ends it"))?;
    }
    if let Some(t) = timeout {
        let deadline = Instant::now() + Duration::from_secs_f64(t);
        while rec.process.alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if rec.process.alive() {
            let cg = open_cgroup(&rec)?;
            let _ = cg.thaw();
            cg.kill()
                .with_context(|| format!("kill box {name} after {t} s"))?;
        }
    }
    Ok(0)
}

/// `isol wait`: the box's exit status, passed through.
pub fn wait(state: &StateDir, name: &str) -> Result<u8> {
    load(state, name)?;
    loop {
        let Some(rec) = BoxRecord::load(state, name)? else {
            bail!("box {name} is gone: removed (isol rm -f, or its pod's rm -f) before it was seen to end, or a foreground box, whose status its isol run returns");
        };
        if let Some(e) = rec.exit {
            return Ok((e.status & 0xff) as u8);
        }
        if rec.liveness() == BoxState::Dead {
            // The supervisor may have recorded the status and exited since the read.
            if let Some(e) = BoxRecord::load(state, name)?.and_then(|r| r.exit) {
                return Ok((e.status & 0xff) as u8);
            }
            bail!("box {name} ended and nobody recorded its status (its supervisor is gone)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `isol freeze` / `isol thaw`.
pub fn freeze(state: &StateDir, name: &str, frozen: bool) -> Result<u8> {
    let rec = load(state, name)?;
    if rec.liveness() != BoxState::Running {
        bail!("box {name} is not running");
    }
    let cg = open_cgroup(&rec)?;
    if frozen {
        cg.freeze().with_context(|| format!("freeze box {name}"))?;
    } else {
        cg.thaw().with_context(|| format!("thaw box {name}"))?;
    }
    Ok(0)
}

/// `isol rm`.
pub fn rm(state: &StateDir, names: &[String], force: bool) -> Result<u8> {
    for name in names {
        let rec = match load(state, name) {
            Ok(rec) => rec,
            Err(e) if force && unreadable(&e) => {
                let _lock = state.lock()?;
                state.remove(RecordKind::Box, name)?;
                eprintln!("isol: {e:#}; removed the record (whatever it named was not cleaned up)");
                continue;
            }
            Err(e) => return Err(e),
        };
        if rec.liveness() == BoxState::Running {
            if !force {
                bail!("box {name} is running (stop it with `isol kill {name}`, or use `isol rm -f {name}`)");
            }
            if let Ok(cg) = open_cgroup(&rec) {
                // A frozen task cannot die until thawed.
                let _ = cg.thaw();
                cg.kill().with_context(|| format!("kill box {name}"))?;
            }
        }
        rec.remove(state, crate::host()?, None)?;
        wait_for_supervisor(&rec);
    }
    Ok(0)
}

/// Whether `e` is a record that exists but cannot be parsed.
fn unreadable(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<isol_ns_core::Error>(),
        Some(isol_ns_core::Error::Parse { .. })
    )
}

/// Waits (up to 5 s) for a detached box's supervisor to notice the box is gone and exit,
/// so that nothing of the box is left when `rm` returns.
pub fn wait_for_supervisor(rec: &BoxRecord) {
    if !rec.detached || rec.supervisor == ProcessId::me() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while rec.supervisor.alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}
