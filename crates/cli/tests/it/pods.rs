//! `isol pod …` and `isol run --pod`: members share the pod's net, ipc and uts
//! namespaces, keep their own pid namespace and cgroup, and `pod rm -f` leaves nothing.

use serde::Deserialize;

use crate::common::{alive, eventually, Env};

#[derive(Debug, Deserialize)]
struct PodRow {
    name: String,
    state: String,
    shared: Vec<String>,
    members: Vec<String>,
}

#[test]
fn pod_members_share_net_but_not_pid_and_rm_force_leaves_nothing() {
    let Some(env) = Env::new("pod_members_share_net_but_not_pid_and_rm_force_leaves_nothing")
    else {
        return;
    };
    let before = env.snapshot();
    assert_eq!(env.pod_create("pw", &["--memory", "128M"]).ok(), "pw\n");
    // Members: --pod, no --cgroup-parent (the pod's cgroup is their parent).
    for m in ["m1", "m2"] {
        let out = env.isol(&["run", "-d", "--pod", "pw", "--name", m, "--", "sleep", "60"]);
        assert_eq!(out.stdout, format!("{m}\n"), "{out:?}");
    }
    let rows: Vec<PodRow> =
        serde_json::from_value(env.isol(&["pod", "ls", "--json"]).json()).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].name, "pw");
    assert_eq!(rows[0].state, "ok");
    assert_eq!(rows[0].shared, ["ipc", "uts", "net"]);
    assert_eq!(rows[0].members, ["m1", "m2"]);
    let ps = env.isol(&["ps", "--json"]).json();
    for r in ps.as_array().unwrap() {
        assert_eq!(r["pod"], "pw");
        let cg = r["cgroup"].as_str().unwrap();
        assert!(
            cg.ends_with(&format!("/isol-pod-pw/{}", r["name"].as_str().unwrap())),
            "{cg}"
        );
    }
    let ns = |m: &str, kind: &str| {
        env.isol(&[
            "exec",
            m,
            "--",
            "readlink",
            &format!("/proc/self/ns/{kind}"),
        ])
        .ok()
    };
    let pod = env.isol(&["pod", "inspect", "pw", "--json"]).json();
    let pod_net = format!("net:[{}]\n", pod["namespaces"]["net"]["inode"]);
    assert_eq!(ns("m1", "net"), pod_net);
    assert_eq!(ns("m2", "net"), pod_net);
    assert_ne!(
        ns("m1", "pid"),
        ns("m2", "pid"),
        "each member has its own pid namespace"
    );
    // Without -f a pod with running members stays.
    let out = env.isol(&["pod", "rm", "pw"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    env.isol(&["pod", "rm", "-f", "pw"]).ok();
    assert_eq!(env.isol(&["ps", "--json"]).json(), serde_json::json!([]));
    eventually("nothing is left", || env.snapshot() == before);
}

#[test]
fn a_pod_whose_pid_holder_died_says_so_and_refuses_members() {
    let Some(env) = Env::new("a_pod_whose_pid_holder_died_says_so_and_refuses_members") else {
        return;
    };
    let before = env.snapshot();
    assert_eq!(env.pod_create("pq", &["--share", "pid,net"]).ok(), "pq\n");
    let inspect = env.isol(&["pod", "inspect", "pq", "--json"]).json();
    assert_eq!(inspect["state"], "ok");
    let holder = inspect["holder_pid"].as_u64().expect("a holder") as u32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(holder as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually("the holder is gone", || !alive(holder));
    let rows: Vec<PodRow> =
        serde_json::from_value(env.isol(&["pod", "ls", "--json"]).json()).unwrap();
    assert_eq!(rows[0].state, "holder-gone", "{rows:?}");
    let table = env.isol(&["pod", "ls"]).ok();
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("NAME") && header.contains("STATE"),
        "{table}"
    );
    let row = table.lines().nth(1).unwrap();
    assert!(
        row.starts_with("pq ") && row.contains(" holder gone "),
        "{table}"
    );
    assert_eq!(
        env.isol(&["pod", "inspect", "pq", "--json"]).json()["state"],
        "holder-gone"
    );
    let text = env.isol(&["pod", "inspect", "pq"]).ok();
    assert!(
        text.lines().any(|l| l.starts_with("state:")
            && l.contains("holder gone")
            && l.contains("isol pod rm -f pq")),
        "{text}"
    );
    // A member is refused in one line that names the way out, and leaves nothing.
    let out = env.isol(&["run", "--pod", "pq", "--name", "late", "--", "echo", "hi"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert_eq!(out.stdout, "", "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(
        out.stderr.contains("pid namespace ended with its holder")
            && out.stderr.contains("isol pod rm -f pq"),
        "{out:?}"
    );
    assert_eq!(env.isol(&["ps", "--json"]).json(), serde_json::json!([]));
    let pod = env.isol(&["pod", "inspect", "pq", "--json"]).json();
    assert_eq!(pod["members"], serde_json::json!([]));
    assert!(
        env.cgroup_dirs().iter().all(|d| !d.ends_with("late")),
        "{:?}",
        env.cgroup_dirs()
    );
    env.isol(&["pod", "rm", "-f", "pq"]).ok();
    eventually("nothing is left", || env.snapshot() == before);
}

/// A pod's holder is pid 1 of a shared pid namespace, and any member reads its
/// /proc/1/mountinfo (no ptrace check guards it): the holder's mount namespace holds
/// one empty read-only tmpfs, nothing of the host's (the state directory's pod files
/// among them). Its root link stays closed to the member.
#[test]
fn a_pods_holder_shows_its_members_no_host_mount() {
    let Some(env) = Env::new("a_pods_holder_shows_its_members_no_host_mount") else {
        return;
    };
    env.pod_create("mnts", &["--share", "net,pid"]).ok();
    let probe = "cat /proc/1/mountinfo; readlink /proc/1/root || echo root-closed";
    let out = env.isol(&["run", "--pod", "mnts", "--", "/bin/sh", "-c", probe]);
    env.isol(&["pod", "rm", "-f", "mnts"]).ok();
    let out = out.ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let fields: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!((fields[4], fields[8]), ("/", "tmpfs"), "{out}");
    assert!(fields[5].starts_with("ro,"), "{out}");
    assert_eq!(lines[1], "root-closed");
    assert!(
        !out.contains(&env.mark()),
        "the state directory shows: {out}"
    );
}
