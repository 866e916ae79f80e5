//! `cargo xtask test`: the project's one test command, the one `.ci/run` runs.
//!
//! It runs every check in turn and keeps going after a failure, so that one run shows
//! everything that is wrong: formatting, clippy, the host test suite (as root with
//! `ISOL_REQUIRE_PRIVILEGED=1`, so privileged tests cannot quietly skip), and the VM
//! runs in all three cgroup modes. It ends with a table and a plain
//! `N passed, M failed` line, and exits non-zero when anything failed.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, Result};

use crate::libtest::{self, Counts};
use crate::{exec, progress, sys, vm};

/// Options of `cargo xtask test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Skip the VM runs (for quick local checks; CI never passes this).
    #[arg(long)]
    no_vm: bool,
}

/// One line of the closing table.
struct Row {
    phase: String,
    /// Test counts, for phases that run tests.
    counts: Option<Counts>,
    /// Whether ignored tests count as failures (the VM runs).
    strict: bool,
    seconds: f64,
    /// Why the phase failed.
    failure: Option<String>,
}

impl Row {
    /// What this row adds to the closing line's failed count: its failed tests (and
    /// in strict phases its ignored ones), or 1 for a phase that failed otherwise.
    fn failures(&self) -> u64 {
        let c = self.counts.unwrap_or_default();
        let n = c.failed + if self.strict { c.ignored } else { 0 };
        if self.failure.is_some() {
            n.max(1)
        } else {
            n
        }
    }
}

/// `cargo xtask test`: succeeds only when every phase passed. Failed phases are
/// reported by the summary itself, so they are not an `Err`.
pub fn run(args: Args) -> Result<ExitCode> {
    let root = vm::workspace_root();
    let cargo = exec::cargo();
    let mut rows = Vec::new();

    rows.push(phase("fmt", || {
        exec::exec(
            Command::new(&cargo)
                .args(["fmt", "--all", "--check"])
                .current_dir(&root),
        )
    }));
    rows.push(phase("clippy", || {
        exec::exec(
            Command::new(&cargo)
                .args([
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ])
                .current_dir(&root),
        )
    }));
    rows.push(host_tests(&cargo, &root));

    if args.no_vm {
        progress::step("vm", "skipped (--no-vm)");
    } else {
        let start = Instant::now();
        progress::step("vm", "start: all modes");
        match vm::Options::all_modes().and_then(|o| vm::run_modes(&o)) {
            Ok(reports) => rows.extend(reports.into_iter().map(|r| Row {
                phase: format!("vm {}", r.mode),
                counts: r.counts,
                strict: true,
                seconds: r.seconds,
                failure: r.failure,
            })),
            Err(err) => rows.push(Row {
                phase: "vm".to_owned(),
                counts: None,
                strict: true,
                seconds: start.elapsed().as_secs_f64(),
                failure: Some(format!("{err:#}")),
            }),
        }
    }

    // The failures first, on stderr; the table and the closing `N passed, M failed`
    // line last, where CI reads it.
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|r| Some(format!("{}: {}", r.phase, r.failure.as_ref()?)))
        .collect();
    if !failures.is_empty() {
        eprintln!("\nxtask: {} phase(s) failed", failures.len());
        for f in &failures {
            eprintln!("  {f}");
        }
    }
    print_table(&rows);
    let passed: u64 = rows.iter().filter_map(|r| r.counts).map(|c| c.passed).sum();
    let failed: u64 = rows.iter().map(Row::failures).sum();
    println!("{passed} passed, {failed} failed");
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs a phase that has no test counts of its own.
fn phase(name: &str, f: impl FnOnce() -> Result<()>) -> Row {
    progress::step(name, "start");
    let start = Instant::now();
    let failure = f().err().map(|e| format!("{e:#}"));
    let seconds = start.elapsed().as_secs_f64();
    progress::step(name, if failure.is_some() { "FAILED" } else { "ok" });
    Row {
        phase: name.to_owned(),
        counts: None,
        strict: false,
        seconds,
        failure,
    }
}

/// `cargo test --workspace` on this host, echoing its output and summing libtest's
/// summary lines. As root, privileged tests must run (not skip) and must find the
/// host's own cgroup mode. Tests run one at a time, as in the VM: a privileged test
/// compares process-wide state before and after (child processes, mounts), which
/// another test running beside it in the same process would disturb.
fn host_tests(cargo: &str, root: &std::path::Path) -> Row {
    let mode = sys::host_cgroup_mode();
    let name = format!("host ({})", mode.unwrap_or("no cgroups"));
    progress::step(&name, "start: cargo test --workspace");
    let start = Instant::now();
    let mut cmd = Command::new(cargo);
    cmd.args([
        "test",
        "--workspace",
        "--no-fail-fast",
        "--",
        "--test-threads=1",
    ])
    .current_dir(root);
    if sys::is_root() {
        cmd.env("ISOL_REQUIRE_PRIVILEGED", "1");
        if let Some(mode) = mode {
            cmd.env("ISOL_EXPECT_MODE", mode);
        }
    } else {
        progress::step(&name, "not root: privileged tests will skip");
    }
    let mut counts = Counts::default();
    let result = (|| -> Result<()> {
        cmd.stdout(Stdio::piped());
        let mut child = exec::spawn(&mut cmd)?;
        let stdout = child.stdout.take().expect("stdout was piped");
        for line in BufReader::new(stdout).lines() {
            let line = line.context("read cargo test's output")?;
            println!("{line}");
            if let Some(c) = libtest::parse_summary(&line) {
                counts += c;
            }
        }
        let status = child.wait().context("wait for cargo test")?;
        exec::check(&cmd, status)
    })();
    let seconds = start.elapsed().as_secs_f64();
    let failure = result.err().map(|e| format!("{e:#}"));
    progress::step(&name, if failure.is_some() { "FAILED" } else { "ok" });
    Row {
        phase: name,
        counts: Some(counts),
        strict: false,
        seconds,
        failure,
    }
}

fn print_table(rows: &[Row]) {
    let dash = |n: Option<u64>| n.map_or("-".to_owned(), |n| n.to_string());
    println!();
    println!(
        "{:<20} {:>7} {:>7} {:>7} {:>8} {:>8}  result",
        "phase/mode", "run", "passed", "failed", "skipped", "seconds"
    );
    for r in rows {
        println!(
            "{:<20} {:>7} {:>7} {:>7} {:>8} {:>8.1}  {}",
            r.phase,
            dash(r.counts.map(|c| c.run())),
            dash(r.counts.map(|c| c.passed)),
            dash(r.counts.map(|c| c.failed)),
            dash(r.counts.map(|c| c.ignored)),
            r.seconds,
            if r.failure.is_some() { "FAILED" } else { "ok" },
        );
    }
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(counts: Option<Counts>, strict: bool, failed: bool) -> Row {
        Row {
            phase: "p".into(),
            counts,
            strict,
            seconds: 0.0,
            failure: failed.then(|| "why".into()),
        }
    }

    #[test]
    fn every_failed_phase_counts_at_least_once() {
        let c = |failed, ignored| {
            Some(Counts {
                passed: 5,
                failed,
                ignored,
            })
        };
        assert_eq!(row(None, false, false).failures(), 0);
        assert_eq!(row(None, false, true).failures(), 1);
        assert_eq!(row(c(2, 0), false, true).failures(), 2);
        assert_eq!(row(c(0, 3), false, false).failures(), 0);
        assert_eq!(row(c(0, 3), true, true).failures(), 3);
    }
}
