//! One conformance suite for every backend: the same `Resources` must mean the same thing
//! on cgroup v1 and v2 (what a pids limit of 0 means, what `max` means, what swap means).
//!
//! Each case takes the test's [`Scratch`] cgroup, works in children of it (destroyed at
//! the end of the case), and asserts through `Cgroup::read` — i.e. in v2 terms, whatever
//! the backend writes underneath. [`run_all`] runs every case. The cases:
//!
//! - [`pids_zero_forbids_fork`]: `pids.max = 0` reads back `Value(0)`, and a shell
//!   attached to the cgroup cannot fork (a subshell fails, the shell reports the fork
//!   error); with `max` the same script forks.
//! - [`max_reads_back_max`]: `max` for memory max, pids max and the cpu max quota reads
//!   back as `Limit::Max` (v1's -1 and PAGE_COUNTER_MAX included).
//! - [`memory_max_exact`]: a page-multiple memory max (64M) reads back exactly.
//! - [`cpu_weight_default`]: cpu weight 100 reads back 100 (v1 via cpu.shares 1024).
//! - [`cpu_max_half`]: 0.5 cpus reads back as quota 50000 per period 100000.
//! - [`swap_semantics`]: memory max M with swap_max S reads back S (swap is *beyond*
//!   memory on every backend); where the kernel does not account swap, the backend
//!   refuses with `Unsupported` naming `memory.swap_max`, and creates nothing.
//! - [`v2_only_setting`]: `memory.min` is honoured and reads back where the backend has it
//!   (v2); `cgroup-v1` refuses it with `Unsupported` naming `memory.min` and itself, and
//!   a refused `create` leaves no cgroup behind.
//! - [`empty_apply_changes_nothing`]: applying a default `Resources` leaves every setting
//!   as it was.
//! - [`frozen_freezes`]: `frozen = true` reads back frozen, `false` reads back thawed.
//! - [`check_validates`]: `Backend::check` refuses a value out of range (cpu weight 0)
//!   as `create` would, naming the field, on every backend (v2's check once let it by).
//! - [`hugetlb_all_or_none`]: huge page limits for a page size the kernel has and one
//!   it lacks are refused whole, naming `hugetlb` — the size it has keeps its limit (v2
//!   once wrote the first before finding the second missing).

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use isol_ns_core::resources::HugetlbLimit;
use isol_ns_core::units::{parse_cpus, CpuMax, Limit};
use isol_ns_core::{Cgroup, Error, Resources};

use crate::Scratch;

/// Runs every case against `scratch`'s backend.
pub fn run_all(scratch: &Scratch) {
    pids_zero_forbids_fork(scratch);
    max_reads_back_max(scratch);
    memory_max_exact(scratch);
    cpu_weight_default(scratch);
    cpu_max_half(scratch);
    swap_semantics(scratch);
    v2_only_setting(scratch);
    empty_apply_changes_nothing(scratch);
    frozen_freezes(scratch);
    hugetlb_all_or_none(scratch);
    check_validates(scratch);
}

/// A child cgroup of the scratch cgroup, destroyed when dropped.
pub struct CaseCgroup {
    cg: Option<Box<dyn Cgroup>>,
}

impl CaseCgroup {
    /// Creates `name` beneath `scratch` with `r` (panics, naming it, on failure).
    pub fn new(scratch: &Scratch, name: &str, r: &Resources) -> CaseCgroup {
        CaseCgroup {
            cg: Some(scratch.child(name, r)),
        }
    }

    /// The cgroup.
    pub fn cg(&self) -> &dyn Cgroup {
        self.cg.as_deref().expect("alive until drop")
    }
}

impl Drop for CaseCgroup {
    fn drop(&mut self) {
        if let Some(cg) = self.cg.take() {
            if let Err(e) = cg.destroy() {
                eprintln!(
                    "destroy {}: {e} (the scratch cgroup's drop will clean up)",
                    cg.path()
                );
            }
        }
    }
}

/// A `/bin/sh -c SCRIPT` child with piped stdio, collected by reader threads, killed (by
/// pid) and reaped on drop. Scripts that must run inside a cgroup start with `read x`:
/// attach the pid, then call [`ShChild::go`].
pub struct ShChild {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
    status: Option<ExitStatus>,
}

fn collect(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let buf = Arc::new(Mutex::new(String::new()));
    let b = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    });
    buf
}

