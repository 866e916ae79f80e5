//! `isol run`'s hardening, seen from inside the box: docker's capability set,
//! no_new_privs, a seccomp filter and masked /proc paths by default; `--privileged`,
//! `--cap-drop` and `--ulimit` change exactly what they say.
//!
//! # Safety
//! Two tests start isol through a `pre_exec` hook that makes a single `prctl` (dropping
//! a capability from the bounding set; installing a seccomp filter) between fork and
//! exec: no allocation, no locks. The seccomp probe makes raw system calls with integer
//! arguments and NULL pointers.

use crate::common::{Env, Out};

/// `Field:\tvalue` lines of /proc/self/status as the box sees them.
fn status_inside(env: &Env, flags: &[&str]) -> (String, String, String) {
    let mut args: Vec<&str> = flags.to_vec();
    args.extend(["--", "/bin/sh", "-c", "cat /proc/self/status"]);
    let text = env.run(&args).ok();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .trim()
            .to_string()
    };
    (field("CapEff:"), field("NoNewPrivs:"), field("Seccomp:"))
}

/// Asserts isol's own failure: exit 125 and one line, `isol: …`, that contains `needle`.
fn assert_one_line_error(out: &Out, needle: &str, what: &str) {
    assert_eq!(out.code, 125, "{what}: {out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: {out:?}");
    assert!(
        lines[0].starts_with("isol: ") && lines[0].contains(needle),
        "{what}: {}",
        lines[0]
    );
}

