//! Each controller: apply a value, read the kernel file back, read it through `read()`,
//! and read it again through cgroups-rs (testkit's oracle), a library isol did not write.

use isol_ns_core::resources::{HugetlbLimit, IoDeviceLimit};
use isol_ns_core::units::{CpuList, CpuMax, Limit};
use isol_ns_core::{Error, Resources};
use testkit::oracle::v2 as oracle;
use testkit::Scratch;

use crate::{dir, file, mount_point, testkit, NAME};

#[test]
fn cpu_weight_and_max() {
    let Some(backend) = testkit::backend(NAME, "cpu_weight_and_max") else {
        return;
    };
    let scratch = Scratch::new(backend, "cpu");
    let mut r = Resources::default();
    r.cpu.weight = Some(250);
    r.cpu.max = Some(CpuMax {
        quota: Limit::Value(50_000),
        period: 100_000,
    });
    let cg = scratch.child("c", &r);
    assert_eq!(file(cg.as_ref(), "cpu.weight"), "250");
    assert_eq!(file(cg.as_ref(), "cpu.max"), "50000 100000");
    assert_eq!(cg.read().unwrap().cpu, r.cpu);
    let view = oracle::read(&mount_point(), &dir(cg.as_ref()));
    assert_eq!(view.cpu_weight, Some(250));
    assert_eq!(view.cpu_max, Some((Limit::Value(50_000), 100_000)));
    // Back to unlimited.
    let unlimited = Resources {
        cpu: isol_ns_core::resources::CpuResources {
            weight: None,
            max: Some(CpuMax {
                quota: Limit::Max,
                period: 100_000,
            }),
        },
        ..Default::default()
    };
    cg.apply(&unlimited).unwrap();
    assert_eq!(file(cg.as_ref(), "cpu.max"), "max 100000");
    assert_eq!(
        oracle::read(&mount_point(), &dir(cg.as_ref())).cpu_max,
        Some((Limit::Max, 100_000))
    );
}

#[test]
fn memory_limits() {
    let Some(backend) = testkit::backend(NAME, "memory_limits") else {
        return;
    };
    let scratch = Scratch::new(backend, "mem");
    let mut r = Resources::default();
    r.memory.min = Some(Limit::Value(1 << 20));
    r.memory.low = Some(Limit::Value(2 << 20));
    r.memory.high = Some(Limit::Value(48 << 20));
    r.memory.max = Some(Limit::Value(64 << 20));
    r.memory.oom_group = Some(true);
    let cg = scratch.child("m", &r);
    assert_eq!(file(cg.as_ref(), "memory.max"), (64u64 << 20).to_string());
    assert_eq!(file(cg.as_ref(), "memory.high"), (48u64 << 20).to_string());
    assert_eq!(file(cg.as_ref(), "memory.oom.group"), "1");
    let back = cg.read().unwrap().memory;
    assert_eq!(
        (back.min, back.low, back.high, back.max, back.oom_group),
        (
            r.memory.min,
            r.memory.low,
            r.memory.high,
            r.memory.max,
            r.memory.oom_group
        )
    );
    let view = oracle::read(&mount_point(), &dir(cg.as_ref()));
    assert_eq!(
        (
            view.memory_min,
            view.memory_low,
            view.memory_high,
            view.memory_max
        ),
        (r.memory.min, r.memory.low, r.memory.high, r.memory.max)
    );
    // swap.max exists only with swap accounting; without it the setting is refused by name.
    let swap = Resources {
        memory: isol_ns_core::resources::MemoryResources {
            swap_max: Some(Limit::Value(0)),
            ..Default::default()
        },
        ..Default::default()
    };
    match cg.apply(&swap) {
        Ok(()) => assert_eq!(file(cg.as_ref(), "memory.swap.max"), "0"),
        Err(Error::Unsupported { setting, .. }) => {
            assert_eq!(setting, "memory.swap_max");
            assert!(!dir(cg.as_ref()).join("memory.swap.max").exists());
        }
        Err(e) => panic!("memory.swap.max: {e}"),
    }
    let max = Resources {
        memory: isol_ns_core::resources::MemoryResources {
            max: Some(Limit::Max),
            ..Default::default()
        },
        ..Default::default()
    };
    cg.apply(&max).unwrap();
    assert_eq!(file(cg.as_ref(), "memory.max"), "max");
    assert_eq!(
        oracle::read(&mount_point(), &dir(cg.as_ref())).memory_max,
        Some(Limit::Max)
    );
}

