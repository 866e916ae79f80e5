//! `cargo xtask test-vm`: the privileged integration tests, run as root inside qemu
//! once per cgroup layout.
//!
//! The host a developer or CI has is in one cgroup mode; isol must work in all three
//! (unified v2, legacy v1, hybrid). So this task boots Debian's cloud kernel with a tiny
//! initramfs of our own — busybox, the test binaries built as static musl executables,
//! and an init (`init.sh`) that mounts the mode's hierarchies, runs each binary and
//! prints one verdict line — and trusts the run only when qemu's exit code and that
//! verdict line both say so.
//!
//! Where the musl target cannot be installed (no network for rustup), the host's own
//! glibc build is packed instead, with the shared libraries `ldd` names.
//!
//! Programs that are no static binaries (podman, containerd, crun, runc, bwrap,
//! newuidmap…) come on an optional read-only tools disk built from Debian's packages
//! ([`tools`]); init mounts it and checks them before the tests run.
//!
//! The pieces: [`binaries`] builds and finds the test executables, [`assets`] fetches
//! and caches the kernel and busybox (and installs qemu), [`kmod`] picks the kernel
//! modules the tools disk needs, [`tools`] builds that disk, [`initramfs`] packs the
//! archive, [`qemu`] boots it under a hard timeout and judges the log.

mod assets;
pub(crate) mod binaries;
mod initramfs;
mod kmod;
mod qemu;
mod tools;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;

use crate::libtest::Counts;
use crate::progress;
use binaries::Libc;

/// Guest memory: enough for the tests that drive a small cgroup into OOM, and for the
/// unpacked initramfs (the kernel caps it at half of this). Env: ISOL_VM_MEMORY.
const DEFAULT_MEMORY: &str = "512M";
/// Default hard limit on one boot, overridable by `ISOL_VM_TIMEOUT` (seconds).
const DEFAULT_TIMEOUT_SECS: u64 = 15 * 60;

/// Options of `cargo xtask test-vm`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cgroup layout to boot: v2 (unified), v1 (legacy), hybrid, or all three in turn.
    #[arg(long, value_enum, default_value_t = ModeArg::All)]
    mode: ModeArg,
    /// Boot this kernel image instead of Debian's cloud kernel.
    #[arg(long, value_name = "PATH")]
    kernel: Option<PathBuf>,
    /// Accelerator: KVM when usable (auto), or force one. Env: ISOL_VM_ACCEL.
    #[arg(long, value_enum)]
    accel: Option<Accel>,
    /// Build the tests of another workspace (to test this runner itself).
    #[arg(long, hide = true, value_name = "PATH")]
    manifest_path: Option<PathBuf>,
    /// Pack the host's glibc build and its shared libraries instead of static musl
    /// binaries (what happens anyway when the musl target cannot be installed).
    #[arg(long)]
    glibc: bool,
    /// Debian packages on the guest's tools disk: none, default (podman, containerd,
    /// crun, runc, bubblewrap, uidmap, util-linux and podman's helpers) or a
    /// comma-separated list where `default` may stand among other package names.
    /// Env: ISOL_VM_TOOLS.
    #[arg(long, value_name = "SET")]
    tools: Option<String>,
    /// Run this busybox sh script in the guest (as root, after the setup and smoke
    /// checks, in the tests' environment) instead of the test binaries; its exit
    /// status is the verdict.
    #[arg(long, value_name = "FILE")]
    script: Option<PathBuf>,
    /// Passed to every test binary after `--test-threads=1` (test name filters, `--exact`…).
    #[arg(last = true, value_name = "FILTER")]
    filter: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    #[value(alias = "unified")]
    V2,
    #[value(alias = "legacy")]
    V1,
    Hybrid,
    All,
}

impl ModeArg {
    fn modes(self) -> Vec<Mode> {
        match self {
            ModeArg::V2 => vec![Mode::Unified],
            ModeArg::V1 => vec![Mode::Legacy],
            ModeArg::Hybrid => vec![Mode::Hybrid],
            ModeArg::All => vec![Mode::Unified, Mode::Legacy, Mode::Hybrid],
        }
    }
}

/// A cgroup layout the guest can be booted in, named as `ISOL_EXPECT_MODE` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Unified,
    Legacy,
    Hybrid,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Unified => "unified",
            Mode::Legacy => "legacy",
            Mode::Hybrid => "hybrid",
        }
    }

    /// Kernel parameters this mode needs beyond what init mounts.
    fn kernel_args(self) -> &'static str {
        match self {
            // Keep every controller on the v2 hierarchy.
            Mode::Unified => "cgroup_no_v1=all",
            Mode::Legacy | Mode::Hybrid => "",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How qemu runs the guest's code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Accel {
    /// KVM when it can run a stock kernel here, TCG otherwise.
    Auto,
    Kvm,
    Tcg,
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Accel::Auto => "auto",
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        })
    }
}

