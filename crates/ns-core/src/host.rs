//! What this host offers: the cgroup mode and hierarchies, the caller's own cgroups,
//! the available controllers and the kernel features isol can use.
//!
//! Detection reads mountinfo and `/proc/self/cgroup` and takes the cgroup root as a
//! parameter, so [`HostInfo::from_files`] can be pointed at fixtures of all three modes.
//! The kernel features are probed with harmless calls (`sys`, the only code here that
//! calls the kernel directly) or told by the kernel's version.

mod sys;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::parse::{self, MountInfo, ProcCgroup};
use crate::{Error, Result};

/// The conventional place cgroup filesystems are mounted.
pub const DEFAULT_CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// How cgroups are mounted on a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupMode {
    /// cgroup2 alone at the root (`/sys/fs/cgroup` is cgroup2).
    Unified,
    /// v1 hierarchies under a tmpfs, plus cgroup2 at `unified/`.
    Hybrid,
    /// v1 hierarchies only.
    Legacy,
}

impl fmt::Display for CgroupMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupMode::Unified => "unified",
            CgroupMode::Hybrid => "hybrid",
            CgroupMode::Legacy => "legacy",
        })
    }
}

impl std::str::FromStr for CgroupMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "unified" | "v2" => Ok(CgroupMode::Unified),
            "hybrid" => Ok(CgroupMode::Hybrid),
            "legacy" | "v1" => Ok(CgroupMode::Legacy),
            _ => Err(Error::invalid(
                "cgroup mode",
                s,
                "use unified (v2), hybrid or legacy (v1)",
            )),
        }
    }
}

/// One mounted cgroup hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    /// 1 or 2.
    pub version: u8,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The cgroup that forms the mount's root (not `/` inside some containers).
    pub mount_root: String,
    /// v1: the controllers bound to it, including `name=X` for named hierarchies.
    /// v2: the controllers listed in the root's `cgroup.controllers`.
    pub controllers: Vec<String>,
    /// The caller's cgroup in this hierarchy, from `/proc/self/cgroup`.
    pub own_cgroup: Option<String>,
}

impl Hierarchy {
    /// The directory of `cgroup` (a path relative to the hierarchy's root, as in
    /// `/proc/PID/cgroup`), or `None` when the cgroup lies outside what is mounted.
    pub fn dir_of(&self, cgroup: &str) -> Option<PathBuf> {
        let rel = if self.mount_root == "/" {
            cgroup
        } else {
            let rest = cgroup.strip_prefix(self.mount_root.as_str())?;
            if !(rest.is_empty() || rest.starts_with('/')) {
                return None;
            }
            rest
        };
        let rel = rel.trim_start_matches('/');
        Some(if rel.is_empty() {
            self.mount_point.clone()
        } else {
            self.mount_point.join(rel)
        })
    }

    /// The caller's own cgroup directory in this hierarchy.
    pub fn own_dir(&self) -> Option<PathBuf> {
        self.dir_of(self.own_cgroup.as_deref()?)
    }

    /// Whether `controller` is bound to this hierarchy (v1) or available at its root (v2).
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// Kernel features isol adapts to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelFeatures {
    /// `clone3(2)` exists (Linux 5.3).
    pub clone3: bool,
    /// `CLONE_INTO_CGROUP` for clone3 (Linux 5.7; it places the child in a cgroup2
    /// directory, so a host needs a unified hierarchy, as on unified and hybrid hosts).
    pub clone_into_cgroup: bool,
    /// `pidfd_open(2)` exists (Linux 5.3).
    pub pidfd_open: bool,
    /// `setns(2)` accepts a pidfd to join several namespaces at once (Linux 5.8).
    pub setns_pidfd: bool,
    /// Time namespaces (Linux 5.6).
    pub time_ns: bool,
    /// User namespaces are enabled.
    pub user_ns: bool,
    /// `cgroup.kill` (Linux 5.14).
    pub cgroup_kill: bool,
}

