//! The v1 `memory` controller: the hard limit, the soft limit, memory+swap, and the
//! usage counters.
//!
//! Reference: Documentation/admin-guide/cgroup-v1/memory.rst, 2.5 "Reclaim", 2.4 "Swap
//! Extension", 5 "Misc. interfaces" and 9 "OOM Control". Mapping from the v2 model:
//! - `memory.max` → `memory.limit_in_bytes` (`max` is `-1`; the kernel shows unlimited as
//!   `PAGE_COUNTER_MAX` in bytes, which reads back as `max`).
//! - `memory.low` → `memory.soft_limit_in_bytes`. Both say "under memory pressure, reclaim
//!   this cgroup only above this much": v1 reclaims cgroups beyond their soft limit first,
//!   v2 protects usage below `low`. An unlimited soft limit (the v1 default) reads back as
//!   `low = max`.
//! - `memory.swap_max` → `memory.memsw.limit_in_bytes = max + swap_max`
//!   (`convert::swap_max_to_memsw`), because v1 bounds memory and swap together. When
//!   only `max` changes, a finite memsw limit moves with it so the swap allowance stays.
//! - `memory.min`, `memory.high` and `memory.oom_group` have no v1 equivalent:
//!   [`isol_ns_core::Error::Unsupported`].

use std::path::Path;

use isol_ns_core::convert;
use isol_ns_core::stats::{MemoryEvents, MemoryStats};
use isol_ns_core::units::Limit;
use isol_ns_core::{parse, Controller, ResourceController, Resources, Result, Setting, Stats};

use super::{optional, read, read_bytes_limit, read_u64, write_bytes_limit, BACKEND};

/// The memory controller. `memsw` says whether the kernel accounts swap
/// (`memory.memsw.*` exist; not when booted with `swapaccount=0` or built without it).
pub struct Memory {
    /// Whether `memory.memsw.limit_in_bytes` exists on this host.
    pub memsw: bool,
}

const LIMIT: &str = "memory.limit_in_bytes";
const MEMSW: &str = "memory.memsw.limit_in_bytes";

fn order(l: Limit) -> u64 {
    l.value().unwrap_or(u64::MAX)
}

impl Memory {
    /// Writes a new limit and/or memsw limit in an order the kernel accepts: memsw must
    /// stay ≥ the limit after each write. When raising past the current memsw limit, memsw
    /// goes first; otherwise the limit goes first.
    fn set_limits(&self, dir: &Path, limit: Option<Limit>, memsw: Option<Limit>) -> Result<()> {
        let limit_first = match (limit, memsw) {
            (Some(l), Some(_)) => order(l) <= order(read_bytes_limit(dir, MEMSW)?),
            _ => true,
        };
        let write_limit = || {
            limit.map_or(Ok(()), |l| {
                write_bytes_limit(dir, Setting::MemoryMax, LIMIT, l)
            })
        };
        let write_memsw = || {
            memsw.map_or(Ok(()), |m| {
                write_bytes_limit(dir, Setting::MemorySwapMax, MEMSW, m)
            })
        };
        if limit_first {
            write_limit()?;
            write_memsw()
        } else {
            write_memsw()?;
            write_limit()
        }
    }
}

impl ResourceController for Memory {
    fn controller(&self) -> Controller {
        Controller::Memory
    }

    fn check(&self, r: &Resources) -> Result<()> {
        let m = &r.memory;
        let v2_only = "cgroup v1 has no equivalent (use the cgroup-v2 backend)";
        if m.min.is_some() {
            return Err(Setting::MemoryMin
                .unsupported(BACKEND, format!("hard memory protection: {v2_only}")));
        }
        if m.high.is_some() {
            return Err(Setting::MemoryHigh
                .unsupported(BACKEND, format!("a throttling threshold: {v2_only}")));
        }
        if m.oom_group.is_some() {
            return Err(Setting::MemoryOomGroup.unsupported(
                BACKEND,
                format!("killing the whole cgroup on OOM: {v2_only}"),
            ));
        }
        if m.swap_max.is_some() && !self.memsw {
            return Err(Setting::MemorySwapMax.unsupported(
                BACKEND,
                format!("{MEMSW} does not exist: this kernel does not account swap (boot with swapaccount=1)"),
            ));
        }
        Ok(())
    }

