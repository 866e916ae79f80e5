//! Pure conversions between cgroup v1 and v2 values.
//!
//! [`crate::Resources`] speaks v2; the v1 backend converts with these functions (every
//! v1⇄v2 conversion of a value is here: cpu shares and quota, blkio weights, byte
//! limits and their "unlimited", swap, throttles, cpu times, the freezer's state), and
//! the v2 backend uses the reverse ones when a caller brings v1 numbers. The reference values
//! of the cpu tests are runc's (libcontainer/cgroups/utils.go); the blkio weights follow
//! the same rule as runc's current cpu map: default onto default, ends onto ends.

use crate::units::{CpuMax, Limit};
use crate::{Error, Result};

/// The smallest and largest v1 `cpu.shares`.
pub const SHARES_MIN: u64 = 2;
/// The largest v1 `cpu.shares`.
pub const SHARES_MAX: u64 = 262_144;

/// v1 `cpu.shares` (2..=262144) → v2 `cpu.weight` (1..=10000).
///
/// This is runc's current formula (runc ≥ 1.3.2, from the Kubernetes KEP on cgroup v2 cpu
/// weights), a quadratic in log2(shares) that maps the three anchors exactly —
/// 2 → 1, 1024 → 100 (both defaults), 262144 → 10000 — rather than the older linear
/// `1 + (shares - 2) * 9999 / 262142`, which turned the v1 default of 1024 into 39:
///
/// `weight = ceil(10^((l² + 125·l) / 612 − 7/34))` with `l = log2(shares)`.
///
/// `0` (unset) stays `0`.
pub fn cpu_shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let shares = shares.clamp(SHARES_MIN, SHARES_MAX);
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    // Round away float noise before ceil, so that exact anchors (1024 → 100) stay exact.
    let weight = (10f64.powf(exponent) * 1e6).round() / 1e6;
    (weight.ceil() as u64).clamp(1, 10_000)
}

/// v2 `cpu.weight` (1..=10000) → v1 `cpu.shares`: the inverse of
/// [`cpu_shares_to_weight`], rounded to the nearest share. `0` stays `0`.
pub fn cpu_weight_to_shares(weight: u64) -> u64 {
    if weight == 0 {
        return 0;
    }
    let weight = weight.clamp(1, 10_000) as f64;
    // Solve l² + 125·l − 612·(log10(weight) + 7/34) = 0 for l ≥ 0.
    let c = 612.0 * (weight.log10() + 7.0 / 34.0);
    let l = (-125.0 + (125.0f64 * 125.0 + 4.0 * c).sqrt()) / 2.0;
    (2f64.powf(l).round() as u64).clamp(SHARES_MIN, SHARES_MAX)
}

/// The weight that v1 `cpu.shares` stands for, reading back what isol applied.
///
/// [`cpu_shares_to_weight`] is the formula, but rounding in the two directions can land
/// one step off (weight 200 → 1 pair of shares → 201); when a weight within two steps
/// writes exactly these shares, that is the weight isol wrote, so reading back gives what
/// was applied. `0` stays `0`.
pub fn cpu_weight_of_shares(shares: u64) -> u64 {
    let w = cpu_shares_to_weight(shares);
    if cpu_weight_to_shares(w) == shares {
        return w;
    }
    (w.saturating_sub(2).max(1)..=(w + 2).min(10_000))
        .find(|c| cpu_weight_to_shares(*c) == shares)
        .unwrap_or(w)
}

/// v1 `cpuacct.usage*` and `cpu.stat` `throttled_time` (nanoseconds) → the
/// microseconds of v2's `cpu.stat`, rounded down.
pub fn usec_from_ns(ns: u64) -> u64 {
    ns / 1000
}

/// v1 `cpuacct.stat` (clock ticks, `hz` a second) → microseconds, rounded down
/// (saturating, where a tick counter beyond reason would overflow).
pub fn usec_from_ticks(ticks: u64, hz: u64) -> u64 {
    let usec = u128::from(ticks) * 1_000_000 / u128::from(hz.max(1));
    u64::try_from(usec).unwrap_or(u64::MAX)
}

