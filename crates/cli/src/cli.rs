//! The command line as clap sees it: the first of the two parsing stages. Every value
//! here is still a string; `opts` turns them into checked library types (`Resources`,
//! `NamespaceSet`, …), so the library's users get the same errors as the CLI's.
//!
//! The completions (`isol completions SHELL`) and the man page (`isol man`) are
//! generated from these definitions.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "isol",
    version,
    about = "Run processes in Linux namespaces and cgroups",
    after_help = "Exit status: 0 on success; 125 when isol itself failed; run, exec and wait pass the command's status through (126: not executable, 127: not found, 128+N: killed by signal N).

Examples:
  isol run --memory 64M --pids 64 -- /bin/sh -c 'echo hello'
  isol run -d --name web --hostname web -- sleep 600
  isol ps
  isol exec web -- hostname
  isol rm -f web
  isol backends          list the cgroup backends and which one fits this host
  isol check --json      describe this host's cgroups and kernel features as JSON"
)]
#[derive(Debug)]
pub struct Cli {
    #[command(flatten)]
    pub globals: Globals,
    #[command(subcommand)]
    pub command: Command,
}

/// The options every subcommand takes.
#[derive(Args, Debug)]
pub struct Globals {
    /// Log what isol does (also RUST_LOG=isol=debug).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Where isol keeps its records of boxes and pods (default /run/isol as root,
    /// $XDG_RUNTIME_DIR/isol otherwise).
    #[arg(long, global = true, env = "ISOL_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

impl Cli {
    /// Parses `args` (the program's name first). `isol run …` goes to [`RunOnly`] first:
    /// in a fresh process, building the definition of every subcommand is more than half
    /// of what clap costs (~0.18 of ~0.3 ms), and a spawn's latency is isol's point.
    /// Whatever it does not take (help, a mistake, another subcommand) goes to the full
    /// parser, so users see its messages only.
    pub fn parse_from(args: Vec<OsString>) -> Result<Cli, clap::Error> {
        if subcommand(&args) == Some("run") {
            if let Ok(RunOnly { globals, command }) = RunOnly::try_parse_from(&args) {
                let RunOnlyCommand::Run(a) = command;
                return Ok(Cli {
                    globals,
                    command: Command::Run(a),
                });
            }
        }
        Cli::try_parse_from(args)
    }
}

/// The subcommand's name: the first argument after the program's and the global
/// options (`None` when that is not plain, e.g. `--state-dir` without a value).
fn subcommand(args: &[OsString]) -> Option<&str> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.to_str()? {
            "-v" | "--verbose" => {}
            "--state-dir" => {
                it.next()?;
            }
            s if s.starts_with("--state-dir=") => {}
            s => return Some(s),
        }
    }
    None
}

/// `isol run` alone ([`Cli::parse_from`]): the same global options and the same `run`,
/// without the other subcommands.
#[derive(Parser)]
#[command(name = "isol")]
struct RunOnly {
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    command: RunOnlyCommand,
}

#[derive(Subcommand)]
enum RunOnlyCommand {
    Run(RunArgs),
}

// Parsed once per process; boxing the big variants would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a command in a new box: fresh namespaces and a cgroup with limits.
    #[command(after_help = RUN_HELP)]
    Run(RunArgs),
    /// Run a command inside a running box: its namespaces and its cgroup.
    #[command(
        after_help = "The command joins every namespace of the box (through the box's first \
process) and is placed in the box's own cgroup, so the box's limits cover it too. A box's cgroup \
is a leaf (isol never enables controllers beneath it), so cgroup v2's no-internal-processes rule \
allows it there.

Exit status: the command's own; 125 when isol failed, 126 when the command could not be executed, 127 when it was not found, 128+N when it died of signal N.

