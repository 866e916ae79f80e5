//! Hostile workloads against the real binary: a fork bomb, a memory hog, a process that
//! ignores SIGTERM, processes that escape their parent (setsid, double fork), and one
//! moved into a child cgroup of its box. Each is contained while it runs and leaves
//! nothing behind once its box is removed: no process (found by the environment mark
//! every box inherits, so an escaped one is found too), no cgroup, no record.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{eventually, Env};

/// The box's cgroup directories, from `inspect --json`.
fn dirs_of(env: &Env, name: &str) -> Vec<PathBuf> {
    let v = env.isol(&["inspect", name, "--json"]).json();
    v["cgroup_dirs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| PathBuf::from(d.as_str().unwrap()))
        .collect()
}

/// The directory (of `dirs`) that has `file`.
fn dir_with(dirs: &[PathBuf], file: &str) -> PathBuf {
    dirs.iter()
        .find(|d| d.join(file).exists())
        .unwrap_or_else(|| panic!("no cgroup dir has {file}: {dirs:?}"))
        .clone()
}

fn read_u64(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .parse()
        .unwrap()
}

/// Tasks (threads) in `dir` and beneath it: `tasks` on v1, `cgroup.threads` on v2.
fn count_tasks(dir: &Path) -> usize {
    let mut n = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for f in ["tasks", "cgroup.threads"] {
            if let Ok(s) = std::fs::read_to_string(d.join(f)) {
                n += s.lines().count();
                break;
            }
        }
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(e.path());
            }
        }
    }
    n
}

