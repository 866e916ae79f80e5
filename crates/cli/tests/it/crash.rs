//! Crashes: `isol run` SIGKILLed at random points of a spawn. A foreground box dies with
//! its `isol run` (its init or command has PR_SET_PDEATHSIG = SIGKILL, armed before it
//! does anything and checked against a pidfd of isol, so a death in between is not
//! missed), and the record, written before the cgroup is created and naming it, leads
//! `isol gc` to everything the box made. Afterwards no box shows in `isol ps`, and the
//! cgroups beneath the scratch, the mounts, the state directory and the processes are
//! as before.
//!
//! The delays come from a seeded generator; the seed is printed, and
//! `ISOL_CRASH_SEED=N` replays a run.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{eventually, Env, Snapshot};

const ITERATIONS: usize = 200;
/// Check everything is collectable after this many kills, so a failure is near its cause.
const BATCH: usize = 50;

/// xorshift64*: small, seedable, good enough for delays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Every record in the state directory parses as JSON; no temp file is left.
fn state_is_sound(env: &Env) {
    for kind in ["boxes", "pods"] {
        let dir = env.state.path().join(kind);
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(!name.ends_with(".tmp"), "a temp file is left: {name}");
            if name.ends_with(".json") {
                let text = std::fs::read_to_string(e.path()).unwrap();
                serde_json::from_str::<serde_json::Value>(&text)
                    .unwrap_or_else(|err| panic!("{name} is not JSON ({err}): {text}"));
            }
        }
    }
}

fn collected(env: &Env, before: &Snapshot, context: &str) {
    // The inits get their SIGKILL as isol dies; the kernel takes a moment to end them.
    let started = Instant::now();
    let out = env.isol(&["gc"]);
    assert_eq!(out.code, 0, "{context}: gc failed: {out:?}");
    eventually(&format!("{context}: ps shows no box"), || {
        env.isol(&["ps", "--json"]).json() == serde_json::json!([])
    });
    eventually(
        &format!("{context}: no process of the test is left"),
        || env.marked().is_empty() && env.scratch_processes().is_empty(),
    );
    for pod in env
        .isol(&["pod", "ls", "--json"])
        .json()
        .as_array()
        .unwrap()
    {
        assert_eq!(
            pod["members"],
            serde_json::json!([]),
            "{context}: {pod} (gc said: {})",
            out.stderr
        );
    }
    env.isol(&["gc"]).ok();
    state_is_sound(env);
    assert_eq!(&env.snapshot(), before, "{context}: something is left");
    eprintln!(
        "{context}: collected in {:?} ({})",
        started.elapsed(),
        out.stdout.lines().count()
    );
}

