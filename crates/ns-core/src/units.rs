//! Human units: sizes (`64M`, `1.5G`, `512k`, `max`), cpus (`0.5`) and cpu lists (`0-3,6`).
//!
//! Every parser takes the name of the field it is parsing so that its error names the
//! field, quotes the bad value and says what would be accepted.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A limit that is either a number or unlimited (`max` in cgroup files).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Limit {
    /// A finite value (bytes, tasks, bytes per second, …).
    Value(u64),
    /// No limit.
    Max,
}

impl Limit {
    /// The finite value, or `None` for `Max`.
    pub fn value(self) -> Option<u64> {
        match self {
            Limit::Value(v) => Some(v),
            Limit::Max => None,
        }
    }
}

impl fmt::Display for Limit {
    /// Formats as a cgroup v2 file expects: the number, or `max`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Value(v) => write!(f, "{v}"),
            Limit::Max => f.write_str("max"),
        }
    }
}

impl Serialize for Limit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Limit::Value(v) => s.serialize_u64(*v),
            Limit::Max => s.serialize_str("max"),
        }
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(v) => Ok(Limit::Value(v)),
            Raw::S(s) => parse_size("limit", &s).map_err(serde::de::Error::custom),
        }
    }
}

/// Parses a size in bytes: a plain number, a number with a binary unit (`K`, `M`, `G`,
/// `T`, `P`; case-insensitive; an optional trailing `B` or `iB`), a decimal fraction
/// (`1.5G`), or `max` (also `-1`, `unlimited`).
///
/// ```
/// use isol_ns_core::units::{parse_size, Limit};
/// assert_eq!(parse_size("memory", "64M").unwrap(), Limit::Value(64 << 20));
/// assert_eq!(parse_size("memory", "max").unwrap(), Limit::Max);
/// assert!(parse_size("memory", "12XB").unwrap_err().to_string().contains("unknown unit \"XB\""));
/// ```
pub fn parse_size(field: &str, s: &str) -> Result<Limit> {
    let t = s.trim();
    if t.is_empty() {
        return Err(Error::invalid(
            field,
            s,
            "empty size (use a number with K, M, G or T, or max)",
        ));
    }
    if matches!(t.to_ascii_lowercase().as_str(), "max" | "-1" | "unlimited") {
        return Ok(Limit::Max);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    if num.is_empty() {
        return Err(Error::invalid(
            field,
            s,
            format!("{s:?} is not a size (use a number with K, M, G or T, e.g. 64M, or max)"),
        ));
    }
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        "p" | "pb" | "pib" => 50,
        "e" | "eb" | "eib" => 60,
        _ => {
            return Err(Error::invalid(
                field,
                s,
                format!("unknown unit {unit:?} in {s:?} (use K, M, G, T, P or E)"),
            ))
        }
    };
    let multiplier = 1u128 << shift;
    let bytes = parse_decimal_scaled(num, multiplier).ok_or_else(|| {
        Error::invalid(
            field,
            s,
            format!("{num:?} in {s:?} is not a number (e.g. 512k, 1.5G)"),
        )
    })?;
    u64::try_from(bytes).map(Limit::Value).map_err(|_| {
        Error::invalid(
            field,
            s,
            format!("{s:?} is too large (less than 16E, or max)"),
        )
    })
}

/// `num * multiplier` for a decimal `num` such as `1.5`, rounded down; `None` when `num`
/// is not a decimal number or the result overflows.
fn parse_decimal_scaled(num: &str, multiplier: u128) -> Option<u128> {
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.len() > 18 {
        return None;
    }
    let int_v: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut value = int_v.checked_mul(multiplier)?;
    if !frac.is_empty() {
        let frac_v: u128 = frac.parse().ok()?;
        let scale = 10u128.pow(frac.len() as u32);
        value = value.checked_add(frac_v.checked_mul(multiplier)? / scale)?;
    }
    Some(value)
}

/// Formats bytes for people: `64M`, `1.5G`, `512K`, `123B`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u32); 5] = [("P", 50), ("T", 40), ("G", 30), ("M", 20), ("K", 10)];
    for (name, shift) in UNITS {
        let unit = 1u64 << shift;
        if bytes >= unit {
            let whole = bytes / unit;
            let tenths = (bytes % unit) * 10 / unit;
            return if tenths == 0 {
                format!("{whole}{name}")
            } else {
                format!("{whole}.{tenths}{name}")
            };
        }
    }
    format!("{bytes}B")
}

/// A CPU bandwidth limit: at most `quota` µs of cpu time in every `period` µs
/// (`cpu.max` on v2, `cpu.cfs_quota_us`/`cpu.cfs_period_us` on v1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuMax {
    /// Microseconds per period, or `Max` for no limit.
    pub quota: Limit,
    /// The period in microseconds (1000..=1000000).
    pub period: u64,
}

