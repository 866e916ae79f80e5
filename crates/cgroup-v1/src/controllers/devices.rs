//! The v1 `devices` controller: which device nodes the tasks may read, write or create.
//!
//! Reference: Documentation/admin-guide/cgroup-v1/devices.rst. isol writes `a` to
//! `devices.deny` (deny everything, dropping the inherited allow-all), then each rule in
//! order: an allow rule to `devices.allow`, a deny rule to `devices.deny`. Reading back
//! parses `devices.list`: the allow rules in force (`a *:* rwm` alone means no rules were
//! set). Deny rules leave no line of their own, so they do not read back.

use std::path::Path;

use isol_ns_core::resources::DeviceRule;
use isol_ns_core::{parse, Controller, Error, ResourceController, Resources, Result};

use super::read;

/// `devices.allow`, `devices.deny`, `devices.list`.
pub struct Devices;

impl ResourceController for Devices {
    fn controller(&self) -> Controller {
        Controller::Devices
    }

    fn apply(&self, dir: &Path, r: &Resources) -> Result<()> {
        if r.devices.is_empty() {
            return Ok(());
        }
        // The kernel takes one rule per write; a run of rules for the same file goes
        // through one open file.
        let mut runs: Vec<(&str, Vec<String>)> = vec![("devices.deny", vec!["a".into()])];
        for rule in &r.devices {
            let file = if rule.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            match runs.last_mut() {
                Some((f, rules)) if *f == file => rules.push(rule.to_string()),
                _ => runs.push((file, vec![rule.to_string()])),
            }
        }
        for (file, rules) in runs {
            parse::write_each(&dir.join(file), rules)?;
        }
        Ok(())
    }

    fn read(&self, dir: &Path, out: &mut Resources) -> Result<()> {
        let text = read(dir, "devices.list")?;
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        out.devices = if lines == ["a *:* rwm"] {
            Vec::new()
        } else {
            lines
                .iter()
                .map(|l| {
                    l.parse::<DeviceRule>().map_err(|e| {
                        Error::parse(dir.join("devices.list"), format!("{e} in {l:?}"))
                    })
                })
                .collect::<Result<_>>()?
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_testkit::FakeTree;

    #[test]
    fn deny_all_then_rules_in_order() {
        let t = FakeTree::new();
        t.files(&["devices.allow", "devices.deny"]);
        let r = Resources {
            devices: vec![
                "c 1:3 rwm".parse().unwrap(),
                "deny c 1:5 w".parse().unwrap(),
            ],
            ..Resources::default()
        };
        Devices.apply(t.path(), &r).unwrap();
        // A plain file keeps only the last write; the order is checked on the host.
        assert_eq!(t.read("devices.allow"), "c 1:3 rwm");
        assert_eq!(t.read("devices.deny"), "c 1:5 w");
    }

    #[test]
    fn nothing_set_writes_nothing() {
        let t = FakeTree::new();
        Devices.apply(t.path(), &Resources::default()).unwrap();
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
    }

    #[test]
    fn read_list() {
        let t = FakeTree::new();
        t.file("devices.list", "a *:* rwm\n");
        let mut r = Resources::default();
        Devices.read(t.path(), &mut r).unwrap();
        assert!(r.devices.is_empty());
        t.file("devices.list", "c 1:3 rwm\nc 136:* rw\n");
        Devices.read(t.path(), &mut r).unwrap();
        assert_eq!(
            r.devices,
            vec!["c 1:3 rwm".parse().unwrap(), "c 136:* rw".parse().unwrap()]
        );
        t.file("devices.list", "c 1:3 rwx\n");
        assert!(Devices
            .read(t.path(), &mut r)
            .unwrap_err()
            .to_string()
            .contains("devices.list"));
    }
}
