//! The limits do what they say, the events report it, and destroy leaves nothing.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use isol_ns_core::resources::MemoryResources;
use isol_ns_core::units::{CpuMax, Limit};
use isol_ns_core::{CgroupEvent, EventStream, Resources};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use testkit::Scratch;

use crate::helper::Helper;
use crate::{dir, key, testkit, NAME};

/// The next event, or a panic after `secs`.
async fn next_event(events: &mut Box<dyn EventStream>, secs: u64) -> CgroupEvent {
    tokio::time::timeout(Duration::from_secs(secs), events.next())
        .await
        .expect("an event in time")
        .expect("stream still open")
        .expect("event read")
}

/// Events until one matches `want`, or a panic after `secs` in total.
async fn wait_for(
    events: &mut Box<dyn EventStream>,
    secs: u64,
    want: impl Fn(&CgroupEvent) -> bool,
) -> CgroupEvent {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_secs()
            .max(1);
        let e = next_event(events, left).await;
        if want(&e) {
            return e;
        }
    }
}

#[tokio::test]
async fn oom_kill_is_reported() {
    let Some(backend) = testkit::backend(NAME, "oom_kill_is_reported") else {
        return;
    };
    let scratch = Scratch::new(backend, "oom");
    let r = Resources {
        memory: MemoryResources {
            max: Some(Limit::Value(32 << 20)),
            ..Default::default()
        },
        ..Default::default()
    };
    let cg = scratch.child("o", &r);
    if dir(cg.as_ref()).join("memory.swap.max").exists() {
        let no_swap = Resources {
            memory: MemoryResources {
                swap_max: Some(Limit::Value(0)),
                ..Default::default()
            },
            ..Default::default()
        };
        cg.apply(&no_swap).unwrap();
    }
    let mut events = cg.events().unwrap();
    let mut h = Helper::spawn("alloc", "256");
    cg.attach(h.pid()).unwrap();
    h.go();
    let st = h
        .wait_timeout(Duration::from_secs(60))
        .expect("the allocator is OOM-killed");
    assert_eq!(st.signal(), Some(libc::SIGKILL), "{st:?}");
    let e = wait_for(&mut events, 10, |e| {
        matches!(e, CgroupEvent::OomKill { .. })
    })
    .await;
    assert_eq!(e, CgroupEvent::OomKill { count: 1 });
    let stats = cg.stats().unwrap().memory.unwrap();
    assert_eq!(stats.events.oom_kill, 1);
    assert!(stats.events.max >= 1, "{stats:?}");
    assert_eq!(key(cg.as_ref(), "memory.events", "oom_kill"), 1);
    assert_eq!(cg.oom_kills().unwrap(), 1);
    assert!(stats.peak.is_none_or(|p| p <= 32 << 20), "{stats:?}");
}

#[tokio::test]
async fn fork_loop_stops_at_pids_max() {
    let Some(backend) = testkit::backend(NAME, "fork_loop_stops_at_pids_max") else {
        return;
    };
    let scratch = Scratch::new(backend, "forks");
    let r = Resources {
        pids: isol_ns_core::resources::PidsResources {
            max: Some(Limit::Value(6)),
        },
        ..Default::default()
    };
    let cg = scratch.child("p", &r);
    let mut events = cg.events().unwrap();
    let mut h = Helper::spawn("threads", "");
    cg.attach(h.pid()).unwrap();
    h.go();
    let out = h.line("THREADS");
    let (n, errno) = out.split_once(' ').unwrap();
    assert_eq!(
        errno.parse::<i32>().unwrap(),
        libc::EAGAIN,
        "thread creation failed with EAGAIN"
    );
    let stats = cg.stats().unwrap().pids.unwrap();
    assert_eq!(
        stats.current, 6,
        "the helper and its threads fill the limit exactly ({n} threads made)"
    );
    assert_eq!(stats.max, Some(Limit::Value(6)));
    assert!(stats.events_max.unwrap() >= 1, "{stats:?}");
    let e = wait_for(&mut events, 10, |e| {
        matches!(e, CgroupEvent::PidsMax { .. })
    })
    .await;
    assert!(
        matches!(e, CgroupEvent::PidsMax { count } if count >= 1),
        "{e:?}"
    );
    // pids.max 0: not even one more thread.
    let zero = Resources {
        pids: isol_ns_core::resources::PidsResources {
            max: Some(Limit::Value(0)),
        },
        ..Default::default()
    };
    let cg0 = scratch.child("zero", &zero);
    let mut h0 = Helper::spawn("threads", "");
    cg0.attach(h0.pid()).unwrap();
    h0.go();
    assert!(
        h0.line("THREADS").starts_with("0 "),
        "no task may be created under pids.max 0"
    );
}

