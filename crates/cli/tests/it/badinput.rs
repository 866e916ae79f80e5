//! Bad input to every flag of `run`, to the NAME of every other command, and the
//! conflicts between flags: exit 125, exactly one line on stderr naming the flag or the
//! value, and nothing created — the cgroups beneath the scratch, the state directory,
//! the mounts and the processes are as they were.

use crate::common::{Env, Out};

/// Exactly one line on stderr, `isol: …`, containing every one of `what`.
fn one_line(args: &[&str], out: &Out, what: &[&str]) {
    assert_eq!(out.code, 125, "{args:?}: {out:?}");
    assert_eq!(out.stdout, "", "{args:?}: {out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{args:?}: one line expected: {:?}",
        out.stderr
    );
    assert!(lines[0].starts_with("isol: "), "{args:?}: {:?}", lines[0]);
    for w in what {
        assert!(
            lines[0].contains(w),
            "{args:?}: {:?} should mention {w:?}",
            lines[0]
        );
    }
}

#[test]
fn every_run_flag_with_a_wrong_value_is_refused_in_one_line_leaving_nothing() {
    let Some(env) =
        Env::new("every_run_flag_with_a_wrong_value_is_refused_in_one_line_leaving_nothing")
    else {
        return;
    };
    let v2 = isol_testkit::host().mode == isol_ns_core::CgroupMode::Unified;
    let long_host = "h".repeat(65);
    let missing = "/nonexistent/isol-missing";
    let long_name = "n".repeat(65);
    let share_missing = format!("net={missing}");
    let bind_missing = format!("{missing}:/mnt");
    let workdir_missing = format!("{missing}/dir");
    let before = env.snapshot();
    let mut cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["--name", "../x"], vec!["name", "../x"]),
        (vec!["--name", ""], vec!["name"]),
        (vec!["--name", &long_name], vec!["name"]),
        (vec!["--ns", "bogus"], vec!["bogus"]),
        (vec!["--ns", "net,,pid"], vec!["net,,pid"]),
        (vec!["--share", "net"], vec!["share", "net"]),
        (vec!["--share", "bogus=pid:1"], vec!["bogus"]),
        (vec!["--share", "net=pid:x"], vec!["share", "x"]),
        (vec!["--share", "net=box:nobox"], vec!["nobox"]),
        (vec!["--share", &share_missing], vec![missing]),
        (vec!["--share", "net="], vec!["share", "empty"]),
        (
            vec!["--share", "net=/proc/self/ns/uts"],
            vec!["/proc/self/ns/uts", "uts, not net"],
        ),
        (
            vec!["--share", "ipc=/proc/self/status"],
            vec!["/proc/self/status", "not a namespace file"],
        ),
        (vec!["--hostname", &long_host], vec!["hostname"]),
        (
            vec!["--ns", "net", "--hostname", "h"],
            vec!["hostname", "uts"],
        ),
        (vec!["--rootfs", missing], vec![missing]),
        (vec!["--ns", "net", "--rootfs", "/"], vec!["rootfs", "mnt"]),
        (
            vec!["--writable-host", "--rootfs", "/"],
            vec!["--writable-host", "--rootfs"],
        ),
        (vec!["--bind", "/a"], vec!["bind", "/a"]),
        (vec!["--bind", &bind_missing], vec![missing]),
        (vec!["--ns", "net", "--bind", "/a:/b"], vec!["bind", "mnt"]),
        (vec!["--tmpfs", "relative"], vec!["absolute"]),
        // Over / a bind would not be the box's root (and the host's would stay).
        (vec!["--bind", "/tmp:/"], vec!["/", "rootfs"]),
        (vec!["--tmpfs", "/./.."], vec!["/./..", "rootfs"]),
        // Without --rootfs no mount point is made on the host.
        (
            vec!["--tmpfs", "/isol-no-such-dir"],
            vec!["/isol-no-such-dir", "--rootfs"],
        ),
        (
            vec!["--bind", "/dev/null:/isol-no-such-file"],
            vec!["/isol-no-such-file"],
        ),
        (vec!["--ns", "net", "--tmpfs", "/t"], vec!["tmpfs", "mnt"]),
        (vec!["--user", "bob"], vec!["user", "bob"]),
        (vec!["--user", "1:g"], vec!["user", "1:g"]),
        // (uid_t)-1 would leave the command root.
        (vec!["--user", "4294967295"], vec!["uid", "4294967295"]),
        (vec!["--user", "1:4294967295"], vec!["gid", "4294967295"]),
        (
            vec!["--map-root", "--user", "5"],
            vec!["user", "5", "maps only root"],
        ),
        (vec!["--env", "=x"], vec!["env", "=x"]),
        (vec!["--workdir", &workdir_missing], vec![missing]),
        (vec!["--memory", "12XB"], vec!["memory", "12XB"]),
        (
            vec!["--pids", "99999999999"],
            vec!["pids", "99999999999", "4194304"],
        ),
        (vec!["--memory", "-5M"], vec!["-5"]),
        (vec!["--memory-swap", "1Q"], vec!["memory-swap", "1Q"]),
        // A negative size other than -1 (unlimited) is the value's error, not clap's.
        (vec!["--memory-swap", "-2"], vec!["memory-swap", "-2"]),
        (vec!["--cpus", "abc"], vec!["cpus", "abc"]),
        (vec!["--cpus", "0"], vec!["cpus"]),
        (
            vec!["--cpus", "100000"],
            vec!["cpus", "more than this machine's"],
        ),
        (vec!["--cpu-weight", "0"], vec!["weight", "0"]),
        (vec!["--cpu-weight", "10001"], vec!["weight", "10001"]),
        (vec!["--cpuset-cpus", "x"], vec!["cpuset-cpus", "x"]),
        (vec!["--cpuset-cpus", "4096"], vec!["cpus"]),
        (vec!["--cpuset-mems", "1-0"], vec!["cpuset-mems", "1-0"]),
        (vec!["--pids", "-1"], vec!["-1"]),
        (vec!["--pids", "abc"], vec!["pids", "abc"]),
        (vec!["--io-weight", "0"], vec!["weight", "0"]),
        (vec!["--io-max", "8:0:speed=1"], vec!["speed"]),
        (
            vec!["--io-max", "/dev/isol-nope:rbps=1"],
            vec!["io-max", "/dev/isol-nope"],
        ),
        (vec!["--backend", "cgroup-v9"], vec!["cgroup-v9"]),
        (
            vec!["--cgroup-parent", "/a/../b"],
            vec!["cgroup", "/a/../b"],
        ),
        (
            vec!["--cgroup-parent", "x:/a", "--cgroup-parent", "x:/b"],
            vec!["cgroup-parent", "x"],
        ),
        (
            vec!["--cgroup-parent", "/isol-no-such-parent/deeper"],
            vec!["isol-no-such-parent"],
        ),
    ];
    if v2 {
        // The other backend does not fit a v2-only host.
        cases.push((vec!["--backend", "cgroup-v1"], vec!["cgroup-v1"]));
    } else {
        cases.push((
            vec!["--memory-high", "10M"],
            vec!["memory.high", "cgroup-v1"],
        ));
        cases.push((vec!["--backend", "cgroup-v2"], vec!["cgroup-v2"]));
    }
    for (flags, what) in &cases {
        let mut args = flags.clone();
        args.extend(["--", "/bin/true"]);
        let out = env.run(&args);
        one_line(&args, &out, what);
        assert_eq!(env.snapshot(), before, "{args:?} left something");
    }
    // The cgroup parent alone (the cases above add the scratch's, one per hierarchy):
    // refused before any cgroup is made.
    for (parent, what) in [
        (
            "/isol-no-such-parent/deeper",
            ["/isol-no-such-parent/deeper", "does not exist"],
        ),
        ("relative/x", ["cgroup-parent", "write /relative/x"]),
    ] {
        let args = ["run", "--cgroup-parent", parent, "--", "/bin/true"];
        let out = env.isol(&args);
        one_line(&args, &out, &what);
        assert_eq!(env.snapshot(), before, "{args:?} left something");
    }
    // No command; an unknown flag; a flag without its value; an unknown pod.
    for (args, what) in [
        (vec!["run", "--pod", "nopod", "--", "true"], "nopod"),
        (vec!["run", "--pod", "../p", "--", "true"], "../p"),
        (vec!["run", "--memory", "64M"], "CMD"),
        (vec!["run", "--", ""], "command's name is empty"),
        (
            vec!["run", "--no-such-flag", "--", "true"],
            "--no-such-flag",
        ),
        (vec!["run", "--memory"], "--memory"),
    ] {
        let out = env.isol(&args);
        one_line(&args, &out, &[what]);
        assert_eq!(env.snapshot(), before, "{args:?} left something");
    }
    assert!(env.marked().is_empty());
}