impl ShChild {
    /// Starts `/bin/sh -c script`.
    pub fn spawn(script: &str) -> ShChild {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn /bin/sh -c {script:?}: {e}"));
        let out = collect(child.stdout.take().expect("piped stdout"));
        let err = collect(child.stderr.take().expect("piped stderr"));
        ShChild {
            stdin: child.stdin.take(),
            child,
            out,
            err,
            status: None,
        }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a line on stdin (releases a `read x`).
    pub fn go(&mut self) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(b"go\n")
            .expect("write to the child's stdin");
        stdin.flush().expect("flush the child's stdin");
    }

    /// What it wrote to stdout so far.
    pub fn stdout(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    /// Waits until stdout contains `needle`; false on timeout.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.stdout().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Waits for it to exit; `None` on timeout.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(s) = self.status {
                return Some(s);
            }
            if let Some(s) = self.child.try_wait().expect("wait for the child") {
                self.status = Some(s);
                // Give the reader threads a moment to drain the pipes.
                std::thread::sleep(Duration::from_millis(20));
                return Some(s);
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ShChild {
    fn drop(&mut self) {
        if self.status.is_none() && self.child.try_wait().ok().flatten().is_none() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = self.child.wait();
        }
    }
}

const FORK_SCRIPT: &str = "read x; if ( : ); then echo forked; fi; echo done";

/// `pids.max = 0`: reads back 0, and nothing inside can fork.
pub fn pids_zero_forbids_fork(scratch: &Scratch) {
    let mut r = Resources::default();
    r.pids.max = Some(Limit::Value(0));
    let zero = CaseCgroup::new(scratch, "pids-zero", &r);
    assert_eq!(
        zero.cg().read().expect("read").pids.max,
        Some(Limit::Value(0)),
        "pids max 0 reads back 0"
    );

    let mut sh = ShChild::spawn(FORK_SCRIPT);
    zero.cg()
        .attach(sh.pid())
        .expect("attach the shell (joining is never refused by pids.max)");
    sh.go();
    let status = sh.wait(Duration::from_secs(20)).expect("the shell ends");
    assert!(
        !sh.stdout().contains("forked"),
        "a fork succeeded under pids.max=0: stdout {:?}",
        sh.stdout()
    );
    assert!(
        sh.stderr().to_lowercase().contains("fork"),
        "the shell should report the failed fork: status {status}, stderr {:?}",
        sh.stderr()
    );

    // The control: the same script forks when the limit is max.
    let mut r = Resources::default();
    r.pids.max = Some(Limit::Max);
    let open = CaseCgroup::new(scratch, "pids-max", &r);
    let mut sh = ShChild::spawn(FORK_SCRIPT);
    open.cg().attach(sh.pid()).expect("attach");
    sh.go();
    assert!(
        sh.wait(Duration::from_secs(20))
            .expect("the shell ends")
            .success(),
        "stderr {:?}",
        sh.stderr()
    );
    assert_eq!(sh.stdout(), "forked\ndone\n");
}

/// `max` reads back as `Limit::Max` for memory, pids and the cpu quota.
pub fn max_reads_back_max(scratch: &Scratch) {
    // Start from finite values so that reading max proves a write, not a default.
    let mut r = Resources::default();
    r.memory.max = Some(Limit::Value(32 << 20));
    r.pids.max = Some(Limit::Value(10));
    r.cpu.max = Some(parse_cpus("cpus", "0.5").expect("0.5 cpus"));
    let c = CaseCgroup::new(scratch, "max", &r);
    let before = c.cg().read().expect("read");
    assert_eq!(
        (before.memory.max, before.pids.max),
        (Some(Limit::Value(32 << 20)), Some(Limit::Value(10)))
    );
    r.memory.max = Some(Limit::Max);
    r.pids.max = Some(Limit::Max);
    r.cpu.max = Some(CpuMax {
        quota: Limit::Max,
        period: CpuMax::DEFAULT_PERIOD,
    });
    c.cg().apply(&r).expect("apply max");
    let back = c.cg().read().expect("read");
    assert_eq!(back.memory.max, Some(Limit::Max), "memory max");
    assert_eq!(back.pids.max, Some(Limit::Max), "pids max");
    assert_eq!(
        back.cpu.max.map(|m| m.quota),
        Some(Limit::Max),
        "cpu max quota"
    );
}

/// A page-multiple memory max reads back exactly.
pub fn memory_max_exact(scratch: &Scratch) {
    let mut r = Resources::default();
    r.memory.max = Some(Limit::Value(64 << 20));
    let c = CaseCgroup::new(scratch, "mem64", &r);
    assert_eq!(
        c.cg().read().expect("read").memory.max,
        Some(Limit::Value(64 << 20))
    );
    let s = c.cg().stats().expect("stats");
    assert_eq!(
        s.memory.expect("memory stats").max,
        Some(Limit::Value(64 << 20)),
        "stats show the limit too"
    );
}

/// cpu weight 100 (the default) reads back 100.
pub fn cpu_weight_default(scratch: &Scratch) {
    let mut r = Resources::default();
    r.cpu.weight = Some(100);
    let c = CaseCgroup::new(scratch, "weight", &r);
    assert_eq!(c.cg().read().expect("read").cpu.weight, Some(100));
    r.cpu.weight = Some(10_000);
    c.cg().apply(&r).expect("apply weight 10000");
    assert_eq!(
        c.cg().read().expect("read").cpu.weight,
        Some(10_000),
        "the top of the range is exact too"
    );
}

/// 0.5 cpus reads back as 50000 µs per 100000 µs.
pub fn cpu_max_half(scratch: &Scratch) {
    let mut r = Resources::default();
    r.cpu.max = Some(parse_cpus("cpus", "0.5").expect("0.5 cpus"));
    let c = CaseCgroup::new(scratch, "half", &r);
    assert_eq!(
        c.cg().read().expect("read").cpu.max,
        Some(CpuMax {
            quota: Limit::Value(50_000),
            period: 100_000
        })
    );
}

/// Swap is beyond memory: max M + swap S reads back S (or Unsupported naming swap).
pub fn swap_semantics(scratch: &Scratch) {
    let mut r = Resources::default();
    r.memory.max = Some(Limit::Value(64 << 20));
    r.memory.swap_max = Some(Limit::Value(32 << 20));
    match scratch.backend().create(&scratch.parent(), "swap", &r) {
        Ok(cg) => {
            let c = CaseCgroup { cg: Some(cg) };
            let back = c.cg().read().expect("read");
            assert_eq!(
                (back.memory.max, back.memory.swap_max),
                (Some(Limit::Value(64 << 20)), Some(Limit::Value(32 << 20)))
            );
            // Lowering memory keeps the swap allowance.
            let mut lower = Resources::default();
            lower.memory.max = Some(Limit::Value(48 << 20));
            c.cg().apply(&lower).expect("lower memory max");
            let back = c.cg().read().expect("read");
            assert_eq!(
                (back.memory.max, back.memory.swap_max),
                (Some(Limit::Value(48 << 20)), Some(Limit::Value(32 << 20)))
            );
            // And unlimited swap reads back unlimited.
            let mut unl = Resources::default();
            unl.memory.swap_max = Some(Limit::Max);
            c.cg().apply(&unl).expect("swap max");
            assert_eq!(
                c.cg().read().expect("read").memory.swap_max,
                Some(Limit::Max)
            );
        }
        Err(e) => {
            // Named as the Resources field on every backend (v2 once said memory.swap.max).
            assert!(
                matches!(&e, Error::Unsupported { setting, .. } if setting == "memory.swap_max"),
                "only a missing swap accounting may refuse swap_max, naming it: {e}"
            );
            assert_no_child(scratch, "swap");
        }
    }
}

/// `memory.min`: honoured on v2; on v1 `Unsupported` naming it and the backend.
pub fn v2_only_setting(scratch: &Scratch) {
    let mut r = Resources::default();
    r.memory.min = Some(Limit::Value(8 << 20));
    let backend = scratch.backend().name();
    let err = scratch.backend().check(&r).err();
    match scratch.backend().create(&scratch.parent(), "min", &r) {
        Ok(cg) => {
            let c = CaseCgroup { cg: Some(cg) };
            assert!(err.is_none(), "check refused what create accepted: {err:?}");
            assert_ne!(backend, "cgroup-v1", "cgroup v1 has no memory.min");
            assert_eq!(
                c.cg().read().expect("read").memory.min,
                Some(Limit::Value(8 << 20))
            );
        }
        Err(e) => {
            assert_eq!(
                backend, "cgroup-v1",
                "only cgroup-v1 may refuse memory.min: {e}"
            );
            let msg = e.to_string();
            assert!(
                matches!(&e, Error::Unsupported { setting, backend: b, .. } if setting == "memory.min" && *b == backend),
                "refusal names memory.min and {backend}: {msg}"
            );
            assert!(msg.contains("memory.min") && msg.contains(backend), "{msg}");
            assert!(
                err.is_some_and(|e| e.to_string() == msg),
                "check refuses it the same way"
            );
            assert_no_child(scratch, "min");
        }
    }
}

/// Applying nothing changes nothing.
pub fn empty_apply_changes_nothing(scratch: &Scratch) {
    let mut r = Resources::default();
    r.memory.max = Some(Limit::Value(96 << 20));
    r.pids.max = Some(Limit::Value(42));
    r.cpu.weight = Some(200);
    let c = CaseCgroup::new(scratch, "noop", &r);
    let before = c.cg().read().expect("read");
    c.cg().apply(&Resources::default()).expect("apply nothing");
    let after = c.cg().read().expect("read");
    assert_eq!(before, after);
    assert_eq!(
        (after.memory.max, after.pids.max),
        (Some(Limit::Value(96 << 20)), Some(Limit::Value(42)))
    );
}

/// `frozen = true` reads back frozen; `false` thawed.
pub fn frozen_freezes(scratch: &Scratch) {
    let c = CaseCgroup::new(scratch, "freeze", &Resources::default());
    let mut sh = ShChild::spawn("read x; echo started; while :; do :; done");
    c.cg().attach(sh.pid()).expect("attach");
    sh.go();
    assert!(
        sh.wait_for("started", Duration::from_secs(10)),
        "the busy loop starts"
    );
    let mut r = Resources {
        frozen: Some(true),
        ..Resources::default()
    };
    c.cg().apply(&r).expect("freeze");
    assert_eq!(c.cg().read().expect("read").frozen, Some(true));
    r.frozen = Some(false);
    c.cg().apply(&r).expect("thaw");
    assert_eq!(c.cg().read().expect("read").frozen, Some(false));
    assert!(
        sh.wait(Duration::from_millis(50)).is_none(),
        "the busy loop is still running"
    );
}

/// A page size the kernel lacks beside one it has: refused whole, naming `hugetlb`.
pub fn hugetlb_all_or_none(scratch: &Scratch) {
    let c = CaseCgroup::new(scratch, "huge", &Resources::default());
    // The page size the kernel has: the first one the cgroup shows, else x86-64's 2MB.
    let have = c
        .cg()
        .read()
        .expect("read")
        .hugetlb
        .first()
        .map_or_else(|| "2MB".to_string(), |h| h.page_size.clone());
    let wanted = HugetlbLimit {
        page_size: have.clone(),
        max: Limit::Value(2 << 20),
    };
    let r = Resources {
        hugetlb: vec![wanted.clone(), HugetlbLimit::new("64GB", Limit::Max)],
        ..Resources::default()
    };
    let err = c.cg().apply(&r).expect_err("no kernel has 64GB huge pages");
    assert!(
        matches!(&err, Error::Unsupported { setting, .. } if setting == "hugetlb"),
        "refused naming hugetlb: {err}"
    );
    let after = c.cg().read().expect("read").hugetlb;
    assert!(
        !after.contains(&wanted),
        "{have}'s limit was written though the request was refused: {after:?}"
    );
}

/// `check` refuses an invalid value as `create` does, naming the field.
pub fn check_validates(scratch: &Scratch) {
    let mut r = Resources::default();
    r.cpu.weight = Some(0);
    let backend = scratch.backend();
    for err in [
        backend.check(&r).expect_err("check: cpu weight 0"),
        backend
            .create(&scratch.parent(), "invalid", &r)
            .expect_err("create: cpu weight 0"),
    ] {
        assert!(
            matches!(&err, Error::Invalid { field, .. } if field == "cpu.weight"),
            "{err}"
        );
    }
    assert_no_child(scratch, "invalid");
}

fn assert_no_child(scratch: &Scratch, name: &str) {
    for dir in scratch.cgroup().dirs() {
        assert!(
            !dir.join(name).exists(),
            "a refused create left {}",
            dir.join(name).display()
        );
    }
}
