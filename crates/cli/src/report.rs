//! `isol backends` and `isol check`: what the registry and host detection found,
//! rendered as aligned text or JSON.

use isol_ns_core::{registry, HostInfo};
use serde::Serialize;

use crate::render::{outln, print_table};

#[derive(Serialize)]
struct BackendRow {
    name: &'static str,
    description: &'static str,
    usable: bool,
    preferred: bool,
    reason: String,
}

#[derive(Serialize)]
struct Selected {
    name: Option<&'static str>,
    reason: String,
}

#[derive(Serialize)]
struct BackendsReport {
    mode: isol_ns_core::CgroupMode,
    cgroup_root: std::path::PathBuf,
    backends: Vec<BackendRow>,
    selected: Selected,
}

fn gather(host: &HostInfo) -> BackendsReport {
    let backends = registry::backends()
        .into_iter()
        .map(|p| {
            let fit = (p.fit)(host);
            BackendRow {
                name: p.name,
                description: p.description,
                usable: fit.usable,
                preferred: fit.preferred,
                reason: fit.reason,
            }
        })
        .collect();
    let selected = match registry::detect(host) {
        Ok((p, fit)) => Selected {
            name: Some(p.name),
            reason: fit.reason,
        },
        Err(e) => Selected {
            name: None,
            reason: e.to_string(),
        },
    };
    BackendsReport {
        mode: host.mode,
        cgroup_root: host.cgroup_root.clone(),
        backends,
        selected,
    }
}

fn probe() -> anyhow::Result<HostInfo> {
    crate::host().cloned()
}

/// `isol backends [--json]`.
pub fn backends(json: bool) -> anyhow::Result<()> {
    let host = probe()?;
    let report = gather(&host);
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    let mut rows = vec![[
        "NAME".to_string(),
        "USABLE".into(),
        "PREFERRED".into(),
        "WHY".into(),
    ]];
    for b in &report.backends {
        rows.push([
            b.name.to_string(),
            yes_no(b.usable),
            yes_no(b.preferred),
            b.reason.clone(),
        ]);
    }
    print_table(&rows)?;
    outln!()?;
    outln!(
        "host: {} cgroups at {}",
        report.mode,
        report.cgroup_root.display()
    )?;
    match report.selected.name {
        Some(name) => outln!("isol would use {name}: {}", report.selected.reason)?,
        None => outln!("no backend fits: {}", report.selected.reason)?,
    }
    Ok(())
}

#[derive(Serialize)]
struct CheckReport<'a> {
    #[serde(flatten)]
    host: &'a HostInfo,
    controllers: Vec<String>,
    selected: Selected,
}

/// `isol check [--json]`.
pub fn check(json: bool) -> anyhow::Result<()> {
    let host = probe()?;
    let selected = gather(&host).selected;
    let report = CheckReport {
        host: &host,
        controllers: host.controllers(),
        selected,
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    outln!("kernel:      {}", host.kernel)?;
    outln!(
        "cgroup mode: {} ({})",
        host.mode,
        host.cgroup_root.display()
    )?;
    outln!("controllers: {}", report.controllers.join(" "))?;
    outln!()?;
    let mut rows = vec![[
        "HIERARCHY".to_string(),
        "MOUNTED AT".into(),
        "CONTROLLERS".into(),
        "OWN CGROUP".into(),
    ]];
    for h in &host.hierarchies {
        rows.push([
            format!("v{}", h.version),
            h.mount_point.display().to_string(),
            if h.controllers.is_empty() {
                "-".into()
            } else {
                h.controllers.join(",")
            },
            h.own_cgroup.clone().unwrap_or_else(|| "?".into()),
        ]);
    }
    print_table(&rows)?;
    outln!()?;
    let f = &host.features;
    let features = [
        ("clone3", f.clone3),
        ("CLONE_INTO_CGROUP", f.clone_into_cgroup),
        ("pidfd_open", f.pidfd_open),
        ("setns with a pidfd", f.setns_pidfd),
        ("time namespaces", f.time_ns),
        ("user namespaces", f.user_ns),
        ("cgroup.kill", f.cgroup_kill),
    ];
    let mut rows = vec![["FEATURE".to_string(), "AVAILABLE".into()]];
    rows.extend(features.iter().map(|(n, v)| [n.to_string(), yes_no(*v)]));
    print_table(&rows)?;
    outln!()?;
    match report.selected.name {
        Some(name) => outln!("isol would use {name}: {}", report.selected.reason)?,
        None => outln!("no backend fits: {}", report.selected.reason)?,
    }
    Ok(())
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}
