//! One backend-neutral model of what a cgroup may use.
//!
//! Each field means the same thing on every backend; the meaning is written here, once,
//! in cgroup v2 terms (the v1 backend converts with the functions in [`crate::convert`]).
//! `None` always means "leave the kernel's value alone"; `Some(Limit::Max)` means
//! "explicitly unlimited". A backend that cannot honour a set field returns
//! [`Error::Unsupported`] naming it as its path here (`memory.swap_max`, through
//! [`crate::controller::Setting::unsupported`]) — never a silent no-op.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::units::{parse_size, CpuList, CpuMax, Limit};
use crate::{Error, Result};

/// Limits and settings for one cgroup.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Resources {
    /// CPU time: weight and bandwidth.
    #[serde(skip_serializing_if = "CpuResources::is_empty")]
    pub cpu: CpuResources,
    /// Which cpus and memory nodes may be used.
    #[serde(skip_serializing_if = "CpusetResources::is_empty")]
    pub cpuset: CpusetResources,
    /// Memory protection and limits.
    #[serde(skip_serializing_if = "MemoryResources::is_empty")]
    pub memory: MemoryResources,
    /// Number of tasks.
    #[serde(skip_serializing_if = "PidsResources::is_empty")]
    pub pids: PidsResources,
    /// Block I/O weight and per-device limits.
    #[serde(skip_serializing_if = "IoResources::is_empty")]
    pub io: IoResources,
    /// Huge page limits, per page size.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hugetlb: Vec<HugetlbLimit>,
    /// Device access rules, applied in order after denying everything.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceRule>,
    /// Whether the cgroup's tasks are frozen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frozen: Option<bool>,
}

/// `cpu.weight` and `cpu.max`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CpuResources {
    /// Relative share of cpu time, 1..=10000 (default 100). v1: `cpu.shares` via
    /// [`crate::convert::cpu_weight_to_shares`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u64>,
    /// Bandwidth limit: quota per period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<CpuMax>,
}

/// `cpuset.cpus` and `cpuset.mems`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CpusetResources {
    /// The cpus the tasks may run on; must be within the parent's effective cpus.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<CpuList>,
    /// The memory nodes the tasks may allocate from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mems: Option<CpuList>,
}

/// The memory controller, in v2 terms.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryResources {
    /// Hard protection (`memory.min`). v2 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<Limit>,
    /// Best-effort protection (`memory.low`). v1 maps it to the soft limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low: Option<Limit>,
    /// Throttling threshold (`memory.high`). v2 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high: Option<Limit>,
    /// Hard limit; past it the OOM killer runs (`memory.max`, v1 `limit_in_bytes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<Limit>,
    /// Swap the cgroup may use *in addition to* `max` (`memory.swap.max`). v1 counts
    /// memory and swap together: `memsw.limit_in_bytes = max + swap_max`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_max: Option<Limit>,
    /// Kill the whole cgroup, not one task, on OOM (`memory.oom.group`). v2 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_group: Option<bool>,
}

/// `pids.max`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PidsResources {
    /// The most tasks the cgroup may hold. `0` means no task may be created in it
    /// (forks fail with EAGAIN), on every backend; `max` means unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<Limit>,
}

/// `io.weight` and `io.max`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IoResources {
    /// Relative share of I/O, 1..=10000 (default 100). v1: `blkio.bfq.weight` (1..=1000,
    /// default 100) or `blkio.weight` (10..=1000, default 500) via
    /// [`crate::convert::io_weight_to_blkio_weight`], 100 landing on the file's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u64>,
    /// Per-device bandwidth and iops limits.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<IoDeviceLimit>,
}

/// Throttling for one block device (`io.max` line; v1 `blkio.throttle.*`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IoDeviceLimit {
    /// Device major number.
    pub major: u32,
    /// Device minor number.
    pub minor: u32,
    /// Read bytes per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rbps: Option<Limit>,
    /// Write bytes per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wbps: Option<Limit>,
    /// Read operations per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub riops: Option<Limit>,
    /// Write operations per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wiops: Option<Limit>,
}

/// A huge page limit (`hugetlb.<size>.max`; v1 `hugetlb.<size>.limit_in_bytes`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HugetlbLimit {
    /// The page size as the kernel names it in file names: `2MB`, `1GB`, `64KB`.
    pub page_size: String,
    /// Bytes of huge pages of that size.
    pub max: Limit,
}