#[test]
fn conflicting_flags_are_refused_and_leave_the_box_and_pod_alone() {
    let Some(env) = Env::new("conflicting_flags_are_refused_and_leave_the_box_and_pod_alone")
    else {
        return;
    };
    let before = env.snapshot();
    env.run(&["-d", "--name", "peer", "--", "sleep", "60"]).ok();
    env.pod_create("pp", &[]).ok();
    let v2 = isol_testkit::host().mode == isol_ns_core::CgroupMode::Unified;
    let other_backend = if v2 { "cgroup-v1" } else { "cgroup-v2" };
    let during = env.snapshot();
    let ps_before = env.isol(&["ps", "--json"]).json();
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["--ns", "net,mnt", "--share", "net=box:peer"],
            vec!["share", "net=box:peer", "--ns"],
        ),
        (
            vec!["--share", "net=box:peer", "--share", "net=box:peer"],
            vec!["share", "twice"],
        ),
        (vec!["--name", "peer"], vec!["peer", "in use"]),
        // A name the parent cgroup's own files have.
        (
            vec!["--name", "cgroup.procs"],
            vec!["cgroup.procs", "file of the parent cgroup"],
        ),
        (vec!["-d", "--name", "peer"], vec!["peer", "in use"]),
    ];
    for (flags, what) in &cases {
        let mut args = flags.clone();
        args.extend(["--", "/bin/true"]);
        let out = env.run(&args);
        one_line(&args, &out, what);
        assert_eq!(env.snapshot(), during, "{args:?} changed something");
    }
    // A pod member: its cgroup is the pod's child, its net/ipc/uts are the pod's.
    let pod_cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["--ns", "net,pid"], vec!["ns", "net", "pp"]),
        (vec!["--share", "net=box:peer"], vec!["share", "pp"]),
        (vec!["--cgroup-parent", "/x"], vec!["cgroup-parent", "pod"]),
        (
            vec!["--hostname", "h"],
            vec!["hostname", "pod pp's uts namespace", "drop --hostname"],
        ),
        (
            vec!["--backend", other_backend],
            vec!["backend", other_backend],
        ),
    ];
    for (flags, what) in &pod_cases {
        let mut args = vec!["run", "--pod", "pp"];
        args.extend(flags);
        args.extend(["--", "/bin/true"]);
        let out = env.isol(&args);
        one_line(&args, &out, what);
        assert_eq!(env.snapshot(), during, "{args:?} changed something");
    }
    assert_eq!(env.isol(&["ps", "--json"]).json(), ps_before);
    env.isol(&["rm", "-f", "peer"]).ok();
    env.isol(&["pod", "rm", "pp"]).ok();
    assert_eq!(env.snapshot(), before);
}

