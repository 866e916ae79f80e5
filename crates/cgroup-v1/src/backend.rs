//! The v1 backend: the host's v1 hierarchies (and, on hybrid hosts, the unified one),
//! and how a cgroup is laid out across them.
//!
//! Reference: Documentation/admin-guide/cgroup-v1/cgroups.rst, 1.2 "Why are cgroups
//! needed?" (one hierarchy per set of co-mounted controllers) and 2.1 "Basic Usage".
//! A v1 cgroup is one directory per hierarchy. isol creates it at the same name beneath
//! the parent's directory in each hierarchy; the parent paths may differ per hierarchy,
//! because a process sits in a different cgroup in each (here memory:/process_api/…
//! but cpu:/). Mount points come from [`HostInfo`]; nothing assumes `/sys/fs/cgroup`.

use std::path::PathBuf;
use std::sync::Arc;

use isol_ns_core::cgroupfs;
use isol_ns_core::host::Hierarchy;
use isol_ns_core::{
    Backend, Cgroup, CgroupLocation, CgroupMode, CgroupPath, Controller, Error, HostInfo,
    KernelFeatures, Parent, ResourceController, Resources, Result,
};

use crate::cgroup::V1Cgroup;
use crate::controllers::{self, cpuset, kernel_name, BACKEND};

/// One hierarchy a v1 cgroup spans, keyed as in [`CgroupLocation`].
#[derive(Clone, Debug)]
pub(crate) struct Hier {
    /// `cpu,cpuacct`, `memory`, `name=systemd`, or `unified`.
    pub key: String,
    /// The mount.
    pub h: Hierarchy,
}

impl Hier {
    /// The directory of `path` in this hierarchy.
    pub fn dir_of(&self, path: &CgroupPath) -> Result<PathBuf> {
        self.h.dir_of(path.as_str()).ok_or_else(|| Error::Refused {
            what: format!("find {path} in the {} hierarchy", self.key),
            reason: format!(
                "it lies outside the subtree mounted at {} (mount root {})",
                self.h.mount_point.display(),
                self.h.mount_root
            ),
        })
    }
}

/// The cgroup v1 backend, opened on one host.
pub struct V1Backend {
    pub(crate) hiers: Arc<Vec<Hier>>,
    pub(crate) controllers: Arc<Vec<Box<dyn ResourceController>>>,
    features: KernelFeatures,
}