#[test]
fn killing_isol_run_mid_spawn_leaves_nothing_gc_cannot_collect() {
    let Some(env) = Env::new("killing_isol_run_mid_spawn_leaves_nothing_gc_cannot_collect") else {
        return;
    };
    let seed = std::env::var("ISOL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test seed: {seed} (replay with ISOL_CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    // Every fifth run joins a pod: a member claims its name in the pod's record too.
    env.pod_create("crashpod", &[]).ok();
    let before = env.snapshot();
    assert!(env.marked().is_empty());
    let started = Instant::now();
    let (mut finished, mut killed) = (0, 0);
    for i in 0..ITERATIONS {
        // Half the boxes would outlive the kill by far; half end at once. Some are named
        // (a crash must not keep the name), some are not.
        let long = rng.next().is_multiple_of(2);
        let name = format!("crash-{i}");
        let mut args: Vec<&str> = Vec::new();
        if rng.next().is_multiple_of(2) {
            args.extend(["--name", &name]);
        }
        if rng.next().is_multiple_of(4) {
            args.extend(["--memory", "64M", "--pids", "32"]);
        }
        args.push("--");
        if long {
            args.extend(["sleep", "1000"]);
        } else {
            args.push("/bin/true");
        }
        let delay = Duration::from_micros(rng.next() % 30_000);
        let run: Vec<&str> = if rng.next().is_multiple_of(5) {
            let mut run = vec!["run", "--pod", "crashpod"];
            run.extend(&args);
            run
        } else {
            env.run_args(&args)
        };
        let mut child = env
            .command(&run)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start isol");
        std::thread::sleep(delay);
        // Our own child: SIGKILL by pid, then reap it.
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.code().is_some() {
            finished += 1;
        } else {
            killed += 1;
        }
        if (i + 1) % BATCH == 0 {
            collected(
                &env,
                &before,
                &format!("seed {seed}, after iteration {i} (last delay {delay:?})"),
            );
        }
    }
    eprintln!(
        "{ITERATIONS} runs in {:?}: {killed} killed, {finished} finished before the kill",
        started.elapsed()
    );
    env.isol(&["pod", "rm", "crashpod"]).ok();
    assert!(
        killed > ITERATIONS / 2,
        "most runs were killed mid-way: {killed}"
    );
}

#[test]
fn killing_isol_rm_midway_leaves_a_box_that_rm_or_gc_finishes() {
    let Some(env) = Env::new("killing_isol_rm_midway_leaves_a_box_that_rm_or_gc_finishes") else {
        return;
    };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("rm crash seed: {seed}");
    let mut rng = Rng(seed);
    let before = env.snapshot();
    for i in 0..20 {
        let name = format!("victim-{i}");
        env.run(&[
            "-d",
            "--name",
            &name,
            "--",
            "/bin/sh",
            "-c",
            "sleep 1000 & sleep 1000",
        ])
        .ok();
        let delay = Duration::from_micros(rng.next() % 20_000);
        let mut rm = env
            .command(&["rm", "-f", &name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start isol rm");
        std::thread::sleep(delay);
        let _ = rm.kill();
        rm.wait().unwrap();
        // Whatever the interrupted rm left — a frozen box, a box without its
        // processes, a half-removed cgroup — is a box that `ps` lists consistently or
        // that is gone; `rm -f` (or gc, for a dead one) finishes the job.
        let ps = env.isol(&["ps", "--json"]).json();
        if let Some(row) = ps
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name.as_str())
        {
            assert!(
                matches!(row["state"].as_str(), Some("running" | "frozen" | "exited")),
                "{row}"
            );
            env.isol(&["rm", "-f", &name]).ok();
        }
    }
    collected(&env, &before, &format!("rm crash seed {seed}"));
}

#[test]
fn a_killed_isol_run_takes_its_box_with_it() {
    let Some(env) = Env::new("a_killed_isol_run_takes_its_box_with_it") else {
        return;
    };
    let before = env.snapshot();
    // With a pid namespace (the init dies, and with it the namespace) and without (the
    // command itself dies; what it forked stays in the cgroup until gc).
    for ns in [None, Some("mnt,net,ipc,uts")] {
        let mut args = vec!["--name", "fg"];
        if let Some(ns) = ns {
            args.extend(["--ns", ns]);
        }
        args.extend(["--", "/bin/sh", "-c", "sleep 1000 & sleep 1000"]);
        let mut child = env
            .command(&env.run_args(&args))
            .stdin(Stdio::null())
            .spawn()
            .expect("start isol");
        let pid = {
            let mut pid = None;
            eventually("the box runs", || {
                let ps = env.isol(&["ps", "--json"]).json();
                pid = ps
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["name"] == "fg" && r["pid"] != child.id())
                    .and_then(|r| r["pid"].as_u64());
                pid.is_some()
                    && env
                        .marked()
                        .iter()
                        .filter(|p| {
                            std::fs::read_to_string(format!("/proc/{p}/comm"))
                                .unwrap_or_default()
                                .trim()
                                == "sleep"
                        })
                        .count()
                        == 2
            });
            pid.unwrap() as u32
        };
        assert!(crate::common::alive(pid));
        let _ = child.kill();
        child.wait().unwrap();
        eventually(&format!("{ns:?}: the box's process dies with isol"), || {
            !crate::common::alive(pid)
        });
        collected(&env, &before, &format!("--ns {ns:?}"));
    }
}
