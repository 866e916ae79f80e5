//! Resource limits (`setrlimit(2)`) set in the box before exec: `NAME=SOFT[:HARD]`, as
//! docker's `--ulimit` takes them.
//!
//! # References
//! getrlimit(2), prlimit(2).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The resources `setrlimit` knows, by the names docker and `ulimit` use. (glibc's
/// `RLIMIT_*` are `u32`, musl's `c_int`: the casts are for musl.)
#[allow(clippy::unnecessary_cast)]
const RESOURCES: &[(&str, u32)] = &[
    ("cpu", libc::RLIMIT_CPU as u32),
    ("fsize", libc::RLIMIT_FSIZE as u32),
    ("data", libc::RLIMIT_DATA as u32),
    ("stack", libc::RLIMIT_STACK as u32),
    ("core", libc::RLIMIT_CORE as u32),
    ("rss", libc::RLIMIT_RSS as u32),
    ("nproc", libc::RLIMIT_NPROC as u32),
    ("nofile", libc::RLIMIT_NOFILE as u32),
    ("memlock", libc::RLIMIT_MEMLOCK as u32),
    ("as", libc::RLIMIT_AS as u32),
    ("locks", libc::RLIMIT_LOCKS as u32),
    ("sigpending", libc::RLIMIT_SIGPENDING as u32),
    ("msgqueue", libc::RLIMIT_MSGQUEUE as u32),
    ("nice", libc::RLIMIT_NICE as u32),
    ("rtprio", libc::RLIMIT_RTPRIO as u32),
    ("rttime", libc::RLIMIT_RTTIME as u32),
];

/// One limit: the soft and hard values (`None` is `RLIM_INFINITY`, written `unlimited`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rlimit {
    /// `nofile`, `nproc`, … (see [`Rlimit::parse`]).
    pub name: String,
    /// The soft limit.
    pub soft: Option<u64>,
    /// The hard limit.
    pub hard: Option<u64>,
}

impl Rlimit {
    /// Parses `NAME=SOFT[:HARD]`: `nofile=1024:2048`, `core=0`, `stack=unlimited`. NAME is
    /// one of cpu, fsize, data, stack, core, rss, nproc, nofile, memlock, as, locks,
    /// sigpending, msgqueue, nice, rtprio, rttime (an `RLIMIT_` prefix and any case are
    /// accepted); values are numbers or `unlimited`/`-1`. Without HARD, hard = soft.
    ///
    /// ```
    /// use isol_ns_core::security::Rlimit;
    /// let r = Rlimit::parse("nofile=1024:2048").unwrap();
    /// assert_eq!((r.soft, r.hard), (Some(1024), Some(2048)));
    /// assert!(Rlimit::parse("nofile=4096:1024").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Rlimit> {
        let bad = |why: String| Error::invalid("ulimit", s, why);
        let (name, values) = s.split_once('=').ok_or_else(|| {
            bad(format!(
                "{s:?} is not NAME=SOFT[:HARD] (e.g. nofile=1024:2048)"
            ))
        })?;
        let lower = name.trim().to_ascii_lowercase();
        let name = lower.strip_prefix("rlimit_").unwrap_or(&lower).to_string();
        if !RESOURCES.iter().any(|(n, _)| *n == name) {
            let names: Vec<&str> = RESOURCES.iter().map(|(n, _)| *n).collect();
            return Err(bad(format!(
                "unknown resource {name:?} (use one of {})",
                names.join(", ")
            )));
        }
        let value = |v: &str| -> Result<Option<u64>> {
            match v.trim() {
                "unlimited" | "infinity" | "-1" => Ok(None),
                n => n
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| bad(format!("{n:?} is not a number or unlimited"))),
            }
        };
        let (soft, hard) = match values.split_once(':') {
            Some((a, b)) => (value(a)?, value(b)?),
            None => {
                let v = value(values)?;
                (v, v)
            }
        };
        let r = Rlimit { name, soft, hard };
        r.validate()?;
        Ok(r)
    }

    /// Refuses an unknown name or a soft limit above the hard one.
    pub fn validate(&self) -> Result<()> {
        self.resource()?;
        let above = match (self.soft, self.hard) {
            (None, Some(_)) => true,
            (Some(s), Some(h)) => s > h,
            _ => false,
        };
        if above {
            return Err(Error::invalid(
                "ulimit",
                self.to_string(),
                "the soft limit is above the hard limit",
            ));
        }
        Ok(())
    }

    /// The `RLIMIT_*` number.
    pub fn resource(&self) -> Result<u32> {
        RESOURCES
            .iter()
            .find(|(n, _)| *n == self.name)
            .map(|(_, r)| *r)
            .ok_or_else(|| Error::invalid("ulimit", &self.name, "unknown resource"))
    }

    /// The name of an `RLIMIT_*` number (`nofile`), for labels.
    pub(crate) fn name_of(resource: u32) -> &'static str {
        RESOURCES
            .iter()
            .find(|(_, r)| *r == resource)
            .map_or("", |(n, _)| *n)
    }

    /// `struct rlimit64` values (`RLIM_INFINITY` for unlimited).
    pub(crate) fn raw(&self) -> (u64, u64) {
        let v = |x: Option<u64>| x.unwrap_or(u64::MAX); // RLIM64_INFINITY
        (v(self.soft), v(self.hard))
    }
}

impl FromStr for Rlimit {
    type Err = Error;
    fn from_str(s: &str) -> Result<Rlimit> {
        Rlimit::parse(s)
    }
}

impl fmt::Display for Rlimit {
    /// `nofile=1024:2048`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = |x: Option<u64>| x.map_or_else(|| "unlimited".to_string(), |n| n.to_string());
        write!(f, "{}={}:{}", self.name, v(self.soft), v(self.hard))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unnecessary_cast)] // musl's RLIMIT_* are c_int
    fn parses_docker_forms() {
        let cases = [
            ("nofile=1024:2048", "nofile", Some(1024), Some(2048)),
            ("NOFILE=10", "nofile", Some(10), Some(10)),
            ("RLIMIT_CORE=0", "core", Some(0), Some(0)),
            ("stack=unlimited", "stack", None, None),
            ("memlock=-1:-1", "memlock", None, None),
            ("nproc=100:unlimited", "nproc", Some(100), None),
        ];
        for (s, name, soft, hard) in cases {
            let r = Rlimit::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!((r.name.as_str(), r.soft, r.hard), (name, soft, hard), "{s}");
            assert_eq!(
                Rlimit::parse(&r.to_string()).unwrap(),
                r,
                "round trip of {s}"
            );
        }
        assert_eq!(
            Rlimit::parse("nofile=1:2").unwrap().resource().unwrap(),
            libc::RLIMIT_NOFILE as u32
        );
    }

    #[test]
    fn refuses_with_reasons() {
        for (s, why) in [
            ("nofile", "NAME=SOFT"),
            ("files=10", "unknown resource"),
            ("nofile=ten", "not a number"),
            ("nofile=20:10", "above the hard"),
            ("nofile=unlimited:10", "above the hard"),
        ] {
            let e = Rlimit::parse(s).unwrap_err().to_string();
            assert!(e.contains(why), "{s}: {e}");
        }
    }
}