/// `text`'s lines with each run of blanks made one space (`Field:\tvalue`).
fn squeezed(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn own_cap_eff() -> String {
    let text = std::fs::read_to_string("/proc/self/status").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn a_default_box_is_hardened_like_docker() {
    let Some(env) = Env::new("a_default_box_is_hardened_like_docker") else {
        return;
    };
    let before = env.snapshot();
    let (cap, nnp, seccomp) = status_inside(&env, &[]);
    // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE
    // NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
    assert_eq!(cap, "00000000a80425fb");
    assert_eq!(nnp, "1");
    assert_eq!(seccomp, "2");
    // Masked and read-only paths, where this kernel has them.
    let probe = "for f in /proc/kcore /proc/keys /proc/timer_list; do [ -e $f ] && echo \"$f $(wc -c < $f)\"; done; \
                 if [ -e /proc/sysrq-trigger ]; then (echo h > /proc/sysrq-trigger) 2>/dev/null && echo sysrq-writable || echo sysrq-refused; fi; \
                 (echo 1 > /proc/sys/kernel/ns_last_pid) 2>/dev/null && echo sys-writable || echo sys-refused";
    let out = env.run(&["--", "/bin/sh", "-c", probe]).ok();
    for line in out.lines().filter(|l| l.starts_with('/')) {
        assert!(line.ends_with(" 0"), "masked file readable inside: {line}");
    }
    assert!(!out.contains("sysrq-writable"), "{out}");
    assert!(
        out.contains("sys-refused"),
        "/proc/sys must be read-only: {out}"
    );
    assert_eq!(env.snapshot(), before);
}

/// Docker's sets since 20.10.14 (CVE-2022-24769): nothing inheritable, so a non-root
/// command cannot gain capabilities from a program's inheritable file capabilities, even
/// with no_new_privs off; it keeps docker's bounding set and holds nothing itself.
#[test]
fn the_inheritable_set_is_empty() {
    let Some(env) = Env::new("the_inheritable_set_is_empty") else {
        return;
    };
    let sets = |flags: &[&str]| -> Vec<String> {
        let mut args: Vec<&str> = flags.to_vec();
        args.extend([
            "--",
            "/bin/sh",
            "-c",
            "grep -E '^Cap(Inh|Prm|Eff|Bnd)' /proc/self/status",
        ]);
        squeezed(&env.run(&args).ok())
    };
    assert_eq!(
        sets(&[]),
        [
            "CapInh: 0000000000000000",
            "CapPrm: 00000000a80425fb",
            "CapEff: 00000000a80425fb",
            "CapBnd: 00000000a80425fb"
        ]
    );
    assert_eq!(
        sets(&["--user", "1000", "--allow-new-privs"]),
        [
            "CapInh: 0000000000000000",
            "CapPrm: 0000000000000000",
            "CapEff: 0000000000000000",
            "CapBnd: 00000000a80425fb"
        ]
    );
}

/// /proc/sys is read-only in every hardened box, whatever its namespaces: with the
/// host's pid namespace (no fresh /proc), as a pod member in the pod's pid namespace, and
/// a box that would stay in isol's own mount namespace, where nothing can be made
/// read-only for it alone, is refused. The probe writes vm.swappiness's own value back.
#[test]
fn proc_sys_is_read_only_in_every_hardened_box() {
    let Some(env) = Env::new("proc_sys_is_read_only_in_every_hardened_box") else {
        return;
    };
    let probe = "v=$(cat /proc/sys/vm/swappiness); \
                 (echo $v > /proc/sys/vm/swappiness) 2>/dev/null && echo sys-writable || echo sys-refused";
    let before = env.snapshot();
    for flags in [&[][..], &["--ns", "mnt,net"], &["--ns", "mnt,net,ipc,uts"]] {
        let mut args = flags.to_vec();
        args.extend(["--", "/bin/sh", "-c", probe]);
        assert_eq!(env.run(&args).ok(), "sys-refused\n", "{flags:?}");
    }
    // A pod member (beneath the pod's cgroup, so without --cgroup-parent).
    env.pod_create("sysp", &["--share", "net,pid"]).ok();
    let member = env.isol(&["run", "--pod", "sysp", "--", "/bin/sh", "-c", probe]);
    env.isol(&["pod", "rm", "-f", "sysp"]).ok();
    assert_eq!(member.ok(), "sys-refused\n");
    for flags in [
        &["--ns", "net"][..],
        &["--ns", "none"],
        &["--map-root", "--ns", "user,net"],
    ] {
        let mut args = flags.to_vec();
        args.extend(["--", "/bin/true"]);
        let out = env.run(&args);
        assert_one_line_error(&out, "mount namespace of its own", &format!("{flags:?}"));
    }
    assert_eq!(env.snapshot(), before);
    // The probe can tell: unhardened, the same box writes.
    let out = env.run(&["--ns", "net", "--privileged", "--", "/bin/sh", "-c", probe]);
    assert_eq!(out.ok(), "sys-writable\n");
}

#[test]
fn privileged_restores_what_the_defaults_take() {
    let Some(env) = Env::new("privileged_restores_what_the_defaults_take") else {
        return;
    };
    let (cap, nnp, seccomp) = status_inside(&env, &["--privileged"]);
    assert_eq!(
        cap,
        own_cap_eff(),
        "a privileged box keeps the caller's capabilities"
    );
    assert_eq!((nnp.as_str(), seccomp.as_str()), ("0", "0"));
    let out = env
        .run(&["--privileged", "--", "/bin/sh", "-c", "(echo 1 > /proc/sys/kernel/ns_last_pid) 2>/dev/null && echo sys-writable || echo sys-refused"])
        .ok();
    assert!(out.contains("sys-writable"), "{out}");
}

/// The box's pid 1, isol's init, keeps only CAP_KILL of isol's capabilities once the
/// command runs (it reaps and forwards signals, to a command that may run as another
/// user), under no_new_privs: in a default box, a privileged one and one whose command
/// changes user. The init does this as the command starts, so the probe waits up to a
/// second for it.
#[test]
fn the_init_is_no_way_out_of_the_box() {
    let Some(env) = Env::new("the_init_is_no_way_out_of_the_box") else {
        return;
    };
    let probe =
        "i=0; while [ $i -lt 100 ] && ! grep -q '^CapEff:.*0000000000000020$' /proc/1/status; \
                 do sleep 0.01; i=$((i+1)); done; grep -E '^(Cap(Prm|Eff)|NoNewPrivs)' /proc/1/status; \
                 readlink /proc/1/cwd 2>/dev/null || echo cwd-refused";
    // It is not dumpable either, so the box cannot follow its cwd (or trace it): only
    // a privileged box, with CAP_SYS_PTRACE, sees that cwd is /.
    for (flags, cwd) in [
        (&[][..], "cwd-refused"),
        (&["--privileged"], "/"),
        (&["--user", "1000"], "cwd-refused"),
    ] {
        let mut args = flags.to_vec();
        args.extend(["--", "/bin/sh", "-c", probe]);
        assert_eq!(
            squeezed(&env.run(&args).ok()),
            [
                "CapPrm: 0000000000000020",
                "CapEff: 0000000000000020",
                "NoNewPrivs: 1",
                cwd
            ],
            "{flags:?}"
        );
    }
}

/// A default box without a rootfs has the caller's /sys, read-only in its own mount
/// namespace: it cannot raise its own limits (or touch any other cgroup, or
/// /sys/power). A privileged box can, which shows the probe can fail.
#[test]
fn a_default_box_cannot_raise_its_own_limits() {
    let Some(env) = Env::new("a_default_box_cannot_raise_its_own_limits") else {
        return;
    };
    let dirs: Vec<String> = env
        .scratch
        .cgroup()
        .dirs()
        .iter()
        .map(|d| d.join("lim/pids.max").display().to_string())
        .collect();
    let script = format!(
        "for f in {}; do [ -e $f ] || continue; (echo 1000 > $f) 2>/dev/null && echo raised || echo refused; cat $f; done",
        dirs.join(" ")
    );
    let probe = |flags: &[&str]| {
        let mut args = flags.to_vec();
        args.extend([
            "--name", "lim", "--pids", "5", "--", "/bin/sh", "-c", &script,
        ]);
        env.run(&args).ok()
    };
    assert_eq!(probe(&[]), "refused\n5\n");
    // /sys stays read-only in a box given the host's other files.
    assert_eq!(probe(&["--writable-host"]), "refused\n5\n");
    // On v2 the kernel itself refuses a write to the root of a cgroup namespace (the
    // box's own cgroup), privileged or not; on v1 only the read-only /sys does.
    let v2 = isol_testkit::host().mode == isol_ns_core::CgroupMode::Unified;
    let privileged = if v2 { "refused\n5\n" } else { "raised\n1000\n" };
    assert_eq!(probe(&["--privileged"]), privileged);
    let mine = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        mine.lines().any(|l| l.contains(" /sys rw")),
        "the caller's /sys stays writable: {mine}"
    );
}

/// Without a rootfs a box's root is the caller's: by default the box sees the host's
/// files read-only (root inside would write /etc, a set-uid program into /dev/shm,
/// isol's own records). A --bind of a writable host directory stays writable, a --tmpfs
/// is the box's own, and /dev/null and the box's fresh /proc still take writes; /run
/// is the box's own (the host's holds its daemons' sockets). `--writable-host` and
/// `--privileged` give the host's files back, which shows the probe can fail.
#[test]
fn a_default_box_sees_the_hosts_files_read_only() {
    let Some(env) = Env::new("a_default_box_sees_the_hosts_files_read_only") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let write = |flags: &[&str], file: &str| {
        let script = format!("(echo x > {d}/{file}) 2>/dev/null && echo wrote || echo refused");
        let mut args = flags.to_vec();
        args.extend(["--", "/bin/sh", "-c", &script]);
        env.run(&args).ok()
    };
    let there = |file: &str| dir.path().join(file).exists();
    assert_eq!(write(&[], "a"), "refused\n");
    assert!(!there("a"));
    let out = env.run(&[
        "--",
        "/bin/sh",
        "-c",
        "echo x > /dev/null && echo null-writes; echo 0 > /proc/self/oom_score_adj && echo proc-writes",
    ]);
    assert_eq!(out.ok(), "null-writes\nproc-writes\n");
    let bind = format!("{d}:{d}");
    assert_eq!(write(&["--bind", &bind], "b"), "wrote\n");
    assert!(there("b"));
    let ro = format!("{d}:{d}:ro");
    assert_eq!(write(&["--bind", &ro], "c"), "refused\n");
    assert_eq!(write(&["--tmpfs", &d], "t"), "wrote\n");
    assert!(!there("t"), "a tmpfs of the box's own");
    assert_eq!(write(&["--writable-host"], "w"), "wrote\n");
    assert_eq!(write(&["--privileged"], "p"), "wrote\n");
    assert!(there("w") && there("p"));
    // A file bound over a host file that exists: the mount point is there to use, not
    // to create (a create would meet the read-only host), read-only or not.
    std::fs::write(dir.path().join("target"), "host\n").unwrap();
    std::fs::write(dir.path().join("mine"), "mine\n").unwrap();
    for suffix in ["", ":ro"] {
        let bind = format!("{d}/mine:{d}/target{suffix}");
        let out = env.run(&["--bind", &bind, "--", "cat", &format!("{d}/target")]);
        assert_eq!(out.ok(), "mine\n", "--bind {bind}");
    }
    // Only the box's copies changed.
    std::fs::write(dir.path().join("caller"), "x").unwrap();

    // /run, where the host's daemons keep their sockets, is the box's own (and writable).
    let host_run = tempfile::Builder::new()
        .prefix("isol-test-run")
        .tempfile_in("/run")
        .unwrap();
    let name = host_run.path().display().to_string();
    let mine = format!("{name}-box");
    let script = format!(
        "[ -e {name} ] && echo seen || echo hidden; (echo x > {mine}) 2>/dev/null && echo run-writes"
    );
    let look = |flags: &[&str]| env.sh(flags, &script);
    assert_eq!(look(&[]), "hidden\nrun-writes\n");
    assert!(!std::path::Path::new(&mine).exists());
    assert!(look(&["--writable-host"]).starts_with("seen\n"));
    let _ = std::fs::remove_file(&mine);
}

/// On a kernel without mount_setattr (before 5.12; simulated by a seccomp filter on
/// isol that answers ENOSYS) a remount would make only the top of the host's mounts
/// read-only, leaving /sys, the cgroup trees and /dev/shm writable: the spawn fails
/// instead, naming the step, and leaves nothing. A privileged box, which makes nothing
/// read-only, still runs.
#[test]
fn without_mount_setattr_a_box_fails_closed() {
    use std::os::unix::process::CommandExt;
    let Some(env) = Env::new("without_mount_setattr_a_box_fails_closed") else {
        return;
    };
    // ld [nr]; jeq mount_setattr → ERRNO(ENOSYS); ALLOW (x86_64 and aarch64 share 442).
    let filter = [
        libc::sock_filter {
            code: 0x20,
            jt: 0,
            jf: 0,
            k: 0,
        },
        libc::sock_filter {
            code: 0x15,
            jt: 0,
            jf: 1,
            k: libc::SYS_mount_setattr as u32,
        },
        libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0x0005_0000 | libc::ENOSYS as u32,
        },
        libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0x7fff_0000,
        },
    ];
    let old_kernel = |args: &[&str]| {
        let mut cmd = env.command(&env.run_args(args));
        // The filter's address, for the hook (which must be Send); `filter` outlives it.
        let (addr, len) = (filter.as_ptr() as usize, filter.len() as u16);
        #[allow(unsafe_code)]
        // SAFETY: the hook makes one system call between fork and exec; the program it
        // points at lives in the parent's memory, copied into the child by fork.
        unsafe {
            cmd.pre_exec(move || {
                let prog = libc::sock_fprog {
                    len,
                    filter: addr as *mut libc::sock_filter,
                };
                let p = &prog as *const libc::sock_fprog;
                if libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, p, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Out::of(cmd)
    };
    let before = env.snapshot();
    for flags in [&[][..], &["--writable-host"]] {
        let mut args = flags.to_vec();
        args.extend(["--", "/bin/true"]);
        let out = old_kernel(&args);
        assert_one_line_error(&out, "read-only", &format!("{flags:?}"));
        assert_eq!(env.snapshot(), before, "{flags:?}");
    }
    assert_eq!(old_kernel(&["--privileged", "--", "/bin/true"]).code, 0);
}

/// A hardened box has a session of its own: `kill -9 0` inside ends the box, not the
/// process group of whoever ran isol (a script, its other commands). A privileged box
/// stays in the caller's, where the same kill reaches them: the probe can fail.
#[test]
fn kill_0_in_a_box_stays_in_the_box() {
    use std::os::unix::process::CommandExt;
    let Some(env) = Env::new("kill_0_in_a_box_stays_in_the_box") else {
        return;
    };
    let run = |flags: &[&str]| {
        let mut args = flags.to_vec();
        args.extend(["--", "/bin/sh", "-c", "kill -9 0"]);
        let isol = env.command(&env.run_args(&args));
        // sh leads a new process group, leaves a sleep in it and becomes isol.
        let mut sh = std::process::Command::new("/bin/sh");
        sh.args([
            "-c",
            "sleep 30 >/dev/null 2>&1 & echo $!; exec \"$@\"",
            "sh",
        ])
        .arg(isol.get_program())
        .args(isol.get_args())
        .process_group(0)
        .stdin(std::process::Stdio::null());
        for (k, v) in isol.get_envs() {
            if let Some(v) = v {
                sh.env(k, v);
            }
        }
        let out = sh.output().expect("run sh");
        let text = String::from_utf8_lossy(&out.stdout);
        let sleeper: u32 = text.lines().next().unwrap().trim().parse().unwrap();
        (out.status.code(), sleeper)
    };
    let end = |pid: u32| {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    };
    let (code, sleeper) = run(&[]);
    // A SIGKILL sent with the box's kill(0) would have ended it by now.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let survived = crate::common::alive(sleeper);
    end(sleeper);
    assert_eq!((code, survived), (Some(137), true));
    // isol itself is killed with its group, and so is the sleep.
    let (code, sleeper) = run(&["--privileged"]);
    assert_eq!(code, None);
    crate::common::eventually("the sleep dies with its group", || {
        !crate::common::alive(sleeper)
    });
    end(sleeper);
}

/// The host's devpts holds every session's terminal, which the device allow-list lets a
/// box open: a default box without a rootfs has a devpts of its own, where /dev/ptmx
/// makes its terminals. A privileged box sees the host's (the probe can fail).
#[test]
fn a_box_cannot_reach_the_hosts_terminals() {
    let Some(env) = Env::new("a_box_cannot_reach_the_hosts_terminals") else {
        return;
    };
    let host = nix::pty::openpty(None, None).unwrap();
    let slave = std::fs::read_link(format!("/proc/self/fd/{}", {
        use std::os::fd::AsRawFd;
        host.slave.as_raw_fd()
    }))
    .unwrap();
    let slave = slave.display().to_string();
    let script = format!(
        "[ -e {slave} ] && echo seen || echo hidden; exec 3<>/dev/ptmx && ls /dev/pts | tr '\\n' ' '"
    );
    let look = |flags: &[&str]| env.sh(flags, &script);
    assert_eq!(look(&[]), "hidden\n0 ptmx ");
    assert!(look(&["--privileged"]).starts_with("seen\n"));
}

/// The caller's terminal, given to an interactive box as its stdin, keeps a name there:
/// its own (the host's /dev/pts/N) leads into the box's devpts, so it is bound at
/// /dev/console, where `ttyname` finds the same node. Not for a box whose stdin is no
/// terminal, nor for a privileged box, which sees the host's devpts.
#[test]
fn an_interactive_box_finds_its_terminal_at_dev_console() {
    let Some(env) = Env::new("an_interactive_box_finds_its_terminal_at_dev_console") else {
        return;
    };
    let pty = nix::pty::openpty(None, None).unwrap();
    let probe = "[ /dev/console -ef /proc/self/fd/0 ] && echo console || echo other";
    let look = |flags: &[&str], on_terminal: bool| {
        let mut args = env.run_args(flags);
        args.extend(["--", "/bin/sh", "-c", probe]);
        let mut cmd = env.command(&args);
        if on_terminal {
            cmd.stdin(pty.slave.try_clone().unwrap());
        }
        Out::of(cmd).ok()
    };
    assert_eq!(look(&[], true), "console\n");
    assert_eq!(look(&[], false), "other\n");
    assert_eq!(look(&["--privileged"], true), "other\n");
}

#[test]
fn cap_drop_all_and_ulimit_do_what_they_say() {
    let Some(env) = Env::new("cap_drop_all_and_ulimit_do_what_they_say") else {
        return;
    };
    let (cap, _, _) = status_inside(&env, &["--cap-drop", "all"]);
    assert_eq!(cap, "0000000000000000");
    // Docker's idiom: all dropped, one added back, whatever the order of the flags.
    for flags in [
        &["--cap-drop", "all", "--cap-add", "CHOWN"][..],
        &["--cap-add", "CHOWN", "--cap-drop", "all"],
    ] {
        let (cap, _, _) = status_inside(&env, flags);
        assert_eq!(cap, "0000000000000001", "{flags:?}");
    }
    let (cap, _, _) = status_inside(
        &env,
        &["--cap-drop", "net_raw", "--cap-add", "CAP_SYS_ADMIN"],
    );
    let bits = u64::from_str_radix(&cap, 16).unwrap();
    assert_eq!(bits & (1 << 13), 0, "NET_RAW dropped: {cap}");
    assert_ne!(bits & (1 << 21), 0, "SYS_ADMIN added: {cap}");
    let out = env
        .run(&[
            "--ulimit",
            "nofile=64:128",
            "--",
            "/bin/sh",
            "-c",
            "ulimit -n; ulimit -Hn",
        ])
        .ok();
    assert_eq!(out, "64\n128\n");
}

/// A box gets no capability isol itself lacks. isol is started here without
/// CAP_SYS_RESOURCE in its bounding set (so, as root, without it at all): asking for it
/// by name is a one-line error before anything exists, and `--cap-add all` gives every
/// capability isol holds.
#[test]
fn capabilities_isol_lacks_are_refused_and_all_is_what_it_holds() {
    let Some(env) = Env::new("capabilities_isol_lacks_are_refused_and_all_is_what_it_holds") else {
        return;
    };
    const SYS_RESOURCE: u32 = 24;
    let without = |args: &[&str]| -> Out {
        use std::os::unix::process::CommandExt;
        let mut cmd = env.command(&env.run_args(args));
        #[allow(unsafe_code)]
        // SAFETY: the hook makes one system call between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(
                    libc::PR_CAPBSET_DROP,
                    SYS_RESOURCE as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Out::of(cmd)
    };
    let before = env.snapshot();
    let out = without(&["--cap-add", "SYS_RESOURCE", "--", "/bin/true"]);
    assert_one_line_error(&out, "CAP_SYS_RESOURCE", "--cap-add SYS_RESOURCE");
    assert_eq!(env.snapshot(), before);

    let own = u64::from_str_radix(&own_cap_eff(), 16).unwrap();
    let script = "grep CapEff /proc/self/status";
    let out = without(&["--cap-add", "all", "--", "/bin/sh", "-c", script]).ok();
    let cap = out.trim().strip_prefix("CapEff:").unwrap().trim();
    assert_eq!(
        u64::from_str_radix(cap, 16).unwrap(),
        own & !(1 << SYS_RESOURCE),
        "{out}"
    );
    let (cap, _, _) = status_inside(&env, &["--cap-add", "all"]);
    assert_eq!(cap, own_cap_eff());
}

/// `isol exec` runs its command as hardened as the box and as the box's `--user`, as
/// `docker exec` does: without it, it got the host's capabilities, no seccomp filter
/// and uid 0 in a box that `inspect` called hardened.
#[test]
fn exec_is_as_hardened_as_the_box() {
    let Some(env) = Env::new("exec_is_as_hardened_as_the_box") else {
        return;
    };
    let probe = "id -u; id -g; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; \
                 (echo 1 > /proc/sys/kernel/ns_last_pid) 2>/dev/null && echo sys-writable || echo sys-refused";
    env.run(&[
        "-d",
        "--name",
        "lean",
        "--user",
        "1000:1000",
        "--cap-drop",
        "all",
        "--",
        "sleep",
        "60",
    ])
    .ok();
    env.run(&["-d", "--name", "plain", "--", "sleep", "60"])
        .ok();
    let out = env
        .isol(&["exec", "lean", "--", "/bin/sh", "-c", probe])
        .ok();
    assert_eq!(
        squeezed(&out),
        [
            "1000",
            "1000",
            "CapEff: 0000000000000000",
            "NoNewPrivs: 1",
            "Seccomp: 2",
            "sys-refused"
        ]
    );
    let out = env
        .isol(&["exec", "plain", "--", "/bin/sh", "-c", probe])
        .ok();
    assert_eq!(
        squeezed(&out),
        [
            "0",
            "0",
            "CapEff: 00000000a80425fb",
            "NoNewPrivs: 1",
            "Seccomp: 2",
            "sys-refused"
        ]
    );
    let ins = env.isol(&["inspect", "lean", "--json"]).json();
    assert_eq!(ins["user"]["uid"], 1000);
    env.isol(&["rm", "-f", "lean", "plain"]).ok();
}

#[test]
fn bad_security_flags_are_one_line_and_leave_nothing() {
    let Some(env) = Env::new("bad_security_flags_are_one_line_and_leave_nothing") else {
        return;
    };
    let before = env.snapshot();
    for (flags, needle) in [
        (&["--cap-add", "bogus"][..], "\"bogus\""),
        (&["--ulimit", "nofile=abc"][..], "\"abc\""),
        // Beyond fs.nr_open: refused before the spawn, naming the ceiling.
        (&["--ulimit", "nofile=unlimited"][..], "fs.nr_open"),
        (
            &["--seccomp", "/nonexistent/profile.json"][..],
            "/nonexistent/profile.json",
        ),
        (
            &["--device", "/nonexistent-device"][..],
            "/nonexistent-device",
        ),
        (&["--device", "/dev/null:x"][..], "access letters"),
    ] {
        let mut args = flags.to_vec();
        args.extend(["--", "/bin/true"]);
        let out = env.run(&args);
        assert_one_line_error(&out, needle, &format!("{flags:?}"));
    }
    assert_eq!(env.snapshot(), before);
}

/// `isol inspect` reports the hardening in force, and what it reports is what the kernel
/// shows for the box's command: its capability list is the command's CapEff.
#[test]
fn inspect_shows_the_security_in_force() {
    let Some(env) = Env::new("inspect_shows_the_security_in_force") else {
        return;
    };
    let before = env.snapshot();
    let cases: [(&str, &[&str], bool, &str); 2] = [
        ("insp-default", &[], false, "default"),
        (
            "insp-priv",
            &["--privileged", "--cap-drop", "all", "--cap-add", "KILL"],
            true,
            "unconfined",
        ),
    ];
    for (name, flags, privileged, seccomp) in cases {
        let mut args = vec!["-d", "--name", name];
        args.extend_from_slice(flags);
        args.extend(["--", "sleep", "30"]);
        env.run(&args).ok();
        let v = env.isol(&["inspect", "--json", name]).json();
        let sec = &v["security"];
        assert_eq!(sec["privileged"], privileged, "{sec}");
        assert_eq!(sec["seccomp"], seccomp, "{sec}");
        assert_eq!(sec["no_new_privs"], !privileged, "{sec}");
        let bits: u64 = sec["capabilities"]
            .as_array()
            .unwrap_or_else(|| panic!("no capability list: {sec}"))
            .iter()
            .map(|c| {
                let name = c.as_str().unwrap();
                isol_ns_core::security::Capability::ALL
                    .iter()
                    .find(|k| k.name() == name)
                    .unwrap_or_else(|| panic!("unknown capability {name}"))
                    .number()
            })
            .fold(0u64, |acc, n| acc | 1 << n);
        // The box's process is its init; the command is the init's only child.
        let init = v["pid"].as_u64().unwrap();
        let children = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children"))
            .unwrap_or_default();
        let cmd: u32 = children
            .split_whitespace()
            .next()
            .unwrap_or_else(|| panic!("box {name}: no command under init {init}"))
            .parse()
            .unwrap();
        let status = std::fs::read_to_string(format!("/proc/{cmd}/status")).unwrap();
        let cap_eff = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .unwrap()
            .trim();
        assert_eq!(format!("{bits:016x}"), cap_eff, "box {name}: {sec}");
        let text = env.isol(&["inspect", name]).ok();
        let first = if privileged { "privileged" } else { "hardened" };
        assert!(
            text.lines()
                .any(|l| l.starts_with("security:") && l.ends_with(first)),
            "{text}"
        );
        env.isol(&["rm", "-f", name]).ok();
    }
    assert_eq!(env.snapshot(), before);
}

/// A rootfs a box could write may hold symlinks meant for the next box's mount points
/// (/mnt -> a host directory, /proc -> one): isol would make and mount on them before
/// pivot_root, on the host's side. It refuses, naming the link, and touches nothing.
#[test]
fn a_rootfs_symlink_never_leads_a_mount_out() {
    let Some(env) = Env::new("a_rootfs_symlink_never_leads_a_mount_out") else {
        return;
    };
    let victim = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let args = crate::common::rootfs_of_host_programs(root.path());
    std::os::unix::fs::symlink(victim.path(), root.path().join("mnt")).unwrap();
    let before = env.snapshot();
    for (extra, link) in [
        (&["--tmpfs", "/mnt/t"][..], "/mnt"),
        (&["--bind", "/tmp:/mnt/b"], "/mnt"),
    ] {
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend(extra);
        all.extend(["--", "/bin/true"]);
        let out = env.run(&all);
        assert_eq!(out.code, 125, "{out:?}");
        assert!(
            out.stderr
                .contains(&format!("{link} is a symlink in the rootfs")),
            "{out:?}"
        );
    }
    // The rootfs's own /proc, too.
    std::os::unix::fs::symlink(victim.path(), root.path().join("proc")).unwrap();
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend(["--", "/bin/true"]);
    let out = env.run(&all);
    assert!(
        out.stderr.contains("/proc is a symlink in the rootfs"),
        "{out:?}"
    );
    assert_eq!(std::fs::read_dir(victim.path()).unwrap().count(), 0);
    assert_eq!(env.snapshot(), before);
}

/// A rootfs box's device nodes are its own (or read-only binds): a chmod inside does
/// not reach the host's /dev. The probe sets the mode each already has, and the host's
/// inode change times show whether it went through.
#[test]
fn a_rootfs_boxs_devices_are_not_the_hosts() {
    use std::os::unix::fs::MetadataExt;
    let Some(env) = Env::new("a_rootfs_boxs_devices_are_not_the_hosts") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let mut args = crate::common::rootfs_of_host_programs(root.path());
    args.extend(["--device".into(), "/dev/kmsg:r".into()]);
    let changed = |p: &str| {
        let m = std::fs::metadata(p).unwrap();
        (m.ctime(), m.ctime_nsec(), m.mode() & 0o7777)
    };
    let before = [changed("/dev/null"), changed("/dev/kmsg")];
    let script = format!(
        "chmod {:o} /dev/null && echo null-chmod; chmod {:o} /dev/kmsg 2>/dev/null || echo kmsg-refused; echo x > /dev/null && echo null-writes",
        before[0].2, before[1].2
    );
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend(["--", "/bin/sh", "-c", &script]);
    assert_eq!(
        env.run(&all).ok(),
        "null-chmod\nkmsg-refused\nnull-writes\n"
    );
    assert_eq!([changed("/dev/null"), changed("/dev/kmsg")], before);
}

/// A box with a rootfs gets a /dev of its own; `--device` puts the granted node there
/// too (docker's behaviour), and the devices rule lets it be opened.
#[test]
fn a_granted_device_is_in_a_rootfs_boxs_dev() {
    let Some(env) = Env::new("a_granted_device_is_in_a_rootfs_boxs_dev") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let args = crate::common::rootfs_of_host_programs(root.path());
    let probe = "[ -c /dev/kmsg ] && echo node || echo no-node";
    let run = |extra: &[&str]| -> String {
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend_from_slice(extra);
        all.extend(["--", "/bin/sh", "-c", probe]);
        env.run(&all).ok()
    };
    assert_eq!(run(&[]), "no-node\n");
    assert_eq!(run(&["--device", "/dev/kmsg:r"]), "node\n");
}

/// Marks the run of this test binary in a box as [`syscall_probe`].
const SYSCALL_PROBE: &str = "ISOL_SYSCALL_PROBE";

/// The errno of a failed raw system call; 0 when it went through.
fn errno_of(r: libc::c_long) -> i32 {
    if r < 0 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
    } else {
        0
    }
}

/// Raw system calls docker's default profile decides on, in a box: `PROBE name=errno`
/// lines. Run only with `ISOL_SYSCALL_PROBE=1`, as the box's command. Each call is
/// harmless where it goes through: the kernel refuses it (NULL pointers, a size of 0,
/// NEWUSER with FS), or it sets this process's persona, set back at once.
#[test]
fn syscall_probe() {
    if std::env::var_os(SYSCALL_PROBE).is_none() {
        return;
    }
    let null = std::ptr::null::<libc::c_void>();
    #[allow(unsafe_code)]
    // SAFETY: integer arguments and NULL pointers, which the kernel answers with EFAULT
    // where it would read them.
    let out = unsafe {
        let personality = |p: u64| errno_of(libc::syscall(libc::SYS_personality, p));
        let mut out = vec![
            ("persona_linux32", personality(0x0008)),
            ("persona_linux", personality(0)),
            // ADDR_NO_RANDOMIZE | READ_IMPLIES_EXEC, the issue's reproduction.
            ("persona_no_randomize_rie", personality(0x0044_0000)),
        ];
        personality(0);
        out.extend([
            ("persona_read_implies_exec", personality(0x0040_0000)),
            ("nr_1000", errno_of(libc::syscall(1000))),
            (
                "kexec_load",
                errno_of(libc::syscall(libc::SYS_kexec_load, 0, 0, null, 0x00ad_0000)),
            ),
            (
                "open_by_handle_at",
                errno_of(libc::syscall(libc::SYS_open_by_handle_at, -1, null, 0)),
            ),
            (
                "keyctl",
                errno_of(libc::syscall(libc::SYS_keyctl, 0, -4, 0)),
            ),
            ("clone3", errno_of(libc::syscall(libc::SYS_clone3, null, 0))),
            (
                "clone_newuser",
                errno_of(libc::syscall(
                    libc::SYS_clone,
                    libc::CLONE_NEWUSER | libc::CLONE_FS,
                    0,
                    0,
                    0,
                    0,
                )),
            ),
        ]);
        personality(0);
        out
    };
    for (k, v) in out {
        println!("PROBE {k}={v}");
    }
}

/// [`syscall_probe`]'s answers in a box that `isol ARGS… -- PROBE` starts.
fn probe_in(env: &Env, args: &[&str]) -> std::collections::BTreeMap<String, i32> {
    let exe = std::env::current_exe().unwrap();
    let exe = exe.to_str().unwrap();
    let mut all = args.to_vec();
    all.extend([
        "-e",
        "ISOL_SYSCALL_PROBE=1",
        "--",
        exe,
        "--exact",
        "security::syscall_probe",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ]);
    let out = env.isol(&all).ok();
    let seen: std::collections::BTreeMap<String, i32> = out
        .lines()
        .filter_map(|l| l.strip_prefix("PROBE "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
        .collect();
    assert_eq!(seen.len(), 10, "{out}");
    seen
}

/// `isol run` and `isol exec` apply docker's default profile as the allow-list it is
/// (issue 24): `personality(ADDR_NO_RANDOMIZE | READ_IMPLIES_EXEC)` and an unknown call
/// number fail (EPERM, ENOSYS), so do calls docker does not allow, clone3 answers ENOSYS
/// and a namespace through clone EPERM; docker's personas go through. `--cap-add
/// SYS_ADMIN` gives clone3 and namespaces back, as docker's does; `--seccomp unconfined`
/// and `--privileged` take the filter away, which shows each check can fail.
#[test]
fn a_box_has_dockers_allow_list_not_a_block_list() {
    let Some(env) = Env::new("a_box_has_dockers_allow_list_not_a_block_list") else {
        return;
    };
    let (eperm, enosys, einval) = (libc::EPERM, libc::ENOSYS, libc::EINVAL);
    let refused = |b: &std::collections::BTreeMap<String, i32>, how: &str| {
        assert_eq!(b["persona_linux32"], 0, "{how}: {b:?}");
        assert_eq!(b["persona_linux"], 0, "{how}: {b:?}");
        for k in [
            "persona_no_randomize_rie",
            "persona_read_implies_exec",
            "kexec_load",
            "open_by_handle_at",
            "keyctl",
            "clone_newuser",
        ] {
            assert_eq!(b[k], eperm, "{how}: {k}: {b:?}");
        }
        assert_eq!(b["nr_1000"], enosys, "{how}: {b:?}");
        assert_eq!(b["clone3"], enosys, "{how}: {b:?}");
    };
    let before = env.snapshot();
    refused(&probe_in(&env, &env.run_args(&[])), "run");

    env.run(&["-d", "--name", "allow", "--", "sleep", "60"])
        .ok();
    refused(&probe_in(&env, &["exec", "allow"]), "exec");
    env.isol(&["rm", "-f", "allow"]).ok();

    let b = probe_in(&env, &env.run_args(&["--cap-add", "SYS_ADMIN"]));
    assert_eq!(b["clone3"], einval, "{b:?}");
    assert_eq!(b["clone_newuser"], einval, "{b:?}");
    for k in ["persona_no_randomize_rie", "kexec_load", "keyctl"] {
        assert_eq!(b[k], eperm, "{k}: {b:?}");
    }

    for flags in [&["--seccomp", "unconfined"][..], &["--privileged"]] {
        let b = probe_in(&env, &env.run_args(flags));
        for k in ["persona_no_randomize_rie", "persona_read_implies_exec"] {
            assert_eq!(b[k], 0, "{flags:?}: {k}: {b:?}");
        }
        assert_ne!(b["keyctl"], eperm, "{flags:?}: {b:?}");
        assert_eq!(b["clone3"], einval, "{flags:?}: {b:?}");
        assert_eq!(b["nr_1000"], enosys, "{flags:?}: {b:?}");
    }
    assert_eq!(env.snapshot(), before);
}
