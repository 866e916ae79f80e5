//! Linux capabilities by name, and sets of them as the kernel's 64-bit masks.
//!
//! A box keeps one set for its bounding, effective and permitted sets ([`CapSet`]); the
//! inheritable and ambient sets are empty. Names follow capabilities(7): `CAP_CHOWN`,
//! accepted with or without the `CAP_` prefix and in any case.
//!
//! # References
//! capabilities(7), capset(2), `include/uapi/linux/capability.h`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Result};

macro_rules! caps {
    ($($name:ident = $n:literal),* $(,)?) => {
        /// One capability (its number is the bit in the kernel's masks).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[allow(non_camel_case_types, missing_docs)]
        #[repr(u8)]
        pub enum Capability {
            $($name = $n,)*
        }

        impl Capability {
            /// Every capability this crate knows, by number.
            pub const ALL: &'static [Capability] = &[$(Capability::$name,)*];

            /// `CAP_CHOWN` …
            pub fn name(self) -> &'static str {
                match self {
                    $(Capability::$name => concat!("CAP_", stringify!($name)),)*
                }
            }
        }
    };
}

caps! {
    CHOWN = 0,
    DAC_OVERRIDE = 1,
    DAC_READ_SEARCH = 2,
    FOWNER = 3,
    FSETID = 4,
    KILL = 5,
    SETGID = 6,
    SETUID = 7,
    SETPCAP = 8,
    LINUX_IMMUTABLE = 9,
    NET_BIND_SERVICE = 10,
    NET_BROADCAST = 11,
    NET_ADMIN = 12,
    NET_RAW = 13,
    IPC_LOCK = 14,
    IPC_OWNER = 15,
    SYS_MODULE = 16,
    SYS_RAWIO = 17,
    SYS_CHROOT = 18,
    SYS_PTRACE = 19,
    SYS_PACCT = 20,
    SYS_ADMIN = 21,
    SYS_BOOT = 22,
    SYS_NICE = 23,
    SYS_RESOURCE = 24,
    SYS_TIME = 25,
    SYS_TTY_CONFIG = 26,
    MKNOD = 27,
    LEASE = 28,
    AUDIT_WRITE = 29,
    AUDIT_CONTROL = 30,
    SETFCAP = 31,
    MAC_OVERRIDE = 32,
    MAC_ADMIN = 33,
    SYSLOG = 34,
    WAKE_ALARM = 35,
    BLOCK_SUSPEND = 36,
    AUDIT_READ = 37,
    PERFMON = 38,
    BPF = 39,
    CHECKPOINT_RESTORE = 40,
}

impl Capability {
    /// The bit number.
    pub fn number(self) -> u32 {
        self as u32
    }

