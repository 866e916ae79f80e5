//! The v1 `blkio` controller: proportional weight and per-device throttling.
//!
//! Reference: Documentation/admin-guide/cgroup-v1/blkio-controller.rst, "Throttling/Upper
//! limit policy" and "Proportional weight policy files". The weight file is
//! `blkio.weight` (CFQ, before Linux 5.0; 10..=1000, default 500) or `blkio.bfq.weight`
//! (BFQ; 1..=1000, default 100); with neither (no proportional scheduler built in) a set
//! weight is refused naming the file. `io.weight` converts with
//! `convert::io_weight_to_blkio_weight` on the scale of the file written, so the v2
//! default 100 lands on that file's default and 1 and 10000 on its ends. Above the
//! default v1 has fewer steps than v2, so a weight reads back as the v2 value of the v1
//! step it landed on (BFQ: 5000 → 545 → 4995). Throttle limits of 0 mean "no limit" to
//! the kernel, so `max` is written as 0 and reads back as absent.

use std::collections::BTreeMap;
use std::path::Path;

use isol_ns_core::convert;
use isol_ns_core::resources::IoDeviceLimit;
use isol_ns_core::stats::IoDeviceStats;
use isol_ns_core::units::Limit;
use isol_ns_core::{Controller, Error, ResourceController, Resources, Result, Setting, Stats};

use super::{optional, read, write, BACKEND};

/// `blkio.*`.
pub struct Blkio;

/// The weight files, in the order they are looked for, with their range and default.
const WEIGHT_FILES: [(&str, convert::BlkioWeightScale); 2] = [
    ("blkio.weight", convert::CFQ_WEIGHT),
    ("blkio.bfq.weight", convert::BFQ_WEIGHT),
];

/// A limit of one device, picked out of an [`IoDeviceLimit`].
type Field = fn(&mut IoDeviceLimit) -> &mut Option<Limit>;

const THROTTLE: [(&str, Field); 4] = [
    ("blkio.throttle.read_bps_device", |d| &mut d.rbps),
    ("blkio.throttle.write_bps_device", |d| &mut d.wbps),
    ("blkio.throttle.read_iops_device", |d| &mut d.riops),
    ("blkio.throttle.write_iops_device", |d| &mut d.wiops),
];

/// One `MAJ:MIN …` line's device numbers.
fn device(path: &Path, line: &str, word: &str) -> Result<(u32, u32)> {
    let bad = || {
        Error::parse(
            path,
            format!("expected MAJ:MIN, found {word:?} in {line:?}"),
        )
    };
    let (a, b) = word.split_once(':').ok_or_else(bad)?;
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

/// Parses a throttle limit file: `MAJ:MIN VALUE` per line.
pub fn parse_device_values(path: &Path, text: &str) -> Result<Vec<((u32, u32), u64)>> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let [dev, value] = words[..] else {
            return Err(Error::parse(
                path,
                format!("expected \"MAJ:MIN VALUE\", found {line:?}"),
            ));
        };
        let value = value.parse().map_err(|_| {
            Error::parse(path, format!("value {value:?} is not a number in {line:?}"))
        })?;
        out.push((device(path, line, dev)?, value));
    }
    Ok(out)
}

/// Parses `blkio.throttle.io_service_bytes` / `io_serviced`: `MAJ:MIN OP VALUE` lines
/// (OP is Read, Write, Sync, Async, Discard, Total) and a final `Total VALUE`.
/// Returns (read, write) per device.
pub fn parse_io_service(path: &Path, text: &str) -> Result<BTreeMap<(u32, u32), (u64, u64)>> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            ["Total", _] => continue,
            [dev, op, value] => {
                let value: u64 = value.parse().map_err(|_| {
                    Error::parse(path, format!("value {value:?} is not a number in {line:?}"))
                })?;
                let entry: &mut (u64, u64) = out.entry(device(path, line, dev)?).or_default();
                match op {
                    "Read" => entry.0 = value,
                    "Write" => entry.1 = value,
                    _ => {}
                }
            }
            _ => {
                return Err(Error::parse(
                    path,
                    format!("expected \"MAJ:MIN OP VALUE\", found {line:?}"),
                ))
            }
        }
    }
    Ok(out)
}