/// The smallest value the kernel shows for an unlimited v1 page counter.
///
/// An unlimited memory (or hugetlb) limit reads back as `PAGE_COUNTER_MAX` rounded down
/// to a page: 9223372036854771712 with 4 KiB pages, 9223372036854710272 with 64 KiB
/// pages. Anything at or above this (i64::MAX rounded down to 64 KiB) is unlimited.
pub const V1_UNLIMITED_BYTES: u64 = 0x7FFF_FFFF_FFFF_0000;

/// A v2 byte limit (`memory.max`, `hugetlb.<size>.max`) → the v1 value
/// (`memory.limit_in_bytes`, `hugetlb.<size>.limit_in_bytes`): `max` is `-1`.
pub fn bytes_to_v1(limit: Limit) -> i64 {
    match limit {
        Limit::Max => -1,
        Limit::Value(v) => i64::try_from(v).unwrap_or(i64::MAX),
    }
}

/// A v1 byte limit as the kernel shows it → v2: `-1` (any negative) and anything at or
/// above [`V1_UNLIMITED_BYTES`] is `max`.
pub fn bytes_from_v1(value: i64) -> Limit {
    match u64::try_from(value) {
        Ok(v) if v < V1_UNLIMITED_BYTES => Limit::Value(v),
        _ => Limit::Max,
    }
}

/// A v2 `io.max` limit → the v1 `blkio.throttle.*` value, where 0 means "no limit":
/// `max` is written as 0 (and the kernel then drops the device's line).
pub fn io_limit_to_v1_throttle(limit: Limit) -> u64 {
    limit.value().unwrap_or(0)
}

/// v2 `cgroup.freeze` (frozen or not) → the v1 `freezer.state` to write.
pub fn frozen_to_v1(frozen: bool) -> &'static str {
    if frozen {
        "FROZEN"
    } else {
        "THAWED"
    }
}

/// v1 `freezer.state` → frozen: only `FROZEN` is; `FREEZING` (not every task stopped
/// yet) and `THAWED` are not.
pub fn frozen_from_v1(state: &str) -> bool {
    state.trim() == "FROZEN"
}

/// The range and default of a v1 proportional I/O weight file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlkioWeightScale {
    /// The smallest weight the file takes.
    pub min: u64,
    /// The weight of a cgroup nobody set.
    pub default: u64,
    /// The largest weight the file takes.
    pub max: u64,
}

/// CFQ's `blkio.weight` (kernels before 5.0): 10..=1000, default 500.
pub const CFQ_WEIGHT: BlkioWeightScale = BlkioWeightScale {
    min: 10,
    default: 500,
    max: 1000,
};

/// BFQ's `blkio.bfq.weight`: 1..=1000, default 100.
pub const BFQ_WEIGHT: BlkioWeightScale = BlkioWeightScale {
    min: 1,
    default: 100,
    max: 1000,
};

/// The smallest, default and largest v2 `io.weight`.
const IO_WEIGHT: BlkioWeightScale = BlkioWeightScale {
    min: 1,
    default: 100,
    max: 10_000,
};

/// `value` on the scale `from` → the scale `to`: linear on each side of the default,
/// so the ends meet the ends and the default the default; rounded to the nearest.
fn rescale(value: u64, from: BlkioWeightScale, to: BlkioWeightScale) -> u64 {
    let v = value.clamp(from.min, from.max);
    let (base, span_from, span_to, offset) = if v <= from.default {
        (
            to.min,
            from.default - from.min,
            to.default - to.min,
            v - from.min,
        )
    } else {
        (
            to.default,
            from.max - from.default,
            to.max - to.default,
            v - from.default,
        )
    };
    base + (offset * span_to + span_from / 2) / span_from
}

/// v2 `io.weight` (1..=10000, default 100) → a v1 blkio weight on `scale`.
///
/// Like [`cpu_weight_to_shares`], the defaults meet: 100 lands on the v1 file's default
/// (100 for `blkio.bfq.weight`, 500 for `blkio.weight`), 1 on its minimum and 10000 on
/// its maximum, linearly in between on each side, so the map is monotonic and asking for
/// the default changes nothing. (The one linear map before, the inverse of runc's
/// `1 + (w − 10) · 9999 / 990`, sent 100 to 20: a fifth of BFQ's default.) `0` (unset)
/// stays `0`.
pub fn io_weight_to_blkio_weight(weight: u64, scale: BlkioWeightScale) -> u64 {
    if weight == 0 {
        return 0;
    }
    rescale(weight, IO_WEIGHT, scale)
}

