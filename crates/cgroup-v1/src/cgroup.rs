//! A handle on one v1 cgroup: a directory in every hierarchy (and the unified one on
//! hybrid hosts), and the operations that span them — attach, apply, read, stats,
//! freeze, kill and destroy. The unified twin is a cgroup2 cgroup, so it is handled
//! through `isol_cgroup_v2::V2Cgroup` (its `cgroup.procs`, `cgroup.kill`, PSI and the
//! directory fd for `CLONE_INTO_CGROUP`), not by a second implementation here.
//!
//! Reference: Documentation/admin-guide/cgroup-v1/cgroups.rst, 2.2 "Attaching processes"
//! and 2.3 "Mounting hierarchies by name"; freezer-subsystem.rst for the kill sequence.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use isol_cgroup_v2::V2Cgroup;
use isol_ns_core::cgroupfs::{self, WAIT};
use isol_ns_core::host::Hierarchy;
use isol_ns_core::{
    open_for_attach, parse, Cgroup, CgroupLocation, CgroupPath, Controller, Error, EventStream,
    KernelFeatures, ResourceController, Resources, Result, Setting, Stats,
};

use crate::backend::{check, Hier};
use crate::controllers::{freezer, kernel_name, BACKEND};
use crate::events::V1Events;

/// One v1 cgroup.
pub struct V1Cgroup {
    hiers: Arc<Vec<Hier>>,
    controllers: Arc<Vec<Box<dyn ResourceController>>>,
    location: CgroupLocation,
    primary: CgroupPath,
    /// (hierarchy key, directory), in the hierarchies' order; `unified` last.
    dirs: Vec<(String, PathBuf)>,
    /// The unified twin, on hybrid hosts.
    twin: Option<Twin>,
}

