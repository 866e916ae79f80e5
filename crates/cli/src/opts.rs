//! The second parsing stage: clap's strings become checked library types. Every check
//! here is the library's (`parse_size`, `Resources::validate`, `NamespaceSet::from_str`,
//! `IoDeviceLimit::parse`, `state::check_name`); this module only says which flag feeds
//! which field, and splits the few compound flags (`--bind`, `--share`, `--user`).

use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{anyhow, bail, Context, Result};
use isol_ns_core::resources::IoDeviceLimit;
use isol_ns_core::units::{parse_cpus, parse_size, CpuList, Limit};
use isol_ns_core::{
    CgroupLocation, CgroupPath, Error, NamespaceKind, NamespaceSet, Parent, Resources,
};

use crate::cli::LimitArgs;

/// `--memory` and friends → `Resources`, validated.
pub fn resources(l: &LimitArgs) -> Result<Resources> {
    let mut r = Resources::default();
    if let Some(v) = &l.memory {
        r.memory.max = Some(parse_size("memory", v)?);
    }
    if let Some(v) = &l.memory_high {
        r.memory.high = Some(parse_size("memory-high", v)?);
    }
    if let Some(v) = &l.memory_swap {
        r.memory.swap_max = Some(parse_size("memory-swap", v)?);
    }
    if let Some(v) = &l.cpus {
        let max = parse_cpus("cpus", v)?;
        // More than the machine has would read as a limit and be none (docker refuses it
        // too).
        let online = std::fs::read_to_string("/sys/devices/system/cpu/online")
            .ok()
            .and_then(|t| CpuList::parse("online cpus", t.trim()).ok())
            .map_or(0, |l| l.iter().count() as u64);
        if let Limit::Value(quota) = max.quota {
            let n = online;
            if n > 0 && quota > n * max.period {
                return Err(Error::invalid(
                    "cpus",
                    v,
                    format!("{v} cpus is more than this machine's {n}: give at most {n}, or max"),
                )
                .into());
            }
        }
        r.cpu.max = Some(max);
    }
    if let Some(v) = &l.cpu_weight {
        r.cpu.weight = Some(number("cpu-weight", v)?);
    }
    if let Some(v) = &l.cpuset_cpus {
        r.cpuset.cpus = Some(CpuList::parse("cpuset-cpus", v)?);
    }
    if let Some(v) = &l.cpuset_mems {
        r.cpuset.mems = Some(CpuList::parse("cpuset-mems", v)?);
    }
    if let Some(v) = &l.pids {
        r.pids.max = Some(if v.trim().eq_ignore_ascii_case("max") {
            Limit::Max
        } else {
            Limit::Value(number("pids", v)?)
        });
    }
    if let Some(v) = &l.io_weight {
        r.io.weight = Some(number("io-weight", v)?);
    }
    for v in &l.io_max {
        r.io.devices.push(IoDeviceLimit::parse(v)?);
    }
    r.validate()?;
    Ok(r)
}

fn number(field: &str, v: &str) -> Result<u64> {
    v.trim()
        .parse::<u64>()
        .map_err(|_| Error::invalid(field, v, format!("{v:?} is not a whole number")).into())
}

/// `--ns LIST`.
pub fn namespaces(list: &str) -> Result<NamespaceSet> {
    Ok(NamespaceSet::from_str(list)?)
}

/// `--cgroup-parent`: none → `Own`; one plain path → `Path`; `HIER:PATH` pairs → `At`.
pub fn cgroup_parent(values: &[String]) -> Result<Parent> {
    match values {
        [] => Ok(Parent::Own),
        [one] if one.starts_with('/') || !one.contains(':') => {
            Ok(Parent::Path(absolute_cgroup(one, one)?))
        }
        many => {
            let mut loc = CgroupLocation::default();
            for v in many {
                let (key, path) = v.split_once(':').filter(|(k, _)| !k.is_empty()).ok_or_else(|| {
                    Error::invalid(
                        "cgroup-parent",
                        v,
                        format!("{v:?} is not HIERARCHY:PATH (give one plain path, or HIERARCHY:PATH once per hierarchy)"),
                    )
                })?;
                if loc
                    .0
                    .insert(key.to_string(), absolute_cgroup(v, path)?)
                    .is_some()
                {
                    return Err(Error::invalid(
                        "cgroup-parent",
                        v,
                        format!("hierarchy {key:?} is given twice"),
                    )
                    .into());
                }
            }
            Ok(Parent::At(loc))
        }
    }
}

