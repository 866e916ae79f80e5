//! Running external commands so that every failure names the command that failed.
//!
//! xtask is mostly a driver of other programs (cargo, apt-get, dpkg-deb, gzip, qemu).
//! When one of them fails, the error must show the full command line, the directory
//! it ran in and the environment it was given, so the failure can be reproduced by
//! pasting it into a shell.

use std::ffi::OsStr;
use std::process::{Child, Command, ExitStatus, Stdio};

use anyhow::{bail, Context, Result};

/// The command line of `cmd` as a shell would take it: explicit environment
/// overrides first, then the program and its arguments, quoted where needed, and the
/// working directory when one was set.
pub fn display(cmd: &Command) -> String {
    let mut words: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), quote(v?))))
        .collect();
    words.push(quote(cmd.get_program()));
    words.extend(cmd.get_args().map(quote));
    let mut line = words.join(" ");
    if let Some(dir) = cmd.get_current_dir() {
        line.push_str(&format!(" (in {})", dir.display()));
    }
    line
}

/// `s` quoted for a POSIX shell when it contains anything but plain word characters.
fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The cargo that runs us (`$CARGO`), so that every step uses the same toolchain.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Starts `cmd`, with an error naming it when it cannot be started.
pub fn spawn(cmd: &mut Command) -> Result<Child> {
    cmd.spawn()
        .with_context(|| format!("failed to start `{}`", display(cmd)))
}

/// Runs `cmd` with inherited stdio and returns its exit status, whatever it is.
pub fn status(cmd: &mut Command) -> Result<ExitStatus> {
    spawn(cmd)?
        .wait()
        .with_context(|| format!("failed to wait for `{}`", display(cmd)))
}

/// Runs `cmd` with inherited stdio; fails unless it exits successfully.
pub fn exec(cmd: &mut Command) -> Result<()> {
    let status = status(cmd)?;
    check(cmd, status)
}

/// Runs `cmd` and returns its standard output; standard error goes to ours.
pub fn output(cmd: &mut Command) -> Result<String> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let out = spawn(cmd)?
        .wait_with_output()
        .with_context(|| format!("failed to wait for `{}`", display(cmd)))?;
    check(cmd, out.status)?;
    String::from_utf8(out.stdout).with_context(|| format!("`{}` printed non-UTF-8", display(cmd)))
}

/// Runs `producer | consumer`; fails unless both exit successfully.
pub fn pipe(producer: &mut Command, consumer: &mut Command) -> Result<()> {
    let mut first = spawn(producer.stdout(Stdio::piped()))?;
    let stdout = first.stdout.take().expect("stdout was piped");
    let second = spawn(consumer.stdin(stdout));
    // Drop our copy of the pipe's read end (held by `consumer`), so that the producer
    // gets SIGPIPE rather than blocking when the consumer stops reading.
    consumer.stdin(Stdio::null());
    let mut second = match second {
        Ok(child) => child,
        Err(err) => {
            let _ = first.kill();
            let _ = first.wait();
            return Err(err);
        }
    };
    let first_status = first.wait();
    let second_status = second.wait();
    let first_status =
        first_status.with_context(|| format!("failed to wait for `{}`", display(producer)))?;
    let second_status =
        second_status.with_context(|| format!("failed to wait for `{}`", display(consumer)))?;
    check(producer, first_status)
        .and_then(|()| check(consumer, second_status))
        .with_context(|| {
            format!(
                "pipeline `{} | {}` failed",
                display(producer),
                display(consumer)
            )
        })
}

/// An error naming `cmd` unless `status` is success.
pub fn check(cmd: &Command, status: ExitStatus) -> Result<()> {
    if !status.success() {
        bail!("`{}` failed: {status}", display(cmd));
    }
    Ok(())
}

/// Whether `program` can be found on `PATH`.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            let candidate = dir.join(program);
            candidate.metadata().is_ok_and(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_what_a_shell_would_split() {
        let mut cmd = Command::new("cargo");
        cmd.args(["test", "--", "a b", "it's"]).env("X", "1 2");
        assert_eq!(display(&cmd), r"X='1 2' cargo test -- 'a b' 'it'\''s'");
    }

    #[test]
    fn errors_name_the_command() {
        let err = exec(Command::new("false").arg("--flag")).unwrap_err();
        assert!(err.to_string().contains("`false --flag` failed"), "{err}");
        let err = exec(&mut Command::new("/nonexistent/prog")).unwrap_err();
        assert!(
            format!("{err:#}").contains("failed to start `/nonexistent/prog`"),
            "{err:#}"
        );
    }

    #[test]
    fn pipe_reports_the_failing_side() {
        pipe(
            Command::new("echo").arg("hi"),
            Command::new("cat").stdout(Stdio::null()),
        )
        .unwrap();
        let err = pipe(&mut Command::new("false"), &mut Command::new("cat")).unwrap_err();
        assert!(format!("{err:#}").contains("`false` failed"), "{err:#}");
    }
}
