//! A scratch cgroup per test, beneath the test process's own cgroup.
//!
//! It is created through the backend under test, uniquely named
//! (`isol-test-<label>-<pid>-<n>`), and removed on drop — through the backend's
//! `destroy`, and if that fails, by killing what is left inside and removing the
//! directories bottom-up. It never touches a cgroup it did not create.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use isol_ns_core::{Backend, Cgroup, Parent, Resources};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A cgroup that exists for the life of one test.
pub struct Scratch {
    backend: Box<dyn Backend>,
    cgroup: Option<Box<dyn Cgroup>>,
}

impl Scratch {
    /// Creates `isol-test-<label>-<pid>-<n>` beneath the caller's own cgroup.
    pub fn new(backend: Box<dyn Backend>, label: &str) -> Scratch {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("isol-test-{label}-{}-{n}", std::process::id());
        let cgroup = backend
            .create(&Parent::Own, &name, &Resources::default())
            .unwrap_or_else(|e| panic!("create scratch cgroup {name}: {e}"));
        Scratch {
            backend,
            cgroup: Some(cgroup),
        }
    }

    /// The backend under test.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// The scratch cgroup itself.
    pub fn cgroup(&self) -> &dyn Cgroup {
        self.cgroup
            .as_deref()
            .expect("scratch cgroup is alive until drop")
    }

    /// `Parent::At` the scratch cgroup, for creating the cgroups a test works on.
    pub fn parent(&self) -> Parent {
        Parent::At(self.cgroup().location().clone())
    }

    /// Creates a child of the scratch cgroup with `resources`.
    pub fn child(&self, name: &str, resources: &Resources) -> Box<dyn Cgroup> {
        self.backend
            .create(&self.parent(), name, resources)
            .unwrap_or_else(|e| panic!("create {name}: {e}"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let Some(cg) = self.cgroup.take() else { return };
        let dirs = cg.dirs();
        if let Err(e) = cg.destroy() {
            eprintln!(
                "scratch cgroup {}: destroy failed ({e}); removing by hand",
                cg.path()
            );
        }
        for dir in dirs {
            remove_tree(&dir);
        }
    }
}

/// Kills the tasks left in `dir` and its descendants (ours: they are in our scratch
/// cgroup) and removes the directories bottom-up, retrying while busy.
fn remove_tree(dir: &Path) {
    if !dir.exists() {
        return;
    }
    let mut subdirs: Vec<PathBuf> = Vec::new();
    collect_dirs(dir, &mut subdirs);
    subdirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in subdirs {
        for _ in 0..100 {
            if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
                for pid in procs
                    .split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok())
                {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            match std::fs::remove_dir(&d) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        if d.exists() {
            eprintln!("scratch cgroup: could not remove {}", d.display());
        }
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}
