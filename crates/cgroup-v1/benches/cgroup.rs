//! Micro-benchmarks of a cgroup's life on the v1 backend: create (with memory max 64M
//! and pids max 64) + destroy, apply alone, and stats, beneath the bench process's own
//! cgroup in every hierarchy.
//!
//! Needs root and a legacy or hybrid host. Benchmarks are not tests: without either, it
//! says why on stderr and measures nothing. `cargo bench -p isol-cgroup-v1 --bench
//! cgroup`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use isol_ns_core::units::Limit;
use isol_ns_core::{HostInfo, Parent, Resources};

fn limits() -> Resources {
    let mut r = Resources::default();
    r.memory.max = Some(Limit::Value(64 << 20));
    r.pids.max = Some(Limit::Value(64));
    r
}

fn cgroup(c: &mut Criterion) {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("cgroup-v1 bench: skipped, needs root");
        return;
    }
    let host = match HostInfo::probe() {
        Ok(h) => h,
        Err(e) => return eprintln!("cgroup-v1 bench: skipped, cannot probe the host: {e}"),
    };
    let plugin = isol_cgroup_v1::plugin();
    let fit = (plugin.fit)(&host);
    if !fit.usable {
        return eprintln!("cgroup-v1 bench: skipped, {}", fit.reason);
    }
    let backend = (plugin.open)(&host).expect("open the cgroup-v1 backend");
    let r = limits();
    let name = format!("isol-bench-v1-{}", std::process::id());

    let mut g = c.benchmark_group("cgroup-v1");
    g.bench_function("create+destroy (memory 64M, pids 64)", |b| {
        b.iter(|| {
            let cg = backend.create(&Parent::Own, &name, &r).unwrap();
            cg.destroy().unwrap();
        })
    });
    g.bench_function("create+apply+destroy", |b| {
        b.iter(|| {
            let cg = backend
                .create(&Parent::Own, &name, &Resources::default())
                .unwrap();
            cg.apply(&r).unwrap();
            cg.destroy().unwrap();
        })
    });
    let cg = backend.create(&Parent::Own, &name, &r).unwrap();
    g.bench_function("apply (memory 64M, pids 64)", |b| {
        b.iter(|| cg.apply(black_box(&r)).unwrap())
    });
    g.bench_function("stats", |b| b.iter(|| cg.stats().unwrap()));
    g.finish();
    cg.destroy().unwrap();
}

criterion_group!(benches, cgroup);
criterion_main!(benches);
