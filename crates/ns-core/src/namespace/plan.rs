//! The plan a spawn follows: per kind, a [`Slot`] that says new (with that kind's
//! settings), joined (a namespace file or a process's pidfd) or inherited, and the order
//! in which the new kinds record their child steps.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use super::{CgroupNs, IpcNs, MntNs, Namespace, NetNs, NsHandle, PidNs, TimeNs, UserNs, UtsNs};
use crate::{NamespaceKind, NamespaceSet};

/// What to do about one kind.
#[derive(Debug, Default)]
pub enum Slot<T> {
    /// Stay in the caller's namespace.
    #[default]
    Inherit,
    /// Create a new one with these settings.
    New(T),
    /// Join an existing one.
    Join(Joinable),
}

impl<T> Slot<T> {
    /// The settings of a new namespace, created with defaults when the slot is not `New`.
    pub fn new_mut(&mut self) -> &mut T
    where
        T: Default,
    {
        if !matches!(self, Slot::New(_)) {
            *self = Slot::New(T::default());
        }
        match self {
            Slot::New(t) => t,
            _ => unreachable!("just set to New"),
        }
    }
}

/// A namespace to join: one kind through its namespace file, or several kinds at once
/// through a pidfd (`setns(pidfd, flags)`, Linux 5.8).
#[derive(Clone, Debug)]
pub enum Joinable {
    /// An open namespace file.
    Ns(Arc<NsHandle>),
    /// The namespaces of the process behind this pidfd.
    Pidfd(Arc<OwnedFd>),
}

/// Per kind: new (with settings), joined or inherited.
#[derive(Debug, Default)]
pub struct NamespacePlan {
    /// Mount namespace.
    pub mnt: Slot<MntNs>,
    /// UTS namespace.
    pub uts: Slot<UtsNs>,
    /// IPC namespace.
    pub ipc: Slot<IpcNs>,
    /// Network namespace.
    pub net: Slot<NetNs>,
    /// Pid namespace.
    pub pid: Slot<PidNs>,
    /// User namespace.
    pub user: Slot<UserNs>,
    /// Cgroup namespace.
    pub cgroup: Slot<CgroupNs>,
    /// Time namespace.
    pub time: Slot<TimeNs>,
}

impl NamespacePlan {
    /// Everything inherited: a plain process.
    pub fn none() -> NamespacePlan {
        NamespacePlan::default()
    }

    /// New namespaces of every kind in `kinds`, with default settings.
    pub fn new_kinds(kinds: NamespaceSet) -> NamespacePlan {
        let mut plan = NamespacePlan::default();
        for k in kinds.iter() {
            plan.set_new(k);
        }
        plan
    }

    /// What a container gets: new mnt, pid, net, ipc, uts and cgroup namespaces.
    pub fn container() -> NamespacePlan {
        Self::new_kinds(NamespaceSet::CONTAINER)
    }

    /// Makes `kind` new with default settings (keeping settings already given).
    pub fn set_new(&mut self, kind: NamespaceKind) {
        match kind {
            NamespaceKind::Mnt => drop(self.mnt.new_mut()),
            NamespaceKind::Uts => drop(self.uts.new_mut()),
            NamespaceKind::Ipc => drop(self.ipc.new_mut()),
            NamespaceKind::Net => drop(self.net.new_mut()),
            NamespaceKind::Pid => drop(self.pid.new_mut()),
            NamespaceKind::User => drop(self.user.new_mut()),
            NamespaceKind::Cgroup => drop(self.cgroup.new_mut()),
            NamespaceKind::Time => drop(self.time.new_mut()),
        }
    }

    /// Joins `handle`'s namespace in its kind's slot.
    pub fn join(&mut self, handle: NsHandle) {
        let j = Joinable::Ns(Arc::new(handle));
        self.set_join(j.clone(), NamespaceSet::from_iter([self.kind_of(&j)]));
    }

    /// Joins the namespaces of `kinds` of the process behind `pidfd`.
    pub fn join_process(&mut self, pidfd: OwnedFd, kinds: NamespaceSet) {
        self.set_join(Joinable::Pidfd(Arc::new(pidfd)), kinds);
    }

    fn kind_of(&self, j: &Joinable) -> NamespaceKind {
        match j {
            Joinable::Ns(h) => h.kind(),
            Joinable::Pidfd(_) => NamespaceKind::Mnt,
        }
    }

