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

    /// Denies everything, then writes the rules in order; writes nothing without rules
    /// (no rules means "leave the device rules alone", not "deny all").
    fn apply(&self, dir: &Path, r: &Resources) -> Result<()> {
        for (file, rules) in writes(&r.devices) {
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

/// The writes that put `rules` in force: `a` to `devices.deny`, then each rule to
/// `devices.allow` or `devices.deny`. The kernel takes one rule per write; a run of rules
/// for the same file goes through one open file. None for no rules.
fn writes(rules: &[DeviceRule]) -> Vec<(&'static str, Vec<String>)> {
    if rules.is_empty() {
        return Vec::new();
    }
    let mut runs: Vec<(&str, Vec<String>)> = vec![("devices.deny", vec!["a".into()])];
    for rule in rules {
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
    runs
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
        // A plain file keeps only the last write; the order is in `writes`.
        assert_eq!(t.read("devices.allow"), "c 1:3 rwm");
        assert_eq!(t.read("devices.deny"), "c 1:5 w");
        let rules: Vec<DeviceRule> = ["c 1:3 rwm", "c 1:5 r", "deny c 1:5 w", "b 8:0 r"]
            .iter()
            .map(|l| l.parse().unwrap())
            .collect();
        let lines = |v: &[&str]| v.iter().map(|l| l.to_string()).collect::<Vec<_>>();
        assert_eq!(
            writes(&rules),
            vec![
                ("devices.deny", lines(&["a"])),
                ("devices.allow", lines(&["c 1:3 rwm", "c 1:5 r"])),
                ("devices.deny", lines(&["c 1:5 w"])),
                ("devices.allow", lines(&["b 8:0 r"])),
            ]
        );
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