/// A `--cgroup-parent` path (`path`, given as `value`): from the hierarchy's root, so it
/// must say so with a leading `/` (a relative one could as well mean beneath isol's own
/// cgroup, which is where boxes go without the flag).
fn absolute_cgroup(value: &str, path: &str) -> Result<CgroupPath> {
    if !path.starts_with('/') {
        return Err(Error::invalid(
            "cgroup-parent",
            value,
            format!("{path:?} is not absolute: a cgroup parent is a path from its hierarchy's root, as /proc/self/cgroup shows them (write /{path}; without the flag the box goes beneath isol's own cgroup)"),
        )
        .into());
    }
    Ok(CgroupPath::new(path)?)
}

/// `--bind SRC:DST[:ro]`.
pub fn bind(v: &str) -> Result<isol_ns_core::namespace::Mount> {
    use isol_ns_core::namespace::Mount;
    let bad = |why: &str| Error::invalid("bind", v, format!("{v:?} {why}"));
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, ro) = match parts[..] {
        [src, dst] => (src, dst, false),
        [src, dst, mode] if mode.eq_ignore_ascii_case("ro") => (src, dst, true),
        [src, dst, mode] if mode.eq_ignore_ascii_case("rw") => (src, dst, false),
        [_, _, mode] => return Err(bad(&format!("has mode {mode:?}: ro or rw")).into()),
        _ => {
            return Err(bad("is not SRC:DST or SRC:DST:ro (paths with ':' cannot be bound)").into())
        }
    };
    if src.is_empty() || dst.is_empty() {
        return Err(bad("is not SRC:DST or SRC:DST:ro").into());
    }
    let m = Mount::bind(src, dst);
    Ok(if ro { m.read_only() } else { m })
}

/// `--user UID[:GID]`.
pub fn user(v: &str) -> Result<(u32, Option<u32>)> {
    let bad = || Error::invalid("user", v, format!("{v:?} is not UID or UID:GID (numbers)"));
    let (u, g) = match v.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (v, None),
    };
    let uid = u.parse().map_err(|_| bad())?;
    let gid = g.map(|g| g.parse().map_err(|_| bad())).transpose()?;
    Ok((uid, gid))
}

/// `--env K=V`, or `--env K` for the caller's value of K (`None`).
pub fn env(v: &str) -> Result<(String, Option<String>)> {
    let (k, val) = match v.split_once('=') {
        Some((k, val)) => (k, Some(val.to_string())),
        None => (v, None),
    };
    if k.is_empty() {
        let why = format!("{v:?} is not K=V or K: the variable's name is empty");
        return Err(Error::invalid("env", v, why).into());
    }
    Ok((k.to_string(), val))
}

/// What `--share KIND=TARGET` points at.
#[derive(Debug, PartialEq, Eq)]
pub enum ShareTarget {
    /// A namespace file.
    File(PathBuf),
    /// The namespace of a host process.
    Pid(u32),
    /// The namespace of a box.
    Box(String),
}

/// `--share KIND=TARGET`.
pub fn share(v: &str) -> Result<(NamespaceKind, ShareTarget)> {
    let (kind, target) = v.split_once('=').ok_or_else(|| {
        Error::invalid(
            "share",
            v,
            format!("{v:?} is not KIND=TARGET (e.g. net=/run/netns/x, net=pid:1234, net=box:web)"),
        )
    })?;
    let kind: NamespaceKind = kind.parse()?;
    let target = if let Some(pid) = target.strip_prefix("pid:") {
        ShareTarget::Pid(
            pid.parse()
                .map_err(|_| Error::invalid("share", v, format!("{pid:?} is not a process id")))?,
        )
    } else if let Some(name) = target.strip_prefix("box:") {
        isol_ns_core::state::check_name(name)?;
        ShareTarget::Box(name.to_string())
    } else if target.is_empty() {
        bail!(Error::invalid(
            "share",
            v,
            "the target is empty (a namespace file, pid:N or box:NAME)"
        ));
    } else {
        ShareTarget::File(PathBuf::from(target))
    };
    Ok((kind, target))
}

