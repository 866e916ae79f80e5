//! The plugin is registered, and fits exactly the hosts it should.

use isol_ns_core::{registry, CgroupMode};

use crate::{name, testkit};

#[test]
fn cgroup_v1_is_registered() {
    let names: Vec<&str> = registry::backends().iter().map(|p| p.name).collect();
    assert!(names.contains(&"cgroup-v1"), "registered: {names:?}");
    assert_eq!(name(), "cgroup-v1");
    assert_eq!(registry::by_name("cgroup-v1").unwrap().name, "cgroup-v1");
}

#[test]
fn fits_legacy_and_hybrid_only() {
    let host = testkit::host();
    let fit = (registry::by_name("cgroup-v1").unwrap().fit)(&host);
    match host.mode {
        CgroupMode::Unified => {
            assert!(!fit.usable && !fit.preferred);
            assert_eq!(
                fit.reason,
                "the host is unified (cgroup v2 only); use cgroup-v2"
            );
        }
        CgroupMode::Hybrid | CgroupMode::Legacy => {
            assert!(fit.usable && fit.preferred, "{fit:?}");
            let (detected, _) = registry::detect(&host).unwrap();
            assert_eq!(
                detected.name, "cgroup-v1",
                "detect picks v1 on a {} host",
                host.mode
            );
        }
    }
}

#[test]
fn opens_with_every_v1_hierarchy() {
    let Some(b) = crate::backend("opens_with_every_v1_hierarchy") else {
        return;
    };
    let host = testkit::host();
    let own = b.own_cgroup().unwrap();
    for h in host.v1() {
        let key = h.controllers.join(",");
        assert_eq!(
            own.get(&key).map(|p| p.as_str()),
            h.own_cgroup.as_deref(),
            "own cgroup in {key}"
        );
    }
    assert_eq!(
        own.get("unified").is_some(),
        host.mode == CgroupMode::Hybrid
    );
    let ctrls = b.controllers();
    for c in ["memory", "pids", "cpu", "cpuacct", "freezer"] {
        assert_eq!(
            ctrls.contains(&c.to_string()),
            host.v1_hierarchy(c).is_some(),
            "{c} in {ctrls:?}"
        );
    }
    assert!(
        !ctrls.iter().any(|c| c.starts_with("name=")),
        "named hierarchies are not controllers: {ctrls:?}"
    );
}
