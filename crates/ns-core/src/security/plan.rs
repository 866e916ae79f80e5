//! What the child does for a [`SecurityPolicy`], worked out before the clone: the steps
//! around the id changes (rlimits, capabilities, no_new_privs, seccomp) and the masking
//! and read-only mounts, in the order the module docs of [`super`] give. Everything that
//! can fail or allocate happens here — reading `cap_last_cap` and the caller's
//! capabilities, compiling the seccomp profile, looking for the paths — so the child
//! only makes the system calls.

use std::path::{Path, PathBuf};

use super::caps::{self, CapSet};
use super::sys::{ChildOp, MaskedPath};
use super::{Rlimit, SecurityPolicy};
use crate::{Error, Result};

/// What the child does for a policy, computed before the clone.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Steps before the id changes: rlimits, the early seccomp, the bounding set, keepcaps.
    pub before_ids: Vec<ChildOp>,
    /// Steps after: capset (which empties the ambient set), no_new_privs, seccomp.
    pub after_ids: Vec<ChildOp>,
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
        let op = ChildOp::MaskPaths { paths };
        prog.command_before_pivot(op.name(), names.join(", "), Op::Security(op));
    }
    for m in mounts {
        let (p, bind) = match m {
            MountStep::ReadOnly(p) => (p, true),
            MountStep::ReadOnlyMount(p) => (p, false),
            MountStep::Mask { .. } => continue,
        };
        let op = ChildOp::ReadOnly {
            dst: cpath(p)?,
            bind,
        };
        prog.command_before_pivot(op.name(), p, Op::Security(op));
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
        let mut before = self.rlimit_steps()?;
        let mut after = Vec::new();
        let filters = self.seccomp.compile(self.capabilities)?;
        let seccomp: Vec<ChildOp> = filters
            .into_iter()
            .map(|program| ChildOp::Seccomp { program })
            .collect();
        if !self.no_new_privs {
            before.extend(seccomp.iter().cloned());
        }
        self.capability_steps(w, &mut before, &mut after)?;
        if self.no_new_privs {
            after.push(ChildOp::NoNewPrivs);
            after.extend(seccomp);
        }
        let mounts = match w.own_mnt {
            true => self.mount_steps(w, protects_paths),
            false => Vec::new(),
        };
        Ok(Plan {
            before_ids: before,
            after_ids: after,
            mounts,
        })
    }

    /// `setrlimit` for each limit, refusing what the kernel would with a bare EPERM.
    fn rlimit_steps(&self) -> Result<Vec<ChildOp>> {
        let mut steps = Vec::new();
        for r in &self.rlimits {
            let (soft, hard) = r.raw();
            if r.name == "nofile" {
                check_nr_open(r, soft.max(hard))?;
            }
            steps.push(ChildOp::Setrlimit {
                resource: r.resource()?,
                soft,
                hard,
            });
        }
        Ok(steps)
    }

    /// The bounding set's drop and keepcaps before the id changes, `capset` after; none
    /// for a privileged box that keeps all its creator holds.
    fn capability_steps(
        &self,
        w: &Where<'_>,
        before: &mut Vec<ChildOp>,
        after: &mut Vec<ChildOp>,
    ) -> Result<()> {
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
        Ok(())
    }

    /// The masks and read-only binds for a box with a mount namespace of its own.
    fn mount_steps(&self, w: &Where<'_>, protects_paths: bool) -> Vec<MountStep> {
        let mut mounts = Vec::new();
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
        mounts
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Capability, MASKED_PATHS, READONLY_PATHS};
    use super::*;
    use crate::spawn::SecurityStep;

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
            [
                SecurityStep::Setrlimit,
                SecurityStep::DropBounding,
                SecurityStep::KeepCaps
            ]
        );
        let after = kinds(&plan.after_ids);
        assert_eq!(
            &after[..2],
            [SecurityStep::Capset, SecurityStep::NoNewPrivs]
        );
        assert!(after[2..].iter().all(|k| *k == SecurityStep::Seccomp) && after.len() > 2);
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
        assert_eq!(kinds(&plan.before_ids)[1], SecurityStep::Seccomp);
        assert!(!kinds(&plan.after_ids).contains(&SecurityStep::NoNewPrivs));
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
        assert_eq!(kinds(&plan.before_ids), [SecurityStep::Setrlimit]);
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
        if !isol_testkit::require_root("capabilities_are_bounded_by_the_callers") {
            return;
        }
        std::thread::spawn(|| {
            let gone = Capability::SYS_RESOURCE;
            let mut mine = CapSet::held().unwrap();
            mine.remove(gone);
            super::super::sys::capset(mine.bits()).unwrap();
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
