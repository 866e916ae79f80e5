//! Detached boxes: `run -d`, `ps`, `inspect`, `stats`, `exec`, `freeze`/`thaw`,
//! `kill`, `wait`, `events`, `rm`, and the cleanup of dead entries. JSON output is read
//! the way an outside consumer would: into its own structs.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::common::{alive, eventually, ns_inode, Env};

#[derive(Debug, Deserialize)]
struct PsRow {
    name: String,
    pid: u32,
    state: String,
    pod: Option<String>,
    backend: String,
    cgroup: String,
    exit_status: Option<i32>,
}

#[derive(Debug, Deserialize)]
struct Ns {
    inode: u64,
    new: bool,
}

#[derive(Debug, Deserialize)]
struct InspectOut {
    name: String,
    pid: u32,
    state: String,
    hostname: Option<String>,
    namespaces: BTreeMap<String, Ns>,
    cgroup_dirs: Vec<std::path::PathBuf>,
    resources: serde_json::Value,
    exit: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct MemoryStats {
    current: u64,
}

#[derive(Debug, Deserialize)]
struct PidsStats {
    current: u64,
}

#[derive(Debug, Deserialize)]
struct StatsOut {
    name: String,
    state: String,
    memory: Option<MemoryStats>,
    pids: Option<PidsStats>,
}

fn ps(env: &Env) -> Vec<PsRow> {
    serde_json::from_value(env.isol(&["ps", "--json"]).json()).expect("ps --json rows")
}

fn state_of(env: &Env, name: &str) -> String {
    ps(env)
        .into_iter()
        .find(|r| r.name == name)
        .map(|r| r.state)
        .unwrap_or_else(|| "absent".into())
}

#[test]
fn a_detached_box_from_start_to_rm() {
    let Some(env) = Env::new("a_detached_box_from_start_to_rm") else {
        return;
    };
    let before = env.snapshot();
    let out = env.run(&[
        "-d",
        "--name",
        "web",
        "--hostname",
        "web-host",
        "--memory",
        "64M",
        "--pids",
        "40",
        "--",
        "sleep",
        "60",
    ]);
    assert_eq!(out.stdout, "web\n", "{out:?}");
    assert_eq!(out.stderr, "");

    // ps --json: the documented fields.
    let rows = ps(&env);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!((row.name.as_str(), row.state.as_str()), ("web", "running"));
    assert_eq!(row.pod, None);
    let host = isol_testkit::host();
    let want_backend = if host.mode == isol_ns_core::CgroupMode::Unified {
        "cgroup-v2"
    } else {
        "cgroup-v1"
    };
    assert_eq!(row.backend, want_backend);
    let scratch_primary = env.location().primary().unwrap().to_string();
    assert_eq!(row.cgroup, format!("{scratch_primary}/web"));
    assert!(alive(row.pid));
    // The recorded pid is the box's first process: in the box's cgroup, in new namespaces.
    let proc_cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", row.pid)).unwrap();
    assert!(
        proc_cgroup.lines().any(|l| l.ends_with(&row.cgroup)),
        "{proc_cgroup}"
    );

    // inspect --json: namespaces with their inodes, cgroup dirs, resources.
    let ins: InspectOut =
        serde_json::from_value(env.isol(&["inspect", "web", "--json"]).json()).unwrap();
    assert_eq!(
        (ins.name.as_str(), ins.pid, ins.state.as_str()),
        ("web", row.pid, "running")
    );
    assert_eq!(ins.hostname.as_deref(), Some("web-host"));
    for kind in ["mnt", "uts", "ipc", "net", "pid", "cgroup"] {
        let ns = &ins.namespaces[kind];
        assert!(ns.new, "{kind} is new");
        let on_host = if kind == "pid" {
            // The init's own pid namespace is the box's.
            ns_inode(row.pid, "pid_for_children")
        } else {
            ns_inode(row.pid, kind)
        };
        assert_eq!(ns.inode, on_host, "{kind} inode");
        assert_ne!(
            ns.inode,
            ns_inode(std::process::id(), kind),
            "{kind} differs from ours"
        );
    }
    assert!(!ins.namespaces["user"].new);
    assert!(!ins.cgroup_dirs.is_empty());
    for d in &ins.cgroup_dirs {
        assert!(d.is_dir(), "{}", d.display());
        let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|p| p == row.pid.to_string()),
            "{} holds the box",
            d.display()
        );
    }
    assert_eq!(ins.resources["memory"]["max"], 64 << 20);
    assert_eq!(ins.resources["pids"]["max"], 40);
    assert!(ins.exit.is_none());

    // stats --json: usage of a live box.
    let st: StatsOut =
        serde_json::from_value(env.isol(&["stats", "web", "--json"]).json()).unwrap();
    assert_eq!((st.name.as_str(), st.state.as_str()), ("web", "running"));
    assert!(st.memory.unwrap().current > 0);
    assert!(st.pids.unwrap().current >= 2, "the init and sleep");
    let text = env.isol(&["stats", "web"]).ok();
    assert!(text.contains("64M"), "{text}");

    // exec sees what the box sees: hostname and net namespace.
    let out = env
        .isol(&[
            "exec",
            "web",
            "--",
            "/bin/sh",
            "-c",
            "hostname; readlink /proc/self/ns/net",
        ])
        .ok();
    let net = format!("net:[{}]", ins.namespaces["net"].inode);
    assert_eq!(out, format!("web-host\n{net}\n"));
    let out = env.isol(&["exec", "web", "--", "/bin/sh", "-c", "exit 7"]);
    assert_eq!(out.code, 7, "exec passes the status through: {out:?}");
    let out = env.isol(&["exec", "web", "--", "isol-no-such-command"]);
    assert_eq!(out.code, 127, "{out:?}");

    // freeze / thaw show in ps, and in the kernel.
    env.isol(&["freeze", "web"]).ok();
    assert_eq!(state_of(&env, "web"), "frozen");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", row.pid)).unwrap();
    let st = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(
        matches!(st.as_str(), "D" | "S" | "T" | "t"),
        "frozen task state {st}"
    );
    // exec would wait in the frozen cgroup until a thaw: refused at once instead.
    let out = env.isol(&["exec", "web", "--", "true"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr.contains("frozen") && out.stderr.contains("isol thaw web"),
        "{out:?}"
    );
    env.isol(&["thaw", "web"]).ok();
    assert_eq!(state_of(&env, "web"), "running");

    // rm refuses a running box.
    let out = env.isol(&["rm", "web"]);
    assert_eq!(out.code, 125);
    assert!(out.stderr.contains("running"), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1);

    // kill -s 0, as kill(1): the box runs (and is not signalled).
    env.isol(&["kill", "-s", "0", "web"]).ok();
    assert_eq!(state_of(&env, "web"), "running");
    // kill + wait: the status (SIGTERM → 143) is passed through.
    env.isol(&["kill", "web"]).ok();
    let out = env.isol(&["wait", "web"]);
    assert_eq!(out.code, 143, "{out:?}");
    eventually("ps says exited", || state_of(&env, "web") == "exited");
    let row = ps(&env).into_iter().find(|r| r.name == "web").unwrap();
    assert_eq!(row.exit_status, Some(143));
    assert!(!alive(row.pid));
    // wait again: the kept status.
    assert_eq!(env.isol(&["wait", "web"]).code, 143);
    let out = env.isol(&["kill", "-s", "0", "web"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("not running"), "{out:?}");

    env.isol(&["rm", "web"]).ok();
    assert!(ps(&env).is_empty());
    eventually("nothing is left", || env.snapshot() == before);
}

#[test]
fn rm_force_of_a_running_box_leaves_nothing() {
    let Some(env) = Env::new("rm_force_of_a_running_box_leaves_nothing") else {
        return;
    };
    let before = env.snapshot();
    let name = env
        .run(&[
            "-d",
            "--memory",
            "64M",
            "--",
            "/bin/sh",
            "-c",
            "sleep 60 & sleep 60 & wait",
        ])
        .ok();
    let name = name.trim().to_string();
    assert!(name.starts_with("isol-"), "a generated name: {name}");
    let pid = ps(&env)[0].pid;
    let cgroup_dirs = env.cgroup_dirs();
    assert!(cgroup_dirs.len() > before.cgroups.len());
    env.isol(&["freeze", &name]).ok();
    // Even a frozen box goes.
    env.isol(&["rm", "-f", &name]).ok();
    assert!(!alive(pid));
    eventually("nothing is left", || env.snapshot() == before);
    let out = env.isol(&["inspect", &name]);
    assert_eq!(out.code, 125);
    assert!(out.stderr.contains("no such box"), "{out:?}");
}

#[test]
fn a_command_shows_as_one_line_a_shell_reads_back() {
    let Some(env) = Env::new("a_command_shows_as_one_line_a_shell_reads_back") else {
        return;
    };
    let script = "sleep 60 &\nwait";
    env.run(&["-d", "--name", "multi", "--", "/bin/sh", "-c", script])
        .ok();
    let shown = r"/bin/sh -c $'sleep 60 &\nwait'";
    let table = env.isol(&["ps"]).ok();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "a header and one row: {table}");
    assert!(lines[1].ends_with(shown), "{table}");
    let text = env.isol(&["inspect", "multi"]).ok();
    assert!(text.contains(&format!("\ncommand:    {shown}\n")), "{text}");
    // JSON keeps the words as they were.
    let json = env.isol(&["inspect", "multi", "--json"]).json();
    assert_eq!(
        json["command"],
        serde_json::json!(["/bin/sh", "-c", script])
    );
    env.isol(&["rm", "-f", "multi"]).ok();
}

