//! Create, attach, open and destroy across every hierarchy.

use std::time::Duration;

use isol_ns_core::units::{CpuList, Limit};
use isol_ns_core::{CgroupMode, Error, Parent, Resources};

use crate::testkit::conformance::ShChild;
use crate::{scratch, testkit};

#[test]
fn creates_in_every_hierarchy_beneath_our_own() {
    let Some(s) = scratch("lc-create") else {
        return;
    };
    let host = testkit::host();
    let cg = s.child("box", &Resources::default());
    let loc = cg.location();
    let mut want_keys: Vec<String> = host.v1().map(|h| h.controllers.join(",")).collect();
    if host.mode == CgroupMode::Hybrid {
        want_keys.push("unified".into());
    }
    want_keys.sort();
    assert_eq!(loc.0.keys().cloned().collect::<Vec<_>>(), want_keys);
    let scratch_loc = s.cgroup().location();
    for h in host
        .hierarchies
        .iter()
        .filter(|h| h.version == 1 || host.mode == CgroupMode::Hybrid)
    {
        let key = if h.version == 2 {
            "unified".to_string()
        } else {
            h.controllers.join(",")
        };
        let path = loc.get(&key).unwrap();
        let own = h.own_cgroup.as_deref().unwrap();
        assert!(
            path.as_str().starts_with(own),
            "{key}: {path} lies beneath our own {own}"
        );
        assert_eq!(
            path.parent().as_ref(),
            scratch_loc.get(&key),
            "{key}: same name beneath the parent"
        );
        let dir = h.dir_of(path.as_str()).unwrap();
        assert!(dir.is_dir(), "{} exists", dir.display());
        assert!(dir.join("cgroup.procs").exists());
    }
    assert_eq!(cg.dirs().len(), want_keys.len());
    // The path to show: the unified one on hybrid hosts, else memory's.
    assert_eq!(Some(cg.path()), loc.primary());
    let shown = if host.mode == CgroupMode::Hybrid {
        "unified"
    } else {
        "memory"
    };
    assert_eq!(Some(cg.path()), loc.get(shown));
    // cpuset: the new level got cpus and mems so that tasks can join.
    if crate::has("cpuset") {
        assert!(!crate::file(cg.as_ref(), "cpuset", "cpuset.cpus").is_empty());
        assert!(!crate::file(cg.as_ref(), "cpuset", "cpuset.mems").is_empty());
    }
    cg.destroy().unwrap();
    for d in cg.dirs() {
        assert!(!d.exists(), "{} removed", d.display());
    }
}

#[test]
fn attach_joins_every_hierarchy() {
    let Some(s) = scratch("lc-attach") else {
        return;
    };
    let host = testkit::host();
    let cg = s.child("box", &Resources::default());
    let sh = ShChild::spawn("read x; echo never");
    cg.attach(sh.pid()).unwrap();
    let text = std::fs::read_to_string(format!("/proc/{}/cgroup", sh.pid())).unwrap();
    let lines = isol_ns_core::parse::proc_cgroup(std::path::Path::new("cgroup"), &text).unwrap();
    for h in host.v1() {
        let key = h.controllers.join(",");
        let line = lines
            .iter()
            .find(|l| l.controllers == h.controllers)
            .unwrap_or_else(|| panic!("{key} in {text}"));
        assert_eq!(
            Some(&line.path),
            cg.location().get(&key).map(|p| p.to_string()).as_ref(),
            "{key}"
        );
    }
    if host.mode == CgroupMode::Hybrid {
        let unified = lines.iter().find(|l| l.is_unified()).unwrap();
        assert_eq!(
            unified.path,
            cg.location().get("unified").unwrap().as_str(),
            "cgroup2 tools see it too"
        );
    }
    assert_eq!(cg.pids().unwrap(), vec![sh.pid()]);
    assert_eq!(
        crate::oracle(cg.as_ref()).procs("memory"),
        vec![sh.pid() as u64]
    );
    let mut sh = sh;
    cg.kill().unwrap();
    assert!(
        sh.wait(Duration::from_secs(5)).is_some(),
        "kill ended the task"
    );
    assert!(cg.pids().unwrap().is_empty());
}

