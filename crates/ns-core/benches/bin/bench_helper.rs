//! The library side of `cargo xtask bench`: a small program the harness runs as a
//! "tool", the way it runs `crun` or `unshare`, so the library's spawn is measured with
//! the same clock, the same process start-up and the same `wait4` as everything else.
//!
//! - `bench_helper spawn` — one spawn of `/bin/true` with what `isol run --memory 64M
//!   --pids 64` asks for: new mnt, pid, net, ipc, uts and cgroup namespaces and a fresh
//!   cgroup (beneath our own, through the backend that fits the host) with memory max
//!   64M and pids max 64; waits, destroys the cgroup, exits with the command's code.
//!   This stands in for `isol run` until the CLI has it, and stays next to it
//!   afterwards so that the CLI's own cost (state records, argument parsing) shows.
//! - `bench_helper cgroup N` — for each registered backend: N rounds of create (with
//!   the same limits) + apply + destroy, one line per round: `BACKEND<TAB>NANOS`; a
//!   backend that does not fit the host prints `skip<TAB>BACKEND<TAB>REASON` instead.
//!
//! Built by the harness with `cargo build --release -p isol-ns-core --example
//! bench_helper`; as root.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use isol_ns_core::spawn::{CgroupSpec, Command};
use isol_ns_core::units::Limit;
use isol_ns_core::{registry, HostInfo, NamespacePlan, Parent, Resources};

/// memory max 64M, pids max 64: the limits every tool in the benchmark gets.
fn limits() -> Resources {
    let mut r = Resources::default();
    r.memory.max = Some(Limit::Value(64 << 20));
    r.pids.max = Some(Limit::Value(64));
    r
}

fn spawn() -> Result<ExitCode, String> {
    let host = HostInfo::probe().map_err(|e| format!("probe the host: {e}"))?;
    let backend: Arc<dyn isol_ns_core::Backend> =
        Arc::from(registry::open("auto", &host).map_err(|e| format!("open backend: {e}"))?);
    let mut cmd = Command::new("/bin/true");
    cmd.namespaces(NamespacePlan::container())
        .cgroup(CgroupSpec::Create {
            backend,
            parent: Parent::Own,
            name: format!("isol-bench-lib-{}", std::process::id()),
            resources: limits(),
        });
    let mut child = cmd.spawn().map_err(|e| format!("spawn: {e}"))?;
    let status = child.wait().map_err(|e| format!("wait: {e}"))?;
    if let Some(cg) = child.cgroup() {
        cg.destroy().map_err(|e| format!("destroy: {e}"))?;
    }
    Ok(ExitCode::from(status.code().unwrap_or(128) as u8))
}

fn cgroup(rounds: u32) -> Result<ExitCode, String> {
    let host = HostInfo::probe().map_err(|e| format!("probe the host: {e}"))?;
    let r = limits();
    for plugin in registry::backends() {
        let fit = (plugin.fit)(&host);
        if !fit.usable {
            println!("skip\t{}\t{}", plugin.name, fit.reason);
            continue;
        }
        let backend = (plugin.open)(&host).map_err(|e| format!("open {}: {e}", plugin.name))?;
        backend
            .check(&r)
            .map_err(|e| format!("{}: check limits: {e}", plugin.name))?;
        let name = format!("isol-bench-cg-{}", std::process::id());
        for _ in 0..rounds {
            let start = Instant::now();
            let cg = backend
                .create(&Parent::Own, &name, &r)
                .map_err(|e| format!("{}: create: {e}", plugin.name))?;
            cg.apply(&r)
                .map_err(|e| format!("{}: apply: {e}", plugin.name))?;
            cg.destroy()
                .map_err(|e| format!("{}: destroy: {e}", plugin.name))?;
            println!("{}\t{}", plugin.name, start.elapsed().as_nanos());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    // Link both backends so that the registry sees them.
    let _ = (isol_cgroup_v1::NAME, isol_cgroup_v2::NAME);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["spawn"] => spawn(),
        ["cgroup", n] => n
            .parse()
            .map_err(|e| format!("rounds {n:?}: {e}"))
            .and_then(cgroup),
        _ => Err("usage: bench_helper spawn | bench_helper cgroup ROUNDS".into()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bench_helper: {e}");
            ExitCode::from(125)
        }
    }
}
