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
//! - **seccomp** ([`SeccompProfile`]): docker's default profile as an allow-list (EPERM
//!   for a known call it does not allow, ENOSYS for a number newer than the table), or a
//!   profile in docker's JSON format;
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
//! programs, the mount steps: `security::plan`); the child only makes system calls
//! (`security::sys`). In the process that execs, in this order:
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
//! forwards signals) forks the command and the command's process is hardened; once the
//! command has exec'd the init makes itself non-dumpable (the command cannot ptrace it
//! or open its /proc files), moves to `/`, sets no_new_privs and keeps only CAP_KILL of
//! its capabilities (to forward signals to a command of another user).
//!
//! Devices are enforced only through a cgroup the spawn creates
//! ([`crate::spawn::CgroupSpec::Create`], whose resources get the allow-list unless they
//! name device rules of their own); a spawn without a cgroup, or into an existing one,
//! leaves device access alone.

pub mod caps;
mod plan;
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

pub(crate) use plan::{record_mounts, Where};
// Where they were before plan.rs, for the spawn's code to name.
#[allow(unused_imports)]
pub(crate) use plan::{MountStep, Plan};

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
}
