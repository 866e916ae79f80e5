//! Program resolution: where `execve` will find the command, judged before the clone in
//! the tree the command will see — a [`View`] of the rootfs (or the host's `/`) with the
//! planned mounts laid over it, or a joined mount namespace's tree through
//! `/proc/PID/root` — so that a missing command is `NotFound` before anything exists.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{Command, SpawnStep};
use crate::namespace::{self, Joinable, Slot};
use crate::{Error, Result};

impl Command {
    /// The path `execve` will be given: `/` for [`Command::hold`], which execs nothing,
    /// else the program [`resolve`]d in the tree the command will see.
    pub(super) fn exec_path(&self, env: &[CString]) -> Result<PathBuf> {
        if self.hold {
            return Ok(PathBuf::from("/"));
        }
        let joined_root = match &self.plan.mnt {
            Slot::Join(Joinable::Ns(h)) => proc_root_of(h.path()),
            _ => None,
        };
        let mnt = match &self.plan.mnt {
            Slot::New(m) => Some(m),
            _ => None,
        };
        let view = match &joined_root {
            Some(root) => View::rooted(root),
            None => View::planned(mnt),
        };
        resolve(&self.program, &view, env)
    }
}

/// The file tree the command will see, judged before the clone: the rootfs (or the
/// host's `/`) with the planned mounts laid over it.
struct View<'a> {
    rootfs: Option<&'a Path>,
    /// Mount targets inside, with the host directory they show (`None`: an empty tmpfs),
    /// later mounts last.
    mounts: Vec<(&'a Path, Option<&'a Path>)>,
}

impl<'a> View<'a> {
    /// The tree a new mount namespace's plan lays out (the host's `/` without one): the
    /// one place the view reads `MntNs`, its rootfs and its mounts.
    fn planned(mnt: Option<&'a namespace::MntNs>) -> View<'a> {
        let Some(m) = mnt else {
            return View {
                rootfs: None,
                mounts: Vec::new(),
            };
        };
        let mounts = m
            .mounts()
            .iter()
            .map(|x| match &x.source {
                namespace::MountSource::Bind(src) => (x.target.as_path(), Some(src.as_path())),
                namespace::MountSource::Tmpfs(_) => (x.target.as_path(), None),
            })
            .collect();
        View {
            rootfs: m.rootfs(),
            mounts,
        }
    }

    /// A joined mount namespace's tree, seen through a process in it (`/proc/PID/root`).
    fn rooted(root: &'a Path) -> View<'a> {
        View {
            rootfs: Some(root),
            mounts: Vec::new(),
        }
    }

    /// Where the absolute `inside` path is on the host now; `None` inside an empty tmpfs.
    fn host_of(&self, inside: &Path) -> Option<PathBuf> {
        for (target, src) in self.mounts.iter().rev() {
            if let Ok(rest) = inside.strip_prefix(target) {
                return src.map(|s| {
                    if rest.as_os_str().is_empty() {
                        s.to_path_buf()
                    } else {
                        s.join(rest)
                    }
                });
            }
        }
        let rel = inside.strip_prefix("/").unwrap_or(inside);
        Some(match self.rootfs {
            Some(r) => r.join(rel),
            None => Path::new("/").join(rel),
        })
    }

    /// Follows symlinks inside the view (absolute ones restart at its root); the
    /// resolved inside path and the host file it is.
    fn resolve(&self, path: &Path) -> io::Result<(PathBuf, PathBuf)> {
        use std::path::Component;
        let mut todo: Vec<std::ffi::OsString> = Vec::new();
        let push_front = |todo: &mut Vec<std::ffi::OsString>, p: &Path| {
            let comps: Vec<_> = p
                .components()
                .filter_map(|c| match c {
                    Component::Normal(n) => Some(n.to_owned()),
                    Component::ParentDir => Some("..".into()),
                    _ => None,
                })
                .collect();
            for c in comps.into_iter().rev() {
                todo.push(c);
            }
        };
        push_front(&mut todo, path);
        let mut cur = PathBuf::from("/");
        let mut hops = 0;
        while let Some(c) = todo.pop() {
            if c == ".." {
                cur.pop();
                continue;
            }
            let next = cur.join(&c);
            let host = self
                .host_of(&next)
                .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
            let md = std::fs::symlink_metadata(&host)?;
            if md.file_type().is_symlink() {
                hops += 1;
                if hops > 40 {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = std::fs::read_link(&host)?;
                if target.is_absolute() {
                    cur = PathBuf::from("/");
                }
                push_front(&mut todo, &target);
            } else {
                cur = next;
            }
        }
        let host = self
            .host_of(&cur)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        Ok((cur, host))
    }

    /// `Ok(true)`: an executable file; `Ok(false)`: present, not executable; `Err`: absent.
    fn executable(&self, path: &Path) -> io::Result<bool> {
        let (_, host) = self.resolve(path)?;
        let md = std::fs::metadata(host)?;
        if md.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::EISDIR));
        }
        Ok(md.is_file() && md.permissions().mode() & 0o111 != 0)
    }
}