impl std::fmt::Debug for V1Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V1Backend")
            .field(
                "hierarchies",
                &self.hiers.iter().map(|h| &h.key).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl V1Backend {
    /// Builds the backend from the host's v1 hierarchies (plus the unified one on hybrid
    /// hosts). Swap accounting is probed at the memory hierarchy's root.
    pub fn new(host: &HostInfo) -> Result<V1Backend> {
        if host.mode == CgroupMode::Unified {
            return Err(Error::Backend {
                name: BACKEND.into(),
                reason: crate::UNIFIED_REASON.into(),
            });
        }
        let mut hiers: Vec<Hier> = host
            .v1()
            .map(|h| Hier {
                key: h.controllers.join(","),
                h: h.clone(),
            })
            .collect();
        if hiers.is_empty() {
            return Err(Error::Backend {
                name: BACKEND.into(),
                reason: "no cgroup v1 hierarchy is mounted".into(),
            });
        }
        if host.mode == CgroupMode::Hybrid {
            if let Some(u) = host.unified() {
                hiers.push(Hier {
                    key: CgroupLocation::UNIFIED.to_string(),
                    h: u.clone(),
                });
            }
        }
        let memsw = host
            .v1_hierarchy(kernel_name(Controller::Memory))
            .is_some_and(|h| h.mount_point.join("memory.memsw.limit_in_bytes").exists());
        Ok(V1Backend {
            hiers: Arc::new(hiers),
            controllers: Arc::new(controllers::all(memsw)),
            features: host.features,
        })
    }

    fn parent_location(&self, parent: &Parent) -> Result<CgroupLocation> {
        match parent {
            Parent::Own => self.own_cgroup(),
            Parent::Path(p) => Ok(CgroupLocation(
                self.hiers
                    .iter()
                    .map(|h| (h.key.clone(), p.clone()))
                    .collect(),
            )),
            Parent::At(loc) => {
                for h in self.hiers.iter() {
                    if loc.get(&h.key).is_none() {
                        return Err(Error::invalid(
                            "cgroup parent",
                            format!("{loc:?}"),
                            format!("it has no path in the {} hierarchy (a v1 location names every hierarchy)", h.key),
                        ));
                    }
                }
                Ok(loc.clone())
            }
        }
    }
}

/// Refuses every set field whose controller is not mounted as a v1 hierarchy, then asks
/// each controller.
pub(crate) fn check(
    hiers: &[Hier],
    ctrls: &[Box<dyn ResourceController>],
    r: &Resources,
) -> Result<()> {
    r.validate()?;
    for c in ctrls {
        let Some(setting) = c.controller().first_set(r) else {
            continue;
        };
        let name = kernel_name(c.controller());
        if !hiers
            .iter()
            .any(|h| h.key != CgroupLocation::UNIFIED && h.h.has(name))
        {
            let elsewhere = if hiers
                .iter()
                .any(|h| h.key == CgroupLocation::UNIFIED && h.h.has(name))
            {
                format!("the {name} controller is bound to the unified (v2) hierarchy on this host, not to a v1 one")
            } else {
                format!("no v1 hierarchy has the {name} controller on this host")
            };
            return Err(setting.unsupported(BACKEND, elsewhere));
        }
        c.check(r)?;
    }
    Ok(())
}

impl Backend for V1Backend {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn own_cgroup(&self) -> Result<CgroupLocation> {
        let mut loc = CgroupLocation::default();
        for h in self.hiers.iter() {
            let own = h.h.own_cgroup.as_deref().ok_or_else(|| Error::Refused {
                what: format!("find our own cgroup in the {} hierarchy", h.key),
                reason: "/proc/self/cgroup has no line for it".into(),
            })?;
            loc.0.insert(h.key.clone(), CgroupPath::new(own)?);
        }
        Ok(loc)
    }

    fn controllers(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .hiers
            .iter()
            .filter(|h| h.key != CgroupLocation::UNIFIED)
            .flat_map(|h| {
                h.h.controllers
                    .iter()
                    .filter(|c| !c.starts_with("name="))
                    .cloned()
            })
            .collect();
        out.sort();
        out
    }

    fn check(&self, r: &Resources) -> Result<()> {
        check(&self.hiers, &self.controllers, r)
    }

    /// Makes the directory in every hierarchy (all or none), gives a new cpuset cgroup
    /// its parent's cpus and mems, and applies `r`; on any failure removes what it made.
    fn create(&self, parent: &Parent, name: &str, r: &Resources) -> Result<Box<dyn Cgroup>> {
        self.check(r)?;
        let location = self.parent_location(parent)?.join(name)?;
        let mut made: Vec<PathBuf> = Vec::new();
        let result = (|| -> Result<Box<dyn Cgroup>> {
            for h in self.hiers.iter() {
                let path = location
                    .get(&h.key)
                    .ok_or_else(|| Error::invalid("cgroup", name, "no path"))?;
                let dir = h.dir_of(path)?;
                match std::fs::create_dir(&dir) {
                    Ok(()) => made.push(dir.clone()),
                    Err(e) => {
                        return Err(match e.kind() {
                            std::io::ErrorKind::AlreadyExists => Error::cgroup_exists(&dir),
                            std::io::ErrorKind::NotFound => Error::cgroup_parent_missing(&dir),
                            _ => Error::io("mkdir", dir, e),
                        })
                    }
                }
                if h.key != CgroupLocation::UNIFIED && h.h.has(kernel_name(Controller::Cpuset)) {
                    cpuset::prepare(&dir)?;
                }
            }
            let cg = V1Cgroup::new(
                self.hiers.clone(),
                self.controllers.clone(),
                self.features,
                location.clone(),
            )?;
            cg.apply(r)?;
            Ok(Box::new(cg))
        })();
        if result.is_err() {
            for dir in made.iter().rev() {
                let _ = cgroupfs::remove_tree(dir, cgroupfs::WAIT);
            }
        }
        result
    }

    fn open(&self, location: &CgroupLocation) -> Result<Box<dyn Cgroup>> {
        let cg = V1Cgroup::new(
            self.hiers.clone(),
            self.controllers.clone(),
            self.features,
            location.clone(),
        )?;
        for dir in cg.dirs() {
            if !dir.is_dir() {
                return Err(Error::Refused {
                    what: format!(
                        "open cgroup {}",
                        location.primary().map_or("?", |p| p.as_str())
                    ),
                    reason: format!("{} does not exist", dir.display()),
                });
            }
        }
        Ok(Box::new(cg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_testkit::FakeTree;

    /// A hybrid host whose hierarchies are directories of `t` (cpu and cpuacct apart,
    /// our memory cgroup nested, name=systemd, and a unified mount).
    fn fake_host(t: &FakeTree) -> HostInfo {
        let root = t.path();
        let mi = format!(
            "30 22 0:26 / {r} rw - tmpfs tmpfs rw\n\
             31 30 0:27 / {r}/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
             32 30 0:28 / {r}/memory rw - cgroup cgroup rw,memory\n\
             33 30 0:29 / {r}/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
             34 30 0:30 / {r}/unified rw - cgroup2 cgroup2 rw\n",
            r = root.display()
        );
        let cg = "3:name=systemd:/\n2:memory:/sup/me\n1:cpu,cpuacct:/\n0::/\n";
        for d in ["cpu,cpuacct", "memory/sup/me", "systemd", "unified"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        HostInfo::from_files(&mi, cg, root).unwrap()
    }

    #[test]
    fn creates_beneath_our_own_cgroup_in_each_hierarchy() {
        let t = FakeTree::new();
        let b = V1Backend::new(&fake_host(&t)).unwrap();
        assert_eq!(b.controllers(), vec!["cpu", "cpuacct", "memory"]);
        let cg = b
            .create(&Parent::Own, "box", &Resources::default())
            .unwrap();
        let loc = cg.location();
        let keys: Vec<&str> = loc.0.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            vec!["cpu,cpuacct", "memory", "name=systemd", "unified"]
        );
        assert_eq!(loc.get("memory").unwrap().as_str(), "/sup/me/box");
        assert_eq!(loc.get("cpu,cpuacct").unwrap().as_str(), "/box");
        for d in [
            "cpu,cpuacct/box",
            "memory/sup/me/box",
            "systemd/box",
            "unified/box",
        ] {
            assert!(t.path().join(d).is_dir(), "{d}");
        }
        // Existing: refused, nothing touched.
        let err = b
            .create(&Parent::Own, "box", &Resources::default())
            .unwrap_err();
        assert!(matches!(err, Error::Refused { .. }), "{err}");
        // A child of it, then destroy takes both.
        let inner = b
            .create(&Parent::At(loc.clone()), "inner", &Resources::default())
            .unwrap();
        assert_eq!(
            inner.location().get("memory").unwrap().as_str(),
            "/sup/me/box/inner"
        );
        cg.destroy().unwrap();
        for d in [
            "cpu,cpuacct/box",
            "memory/sup/me/box",
            "systemd/box",
            "unified/box",
        ] {
            assert!(!t.path().join(d).exists(), "{d}");
        }
    }

    #[test]
    fn a_failed_create_removes_what_it_made() {
        let t = FakeTree::new();
        let b = V1Backend::new(&fake_host(&t)).unwrap();
        // /sup/me exists in memory only: cpu,cpuacct comes first and fails at once; make
        // the path exist there so that the failure comes later, in name=systemd.
        std::fs::create_dir_all(t.path().join("cpu,cpuacct/sup/me")).unwrap();
        let parent = Parent::Path(CgroupPath::new("/sup/me").unwrap());
        let err = b.create(&parent, "box", &Resources::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains("systemd/sup/me does not exist (create it first"),
            "{err}"
        );
        assert!(
            !t.path().join("cpu,cpuacct/sup/me/box").exists(),
            "rolled back"
        );
        assert!(!t.path().join("memory/sup/me/box").exists(), "rolled back");
        // A location that misses a hierarchy is refused before anything is made.
        let mut loc = b.own_cgroup().unwrap();
        loc.0.remove("name=systemd");
        let err = b
            .create(&Parent::At(loc), "box", &Resources::default())
            .unwrap_err();
        assert!(err.to_string().contains("name=systemd"), "{err}");
    }

    #[test]
    fn refuses_to_kill_the_calling_process() {
        let t = FakeTree::new();
        let b = V1Backend::new(&fake_host(&t)).unwrap();
        let cg = b
            .create(&Parent::Own, "box", &Resources::default())
            .unwrap();
        t.file(
            "memory/sup/me/box/inner/cgroup.procs",
            &format!("{}\n", std::process::id()),
        );
        let err = cg.kill().unwrap_err().to_string();
        assert!(err.contains("this process"), "{err}");
        assert!(t.path().join("memory/sup/me/box/inner").exists());
    }

    #[test]
    fn refuses_what_no_v1_hierarchy_has() {
        let t = FakeTree::new();
        let b = V1Backend::new(&fake_host(&t)).unwrap();
        let mut r = Resources::default();
        r.pids.max = Some(isol_ns_core::units::Limit::Value(1));
        let err = b.check(&r).unwrap_err();
        assert!(
            matches!(&err, Error::Unsupported { setting, .. } if setting == "pids.max"),
            "{err}"
        );
        let r = Resources {
            frozen: Some(true),
            ..Resources::default()
        };
        assert!(b
            .check(&r)
            .unwrap_err()
            .to_string()
            .starts_with("frozen is not supported by cgroup-v1"));
    }

    #[test]
    fn unified_hosts_are_refused() {
        let mi = "30 22 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let host =
            HostInfo::from_files(mi, "0::/\n", std::path::Path::new("/sys/fs/cgroup")).unwrap();
        let fit = crate::fit(&host);
        assert!(!fit.usable && !fit.preferred);
        assert_eq!(fit.reason, crate::UNIFIED_REASON);
        assert!(V1Backend::new(&host)
            .unwrap_err()
            .to_string()
            .contains(crate::UNIFIED_REASON));
    }
}
