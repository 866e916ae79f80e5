//! Many `isol` processes at once on one state directory: 50 parallel `run`s (named and
//! unnamed, foreground and detached) and 20 members joining one pod at once. All succeed,
//! names are unique, and a reader running alongside never sees a record that does not
//! parse or a `ps --json` that is not JSON; afterwards no temp file is left.

use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::common::{eventually, Env};

const PARALLEL: usize = 50;
const MEMBERS: usize = 20;

/// Reads every record and `ps --json` in a loop until `stop`; the number of rounds.
fn reader(env: &Env, stop: &AtomicBool) -> usize {
    let mut rounds = 0;
    while !stop.load(Ordering::Relaxed) {
        for kind in ["boxes", "pods"] {
            let dir = env.state.path().join(kind);
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !name.ends_with(".json") || name.starts_with('.') {
                    continue;
                }
                // A record may be removed between the listing and the read.
                let Ok(text) = std::fs::read_to_string(e.path()) else {
                    continue;
                };
                serde_json::from_str::<serde_json::Value>(&text)
                    .unwrap_or_else(|err| panic!("{kind}/{name} does not parse ({err}): {text:?}"));
            }
        }
        let ps = env.isol(&["ps", "--json"]);
        assert_eq!(ps.code, 0, "{ps:?}");
        assert!(ps.stderr.is_empty(), "{ps:?}");
        serde_json::from_str::<serde_json::Value>(&ps.stdout)
            .unwrap_or_else(|err| panic!("ps --json is not JSON ({err}): {}", ps.stdout));
        rounds += 1;
    }
    rounds
}

fn no_temp_files(env: &Env) {
    let mut todo = vec![env.state.path().to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                !name.ends_with(".tmp"),
                "temp file left: {}",
                e.path().display()
            );
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(e.path());
            }
        }
    }
}

/// Starts every command at once, then waits for all: (code, stdout, stderr) each.
fn all_at_once(env: &Env, runs: &[Vec<String>]) -> Vec<(i32, String, String)> {
    let children: Vec<Child> = runs
        .iter()
        .map(|args| {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            env.command(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start isol")
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
        .collect()
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[test]
fn fifty_parallel_runs_all_succeed_with_unique_names_and_a_sound_state_dir() {
    let Some(env) =
        Env::new("fifty_parallel_runs_all_succeed_with_unique_names_and_a_sound_state_dir")
    else {
        return;
    };
    let before = env.snapshot();
    let stop = Arc::new(AtomicBool::new(false));
    std::thread::scope(|s| {
        let r = s.spawn(|| reader(&env, &stop));
        let started = Instant::now();

        // Foreground: half named, half not; each ends at once and removes its box.
        let names: Vec<String> = (0..PARALLEL / 2).map(|i| format!("fg-{i}")).collect();
        let mut runs: Vec<Vec<String>> = names
            .iter()
            .map(|n| owned(&env.run_args(&["--name", n, "--", "/bin/true"])))
            .collect();
        runs.extend((0..PARALLEL / 2).map(|_| owned(&env.run_args(&["--", "/bin/true"]))));
        for (i, (code, out, err)) in all_at_once(&env, &runs).into_iter().enumerate() {
            assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""), "run {i}");
        }
        let fg = started.elapsed();

        // Detached: the names they print are unique and ps lists each once.
        let mut runs: Vec<Vec<String>> = (0..PARALLEL / 2)
            .map(|i| {
                owned(&env.run_args(&["-d", "--name", &format!("bg-{i}"), "--", "sleep", "60"]))
            })
            .collect();
        runs.extend((0..PARALLEL / 2).map(|_| owned(&env.run_args(&["-d", "--", "sleep", "60"]))));
        let mut printed: Vec<String> = Vec::new();
        for (i, (code, out, err)) in all_at_once(&env, &runs).into_iter().enumerate() {
            assert_eq!((code, err.as_str()), (0, ""), "run -d {i}: {out}");
            printed.push(out.trim().to_string());
        }
        let bg = started.elapsed() - fg;
        stop.store(true, Ordering::Relaxed);
        let rounds = r.join().unwrap();
        eprintln!("{PARALLEL} foreground runs in {fg:?}, {PARALLEL} detached in {bg:?}; the reader made {rounds} rounds");
        assert!(rounds > 0);

        let mut unique = printed.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), PARALLEL, "{printed:?}");
        let ps = env.isol(&["ps", "--json"]).json();
        let rows = ps.as_array().unwrap();
        let mut listed: Vec<String> = rows
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect();
        listed.sort();
        assert_eq!(listed, unique);
        assert!(rows.iter().all(|r| r["state"] == "running"), "{ps}");
        let mut cgroups: Vec<&str> = rows.iter().map(|r| r["cgroup"].as_str().unwrap()).collect();
        cgroups.sort();
        cgroups.dedup();
        assert_eq!(cgroups.len(), PARALLEL, "one cgroup each");
        no_temp_files(&env);

        let mut rm = vec!["rm", "-f"];
        rm.extend(printed.iter().map(String::as_str));
        env.isol(&rm).ok();
    });
    assert_eq!(env.marked(), Vec::<u32>::new());
    no_temp_files(&env);
    eventually("nothing is left", || env.snapshot() == before);
}

