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
#[cfg(test)]
mod map;
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
ignored test fails the mode. PATH is /bin:/usr/sbin:/usr/bin: busybox's applets
come first, the tools disk's programs after them (/usr/bin/unshare is
util-linux's, plain `unshare` busybox's).

The guest also has, for tests to use:
  ISOL_TEST_USER, ISOL_TEST_UID, ISOL_TEST_GID
      an unprivileged user (isoltest, 1000:1000, home /home/isoltest) in
      /etc/passwd and /etc/group, with subordinate ids 100000:65536 in
      /etc/subuid and /etc/subgid (root has 165536:65536). Switch to it with
      setuid/setgid before exec, or `su -s /bin/sh isoltest -c CMD`.
  ISOL_DELEGATED_CGROUP (unified mode only)
      a cgroup delegated to that user as systemd's Delegate=yes does:
      /sys/fs/cgroup/isoltest.delegated, owned by the user with its
      cgroup.procs, cgroup.threads and cgroup.subtree_control. cpu, io,
      memory and pids are enabled in the root's cgroup.subtree_control, none
      in its own. A test moves its child into it as root before dropping
      privileges; the user then moves itself into a leaf it makes there
      before enabling controllers (no internal processes). Leave it as you
      found it.
  ISOL_TOOLS (with a tools disk)
      the packages on it, comma-separated. The disk is mounted read-only at
      /isol/tools; /usr is its /usr, /lib, /lib64 and /sbin link into it, its
      /etc was copied beside the initramfs's. podman, ctr, containerd, crun,
      bwrap, conmon, newuidmap, newgidmap are in /usr/bin, runc in /usr/sbin,
      netavark in /usr/lib/podman; newuidmap/newgidmap are set-uid root;
      /etc/containers/containers.conf selects cgroupfs, file events and
      netavark (no systemd). Modules loaded: virtio, overlay, fuse, tun, veth;
      /dev/net/tun and /dev/fuse are 0666 as udev leaves them.
Before the tests init runs smoke checks (the tools' --version, the user, the
delegation, newuidmap as the user, `podman info` in the unified mode) and fails
the run when one fails.

Environment:
  ISOL_VM_TIMEOUT  seconds before a boot is killed (default 900)
  ISOL_VM_ACCEL    auto, kvm or tcg (--accel wins)
  ISOL_VM_MEMORY   guest memory (default 512M)
  ISOL_VM_TOOLS    the tools disk's packages (--tools wins; default: default)

Files (under the target dir):
  vm-cache/        kernel (and its modules) and busybox, fetched once with
                   apt-get download; debs/ and tools/ for the tools disk (delete
                   tools/ to pick up newer packages; tools-*.packages lists them)
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
