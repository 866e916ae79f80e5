//! The init isol leaves as pid 1 of a new pid namespace never execs, so close-on-exec
//! does not protect it: it must close the spawner's fds itself, or it holds them — an
//! flock'ed state file (and so the lock), a pipe someone reads to EOF — for the box's
//! whole life.

use isol_ns_core::NamespacePlan;
use isol_testkit::require_root;

use crate::common::sh;

#[test]
fn the_init_holds_no_fd_of_the_spawner() {
    if !require_root("the_init_holds_no_fd_of_the_spawner") {
        return;
    }
    // Its box is a child of this process while it runs: the tests that compare the
    // children before and after must not see it.
    let _serial = crate::common::serial();
    let marker = tempfile::NamedTempFile::new().unwrap();
    let (_pipe_r, pipe_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let mut cmd = sh("exec sleep 30");
    cmd.namespaces(NamespacePlan::container());
    let mut child = cmd.spawn().unwrap();
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", child.pid()))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.display().to_string())
        .collect();
    child.kill().unwrap();
    child.wait().unwrap();
    drop(pipe_w);
    let marker = marker.path().display().to_string();
    assert!(!fds.contains(&marker), "the init holds {marker}: {fds:?}");
    // Only the status pipe to isol is left.
    assert_eq!(fds.len(), 1, "{fds:?}");
    assert!(fds[0].starts_with("pipe:"), "{fds:?}");
}
