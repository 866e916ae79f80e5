//! Hardening: what keeps root inside a box from reaching the host.
//!
//! Without a user namespace, uid 0 inside is uid 0 outside, with root's capabilities. So
//! a box follows docker's defaults, gathered in one [`SecurityPolicy`]:
//!
//! - **capabilities** ([`CapSet`]): docker's 14 kept in the bounding, effective and
//!   permitted sets; every other one dropped from the bounding set up to the kernel's
//!   `cap_last_cap`; the inheritable and ambient sets empty (docker's since 20.10.14:
//!   with inheritable ones, a non-root command could gain them from a program's
//!   inheritable file capabilities at exec, CVE-2022-24769);
//! - **no_new_privs**: set-uid binaries and file capabilities grant nothing;
//! - **seccomp** ([`SeccompProfile`]): EPERM for the calls docker's default profile
//!   blocks, or a profile in docker's JSON format;
//! - **devices**: an allow-list (`null`, `zero`, `full`, `random`, `urandom`, `tty`,
//!   `ptmx`, `pts/*`) given to the box's cgroup as [`Resources::devices`](crate::Resources::devices) — the v1
//!   devices controller, or the v2 eBPF device program;
//! - **masked and read-only paths** in `/proc` and `/sys`, in the box's own mount
//!   namespace: `/dev/null` bound over files, an empty read-only tmpfs over directories
//!   (one, bound over each), read-only bind mounts; without a rootfs, the caller's
//!   `/sys` made read-only with the cgroup hierarchies beneath it (with one, the spawn
//!   mounts `/sys` read-only itself). A box that would stay in the
//!   caller's mount namespace, where none of this can be done for it alone, is refused;
//!   one that joins another's mount namespace finds them there;
//! - **the host's files read-only**: a box without a rootfs sees the caller's mounts;
//!   its mount namespace's copies of them are made read-only, recursively, before
//!   anything is mounted for it, and it gets a `/run` of its own, without the host's
//!   daemons' sockets (see [`SecurityPolicy::read_only_host`]);
//! - **rlimits** ([`Rlimit`]).
//!
//! [`SecurityPolicy::privileged`] opts out of all but the rlimits, visibly (it serializes
//! as `"privileged": true`).
//!
//! # Where it happens
//!
//! [`crate::spawn::Command::security`] takes a policy. Everything the child needs is
//! prepared before the clone (the capability masks, `cap_last_cap`, the compiled BPF
//! programs, the mount steps); the child only makes system calls (`security::sys`). In the
//! process that execs, in this order:
//!
//! 1. the masked and read-only paths, after the box's other mounts and before
//!    `pivot_root` (so the host's `/dev/null` is the source);
//! 2. the rlimits (while CAP_SYS_RESOURCE is still held, so hard limits may be raised);
//! 3. the bounding set is reduced (needs CAP_SETPCAP, held until then), and when the
//!    command runs as another uid, `PR_SET_KEEPCAPS` keeps the permitted set across…
//! 4. …`setgroups`/`setresgid`/`setresuid` (the spawn's own steps);
//! 5. `capset` sets effective and permitted and empties inheritable, and with it the
//!    ambient set (a non-root command then loses them at exec, as under docker:
//!    capabilities(7), "Transformation of capabilities during execve()");
//! 6. `PR_SET_NO_NEW_PRIVS`;
//! 7. the seccomp filters, last, right before `execve` — or, when no_new_privs is off,
//!    first (before step 2): without no_new_privs the kernel demands CAP_SYS_ADMIN to
//!    install a filter, which step 5 may have dropped, as runc does.
//!
//! With a new pid namespace the init (pid 1 inside, isol's own code that only waits and
//! forwards signals) forks the command and the command's process is hardened; the init
//! keeps its capabilities but the command cannot ptrace or signal-kill it.
//!
//! Devices are enforced only through a cgroup the spawn creates
//! ([`crate::spawn::CgroupSpec::Create`] or `Auto`, whose resources get the allow-list
//! unless they name device rules of their own); a spawn without a cgroup, or into an
//! existing one, leaves device access alone.

pub mod caps;
pub mod rlimit;
pub mod seccomp;
pub(crate) mod sys;
mod syscalls;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::resources::{device_numbers, DeviceRule, DeviceType};
use crate::{Error, Result};

