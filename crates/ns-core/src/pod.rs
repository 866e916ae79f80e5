//! Pods: several boxes that share some namespaces (by default net, ipc and uts; pid if
//! asked) while each member keeps its own cgroup and the namespaces not shared.
//!
//! A [`Pod`] is made of:
//! - a **pod cgroup** `isol-pod-<name>` beneath the parent, carrying the pod's
//!   [`Resources`]: it bounds the sum of its members (a memory limit there is hit by the
//!   members together). Each member gets its own child cgroup `<member>` with its own
//!   limits; members never share a cgroup. The layout is the same on v1 and v2.
//! - the **shared namespaces**, kept alive as bind-mounted namespace files under the
//!   record's entry directory (`<state>/pods/<name>.d/<kind>`). For net, ipc, uts (and
//!   cgroup, user, time) a short-lived holder process makes them: it is spawned into
//!   new namespaces of the shared kinds, its `/proc/PID/ns/*` files are bind-mounted, and
//!   it is killed. Only a **shared pid namespace** needs a long-lived holder: a pid
//!   namespace dies with its init, so the holder is pid 1 for every member and reaps for
//!   them. It runs in its own child cgroup `holder` beneath the pod cgroup, so the pod
//!   cgroup itself never holds a process (cgroup v2's no-internal-processes rule; see
//!   the kernel's cgroup-v2 documentation, "No Internal Process Constraint"), and it is
//!   bounded by the pod's limits like the members.
//! - a **record** (`<state>/pods/<name>.json`), written under the state lock: name, shared
//!   kinds, namespace files, holder, cgroup location, backend, resources and members.
//!
//! Adding a member spawns the command joining the pod's namespace files and creating new
//! namespaces for the container kinds the pod does not share (mnt, cgroup, and pid unless
//! shared; also net, ipc and uts where the pod does not share them). A member never makes
//! a network namespace of a kind the pod shares, which is what makes adding a member
//! cheaper than spawning a fresh box.
//!
//! Creating is all-or-nothing: a failure midway kills the holder, releases the namespace
//! files, destroys the cgroups and removes the record. [`Pod::remove`] leaves nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::namespace::{MntNs, Persisted};
use crate::security::{CapSet, SecurityPolicy};
use crate::spawn::{CgroupSpec, Child, Command, Stdio};
use crate::state::{check_name, Record, RecordKind, StateDir};
use crate::{
    registry, Backend, Cgroup, CgroupLocation, Error, HostInfo, NamespaceKind, NamespaceSet,
    NsHandle, Parent, Resources, Result, Stats,
};

/// Where pods are stored in the state directory.
const KIND: RecordKind = RecordKind::Pod;

/// The name of the holder's cgroup beneath the pod cgroup (not usable as a member name).
pub const HOLDER_CGROUP: &str = "holder";

/// The kinds a pod shares unless told otherwise: net, ipc and uts.
pub fn default_share() -> NamespaceSet {
    NamespaceSet::from_iter([NamespaceKind::Net, NamespaceKind::Ipc, NamespaceKind::Uts])
}

/// A persisted namespace file of the pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsFile {
    /// The kind.
    pub kind: NamespaceKind,
    /// Where it is bind-mounted.
    pub path: PathBuf,
    /// The namespace's inode (as `ls -l /proc/PID/ns` shows it).
    pub inode: u64,
}

/// A process identified robustly: its host pid and its start time (field 22 of
/// `/proc/PID/stat`, clock ticks since boot), so a reused pid is not mistaken for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    /// The host pid.
    pub pid: u32,
    /// Its start time in clock ticks after boot.
    pub start_time: u64,
}

impl ProcessId {
    /// Reads the start time of `pid` now.
    pub fn of(pid: u32) -> Result<ProcessId> {
        let (_, start_time) = proc_stat(pid)?;
        Ok(ProcessId { pid, start_time })
    }

    /// Whether this very process still runs (exists, same start time, not a zombie).
    pub fn alive(&self) -> bool {
        matches!(proc_stat(self.pid), Ok((state, start)) if start == self.start_time && state != 'Z' && state != 'X')
    }

