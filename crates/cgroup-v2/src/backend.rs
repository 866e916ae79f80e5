//! The v2 [`Backend`]: where cgroups go, and enabling controllers on the way there.
//!
//! A controller can be used in a cgroup only when its parent lists it in
//! `cgroup.subtree_control`, which needs the grandparent to have done the same, up to the
//! root (cgroup-v2.rst, "Enabling and Disabling"). So creating a cgroup writes `+name` to
//! the `cgroup.subtree_control` of each ancestor that lacks it, from the nearest level
//! where the controller is available down to the new cgroup's parent. **This is the one
//! write isol makes to cgroups it did not create**; it never removes one, never moves a
//! process out of one, and never writes any other file of theirs. A non-root cgroup that
//! holds processes refuses with EBUSY ("no internal processes", cgroup-v2.rst "No
//! Internal Process Constraint"): the error then says why and what to do.

use std::path::PathBuf;

use isol_ns_core::host::Hierarchy;
use isol_ns_core::{
    Backend, Cgroup, CgroupLocation, CgroupPath, Controller, Error, HostInfo, KernelFeatures,
    Parent, Resources, Result, Setting,
};

use crate::cgroup::V2Cgroup;
use crate::controllers::{self, kernel_name, DEFAULT_ENABLED, ENABLEABLE};
use crate::files::controller_list;
use crate::NAME;

/// The cgroup v2 backend on one host's unified hierarchy.
#[derive(Clone, Debug)]
pub struct V2Backend {
    hier: Hierarchy,
    features: KernelFeatures,
}

impl V2Backend {
    /// The backend on `host`'s unified hierarchy (its mount point comes from `host`).
    pub fn new(host: &HostInfo) -> Result<V2Backend> {
        let hier = host.unified().cloned().ok_or_else(|| Error::Backend {
            name: NAME.into(),
            reason: format!(
                "no cgroup2 hierarchy is mounted under {}",
                host.cgroup_root.display()
            ),
        })?;
        Ok(V2Backend {
            hier,
            features: host.features,
        })
    }

    /// The directory of the cgroup at `path`.
    pub(crate) fn dir_of(hier: &Hierarchy, path: &CgroupPath) -> Result<PathBuf> {
        hier.dir_of(path.as_str()).ok_or_else(|| Error::Refused {
            what: format!("use cgroup {path}"),
            reason: format!(
                "it lies outside the cgroup2 mount at {} (whose root is {})",
                hier.mount_point.display(),
                hier.mount_root
            ),
        })
    }

    fn parent_path(&self, parent: &Parent) -> Result<CgroupPath> {
        match parent {
            Parent::Own => self.own_path(),
            Parent::Path(p) => Ok(p.clone()),
            Parent::At(loc) => loc.get(CgroupLocation::UNIFIED).cloned().ok_or_else(|| {
                Error::invalid(
                    "cgroup parent",
                    format!("{loc:?}"),
                    "the location has no path in the unified hierarchy",
                )
            }),
        }
    }

    fn own_path(&self) -> Result<CgroupPath> {
        let own = self
            .hier
            .own_cgroup
            .as_deref()
            .ok_or_else(|| Error::Refused {
                what: "find our own cgroup".into(),
                reason: "/proc/self/cgroup has no line for the unified hierarchy (0::…)".into(),
            })?;
        CgroupPath::new(own)
    }
}

