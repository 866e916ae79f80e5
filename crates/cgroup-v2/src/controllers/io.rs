//! The io controller: `io.weight` (`default N`), per-device `io.max` lines, and `io.stat`
//! (cgroup-v2.rst, "Controllers / IO / IO Interface Files").

use std::path::Path;

use isol_ns_core::cgroupfs::read_optional;
use isol_ns_core::resources::IoDeviceLimit;
use isol_ns_core::stats::IoDeviceStats;
use isol_ns_core::units::Limit;
use isol_ns_core::{
    parse, Controller, Error, ResourceController, Resources, Result, Setting, Stats,
};

use crate::files::write_setting;

/// `io.weight` and `io.max`.
#[derive(Debug)]
pub struct Io;

impl ResourceController for Io {
    fn controller(&self) -> Controller {
        Controller::Io
    }

    fn apply(&self, dir: &Path, r: &Resources) -> Result<()> {
        if let Some(w) = r.io.weight {
            write_setting(dir, Setting::IoWeight, "io.weight", &format!("default {w}"))?;
        }
        for dev in &r.io.devices {
            write_setting(dir, Setting::IoDevices, "io.max", &max_line(dev))?;
        }
        Ok(())
    }

    /// `io.weight`'s `default` line, and every `io.max` line (a key the kernel shows as
    /// `max` reads as `Limit::Max`).
    fn read(&self, dir: &Path, out: &mut Resources) -> Result<()> {
        if let Some(text) = read_optional(dir, "io.weight")? {
            let m = parse::flat_keyed(&dir.join("io.weight"), &text)?;
            out.io.weight = m.get("default").copied();
        }
        if let Some(text) = read_optional(dir, "io.max")? {
            let path = dir.join("io.max");
            out.io.devices = parse::nested_keyed(&path, &text)?
                .into_iter()
                .map(|line| {
                    let (major, minor) = device(&path, &line.key)?;
                    Ok(IoDeviceLimit {
                        major,
                        minor,
                        rbps: line.limit("rbps"),
                        wbps: line.limit("wbps"),
                        riops: line.limit("riops"),
                        wiops: line.limit("wiops"),
                    })
                })
                .collect::<Result<_>>()?;
        }
        Ok(())
    }

    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<()> {
        let Some(text) = read_optional(dir, "io.stat")? else {
            return Ok(());
        };
        let path = dir.join("io.stat");
        stats.io = parse::nested_keyed(&path, &text)?
            .into_iter()
            .map(|line| {
                let (major, minor) = device(&path, &line.key)?;
                let get = |k: &str| line.u64(k).unwrap_or(0);
                Ok(IoDeviceStats {
                    major,
                    minor,
                    rbytes: get("rbytes"),
                    wbytes: get("wbytes"),
                    rios: get("rios"),
                    wios: get("wios"),
                })
            })
            .collect::<Result<_>>()?;
        Ok(())
    }
}

/// The `io.max` line for one device, with only the keys that are set.
fn max_line(dev: &IoDeviceLimit) -> String {
    let mut line = format!("{}:{}", dev.major, dev.minor);
    for (key, value) in [
        ("rbps", dev.rbps),
        ("wbps", dev.wbps),
        ("riops", dev.riops),
        ("wiops", dev.wiops),
    ] {
        if let Some(v) = value {
            line.push_str(&format!(" {key}={v}"));
        }
    }
    line
}

fn device(path: &Path, key: &str) -> Result<(u32, u32)> {
    let bad = || Error::parse(path, format!("expected a MAJ:MIN device, found {key:?}"));
    let (a, b) = key.split_once(':').ok_or_else(bad)?;
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

/// Whether a device limit is all `max` (the kernel then drops its `io.max` line).
pub fn is_unlimited(dev: &IoDeviceLimit) -> bool {
    [dev.rbps, dev.wbps, dev.riops, dev.wiops]
        .iter()
        .all(|v| matches!(v, None | Some(Limit::Max)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_testkit::FakeTree;

    #[test]
    fn weight_is_written_as_default_line() {
        let t = FakeTree::new();
        t.files(&["io.weight"]);
        let mut r = Resources::default();
        r.io.weight = Some(500);
        Io.apply(t.path(), &r).unwrap();
        assert_eq!(t.read("io.weight"), "default 500");
        t.file("io.weight", "default 500\n8:0 50\n");
        let mut back = Resources::default();
        Io.read(t.path(), &mut back).unwrap();
        assert_eq!(back.io.weight, Some(500));
    }

    #[test]
    fn max_lines_carry_only_set_keys() {
        let t = FakeTree::new();
        t.files(&["io.max"]);
        let mut r = Resources::default();
        r.io.devices
            .push(IoDeviceLimit::parse("8:16:rbps=1M,wiops=100").unwrap());
        Io.apply(t.path(), &r).unwrap();
        assert_eq!(t.read("io.max"), "8:16 rbps=1048576 wiops=100");
        t.file("io.max", "8:16 rbps=1048576 wbps=max riops=max wiops=100\n");
        let mut back = Resources::default();
        Io.read(t.path(), &mut back).unwrap();
        let d = &back.io.devices[0];
        assert_eq!(
            (d.major, d.minor, d.rbps, d.wbps, d.wiops),
            (
                8,
                16,
                Some(Limit::Value(1 << 20)),
                Some(Limit::Max),
                Some(Limit::Value(100))
            )
        );
        assert!(!is_unlimited(d));
    }

    #[test]
    fn stats_skip_discard_keys() {
        let t = FakeTree::new();
        t.file(
            "io.stat",
            "8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n253:0 rbytes=4096 wbytes=0 rios=1 wios=0\n",
        );
        let mut s = Stats::default();
        Io.stats(t.path(), &mut s).unwrap();
        assert_eq!(s.io.len(), 2);
        assert_eq!(
            s.io[0],
            IoDeviceStats {
                major: 8,
                minor: 16,
                rbytes: 1459200,
                wbytes: 314773504,
                rios: 192,
                wios: 353
            }
        );
        assert_eq!((s.io[1].major, s.io[1].rbytes), (253, 4096));
        t.file("io.stat", "sda rbytes=1\n");
        assert!(Io
            .stats(t.path(), &mut s)
            .unwrap_err()
            .to_string()
            .contains("MAJ:MIN"));
    }
}
