//! Cleaning up after a box: its cgroup (through its backend, or directory by directory
//! when only part of it is left), its persisted namespace files, its place in a pod,
//! and last its record, so that nothing a box made ever outlives the record that leads
//! to it.

use std::path::Path;

use super::BoxRecord;
use crate::namespace::Persisted;
use crate::state::{RecordKind, StateDir};
use crate::{cgroupfs, Cgroup, Error, HostInfo, Pod, Result};

impl BoxRecord {
    /// Destroys the cgroup (if it is still there) and releases the persisted namespace
    /// files. Does all it can before it fails, naming everything that failed. `cgroup`
    /// is the box's cgroup when the caller has it open already (it is opened from the
    /// record if not). The record stays.
    pub fn release(&self, host: &HostInfo, cgroup: Option<&dyn Cgroup>) -> Result<()> {
        refused(
            format!("release box {}", self.name),
            self.release_all(host, cgroup),
        )
    }

    /// Cleans up after a dead box and removes its record. The caller holds the state
    /// lock, so a pod member is only dropped from its pod by [`BoxRecord::remove`].
    pub fn remove_dead(&self, state: &StateDir, host: &HostInfo) -> Result<()> {
        refused(
            format!("clean up box {}", self.name),
            self.release_all(host, None),
        )?;
        state.remove(RecordKind::Box, &self.name)
    }

    /// Removes a box whose processes are gone or being killed: drops it from its pod
    /// (which destroys the member cgroup), destroys its cgroup, releases namespace files,
    /// removes the record. Takes the state lock itself; the caller must not hold it.
    /// `cgroup` is the box's cgroup if the caller has it open.
    pub fn remove(
        &self,
        state: &StateDir,
        host: &HostInfo,
        cgroup: Option<&dyn Cgroup>,
    ) -> Result<()> {
        if let Some(pod) = &self.pod {
            if let Ok(mut pod) = Pod::open_on(state, pod, host) {
                if pod.record().members.contains_key(&self.name)
                    && pod.remove_member(&self.name, true).is_err()
                {
                    // A member cgroup half destroyed (its remover died between two v1
                    // hierarchies) cannot be opened: take it down directory by
                    // directory, then drop the member. If that fails too the box record
                    // stays, so the next gc tries again; a member is never forgotten
                    // silently.
                    let _ = self.release_all(host, None);
                    pod.remove_member(&self.name, true)
                        .map_err(|e| Error::Refused {
                            what: format!("drop box {} from pod {}", self.name, pod.name()),
                            reason: e.to_string(),
                        })?;
                }
            }
        }
        refused(
            format!("remove box {}", self.name),
            self.release_all(host, cgroup),
        )?;
        let _lock = state.lock()?;
        state.remove(RecordKind::Box, &self.name)
    }

    /// What [`BoxRecord::release`] does, each failure said on its own.
    fn release_all(&self, host: &HostInfo, cgroup: Option<&dyn Cgroup>) -> Vec<String> {
        let mut errors = Vec::new();
        let opened;
        let cgroup = match cgroup {
            Some(cg) => Ok(cg),
            None => {
                opened = self.open_cgroup(host);
                opened.as_deref()
            }
        };
        match cgroup {
            Ok(cg) => {
                if let Err(e) = cg.destroy() {
                    errors.push(format!("destroy cgroup {}: {e}", cg.path()));
                }
            }
            Err(e) => {
                // Gone already is fine. Part of it (isol died while creating or
                // destroying it, v1 making one directory per hierarchy) is taken down
                // directory by directory; anything else is worth saying.
                for dir in self.cgroup_dirs(host).iter().filter(|d| d.exists()) {
                    if let Err(why) = remove_cgroup_dir(dir) {
                        errors.push(format!(
                            "open the cgroup of box {}: {e}; remove {}: {why}",
                            self.name,
                            dir.display()
                        ));
                    }
                }
            }
        }
        for (&kind, ns) in &self.namespaces {
            let Some(path) = ns.path.as_ref().filter(|p| p.exists()) else {
                continue;
            };
            let p = Persisted {
                kind,
                path: path.clone(),
                inode: ns.inode,
            };
            if let Err(e) = p.release() {
                errors.push(e.to_string());
            }
        }
        errors
    }
}

/// `Ok` when nothing failed, else one error saying what.
fn refused(what: String, errors: Vec<String>) -> Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    Err(Error::Refused {
        what,
        reason: errors.join("; "),
    })
}

/// Removes a cgroup directory the record names, for when its backend cannot open it
/// (only part of a v1 cgroup exists): SIGKILLs the tasks in it and its descendants
/// (processes of the box: nothing else can be in a cgroup isol made for it), then
/// removes the directories deepest first, retrying while the kernel is still freeing the
/// tasks (EBUSY). cgroup-v1.txt §2.3 and cgroup-v2.rst "Removing a cgroup": a cgroup
/// without tasks or children can be rmdir'ed.
fn remove_cgroup_dir(dir: &Path) -> Result<()> {
    let what = dir.display().to_string();
    cgroupfs::sigkill_until_empty(&[dir], &what, cgroupfs::WAIT, || Ok(()))?;
    cgroupfs::remove_tree(dir, cgroupfs::WAIT)
}