pub use caps::{CapSet, Capability};
pub use rlimit::Rlimit;
pub use seccomp::{DockerProfile, SeccompProfile};

/// The files and directories docker masks (`/dev/null` over files, an empty read-only
/// tmpfs over directories); those absent on this kernel are skipped.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// What docker makes read-only.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Docker's device allow-list: `c 1:3` null, `1:5` zero, `1:7` full, `1:8` random,
/// `1:9` urandom, `5:0` tty, `5:2` ptmx, `136:*` pts, each `rwm`, after denying all.
pub fn default_devices() -> Vec<DeviceRule> {
    let c = |major: u32, minor: Option<u32>| DeviceRule {
        allow: true,
        kind: DeviceType::Char,
        major: Some(major),
        minor,
        access: "rwm".into(),
    };
    vec![
        c(1, Some(3)),
        c(1, Some(5)),
        c(1, Some(7)),
        c(1, Some(8)),
        c(1, Some(9)),
        c(5, Some(0)),
        c(5, Some(2)),
        c(136, None),
    ]
}

/// How a box is hardened. `Default` is docker's default; serialized it is what
/// `isol inspect` shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityPolicy {
    /// Everything below is off (all capabilities, no filter, all devices, nothing
    /// masked, the host's files writable); rlimits still apply.
    pub privileged: bool,
    /// The bounding, effective and permitted sets. Outside a user namespace
    /// of its own a box cannot have one its creator lacks: the spawn refuses such a set
    /// (a privileged one is cut down to what the creator holds).
    pub capabilities: CapSet,
    /// `PR_SET_NO_NEW_PRIVS`.
    pub no_new_privs: bool,
    /// The seccomp filter.
    pub seccomp: SeccompProfile,
    /// Device access, after denying all (empty: left alone).
    pub devices: Vec<DeviceRule>,
    /// Masked in `/proc` and `/sys`.
    pub masked_paths: Vec<PathBuf>,
    /// Read-only in `/proc`.
    pub readonly_paths: Vec<PathBuf>,
    /// Without a rootfs, the box's root is the caller's: root inside would write the
    /// host's files (`/etc/ld.so.preload`, a set-uid program in `/dev/shm`, isol's own
    /// records). So its copies of the caller's mounts are read-only, all of them, before
    /// its own are made: a fresh `/proc`, `tmpfs` mounts, and binds (which stay writable
    /// where the host's source is). And `/run` is a tmpfs of its own: the host's holds
    /// its daemons' sockets, which a read-only mount does not close. Ignored with a
    /// rootfs, whose tree is the caller's choice.
    pub read_only_host: bool,
    /// Resource limits.
    pub rlimits: Vec<Rlimit>,
}

impl Default for SecurityPolicy {
    fn default() -> Self {
        SecurityPolicy {
            privileged: false,
            capabilities: CapSet::docker_default(),
            no_new_privs: true,
            seccomp: SeccompProfile::Default,
            devices: default_devices(),
            masked_paths: MASKED_PATHS.iter().map(PathBuf::from).collect(),
            readonly_paths: READONLY_PATHS.iter().map(PathBuf::from).collect(),
            read_only_host: true,
            rlimits: Vec::new(),
        }
    }
}

impl SecurityPolicy {
    /// `--privileged`: every capability the caller holds, no no_new_privs, no seccomp, no
    /// device rules, no masked or read-only paths, the host's files writable.
    pub fn privileged() -> SecurityPolicy {
        SecurityPolicy {
            privileged: true,
            capabilities: CapSet::all(),
            no_new_privs: false,
            seccomp: SeccompProfile::Unconfined,
            devices: Vec::new(),
            masked_paths: Vec::new(),
            readonly_paths: Vec::new(),
            read_only_host: false,
            rlimits: Vec::new(),
        }
    }

    /// `--cap-add NAME` (`all`: every capability this process holds, which is all a box
    /// started from it can have; see [`CapSet::held`]).
    pub fn cap_add(&mut self, name: &str) -> Result<&mut Self> {
        if name.eq_ignore_ascii_case("all") {
            self.capabilities = CapSet::held()?;
        } else {
            self.capabilities.insert(name.parse()?);
        }
        Ok(self)
    }

