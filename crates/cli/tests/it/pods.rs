//! `isol pod …` and `isol run --pod`: members share the pod's net, ipc and uts
//! namespaces, keep their own pid namespace and cgroup, and `pod rm -f` leaves nothing.

use serde::Deserialize;

use crate::common::{eventually, Env};

#[derive(Debug, Deserialize)]
struct PodRow {
    name: String,
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
