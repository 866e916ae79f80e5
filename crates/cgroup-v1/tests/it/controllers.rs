//! Each controller: apply a value, read the kernel file back, and read it again through
//! cgroups-rs (the oracle). A controller this host lacks must be refused by name.

use std::time::Duration;

use isol_ns_core::convert;
use isol_ns_core::resources::{HugetlbLimit, IoDeviceLimit};
use isol_ns_core::units::{parse_cpus, CpuList, Limit};
use isol_ns_core::{Error, Resources};

use crate::testkit::conformance::ShChild;
use crate::{file, has, oracle, scratch};

fn assert_unsupported(r: &Resources, s: &crate::testkit::Scratch, setting: &str) {
    let err = s.backend().check(r).unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported { setting: got, backend: "cgroup-v1", .. } if got == setting),
        "{err}"
    );
}

#[test]
fn memory() {
    let Some(s) = scratch("ctl-memory") else {
        return;
    };
    let mut r = Resources::default();
    r.memory.max = Some(Limit::Value(64 << 20));
    r.memory.low = Some(Limit::Value(32 << 20));
    let memsw = crate::dir(s.cgroup(), "memory")
        .unwrap()
        .join("memory.memsw.limit_in_bytes")
        .exists();
    if memsw {
        r.memory.swap_max = Some(Limit::Value(16 << 20));
    }
    let cg = s.child("mem", &r);
    assert_eq!(
        file(cg.as_ref(), "memory", "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(
        file(cg.as_ref(), "memory", "memory.soft_limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    let o = oracle(cg.as_ref());
    assert_eq!(o.memory_limit(), 64 << 20);
    assert_eq!(o.memory_soft_limit(), 32 << 20);
    let back = cg.read().unwrap();
    assert_eq!(
        (back.memory.max, back.memory.low),
        (Some(Limit::Value(64 << 20)), Some(Limit::Value(32 << 20)))
    );
    if memsw {
        assert_eq!(
            file(cg.as_ref(), "memory", "memory.memsw.limit_in_bytes"),
            (80u64 << 20).to_string(),
            "memsw = max + swap"
        );
        assert_eq!(o.memsw_limit(), 80 << 20);
        assert_eq!(back.memory.swap_max, Some(Limit::Value(16 << 20)));
        // Raising the limit past the current memsw limit needs memsw written first.
        let mut up = Resources::default();
        up.memory.max = Some(Limit::Value(256 << 20));
        up.memory.swap_max = Some(Limit::Value(0));
        cg.apply(&up).unwrap();
        assert_eq!((o.memory_limit(), o.memsw_limit()), (256 << 20, 256 << 20));
    }
    // Unlimited is the kernel's PAGE_COUNTER_MAX, which reads back as max.
    let mut unl = Resources::default();
    unl.memory.max = Some(Limit::Max);
    unl.memory.swap_max = memsw.then_some(Limit::Max);
    cg.apply(&unl).unwrap();
    assert!(
        o.memory_limit() >= 0x7FFF_FFFF_FFFF_0000,
        "kernel shows {}",
        o.memory_limit()
    );
    assert_eq!(cg.read().unwrap().memory.max, Some(Limit::Max));
    let st = cg.stats().unwrap().memory.unwrap();
    assert_eq!(st.max, Some(Limit::Max));
    assert!(
        st.stat.contains_key("rss") || st.stat.contains_key("anon"),
        "memory.stat keys: {:?}",
        st.stat.keys()
    );
}

#[test]
fn v2_only_memory_settings_are_refused() {
    let Some(s) = scratch("ctl-v2only") else {
        return;
    };
    for (setting, set) in [
        (
            "memory.min",
            (|r: &mut Resources| r.memory.min = Some(Limit::Value(1 << 20))) as fn(&mut Resources),
        ),
        ("memory.high", |r| {
            r.memory.high = Some(Limit::Value(1 << 20))
        }),
        ("memory.oom_group", |r| r.memory.oom_group = Some(true)),
    ] {
        let mut r = Resources::default();
        set(&mut r);
        assert_unsupported(&r, &s, setting);
        let msg = s
            .backend()
            .create(&s.parent(), "x", &r)
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with(&format!("{setting} is not supported by cgroup-v1")),
            "{msg}"
        );
    }
}

#[test]
fn pids() {
    let Some(s) = scratch("ctl-pids") else { return };
    let mut r = Resources::default();
    r.pids.max = Some(Limit::Value(7));
    let cg = s.child("pids", &r);
    assert_eq!(file(cg.as_ref(), "pids", "pids.max"), "7");
    assert_eq!(oracle(cg.as_ref()).pids_max(), Some(7));
    r.pids.max = Some(Limit::Max);
    cg.apply(&r).unwrap();
    assert_eq!(file(cg.as_ref(), "pids", "pids.max"), "max");
    assert_eq!(oracle(cg.as_ref()).pids_max(), None);
    let st = cg.stats().unwrap().pids.unwrap();
    assert_eq!((st.current, st.max), (0, Some(Limit::Max)));
}

#[test]
fn cpu() {
    let Some(s) = scratch("ctl-cpu") else { return };
    let mut r = Resources::default();
    r.cpu.weight = Some(200);
    r.cpu.max = Some(parse_cpus("cpus", "0.25").unwrap());
    let cg = s.child("cpu", &r);
    let shares = convert::cpu_weight_to_shares(200);
    assert_eq!(file(cg.as_ref(), "cpu", "cpu.shares"), shares.to_string());
    assert_eq!(file(cg.as_ref(), "cpu", "cpu.cfs_quota_us"), "25000");
    assert_eq!(file(cg.as_ref(), "cpu", "cpu.cfs_period_us"), "100000");
    let o = oracle(cg.as_ref());
    assert_eq!(o.cpu_shares(), shares);
    assert_eq!(o.cpu_quota_period(), (25_000, 100_000));
    let back = cg.read().unwrap();
    assert_eq!(back.cpu.weight, Some(200));
    assert_eq!(back.cpu.max, r.cpu.max);
    // Another period: written before the quota, so 10 ms per 20 ms is accepted.
    r.cpu.max = Some(isol_ns_core::units::CpuMax {
        quota: Limit::Value(10_000),
        period: 20_000,
    });
    cg.apply(&r).unwrap();
    assert_eq!(o.cpu_quota_period(), (10_000, 20_000));
    r.cpu.max = Some(parse_cpus("cpus", "max").unwrap());
    cg.apply(&r).unwrap();
    assert_eq!(o.cpu_quota_period(), (-1, 100_000));
}

#[test]
fn cpuset() {
    let Some(s) = scratch("ctl-cpuset") else {
        return;
    };
    if !has("cpuset") {
        let mut r = Resources::default();
        r.cpuset.cpus = Some(CpuList::parse("c", "0").unwrap());
        return assert_unsupported(&r, &s, "cpuset.cpus");
    }
    let mut r = Resources::default();
    r.cpuset.cpus = Some(CpuList::parse("c", "0").unwrap());
    r.cpuset.mems = Some(CpuList::parse("m", "0").unwrap());
    let cg = s.child("cpuset", &r);
    assert_eq!(file(cg.as_ref(), "cpuset", "cpuset.cpus"), "0");
    assert_eq!(file(cg.as_ref(), "cpuset", "cpuset.mems"), "0");
    let o = oracle(cg.as_ref());
    assert_eq!(o.cpuset_cpus(), vec![(0, 0)]);
    assert_eq!(o.cpuset_mems(), vec![(0, 0)]);
    assert_eq!(cg.read().unwrap().cpuset, r.cpuset);
    // A task in it runs only on cpu 0.
    let mut sh = ShChild::spawn("read x; cat /proc/self/status");
    cg.attach(sh.pid()).unwrap();
    sh.go();
    assert!(sh.wait(Duration::from_secs(10)).unwrap().success());
    let allowed = sh
        .stdout()
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list:"))
        .map(|l| l.split_whitespace().last().unwrap().to_string());
    assert_eq!(allowed.as_deref(), Some("0"), "{}", sh.stdout());
}

#[test]
fn freezer() {
    let Some(s) = scratch("ctl-freezer") else {
        return;
    };
    let cg = s.child("frz", &Resources::default());
    let o = oracle(cg.as_ref());
    assert_eq!(o.frozen(), Some(false));
    let r = Resources {
        frozen: Some(true),
        ..Resources::default()
    };
    cg.apply(&r).unwrap();
    assert_eq!(file(cg.as_ref(), "freezer", "freezer.state"), "FROZEN");
    assert_eq!(o.frozen(), Some(true));
    cg.thaw().unwrap();
    assert_eq!(o.frozen(), Some(false));
    cg.freeze().unwrap();
    assert_eq!(cg.read().unwrap().frozen, Some(true));
}

#[test]
fn blkio() {
    let Some(s) = scratch("ctl-blkio") else {
        return;
    };
    let cg = s.child("blk", &Resources::default());
    let dir = crate::dir(cg.as_ref(), "blkio").unwrap();
    let mut r = Resources::default();
    r.io.weight = Some(5000);
    // The file written (blkio.weight first, as the backend looks), its default, and what
    // io weights become there and read back as: (io, v1, read back).
    let weight_file = [
        (
            "blkio.weight",
            "500",
            [(1, "10", 1), (10_000, "1000", 10_000), (5000, "747", 4991)],
        ),
        (
            "blkio.bfq.weight",
            "100",
            [(1, "1", 1), (10_000, "1000", 10_000), (5000, "545", 4995)],
        ),
    ]
    .into_iter()
    .find(|(f, ..)| dir.join(f).exists());
    eprintln!("blkio: weight file {:?}", weight_file.map(|(f, ..)| f));
    if let Some((name, default, table)) = weight_file {
        // The weight as the kernel shows it ("default N" in some kernels' bfq.weight).
        let weight = |cg: &dyn isol_ns_core::Cgroup| {
            let text = file(cg, "blkio", name);
            text.split_whitespace().last().unwrap_or("").to_string()
        };
        assert_eq!(weight(cg.as_ref()), default, "{name} of a new cgroup");
        // The v2 default is the v1 default: asking for it changes nothing.
        let mut r = Resources::default();
        r.io.weight = Some(100);
        let with_default = s.child("blk-default", &r);
        assert_eq!(weight(with_default.as_ref()), default);
        assert_eq!(with_default.read().unwrap().io.weight, Some(100));
        for (io, v1, back) in table {
            r.io.weight = Some(io);
            cg.apply(&r).unwrap();
            assert_eq!(weight(cg.as_ref()), v1, "io {io}");
            assert_eq!(cg.read().unwrap().io.weight, Some(back), "io {io}");
        }
    } else {
        let err = cg.apply(&r).unwrap_err();
        assert!(
            matches!(err, Error::Unsupported { .. }) && err.to_string().contains("blkio.weight"),
            "{err}"
        );
    }
    let Some((major, minor)) = crate::testkit::block_device() else {
        eprintln!("blkio: no block device in /sys/block; throttling not exercised");
        return;
    };
    let mut r = Resources::default();
    r.io.devices.push(IoDeviceLimit {
        major,
        minor,
        rbps: Some(Limit::Value(1 << 20)),
        wiops: Some(Limit::Value(50)),
        ..Default::default()
    });
    cg.apply(&r).unwrap();
    assert_eq!(
        file(cg.as_ref(), "blkio", "blkio.throttle.read_bps_device"),
        format!("{major}:{minor} 1048576")
    );
    assert_eq!(
        file(cg.as_ref(), "blkio", "blkio.throttle.write_iops_device"),
        format!("{major}:{minor} 50")
    );
    assert_eq!(
        oracle(cg.as_ref()).read_bps(),
        vec![(major as i16, minor as i16, 1 << 20)]
    );
    assert_eq!(cg.read().unwrap().io.devices, r.io.devices);
    // max removes the limit: the device disappears from the file.
    r.io.devices[0].rbps = Some(Limit::Max);
    r.io.devices[0].wiops = Some(Limit::Max);
    cg.apply(&r).unwrap();
    assert_eq!(
        file(cg.as_ref(), "blkio", "blkio.throttle.read_bps_device"),
        ""
    );
    assert!(cg.read().unwrap().io.devices.is_empty());
}

#[test]
fn devices() {
    let Some(s) = scratch("ctl-devices") else {
        return;
    };
    let r = Resources {
        devices: vec!["c 1:3 rwm".parse().unwrap(), "c 1:5 r".parse().unwrap()],
        ..Resources::default()
    };
    let cg = s.child("dev", &r);
    assert_eq!(
        file(cg.as_ref(), "devices", "devices.list"),
        "c 1:3 rwm\nc 1:5 r"
    );
    assert_eq!(
        oracle(cg.as_ref()).allowed_devices(),
        vec!["c 1:3 rwm", "c 1:5 r"]
    );
    assert_eq!(cg.read().unwrap().devices, r.devices);
    // What a task inside may open: /dev/null fully, /dev/zero only for reading, /dev/full not at all.
    let mut sh = ShChild::spawn(
        "read x; echo a >/dev/null && echo null-ok; \
         dd if=/dev/zero of=/dev/null bs=1 count=1 2>/dev/null && echo zero-read-ok; \
         (echo a >/dev/zero) 2>/dev/null || echo zero-write-denied; \
         (dd if=/dev/full of=/dev/null bs=1 count=1) 2>/dev/null || echo full-denied",
    );
    cg.attach(sh.pid()).unwrap();
    sh.go();
    sh.wait(Duration::from_secs(10)).expect("script ends");
    assert_eq!(
        sh.stdout(),
        "null-ok\nzero-read-ok\nzero-write-denied\nfull-denied\n",
        "stderr {:?}",
        sh.stderr()
    );
    // A deny rule on top takes /dev/zero away.
    let deny = Resources {
        devices: vec![
            "c 1:3 rwm".parse().unwrap(),
            "deny c 1:5 r".parse().unwrap(),
        ],
        ..Resources::default()
    };
    cg.apply(&deny).unwrap();
    assert_eq!(file(cg.as_ref(), "devices", "devices.list"), "c 1:3 rwm");
}

#[test]
fn hugetlb() {
    let Some(s) = scratch("ctl-hugetlb") else {
        return;
    };
    let size = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .ok()
        .and_then(|d| d.flatten().find_map(|e| e.file_name().into_string().ok()))
        .and_then(|n| {
            n.strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse::<u64>()
                .ok()
        })
        .map(|kb| {
            if kb >= 1 << 20 {
                format!("{}GB", kb >> 20)
            } else if kb >= 1024 {
                format!("{}MB", kb >> 10)
            } else {
                format!("{kb}KB")
            }
        })
        .unwrap_or_else(|| "2MB".into());
    let r = Resources {
        hugetlb: vec![HugetlbLimit {
            page_size: size.clone(),
            max: Limit::Value(1 << 30),
        }],
        ..Resources::default()
    };
    eprintln!(
        "hugetlb: v1 hierarchy {}, page size {size}",
        if has("hugetlb") { "mounted" } else { "absent" }
    );
    if !has("hugetlb") {
        // This host: hugetlb sits on the unified hierarchy (or nowhere), not on a v1 one.
        return assert_unsupported(&r, &s, "hugetlb");
    }
    let cg = s.child("huge", &r);
    assert_eq!(
        file(
            cg.as_ref(),
            "hugetlb",
            &format!("hugetlb.{size}.limit_in_bytes")
        ),
        (1u64 << 30).to_string()
    );
    assert!(cg.read().unwrap().hugetlb.contains(&r.hugetlb[0]));
}