    /// `--cap-drop NAME` (`all` drops every capability).
    pub fn cap_drop(&mut self, name: &str) -> Result<&mut Self> {
        if name.eq_ignore_ascii_case("all") {
            self.capabilities = CapSet::EMPTY;
        } else {
            self.capabilities.remove(name.parse()?);
        }
        Ok(self)
    }

    /// `--allow-new-privs`: no `PR_SET_NO_NEW_PRIVS`.
    pub fn allow_new_privs(&mut self) -> &mut Self {
        self.no_new_privs = false;
        self
    }

    /// `--seccomp default|unconfined|PATH`.
    pub fn seccomp(&mut self, profile: SeccompProfile) -> &mut Self {
        self.seccomp = profile;
        self
    }

    /// `--device /dev/X[:PERMS]`: allows the device node's type and numbers (`rwm` unless
    /// PERMS is given, e.g. `/dev/fuse:rw`).
    pub fn device(&mut self, spec: &str) -> Result<&mut Self> {
        let (path, access) = device_spec(spec);
        if let Some((node, bad)) = spec.rsplit_once(':').filter(|_| path == spec) {
            if !Path::new(spec).exists() {
                return Err(Error::invalid(
                    "device",
                    spec,
                    format!(
                        "{spec:?}: after {node}: come the access letters r, w and m, not {bad:?}"
                    ),
                ));
            }
        }
        self.devices.push(device_rule(Path::new(path), access)?);
        Ok(self)
    }

    /// `--ulimit NAME=SOFT[:HARD]` (a later limit of the same name replaces it).
    pub fn rlimit(&mut self, limit: Rlimit) -> &mut Self {
        self.rlimits.retain(|r| r.name != limit.name);
        self.rlimits.push(limit);
        self
    }

    /// Refuses rules and limits that cannot work.
    pub fn validate(&self) -> Result<()> {
        for r in &self.rlimits {
            r.validate()?;
        }
        for d in &self.devices {
            if d.access.is_empty() || !d.access.chars().all(|c| "rwm".contains(c)) {
                return Err(Error::invalid(
                    "devices",
                    d.to_string(),
                    "access is r, w, m",
                ));
            }
        }
        for p in self.masked_paths.iter().chain(&self.readonly_paths) {
            if !p.is_absolute() {
                return Err(Error::invalid(
                    "masked or read-only path",
                    p.display().to_string(),
                    "give an absolute path",
                ));
            }
        }
        Ok(())
    }
}

/// `/dev/X[:PERMS]` → the node's path and its access (`rwm` unless given).
pub fn device_spec(spec: &str) -> (&str, &str) {
    match spec.rsplit_once(':') {
        Some((p, a)) if !a.is_empty() && a.chars().all(|c| "rwm".contains(c)) => (p, a),
        _ => (spec, "rwm"),
    }
}

fn device_rule(path: &Path, access: &str) -> Result<DeviceRule> {
    use std::os::unix::fs::FileTypeExt;
    let bad = |why: String| Error::invalid("device", path.display().to_string(), why);
    let (major, minor) = device_numbers(path).map_err(bad)?;
    let ft = std::fs::metadata(path)
        .map_err(|e| bad(e.to_string()))?
        .file_type();
    Ok(DeviceRule {
        allow: true,
        kind: if ft.is_block_device() {
            DeviceType::Block
        } else {
            DeviceType::Char
        },
        major: Some(major),
        minor: Some(minor),
        access: access.into(),
    })
}

/// What the child does for a policy, computed before the clone.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Steps before the id changes: rlimits, the early seccomp, the bounding set, keepcaps.
    pub before_ids: Vec<sys::ChildOp>,
    /// Steps after: capset (which empties the ambient set), no_new_privs, seccomp.
    pub after_ids: Vec<sys::ChildOp>,
    /// The masking and read-only mounts, in order, before pivot_root.
    pub mounts: Vec<MountStep>,
}

/// A mount that masks or protects a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MountStep {
    /// `/dev/null` over a file, an empty read-only tmpfs over a directory (`dir`: the
    /// kind expected); nothing where the path is absent.
    Mask { path: PathBuf, dir: bool },
    /// Bind onto itself, read-only (with what is beneath); nothing where absent.
    ReadOnly(PathBuf),
    /// A mount already (the caller's `/sys`, in a box without a rootfs): read-only, with
    /// what is mounted beneath (the cgroup hierarchies).
    ReadOnlyMount(PathBuf),
}

