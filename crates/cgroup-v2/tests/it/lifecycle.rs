//! Create, open, attach, pids, stats, kill and destroy, on the kernel.

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use isol_ns_core::units::Limit;
use isol_ns_core::{Parent, Resources};
use testkit::oracle::v2 as oracle;
use testkit::Scratch;

use crate::helper::Helper;
use crate::{dir, file, key, mount_point, testkit, NAME};

#[test]
fn create_open_attach_destroy() {
    let Some(backend) = testkit::backend(NAME, "create_open_attach_destroy") else {
        return;
    };
    let scratch = Scratch::new(backend, "life");
    let cg = scratch.child("a", &Resources::default());
    let d = dir(cg.as_ref());
    assert!(
        d.starts_with(dir(scratch.cgroup())),
        "{} beneath the scratch cgroup",
        d.display()
    );
    assert_eq!(cg.backend(), "cgroup-v2");
    assert_eq!(cg.location().get("unified"), Some(cg.path()));
    // The default controllers are enabled in the parent, so stats work.
    let sub = file(scratch.cgroup(), "cgroup.subtree_control");
    for c in ["memory", "pids", "cpu"] {
        if scratch.backend().controllers().iter().any(|x| x == c) {
            assert!(sub.split_whitespace().any(|x| x == c), "{c} not in {sub:?}");
        }
    }
    // Creating it again is refused: isol only manages what it made.
    let err = scratch
        .backend()
        .create(&scratch.parent(), "a", &Resources::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("already exists"), "{err}");
    // The clone3 fd is the cgroup's directory.
    let fd = cg.clone_into_fd().expect("v2 has a clone_into fd");
    let fd_ino = std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .unwrap()
        .ino();
    assert_eq!(fd_ino, std::fs::metadata(&d).unwrap().ino());
    // Attach a process; pids() and the oracle see it; stats count it. It touches 1 MiB
    // once inside, so the memory it charges is the cgroup's (v2 does not move charges
    // made before the attach).
    let mut h = Helper::spawn("alloc", "1");
    cg.attach(h.pid()).unwrap();
    assert_eq!(cg.pids().unwrap(), vec![h.pid()]);
    assert_eq!(
        oracle::read(&mount_point(), &d).procs,
        vec![u64::from(h.pid())]
    );
    h.go();
    h.line("ALLOCATED");
    let stats = cg.stats().unwrap();
    let pids = stats.pids.expect("pids stats");
    assert!(pids.current >= 1, "{pids:?}");
    assert_eq!(
        Some(pids.current),
        oracle::read(&mount_point(), &d).pids_current
    );
    let mem = stats.memory.expect("memory stats");
    assert!(mem.current > 0 && mem.stat.contains_key("anon"), "{mem:?}");
    assert!(stats.cpu.is_some());
    if d.join("cpu.pressure").exists() {
        let psi = stats.psi.expect("psi where the files exist");
        assert!(psi.cpu.is_some() && psi.memory.is_some());
    }
    // Opening it again by location gives the same cgroup.
    let again = scratch.backend().open(cg.location()).unwrap();
    assert_eq!(again.pids().unwrap(), vec![h.pid()]);
    // kill() empties it: the helper dies of SIGKILL.
    cg.kill().unwrap();
    let st = h
        .wait_timeout(Duration::from_secs(10))
        .expect("killed helper exits");
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    assert_eq!(key(cg.as_ref(), "cgroup.events", "populated"), 0);
    cg.destroy().unwrap();
    assert!(!d.exists());
    cg.destroy().unwrap(); // idempotent
}

#[test]
fn create_under_parent_path_and_nested() {
    let Some(backend) = testkit::backend(NAME, "create_under_parent_path_and_nested") else {
        return;
    };
    let scratch = Scratch::new(backend, "nest");
    let parent = Parent::Path(scratch.cgroup().path().clone());
    let mut r = Resources::default();
    r.pids.max = Some(Limit::Value(7));
    let a = scratch
        .backend()
        .create(&parent, "a", &Resources::default())
        .unwrap();
    let b = scratch
        .backend()
        .create(&Parent::At(a.location().clone()), "b", &r)
        .unwrap();
    assert_eq!(file(b.as_ref(), "pids.max"), "7");
    assert!(file(a.as_ref(), "cgroup.subtree_control")
        .split_whitespace()
        .any(|c| c == "pids"));
    // Destroying the parent removes the child first.
    let (da, db) = (dir(a.as_ref()), dir(b.as_ref()));
    a.destroy().unwrap();
    assert!(!db.exists() && !da.exists());
}

#[test]
fn no_internal_processes_is_explained() {
    let Some(backend) = testkit::backend(NAME, "no_internal_processes_is_explained") else {
        return;
    };
    let scratch = Scratch::new(backend, "nip");
    let busy = scratch.child("busy", &Resources::default());
    let mut h = Helper::spawn("sleep", "");
    busy.attach(h.pid()).unwrap();
    h.go();
    // memory is a domain controller: it cannot be enabled beneath a cgroup with tasks.
    let mut r = Resources::default();
    r.memory.max = Some(Limit::Value(64 << 20));
    let err = scratch
        .backend()
        .create(&Parent::At(busy.location().clone()), "inner", &r)
        .unwrap_err()
        .to_string();
    assert!(err.contains("holds processes"), "{err}");
    assert!(err.contains("no-internal-processes"), "{err}");
    assert!(err.contains("--cgroup-parent"), "{err}");
    assert!(
        err.contains(&dir(busy.as_ref()).display().to_string()),
        "{err}"
    );
    assert!(
        !dir(busy.as_ref()).join("inner").exists(),
        "nothing left behind"
    );
    // Without resources that need a controller, a child can still be made.
    let plain = scratch
        .backend()
        .create(
            &Parent::At(busy.location().clone()),
            "plain",
            &Resources::default(),
        )
        .unwrap();
    plain.destroy().unwrap();
    // Threaded controllers (pids, cpu) are exempt from the rule (cgroup-v2.rst,
    // "Threads"): the kernel lets them be enabled beside tasks.
    let mut threaded = Resources::default();
    threaded.pids.max = Some(Limit::Value(5));
    let t = scratch
        .backend()
        .create(&Parent::At(busy.location().clone()), "threaded", &threaded)
        .unwrap();
    assert_eq!(file(t.as_ref(), "pids.max"), "5");
    t.destroy().unwrap();
    busy.destroy().unwrap();
    assert!(
        h.wait_timeout(Duration::from_secs(10)).is_some(),
        "destroy killed the helper"
    );
}