#[test]
fn every_command_refuses_an_unknown_or_invalid_name_and_bad_values() {
    let Some(env) = Env::new("every_command_refuses_an_unknown_or_invalid_name_and_bad_values")
    else {
        return;
    };
    env.run(&["-d", "--name", "alive", "--", "sleep", "60"])
        .ok();
    let pid = env.isol(&["inspect", "alive", "--json"]).json()["pid"]
        .as_u64()
        .unwrap() as u32;
    let before = env.snapshot();
    let per_name = |name: &'static str| -> Vec<Vec<&'static str>> {
        vec![
            vec!["exec", name, "--", "true"],
            vec!["inspect", name],
            vec!["stats", name],
            vec!["events", name],
            vec!["kill", name],
            vec!["wait", name],
            vec!["freeze", name],
            vec!["thaw", name],
            vec!["rm", name],
            vec!["rm", "-f", name],
            vec!["pod", "inspect", name],
            vec!["pod", "rm", name],
            vec!["pod", "rm", "-f", name],
        ]
    };
    for args in per_name("nosuch") {
        let out = env.isol(&args);
        let what = if args[0] == "pod" {
            "pod"
        } else {
            "no such box"
        };
        one_line(&args, &out, &["nosuch", what]);
    }
    for args in per_name("../bad") {
        let out = env.isol(&args);
        one_line(&args, &out, &["name", "../bad"]);
    }
    // Bad values next to a good name: refused before anything reaches the box.
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["kill", "-s", "BOGUS", "alive"],
            vec!["signal", "BOGUS"],
        ),
        (vec!["kill", "-s", "99", "alive"], vec!["signal", "99"]),
        (
            vec!["kill", "-s", "0", "-t", "1", "alive"],
            vec!["signal 0", "--timeout"],
        ),
        (vec!["kill", "-t", "nan", "alive"], vec!["timeout", "NaN"]),
        (vec!["kill", "-t", "-1", "alive"], vec!["-1"]),
        (vec!["kill", "-t", "soon", "alive"], vec!["soon"]),
        (
            vec!["exec", "alive", "-e", "=x", "--", "true"],
            vec!["env", "=x"],
        ),
        (vec!["exec", "alive"], vec!["CMD"]),
        (vec!["rm", "alive"], vec!["alive", "running"]),
        (vec!["thaw", "alive", "extra"], vec!["extra"]),
        (
            vec!["pod", "create", "p1", "--share", "bogus"],
            vec!["bogus"],
        ),
        (
            vec!["pod", "create", "p1", "--memory", "1Q"],
            vec!["memory", "1Q"],
        ),
        (
            vec!["pod", "create", "p1", "--backend", "cgroup-v9"],
            vec!["cgroup-v9"],
        ),
        (vec!["pod", "create", "../p"], vec!["name", "../p"]),
        // Members see their own /proc only in mount namespaces of their own.
        (
            vec!["pod", "create", "p1", "--share", "net,mnt"],
            vec!["share", "mnt", "bind"],
        ),
        (vec!["completions", "nosh"], vec!["nosh"]),
        (vec!["ps", "--bogus"], vec!["--bogus"]),
    ];
    for (args, what) in &cases {
        let out = env.isol(args);
        one_line(args, &out, what);
        assert!(crate::common::alive(pid), "{args:?} hurt the box");
        assert_eq!(env.snapshot(), before, "{args:?} changed something");
    }
    let ins = env.isol(&["inspect", "alive", "--json"]).json();
    assert_eq!(ins["state"], "running");
    env.isol(&["rm", "-f", "alive"]).ok();
}
