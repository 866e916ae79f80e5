//! The hardening flags of `isol run`, turned into the library's `SecurityPolicy`
//! (docker's defaults unless the flags say otherwise).

use anyhow::Result;
use clap::Args;
use isol_ns_core::security::{Capability, Rlimit, SeccompProfile, SecurityPolicy};

/// How the box is hardened.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Security")]
pub struct SecurityArgs {
    /// Keep every capability isol holds, no seccomp filter, no device rules, nothing
    /// masked, the host's files writable (shown by `isol inspect`). Later --cap-drop and
    /// --ulimit still apply.
    #[arg(long)]
    pub privileged: bool,
    /// Add a capability to docker's default set (CHOWN, NET_ADMIN, …, or all that isol
    /// holds); one isol lacks is refused.
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability (or all).
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Let set-uid programs and file capabilities grant privileges (no no_new_privs).
    #[arg(long = "allow-new-privs")]
    pub allow_new_privs: bool,
    /// The seccomp filter: default, unconfined, or a docker JSON profile.
    #[arg(long, value_name = "default|unconfined|PATH")]
    pub seccomp: Option<String>,
    /// Let the box write the host's files: without --rootfs its root is the host's,
    /// which it sees read-only by default (give it --tmpfs or --bind for what it writes).
    #[arg(long = "writable-host")]
    pub writable_host: bool,
    /// Allow one more device node: /dev/X, or /dev/X:PERMS with PERMS some of r, w and m.
    #[arg(long, value_name = "/dev/X[:PERMS]")]
    pub device: Vec<String>,
    /// A resource limit: NAME=SOFT or NAME=SOFT:HARD (nofile, nproc, core, stack, …).
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
}

/// The policy the flags describe; every bad value is an error naming it.
pub fn policy(a: &SecurityArgs) -> Result<SecurityPolicy> {
    let mut p = if a.privileged {
        SecurityPolicy::privileged()
    } else {
        SecurityPolicy::default()
    };
    capabilities(&mut p, &a.cap_add, &a.cap_drop)?;
    if a.allow_new_privs {
        p.allow_new_privs();
    }
    if a.writable_host {
        p.read_only_host = false;
    }
    if let Some(s) = &a.seccomp {
        p.seccomp(SeccompProfile::parse(s)?);
    }
    for d in &a.device {
        p.device(d)?;
    }
    for u in &a.ulimit {
        p.rlimit(Rlimit::parse(u)?);
    }
    p.validate()?;
    Ok(p)
}

/// `--cap-add` and `--cap-drop` as docker combines them, whatever their order: with
/// `--cap-add all`, every capability but the ones dropped; with `--cap-drop all`, only
/// the ones added; otherwise the starting set without the dropped, then with the added.
fn capabilities(p: &mut SecurityPolicy, add: &[String], drop: &[String]) -> Result<()> {
    let all = |names: &[String]| names.iter().any(|c| c.eq_ignore_ascii_case("all"));
    let named = |names: &[String]| -> Vec<String> {
        names
            .iter()
            .filter(|c| !c.eq_ignore_ascii_case("all"))
            .cloned()
            .collect()
    };
    if all(add) {
        for c in add {
            p.cap_add(c)?;
        }
        for c in named(drop) {
            p.cap_drop(&c)?;
        }
    } else if all(drop) {
        for c in named(drop) {
            c.parse::<Capability>()?;
        }
        p.cap_drop("all")?;
        for c in add {
            p.cap_add(c)?;
        }
    } else {
        for c in drop {
            p.cap_drop(c)?;
        }
        for c in add {
            p.cap_add(c)?;
        }
    }
    Ok(())
}

/// The policy as `isol inspect` prints it: one (label, value) line per setting.
pub fn describe(p: &SecurityPolicy) -> Vec<(&'static str, String)> {
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "none".to_string()
        } else {
            items.join(", ")
        }
    };
    let mut out = vec![(
        "security:",
        if p.privileged {
            "privileged"
        } else {
            "hardened"
        }
        .to_string(),
    )];
    let caps = p
        .capabilities
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>();
    let count = caps.len();
    out.push(("capabilities:", format!("{} ({count})", list(caps))));
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    out.push(("no_new_privs:", yes_no(p.no_new_privs)));
    let seccomp = match &p.seccomp {
        SeccompProfile::Default => {
            "default (docker's allow-list: EPERM, ENOSYS for unknown calls)".to_string()
        }
        SeccompProfile::Unconfined => "unconfined".to_string(),
        SeccompProfile::Docker { path, .. } => format!("profile {}", path.display()),
    };
    out.push(("seccomp:", seccomp));
    let devices = p.devices.iter().map(|d| d.to_string()).collect();
    out.push((
        "devices:",
        if p.devices.is_empty() {
            "all (no device rules)".to_string()
        } else {
            list(devices)
        },
    ));
    let paths =
        |v: &[std::path::PathBuf]| list(v.iter().map(|x| x.display().to_string()).collect());
    out.push(("masked paths:", paths(&p.masked_paths)));
    out.push(("read-only paths:", paths(&p.readonly_paths)));
    out.push((
        "host's files:",
        if p.read_only_host {
            "read-only (without --rootfs)"
        } else {
            "writable"
        }
        .to_string(),
    ));
    out.push((
        "rlimits:",
        list(p.rlimits.iter().map(|r| r.to_string()).collect()),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_ns_core::security::CapSet;

    fn caps(add: &[&str], drop: &[&str]) -> CapSet {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut p = SecurityPolicy::default();
        capabilities(&mut p, &own(add), &own(drop)).unwrap();
        p.capabilities
    }

    #[test]
    fn cap_flags_combine_as_dockers() {
        let set = |names: &[Capability]| names.iter().copied().collect::<CapSet>();
        // Drop all, add one: just that one, in either order of the flags.
        assert_eq!(caps(&["CHOWN"], &["all"]), set(&[Capability::CHOWN]));
        assert_eq!(
            caps(&["chown", "KILL"], &["ALL", "NET_RAW"]),
            set(&[Capability::CHOWN, Capability::KILL])
        );
        // Add all, drop one: everything held but that one.
        let mut held = CapSet::held().unwrap();
        held.remove(Capability::NET_RAW);
        assert_eq!(caps(&["all"], &["NET_RAW"]), held);
        // Otherwise drops, then adds: a capability both dropped and added is kept.
        let mut want = CapSet::docker_default();
        want.remove(Capability::MKNOD);
        want.insert(Capability::NET_ADMIN);
        assert_eq!(caps(&["NET_ADMIN"], &["MKNOD"]), want);
        assert!(caps(&["CHOWN"], &["CHOWN"]).contains(Capability::CHOWN));
        // Every name is checked, even one that does not change the result.
        let mut p = SecurityPolicy::default();
        let bad = vec!["all".to_string(), "CAP_FLY".to_string()];
        assert!(capabilities(&mut p, &[], &bad).is_err());
    }
}
