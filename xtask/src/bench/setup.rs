//! What the benchmark needs before it measures: the tools it compares against
//! (installed with apt when missing), a busybox rootfs, OCI bundles for crun and runc,
//! and the cgroup directories of the floor and the OCI runtimes — beneath our own cgroup
//! in every hierarchy, and removed again afterwards.
//!
//! The OCI runtimes' v1 drivers take an absolute `cgroupsPath` as the same path in every
//! hierarchy (a relative one is relative to runc's own cgroup but to the hierarchy's
//! root for crun). So the base path is our deepest own cgroup plus `isol-bench-PID`,
//! usable only when every other hierarchy's own cgroup is an ancestor of it — on the
//! development host the own memory cgroup is `/process_api/ID` and every other one is
//! `/`, so the base is `/process_api/ID/isol-bench-PID`. Directories that did not exist
//! before the run (the runtimes create missing ancestors in the other hierarchies) are
//! recorded and removed with `rmdir`, deepest first; nothing else is ever touched.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use isol_ns_core::host::Hierarchy;
use isol_ns_core::{CgroupMode, HostInfo};
use serde_json::json;

use crate::exec;

/// The font the chart's labels are drawn with (Debian's fonts-dejavu-core).
pub const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// The one environment variable every contender and its `/bin/true` get: what the OCI
/// bundles' `process.env` gives crun's and runc's `/bin/true`, and what a shell would
/// give any of them. Nothing else of xtask's environment is passed on: `cargo xtask`
/// runs xtask with cargo's `LD_LIBRARY_PATH` (the target directory's ~2000 build
/// files, the toolchain's libraries), which made each dynamically linked program look
/// for every library there first (+0.15 ms for `/bin/true`, +0.25–0.3 ms for unshare
/// or bwrap with theirs), while the static isol and the floors paid none of it.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The Debian packages the benchmark uses.
const PACKAGES: &[&str] = &[
    "util-linux",
    "bubblewrap",
    "crun",
    "runc",
    "busybox-static",
    "fonts-dejavu-core",
];

/// Installs the tools with apt-get when one of them is missing.
pub fn install() -> Result<()> {
    let missing = ["unshare", "bwrap", "crun", "runc", "busybox"]
        .iter()
        .any(|p| !exec::on_path(p))
        || !Path::new(FONT).exists();
    if !missing {
        return Ok(());
    }
    let install = || {
        let mut cmd = Command::new("apt-get");
        cmd.args(["install", "-y", "-q", "--no-install-recommends"])
            .args(PACKAGES)
            .env("DEBIAN_FRONTEND", "noninteractive");
        exec::exec(&mut cmd)
    };
    if install().is_err() {
        exec::exec(Command::new("apt-get").args(["update", "-q"]))?;
        install()?;
    }
    Ok(())
}

/// The first line a tool prints for `--version`, for the report.
pub fn version(program: &str) -> String {
    let out = Command::new(program).arg("--version").output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_owned(),
        Err(_) => "not installed".to_owned(),
    }
}

/// A rootfs of busybox with `true` and `sh`, made afresh under `dir`.
pub fn rootfs(dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    for sub in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
        fs::create_dir_all(dir.join(sub))
            .with_context(|| format!("create {}", dir.join(sub).display()))?;
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .context("busybox is not installed (apt-get install busybox-static)")?;
    fs::copy(busybox, dir.join("bin/busybox")).context("copy busybox")?;
    for applet in ["true", "sh"] {
        symlink("busybox", dir.join("bin").join(applet)).context("link applet")?;
    }
    Ok(())
}

/// An OCI bundle (`config.json`) running `/bin/true` in `rootfs` with new pid, mount,
/// network, ipc, uts and cgroup namespaces, memory limit 64M and pids limit 64, in
/// `cgroups_path`. Otherwise `runc spec`'s defaults.
pub fn bundle(dir: &Path, rootfs: &Path, cgroups_path: &str) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let config = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["/bin/true"],
            "env": [format!("PATH={PATH}")],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": rootfs, "readonly": true },
        "hostname": "bench",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] }
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": {
                "devices": [{ "allow": false, "access": "rwm" }],
                "memory": { "limit": 64u64 << 20 },
                "pids": { "limit": 64 }
            },
            "namespaces": [
                { "type": "pid" }, { "type": "mount" }, { "type": "network" },
                { "type": "ipc" }, { "type": "uts" }, { "type": "cgroup" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    });
    let path = dir.join("config.json");
    fs::write(&path, serde_json::to_vec_pretty(&config)?)
        .with_context(|| format!("write {}", path.display()))
}