#[test]
fn cpu_max_throttles_a_busy_loop() {
    let Some(backend) = testkit::backend(NAME, "cpu_max_throttles_a_busy_loop") else {
        return;
    };
    let scratch = Scratch::new(backend, "thr");
    let r = Resources {
        cpu: isol_ns_core::resources::CpuResources {
            weight: None,
            max: Some(CpuMax {
                quota: Limit::Value(10_000),
                period: 100_000,
            }),
        },
        ..Default::default()
    };
    let cg = scratch.child("t", &r);
    let mut h = Helper::spawn("busy", "");
    cg.attach(h.pid()).unwrap();
    h.go();
    h.line("BUSY");
    let before = cg.stats().unwrap().cpu.unwrap();
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let after = cg.stats().unwrap().cpu.unwrap();
    let wall = start.elapsed().as_micros() as u64;
    let used = after.usage_usec - before.usage_usec;
    eprintln!("cpu_max_throttles_a_busy_loop: {used} µs of cpu in {wall} µs at 10%; nr_throttled {} -> {}", before.nr_throttled, after.nr_throttled);
    assert!(
        after.nr_throttled > before.nr_throttled,
        "{before:?} -> {after:?}"
    );
    assert!(after.nr_periods > before.nr_periods);
    assert!(
        used < wall * 3 / 10,
        "{used} µs used in {wall} µs under a 10% limit"
    );
}

#[tokio::test]
async fn frozen_process_gains_no_cpu_time() {
    let Some(backend) = testkit::backend(NAME, "frozen_process_gains_no_cpu_time") else {
        return;
    };
    let scratch = Scratch::new(backend, "frz");
    let cg = scratch.child("f", &Resources::default());
    let mut events = cg.events().unwrap();
    let mut h = Helper::spawn("busy", "");
    cg.attach(h.pid()).unwrap();
    h.go();
    h.line("BUSY");
    cg.freeze().unwrap();
    assert_eq!(key(cg.as_ref(), "cgroup.events", "frozen"), 1);
    assert_eq!(
        wait_for(&mut events, 10, |e| *e == CgroupEvent::Frozen).await,
        CgroupEvent::Frozen
    );
    let u1 = cg.stats().unwrap().cpu.unwrap().usage_usec;
    std::thread::sleep(Duration::from_millis(500));
    let u2 = cg.stats().unwrap().cpu.unwrap().usage_usec;
    cg.thaw().unwrap();
    assert_eq!(
        wait_for(&mut events, 10, |e| *e == CgroupEvent::Thawed).await,
        CgroupEvent::Thawed
    );
    std::thread::sleep(Duration::from_millis(500));
    let u3 = cg.stats().unwrap().cpu.unwrap().usage_usec;
    eprintln!(
        "frozen_process_gains_no_cpu_time: frozen +{} µs in 500 ms, thawed +{} µs in 500 ms",
        u2 - u1,
        u3 - u2
    );
    assert!(u2 - u1 < 2_000, "frozen yet used {} µs", u2 - u1);
    assert!(u3 - u2 > 50_000, "thawed yet used only {} µs", u3 - u2);
}

#[tokio::test]
async fn destroy_kills_double_forked_processes() {
    let Some(backend) = testkit::backend(NAME, "destroy_kills_double_forked_processes") else {
        return;
    };
    // Orphans of our children are reparented to us, so we can reap them and see how they died.
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let scratch = Scratch::new(backend, "dfork");
    let cg = scratch.child("d", &Resources::default());
    let d = dir(cg.as_ref());
    let mut events = cg.events().unwrap();
    let mut grandchildren = Vec::new();
    for _ in 0..3 {
        let mut h = Helper::spawn("double-fork", "");
        cg.attach(h.pid()).unwrap();
        h.go();
        grandchildren.push(h.line("GRANDCHILD").parse::<i32>().unwrap());
        let st = h
            .wait_timeout(Duration::from_secs(10))
            .expect("the middle process exits");
        assert_eq!(st.code(), Some(0));
    }
    let mut inside = cg.pids().unwrap();
    inside.sort();
    let mut want: Vec<u32> = grandchildren.iter().map(|p| *p as u32).collect();
    want.sort();
    assert_eq!(
        inside, want,
        "only the orphaned grandchildren remain, still inside"
    );
    cg.destroy().unwrap();
    assert!(!d.exists(), "{} removed", d.display());
    for gc in grandchildren {
        let st = waitpid(Pid::from_raw(gc), None).unwrap();
        assert_eq!(
            st,
            WaitStatus::Signaled(Pid::from_raw(gc), nix::sys::signal::Signal::SIGKILL, false)
        );
    }
    assert_eq!(
        wait_for(&mut events, 10, |e| *e == CgroupEvent::Emptied).await,
        CgroupEvent::Emptied
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .unwrap()
            .is_none(),
        "stream ends with the cgroup"
    );
}
