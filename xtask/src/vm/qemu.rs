//! Booting one mode in qemu under a hard timeout, and judging what it printed.
//!
//! The guest's serial console is qemu's stdout. Each line goes to the mode's log
//! file and, tagged with the mode, to our terminal as it arrives. A run passes only
//! when qemu exited by itself with status 0 (init's `poweroff -f`) **and** the log
//! holds init's verdict line carrying this boot's nonce with `status=ok`: a kernel
//! panic, an init that died, a hang or a stale log each fail one of the two.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::{Accel, Mode, ModeReport};
use crate::exec;
use crate::libtest::Counts;
use crate::progress;

/// How many lines of the guest log a failure shows.
const TAIL_LINES: usize = 60;
/// A line of our own when the guest has been quiet this long.
const HEARTBEAT: Duration = Duration::from_secs(60);

/// One boot's settings.
pub struct Vm<'a> {
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    /// The tools disk, attached read-only as the guest's first virtio disk (vda).
    pub disk: Option<&'a Path>,
    /// `Kvm` or `Tcg`, already resolved.
    pub accel: Accel,
    pub memory: &'a str,
    pub timeout: Duration,
    pub log: PathBuf,
}

/// How a boot ended, as seen from the host.
struct Ended {
    /// `None` when we killed qemu at the timeout.
    status: Option<ExitStatus>,
    lines: Vec<String>,
}

impl Vm<'_> {
    /// Boots `mode` and reports the outcome; any error becomes the report's failure,
    /// so that the other modes still run.
    pub fn boot(&self, mode: Mode) -> ModeReport {
        let start = Instant::now();
        let nonce = nonce();
        let (counts, failure) = match self.run(mode, &nonce) {
            Ok(ended) => {
                let verdict = judge(&ended, mode, &nonce, self.timeout);
                if verdict.1.is_some() {
                    print_tail(mode, &self.log, &ended.lines);
                }
                verdict
            }
            Err(err) => (None, Some(format!("{err:#}"))),
        };
        let seconds = start.elapsed().as_secs_f64();
        progress::step(
            mode.name(),
            format!(
                "{} after {seconds:.1}s",
                failure
                    .as_deref()
                    .map_or("passed".to_owned(), |f| format!("FAILED: {f}"))
            ),
        );
        ModeReport {
            mode,
            seconds,
            counts,
            failure,
        }
    }

    fn command(&self, mode: Mode, nonce: &str) -> Command {
        let mut append =
            format!("console=ttyS0 panic=-1 quiet isol.mode={mode} isol.nonce={nonce}");
        let extra = mode.kernel_args();
        if !extra.is_empty() {
            append.push(' ');
            append.push_str(extra);
        }
        let mut cmd = Command::new("qemu-system-x86_64");
        match self.accel {
            Accel::Kvm => cmd.args(["-accel", "kvm", "-cpu", "host"]),
            _ => cmd.args(["-accel", "tcg"]),
        };
        cmd.args([
            "-m",
            self.memory,
            "-smp",
            "2",
            "-nodefaults",
            "-display",
            "none",
        ])
        .args(["-serial", "stdio", "-monitor", "none", "-no-reboot"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .arg("-kernel")
        .arg(self.kernel)
        .arg("-initrd")
        .arg(self.initrd)
        .arg("-append")
        .arg(append);
        if let Some(disk) = self.disk {
            let mut drive = std::ffi::OsString::from("file=");
            // qemu's option syntax doubles a comma inside a value.
            drive.push(disk.to_string_lossy().replace(',', ",,"));
            drive.push(",if=virtio,format=raw,readonly=on");
            cmd.arg("-drive").arg(drive);
        }
        cmd
    }

    /// Runs qemu to its end or to the timeout, logging and echoing every line.
    fn run(&self, mode: Mode, nonce: &str) -> Result<Ended> {
        if let Some(dir) = self.log.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        let mut log =
            File::create(&self.log).with_context(|| format!("create {}", self.log.display()))?;
        let mut cmd = self.command(mode, nonce);
        progress::step(mode.name(), format!("boot: {}", exec::display(&cmd)));
        progress::step(mode.name(), format!("guest log: {}", self.log.display()));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = exec::spawn(&mut cmd)?;

        let (tx, rx) = mpsc::channel::<String>();
        let readers = [
            forward(child.stdout.take().expect("piped"), tx.clone(), ""),
            forward(child.stderr.take().expect("piped"), tx, "qemu: "),
        ];

        let start = Instant::now();
        let deadline = start + self.timeout;
        let mut lines = Vec::new();
        let mut last_line = Instant::now();
        let mut killed = false;
        loop {
            let now = Instant::now();
            let wait = if killed {
                Duration::from_secs(5)
            } else {
                deadline.saturating_duration_since(now).min(HEARTBEAT)
            };
            match rx.recv_timeout(wait) {
                Ok(line) => {
                    writeln!(log, "{line}").context("write the guest log")?;
                    println!("[{mode}] {line}");
                    lines.push(line);
                    last_line = Instant::now();
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) if killed => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if Instant::now() >= deadline {
                        progress::step(
                            mode.name(),
                            format!("timed out after {}s, killing qemu", self.timeout.as_secs()),
                        );
                        child.kill().context("kill qemu")?;
                        killed = true;
                    } else if last_line.elapsed() >= HEARTBEAT {
                        progress::step(
                            mode.name(),
                            format!(
                                "still running, {:.0}s since boot, quiet for {:.0}s",
                                start.elapsed().as_secs_f64(),
                                last_line.elapsed().as_secs_f64()
                            ),
                        );
                    }
                }
            }
        }
        let status = child.wait().context("wait for qemu")?;
        for r in readers {
            let _ = r.join();
        }
        log.flush()?;
        Ok(Ended {
            status: (!killed).then_some(status),
            lines,
        })
    }
}