/// Records the masking and read-only mounts into the command's steps, before its
/// `pivot_root`: the masks as one step (they share one tmpfs), each read-only path as
/// its own.
pub(crate) fn record_mounts(
    mounts: &[MountStep],
    prog: &mut crate::spawn::program::Program,
) -> Result<()> {
    use crate::namespace::cpath;
    use crate::spawn::program::Op;
    use sys::{ChildOp, MaskedPath};
    let mut paths = Vec::new();
    let mut names = Vec::new();
    for m in mounts {
        if let MountStep::Mask { path, dir } = m {
            paths.push(MaskedPath {
                dst: cpath(path)?,
                dir: *dir,
            });
            names.push(path.display().to_string());
        }
    }
    if !paths.is_empty() {
        prog.command_before_pivot(
            "mask with /dev/null or an empty tmpfs",
            names.join(", "),
            Op::Security(ChildOp::MaskPaths { paths }),
        );
    }
    for m in mounts {
        let (p, bind) = match m {
            MountStep::ReadOnly(p) => (p, true),
            MountStep::ReadOnlyMount(p) => (p, false),
            MountStep::Mask { .. } => continue,
        };
        let what = if bind {
            "bind read-only"
        } else {
            "make read-only"
        };
        let op = ChildOp::ReadOnly {
            dst: cpath(p)?,
            bind,
        };
        prog.command_before_pivot(what, p, Op::Security(op));
    }
    Ok(())
}

/// Docker's masked and read-only paths that only the kernel's build creates, never a
/// module loaded later (`CONFIG_PROC_KCORE`, `CONFIG_LATENCYTOP`, `CONFIG_SCHED_DEBUG`
/// before 5.13, `CONFIG_MAGIC_SYSRQ`, … all `bool`; timer_stats went in 4.11): absent
/// once, absent for good. Not so `/proc/asound`, `/proc/scsi` and
/// `/sys/devices/virtual/powercap`, which modules bring.
const BUILT_IN: &[&str] = &[
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Whether `path` exists on the host, and is a directory: `None` when absent.
///
/// What was found is remembered for the life of the process (the kernel's /proc and
/// /sys entries stay; one that goes with its module, the child skips), and so is the
/// absence of a [`BUILT_IN`] path; other absent paths are looked for again at each
/// spawn, as a module loaded since may have brought them. Looking here rather than
/// trying in the child: a box's /proc is new, and there a lookup that finds nothing
/// costs twice what it does in the host's.
fn host_kind(path: &Path) -> Option<bool> {
    type Known = std::sync::Mutex<Vec<(PathBuf, Option<bool>)>>;
    static KNOWN: std::sync::OnceLock<Known> = std::sync::OnceLock::new();
    let known = KNOWN.get_or_init(Default::default);
    if let Some(kind) = known
        .lock()
        .ok()
        .and_then(|k| k.iter().find(|(p, _)| p == path).map(|(_, d)| *d))
    {
        return kind;
    }
    let kind = std::fs::metadata(path).ok().map(|md| md.is_dir());
    if kind.is_some() || BUILT_IN.iter().any(|b| path == Path::new(b)) {
        if let Ok(mut k) = known.lock() {
            k.push((path.to_path_buf(), kind));
        }
    }
    kind
}

/// The kernel refuses more open files than `fs.nr_open` (unlimited among them) with a
/// bare EPERM: said here, with the ceiling.
fn check_nr_open(r: &Rlimit, most: u64) -> Result<()> {
    let path = Path::new("/proc/sys/fs/nr_open");
    let Ok(ceiling) = crate::parse::read_text(path).map(|t| t.trim().parse::<u64>()) else {
        return Ok(());
    };
    match ceiling {
        Ok(n) if most > n => Err(Error::invalid(
            "ulimit",
            r.to_string(),
            format!("{r}: the kernel allows at most {n} open files (fs.nr_open; unlimited is more); give at most {n}"),
        )),
        _ => Ok(()),
    }
}

/// Whether `path` is where a filesystem is mounted, told by its device differing from
/// its parent's (a bind of the same filesystem would not show, but holds nothing of the
/// kernel's either).
fn is_mount(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    let parent = path.parent().unwrap_or(Path::new("/"));
    matches!((dev(path), dev(parent)), (Some(a), Some(b)) if a != b)
}

/// What the spawn knows that the policy's steps depend on.
pub(crate) struct Where<'a> {
    /// The command changes uid (to keep capabilities across it).
    pub changes_uid: bool,
    /// The box has a new mount namespace, private to it: the masks and read-only binds
    /// go there (over a fresh `/proc`, or the caller's when the pid namespace is
    /// inherited).
    pub own_mnt: bool,
    /// The box stays in the caller's mount namespace, where nothing can be masked for it
    /// alone.
    pub callers_mnt: bool,
    /// The box gets a user namespace of its own, where it holds every capability.
    pub new_user_ns: bool,
    /// The rootfs, when there is one (paths are laid beneath it before pivot_root).
    pub rootfs: Option<&'a Path>,
    /// With a rootfs: whether `/sys` is the kernel's (fresh or bound), so host paths
    /// under it tell what exists.
    pub sys_is_kernels: bool,
}

