//! The user namespace: its uid and gid maps and the `setgroups` policy, which the parent
//! writes into `/proc/PID/` while the child waits; the child itself has no step for it.

use std::path::PathBuf;

use super::{Context, Namespace};
use crate::spawn::program::Program;
use crate::{Error, NamespaceKind, Result};

/// One line of `uid_map`/`gid_map`: ids `inside..inside+count` map to
/// `outside..outside+count` (user_namespaces(7)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdMap {
    /// First id inside the namespace.
    pub inside: u32,
    /// First id outside (in the parent's user namespace).
    pub outside: u32,
    /// How many.
    pub count: u32,
}

/// Whether the child may call `setgroups(2)` (`/proc/PID/setgroups`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SetGroups {
    /// `deny` when the spawner is unprivileged (the kernel requires it before an
    /// unprivileged `gid_map` write), else leave `allow`.
    #[default]
    Auto,
    /// Write `allow`.
    Allow,
    /// Write `deny`.
    Deny,
}

/// A new user namespace with its id maps, written by the parent while the child waits.
/// Inside, the command runs as uid/gid 0 unless [`crate::spawn::Command::uid`] says
/// otherwise, holding every capability in the namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserNs {
    /// `uid_map` lines; none leaves every uid unmapped (the overflow uid inside).
    pub uid_map: Vec<IdMap>,
    /// `gid_map` lines.
    pub gid_map: Vec<IdMap>,
    /// `setgroups` policy.
    pub setgroups: SetGroups,
}

impl UserNs {
    /// The rootless mapping: the caller's effective uid and gid become 0 inside (one id
    /// each), and setgroups is denied, as `unshare --map-root-user` does.
    pub fn rootless() -> UserNs {
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        UserNs {
            uid_map: vec![IdMap {
                inside: 0,
                outside: uid,
                count: 1,
            }],
            gid_map: vec![IdMap {
                inside: 0,
                outside: gid,
                count: 1,
            }],
            setgroups: SetGroups::Deny,
        }
    }

    /// A range mapping `0 outside count` for both uids and gids (needs privilege).
    pub fn range(outside: u32, count: u32) -> UserNs {
        let m = IdMap {
            inside: 0,
            outside,
            count,
        };
        UserNs {
            uid_map: vec![m],
            gid_map: vec![m],
            setgroups: SetGroups::Auto,
        }
    }

    fn map_text(map: &[IdMap]) -> String {
        map.iter()
            .map(|m| format!("{} {} {}\n", m.inside, m.outside, m.count))
            .collect()
    }

    fn deny(&self) -> bool {
        match self.setgroups {
            SetGroups::Deny => true,
            SetGroups::Allow => false,
            SetGroups::Auto => !nix::unistd::geteuid().is_root(),
        }
    }

    /// The parent's part, while child `pid` waits: `setgroups` (when denied), then
    /// `uid_map` and `gid_map` in `/proc/PID/`.
    pub fn parent_setup(&self, pid: u32) -> Result<()> {
        let proc = PathBuf::from(format!("/proc/{pid}"));
        if self.deny() {
            crate::parse::write(&proc.join("setgroups"), "deny")?;
        }
        if !self.uid_map.is_empty() {
            crate::parse::write(&proc.join("uid_map"), &Self::map_text(&self.uid_map))?;
        }
        if !self.gid_map.is_empty() {
            crate::parse::write(&proc.join("gid_map"), &Self::map_text(&self.gid_map))?;
        }
        Ok(())
    }
}

impl Namespace for UserNs {
    fn kind(&self) -> NamespaceKind {
        NamespaceKind::User
    }
    fn check(&self, _ctx: &Context) -> Result<()> {
        for (name, map) in [("uid_map", &self.uid_map), ("gid_map", &self.gid_map)] {
            if map.len() > 340 || map.iter().any(|m| m.count == 0) {
                return Err(Error::invalid(
                    name,
                    Self::map_text(map),
                    "1 to 340 lines, each with a count above 0",
                ));
            }
        }
        Ok(())
    }
    fn child_steps(&self, _ctx: &Context, _p: &mut Program) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_text() {
        let u = UserNs::range(100000, 65536);
        assert_eq!(UserNs::map_text(&u.uid_map), "0 100000 65536\n");
        let two = [
            IdMap {
                inside: 0,
                outside: 1000,
                count: 1,
            },
            IdMap {
                inside: 1,
                outside: 100000,
                count: 65536,
            },
        ];
        assert_eq!(UserNs::map_text(&two), "0 1000 1\n1 100000 65536\n");
    }
}
