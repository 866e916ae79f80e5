//! `isol run` and `isol exec`: build the spawn from the command line (validating
//! everything before anything is created), start the box, and either stay in the
//! foreground — forwarding signals, passing the exit status through, removing the box
//! when it ends — or leave a supervisor behind (`-d`) that records the exit status.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use isol_ns_core::namespace::{Mount, UserNs};
use isol_ns_core::spawn::{CgroupSpec, Child, Command, ExitStatus, Stdio};
use isol_ns_core::state::{self, StateDir};
use isol_ns_core::units::{format_size, Limit};
use isol_ns_core::{registry, CgroupLocation, NamespaceKind, NamespaceSet, NsHandle, Resources};

use crate::cli::RunArgs;
use crate::daemon;
use crate::opts::{self, ShareTarget};
use crate::record::{self, BoxRecord, BoxState, BoxUser, Exit, NsInfo, Proc, BOXES};
use crate::render::outln;
use crate::Reported;

/// The namespaces a box gets when `--ns` is not given.
const DEFAULT_NAMESPACES: &str = "mnt,pid,net,ipc,uts,cgroup";

/// The signals a foreground isol forwards to the box.
const FORWARDED: [libc::c_int; 7] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

/// A box ready to start: everything checked, nothing created yet.
struct Prepared {
    name: String,
    cmd: Command,
    backend: &'static str,
    /// Where the box's cgroup will be, named in the record before it is created.
    cgroup: CgroupLocation,
    resources: Resources,
    new: NamespaceSet,
    argv: Vec<String>,
    hostname: Option<String>,
    pod: Option<String>,
    /// The pod the box joins as a member (`--pod`).
    pod_handle: Option<isol_ns_core::Pod>,
    user: Option<BoxUser>,
    /// `--env` (as `K=V`), `--inherit-env` and `--workdir`, recorded for `exec`.
    env: Vec<String>,
    inherit_env: bool,
    workdir: Option<PathBuf>,
}

/// `isol run`.
pub fn run(state: &StateDir, a: RunArgs) -> Result<u8> {
    if a.detach {
        let inherited = daemon::inherited_fds();
        let prep = prepare(state, &a)?;
        return detach(state, prep, &inherited);
    }
    let prep = prepare(state, &a)?;
    let forwarder = Forwarder::install()?;
    let (mut child, rec) = start(state, prep, false)?;
    let status = forwarder.wait(&mut child);
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            cleanup(state, &rec, &child);
            return Err(e);
        }
    };
    tracing::debug!("box {}: its command ended: {status:?}", rec.name);
    if oom_killed(&child) {
        eprintln!("{}", oom_message(state, &rec, status));
    }
    cleanup(state, &rec, &child);
    Ok(shell_status(status))
}

/// What the OOM killer did, with the limits that bound the box: its own, and its pod's.
fn oom_message(state: &StateDir, rec: &BoxRecord, status: ExitStatus) -> String {
    let size = |l: Option<Limit>| match l {
        Some(Limit::Value(v)) => Some(format_size(v)),
        _ => None,
    };
    let mut limits = Vec::new();
    if let Some(v) = size(rec.resources.memory.max) {
        limits.push(format!("memory limit {v}"));
    }
    let pod_limit = rec.pod.as_deref().and_then(|p| {
        let pod = isol_ns_core::Pod::open_on(state, p, crate::host().ok()?).ok()?;
        size(pod.record().resources.memory.max)
    });
    if let Some(v) = pod_limit {
        limits.push(format!("its pod's {v}"));
    }
    let limits = if limits.is_empty() {
        String::new()
    } else {
        format!(" ({})", limits.join("; "))
    };
    if status == ExitStatus::Signaled(libc::SIGKILL) {
        format!(
            "isol: box {} was killed by the OOM killer{limits}",
            rec.name
        )
    } else {
        format!(
            "isol: box {}: the OOM killer ended a process of the box, not its command{limits}",
            rec.name
        )
    }
}

fn oom_killed(child: &Child) -> bool {
    child
        .cgroup()
        .and_then(|cg| cg.oom_kills().ok())
        .is_some_and(|n| n > 0)
}

