//! `cargo xtask bench`: what an isolated spawn costs with isol, next to the tools people
//! would pick instead (util-linux `unshare`, bubblewrap, crun, runc) and two floors
//! written here in Rust (a bare `clone3` + `execve`, and the same with namespaces and a
//! fresh memory+pids cgroup).
//!
//! Every tool runs `/bin/true` under the same isolation (new mnt, pid, net, ipc, uts and
//! cgroup namespaces) and, where the tool can set them, the same limits (memory 64M,
//! pids 64). Latency rounds interleave the tools, in an order shuffled for each round
//! (A B C, C A B, B A C, …), so that drift on this shared machine hits every tool alike
//! and no tool always follows the same one; then each tool's sequential and two-worker
//! throughput is measured in interleaved repetitions. The library's cgroup create +
//! apply + destroy cycle is measured per backend, and `isol stats` once the CLI has it.
//!
//! Outputs: `target/bench/samples.csv` (every sample), `target/bench/latency.png`, and
//! the generated part of `BENCHMARKS.md` at the repository root (with a copy of the chart
//! in `docs/bench-latency.png`) unless `--no-docs`. Needs root; not part of `cargo xtask
//! test`.

mod chart;
mod report;
mod setup;
mod sys;
mod tools;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::{exec, vm};
use report::{Extra, Target, ToolResult};
use tools::{Ctx, Kind, Tool};

/// `cargo xtask bench` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Interleaved latency rounds: every tool runs once per round.
    #[arg(long, default_value_t = 200)]
    rounds: usize,
    /// Throughput repetitions; each runs a sequential batch and a two-worker batch of
    /// every tool.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Spawns per worker in one throughput batch.
    #[arg(long, default_value_t = 20)]
    batch: usize,
    /// Rounds of the library's cgroup create + apply + destroy cycle, per backend.
    #[arg(long, default_value_t = 200)]
    cgroup_rounds: usize,
    /// Only these tools (comma-separated keys as in the report, e.g. `crun,floor`).
    #[arg(long, value_delimiter = ',', value_name = "KEYS")]
    only: Vec<String>,
    /// Write only under target/bench; leave BENCHMARKS.md and docs/ alone.
    #[arg(long)]
    no_docs: bool,
    /// Do not install missing tools with apt-get.
    #[arg(long)]
    no_install: bool,
}

/// The programs built from this workspace.
struct Built {
    /// `bench_helper` (the library's spawn and cgroup cycle).
    helper: PathBuf,
    /// `isol`, when it builds: the static musl executable, as isol is shipped.
    isol: Option<PathBuf>,
    /// `isol` built for the host's glibc (dynamically linked), the plain `cargo build`.
    isol_glibc: Option<PathBuf>,
    /// Why there is no `isol`, when there is none.
    isol_missing: Option<String>,
}

/// Builds `target` of `package` in release mode and returns its executable, found in
/// cargo's JSON messages.
fn build(root: &Path, package: &str, target: &[&str], name: &str) -> Result<PathBuf> {
    let mut cmd = Command::new(exec::cargo());
    cmd.args([
        "build",
        "--release",
        "--message-format=json-render-diagnostics",
        "-p",
        package,
    ])
    .args(target)
    .current_dir(root)
    .stderr(Stdio::inherit());
    let out = exec::output(&mut cmd)?;
    out.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .with_context(|| format!("`{}` built no executable {name}", exec::display(&cmd)))
}