/// `stats --watch` follows a box to its end and says how it ended as `ps` does.
#[test]
fn stats_watch_ends_as_ps_says() {
    let Some(env) = Env::new("stats_watch_ends_as_ps_says") else {
        return;
    };
    // Each box runs until the test lets it end, after `stats --watch` has shown it
    // running: a box that ends on its own may be gone before the watch starts.
    let gate = tempfile::tempdir().unwrap();
    let watch = |name: &str, flags: &[&str]| -> String {
        let release = gate.path().join(name);
        let script = format!("while [ ! -e {} ]; do sleep 0.05; done", release.display());
        env.run(&["-d", "--name", name, "--", "/bin/sh", "-c", &script])
            .ok();
        let mut args = vec!["stats", "--watch"];
        args.extend_from_slice(flags);
        args.push(name);
        let mut child = env
            .command(&args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        std::io::BufRead::read_line(&mut out, &mut first).unwrap();
        std::fs::write(&release, "").unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
        assert!(child.wait().unwrap().success(), "{first}{rest}");
        first + &rest
    };

    let out = watch("brief", &["--json"]);
    let states: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["state"].to_string())
        .collect();
    assert_eq!(
        states.first().map(String::as_str),
        Some("\"running\""),
        "{out}"
    );
    assert_eq!(
        states.last().map(String::as_str),
        Some("\"exited\""),
        "{out}"
    );
    assert_eq!(state_of(&env, "brief"), "exited");
    env.isol(&["rm", "brief"]).ok();

    // As a table, every row keeps the header's columns.
    let out = watch("table", &[]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 2, "{out}");
    let column = |l: &str| l.find("running").or_else(|| l.find("exited"));
    for l in &lines[1..] {
        assert_eq!(column(l), lines[0].find("STATE"), "{out}");
    }
    env.isol(&["rm", "table"]).ok();
}