    /// The calling process (read once per process: a forked child reads its own).
    pub fn me() -> ProcessId {
        static ME: std::sync::OnceLock<ProcessId> = std::sync::OnceLock::new();
        let pid = std::process::id();
        if let Some(me) = ME.get().filter(|me| me.pid == pid) {
            return *me;
        }
        let me = ProcessId::of(pid).expect("/proc/self/stat is readable");
        let _ = ME.set(me);
        me
    }
}

/// The long-lived holder of a shared pid namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderRecord {
    /// The holder (pid 1 of the pod's pid namespace, seen from the host).
    pub process: ProcessId,
    /// Its cgroup, `holder` beneath the pod cgroup.
    pub cgroup: CgroupLocation,
}

/// One member as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberRecord {
    /// The host pid isol cloned for it (the member's init, or the relay into a shared pid
    /// namespace) with its start time.
    pub process: ProcessId,
    /// Its own cgroup beneath the pod cgroup.
    pub cgroup: CgroupLocation,
    /// Its limits.
    pub resources: Resources,
    /// The kinds created anew for it.
    pub new_namespaces: NamespaceSet,
    /// When it was added, in seconds since the Unix epoch.
    pub added: u64,
}

/// What the state directory knows about a pod.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodRecord {
    /// The pod's name.
    pub name: String,
    /// The kinds its members share.
    pub shared: NamespaceSet,
    /// The bind-mounted namespace files, one per shared kind.
    pub ns_files: Vec<NsFile>,
    /// The holder of the shared pid namespace, if pid is shared.
    pub holder: Option<HolderRecord>,
    /// The pod cgroup.
    pub cgroup: CgroupLocation,
    /// The backend that made it (`cgroup-v1`, `cgroup-v2`).
    pub backend: String,
    /// The pod's limits (the pod cgroup's).
    pub resources: Resources,
    /// The members by name.
    pub members: BTreeMap<String, MemberRecord>,
    /// When it was created, in seconds since the Unix epoch.
    pub created: u64,
}

impl PodRecord {
    /// The namespace file of `kind`, when the pod shares it.
    pub fn ns_file(&self, kind: NamespaceKind) -> Option<&NsFile> {
        self.ns_files.iter().find(|f| f.kind == kind)
    }

    /// Whether the pod can take members: [`PodState::HolderGone`] when it shares pid and
    /// its holder no longer runs (reads the holder's `/proc/PID/stat`).
    pub fn state(&self) -> PodState {
        match &self.holder {
            Some(h) if !h.process.alive() => PodState::HolderGone,
            _ => PodState::Ok,
        }
    }

    /// The refusal of a new member for a pod whose pid holder is gone, with the way out.
    fn holder_gone(&self, member: &str) -> Error {
        let name = &self.name;
        let pid = self.holder.as_ref().map_or(0, |h| h.process.pid);
        Error::Refused {
            what: format!("add member {member} to pod {name}"),
            reason: format!(
                "the pod's pid namespace ended with its holder (pid {pid}), which is gone; remove the pod (isol pod rm -f {name}) and create it again"
            ),
        }
    }
}

impl Record for PodRecord {
    const KIND: RecordKind = KIND;

    fn name(&self) -> &str {
        &self.name
    }
}

/// Whether a pod can take members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PodState {
    /// It can: it shares no pid namespace, or the holder of it runs.
    Ok,
    /// It shares pid and its holder is gone: the kernel ended the pod's pid namespace
    /// with its init, so no process can enter it any more (a fork there fails with
    /// `ENOMEM`). Only removing the pod is left.
    HolderGone,
}

impl std::fmt::Display for PodState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PodState::Ok => "ok",
            PodState::HolderGone => "holder gone",
        })
    }
}

/// Whether a member still runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    /// Its process is alive.
    Running,
    /// Its process is gone (or a zombie).
    Exited,
}

/// A member as [`Pod::members`] reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// Its name.
    pub name: String,
    /// Its host pid.
    pub pid: u32,
    /// Its cgroup.
    pub cgroup: CgroupLocation,
    /// Running or exited.
    pub state: MemberState,
}

