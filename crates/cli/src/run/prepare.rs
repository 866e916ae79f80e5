//! The command line of `isol run` → a `Command` ready to spawn and what the box's record
//! will say, every flag checked before anything exists. One function per concern:
//! the pod the box joins, the namespaces it shares (`--share`), what needs a namespace
//! of its own, the mounts, the user and environment, the cgroup.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use isol_ns_core::boxes::{self, BoxState, BoxUser};
use isol_ns_core::namespace::{Mount, MountSource, UserNs};
use isol_ns_core::spawn::{CgroupSpec, Command};
use isol_ns_core::state::{self, StateDir};
use isol_ns_core::{
    registry, Backend, CgroupLocation, Error, NamespaceKind, NamespaceSet, NsHandle, Parent, Pod,
};

use super::{terminal, Prepared};
use crate::cli::RunArgs;
use crate::opts::{self, ShareTarget};

/// The namespaces a box gets when `--ns` is not given.
const DEFAULT_NAMESPACES: &str = "mnt,pid,net,ipc,uts,cgroup";

/// A namespace joined with `--share`.
type Share = (NamespaceKind, NsHandle);

/// Everything `run` checks before it creates anything.
pub(super) fn prepare(state: &StateDir, a: &RunArgs) -> Result<Prepared> {
    let name = match &a.name {
        Some(n) => n.clone(),
        None => state::generate_name(),
    };
    state::check_name(&name)?;
    // The default list yields to --share and --pod; a kind named explicitly in --ns
    // must not also be joined, a contradiction that `member_of` and `shares` refuse
    // rather than resolve silently.
    let mut new = opts::namespaces(a.ns.as_deref().unwrap_or(DEFAULT_NAMESPACES))?;
    let resources = opts::resources(&a.limits)?;
    let parent = opts::cgroup_parent(&a.cgroup_parent)?;
    let pod = member_of(state, a, &mut new)?;
    let backend: Arc<dyn Backend> = match &pod {
        Some(p) => p.backend().clone(),
        None => Arc::from(registry::open(&a.backend, crate::host()?)?),
    };
    backend.check(&resources)?;
    let shares = shares(state, a, &mut new, pod.as_ref())?;
    if a.map_root {
        new.insert(NamespaceKind::User);
    }
    check_new(a, new, pod.as_ref(), &shares)?;

    let (program, args) = a.command.split_first().context("no command given")?;
    let mut cmd = Command::new(program);
    cmd.args(args).new_namespaces(new);
    if a.security.writable_host && a.rootfs.is_some() {
        bail!("--writable-host: with --rootfs the box sees only that tree, not the host's files; leave it out");
    }
    cmd.security(crate::security::policy(&a.security)?);
    if new.contains(NamespaceKind::User) {
        cmd.user_namespace(UserNs::rootless());
    }
    for (_, h) in shares {
        cmd.join(h);
    }
    // A new UTS namespace is named after the box (docker names it after the container),
    // unless --hostname says otherwise.
    let hostname = a
        .hostname
        .clone()
        .or_else(|| new.contains(NamespaceKind::Uts).then(|| name.clone()));
    if let Some(h) = &hostname {
        cmd.hostname(h.clone());
    }
    mounts(&mut cmd, a)?;
    if let Some(tty) = terminal::console(&cmd, a) {
        cmd.console(tty);
    }
    let user = box_user(a.user.as_deref(), new.contains(NamespaceKind::User))?;
    if let Some(u) = user {
        u.apply(&mut cmd);
    }
    let env = resolve_env(&a.env)?;
    boxes::set_env(&mut cmd, a.inherit_env, user, &env)?;
    if let Some(w) = &a.workdir {
        cmd.current_dir(w);
    }
    let backend_name = backend.name();
    let cgroup = match &pod {
        Some(p) => p.record().cgroup.join(&name)?,
        None => {
            let at = predict_location(backend.as_ref(), &parent, &name);
            cmd.cgroup(CgroupSpec::Create {
                backend,
                parent,
                name: name.clone(),
                resources: resources.clone(),
            });
            at
        }
    };
    Ok(Prepared {
        name,
        cmd,
        backend: backend_name,
        cgroup,
        resources,
        new,
        argv: a.command.clone(),
        hostname,
        pod: a.pod.clone(),
        pod_handle: pod,
        user,
        env,
        inherit_env: a.inherit_env,
        workdir: a.workdir.clone(),
    })
}