Examples:
  isol exec web -- hostname
  isol exec web -- /bin/sh -c 'cat /proc/net/dev'"
    )]
    Exec {
        /// The box.
        name: String,
        /// Environment variables for the command (K=V, or K for your value of K;
        /// repeatable), over the box's own.
        #[arg(long = "env", short = 'e', value_name = "K[=V]")]
        env: Vec<String>,
        /// The working directory inside (default: the box's --workdir, or /).
        #[arg(long, short = 'w', value_name = "DIR")]
        workdir: Option<PathBuf>,
        /// Run as this user (and group) inside (default: the box's --user).
        #[arg(long, short = 'u', value_name = "UID[:GID]")]
        user: Option<String>,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// List the boxes.
    #[command(
        after_help = "Boxes whose processes are gone without a trace (isol was killed) are \
cleaned up: their cgroup is destroyed, their record and output removed, and a line on stderr \
says so.

Examples:
  isol ps
  isol ps --json | jq -r '.[] | select(.state == \"running\") | .name'"
    )]
    Ps {
        /// Print JSON: an array of {name, pid, state, pod, backend, cgroup, ...}.
        #[arg(long)]
        json: bool,
    },
    /// Show everything isol knows about a box.
    #[command(
        after_help = "Examples:\n  isol inspect web\n  isol inspect web --json | jq .namespaces.net.inode"
    )]
    Inspect {
        /// The box.
        name: String,
        /// Print JSON (stable field names, only ever added to).
        #[arg(long)]
        json: bool,
    },
    /// Show a box's resource usage.
    #[command(
        after_help = "Examples:\n  isol stats web\n  isol stats web --watch\n  isol stats web --json | jq .memory.current"
    )]
    Stats {
        /// The box.
        name: String,
        /// Print JSON (stable field names, only ever added to).
        #[arg(long)]
        json: bool,
        /// Print again every second until the box ends.
        #[arg(long)]
        watch: bool,
    },
    /// Print a detached box's output (its stdout and stderr, as written).
    #[command(
        after_help = "Only a detached box (run -d) has an output file: a foreground box's output \
goes to the terminal or files that ran it. The file goes with the box (isol rm).\n\nExamples:\n  \
isol logs web\n  isol logs -f web"
    )]
    Logs {
        /// The box.
        name: String,
        /// Keep printing what the box writes until it ends.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Follow a box's events: OOM kills, refused forks, freezes, its exit.
    #[command(
        after_help = "Ends when the box's process exits. For a box that has exited, says only \
how it ended (as recorded).\n\nExamples:\n  isol events web\n  isol events web --json"
    )]
    Events {
        /// The box.
        name: String,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Send a signal to a box's command.
    #[command(
        after_help = "Examples:\n  isol kill web\n  isol kill -s HUP web\n  isol kill -t 10 web      SIGTERM, then SIGKILL after 10 s"
    )]
    Kill {
        /// The box.
        name: String,
        /// The signal: a name (TERM, SIGTERM) or a number; 0 sends none and only
        /// succeeds when the box runs.
        #[arg(short = 's', long, default_value = "TERM", value_name = "SIG")]
        signal: String,
        /// Wait this many seconds for the box to end, then SIGKILL it.
        #[arg(short = 't', long, value_name = "SECONDS")]
        timeout: Option<f64>,
    },
    /// Wait until a box's command ends and pass its exit status through.
    #[command(after_help = "Examples:\n  isol wait web; echo $?")]
    Wait {
        /// The box.
        name: String,
    },
    /// Freeze every process of a box.
    #[command(after_help = "Examples:\n  isol freeze web")]
    Freeze {
        /// The box.
        name: String,
    },
    /// Thaw a frozen box.
    #[command(after_help = "Examples:\n  isol thaw web")]
    Thaw {
        /// The box.
        name: String,
    },
    /// Remove a box: its cgroup, its namespace files and its record.
    #[command(
        after_help = "Without -f a running box is refused.\n\nExamples:\n  isol rm web\n  isol rm -f web"
    )]
    Rm {
        /// The boxes.
        #[arg(required = true)]
        names: Vec<String>,
        /// Kill the box first when it is still running.
        #[arg(short, long)]
        force: bool,
    },
    /// Remove what crashed isol processes left behind: boxes whose processes are gone
    /// (their cgroups, namespace files and records), and half-written records.
    #[command(
        after_help = "A box whose `isol run` (or, detached, whose supervisor) was killed dies with it \
(its init gets SIGKILL when that process ends); `isol gc` (and `isol ps`) then find its record dead and remove its cgroup \
and record. Only what the state directory names is ever removed.

Examples:
  isol gc
  isol --state-dir /tmp/isol-test gc"
    )]
    Gc,
    /// Manage pods: boxes that share net, ipc and uts (and optionally pid) namespaces
    /// beneath one parent cgroup.
    #[command(subcommand)]
    Pod(PodCommand),
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
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  isol completions bash > /etc/bash_completion.d/isol\n  isol completions zsh > ~/.zfunc/_isol"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    #[command(after_help = "Examples:\n  isol man > isol.1 && man ./isol.1")]
    Man,
}

const RUN_HELP: &str = "The box is gone when a foreground `isol run` returns (its cgroup destroyed, its record removed). \
With -d isol prints the box's name and leaves a small supervisor that records the exit status; \
remove the box with `isol rm`.

Signals (INT, TERM, HUP, QUIT, USR1, USR2, WINCH) sent to a foreground isol, or to a detached box's \
supervisor, are forwarded to the command; killed, either takes the box with it.

Exit status:
  the command's own status is passed through;
  125  isol itself failed (bad option, name in use, cgroup error, ...)
  126  the command was found but could not be executed
  127  the command was not found
  128+N  the command died of signal N (137: SIGKILL, e.g. the OOM killer)