/// The pod's usage: the pod cgroup (all members and the holder together) and each member.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PodStats {
    /// The pod cgroup's stats: the sum of everything in the pod.
    pub total: Stats,
    /// Each member's own cgroup's stats.
    pub members: BTreeMap<String, Stats>,
}

/// A pod: shared namespaces, a parent cgroup bounding all members, one cgroup per member.
#[derive(Debug)]
pub struct Pod {
    state: StateDir,
    record: PodRecord,
    backend: Arc<dyn Backend>,
    cgroup: Box<dyn Cgroup>,
    /// The holder, when this process spawned it (so it can reap it).
    holder: Option<Child>,
}

impl Pod {
    /// Creates the pod `name` sharing `share` (validated and claimed under the state lock):
    /// the pod cgroup `isol-pod-<name>` beneath `parent` with `resources`, the shared
    /// namespaces persisted under the record's entry directory, a holder where pid is
    /// shared, and the record. On any failure everything made so far is undone.
    pub fn create(
        state: &StateDir,
        name: &str,
        share: NamespaceSet,
        resources: &Resources,
        backend: Arc<dyn Backend>,
        parent: &Parent,
    ) -> Result<Pod> {
        check_name(name)?;
        check_share(share)?;
        resources.validate()?;
        backend.check(resources)?;
        let _lock = state.lock()?;
        if state.read::<PodRecord>(name)?.is_some() {
            return Err(Error::Refused {
                what: format!("create pod {name}"),
                reason: format!(
                    "a pod named {name} exists (remove it first, or choose another name)"
                ),
            });
        }
        let mut undo = Undo {
            state,
            name,
            cgroup: None,
            holder: None,
            persisted: Vec::new(),
            entry_dir: None,
        };
        let cgroup = backend.create(parent, &format!("isol-pod-{name}"), resources)?;
        let location = cgroup.location().clone();
        undo.cgroup = Some(cgroup);
        let dir = state.entry_dir(KIND, name);
        if dir.exists() {
            return Err(Error::Refused {
                what: format!("create pod {name}"),
                reason: format!(
                    "{} exists without a record (left by a crash?); remove it by hand",
                    dir.display()
                ),
            });
        }
        undo.entry_dir = Some(state.create_entry_dir(KIND, name)?);

        let long_lived = share.contains(NamespaceKind::Pid);
        // No program (none of the host's to look up): it holds on, not dumpable, so that
        // no member, which shares its pid namespace, can trace it or follow its
        // /proc/PID/root to the host's files.
        let mut cmd = Command::hold();
        cmd.stdin(Stdio::Null)
            .stdout(Stdio::Null)
            .stderr(Stdio::Null)
            .new_namespaces(share);
        if share.contains(NamespaceKind::Uts) {
            cmd.hostname(name);
        }
        // A mount namespace of its own with nothing in it: a member that shares its pid
        // namespace reads its /proc/PID/mountinfo (no ptrace check guards that), which
        // would list the host's mounts.
        *cmd.plan_mut().mnt.new_mut() = MntNs::Empty;
        // It only waits, and with a shared pid namespace every member sees it: no
        // capabilities, no new privileges, docker's seccomp filter. (Nothing to mask in
        // its empty mount namespace.)
        cmd.security(SecurityPolicy {
            capabilities: CapSet::EMPTY,
            devices: Vec::new(),
            masked_paths: Vec::new(),
            readonly_paths: Vec::new(),
            read_only_host: false,
            ..SecurityPolicy::default()
        });
        if long_lived {
            cmd.cgroup(CgroupSpec::Create {
                backend: backend.clone(),
                parent: Parent::At(location.clone()),
                name: HOLDER_CGROUP.into(),
                resources: Resources::default(),
            });
        }
        for kind in share.iter() {
            cmd.persist(kind, dir.join(kind.proc_name()));
        }
        let mut holder = cmd.spawn()?;
        let persisted: Vec<Persisted> = holder.persisted().to_vec();
        undo.persisted = persisted.clone();
        let holder_record = if long_lived {
            let process = ProcessId::of(holder.pid());
            let cg = holder.cgroup().map(|c| c.location().clone());
            undo.holder = Some(holder);
            Some(HolderRecord {
                process: process?,
                cgroup: cg.expect("the holder was spawned into its cgroup"),
            })
        } else {
            // The namespaces live on in their files; the process is not needed any more.
            let _ = holder.kill();
            holder.wait()?;
            None
        };
        let record = PodRecord {
            name: name.to_string(),
            shared: share,
            ns_files: persisted
                .iter()
                .map(|p| NsFile {
                    kind: p.kind,
                    path: p.path.clone(),
                    inode: p.inode,
                })
                .collect(),
            holder: holder_record,
            cgroup: location,
            backend: backend.name().to_string(),
            resources: resources.clone(),
            members: BTreeMap::new(),
            created: now(),
        };
        state.write(&record)?;
        let (cgroup, holder) = undo.disarm();
        Ok(Pod {
            state: state.clone(),
            record,
            backend,
            cgroup,
            holder,
        })
    }