/// `--pod`: the pod the box joins, checked against `--cgroup-parent`, `--ns` and
/// `--backend`; the kinds the pod shares are taken out of `new`.
fn member_of(state: &StateDir, a: &RunArgs, new: &mut NamespaceSet) -> Result<Option<Pod>> {
    let Some(p) = &a.pod else {
        return Ok(None);
    };
    if !a.cgroup_parent.is_empty() {
        bail!(Error::invalid(
            "cgroup-parent",
            a.cgroup_parent.join(" "),
            "a pod member's cgroup is beneath its pod's; drop --cgroup-parent or --pod"
        ));
    }
    let pod = Pod::open_on(state, p, crate::host()?)?;
    let shared = pod.record().shared;
    if let Some(list) = a.ns.as_deref() {
        let clash = NamespaceSet::from_iter(new.iter().filter(|k| shared.contains(*k)));
        if !clash.is_empty() {
            bail!(Error::invalid(
                "ns",
                list,
                format!("pod {p} shares {clash}, which its members join; drop {clash} from --ns, or --pod")
            ));
        }
    }
    if a.backend != "auto" && a.backend != pod.backend().name() {
        bail!(Error::invalid(
            "backend",
            &a.backend,
            format!(
                "--backend {} but pod {p} uses {}, and its members share its cgroup tree; drop --backend or --pod",
                a.backend,
                pod.backend().name()
            )
        ));
    }
    // The member joins what the pod shares.
    for k in shared.iter() {
        new.remove(k);
    }
    Ok(Some(pod))
}

/// `--share KIND=TARGET`: each namespace opened, and taken out of `new`.
fn shares(
    state: &StateDir,
    a: &RunArgs,
    new: &mut NamespaceSet,
    pod: Option<&Pod>,
) -> Result<Vec<Share>> {
    let mut shares: Vec<Share> = Vec::new();
    for s in &a.share {
        let (kind, target) = opts::share(s)?;
        if shares.iter().any(|(k, _)| *k == kind) {
            bail!(Error::invalid(
                "share",
                s,
                format!("the {kind} namespace is shared twice")
            ));
        }
        if let Some(list) = a.ns.as_deref().filter(|_| new.contains(kind)) {
            bail!(Error::invalid(
                "share",
                s,
                format!("--ns {list} asks for a new {kind} namespace, and --share {s} joins one; drop one of them")
            ));
        }
        if let Some(p) = pod.filter(|p| p.record().shared.contains(kind)) {
            bail!(Error::invalid(
                "share",
                s,
                format!(
                    "pod {} already gives its members its {kind} namespace; drop --share or --pod",
                    p.name()
                )
            ));
        }
        let handle = match target {
            ShareTarget::File(p) => NsHandle::open(kind, p)?,
            ShareTarget::Pid(pid) => NsHandle::of_pid(pid, kind, false)?,
            ShareTarget::Box(b) => {
                let rec = crate::boxes::load(state, &b)?;
                if rec.liveness() != BoxState::Running {
                    bail!("share {s}: box {b} is not running");
                }
                NsHandle::of_pid(rec.process.pid, kind, true)?
            }
        };
        new.remove(kind);
        shares.push((kind, handle));
    }
    Ok(shares)
}

/// The flags that need a namespace of the box's own: refused, saying why, where the box
/// joins that kind (its pod's, or one given with `--share`) or `--ns` leaves it out.
fn check_new(a: &RunArgs, new: NamespaceSet, pod: Option<&Pod>, shares: &[Share]) -> Result<()> {
    let needs = |what: &str, kind: NamespaceKind, given: bool| -> Result<()> {
        if given && !new.contains(kind) {
            let why = match pod {
                Some(p) if p.record().shared.contains(kind) => format!(
                    "the box joins pod {}'s {kind} namespace, which is the pod's (drop --{what})",
                    p.record().name
                ),
                _ if shares.iter().any(|(k, _)| *k == kind) => format!(
                    "the box joins the {kind} namespace given with --share (drop one of them)"
                ),
                _ => format!("add {kind} to --ns"),
            };
            bail!(Error::invalid(
                what,
                "",
                format!("{what} needs a new {kind} namespace: {why}")
            ));
        }
        Ok(())
    };
    needs("hostname", NamespaceKind::Uts, a.hostname.is_some())?;
    needs("rootfs", NamespaceKind::Mnt, a.rootfs.is_some())?;
    needs("bind", NamespaceKind::Mnt, !a.bind.is_empty())?;
    needs("tmpfs", NamespaceKind::Mnt, !a.tmpfs.is_empty())
}

