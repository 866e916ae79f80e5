//! The time namespace: offsets for `CLOCK_MONOTONIC` and `CLOCK_BOOTTIME`. It is the one
//! kind whose child and parent take turns: the child unshares and waits, the parent
//! writes the offsets, and only then does a process enter the namespace.

use std::path::Path;

use super::{Context, Namespace};
use crate::spawn::program::{Op, Program};
use crate::spawn::SpawnStep;
use crate::{Error, NamespaceKind, Result};

/// A clock offset: seconds and nanoseconds (`0 ≤ nanos < 1e9`), possibly negative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockOffset {
    /// Whole seconds.
    pub secs: i64,
    /// Nanoseconds, `0..1_000_000_000`.
    pub nanos: u32,
}

impl ClockOffset {
    /// An offset of whole seconds.
    pub const fn secs(secs: i64) -> ClockOffset {
        ClockOffset { secs, nanos: 0 }
    }
}

/// A new time namespace with offsets for `CLOCK_MONOTONIC` and `CLOCK_BOOTTIME`.
///
/// The child unshares `CLONE_NEWTIME` (which only affects its children), the parent
/// writes `/proc/PID/timens_offsets` before any process enters the namespace, and then
/// the child forks the command into it (time_namespaces(7)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimeNs {
    /// Added to `CLOCK_MONOTONIC` inside.
    pub monotonic: ClockOffset,
    /// Added to `CLOCK_BOOTTIME` inside.
    pub boottime: ClockOffset,
}

impl TimeNs {
    /// What is written to `timens_offsets`.
    pub fn offsets_text(&self) -> String {
        format!(
            "monotonic {} {}\nboottime {} {}\n",
            self.monotonic.secs, self.monotonic.nanos, self.boottime.secs, self.boottime.nanos
        )
    }

    /// Whether [`TimeNs::parent_setup`] has offsets to write.
    pub fn needs_parent(&self) -> bool {
        self.monotonic != ClockOffset::default() || self.boottime != ClockOffset::default()
    }

    /// The parent's part, while child `pid` waits in the unshared namespace: writes
    /// `/proc/PID/timens_offsets`.
    pub fn parent_setup(&self, pid: u32) -> Result<()> {
        crate::parse::write(
            Path::new(&format!("/proc/{pid}/timens_offsets")),
            &self.offsets_text(),
        )
    }
}

impl Namespace for TimeNs {
    fn kind(&self) -> NamespaceKind {
        NamespaceKind::Time
    }
    fn check(&self, _ctx: &Context) -> Result<()> {
        for (n, o) in [("monotonic", self.monotonic), ("boottime", self.boottime)] {
            if o.nanos >= 1_000_000_000 {
                return Err(Error::invalid(
                    format!("time offset {n}"),
                    o.nanos.to_string(),
                    "nanoseconds must be below 1000000000",
                ));
            }
        }
        Ok(())
    }
    fn child_steps(&self, _ctx: &Context, p: &mut Program) -> Result<()> {
        p.leader(
            SpawnStep::UnshareTime,
            "",
            Op::Unshare {
                flags: libc::CLONE_NEWTIME,
            },
        );
        p.leader(SpawnStep::WaitForTimeOffsets, "", Op::TimeReady);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NamespaceSet;

    #[test]
    fn offsets_text_and_check() {
        let t = TimeNs {
            monotonic: ClockOffset::secs(-5),
            boottime: ClockOffset {
                secs: 86400,
                nanos: 7,
            },
        };
        assert_eq!(t.offsets_text(), "monotonic -5 0\nboottime 86400 7\n");
        assert!(t.needs_parent() && !TimeNs::default().needs_parent());
        let bad = TimeNs {
            monotonic: ClockOffset {
                secs: 0,
                nanos: 1_000_000_000,
            },
            ..TimeNs::default()
        };
        let ctx = Context {
            new: NamespaceSet::EMPTY,
            joined: NamespaceSet::EMPTY,
            privileged: true,
            read_only_host: false,
            hardened: false,
        };
        assert!(bad.check(&ctx).is_err());
    }
}