/// A thread sending each line of `from` (lossy UTF-8, without `\r`) with `prefix`.
fn forward(
    from: impl Read + Send + 'static,
    to: mpsc::Sender<String>,
    prefix: &'static str,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(from);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buf);
                    let line = text.trim_end_matches(['\n', '\r']).replace('\r', "");
                    if to.send(format!("{prefix}{line}")).is_err() {
                        return;
                    }
                }
            }
        }
    })
}

/// A value unique to one boot, so a verdict from another boot (or a test that prints
/// one) cannot pass for this one's.
fn nonce() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{:x}{:08x}", std::process::id(), nanos)
}

/// The `key=value` words of a marker line after `marker`; `reason=` takes the rest
/// of the line.
fn fields<'a>(line: &'a str, marker: &str) -> Option<Vec<(&'a str, &'a str)>> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let (words, reason) = match rest.find("reason=") {
        Some(i) => (&rest[..i], Some(&rest[i + "reason=".len()..])),
        None => (rest, None),
    };
    let mut out: Vec<(&str, &str)> = words
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .collect();
    if let Some(r) = reason {
        out.push(("reason", r.trim()));
    }
    Some(out)
}

fn get<'a>(fields: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn counts_of(fields: &[(&str, &str)]) -> Counts {
    let n = |key| get(fields, key).and_then(|v| v.parse().ok()).unwrap_or(0);
    Counts {
        passed: n("passed"),
        failed: n("failed"),
        ignored: n("ignored"),
    }
}

/// The counts and, when the run failed, every reason it failed.
fn judge(
    ended: &Ended,
    mode: Mode,
    nonce: &str,
    timeout: Duration,
) -> (Option<Counts>, Option<String>) {
    let mut why = Vec::new();
    match ended.status {
        None => why.push(format!("timed out after {}s", timeout.as_secs())),
        Some(s) if !s.success() => why.push(format!("qemu exited with {s}")),
        Some(_) => {}
    }
    if let Some(l) = ended
        .lines
        .iter()
        .find(|l| l.contains("Initramfs unpacking failed"))
    {
        why.push(format!("{} (guest memory too small?)", l.trim()));
    }
    if let Some(panic) = ended.lines.iter().find(|l| l.contains("Kernel panic")) {
        why.push(format!("kernel panic: {}", panic.trim()));
    }
    let mut from_binaries: Option<Counts> = None;
    let mut failed_binaries = Vec::new();
    for f in ended.lines.iter().filter_map(|l| fields(l, "ISOL-BINARY ")) {
        *from_binaries.get_or_insert_with(Counts::default) += counts_of(&f);
        if get(&f, "status") != Some("ok") {
            failed_binaries.push(format!(
                "{} (exit {}, {} failed, {} ignored)",
                get(&f, "name").unwrap_or("?"),
                get(&f, "exit").unwrap_or("?"),
                get(&f, "failed").unwrap_or("?"),
                get(&f, "ignored").unwrap_or("?"),
            ));
        }
    }
    let verdict = ended
        .lines
        .iter()
        .filter_map(|l| fields(l, "ISOL-VERDICT "))
        .rfind(|f| get(f, "nonce") == Some(nonce));
    let counts = match &verdict {
        None => {
            why.push("no verdict line from init".to_owned());
            from_binaries
        }
        Some(v) => {
            if get(v, "mode") != Some(mode.name()) {
                why.push(format!("init booted mode {:?}", get(v, "mode")));
            }
            // A failing binary is named below; other reasons (no tests, an init
            // error) only the verdict gives.
            if get(v, "status") != Some("ok") && failed_binaries.is_empty() {
                let reason = get(v, "reason").unwrap_or("no reason given");
                why.push(format!(
                    "verdict {}: {reason}",
                    get(v, "status").unwrap_or("?")
                ));
            }
            Some(counts_of(v))
        }
    };
    if !failed_binaries.is_empty() {
        why.push(format!("failing binaries: {}", failed_binaries.join(", ")));
    }
    let failure = (!why.is_empty()).then(|| why.join("; "));
    (counts, failure)
}