/// Removes a foreground box: its cgroup, namespace files and record.
fn cleanup(state: &StateDir, rec: &BoxRecord, child: &Child) {
    match record::remove_box(state, rec, child.cgroup()) {
        Ok(()) => tracing::debug!("box {}: cgroup and record removed", rec.name),
        Err(e) => eprintln!("isol: {e:#}"),
    }
}

/// 128+N for a signal, the code otherwise.
pub fn shell_status(s: ExitStatus) -> u8 {
    match s {
        ExitStatus::Exited(c) => (c & 0xff) as u8,
        ExitStatus::Signaled(n) => (128 + n).clamp(0, 255) as u8,
    }
}

/// The forwarded signals, blocked in isol and read from a signalfd while it waits for
/// the box: one `poll` on the signalfd and the box's pidfd, no event loop. They stay
/// blocked until isol exits (it ends with the box); the child unblocks every signal
/// before its first step.
struct Forwarder {
    fd: nix::sys::signalfd::SignalFd,
}

impl Forwarder {
    /// Installed before the spawn, so that no signal is lost between spawn and wait: one
    /// that comes earlier waits, blocked, and is forwarded once the box runs.
    fn install() -> Result<Forwarder> {
        use nix::sys::signal::{SigSet, SigmaskHow, Signal};
        use nix::sys::signalfd::{SfdFlags, SignalFd};
        let mut set = SigSet::empty();
        for s in FORWARDED {
            set.add(Signal::try_from(s).context("a forwarded signal")?);
        }
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
            .context("block the signals isol forwards")?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .context("open a signalfd for the signals isol forwards")?;
        Ok(Forwarder { fd })
    }

    /// Waits for `child`, forwarding every signal isol receives meanwhile. The pid stays
    /// ours until the wait reaps it, so `kill(pid)` cannot hit another process.
    fn wait(self, child: &mut Child) -> Result<ExitStatus> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let pid = nix::unistd::Pid::from_raw(child.pid() as i32);
        loop {
            let (box_ended, signalled) = {
                let mut fds = [
                    PollFd::new(child.pidfd(), PollFlags::POLLIN),
                    PollFd::new(self.fd.as_fd(), PollFlags::POLLIN),
                ];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(e).context("wait for the box"),
                }
                let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
                (ready(&fds[0]), ready(&fds[1]))
            };
            if signalled {
                while let Ok(Some(info)) = self.fd.read_signal() {
                    let sig = nix::sys::signal::Signal::try_from(info.ssi_signo as i32).ok();
                    let _ = nix::sys::signal::kill(pid, sig);
                }
            }
            if box_ended {
                if let Some(status) = child.try_wait()? {
                    return Ok(status);
                }
            }
        }
    }
}

