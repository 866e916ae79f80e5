//! Child processes for the behaviour tests: this test binary, re-executed with
//! `ISOL_V2_HELPER=<mode>` and told to run only [`entry`]. The child waits for one byte
//! on stdin before it starts, so the parent can attach it to a cgroup first. Children are
//! SIGKILLed by pid when their [`Helper`] is dropped (also when a test fails).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const ENV: &str = "ISOL_V2_HELPER";
const ARG: &str = "ISOL_V2_HELPER_ARG";
const NOWAIT: &str = "ISOL_V2_HELPER_NOWAIT";

/// A helper child process.
pub struct Helper {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

fn command(mode: &str, arg: &str) -> Command {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "helper::entry",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ])
    .env(ENV, mode)
    .env(ARG, arg)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    cmd
}

impl Helper {
    /// Starts a helper in `mode` (alloc MiB, busy, threads, double-fork, sleep); it waits
    /// for [`Helper::go`].
    pub fn spawn(mode: &str, arg: &str) -> Helper {
        let mut child = command(mode, arg).spawn().expect("spawn helper");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Helper { child, stdout }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lets it start.
    pub fn go(&mut self) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin
            .write_all(b"g")
            .and_then(|_| stdin.flush())
            .expect("write to helper's stdin");
    }

    /// The value of the first stdout line starting with `prefix`.
    pub fn line(&mut self, prefix: &str) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self
                .stdout
                .read_line(&mut line)
                .expect("read helper stdout");
            assert!(
                n > 0,
                "helper exited before printing {prefix:?} (status {:?})",
                self.child.try_wait()
            );
            if let Some(v) = line.trim().strip_prefix(prefix) {
                return v.trim().to_string();
            }
        }
    }

    /// Waits up to `timeout` for it to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// The helper's body. Without `ISOL_V2_HELPER` (an ordinary test run) it does nothing:
/// it is the entry point of the child processes, not a test of its own.
#[test]
fn entry() {
    let Ok(mode) = std::env::var(ENV) else { return };
    let arg = std::env::var(ARG).unwrap_or_default();
    if std::env::var_os(NOWAIT).is_none() {
        let mut b = [0u8; 1];
        if std::io::stdin().read_exact(&mut b).is_err() {
            std::process::exit(3);
        }
    }
    match mode.as_str() {
        "alloc" => {
            let mib: usize = arg.parse().expect("MiB");
            let mut chunks: Vec<Vec<u8>> = Vec::new();
            for i in 0..mib {
                let mut c = vec![0u8; 1 << 20];
                for p in (0..c.len()).step_by(4096) {
                    c[p] = (i as u8) | 1;
                }
                chunks.push(std::hint::black_box(c));
            }
            println!("ALLOCATED {mib}");
            sleep_forever();
        }
        "busy" => {
            println!("BUSY");
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        "threads" => {
            let mut n = 0;
            let err = loop {
                match std::thread::Builder::new().spawn(sleep_forever) {
                    Ok(_) => n += 1,
                    Err(e) => break e,
                }
                if n > 10_000 {
                    panic!("no limit hit");
                }
            };
            println!("THREADS {n} {}", err.raw_os_error().unwrap_or(0));
            sleep_forever();
        }
        "double-fork" => {
            let gc = command("sleep", "")
                .env(NOWAIT, "1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .expect("spawn grandchild");
            println!("GRANDCHILD {}", gc.id());
            // Exit without waiting: the grandchild is orphaned.
            std::process::exit(0);
        }
        "sleep" => sleep_forever(),
        other => panic!("unknown helper mode {other}"),
    }
}

fn sleep_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