/// The benchmark's cgroup directories and how to remove them.
#[derive(Debug)]
pub struct Cgroups {
    /// The hierarchies, as probed at the start.
    pub host: HostInfo,
    /// The base path (`/process_api/ID/isol-bench-PID`), the same in every hierarchy;
    /// `Err` says why there is none on this host.
    pub base: Result<String, String>,
    /// Every directory that did not exist before the run and may have been created by
    /// it, ancestors first.
    fresh: Vec<PathBuf>,
}

impl Cgroups {
    /// Probes the host and records which directories on the way to the base exist.
    pub fn probe() -> Result<Cgroups> {
        let host = HostInfo::probe().context("probe the host's cgroups")?;
        let base = base_path(&host);
        let mut fresh = Vec::new();
        if let Ok(base) = &base {
            for h in &host.hierarchies {
                let mut path = String::new();
                for part in base.trim_start_matches('/').split('/') {
                    path.push('/');
                    path.push_str(part);
                    if let Some(dir) = h.dir_of(&path) {
                        if !dir.exists() {
                            fresh.push(dir);
                        }
                    }
                }
            }
        }
        Ok(Cgroups { host, base, fresh })
    }

    /// The v1 hierarchy of `controller`.
    fn hierarchy(&self, controller: &str) -> Option<&Hierarchy> {
        self.host.v1_hierarchy(controller)
    }

    /// The floor's cgroup directories: memory and pids, below the base, named `leaf`;
    /// `Err` says why the floor cannot run here (a unified host).
    pub fn floor_dirs(&self, leaf: &str) -> Result<Vec<(PathBuf, &'static str)>, String> {
        if self.host.mode == CgroupMode::Unified {
            return Err(
                "the floor's cgroup is written for v1 hierarchies (this host is unified)".into(),
            );
        }
        let base = self.base.as_ref().map_err(Clone::clone)?;
        let mut out = Vec::new();
        for (controller, limit_file) in [("memory", "memory.limit_in_bytes"), ("pids", "pids.max")]
        {
            let h = self
                .hierarchy(controller)
                .ok_or_else(|| format!("no v1 {controller} hierarchy"))?;
            let dir = h
                .dir_of(&format!("{base}/{leaf}"))
                .ok_or_else(|| format!("{base} is outside the {controller} mount"))?;
            out.push((dir, limit_file));
        }
        Ok(out)
    }

    /// Creates the base directory in the memory and pids hierarchies (the floor's
    /// parents; the runtimes create theirs themselves).
    pub fn prepare(&self) -> Result<()> {
        if let Ok(dirs) = self.floor_dirs("x") {
            for (dir, _) in dirs {
                let parent = dir.parent().expect("a leaf has a parent");
                fs::create_dir_all(parent)
                    .with_context(|| format!("create {}", parent.display()))?;
            }
        }
        Ok(())
    }

    /// Removes every directory the run created: what is left below the base, then the
    /// fresh ancestors, deepest first. Returns the directories it could not remove.
    pub fn cleanup(&self) -> Vec<String> {
        let mut failed = Vec::new();
        let mut fresh = self.fresh.clone();
        fresh.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for dir in &fresh {
            if dir.exists() {
                remove_tree(dir, &mut failed);
            }
        }
        failed
    }
}

/// `rmdir` of `dir` and every directory below it, deepest first (cgroup directories
/// hold only kernel files, which `rmdir` ignores).
fn remove_tree(dir: &Path, failed: &mut Vec<String>) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path(), failed);
            }
        }
    }
    if let Err(err) = fs::remove_dir(dir) {
        failed.push(format!("{}: {err}", dir.display()));
    }
}

/// The deepest own cgroup plus `isol-bench-PID`, when every hierarchy's own cgroup is an
/// ancestor of it.
fn base_path(host: &HostInfo) -> Result<String, String> {
    let owns: Vec<&str> = host
        .hierarchies
        .iter()
        .filter_map(|h| h.own_cgroup.as_deref())
        .collect();
    let deepest = owns
        .iter()
        .copied()
        .max_by_key(|p| {
            p.trim_matches('/')
                .split('/')
                .filter(|s| !s.is_empty())
                .count()
        })
        .ok_or("no cgroup hierarchy is mounted")?;
    for own in &owns {
        let ancestor = *own == "/"
            || deepest == *own
            || deepest
                .strip_prefix(own)
                .is_some_and(|rest| rest.starts_with('/'));
        if !ancestor {
            return Err(format!(
                "our own cgroups are not nested ({own} and {deepest}), so no absolute \
                 cgroupsPath lies beneath all of them"
            ));
        }
    }
    Ok(format!(
        "{}/isol-bench-{}",
        deepest.trim_end_matches('/'),
        std::process::id()
    ))
}

/// Fails unless we are root.
pub fn require_root() -> Result<()> {
    if !crate::sys::is_root() {
        bail!("cargo xtask bench needs root (namespaces, cgroups, crun, runc)");
    }
    Ok(())
}