/// Everything isol learns about the host before choosing a backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    /// Unified, hybrid or legacy.
    pub mode: CgroupMode,
    /// Where cgroups are mounted (normally `/sys/fs/cgroup`).
    pub cgroup_root: PathBuf,
    /// The mounted hierarchies beneath it: v1 ones and at most one v2.
    pub hierarchies: Vec<Hierarchy>,
    /// The running kernel's release (`uname -r`), empty for fixtures.
    pub kernel: String,
    /// What the running kernel supports.
    pub features: KernelFeatures,
}

impl HostInfo {
    /// Probes the running host: `/proc/self/mountinfo`, `/proc/self/cgroup`, the v2
    /// root's `cgroup.controllers`, and the kernel features.
    pub fn probe() -> Result<HostInfo> {
        Self::probe_at(Path::new(DEFAULT_CGROUP_ROOT))
    }

    /// Like [`HostInfo::probe`] with another cgroup root.
    pub fn probe_at(cgroup_root: &Path) -> Result<HostInfo> {
        let mi_path = Path::new("/proc/self/mountinfo");
        let cg_path = Path::new("/proc/self/cgroup");
        let mut host =
            Self::from_files(&parse::read(mi_path)?, &parse::read(cg_path)?, cgroup_root)?;
        // A v2 hierarchy's controllers are in its root's cgroup.controllers.
        for h in host.hierarchies.iter_mut().filter(|h| h.version == 2) {
            let text = parse::read(&h.mount_point.join("cgroup.controllers"))?;
            h.controllers = text.split_whitespace().map(str::to_string).collect();
        }
        host.kernel = running_release();
        host.features = KernelFeatures::running();
        host.features.clone_into_cgroup &= host.mode != CgroupMode::Legacy;
        Ok(host)
    }

    /// Builds the host description from the text of mountinfo and `/proc/self/cgroup`
    /// and a cgroup root. The v2 hierarchy's controllers are left empty and features
    /// unprobed; [`HostInfo::probe`] fills them in.
    pub fn from_files(mountinfo: &str, proc_cgroup: &str, cgroup_root: &Path) -> Result<HostInfo> {
        let mounts = parse::mountinfo(Path::new("mountinfo"), mountinfo)?;
        let own = parse::proc_cgroup(Path::new("/proc/self/cgroup"), proc_cgroup)?;
        let mode = detect_mode(&mounts, cgroup_root)?;
        let mut hierarchies = Vec::new();
        for m in mounts
            .iter()
            .filter(|m| m.mount_point.starts_with(cgroup_root))
        {
            let h = match m.fs_type.as_str() {
                "cgroup2" => Hierarchy {
                    version: 2,
                    mount_point: m.mount_point.clone(),
                    mount_root: m.root.clone(),
                    controllers: Vec::new(),
                    own_cgroup: own.iter().find(|c| c.is_unified()).map(|c| c.path.clone()),
                },
                "cgroup" => {
                    let controllers = v1_controllers(m);
                    let own_cgroup = own_v1(&own, &controllers);
                    Hierarchy {
                        version: 1,
                        mount_point: m.mount_point.clone(),
                        mount_root: m.root.clone(),
                        controllers,
                        own_cgroup,
                    }
                }
                _ => continue,
            };
            // The same hierarchy may be mounted twice; keep the first.
            if !hierarchies.iter().any(|o: &Hierarchy| {
                o.version == h.version && o.controllers == h.controllers && h.version == 1
            }) {
                hierarchies.push(h);
            }
        }
        Ok(HostInfo {
            mode,
            cgroup_root: cgroup_root.to_path_buf(),
            hierarchies,
            kernel: String::new(),
            features: KernelFeatures::default(),
        })
    }

    /// The v2 hierarchy, if one is mounted.
    pub fn unified(&self) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.version == 2)
    }

    /// The v1 hierarchies.
    pub fn v1(&self) -> impl Iterator<Item = &Hierarchy> {
        self.hierarchies.iter().filter(|h| h.version == 1)
    }

    /// The v1 hierarchy `controller` is bound to.
    pub fn v1_hierarchy(&self, controller: &str) -> Option<&Hierarchy> {
        self.v1().find(|h| h.has(controller))
    }

    /// Every controller usable on this host with the backend that fits the mode: for
    /// unified, the v2 root's; otherwise the v1 hierarchies' (named ones excluded).
    pub fn controllers(&self) -> Vec<String> {
        let mut out: Vec<String> = match self.mode {
            CgroupMode::Unified => self
                .unified()
                .map(|h| h.controllers.clone())
                .unwrap_or_default(),
            _ => self
                .v1()
                .flat_map(|h| {
                    h.controllers
                        .iter()
                        .filter(|c| !c.starts_with("name="))
                        .cloned()
                })
                .collect(),
        };
        out.sort();
        out.dedup();
        out
    }
}

