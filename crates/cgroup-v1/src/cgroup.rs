//! A handle on one v1 cgroup: a directory in every hierarchy (and the unified one on
//! hybrid hosts), and the operations that span them — attach, apply, read, stats,
//! freeze, kill and destroy.
//!
//! Reference: Documentation/admin-guide/cgroup-v1/cgroups.rst, 2.2 "Attaching processes"
//! and 2.3 "Mounting hierarchies by name"; freezer-subsystem.rst for the kill sequence.

use std::collections::BTreeSet;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use isol_ns_core::{
    open_for_attach, parse, Cgroup, CgroupLocation, CgroupPath, Controller, Error, EventStream,
    ResourceController, Resources, Result, Setting, Stats,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::backend::{check, Hier};
use crate::controllers::{freezer, kernel_name, BACKEND};
use crate::events::V1Events;

/// How long `kill` waits for the cgroup to empty, and `destroy` retries a busy rmdir.
pub const WAIT: Duration = Duration::from_secs(10);

/// One v1 cgroup.
pub struct V1Cgroup {
    hiers: Arc<Vec<Hier>>,
    controllers: Arc<Vec<Box<dyn ResourceController>>>,
    location: CgroupLocation,
    primary: CgroupPath,
    /// (hierarchy key, directory), in the hierarchies' order; `unified` last.
    dirs: Vec<(String, PathBuf)>,
    /// The unified twin's directory, opened on first use by `clone_into_fd`.
    twin_fd: OnceLock<Option<OwnedFd>>,
}

impl std::fmt::Debug for V1Cgroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V1Cgroup")
            .field("location", &self.location)
            .finish()
    }
}

impl V1Cgroup {
    pub(crate) fn new(
        hiers: Arc<Vec<Hier>>,
        controllers: Arc<Vec<Box<dyn ResourceController>>>,
        location: CgroupLocation,
    ) -> Result<V1Cgroup> {
        let mut dirs = Vec::new();
        for h in hiers.iter() {
            let path = location.get(&h.key).ok_or_else(|| {
                Error::invalid(
                    "cgroup location",
                    format!("{location:?}"),
                    format!("no path in the {} hierarchy", h.key),
                )
            })?;
            dirs.push((h.key.clone(), h.dir_of(path)?));
        }
        let primary = location.primary().cloned().unwrap_or_else(CgroupPath::root);
        Ok(V1Cgroup {
            hiers,
            controllers,
            location,
            primary,
            dirs,
            twin_fd: OnceLock::new(),
        })
    }

    /// The directory of the v1 hierarchy `controller` is bound to.
    pub fn dir_for(&self, controller: Controller) -> Option<&Path> {
        let name = kernel_name(controller);
        self.hiers
            .iter()
            .zip(&self.dirs)
            .find(|(h, _)| h.key != CgroupLocation::UNIFIED && h.h.has(name))
            .map(|(_, (_, d))| d.as_path())
    }

    /// The directory whose tasks stand for the cgroup's: memory's, else the first v1 one.
    pub(crate) fn main_dir(&self) -> &Path {
        self.dir_for(Controller::Memory)
            .unwrap_or(self.dirs[0].1.as_path())
    }

    /// Every task in the cgroup or beneath it, in any hierarchy.
    fn all_pids(&self) -> Result<BTreeSet<u32>> {
        let mut out = BTreeSet::new();
        for (_, dir) in &self.dirs {
            out.extend(subtree_pids(dir)?);
        }
        Ok(out)
    }

    fn controller_dirs(&self) -> impl Iterator<Item = (&dyn ResourceController, &Path)> {
        self.controllers
            .iter()
            .filter_map(|c| Some((c.as_ref(), self.dir_for(c.controller())?)))
    }
}

/// The pids in `dir`'s `cgroup.procs` and its descendants'. A directory that is gone has
/// none.
pub(crate) fn subtree_pids(dir: &Path) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    for d in subtree(dir)? {
        let path = d.join("cgroup.procs");
        match parse::read_text(&path) {
            Ok(text) => {
                for word in text.split_whitespace() {
                    out.push(parse::single_u64(&path, word)? as u32);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Read { path, source }),
        }
    }
    Ok(out)
}

