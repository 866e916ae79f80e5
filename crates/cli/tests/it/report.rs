//! `isol backends` and `isol check`, and the generated help, completions and man page.

use std::process::Command;

fn isol(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_isol"))
        .args(args)
        .output()
        .expect("run isol")
}

/// The subcommands a `--help` lists under `Commands:`, `help` aside.
fn subcommands(args: &[&str]) -> Vec<String> {
    let mut args = args.to_vec();
    args.push("--help");
    let text = String::from_utf8(isol(&args).stdout).unwrap();
    text.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect()
}

#[test]
fn every_command_has_help_with_examples() {
    // Every command isol has, found in its help, so that a new one is checked too; a
    // group (`pod`) through its own commands.
    let mut commands: Vec<Vec<String>> = vec![Vec::new()];
    for c in subcommands(&[]) {
        let nested = subcommands(&[c.as_str()]);
        if nested.is_empty() {
            commands.push(vec![c.clone()]);
        }
        commands.extend(nested.into_iter().map(|n| vec![c.clone(), n]));
    }
    for known in ["run", "exec", "logs", "gc", "man"] {
        assert!(commands.contains(&vec![known.to_string()]), "{known}");
    }
    assert!(commands.contains(&vec!["pod".to_string(), "create".to_string()]));
    for c in &commands {
        let mut args: Vec<&str> = c.iter().map(String::as_str).collect();
        args.push("--help");
        let out = isol(&args);
        assert!(out.status.success(), "{c:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("Examples:"),
            "isol {c:?} --help has no examples:\n{text}"
        );
    }
    let run = String::from_utf8(isol(&["run", "--help"]).stdout).unwrap();
    for documented in [
        "125",
        "126",
        "127",
        "128+N",
        "--memory",
        "--cgroup-parent",
        "--share",
    ] {
        assert!(run.contains(documented), "run --help lacks {documented}");
    }
}

#[test]
fn completions_and_man_page_come_from_the_clap_definitions() {
    let out = isol(&["completions", "bash"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("_isol()") || text.contains("_isol ()"),
        "{text}"
    );
    for sub in ["freeze", "inspect", "--cgroup-parent"] {
        assert!(text.contains(sub), "bash completion lacks {sub}");
    }
    let out = isol(&["completions", "zsh"]);
    assert!(out.status.success() && !out.stdout.is_empty());
    let out = isol(&["man"]);
    assert!(out.status.success());
    let man = String::from_utf8(out.stdout).unwrap();
    assert!(
        man.starts_with(".ie") || man.contains(".TH isol"),
        "{}",
        &man[..200.min(man.len())]
    );
    assert!(man.contains(".TH isol"), "no title header");
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

/// A listing whose reader goes away (`isol check | head -c1`) ends as other Unix tools
/// do, killed by SIGPIPE, not with a Rust panic and its backtrace. The reader here is
/// gone before isol starts: its stdout is a pipe whose read end is already closed.
#[test]
fn a_reader_going_away_ends_a_listing_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    for args in [&["check"][..], &["man"], &["completions", "bash"]] {
        let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        drop(rd);
        let out = Command::new(env!("CARGO_BIN_EXE_isol"))
            .args(args)
            .stdout(Stdio::from(wr))
            .stderr(Stdio::piped())
            .output()
            .expect("run isol");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {:?} {stderr}",
            out.status
        );
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}
