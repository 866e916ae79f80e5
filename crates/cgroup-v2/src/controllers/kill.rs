//! Killing everything in a cgroup: `cgroup.kill` (Linux 5.14; cgroup-v2.rst, "Core
//! Interface Files", cgroup.kill), or on older kernels the fallback of freezing the
//! cgroup, SIGKILLing every task listed in `cgroup.procs` of it and its descendants, and
//! thawing. Either way it waits until `cgroup.events` says `populated 0`.
//!
//! Only ever called on cgroups isol created, so every task in them is one isol started
//! (or a descendant of one).

use std::path::{Path, PathBuf};
use std::time::Duration;

use isol_ns_core::{parse, Error, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::freezer::set_frozen;
use crate::files::{events_key, wait_events_key};

/// SIGKILLs every task in `dir` and its descendants and waits until it is empty.
pub fn kill_all(dir: &Path, timeout: Duration) -> Result<()> {
    if events_key(dir, "populated")? == Some(0) {
        return Ok(());
    }
    if dir.join("cgroup.kill").exists() {
        parse::write(&dir.join("cgroup.kill"), "1")?;
    } else {
        kill_frozen(dir, timeout)?;
    }
    wait_events_key(dir, "populated", 0, timeout)
}

/// The fallback without `cgroup.kill`: freeze (so nothing forks meanwhile), SIGKILL every
/// listed task, thaw (fatal signals are delivered to frozen tasks on v2, but thawing makes
/// sure they run to their exit).
pub fn kill_frozen(dir: &Path, timeout: Duration) -> Result<()> {
    set_frozen(dir, true, timeout)?;
    let result = signal_tree(dir);
    let thawed = set_frozen(dir, false, timeout);
    result.and(thawed)
}

fn signal_tree(dir: &Path) -> Result<()> {
    for d in tree(dir)? {
        for pid in procs(&d)? {
            match kill(Pid::from_raw(pid as i32), Signal::SIGKILL) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => {
                    return Err(Error::io(
                        "kill -9",
                        d.join(format!("cgroup.procs ({pid})")),
                        e.into(),
                    ))
                }
            }
        }
    }
    Ok(())
}

/// The pids listed in `dir/cgroup.procs`.
pub fn procs(dir: &Path) -> Result<Vec<u32>> {
    let path = dir.join("cgroup.procs");
    parse::read(&path)?
        .split_whitespace()
        .map(|p| {
            p.parse()
                .map_err(|_| Error::parse(&path, format!("{p:?} is not a pid")))
        })
        .collect()
}

/// `dir` and every directory beneath it, parents before children.
pub fn tree(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let d = out[i].clone();
        match std::fs::read_dir(&d) {
            Ok(entries) => {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        out.push(e.path());
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("read directory", d, e)),
        }
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_testkit::FakeTree;

    #[test]
    fn empty_cgroup_needs_no_kill() {
        let t = FakeTree::new();
        t.file("cgroup.events", "populated 0\nfrozen 0\n");
        kill_all(t.path(), Duration::from_millis(10)).unwrap();
        assert!(
            !t.path().join("cgroup.kill").exists(),
            "nothing written to an empty cgroup"
        );
    }

    #[test]
    fn writes_cgroup_kill_then_waits() {
        let t = FakeTree::new();
        t.files(&["cgroup.kill"])
            .file("cgroup.events", "populated 1\nfrozen 0\n");
        let err = kill_all(t.path(), Duration::from_millis(20))
            .unwrap_err()
            .to_string();
        assert_eq!(t.read("cgroup.kill"), "1");
        assert!(err.contains("populated 0"), "{err}");
    }

    #[test]
    fn tree_lists_parents_first() {
        let t = FakeTree::new();
        t.files(&["a/b/cgroup.procs", "c/cgroup.procs"])
            .file("cgroup.procs", "12\n34\n");
        let dirs = tree(t.path()).unwrap();
        assert_eq!(dirs[0], t.path());
        assert_eq!(dirs.len(), 4);
        let pos = |p: &str| dirs.iter().position(|d| d == &t.path().join(p)).unwrap();
        assert!(pos("a") < pos("a/b"));
        assert_eq!(procs(t.path()).unwrap(), vec![12, 34]);
    }
}
