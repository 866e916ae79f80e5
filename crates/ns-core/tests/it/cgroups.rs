//! Placement in a cgroup: through the registry's backend for this host (v2 with
//! CLONE_INTO_CGROUP, v1/hybrid by attaching while the child waits).

use std::sync::Arc;

use isol_ns_core::spawn::{CgroupSpec, ExitStatus, Stdio};
use isol_ns_core::units::Limit;
use isol_ns_core::{registry, Backend, Error, NamespacePlan, Resources};
use isol_testkit::{require_root, Scratch};

use crate::common::{leftovers, output, sh};

#[test]
fn both_backends_are_linked_and_registered() {
    // Naming a pub item of each crate links it, so its inventory entry is collected.
    let names = [isol_cgroup_v1::NAME, isol_cgroup_v2::NAME];
    let registered: Vec<&str> = registry::backends().iter().map(|p| p.name).collect();
    assert_eq!(registered, names);
}

fn open_backend() -> Arc<dyn Backend> {
    let host = isol_testkit::host();
    Arc::from(
        registry::open("auto", &host).unwrap_or_else(|e| panic!("open the auto backend: {e}")),
    )
}

#[test]
fn the_command_runs_in_its_cgroup_and_sees_it_as_root() {
    if !require_root("the_command_runs_in_its_cgroup_and_sees_it_as_root") {
        return;
    }
    let _serial = crate::common::serial();
    let backend = open_backend();
    let scratch = Scratch::new(
        isol_ns_core::registry::open("auto", &isol_testkit::host()).unwrap(),
        "spawn",
    );
    let mut r = Resources::default();
    r.pids.max = Some(Limit::Value(64));
    // Without a cgroup namespace, the command's very first command reads its cgroup.
    let mut cmd = sh("cat /proc/self/cgroup; sleep 0.5");
    cmd.namespaces(NamespacePlan::none())
        .cgroup(CgroupSpec::Create {
            backend: backend.clone(),
            parent: scratch.parent(),
            name: "box".into(),
            resources: r.clone(),
        });
    let child = cmd.spawn().unwrap();
    let cg = child.cgroup().unwrap();
    assert!(
        cg.pids().unwrap().contains(&child.pid()),
        "cgroup.procs lists the command"
    );
    let stats = child.stats().unwrap();
    assert!(
        stats.pids.as_ref().is_some_and(|p| p.current >= 1),
        "{stats:?}"
    );
    let path = cg.path().clone();
    let (st, out, err) = output(child);
    assert_eq!(st, ExitStatus::Exited(0), "{err}");
    assert!(
        out.lines()
            .any(|l| l.ends_with(&format!(":{path}")) || l.ends_with(path.as_str())),
        "/proc/self/cgroup names {path}: {out}"
    );

    // With pid and cgroup namespaces: the init was placed before it forked the command,
    // and the command sees its cgroup as /. The command waits for its stdin to close, so
    // that the init is still there to be looked for.
    let mut cmd = sh("read _; cat /proc/self/cgroup");
    cmd.stdin(Stdio::Piped)
        .namespaces(NamespacePlan::container())
        .cgroup(CgroupSpec::Create {
            backend: backend.clone(),
            parent: scratch.parent(),
            name: "box2".into(),
            resources: r,
        });
    let mut child = cmd.spawn().unwrap();
    let leader = child.pid();
    assert!(
        child.cgroup().unwrap().pids().unwrap().contains(&leader),
        "the init is in the cgroup"
    );
    drop(child.stdin.take());
    let (st, out, err) = output(child);
    assert_eq!(st, ExitStatus::Exited(0), "{err}");
    assert!(
        !out.is_empty() && out.lines().all(|l| l.ends_with(":/")),
        "{out}"
    );
}

#[test]
fn a_failed_spawn_destroys_the_cgroup_it_created() {
    if !require_root("a_failed_spawn_destroys_the_cgroup_it_created") {
        return;
    }
    let _serial = crate::common::serial();
    let backend = open_backend();
    let scratch = Scratch::new(
        isol_ns_core::registry::open("auto", &isol_testkit::host()).unwrap(),
        "spawnfail",
    );
    let dirs = scratch.cgroup().dirs();
    let before = leftovers(&dirs);
    // pids.max = 1: the init gets in, but its fork of the command fails with EAGAIN —
    // which also proves the init ran inside the cgroup before the command existed.
    let mut r = Resources::default();
    r.pids.max = Some(Limit::Value(1));
    let mut cmd = sh("true");
    cmd.namespaces(NamespacePlan::container())
        .cgroup(CgroupSpec::Create {
            backend: backend.clone(),
            parent: scratch.parent(),
            name: "full".into(),
            resources: r,
        });
    match cmd.spawn() {
        Err(Error::Spawn { step, source, .. }) => {
            assert_eq!(
                (step, source.raw_os_error()),
                (isol_ns_core::SpawnStep::ForkCommand, Some(libc::EAGAIN))
            );
        }
        Err(e) => panic!("expected a spawn error, got {e}"),
        Ok(_) => panic!("spawn should fail with pids.max=1"),
    }
    assert_eq!(leftovers(&dirs), before, "no cgroup, mount or process left");
    // A missing command fails before the cgroup is even created.
    let mut cmd = isol_ns_core::spawn::Command::new("isol-no-such-command");
    cmd.cgroup(CgroupSpec::Create {
        backend,
        parent: scratch.parent(),
        name: "never".into(),
        resources: Resources::default(),
    });
    assert!(cmd.spawn().is_err());
    assert_eq!(leftovers(&dirs), before);
}
