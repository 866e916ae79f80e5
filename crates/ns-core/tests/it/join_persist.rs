//! Joining namespaces (by file, by pidfd) and persisting them for tools isol did not
//! write: `nsenter` (util-linux or busybox) and `ip netns exec` (iproute2).

use std::path::PathBuf;

use isol_ns_core::spawn::{Child, ExitStatus};
use isol_ns_core::{NamespaceKind, NamespacePlan, NamespaceSet};
use isol_testkit::require_root;

use crate::common::{mountinfo, ns_id, output, run_ok, sh, which};

fn sleeper(hostname: &str) -> Child {
    let mut cmd = sh("exec sleep 30");
    cmd.namespaces(NamespacePlan::container())
        .hostname(hostname);
    cmd.spawn().unwrap()
}

fn stop(mut child: Child) {
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap(), ExitStatus::Signaled(libc::SIGKILL));
}

#[test]
fn joined_namespaces_are_the_targets() {
    if !require_root("joined_namespaces_are_the_targets") {
        return;
    }
    let _serial = crate::common::serial();
    let target = sleeper("isol-target");
    // By namespace file.
    let mut cmd =
        sh("cat /proc/sys/kernel/hostname; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '");
    cmd.join(target.namespace(NamespaceKind::Uts).unwrap())
        .join(target.namespace(NamespaceKind::Net).unwrap());
    let child = cmd.spawn().unwrap();
    let pid = child.pid().to_string();
    for kind in [NamespaceKind::Uts, NamespaceKind::Net] {
        assert_eq!(
            ns_id(&pid, kind).1,
            target.namespace(kind).unwrap().inode(),
            "{kind} joined"
        );
    }
    assert_eq!(
        ns_id(&pid, NamespaceKind::Ipc),
        ns_id("self", NamespaceKind::Ipc),
        "ipc inherited"
    );
    let (st, out, _) = output(child);
    assert_eq!(st, ExitStatus::Exited(0));
    assert_eq!(out, "isol-target\nlo\n");
    // Several kinds at once through a pidfd, including pid: the command lands in the
    // target's pid namespace (as a child of our relay outside it).
    let pidfd = target.pidfd().try_clone_to_owned().unwrap();
    let kinds = NamespaceSet::from_iter([
        NamespaceKind::Uts,
        NamespaceKind::Ipc,
        NamespaceKind::Net,
        NamespaceKind::Pid,
    ]);
    let mut plan = NamespacePlan::none();
    plan.join_process(pidfd, kinds);
    let mut cmd = sh("cat /proc/sys/kernel/hostname; echo $$; sleep 0.3");
    cmd.namespaces(plan);
    let child = cmd.spawn().unwrap();
    for kind in kinds.iter() {
        assert_eq!(
            child.namespace(kind).unwrap().inode(),
            target.namespace(kind).unwrap().inode(),
            "{kind} joined via pidfd"
        );
    }
    let (st, out, _) = output(child);
    assert_eq!(st, ExitStatus::Exited(0));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("isol-target"));
    let inner_pid: u32 = lines.next().unwrap().parse().unwrap();
    assert!(
        inner_pid > 1 && inner_pid < 100,
        "a pid of the target's namespace: {inner_pid}"
    );
    stop(target);
}