impl HugetlbLimit {
    /// A limit of `max` bytes of `page_size` pages (`2MB`).
    pub fn new(page_size: &str, max: Limit) -> HugetlbLimit {
        HugetlbLimit {
            page_size: page_size.to_string(),
            max,
        }
    }
}

/// The type of device a rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceType {
    /// Every type (`a`).
    #[serde(rename = "a")]
    All,
    /// Character devices (`c`).
    #[serde(rename = "c")]
    Char,
    /// Block devices (`b`).
    #[serde(rename = "b")]
    Block,
}

/// One device access rule, as in the v1 `devices.allow` file: `c 1:3 rwm`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRule {
    /// Allow (true) or deny (false).
    pub allow: bool,
    /// The device type.
    #[serde(rename = "type")]
    pub kind: DeviceType,
    /// Major number; `None` is any (`*`).
    pub major: Option<u32>,
    /// Minor number; `None` is any (`*`).
    pub minor: Option<u32>,
    /// Some of `r` (read), `w` (write), `m` (mknod).
    pub access: String,
}

impl CpuResources {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl CpusetResources {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl MemoryResources {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl PidsResources {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl IoResources {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl Resources {
    /// Whether nothing is set at all.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Checks every set value against the bounds the kernel accepts, so that a bad value
    /// is refused before any cgroup is created. Errors name the field and the value.
    pub fn validate(&self) -> Result<()> {
        // The kernel's PID_MAX_LIMIT: pids.max takes no more (nor could more exist).
        const PIDS_MAX: u64 = 4 * 1024 * 1024;
        if let Some(Limit::Value(n)) = self.pids.max {
            if n > PIDS_MAX {
                return Err(Error::invalid(
                    "pids.max",
                    n.to_string(),
                    format!("{n} is more tasks than Linux can have ({PIDS_MAX}); give at most that, or max for no limit"),
                ));
            }
        }
        if let Some(w) = self.cpu.weight {
            check_weight("cpu.weight", w)?;
        }
        if let Some(max) = &self.cpu.max {
            max.validate("cpu.max")?;
        }
        if let Some(w) = self.io.weight {
            check_weight("io.weight", w)?;
        }
        if let Some(cpus) = &self.cpuset.cpus {
            if cpus.is_empty() {
                return Err(Error::invalid(
                    "cpuset.cpus",
                    "",
                    "empty cpu list (use e.g. 0-3,6)",
                ));
            }
        }
        if let Some(mems) = &self.cpuset.mems {
            if mems.is_empty() {
                return Err(Error::invalid(
                    "cpuset.mems",
                    "",
                    "empty node list (use e.g. 0)",
                ));
            }
        }
        for dev in &self.io.devices {
            if dev.rbps.is_none()
                && dev.wbps.is_none()
                && dev.riops.is_none()
                && dev.wiops.is_none()
            {
                return Err(Error::invalid(
                    "io.max",
                    format!("{}:{}", dev.major, dev.minor),
                    "no limit given for the device (use rbps=, wbps=, riops= or wiops=)",
                ));
            }
        }
        for h in &self.hugetlb {
            check_page_size(&h.page_size)?;
        }
        for rule in &self.devices {
            check_access(&rule.access)?;
        }
        Ok(())
    }
}

fn check_weight(field: &str, w: u64) -> Result<()> {
    if (1..=10_000).contains(&w) {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            w.to_string(),
            format!("weight {w} is out of range (use 1..=10000; the default is 100)"),
        ))
    }
}

fn check_page_size(size: &str) -> Result<()> {
    let digits = size.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &size[digits.len()..];
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || !matches!(unit, "KB" | "MB" | "GB")
    {
        return Err(Error::invalid(
            "hugetlb",
            size,
            format!("page size {size:?} is not in the kernel's form (use e.g. 2MB or 1GB)"),
        ));
    }
    Ok(())
}

fn check_access(access: &str) -> Result<()> {
    if access.is_empty() || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(Error::invalid(
            "devices",
            access,
            format!("access {access:?} is not a combination of r, w and m"),
        ));
    }
    Ok(())
}

impl IoDeviceLimit {
    /// Parses `DEV:key=value,…` where DEV is `MAJ:MIN` or a device node path
    /// (`/dev/sda`) and the keys are rbps, wbps (sizes: `10M`), riops, wiops (counts).
    ///
    /// ```
    /// use isol_ns_core::resources::IoDeviceLimit;
    /// use isol_ns_core::units::Limit;
    /// let l = IoDeviceLimit::parse("8:0:rbps=1M,wiops=100").unwrap();
    /// assert_eq!((l.major, l.minor, l.rbps, l.wiops), (8, 0, Some(Limit::Value(1 << 20)), Some(Limit::Value(100))));
    /// ```
    pub fn parse(s: &str) -> Result<IoDeviceLimit> {
        let bad = |why: String| Error::invalid("io-max", s, why);
        let (dev, limits) = s.rsplit_once(':').filter(|(_, l)| l.contains('=')).ok_or_else(|| {
            bad(format!("{s:?} is not DEV:KEY=VALUE,… (e.g. 8:0:rbps=10M,wiops=100 or /dev/sda:wbps=1M)"))
        })?;
        let (major, minor) = if dev.starts_with('/') {
            device_numbers(Path::new(dev)).map_err(&bad)?
        } else {
            let (a, b) = dev
                .split_once(':')
                .ok_or_else(|| bad(format!("device {dev:?} is neither MAJ:MIN nor a /dev path")))?;
            let num = |n: &str| {
                n.parse::<u32>()
                    .map_err(|_| bad(format!("device {dev:?} is not MAJ:MIN")))
            };
            (num(a)?, num(b)?)
        };
        let mut out = IoDeviceLimit {
            major,
            minor,
            ..Default::default()
        };
        for kv in limits.split(',') {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| bad(format!("{kv:?} is not KEY=VALUE")))?;
            let value = parse_size(&format!("io-max {k}"), v)?;
            let slot = match k.trim() {
                "rbps" => &mut out.rbps,
                "wbps" => &mut out.wbps,
                "riops" => &mut out.riops,
                "wiops" => &mut out.wiops,
                other => {
                    return Err(bad(format!(
                        "unknown key {other:?} (use rbps, wbps, riops, wiops)"
                    )))
                }
            };
            *slot = Some(value);
        }
        Ok(out)
    }
}

/// The major and minor numbers of the device node at `path`.
pub fn device_numbers(path: &Path) -> std::result::Result<(u32, u32), String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let ft = meta.file_type();
    if !ft.is_block_device() && !ft.is_char_device() {
        return Err(format!("{} is not a device node", path.display()));
    }
    let rdev = meta.rdev();
    Ok((libc::major(rdev), libc::minor(rdev)))
}