impl Accel {
    /// `Kvm` or `Tcg`, with the reason for the choice.
    fn resolve(self) -> (Accel, &'static str) {
        match self {
            Accel::Kvm => (Accel::Kvm, "asked for"),
            Accel::Tcg => (Accel::Tcg, "asked for"),
            Accel::Auto => {
                let kvm_rw = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/kvm")
                    .is_ok();
                let hw = Path::new("/sys/module/kvm_intel").exists()
                    || Path::new("/sys/module/kvm_amd").exists();
                // kvm_pvm only runs guest kernels built for it; a stock kernel dies in
                // its decompressor and qemu hangs.
                let pvm = Path::new("/sys/module/kvm_pvm").exists();
                match (kvm_rw, hw, pvm) {
                    (true, true, false) => (Accel::Kvm, "/dev/kvm is usable"),
                    (false, _, _) => (Accel::Tcg, "/dev/kvm is not read-writable"),
                    (true, false, _) => (Accel::Tcg, "no kvm_intel or kvm_amd module"),
                    (true, true, true) => (Accel::Tcg, "kvm comes from kvm_pvm"),
                }
            }
        }
    }
}

/// What one mode's boot showed.
#[derive(Debug)]
pub struct ModeReport {
    pub mode: Mode,
    pub seconds: f64,
    /// Test counts from the verdict line, else summed from the binaries that finished.
    pub counts: Option<Counts>,
    /// Why the run failed, `None` when it passed.
    pub failure: Option<String>,
}

/// What a VM run needs, resolved from the command line and the environment.
pub struct Options {
    pub modes: Vec<Mode>,
    pub kernel: Option<PathBuf>,
    pub accel: Accel,
    pub timeout: Duration,
    pub manifest_path: Option<PathBuf>,
    pub libc: Libc,
    pub filter: Vec<String>,
    /// The packages of the tools disk; empty for no disk.
    pub tools: Vec<String>,
    pub script: Option<PathBuf>,
}

impl Options {
    /// Options for `cargo xtask test`: every mode, no filter.
    pub fn all_modes() -> Result<Options> {
        Ok(Options {
            modes: ModeArg::All.modes(),
            kernel: None,
            accel: accel_from_env(None)?,
            timeout: timeout_from_env()?,
            manifest_path: None,
            libc: Libc::Musl,
            filter: Vec::new(),
            tools: tools_from_env(None)?,
            script: None,
        })
    }
}

/// The tools disk's packages: `--tools`, else `ISOL_VM_TOOLS`, else the default set.
fn tools_from_env(flag: Option<&str>) -> Result<Vec<String>> {
    let env = std::env::var("ISOL_VM_TOOLS")
        .ok()
        .filter(|v| !v.is_empty());
    match flag {
        Some(spec) => tools::parse(spec),
        None => match env {
            Some(spec) => tools::parse(&spec).context("ISOL_VM_TOOLS"),
            None => tools::parse("default"),
        },
    }
}

fn accel_from_env(flag: Option<Accel>) -> Result<Accel> {
    if let Some(accel) = flag {
        return Ok(accel);
    }
    match std::env::var("ISOL_VM_ACCEL") {
        Ok(v) if !v.is_empty() => Accel::from_str(&v, true)
            .map_err(|e| anyhow::anyhow!("ISOL_VM_ACCEL={v}: {e} (use auto, kvm or tcg)")),
        _ => Ok(Accel::Auto),
    }
}

fn timeout_from_env() -> Result<Duration> {
    match std::env::var("ISOL_VM_TIMEOUT") {
        Ok(v) if !v.is_empty() => {
            let secs: u64 = v
                .trim_end_matches('s')
                .parse()
                .with_context(|| format!("ISOL_VM_TIMEOUT={v}: expected whole seconds"))?;
            Ok(Duration::from_secs(secs))
        }
        _ => Ok(Duration::from_secs(DEFAULT_TIMEOUT_SECS)),
    }
}

/// The directories xtask keeps its VM files in, all under the workspace's target dir.
struct Dirs {
    /// Downloads that are reused across runs (kernel, busybox).
    cache: PathBuf,
    /// The initramfs of the current run.
    work: PathBuf,
    /// One guest log per mode.
    logs: PathBuf,
}