Examples:
  isol run -- /bin/sh -c 'hostname; cat /proc/self/cgroup'
  isol run --memory 64M --pids 64 --cpus 0.5 -- make -j4
  isol run --hostname box1 --ns mnt,uts,pid -- /bin/sh
  isol run --rootfs /srv/alpine --bind /data:/data:ro --tmpfs /run -- /bin/sh
  isol run -d --name web -- sleep 600
  isol run --share net=box:web -- wget -qO- http://127.0.0.1/";

/// `isol run`'s options.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The box's name (default: a generated one).
    #[arg(long)]
    pub name: Option<String>,
    /// Run in the background; print the box's name.
    #[arg(short, long)]
    pub detach: bool,
    /// The namespaces to create: a comma-separated list of mnt, uts, ipc, net, pid, user,
    /// cgroup, time; or all, or none [default: mnt,pid,net,ipc,uts,cgroup]. A kind given
    /// here cannot also be joined (--share) or come from a pod (--pod).
    #[arg(long, value_name = "LIST")]
    pub ns: Option<String>,
    /// Join an existing namespace instead of creating one: KIND=TARGET, TARGET being a
    /// namespace file, pid:N or box:NAME (repeatable).
    #[arg(long, value_name = "KIND=TARGET")]
    pub share: Vec<String>,
    /// Make the box a member of this pod: it joins the pod's shared namespaces and gets
    /// a cgroup beneath the pod's.
    #[arg(long, value_name = "NAME")]
    pub pod: Option<String>,
    /// The host name inside (needs a new uts namespace; default: the box's name).
    #[arg(long)]
    pub hostname: Option<String>,
    /// The root filesystem: a directory to pivot_root into.
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// Bind-mount a host path: SRC:DST, or SRC:DST:ro for a read-only bind (repeatable).
    #[arg(long, value_name = "SRC:DST[:ro]")]
    pub bind: Vec<String>,
    /// Mount a fresh tmpfs at DST (repeatable).
    #[arg(long, value_name = "DST")]
    pub tmpfs: Vec<PathBuf>,
    /// Run as this user (and group) inside.
    #[arg(long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// A new user namespace in which your uid is root.
    #[arg(long)]
    pub map_root: bool,
    /// Environment variables for the command (K=V, or K for your value of K;
    /// repeatable). The command gets only these, PATH, HOME and TERM.
    #[arg(long = "env", short = 'e', value_name = "K[=V]")]
    pub env: Vec<String>,
    /// Give the command your whole environment (and exec's command its caller's), as
    /// unshare and bwrap do.
    #[arg(long)]
    pub inherit_env: bool,
    /// The working directory inside (default: yours without --rootfs, / with one).
    #[arg(long, short = 'w', value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub security: crate::security::SecurityArgs,
    /// The cgroup backend: auto, cgroup-v1 or cgroup-v2.
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// Create the box's cgroup beneath this cgroup path, from the hierarchy's root (e.g.
    /// /isol; the same in every hierarchy),
    /// or beneath HIERARCHY:PATH given once per hierarchy (e.g. memory:/a/b, as `isol
    /// inspect --json` shows a location). Default: beneath isol's own cgroup.
    #[arg(long, value_name = "PATH")]
    pub cgroup_parent: Vec<String>,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Resource limits, shared by `run` and `pod create`.
#[derive(Args, Default, Clone, Debug)]
pub struct LimitArgs {
    /// Hard memory limit (64M, 1.5G, max); past it the OOM killer runs.
    #[arg(long, value_name = "SIZE", help_heading = "Limits")]
    pub memory: Option<String>,
    /// Memory throttling threshold (cgroup v2 only).
    #[arg(long, value_name = "SIZE", help_heading = "Limits")]
    pub memory_high: Option<String>,
    /// Swap allowed in addition to --memory (-1 or max: unlimited).
    #[arg(
        long,
        value_name = "SIZE",
        help_heading = "Limits",
        allow_hyphen_values = true
    )]
    pub memory_swap: Option<String>,
    /// CPU bandwidth in cpus (0.5, 2, max).
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub cpus: Option<String>,
    /// Relative CPU weight, 1..=10000 (default 100).
    #[arg(long, value_name = "W", help_heading = "Limits")]
    pub cpu_weight: Option<String>,
    /// The cpus the box may run on (0-3,6).
    #[arg(long, value_name = "LIST", help_heading = "Limits")]
    pub cpuset_cpus: Option<String>,
    /// The memory nodes the box may use (0).
    #[arg(long, value_name = "LIST", help_heading = "Limits")]
    pub cpuset_mems: Option<String>,
    /// The most tasks the box may hold, its init included when it has a pid namespace
    /// (0: none may be created; max).
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub pids: Option<String>,
    /// Relative I/O weight, 1..=10000 (default 100).
    #[arg(long, value_name = "W", help_heading = "Limits")]
    pub io_weight: Option<String>,
    /// Per-device I/O limit: DEV:rbps=N,wbps=N,riops=N,wiops=N, DEV being MAJ:MIN or a
    /// /dev path (repeatable).
    #[arg(long, value_name = "DEV:KEY=N,...", help_heading = "Limits")]
    pub io_max: Vec<String>,
}