impl SecurityPolicy {
    /// Everything the child will do, prepared now (reads `cap_last_cap`, compiles the
    /// seccomp profile, looks for the masked and read-only paths).
    pub(crate) fn plan(&self, w: &Where<'_>) -> Result<Plan> {
        self.validate()?;
        // Root in the caller's mount namespace would write /proc/sys (the host's
        // sysctls), /proc/sysrq-trigger and read the masked files: refuse rather than
        // harden in name only. A user namespace does not help when its root is the host's
        // (`--map-root` run by root): global sysctls check for that uid alone.
        let protects_paths = !self.masked_paths.is_empty()
            || !self.readonly_paths.is_empty()
            || (self.read_only_host && w.rootfs.is_none());
        if w.callers_mnt && protects_paths {
            return Err(Error::invalid(
                "namespaces",
                "mnt",
                "a hardened box needs a mount namespace of its own: in this process's, the host's files, /proc/sys, /proc/sysrq-trigger and the other read-only and masked paths would stay open to it (add mnt to the namespaces, e.g. --ns mnt,net; or run it unhardened with --privileged)",
            ));
        }
        use sys::ChildOp;
        let mut before = Vec::new();
        let mut after = Vec::new();
        for r in &self.rlimits {
            let (soft, hard) = r.raw();
            if r.name == "nofile" {
                check_nr_open(r, soft.max(hard))?;
            }
            before.push(ChildOp::Setrlimit {
                resource: r.resource()?,
                soft,
                hard,
            });
        }
        let filters = self.seccomp.compile(self.capabilities)?;
        let seccomp: Vec<ChildOp> = filters
            .into_iter()
            .map(|program| ChildOp::Seccomp { program })
            .collect();
        if !self.no_new_privs {
            before.extend(seccomp.iter().cloned());
        }
        // A box keeps no capability its creator lacks (outside a user namespace of its
        // own): `capset` would refuse the whole set. Privileged means all it holds.
        let held = CapSet::held()?;
        let mut caps = self.capabilities;
        if self.privileged {
            caps = caps.intersection(held);
        } else if !w.new_user_ns {
            let missing = caps.difference(held);
            if !missing.is_empty() {
                let names: Vec<String> = missing.iter().map(|c| c.to_string()).collect();
                let names = names.join(", ");
                return Err(Error::invalid(
                    "capabilities",
                    names.clone(),
                    format!("{names}: the process starting the box does not hold it, and a box cannot have a capability its creator lacks (except in a user namespace of its own); leave it out"),
                ));
            }
        }
        let keep = caps.bits();
        if !self.privileged || caps != held {
            before.push(ChildOp::DropBounding {
                last_cap: caps::last_cap()?,
                keep,
            });
            if w.changes_uid {
                before.push(ChildOp::KeepCaps);
            }
            after.push(ChildOp::Capset { caps: keep });
        }
        if self.no_new_privs {
            after.push(ChildOp::NoNewPrivs);
            after.extend(seccomp);
        }
        let mut mounts = Vec::new();
        if w.own_mnt {
            let inside = |p: &Path| match w.rootfs {
                Some(r) => r.join(p.strip_prefix("/").unwrap_or(p)),
                None => p.to_path_buf(),
            };
            let knowable = |p: &Path| {
                p.starts_with("/proc")
                    || w.rootfs.is_none()
                    || (p.starts_with("/sys") && w.sys_is_kernels)
            };
            for p in self.masked_paths.iter().filter(|p| knowable(p)) {
                if let Some(dir) = host_kind(p) {
                    mounts.push(MountStep::Mask {
                        path: inside(p),
                        dir,
                    });
                }
            }
            for p in self.readonly_paths.iter().filter(|p| knowable(p)) {
                if host_kind(p).is_some() {
                    mounts.push(MountStep::ReadOnly(inside(p)));
                }
            }
            // Without a rootfs the box has the caller's /sys, writable: its own cgroup's
            // limits, every other cgroup, /sys/power/state. (With one, the spawn mounts
            // /sys read-only itself; with the host read-only, it is already.)
            if w.rootfs.is_none()
                && !self.read_only_host
                && protects_paths
                && is_mount(Path::new("/sys"))
            {
                mounts.push(MountStep::ReadOnlyMount("/sys".into()));
            }
        }
        Ok(Plan {
            before_ids: before,
            after_ids: after,
            mounts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_dockers() {
        let p = SecurityPolicy::default();
        assert!(!p.privileged && p.no_new_privs);
        assert_eq!(p.capabilities, CapSet::docker_default());
        assert_eq!(p.seccomp, SeccompProfile::Default);
        let lines: Vec<String> = p.devices.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            lines,
            [
                "c 1:3 rwm",
                "c 1:5 rwm",
                "c 1:7 rwm",
                "c 1:8 rwm",
                "c 1:9 rwm",
                "c 5:0 rwm",
                "c 5:2 rwm",
                "c 136:* rwm"
            ]
        );
        p.validate().unwrap();
    }

    #[test]
    fn cap_changes() {
        let mut p = SecurityPolicy::default();
        p.cap_add("net_admin")
            .unwrap()
            .cap_drop("CAP_CHOWN")
            .unwrap();
        assert!(p.capabilities.contains(Capability::NET_ADMIN));
        assert!(!p.capabilities.contains(Capability::CHOWN));
        p.cap_drop("ALL").unwrap();
        assert!(p.capabilities.is_empty());
        p.cap_add("all").unwrap();
        assert_eq!(p.capabilities, CapSet::held().unwrap());
        assert!(p.cap_add("CAP_FLY").is_err());
    }

    #[test]
    fn devices_from_nodes() {
        let mut p = SecurityPolicy::default();
        p.device("/dev/null:rw").unwrap();
        assert_eq!(p.devices.last().unwrap().to_string(), "c 1:3 rw");
        p.device("/dev/zero").unwrap();
        assert_eq!(p.devices.last().unwrap().to_string(), "c 1:5 rwm");
        let e = p.device("/etc/passwd").unwrap_err().to_string();
        assert!(e.contains("not a device node"), "{e}");
        assert!(p.device("/dev/isol-none").is_err());
    }

    #[test]
    fn rlimits_replace_by_name() {
        let mut p = SecurityPolicy::default();
        p.rlimit(Rlimit::parse("nofile=10").unwrap());
        p.rlimit(Rlimit::parse("nofile=20:30").unwrap());
        assert_eq!(p.rlimits.len(), 1);
        assert_eq!(p.rlimits[0].soft, Some(20));
    }

    #[test]
    fn serializes_for_inspect_and_back() {
        let mut p = SecurityPolicy::default();
        p.rlimit(Rlimit::parse("nofile=1024:2048").unwrap());
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["privileged"], false);
        assert_eq!(v["no_new_privs"], true);
        assert_eq!(v["seccomp"], "default");
        assert_eq!(v["capabilities"][0], "CAP_CHOWN");
        assert_eq!(v["rlimits"][0]["name"], "nofile");
        assert_eq!(v["masked_paths"][2], "/proc/kcore");
        let back: SecurityPolicy = serde_json::from_value(v).unwrap();
        assert_eq!(back, p);
        let v = serde_json::to_value(SecurityPolicy::privileged()).unwrap();
        assert_eq!(v["privileged"], true);
        assert_eq!(v["seccomp"], "unconfined");
        assert_eq!(v["capabilities"].as_array().unwrap().len(), 41);
    }

    #[test]
    fn only_docker_paths_are_known_built_in() {
        for b in BUILT_IN {
            assert!(
                MASKED_PATHS.contains(b) || READONLY_PATHS.contains(b),
                "{b}"
            );
        }
        // What modules bring is looked for at every spawn.
        for m in [
            "/proc/asound",
            "/proc/scsi",
            "/sys/devices/virtual/powercap",
        ] {
            assert!(MASKED_PATHS.contains(&m) && !BUILT_IN.contains(&m), "{m}");
        }
    }

    #[test]
    fn plan_orders_the_steps() {
        use sys::ChildOp;
        if !isol_testkit::require_root("plan_orders_the_steps") {
            return;
        }
        let w = Where {
            changes_uid: true,
            new_user_ns: false,
            own_mnt: true,
            callers_mnt: false,
            rootfs: None,
            sys_is_kernels: true,
        };
        let mut p = SecurityPolicy::default();
        p.rlimit(Rlimit::parse("core=0").unwrap());
        let plan = p.plan(&w).unwrap();
        let kinds = |ops: &[ChildOp]| ops.iter().map(ChildOp::name).collect::<Vec<_>>();
        assert_eq!(
            kinds(&plan.before_ids),
            ["setrlimit", "drop bounding set", "keep capabilities"]
        );
        let after = kinds(&plan.after_ids);
        assert_eq!(&after[..2], ["capset", "no_new_privs"]);
        assert!(after[2..].iter().all(|k| *k == "seccomp") && after.len() > 2);
        // Files get /dev/null, directories an empty tmpfs, absent paths nothing (this
        // host's kernel may lack kcore or sysrq-trigger; timer_stats is gone since 4.11).
        for p in MASKED_PATHS.iter().chain(READONLY_PATHS) {
            let md = std::fs::metadata(p);
            let want = match (&md, READONLY_PATHS.contains(p)) {
                (Err(_), _) => None,
                (Ok(_), true) => Some(MountStep::ReadOnly(p.into())),
                (Ok(m), false) => Some(MountStep::Mask {
                    path: p.into(),
                    dir: m.is_dir(),
                }),
            };
            match want {
                Some(w) => assert!(plan.mounts.contains(&w), "{w:?}"),
                None => assert!(
                    !plan.mounts.iter().any(|m| format!("{m:?}").contains(p)),
                    "{p}"
                ),
            }
        }
        assert!(plan.mounts.contains(&MountStep::Mask {
            path: "/proc/keys".into(),
            dir: false
        }));
        assert!(plan
            .mounts
            .contains(&MountStep::ReadOnly("/proc/sys".into())));
        // Without a rootfs the spawn makes all the caller's mounts read-only in the box,
        // /sys among them; with the host's files left writable, /sys alone.
        let sys = MountStep::ReadOnlyMount("/sys".into());
        assert!(!plan.mounts.contains(&sys));
        let writable = SecurityPolicy {
            read_only_host: false,
            ..SecurityPolicy::default()
        };
        assert_eq!(writable.plan(&w).unwrap().mounts.last(), Some(&sys));
        let masks = |m: Vec<MountStep>| m.into_iter().filter(|m| *m != sys).collect::<Vec<_>>();
        assert!(!plan
            .mounts
            .iter()
            .any(|m| format!("{m:?}").contains("timer_stats")));
        // Found paths are remembered, absent ones looked for again.
        let again = p.plan(&w).unwrap();
        assert_eq!(again.mounts, plan.mounts);
        let dir = tempfile::tempdir().unwrap();
        let late = dir.path().join("late");
        let q = SecurityPolicy {
            masked_paths: vec![late.clone()],
            readonly_paths: Vec::new(),
            ..SecurityPolicy::default()
        };
        assert!(masks(q.plan(&w).unwrap().mounts).is_empty());
        std::fs::create_dir(&late).unwrap();
        let found = masks(q.plan(&w).unwrap().mounts);
        assert_eq!(
            found,
            [MountStep::Mask {
                path: late.clone(),
                dir: true
            }]
        );

        // Without no_new_privs seccomp goes first; in a joined mount namespace (another
        // box's) nothing is masked again.
        p.allow_new_privs();
        let plan = p
            .plan(&Where {
                own_mnt: false,
                changes_uid: false,
                ..w
            })
            .unwrap();
        assert_eq!(kinds(&plan.before_ids)[1], "seccomp");
        assert!(!kinds(&plan.after_ids).contains(&"no_new_privs"));
        assert!(plan.mounts.is_empty());

        // In the caller's mount namespace nothing could be masked: refused (with a user
        // namespace too), unless privileged.
        let callers = Where {
            own_mnt: false,
            callers_mnt: true,
            ..w
        };
        for w in [
            &callers,
            &Where {
                new_user_ns: true,
                ..callers
            },
        ] {
            let err = SecurityPolicy::default().plan(w).unwrap_err().to_string();
            assert!(err.contains("mount namespace of its own"), "{err}");
        }
        SecurityPolicy::privileged().plan(&callers).unwrap();

        // Privileged: nothing but rlimits.
        let mut p = SecurityPolicy::privileged();
        p.rlimit(Rlimit::parse("core=0").unwrap());
        let plan = p.plan(&w).unwrap();
        assert_eq!(kinds(&plan.before_ids), ["setrlimit"]);
        assert!(plan.after_ids.is_empty() && plan.mounts.is_empty());

        // With a rootfs the paths are laid beneath it.
        let plan = SecurityPolicy::default()
            .plan(&Where {
                rootfs: Some(Path::new("/srv/root")),
                ..w
            })
            .unwrap();
        assert!(plan.mounts.contains(&MountStep::Mask {
            path: "/srv/root/proc/keys".into(),
            dir: false
        }));
        // The spawn mounts a rootfs's /sys read-only itself.
        assert!(!plan
            .mounts
            .iter()
            .any(|m| matches!(m, MountStep::ReadOnlyMount(_))));
    }

    /// A box gets no capability its creator lacks: run in a thread of its own that gave
    /// up CAP_SYS_RESOURCE (capabilities are per thread), so the test holds everywhere.
    #[test]
    fn capabilities_are_bounded_by_the_callers() {
        use sys::ChildOp;
        if !isol_testkit::require_root("capabilities_are_bounded_by_the_callers") {
            return;
        }
        std::thread::spawn(|| {
            let gone = Capability::SYS_RESOURCE;
            let mut mine = CapSet::held().unwrap();
            mine.remove(gone);
            sys::capset(mine.bits()).unwrap();
            assert_eq!(CapSet::held().unwrap(), mine);
            let w = Where {
                changes_uid: false,
                new_user_ns: false,
                own_mnt: false,
                callers_mnt: false,
                rootfs: None,
                sys_is_kernels: true,
            };
            let capset = |p: &SecurityPolicy, w: &Where<'_>| {
                p.plan(w).unwrap().after_ids.iter().find_map(|op| match op {
                    ChildOp::Capset { caps } => Some(*caps),
                    _ => None,
                })
            };
            // Asked for by name: refused before anything exists, naming it.
            let mut p = SecurityPolicy::default();
            p.cap_add("SYS_RESOURCE").unwrap();
            let err = p.plan(&w).unwrap_err().to_string();
            assert!(err.contains("CAP_SYS_RESOURCE"), "{err}");
            // In a user namespace of its own the box holds it.
            let inside = Where {
                new_user_ns: true,
                ..w
            };
            assert!(CapSet::from_bits(capset(&p, &inside).unwrap()).contains(gone));
            // `all` is all the caller holds.
            let mut p = SecurityPolicy::default();
            p.cap_add("all").unwrap();
            assert_eq!(p.capabilities, mine);
            assert_eq!(capset(&p, &w), Some(mine.bits()));
            // Privileged keeps what the caller holds: no capability steps, unless some
            // are dropped, and then only held ones are kept.
            let p = SecurityPolicy::privileged();
            assert_eq!(capset(&p, &w), None);
            let mut p = SecurityPolicy::privileged();
            p.cap_drop("NET_RAW").unwrap();
            let mut want = mine;
            want.remove(Capability::NET_RAW);
            assert_eq!(capset(&p, &w), Some(want.bits()));
        })
        .join()
        .unwrap();
    }
}