/// A signal by name (`TERM`, `SIGTERM`) or number.
pub fn signal(v: &str) -> Result<nix::sys::signal::Signal> {
    use nix::sys::signal::Signal;
    let t = v.trim();
    if let Ok(n) = t.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| anyhow!("signal: {n} is not a signal number"));
    }
    let up = t.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    Signal::from_str(&name).with_context(|| {
        format!("signal: unknown signal {v:?} (use e.g. TERM, KILL, HUP or a number)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_become_resources() {
        let l = LimitArgs {
            memory: Some("64M".into()),
            pids: Some("64".into()),
            cpus: Some("0.5".into()),
            io_max: vec!["8:0:rbps=1M".into()],
            ..Default::default()
        };
        let r = resources(&l).unwrap();
        assert_eq!(r.memory.max, Some(Limit::Value(64 << 20)));
        assert_eq!(r.pids.max, Some(Limit::Value(64)));
        assert_eq!(r.cpu.max.unwrap().quota, Limit::Value(50_000));
        assert_eq!(r.io.devices[0].rbps, Some(Limit::Value(1 << 20)));
        let bad = LimitArgs {
            memory: Some("12XB".into()),
            ..Default::default()
        };
        assert_eq!(
            resources(&bad).unwrap_err().to_string(),
            "memory: unknown unit \"XB\" in \"12XB\" (use K, M, G, T, P or E)"
        );
        let bad = LimitArgs {
            cpu_weight: Some("0".into()),
            ..Default::default()
        };
        assert!(resources(&bad)
            .unwrap_err()
            .to_string()
            .starts_with("cpu.weight:"));
    }

    #[test]
    fn parents() {
        assert_eq!(cgroup_parent(&[]).unwrap(), Parent::Own);
        assert_eq!(
            cgroup_parent(&["/a/b".into()]).unwrap(),
            Parent::Path(CgroupPath::new("/a/b").unwrap())
        );
        let Parent::At(loc) =
            cgroup_parent(&["memory:/x/y".into(), "cpu,cpuacct:/z".into()]).unwrap()
        else {
            panic!("pairs make a location")
        };
        assert_eq!(loc.get("memory").unwrap().as_str(), "/x/y");
        assert_eq!(loc.get("cpu,cpuacct").unwrap().as_str(), "/z");
        assert!(cgroup_parent(&["memory:/a".into(), "memory:/b".into()]).is_err());
        assert!(cgroup_parent(&["/a/../b".into()]).is_err());
    }

    #[test]
    fn compound_flags() {
        let m = bind("/data:/mnt:ro").unwrap();
        assert!(m.read_only);
        assert_eq!(m.target, PathBuf::from("/mnt"));
        assert!(bind("/data").is_err());
        // A mode is ro or rw, in any case; anything else is refused, not taken as part of
        // the destination (which made a writable mount at "/mnt:bogus").
        assert!(bind("/data:/mnt:RO").unwrap().read_only);
        assert!(!bind("/data:/mnt:rw").unwrap().read_only);
        let err = bind("/data:/mnt:bogus").unwrap_err().to_string();
        assert!(
            err.contains("\"bogus\"") && err.contains("ro or rw"),
            "{err}"
        );
        assert!(bind("/a:/b:c:ro").is_err());
        assert!(bind(":/mnt").is_err() && bind("/data::ro").is_err());
        assert_eq!(user("1000:100").unwrap(), (1000, Some(100)));
        assert_eq!(user("7").unwrap(), (7, None));
        assert!(user("bob").is_err());
        assert_eq!(env("A=b=c").unwrap(), ("A".into(), Some("b=c".into())));
        assert_eq!(env("A=").unwrap(), ("A".into(), Some(String::new())));
        assert_eq!(env("A").unwrap(), ("A".into(), None));
        assert!(env("=x").is_err());
        assert!(env("").is_err());
        assert_eq!(
            share("net=box:web").unwrap(),
            (NamespaceKind::Net, ShareTarget::Box("web".into()))
        );
        assert_eq!(
            share("uts=pid:12").unwrap(),
            (NamespaceKind::Uts, ShareTarget::Pid(12))
        );
        assert_eq!(
            share("ipc=/run/x").unwrap().1,
            ShareTarget::File("/run/x".into())
        );
        assert!(share("bogus=pid:1").is_err());
        assert!(share("net").is_err());
        assert_eq!(signal("TERM").unwrap(), nix::sys::signal::Signal::SIGTERM);
        assert_eq!(
            signal("sigkill").unwrap(),
            nix::sys::signal::Signal::SIGKILL
        );
        assert_eq!(signal("1").unwrap(), nix::sys::signal::Signal::SIGHUP);
        assert!(signal("NOPE").is_err());
        assert!(namespaces("mnt,bogus").is_err());
    }
}
