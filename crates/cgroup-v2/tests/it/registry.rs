//! The plugin is registered and judges the host's mode honestly.

use isol_ns_core::{registry, CgroupMode};

use crate::{testkit, NAME};

#[test]
fn registry_lists_cgroup_v2() {
    let names: Vec<_> = registry::backends().iter().map(|p| p.name).collect();
    assert!(names.contains(&"cgroup-v2"), "registered: {names:?}");
    assert_eq!(registry::by_name(NAME).unwrap().name, "cgroup-v2");
}

#[test]
fn fit_follows_the_host_mode() {
    let host = testkit::host();
    let fit = (registry::by_name(NAME).unwrap().fit)(&host);
    assert_eq!(fit, isol_cgroup_v2::fit(&host));
    match host.mode {
        CgroupMode::Unified => {
            assert!(fit.usable && fit.preferred, "{fit:?}");
            assert_eq!(registry::detect(&host).unwrap().0.name, "cgroup-v2");
        }
        CgroupMode::Hybrid => {
            assert!(!fit.usable && !fit.preferred, "{fit:?}");
            let u = host.unified().unwrap();
            assert!(
                fit.reason.contains(&u.mount_point.display().to_string()),
                "{}",
                fit.reason
            );
            assert!(
                fit.reason.contains("isol uses cgroup-v1 there"),
                "{}",
                fit.reason
            );
        }
        CgroupMode::Legacy => {
            assert!(!fit.usable, "{fit:?}");
            assert!(fit.reason.contains("no cgroup2"), "{}", fit.reason);
        }
    }
}