    fn set_join(&mut self, j: Joinable, kinds: NamespaceSet) {
        for k in kinds.iter() {
            let j = j.clone();
            match k {
                NamespaceKind::Mnt => self.mnt = Slot::Join(j),
                NamespaceKind::Uts => self.uts = Slot::Join(j),
                NamespaceKind::Ipc => self.ipc = Slot::Join(j),
                NamespaceKind::Net => self.net = Slot::Join(j),
                NamespaceKind::Pid => self.pid = Slot::Join(j),
                NamespaceKind::User => self.user = Slot::Join(j),
                NamespaceKind::Cgroup => self.cgroup = Slot::Join(j),
                NamespaceKind::Time => self.time = Slot::Join(j),
            }
        }
    }

    /// The kinds created anew.
    pub fn new_set(&self) -> NamespaceSet {
        self.slots()
            .filter(|(_, s)| matches!(s, SlotRef::New(_)))
            .map(|(k, _)| k)
            .collect()
    }

    /// The kinds joined.
    pub fn joined_set(&self) -> NamespaceSet {
        self.slots()
            .filter(|(_, s)| matches!(s, SlotRef::Join(_)))
            .map(|(k, _)| k)
            .collect()
    }

    /// The new namespaces' settings, in the order their child steps run.
    pub fn new_namespaces(&self) -> Vec<&dyn Namespace> {
        let order = [
            NamespaceKind::User,
            NamespaceKind::Cgroup,
            NamespaceKind::Time,
            NamespaceKind::Uts,
            NamespaceKind::Ipc,
            NamespaceKind::Net,
            NamespaceKind::Pid,
            NamespaceKind::Mnt,
        ];
        let by_kind: BTreeMap<NamespaceKind, &dyn Namespace> = self
            .slots()
            .filter_map(|(k, s)| {
                if let SlotRef::New(n) = s {
                    Some((k, n))
                } else {
                    None
                }
            })
            .collect();
        order
            .iter()
            .filter_map(|k| by_kind.get(k).copied())
            .collect()
    }

    /// The joined namespaces, in join order ([`NamespaceKind::ALL`]: user first).
    pub fn joins(&self) -> Vec<(NamespaceKind, &Joinable)> {
        self.slots()
            .filter_map(|(k, s)| {
                if let SlotRef::Join(j) = s {
                    Some((k, j))
                } else {
                    None
                }
            })
            .collect()
    }

    /// The user namespace settings, when new.
    pub fn user_new(&self) -> Option<&UserNs> {
        if let Slot::New(u) = &self.user {
            Some(u)
        } else {
            None
        }
    }

    /// The time namespace settings, when new.
    pub fn time_new(&self) -> Option<&TimeNs> {
        if let Slot::New(t) = &self.time {
            Some(t)
        } else {
            None
        }
    }

    fn slots(&self) -> impl Iterator<Item = (NamespaceKind, SlotRef<'_>)> {
        fn r<T: Namespace>(s: &Slot<T>) -> SlotRef<'_> {
            match s {
                Slot::Inherit => SlotRef::Inherit,
                Slot::New(t) => SlotRef::New(t),
                Slot::Join(j) => SlotRef::Join(j),
            }
        }
        NamespaceKind::ALL.into_iter().map(move |k| {
            let s = match k {
                NamespaceKind::Mnt => r(&self.mnt),
                NamespaceKind::Uts => r(&self.uts),
                NamespaceKind::Ipc => r(&self.ipc),
                NamespaceKind::Net => r(&self.net),
                NamespaceKind::Pid => r(&self.pid),
                NamespaceKind::User => r(&self.user),
                NamespaceKind::Cgroup => r(&self.cgroup),
                NamespaceKind::Time => r(&self.time),
            };
            (k, s)
        })
    }
}

enum SlotRef<'a> {
    Inherit,
    New(&'a dyn Namespace),
    Join(&'a Joinable),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_sets() {
        let plan = NamespacePlan::container();
        assert_eq!(plan.new_set(), NamespaceSet::CONTAINER);
        assert!(plan.joined_set().is_empty());
        let kinds: Vec<_> = plan.new_namespaces().iter().map(|n| n.kind()).collect();
        assert_eq!(kinds.last(), Some(&NamespaceKind::Mnt));
        assert_eq!(kinds.len(), 6);
    }
}
