//! Device rules. On cgroup v2 they are an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE` attached to the cgroup (cgroup-v2.rst, "Controllers /
//! Device controller"), which isol does not implement yet: a set `devices` is refused.

use std::path::Path;

use isol_ns_core::{Error, ResourceController, Resources, Result, Stats};

use crate::NAME;

/// Refuses device rules until the eBPF program exists.
#[derive(Debug)]
pub struct Devices;

fn unsupported() -> Error {
    Error::Unsupported {
        setting: "devices".into(),
        backend: NAME,
        reason: "device rules on cgroup v2 need the eBPF device program, not implemented yet"
            .into(),
    }
}

impl ResourceController for Devices {
    fn name(&self) -> &'static str {
        "devices"
    }

    fn wanted(&self, r: &Resources) -> bool {
        !r.devices.is_empty()
    }

    fn check(&self, r: &Resources) -> Result<()> {
        if self.wanted(r) {
            return Err(unsupported());
        }
        Ok(())
    }

    fn apply(&self, _dir: &Path, r: &Resources) -> Result<()> {
        self.check(r)
    }

    fn read(&self, _dir: &Path, _out: &mut Resources) -> Result<()> {
        Ok(())
    }

    fn stats(&self, _dir: &Path, _stats: &mut Stats) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_refused_by_name() {
        let mut r = Resources::default();
        Devices.check(&r).unwrap();
        r.devices.push("c 1:3 rwm".parse().unwrap());
        let err = Devices.check(&r).unwrap_err().to_string();
        assert_eq!(err, "devices is not supported by cgroup-v2: device rules on cgroup v2 need the eBPF device program, not implemented yet");
    }
}