/// A cgroup's unified twin, opened through the v2 backend on first use: a handle that
/// never needs it (most of those `open` makes) costs no `open(2)` of it.
struct Twin {
    hier: Hierarchy,
    features: KernelFeatures,
    path: CgroupPath,
    cgroup: OnceLock<V2Cgroup>,
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
        features: KernelFeatures,
        location: CgroupLocation,
    ) -> Result<V1Cgroup> {
        let mut dirs = Vec::new();
        let mut twin = None;
        for h in hiers.iter() {
            let path = location.get(&h.key).ok_or_else(|| {
                Error::invalid(
                    "cgroup location",
                    format!("{location:?}"),
                    format!("no path in the {} hierarchy", h.key),
                )
            })?;
            dirs.push((h.key.clone(), h.dir_of(path)?));
            if h.key == CgroupLocation::UNIFIED {
                twin = Some(Twin {
                    hier: h.h.clone(),
                    features,
                    path: path.clone(),
                    cgroup: OnceLock::new(),
                });
            }
        }
        let primary = location.primary().cloned().unwrap_or_else(CgroupPath::root);
        Ok(V1Cgroup {
            hiers,
            controllers,
            location,
            primary,
            dirs,
            twin,
        })
    }

    /// The unified twin (on hybrid hosts), opened now if it was not yet.
    pub fn twin(&self) -> Result<Option<&V2Cgroup>> {
        let Some(t) = &self.twin else {
            return Ok(None);
        };
        if let Some(cg) = t.cgroup.get() {
            return Ok(Some(cg));
        }
        let cg = V2Cgroup::open(&t.hier, t.features, &t.path)?;
        Ok(Some(t.cgroup.get_or_init(|| cg)))
    }

    /// The v1 hierarchies' directories, without the twin's.
    fn v1_dirs(&self) -> impl Iterator<Item = &Path> {
        self.dirs
            .iter()
            .filter(|(k, _)| k != CgroupLocation::UNIFIED)
            .map(|(_, d)| d.as_path())
    }

    /// The freezer hierarchy's directory, or why there is none.
    fn freezer_dir(&self) -> Result<&Path> {
        self.dir_for(Controller::Freezer).ok_or_else(|| {
            Setting::Frozen.unsupported(
                BACKEND,
                "no v1 hierarchy has the freezer controller on this host",
            )
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

    /// Its directories, in the hierarchies' order.
    fn dir_paths(&self) -> Vec<&Path> {
        self.dirs.iter().map(|(_, d)| d.as_path()).collect()
    }

    fn controller_dirs(&self) -> impl Iterator<Item = (&dyn ResourceController, &Path)> {
        self.controllers
            .iter()
            .filter_map(|c| Some((c.as_ref(), self.dir_for(c.controller())?)))
    }
}

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

    /// Writes `pid` to `cgroup.procs` in every hierarchy, then attaches it to the twin.
    fn attach(&self, pid: u32) -> Result<()> {
        for dir in self.v1_dirs() {
            parse::write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        match self.twin()? {
            Some(twin) => twin.attach(pid),
            None => Ok(()),
        }
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
        if let Some(twin) = self.twin()? {
            out.psi = twin.pressure()?;
        }
        Ok(out)
    }

    fn oom_kills(&self) -> Result<u64> {
        self.dir_for(Controller::Memory)
            .map_or(Ok(0), crate::controllers::memory::oom_kills)
    }

    fn freeze(&self) -> Result<()> {
        freezer::set(self.freezer_dir()?, true)
    }

    fn thaw(&self) -> Result<()> {
        freezer::set(self.freezer_dir()?, false)
    }

    /// Freezes the cgroup (so nothing forks while we kill), SIGKILLs every task in it and
    /// beneath it — ours, since they are in our cgroup — thaws it so the signals are
    /// delivered, and waits until no task is left in any hierarchy. Refuses when the
    /// calling process is itself inside.
    fn kill(&self) -> Result<()> {
        let dirs = self.dir_paths();
        let what = format!("cgroup {}", self.primary);
        cgroupfs::refuse_self(&cgroupfs::subtree_pids(&dirs)?, &what)?;
        // On hybrid hosts every task isol placed is also in the cgroup's unified twin, and
        // the twin's cgroup.kill (Linux 5.14) kills the whole subtree atomically, forks in
        // flight included. Only without it do we freeze, SIGKILL and thaw through the v1
        // freezer — which once soft-locked a 6.1 guest with tasks in nested v1 cgroups.
        let killed_by_twin = self
            .twin()
            .ok()
            .flatten()
            .is_some_and(|twin| twin.cgroup_kill().unwrap_or(false));
        let freezer = if killed_by_twin {
            None
        } else {
            self.dir_for(Controller::Freezer).filter(|d| d.exists())
        };
        // If freezing fails (a task stuck in the kernel), kill anyway; thawing below undoes it.
        let _ = freezer.map(|d| freezer::set(d, true));
        cgroupfs::sigkill_until_empty(&dirs, &what, WAIT, || {
            freezer.map_or(Ok(()), |d| freezer::set(d, false))
        })
    }

    /// The tasks directly in the cgroup, from the memory hierarchy (else the first).
    fn pids(&self) -> Result<Vec<u32>> {
        cgroupfs::procs(self.main_dir())
    }

    fn destroy(&self) -> Result<()> {
        // An empty cgroup without children — the usual case once a box's init is reaped —
        // goes with one rmdir per hierarchy, the unified twin last so that its cgroup.kill
        // is still there for `kill` if a hierarchy refuses (EBUSY: something is inside).
        // A task is in every hierarchy, so a busy cgroup normally refuses the first rmdir.
        if self
            .dirs
            .iter()
            .all(|(_, dir)| cgroupfs::rmdir_if_empty(dir))
        {
            return Ok(());
        }
        self.kill()?;
        for (_, dir) in self.dirs.iter().rev() {
            cgroupfs::remove_tree(dir, WAIT)?;
        }
        Ok(())
    }

    fn events(&self) -> Result<Box<dyn EventStream>> {
        Ok(Box::new(V1Events::new(
            self.main_dir(),
            self.dir_for(Controller::Memory),
            self.dir_for(Controller::Freezer),
            self.dir_for(Controller::Pids),
        )?))
    }

    /// The twin's directory fd (none on a legacy host, or when it cannot be opened).
    fn clone_into_fd(&self) -> Option<BorrowedFd<'_>> {
        self.twin().ok().flatten()?.clone_into_fd()
    }

    /// The new process is single-threaded when it moves itself, so on the v1 hierarchies
    /// it writes `tasks` (one thread) rather than `cgroup.procs` (the whole thread
    /// group): a thread move does not take the global threadgroup rwsem for writing,
    /// whose `rcu_sync` grace period made attaching cost 10–30 ms after a quiet spell
    /// (kernel/cgroup/cgroup.c, `cgroup_procs_write_start`). The unified twin of a hybrid
    /// host only has `cgroup.procs` for a domain cgroup, which takes that rwsem; so the
    /// process is cloned into the twin instead where the kernel can (`cloned_into`), and
    /// otherwise gets the twin's own file.
    fn self_attach_files(&self, cloned_into: bool) -> Result<Vec<(OwnedFd, PathBuf)>> {
        let mut files = self
            .v1_dirs()
            .map(|dir| Ok((open_for_attach(&dir.join("tasks"))?, dir.to_path_buf())))
            .collect::<Result<Vec<_>>>()?;
        if let Some(twin) = self.twin()? {
            files.extend(twin.self_attach_files(cloned_into)?);
        }
        Ok(files)
    }
}