#[test]
fn pids_max_zero_value_and_max() {
    let Some(backend) = testkit::backend(NAME, "pids_max_zero_value_and_max") else {
        return;
    };
    let scratch = Scratch::new(backend, "pids");
    let cg = scratch.child("p", &Resources::default());
    for (limit, text) in [
        (Limit::Value(0), "0"),
        (Limit::Value(16), "16"),
        (Limit::Max, "max"),
    ] {
        let r = Resources {
            pids: isol_ns_core::resources::PidsResources { max: Some(limit) },
            ..Default::default()
        };
        cg.apply(&r).unwrap();
        assert_eq!(file(cg.as_ref(), "pids.max"), text);
        assert_eq!(cg.read().unwrap().pids.max, Some(limit));
        assert_eq!(
            oracle::read(&mount_point(), &dir(cg.as_ref())).pids_max,
            Some(limit)
        );
    }
}

#[test]
fn cpuset_within_parent() {
    let Some(backend) = testkit::backend(NAME, "cpuset_within_parent") else {
        return;
    };
    let scratch = Scratch::new(backend, "cpuset");
    let mut r = Resources::default();
    r.cpuset.cpus = Some(CpuList::parse("cpus", "0").unwrap());
    r.cpuset.mems = Some(CpuList::parse("mems", "0").unwrap());
    let cg = scratch.child("s", &r);
    assert_eq!(file(cg.as_ref(), "cpuset.cpus"), "0");
    assert_eq!(file(cg.as_ref(), "cpuset.cpus.effective"), "0");
    assert_eq!(cg.read().unwrap().cpuset, r.cpuset);
    assert_eq!(
        oracle::read(&mount_point(), &dir(cg.as_ref()))
            .cpuset_cpus
            .as_deref(),
        Some("0")
    );
    // A cpu the parent does not have is refused, naming both lists.
    let mut bad = Resources::default();
    bad.cpuset.cpus = Some(CpuList::parse("cpus", "0-1023").unwrap());
    let err = cg.apply(&bad).unwrap_err().to_string();
    assert!(
        err.contains("cpuset.cpus 0-1023") && err.contains("cpuset.cpus.effective"),
        "{err}"
    );
    assert_eq!(file(cg.as_ref(), "cpuset.cpus"), "0", "unchanged");
}

#[test]
fn io_weight_and_max() {
    let Some(backend) = testkit::backend(NAME, "io_weight_and_max") else {
        return;
    };
    let scratch = Scratch::new(backend, "io");
    let cg = scratch.child("i", &Resources::default());
    let mut r = Resources::default();
    r.io.weight = Some(500);
    match cg.apply(&r) {
        Ok(()) => {
            assert_eq!(
                file(cg.as_ref(), "io.weight").lines().next(),
                Some("default 500")
            );
            assert_eq!(cg.read().unwrap().io.weight, Some(500));
        }
        // io.weight comes from the iocost/BFQ policies; a kernel without them lacks it.
        Err(Error::Unsupported { setting, .. }) => {
            assert_eq!(setting, "io.weight");
            eprintln!("io_weight_and_max: this kernel has no io.weight");
        }
        Err(e) => panic!("io.weight: {e}"),
    }
    // io.max needs a block device; use the first one the guest has.
    let Some((major, minor)) = testkit::block_device() else {
        eprintln!("io_weight_and_max: no block device, io.max not exercised");
        return;
    };
    let mut r = Resources::default();
    r.io.devices.push(IoDeviceLimit {
        major,
        minor,
        rbps: Some(Limit::Value(1 << 20)),
        wiops: Some(Limit::Value(100)),
        ..Default::default()
    });
    cg.apply(&r).unwrap();
    let line = file(cg.as_ref(), "io.max");
    assert_eq!(
        line,
        format!("{major}:{minor} rbps=1048576 wbps=max riops=max wiops=100")
    );
    let back = cg.read().unwrap().io.devices;
    assert_eq!(
        (back[0].rbps, back[0].wiops, back[0].wbps),
        (
            Some(Limit::Value(1 << 20)),
            Some(Limit::Value(100)),
            Some(Limit::Max)
        )
    );
}