fn print_tail(mode: Mode, log: &Path, lines: &[String]) {
    let tail: VecDeque<&String> = lines.iter().rev().take(TAIL_LINES).rev().collect();
    eprintln!(
        "---- {mode}: last {} lines of {} ----",
        tail.len(),
        log.display()
    );
    for l in tail {
        eprintln!("{l}");
    }
    eprintln!("---- end of {mode} log ----");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn ended(code: Option<i32>, log: &str) -> Ended {
        Ended {
            status: code.map(|c| ExitStatus::from_raw(c << 8)),
            lines: log.lines().map(str::to_owned).collect(),
        }
    }

    const OK: &str = "\
ISOL-BINARY name=ns-core.it status=ok exit=0 passed=3 failed=0 ignored=0 seconds=1
ISOL-VERDICT nonce=abc mode=unified binaries=1 passed=3 failed=0 ignored=0 status=ok";

    #[test]
    fn passes_only_with_exit_zero_and_our_verdict() {
        let t = Duration::from_secs(9);
        let (counts, failure) = judge(&ended(Some(0), OK), Mode::Unified, "abc", t);
        assert_eq!(failure, None);
        assert_eq!(
            counts,
            Some(Counts {
                passed: 3,
                failed: 0,
                ignored: 0
            })
        );

        let (_, failure) = judge(&ended(Some(0), OK), Mode::Unified, "other", t);
        assert_eq!(failure.as_deref(), Some("no verdict line from init"));

        let (_, failure) = judge(&ended(Some(0), OK), Mode::Legacy, "abc", t);
        assert!(failure.unwrap().contains("init booted mode"));

        let (_, failure) = judge(&ended(None, OK), Mode::Unified, "abc", t);
        assert_eq!(failure.as_deref(), Some("timed out after 9s"));

        let (_, failure) = judge(&ended(Some(3), OK), Mode::Unified, "abc", t);
        assert!(failure.unwrap().starts_with("qemu exited with"));
    }

    #[test]
    fn names_failing_binaries_and_panics() {
        let log = "\
ISOL-BINARY name=a.it status=ok exit=0 passed=2 failed=0 ignored=0 seconds=1
ISOL-BINARY name=b.it status=fail exit=101 passed=1 failed=1 ignored=1 seconds=1
ISOL-VERDICT nonce=n mode=hybrid binaries=2 passed=3 failed=1 ignored=1 status=fail reason=b.it failed
";
        let (counts, failure) = judge(&ended(Some(0), log), Mode::Hybrid, "n", Duration::ZERO);
        assert_eq!(
            counts,
            Some(Counts {
                passed: 3,
                failed: 1,
                ignored: 1
            })
        );
        assert_eq!(
            failure.as_deref(),
            Some("failing binaries: b.it (exit 101, 1 failed, 1 ignored)")
        );

        let log = "ISOL-BINARY name=a.it status=ok exit=0 passed=2 failed=0 ignored=0\n\
                   [    3.1] Kernel panic - not syncing: Attempted to kill init!";
        let (counts, failure) = judge(&ended(Some(0), log), Mode::Hybrid, "n", Duration::ZERO);
        assert_eq!(
            counts,
            Some(Counts {
                passed: 2,
                failed: 0,
                ignored: 0
            })
        );
        let failure = failure.unwrap();
        assert!(
            failure.contains("kernel panic: [    3.1] Kernel panic"),
            "{failure}"
        );
        assert!(failure.contains("no verdict line"), "{failure}");
    }
}