/// Enables `wanted` controllers for the children of `parent` (and so in every ancestor
/// down to it). A controller of a setting in `required` that cannot be enabled is an
/// error naming the setting; the others
/// (the defaults, enabled so stats work) are skipped when the kernel refuses.
pub(crate) fn enable_controllers(
    hier: &Hierarchy,
    parent: &CgroupPath,
    wanted: &[Controller],
    required: &[Setting],
) -> Result<()> {
    // The ancestors from the top of what is mounted down to the parent.
    let mut levels = Vec::new();
    let mut p = Some(parent.clone());
    while let Some(path) = p {
        let Some(dir) = hier.dir_of(path.as_str()) else {
            break;
        };
        let at_mount = dir == hier.mount_point;
        levels.push(dir);
        if at_mount {
            break;
        }
        p = path.parent();
    }
    levels.reverse();
    let mut wanted: Vec<(Controller, &str)> = wanted
        .iter()
        .filter_map(|&c| Some((c, kernel_name(c)?)))
        .collect();
    for dir in &levels {
        let available = controller_list(dir, "cgroup.controllers")?;
        let enabled = controller_list(dir, "cgroup.subtree_control")?;
        let mut keep = Vec::new();
        for (controller, c) in wanted {
            let required = required.iter().find(|s| s.controller() == controller);
            let is_required = required.is_some();
            if !available.iter().any(|a| a == c) {
                if let Some(setting) = required {
                    return Err(setting.unsupported(
                        NAME,
                        format!(
                            "the {c} controller is not available in {} (its cgroup.controllers lists: {}); it must be enabled in the parent's cgroup.subtree_control",
                            dir.display(),
                            available.join(" ")
                        ),
                    ));
                }
                continue;
            }
            if enabled.iter().any(|e| e == c) {
                keep.push((controller, c));
                continue;
            }
            let file = dir.join("cgroup.subtree_control");
            match isol_ns_core::parse::write(&file, &format!("+{c}")) {
                Ok(()) => keep.push((controller, c)),
                Err(e) if !is_required => {
                    tracing::debug!("not enabling {c} in {}: {e}", file.display());
                }
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && *dir != hier.mount_point => {
                    return Err(Error::Refused {
                        what: format!("enable the {c} controller in {}", file.display()),
                        reason: format!(
                            "{} holds processes, so controllers cannot be enabled beneath it (cgroup v2's no-internal-processes rule); run isol from a cgroup without processes or pass --cgroup-parent",
                            dir.display()
                        ),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        wanted = keep;
    }
    Ok(())
}

/// The controllers to enable for a cgroup with `resources`: the needed ones and the
/// defaults, without duplicates.
pub(crate) fn to_enable(resources: &Resources) -> (Vec<Controller>, Vec<Setting>) {
    let required = controllers::needed(resources);
    let wanted = ENABLEABLE
        .into_iter()
        .filter(|c| required.iter().any(|s| s.controller() == *c) || DEFAULT_ENABLED.contains(c))
        .collect();
    (wanted, required)
}

impl Backend for V2Backend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn own_cgroup(&self) -> Result<CgroupLocation> {
        Ok(CgroupLocation::unified(self.own_path()?))
    }

    fn controllers(&self) -> Vec<String> {
        self.hier.controllers.clone()
    }

    fn check(&self, resources: &Resources) -> Result<()> {
        resources.validate()?;
        for c in controllers::all() {
            c.check(resources)?;
            let Some(name) = kernel_name(c.controller()) else {
                continue;
            };
            let Some(setting) = c.controller().first_set(resources) else {
                continue;
            };
            if !self.hier.has(name) {
                return Err(setting.unsupported(
                    NAME,
                    format!(
                        "the {name} controller is not available in the cgroup2 hierarchy at {} (it offers: {})",
                        self.hier.mount_point.display(),
                        self.hier.controllers.join(" ")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn create(
        &self,
        parent: &Parent,
        name: &str,
        resources: &Resources,
    ) -> Result<Box<dyn Cgroup>> {
        self.check(resources)?;
        let parent_path = self.parent_path(parent)?;
        let path = parent_path.join(name)?;
        let dir = Self::dir_of(&self.hier, &path)?;
        if dir.exists() {
            return Err(Error::cgroup_exists(&dir));
        }
        let missing_parent = || dir.parent().is_some_and(|p| !p.is_dir());
        let (wanted, required) = to_enable(resources);
        enable_controllers(&self.hier, &parent_path, &wanted, &required).map_err(|e| {
            if missing_parent() {
                Error::cgroup_parent_missing(&dir)
            } else {
                e
            }
        })?;
        std::fs::create_dir(&dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::cgroup_exists(&dir),
            std::io::ErrorKind::NotFound => Error::cgroup_parent_missing(&dir),
            _ => Error::io("mkdir", &dir, e),
        })?;
        let cg = match V2Cgroup::open_dir(self.hier.clone(), self.features, path, dir.clone()) {
            Ok(cg) => cg,
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(e);
            }
        };
        if let Err(e) = cg.apply(resources) {
            if let Err(cleanup) = cg.destroy() {
                tracing::warn!(
                    "removing {} after a failed create: {cleanup}",
                    dir.display()
                );
            }
            return Err(e);
        }
        Ok(Box::new(cg))
    }

    fn open(&self, location: &CgroupLocation) -> Result<Box<dyn Cgroup>> {
        let path = location
            .get(CgroupLocation::UNIFIED)
            .cloned()
            .ok_or_else(|| {
                Error::invalid(
                    "cgroup location",
                    format!("{location:?}"),
                    "no path in the unified hierarchy",
                )
            })?;
        let dir = Self::dir_of(&self.hier, &path)?;
        Ok(Box::new(V2Cgroup::open_dir(
            self.hier.clone(),
            self.features,
            path,
            dir,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_testkit::FakeTree;

    fn fake_hier(t: &FakeTree) -> Hierarchy {
        Hierarchy {
            version: 2,
            mount_point: t.path().to_path_buf(),
            mount_root: "/".into(),
            controllers: vec!["cpu".into(), "memory".into(), "pids".into()],
            own_cgroup: Some("/".into()),
        }
    }

    #[test]
    fn enables_from_the_top_down_to_the_parent() {
        let t = FakeTree::new();
        t.file("cgroup.controllers", "cpu memory pids\n")
            .file("cgroup.subtree_control", "memory\n");
        t.file("a/cgroup.controllers", "memory\n")
            .file("a/cgroup.subtree_control", "");
        let hier = fake_hier(&t);
        let parent = CgroupPath::new("/a").unwrap();
        // Already enabled at the root: only a/ is written.
        let [memory, pids] = [Controller::Memory, Controller::Pids];
        enable_controllers(&hier, &parent, &[memory], &[Setting::MemoryMax]).unwrap();
        assert_eq!(t.read("cgroup.subtree_control"), "memory");
        assert_eq!(t.read("a/cgroup.subtree_control"), "+memory");
        // Required but not available in a/ (the fake kernel does not turn the root's write
        // into a/'s cgroup.controllers): the error names the controller and the directory.
        t.file("cgroup.subtree_control", "")
            .file("a/cgroup.subtree_control", "");
        let err = enable_controllers(&hier, &parent, &[pids], &[Setting::PidsMax])
            .unwrap_err()
            .to_string();
        assert_eq!(
            t.read("cgroup.subtree_control"),
            "+pids",
            "the root got +pids"
        );
        assert!(
            err.contains("pids controller is not available in") && err.contains("/a "),
            "{err}"
        );
        // A default that cannot be enabled is skipped.
        t.file("cgroup.subtree_control", "");
        enable_controllers(&hier, &parent, &[pids], &[]).unwrap();
        assert_eq!(t.read("a/cgroup.subtree_control"), "");
    }

    #[test]
    fn check_refuses_what_validate_refuses() {
        let t = FakeTree::new();
        let backend = V2Backend {
            hier: fake_hier(&t),
            features: KernelFeatures::default(),
        };
        let mut r = Resources::default();
        r.cpu.weight = Some(0);
        let err = backend.check(&r).unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { field, .. } if field == "cpu.weight"),
            "{err}"
        );
    }

    #[test]
    fn to_enable_merges_needed_and_defaults() {
        let mut r = Resources::default();
        r.cpuset.cpus = Some("0".parse().unwrap());
        let (wanted, required) = to_enable(&r);
        assert_eq!(required, vec![Setting::CpusetCpus]);
        let names: Vec<&str> = wanted.iter().map(|c| c.name()).collect();
        assert_eq!(names, vec!["memory", "io", "cpuset", "cpu", "pids"]);
    }
}
