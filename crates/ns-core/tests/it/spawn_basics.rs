//! Exit statuses, signals, pid 1 and zombies.

use isol_ns_core::spawn::ExitStatus;
use isol_ns_core::{NamespaceKind, NamespacePlan, NamespaceSet};
use isol_testkit::require_root;

use crate::common::{ns_id, output, run_ok, sh};

#[test]
fn exit_codes_and_signals_are_reported_exactly() {
    if !require_root("exit_codes_and_signals_are_reported_exactly") {
        return;
    }
    let _serial = crate::common::serial();
    for plan in [NamespaceSet::EMPTY, NamespaceSet::CONTAINER] {
        for (script, want) in [
            ("exit 0", ExitStatus::Exited(0)),
            ("exit 3", ExitStatus::Exited(3)),
            ("kill -TERM $$", ExitStatus::Signaled(libc::SIGTERM)),
        ] {
            let child = sh(script)
                .namespaces(NamespacePlan::new_kinds(plan))
                .spawn()
                .unwrap();
            let (status, out, err) = output(child);
            assert_eq!(status, want, "{script} with {plan}: {out} {err}");
        }
    }
}

#[test]
fn pid_1_is_the_init_and_only_the_box_is_visible() {
    if !require_root("pid_1_is_the_init_and_only_the_box_is_visible") {
        return;
    }
    let _serial = crate::common::serial();
    let out = run_ok(
        sh("echo $$; ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '")
            .namespaces(NamespacePlan::container()),
    );
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("2"),
        "the command is pid 2 under the init: {out}"
    );
    let pids: Vec<u32> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    // init (1), sh (2), and the pipeline's ls/grep/sort/tr: nothing from the host.
    assert_eq!(pids.first(), Some(&1), "{out}");
    assert!(pids.len() <= 6, "only the box's processes: {pids:?}");
}

#[test]
fn every_new_namespace_differs_from_the_host() {
    if !require_root("every_new_namespace_differs_from_the_host") {
        return;
    }
    let _serial = crate::common::serial();
    let mut child = sh("sleep 10")
        .namespaces(NamespacePlan::new_kinds(NamespaceSet::ALL))
        .spawn()
        .unwrap();
    let handles = child.namespaces().unwrap();
    for kind in NamespaceKind::ALL {
        let host = ns_id("self", kind);
        let h = &handles[&kind];
        assert_ne!(h.inode(), host.1, "{kind} should be new");
    }
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap(), ExitStatus::Signaled(libc::SIGKILL));
}

#[test]
fn a_signal_through_the_handle_reaches_the_command() {
    if !require_root("a_signal_through_the_handle_reaches_the_command") {
        return;
    }
    let _serial = crate::common::serial();
    use std::io::{BufRead, BufReader};
    let mut child =
        sh("trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.05; done")
            .namespaces(NamespacePlan::container())
            .spawn()
            .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    // The handle's pid is the init (pid 1 inside); it forwards SIGTERM to the command.
    child.signal(libc::SIGTERM).unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "got-term");
    assert_eq!(child.wait().unwrap(), ExitStatus::Exited(7));
}

#[test]
fn orphans_are_adopted_and_reaped_by_the_init() {
    if !require_root("orphans_are_adopted_and_reaped_by_the_init") {
        return;
    }
    let _serial = crate::common::serial();
    // The inner sh exits at once, orphaning a sleep: it must be reparented to pid 1 (our
    // init) and, once it exits, reaped (gone, not a zombie).
    let script = "p=$(sh -c 'sleep 0.3 >/dev/null 2>&1 & echo $!'); \
                  echo ppid=$(cut -d' ' -f4 /proc/$p/stat); sleep 1.2; \
                  if [ -e /proc/$p ]; then echo state=$(cut -d' ' -f3 /proc/$p/stat); else echo reaped; fi";
    let out = run_ok(sh(script).namespaces(NamespacePlan::container()));
    assert_eq!(out, "ppid=1\nreaped\n");
}

#[test]
fn wait_async_reports_the_exit_through_the_pidfd() {
    if !require_root("wait_async_reports_the_exit_through_the_pidfd") {
        return;
    }
    let _serial = crate::common::serial();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    for plan in [NamespaceSet::EMPTY, NamespaceSet::CONTAINER] {
        let mut child = sh("sleep 0.2; exit 5")
            .namespaces(NamespacePlan::new_kinds(plan))
            .spawn()
            .unwrap();
        let status = rt.block_on(child.wait_async()).unwrap();
        assert_eq!(status, ExitStatus::Exited(5), "{plan}");
        // Cached: waiting again gives the same answer.
        assert_eq!(child.wait().unwrap(), ExitStatus::Exited(5));
    }
}

#[test]
fn try_wait_is_none_while_running() {
    if !require_root("try_wait_is_none_while_running") {
        return;
    }
    let _serial = crate::common::serial();
    let mut child = sh("sleep 5")
        .namespaces(NamespacePlan::container())
        .spawn()
        .unwrap();
    assert_eq!(child.try_wait().unwrap(), None);
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap(), ExitStatus::Signaled(libc::SIGKILL));
}
