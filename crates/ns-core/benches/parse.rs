//! Micro-benchmarks of the parsers every cgroup read and every CLI argument goes
//! through: human units (`parse_size`, `parse_cpus`, `CpuList`), the flat-keyed and
//! nested-keyed cgroup file formats, and `/proc/self/mountinfo`.
//!
//! The inputs are real: `fixtures/memory.stat` is a v1 `memory.stat` and
//! `fixtures/mountinfo.txt` this development host's `/proc/self/mountinfo`, both copied
//! from the machine the benchmarks were written on; `fixtures/io.stat` is an `io.stat`
//! in the kernel's format (Documentation/admin-guide/cgroup-v2.rst, "IO Interface
//! Files") with that machine's block device numbers, since its cgroup2 hierarchy has no
//! io controller. `cargo bench -p isol-ns-core --bench parse`.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use isol_ns_core::parse;
use isol_ns_core::units::{parse_cpus, parse_size, CpuList};

const MEMORY_STAT: &str = include_str!("fixtures/memory.stat");
const IO_STAT: &str = include_str!("fixtures/io.stat");
const MOUNTINFO: &str = include_str!("fixtures/mountinfo.txt");

fn units(c: &mut Criterion) {
    let mut g = c.benchmark_group("units");
    g.bench_function("parse_size 64M", |b| {
        b.iter(|| parse_size("memory", black_box("64M")).unwrap())
    });
    g.bench_function("parse_size 1.5GiB", |b| {
        b.iter(|| parse_size("memory", black_box("1.5GiB")).unwrap())
    });
    g.bench_function("parse_size max", |b| {
        b.iter(|| parse_size("memory", black_box("max")).unwrap())
    });
    g.bench_function("parse_cpus 1.5", |b| {
        b.iter(|| parse_cpus("cpus", black_box("1.5")).unwrap())
    });
    g.bench_function("CpuList 0-3,8,10-11", |b| {
        b.iter(|| CpuList::parse("cpuset", black_box("0-3,8,10-11")).unwrap())
    });
    g.bench_function("CpuList 0-127", |b| {
        b.iter(|| CpuList::parse("cpuset", black_box("0-127")).unwrap())
    });
    g.finish();
}

fn files(c: &mut Criterion) {
    let mut g = c.benchmark_group("files");
    let path = Path::new("memory.stat");
    assert!(parse::flat_keyed(path, MEMORY_STAT).unwrap().len() > 10);
    g.bench_function("flat_keyed memory.stat", |b| {
        b.iter(|| parse::flat_keyed(path, black_box(MEMORY_STAT)).unwrap())
    });
    let path = Path::new("io.stat");
    assert_eq!(parse::nested_keyed(path, IO_STAT).unwrap().len(), 4);
    g.bench_function("nested_keyed io.stat", |b| {
        b.iter(|| parse::nested_keyed(path, black_box(IO_STAT)).unwrap())
    });
    let path = Path::new("/proc/self/mountinfo");
    assert!(parse::mountinfo(path, MOUNTINFO).unwrap().len() > 5);
    g.bench_function("mountinfo", |b| {
        b.iter(|| parse::mountinfo(path, black_box(MOUNTINFO)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, units, files);
criterion_main!(benches);