/// `exec` finds its command where the box would: in a rootfs box, along PATH inside it.
#[test]
fn exec_looks_up_its_command_inside_the_box() {
    use std::os::unix::fs::PermissionsExt;
    let Some(env) = Env::new("exec_looks_up_its_command_inside_the_box") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let mut args = crate::common::rootfs_of_host_programs(root.path());
    // A program only the box has.
    let tools = root.path().join("opt/tools");
    std::fs::create_dir_all(&tools).unwrap();
    let hello = tools.join("hello");
    std::fs::write(&hello, "#!/bin/sh\necho hello from the box\n").unwrap();
    std::fs::set_permissions(&hello, std::fs::Permissions::from_mode(0o755)).unwrap();
    args.extend(["-d", "--name", "rooted", "--", "/bin/sh", "-c", "sleep 60"].map(String::from));
    env.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .ok();
    let out = env.isol(&[
        "exec",
        "rooted",
        "-e",
        "PATH=/opt/tools:/bin",
        "--",
        "hello",
    ]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "hello from the box\n"),
        "{out:?}"
    );
    env.isol(&["rm", "-f", "rooted"]).ok();
}

/// `exec` starts where the box's command did: with the box's --env (under its own),
/// in its --workdir and as its user unless told otherwise.
#[test]
fn exec_takes_the_boxs_env_and_workdir() {
    let Some(env) = Env::new("exec_takes_the_boxs_env_and_workdir") else {
        return;
    };
    env.run(&[
        "-d", "--name", "wd", "-e", "A=box", "-e", "B=box", "-w", "/tmp", "--", "sleep", "60",
    ])
    .ok();
    let probe = "echo $A $B; pwd";
    let out = env.isol(&["exec", "wd", "-e", "B=exec", "--", "/bin/sh", "-c", probe]);
    assert_eq!(out.ok(), "box exec\n/tmp\n");
    let out = env.isol(&["exec", "wd", "-w", "/", "--", "/bin/sh", "-c", probe]);
    assert_eq!(out.ok(), "box box\n/\n");
    // Another user when asked (the box's otherwise), with that user's HOME and no
    // capability.
    let ids = "id -u; id -g; echo $HOME; grep CapEff /proc/self/status";
    let out = env.isol(&["exec", "wd", "-u", "1000:1000", "--", "/bin/sh", "-c", ids]);
    assert_eq!(out.ok(), "1000\n1000\n/\nCapEff:\t0000000000000000\n");
    let out = env.isol(&["exec", "wd", "--", "id", "-u"]);
    assert_eq!(out.ok(), "0\n");
    env.isol(&["rm", "-f", "wd"]).ok();
}

