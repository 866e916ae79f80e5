//! Each kind's settings, checked from outside and from inside.

use isol_ns_core::namespace::{ClockOffset, Mount, UserNs};
use isol_ns_core::spawn::ExitStatus;
use isol_ns_core::{NamespaceKind, NamespaceSet};
use isol_testkit::require_root;

use crate::common::{mountinfo, ns_id, output, run_ok, sh};

#[test]
fn hostname_is_set_inside_and_unchanged_outside() {
    if !require_root("hostname_is_set_inside_and_unchanged_outside") {
        return;
    }
    let _serial = crate::common::serial();
    let before = nix::unistd::gethostname().unwrap();
    let out = run_ok(
        sh("cat /proc/sys/kernel/hostname /proc/sys/kernel/domainname")
            .hostname("isol-box")
            .domainname("isol.test"),
    );
    assert_eq!(out, "isol-box\nisol.test\n");
    assert_eq!(nix::unistd::gethostname().unwrap(), before);
}

#[test]
fn a_mount_inside_never_appears_on_the_host() {
    if !require_root("a_mount_inside_never_appears_on_the_host") {
        return;
    }
    let _serial = crate::common::serial();
    let dir = crate::common::tempdir("mnt");
    let target = dir.path().join("inner");
    let before = mountinfo();
    let mut cmd = sh(&format!(
        "grep -c ' {} ' /proc/self/mountinfo; echo hi > {}/file; sleep 0.2",
        target.display(),
        target.display()
    ));
    cmd.mount(Mount::tmpfs(&target, "size=1m"));
    let child = cmd.spawn().unwrap();
    // While it runs, the host sees neither the mount nor the file written into it.
    assert!(
        !mountinfo()
            .iter()
            .any(|l| l.contains(target.to_str().unwrap())),
        "mount leaked to the host"
    );
    let (status, out, err) = output(child);
    assert_eq!(status, ExitStatus::Exited(0), "{err}");
    assert_eq!(out, "1\n", "the tmpfs is mounted inside");
    assert!(
        !target.join("file").exists(),
        "the file went to the tmpfs, not the host dir"
    );
    assert_eq!(mountinfo(), before);
}

#[test]
fn loopback_is_up_and_the_only_interface() {
    if !require_root("loopback_is_up_and_the_only_interface") {
        return;
    }
    let _serial = crate::common::serial();
    let out = run_ok(&mut sh(
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; echo --; ip -o link",
    ));
    // Not in a new net ns: sanity-check that the host's view is seen (lo at least).
    assert!(out.contains("lo\n"), "{out}");
    let out = run_ok(
        sh("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; echo --; ip -o link")
            .new_namespaces(NamespaceSet::from_iter([NamespaceKind::Net])),
    );
    let (devs, links) = out.split_once("--\n").unwrap();
    assert_eq!(devs, "lo\n", "only lo in /proc/net/dev: {out}");
    let links: Vec<&str> = links.lines().collect();
    assert_eq!(links.len(), 1, "{out}");
    let flags = links[0]
        .split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .map(|(f, _)| f)
        .unwrap_or("");
    assert!(flags.split(',').any(|f| f == "UP"), "lo is up: {out}");
}

