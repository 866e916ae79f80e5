//! `isol`: the command-line face of the isol libraries.
//!
//! The binary is glue: it parses arguments with clap (`cli`), turns them into checked
//! library types (`opts`), calls isol-ns-core (and, through the registry, the backend
//! plugins), and renders the result for people or, with `--json`, for scripts.
//! Validation lives in the libraries, so their users get the same errors as the CLI's.
//!
//! - `run`: `isol run` (foreground and detached, with its supervisor) and `isol exec`;
//! - `boxes`: `ps`, `inspect`, `stats`, `logs`, `events`, `kill`, `wait`, `freeze`,
//!   `thaw`, `rm`, `gc` (the box records are the library's, `isol_ns_core::boxes`);
//! - `pods`: `pod create|ls|inspect|rm`;
//! - `report`: `backends` and `check`;
//! - `render`: tables and lines for people; `security`: the hardening flags;
//! - `sys`: the only unsafe code of the CLI (fork, closing inherited fds, SIGPIPE).
//!
//! To add a subcommand: its clap variant in `cli.rs`, a line in [`dispatch`], and its
//! function in the module of the things it acts on (`boxes`, `pods`, `report`).

mod boxes;
mod cli;
mod opts;
mod pods;
mod render;
mod report;
mod run;
mod security;
mod sys;

use std::process::ExitCode;

/// The static (musl) build's allocator; see Cargo.toml.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

use clap::CommandFactory;
use isol_ns_core::state::StateDir;

use cli::{Cli, Command};

/// Exit status when isol itself failed (as docker and podman use it).
const EXIT_ISOL_FAILED: u8 = 125;
/// The command was found but could not be executed.
const EXIT_CANNOT_EXECUTE: u8 = 126;
/// The command was not found.
const EXIT_NOT_FOUND: u8 = 127;

/// An error already formatted elsewhere (by the detached supervisor), with its status.
#[derive(Debug)]
pub struct Reported {
    pub code: u8,
    pub message: String,
}

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Reported {}

/// The host, probed once per isol process (mountinfo, `/proc/self/cgroup`, kernel
/// features): a command that spawns, records and removes a box asks several times.
pub fn host() -> anyhow::Result<&'static isol_ns_core::HostInfo> {
    use anyhow::Context;
    static HOST: std::sync::OnceLock<isol_ns_core::HostInfo> = std::sync::OnceLock::new();
    if let Some(h) = HOST.get() {
        return Ok(h);
    }
    let h = isol_ns_core::HostInfo::probe().context("probe the host's cgroups")?;
    Ok(HOST.get_or_init(|| h))
}

fn main() -> ExitCode {
    let cli = match Cli::parse_from(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("isol: {}", usage_error(&e));
            return ExitCode::from(EXIT_ISOL_FAILED);
        }
    };
    init_logging(cli.globals.verbose);
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("isol: {}", chain(&err));
            ExitCode::from(exit_code(&err))
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let state = || -> anyhow::Result<StateDir> {
        let dir = cli
            .globals
            .state_dir
            .clone()
            .unwrap_or_else(StateDir::default_path);
        Ok(StateDir::open(dir)?)
    };
    let done = |r: anyhow::Result<()>| r.map(|()| 0);
    if matches!(
        cli.command,
        Command::Ps { .. }
            | Command::Inspect { .. }
            | Command::Stats { .. }
            | Command::Logs { .. }
            | Command::Events { .. }
            | Command::Backends { .. }
            | Command::Check { .. }
            | Command::Completions { .. }
            | Command::Man
    ) {
        quiet_broken_pipe();
    }
    match cli.command {
        Command::Run(a) => run::run(&state()?, a),
        Command::Exec {
            name,
            env,
            workdir,
            user,
            command,
        } => run::exec(
            &state()?,
            &name,
            &env,
            workdir.as_deref(),
            user.as_deref(),
            &command,
        ),
        Command::Ps { json } => boxes::ps(&state()?, json),
        Command::Inspect { name, json } => boxes::inspect(&state()?, &name, json),
        Command::Stats { name, json, watch } => boxes::stats(&state()?, &name, json, watch),
        Command::Logs { name, follow } => boxes::logs(&state()?, &name, follow),
        Command::Events { name, json } => boxes::events(&state()?, &name, json),
        Command::Kill {
            name,
            signal,
            timeout,
        } => boxes::kill(&state()?, &name, &signal, timeout),
        Command::Wait { name } => boxes::wait(&state()?, &name),
        Command::Freeze { name } => boxes::freeze(&state()?, &name, true),
        Command::Thaw { name } => boxes::freeze(&state()?, &name, false),
        Command::Rm { names, force } => boxes::rm(&state()?, &names, force),
        Command::Gc => boxes::gc(&state()?),
        Command::Pod(p) => pods::pod(&state()?, p),
        Command::Backends { json } => done(report::backends(json)),
        Command::Check { json } => done(report::check(json)),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "isol", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(0)
        }
    }
}

/// Lets a command that only prints end as other Unix tools do when its reader goes
/// away (`isol ps | head`): killed by SIGPIPE, not reporting EPIPE as a failure (Rust
/// starts programs with SIGPIPE ignored). The commands that start or change boxes keep
/// ignoring it: a write to a pipe whose reader died must fail there, not kill isol
/// before it has cleaned up.
fn quiet_broken_pipe() {
    sys::default_sigpipe();
}

/// clap's error on one line: what is wrong, then the hint (`--help`).
fn usage_error(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut parts: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("Usage:") {
            break;
        }
        if !line.is_empty() && !line.starts_with("For more information") {
            parts.push(line.trim_start_matches("error: ").to_string());
        }
    }
    let mut msg = parts.join(" ");
    if let Some(tip) = text.lines().find(|l| l.starts_with("For more information")) {
        msg.push_str(&format!(" ({})", tip.trim().trim_end_matches('.')));
    }
    msg
}

/// 127 when the command was not found, 126 when it could not be executed, else 125.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(r) = cause.downcast_ref::<Reported>() {
            return r.code;
        }
        if let Some(isol_ns_core::Error::Spawn { step, source, .. }) =
            cause.downcast_ref::<isol_ns_core::Error>()
        {
            if matches!(
                step,
                isol_ns_core::SpawnStep::FindProgram | isol_ns_core::SpawnStep::Execve
            ) {
                return match source.kind() {
                    std::io::ErrorKind::NotFound => EXIT_NOT_FOUND,
                    _ => EXIT_CANNOT_EXECUTE,
                };
            }
        }
    }
    EXIT_ISOL_FAILED
}

/// `what failed: why: deeper cause`, each cause once.
pub fn chain(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let s = cause.to_string();
        if !parts.last().is_some_and(|last| last.ends_with(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

fn init_logging(verbose: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if verbose { "isol=debug" } else { "isol=warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Keeps both backend crates in the binary: nothing else references them, and their
/// `inventory` registrations are linked only with the crate.
#[used]
static LINK_BACKENDS: [fn() -> &'static isol_ns_core::BackendPlugin; 2] =
    [isol_cgroup_v1::plugin, isol_cgroup_v2::plugin];