/// When a detached box's command ends, what it left running goes too, as under a
/// foreground isol (here without a pid namespace, whose end would take them along).
#[test]
fn a_detached_box_ends_with_its_command() {
    let Some(env) = Env::new("a_detached_box_ends_with_its_command") else {
        return;
    };
    let script = "sleep 60 & echo $!; exit 3";
    env.run(&[
        "-d", "--name", "left", "--ns", "mnt,net", "--", "/bin/sh", "-c", script,
    ])
    .ok();
    assert_eq!(env.isol(&["wait", "left"]).code, 3);
    let log = env.isol(&["inspect", "left", "--json"]).json()["log"]
        .as_str()
        .unwrap()
        .to_string();
    let pid: u32 = std::fs::read_to_string(log)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!alive(pid), "the command's child {pid} outlived it");
    env.isol(&["rm", "left"]).ok();
}

/// Output that cannot be written (a full disk) is isol's failure like any other: 125
/// and one line, no panic. A detached box whose name could not be printed is removed.
#[test]
fn a_full_stdout_is_an_error_and_leaves_nothing() {
    let Some(env) = Env::new("a_full_stdout_is_an_error_and_leaves_nothing") else {
        return;
    };
    let before = env.snapshot();
    let to_full = |args: &[&str]| {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = env.command(args).stdout(full).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(125), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("write to standard output"), "{args:?}: {err}");
        err
    };
    let run = env.run_args(&["-d", "--", "sleep", "60"]);
    let err = to_full(&run);
    assert!(err.contains("removed it"), "{err}");
    assert_eq!(env.snapshot(), before);
    for args in [&["ps"][..], &["backends"], &["pod", "ls"]] {
        to_full(args);
    }
}