/// `max N` of a pids.events file (v1 and v2 both have it).
fn pids_events_max(dir: &Path) -> u64 {
    let s = std::fs::read_to_string(dir.join("pids.events")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("max "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("pids.events without max: {s:?}"))
}

#[test]
fn a_fork_bomb_is_held_at_the_pids_limit_and_rm_force_clears_it() {
    let Some(env) = Env::new("a_fork_bomb_is_held_at_the_pids_limit_and_rm_force_clears_it") else {
        return;
    };
    let before = env.snapshot();
    // Every process of the bomb forks another every 50 ms, forever: the box sits at its
    // limit and keeps trying, so the kernel refuses forks the whole time. A shell whose
    // fork fails exits, so the box's command only starts the bomb and then sleeps: the
    // box lives (its init ends with its command) while the bomb churns beneath it.
    env.run(&[
        "-d",
        "--name",
        "bomb",
        "--pids",
        "64",
        "--memory",
        "256M",
        "--",
        "/bin/sh",
        "-c",
        "f() { while :; do f & sleep 0.05; done; }; f & exec sleep 1000",
    ])
    .ok();
    let dirs = dirs_of(&env, "bomb");
    let pids_dir = dir_with(&dirs, "pids.max");
    assert_eq!(
        std::fs::read_to_string(pids_dir.join("pids.max"))
            .unwrap()
            .trim(),
        "64"
    );
    // Sample from outside while it runs: the kernel's count and our own count of tasks.
    let started = Instant::now();
    let (mut max_current, mut max_tasks, mut samples) = (0, 0, 0);
    while started.elapsed() < Duration::from_secs(3) {
        let current = read_u64(&pids_dir.join("pids.current"));
        let tasks = count_tasks(&pids_dir);
        assert!(current <= 64, "pids.current {current} > 64");
        assert!(tasks <= 64, "{tasks} tasks > 64");
        max_current = max_current.max(current);
        max_tasks = max_tasks.max(tasks);
        samples += 1;
        if max_current == 64
            && pids_events_max(&pids_dir) > 0
            && started.elapsed() > Duration::from_secs(1)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        max_current, 64,
        "the bomb reached the limit ({samples} samples)"
    );
    assert!(max_tasks > 32, "tasks seen: {max_tasks}");
    let refused = pids_events_max(&pids_dir);
    assert!(refused > 0, "pids.events counts refused forks");
    // isol stats reports the same from the same files.
    let st = env.isol(&["stats", "bomb", "--json"]).json();
    assert_eq!(st["pids"]["max"], 64, "{st}");
    assert!(st["pids"]["current"].as_u64().unwrap() <= 64, "{st}");
    assert!(
        st["pids"]["events_max"].as_u64().unwrap() >= refused,
        "{st}"
    );
    // The bomb's shells come and go (one whose fork fails exits), and a scan of /proc
    // on a loaded machine can catch a low moment: look until a scan sees it in force.
    crate::common::eventually("the bomb still runs (more than 10 processes)", || {
        env.marked().len() > 10
    });
    assert_eq!(env.isol(&["ps", "--json"]).json()[0]["state"], "running");

    env.isol(&["rm", "-f", "bomb"]).ok();
    assert_eq!(
        env.marked(),
        Vec::<u32>::new(),
        "every process of the bomb is gone"
    );
    for d in &dirs {
        assert!(!d.exists(), "{} is gone", d.display());
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn a_memory_hog_is_oom_killed_and_events_wait_inspect_say_so() {
    let Some(env) = Env::new("a_memory_hog_is_oom_killed_and_events_wait_inspect_say_so") else {
        return;
    };
    let before = env.snapshot();
    // The hog is the box's command itself (exec), so its death is the box's status.
    env.run(&[
        "-d",
        "--name",
        "hog",
        "--memory",
        "32M",
        "--",
        "/bin/sh",
        "-c",
        "sleep 1; exec tail /dev/zero",
    ])
    .ok();
    let out = env.isol(&["events", "hog", "--json"]).ok();
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"oom_kill"), "{out}");
    let exit = events.last().unwrap();
    assert_eq!(exit["event"], "exit", "{out}");
    assert_eq!(
        (exit["status"].as_i64(), exit["oom_killed"].as_bool()),
        (Some(137), Some(true)),
        "{out}"
    );
    assert_eq!(env.isol(&["wait", "hog"]).code, 137);
    let ins = env.isol(&["inspect", "hog", "--json"]).json();
    assert_eq!(ins["exit"]["signal"], 9, "{ins}");
    assert_eq!(ins["exit"]["oom_killed"], true, "{ins}");
    let text = env.isol(&["inspect", "hog"]).ok();
    assert!(text.contains("exit:       137 (OOM killed)"), "{text}");
    env.isol(&["rm", "hog"]).ok();
    assert_eq!(env.marked(), Vec::<u32>::new());
    assert_eq!(env.snapshot(), before);
}

const IGNORES_TERM: &str = "trap '' TERM; while :; do sleep 1; done";

#[test]
fn a_process_ignoring_sigterm_survives_kill_and_falls_to_kill_t_and_rm_f() {
    let Some(env) =
        Env::new("a_process_ignoring_sigterm_survives_kill_and_falls_to_kill_t_and_rm_f")
    else {
        return;
    };
    let before = env.snapshot();
    // Without a pid namespace the shell is the box's process itself (no init between).
    for (name, ns) in [
        ("stubborn-init", None),
        ("stubborn-bare", Some("mnt,net,ipc,uts")),
    ] {
        let mut args = vec!["-d", "--name", name];
        if let Some(ns) = ns {
            args.extend(["--ns", ns]);
        }
        args.extend(["--", "/bin/sh", "-c", IGNORES_TERM]);
        env.run(&args).ok();
        let pid = env.isol(&["inspect", name, "--json"]).json()["pid"]
            .as_u64()
            .unwrap() as u32;
        // Let the trap be set before TERM arrives.
        std::thread::sleep(Duration::from_millis(300));
        env.isol(&["kill", name]).ok();
        std::thread::sleep(Duration::from_millis(500));
        assert!(crate::common::alive(pid), "{name}: TERM is ignored");
        let ps = env.isol(&["ps", "--json"]).json();
        let row = ps
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()
            .clone();
        assert_eq!(row["state"], "running", "{row}");
        let started = Instant::now();
        env.isol(&["kill", "-t", "0.5", name]).ok();
        assert!(started.elapsed() >= Duration::from_millis(500));
        assert_eq!(
            env.isol(&["wait", name]).code,
            137,
            "{name}: SIGKILL after the grace period"
        );
        env.isol(&["rm", name]).ok();
    }
    // rm -f does not wait for a TERM that will never be obeyed.
    env.run(&[
        "-d",
        "--name",
        "stubborn",
        "--",
        "/bin/sh",
        "-c",
        IGNORES_TERM,
    ])
    .ok();
    assert!(!env.marked().is_empty());
    env.isol(&["rm", "-f", "stubborn"]).ok();
    assert_eq!(env.marked(), Vec::<u32>::new());
    assert_eq!(env.snapshot(), before);
}

/// Escapes its parent three ways: a new session, a double fork, and a plain orphan.
const ESCAPES: &str = "setsid /bin/sh -c 'sleep 1000 & sleep 1000' & (sleep 1000 &) & (setsid sleep 1000 &); sleep 1000";

#[test]
fn escaped_processes_die_with_their_box() {
    let Some(env) = Env::new("escaped_processes_die_with_their_box") else {
        return;
    };
    let before = env.snapshot();
    // With a pid namespace the orphans are reparented to the box's init; without one,
    // to the host's init or a subreaper: only the cgroup still holds them.
    for (name, ns) in [
        ("escape-pidns", None),
        ("escape-bare", Some("mnt,net,ipc,uts,cgroup")),
    ] {
        let mut args = vec!["-d", "--name", name];
        if let Some(ns) = ns {
            args.extend(["--ns", ns]);
        }
        args.extend(["--", "/bin/sh", "-c", ESCAPES]);
        env.run(&args).ok();
        let pid = env.isol(&["inspect", name, "--json"]).json()["pid"]
            .as_u64()
            .unwrap() as u32;
        // The sleeps whose parent is no longer their creator.
        eventually(&format!("{name}: five sleeps run"), || {
            let sleeps = env
                .marked()
                .into_iter()
                .filter(|p| comm(*p) == "sleep")
                .count();
            sleeps >= 5
        });
        if ns.is_some() {
            let orphans: Vec<u32> = env
                .marked()
                .into_iter()
                .filter(|p| comm(*p) == "sleep" && ppid(*p) != pid && ppid(*p) != 0)
                .filter(|p| !is_descendant(*p, pid))
                .collect();
            assert!(
                !orphans.is_empty(),
                "some sleep left the box's process tree"
            );
        }
        env.isol(&["rm", "-f", name]).ok();
        assert_eq!(
            env.marked(),
            Vec::<u32>::new(),
            "{name}: escaped processes are gone"
        );
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn a_process_moved_into_a_nested_cgroup_dies_and_the_nested_cgroup_goes() {
    let Some(env) =
        Env::new("a_process_moved_into_a_nested_cgroup_dies_and_the_nested_cgroup_goes")
    else {
        return;
    };
    let before = env.snapshot();
    env.run(&[
        "-d",
        "--name",
        "nest",
        "--",
        "/bin/sh",
        "-c",
        "sleep 1000 & sleep 1000 & wait",
    ])
    .ok();
    let dirs = dirs_of(&env, "nest");
    let init = env.isol(&["inspect", "nest", "--json"]).json()["pid"]
        .as_u64()
        .unwrap() as u32;
    eventually("two sleeps run", || {
        env.marked()
            .into_iter()
            .filter(|p| comm(*p) == "sleep")
            .count()
            == 2
    });
    let sleeper = env
        .marked()
        .into_iter()
        .find(|p| comm(*p) == "sleep")
        .unwrap();
    // A child cgroup in every hierarchy of the box, and one of the box's own processes
    // (started by this test through isol) moved into it, as a workload managing its own
    // subtree would.
    for d in &dirs {
        let sub = d.join("inner");
        std::fs::create_dir(&sub).unwrap();
        // A v1 cpuset cgroup starts with no cpus and mems, and takes no task until given some.
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(v) = std::fs::read_to_string(d.join(f)) {
                std::fs::write(sub.join(f), v.trim()).unwrap();
            }
        }
        std::fs::write(sub.join("cgroup.procs"), sleeper.to_string()).unwrap();
        let procs = std::fs::read_to_string(sub.join("cgroup.procs")).unwrap();
        assert_eq!(procs.trim(), sleeper.to_string(), "{}", sub.display());
    }
    assert!(crate::common::alive(init));
    env.isol(&["rm", "-f", "nest"]).ok();
    assert!(
        !crate::common::alive(sleeper),
        "the moved process is killed"
    );
    assert_eq!(env.marked(), Vec::<u32>::new());
    for d in &dirs {
        assert!(!d.exists(), "{} and its child are gone", d.display());
    }
    assert_eq!(env.snapshot(), before);
}

fn stat_field(pid: u32, n: usize) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().nth(n).map(str::to_string))
        })
        .unwrap_or_default()
}

fn ppid(pid: u32) -> u32 {
    stat_field(pid, 1).parse().unwrap_or(0)
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn is_descendant(mut pid: u32, ancestor: u32) -> bool {
    for _ in 0..64 {
        if pid == ancestor {
            return true;
        }
        if pid <= 1 {
            return false;
        }
        pid = ppid(pid);
    }
    false
}
