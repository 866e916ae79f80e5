//! Spawning a process into namespaces and a cgroup, in the spirit of
//! `std::process::Command`.
//!
//! [`Command`] collects the program, arguments, environment, stdio, ids, a
//! [`NamespacePlan`](crate::NamespacePlan) and a cgroup; [`Command::spawn`] returns a
//! [`Child`] with the host pid, a pidfd, `wait`/`wait_async`, `signal`, `stats`, its
//! cgroup and its namespaces.
//!
//! The flow of a spawn, read top-down from `Command::spawn` (start.rs):
//! 1. Check the plan and the ids; resolve the program against `PATH` (inside the rootfs
//!    when there is one, resolve.rs); record every step the child takes into a
//!    [`program::Program`] of ready-made C strings (prepare.rs). Nothing exists yet.
//! 2. Create the cgroup (or take the existing one); open the files through which the
//!    child moves itself into each v1 hierarchy.
//! 3. `clone3(CLONE_PIDFD | CLONE_NEW…)`, into the cgroup with `CLONE_INTO_CGROUP` where
//!    the backend offers an fd (v2); otherwise the child's first step is to write `0` to
//!    the cgroup's `cgroup.procs` files opened for it before the clone, so the command
//!    never runs a single instruction outside its cgroup.
//! 4. The parent writes `uid_map`/`gid_map` and time offsets while the child waits.
//! 5. The child (sys/) joins and unshares what remains, and, when a pid or time
//!    namespace is new or joined, forks the command from a tiny init (pid 1 of a new pid
//!    namespace) that forwards signals, reaps zombies and reports the command's exact
//!    status.
//! 6. The command's process mounts, pivots, sets its ids and stdio, and execs. A failure
//!    anywhere comes back over a close-on-exec pipe as `(step, errno)` and becomes
//!    [`Error::Spawn`](crate::Error::Spawn); then the child is killed and reaped and a
//!    cgroup the spawn created is destroyed, so nothing is left.
//!
//! The files: command.rs the builder, child.rs the handle ([`Child`], [`ExitStatus`]),
//! resolve.rs program resolution, prepare.rs the checks and the child's program,
//! start.rs the phases from the cgroup on, program.rs the program's steps as data and
//! what each step is called ([`SpawnStep`]), and sys/ the system calls (the only unsafe
//! code here).

mod child;
mod command;
mod prepare;
pub mod program;
mod resolve;
mod start;
pub(crate) mod sys;

pub use child::{Child, ExitStatus};
pub use command::{CgroupSpec, Command, Stdio};
pub use program::{MountStep, SecurityStep, SpawnStep};