/// A v1 blkio weight on `scale` → v2 `io.weight`, the inverse of
/// [`io_weight_to_blkio_weight`] rounded to the nearest: applying the result again
/// writes the same v1 value. `0` stays `0`.
pub fn blkio_weight_to_io_weight(weight: u64, scale: BlkioWeightScale) -> u64 {
    if weight == 0 {
        return 0;
    }
    rescale(weight, scale, IO_WEIGHT)
}

/// v2 `memory.swap.max` (swap beyond memory) → v1 `memory.memsw.limit_in_bytes`
/// (memory plus swap), given the memory limit.
///
/// Unlimited swap is unlimited memsw. A finite swap limit needs a finite memory limit,
/// since v1 can only bound the sum.
pub fn swap_max_to_memsw(swap_max: Limit, memory_max: Limit) -> Result<Limit> {
    match (swap_max, memory_max) {
        (Limit::Max, _) => Ok(Limit::Max),
        (Limit::Value(_), Limit::Max) => Err(Error::invalid(
            "memory.swap_max",
            swap_max.to_string(),
            "a swap limit needs a memory limit on cgroup v1, which only bounds memory+swap (set memory max too)",
        )),
        (Limit::Value(s), Limit::Value(m)) => m.checked_add(s).map(Limit::Value).ok_or_else(|| {
            Error::invalid("memory.swap_max", s.to_string(), "memory + swap overflows 64 bits")
        }),
    }
}

/// v1 `memory.memsw.limit_in_bytes` → v2 `memory.swap.max`, given the v1 memory limit;
/// runc's `ConvertMemorySwapToCgroupV2Value`.
pub fn memsw_to_swap_max(memsw: Limit, memory_max: Limit) -> Result<Limit> {
    match (memsw, memory_max) {
        (Limit::Max, _) => Ok(Limit::Max),
        (Limit::Value(_), Limit::Max) => Err(Error::invalid(
            "memory.memsw",
            memsw.to_string(),
            "memory+swap is limited but memory is not (set a memory limit)",
        )),
        (Limit::Value(sw), Limit::Value(m)) if sw < m => Err(Error::invalid(
            "memory.memsw",
            sw.to_string(),
            format!("memory+swap limit {sw} is below the memory limit {m}"),
        )),
        (Limit::Value(sw), Limit::Value(m)) => Ok(Limit::Value(sw - m)),
    }
}

/// v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us` → v2 `cpu.max`. A quota of −1 (or any
/// negative) is `max`; a period of 0 means the kernel default.
pub fn cpu_max_from_v1(quota: i64, period: u64) -> CpuMax {
    let period = if period == 0 {
        CpuMax::DEFAULT_PERIOD
    } else {
        period
    };
    let quota = if quota < 0 {
        Limit::Max
    } else {
        Limit::Value(quota as u64)
    };
    CpuMax { quota, period }
}

