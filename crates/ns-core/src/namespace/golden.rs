//! Golden tests of the child's steps: a plan is recorded into a [`Program`] for a given
//! [`Context`] and a host described here (no privilege needed, nothing is run), and the
//! listing — each step's label and the system call it makes, in order — is compared with
//! the text stored in `golden/NAME.txt`. A step reordered, dropped or changed shows as a
//! difference. `ISOL_BLESS=1 cargo test -p isol-ns-core golden` writes the files again
//! (then read the diff before committing it).

use std::ffi::CStr;
use std::fmt::Write as _;
use std::path::Path;

use nix::mount::MsFlags;

use super::mount::record::HostFiles;
use super::*;
use crate::security::sys::ChildOp;
use crate::spawn::program::{Beneath, Op, Program, Step};

/// A host described by its directories and its read-only places.
struct Host {
    dirs: &'static [&'static str],
    read_only: &'static [&'static str],
}

impl HostFiles for Host {
    fn is_dir(&self, path: &Path) -> bool {
        self.dirs.iter().any(|d| Path::new(d) == path)
    }
    fn writable(&self, path: &Path) -> bool {
        !self.read_only.iter().any(|d| path.starts_with(d))
    }
}

/// A host with `/run`, a devpts at `/dev/pts`, and the directories `/data` and
/// `/usr/share`; `/usr` is mounted read-only.
const HOST: Host = Host {
    dirs: &["/run", "/dev/pts", "/data", "/usr/share"],
    read_only: &["/usr"],
};

fn ctx(new: NamespaceSet, privileged: bool, read_only_host: bool, hardened: bool) -> Context {
    Context {
        new,
        joined: NamespaceSet::EMPTY,
        privileged,
        read_only_host,
        hardened,
    }
}

/// Records every new namespace's steps in the spawn's order, the mount plan's for `host`.
fn listing(plan: &NamespacePlan, ctx: &Context, host: &Host) -> String {
    let mut p = Program::default();
    for ns in plan.new_namespaces() {
        match (&plan.mnt, ns.kind()) {
            (Slot::New(m), NamespaceKind::Mnt) => m.record(ctx, host, &mut p).unwrap(),
            _ => ns.child_steps(ctx, &mut p).unwrap(),
        }
    }
    render(&p)
}

fn render(p: &Program) -> String {
    let mut out = String::new();
    for (list, steps) in [("leader", &p.leader), ("command", &p.command)] {
        for Step { id, op } in steps.iter() {
            let (label, path) = p.label(*id).expect("a step of the program");
            let at = path.display().to_string();
            let at = if at.is_empty() {
                at
            } else {
                format!(" ({at})")
            };
            writeln!(out, "{list:<7}  {label}{at}\n         {}", op_text(op)).unwrap();
        }
    }
    out
}

fn q(s: &CStr) -> String {
    format!("{s:?}")
}

fn opt(s: &Option<std::ffi::CString>) -> String {
    s.as_deref().map_or("NULL".to_string(), q)
}

fn ms_flags(bits: libc::c_ulong) -> String {
    let names = [
        (MsFlags::MS_RDONLY, "MS_RDONLY"),
        (MsFlags::MS_NOSUID, "MS_NOSUID"),
        (MsFlags::MS_NODEV, "MS_NODEV"),
        (MsFlags::MS_NOEXEC, "MS_NOEXEC"),
        (MsFlags::MS_REMOUNT, "MS_REMOUNT"),
        (MsFlags::MS_BIND, "MS_BIND"),
        (MsFlags::MS_MOVE, "MS_MOVE"),
        (MsFlags::MS_REC, "MS_REC"),
        (MsFlags::MS_PRIVATE, "MS_PRIVATE"),
        (MsFlags::MS_STRICTATIME, "MS_STRICTATIME"),
    ];
    let mut left = bits;
    let mut parts: Vec<String> = Vec::new();
    for (f, name) in names {
        if bits & f.bits() != 0 {
            parts.push(name.to_string());
            left &= !f.bits();
        }
    }
    if left != 0 || parts.is_empty() {
        parts.push(format!("{left:#x}"));
    }
    parts.join("|")
}

fn beneath_text(b: &Option<Beneath>) -> String {
    match b {
        Some(b) => format!(
            " beneath {}: in {}, {}",
            q(&b.root),
            q(&b.parent),
            q(&b.name)
        ),
        None => String::new(),
    }
}

