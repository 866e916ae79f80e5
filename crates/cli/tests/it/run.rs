//! `isol run` in the foreground: exit statuses, bad input, limits, cleanup.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use crate::common::{Env, Out};

/// Exactly one line on stderr, starting `isol: `, containing `what`.
fn one_error_line(out: &Out, what: &str) {
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {:?}", out.stderr);
    assert!(lines[0].starts_with("isol: "), "{:?}", lines[0]);
    assert!(
        lines[0].contains(what),
        "{:?} should mention {what:?}",
        lines[0]
    );
}

#[test]
fn exit_status_is_passed_through_and_nothing_is_left() {
    let Some(env) = Env::new("exit_status_is_passed_through_and_nothing_is_left") else {
        return;
    };
    let before = env.snapshot();
    let out = env.run(&[
        "--memory", "64M", "--pids", "64", "--", "/bin/sh", "-c", "exit 3",
    ]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.stderr, "");
    assert_eq!(env.snapshot(), before);
    let out = env.run(&["--", "/bin/sh", "-c", "kill -9 $$"]);
    assert_eq!(out.code, 137, "{out:?}");
    assert_eq!(env.snapshot(), before);
    let out = env.run(&["--", "/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "to-stdout\n", "to-stderr\n"),
        "stdio passes through"
    );
    assert_eq!(env.snapshot(), before);
}

#[test]
fn bad_input_gets_its_code_one_line_and_leaves_nothing() {
    let Some(env) = Env::new("bad_input_gets_its_code_one_line_and_leaves_nothing") else {
        return;
    };
    let noexec = env.state.path().join("not-executable");
    std::fs::write(&noexec, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&noexec, std::fs::Permissions::from_mode(0o644)).unwrap();
    let noexec = noexec.to_str().unwrap().to_string();
    let before = env.snapshot();
    let cases: &[(&[&str], i32, &str)] = &[
        (&["--", "isol-no-such-command"], 127, "isol-no-such-command"),
        (&["--", &noexec], 126, "Permission denied"),
        (&["--", "/tmp"], 126, "/tmp: Is a directory"),
        (
            &["--memory", "12XB", "--", "true"],
            125,
            "memory: unknown unit \"XB\" in \"12XB\" (use K, M, G, T, P or E)",
        ),
        (
            &["--seccomp", "Default", "--", "true"],
            125,
            "\"Default\" is neither default",
        ),
        (&["--ns", "bogus", "--", "true"], 125, "\"bogus\""),
        (
            &["--rootfs", "/nonexistent/isol-rootfs", "--", "true"],
            125,
            "/nonexistent/isol-rootfs",
        ),
        (&["--cpus", "0", "--", "true"], 125, "cpus"),
        (&["--cpu-weight", "0", "--", "true"], 125, "cpu.weight"),
        (&["--io-max", "8:0:speed=1", "--", "true"], 125, "speed"),
        (&["--name", "../x", "--", "true"], 125, "name"),
        (
            &["--share", "net=pid:notanumber", "--", "true"],
            125,
            "notanumber",
        ),
        (
            &["--ns", "none", "--hostname", "h", "--", "true"],
            125,
            "uts",
        ),
        (&["--backend", "cgroup-v9", "--", "true"], 125, "cgroup-v9"),
    ];
    for (args, code, what) in cases {
        let out = env.run(args);
        assert_eq!(out.code, *code, "{args:?}: {out:?}");
        one_error_line(&out, what);
        assert_eq!(env.snapshot(), before, "{args:?} left something");
    }
    // No command at all: a usage error, also 125 and one line.
    let out = env.isol(&["run", "--memory", "64M"]);
    assert_eq!(out.code, 125, "{out:?}");
    one_error_line(&out, "CMD");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn a_name_in_use_is_refused_without_touching_the_box() {
    let Some(env) = Env::new("a_name_in_use_is_refused_without_touching_the_box") else {
        return;
    };
    let before = env.snapshot();
    let name = env
        .run(&["-d", "--name", "taken", "--", "sleep", "30"])
        .ok();
    assert_eq!(name.trim(), "taken");
    let during = env.snapshot();
    let out = env.run(&["--name", "taken", "--", "true"]);
    assert_eq!(out.code, 125, "{out:?}");
    one_error_line(&out, "in use");
    let out = env.run(&["-d", "--name", "taken", "--", "true"]);
    assert_eq!(out.code, 125, "{out:?}");
    one_error_line(&out, "in use");
    assert_eq!(env.snapshot(), during, "the refusal changed something");
    env.isol(&["rm", "-f", "taken"]).ok();
    assert_eq!(env.snapshot(), before);
}

/// The variables a box's command was given, from `env` in it.
fn env_in_box(env: &Env, args: &[&str], caller: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut all = env.run_args(args);
    all.extend(["--", "env"]);
    let mut cmd = env.command(&all);
    cmd.env_remove("UNSET_HERE");
    for (k, v) in caller {
        cmd.env(k, v);
    }
    parse_env(&Out::of(cmd).ok())
}

fn parse_env(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .map(|l| l.split_once('=').expect("K=V"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A box's command gets PATH, HOME, TERM and what `--env` names, nothing else of the
/// caller's; `--inherit-env` gives it everything; `exec` follows the box.
#[test]
fn a_box_gets_only_the_environment_it_is_given() {
    let Some(env) = Env::new("a_box_gets_only_the_environment_it_is_given") else {
        return;
    };
    let caller = [
        ("SECRET_TOKEN", "s3cret"),
        ("PASSED", "from caller"),
        ("TERM", "xterm-test"),
    ];
    let given = ["-e", "GIVEN=1", "-e", "PASSED", "-e", "UNSET_HERE"];
    let seen = env_in_box(&env, &given, &caller);
    let expected: BTreeMap<String, String> = [
        (
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ),
        ("HOME", "/root"),
        ("TERM", "xterm-test"),
        ("GIVEN", "1"),
        ("PASSED", "from caller"),
        (crate::common::MARK, &env.mark()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(seen, expected);

    // Another user's HOME is /; --env goes over the defaults.
    let seen = env_in_box(&env, &["--user", "1000", "-e", "PATH=/bin"], &caller);
    assert_eq!(
        (seen["HOME"].as_str(), seen["PATH"].as_str()),
        ("/", "/bin")
    );

    let seen = env_in_box(&env, &["--inherit-env", "-e", "GIVEN=1"], &caller);
    assert_eq!(seen.get("SECRET_TOKEN").map(String::as_str), Some("s3cret"));
    assert_eq!(seen.get("GIVEN").map(String::as_str), Some("1"));

    // exec: the box's variables (PASSED as the box's caller had it) and exec's own,
    // nothing else of exec's caller's.
    let mut run = env.command(&env.run_args(&[
        "-d", "--name", "envbox", "-e", "PASSED", "--", "sleep", "60",
    ]));
    run.env("PASSED", "at run");
    Out::of(run).ok();
    let mut exec = env.command(&["exec", "envbox", "-e", "MINE=2", "--", "env"]);
    exec.env("SECRET_TOKEN", "s3cret").env("PASSED", "at exec");
    let seen = parse_env(&Out::of(exec).ok());
    assert_eq!(seen.get("PASSED").map(String::as_str), Some("at run"));
    assert_eq!(seen.get("MINE").map(String::as_str), Some("2"));
    assert_eq!(seen.get("SECRET_TOKEN"), None);
    // inspect names the variables given, not their values.
    let shown = env.isol(&["inspect", "envbox"]).ok();
    let line = shown.lines().find(|l| l.starts_with("env:")).unwrap();
    assert!(
        line.starts_with("env:        PATH, HOME, TERM; given: "),
        "{line}"
    );
    assert!(
        line.contains("PASSED") && !line.contains("at run"),
        "{line}"
    );
    env.isol(&["rm", "-f", "envbox"]).ok();
}

#[test]
fn hostname_namespaces_and_limits_are_what_the_box_sees() {
    let Some(env) = Env::new("hostname_namespaces_and_limits_are_what_the_box_sees") else {
        return;
    };
    let out = env
        .run(&[
            "--hostname",
            "isol-h1",
            "--memory",
            "48M",
            "--pids",
            "33",
            "--env",
            "GREETING=hi",
            "--",
            "/bin/sh",
            "-c",
            "hostname; echo $GREETING; echo $$; readlink /proc/self/ns/net; cat /proc/self/cgroup",
        ])
        .ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "isol-h1");
    assert_eq!(lines[1], "hi");
    assert_eq!(
        lines[2], "2",
        "a new pid namespace: isol's init is pid 1 and forks the command first"
    );
    let own_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(lines[3], own_net.to_str().unwrap(), "a new net namespace");
    // A new cgroup namespace: the box's cgroup is its root in every hierarchy.
    for l in &lines[4..] {
        assert!(l.ends_with(":/"), "cgroup namespace root expected: {l}");
    }

    // Without --hostname a new uts namespace is named after the box; without one, the
    // host's name stays.
    let named = env.run(&["--name", "named-box", "--", "hostname"]).ok();
    assert_eq!(named, "named-box\n");
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let shared = env.run(&["--ns", "mnt,net", "--", "hostname"]).ok();
    assert_eq!(shared, format!("{host}\n"));

    // The limits as the kernel holds them, read from the box's cgroup directories while
    // it runs, by isol's record and by cgroups-rs.
    let name = env
        .run(&["-d", "--memory", "48M", "--pids", "33", "--", "sleep", "30"])
        .ok();
    let name = name.trim();
    let text = env.isol(&["inspect", name]).ok();
    assert!(
        text.lines()
            .any(|l| l == "limits:     memory.max=48M pids.max=33"),
        "{text}"
    );
    let v = env.isol(&["inspect", name, "--json"]).json();
    let dirs: Vec<std::path::PathBuf> = v["cgroup_dirs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().into())
        .collect();
    let read = |file: &str| -> String {
        let d = dirs
            .iter()
            .find(|d| d.join(file).exists())
            .unwrap_or_else(|| panic!("no cgroup dir has {file}: {dirs:?}"));
        std::fs::read_to_string(d.join(file))
            .unwrap()
            .trim()
            .to_string()
    };
    let location: isol_ns_core::CgroupLocation =
        serde_json::from_value(v["cgroup_location"].clone()).unwrap();
    let host = isol_testkit::host();
    if v["backend"] == "cgroup-v2" {
        assert_eq!(read("memory.max"), (48u64 << 20).to_string());
        assert_eq!(read("pids.max"), "33");
        let u = host.unified().unwrap();
        let dir = u.dir_of(location.get("unified").unwrap().as_str()).unwrap();
        let o = isol_testkit::oracle::v2::read(&u.mount_point, &dir);
        assert_eq!(
            o.memory_max,
            Some(isol_ns_core::units::Limit::Value(48 << 20))
        );
        assert_eq!(o.pids_max, Some(isol_ns_core::units::Limit::Value(33)));
        let pid = v["pid"].as_u64().unwrap();
        assert!(o.procs.contains(&pid), "{pid} in {:?}", o.procs);
    } else {
        assert_eq!(read("memory.limit_in_bytes"), (48u64 << 20).to_string());
        assert_eq!(read("pids.max"), "33");
        let o = isol_testkit::oracle::v1::V1Oracle::new(&location);
        assert_eq!(o.memory_limit(), 48 << 20);
        assert_eq!(o.pids_max(), Some(33));
        let pid = v["pid"].as_u64().unwrap();
        assert!(o.procs("memory").contains(&pid));
    }
    env.isol(&["rm", "-f", name]).ok();
}

#[test]
fn the_pids_limit_stops_forks_in_the_box() {
    let Some(env) = Env::new("the_pids_limit_stops_forks_in_the_box") else {
        return;
    };
    // The init and the shell are 2 tasks; with 3 allowed the first background sleep
    // fits and the second fork fails.
    let out = env.run(&[
        "--pids",
        "3",
        "--",
        "/bin/sh",
        "-c",
        "sleep 5 & if sleep 5 & then echo forked; else echo refused; fi; kill %1 2>/dev/null; true",
    ]);
    assert!(
        out.stdout.contains("refused")
            || out.stderr.contains("fork")
            || out.stderr.contains("Resource temporarily unavailable"),
        "the second fork must fail: {out:?}"
    );
    assert!(!out.stdout.contains("forked"), "{out:?}");
    // No room for the command beside its init: isol says which limit.
    let before = env.snapshot();
    let out = env.run(&["--pids", "1", "--", "/bin/true"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr
            .contains("the box may hold 1 process, its init included: spawn: fork"),
        "{out:?}"
    );
    assert_eq!(env.snapshot(), before);
}

#[test]
fn an_oom_kill_is_reported_with_the_limit() {
    let Some(env) = Env::new("an_oom_kill_is_reported_with_the_limit") else {
        return;
    };
    let before = env.snapshot();
    // `isol run [--cgroup-parent <scratch>] ARGS --name hog --memory LIMIT -- CMD`; tail
    // keeps the unterminated "line" of /dev/zero in memory until it is killed.
    let hog = |args: &[&str], limit: &str, cmd: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--name", "hog", "--memory", limit, "--"]);
        all.extend(cmd);
        env.isol(&all)
    };
    let scratch = env.run_args(&[]);
    let out = hog(&scratch, "32M", &["tail", "/dev/zero"]);
    assert_eq!(out.code, 137, "{out:?}");
    assert_eq!(
        out.stderr.trim_end(),
        "isol: box hog was killed by the OOM killer (memory limit 32M)"
    );
    assert_eq!(env.snapshot(), before);
    // Another process of the box killed, the command lives on: said as such.
    let script = "tail /dev/zero; echo survived";
    let out = hog(&scratch, "32M", &["/bin/sh", "-c", script]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "survived\n"),
        "{out:?}"
    );
    // (After the shell's own "Killed".)
    assert_eq!(
        out.stderr.lines().last(),
        Some("isol: box hog: the OOM killer ended a process of the box, not its command (memory limit 32M)")
    );
    // A pod member is bound by its pod's limit too, which the message names.
    env.pod_create("tight", &["--memory", "32M"]).ok();
    let out = hog(&["run", "--pod", "tight"], "1G", &["tail", "/dev/zero"]);
    assert_eq!(out.code, 137, "{out:?}");
    assert_eq!(
        out.stderr.trim_end(),
        "isol: box hog was killed by the OOM killer (memory limit 1G; its pod's 32M)"
    );
    env.isol(&["pod", "rm", "tight"]).ok();
    assert_eq!(env.snapshot(), before);
    // A limit too small to start anything: isol's own failure, saying why (the OOM kill
    // before exec, or on v2, where the child starts inside the cgroup, clone3's ENOMEM).
    let out = env.run(&["--memory", "1", "--", "/bin/true"]);
    assert_eq!(out.code, 125, "{out:?}");
    let err = out.stderr.trim_end();
    assert!(
        err.ends_with("its memory limit is too small") || err.contains("clone3"),
        "{err}"
    );
    assert_eq!(env.snapshot(), before);
}

/// Sends `sig` to a foreground `isol run FLAGS…` once its box has said `ready`, and
/// returns what isol exited with and printed.
fn signal_foreground(
    env: &Env,
    flags: &[&str],
    script: &str,
    sig: nix::sys::signal::Signal,
) -> Out {
    use std::io::{BufRead, BufReader, Read};
    let mut args = flags.to_vec();
    args.extend(["--", "/bin/sh", "-c", script]);
    let mut child = env
        .command(&env.run_args(&args))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start isol");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout
        .read_line(&mut line)
        .expect("read the box's first line");
    assert_eq!(line, "ready\n", "the box did not start");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    Out {
        code: status.code().unwrap_or(-1),
        stdout: rest,
        stderr,
    }
}

#[test]
fn signals_to_a_foreground_isol_reach_the_box() {
    let Some(env) = Env::new("signals_to_a_foreground_isol_reach_the_box") else {
        return;
    };
    let before = env.snapshot();
    // The box's shell traps the signal: isol itself must neither die of it nor drop it
    // (a dropped one shows as exit 9 after 10 s).
    let trapping = "trap 'echo got-term; exit 42' TERM; trap 'echo got-usr1; exit 43' USR1; \
                    echo ready; i=0; while [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; \
                    exit 9";
    // Also to a command of another user, which the init (holding only CAP_KILL of
    // isol's capabilities) signals.
    for flags in [&[][..], &["--user", "1000"]] {
        let out = signal_foreground(&env, flags, trapping, nix::sys::signal::Signal::SIGTERM);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (42, "got-term\n"),
            "{flags:?}: {out:?}"
        );
    }
    let out = signal_foreground(&env, &[], trapping, nix::sys::signal::Signal::SIGUSR1);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (43, "got-usr1\n"),
        "{out:?}"
    );
    // Untrapped, SIGINT ends the box's command; isol passes the status through as a
    // shell would (128 + 2) and removes the box.
    let out = signal_foreground(
        &env,
        &[],
        "echo ready; exec sleep 10",
        nix::sys::signal::Signal::SIGINT,
    );
    assert_eq!(out.code, 130, "{out:?}");
    assert_eq!(out.stderr, "");
    assert_eq!(env.snapshot(), before);
}

/// An fd the caller leaves open without close-on-exec (a directory, which would reach
/// around a rootfs; a pipe, whose reader would wait for the box to end) reaches neither
/// the box's command nor a detached box's supervisor.
///
/// # Safety
/// The `pre_exec` hook only clears close-on-exec with `fcntl`, between fork and exec.
#[test]
#[allow(unsafe_code)]
fn the_callers_open_fds_stay_outside() {
    use std::io::Read;
    use std::os::fd::{AsFd, AsRawFd, RawFd};
    use std::os::unix::process::CommandExt;
    let Some(env) = Env::new("the_callers_open_fds_stay_outside") else {
        return;
    };
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let root = std::fs::File::open("/").unwrap();
    let (w, r) = (wr.as_raw_fd(), root.as_raw_fd());
    // Left open to isol alone (other tests' processes, started meanwhile, must not hold
    // the pipe), as a careless caller leaves them to every program it starts.
    let isol = |args: &[&str]| -> String {
        let mut cmd = env.command(&env.run_args(args));
        // SAFETY: fcntl on two fds, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                for fd in [w, r] {
                    libc::fcntl(fd as RawFd, libc::F_SETFD, 0);
                }
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let fds = isol(&["--", "/bin/sh", "-c", "ls /proc/self/fd"]);
    let fds: Vec<&str> = fds.split_whitespace().collect();
    // 0-2 and ls's own directory.
    assert_eq!(fds.len(), 4, "{fds:?}");
    for fd in [w, r] {
        assert!(!fds.contains(&fd.to_string().as_str()), "fd {fd}: {fds:?}");
    }
    let name = isol(&["-d", "--", "/bin/sh", "-c", "sleep 60"]);
    drop(wr);
    // isol run -d has returned: once no process holds the write end, the read end is
    // at EOF at once (a poll, so that a leak fails the test instead of hanging it).
    let mut pfd = [nix::poll::PollFd::new(
        rd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let ready = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(5000u16)).unwrap();
    assert_eq!(ready, 1, "the pipe's write end is still held");
    let mut rest = Vec::new();
    std::fs::File::from(rd).read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    env.isol(&["rm", "-f", name.trim()]).ok();
}

/// `-v` logs the spawn's steps, in plain text when stderr is not a terminal.
#[test]
fn verbose_says_what_isol_does_without_colour_codes() {
    let Some(env) = Env::new("verbose_says_what_isol_does_without_colour_codes") else {
        return;
    };
    let out = env.run(&["-v", "--", "true"]);
    assert_eq!(out.code, 0, "{out:?}");
    for what in [
        "created cgroup",
        "cloned pid",
        "its command ended",
        "record removed",
    ] {
        assert!(
            out.stderr.contains(what),
            "{what:?} missing: {}",
            out.stderr
        );
    }
    assert!(!out.stderr.contains('\x1b'), "{:?}", out.stderr);
    assert_eq!(env.run(&["--", "true"]).stderr, "", "quiet without -v");
}
