//! Runs the real `isol` binary the way a person or a script would.

use std::process::Command;

fn isol(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_isol"))
        .args(args)
        .output()
        .expect("run isol")
}

fn host_mode() -> String {
    isol_testkit::host().mode.to_string()
}

#[test]
fn backends_lists_both_plugins_and_the_fit() {
    let out = isol(&["backends"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("cgroup-v1"), "{text}");
    assert!(text.contains("cgroup-v2"), "{text}");
    let mode = host_mode();
    assert!(text.contains(&format!("host: {mode} cgroups")), "{text}");
    let want = if mode == "unified" {
        "cgroup-v2"
    } else {
        "cgroup-v1"
    };
    assert!(text.contains(&format!("isol would use {want}:")), "{text}");
}

#[test]
fn backends_json_is_the_same_as_text() {
    let out = isol(&["backends", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let names: Vec<&str> = v["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cgroup-v1", "cgroup-v2"]);
    assert_eq!(v["mode"], host_mode());
    let want = if host_mode() == "unified" {
        "cgroup-v2"
    } else {
        "cgroup-v1"
    };
    assert_eq!(v["selected"]["name"], want);
    for b in v["backends"].as_array().unwrap() {
        assert!(b["usable"].is_boolean() && b["preferred"].is_boolean());
        assert!(!b["reason"].as_str().unwrap().is_empty());
    }
}

#[test]
fn check_json_describes_the_host() {
    let out = isol(&["check", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["mode"], host_mode());
    assert!(
        v["features"]["clone3"].as_bool().unwrap(),
        "every supported kernel has clone3"
    );
    assert!(v["features"]["pidfd_open"].as_bool().unwrap());
    assert!(!v["hierarchies"].as_array().unwrap().is_empty());
    assert!(v["selected"]["name"].is_string());
    let text = isol(&["check"]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains(&format!("cgroup mode: {}", host_mode())),
        "{text}"
    );
}

#[test]
fn unknown_command_fails_with_usage() {
    let out = isol(&["frobnicate"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
}