/// The system call (or the few) a step makes, with its arguments.
fn op_text(op: &Op) -> String {
    match op {
        Op::Unshare { flags } => {
            let name = match *flags {
                libc::CLONE_NEWCGROUP => "CLONE_NEWCGROUP".to_string(),
                libc::CLONE_NEWTIME => "CLONE_NEWTIME".to_string(),
                other => format!("{other:#x}"),
            };
            format!("unshare({name})")
        }
        Op::TimeReady => "tell the parent; wait for it to write the offsets".into(),
        Op::Sethostname { name } => format!("sethostname({})", q(name)),
        Op::Setdomainname { name } => format!("setdomainname({})", q(name)),
        Op::LoopbackUp => "ioctl(SIOCSIFFLAGS, lo, IFF_UP)".into(),
        Op::Mount {
            src,
            dst,
            fstype,
            flags,
            data,
        } => format!(
            "mount({}, {}, {}, {}, {})",
            opt(src),
            q(dst),
            opt(fstype),
            ms_flags(*flags),
            opt(data)
        ),
        Op::RemountReadOnly { dst } => format!("remount read-only {}", q(dst)),
        Op::BindReadOnly { src, dst } => format!("bind read-only {} at {}", q(src), q(dst)),
        Op::Mkdir {
            path,
            mode,
            beneath,
        } => format!("mkdir({}, {mode:#o}){}", q(path), beneath_text(beneath)),
        Op::Touch { path, beneath } => {
            format!("create empty file {}{}", q(path), beneath_text(beneath))
        }
        Op::Mknod {
            path,
            host,
            dev,
            mode,
        } => format!(
            "mknod({}, S_IFCHR|{mode:#o}, {}:{}), else bind {}",
            q(path),
            libc::major(*dev),
            libc::minor(*dev),
            q(host)
        ),
        Op::Symlink { target, link } => format!("symlink({}, {})", q(target), q(link)),
        Op::PivotRoot { root, pivot: true } => format!("pivot_root into {}", q(root)),
        Op::PivotRoot { root, pivot: false } => {
            format!("move {} onto / and chroot into it", q(root))
        }
        Op::Security(ChildOp::ReadOnly { dst, bind }) => {
            format!("read-only, recursively: {} (bind first: {bind})", q(dst))
        }
        Op::Security(ChildOp::Writable { dst }) => format!("writable again: {}", q(dst)),
        other => format!("{other:?}"),
    }
}

