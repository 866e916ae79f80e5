//! What a spawn costs: N spawns (default 200) of `/bin/true`, waited for one by one,
//! with several plans, next to `std::process::Command` and util-linux `unshare`.
//!
//! `cargo run --release -p isol-ns-core --example spawn_bench [-- N]` (as root).

use std::sync::Arc;
use std::time::{Duration, Instant};

use isol_ns_core::spawn::{CgroupSpec, Command};
use isol_ns_core::{registry, HostInfo, NamespacePlan, Parent, Resources};

/// Runs `f` n times; prints the median and the 10th percentile (the machine may be
/// shared, so the mean says more about the neighbours than about the spawn).
fn time(label: &str, n: u32, mut f: impl FnMut(u32)) -> Duration {
    f(0); // warm up
    let mut each: Vec<Duration> = (0..n)
        .map(|i| {
            let start = Instant::now();
            f(i + 1);
            start.elapsed()
        })
        .collect();
    each.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let median = each[each.len() / 2];
    println!(
        "{label:<62} median {:>8.1} µs   p10 {:>8.1} µs",
        us(median),
        us(each[each.len() / 10])
    );
    median
}

fn main() {
    // Link both backends so the registry sees them.
    let _ = (isol_cgroup_v1::NAME, isol_cgroup_v2::NAME);
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    println!("{n} spawns of /bin/true each, spawn + wait");
    time("std::process::Command", n, |_| {
        assert!(std::process::Command::new("/bin/true")
            .status()
            .unwrap()
            .success());
    });
    time("isol, no namespace", n, |_| {
        assert!(Command::new("/bin/true")
            .spawn()
            .unwrap()
            .wait()
            .unwrap()
            .success());
    });
    time(
        "isol, container plan (mnt pid net ipc uts cgroup)",
        n,
        |_| {
            let mut c = Command::new("/bin/true");
            c.namespaces(NamespacePlan::container());
            assert!(c.spawn().unwrap().wait().unwrap().success());
        },
    );
    let host = HostInfo::probe().unwrap();
    let backend: Arc<dyn isol_ns_core::Backend> = Arc::from(registry::open("auto", &host).unwrap());
    let parent = backend
        .create(
            &Parent::Own,
            &format!("isol-bench-{}", std::process::id()),
            &Resources::default(),
        )
        .unwrap();
    let mut r = Resources::default();
    r.pids.max = Some(isol_ns_core::units::Limit::Value(100));
    let at = Parent::At(parent.location().clone());
    time(
        &format!("isol, container plan + new cgroup ({})", backend.name()),
        n,
        |i| {
            let mut c = Command::new("/bin/true");
            c.namespaces(NamespacePlan::container())
                .cgroup(CgroupSpec::Create {
                    backend: backend.clone(),
                    parent: at.clone(),
                    name: format!("b{i}"),
                    resources: r.clone(),
                });
            let mut child = c.spawn().unwrap();
            assert!(child.wait().unwrap().success());
            child.cgroup().unwrap().destroy().unwrap();
        },
    );
    time(
        &format!(
            "floor: create cgroup, std spawn, attach, wait, destroy ({})",
            backend.name()
        ),
        n,
        |i| {
            let cg = backend.create(&at, &format!("f{i}"), &r).unwrap();
            // cat blocks on its stdin until we close it, so it can be attached first.
            let mut c = std::process::Command::new("/bin/cat")
                .stdin(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            cg.attach(c.id()).unwrap();
            drop(c.stdin.take());
            assert!(c.wait().unwrap().success());
            cg.destroy().unwrap();
        },
    );
    parent.destroy().unwrap();
    if std::path::Path::new("/usr/bin/unshare").exists() {
        time(
            "unshare --pid --fork --mount --net --uts --ipc --mount-proc",
            n,
            |_| {
                let ok = std::process::Command::new("unshare")
                    .args([
                        "--pid",
                        "--fork",
                        "--mount",
                        "--net",
                        "--uts",
                        "--ipc",
                        "--mount-proc",
                        "/bin/true",
                    ])
                    .status()
                    .unwrap()
                    .success();
                assert!(ok);
            },
        );
    }
}
