//! isol's build tasks, run as `cargo xtask <task>`.
//!
//! Each task lives in its own module; this file only parses the command line and
//! dispatches. Tasks that are more than one command (the VM runner, the full test run)
//! belong here rather than in shell scripts so that they behave the same on every
//! machine and report their failures with the command that failed.
//!
//! - `cargo xtask test` — formatting, clippy, the host test suite and the VM runs, with a
//!   summary table (what `.ci/run` runs);
//! - `cargo xtask test-vm` — the privileged integration tests inside qemu, once per
//!   cgroup mode (v2, v1, hybrid);
//! - `cargo xtask bench` — spawn latency, throughput and memory next to unshare,
//!   bubblewrap, crun, runc and raw floors; writes BENCHMARKS.md (needs root; not part of
//!   `test`).

mod bench;
mod exec;
mod libtest;
mod progress;
mod sys;
mod test;
mod vm;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// isol's build tasks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Check formatting and lints, run the host tests and the VM tests, print a summary.
    Test(test::Args),
    /// Run the integration test binaries as root inside qemu, once per cgroup mode.
    #[command(after_help = TEST_VM_HELP)]
    TestVm(vm::Args),
    /// Benchmark isol's spawn against unshare, bwrap, crun, runc and raw floors (as root).
    Bench(bench::Args),
}

const TEST_VM_HELP: &str = "\
In the guest each binary runs as root in its own scratch directory, as
`BINARY --test-threads=1 [FILTER…]`, with ISOL_REQUIRE_PRIVILEGED=1,
ISOL_EXPECT_MODE=unified|legacy|hybrid and RUST_BACKTRACE=1. A failed or
ignored test fails the mode.

Environment:
  ISOL_VM_TIMEOUT  seconds before a boot is killed (default 900)
  ISOL_VM_ACCEL    auto, kvm or tcg (--accel wins)
  ISOL_VM_MEMORY   guest memory (default 512M)

Files (under the target dir):
  vm-cache/        kernel and busybox, fetched once with apt-get download
  vm-logs/MODE.log the guest's serial console
  vm-work/         the initramfs of the last run";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Test(args) => test::run(args),
        Task::TestVm(args) => vm::run(args).map(|()| ExitCode::SUCCESS),
        Task::Bench(args) => bench::run(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}
