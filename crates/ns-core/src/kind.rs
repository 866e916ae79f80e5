//! The eight kinds of Linux namespace and sets of them.
//!
//! A process is in exactly one namespace of each kind; the kinds are independent of one
//! another. This module names them, maps them to their clone flag and their
//! `/proc/PID/ns` file, and parses the short lists people type (`mnt,pid,net`, `all`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// One kind of namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NamespaceKind {
    /// Mount points (`CLONE_NEWNS`).
    Mnt,
    /// Hostname and domain name (`CLONE_NEWUTS`).
    Uts,
    /// System V IPC and POSIX message queues (`CLONE_NEWIPC`).
    Ipc,
    /// Network devices, addresses, routes, ports (`CLONE_NEWNET`).
    Net,
    /// Process ids (`CLONE_NEWPID`); applies to children of the caller.
    Pid,
    /// User and group ids and capabilities (`CLONE_NEWUSER`).
    User,
    /// The cgroup root a process sees (`CLONE_NEWCGROUP`).
    Cgroup,
    /// Monotonic and boot-time clock offsets (`CLONE_NEWTIME`); applies to children.
    Time,
}

impl NamespaceKind {
    /// Every kind, in the order namespaces must be joined: user first (it grants the
    /// capabilities to join the others), mnt last among those that affect paths.
    pub const ALL: [NamespaceKind; 8] = [
        NamespaceKind::User,
        NamespaceKind::Cgroup,
        NamespaceKind::Ipc,
        NamespaceKind::Uts,
        NamespaceKind::Net,
        NamespaceKind::Pid,
        NamespaceKind::Time,
        NamespaceKind::Mnt,
    ];

    /// The `CLONE_NEW*` flag for this kind.
    pub const fn clone_flag(self) -> libc::c_int {
        match self {
            NamespaceKind::Mnt => libc::CLONE_NEWNS,
            NamespaceKind::Uts => libc::CLONE_NEWUTS,
            NamespaceKind::Ipc => libc::CLONE_NEWIPC,
            NamespaceKind::Net => libc::CLONE_NEWNET,
            NamespaceKind::Pid => libc::CLONE_NEWPID,
            NamespaceKind::User => libc::CLONE_NEWUSER,
            NamespaceKind::Cgroup => libc::CLONE_NEWCGROUP,
            NamespaceKind::Time => libc::CLONE_NEWTIME,
        }
    }

    /// The file name under `/proc/PID/ns/` (`mnt`, `uts`, …).
    pub const fn proc_name(self) -> &'static str {
        match self {
            NamespaceKind::Mnt => "mnt",
            NamespaceKind::Uts => "uts",
            NamespaceKind::Ipc => "ipc",
            NamespaceKind::Net => "net",
            NamespaceKind::Pid => "pid",
            NamespaceKind::User => "user",
            NamespaceKind::Cgroup => "cgroup",
            NamespaceKind::Time => "time",
        }
    }

    /// Whether `unshare`/`setns` of this kind only affects children created afterwards
    /// (pid and time), not the caller itself.
    pub const fn applies_to_children(self) -> bool {
        matches!(self, NamespaceKind::Pid | NamespaceKind::Time)
    }

    const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for NamespaceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.proc_name())
    }
}

impl FromStr for NamespaceKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let kind = match s.trim().to_ascii_lowercase().as_str() {
            "mnt" | "mount" | "ns" => NamespaceKind::Mnt,
            "uts" => NamespaceKind::Uts,
            "ipc" => NamespaceKind::Ipc,
            "net" | "network" => NamespaceKind::Net,
            "pid" => NamespaceKind::Pid,
            "user" => NamespaceKind::User,
            "cgroup" => NamespaceKind::Cgroup,
            "time" => NamespaceKind::Time,
            _ => {
                return Err(Error::invalid(
                    "namespace",
                    s,
                    format!(
                        "unknown namespace kind {s:?} (use mnt, uts, ipc, net, pid, user, cgroup, time, all or none)"
                    ),
                ))
            }
        };
        Ok(kind)
    }
}

/// A set of namespace kinds, e.g. the kinds to create anew.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct NamespaceSet(u8);