/// `/proc/PID/root` for a namespace file opened as `/proc/PID/ns/mnt`: where a command
/// joining it will find its files (the process's root is its mount namespace's, which a
/// box's pivot_root made its rootfs). `None` for any other file (a persisted one).
fn proc_root_of(ns_file: &Path) -> Option<PathBuf> {
    let pid = ns_file
        .strip_prefix("/proc")
        .ok()?
        .to_str()?
        .strip_suffix("/ns/mnt")?;
    pid.parse::<u32>().ok()?;
    Some(Path::new("/proc").join(pid).join("root"))
}

/// Finds `program` as execve will see it: a path with a `/` as is, else the first
/// executable in `PATH` (the command's, else the usual default), all looked up in the
/// tree the command will see (rootfs and binds, symlinks followed inside it). Missing is
/// `NotFound`, present but not executable `PermissionDenied`, both as [`Error::Spawn`]
/// with step `find program`.
fn resolve(program: &OsStr, view: &View<'_>, env: &[CString]) -> Result<PathBuf> {
    let err = |path: PathBuf, source: io::Error| Error::Spawn {
        step: SpawnStep::FindProgram,
        path,
        source,
    };
    if program.is_empty() {
        return Err(Error::invalid("command", "", "the command's name is empty"));
    }
    if program.as_bytes().contains(&b'/') {
        let p = PathBuf::from(program);
        if p.is_relative() {
            return Ok(p);
        }
        return match view.executable(&p) {
            Ok(true) => Ok(p),
            Ok(false) => Err(err(p, io::Error::from_raw_os_error(libc::EACCES))),
            Err(e) => Err(err(p, e)),
        };
    }
    let path_var = env
        .iter()
        .find_map(|kv| {
            kv.as_bytes()
                .strip_prefix(b"PATH=")
                .map(|v| OsStr::from_bytes(v).to_owned())
        })
        .unwrap_or_else(|| {
            OsString::from("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        });
    let mut denied = false;
    for dir in std::env::split_paths(&path_var) {
        let candidate = dir.join(program);
        match view.executable(&candidate) {
            Ok(true) => return Ok(candidate),
            Ok(false) => denied = true,
            Err(_) => {}
        }
    }
    let errno = if denied { libc::EACCES } else { libc::ENOENT };
    Err(err(
        PathBuf::from(program),
        io::Error::from_raw_os_error(errno),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_in_path_and_reports_missing() {
        let env = vec![CString::new("PATH=/nonexistent:/bin:/usr/bin").unwrap()];
        let sh = resolve(OsStr::new("sh"), &View::planned(None), &env).unwrap();
        assert!(sh.ends_with("sh"), "{}", sh.display());
        let err = resolve(
            OsStr::new("isol-no-such-program"),
            &View::planned(None),
            &env,
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::Spawn { source, .. } if source.kind() == io::ErrorKind::NotFound),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("noexec");
        std::fs::write(&f, "#!/bin/sh\n").unwrap();
        let err = resolve(f.as_os_str(), &View::planned(None), &env).unwrap_err();
        assert!(
            matches!(&err, Error::Spawn { source, .. } if source.kind() == io::ErrorKind::PermissionDenied),
            "{err}"
        );
    }

    #[test]
    fn resolves_through_the_rootfs_its_binds_and_symlinks() {
        use std::os::unix::fs::symlink;
        let host = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(host.path().join("usr/bin")).unwrap();
        let prog = host.path().join("usr/bin/prog");
        std::fs::write(&prog, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        symlink("/usr/bin/prog", host.path().join("usr/bin/abs-link")).unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("usr")).unwrap();
        symlink("usr/bin", root.path().join("bin")).unwrap();
        let mnt = namespace::MntNs::Rootfs(namespace::Rootfs {
            mounts: vec![namespace::Mount::bind(host.path().join("usr"), "/usr")],
            ..namespace::Rootfs::new(root.path())
        });
        let view = View::planned(Some(&mnt));
        let env = vec![CString::new("PATH=/bin").unwrap()];
        assert_eq!(
            resolve(OsStr::new("prog"), &view, &env).unwrap(),
            Path::new("/bin/prog")
        );
        assert_eq!(
            resolve(OsStr::new("abs-link"), &view, &env).unwrap(),
            Path::new("/bin/abs-link")
        );
        assert_eq!(view.resolve(Path::new("/bin/abs-link")).unwrap().1, prog);
        // Without the bind the rootfs's /usr is empty.
        let bare = namespace::MntNs::Rootfs(namespace::Rootfs::new(root.path()));
        let err = resolve(OsStr::new("prog"), &View::planned(Some(&bare)), &env).unwrap_err();
        assert!(
            matches!(&err, Error::Spawn { source, .. } if source.kind() == io::ErrorKind::NotFound),
            "{err}"
        );
    }
}
