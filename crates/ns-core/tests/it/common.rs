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

/// The lines of /proc/self/mountinfo, for before/after comparisons.
pub fn mountinfo() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("read mountinfo")
        .lines()
        .map(|l| l.to_string())
        .collect()
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