    /// Opens the pod `name` with the backend its record names, opened on this host.
    pub fn open(state: &StateDir, name: &str) -> Result<Pod> {
        Self::open_on(state, name, &HostInfo::probe()?)
    }

    /// [`Pod::open`] on a host already probed.
    pub fn open_on(state: &StateDir, name: &str, host: &HostInfo) -> Result<Pod> {
        let record = read_record(state, name)?;
        let backend: Arc<dyn Backend> = Arc::from(registry::open(&record.backend, host)?);
        Self::from_record(state, record, backend)
    }

    /// Opens the pod `name` with `backend` (which must be the one that made it).
    pub fn open_with(state: &StateDir, name: &str, backend: Arc<dyn Backend>) -> Result<Pod> {
        let record = read_record(state, name)?;
        Self::from_record(state, record, backend)
    }

    fn from_record(state: &StateDir, record: PodRecord, backend: Arc<dyn Backend>) -> Result<Pod> {
        if record.backend != backend.name() {
            return Err(Error::Refused {
                what: format!("open pod {}", record.name),
                reason: format!("it was made by {}, not {}", record.backend, backend.name()),
            });
        }
        let cgroup = backend.open(&record.cgroup)?;
        Ok(Pod {
            state: state.clone(),
            record,
            backend,
            cgroup,
            holder: None,
        })
    }