/// Everything the box's mount namespace gets from the command line: `--rootfs`,
/// `--bind`, `--tmpfs`, and the `--device` nodes a rootfs needs bound in.
fn mounts(cmd: &mut Command, a: &RunArgs) -> Result<()> {
    if let Some(r) = &a.rootfs {
        let abs = if r.is_absolute() {
            r.clone()
        } else {
            std::env::current_dir()
                .context("current directory")?
                .join(r)
        };
        cmd.rootfs(abs);
    }
    let mut mounts = Vec::new();
    for b in &a.bind {
        mounts.push(opts::bind(b)?);
    }
    for t in &a.tmpfs {
        mounts.push(Mount::tmpfs(t, "mode=1777"));
    }
    // A rootfs gets a /dev of its own: a device granted with --device is bound into it
    // too, as docker makes the node (the host's /dev has it already), read-only: it
    // still reads and writes as the device, but its mode and owner are the host's.
    if a.rootfs.is_some() {
        for d in &a.security.device {
            let (node, _) = isol_ns_core::security::device_spec(d);
            mounts.push(Mount {
                read_only: true,
                ..Mount::bind(node, node)
            });
        }
    }
    for m in mounts {
        // Without a rootfs the box sees this host's files: a missing mount point would
        // be made there, and outlive the box.
        let exists = |p: &Path| std::fs::symlink_metadata(p).is_ok();
        let absent = m.target.is_absolute() && !exists(&m.target);
        // (A missing source is the library's to report first.)
        let source_there = match &m.source {
            MountSource::Bind(src) => exists(src),
            _ => true,
        };
        if a.rootfs.is_none() && absent && source_there {
            bail!(
                "mount point {} does not exist; without --rootfs the box sees this host's files, and isol makes no directories or files there (create it first, or use --rootfs)",
                m.target.display()
            );
        }
        cmd.mount(m);
    }
    Ok(())
}

/// `--user UID[:GID]`, checked against the box's user namespace when it has one of its
/// own (`user_ns`).
pub(super) fn box_user(given: Option<&str>, user_ns: bool) -> Result<Option<BoxUser>> {
    let Some(given) = given else {
        return Ok(None);
    };
    let (uid, gid) = opts::user(given)?;
    let user = BoxUser { uid, gid };
    user.check_mapped(user_ns)?;
    Ok(Some(user))
}

/// The `--env` values as `K=V`: a bare `K` takes the caller's value, and is left out
/// when the caller has none (docker's `-e K`).
pub(super) fn resolve_env(given: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in given {
        let (k, v) = opts::env(e)?;
        if v.is_some() {
            out.push(e.clone());
        } else if let Some(v) = std::env::var_os(&k) {
            let v = v.into_string().map_err(|_| {
                anyhow::anyhow!(
                    "--env {k}: your value of {k} is not UTF-8; give it as --env {k}=VALUE"
                )
            })?;
            out.push(format!("{k}={v}"));
        }
    }
    Ok(out)
}

/// Where `backend.create(parent, name)` will put the cgroup, in the backend's own
/// hierarchies (so a v2 box on a host that also has v1 hierarchies names only the
/// unified one). Empty when the backend cannot say (its own cgroup is unknown), which
/// only weakens what a crash leaves collectable, never what is removed.
fn predict_location(backend: &dyn Backend, parent: &Parent, name: &str) -> CgroupLocation {
    let Ok(own) = backend.own_cgroup() else {
        return CgroupLocation::default();
    };
    let base = match parent {
        Parent::Own => own,
        Parent::Path(p) => CgroupLocation(own.0.keys().map(|k| (k.clone(), p.clone())).collect()),
        Parent::At(loc) => CgroupLocation(
            own.0
                .keys()
                .filter_map(|k| loc.get(k).map(|p| (k.clone(), p.clone())))
                .collect(),
        ),
    };
    base.join(name).unwrap_or_default()
}
