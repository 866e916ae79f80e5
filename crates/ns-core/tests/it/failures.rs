//! Failed spawns: a typed error naming the step and errno, and nothing left behind.

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;

use isol_ns_core::namespace::Mount;
use isol_ns_core::spawn::{Command, MountStep, SpawnStep};
use isol_ns_core::{Error, NamespacePlan};
use isol_testkit::require_root;

use crate::common::{leftovers, rootfs, sh};

fn spawn_err(cmd: &mut Command) -> (SpawnStep, std::path::PathBuf, std::io::Error) {
    match cmd.spawn() {
        Ok(mut c) => {
            let _ = c.kill();
            let _ = c.wait();
            panic!("spawn should have failed");
        }
        Err(Error::Spawn { step, path, source }) => (step, path, source),
        Err(e) => panic!("expected Error::Spawn, got {e}"),
    }
}

#[test]
fn a_missing_command_is_not_found_before_clone() {
    if !require_root("a_missing_command_is_not_found_before_clone") {
        return;
    }
    let _serial = crate::common::serial();
    let before = leftovers(&[]);
    let (step, path, err) =
        spawn_err(Command::new("isol-no-such-command").namespaces(NamespacePlan::container()));
    assert_eq!(
        (step, err.kind()),
        (SpawnStep::FindProgram, ErrorKind::NotFound)
    );
    assert_eq!(path.to_str(), Some("isol-no-such-command"));
    let (_, _, err) = spawn_err(&mut Command::new("/nonexistent/isol"));
    assert_eq!(err.kind(), ErrorKind::NotFound);
    // Inside a rootfs the lookup happens in the rootfs: /bin/sh exists there only if bound.
    let empty = crate::common::tempdir("fail");
    let (step, _, err) = spawn_err(
        Command::new("/bin/sh")
            .namespaces(NamespacePlan::container())
            .rootfs(empty.path()),
    );
    assert_eq!(
        (step, err.kind()),
        (SpawnStep::FindProgram, ErrorKind::NotFound)
    );
    assert_eq!(leftovers(&[]), before);
}

#[test]
fn a_non_executable_command_is_permission_denied() {
    if !require_root("a_non_executable_command_is_permission_denied") {
        return;
    }
    let _serial = crate::common::serial();
    let dir = crate::common::tempdir("fail");
    let f = dir.path().join("script");
    std::fs::write(&f, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (step, _, err) = spawn_err(&mut Command::new(&f));
    assert_eq!(
        (step, err.kind()),
        (SpawnStep::FindProgram, ErrorKind::PermissionDenied)
    );
}

#[test]
fn an_exec_failure_in_the_child_names_execve_and_leaves_nothing() {
    if !require_root("an_exec_failure_in_the_child_names_execve_and_leaves_nothing") {
        return;
    }
    let _serial = crate::common::serial();
    let dir = crate::common::tempdir("fail");
    // Executable but not a valid binary or script: execve fails with ENOEXEC in the child.
    let junk = dir.path().join("junk");
    std::fs::write(&junk, [0u8, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A script whose interpreter is missing passes the pre-check; execve says ENOENT.
    let dangling = dir.path().join("no-interpreter");
    std::fs::write(&dangling, "#!/nonexistent/isol-interpreter\n").unwrap();
    std::fs::set_permissions(&dangling, std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = leftovers(&[]);
    for plan in [NamespacePlan::none(), NamespacePlan::container()] {
        let (step, path, err) = spawn_err(Command::new(&junk).namespaces(plan));
        assert_eq!(
            (step, err.raw_os_error()),
            (SpawnStep::Execve, Some(libc::ENOEXEC))
        );
        assert_eq!(path, junk);
    }
    let (step, _, err) = spawn_err(Command::new(&dangling).namespaces(NamespacePlan::container()));
    assert_eq!((step, err.kind()), (SpawnStep::Execve, ErrorKind::NotFound));
    assert_eq!(leftovers(&[]), before);
}

#[test]
fn a_failing_mount_names_the_step_and_leaves_nothing() {
    if !require_root("a_failing_mount_names_the_step_and_leaves_nothing") {
        return;
    }
    let _serial = crate::common::serial();
    let dir = crate::common::tempdir("fail");
    let before = leftovers(&[]);
    let mut cmd = sh("true");
    cmd.namespaces(NamespacePlan::container())
        .mount(Mount::tmpfs(dir.path().join("t"), "size=not-a-size"));
    let (step, path, err) = spawn_err(&mut cmd);
    assert_eq!(
        (step, err.raw_os_error()),
        (SpawnStep::Mount(MountStep::Tmpfs), Some(libc::EINVAL))
    );
    assert_eq!(path, dir.path().join("t"));
    let msg = Error::Spawn {
        step,
        path: path.clone(),
        source: err,
    }
    .to_string();
    assert!(
        msg.starts_with("spawn: mount tmpfs ") && msg.contains("Invalid argument"),
        "{msg}"
    );
    assert_eq!(leftovers(&[]), before);
}

#[test]
fn a_bad_rootfs_is_refused_and_leaves_nothing() {
    if !require_root("a_bad_rootfs_is_refused_and_leaves_nothing") {
        return;
    }
    let _serial = crate::common::serial();
    let before = leftovers(&[]);
    let (step, _, err) = spawn_err(
        sh("true")
            .namespaces(NamespacePlan::container())
            .rootfs("/nonexistent/isol-rootfs"),
    );
    assert_eq!((step, err.kind()), (SpawnStep::Rootfs, ErrorKind::NotFound));
    let file_dir = crate::common::tempdir("fail");
    let file = tempfile::NamedTempFile::new_in(file_dir.path()).unwrap();
    let (step, _, err) = spawn_err(
        sh("true")
            .namespaces(NamespacePlan::container())
            .rootfs(file.path()),
    );
    assert_eq!(
        (step, err.raw_os_error()),
        (SpawnStep::Rootfs, Some(libc::ENOTDIR))
    );
    // A full rootfs whose last mount fails inside the child, after /dev, /proc, /sys,
    // /tmp and the binds were mounted: all of it dies with the child's mount namespace.
    let fs = rootfs();
    let mut cmd = sh("true");
    cmd.namespaces(NamespacePlan::container())
        .rootfs(fs.dir.path());
    for m in &fs.mounts {
        cmd.mount(m.clone());
    }
    cmd.mount(Mount::tmpfs("/scratch", "size=not-a-size"));
    let (step, path, err) = spawn_err(&mut cmd);
    assert_eq!(
        (step, err.raw_os_error()),
        (SpawnStep::Mount(MountStep::Tmpfs), Some(libc::EINVAL))
    );
    assert_eq!(path, fs.dir.path().join("scratch"));
    assert_eq!(leftovers(&[]), before);
}
