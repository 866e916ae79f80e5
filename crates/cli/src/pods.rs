//! `isol pod create|ls|inspect|rm`: thin wrappers over `isol_ns_core::pod`. Members are
//! boxes started with `isol run --pod NAME`; they also have box records, so `ps`,
//! `exec`, `kill`, `rm` work on them as on any box.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use isol_ns_core::boxes::{self, BoxRecord};
use isol_ns_core::pod::{MemberState, PodState};
use isol_ns_core::state::StateDir;
use isol_ns_core::{registry, CgroupLocation, NamespaceSet, Pod, Resources};
use serde::Serialize;

use crate::cli::PodCommand;
use crate::opts;
use crate::render::print_table;

/// A row of `isol pod ls --json`.
#[derive(Serialize)]
pub struct PodRow {
    pub name: String,
    /// `ok`, or `holder-gone` when it shares pid and the holder died: it takes no members
    /// and only `pod rm -f` is left.
    pub state: PodState,
    /// The kinds its members share.
    pub shared: Vec<String>,
    pub members: Vec<String>,
    pub backend: String,
    /// The pod cgroup's path (`CgroupLocation::primary`).
    pub cgroup: Option<String>,
    pub created: String,
}

/// A member in `isol pod inspect --json`.
#[derive(Serialize)]
pub struct PodMember {
    pub name: String,
    pub pid: u32,
    pub state: MemberState,
    pub cgroup: Option<String>,
}

/// A shared namespace.
#[derive(Serialize)]
pub struct PodNs {
    pub inode: u64,
    pub path: PathBuf,
}

/// `isol pod inspect --json`.
#[derive(Serialize)]
pub struct PodInspect {
    #[serde(flatten)]
    pub summary: PodRow,
    pub namespaces: BTreeMap<String, PodNs>,
    pub holder_pid: Option<u32>,
    pub cgroup_location: CgroupLocation,
    pub cgroup_dirs: Vec<PathBuf>,
    pub resources: Resources,
    pub member_details: Vec<PodMember>,
}

fn row(r: &isol_ns_core::PodRecord) -> PodRow {
    PodRow {
        name: r.name.clone(),
        state: r.state(),
        shared: r.shared.iter().map(|k| k.to_string()).collect(),
        members: r.members.keys().cloned().collect(),
        backend: r.backend.clone(),
        cgroup: r.cgroup.primary().map(|p| p.to_string()),
        created: boxes::rfc3339(r.created),
    }
}

/// `isol pod …`.
pub fn pod(state: &StateDir, cmd: PodCommand) -> Result<u8> {
    match cmd {
        PodCommand::Create {
            name,
            share,
            limits,
            backend,
            cgroup_parent,
        } => {
            let share: NamespaceSet = opts::namespaces(&share)?;
            let resources = opts::resources(&limits)?;
            let parent = opts::cgroup_parent(&cgroup_parent)?;
            let backend = Arc::from(registry::open(&backend, crate::host()?)?);
            Pod::create(state, &name, share, &resources, backend, &parent)?;
            println!("{name}");
            Ok(0)
        }
        PodCommand::Ls { json } => ls(state, json),
        PodCommand::Inspect { name, json } => inspect(state, &name, json),
        PodCommand::Rm { name, force } => rm(state, &name, force),
    }
}

/// `isol pod ls`.
fn ls(state: &StateDir, json: bool) -> Result<u8> {
    let rows: Vec<PodRow> = Pod::list(state)?.iter().map(row).collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    let mut table = vec![[
        "NAME".to_string(),
        "STATE".into(),
        "SHARES".into(),
        "MEMBERS".into(),
        "CREATED".into(),
        "CGROUP".into(),
    ]];
    for r in rows {
        table.push([
            r.name,
            r.state.to_string(),
            r.shared.join(","),
            if r.members.is_empty() {
                "-".into()
            } else {
                r.members.join(",")
            },
            r.created,
            r.cgroup.unwrap_or_default(),
        ]);
    }
    print_table(&table)?;
    Ok(0)
}

/// `isol pod inspect`.
fn inspect(state: &StateDir, name: &str, json: bool) -> Result<u8> {
    let mut pod = Pod::open_on(state, name, crate::host()?)?;
    let members = pod.members()?;
    let rec = pod.record().clone();
    let out = PodInspect {
        summary: row(&rec),
        namespaces: rec
            .ns_files
            .iter()
            .map(|f| {
                (
                    f.kind.to_string(),
                    PodNs {
                        inode: f.inode,
                        path: f.path.clone(),
                    },
                )
            })
            .collect(),
        holder_pid: rec.holder.as_ref().map(|h| h.process.pid),
        cgroup_location: rec.cgroup.clone(),
        cgroup_dirs: pod.cgroup().dirs(),
        resources: rec.resources.clone(),
        member_details: members
            .into_iter()
            .map(|m| PodMember {
                cgroup: m.cgroup.primary().map(|p| p.to_string()),
                name: m.name,
                pid: m.pid,
                state: m.state,
            })
            .collect(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    print_inspect(out)?;
    Ok(0)
}

/// `isol pod inspect` for people: the summary, then the namespaces and the members.
fn print_inspect(out: PodInspect) -> Result<()> {
    println!("name:     {}", out.summary.name);
    if out.summary.state == PodState::HolderGone {
        println!(
            "state:    {} (its pid namespace ended with it; isol pod rm -f {} and create it again)",
            out.summary.state, out.summary.name
        );
    } else {
        println!("state:    {}", out.summary.state);
    }
    println!("shares:   {}", out.summary.shared.join(","));
    println!("backend:  {}", out.summary.backend);
    println!("cgroup:   {}", out.summary.cgroup.unwrap_or_default());
    println!("created:  {}", out.summary.created);
    if !out.resources.is_empty() {
        println!("limits:   {}", crate::render::limits_line(&out.resources));
    }
    println!();
    let mut t = vec![["NAMESPACE".to_string(), "INODE".into(), "FILE".into()]];
    for (k, ns) in &out.namespaces {
        t.push([
            k.clone(),
            ns.inode.to_string(),
            ns.path.display().to_string(),
        ]);
    }
    print_table(&t)?;
    println!();
    let mut t = vec![[
        "MEMBER".to_string(),
        "PID".into(),
        "STATE".into(),
        "CGROUP".into(),
    ]];
    for m in &out.member_details {
        t.push([
            m.name.clone(),
            m.pid.to_string(),
            format!("{:?}", m.state).to_lowercase(),
            m.cgroup.clone().unwrap_or_default(),
        ]);
    }
    print_table(&t)
}

/// `isol pod rm`: the pod, then its members' box records.
fn rm(state: &StateDir, name: &str, force: bool) -> Result<u8> {
    let host = crate::host()?;
    let mut pod = Pod::open_on(state, name, host)?;
    let members: Vec<String> = pod.record().members.keys().cloned().collect();
    pod.remove(force)?;
    // The members' box records: their processes and cgroups went with the pod.
    for m in members {
        if let Ok(Some(rec)) = BoxRecord::load(state, &m) {
            if rec.pod.as_deref() == Some(name) {
                if let Err(e) = rec.remove(state, host, None) {
                    eprintln!("isol: {e:#}");
                }
                crate::boxes::wait_for_supervisor(&rec);
            }
        }
    }
    Ok(0)
}
