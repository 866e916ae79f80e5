//! What adding a member to a pod costs next to spawning a fresh box: N of each (default
//! 100), interleaved, `/bin/true`, spawn + wait, medians.
//!
//! - pod member: `Pod::add_member` on a pod sharing net, ipc and uts — joins the pod's
//!   namespace files, new mnt, pid and cgroup namespaces, its own cgroup beneath the pod
//!   with memory and pids limits.
//! - fresh box: the container plan (new mnt, pid, net, ipc, uts, cgroup namespaces) and a
//!   new cgroup with the same memory and pids limits.
//!
//! The cgroups are removed after each timed run, outside the timing. Everything lives
//! beneath a cgroup `isol-bench-pod-<pid>` under the caller's own and a temporary state
//! directory (on tmpfs, `/dev/shm`, unless `ISOL_BENCH_STATE_IN` names another place);
//! both are removed at the end.
//!
//! `cargo run --release -p isol-ns-core --example pod_bench [-- N]` (as root).

use std::sync::Arc;
use std::time::{Duration, Instant};

use isol_ns_core::pod::{default_share, Pod};
use isol_ns_core::spawn::{CgroupSpec, Command};
use isol_ns_core::state::StateDir;
use isol_ns_core::units::Limit;
use isol_ns_core::{registry, Backend, HostInfo, NamespacePlan, Parent, Resources};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    // Link both backends so the registry sees them.
    let _ = (isol_cgroup_v1::NAME, isol_cgroup_v2::NAME);
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let host = HostInfo::probe().unwrap();
    let backend: Arc<dyn Backend> = Arc::from(registry::open("auto", &host).unwrap());
    let parent = backend
        .create(
            &Parent::Own,
            &format!("isol-bench-pod-{}", std::process::id()),
            &Resources::default(),
        )
        .unwrap();
    let at = Parent::At(parent.location().clone());
    // The state directory on tmpfs, as /run/isol is on a typical host (on this VM's ext4
    // /tmp, the record's fsync alone adds milliseconds). `ISOL_BENCH_STATE_IN` overrides.
    let state_in = std::env::var_os("ISOL_BENCH_STATE_IN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            if std::path::Path::new("/dev/shm").is_dir() {
                "/dev/shm".into()
            } else {
                std::env::temp_dir()
            }
        });
    let state_dir = tempfile::tempdir_in(&state_in).unwrap();
    let state = StateDir::open(state_dir.path()).unwrap();
    let mut pod = Pod::create(
        &state,
        "bench",
        default_share(),
        &Resources::default(),
        backend.clone(),
        &at,
    )
    .unwrap();
    let mut r = Resources::default();
    r.memory.max = Some(Limit::Value(256 << 20));
    r.pids.max = Some(Limit::Value(100));

    let member = |pod: &mut Pod, i: u32| -> Duration {
        let name = format!("m{i}");
        let start = Instant::now();
        let mut child = pod
            .add_member(&name, Command::new("/bin/true"), &r)
            .unwrap();
        assert!(child.wait().unwrap().success());
        let took = start.elapsed();
        pod.remove_member(&name, false).unwrap();
        took
    };
    let fresh = |i: u32| -> Duration {
        let start = Instant::now();
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
        let took = start.elapsed();
        child.cgroup().unwrap().destroy().unwrap();
        took
    };
    // The member's spawn alone: the same plan and cgroup by hand, without the state
    // lock and the record (JSON, fsync, rename) that add_member adds.
    let files = pod.record().ns_files.clone();
    let pod_at = Parent::At(pod.record().cgroup.clone());
    let bare = |i: u32| -> Duration {
        let start = Instant::now();
        let mut c = Command::new("/bin/true");
        for f in &files {
            c.join(isol_ns_core::NsHandle::open(f.kind, &f.path).unwrap());
        }
        c.new_namespaces("mnt,pid,cgroup".parse().unwrap())
            .cgroup(CgroupSpec::Create {
                backend: backend.clone(),
                parent: pod_at.clone(),
                name: format!("x{i}"),
                resources: r.clone(),
            });
        let mut child = c.spawn().unwrap();
        assert!(child.wait().unwrap().success());
        let took = start.elapsed();
        child.cgroup().unwrap().destroy().unwrap();
        took
    };
    // Warm up every path once.
    member(&mut pod, 0);
    fresh(0);
    bare(0);
    let (mut members, mut boxes, mut bares) = (Vec::new(), Vec::new(), Vec::new());
    for i in 1..=n {
        // Interleaved, rotating which goes first, so drift on a shared machine hits all
        // alike.
        match i % 3 {
            0 => {
                members.push(member(&mut pod, i));
                boxes.push(fresh(i));
                bares.push(bare(i));
            }
            1 => {
                boxes.push(fresh(i));
                bares.push(bare(i));
                members.push(member(&mut pod, i));
            }
            _ => {
                bares.push(bare(i));
                members.push(member(&mut pod, i));
                boxes.push(fresh(i));
            }
        }
    }
    let (m, b, x) = (median(members), median(boxes), median(bares));
    println!(
        "{n} of each, /bin/true, spawn + wait, interleaved ({}; state in {})",
        backend.name(),
        state_in.display()
    );
    println!(
        "pod member (join net,ipc,uts; new mnt,pid,cgroup; own cgroup)   median {:>9.1} µs",
        us(m)
    );
    println!(
        "fresh box (new mnt,pid,net,ipc,uts,cgroup; own cgroup)          median {:>9.1} µs",
        us(b)
    );
    println!(
        "  the member's spawn alone (no state lock, no record write)      median {:>9.1} µs",
        us(x)
    );
    println!(
        "member / fresh box: {:.2}; member's spawn alone / fresh box: {:.2}",
        m.as_secs_f64() / b.as_secs_f64(),
        x.as_secs_f64() / b.as_secs_f64()
    );
    pod.remove(true).unwrap();
    parent.destroy().unwrap();
}