/// Whether `isol SUBCOMMAND… --help` succeeds (the subcommand exists).
fn has(isol: &Path, sub: &[&str]) -> bool {
    Command::new(isol)
        .args(sub)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Things to undo at the end, whatever happens, last first.
#[derive(Default)]
struct Teardown(Vec<Box<dyn FnOnce()>>);

impl Teardown {
    fn push(&mut self, f: impl FnOnce() + 'static) {
        self.0.push(Box::new(f));
    }
}

impl Drop for Teardown {
    fn drop(&mut self) {
        while let Some(f) = self.0.pop() {
            f();
        }
    }
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// `cargo xtask bench`.
pub fn run(args: Args) -> Result<()> {
    setup::require_root()?;
    if !args.no_install {
        setup::install()?;
    }
    let root = vm::workspace_root();
    let out = root.join("target/bench");
    fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;

    eprintln!("bench: building the library helper and the isol CLI (release)");
    let helper = build(
        &root,
        "isol-ns-core",
        &["--example", "bench_helper"],
        "bench_helper",
    )?;
    vm::binaries::ensure_musl()?;
    let musl = ["--bin", "isol", "--target", vm::binaries::TARGET];
    let (isol, isol_missing) = match build(&root, "isol-cli", &musl, "isol") {
        Ok(p) if has(&p, &["run"]) => (Some(p), None),
        Ok(_) => (None, Some("the isol CLI has no `run` yet".to_owned())),
        Err(e) => (None, Some(format!("the isol CLI does not build: {e:#}"))),
    };
    let isol_glibc = isol
        .as_ref()
        .and_then(|_| build(&root, "isol-cli", &["--bin", "isol"], "isol").ok());
    let built = Built {
        helper,
        isol,
        isol_glibc,
        isol_missing,
    };
    if let Some(why) = &built.isol_missing {
        eprintln!("bench: {why}; measuring the library (bench_helper) instead");
    }

    let rootfs = out.join("rootfs");
    setup::rootfs(&rootfs)?;
    let mut teardown = Teardown::default();
    let cgroups = setup::Cgroups::probe()?;
    cgroups.prepare()?;
    let ctx = Ctx {
        truth: sys::Exec::new("/bin/true"),
        cgroups,
    };
    let result = measure(&args, &root, &out, &rootfs, &built, &ctx, &mut teardown);
    drop(teardown);
    let failed = ctx.cgroups.cleanup();
    for f in &failed {
        eprintln!("bench: could not remove the cgroup directory {f}");
    }
    let (tools, extras, meta) = result?;
    if !failed.is_empty() {
        bail!("{} cgroup directories were left behind", failed.len());
    }
    write_reports(&args, &root, &out, &tools, &extras, &meta)
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a small, well-mixed generator, enough to
/// shuffle the tools of a round reproducibly.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Fisher–Yates.
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// What the report says about the run besides the numbers.
struct Meta {
    baseline: String,
    notes: Vec<String>,
}

#[allow(clippy::too_many_arguments)]
fn measure(
    args: &Args,
    root: &Path,
    out: &Path,
    rootfs: &Path,
    built: &Built,
    ctx: &Ctx,
    teardown: &mut Teardown,
) -> Result<(Vec<ToolResult>, Vec<Extra>, Meta)> {
    let mut notes = Vec::new();
    let state = PathBuf::from(format!("/run/isol-bench-{}", std::process::id()));
    let mut tools: Vec<Tool> = Vec::new();
    let limits = ["--memory", "64M", "--pids", "64"];

    if let Some(isol) = &built.isol {
        fs::create_dir_all(&state)?;
        {
            let state = state.clone();
            teardown.push(move || drop(fs::remove_dir_all(&state)));
        }
        let run = |isol: &Path| {
            let mut argv = vec![isol.to_owned().into_os_string()];
            argv.extend(os(&["--state-dir"]));
            argv.push(state.clone().into_os_string());
            argv.extend(os(&["run"]));
            argv.extend(os(&limits));
            argv.extend(os(&["--", "/bin/true"]));
            argv
        };
        tools.push(Tool::program("isol run", true, run(isol)));
        // The same without hardening (issue 9's cost, at the CLI).
        let mut privileged = run(isol);
        let at = privileged
            .iter()
            .position(|a| a == "run")
            .map_or(0, |i| i + 1);
        privileged.insert(at, "--privileged".into());
        tools.push(Tool::program("isol run --privileged", true, privileged));
        if let Some(glibc) = &built.isol_glibc {
            tools.push(Tool::program("isol run (glibc)", true, run(glibc)));
        }
        if has(isol, &["pod", "create"]) {
            let pod = format!("bench-{}", std::process::id());
            let mut create = Command::new(isol);
            create
                .arg("--state-dir")
                .arg(&state)
                .args(["pod", "create", &pod, "--memory", "256M", "--pids", "512"]);
            match exec::output(&mut create) {
                Ok(_) => {
                    {
                        let (isol, state, pod) = (isol.clone(), state.clone(), pod.clone());
                        teardown.push(move || {
                            let _ = Command::new(&isol)
                                .arg("--state-dir")
                                .arg(&state)
                                .args(["pod", "rm", "-f", &pod])
                                .stdout(Stdio::null())
                                .status();
                        });
                    }
                    let mut argv = vec![isol.clone().into_os_string()];
                    argv.extend(os(&["--state-dir"]));
                    argv.push(state.clone().into_os_string());
                    argv.extend(os(&["run", "--pod", &pod]));
                    argv.extend(os(&limits));
                    argv.extend(os(&["--", "/bin/true"]));
                    tools.push(Tool::program("isol run --pod", true, argv));
                }
                Err(e) => notes.push(format!("pod member spawn not measured: {e:#}")),
            }
        } else {
            notes.push("pod member spawn not measured: the CLI has no `isol pod` yet".into());
        }
    } else if let Some(why) = &built.isol_missing {
        notes.push(format!(
            "`isol run` not measured: {why}; `isol lib` (the library through bench_helper) is the baseline"
        ));
    }
    tools.push(Tool::program(
        "isol lib",
        true,
        vec![built.helper.clone().into_os_string(), "spawn".into()],
    ));
    tools.push(Tool::program(
        "unshare",
        false,
        os(&[
            "unshare",
            "--pid",
            "--fork",
            "--mount",
            "--net",
            "--uts",
            "--ipc",
            "--mount-proc",
            "/bin/true",
        ]),
    ));
    let mut bwrap = os(&["bwrap", "--unshare-all", "--ro-bind"]);
    bwrap.push(rootfs.as_os_str().to_owned());
    bwrap.extend(os(&["/", "/bin/true"]));
    tools.push(Tool::program("bwrap", false, bwrap));

    match &ctx.cgroups.base {
        Ok(base) => {
            let hybrid = Path::new("/sys/fs/cgroup/unified").exists()
                && ctx.cgroups.host.mode == isol_ns_core::CgroupMode::Hybrid;
            for runtime in ["crun", "runc"] {
                let mut bundles = Vec::new();
                for w in 0..2 {
                    let dir = out.join("oci").join(format!("{runtime}-w{w}"));
                    setup::bundle(&dir, rootfs, &format!("{base}/{runtime}-w{w}"))?;
                    bundles.push(dir);
                }
                let id =
                    move |w: usize| format!("isol-bench-{}-{runtime}-w{w}", std::process::id());
                let mut shown = os(&[runtime, "run", "--bundle"]);
                shown.push(bundles[0].clone().into_os_string());
                shown.push(id(0).into());
                let rt = runtime.to_owned();
                tools.push(Tool::per_worker(
                    if runtime == "crun" { "crun" } else { "runc" },
                    true,
                    shown,
                    runtime == "crun" && hybrid,
                    move |w| {
                        let mut v = os(&[&rt, "run", "--bundle"]);
                        v.push(bundles[w].clone().into_os_string());
                        v.push(id(w).into());
                        v
                    },
                ));
            }
            if hybrid {
                notes.push(
                    "crun 1.8 refuses hybrid hosts, so it is started in a private mount namespace \
                     without /sys/fs/cgroup/unified (unshare + MS_PRIVATE + umount2 in the forked \
                     child, before exec; the host's mounts are untouched)"
                        .into(),
                );
            }
        }
        Err(why) => notes.push(format!("crun and runc not measured: {why}")),
    }
    tools.push(Tool {
        key: "floor",
        shown: "clone3 + execve(/bin/true) + wait4, in-process (no namespaces, no cgroup)".into(),
        limited: false,
        kind: Kind::FloorExec,
    });
    match ctx.cgroups.floor_dirs("probe") {
        Ok(_) => {
            tools.push(Tool {
                key: "floor+ns+cgroup",
                shown: "in-process: mkdir memory+pids cgroups, write limits, open their `tasks`, \
                        clone3(NEWNS|NEWPID|NEWNET|NEWIPC|NEWUTS); the child writes 0 to each \
                        `tasks`, unshare(NEWCGROUP), execve(/bin/true); wait4, rmdir"
                    .into(),
                limited: true,
                kind: Kind::FloorNsCgroup { self_attach: true },
            });
            tools.push(Tool {
                key: "floor+ns+cgroup.procs",
                shown: "the same, but the child waits on a pipe while the parent writes its pid \
                        to each `cgroup.procs` (how isol, crun and runc attach on v1)"
                    .into(),
                limited: true,
                kind: Kind::FloorNsCgroup { self_attach: false },
            });
        }
        Err(why) => notes.push(format!("floor+ns+cgroup not measured: {why}")),
    }
    if !args.only.is_empty() {
        tools.retain(|t| args.only.iter().any(|k| k == t.key));
        if tools.is_empty() {
            bail!("--only {} matches no tool", args.only.join(","));
        }
    }
    let baseline = tools
        .iter()
        .map(|t| t.key)
        .find(|k| *k == "isol run")
        .or_else(|| tools.iter().map(|t| t.key).find(|k| *k == "isol lib"))
        .unwrap_or(tools[0].key)
        .to_owned();

    // Warm up: page cache, dentries, the runtimes' state directories.
    for t in &tools {
        for _ in 0..3 {
            t.once(ctx, 0)
                .with_context(|| format!("warm-up of {}", t.key))?;
        }
    }

    let mut results: Vec<ToolResult> = tools
        .iter()
        .map(|t| ToolResult {
            key: t.key.to_owned(),
            shown: t.shown.clone(),
            limited: t.limited,
            latencies: Vec::new(),
            maxrss: Vec::new(),
            seq: Vec::new(),
            par: Vec::new(),
        })
        .collect();
    let started = Instant::now();
    eprintln!(
        "bench: {} interleaved rounds of {} tools",
        args.rounds,
        tools.len()
    );
    // Each round runs the tools in a new order, shuffled: a tool's run is not alone on
    // the machine (a v1 attach is cheap right after another one, see
    // sys::clone_ns_cgroup_exec; the kernel tears the last box's network namespace down
    // in a worker), so no tool may always follow the same neighbour — as it would if
    // each round only started one tool later.
    let mut order: Vec<usize> = (0..tools.len()).collect();
    let mut rng = SplitMix64(0x1507_5eed);
    for round in 0..args.rounds {
        rng.shuffle(&mut order);
        for &i in &order {
            let (t, r) = (&tools[i], &mut results[i]);
            let s = t
                .once(ctx, 0)
                .with_context(|| format!("{} (round {round})", t.key))?;
            r.latencies.push(s.nanos);
            r.maxrss.push(s.maxrss_kib);
        }
        if (round + 1) % 50 == 0 {
            eprintln!(
                "bench: round {}/{} ({:.0} s)",
                round + 1,
                args.rounds,
                started.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!(
        "bench: throughput, {} repetitions of {} spawns sequential and 2 × {} parallel",
        args.repeats, args.batch, args.batch
    );
    for _ in 0..args.repeats {
        for (t, r) in tools.iter().zip(results.iter_mut()) {
            r.seq.push(tools::throughput(t, ctx, 1, args.batch)?);
        }
        for (t, r) in tools.iter().zip(results.iter_mut()) {
            r.par.push(tools::throughput(t, ctx, 2, args.batch)?);
        }
    }

    let mut extras = cgroup_cycles(&built.helper, args.cgroup_rounds)?;
    extras.push(stats_latency(built, &state, args.rounds.min(100))?);
    let _ = root;
    Ok((results, extras, Meta { baseline, notes }))
}

/// The library's create (memory 64M, pids 64) + apply + destroy, per backend.
fn cgroup_cycles(helper: &Path, rounds: usize) -> Result<Vec<Extra>> {
    eprintln!("bench: cgroup create + apply + destroy, {rounds} rounds per backend");
    let text = exec::output(Command::new(helper).args(["cgroup", &rounds.to_string()]))?;
    let mut extras: Vec<Extra> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields[..] {
            ["skip", backend, reason] => extras.push(Extra {
                what: format!("cgroup create+apply+destroy ({backend}, library)"),
                samples: Vec::new(),
                skipped: Some(format!("{reason} (v2 runs only in the VM)")),
            }),
            [backend, ns] => {
                let what = format!("cgroup create+apply+destroy ({backend}, library)");
                let ns: u64 = ns
                    .parse()
                    .with_context(|| format!("bench_helper printed {line:?}"))?;
                match extras.iter_mut().find(|e| e.what == what) {
                    Some(e) => e.samples.push(ns),
                    None => extras.push(Extra {
                        what,
                        samples: vec![ns],
                        skipped: None,
                    }),
                }
            }
            _ => bail!("bench_helper printed {line:?}"),
        }
    }
    Ok(extras)
}

/// `isol stats NAME --json` against a detached box, once the CLI has it.
fn stats_latency(built: &Built, state: &Path, samples: usize) -> Result<Extra> {
    let what = "isol stats NAME --json (a running box)".to_owned();
    let Some(isol) = built.isol.as_ref().filter(|p| has(p, &["stats"])) else {
        let why = match &built.isol_missing {
            Some(why) => why.clone(),
            None => "the CLI has no `isol stats` yet".into(),
        };
        return Ok(Extra {
            what,
            samples: Vec::new(),
            skipped: Some(why),
        });
    };
    eprintln!("bench: isol stats, {samples} samples");
    let name = format!("bench-stats-{}", std::process::id());
    let isol_cmd = || {
        let mut c = Command::new(isol);
        c.arg("--state-dir").arg(state);
        c
    };
    exec::output(isol_cmd().args([
        "run",
        "-d",
        "--name",
        &name,
        "--memory",
        "64M",
        "--pids",
        "64",
        "--",
        "/bin/sleep",
        "600",
    ]))?;
    let result = (|| -> Result<Vec<u64>> {
        let mut v = Vec::with_capacity(samples);
        for _ in 0..samples {
            let mut c = isol_cmd();
            c.args(["stats", &name, "--json"]).stdout(Stdio::null());
            let start = Instant::now();
            exec::exec(&mut c)?;
            v.push(start.elapsed().as_nanos() as u64);
        }
        Ok(v)
    })();
    let _ = isol_cmd()
        .args(["rm", "-f", &name])
        .stdout(Stdio::null())
        .status();
    Ok(Extra {
        what,
        samples: result?,
        skipped: None,
    })
}

fn first_line(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

fn machine() -> Vec<(String, String)> {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|r| r.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").map(|r| r.trim().to_owned()))
        .unwrap_or_default();
    let host = isol_ns_core::HostInfo::probe().ok();
    let commit = first_line(Command::new("git").args(["rev-parse", "--short", "HEAD"]));
    let dirty = Command::new("git")
        .args(["diff", "--quiet", "HEAD", "--", "crates"])
        .status()
        .is_ok_and(|s| !s.success());
    vec![
        (
            "Date".into(),
            first_line(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])),
        ),
        (
            "Machine".into(),
            format!("{model}, {cores} cores, {mem} memory (a VM shared with other work)"),
        ),
        (
            "Kernel and cgroups".into(),
            host.map_or("unknown".into(), |h| {
                format!("Linux {}, {} cgroup hierarchy", h.kernel, h.mode)
            }),
        ),
        (
            "isol".into(),
            format!(
                "commit {commit}{}, release build; `isol run` is the static executable for {}, `isol run (glibc)` the default dynamically linked one",
                if dirty {
                    " with uncommitted changes in crates/"
                } else {
                    ""
                },
                vm::binaries::TARGET
            ),
        ),
        (
            "Tools".into(),
            format!(
                "{}; {}; {}; {}",
                setup::version("crun"),
                setup::version("runc"),
                setup::version("bwrap"),
                setup::version("unshare")
            ),
        ),
    ]
}

fn targets(tools: &[ToolResult], baseline: &str) -> Vec<Target> {
    let get = |k: &str| tools.iter().find(|t| t.key == k);
    let Some(isol) = get(baseline) else {
        return Vec::new();
    };
    let i = isol.dist().p50;
    let mut out = Vec::new();
    let mut ratio = |what: String,
                     other: Option<&ToolResult>,
                     f: &dyn Fn(&ToolResult) -> (f64, String, bool)| {
        out.push(match other {
            Some(o) => {
                let (_, measured, met) = f(o);
                Target {
                    what,
                    measured,
                    met: Some(met),
                }
            }
            None => Target {
                what,
                measured: "not measured".into(),
                met: None,
            },
        });
    };
    ratio(
        format!("{baseline} median ≤ 0.35 × crun's"),
        get("crun"),
        &|c| {
            let r = i / c.dist().p50;
            (
                r,
                format!("{r:.2} × ({:.0} vs {:.0} µs)", i / 1e3, c.dist().p50 / 1e3),
                r <= 0.35,
            )
        },
    );
    ratio(
        format!("{baseline} median ≤ unshare's"),
        get("unshare"),
        &|u| {
            let r = i / u.dist().p50;
            (
                r,
                format!("{r:.2} × ({:.0} vs {:.0} µs)", i / 1e3, u.dist().p50 / 1e3),
                r <= 1.0,
            )
        },
    );
    ratio(
        format!("{baseline} median ≤ 1.5 × floor+ns+cgroup's"),
        get("floor+ns+cgroup"),
        &|f| {
            let r = i / f.dist().p50;
            (
                r,
                format!("{r:.2} × ({:.0} vs {:.0} µs)", i / 1e3, f.dist().p50 / 1e3),
                r <= 1.5,
            )
        },
    );
    let ip = report::median(&isol.par);
    ratio(
        format!("{baseline} 2-way throughput ≥ 2.5 × crun's"),
        get("crun"),
        &|c| {
            let r = ip / report::median(&c.par);
            (
                r,
                format!(
                    "{r:.2} × ({ip:.0} vs {:.0} spawns/s)",
                    report::median(&c.par)
                ),
                r >= 2.5,
            )
        },
    );
    let irss = isol.max_rss();
    ratio(
        format!("{baseline} max RSS ≤ crun's"),
        get("crun"),
        &|c| {
            let r = irss as f64 / c.max_rss() as f64;
            (
                r,
                format!("{irss} vs {} KiB", c.max_rss()),
                irss <= c.max_rss(),
            )
        },
    );
    // Issue 9: hardening's cost per spawn, as the median of the per-round differences
    // (both commands run in every round, so drift between rounds cancels).
    ratio(
        format!("{baseline} − {baseline} --privileged (hardening) ≤ 0.3 ms"),
        get(&format!("{baseline} --privileged")),
        &|p| {
            let d: Vec<f64> = isol
                .latencies
                .iter()
                .zip(&p.latencies)
                .map(|(&h, &u)| h as f64 - u as f64)
                .collect();
            let m = report::median(&d) / 1e3;
            (
                m,
                format!("{m:.0} µs (median of per-round differences)"),
                m <= 300.0,
            )
        },
    );
    out
}

fn write_reports(
    args: &Args,
    root: &Path,
    out: &Path,
    tools: &[ToolResult],
    extras: &[Extra],
    meta: &Meta,
) -> Result<()> {
    let csv = out.join("samples.csv");
    report::write_csv(&csv, tools, extras)?;
    let png = out.join("latency.png");
    let title = "Spawning /bin/true in new namespaces: cumulative latency per tool";
    let chart_ok = match chart::draw(&png, Path::new(setup::FONT), title, tools) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("bench: no chart: {e:#}");
            false
        }
    };
    let mut command = "cargo xtask bench".to_owned();
    if args.rounds != 200 {
        command.push_str(&format!(" --rounds {}", args.rounds));
    }
    if args.repeats != 3 {
        command.push_str(&format!(" --repeats {}", args.repeats));
    }
    if args.batch != 20 {
        command.push_str(&format!(" --batch {}", args.batch));
    }
    if !args.only.is_empty() {
        command.push_str(&format!(" --only {}", args.only.join(",")));
    }
    let mut header = machine();
    for n in &meta.notes {
        header.push(("Note".into(), n.clone()));
    }
    let targets = targets(tools, &meta.baseline);
    let docs_chart = "docs/bench-latency.png";
    let md = report::markdown(
        &header,
        &command,
        &meta.baseline,
        tools,
        &targets,
        extras,
        chart_ok.then_some(if args.no_docs {
            "latency.png"
        } else {
            docs_chart
        }),
    );
    println!("{md}");
    fs::write(out.join("BENCHMARKS.md"), &md)?;
    if !args.no_docs {
        report::splice(&root.join("BENCHMARKS.md"), PREAMBLE, &md)?;
        if chart_ok {
            fs::create_dir_all(root.join("docs"))?;
            fs::copy(&png, root.join(docs_chart))?;
        }
        eprintln!("bench: wrote BENCHMARKS.md and {docs_chart}");
    }
    eprintln!(
        "bench: samples in {}, chart in {}",
        csv.display(),
        png.display()
    );
    Ok(())
}

const PREAMBLE: &str = "# Benchmarks\n\nWhat an isolated spawn costs with isol, next to the tools people would pick instead.\n";

#[cfg(test)]
mod tests {
    use super::SplitMix64;

    #[test]
    fn rounds_are_permutations_and_neighbours_vary() {
        let n = 12;
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = SplitMix64(0x1507_5eed);
        let mut before = vec![std::collections::BTreeSet::new(); n];
        for _ in 0..200 {
            rng.shuffle(&mut order);
            let mut seen = order.clone();
            seen.sort();
            assert_eq!(seen, (0..n).collect::<Vec<_>>());
            for w in order.windows(2) {
                before[w[1]].insert(w[0]);
            }
        }
        // Over 200 rounds every tool has followed every other one.
        for (tool, b) in before.iter().enumerate() {
            assert_eq!(b.len(), n - 1, "tool {tool} followed only {b:?}");
        }
    }
}