#[test]
fn hugetlb_limit() {
    let Some(backend) = testkit::backend(NAME, "hugetlb_limit") else {
        return;
    };
    let mut r = Resources::default();
    r.hugetlb
        .push(HugetlbLimit::new("2MB", Limit::Value(4 << 20)));
    if !backend.controllers().iter().any(|c| c == "hugetlb") {
        let err = backend.check(&r).unwrap_err();
        assert!(
            matches!(&err, Error::Unsupported { setting, .. } if setting == "hugetlb"),
            "{err}"
        );
        return;
    }
    let scratch = Scratch::new(backend, "hugetlb");
    let cg = scratch.child("h", &Resources::default());
    match cg.apply(&r) {
        Ok(()) => {
            assert_eq!(
                file(cg.as_ref(), "hugetlb.2MB.max"),
                (4u64 << 20).to_string()
            );
            assert!(cg.read().unwrap().hugetlb.contains(&r.hugetlb[0]));
            assert_eq!(
                oracle::hugetlb_max(&mount_point(), &dir(cg.as_ref()), "2MB"),
                Some(4 << 20)
            );
        }
        // A kernel without 2 MB pages (not x86-64) has no such file.
        Err(Error::Unsupported { setting, .. }) => assert_eq!(setting, "hugetlb"),
        Err(e) => panic!("hugetlb: {e}"),
    }
}

#[test]
fn frozen_setting() {
    let Some(backend) = testkit::backend(NAME, "frozen_setting") else {
        return;
    };
    let scratch = Scratch::new(backend, "frz");
    let cg = scratch.child(
        "f",
        &Resources {
            frozen: Some(true),
            ..Default::default()
        },
    );
    assert_eq!(file(cg.as_ref(), "cgroup.freeze"), "1");
    assert_eq!(crate::key(cg.as_ref(), "cgroup.events", "frozen"), 1);
    assert_eq!(cg.read().unwrap().frozen, Some(true));
    assert_eq!(
        oracle::read(&mount_point(), &dir(cg.as_ref())).frozen,
        Some(true)
    );
    cg.apply(&Resources {
        frozen: Some(false),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(crate::key(cg.as_ref(), "cgroup.events", "frozen"), 0);
    assert_eq!(
        oracle::read(&mount_point(), &dir(cg.as_ref())).frozen,
        Some(false)
    );
}

#[test]
fn devices_program_allows_only_its_rules() {
    let Some(backend) = testkit::backend(NAME, "devices_program_allows_only_its_rules") else {
        return;
    };
    let scratch = Scratch::new(backend, "dev");
    let mut r = Resources::default();
    r.devices.push("c 1:3 rwm".parse().unwrap());
    let cg: std::sync::Arc<dyn isol_ns_core::Cgroup> = scratch.child("d", &r).into();
    let programs = isol_cgroup_v2::controllers::devices::attached(&dir(cg.as_ref())).unwrap();
    assert_eq!(
        programs.len(),
        1,
        "one device program attached: {programs:?}"
    );
    let run = |script: &str| {
        let mut cmd = isol_ns_core::Command::new("/bin/sh");
        cmd.args(["-c", script])
            .stderr(isol_ns_core::Stdio::Null)
            .cgroup(isol_ns_core::spawn::CgroupSpec::Existing(cg.clone()));
        cmd.spawn().unwrap().wait().unwrap().code()
    };
    // /dev/null is allowed, /dev/zero is not; a process outside opens both.
    assert_eq!(run("head -c 1 /dev/null && echo > /dev/null"), Some(0));
    assert_eq!(run("head -c 1 /dev/zero"), Some(1));
    assert!(std::fs::File::open("/dev/zero").is_ok());
    // Applying again replaces the program: still one, now allowing zero and not null.
    r.devices = vec!["c 1:5 r".parse().unwrap()];
    cg.apply(&r).unwrap();
    let again = isol_cgroup_v2::controllers::devices::attached(&dir(cg.as_ref())).unwrap();
    assert_eq!(again.len(), 1, "{again:?}");
    assert_ne!(again, programs, "the old program was detached");
    assert_eq!(
        run("head -c 1 /dev/zero > /tmp/isol-v2-dev-$$; r=$?; rm -f /tmp/isol-v2-dev-$$; exit $r"),
        Some(0)
    );
    assert_ne!(run("echo > /dev/null"), Some(0), "w was not granted");
}
