//! What the limits do to real processes, and what the event stream reports.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use isol_ns_core::units::{parse_cpus, Limit};
use isol_ns_core::{CgroupEvent, EventStream, Resources};

use crate::testkit::conformance::ShChild;
use crate::{oracle, runtime, scratch};

/// The next event matching `want`, skipping others; panics after `timeout`.
async fn expect_event(
    events: &mut Box<dyn EventStream>,
    timeout: Duration,
    want: impl Fn(&CgroupEvent) -> bool,
) -> CgroupEvent {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(Ok(e))) if want(&e) => return e,
            Ok(Some(Ok(e))) => seen.push(e),
            Ok(Some(Err(e))) => panic!("event stream error: {e}"),
            Ok(None) => panic!("event stream ended; saw {seen:?}"),
            Err(_) => panic!("no matching event within {timeout:?}; saw {seen:?}"),
        }
    }
}

#[test]
fn oom_kill_is_reported() {
    let Some(s) = scratch("bh-oom") else { return };
    let mut r = Resources::default();
    r.memory.max = Some(Limit::Value(32 << 20));
    if crate::dir(s.cgroup(), "memory")
        .unwrap()
        .join("memory.memsw.limit_in_bytes")
        .exists()
    {
        r.memory.swap_max = Some(Limit::Value(0));
    }
    let cg = s.child("oom", &r);
    let rt = runtime();
    rt.block_on(async {
        let mut events = cg.events().unwrap();
        // dd's 64M buffer cannot fit in 32M: the OOM killer must take dd.
        let mut sh = ShChild::spawn(
            "read x; dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo dd-status $?",
        );
        cg.attach(sh.pid()).unwrap();
        sh.go();
        let e = expect_event(&mut events, Duration::from_secs(60), |e| {
            matches!(e, CgroupEvent::OomKill { .. })
        })
        .await;
        assert!(
            matches!(e, CgroupEvent::OomKill { count } if count >= 1),
            "{e:?}"
        );
        assert!(sh.wait(Duration::from_secs(20)).is_some());
        assert_eq!(
            sh.stdout().trim(),
            "dd-status 137",
            "dd died of SIGKILL; stderr {:?}",
            sh.stderr()
        );
    });
    let st = cg.stats().unwrap().memory.unwrap();
    assert!(st.events.oom_kill >= 1, "{st:?}");
    // The charge that failed was memsw's when swap is limited too, so memory.failcnt may
    // stay 0; the peak shows the limit was reached and not passed.
    assert_eq!(
        st.peak,
        Some(32 << 20),
        "peak reaches the limit exactly: {st:?}"
    );
    assert_eq!(oracle(cg.as_ref()).oom_kills(), st.events.oom_kill);
    assert_eq!(cg.oom_kills().unwrap(), st.events.oom_kill);
}

#[test]
fn fork_loop_stops_at_pids_max() {
    let Some(s) = scratch("bh-pids") else { return };
    let mut r = Resources::default();
    r.pids.max = Some(Limit::Value(8));
    let cg = s.child("forks", &r);
    let rt = runtime();
    let mut events = {
        let _in_runtime = rt.enter();
        cg.events().unwrap()
    };
    let mut sh = ShChild::spawn(
        "read x; i=0; while [ $i -lt 40 ]; do sleep 300 & i=$((i+1)); done; echo looped; sleep 300",
    );
    cg.attach(sh.pid()).unwrap();
    sh.go();
    // The shell either dies on the failed fork or carries on; either way it stops growing.
    let start = Instant::now();
    while sh.wait(Duration::ZERO).is_none()
        && !sh.stdout().contains("looped")
        && start.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let tasks = cg.pids().unwrap();
    let st = cg.stats().unwrap().pids.unwrap();
    eprintln!(
        "pids.max 8: {} tasks, pids.events max {:?}, shell stderr {:?}",
        tasks.len(),
        st.events_max,
        sh.stderr()
    );
    assert_eq!(
        st.current as usize,
        tasks.len(),
        "pids.current counts the tasks {tasks:?}"
    );
    assert!(tasks.len() <= 8, "{} tasks under pids.max 8", tasks.len());
    assert!(
        tasks.len() >= 7,
        "the loop reached the limit: {} tasks",
        tasks.len()
    );
    assert!(
        sh.stderr().to_lowercase().contains("fork"),
        "the shell saw forks fail: {:?}",
        sh.stderr()
    );
    if let Some(refused) = st.events_max {
        assert!(refused >= 1, "pids.events counts the refused forks");
        let e = rt.block_on(expect_event(&mut events, Duration::from_secs(10), |e| {
            matches!(e, CgroupEvent::PidsMax { .. })
        }));
        assert!(
            matches!(e, CgroupEvent::PidsMax { count } if count >= 1 && count <= refused),
            "{e:?}"
        );
    }
    cg.destroy().unwrap();
    assert!(sh.wait(Duration::from_secs(5)).is_some());
}

fn busy(cg: &dyn isol_ns_core::Cgroup) -> ShChild {
    let mut sh = ShChild::spawn("read x; echo started; while :; do :; done");
    cg.attach(sh.pid()).unwrap();
    sh.go();
    assert!(
        sh.wait_for("started", Duration::from_secs(10)),
        "busy loop started"
    );
    sh
}

fn cpu(cg: &dyn isol_ns_core::Cgroup) -> isol_ns_core::stats::CpuStats {
    cg.stats().unwrap().cpu.unwrap()
}