#[test]
fn a_new_cgroup_namespace_shows_its_own_cgroup_as_root() {
    if !require_root("a_new_cgroup_namespace_shows_its_own_cgroup_as_root") {
        return;
    }
    let _serial = crate::common::serial();
    let out = run_ok(
        sh("cat /proc/self/cgroup")
            .new_namespaces(NamespaceSet::from_iter([NamespaceKind::Cgroup])),
    );
    for line in out.lines() {
        assert!(line.ends_with(":/"), "every hierarchy shows /: {out}");
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    assert_eq!(out.lines().count(), own.lines().count());
}

#[test]
fn uid_and_gid_maps_are_as_asked() {
    if !require_root("uid_and_gid_maps_are_as_asked") {
        return;
    }
    let _serial = crate::common::serial();
    let mut cmd = sh("id -u; id -g; cat /proc/self/uid_map; sleep 0.3");
    cmd.user_namespace(UserNs::range(100000, 65536))
        .hostname("in-userns");
    let child = cmd.spawn().unwrap();
    let pid = child.pid();
    let uid_map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let gid_map = std::fs::read_to_string(format!("/proc/{pid}/gid_map")).unwrap();
    assert_eq!(
        uid_map.split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    assert_eq!(
        gid_map.split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    // Root inside is uid 100000 outside.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some("100000"),
        "{uid_line}"
    );
    assert_ne!(
        ns_id(&pid.to_string(), NamespaceKind::User),
        ns_id("self", NamespaceKind::User)
    );
    let (st, out, err) = output(child);
    assert_eq!(st, ExitStatus::Exited(0), "{err}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("0"));
    assert_eq!(lines.next(), Some("0"));
    assert_eq!(
        lines
            .next()
            .map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["0", "100000", "65536"])
    );
}

#[test]
fn time_offsets_show_in_timens_offsets_and_uptime() {
    if !require_root("time_offsets_show_in_timens_offsets_and_uptime") {
        return;
    }
    let _serial = crate::common::serial();
    let ten_days = 10 * 86400;
    let mut cmd = sh("cat /proc/self/timens_offsets; cut -d. -f1 /proc/uptime; sleep 0.3");
    cmd.time_offsets(ClockOffset::secs(3600), ClockOffset::secs(ten_days))
        .new_namespaces(NamespaceSet::from_iter([NamespaceKind::Pid]));
    let child = cmd.spawn().unwrap();
    let offsets = std::fs::read_to_string(format!("/proc/{}/timens_offsets", child.pid())).unwrap();
    assert_eq!(offset(&offsets, "boottime"), Some(ten_days), "{offsets}");
    assert_eq!(offset(&offsets, "monotonic"), Some(3600), "{offsets}");
    let host_uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let (st, out, err) = output(child);
    assert_eq!(st, ExitStatus::Exited(0), "{err}");
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(offset(&out, "monotonic"), Some(3600), "{out}");
    assert_eq!(offset(&out, "boottime"), Some(ten_days), "{out}");
    let uptime: f64 = words.last().unwrap().parse().unwrap();
    assert!(
        uptime >= ten_days as f64 + host_uptime - 1.0,
        "uptime inside {uptime} = host {host_uptime} + 10 days"
    );
    let host_offsets = std::fs::read_to_string("/proc/self/timens_offsets").unwrap();
    assert_eq!(
        offset(&host_offsets, "boottime"),
        Some(0),
        "the host's time namespace is untouched"
    );
}

/// The seconds of `clock` in a timens_offsets text (`boottime 864000 0`).
fn offset(text: &str, clock: &str) -> Option<i64> {
    text.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next() == Some(clock))
            .then(|| w.next()?.parse().ok())
            .flatten()
    })
}

/// A box with a time namespace but no pid namespace of its own has an init that is not
/// a pid namespace's first process: killing it (`Child::kill`) must take the command
/// along, which nothing else would.
#[test]
fn killing_the_init_of_a_time_namespace_ends_the_command() {
    if !require_root("killing_the_init_of_a_time_namespace_ends_the_command") {
        return;
    }
    let _serial = crate::common::serial();
    let mut cmd = isol_ns_core::spawn::Command::new("sleep");
    cmd.arg("60")
        .time_offsets(ClockOffset::secs(5), ClockOffset::secs(5))
        .new_namespaces(NamespaceSet::EMPTY);
    let mut child = cmd.spawn().unwrap();
    let init = child.pid();
    let children = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children")).unwrap();
    let command: u32 = children.trim().parse().expect("the init's one child");
    child.kill().unwrap();
    child.wait().unwrap();
    let gone = || {
        std::fs::read_to_string(format!("/proc/{command}/stat")).map_or(true, |s| {
            s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z'))
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !gone() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    if !gone() {
        // Do not leave it running for the next test.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(command as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        panic!("the command {command} outlived its init");
    }
}