#[test]
fn an_existing_cgroup_is_refused() {
    let Some(s) = scratch("lc-exists") else {
        return;
    };
    let mut r = Resources::default();
    r.pids.max = Some(Limit::Value(5));
    let first = s.child("dup", &r);
    let mut other = Resources::default();
    other.pids.max = Some(Limit::Value(9));
    let err = s.backend().create(&s.parent(), "dup", &other).unwrap_err();
    assert!(matches!(err, Error::Refused { .. }), "{err}");
    assert!(err.to_string().contains("already exists"), "{err}");
    // The first one is untouched, in every hierarchy.
    assert_eq!(first.read().unwrap().pids.max, Some(Limit::Value(5)));
    assert!(first.dirs().iter().all(|d| d.is_dir()));
}

#[test]
fn a_failed_create_leaves_nothing() {
    let Some(s) = scratch("lc-rollback") else {
        return;
    };
    // Refused by check, before any mkdir: a v2-only setting.
    let mut r = Resources::default();
    r.memory.high = Some(Limit::Value(1 << 20));
    assert!(matches!(
        s.backend().create(&s.parent(), "early", &r),
        Err(Error::Unsupported { .. })
    ));
    // Refused by the kernel-facing apply after the mkdirs: cpus the parent lacks.
    if crate::has("cpuset") {
        let mut r = Resources::default();
        r.cpuset.cpus = Some(CpuList::parse("cpus", "4000").unwrap());
        let err = s.backend().create(&s.parent(), "late", &r).unwrap_err();
        assert!(err.to_string().starts_with("cpuset.cpus:"), "{err}");
    }
    for dir in s.cgroup().dirs() {
        for name in ["early", "late"] {
            assert!(
                !dir.join(name).exists(),
                "{} left behind",
                dir.join(name).display()
            );
        }
    }
}

#[test]
fn open_finds_it_again_and_destroy_takes_descendants() {
    let Some(s) = scratch("lc-open") else { return };
    let mut r = Resources::default();
    r.pids.max = Some(Limit::Value(12));
    let cg = s.child("box", &r);
    let again = s.backend().open(cg.location()).unwrap();
    assert_eq!(again.read().unwrap(), cg.read().unwrap());
    assert_eq!(again.dirs(), cg.dirs());
    // A grandchild, with a task in it.
    let inner = s
        .backend()
        .create(
            &Parent::At(cg.location().clone()),
            "inner",
            &Resources::default(),
        )
        .unwrap();
    let mut sh = ShChild::spawn("read x; sleep 300");
    inner.attach(sh.pid()).unwrap();
    sh.go();
    again.destroy().unwrap();
    assert!(
        sh.wait(Duration::from_secs(5)).is_some(),
        "the task inside was killed"
    );
    for d in cg.dirs().iter().chain(inner.dirs().iter()) {
        assert!(!d.exists(), "{} removed", d.display());
    }
    assert!(
        s.backend().open(cg.location()).is_err(),
        "a destroyed cgroup does not open"
    );
}

#[test]
fn parent_path_means_the_same_path_in_every_hierarchy() {
    let Some(s) = scratch("lc-path") else { return };
    let loc = s.cgroup().location().clone();
    let memory_path = loc
        .get("memory")
        .or_else(|| loc.0.values().next())
        .unwrap()
        .clone();
    let same_everywhere = loc.0.values().all(|p| *p == memory_path);
    match s.backend().create(
        &Parent::Path(memory_path.clone()),
        "p",
        &Resources::default(),
    ) {
        Ok(cg) => {
            assert!(
                same_everywhere,
                "{memory_path} exists in every hierarchy only when our cgroups coincide: {loc:?}"
            );
            for (key, path) in &cg.location().0 {
                assert_eq!(path.as_str(), format!("{memory_path}/p"), "{key}");
            }
            cg.destroy().unwrap();
        }
        Err(e) => {
            // Here memory:/process_api/… has no counterpart in cpu:/ and the others: the
            // mkdir there fails, and the directories already made are removed again.
            assert!(!same_everywhere, "{e}");
            assert!(e.to_string().contains("does not exist"), "{e}");
            assert!(
                !s.cgroup().dirs().iter().any(|d| d.join("p").exists()),
                "a partial create was rolled back"
            );
        }
    }
}