#[test]
fn cpu_quota_throttles_a_busy_loop() {
    let Some(s) = scratch("bh-quota") else { return };
    let mut r = Resources::default();
    r.cpu.max = Some(parse_cpus("cpus", "0.2").unwrap());
    let cg = s.child("quota", &r);
    let _sh = busy(cg.as_ref());
    let a = cpu(cg.as_ref());
    let t = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let b = cpu(cg.as_ref());
    let wall = t.elapsed().as_micros() as u64;
    let used = b.usage_usec - a.usage_usec;
    eprintln!(
        "quota 0.2 cpus: used {used} µs of cpu in {wall} µs; throttled {} of {} periods",
        b.nr_throttled - a.nr_throttled,
        b.nr_periods - a.nr_periods
    );
    assert!(
        b.nr_periods - a.nr_periods >= 5,
        "periods elapse: {a:?} → {b:?}"
    );
    assert!(
        b.nr_throttled - a.nr_throttled >= 5,
        "a busy loop is throttled: {a:?} → {b:?}"
    );
    assert!(b.throttled_usec > a.throttled_usec);
    // PSI comes from the unified twin on hybrid hosts, when the kernel keeps it.
    let host = crate::testkit::host();
    let psi = cg.stats().unwrap().psi;
    let kernel_has_psi = host
        .unified()
        .is_some_and(|u| std::fs::read_to_string(u.mount_point.join("cpu.pressure")).is_ok());
    if host.mode == isol_ns_core::CgroupMode::Hybrid && kernel_has_psi {
        let cpu = psi
            .and_then(|p| p.cpu)
            .expect("cpu.pressure of the unified twin");
        eprintln!("cpu pressure of the throttled loop: {cpu:?}");
        assert!(
            cpu.some.total > 0,
            "a throttled busy loop stalls on cpu: {cpu:?}"
        );
    } else {
        assert!(
            psi.is_none(),
            "no unified twin or no PSI, no pressure: {psi:?}"
        );
    }
    assert!(
        used <= wall * 35 / 100,
        "0.2 cpus used {used} µs in {wall} µs"
    );
}

#[test]
fn a_frozen_loop_gains_no_cpu_time() {
    let Some(s) = scratch("bh-freeze") else {
        return;
    };
    let cg = s.child("frozen", &Resources::default());
    let _sh = busy(cg.as_ref());
    std::thread::sleep(Duration::from_millis(200));
    cg.freeze().unwrap();
    let a = cpu(cg.as_ref()).usage_usec;
    std::thread::sleep(Duration::from_millis(600));
    let b = cpu(cg.as_ref()).usage_usec;
    assert_eq!(a, b, "frozen tasks used cpu");
    cg.thaw().unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let c = cpu(cg.as_ref()).usage_usec;
    eprintln!("freeze: {a} µs before, {b} after 600 ms frozen, {c} after 400 ms thawed");
    assert!(c > b + 20_000, "thawed, the loop runs again: {b} → {c}");
}

#[test]
fn destroy_leaves_no_process_and_no_directory() {
    let Some(s) = scratch("bh-destroy") else {
        return;
    };
    let cg = s.child("victims", &Resources::default());
    let inner = s
        .backend()
        .create(
            &isol_ns_core::Parent::At(cg.location().clone()),
            "inner",
            &Resources::default(),
        )
        .unwrap();
    // Double-forked sleepers (reparented away from the shell), and one in a child cgroup.
    let mut sh = ShChild::spawn("read x; (sleep 300 &); (sleep 300 & sleep 300 &); sh -c 'sleep 300 &'; echo ready; sleep 300");
    cg.attach(sh.pid()).unwrap();
    sh.go();
    assert!(sh.wait_for("ready", Duration::from_secs(10)));
    let mut other = ShChild::spawn("read x; sleep 300");
    inner.attach(other.pid()).unwrap();
    let mut pids: Vec<u32> = cg.pids().unwrap();
    pids.extend(inner.pids().unwrap());
    assert!(
        pids.len() >= 6,
        "shell, four sleepers and the inner task: {pids:?}"
    );
    let dirs = cg.dirs();
    cg.destroy().unwrap();
    for d in &dirs {
        assert!(!d.exists(), "{} left", d.display());
    }
    assert_eq!(
        sh.wait(Duration::from_secs(5)).and_then(|s| s.signal()),
        Some(9)
    );
    assert_eq!(
        other.wait(Duration::from_secs(5)).and_then(|s| s.signal()),
        Some(9)
    );
    // Reparented sleepers are reaped by init; give it a moment.
    let start = Instant::now();
    let alive = |pid: &u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
            st.rsplit(')')
                .next()
                .is_some_and(|r| !r.trim_start().starts_with('Z'))
        })
    };
    while pids.iter().any(alive) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<_> = pids.iter().filter(|p| alive(p)).collect();
    assert!(left.is_empty(), "still running: {left:?}");
}

#[test]
fn events_report_frozen_thawed_and_emptied() {
    let Some(s) = scratch("bh-events") else {
        return;
    };
    let cg = s.child("ev", &Resources::default());
    let mut sh = ShChild::spawn("read x; sleep 300");
    cg.attach(sh.pid()).unwrap();
    let rt = runtime();
    rt.block_on(async {
        let mut events = cg.events().unwrap();
        cg.freeze().unwrap();
        assert_eq!(
            expect_event(&mut events, Duration::from_secs(10), |_| true).await,
            CgroupEvent::Frozen
        );
        cg.thaw().unwrap();
        assert_eq!(
            expect_event(&mut events, Duration::from_secs(10), |_| true).await,
            CgroupEvent::Thawed
        );
        sh.go();
        cg.kill().unwrap();
        assert_eq!(
            expect_event(&mut events, Duration::from_secs(10), |_| true).await,
            CgroupEvent::Emptied
        );
        cg.destroy().unwrap();
        let end = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("stream ends");
        assert!(end.is_none(), "no event after destroy: {end:?}");
    });
}