fn detect_mode(mounts: &[MountInfo], root: &Path) -> Result<CgroupMode> {
    // The last mount on a path hides earlier ones.
    let at_root = mounts.iter().rev().find(|m| m.mount_point == root);
    let under = |fs: &str| {
        mounts
            .iter()
            .any(|m| m.fs_type == fs && m.mount_point.parent() == Some(root))
    };
    match at_root.map(|m| m.fs_type.as_str()) {
        Some("cgroup2") => Ok(CgroupMode::Unified),
        Some(_) if under("cgroup") && under("cgroup2") => Ok(CgroupMode::Hybrid),
        Some(_) if under("cgroup") => Ok(CgroupMode::Legacy),
        Some(fs) => Err(Error::Refused {
            what: format!("detect cgroup mode at {}", root.display()),
            reason: format!("a {fs} is mounted there but no cgroup hierarchy beneath it"),
        }),
        None => Err(Error::Refused {
            what: format!("detect cgroup mode at {}", root.display()),
            reason:
                "nothing is mounted there (mount cgroup2 on it, or point isol at the cgroup root)"
                    .into(),
        }),
    }
}

/// A v1 mount's controllers, from its super options (`rw,cpu,cpuacct`, `rw,name=systemd`).
fn v1_controllers(m: &MountInfo) -> Vec<String> {
    const NOT_CONTROLLERS: [&str; 6] = [
        "rw",
        "ro",
        "noprefix",
        "clone_children",
        "xattr",
        "cpuset_v2_mode",
    ];
    let mut c: Vec<String> = m
        .super_options
        .split(',')
        .filter(|o| {
            !o.is_empty() && !NOT_CONTROLLERS.contains(o) && !o.starts_with("release_agent=")
        })
        .map(str::to_string)
        .collect();
    c.sort();
    c
}

fn own_v1(own: &[ProcCgroup], controllers: &[String]) -> Option<String> {
    own.iter()
        .find(|c| !c.is_unified() && c.controllers.iter().any(|x| controllers.contains(x)))
        .map(|c| c.path.clone())
}

impl KernelFeatures {
    /// The running kernel's features, probed once per process (they cannot change while
    /// it runs) and shared by [`HostInfo::probe`] and spawn.
    pub fn running() -> KernelFeatures {
        static FEATURES: std::sync::OnceLock<KernelFeatures> = std::sync::OnceLock::new();
        *FEATURES.get_or_init(|| Self::probe_kernel(&running_release()))
    }

    /// Probes the running kernel (`release` is `uname -r`). Version checks stand in where
    /// probing would change process state (setns), real calls where they are harmless.
    pub fn probe_kernel(release: &str) -> KernelFeatures {
        let version = kernel_version(release);
        let at_least = |maj: u32, min: u32| version >= (maj, min);
        KernelFeatures {
            clone3: sys::clone3_exists(),
            clone_into_cgroup: at_least(5, 7),
            pidfd_open: sys::pidfd_open_works(),
            setns_pidfd: at_least(5, 8),
            time_ns: Path::new("/proc/self/ns/time").exists(),
            user_ns: Path::new("/proc/self/ns/user").exists()
                && crate::parse::read_text(Path::new("/proc/sys/user/max_user_namespaces"))
                    .map(|s| s.trim() != "0")
                    .unwrap_or(true),
            cgroup_kill: at_least(5, 14),
        }
    }
}

