//! The contenders: each runs `/bin/true` once per sample, and every sample is timed the
//! same way — from just before the tool is started to just after `wait4` has reaped it —
//! so process start-up, dynamic linking and tear-down count for every tool alike.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::setup::Cgroups;
use super::sys::{self, Exec};

/// One timed run.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Wall time, start to reaped.
    pub nanos: u64,
    /// `ru_maxrss` of the tool's process (KiB), from `wait4`.
    pub maxrss_kib: u64,
}

/// How a tool is run.
pub enum Kind {
    /// An external program; the closure gives the command line for a worker.
    Exec {
        argv: Box<dyn Fn(usize) -> Vec<OsString> + Send + Sync>,
        /// Start it in a private mount namespace without `/sys/fs/cgroup/unified`
        /// (crun on hybrid hosts).
        without_unified: bool,
    },
    /// The floor: `clone3` + `execve` of `/bin/true`, no namespaces, no cgroup.
    FloorExec,
    /// The floor with namespaces and a cgroup; `self_attach`: the child moves itself
    /// through the v1 `tasks` files (`sys::clone_ns_self_attach_exec`), else the parent
    /// writes its pid to `cgroup.procs` (`sys::clone_ns_cgroup_exec`).
    FloorNsCgroup { self_attach: bool },
}

/// A contender.
pub struct Tool {
    /// Short name, used in the CSV and the chart (`crun`).
    pub key: &'static str,
    /// The command line as a person would type it, for the report.
    pub shown: String,
    /// Whether it runs under memory max 64M and pids max 64.
    pub limited: bool,
    /// How it is run.
    pub kind: Kind,
}

/// What every tool's samples share.
pub struct Ctx {
    /// `/bin/true`, ready for the floors' children.
    pub truth: Exec,
    /// Where the floor's cgroups go, and how they are removed.
    pub cgroups: Cgroups,
}

impl Tool {
    /// An external program with the same command line for every worker.
    pub fn program(key: &'static str, limited: bool, argv: Vec<OsString>) -> Tool {
        Tool::per_worker(key, limited, argv.clone(), false, move |_| argv.clone())
    }

    /// An external program whose command line depends on the worker (crun and runc need
    /// a container id and a cgroup each). `shown` is the command line for the report.
    pub fn per_worker(
        key: &'static str,
        limited: bool,
        shown: Vec<OsString>,
        without_unified: bool,
        argv: impl Fn(usize) -> Vec<OsString> + Send + Sync + 'static,
    ) -> Tool {
        Tool {
            key,
            shown: shown
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" "),
            limited,
            kind: Kind::Exec {
                argv: Box::new(argv),
                without_unified,
            },
        }
    }

    /// Runs the tool once as `worker`, and times it.
    pub fn once(&self, ctx: &Ctx, worker: usize) -> Result<Sample> {
        match &self.kind {
            Kind::Exec {
                argv,
                without_unified,
            } => run_program(&argv(worker), *without_unified),
            Kind::FloorExec => {
                let start = Instant::now();
                let reaped = sys::clone_exec(&ctx.truth).context("clone3 + execve")?;
                let nanos = nanos(start.elapsed());
                if !reaped.success() {
                    bail!("/bin/true failed: {}", reaped.describe());
                }
                Ok(Sample {
                    nanos,
                    maxrss_kib: reaped.maxrss_kib,
                })
            }
            Kind::FloorNsCgroup { self_attach } => floor_ns_cgroup(ctx, worker, *self_attach),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().try_into().unwrap_or(u64::MAX)
}

fn run_program(argv: &[OsString], without_unified: bool) -> Result<Sample> {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .env("PATH", super::setup::PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if without_unified {
        sys::private_mounts_without_unified(&mut cmd);
    } else {
        sys::fork_not_vfork(&mut cmd);
    }
    let start = Instant::now();
    let mut child = crate::exec::spawn(&mut cmd)?;
    let reaped = sys::wait4(child.id() as i32)
        .with_context(|| format!("wait4 for `{}`", crate::exec::display(&cmd)))?;
    let nanos = nanos(start.elapsed());
    if !reaped.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        bail!(
            "`{}` failed ({}): {}",
            crate::exec::display(&cmd),
            reaped.describe(),
            err.trim()
        );
    }
    Ok(Sample {
        nanos,
        maxrss_kib: reaped.maxrss_kib,
    })
}

/// The floor with namespaces and a cgroup, the whole cycle timed: mkdir the memory and
/// pids directories, write the limits, clone3 into new namespaces, attach, exec, wait,
/// rmdir.
fn floor_ns_cgroup(ctx: &Ctx, worker: usize, self_attach: bool) -> Result<Sample> {
    let attach_file = if self_attach { "tasks" } else { "cgroup.procs" };
    let dirs = ctx
        .cgroups
        .floor_dirs(&format!("floor-{attach_file}-w{worker}"))
        .map_err(anyhow::Error::msg)?;
    let limit = |file: &str| if file == "pids.max" { "64" } else { "67108864" };
    let start = Instant::now();
    let mut procs: Vec<File> = Vec::with_capacity(dirs.len());
    let mut made: Vec<PathBuf> = Vec::with_capacity(dirs.len());
    let result = (|| -> Result<sys::Reaped> {
        for (dir, limit_file) in &dirs {
            fs::create_dir(dir).with_context(|| format!("mkdir {}", dir.display()))?;
            made.push(dir.clone());
            fs::write(dir.join(limit_file), limit(limit_file))
                .with_context(|| format!("write {}", dir.join(limit_file).display()))?;
            procs.push(
                OpenOptions::new()
                    .write(true)
                    .open(dir.join(attach_file))
                    .with_context(|| format!("open {}/{attach_file}", dir.display()))?,
            );
        }
        Ok(if self_attach {
            sys::clone_ns_self_attach_exec(&ctx.truth, &procs)?
        } else {
            sys::clone_ns_cgroup_exec(&ctx.truth, &mut procs)?
        })
    })();
    drop(procs);
    let mut removed = Ok(());
    for dir in made.iter().rev() {
        if let Err(e) = fs::remove_dir(dir) {
            removed = Err(anyhow::Error::new(e).context(format!("rmdir {}", dir.display())));
        }
    }
    let nanos = nanos(start.elapsed());
    let reaped = result?;
    removed?;
    if !reaped.success() {
        bail!("/bin/true failed: {}", reaped.describe());
    }
    Ok(Sample {
        nanos,
        maxrss_kib: reaped.maxrss_kib,
    })
}

/// Spawns per second of `workers` threads each running `per_worker` spawns back to back.
pub fn throughput(tool: &Tool, ctx: &Ctx, workers: usize, per_worker: usize) -> Result<f64> {
    let start = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                s.spawn(move || -> Result<()> {
                    for _ in 0..per_worker {
                        tool.once(ctx, w)?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("a bench worker panicked"))
    })?;
    Ok((workers * per_worker) as f64 / start.elapsed().as_secs_f64())
}