impl fmt::Display for DeviceRule {
    /// The v1 `devices.allow`/`devices.deny` line: `c 1:3 rwm`, `a *:* rwm`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = match self.kind {
            DeviceType::All => 'a',
            DeviceType::Char => 'c',
            DeviceType::Block => 'b',
        };
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |v| v.to_string());
        write!(
            f,
            "{t} {}:{} {}",
            num(self.major),
            num(self.minor),
            self.access
        )
    }
}

impl FromStr for DeviceRule {
    type Err = Error;

    /// Parses `[allow|deny ]TYPE MAJ:MIN ACCESS`, e.g. `c 1:3 rwm` (allowed) or
    /// `deny b *:* m`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: String| Error::invalid("devices", s, why);
        let mut words: Vec<&str> = s.split_whitespace().collect();
        let allow = match words.first() {
            Some(&"allow") => {
                words.remove(0);
                true
            }
            Some(&"deny") => {
                words.remove(0);
                false
            }
            _ => true,
        };
        let [t, nums, access] = words[..] else {
            return Err(bad(format!(
                "{s:?} is not TYPE MAJ:MIN ACCESS (e.g. c 1:3 rwm)"
            )));
        };
        let kind = match t {
            "a" => DeviceType::All,
            "c" => DeviceType::Char,
            "b" => DeviceType::Block,
            _ => return Err(bad(format!("device type {t:?} is not a, b or c"))),
        };
        let (ma, mi) = nums
            .split_once(':')
            .ok_or_else(|| bad(format!("{nums:?} is not MAJ:MIN")))?;
        let num = |n: &str| -> Result<Option<u32>> {
            if n == "*" {
                Ok(None)
            } else {
                n.parse()
                    .map(Some)
                    .map_err(|_| bad(format!("{n:?} is not a device number or *")))
            }
        };
        check_access(access)?;
        Ok(DeviceRule {
            allow,
            kind,
            major: num(ma)?,
            minor: num(mi)?,
            access: access.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::parse_cpus;

    fn full() -> Resources {
        Resources {
            cpu: CpuResources {
                weight: Some(200),
                max: Some(parse_cpus("cpus", "1.5").unwrap()),
            },
            cpuset: CpusetResources {
                cpus: Some(CpuList::parse("c", "0-1").unwrap()),
                mems: Some(CpuList::parse("m", "0").unwrap()),
            },
            memory: MemoryResources {
                min: Some(Limit::Value(1 << 20)),
                low: Some(Limit::Value(2 << 20)),
                high: Some(Limit::Value(48 << 20)),
                max: Some(Limit::Value(64 << 20)),
                swap_max: Some(Limit::Max),
                oom_group: Some(true),
            },
            pids: PidsResources {
                max: Some(Limit::Value(64)),
            },
            io: IoResources {
                weight: Some(500),
                devices: vec![IoDeviceLimit::parse("8:0:rbps=1M,wiops=10").unwrap()],
            },
            hugetlb: vec![HugetlbLimit::new("2MB", Limit::Value(4 << 20))],
            devices: vec![
                "c 1:3 rwm".parse().unwrap(),
                "deny b *:* m".parse().unwrap(),
            ],
            frozen: Some(false),
        }
    }

    #[test]
    fn serde_round_trip() {
        let r = full();
        r.validate().unwrap();
        let json = serde_json::to_string_pretty(&r).unwrap();
        let back: Resources = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        assert_eq!(serde_json::to_string(&Resources::default()).unwrap(), "{}");
        let from_human: Resources =
            serde_json::from_str(r#"{"memory":{"max":"64M","swap_max":"max"},"pids":{"max":64}}"#)
                .unwrap();
        assert_eq!(from_human.memory.max, Some(Limit::Value(64 << 20)));
        assert_eq!(from_human.pids.max, Some(Limit::Value(64)));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<Resources>(r#"{"memory":{"maxx":1}}"#).unwrap_err();
        assert!(err.to_string().contains("maxx"), "{err}");
    }

    #[test]
    fn validation_names_the_field() {
        let mut r = Resources::default();
        r.cpu.weight = Some(0);
        assert!(r
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("cpu.weight: weight 0"));
        let mut r = Resources::default();
        r.io.weight = Some(10_001);
        assert!(r
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("io.weight:"));
        let mut r = Resources::default();
        r.hugetlb.push(HugetlbLimit::new("2M", Limit::Max));
        assert!(r.validate().unwrap_err().to_string().contains("\"2M\""));
        let mut r = Resources::default();
        r.io.devices.push(IoDeviceLimit {
            major: 8,
            minor: 0,
            ..Default::default()
        });
        assert!(r.validate().unwrap_err().to_string().starts_with("io.max:"));
        let mut r = Resources::default();
        r.cpu.max = Some(CpuMax {
            quota: Limit::Value(10),
            period: 100_000,
        });
        assert!(r
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("cpu.max:"));
    }

    #[test]
    fn io_device_limits() {
        let l = IoDeviceLimit::parse("/dev/null:rbps=max").unwrap();
        assert_eq!((l.major, l.minor, l.rbps), (1, 3, Some(Limit::Max)));
        for bad in [
            "8:0",
            "8:0:rbps",
            "x:0:rbps=1",
            "8:0:speed=1",
            "/nonexistent:rbps=1",
            "/etc/passwd:rbps=1",
            "8:0:rbps=1Q",
        ] {
            assert!(IoDeviceLimit::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn device_rules() {
        let r: DeviceRule = "c 1:3 rwm".parse().unwrap();
        assert!(r.allow);
        assert_eq!(r.to_string(), "c 1:3 rwm");
        let r: DeviceRule = "deny a *:* rwm".parse().unwrap();
        assert!(!r.allow);
        assert_eq!((r.major, r.minor), (None, None));
        assert_eq!(r.to_string(), "a *:* rwm");
        for bad in ["c 1:3", "x 1:3 r", "c 1-3 r", "c 1:3 rx", "c a:3 r"] {
            assert!(bad.parse::<DeviceRule>().is_err(), "{bad}");
        }
    }
}
