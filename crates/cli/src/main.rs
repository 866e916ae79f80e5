//! `isol`: the command-line face of the isol libraries.
//!
//! The binary is glue: it parses arguments with clap, calls isol-ns-core (and, through
//! the registry, the backend plugins), and renders the result for people or, with
//! `--json`, for scripts. Validation lives in the libraries, so their users get the same
//! errors as the CLI's.

mod report;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status when isol itself failed (as docker and podman use it).
const EXIT_ISOL_FAILED: u8 = 125;

#[derive(Parser)]
#[command(
    name = "isol",
    version,
    about = "Run processes in Linux namespaces and cgroups",
    after_help = "Exit status: 0 on success; 125 when isol itself failed.\n\nExamples:\n  isol backends          list the cgroup backends and which one fits this host\n  isol check --json      describe this host's cgroups and kernel features as JSON"
)]
struct Cli {
    /// Log what isol does (also RUST_LOG=isol=debug).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the registered cgroup backends and say which one fits this host, and why.
    #[command(
        after_help = "Examples:\n  isol backends\n  isol backends --json | jq -r .selected.name"
    )]
    Backends {
        /// Print JSON (stable field names, only ever added to).
        #[arg(long)]
        json: bool,
    },
    /// Describe this host: cgroup mode, hierarchies, controllers, kernel features, and
    /// the backend isol would use.
    #[command(after_help = "Examples:\n  isol check\n  isol check --json | jq .features")]
    Check {
        /// Print JSON (stable field names, only ever added to).
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Backends { json } => report::backends(json),
        Command::Check { json } => report::check(json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("isol: {}", chain(&err));
            ExitCode::from(EXIT_ISOL_FAILED)
        }
    }
}

/// `what failed: why: deeper cause`, each cause once.
fn chain(err: &anyhow::Error) -> String {
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
        .try_init();
}

/// Keeps both backend crates in the binary: nothing else references them, and their
/// `inventory` registrations are linked only with the crate.
#[used]
static LINK_BACKENDS: [fn() -> &'static isol_ns_core::BackendPlugin; 2] =
    [isol_cgroup_v1::plugin, isol_cgroup_v2::plugin];
