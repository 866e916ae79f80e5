//! `isol run -d`: the supervisor of a detached box.
//!
//! A detached box needs a process that outlives `isol run -d` and can learn the box's
//! exit status. Only the parent of a process can `waitid(2)` on it, so the supervisor is
//! forked *before* the box is spawned: it claims the name, spawns the box (becoming its
//! parent), reports the outcome to the waiting `isol run -d` over a pipe, and then waits
//! for the box and writes its exit status into the box record.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use anyhow::{bail, Context, Result};
use isol_ns_core::boxes::{self, BoxRecord, Exit, ProcessId};
use isol_ns_core::state::StateDir;

use super::forward::Forwarder;
use super::{oom_killed, start, Prepared};
use crate::render::outln;
use crate::sys::{self, Forked, InheritedFds};
use crate::Reported;

/// Forks the supervisor, lets it start the box, relays the outcome. `inherited` are the
/// fds isol's caller left open to it, which the supervisor closes once the box runs.
pub(super) fn detach(state: &StateDir, prep: Prepared, inherited: InheritedFds) -> Result<u8> {
    let (rd, wr) = pipe()?;
    match sys::fork()? {
        Forked::Parent(supervisor) => {
            drop(wr);
            relay(state, rd, supervisor)
        }
        Forked::Child => {
            drop(rd);
            let code = supervise(state, prep, wr, inherited);
            std::process::exit(code);
        }
    }
}

/// `isol run -d`'s side: prints the box's name, or fails as the supervisor reports.
fn relay(state: &StateDir, mut rd: std::fs::File, supervisor: nix::unistd::Pid) -> Result<u8> {
    // Read up to the NUL that ends the report, not to EOF: the box's init inherits the
    // pipe and keeps it open for the box's life.
    let mut bytes = Vec::new();
    let mut b = [0u8; 1];
    while rd.read(&mut b).context("read the supervisor's report")? == 1 && b[0] != 0 {
        bytes.push(b[0]);
    }
    let msg = String::from_utf8_lossy(&bytes).into_owned();
    let (code, text) = msg.split_once('\n').unwrap_or(("125", &msg));
    let code: u8 = code.trim().parse().unwrap_or(125);
    if code == 0 {
        if let Err(e) = outln!("{text}") {
            // Whoever started it cannot learn the box's name: it would run on unseen, so
            // it goes.
            let _ = crate::boxes::rm(state, &[text.to_string()], true);
            return Err(e.context(format!("print the name of box {text}; removed it")));
        }
        return Ok(0);
    }
    // A supervisor that failed exits at once: wait for it, so that nothing of the
    // refused box is left when `isol run -d` returns.
    let _ = nix::sys::wait::waitpid(supervisor, None);
    if text.is_empty() {
        bail!("the supervisor of the box ended without a report");
    }
    Err(Reported {
        code,
        message: text.to_string(),
    }
    .into())
}

/// The supervisor: starts the box, reports, waits, records the exit status. Once the
/// box runs it closes the fds its caller had left open to isol (`inherited`).
fn supervise(
    state: &StateDir,
    prep: Prepared,
    mut report: std::fs::File,
    inherited: InheritedFds,
) -> i32 {
    if let Err(e) = detach_stdio() {
        let _ = write!(report, "125\n{}\0", crate::chain(&e));
        return 125;
    }
    let name = prep.name.clone();
    // Signals to the supervisor go to the box, as a foreground isol's do; it goes on
    // waiting, and records how the box ended.
    let forwarder = match Forwarder::install() {
        Ok(f) => f,
        Err(e) => {
            let _ = write!(report, "125\n{}\0", crate::chain(&e));
            return 125;
        }
    };
    let (mut child, _rec) = match start::start(state, prep, true) {
        Ok(x) => x,
        Err(e) => {
            let _ = write!(report, "{}\n{}\0", crate::exit_code(&e), crate::chain(&e));
            return 125;
        }
    };
    let _ = write!(report, "0\n{name}\0");
    drop(report);
    inherited.close();
    let status = match forwarder.wait(&mut child) {
        Ok(s) => s,
        Err(_) => return 125,
    };
    // What the command left behind (a box without a pid namespace of its own, whose
    // processes its end does not take along) goes with it, as under a foreground isol.
    if let Some(cg) = child.cgroup() {
        // A frozen task cannot die until thawed.
        let _ = cg.thaw();
        let _ = cg.kill();
    }
    let oom = oom_killed(&child);
    let Ok(_lock) = state.lock() else { return 125 };
    // The record may be gone (`isol rm -f`): then there is nothing to update.
    if let Ok(Some(mut rec)) = BoxRecord::load(state, &name) {
        if rec.supervisor == ProcessId::me() {
            rec.exit = Some(Exit::of(status, oom));
            rec.finished = Some(boxes::now_rfc3339());
            let _ = state.write(&rec);
        }
    }
    0
}

/// Becomes a session leader and points stdin, stdout and stderr at `/dev/null`, so
/// the supervisor holds no terminal and no pipe of whoever started `isol run -d`
/// (`$(isol run -d …)` returns as soon as the name is printed).
fn detach_stdio() -> Result<()> {
    nix::unistd::setsid().context("setsid")?;
    let null: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .context("open /dev/null")?
        .into();
    nix::unistd::dup2_stdin(&null).context("dup2 /dev/null")?;
    nix::unistd::dup2_stdout(&null).context("dup2 /dev/null")?;
    nix::unistd::dup2_stderr(&null).context("dup2 /dev/null")?;
    Ok(())
}

fn pipe() -> Result<(std::fs::File, std::fs::File)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe2")?;
    Ok((r.into(), w.into()))
}