/// A detached box's supervisor is its foreground isol: a signal sent to it reaches the
/// box (whose status it then records), and killed, it takes the box with it.
#[test]
fn a_supervisor_forwards_signals_and_takes_its_box_along() {
    let Some(env) = Env::new("a_supervisor_forwards_signals_and_takes_its_box_along") else {
        return;
    };
    let before = env.snapshot();
    let of = |name: &str| {
        let v = env.isol(&["inspect", name, "--json"]).json();
        let pid = |k: &str| v[k].as_u64().unwrap() as i32;
        let log = v["log"].as_str().unwrap().to_string();
        (
            nix::unistd::Pid::from_raw(pid("supervisor_pid")),
            pid("pid"),
            log,
        )
    };
    let trapping = "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done";
    env.run(&["-d", "--name", "fw", "--", "/bin/sh", "-c", trapping])
        .ok();
    let (supervisor, _, log) = of("fw");
    eventually("the trap is set", || {
        std::fs::read_to_string(&log).is_ok_and(|o| o.contains("ready"))
    });
    nix::sys::signal::kill(supervisor, nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = env.isol(&["wait", "fw"]);
    assert_eq!(out.code, 7, "{out:?}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "ready\ngot-term\n");
    env.isol(&["rm", "fw"]).ok();

    env.run(&["-d", "--name", "orphan", "--", "sleep", "60"])
        .ok();
    let (supervisor, pid, _) = of("orphan");
    nix::sys::signal::kill(supervisor, nix::sys::signal::Signal::SIGKILL).unwrap();
    eventually("the box died with its supervisor", || !alive(pid as u32));
    let out = env.isol(&["wait", "orphan"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("supervisor is gone"), "{out:?}");
    env.isol(&["gc"]).ok();
    assert_eq!(env.snapshot(), before);
}

#[test]
fn kill_with_a_grace_period_ends_in_sigkill() {
    let Some(env) = Env::new("kill_with_a_grace_period_ends_in_sigkill") else {
        return;
    };
    // The shell ignores TERM, so only the SIGKILL after the grace period ends it.
    env.run(&[
        "-d",
        "--name",
        "stubborn",
        "--",
        "/bin/sh",
        "-c",
        "trap '' TERM; echo ready; while :; do sleep 1; done",
    ])
    .ok();
    // A TERM that came before the trap would end the shell at once.
    crate::common::eventually("the trap is set", || {
        env.isol(&["logs", "stubborn"]).ok().contains("ready")
    });
    let started = std::time::Instant::now();
    env.isol(&["kill", "-s", "TERM", "-t", "0.5", "stubborn"])
        .ok();
    assert!(started.elapsed() >= std::time::Duration::from_millis(500));
    let out = env.isol(&["wait", "stubborn"]);
    assert_eq!(out.code, 137, "{out:?}");
    env.isol(&["rm", "stubborn"]).ok();
}

#[test]
fn dead_entries_are_cleaned_up_by_ps() {
    let Some(env) = Env::new("dead_entries_are_cleaned_up_by_ps") else {
        return;
    };
    let before = env.snapshot();
    env.run(&["-d", "--name", "orphan", "--", "sleep", "60"])
        .ok();
    let v = env.isol(&["inspect", "orphan", "--json"]).json();
    let pid = v["pid"].as_u64().unwrap() as i32;
    let supervisor = v["supervisor_pid"].as_u64().unwrap() as i32;
    // Kill the supervisor (so nobody records an exit), which takes the box along: what a
    // crash of isol's world leaves behind. A process this test started.
    use nix::sys::signal::{kill, Signal::SIGKILL};
    use nix::unistd::Pid;
    kill(Pid::from_raw(supervisor), SIGKILL).unwrap();
    eventually("the supervisor is gone", || !alive(supervisor as u32));
    eventually("the box died with it", || !alive(pid as u32));
    assert_ne!(
        env.snapshot(),
        before,
        "the record and cgroup are still there"
    );
    let out = env.isol(&["ps", "--json"]);
    assert!(
        out.stderr.starts_with("isol: box orphan was dead") && out.stderr.contains("output"),
        "ps says what it removed: {:?}",
        out.stderr
    );
    let rows: Vec<PsRow> = serde_json::from_value(out.json()).unwrap();
    assert!(rows.is_empty(), "a dead box is not listed");
    assert_eq!(env.snapshot(), before, "ps cleaned it up");
    assert_eq!(env.isol(&["ps"]).stderr, "", "once");
}

#[test]
fn events_report_an_oom_kill_and_the_exit() {
    let Some(env) = Env::new("events_report_an_oom_kill_and_the_exit") else {
        return;
    };
    env.run(&[
        "-d",
        "--name",
        "ev",
        "--memory",
        "32M",
        "--",
        "/bin/sh",
        "-c",
        "sleep 1; tail /dev/zero; sleep 0.5",
    ])
    .ok();
    let out = env.isol(&["events", "ev", "--json"]).ok();
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"oom_kill"), "{out}");
    assert_eq!(kinds.last(), Some(&"exit"), "{out}");
    let exit = events.last().unwrap();
    assert_eq!(
        exit["status"], 0,
        "the shell survives its child's OOM kill: {out}"
    );
    assert_eq!(exit["oom_killed"], true, "{out}");
    assert!(events.iter().all(|e| e["box"] == "ev"));
    env.isol(&["rm", "ev"]).ok();
}

/// A damaged record (here, cut short) does not hide the other boxes from `ps` or stop
/// `gc`; `rm` refuses it, and `rm -f` removes it.
#[test]
fn a_damaged_record_hides_nothing_else() {
    let Some(env) = Env::new("a_damaged_record_hides_nothing_else") else {
        return;
    };
    env.run(&["-d", "--name", "good", "--", "sleep", "60"]).ok();
    let junk = env.state.path().join("boxes/junk.json");
    std::fs::write(&junk, "{").unwrap();
    for cmd in [&["ps"][..], &["gc"]] {
        let out = env.isol(cmd);
        assert_eq!(out.code, 0, "{cmd:?}: {out:?}");
        assert!(out.stderr.contains("junk.json"), "{cmd:?}: {out:?}");
    }
    assert!(env.isol(&["ps"]).ok().contains("good"));
    let out = env.isol(&["rm", "junk"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(junk.exists());
    env.isol(&["rm", "-f", "junk"]).ok();
    assert!(!junk.exists());
    env.isol(&["rm", "-f", "good"]).ok();
}

/// `kill -s KILL` ends a frozen box (v1's freezer holds even SIGKILL until a thaw).
#[test]
fn kill_ends_a_frozen_box() {
    let Some(env) = Env::new("kill_ends_a_frozen_box") else {
        return;
    };
    env.run(&["-d", "--name", "cold", "--", "sleep", "60"]).ok();
    let pid = env.isol(&["inspect", "cold", "--json"]).json()["pid"]
        .as_u64()
        .unwrap() as u32;
    env.isol(&["freeze", "cold"]).ok();
    env.isol(&["kill", "-s", "KILL", "cold"]).ok();
    eventually("the frozen box to die", || !alive(pid));
    env.isol(&["rm", "-f", "cold"]).ok();
}

/// `events` on a box that has exited says how it ended, as recorded, in the form a
/// watcher saw last, with the time it ended.
#[test]
fn events_of_an_exited_box_replay_its_end() {
    let Some(env) = Env::new("events_of_an_exited_box_replay_its_end") else {
        return;
    };
    env.run(&["-d", "--name", "gone", "--", "/bin/sh", "-c", "exit 3"])
        .ok();
    eventually("the box exited", || state_of(&env, "gone") == "exited");
    let finished = env.isol(&["inspect", "gone", "--json"]).json()["finished"]
        .as_str()
        .unwrap()
        .to_string();
    let text = env.isol(&["events", "gone"]).ok();
    assert_eq!(
        text,
        format!("{finished} gone exit oom_killed=false status=3\n")
    );
    let v: serde_json::Value =
        serde_json::from_str(env.isol(&["events", "gone", "--json"]).ok().trim()).unwrap();
    assert_eq!(
        (v["event"].as_str(), v["status"].as_i64()),
        (Some("exit"), Some(3))
    );
    env.isol(&["rm", "gone"]).ok();
}

/// `logs` prints a detached box's output file, stdout and stderr as written; `-f` keeps
/// printing until the box ends. A foreground box has none, which `logs` says.
#[test]
fn logs_print_and_follow_a_detached_boxs_output() {
    let Some(env) = Env::new("logs_print_and_follow_a_detached_boxs_output") else {
        return;
    };
    let script = "echo one; echo two >&2; sleep 0.5; echo three";
    env.run(&["-d", "--name", "talk", "--", "/bin/sh", "-c", script])
        .ok();
    // Followed from the start, it ends with the box, and nothing is missing.
    assert_eq!(env.isol(&["logs", "-f", "talk"]).ok(), "one\ntwo\nthree\n");
    assert_eq!(state_of(&env, "talk"), "exited");
    assert_eq!(env.isol(&["logs", "talk"]).ok(), "one\ntwo\nthree\n");
    env.isol(&["rm", "talk"]).ok();

    let mut fg = env
        .command(&env.run_args(&["--name", "fg", "--", "sleep", "30"]))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    eventually("the foreground box runs", || {
        ps(&env).iter().any(|r| r.name == "fg")
    });
    let out = env.isol(&["logs", "fg"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("only a detached box"), "{out:?}");
    // isol forwards SIGTERM to the box and ends with it: a process this test started.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(fg.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    fg.wait().unwrap();
}
