//! [`V2Cgroup`]: a handle on one cgroup directory of the unified hierarchy
//! (cgroup-v2.rst, "Basic Operations" and "Core Interface Files").

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use isol_ns_core::host::Hierarchy;
use isol_ns_core::stats::PsiStats;
use isol_ns_core::{
    parse, Cgroup, CgroupLocation, CgroupPath, Controller, Error, EventStream, KernelFeatures,
    Resources, Result, Setting, Stats,
};

use crate::backend::{enable_controllers, to_enable, V2Backend};
use crate::controllers::{self, freezer, kernel_name, kill};
use isol_ns_core::cgroupfs::{self, WAIT};

use crate::files::controller_list;
use crate::NAME;

/// One cgroup of the unified hierarchy, with an open `O_DIRECTORY` fd on it.
#[derive(Debug)]
pub struct V2Cgroup {
    hier: Hierarchy,
    features: KernelFeatures,
    location: CgroupLocation,
    path: CgroupPath,
    dir: PathBuf,
    fd: OwnedFd,
}

impl V2Cgroup {
    /// Opens the existing cgroup directory `dir` (the cgroup `path`).
    pub(crate) fn open_dir(
        hier: Hierarchy,
        features: KernelFeatures,
        path: CgroupPath,
        dir: PathBuf,
    ) -> Result<V2Cgroup> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&dir)
            .map_err(|e| Error::io("open cgroup directory", &dir, e))?;
        if !dir.join("cgroup.procs").exists() {
            return Err(Error::Refused {
                what: format!("open cgroup {}", dir.display()),
                reason: "the directory has no cgroup.procs: it is not a cgroup2 directory".into(),
            });
        }
        Ok(V2Cgroup {
            hier,
            features,
            location: CgroupLocation::unified(path.clone()),
            path,
            dir,
            fd: OwnedFd::from(file),
        })
    }

    /// Opens the existing cgroup `path` of the unified hierarchy `hier`. The v1 backend
    /// handles a cgroup's unified twin on a hybrid host through this.
    pub fn open(hier: &Hierarchy, features: KernelFeatures, path: &CgroupPath) -> Result<V2Cgroup> {
        let dir = V2Backend::dir_of(hier, path)?;
        V2Cgroup::open_dir(hier.clone(), features, path.clone(), dir)
    }

    /// The cgroup's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `1` to `cgroup.kill` (Linux 5.14), which SIGKILLs every task in the cgroup
    /// and beneath it at once, forks in flight included; `false` where the kernel has no
    /// `cgroup.kill`. It does not wait for the tasks to go ([`Cgroup::kill`] does).
    pub fn cgroup_kill(&self) -> Result<bool> {
        kill::write_kill(&self.dir)
    }

    /// The pressure stall information of the cgroup (`*.pressure`, kept for every cgroup2
    /// directory whether or not controllers are enabled); `None` without PSI.
    pub fn pressure(&self) -> Result<Option<PsiStats>> {
        PsiStats::read(&self.dir)
    }

    /// Makes sure every controller `resources` needs is enabled for this cgroup, enabling
    /// it in the ancestors' `cgroup.subtree_control` when it is not.
    fn ensure_controllers(&self, resources: &Resources) -> Result<()> {
        let (_, required) = to_enable(resources);
        if required.is_empty() {
            return Ok(());
        }
        let have = controller_list(&self.dir, "cgroup.controllers")?;
        let missing: Vec<Setting> = required
            .into_iter()
            .filter(|s| {
                !have
                    .iter()
                    .any(|h| Some(h.as_str()) == kernel_name(s.controller()))
            })
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let controllers: Vec<Controller> = missing.iter().map(|s| s.controller()).collect();
        let parent = self.path.parent().ok_or_else(|| Error::Refused {
            what: "apply resources to the root cgroup".into(),
            reason: "the root cgroup has no resource limits on cgroup v2".into(),
        })?;
        enable_controllers(&self.hier, &parent, &controllers, &missing)
    }
}

impl Cgroup for V2Cgroup {
    fn backend(&self) -> &'static str {
        NAME
    }

    fn location(&self) -> &CgroupLocation {
        &self.location
    }

    fn path(&self) -> &CgroupPath {
        &self.path
    }

    fn dirs(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }

    fn attach(&self, pid: u32) -> Result<()> {
        parse::write(&self.dir.join("cgroup.procs"), &pid.to_string())
    }

    fn apply(&self, resources: &Resources) -> Result<()> {
        resources.validate()?;
        for c in controllers::all() {
            c.check(resources)?;
        }
        self.ensure_controllers(resources)?;
        for c in controllers::all() {
            if c.controller().wanted(resources) {
                c.apply(&self.dir, resources)?;
            }
        }
        Ok(())
    }

    fn read(&self) -> Result<Resources> {
        let enabled = controller_list(&self.dir, "cgroup.controllers")?;
        let mut out = Resources::default();
        for c in controllers::all() {
            let off =
                kernel_name(c.controller()).is_some_and(|name| !enabled.iter().any(|e| e == name));
            if !off {
                c.read(&self.dir, &mut out)?;
            }
        }
        Ok(out)
    }

    fn stats(&self) -> Result<Stats> {
        let mut stats = Stats::default();
        for c in controllers::all() {
            c.stats(&self.dir, &mut stats)?;
        }
        stats.psi = self.pressure()?;
        Ok(stats)
    }

    fn freeze(&self) -> Result<()> {
        freezer::set_frozen(&self.dir, true, WAIT)
    }

    fn thaw(&self) -> Result<()> {
        freezer::set_frozen(&self.dir, false, WAIT)
    }

    fn oom_kills(&self) -> Result<u64> {
        Ok(match cgroupfs::read_optional(&self.dir, "memory.events")? {
            Some(text) => crate::controllers::memory::events(&self.dir, &text)?.oom_kill,
            None => 0,
        })
    }

    fn kill(&self) -> Result<()> {
        if !self.features.cgroup_kill && !self.dir.join("cgroup.kill").exists() {
            tracing::debug!(
                "no cgroup.kill in {}: freezing and killing each task",
                self.dir.display()
            );
        }
        kill::kill_all(&self.dir, WAIT)
    }

    fn pids(&self) -> Result<Vec<u32>> {
        cgroupfs::procs(&self.dir)
    }

    fn destroy(&self) -> Result<()> {
        // An empty cgroup without children — the usual case once a box's init is reaped —
        // goes with one rmdir; the kernel refuses it (EBUSY) while anything is inside.
        if cgroupfs::rmdir_if_empty(&self.dir) {
            return Ok(());
        }
        kill::kill_all(&self.dir, WAIT)?;
        cgroupfs::remove_tree(&self.dir, WAIT)
    }

    fn events(&self) -> Result<Box<dyn EventStream>> {
        Ok(Box::new(crate::events::V2Events::open(&self.dir)?))
    }

    fn clone_into_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.fd.as_fd())
    }
}