#[test]
fn persisted_namespaces_outlive_their_processes_and_work_with_nsenter_and_ip() {
    if !require_root("persisted_namespaces_outlive_their_processes_and_work_with_nsenter_and_ip") {
        return;
    }
    let _serial = crate::common::serial();
    let before = mountinfo();
    let name = format!("isol-test-{}-net", std::process::id());
    let netns_dir = PathBuf::from("/run/netns");
    let made_dir = !netns_dir.exists();
    std::fs::create_dir_all(&netns_dir).unwrap();
    let net_path = netns_dir.join(&name);
    let dir = crate::common::tempdir("persist");
    let uts_path = dir.path().join("uts");
    let mut cmd = sh("exec sleep 30");
    cmd.namespaces(NamespacePlan::container())
        .hostname("isol-kept")
        .persist(NamespaceKind::Net, &net_path)
        .persist(NamespaceKind::Uts, &uts_path);
    let child = cmd.spawn().unwrap();
    let net_inode = child.namespace(NamespaceKind::Net).unwrap().inode();
    let persisted = child.persisted().to_vec();
    let during = mountinfo();
    assert_eq!(
        during.len(),
        before.len() + 2,
        "two nsfs bind mounts: {during:?}"
    );
    assert!(
        during.iter().all(|l| l.contains(" - nsfs ")) || !before.is_empty(),
        "{during:?}"
    );
    assert_eq!(
        persisted
            .iter()
            .map(|p| (p.kind, p.path.clone()))
            .collect::<Vec<_>>(),
        [
            (NamespaceKind::Net, net_path.clone()),
            (NamespaceKind::Uts, uts_path.clone())
        ]
    );
    stop(child);
    // The process is gone; the namespaces live on in the bind mounts.
    let net = persisted[0].open().unwrap();
    assert_eq!(net.inode(), net_inode);
    if let Some(nsenter) = which("nsenter") {
        let out = run_ok(isol_ns_core::spawn::Command::new(&nsenter)
            .arg(format!("--uts={}", uts_path.display()))
            .arg(format!("--net={}", net_path.display()))
            .args(["/bin/sh", "-c", "cat /proc/sys/kernel/hostname; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"])
            .stdout(isol_ns_core::Stdio::Piped));
        assert_eq!(
            out, "isol-kept\nlo\n",
            "nsenter into the persisted namespaces"
        );
    } else {
        eprintln!(
            "nsenter is not installed here; checked the persisted files with isol's own join only"
        );
    }
    let ip_has_netns = which("ip").is_some_and(|ip| {
        std::process::Command::new(ip)
            .args(["netns", "list"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if ip_has_netns {
        let out = std::process::Command::new(which("ip").unwrap())
            .args(["netns", "exec", &name, "cat", "/proc/net/dev"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip netns exec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let devs: Vec<&str> = text
            .lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .map(str::trim)
            .collect();
        assert_eq!(devs, ["lo"], "ip netns exec {name}: {text}");
    } else {
        eprintln!("ip netns is not available here (busybox ip); skipped that tool");
    }
    // isol joins the persisted files too.
    let mut cmd = sh("cat /proc/sys/kernel/hostname");
    cmd.join(persisted[1].open().unwrap()).join(net);
    assert_eq!(run_ok(&mut cmd), "isol-kept\n");
    for p in persisted {
        p.release().unwrap();
    }
    assert!(!net_path.exists() && !uts_path.exists());
    if made_dir {
        let _ = std::fs::remove_dir(&netns_dir);
    }
    assert_eq!(mountinfo(), before, "released: no bind mount left");
}

#[test]
fn new_namespaces_made_inside_a_joined_user_namespace_belong_to_it() {
    if !require_root("new_namespaces_made_inside_a_joined_user_namespace_belong_to_it") {
        return;
    }
    let _serial = crate::common::serial();
    let mut owner = sh("exec sleep 30");
    owner.user_namespace(isol_ns_core::namespace::UserNs::range(200000, 65536));
    let owner = owner.spawn().unwrap();
    let user = owner.namespace(NamespaceKind::User).unwrap();
    let user_inode = user.inode();
    // Join its user namespace, then unshare new uts and net namespaces inside it.
    let mut cmd = sh("cat /proc/sys/kernel/hostname; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; sleep 0.3");
    cmd.join(user)
        .new_namespaces(NamespaceSet::from_iter([
            NamespaceKind::Uts,
            NamespaceKind::Net,
        ]))
        .hostname("in-joined-user");
    let child = cmd.spawn().unwrap();
    let pid = child.pid().to_string();
    assert_eq!(
        ns_id(&pid, NamespaceKind::User).1,
        user_inode,
        "user joined"
    );
    assert_ne!(
        ns_id(&pid, NamespaceKind::Uts),
        ns_id("self", NamespaceKind::Uts),
        "uts new"
    );
    let (st, out, err) = output(child);
    assert_eq!(st, ExitStatus::Exited(0), "{err}");
    assert_eq!(out, "in-joined-user\nlo\n");
    // A new pid namespace inside a joined user namespace is refused up front.
    let mut cmd = sh("true");
    cmd.join(owner.namespace(NamespaceKind::User).unwrap())
        .new_namespaces(NamespaceSet::from_iter([NamespaceKind::Pid]));
    assert!(matches!(
        cmd.spawn(),
        Err(isol_ns_core::Error::Invalid { .. })
    ));
    stop(owner);
}