#[test]
fn twenty_members_join_one_pod_at_once() {
    let Some(env) = Env::new("twenty_members_join_one_pod_at_once") else {
        return;
    };
    let before = env.snapshot();
    env.pod_create("crowd", &["--memory", "512M"]).ok();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let r = s.spawn(|| reader(&env, &stop));
        let runs: Vec<Vec<String>> = (0..MEMBERS)
            .map(|i| {
                let name = format!("m{i:02}");
                owned(&[
                    "run", "-d", "--pod", "crowd", "--name", &name, "--", "sleep", "60",
                ])
            })
            .collect();
        let started = Instant::now();
        for (i, (code, out, err)) in all_at_once(&env, &runs).into_iter().enumerate() {
            assert_eq!(
                (code, out.trim(), err.as_str()),
                (0, format!("m{i:02}").as_str(), ""),
                "member {i}"
            );
        }
        eprintln!("{MEMBERS} members joined in {:?}", started.elapsed());
        stop.store(true, Ordering::Relaxed);
        r.join().unwrap();
    });
    let pod = env.isol(&["pod", "inspect", "crowd", "--json"]).json();
    let members: Vec<&str> = pod["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    let want: Vec<String> = (0..MEMBERS).map(|i| format!("m{i:02}")).collect();
    assert_eq!(members, want);
    let net = pod["namespaces"]["net"]["inode"].as_u64().unwrap();
    let ps = env.isol(&["ps", "--json"]).json();
    let rows = ps.as_array().unwrap();
    assert_eq!(rows.len(), MEMBERS);
    let mut cgroups: Vec<&str> = Vec::new();
    for r in rows {
        assert_eq!(
            (r["pod"].as_str(), r["state"].as_str()),
            (Some("crowd"), Some("running")),
            "{r}"
        );
        cgroups.push(r["cgroup"].as_str().unwrap());
        let pid = r["pid"].as_u64().unwrap() as u32;
        assert_eq!(crate::common::ns_inode(pid, "net"), net, "{r}");
    }
    cgroups.sort();
    cgroups.dedup();
    assert_eq!(cgroups.len(), MEMBERS, "one cgroup each");
    no_temp_files(&env);
    env.isol(&["pod", "rm", "-f", "crowd"]).ok();
    assert_eq!(env.isol(&["ps", "--json"]).json(), serde_json::json!([]));
    assert_eq!(env.marked(), Vec::<u32>::new());
    no_temp_files(&env);
    eventually("nothing is left", || env.snapshot() == before);
}