    fn apply(&self, dir: &Path, r: &Resources) -> Result<()> {
        self.check(r)?;
        let m = &r.memory;
        if let Some(low) = m.low {
            write_bytes_limit(dir, Setting::MemoryLow, "memory.soft_limit_in_bytes", low)?;
        }
        let memsw = match (m.max, m.swap_max) {
            (_, Some(swap)) => {
                let max = match m.max {
                    Some(max) => max,
                    None => read_bytes_limit(dir, LIMIT)?,
                };
                Some(convert::swap_max_to_memsw(swap, max)?)
            }
            // Only the limit changes: keep the swap allowance a finite memsw limit gives.
            (Some(max), None) if self.memsw => match read_bytes_limit(dir, MEMSW)? {
                Limit::Max => None,
                memsw => {
                    let swap = convert::memsw_to_swap_max(memsw, read_bytes_limit(dir, LIMIT)?)?;
                    Some(convert::swap_max_to_memsw(swap, max)?)
                }
            },
            _ => None,
        };
        self.set_limits(dir, m.max, memsw)
    }

    fn read(&self, dir: &Path, out: &mut Resources) -> Result<()> {
        let max = read_bytes_limit(dir, LIMIT)?;
        out.memory.max = Some(max);
        out.memory.low = Some(read_bytes_limit(dir, "memory.soft_limit_in_bytes")?);
        if self.memsw {
            out.memory.swap_max = Some(convert::memsw_to_swap_max(
                read_bytes_limit(dir, MEMSW)?,
                max,
            )?);
        }
        Ok(())
    }

    /// `memory.usage_in_bytes`, `max_usage_in_bytes` (peak), `failcnt` (also counted as
    /// `events.max`), `limit_in_bytes`, `memory.stat`, and `oom_kill` from
    /// `memory.oom_control`. v1 has no counter of OOM events (only the `under_oom`
    /// state), so `events.oom` stays 0.
    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<()> {
        let failcnt = read_u64(dir, "memory.failcnt")?;
        stats.memory = Some(MemoryStats {
            current: read_u64(dir, "memory.usage_in_bytes")?,
            peak: optional(read_u64(dir, "memory.max_usage_in_bytes"))?,
            max: Some(read_bytes_limit(dir, LIMIT)?),
            failcnt: Some(failcnt),
            stat: parse::flat_keyed(&dir.join("memory.stat"), &read(dir, "memory.stat")?)?,
            events: MemoryEvents {
                max: failcnt,
                oom_kill: oom_kills(dir)?,
                ..MemoryEvents::default()
            },
        });
        Ok(())
    }
}

