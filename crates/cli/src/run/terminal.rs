//! The box's terminal and session: a hardened box started from a terminal finds it at
//! `/dev/console`, and one that is not on the caller's terminal gets a session of its
//! own, out of reach of the caller's process group and `/dev/tty`.

use std::path::{Path, PathBuf};

use isol_ns_core::spawn::Command;

use crate::cli::RunArgs;

/// Whether the command runs hardened (a policy, not privileged).
fn hardened(cmd: &Command) -> bool {
    cmd.security_policy().is_some_and(|p| !p.privileged)
}

/// The caller's terminal, when a foreground hardened box's stdin is one: such a box has
/// a devpts of its own at /dev/pts, where the terminal's name (/dev/pts/N, the host's)
/// finds nothing, so `ttyname` fails (`tty`, sudo, ssh prompts). Bound at /dev/console,
/// as docker and runc put a container's terminal, the same node is there to find.
pub(super) fn console(cmd: &Command, a: &RunArgs) -> Option<PathBuf> {
    if !hardened(cmd) || a.detach || !nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
        return None;
    }
    let tty = std::fs::read_link("/proc/self/fd/0").ok()?;
    let console = Path::new("/dev/console");
    let there = a.rootfs.is_some() || console.exists();
    (tty.starts_with("/dev/pts/") && there).then_some(tty)
}

/// A hardened box's command gets a session of its own: in the caller's, a `kill(0)`
/// inside would reach the caller's process group (a script running isol, its other
/// commands), and `/dev/tty` the caller's terminal even with stdio redirected. Not when
/// its stdin is the caller's terminal, which it is given to work with (job control,
/// prompts on /dev/tty) and holds anyway.
pub(super) fn own_session(cmd: &mut Command, stdin_inherited: bool) {
    let on_terminal = stdin_inherited && nix::unistd::isatty(std::io::stdin()).unwrap_or(false);
    if hardened(cmd) && !on_terminal {
        cmd.new_session();
    }
}
