//! What a mount plan refuses before the clone: a rootfs that is not an absolute
//! directory, a mount target that is relative or `/`, a bind whose source is missing,
//! a path in the rootfs reached through one of its symlinks, and a mount namespace both
//! new and joined.

use std::path::{Component, Path};

use super::{MntNs, Mount, MountSource, Rootfs};
use crate::namespace::Context;
use crate::spawn::SpawnStep;
use crate::{Error, NamespaceKind, Result};

/// Checks `plan` for the spawn described by `ctx`.
pub(super) fn plan(plan: &MntNs, ctx: &Context) -> Result<()> {
    if let MntNs::Rootfs(r) = plan {
        rootfs(r)?;
    }
    for m in plan.mounts() {
        target(m, plan.rootfs().is_none())?;
    }
    if ctx.joined.contains(NamespaceKind::Mnt) {
        return Err(Error::invalid(
            "mnt",
            "new and joined",
            "a mount namespace is either new or joined",
        ));
    }
    Ok(())
}

/// The rootfs is an absolute directory, and none of the places isol mounts on in it is
/// reached through one of its symlinks.
fn rootfs(r: &Rootfs) -> Result<()> {
    let root = &r.dir;
    let md = std::fs::metadata(root).map_err(|e| Error::Spawn {
        step: SpawnStep::Rootfs,
        path: root.clone(),
        source: e,
    })?;
    if !md.is_dir() {
        return Err(Error::Spawn {
            step: SpawnStep::Rootfs,
            path: root.clone(),
            source: std::io::Error::from_raw_os_error(libc::ENOTDIR),
        });
    }
    if !root.is_absolute() {
        return Err(Error::invalid(
            "rootfs",
            root.display().to_string(),
            "give an absolute path",
        ));
    }
    let own = [
        (r.proc, "/proc"),
        (r.dev.is_some(), "/dev"),
        (r.sys, "/sys"),
        (r.tmp, "/tmp"),
    ];
    for (_, at) in own.iter().filter(|(made, _)| *made) {
        no_symlink_on_the_way(root, Path::new(at))?;
    }
    for m in &r.mounts {
        no_symlink_on_the_way(root, &m.target)?;
    }
    Ok(())
}

/// An extra mount's target is absolute and not `/`, and a bind's source exists;
/// `callers_tree`: the box keeps the caller's root, where a target is `/` also when it
/// leads there.
fn target(m: &Mount, callers_tree: bool) -> Result<()> {
    if !m.target.is_absolute() {
        return Err(Error::invalid(
            "mount target",
            m.target.display().to_string(),
            "give an absolute path (inside the rootfs)",
        ));
    }
    // Over the root the mount would hide nothing from a process whose root stays the old
    // one, and steps that look the path up again would find the old one.
    let at_root = m
        .target
        .components()
        .all(|c| !matches!(c, Component::Normal(_)))
        || (callers_tree && std::fs::canonicalize(&m.target).is_ok_and(|t| t == Path::new("/")));
    if at_root {
        return Err(Error::invalid(
            "mount target",
            m.target.display().to_string(),
            format!(
                "{} is /: a mount over / would not become the box's root (give the tree as its rootfs instead)",
                m.target.display()
            ),
        ));
    }
    if let MountSource::Bind(src) = &m.source {
        if let Err(e) = std::fs::symlink_metadata(src) {
            return Err(Error::Spawn {
                step: SpawnStep::BindMountSource,
                path: src.clone(),
                source: e,
            });
        }
    }
    Ok(())
}

/// Refuses a mount point in `root` reached through a symlink of the rootfs: isol makes
/// and mounts on it before `pivot_root`, when an absolute link (`/mnt -> /etc`) would
/// lead to the host's files and a relative one could climb out, so a rootfs that a box
/// can write could make the next box's mount points on the host. The existing part of
/// the path is checked; what is missing isol creates. (A rootfs changed while this runs
/// is not covered: the check is done once, before the clone.)
fn no_symlink_on_the_way(root: &Path, target: &Path) -> Result<()> {
    let mut at = root.to_path_buf();
    for part in target.components() {
        let Component::Normal(name) = part else {
            continue;
        };
        at.push(name);
        match std::fs::symlink_metadata(&at) {
            Ok(md) if md.file_type().is_symlink() => {
                let to = std::fs::read_link(&at).unwrap_or_default();
                let inside = Path::new("/").join(at.strip_prefix(root).unwrap_or(&at));
                return Err(Error::invalid(
                    "mount target",
                    target.display().to_string(),
                    format!(
                        "{} is a symlink in the rootfs (to {}): isol does not follow the rootfs's symlinks to the places it mounts on; give the path it stands for",
                        inside.display(),
                        to.display()
                    ),
                ));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(())
}