#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum PodCommand {
    /// Create a pod: shared namespaces and a parent cgroup with the pod's limits.
    #[command(
        after_help = "Examples:\n  isol pod create web --share net,ipc,uts --memory 256M\n  isol run --pod web -- sleep 600"
    )]
    Create {
        /// The pod's name.
        name: String,
        /// The namespaces its members share: net, ipc, uts, and optionally pid (then, as
        /// in a Kubernetes pod sharing its process namespace, members see each other's
        /// processes, and through /proc/PID/root each other's files: a member without
        /// --rootfs, the host's).
        #[arg(long, default_value = "net,ipc,uts", value_name = "LIST")]
        share: String,
        #[command(flatten)]
        limits: LimitArgs,
        /// The cgroup backend: auto, cgroup-v1 or cgroup-v2.
        #[arg(long, default_value = "auto")]
        backend: String,
        /// Create the pod's cgroup beneath this cgroup path (see `isol run --help`).
        #[arg(long, value_name = "PATH")]
        cgroup_parent: Vec<String>,
    },
    /// List the pods.
    ///
    /// STATE is `ok`, or `holder gone` for a pod sharing pid whose holder died: its pid
    /// namespace ended with it, so it takes no more members (`pod rm -f` it).
    #[command(after_help = "Examples:\n  isol pod ls\n  isol pod ls --json")]
    Ls {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a pod: its state, namespaces, cgroup, limits and members.
    #[command(after_help = "Examples:\n  isol pod inspect web --json")]
    Inspect {
        /// The pod.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a pod (with -f, its running members too).
    #[command(
        after_help = "Without -f a pod with a running member is refused; members that have \
ended are removed with it.\n\nExamples:\n  isol pod rm web\n  isol pod rm -f web"
    )]
    Rm {
        /// The pod.
        name: String,
        /// Remove its members first, killing the running ones.
        #[arg(short, long)]
        force: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        std::iter::once("isol")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn run_parses_alone_as_the_full_parser_parses_it() {
        for args in [
            &["run", "--", "/bin/true"][..],
            &[
                "-v",
                "run",
                "--memory",
                "64M",
                "--pids",
                "64",
                "--",
                "/bin/true",
            ],
            &[
                "--state-dir",
                "/tmp/s",
                "run",
                "-d",
                "--name",
                "web",
                "--ns",
                "mnt,pid",
                "--",
                "sleep",
                "1",
            ],
            &[
                "--state-dir=/tmp/s",
                "run",
                "--state-dir",
                "/x",
                "-v",
                "--cap-add",
                "NET_ADMIN",
                "--privileged",
                "--ulimit",
                "nofile=10",
                "--",
                "sh",
                "-c",
                "echo --memory",
            ],
            &[
                "run",
                "--share",
                "net=box:web",
                "--bind",
                "/a:/b:ro",
                "-e",
                "K=V",
                "-w",
                "/tmp",
                "--cgroup-parent",
                "memory:/a",
                "--",
                "env",
            ],
            &[
                "run",
                "--rootfs",
                "/srv",
                "--tmpfs",
                "/run",
                "--user",
                "1000:1000",
                "cmd",
                "arg",
            ],
        ] {
            let a = argv(args);
            assert_eq!(subcommand(&a), Some("run"), "{args:?}");
            // The fast path takes it (not the fallback)…
            let alone = RunOnly::try_parse_from(&a).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let full = Cli::try_parse_from(&a).unwrap();
            assert_eq!(
                format!("{:?}", alone.globals),
                format!("{:?}", full.globals)
            );
            // …and gives what the full parser gives.
            let parsed = Cli::parse_from(a).unwrap();
            assert_eq!(format!("{parsed:?}"), format!("{full:?}"), "{args:?}");
        }
        // Help, mistakes and other subcommands reach the full parser and its messages.
        for args in [
            &["run"][..],
            &["run", "--help"],
            &["run", "--memory"],
            &["run", "--bogus", "--", "x"],
            &["ps"],
            &["--state-dir"],
            &["--version"],
        ] {
            let a = argv(args);
            let show = |r: Result<Cli, clap::Error>| match r {
                Ok(c) => format!("{c:?}"),
                Err(e) => e.to_string(),
            };
            assert_eq!(
                show(Cli::parse_from(a.clone())),
                show(Cli::try_parse_from(a)),
                "{args:?}"
            );
        }
    }
}
