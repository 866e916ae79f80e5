//! Helpers shared by the spawn tests.

use std::io::Read;
use std::os::unix::fs::MetadataExt;

use isol_ns_core::spawn::{Child, Command, ExitStatus, Stdio};
use isol_ns_core::NamespaceKind;

/// `/bin/sh -c script` with piped stdout and stderr.
pub fn sh(script: &str) -> Command {
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg(script)
        .stdout(Stdio::Piped)
        .stderr(Stdio::Piped);
    c
}

/// Waits for `child`, returning its status, stdout and stderr.
pub fn output(mut child: Child) -> (ExitStatus, String, String) {
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        o.read_to_string(&mut out).expect("read stdout");
    }
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err).expect("read stderr");
    }
    let status = child.wait().expect("wait");
    (status, out, err)
}

/// Spawns and collects, asserting success.
pub fn run_ok(cmd: &mut Command) -> String {
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn: {e}"));
    let (status, out, err) = output(child);
    assert_eq!(
        status,
        ExitStatus::Exited(0),
        "stdout: {out}\nstderr: {err}"
    );
    out
}

/// The (device, inode) of `/proc/PID/ns/KIND` (`self` for the test process).
pub fn ns_id(pid: &str, kind: NamespaceKind) -> (u64, u64) {
    let p = format!("/proc/{pid}/ns/{}", kind.proc_name());
    let md = std::fs::metadata(&p).unwrap_or_else(|e| panic!("stat {p}: {e}"));
    (md.dev(), md.ino())
}

/// The mounts of /proc/self/mountinfo that lie at paths this test process made (named
/// `isol-test-<pid>-…`), for before/after comparisons. (The host's mount table is
/// shared with whatever else runs on the machine, so the rest of it is not ours to
/// compare.)
pub fn mountinfo() -> Vec<String> {
    let ours = format!("isol-test-{}-", std::process::id());
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("read mountinfo")
        .lines()
        .filter(|l| l.contains(&ours))
        .map(|l| l.to_string())
        .collect()
}

/// A temporary directory named `isol-test-<pid>-<label>-…`, so [`mountinfo`] sees
/// anything mounted beneath it.
pub fn tempdir(label: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("isol-test-{}-{label}-", std::process::id()))
        .tempdir()
        .expect("create a tempdir")
}

/// The pids of the test process's children (from /proc/*/stat's ppid).
pub fn children() -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let after = stat.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
        let ppid: u32 = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if ppid == me {
            out.push(pid);
        }
    }
    out
}

/// A root filesystem for tests: an empty tempdir plus read-only binds of the host's
/// program directories (`/bin`, `/sbin`, `/usr`, `/lib`, `/lib64`; symlinks copied as
/// symlinks), so the same fixture works on a merged-/usr host and in a busybox VM.
pub struct Rootfs {
    /// The directory.
    pub dir: tempfile::TempDir,
    /// The binds to pass to the command.
    pub mounts: Vec<isol_ns_core::namespace::Mount>,
}

/// Builds a [`Rootfs`].
pub fn rootfs() -> Rootfs {
    use isol_ns_core::namespace::Mount;
    use std::path::Path;
    let dir = tempdir("rootfs");
    let mut mounts = Vec::new();
    for name in ["bin", "sbin", "usr", "lib", "lib64"] {
        let host = Path::new("/").join(name);
        let Ok(md) = std::fs::symlink_metadata(&host) else {
            continue;
        };
        let inside = dir.path().join(name);
        if md.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&host).unwrap(), &inside).unwrap();
        } else if md.is_dir() {
            std::fs::create_dir(&inside).unwrap();
            mounts.push(Mount::bind(&host, Path::new("/").join(name)).read_only());
        }
    }
    Rootfs { dir, mounts }
}

/// A snapshot of what a spawn could leave behind: mounts, child processes and the
/// directories beneath `cgroup_dirs`.
#[derive(Debug, PartialEq, Eq)]
pub struct Leftovers {
    mounts: Vec<String>,
    children: Vec<u32>,
    cgroups: Vec<std::path::PathBuf>,
}

/// Takes a [`Leftovers`] snapshot.
pub fn leftovers(cgroup_dirs: &[std::path::PathBuf]) -> Leftovers {
    let mut cgroups = Vec::new();
    for d in cgroup_dirs {
        collect_dirs(d, &mut cgroups);
    }
    cgroups.sort();
    Leftovers {
        mounts: mountinfo(),
        children: children(),
        cgroups,
    }
}

fn collect_dirs(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}

/// The path of a command in PATH on this host, if any (`nsenter`, `ip`).
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Serializes the tests that compare host-wide state (mounts, child processes) before
/// and after: they must not see each other's children and mounts.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