/// v2 `cpu.max` → v1 (`cpu.cfs_quota_us`, `cpu.cfs_period_us`); `max` is −1.
pub fn cpu_max_to_v1(max: &CpuMax) -> (i64, u64) {
    let quota = match max.quota {
        Limit::Max => -1,
        Limit::Value(q) => i64::try_from(q).unwrap_or(i64::MAX),
    };
    (quota, max.period)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_to_weight_matches_runc() {
        // The reference table of runc's (opencontainers/cgroups) TestConvertCPUSharesToCgroupV2Value.
        let table = [
            (0, 0),
            (1, 1),
            (2, 1),
            (3, 2),
            (1024, 100),
            (262_143, 10_000),
            (262_144, 10_000),
            (262_145, 10_000),
        ];
        for (shares, weight) in table {
            assert_eq!(cpu_shares_to_weight(shares), weight, "shares {shares}");
        }
        // Monotonic between the anchors.
        let mut last = 0;
        for shares in (2..=262_144).step_by(97) {
            let w = cpu_shares_to_weight(shares);
            assert!(w >= last, "{shares}");
            last = w;
        }
    }

    #[test]
    fn weight_to_shares_inverts() {
        assert_eq!(cpu_weight_to_shares(0), 0);
        assert_eq!(cpu_weight_to_shares(1), 2);
        assert_eq!(cpu_weight_to_shares(100), 1024);
        assert_eq!(cpu_weight_to_shares(10_000), 262_144);
        for weight in [1u64, 2, 15, 46, 100, 216, 455, 1000, 5000, 10_000] {
            let back = cpu_shares_to_weight(cpu_weight_to_shares(weight));
            assert!(
                back.abs_diff(weight) <= 1,
                "{weight} → {} → {back}",
                cpu_weight_to_shares(weight)
            );
        }
    }

    #[test]
    fn every_weight_reads_back_through_shares() {
        for w in 1..=10_000u64 {
            let shares = cpu_weight_to_shares(w);
            let back = cpu_weight_of_shares(shares);
            // Where two weights share a value of cpu.shares, either is a faithful reading.
            assert_eq!(
                cpu_weight_to_shares(back),
                shares,
                "weight {w} → shares {shares} → {back}"
            );
        }
        // (shares as the kernel shows them, the weight read back)
        let table = [(0, 0), (2, 1), (1024, 100), (262_144, 10_000)];
        for (shares, weight) in table {
            assert_eq!(cpu_weight_of_shares(shares), weight, "shares {shares}");
        }
        assert_eq!(cpu_weight_of_shares(cpu_weight_to_shares(200)), 200);
        assert_ne!(cpu_shares_to_weight(cpu_weight_to_shares(200)), 200);
    }

    #[test]
    fn cpu_time() {
        for (ns, usec) in [(0, 0), (999, 0), (1000, 1), (2_500_999, 2500)] {
            assert_eq!(usec_from_ns(ns), usec, "{ns} ns");
        }
        // (ticks, USER_HZ, µs)
        let table = [
            (0, 100, 0),
            (1, 100, 10_000),
            (250, 100, 2_500_000),
            (3, 1000, 3000),
            (1 << 40, 100, (1 << 40) * 10_000),
            (u64::MAX, 100, u64::MAX),
        ];
        for (ticks, hz, usec) in table {
            assert_eq!(usec_from_ticks(ticks, hz), usec, "{ticks} at {hz} Hz");
        }
    }

    #[test]
    fn byte_limits() {
        // (v2, v1 written, v2 read back from that)
        let table = [
            (Limit::Max, -1, Limit::Max),
            (Limit::Value(0), 0, Limit::Value(0)),
            (Limit::Value(64 << 20), 64 << 20, Limit::Value(64 << 20)),
            (Limit::Value(u64::MAX), i64::MAX, Limit::Max),
        ];
        for (v2, v1, back) in table {
            assert_eq!(bytes_to_v1(v2), v1, "{v2}");
            assert_eq!(bytes_from_v1(v1), back, "{v1}");
        }
        // What the kernel shows for unlimited, with 4 KiB and 64 KiB pages.
        for shown in [9_223_372_036_854_771_712, 9_223_372_036_854_710_272, -1, -2] {
            assert_eq!(bytes_from_v1(shown), Limit::Max, "{shown}");
        }
        assert_eq!(
            bytes_from_v1(V1_UNLIMITED_BYTES as i64 - 1),
            Limit::Value(V1_UNLIMITED_BYTES - 1)
        );
        // A throttle of 0 is no throttle on v1.
        assert_eq!(io_limit_to_v1_throttle(Limit::Max), 0);
        assert_eq!(io_limit_to_v1_throttle(Limit::Value(1 << 20)), 1 << 20);
    }

    #[test]
    fn freezer_states() {
        for frozen in [true, false] {
            assert_eq!(frozen_from_v1(frozen_to_v1(frozen)), frozen);
        }
        assert!(frozen_from_v1("FROZEN\n"));
        assert!(!frozen_from_v1("FREEZING"));
        assert!(!frozen_from_v1("THAWED"));
    }

    #[test]
    fn blkio_weight_anchors() {
        // (io.weight, blkio.bfq.weight, blkio.weight): the ends on the ends, the
        // default on the default.
        let table = [
            (1, 1, 10),
            (100, 100, 500),
            (10_000, 1000, 1000),
            (50, 50, 253),
            (1000, 182, 545),
            (5000, 545, 747),
        ];
        for (io, bfq, cfq) in table {
            assert_eq!(io_weight_to_blkio_weight(io, BFQ_WEIGHT), bfq, "io {io}");
            assert_eq!(io_weight_to_blkio_weight(io, CFQ_WEIGHT), cfq, "io {io}");
        }
        for scale in [BFQ_WEIGHT, CFQ_WEIGHT] {
            assert_eq!(io_weight_to_blkio_weight(0, scale), 0);
            assert_eq!(blkio_weight_to_io_weight(0, scale), 0);
            assert_eq!(blkio_weight_to_io_weight(scale.min, scale), 1);
            assert_eq!(blkio_weight_to_io_weight(scale.default, scale), 100);
            assert_eq!(blkio_weight_to_io_weight(scale.max, scale), 10_000);
            // Out of range is clamped.
            assert_eq!(io_weight_to_blkio_weight(20_000, scale), scale.max);
            assert_eq!(blkio_weight_to_io_weight(5000, scale), 10_000);
        }
        assert_eq!(blkio_weight_to_io_weight(5, CFQ_WEIGHT), 1);
    }

    #[test]
    fn blkio_weight_is_monotonic_and_reads_back_stably() {
        for scale in [BFQ_WEIGHT, CFQ_WEIGHT] {
            let mut last = 0;
            for io in 1..=10_000u64 {
                let v1 = io_weight_to_blkio_weight(io, scale);
                assert!(v1 >= last, "{scale:?}: io {io} → {v1} after {last}");
                assert!((scale.min..=scale.max).contains(&v1), "{scale:?}: io {io}");
                last = v1;
                // Reading the v1 value back and applying that writes the same value.
                let back = blkio_weight_to_io_weight(v1, scale);
                assert_eq!(
                    io_weight_to_blkio_weight(back, scale),
                    v1,
                    "{scale:?}: io {io} → {v1} → {back}"
                );
            }
            let mut last = 0;
            for v1 in scale.min..=scale.max {
                let io = blkio_weight_to_io_weight(v1, scale);
                assert!(io >= last, "{scale:?}: v1 {v1} → {io} after {last}");
                last = io;
            }
        }
    }

    #[test]
    fn swap() {
        let m = Limit::Value(100);
        assert_eq!(
            swap_max_to_memsw(Limit::Value(50), m).unwrap(),
            Limit::Value(150)
        );
        assert_eq!(
            swap_max_to_memsw(Limit::Value(0), m).unwrap(),
            Limit::Value(100)
        );
        assert_eq!(swap_max_to_memsw(Limit::Max, m).unwrap(), Limit::Max);
        assert_eq!(
            swap_max_to_memsw(Limit::Max, Limit::Max).unwrap(),
            Limit::Max
        );
        assert!(swap_max_to_memsw(Limit::Value(5), Limit::Max).is_err());
        assert!(swap_max_to_memsw(Limit::Value(u64::MAX), m).is_err());

        assert_eq!(
            memsw_to_swap_max(Limit::Value(150), m).unwrap(),
            Limit::Value(50)
        );
        assert_eq!(
            memsw_to_swap_max(Limit::Value(100), m).unwrap(),
            Limit::Value(0)
        );
        assert_eq!(memsw_to_swap_max(Limit::Max, m).unwrap(), Limit::Max);
        assert!(memsw_to_swap_max(Limit::Value(50), m).is_err());
        assert!(memsw_to_swap_max(Limit::Value(50), Limit::Max).is_err());
        for swap in [0u64, 1, 4096, 1 << 30] {
            let memsw = swap_max_to_memsw(Limit::Value(swap), m).unwrap();
            assert_eq!(memsw_to_swap_max(memsw, m).unwrap(), Limit::Value(swap));
        }
    }

    #[test]
    fn cpu_quota() {
        assert_eq!(cpu_max_from_v1(-1, 100_000).to_string(), "max 100000");
        assert_eq!(cpu_max_from_v1(50_000, 100_000).to_string(), "50000 100000");
        assert_eq!(cpu_max_from_v1(50_000, 0).period, 100_000);
        assert_eq!(cpu_max_to_v1(&cpu_max_from_v1(-1, 20_000)), (-1, 20_000));
        assert_eq!(
            cpu_max_to_v1(&cpu_max_from_v1(25_000, 50_000)),
            (25_000, 50_000)
        );
    }
}
