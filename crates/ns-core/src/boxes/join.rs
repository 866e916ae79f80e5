//! A command that runs inside a running box (`isol exec`): it joins every namespace in
//! which the box differs from the caller and the box's cgroup, and takes the box's
//! hardening, user, environment and working directory unless told otherwise (docker
//! exec's defaults). Also the environment and user every command of a box gets, the
//! box's own at `isol run` and a joining one alike.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::Arc;

use super::{BoxRecord, BoxState, BoxUser};
use crate::spawn::{CgroupSpec, Command};
use crate::{Error, HostInfo, NamespaceKind, NsHandle, Result};

/// `PATH` for a box's command that does not take the caller's environment (docker's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a command joining a box takes from its caller rather than from the box.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JoinOptions {
    /// Variables (`K=V`), set after the box's own.
    pub env: Vec<String>,
    /// Where it starts, instead of the box's working directory.
    pub workdir: Option<PathBuf>,
    /// Who it runs as, instead of the box's user; checked against the box's user
    /// namespace.
    pub user: Option<BoxUser>,
}

impl BoxUser {
    /// Refuses an id that does not exist in the box's user namespace when it has one of
    /// its own (`own_user_ns`): the one isol makes maps one id, the caller's, to 0.
    pub fn check_mapped(self, own_user_ns: bool) -> Result<()> {
        if own_user_ns && (self.uid != 0 || self.gid.is_some_and(|g| g != 0)) {
            return Err(Error::invalid(
                "user",
                "",
                format!("{self} does not exist in the box's user namespace, which maps only root (0) to you; drop --user or use --user 0"),
            ));
        }
        Ok(())
    }

    /// Sets `cmd`'s ids to these.
    pub fn apply(self, cmd: &mut Command) {
        cmd.uid(self.uid);
        if let Some(g) = self.gid {
            cmd.gid(g);
        }
    }
}

/// A box's command environment. With `inherit`, the caller's; otherwise `PATH`
/// ([`DEFAULT_PATH`]), `HOME` (`/root` for root, else `/`) and the caller's `TERM`
/// alone, so that nothing else of the caller's (tokens, agent sockets, proxies) reaches
/// the box unless `vars` names it. Then `vars` (`K=V`), the later over the earlier.
pub fn set_env(
    cmd: &mut Command,
    inherit: bool,
    user: Option<BoxUser>,
    vars: &[String],
) -> Result<()> {
    if !inherit {
        cmd.env_clear();
        cmd.env("PATH", DEFAULT_PATH);
        let root = user.is_none_or(|u| u.uid == 0);
        cmd.env("HOME", if root { "/root" } else { "/" });
        if let Some(term) = std::env::var_os("TERM") {
            cmd.env("TERM", term);
        }
    }
    for e in vars {
        match e.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                cmd.env(k, v);
            }
            _ => {
                let why = format!("{e:?} is not K=V");
                return Err(Error::invalid("env", e.as_str(), why));
            }
        }
    }
    Ok(())
}

impl BoxRecord {
    /// A command running `program` inside this box: it joins every namespace in which
    /// the box differs from the caller (user first) and the box's cgroup, is hardened
    /// as the box is, and takes its user, environment (the box's variables, then
    /// `opts.env`) and working directory unless `opts` gives others. The caller adds the
    /// arguments and stdio, and spawns it.
    ///
    /// The box must be running (a frozen box is refused: the command would wait in its
    /// frozen cgroup). The namespaces are opened through the box's pid, and the box's
    /// process is checked to be the same one (same start time) afterwards, which makes
    /// them the box's.
    pub fn join(
        &self,
        host: &HostInfo,
        program: impl AsRef<OsStr>,
        opts: &JoinOptions,
    ) -> Result<Command> {
        let name = &self.name;
        match self.state(host) {
            BoxState::Running => {}
            BoxState::Frozen => {
                return Err(Error::Refused {
                    what: format!("box {name} is frozen"),
                    reason: format!("thaw it first (isol thaw {name})"),
                })
            }
            s => {
                return Err(Error::Refused {
                    what: format!("box {name} is {s}"),
                    reason: "a command can join only a running box".into(),
                })
            }
        }
        let mut cmd = Command::new(program);
        let user = match opts.user {
            Some(u) => {
                u.check_mapped(self.new_namespaces.contains(NamespaceKind::User))?;
                Some(u)
            }
            None => self.user,
        };
        let env: Vec<String> = self.env.iter().chain(&opts.env).cloned().collect();
        set_env(&mut cmd, self.inherit_env, user, &env)?;
        if let Some(w) = opts.workdir.as_ref().or(self.workdir.as_ref()) {
            cmd.current_dir(w);
        }
        // The masked paths are already in the box's mount namespace, which the command
        // joins.
        if let Some(policy) = &self.security {
            cmd.security(policy.clone());
        }
        if let Some(u) = user {
            u.apply(&mut cmd);
        }
        self.join_namespaces(&mut cmd)?;
        if !self.process.alive() {
            return Err(Error::Refused {
                what: format!("join box {name}"),
                reason: "it ended while its namespaces were being opened".into(),
            });
        }
        let cg = self.open_cgroup(host)?;
        cmd.cgroup(CgroupSpec::Existing(Arc::from(cg)));
        Ok(cmd)
    }

    /// Has `cmd` join each namespace of the box that is not the caller's.
    fn join_namespaces(&self, cmd: &mut Command) -> Result<()> {
        for kind in NamespaceKind::ALL {
            let ours = match NsHandle::of_pid(std::process::id(), kind, false) {
                Ok(h) => h,
                // A kind this kernel lacks (time before 5.6).
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => return Err(e),
            };
            let h = NsHandle::of_pid(self.process.pid, kind, true)?;
            if h.inode() != ours.inode() {
                cmd.join(h);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_outside_the_boxs_user_namespace_are_refused() {
        let u = |uid, gid| BoxUser { uid, gid };
        u(1000, Some(100)).check_mapped(false).unwrap();
        u(0, None).check_mapped(true).unwrap();
        u(0, Some(0)).check_mapped(true).unwrap();
        let err = u(1000, None).check_mapped(true).unwrap_err().to_string();
        assert!(err.starts_with("user: 1000 does not exist"), "{err}");
        let err = u(0, Some(5)).check_mapped(true).unwrap_err().to_string();
        assert!(err.starts_with("user: 0:5 does not exist"), "{err}");
    }

    #[test]
    fn bad_variables_are_refused() {
        let mut cmd = Command::new("true");
        set_env(&mut cmd, false, None, &["A=b=c".into(), "B=".into()]).unwrap();
        assert!(set_env(&mut cmd, false, None, &["=x".into()]).is_err());
        assert!(set_env(&mut cmd, false, None, &["A".into()]).is_err());
    }
}