    /// The records of every pod, sorted by name.
    pub fn list(state: &StateDir) -> Result<Vec<PodRecord>> {
        state
            .list(KIND)?
            .iter()
            .filter_map(|n| state.read::<PodRecord>(n).transpose())
            .collect()
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// Its record as last read or written by this handle.
    pub fn record(&self) -> &PodRecord {
        &self.record
    }

    /// The pod cgroup.
    pub fn cgroup(&self) -> &dyn Cgroup {
        self.cgroup.as_ref()
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Opens the shared namespace of `kind` (from its persisted file).
    pub fn namespace(&self, kind: NamespaceKind) -> Result<NsHandle> {
        let f = self.record.ns_file(kind).ok_or_else(|| {
            Error::invalid(
                "namespace",
                kind.to_string(),
                format!(
                    "pod {} does not share {kind} (it shares {})",
                    self.record.name, self.record.shared
                ),
            )
        })?;
        NsHandle::open(kind, &f.path)
    }

    /// Spawns `cmd` as the member `member` (claimed under the state lock): it joins the
    /// pod's shared namespaces, gets new namespaces of the container kinds not shared
    /// (keeping settings `cmd` gave for them), and its own cgroup `member` beneath the pod
    /// cgroup with `resources`. A namespace kind the pod shares must not be set to new in
    /// `cmd`. The member is recorded; its cgroup is removed again if the spawn fails.
    /// A pod whose pid holder is gone ([`PodState::HolderGone`]) is refused before
    /// anything is made, naming `isol pod rm -f` as the way out.
    pub fn add_member(
        &mut self,
        member: &str,
        mut cmd: Command,
        resources: &Resources,
    ) -> Result<Child> {
        check_name(member)?;
        if member == HOLDER_CGROUP {
            return Err(Error::invalid(
                "member name",
                member,
                format!("{HOLDER_CGROUP:?} is the holder's cgroup; choose another name"),
            ));
        }
        resources.validate()?;
        let _lock = self.state.lock()?;
        self.record = read_record(&self.state, &self.record.name)?;
        if self.record.members.contains_key(member) {
            return Err(Error::Refused {
                what: format!("add member {member} to pod {}", self.record.name),
                reason: format!("pod {} has a member named {member}", self.record.name),
            });
        }
        // A pid namespace whose init died takes no process: the spawn would fail with a
        // bare ENOMEM from the fork inside it.
        if self.record.state() == PodState::HolderGone {
            return Err(self.record.holder_gone(member));
        }
        let shared = self.record.shared;
        let plan = cmd.plan_mut();
        let already_new = plan.new_set();
        let clash = NamespaceSet::from_iter(already_new.iter().filter(|k| shared.contains(*k)));
        if !clash.is_empty() {
            return Err(Error::invalid(
                "namespaces",
                clash.to_string(),
                format!(
                    "pod {} shares {clash}: a member joins them and cannot have its own",
                    self.record.name
                ),
            ));
        }
        for f in &self.record.ns_files {
            plan.join(NsHandle::open(f.kind, &f.path)?);
        }
        let joined = plan.joined_set();
        for kind in NamespaceSet::CONTAINER.iter() {
            if !shared.contains(kind) && !joined.contains(kind) {
                plan.set_new(kind);
            }
        }
        cmd.cgroup(CgroupSpec::Create {
            backend: self.backend.clone(),
            parent: Parent::At(self.record.cgroup.clone()),
            name: member.to_string(),
            resources: resources.clone(),
        });
        let child = cmd.spawn().map_err(|e| {
            // The holder may have died between the check above and the spawn.
            if self.record.state() == PodState::HolderGone {
                self.record.holder_gone(member)
            } else {
                e
            }
        })?;
        let rec = (|| -> Result<MemberRecord> {
            Ok(MemberRecord {
                process: ProcessId::of(child.pid())?,
                cgroup: child
                    .cgroup()
                    .map(|c| c.location().clone())
                    .expect("spawned into its cgroup"),
                resources: resources.clone(),
                new_namespaces: child.new_namespaces(),
                added: now(),
            })
        })();
        let written = rec.and_then(|rec| {
            self.record.members.insert(member.to_string(), rec);
            self.state.write(&self.record)
        });
        if let Err(e) = written {
            self.record.members.remove(member);
            if let Some(cg) = child.cgroup() {
                let _ = cg.destroy();
            }
            let mut child = child;
            let _ = child.wait();
            return Err(e);
        }
        Ok(child)
    }

    /// Removes the member `member`: kills what runs in its cgroup, destroys the cgroup and
    /// drops it from the record. Without `force`, a running member is refused.
    pub fn remove_member(&mut self, member: &str, force: bool) -> Result<()> {
        let _lock = self.state.lock()?;
        self.record = read_record(&self.state, &self.record.name)?;
        let Some(m) = self.record.members.get(member) else {
            return Err(Error::invalid(
                "member",
                member,
                format!("pod {} has no member {member}", self.record.name),
            ));
        };
        if !force && m.process.alive() {
            return Err(Error::Refused {
                what: format!("remove member {member} of pod {}", self.record.name),
                reason: "it is running; remove it with force (isol rm -f) to kill it".into(),
            });
        }
        // Gone already is fine: a remover that died between destroying the cgroup and
        // writing the record leaves exactly that, and its caller comes back here.
        match self.backend.open(&m.cgroup) {
            Ok(cg) => cg.destroy()?,
            Err(e) if !cgroup_gone(&m.cgroup, self.cgroup.as_ref()) => return Err(e),
            Err(_) => {}
        }
        self.record.members.remove(member);
        self.state.write(&self.record)
    }

    /// The members, each with whether its process still runs.
    pub fn members(&mut self) -> Result<Vec<MemberInfo>> {
        self.record = read_record(&self.state, &self.record.name)?;
        Ok(self
            .record
            .members
            .iter()
            .map(|(name, m)| MemberInfo {
                name: name.clone(),
                pid: m.process.pid,
                cgroup: m.cgroup.clone(),
                state: if m.process.alive() {
                    MemberState::Running
                } else {
                    MemberState::Exited
                },
            })
            .collect())
    }

    /// The pod cgroup's stats and each member's.
    pub fn stats(&mut self) -> Result<PodStats> {
        self.record = read_record(&self.state, &self.record.name)?;
        let total = self.cgroup.stats()?;
        let mut members = BTreeMap::new();
        for (name, m) in &self.record.members {
            members.insert(name.clone(), self.backend.open(&m.cgroup)?.stats()?);
        }
        Ok(PodStats { total, members })
    }

    /// Removes the pod. Without `force`, refuses while a member runs. With it: destroys
    /// every member's cgroup (killing what runs there), the holder's (the shared pid
    /// namespace dies with it) and the pod cgroup, releases the namespace files
    /// (`umount2(MNT_DETACH)` and unlink), and removes the record and its directory.
    /// A refused or failed removal leaves the pod usable; after a successful one this
    /// handle only describes what was.
    pub fn remove(&mut self, force: bool) -> Result<()> {
        let _lock = self.state.lock()?;
        self.record = read_record(&self.state, &self.record.name)?;
        let name = self.record.name.clone();
        let running: Vec<&str> = self
            .record
            .members
            .iter()
            .filter(|(_, m)| m.process.alive())
            .map(|(n, _)| n.as_str())
            .collect();
        if !force && !running.is_empty() {
            return Err(Error::Refused {
                what: format!("remove pod {name}"),
                reason: format!(
                    "members still run ({}); stop them, or remove the pod with force (isol pod rm -f) to kill them",
                    running.join(", ")
                ),
            });
        }
        for m in self.record.members.values() {
            match self.backend.open(&m.cgroup) {
                Ok(cg) => cg.destroy()?,
                Err(e) if !cgroup_gone(&m.cgroup, self.cgroup.as_ref()) => return Err(e),
                Err(_) => {}
            }
        }
        if let Some(h) = &self.record.holder {
            match self.backend.open(&h.cgroup) {
                Ok(cg) => cg.destroy()?,
                Err(e) if !cgroup_gone(&h.cgroup, self.cgroup.as_ref()) => return Err(e),
                Err(_) => {}
            }
        }
        if let Some(mut holder) = self.holder.take() {
            let _ = holder.kill();
            let _ = holder.wait();
        }
        self.cgroup.destroy()?;
        for f in &self.record.ns_files {
            release(&f.path)?;
        }
        self.state.remove(KIND, &name)
    }
}

/// Kinds a pod can share: any, but a shared user namespace needs a shared pid namespace
/// (isol cannot make a new pid namespace inside a joined user namespace).
fn check_share(share: NamespaceSet) -> Result<()> {
    if share.is_empty() {
        return Err(Error::invalid(
            "share",
            "",
            "a pod shares at least one namespace kind (default net,ipc,uts)",
        ));
    }
    // Each member mounts its own /proc (for its pid namespace) and masks its own paths
    // there; in a shared mount namespace they would see the host's /proc, unmasked.
    if share.contains(NamespaceKind::Mnt) {
        return Err(Error::invalid(
            "share",
            share.to_string(),
            "a pod cannot share mnt: each member needs a mount namespace of its own, for its /proc and its masked paths; share files through a bind mount of one host directory into each member instead",
        ));
    }
    if share.contains(NamespaceKind::User) && !share.contains(NamespaceKind::Pid) {
        return Err(Error::invalid(
            "share",
            share.to_string(),
            "sharing user needs sharing pid too (members cannot make a pid namespace inside a joined user namespace)",
        ));
    }
    Ok(())
}

fn read_record(state: &StateDir, name: &str) -> Result<PodRecord> {
    state
        .read::<PodRecord>(name)?
        .ok_or_else(|| Error::invalid("pod", name, format!("no pod named {name}")))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Whether a child cgroup of the pod has no directory any more (removed by hand).
fn cgroup_gone(location: &CgroupLocation, pod: &dyn Cgroup) -> bool {
    let Some(leaf) = location
        .primary()
        .and_then(|p| p.as_str().rsplit('/').next().map(str::to_string))
    else {
        return true;
    };
    pod.dirs().iter().all(|d| !d.join(&leaf).exists())
}

/// `umount2(path, MNT_DETACH)` and unlink; a file already unmounted or gone is fine.
fn release(path: &Path) -> Result<()> {
    match nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(Error::io("unmount namespace file", path, e.into())),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove namespace file", path, e)),
    }
}

/// State and start time (fields 3 and 22) of `/proc/PID/stat`.
fn proc_stat(pid: u32) -> Result<(char, u64)> {
    let path = PathBuf::from(format!("/proc/{pid}/stat"));
    let text = crate::parse::read(&path)?;
    parse_stat(&text).ok_or_else(|| Error::parse(&path, format!("unexpected format: {text:?}")))
}

fn parse_stat(text: &str) -> Option<(char, u64)> {
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// Undoes a half-made pod when dropped armed.
struct Undo<'a> {
    state: &'a StateDir,
    name: &'a str,
    cgroup: Option<Box<dyn Cgroup>>,
    holder: Option<Child>,
    persisted: Vec<Persisted>,
    entry_dir: Option<PathBuf>,
}

impl Undo<'_> {
    fn disarm(mut self) -> (Box<dyn Cgroup>, Option<Child>) {
        self.persisted.clear();
        self.entry_dir = None;
        let cg = self
            .cgroup
            .take()
            .expect("the pod cgroup exists once created");
        (cg, self.holder.take())
    }
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if let Some(mut h) = self.holder.take() {
            let _ = h.kill();
            let _ = h.wait();
        }
        for p in self.persisted.drain(..) {
            if let Err(e) = release(&p.path) {
                tracing::warn!("undo pod {}: {e}", self.name);
            }
        }
        if let Some(cg) = self.cgroup.take() {
            if let Err(e) = cg.destroy() {
                tracing::warn!("undo pod {}: destroy {}: {e}", self.name, cg.path());
            }
        }
        if self.entry_dir.take().is_some() {
            if let Err(e) = self.state.remove(KIND, self.name) {
                tracing::warn!("undo pod {}: {e}", self.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_survive_odd_command_names() {
        let line =
            "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 50";
        assert_eq!(parse_stat(line), Some(('S', 987654)));
        assert_eq!(parse_stat("garbage"), None);
        let me = ProcessId::of(std::process::id()).unwrap();
        assert!(me.alive());
        let reused = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!reused.alive(), "a different start time is another process");
    }

    #[test]
    fn shares_are_checked() {
        assert_eq!(
            default_share(),
            "ipc,net,uts".parse::<NamespaceSet>().unwrap()
        );
        check_share(default_share()).unwrap();
        assert!(check_share(NamespaceSet::EMPTY).is_err());
        assert!(check_share("user,net".parse().unwrap()).is_err());
        check_share("user,pid,net".parse().unwrap()).unwrap();
        let err = check_share("net,mnt".parse().unwrap()).unwrap_err();
        assert!(err.to_string().contains("cannot share mnt"), "{err}");
    }

    #[test]
    fn records_round_trip_through_json() {
        let mut members = BTreeMap::new();
        members.insert(
            "web".to_string(),
            MemberRecord {
                process: ProcessId {
                    pid: 10,
                    start_time: 20,
                },
                cgroup: CgroupLocation::unified(
                    crate::CgroupPath::new("/p/isol-pod-a/web").unwrap(),
                ),
                resources: Resources::default(),
                new_namespaces: "mnt,pid,cgroup".parse().unwrap(),
                added: 5,
            },
        );
        let r = PodRecord {
            name: "a".into(),
            shared: default_share(),
            ns_files: vec![NsFile {
                kind: NamespaceKind::Net,
                path: "/run/isol/pods/a.d/net".into(),
                inode: 4026532000,
            }],
            holder: None,
            cgroup: CgroupLocation::unified(crate::CgroupPath::new("/p/isol-pod-a").unwrap()),
            backend: "cgroup-v2".into(),
            resources: Resources::default(),
            members,
            created: 1,
        };
        let json = serde_json::to_string(&r).unwrap();
        let back: PodRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.ns_file(NamespaceKind::Net).unwrap().inode, 4026532000);
        assert!(back.ns_file(NamespaceKind::Pid).is_none());
    }
}