impl CpuMax {
    /// The kernel's default period, 100 ms.
    pub const DEFAULT_PERIOD: u64 = 100_000;

    /// Validates quota and period against the kernel's bounds (period 1 ms..1 s,
    /// quota at least 1 ms).
    pub fn validate(&self, field: &str) -> Result<()> {
        if !(1_000..=1_000_000).contains(&self.period) {
            return Err(Error::invalid(
                field,
                self.period.to_string(),
                format!(
                    "period {} µs is out of range (use 1000..=1000000)",
                    self.period
                ),
            ));
        }
        if let Limit::Value(q) = self.quota {
            if q < 1_000 {
                return Err(Error::invalid(
                    field,
                    q.to_string(),
                    format!("quota {q} µs is below the kernel's minimum of 1000 µs"),
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Display for CpuMax {
    /// Formats as the v2 `cpu.max` file: `QUOTA PERIOD` or `max PERIOD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.quota, self.period)
    }
}

/// Parses a decimal number of cpus (`0.5`, `2`, `max`) into a [`CpuMax`] with the default
/// 100 ms period.
///
/// ```
/// use isol_ns_core::units::{parse_cpus, Limit};
/// let m = parse_cpus("cpus", "1.5").unwrap();
/// assert_eq!((m.quota, m.period), (Limit::Value(150_000), 100_000));
/// ```
pub fn parse_cpus(field: &str, s: &str) -> Result<CpuMax> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("max") {
        return Ok(CpuMax {
            quota: Limit::Max,
            period: CpuMax::DEFAULT_PERIOD,
        });
    }
    let quota = parse_decimal_scaled(t, CpuMax::DEFAULT_PERIOD as u128)
        .and_then(|q| u64::try_from(q).ok())
        .ok_or_else(|| {
            Error::invalid(
                field,
                s,
                format!("{s:?} is not a number of cpus (e.g. 0.5, 2, or max)"),
            )
        })?;
    if quota == 0 {
        return Err(Error::invalid(
            field,
            s,
            format!("{s:?} cpus is zero (use at least 0.01, or max)"),
        ));
    }
    let max = CpuMax {
        quota: Limit::Value(quota),
        period: CpuMax::DEFAULT_PERIOD,
    };
    max.validate(field).map_err(|_| {
        Error::invalid(
            field,
            s,
            format!("{s:?} cpus is below the kernel's minimum of 0.01"),
        )
    })?;
    Ok(max)
}

/// A set of cpu or memory-node numbers, written `0-3,6` as in `cpuset.cpus`.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct CpuList(BTreeSet<u32>);

impl CpuList {
    /// Parses a list such as `0-3,6`; the error names `field`.
    pub fn parse(field: &str, s: &str) -> Result<CpuList> {
        let mut set = BTreeSet::new();
        let t = s.trim();
        if t.is_empty() {
            return Ok(CpuList(set));
        }
        let bad = |why: String| Error::invalid(field, s, why);
        for part in t.split(',') {
            let part = part.trim();
            let num = |n: &str| -> Result<u32> {
                n.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|v| *v < 65_536)
                    .ok_or_else(|| {
                        bad(format!(
                            "{n:?} in {s:?} is not a cpu number (use a list like 0-3,6)"
                        ))
                    })
            };
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (num(a)?, num(b)?);
                    if a > b {
                        return Err(bad(format!(
                            "range {part:?} in {s:?} runs backwards (write {b}-{a})"
                        )));
                    }
                    set.extend(a..=b);
                }
                None => {
                    set.insert(num(part)?);
                }
            }
        }
        Ok(CpuList(set))
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The numbers, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().copied()
    }

    /// Whether every number in `self` is in `other`.
    pub fn is_subset(&self, other: &CpuList) -> bool {
        self.0.is_subset(&other.0)
    }
}

impl FromIterator<u32> for CpuList {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        CpuList(iter.into_iter().collect())
    }
}

impl fmt::Display for CpuList {
    /// The canonical form, with ranges collapsed: `0-3,6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut iter = self.0.iter().copied().peekable();
        while let Some(start) = iter.next() {
            let mut end = start;
            while iter.peek() == Some(&(end + 1)) {
                end = iter.next().unwrap_or(end);
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for CpuList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CpuList({self})")
    }
}

impl FromStr for CpuList {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        CpuList::parse("cpu list", s)
    }
}