/// `oom_kill` of `memory.oom_control` (Linux 4.13; 0 before).
pub fn oom_kills(dir: &Path) -> Result<u64> {
    let path = dir.join("memory.oom_control");
    let oom = parse::flat_keyed(&path, &read(dir, "memory.oom_control")?)?;
    Ok(oom.get("oom_kill").copied().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_ns_core::Error;
    use isol_testkit::FakeTree;

    const UNLIMITED: &str = "9223372036854771712\n";

    fn tree() -> FakeTree {
        let t = FakeTree::new();
        t.file(LIMIT, UNLIMITED)
            .file(MEMSW, UNLIMITED)
            .file("memory.soft_limit_in_bytes", UNLIMITED);
        t
    }

    fn mem(max: Option<Limit>, swap: Option<Limit>) -> Resources {
        let mut r = Resources::default();
        r.memory.max = max;
        r.memory.swap_max = swap;
        r
    }

    #[test]
    fn limit_and_swap() {
        let t = tree();
        let m = Memory { memsw: true };
        m.apply(
            t.path(),
            &mem(Some(Limit::Value(64 << 20)), Some(Limit::Value(16 << 20))),
        )
        .unwrap();
        assert_eq!(t.read(LIMIT), (64u64 << 20).to_string());
        assert_eq!(t.read(MEMSW), (80u64 << 20).to_string());
        let mut r = Resources::default();
        m.read(t.path(), &mut r).unwrap();
        assert_eq!(
            (r.memory.max, r.memory.swap_max),
            (Some(Limit::Value(64 << 20)), Some(Limit::Value(16 << 20)))
        );
        assert_eq!(r.memory.low, Some(Limit::Max));
        // Raising only the limit moves memsw along, keeping 16M of swap.
        m.apply(t.path(), &mem(Some(Limit::Value(128 << 20)), None))
            .unwrap();
        assert_eq!(t.read(MEMSW), (144u64 << 20).to_string());
        // Unlimited swap is unlimited memsw.
        m.apply(t.path(), &mem(None, Some(Limit::Max))).unwrap();
        assert_eq!(t.read(MEMSW), "-1");
        assert_eq!(t.read(LIMIT), (128u64 << 20).to_string());
    }

    #[test]
    fn max_is_minus_one_and_reads_back_max() {
        let t = tree();
        let m = Memory { memsw: true };
        m.apply(t.path(), &mem(Some(Limit::Max), None)).unwrap();
        assert_eq!(t.read(LIMIT), "-1");
        t.file(LIMIT, UNLIMITED);
        let mut r = Resources::default();
        m.read(t.path(), &mut r).unwrap();
        assert_eq!(
            (r.memory.max, r.memory.swap_max),
            (Some(Limit::Max), Some(Limit::Max))
        );
    }

    #[test]
    fn low_is_the_soft_limit() {
        let t = tree();
        let mut r = Resources::default();
        r.memory.low = Some(Limit::Value(32 << 20));
        Memory { memsw: true }.apply(t.path(), &r).unwrap();
        assert_eq!(
            t.read("memory.soft_limit_in_bytes"),
            (32u64 << 20).to_string()
        );
    }

    #[test]
    fn v2_only_settings_are_unsupported() {
        let m = Memory { memsw: true };
        let mut r = Resources::default();
        r.memory.min = Some(Limit::Value(1));
        let e = m.check(&r).unwrap_err();
        assert!(
            matches!(&e, Error::Unsupported { setting, backend: "cgroup-v1", .. } if setting == "memory.min"),
            "{e}"
        );
        let mut r = Resources::default();
        r.memory.high = Some(Limit::Max);
        assert!(m
            .check(&r)
            .unwrap_err()
            .to_string()
            .starts_with("memory.high is not supported by cgroup-v1"));
        let mut r = Resources::default();
        r.memory.oom_group = Some(true);
        assert!(m
            .check(&r)
            .unwrap_err()
            .to_string()
            .starts_with("memory.oom_group"));
        // Nothing is written when refused.
        let t = tree();
        r.memory.max = Some(Limit::Value(4096));
        assert!(m.apply(t.path(), &r).is_err());
        assert_eq!(t.read(LIMIT), UNLIMITED.trim());
    }

    #[test]
    fn swap_without_accounting_names_the_file() {
        let e = Memory { memsw: false }
            .check(&mem(Some(Limit::Value(4096)), Some(Limit::Value(0))))
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, Error::Unsupported { .. })
                && msg.contains("memory.swap_max")
                && msg.contains(MEMSW),
            "{msg}"
        );
        // Without accounting, a memory limit alone still works and swap is not read.
        let t = FakeTree::new();
        t.file(LIMIT, UNLIMITED)
            .file("memory.soft_limit_in_bytes", UNLIMITED);
        let m = Memory { memsw: false };
        m.apply(t.path(), &mem(Some(Limit::Value(8192)), None))
            .unwrap();
        let mut r = Resources::default();
        m.read(t.path(), &mut r).unwrap();
        assert_eq!(
            (r.memory.max, r.memory.swap_max),
            (Some(Limit::Value(8192)), None)
        );
    }

    #[test]
    fn finite_swap_needs_a_finite_limit() {
        let t = tree();
        let err = Memory { memsw: true }
            .apply(t.path(), &mem(None, Some(Limit::Value(4096))))
            .unwrap_err();
        assert!(err.to_string().contains("memory.swap_max"), "{err}");
    }

    #[test]
    fn stats_parse_v1_files() {
        let t = tree();
        t.file("memory.usage_in_bytes", "1048576\n")
            .file("memory.max_usage_in_bytes", "2097152\n")
            .file("memory.failcnt", "7\n")
            .file(
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 1\noom_kill 2\n",
            )
            .file("memory.stat", "cache 0\nrss 1048576\n\ntotal_rss 1048576\n");
        let mut s = Stats::default();
        Memory { memsw: true }.stats(t.path(), &mut s).unwrap();
        let m = s.memory.clone().unwrap();
        assert_eq!(
            (m.current, m.peak, m.failcnt, m.max),
            (1 << 20, Some(2 << 20), Some(7), Some(Limit::Max))
        );
        assert_eq!((m.events.max, m.events.oom_kill, m.events.oom), (7, 2, 0));
        assert_eq!(m.stat["total_rss"], 1 << 20);
        t.file("memory.oom_control", "oom_kill_disable 0\nunder_oom\n");
        let err = Memory { memsw: true }
            .stats(t.path(), &mut s)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("memory.oom_control") && err.contains("under_oom"),
            "{err}"
        );
    }
}
