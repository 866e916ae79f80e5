//! A new root: pivot_root (or MS_MOVE + chroot on an initramfs), minimal /dev, /proc,
//! read-only /sys, /tmp, read-only binds.

use isol_ns_core::namespace::MntNs;
use isol_ns_core::NamespacePlan;
use isol_testkit::require_root;

use crate::common::{mountinfo, output, rootfs, sh};
use isol_ns_core::spawn::ExitStatus;

#[test]
fn a_container_in_its_own_rootfs() {
    if !require_root("a_container_in_its_own_rootfs") {
        return;
    }
    let _serial = crate::common::serial();
    container_in_rootfs(false);
}

#[test]
fn a_container_in_its_own_rootfs_without_pivot_root() {
    if !require_root("a_container_in_its_own_rootfs_without_pivot_root") {
        return;
    }
    let _serial = crate::common::serial();
    // MS_MOVE + chroot: the path taken where / is an initramfs, forced here.
    container_in_rootfs(true);
}

fn container_in_rootfs(no_pivot: bool) {
    let fs = rootfs();
    let before = mountinfo();
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root_fs = host_mounts.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        (pre.split_whitespace().nth(4) == Some("/"))
            .then(|| post.split_whitespace().next().unwrap_or("").to_string())
    });
    eprintln!(
        "the host's / is {root_fs:?}: {}",
        if no_pivot {
            "no_pivot: this runs MS_MOVE + chroot"
        } else if matches!(root_fs.as_deref(), Some("rootfs" | "ramfs")) {
            "pivot_root fails with EINVAL, so this runs the MS_MOVE + chroot fallback"
        } else {
            "this runs pivot_root"
        }
    );
    let script = "\
        ls / | tr '\\n' ' '; echo; \
        echo x > /dev/null && echo devnull-ok; \
        head -c 4 /dev/zero | wc -c; \
        ls /dev | tr '\\n' ' '; echo; \
        [ -c /dev/pts/ptmx ] && echo pts-ok; \
        readlink /dev/ptmx; \
        touch /usr/isol-test 2>/dev/null && echo usr-writable || echo usr-ro; \
        touch /sys/isol-test 2>/dev/null && echo sys-writable || echo sys-ro; \
        touch /tmp/isol-test && echo tmp-ok; \
        grep -E ' /tmp | /dev/shm ' /proc/self/mountinfo | sed 's/^[^ ]* [^ ]* [^ ]* [^ ]* \\([^ ]*\\) .* - \\([^ ]*\\) .*$/\\1 \\2/' | sort | tr '\\n' ' '; echo; \
        ls /proc | grep -cE '^[0-9]+$'; \
        cat /proc/sys/kernel/hostname";
    let mut cmd = sh(script);
    cmd.namespaces(NamespacePlan::container())
        .rootfs(fs.dir.path())
        .hostname("rooted")
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    for m in &fs.mounts {
        cmd.mount(m.clone());
    }
    let MntNs::Rootfs(r) = cmd.plan_mut().mnt.new_mut() else {
        panic!("a rootfs was given")
    };
    r.no_pivot = no_pivot;
    let child = cmd.spawn().unwrap();
    let (status, out, err) = output(child);
    assert_eq!(status, ExitStatus::Exited(0), "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    let mut root: Vec<&str> = lines[0].split_whitespace().collect();
    root.sort();
    let mut want: Vec<String> = ["dev", "proc", "sys", "tmp"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for e in std::fs::read_dir(fs.dir.path()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if !want.contains(&name) {
            want.push(name);
        }
    }
    want.sort();
    assert_eq!(root, want, "/ inside is the rootfs");
    assert_eq!(lines[1], "devnull-ok");
    assert_eq!(lines[2].trim(), "4");
    for dev in [
        "full", "null", "ptmx", "pts", "random", "shm", "tty", "urandom", "zero",
    ] {
        assert!(
            lines[3].split_whitespace().any(|d| d == dev),
            "/dev has {dev}: {}",
            lines[3]
        );
    }
    assert_eq!(
        &lines[4..9],
        ["pts-ok", "pts/ptmx", "usr-ro", "sys-ro", "tmp-ok"],
        "{out}"
    );
    assert_eq!(lines[9].trim(), "/dev/shm tmpfs /tmp tmpfs", "{out}\n{err}");
    let procs: u32 = lines[10].trim().parse().unwrap();
    assert!(
        procs <= 8,
        "a fresh /proc shows the box's processes only: {procs}"
    );
    assert_eq!(lines[11], "rooted");
    assert_eq!(mountinfo(), before, "nothing mounted on the host");
    assert!(!fs.dir.path().join("tmp/isol-test").exists());
}
