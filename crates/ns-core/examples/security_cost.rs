//! What hardening costs a spawn: N rounds (default 200) of spawns of `/bin/true` in a
//! container plan (new mnt, pid, net, ipc, uts), waited for one by one, without a policy
//! and with [`SecurityPolicy::default`] (capabilities, no_new_privs, the seccomp filter,
//! compiled once and installed per spawn, masked and read-only paths); medians,
//! interleaved so drift on a shared machine hits both alike. Device rules are left out:
//! they cost a cgroup, which is the same with or without a policy.
//!
//! The last line spawns without a policy again: its "cost" is the error of the
//! measurement (spawns of new net namespaces vary by hundreds of µs on a shared VM).
//! When every spawn was counted, in a fixed rotation, it read +25 µs: each case always
//! followed the same other case, whose leftover kernel work it paid for.
//!
//! `cargo run --release -p isol-ns-core --example security_cost [-- N]` (as root).

use std::time::{Duration, Instant};

use isol_ns_core::security::SecurityPolicy;
use isol_ns_core::spawn::Command;
use isol_ns_core::{NamespacePlan, NamespaceSet};

/// Spawns of a case in a row, after which they are counted…
const WARMUP: usize = 2;
/// …and how many are.
const COUNTED: usize = 3;

fn spawn(policy: Option<&SecurityPolicy>) -> Duration {
    let start = Instant::now();
    let mut c = Command::new("/bin/true");
    c.namespaces(NamespacePlan::new_kinds(
        "mnt,pid,net,ipc,uts".parse::<NamespaceSet>().unwrap(),
    ));
    if let Some(p) = policy {
        c.security(p.clone());
    }
    assert!(c.spawn().unwrap().wait().unwrap().success());
    start.elapsed()
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let full = SecurityPolicy::default();
    let mut no_paths = full.clone();
    no_paths.masked_paths.clear();
    no_paths.readonly_paths.clear();
    no_paths.read_only_host = false;
    let mut paths_only = SecurityPolicy::privileged();
    paths_only.masked_paths = full.masked_paths.clone();
    paths_only.readonly_paths = full.readonly_paths.clone();
    paths_only.read_only_host = true;
    let mut no_seccomp = no_paths.clone();
    no_seccomp.seccomp = isol_ns_core::security::SeccompProfile::Unconfined;
    let cases: [(&str, Option<&SecurityPolicy>); 6] = [
        ("no policy", None),
        ("default hardening", Some(&full)),
        ("  without masked/read-only paths", Some(&no_paths)),
        ("  masked/read-only paths alone", Some(&paths_only)),
        ("  capabilities and no_new_privs alone", Some(&no_seccomp)),
        ("no policy again (noise)", None),
    ];
    for (_, p) in &cases {
        spawn(*p);
    }
    // Paired: each round runs every case, in a rotating order, as a run of spawns of its
    // own, the first few not counted: a spawn leaves work to the kernel (creds and
    // filters freed after an RCU grace period, the net namespace torn down by a worker)
    // that slows the next one, so a spawn is counted only after spawns of its own kind,
    // as in a stream of them. A case's cost is the median of its times minus the
    // no-policy times of the same round and place in the run.
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(n * COUNTED); cases.len()];
    for round in 0..n {
        for k in 0..cases.len() {
            let i = (round + k) % cases.len();
            for j in 0..WARMUP + COUNTED {
                let t = spawn(cases[i].1).as_secs_f64() * 1e6;
                if j >= WARMUP {
                    times[i].push(t);
                }
            }
        }
    }
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "{n} rounds of spawning /bin/true (mnt pid net ipc uts) + wait, {COUNTED} of {} \
         counted per case and round, medians:",
        WARMUP + COUNTED
    );
    for (i, (label, _)) in cases.iter().enumerate() {
        let diffs: Vec<f64> = times[i].iter().zip(&times[0]).map(|(a, b)| a - b).collect();
        println!(
            "  {label:<38} {:>8.1} µs   paired cost {:>+7.1} µs",
            med(times[i].clone()),
            med(diffs)
        );
    }
}