/// `dir` and every directory beneath it, parents before children; empty when `dir` is gone.
fn subtree(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        match std::fs::read_dir(&d) {
            Ok(entries) => {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        todo.push(e.path());
                    }
                }
                out.push(d);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("read directory", d, e)),
        }
    }
    out.sort_by_key(|d| d.components().count());
    Ok(out)
}

/// Removes `dir` and its descendants, children first, retrying while the kernel reports
/// EBUSY (a task that was just killed can hold the cgroup for a moment).
pub(crate) fn rmdir_tree(dir: &Path) -> Result<()> {
    let mut dirs = subtree(dir)?;
    dirs.reverse();
    for d in dirs {
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match std::fs::remove_dir(&d) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < WAIT => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                Err(e) => return Err(Error::io("rmdir", d, e)),
            }
        }
    }
    Ok(())
}

#[async_trait]
impl Cgroup for V1Cgroup {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn location(&self) -> &CgroupLocation {
        &self.location
    }

    fn path(&self) -> &CgroupPath {
        &self.primary
    }

    fn dirs(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|(_, d)| d.clone()).collect()
    }

    /// Writes `pid` to `cgroup.procs` in every hierarchy, the unified one included.
    fn attach(&self, pid: u32) -> Result<()> {
        for (_, dir) in &self.dirs {
            parse::write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    fn apply(&self, r: &Resources) -> Result<()> {
        check(&self.hiers, &self.controllers, r)?;
        for (c, dir) in self.controller_dirs() {
            if c.controller().wanted(r) {
                c.apply(dir, r)?;
            }
        }
        Ok(())
    }

    fn read(&self) -> Result<Resources> {
        let mut out = Resources::default();
        for (c, dir) in self.controller_dirs() {
            c.read(dir, &mut out)?;
        }
        Ok(out)
    }

    fn stats(&self) -> Result<Stats> {
        let mut out = Stats::default();
        for (c, dir) in self.controller_dirs() {
            c.stats(dir, &mut out)?;
        }
        if let Some((_, dir)) = self.dirs.iter().find(|(k, _)| k == CgroupLocation::UNIFIED) {
            out.psi = isol_ns_core::stats::PsiStats::read(dir)?;
        }
        Ok(out)
    }

    fn oom_kills(&self) -> Result<u64> {
        self.dir_for(Controller::Memory)
            .map_or(Ok(0), crate::controllers::memory::oom_kills)
    }

    fn freeze(&self) -> Result<()> {
        let dir = self.dir_for(Controller::Freezer).ok_or_else(|| {
            Setting::Frozen.unsupported(
                BACKEND,
                "no v1 hierarchy has the freezer controller on this host",
            )
        })?;
        freezer::set(dir, true)
    }

    fn thaw(&self) -> Result<()> {
        let dir = self.dir_for(Controller::Freezer).ok_or_else(|| {
            Setting::Frozen.unsupported(
                BACKEND,
                "no v1 hierarchy has the freezer controller on this host",
            )
        })?;
        freezer::set(dir, false)
    }

    /// Freezes the cgroup (so nothing forks while we kill), SIGKILLs every task in it and
    /// beneath it — ours, since they are in our cgroup — thaws it so the signals are
    /// delivered, and waits until no task is left in any hierarchy. Refuses when the
    /// calling process is itself inside.
    fn kill(&self) -> Result<()> {
        let me = std::process::id();
        if self.all_pids()?.contains(&me) {
            return Err(Error::Refused {
                what: format!("kill cgroup {}", self.primary),
                reason: format!("this process ({me}) is inside it; kill it from outside"),
            });
        }
        // On hybrid hosts every task isol placed is also in the cgroup's unified twin, and
        // the twin's cgroup.kill (Linux 5.14) kills the whole subtree atomically, forks in
        // flight included. Only without it do we freeze, SIGKILL and thaw through the v1
        // freezer — which once soft-locked a 6.1 guest with tasks in nested v1 cgroups.
        let killed_by_twin = self
            .dirs
            .iter()
            .find(|(k, _)| k == CgroupLocation::UNIFIED)
            .map(|(_, d)| d.join("cgroup.kill"))
            .filter(|p| p.exists())
            .is_some_and(|p| parse::write(&p, "1").is_ok());
        let freezer = if killed_by_twin {
            None
        } else {
            self.dir_for(Controller::Freezer).filter(|d| d.exists())
        };
        // If freezing fails (a task stuck in the kernel), kill anyway; thawing below undoes it.
        let _ = freezer.map(|d| freezer::set(d, true));
        let start = Instant::now();
        let mut first = true;
        loop {
            let pids = self.all_pids()?;
            if pids.is_empty() {
                return Ok(());
            }
            for pid in &pids {
                match kill(Pid::from_raw(*pid as i32), Signal::SIGKILL) {
                    Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                    Err(e) => return Err(Error::io("kill", format!("pid {pid}"), e.into())),
                }
            }
            if first {
                if let Some(d) = freezer {
                    freezer::set(d, false)?;
                }
            }
            first = false;
            if start.elapsed() > WAIT {
                return Err(Error::Timeout {
                    what: format!("cgroup {} to empty (left: {pids:?})", self.primary),
                    waited_ms: start.elapsed().as_millis() as u64,
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The tasks directly in the cgroup, from the memory hierarchy (else the first).
    fn pids(&self) -> Result<Vec<u32>> {
        let path = self.main_dir().join("cgroup.procs");
        let text = parse::read(&path)?;
        text.split_whitespace()
            .map(|w| parse::single_u64(&path, w).map(|p| p as u32))
            .collect()
    }

    fn destroy(&self) -> Result<()> {
        // An empty cgroup without children — the usual case once a box's init is reaped —
        // goes with one rmdir per hierarchy, the unified twin last so that its cgroup.kill
        // is still there for `kill` if a hierarchy refuses (EBUSY: something is inside).
        // A task is in every hierarchy, so a busy cgroup normally refuses the first rmdir.
        let emptied = self
            .dirs
            .iter()
            .all(|(_, dir)| match std::fs::remove_dir(dir) {
                Ok(()) => true,
                Err(e) => e.kind() == std::io::ErrorKind::NotFound,
            });
        if emptied {
            return Ok(());
        }
        self.kill()?;
        for (_, dir) in self.dirs.iter().rev() {
            rmdir_tree(dir)?;
        }
        Ok(())
    }

    async fn events(&self) -> Result<Box<dyn EventStream>> {
        Ok(Box::new(V1Events::new(
            self.main_dir(),
            self.dir_for(Controller::Memory),
            self.dir_for(Controller::Freezer),
            self.dir_for(Controller::Pids),
        )?))
    }

    fn clone_into_fd(&self) -> Option<BorrowedFd<'_>> {
        self.twin_fd
            .get_or_init(|| {
                let (_, dir) = self
                    .dirs
                    .iter()
                    .find(|(k, _)| k == CgroupLocation::UNIFIED)?;
                nix::fcntl::open(
                    dir.as_path(),
                    nix::fcntl::OFlag::O_DIRECTORY
                        | nix::fcntl::OFlag::O_RDONLY
                        | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .ok()
            })
            .as_ref()
            .map(|fd| fd.as_fd())
    }

    /// The new process is single-threaded when it moves itself, so on the v1 hierarchies
    /// it writes `tasks` (one thread) rather than `cgroup.procs` (the whole thread
    /// group): a thread move does not take the global threadgroup rwsem for writing,
    /// whose `rcu_sync` grace period made attaching cost 10–30 ms after a quiet spell
    /// (kernel/cgroup/cgroup.c, `cgroup_procs_write_start`). The unified twin of a hybrid
    /// host only has `cgroup.procs` for a domain cgroup, which takes that rwsem; so the
    /// process is cloned into the twin instead where the kernel can (`cloned_into`).
    fn self_attach_files(&self, cloned_into: bool) -> Result<Vec<(OwnedFd, PathBuf)>> {
        self.dirs
            .iter()
            .filter_map(|(key, dir)| {
                let file = match key.as_str() {
                    CgroupLocation::UNIFIED if cloned_into => return None,
                    CgroupLocation::UNIFIED => "cgroup.procs",
                    _ => "tasks",
                };
                Some(open_for_attach(&dir.join(file)).map(|fd| (fd, dir.clone())))
            })
            .collect()
    }
}