    /// The capability with this number.
    pub fn from_number(n: u32) -> Option<Capability> {
        Capability::ALL.get(n as usize).copied()
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Capability {
    type Err = Error;

    /// `CAP_NET_ADMIN`, `net_admin`, `Net_Admin`.
    fn from_str(s: &str) -> Result<Capability> {
        let up = s.trim().to_ascii_uppercase();
        let bare = up.strip_prefix("CAP_").unwrap_or(&up);
        Capability::ALL
            .iter()
            .copied()
            .find(|c| &c.name()[4..] == bare)
            .ok_or_else(|| {
                Error::invalid(
                    "capability",
                    s,
                    format!("{s:?} is not a capability name (e.g. NET_ADMIN or CAP_SYS_PTRACE; see capabilities(7))"),
                )
            })
    }
}

impl Serialize for Capability {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Capability {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A set of capabilities as the kernel's 64-bit mask (bit N = capability N).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CapSet(u64);

impl CapSet {
    /// No capability.
    pub const EMPTY: CapSet = CapSet(0);

    /// Docker's default set: CHOWN, DAC_OVERRIDE, FSETID, FOWNER, MKNOD, NET_RAW, SETGID,
    /// SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, KILL, AUDIT_WRITE.
    pub fn docker_default() -> CapSet {
        use Capability::*;
        [
            CHOWN,
            DAC_OVERRIDE,
            FSETID,
            FOWNER,
            MKNOD,
            NET_RAW,
            SETGID,
            SETUID,
            SETFCAP,
            SETPCAP,
            NET_BIND_SERVICE,
            SYS_CHROOT,
            KILL,
            AUDIT_WRITE,
        ]
        .into_iter()
        .collect()
    }

    /// Every capability this crate knows (0..=40).
    pub fn all() -> CapSet {
        Capability::ALL.iter().copied().collect()
    }

    /// The capabilities this process holds (its permitted set, as far as this crate
    /// knows them): a box started from it can have no others, unless the box has a user
    /// namespace of its own.
    pub fn held() -> Result<CapSet> {
        let bits =
            super::sys::permitted_capabilities().map_err(|e| crate::Error::io("capget", "", e))?;
        Ok(CapSet(bits & CapSet::all().0))
    }

    /// The capabilities in both sets.
    pub fn intersection(self, other: CapSet) -> CapSet {
        CapSet(self.0 & other.0)
    }

    /// The capabilities in `self` and not in `other`.
    pub fn difference(self, other: CapSet) -> CapSet {
        CapSet(self.0 & !other.0)
    }

    /// The raw mask.
    pub fn bits(self) -> u64 {
        self.0
    }

    /// From a raw mask (e.g. `CapEff` in /proc/PID/status).
    pub fn from_bits(bits: u64) -> CapSet {
        CapSet(bits)
    }

    /// Whether `cap` is in the set.
    pub fn contains(self, cap: Capability) -> bool {
        self.0 & (1 << cap.number()) != 0
    }

    /// Adds `cap`.
    pub fn insert(&mut self, cap: Capability) {
        self.0 |= 1 << cap.number();
    }

    /// Removes `cap`.
    pub fn remove(&mut self, cap: Capability) {
        self.0 &= !(1 << cap.number());
    }

    /// The capabilities in the set, by number.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL
            .iter()
            .copied()
            .filter(move |c| self.contains(*c))
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl FromIterator<Capability> for CapSet {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> CapSet {
        let mut s = CapSet::EMPTY;
        for c in iter {
            s.insert(c);
        }
        s
    }
}

impl fmt::Debug for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Serialize for CapSet {
    /// A list of names, `["CAP_CHOWN", …]`.
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for CapSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Vec::<Capability>::deserialize(d)?.into_iter().collect())
    }
}

/// The kernel's highest capability number (`/proc/sys/kernel/cap_last_cap`), found before
/// the clone; the child drops every bounding capability up to it that the box does not
/// keep, including ones newer than this crate.
pub fn last_cap() -> Result<u32> {
    static LAST: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    if let Some(n) = LAST.get() {
        return Ok(*n);
    }
    let n = match super::sys::probe_last_cap() {
        Some(n) => n,
        None => read_last_cap()?,
    };
    Ok(*LAST.get_or_init(|| n))
}

fn read_last_cap() -> Result<u32> {
    let path = std::path::Path::new("/proc/sys/kernel/cap_last_cap");
    let v = crate::parse::single_u64(path, &crate::parse::read(path)?)?;
    u32::try_from(v)
        .ok()
        .filter(|v| *v < 64)
        .ok_or_else(|| Error::parse(path, format!("{v} is not a capability number below 64")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probed_last_cap_is_the_kernels() {
        assert_eq!(
            super::super::sys::probe_last_cap(),
            Some(read_last_cap().unwrap())
        );
        assert_eq!(last_cap().unwrap(), read_last_cap().unwrap());
    }

    #[test]
    fn names_parse_in_any_form() {
        for s in ["CAP_NET_ADMIN", "net_admin", "Cap_Net_Admin", " NET_ADMIN "] {
            assert_eq!(
                s.parse::<Capability>().unwrap(),
                Capability::NET_ADMIN,
                "{s}"
            );
        }
        let err = "CAP_FLY".parse::<Capability>().unwrap_err().to_string();
        assert!(err.contains("CAP_FLY"), "{err}");
        assert!("".parse::<Capability>().is_err());
        for c in Capability::ALL {
            assert_eq!(c.name().parse::<Capability>().unwrap(), *c);
            assert_eq!(Capability::from_number(c.number()), Some(*c));
        }
        assert_eq!(Capability::CHECKPOINT_RESTORE.number(), 40);
        assert_eq!(Capability::ALL.len(), 41);
    }

    #[test]
    fn docker_default_mask() {
        // What `docker run` shows as CapEff in /proc/self/status (moby's default list).
        assert_eq!(CapSet::docker_default().bits(), 0x00000000a80425fb);
        assert_eq!(CapSet::docker_default().iter().count(), 14);
        assert_eq!(CapSet::all().bits(), 0x1ff_ffff_ffff);
    }

    #[test]
    fn serde_as_names() {
        let s: CapSet = [Capability::KILL, Capability::CHOWN].into_iter().collect();
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(j, r#"["CAP_CHOWN","CAP_KILL"]"#);
        let back: CapSet = serde_json::from_str(r#"["kill","CAP_CHOWN"]"#).unwrap();
        assert_eq!(back, s);
        assert!(serde_json::from_str::<CapSet>(r#"["CAP_NOPE"]"#).is_err());
    }

    #[test]
    fn last_cap_is_read() {
        let n = last_cap().unwrap();
        assert!((36..64).contains(&n), "{n}");
    }
}
