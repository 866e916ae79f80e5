//! Exit statuses, signals, pid 1 and zombies.

use isol_ns_core::spawn::{Command, ExitStatus};
use isol_ns_core::{NamespaceKind, NamespacePlan, NamespaceSet};
use isol_testkit::require_root;

use crate::common::{ns_id, output, run_ok, sh};

#[test]
fn exit_codes_and_signals_are_reported_exactly() {
    if !require_root("exit_codes_and_signals_are_reported_exactly") {
        return;
    }
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
    let _ = Command::new("true");
}