/// Everything `run` checks before it creates anything.
fn prepare(state: &StateDir, a: &RunArgs) -> Result<Prepared> {
    let name = match &a.name {
        Some(n) => n.clone(),
        None => state::generate_name(),
    };
    state::check_name(&name)?;
    // A kind named explicitly in --ns must not also be joined: that is a contradiction,
    // not something to resolve silently. The default list yields to --share and --pod.
    let explicit_ns = a.ns.as_deref();
    let mut new = opts::namespaces(explicit_ns.unwrap_or(DEFAULT_NAMESPACES))?;
    let resources = opts::resources(&a.limits)?;
    let parent = opts::cgroup_parent(&a.cgroup_parent)?;
    let pod = match &a.pod {
        Some(p) => {
            if !a.cgroup_parent.is_empty() {
                bail!(isol_ns_core::Error::invalid(
                    "cgroup-parent",
                    a.cgroup_parent.join(" "),
                    "a pod member's cgroup is beneath its pod's; drop --cgroup-parent or --pod"
                ));
            }
            let pod = isol_ns_core::Pod::open_on(state, p, crate::host()?)?;
            let shared = pod.record().shared;
            if let Some(list) = explicit_ns {
                let clash = NamespaceSet::from_iter(new.iter().filter(|k| shared.contains(*k)));
                if !clash.is_empty() {
                    bail!(isol_ns_core::Error::invalid(
                        "ns",
                        list,
                        format!("pod {p} shares {clash}, which its members join; drop {clash} from --ns, or --pod")
                    ));
                }
            }
            if a.backend != "auto" && a.backend != pod.backend().name() {
                bail!(isol_ns_core::Error::invalid(
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
            Some(pod)
        }
        None => None,
    };
    let backend: Arc<dyn isol_ns_core::Backend> = match &pod {
        Some(p) => p.backend().clone(),
        None => Arc::from(registry::open(&a.backend, crate::host()?)?),
    };
    backend.check(&resources)?;

    let mut shares = Vec::new();
    for s in &a.share {
        let (kind, target) = opts::share(s)?;
        if shares.iter().any(|(k, _)| *k == kind) {
            bail!(isol_ns_core::Error::invalid(
                "share",
                s,
                format!("the {kind} namespace is shared twice")
            ));
        }
        if let Some(list) = explicit_ns.filter(|_| new.contains(kind)) {
            bail!(isol_ns_core::Error::invalid(
                "share",
                s,
                format!("--ns {list} asks for a new {kind} namespace, and --share {s} joins one; drop one of them")
            ));
        }
        if let Some(p) = pod.as_ref().filter(|p| p.record().shared.contains(kind)) {
            bail!(isol_ns_core::Error::invalid(
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
                let rec = record::load(state, &b)?;
                if rec.liveness() != BoxState::Running {
                    bail!("share {s}: box {b} is not running");
                }
                NsHandle::of_pid(rec.process.pid, kind, true)?
            }
        };
        new.remove(kind);
        shares.push((kind, handle));
    }
    if a.map_root {
        new.insert(NamespaceKind::User);
    }
    let needs = |what: &str, kind: NamespaceKind, given: bool| -> Result<()> {
        if given && !new.contains(kind) {
            let why = match &pod {
                Some(p) if p.record().shared.contains(kind) => format!(
                    "the box joins pod {}'s {kind} namespace, which is the pod's (drop --{what})",
                    p.record().name
                ),
                _ if shares.iter().any(|(k, _)| *k == kind) => format!(
                    "the box joins the {kind} namespace given with --share (drop one of them)"
                ),
                _ => format!("add {kind} to --ns"),
            };
            bail!(isol_ns_core::Error::invalid(
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
    needs("tmpfs", NamespaceKind::Mnt, !a.tmpfs.is_empty())?;

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
        let exists = |p: &std::path::Path| std::fs::symlink_metadata(p).is_ok();
        let absent = m.target.is_absolute() && !exists(&m.target);
        // (A missing source is the library's to report first.)
        let source_there = match &m.source {
            isol_ns_core::namespace::MountSource::Bind(src) => exists(src),
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
    if let Some(tty) = console(&cmd, a) {
        cmd.console(tty);
    }
    let user = box_user(a.user.as_deref(), new.contains(NamespaceKind::User))?;
    if let Some(u) = user {
        set_user(&mut cmd, u);
    }
    let env = resolve_env(&a.env)?;
    set_env(&mut cmd, a.inherit_env, user, &env)?;
    if let Some(w) = &a.workdir {
        cmd.current_dir(w);
    }
    let backend_name = backend.name();
    let cgroup = match &pod {
        Some(p) => p.record().cgroup.join(&name)?,
        None => predict_location(backend.as_ref(), &parent, &name),
    };
    if pod.is_none() {
        cmd.cgroup(CgroupSpec::Create {
            backend,
            parent,
            name: name.clone(),
            resources: resources.clone(),
        });
    }
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

/// Where `backend.create(parent, name)` will put the cgroup, in the backend's own
/// hierarchies (so a v2 box on a host that also has v1 hierarchies names only the
/// unified one). Empty when the backend cannot say (its own cgroup is unknown), which
/// only weakens what a crash leaves collectable, never what is removed.
fn predict_location(
    backend: &dyn isol_ns_core::Backend,
    parent: &isol_ns_core::Parent,
    name: &str,
) -> CgroupLocation {
    use isol_ns_core::Parent;
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

/// Claims the name, spawns the box and writes its record. On failure nothing is left:
/// no record, no cgroup, no process.
///
/// The state lock is *not* held across the spawn: the box's init (pid 1 of a new pid
/// namespace) never execs, so it keeps every fd isol had open, close-on-exec or not, and
/// would hold the lock's open file description — and with it the flock — for the box's
/// whole life. So the name is claimed under the lock with a placeholder record (this
/// process as the box's process: if isol dies, the placeholder reads as dead and is
/// cleaned up), and the full record replaces it once the box runs.
///
/// The placeholder already names the cgroup the spawn will create, and the cgroup is
/// checked not to exist yet, so a crash at any point after the claim leaves a record
/// that `isol gc` (or `ps`) finds dead and that leads to everything the box made. The
/// record is removed last on every path, so no cgroup ever outlives it.
fn start(state: &StateDir, mut p: Prepared, detached: bool) -> Result<(Child, BoxRecord)> {
    let mut rec = placeholder(&p, detached);
    // The cgroup is looked for before the lock, which every isol on the host waits for,
    // and again under it only after a dead box of the same name was cleaned up. A cgroup
    // of this name that another program makes after the check is refused by the
    // backend's mkdir; another isol would have to claim the name first.
    let existing = |rec: &BoxRecord| rec.cgroup_dirs().into_iter().find(|d| d.exists());
    let mut clash = existing(&rec);
    {
        let _lock = state.lock()?;
        if let Some(old) = state.read::<BoxRecord>(BOXES, &p.name)? {
            if old.liveness() == BoxState::Dead {
                record::remove_dead(state, &old)?;
                clash = existing(&rec);
            } else {
                bail!(
                    "box {}: the name is in use (remove it with `isol rm {}`, or choose another --name)",
                    p.name,
                    p.name
                );
            }
        }
        if let Some(dir) = clash {
            return Err(
                anyhow::Error::from(isol_ns_core::Error::cgroup_exists(&dir))
                    .context(format!("box {}", p.name)),
            );
        }
        state.write(BOXES, &p.name, &rec)?;
    }
    let unclaim = |state: &StateDir| {
        let _lock = state.lock();
        let _ = state.remove(BOXES, &p.name);
    };
    if detached {
        let log = match open_log(state, &p.name) {
            Ok(x) => x,
            Err(e) => {
                unclaim(state);
                return Err(e);
            }
        };
        let (path, out, err) = log;
        p.cmd
            .stdin(Stdio::Null)
            .stdout(Stdio::Fd(out))
            .stderr(Stdio::Fd(err));
        rec.log = Some(path);
    }
    own_session(&mut p.cmd, !detached);
    // A box lives no longer than its `isol run` or its supervisor: killed with it, it
    // is found dead by the next `isol gc` or `ps`, which removes the rest.
    p.cmd.die_with_parent();
    let spawned = match p.pod_handle.as_mut() {
        // Claims the member name in the pod record under the lock, joins the pod's
        // namespaces, creates the member cgroup beneath the pod's.
        Some(pod) => {
            let cmd = std::mem::replace(&mut p.cmd, Command::new("/"));
            pod.add_member(&p.name, cmd, &p.resources)
        }
        None => p.cmd.spawn(),
    };
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            unclaim(state);
            return Err(pids_hint(e, &p.resources));
        }
    };
    let written = describe(&child, &mut rec).and_then(|()| {
        let _lock = state.lock()?;
        state.write(BOXES, &p.name, &rec)
    });
    if let Err(e) = written {
        let _ = child.kill();
        let _ = child.wait();
        if let Some(cg) = child.cgroup() {
            let _ = cg.destroy();
        }
        unclaim(state);
        return Err(e.into());
    }
    Ok((child, rec))
}

fn open_log(
    state: &StateDir,
    name: &str,
) -> Result<(PathBuf, std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    let dir = state.create_entry_dir(BOXES, name)?;
    let path = dir.join("output");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("create {}", path.display()))?;
    let f2 = f.try_clone().context("dup the log file")?;
    Ok((path, f.into(), f2.into()))
}

/// The record that claims the name while the box is being spawned.
fn placeholder(p: &Prepared, detached: bool) -> BoxRecord {
    BoxRecord {
        name: p.name.clone(),
        process: Proc::me(),
        supervisor: Proc::me(),
        detached,
        pod: p.pod.clone(),
        command: p.argv.clone(),
        hostname: p.hostname.clone(),
        backend: p.backend.to_string(),
        cgroup: p.cgroup.clone(),
        new_namespaces: p.new,
        namespaces: BTreeMap::new(),
        resources: p.resources.clone(),
        created: record::now_rfc3339(),
        exit: None,
        finished: None,
        log: None,
        security: p.cmd.security_policy().cloned(),
        user: p.user,
        env: p.env.clone(),
        inherit_env: p.inherit_env,
        workdir: p.workdir.clone(),
    }
}

/// PATH for a box's command that does not take the caller's environment (docker's).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The `--env` values as `K=V`: a bare `K` takes the caller's value, and is left out
/// when the caller has none (docker's `-e K`).
fn resolve_env(given: &[String]) -> Result<Vec<String>> {
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

/// The command's environment. With `--inherit-env`, the caller's; otherwise PATH, HOME
/// and the caller's TERM alone, so that nothing else of the caller's (tokens, agent
/// sockets, proxies) reaches the box unless `--env` names it. Then `vars` (`K=V`), the
/// later over the earlier.
fn set_env(cmd: &mut Command, inherit: bool, user: Option<BoxUser>, vars: &[String]) -> Result<()> {
    if !inherit {
        cmd.env_clear();
        cmd.env("PATH", DEFAULT_PATH);
        let root = user.is_none_or(|u| u.uid == 0);
        cmd.env("HOME", if root { "/root" } else { "/" });
        if let Some(term) = std::env::var_os("TERM") {
            cmd.env("TERM", term);
        }
    }
    for e in vars {
        if let (k, Some(v)) = opts::env(e)? {
            cmd.env(k, v);
        }
    }
    Ok(())
}

/// `--user UID[:GID]`, checked against the box's user namespace when it has one of its
/// own (`user_ns`): the one isol makes maps one id, the caller's, to 0.
fn box_user(given: Option<&str>, user_ns: bool) -> Result<Option<BoxUser>> {
    let Some(given) = given else {
        return Ok(None);
    };
    let (uid, gid) = opts::user(given)?;
    if user_ns && (uid != 0 || gid.is_some_and(|g| g != 0)) {
        bail!(
            "user: {given} does not exist in the box's user namespace, which maps only root (0) to you; drop --user or use --user 0"
        );
    }
    Ok(Some(BoxUser { uid, gid }))
}

fn set_user(cmd: &mut Command, u: BoxUser) {
    cmd.uid(u.uid);
    if let Some(g) = u.gid {
        cmd.gid(g);
    }
}

/// Fills in what only the running box can tell: its process, persisted namespaces,
/// cgroup. (Its other namespaces are read from the process when asked.)
fn describe(child: &Child, rec: &mut BoxRecord) -> isol_ns_core::Result<()> {
    for per in child.persisted() {
        rec.namespaces.insert(
            per.kind.proc_name().to_string(),
            NsInfo {
                inode: per.inode,
                new: rec.new_namespaces.contains(per.kind),
                path: Some(per.path.clone()),
            },
        );
    }
    let cg = child.cgroup().ok_or_else(|| isol_ns_core::Error::Refused {
        what: "record the box".into(),
        reason: "the box has no cgroup".into(),
    })?;
    rec.cgroup = cg.location().clone();
    rec.process = Proc::of(child.pid()).ok_or_else(|| isol_ns_core::Error::Refused {
        what: "record the box".into(),
        reason: format!("its process {} is already gone", child.pid()),
    })?;
    Ok(())
}

/// A fork refused with EAGAIN in a box with a pids limit: the limit is the likely cause,
/// which the kernel's "Resource temporarily unavailable" does not say.
fn pids_hint(e: isol_ns_core::Error, r: &Resources) -> anyhow::Error {
    match (e.raw_os_error(), r.pids.max) {
        (Some(libc::EAGAIN), Some(Limit::Value(max))) => {
            let what = if max == 1 { "process" } else { "processes" };
            anyhow::Error::from(e)
                .context(format!("the box may hold {max} {what}, its init included"))
        }
        _ => e.into(),
    }
}

/// `isol run -d`: fork the supervisor, let it start the box, relay the outcome.
fn detach(state: &StateDir, prep: Prepared, inherited: &[RawFd]) -> Result<u8> {
    let (mut rd, wr) = pipe()?;
    match daemon::fork()? {
        daemon::Forked::Parent(supervisor) => {
            drop(wr);
            // Read up to the NUL that ends the report, not to EOF: the box's init
            // inherits the pipe and keeps it open for the box's life.
            let mut bytes = Vec::new();
            let mut b = [0u8; 1];
            while rd.read(&mut b).context("read the supervisor's report")? == 1 && b[0] != 0 {
                bytes.push(b[0]);
            }
            let msg = String::from_utf8_lossy(&bytes).into_owned();
            let (code, text) = msg.split_once('\n').unwrap_or(("125", &msg));
            let code: u8 = code.trim().parse().unwrap_or(125);
            if code == 0 {
                if let Err(e) = outln!("{text}") {
                    // Whoever started it cannot learn the box's name: it would run on
                    // unseen, so it goes.
                    let _ = crate::boxes::rm(state, &[text.to_string()], true);
                    return Err(e.context(format!("print the name of box {text}; removed it")));
                }
                return Ok(0);
            }
            // A supervisor that failed exits at once: wait for it, so that nothing of
            // the refused box is left when `isol run -d` returns.
            let _ = nix::sys::wait::waitpid(supervisor, None);
            if text.is_empty() {
                bail!("the supervisor of the box ended without a report");
            }
            Err(Reported {
                code,
                message: text.to_string(),
            }
            .into())
        }
        daemon::Forked::Child => {
            drop(rd);
            let code = supervise(state, prep, wr, inherited);
            std::process::exit(code);
        }
    }
}

/// The supervisor: starts the box, reports, waits, records the exit status. Once the
/// box runs it closes the fds its caller had left open to isol (`inherited`).
fn supervise(
    state: &StateDir,
    prep: Prepared,
    mut report: std::fs::File,
    inherited: &[RawFd],
) -> i32 {
    if let Err(e) = daemon::detach_stdio() {
        let _ = write!(report, "125\n{}\0", crate::chain(&e));
        return 125;
    }
    let name = prep.name.clone();
    // Signals to the supervisor go to the box, as a foreground isol's do; it goes on
    // waiting, and records how the box ended.
    let forwarder = match Forwarder::install() {
        Ok(f) => f,
        Err(e) => {
            let _ = write!(report, "125\n{}\0", crate::chain(&e));
            return 125;
        }
    };
    let (mut child, _rec) = match start(state, prep, true) {
        Ok(x) => x,
        Err(e) => {
            let _ = write!(report, "{}\n{}\0", crate::exit_code(&e), crate::chain(&e));
            return 125;
        }
    };
    let _ = write!(report, "0\n{name}\0");
    drop(report);
    daemon::close_inherited(inherited);
    let status = match forwarder.wait(&mut child) {
        Ok(s) => s,
        Err(_) => return 125,
    };
    // What the command left behind (a box without a pid namespace of its own, whose
    // processes its end does not take along) goes with it, as under a foreground isol.
    if let Some(cg) = child.cgroup() {
        // A frozen task cannot die until thawed.
        let _ = cg.thaw();
        let _ = cg.kill();
    }
    let oom = oom_killed(&child);
    let Ok(_lock) = state.lock() else { return 125 };
    // The record may be gone (`isol rm -f`): then there is nothing to update.
    if let Ok(Some(mut rec)) = state.read::<BoxRecord>(BOXES, &name) {
        if rec.supervisor == Proc::me() {
            rec.exit = Some(Exit::of(status, oom));
            rec.finished = Some(record::now_rfc3339());
            let _ = state.write(BOXES, &name, &rec);
        }
    }
    0
}

/// Whether the command runs hardened (a policy, not privileged).
fn hardened(cmd: &Command) -> bool {
    cmd.security_policy().is_some_and(|p| !p.privileged)
}

/// The caller's terminal, when a foreground hardened box's stdin is one: such a box has
/// a devpts of its own at /dev/pts, where the terminal's name (/dev/pts/N, the host's)
/// finds nothing, so `ttyname` fails (`tty`, sudo, ssh prompts). Bound at /dev/console,
/// as docker and runc put a container's terminal, the same node is there to find.
fn console(cmd: &Command, a: &RunArgs) -> Option<PathBuf> {
    if !hardened(cmd) || a.detach || !nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
        return None;
    }
    let tty = std::fs::read_link("/proc/self/fd/0").ok()?;
    let console = Path::new("/dev/console");
    let there = a.rootfs.is_some() || console.exists();
    (tty.starts_with("/dev/pts/") && there).then_some(tty)
}

/// A hardened box's command gets a session of its own: in the caller's, a `kill(0)`
/// inside would reach the caller's process group (a script running isol, its other
/// commands), and `/dev/tty` the caller's terminal even with stdio redirected. Not when
/// its stdin is the caller's terminal, which it is given to work with (job control,
/// prompts on /dev/tty) and holds anyway.
fn own_session(cmd: &mut Command, stdin_inherited: bool) {
    let on_terminal = stdin_inherited && nix::unistd::isatty(std::io::stdin()).unwrap_or(false);
    if hardened(cmd) && !on_terminal {
        cmd.new_session();
    }
}

fn pipe() -> Result<(std::fs::File, std::fs::File)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe2")?;
    Ok((r.into(), w.into()))
}

/// `isol exec NAME -- CMD…`.
pub fn exec(
    state: &StateDir,
    name: &str,
    env: &[String],
    workdir: Option<&Path>,
    user: Option<&str>,
    command: &[String],
) -> Result<u8> {
    let rec = record::load(state, name)?;
    match rec.state() {
        BoxState::Running => {}
        // Its command would join the frozen cgroup and wait there, signals and all.
        BoxState::Frozen => bail!("box {name} is frozen: thaw it first (isol thaw {name})"),
        s => bail!("box {name} is {s}: exec needs a running box"),
    }
    let (program, args) = command.split_first().context("no command given")?;
    let mut cmd = Command::new(program);
    cmd.args(args);
    // The box's environment and --workdir, then exec's own (docker exec's way).
    let env: Vec<String> = rec.env.iter().cloned().chain(resolve_env(env)?).collect();
    // The box's --user unless exec names another.
    let user = match user {
        Some(u) => box_user(Some(u), rec.new_namespaces.contains(NamespaceKind::User))?,
        None => rec.user,
    };
    set_env(&mut cmd, rec.inherit_env, user, &env)?;
    if let Some(w) = workdir.or(rec.workdir.as_deref()) {
        cmd.current_dir(w);
    }
    // As hardened as the box, as its user unless told (docker exec's defaults). The
    // masked paths are already in the box's mount namespace, which the command joins.
    if let Some(policy) = &rec.security {
        cmd.security(policy.clone());
    }
    if let Some(u) = user {
        set_user(&mut cmd, u);
    }
    own_session(&mut cmd, true);
    // Join every namespace in which the box differs from us. The handles are opened
    // through the box's pid; the check below that the process is still the box's
    // (same start time) makes them the box's.
    for kind in NamespaceKind::ALL {
        let ours = match NsHandle::of_pid(std::process::id(), kind, false) {
            Ok(h) => h,
            // A kind this kernel lacks (time before 5.6).
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        let h = NsHandle::of_pid(rec.process.pid, kind, true)?;
        if h.inode() != ours.inode() {
            cmd.join(h);
        }
    }
    if !rec.process.alive() {
        bail!("box {name} ended while isol was joining it");
    }
    let cg = rec.open_cgroup()?;
    cmd.cgroup(CgroupSpec::Existing(Arc::from(cg)));
    let forwarder = Forwarder::install()?;
    let mut child = cmd.spawn().map_err(|e| pids_hint(e, &rec.resources))?;
    let status = forwarder.wait(&mut child)?;
    Ok(shell_status(status))
}
