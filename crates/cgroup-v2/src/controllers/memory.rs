//! The memory controller: `memory.min`, `memory.low`, `memory.high`, `memory.max`,
//! `memory.swap.max`, `memory.oom.group`, and the usage files `memory.current`,
//! `memory.peak`, `memory.stat`, `memory.events`
//! (cgroup-v2.rst, "Controllers / Memory / Memory Interface Files").

use std::path::Path;

use isol_ns_core::cgroupfs::{self, read_optional};
use isol_ns_core::stats::{MemoryEvents, MemoryStats};
use isol_ns_core::units::Limit;
use isol_ns_core::{parse, Controller, ResourceController, Resources, Result, Setting, Stats};

use crate::files::write_setting;

/// The memory limits and protections.
#[derive(Debug)]
pub struct Memory;

/// The limit files, with how to reach the field in [`Resources`].
fn limits(r: &Resources) -> [(Setting, &'static str, Option<Limit>); 5] {
    let m = &r.memory;
    [
        (Setting::MemoryMin, "memory.min", m.min),
        (Setting::MemoryLow, "memory.low", m.low),
        (Setting::MemoryHigh, "memory.high", m.high),
        (Setting::MemoryMax, "memory.max", m.max),
        (Setting::MemorySwapMax, "memory.swap.max", m.swap_max),
    ]
}

impl ResourceController for Memory {
    fn controller(&self) -> Controller {
        Controller::Memory
    }

    fn apply(&self, dir: &Path, r: &Resources) -> Result<()> {
        for (setting, file, value) in limits(r) {
            if let Some(v) = value {
                write_setting(dir, setting, file, &v.to_string())?;
            }
        }
        if let Some(group) = r.memory.oom_group {
            let value = if group { "1" } else { "0" };
            write_setting(dir, Setting::MemoryOomGroup, "memory.oom.group", value)?;
        }
        Ok(())
    }

    fn read(&self, dir: &Path, out: &mut Resources) -> Result<()> {
        let m = &mut out.memory;
        for (file, slot) in [
            ("memory.min", &mut m.min),
            ("memory.low", &mut m.low),
            ("memory.high", &mut m.high),
            ("memory.max", &mut m.max),
            ("memory.swap.max", &mut m.swap_max),
        ] {
            if let Some(text) = read_optional(dir, file)? {
                *slot = Some(parse::single_limit(&dir.join(file), &text)?);
            }
        }
        if let Some(group) = cgroupfs::read_flag(dir, "memory.oom.group")? {
            m.oom_group = Some(group);
        }
        Ok(())
    }

    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<()> {
        let Some(current) = read_optional(dir, "memory.current")? else {
            return Ok(());
        };
        let mut out = MemoryStats {
            current: parse::single_u64(&dir.join("memory.current"), &current)?,
            ..Default::default()
        };
        if let Some(text) = read_optional(dir, "memory.peak")? {
            out.peak = Some(parse::single_u64(&dir.join("memory.peak"), &text)?);
        }
        if let Some(text) = read_optional(dir, "memory.max")? {
            out.max = Some(parse::single_limit(&dir.join("memory.max"), &text)?);
        }
        if let Some(text) = read_optional(dir, "memory.stat")? {
            out.stat = parse::flat_keyed(&dir.join("memory.stat"), &text)?;
        }
        if let Some(text) = read_optional(dir, "memory.events")? {
            out.events = events(dir, &text)?;
        }
        stats.memory = Some(out);
        Ok(())
    }
}

/// `memory.events`: low, high, max, oom, oom_kill (other keys, such as
/// `oom_group_kill`, are ignored).
pub(crate) fn events(dir: &Path, text: &str) -> Result<MemoryEvents> {
    let m = parse::flat_keyed(&dir.join("memory.events"), text)?;
    let get = |k: &str| m.get(k).copied().unwrap_or(0);
    Ok(MemoryEvents {
        low: get("low"),
        high: get("high"),
        max: get("max"),
        oom: get("oom"),
        oom_kill: get("oom_kill"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_ns_core::Error;
    use isol_testkit::FakeTree;

    const FILES: [&str; 6] = [
        "memory.min",
        "memory.low",
        "memory.high",
        "memory.max",
        "memory.swap.max",
        "memory.oom.group",
    ];

    #[test]
    fn apply_and_read_back() {
        let t = FakeTree::new();
        t.files(&FILES);
        let mut r = Resources::default();
        r.memory.min = Some(Limit::Value(1 << 20));
        r.memory.low = Some(Limit::Value(2 << 20));
        r.memory.high = Some(Limit::Value(48 << 20));
        r.memory.max = Some(Limit::Value(64 << 20));
        r.memory.swap_max = Some(Limit::Max);
        r.memory.oom_group = Some(true);
        Memory.apply(t.path(), &r).unwrap();
        assert_eq!(t.read("memory.max"), (64u64 << 20).to_string());
        assert_eq!(t.read("memory.swap.max"), "max");
        assert_eq!(t.read("memory.oom.group"), "1");
        let mut back = Resources::default();
        Memory.read(t.path(), &mut back).unwrap();
        assert_eq!(back.memory, r.memory);
    }

    #[test]
    fn only_set_fields_are_written() {
        let t = FakeTree::new();
        t.files(&FILES);
        let mut r = Resources::default();
        r.memory.max = Some(Limit::Value(4096));
        Memory.apply(t.path(), &r).unwrap();
        assert_eq!(t.read("memory.max"), "4096");
        assert_eq!(t.read("memory.high"), "");
    }

    #[test]
    fn no_swap_accounting_is_unsupported() {
        let t = FakeTree::new();
        t.files(&["memory.max"]);
        let mut r = Resources::default();
        r.memory.swap_max = Some(Limit::Value(0));
        let err = Memory.apply(t.path(), &r).unwrap_err();
        // Named as the Resources field, as cgroup-v1 names it; the reason names the file.
        assert!(
            matches!(&err, Error::Unsupported { setting, .. } if setting == "memory.swap_max"),
            "{err}"
        );
        assert!(
            err.to_string().contains("memory.swap.max does not exist"),
            "{err}"
        );
    }

    #[test]
    fn stats_from_fixtures() {
        let t = FakeTree::new();
        t.file("memory.current", "1052672\n")
            .file("memory.peak", "2097152\n")
            .file("memory.max", "max\n")
            .file("memory.stat", "anon 4096\nfile 8192\nkernel_stack 16384\n")
            .file(
                "memory.events",
                "low 0\nhigh 3\nmax 9\noom 2\noom_kill 1\noom_group_kill 0\nsock_throttled 0\n",
            );
        let mut s = Stats::default();
        Memory.stats(t.path(), &mut s).unwrap();
        let m = s.memory.unwrap();
        assert_eq!(
            (m.current, m.peak, m.max),
            (1052672, Some(2097152), Some(Limit::Max))
        );
        assert_eq!(m.stat["file"], 8192);
        assert_eq!(
            m.events,
            MemoryEvents {
                low: 0,
                high: 3,
                max: 9,
                oom: 2,
                oom_kill: 1
            }
        );
        assert_eq!(m.failcnt, None);
    }

    #[test]
    fn stats_without_the_controller_are_none() {
        let t = FakeTree::new();
        let mut s = Stats::default();
        Memory.stats(t.path(), &mut s).unwrap();
        assert!(s.memory.is_none());
    }
}