impl Serialize for CpuList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CpuList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CpuList::parse("cpu list", &s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let ok = [
            ("0", Limit::Value(0)),
            ("4096", Limit::Value(4096)),
            ("512k", Limit::Value(512 << 10)),
            ("512K", Limit::Value(512 << 10)),
            ("64M", Limit::Value(64 << 20)),
            ("64MB", Limit::Value(64 << 20)),
            ("64MiB", Limit::Value(64 << 20)),
            ("1.5G", Limit::Value(3 << 29)),
            ("0.5k", Limit::Value(512)),
            (".5k", Limit::Value(512)),
            ("2T", Limit::Value(2 << 40)),
            ("1E", Limit::Value(1 << 60)),
            (" 8m ", Limit::Value(8 << 20)),
            ("100b", Limit::Value(100)),
            ("max", Limit::Max),
            ("MAX", Limit::Max),
            ("-1", Limit::Max),
            ("unlimited", Limit::Max),
        ];
        for (input, want) in ok {
            assert_eq!(parse_size("memory", input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn bad_sizes_name_field_value_and_fix() {
        let cases = [
            (
                "12XB",
                "memory: unknown unit \"XB\" in \"12XB\" (use K, M, G, T, P or E)",
            ),
            ("", "memory: empty size"),
            ("M", "is not a size"),
            ("1.2.3M", "is not a number"),
            ("-5M", "is not a size"),
            ("99999999999999999999", "too large"),
            ("17000P", "too large"),
            ("16E", "too large"),
        ];
        for (input, want) in cases {
            let err = parse_size("memory", input).unwrap_err().to_string();
            assert!(err.contains(want), "{input:?} gave {err:?}");
            assert!(err.starts_with("memory:"), "{err}");
        }
    }

    #[test]
    fn formats_sizes() {
        assert_eq!(format_size(64 << 20), "64M");
        assert_eq!(format_size(3 << 29), "1.5G");
        assert_eq!(format_size(100), "100B");
        assert_eq!(format_size(1024), "1K");
    }

    #[test]
    fn cpus() {
        assert_eq!(
            parse_cpus("cpus", "0.5").unwrap().quota,
            Limit::Value(50_000)
        );
        assert_eq!(
            parse_cpus("cpus", "2").unwrap().quota,
            Limit::Value(200_000)
        );
        assert_eq!(
            parse_cpus("cpus", "0.01").unwrap().quota,
            Limit::Value(1_000)
        );
        assert_eq!(parse_cpus("cpus", "max").unwrap().quota, Limit::Max);
        assert_eq!(
            parse_cpus("cpus", "1.5").unwrap().to_string(),
            "150000 100000"
        );
        for bad in ["0", "0.001", "-1", "two", "", "1.5.2"] {
            let err = parse_cpus("cpus", bad).unwrap_err().to_string();
            assert!(err.starts_with("cpus:"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn cpu_max_bounds() {
        assert!(CpuMax {
            quota: Limit::Max,
            period: 999
        }
        .validate("cpu.max")
        .is_err());
        assert!(CpuMax {
            quota: Limit::Max,
            period: 1_000_001
        }
        .validate("cpu.max")
        .is_err());
        assert!(CpuMax {
            quota: Limit::Value(999),
            period: 100_000
        }
        .validate("cpu.max")
        .is_err());
        assert!(CpuMax {
            quota: Limit::Value(1000),
            period: 1000
        }
        .validate("cpu.max")
        .is_ok());
    }

    #[test]
    fn cpu_lists() {
        let l = CpuList::parse("cpuset.cpus", "0-3,6").unwrap();
        assert_eq!(l.iter().collect::<Vec<_>>(), vec![0, 1, 2, 3, 6]);
        assert_eq!(l.to_string(), "0-3,6");
        assert_eq!(
            CpuList::parse("c", "6,0,1,2,3").unwrap().to_string(),
            "0-3,6"
        );
        assert_eq!(CpuList::parse("c", "1,3,5-5").unwrap().to_string(), "1,3,5");
        assert!(CpuList::parse("c", "").unwrap().is_empty());
        for bad in ["3-1", "a", "1,,2", "1-", "-1", "99999999"] {
            let err = CpuList::parse("cpuset.cpus", bad).unwrap_err().to_string();
            assert!(err.starts_with("cpuset.cpus:"), "{bad:?}: {err}");
        }
        let a = CpuList::parse("c", "1-2").unwrap();
        assert!(a.is_subset(&l));
        assert!(!CpuList::parse("c", "7").unwrap().is_subset(&l));
    }

    #[test]
    fn serde_round_trips() {
        let l: Limit = serde_json::from_str("\"64M\"").unwrap();
        assert_eq!(l, Limit::Value(64 << 20));
        assert_eq!(serde_json::to_string(&Limit::Max).unwrap(), "\"max\"");
        assert_eq!(serde_json::from_str::<Limit>("5").unwrap(), Limit::Value(5));
        let c: CpuList = serde_json::from_str("\"0-2\"").unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"0-2\"");
    }
}
