//! Rootless: an unprivileged user maps itself to root in a new user namespace.
//!
//! The test re-runs this very test in a copy of the test binary as uid/gid 65534 (with
//! `ISOL_ROOTLESS_CHILD=1`); that run spawns the box and asserts what it sees, and the
//! root run asserts that the unprivileged run passed (and really ran: "1 passed").

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use isol_ns_core::namespace::UserNs;
use isol_ns_core::spawn::ExitStatus;
use isol_ns_core::{NamespaceKind, NamespacePlan, NamespaceSet};
use isol_testkit::require_root;

use crate::common::{output, sh};

const NOBODY: u32 = 65534;
const TEST: &str = "rootless::an_unprivileged_user_maps_itself_to_root";

#[test]
fn an_unprivileged_user_maps_itself_to_root() {
    if std::env::var_os("ISOL_ROOTLESS_CHILD").is_some() {
        return as_nobody();
    }
    if !require_root("an_unprivileged_user_maps_itself_to_root") {
        return;
    }
    let _serial = crate::common::serial();
    let (exe, _copy) = reachable_exe();
    let out = std::process::Command::new(&exe)
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env("ISOL_ROOTLESS_CHILD", "1")
        .current_dir("/")
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the unprivileged run failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "the unprivileged run ran the test:\n{stdout}"
    );
    assert!(stdout.contains("rootless-box-ok"), "{stdout}");
}

use std::os::unix::process::CommandExt;

/// The test binary, or a world-executable copy of it when nobody cannot reach it.
fn reachable_exe() -> (PathBuf, Option<tempfile::TempDir>) {
    let exe = std::env::current_exe().unwrap();
    let reachable = exe.ancestors().skip(1).all(|d| {
        d.metadata()
            .is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
    }) && exe
        .metadata()
        .is_ok_and(|m| m.permissions().mode() & 0o001 != 0);
    if reachable {
        return (exe, None);
    }
    let dir = tempfile::Builder::new()
        .prefix("isol-test-rootless-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.path().join("it");
    std::fs::copy(&exe, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    (copy, Some(dir))
}

/// Runs as uid 65534: spawn into a user namespace mapping 65534 to 0, with mnt, pid,
/// uts, net and ipc namespaces owned by it.
fn as_nobody() {
    assert_eq!(
        nix::unistd::geteuid().as_raw(),
        NOBODY,
        "the child run is unprivileged"
    );
    let mut plan = NamespacePlan::new_kinds(NamespaceSet::from_iter([
        NamespaceKind::Mnt,
        NamespaceKind::Pid,
        NamespaceKind::Uts,
        NamespaceKind::Net,
        NamespaceKind::Ipc,
    ]));
    plan.user = isol_ns_core::namespace::Slot::New(UserNs::rootless());
    let mut cmd = sh("id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; cat /proc/sys/kernel/hostname; echo $$; sleep 0.2");
    cmd.namespaces(plan).hostname("rootless").current_dir("/");
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("rootless spawn: {e}"));
    let pid = child.pid();
    let uid_map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    assert_eq!(
        uid_map.split_whitespace().collect::<Vec<_>>(),
        ["0", "65534", "1"]
    );
    let (status, out, err) = output(child);
    assert_eq!(status, ExitStatus::Exited(0), "{out}\n{err}");
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        words,
        ["0", "0", "0", "65534", "1", "0", "65534", "1", "deny", "rootless", "2"],
        "{out}"
    );
    assert!(Path::new("/proc/self").exists());
    println!("rootless-box-ok");
}
