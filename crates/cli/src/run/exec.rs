//! `isol exec NAME -- CMD…`: the library prepares a command that joins the running box
//! (`BoxRecord::join`); the CLI adds its flags, its terminal handling and waits for it
//! in the foreground as `run` does.

use std::path::Path;

use anyhow::{Context, Result};
use isol_ns_core::boxes::{BoxState, JoinOptions};
use isol_ns_core::state::StateDir;
use isol_ns_core::NamespaceKind;

use super::forward::Forwarder;
use super::prepare::{box_user, resolve_env};
use super::{pids_hint, shell_status, terminal};

/// `isol exec NAME -- CMD…`.
pub fn exec(
    state: &StateDir,
    name: &str,
    env: &[String],
    workdir: Option<&Path>,
    user: Option<&str>,
    command: &[String],
) -> Result<u8> {
    let rec = crate::boxes::load(state, name)?;
    let host = crate::host()?;
    // An ended box is refused before any flag is looked at (a frozen one by the join).
    if rec.liveness() != BoxState::Running {
        anyhow::bail!("box {name} is {}: exec needs a running box", rec.liveness());
    }
    let (program, args) = command.split_first().context("no command given")?;
    let opts = JoinOptions {
        // The box's environment and --workdir, then exec's own (docker exec's way).
        env: resolve_env(env)?,
        workdir: workdir.map(Path::to_path_buf),
        // The box's --user unless exec names another.
        user: box_user(user, rec.new_namespaces.contains(NamespaceKind::User))?,
    };
    // As hardened as the box, as its user unless told (docker exec's defaults).
    let mut cmd = rec.join(host, program, &opts)?;
    cmd.args(args);
    terminal::own_session(&mut cmd, true);
    let forwarder = Forwarder::install()?;
    let mut child = cmd.spawn().map_err(|e| pids_hint(e, &rec.resources))?;
    let status = forwarder.wait(&mut child)?;
    Ok(shell_status(status))
}