impl Dirs {
    fn new() -> Dirs {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"));
        Dirs {
            cache: target.join("vm-cache"),
            work: target.join("vm-work"),
            logs: target.join("vm-logs"),
        }
    }
}

/// The root of the isol workspace (xtask's parent directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// `cargo xtask test-vm`.
pub fn run(args: Args) -> Result<()> {
    let options = Options {
        modes: args.mode.modes(),
        kernel: args.kernel,
        accel: accel_from_env(args.accel)?,
        timeout: timeout_from_env()?,
        manifest_path: args.manifest_path,
        libc: if args.glibc { Libc::Host } else { Libc::Musl },
        filter: args.filter,
        tools: tools_from_env(args.tools.as_deref())?,
        script: args.script,
    };
    if let Some(script) = &options.script {
        if !script.is_file() {
            bail!("--script {}: no such file", script.display());
        }
    }
    let reports = run_modes(&options)?;
    let mut failed = Vec::new();
    for r in &reports {
        let counts = r.counts.unwrap_or_default();
        println!(
            "vm {:<8} {:>4} passed {:>4} failed {:>4} ignored {:>7.1}s  {}",
            r.mode.name(),
            counts.passed,
            counts.failed,
            counts.ignored,
            r.seconds,
            r.failure.as_deref().unwrap_or("ok"),
        );
        if let Some(why) = &r.failure {
            failed.push(format!("{}: {why}", r.mode));
        }
    }
    if !failed.is_empty() {
        bail!("VM tests failed\n  {}", failed.join("\n  "));
    }
    Ok(())
}

/// Prepares everything once, then boots each mode in turn, even after one failed.
/// An `Err` means nothing could be booted (build, download or packing failed).
pub fn run_modes(options: &Options) -> Result<Vec<ModeReport>> {
    let dirs = Dirs::new();
    assets::ensure_qemu()?;
    // The tools disk needs virtio and more, which the cloud kernel has as modules.
    let wanted: &[&str] = if options.tools.is_empty() {
        &[]
    } else {
        &kmod::WANTED
    };
    let kernel = match &options.kernel {
        Some(path) => {
            if !wanted.is_empty() {
                progress::step(
                    "vm",
                    "--kernel: no modules are packed; the tools disk needs virtio_pci and \
                     virtio_blk built into that kernel (or pass --tools none)",
                );
            }
            assets::Kernel {
                image: path.clone(),
                modules: Vec::new(),
            }
        }
        None => assets::kernel(&dirs.cache, wanted)?,
    };
    let busybox = assets::busybox(&dirs.cache)?;
    // One VM run at a time per target dir: the initramfs and the logs are shared, and
    // two TCG guests on two cores would only slow each other down.
    std::fs::create_dir_all(&dirs.work)
        .with_context(|| format!("create {}", dirs.work.display()))?;
    let lock_path = dirs.work.join("lock");
    let _lock = crate::sys::lock_exclusive(&lock_path, || {
        progress::step(
            "vm",
            format!("waiting for another VM run ({})", lock_path.display()),
        );
    })
    .with_context(|| format!("lock {}", lock_path.display()))?;
    let built = binaries::build(options.manifest_path.as_deref(), options.libc, &dirs.work)?;
    if built.tests.is_empty() {
        bail!(
            "no integration test binaries were built: each crate's privileged tests belong \
             in tests/it/main.rs (or tests/*.rs)"
        );
    }
    let disk = if options.tools.is_empty() {
        None
    } else {
        Some(tools::ensure(&dirs.cache, &options.tools)?)
    };
    let initrd = dirs.work.join("initramfs.cpio.gz");
    initramfs::write(
        &initrd,
        &initramfs::Contents {
            busybox: &busybox,
            built: &built,
            args: &options.filter,
            modules: &kernel.modules,
            tools: disk.as_ref().map_or(&[], |d| d.packages.as_slice()),
            script: options.script.as_deref(),
        },
    )?;
    let memory = std::env::var("ISOL_VM_MEMORY")
        .ok()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| DEFAULT_MEMORY.to_owned());
    let (accel, why) = options.accel.resolve();
    progress::step("vm", format!("accelerator {accel} ({why})"));
    let mut reports = Vec::new();
    for &mode in &options.modes {
        let vm = qemu::Vm {
            kernel: &kernel.image,
            initrd: &initrd,
            disk: disk.as_ref().map(|d| d.image.as_path()),
            accel,
            memory: &memory,
            timeout: options.timeout,
            log: dirs.logs.join(format!("{mode}.log")),
        };
        reports.push(vm.boot(mode));
    }
    Ok(reports)
}