impl NamespaceSet {
    /// No kind.
    pub const EMPTY: NamespaceSet = NamespaceSet(0);
    /// All eight kinds.
    pub const ALL: NamespaceSet = NamespaceSet(0xff);
    /// What a container usually gets: mnt, pid, net, ipc, uts, cgroup.
    pub const CONTAINER: NamespaceSet = NamespaceSet(
        NamespaceKind::Mnt.bit()
            | NamespaceKind::Pid.bit()
            | NamespaceKind::Net.bit()
            | NamespaceKind::Ipc.bit()
            | NamespaceKind::Uts.bit()
            | NamespaceKind::Cgroup.bit(),
    );

    /// Whether `kind` is in the set.
    pub const fn contains(self, kind: NamespaceKind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// Adds `kind`.
    pub fn insert(&mut self, kind: NamespaceKind) {
        self.0 |= kind.bit();
    }

    /// Removes `kind`.
    pub fn remove(&mut self, kind: NamespaceKind) {
        self.0 &= !kind.bit();
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds in the set, in join order ([`NamespaceKind::ALL`]).
    pub fn iter(self) -> impl Iterator<Item = NamespaceKind> {
        NamespaceKind::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }

    /// The OR of the kinds' clone flags.
    pub fn clone_flags(self) -> libc::c_int {
        self.iter().fold(0, |acc, k| acc | k.clone_flag())
    }
}

impl FromIterator<NamespaceKind> for NamespaceSet {
    fn from_iter<I: IntoIterator<Item = NamespaceKind>>(iter: I) -> Self {
        let mut set = NamespaceSet::EMPTY;
        for kind in iter {
            set.insert(kind);
        }
        set
    }
}

impl FromStr for NamespaceSet {
    type Err = Error;

    /// Parses `all`, `none`, or a comma-separated list of kinds (`mnt,pid,net`).
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim() {
            "all" => return Ok(NamespaceSet::ALL),
            "none" | "" => return Ok(NamespaceSet::EMPTY),
            _ => {}
        }
        let mut set = NamespaceSet::EMPTY;
        for part in s.split(',') {
            let kind: NamespaceKind = part.parse().map_err(|_| {
                Error::invalid(
                    "namespaces",
                    s,
                    format!(
                        "unknown namespace kind {:?} in {s:?} (use a comma-separated list of mnt, uts, ipc, net, pid, user, cgroup, time; or all, or none)",
                        part.trim()
                    ),
                )
            })?;
            set.insert(kind);
        }
        Ok(set)
    }
}

impl fmt::Display for NamespaceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.iter().map(NamespaceKind::proc_name).collect();
        f.write_str(&names.join(","))
    }
}

impl fmt::Debug for NamespaceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NamespaceSet({self})")
    }
}

impl Serialize for NamespaceSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for NamespaceSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let kinds = Vec::<NamespaceKind>::deserialize(d)?;
        Ok(kinds.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in NamespaceKind::ALL {
            assert_eq!(kind.proc_name().parse::<NamespaceKind>().unwrap(), kind);
        }
    }

    #[test]
    fn clone_flags_are_distinct() {
        let mut seen = 0;
        for kind in NamespaceKind::ALL {
            assert_eq!(seen & kind.clone_flag(), 0, "{kind}");
            seen |= kind.clone_flag();
        }
    }

    #[test]
    fn parses_lists_all_and_none() {
        let set: NamespaceSet = "mnt,pid,net,ipc,uts,cgroup".parse().unwrap();
        assert_eq!(set, NamespaceSet::CONTAINER);
        assert_eq!("all".parse::<NamespaceSet>().unwrap(), NamespaceSet::ALL);
        assert_eq!("none".parse::<NamespaceSet>().unwrap(), NamespaceSet::EMPTY);
        assert_eq!(
            " user , time ".parse::<NamespaceSet>().unwrap().to_string(),
            "user,time"
        );
        assert_eq!(NamespaceSet::ALL.iter().count(), 8);
    }

    #[test]
    fn unknown_kind_is_named_in_the_error() {
        let err = "mnt,bogus".parse::<NamespaceSet>().unwrap_err().to_string();
        assert!(err.contains("\"bogus\""), "{err}");
        assert!(err.starts_with("namespaces:"), "{err}");
        assert!("mnt,,pid".parse::<NamespaceSet>().is_err());
    }

    #[test]
    fn serde_uses_the_short_names() {
        let json = serde_json::to_string(&NamespaceSet::CONTAINER).unwrap();
        assert_eq!(json, r#"["cgroup","ipc","uts","net","pid","mnt"]"#);
        let back: NamespaceSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, NamespaceSet::CONTAINER);
    }
}