impl ResourceController for Blkio {
    fn controller(&self) -> Controller {
        Controller::Io
    }

    fn apply(&self, dir: &Path, r: &Resources) -> Result<()> {
        if let Some(weight) = r.io.weight {
            let Some((file, scale)) = WEIGHT_FILES.iter().find(|(f, _)| dir.join(f).exists())
            else {
                return Err(Setting::IoWeight.unsupported(
                    BACKEND,
                    format!(
                        "{} does not exist: the kernel has no proportional I/O scheduler for cgroup v1 (CFQ or BFQ)",
                        dir.join("blkio.weight").display()
                    ),
                ));
            };
            write(
                dir,
                Setting::IoWeight,
                file,
                &convert::io_weight_to_blkio_weight(weight, *scale).to_string(),
            )?;
        }
        for dev in &r.io.devices {
            let mut dev = dev.clone();
            for (file, field) in THROTTLE {
                if let Some(limit) = *field(&mut dev) {
                    let value = convert::io_limit_to_v1_throttle(limit);
                    write(
                        dir,
                        Setting::IoDevices,
                        file,
                        &format!("{}:{} {value}", dev.major, dev.minor),
                    )?;
                }
            }
        }
        Ok(())
    }

    fn read(&self, dir: &Path, out: &mut Resources) -> Result<()> {
        for (file, scale) in WEIGHT_FILES {
            if let Some(text) = optional(read(dir, file))? {
                // blkio.bfq.weight reads "default 100" in some kernels.
                let w = text.split_whitespace().last().unwrap_or("");
                let w = isol_ns_core::parse::single_u64(&dir.join(file), w)?;
                out.io.weight = Some(convert::blkio_weight_to_io_weight(w, scale));
                break;
            }
        }
        let mut devices: BTreeMap<(u32, u32), IoDeviceLimit> = BTreeMap::new();
        for (file, field) in THROTTLE {
            let Some(text) = optional(read(dir, file))? else {
                continue;
            };
            for ((major, minor), value) in parse_device_values(&dir.join(file), &text)? {
                let d = devices.entry((major, minor)).or_insert(IoDeviceLimit {
                    major,
                    minor,
                    ..Default::default()
                });
                *field(d) = Some(Limit::Value(value));
            }
        }
        out.io.devices = devices.into_values().collect();
        Ok(())
    }

    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<()> {
        let mut per: BTreeMap<(u32, u32), IoDeviceStats> = BTreeMap::new();
        for (file, bytes) in [
            ("blkio.throttle.io_service_bytes", true),
            ("blkio.throttle.io_serviced", false),
        ] {
            let Some(text) = optional(read(dir, file))? else {
                continue;
            };
            for ((major, minor), (r, w)) in parse_io_service(&dir.join(file), &text)? {
                let s = per.entry((major, minor)).or_insert(IoDeviceStats {
                    major,
                    minor,
                    ..Default::default()
                });
                if bytes {
                    (s.rbytes, s.wbytes) = (r, w);
                } else {
                    (s.rios, s.wios) = (r, w);
                }
            }
        }
        stats.io = per.into_values().collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isol_testkit::FakeTree;

    #[test]
    fn weight_goes_to_whichever_file_exists() {
        let t = FakeTree::new();
        t.file("blkio.bfq.weight", "100\n");
        let mut r = Resources::default();
        // BFQ: 1..=1000, default 100.
        for (io, bfq, back) in [(100, "100", 100), (1, "1", 1), (10_000, "1000", 10_000)] {
            r.io.weight = Some(io);
            Blkio.apply(t.path(), &r).unwrap();
            assert_eq!(t.read("blkio.bfq.weight"), bfq, "io {io}");
            let mut out = Resources::default();
            Blkio.read(t.path(), &mut out).unwrap();
            assert_eq!(out.io.weight, Some(back), "io {io}");
        }
        r.io.weight = Some(5000);
        Blkio.apply(t.path(), &r).unwrap();
        assert_eq!(t.read("blkio.bfq.weight"), "545");
        let mut out = Resources::default();
        Blkio.read(t.path(), &mut out).unwrap();
        assert_eq!(out.io.weight, Some(4995), "the v2 value of BFQ's step 545");
        // Some kernels show "default 100".
        t.file("blkio.bfq.weight", "default 100\n");
        Blkio.read(t.path(), &mut out).unwrap();
        assert_eq!(out.io.weight, Some(100));
        // CFQ: 10..=1000, default 500; blkio.weight is preferred when both exist.
        t.file("blkio.weight", "500\n");
        for (io, cfq) in [(100, "500"), (1, "10"), (10_000, "1000"), (5000, "747")] {
            r.io.weight = Some(io);
            Blkio.apply(t.path(), &r).unwrap();
            assert_eq!(t.read("blkio.weight"), cfq, "io {io}");
        }
        t.file("blkio.weight", "500\n");
        Blkio.read(t.path(), &mut out).unwrap();
        assert_eq!(out.io.weight, Some(100), "CFQ's default is io 100");
    }

    #[test]
    fn weight_without_a_scheduler_is_unsupported() {
        let t = FakeTree::new();
        let mut r = Resources::default();
        r.io.weight = Some(100);
        let err = Blkio.apply(t.path(), &r).unwrap_err();
        assert!(
            matches!(&err, Error::Unsupported { setting, .. } if setting == "io.weight"),
            "{err}"
        );
        assert!(err.to_string().contains("blkio.weight"), "{err}");
    }

    #[test]
    fn throttle_limits() {
        let t = FakeTree::new();
        t.files(&THROTTLE.map(|(f, _)| f));
        let mut r = Resources::default();
        r.io.devices
            .push(IoDeviceLimit::parse("8:0:rbps=1M,wiops=100").unwrap());
        Blkio.apply(t.path(), &r).unwrap();
        assert_eq!(t.read("blkio.throttle.read_bps_device"), "8:0 1048576");
        assert_eq!(t.read("blkio.throttle.write_iops_device"), "8:0 100");
        assert_eq!(t.read("blkio.throttle.write_bps_device"), "");
        // The kernel lists what is set; read merges the files per device.
        t.file(
            "blkio.throttle.read_bps_device",
            "8:0 1048576\n254:0 4096\n",
        );
        let mut back = Resources::default();
        Blkio.read(t.path(), &mut back).unwrap();
        assert_eq!(back.io.devices.len(), 2);
        assert_eq!(
            back.io.devices[0],
            IoDeviceLimit {
                major: 8,
                minor: 0,
                rbps: Some(Limit::Value(1 << 20)),
                wiops: Some(Limit::Value(100)),
                ..Default::default()
            }
        );
        assert_eq!(back.io.devices[1].rbps, Some(Limit::Value(4096)));
        r.io.devices[0].rbps = Some(Limit::Max);
        Blkio.apply(t.path(), &r).unwrap();
        assert_eq!(t.read("blkio.throttle.read_bps_device"), "8:0 0");
        t.file("blkio.throttle.read_bps_device", "8-0 5\n");
        assert!(Blkio
            .read(t.path(), &mut back)
            .unwrap_err()
            .to_string()
            .contains("8-0"));
    }

    #[test]
    fn io_service_stats() {
        let t = FakeTree::new();
        t.file(
            "blkio.throttle.io_service_bytes",
            "254:0 Read 4096\n254:0 Write 8192\n254:0 Sync 0\n254:0 Async 12288\n254:0 Discard 0\n254:0 Total 12288\nTotal 12288\n",
        )
        .file("blkio.throttle.io_serviced", "254:0 Read 1\n254:0 Write 2\n254:0 Total 3\nTotal 3\n");
        let mut s = Stats::default();
        Blkio.stats(t.path(), &mut s).unwrap();
        assert_eq!(
            s.io,
            vec![IoDeviceStats {
                major: 254,
                minor: 0,
                rbytes: 4096,
                wbytes: 8192,
                rios: 1,
                wios: 2
            }]
        );
        // An empty cgroup shows only the total.
        t.file("blkio.throttle.io_service_bytes", "Total 0\n")
            .file("blkio.throttle.io_serviced", "Total 0\n");
        Blkio.stats(t.path(), &mut s).unwrap();
        assert!(s.io.is_empty());
        t.file("blkio.throttle.io_serviced", "254:0 Read\n");
        assert!(Blkio.stats(t.path(), &mut s).is_err());
    }
}