/// `uname -r`; empty if uname fails.
fn running_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `(major, minor)` of a release string such as `6.18.44-fc`.
pub fn kernel_version(release: &str) -> (u32, u32) {
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok());
    (nums.next().unwrap_or(0), nums.next().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "/sys/fs/cgroup";

    pub(crate) const HYBRID_MOUNTINFO: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
25 22 0:22 / /sys rw - sysfs sysfs rw
30 25 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
35 30 0:31 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
36 30 0:32 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";
    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
4:memory:/process_api/dcc1
3:pids:/
2:cpuacct:/
1:cpu:/
0::/
";

    const LEGACY_MOUNTINFO: &str = "\
22 1 254:0 / / rw - ext4 /dev/vda rw
30 22 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
33 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
37 30 0:33 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer
";
    const LEGACY_CGROUP: &str = "3:freezer:/\n2:memory:/box\n1:cpu,cpuacct:/box\n";

    const UNIFIED_MOUNTINFO: &str = "\
22 1 254:0 / / rw - ext4 /dev/vda rw
30 22 0:26 /init.scope/../user.slice /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
";
    const UNIFIED_CGROUP: &str = "0::/user.slice/session-1.scope\n";

    #[test]
    fn detects_hybrid() {
        let h = HostInfo::from_files(HYBRID_MOUNTINFO, HYBRID_CGROUP, Path::new(ROOT)).unwrap();
        assert_eq!(h.mode, CgroupMode::Hybrid);
        assert_eq!(h.v1().count(), 5);
        let mem = h.v1_hierarchy("memory").unwrap();
        assert_eq!(mem.own_cgroup.as_deref(), Some("/process_api/dcc1"));
        assert_eq!(
            mem.own_dir().unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory/process_api/dcc1")
        );
        let sd = h.v1_hierarchy("name=systemd").unwrap();
        assert_eq!(sd.controllers, vec!["name=systemd"]);
        assert_eq!(
            h.unified().unwrap().own_dir().unwrap(),
            PathBuf::from("/sys/fs/cgroup/unified")
        );
        assert_eq!(h.controllers(), vec!["cpu", "cpuacct", "memory", "pids"]);
    }

    #[test]
    fn detects_legacy_with_comounted_controllers() {
        let h = HostInfo::from_files(LEGACY_MOUNTINFO, LEGACY_CGROUP, Path::new(ROOT)).unwrap();
        assert_eq!(h.mode, CgroupMode::Legacy);
        assert!(h.unified().is_none());
        let cpu = h.v1_hierarchy("cpuacct").unwrap();
        assert_eq!(cpu.controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(
            cpu.own_dir().unwrap(),
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/box")
        );
        assert_eq!(
            h.v1_hierarchy("freezer").unwrap().own_cgroup.as_deref(),
            Some("/")
        );
    }

    #[test]
    fn detects_unified_with_a_non_root_mount() {
        let h = HostInfo::from_files(UNIFIED_MOUNTINFO, UNIFIED_CGROUP, Path::new(ROOT)).unwrap();
        assert_eq!(h.mode, CgroupMode::Unified);
        let u = h.unified().unwrap();
        assert_eq!(u.mount_root, "/init.scope/../user.slice");
        // The own cgroup lies outside the mounted subtree: no directory for it.
        assert_eq!(u.dir_of("/elsewhere"), None);
        let u2 = Hierarchy {
            mount_root: "/user.slice".into(),
            ..u.clone()
        };
        assert_eq!(
            u2.dir_of("/user.slice/session-1.scope").unwrap(),
            PathBuf::from("/sys/fs/cgroup/session-1.scope")
        );
        assert_eq!(u2.dir_of("/user.slicex"), None);
    }

    #[test]
    fn configurable_root_and_missing_mounts() {
        let err = HostInfo::from_files(HYBRID_MOUNTINFO, HYBRID_CGROUP, Path::new("/elsewhere"))
            .unwrap_err();
        assert!(err.to_string().contains("nothing is mounted"), "{err}");
        let only_tmpfs = "30 22 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n";
        let err = HostInfo::from_files(only_tmpfs, "", Path::new(ROOT)).unwrap_err();
        assert!(err.to_string().contains("no cgroup hierarchy"), "{err}");
    }

    #[test]
    fn versions() {
        assert_eq!(kernel_version("6.18.44-fc-v857"), (6, 18));
        assert_eq!(kernel_version("5.10.0-28-cloud-amd64"), (5, 10));
        assert_eq!(kernel_version(""), (0, 0));
    }
}