/// Compares `listing`, under a `# about` line, with the stored golden text.
fn check(name: &str, stored: &str, about: &str, listing: String) {
    let mut made = String::new();
    let mut line = String::from("#");
    for word in about.split(' ') {
        if line.len() + 1 + word.len() > 90 {
            made += &line;
            made += "\n";
            line = String::from("#");
        }
        line += " ";
        line += word;
    }
    made += &format!("{line}\n{listing}");
    if std::env::var_os("ISOL_BLESS").is_some() {
        let path = format!(
            "{}/src/namespace/golden/{name}.txt",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::write(path, &made).unwrap();
        return;
    }
    if made == stored {
        return;
    }
    let first = made
        .lines()
        .zip(stored.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(made.lines().count().min(stored.lines().count()));
    panic!(
        "the steps of {name} differ from golden/{name}.txt from line {}:\n--- stored\n{}\n--- recorded now\n{}\n(if the change is meant: ISOL_BLESS=1 cargo test -p isol-ns-core golden, and read the diff)",
        first + 1,
        stored.lines().skip(first).take(6).collect::<Vec<_>>().join("\n"),
        made.lines().skip(first).take(6).collect::<Vec<_>>().join("\n"),
    );
}

#[test]
fn golden_hardened_box_without_rootfs() {
    let mut plan = NamespacePlan::new_kinds(NamespaceSet::CONTAINER);
    plan.uts.new_mut().hostname = Some("box1".into());
    let m = plan.mnt.new_mut();
    m.set_console("/dev/pts/3");
    m.add_mount(Mount::bind("/data", "/data"));
    m.add_mount(Mount::bind("/usr/share", "/share"));
    m.add_mount(Mount::bind("/etc/hosts", "/etc/hosts").read_only());
    m.add_mount(Mount::tmpfs("/scratch", "mode=1777"));
    let ctx = ctx(NamespaceSet::CONTAINER, true, true, true);
    check(
        "hardened_box",
        include_str!("golden/hardened_box.txt"),
        "The default box of root, hardened, in the caller's tree: the host's mounts read-only, a /run and a devpts of its own, the console, a fresh /proc; a writable bind made writable again where the host's source is.",
        listing(&plan, &ctx, &HOST),
    );
}

#[test]
fn golden_rootfs_box() {
    let mut plan = NamespacePlan::new_kinds(NamespaceSet::CONTAINER);
    plan.uts.new_mut().hostname = Some("rooted".into());
    let m = plan.mnt.new_mut();
    m.set_rootfs("/srv/box");
    m.set_console("/dev/pts/3");
    m.add_mount(Mount::bind("/data", "/data"));
    m.add_mount(Mount::bind("/etc/resolv.conf", "/etc/resolv.conf").read_only());
    m.add_mount(Mount::tmpfs("/run", "mode=755"));
    m.add_mount(Mount::tmpfs("/cache", "").read_only());
    let ctx = ctx(NamespaceSet::CONTAINER, true, true, true);
    check(
        "rootfs_box",
        include_str!("golden/rootfs_box.txt"),
        "A hardened box in the rootfs /srv/box: a fresh /proc, a /dev of its own with its nodes made, a fresh read-only sysfs, /tmp, binds and tmpfs mounts beneath the rootfs, then pivot_root.",
        listing(&plan, &ctx, &HOST),
    );
}

#[test]
fn golden_rootfs_in_user_namespace() {
    let kinds: NamespaceSet = [NamespaceKind::User, NamespaceKind::Mnt]
        .into_iter()
        .collect();
    let mut plan = NamespacePlan::new_kinds(kinds);
    *plan.mnt.new_mut() = MntNs::Rootfs(Rootfs {
        tmp: false,
        no_pivot: true,
        ..Rootfs::new("/srv/box")
    });
    let ctx = ctx(kinds, false, false, true);
    check(
        "rootfs_in_user_namespace",
        include_str!("golden/rootfs_in_user_namespace.txt"),
        "A rootfs in a new user namespace, pid and net inherited, no /tmp, no pivot: the caller's /proc and /sys bound (/sys remounted read-only), the device nodes bound read-only from the host's, then MS_MOVE and chroot.",
        listing(&plan, &ctx, &HOST),
    );
}

#[test]
fn golden_privileged_box() {
    let mut plan = NamespacePlan::new_kinds(NamespaceSet::CONTAINER);
    let m = plan.mnt.new_mut();
    m.set_console("/dev/pts/3");
    m.add_mount(Mount::bind("/data", "/data"));
    let ctx = ctx(NamespaceSet::CONTAINER, true, false, false);
    check(
        "privileged_box",
        include_str!("golden/privileged_box.txt"),
        "A privileged box (--privileged) in the caller's tree: the host's mounts stay writable, the caller's /run and devpts stay, a fresh /proc and the console.",
        listing(&plan, &ctx, &HOST),
    );
}

#[test]
fn golden_pod_holder() {
    let kinds: NamespaceSet = "net,ipc,uts,pid,mnt".parse().unwrap();
    let mut plan = NamespacePlan::new_kinds(kinds);
    plan.uts.new_mut().hostname = Some("pod1".into());
    *plan.mnt.new_mut() = MntNs::Empty;
    let ctx = ctx(kinds, true, false, true);
    check(
        "pod_holder",
        include_str!("golden/pod_holder.txt"),
        "A pod's holder: its shared namespaces, and a mount namespace with nothing but an empty read-only tmpfs as its root.",
        listing(&plan, &ctx, &HOST),
    );
}

#[test]
fn golden_uts_net_time_cgroup() {
    let kinds: NamespaceSet = "user,cgroup,time,uts,ipc,net".parse().unwrap();
    let mut plan = NamespacePlan::new_kinds(kinds);
    let uts = plan.uts.new_mut();
    uts.hostname = Some("h".into());
    uts.domainname = Some("example.org".into());
    *plan.time.new_mut() = TimeNs {
        monotonic: ClockOffset::secs(-5),
        boottime: ClockOffset::secs(86400),
    };
    let ctx = ctx(kinds, false, false, false);
    let all = listing(&plan, &ctx, &HOST);
    check(
        "uts_net_time_cgroup",
        include_str!("golden/uts_net_time_cgroup.txt"),
        "No mount namespace: the cgroup and time namespaces unshared by the leader (which waits for the offsets), the names set, lo brought up; a user namespace and an ipc one record nothing.",
        all.clone(),
    );
    // Without lo up, net records nothing.
    plan.net = Slot::New(NetNs { loopback_up: false });
    let lo = "command  bring lo up (lo)\n         ioctl(SIOCSIFFLAGS, lo, IFF_UP)\n";
    assert!(all.contains(lo));
    assert_eq!(listing(&plan, &ctx, &HOST), all.replace(lo, ""));
}
