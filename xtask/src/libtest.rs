//! Reading libtest's summary lines.
//!
//! Every test binary built by cargo ends its run with
//! `test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; …`.
//! The host run's totals come from these lines; the VM's init computes its own from
//! the same lines (see `vm/init.sh`).

use std::ops::AddAssign;

/// Test counts of one or more libtest runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    /// Tests that were not run: `#[ignore]`d ones.
    pub ignored: u64,
}

impl Counts {
    /// Tests that ran, whatever their outcome.
    pub fn run(&self) -> u64 {
        self.passed + self.failed
    }
}

impl AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.ignored += other.ignored;
    }
}

/// The counts of a libtest summary line, found anywhere in `line` (so a prefix such as
/// a log tag is fine), or `None` when `line` is not one.
pub fn parse_summary(line: &str) -> Option<Counts> {
    let rest = &line[line.find("test result: ")? + "test result: ".len()..];
    let (_verdict, counts) = rest.split_once(". ")?;
    let mut out = Counts::default();
    let mut seen = 0;
    for part in counts.split(';') {
        let mut words = part.split_whitespace();
        let (Some(n), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        match what {
            "passed" => out.passed = n,
            "failed" => out.failed = n,
            "ignored" => out.ignored = n,
            _ => continue,
        }
        seen += 1;
    }
    (seen == 3).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ok_and_failed_summaries() {
        let ok = "test result: ok. 12 passed; 0 failed; 2 ignored; 0 measured; 5 filtered out; finished in 0.31s";
        assert_eq!(
            parse_summary(ok),
            Some(Counts {
                passed: 12,
                failed: 0,
                ignored: 2
            })
        );
        let failed = "[unified] test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.00s";
        assert_eq!(
            parse_summary(failed),
            Some(Counts {
                passed: 3,
                failed: 1,
                ignored: 0
            })
        );
    }

    #[test]
    fn ignores_other_lines() {
        assert_eq!(parse_summary("test foo ... ok"), None);
        assert_eq!(parse_summary("running 3 tests"), None);
        assert_eq!(parse_summary("test result: garbage"), None);
    }
}
