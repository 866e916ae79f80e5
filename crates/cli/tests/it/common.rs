//! A test's own isol world: a temp state directory, a scratch cgroup beneath which every
//! box is created (`--cgroup-parent HIER:PATH` for each hierarchy, since on a hybrid host
//! the test's own cgroup differs between hierarchies and one plain path cannot name the
//! scratch), and snapshots of what a box could leave behind.

use std::path::{Path, PathBuf};
use std::process::Command;

use isol_ns_core::{registry, CgroupLocation};
use isol_testkit::Scratch;

/// Links both backends into this test binary (the registry only sees linked crates).
#[used]
static LINK_BACKENDS: [fn() -> &'static isol_ns_core::BackendPlugin; 2] =
    [isol_cgroup_v1::plugin, isol_cgroup_v2::plugin];

/// The environment variable that marks the processes of one test (see [`Env::command`]).
pub const MARK: &str = "ISOL_TEST_MARK";

/// What one `isol` invocation did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Runs `cmd` (an isol made by [`Env::command`], perhaps with a hook) to its end.
    pub fn of(mut cmd: Command) -> Out {
        let out = cmd.output().expect("run isol");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts exit 0 and returns stdout.
    pub fn ok(self) -> String {
        assert_eq!(self.code, 0, "isol failed: {}", self.stderr);
        self.stdout
    }

    pub fn json(self) -> serde_json::Value {
        let text = self.ok();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}

pub struct Env {
    pub state: tempfile::TempDir,
    pub scratch: Scratch,
    /// `--cgroup-parent` arguments naming the scratch cgroup.
    parent: Vec<String>,
}

impl Env {
    /// A world for a privileged test, or `None` when it must be skipped (not root and
    /// `ISOL_REQUIRE_PRIVILEGED` unset).
    pub fn new(test: &str) -> Option<Env> {
        if !isol_testkit::require_root(test) {
            return None;
        }
        let host = isol_testkit::host();
        let backend = registry::open("auto", &host).expect("open the auto backend");
        let scratch = Scratch::new(backend, "cli");
        let mut parent = Vec::new();
        for (key, path) in &scratch.cgroup().location().0 {
            parent.push("--cgroup-parent".to_string());
            parent.push(format!("{key}:{path}"));
        }
        let state = tempfile::Builder::new()
            .prefix("isol-cli-test-")
            .tempdir()
            .expect("tempdir");
        Some(Env {
            state,
            scratch,
            parent,
        })
    }

    /// `isol --state-dir DIR ARGS…`, not started yet. It carries [`MARK`] in its
    /// environment, and passes it on to the boxes that `run` and `exec` start
    /// (`--env MARK`), so that [`Env::marked`] finds whatever came of it, however it
    /// forked or escaped.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_isol"));
        cmd.arg("--state-dir").arg(self.state.path());
        match args.split_first() {
            Some((sub, rest)) if *sub == "run" || *sub == "exec" => {
                cmd.arg(sub).args(["--env", MARK]).args(rest)
            }
            _ => cmd.args(args),
        };
        cmd.env(MARK, self.mark());
        cmd
    }

    /// `run --cgroup-parent <scratch> ARGS…` as arguments for [`Env::command`].
    pub fn run_args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all: Vec<&str> = vec!["run"];
        all.extend(self.parent.iter().map(String::as_str));
        all.extend_from_slice(args);
        all
    }

    /// This test's value of [`MARK`]: its state directory, unique to it.
    pub fn mark(&self) -> String {
        self.state.path().to_string_lossy().into_owned()
    }

    /// Live processes (not zombies) whose environment carries this test's [`MARK`]:
    /// every isol this test started and everything its boxes started.
    pub fn marked(&self) -> Vec<u32> {
        let needle = format!("{MARK}={}", self.mark());
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
                continue;
            };
            let hit = env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes());
            if hit && alive(pid) {
                out.push(pid);
            }
        }
        out.sort();
        out
    }

    /// The processes in the scratch cgroup and beneath it, in every hierarchy.
    pub fn scratch_processes(&self) -> Vec<u32> {
        let mut out = Vec::new();
        for d in self.cgroup_dirs() {
            if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
                out.extend(procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// `isol --state-dir DIR ARGS…`.
    pub fn isol(&self, args: &[&str]) -> Out {
        Out::of(self.command(args))
    }

    /// `isol run --cgroup-parent <scratch> ARGS…`.
    pub fn run(&self, args: &[&str]) -> Out {
        self.isol(&self.run_args(args))
    }

    /// The stdout of `isol run FLAGS… -- /bin/sh -c SCRIPT`, which must succeed.
    pub fn sh(&self, flags: &[&str], script: &str) -> String {
        let mut args = flags.to_vec();
        args.extend(["--", "/bin/sh", "-c", script]);
        self.run(&args).ok()
    }

    /// `isol pod create NAME ARGS… --cgroup-parent <scratch>` (its members then need no
    /// `--cgroup-parent`).
    pub fn pod_create(&self, name: &str, args: &[&str]) -> Out {
        let mut all: Vec<&str> = vec!["pod", "create", name];
        all.extend_from_slice(args);
        all.extend(self.parent.iter().map(String::as_str));
        self.isol(&all)
    }

    /// The directories beneath the scratch cgroup, in every hierarchy.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for d in self.scratch.cgroup().dirs() {
            collect_dirs(&d, &mut out);
        }
        out.sort();
        out
    }

    /// What a box could leave behind: cgroups beneath the scratch, mounts naming the
    /// state directory, records and entry directories in it, and processes whose command
    /// line names it (a supervisor).
    pub fn snapshot(&self) -> Snapshot {
        let state = self.state.path().to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&state))
            .map(str::to_string)
            .collect();
        let mut files = Vec::new();
        collect_all(self.state.path(), &mut files);
        // Records, entry directories and their files; the empty kind directory
        // (`boxes/`, `pods/`) that the first record creates is the state directory's layout.
        files.retain(|f| {
            !f.ends_with(".lock")
                && f.as_path() != self.state.path()
                && !f.ends_with("boxes")
                && !f.ends_with("pods")
        });
        files.sort();
        Snapshot {
            cgroups: self.cgroup_dirs(),
            mounts,
            files,
            processes: processes_naming(&state),
        }
    }

    /// The scratch cgroup's location (its path in every hierarchy).
    pub fn location(&self) -> &CgroupLocation {
        self.scratch.cgroup().location()
    }
}

/// Removes whatever a test left in its world when it failed midway (its pods' bind-mounted
/// namespace files would outlive the temp directory): every pod and box, forcibly. The
/// scratch cgroup is destroyed after this, killing anything still in it.
impl Drop for Env {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let names = |out: Out| -> Vec<String> {
            serde_json::from_str::<serde_json::Value>(&out.stdout)
                .ok()
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|r| r["name"].as_str().map(str::to_string))
                .collect()
        };
        for pod in names(self.isol(&["pod", "ls", "--json"])) {
            self.isol(&["pod", "rm", "-f", &pod]);
        }
        for b in names(self.isol(&["ps", "--json"])) {
            self.isol(&["rm", "-f", &b]);
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub cgroups: Vec<PathBuf>,
    pub mounts: Vec<String>,
    pub files: Vec<PathBuf>,
    pub processes: Vec<u32>,
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}

fn collect_all(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_all(&e.path(), out);
            } else {
                out.push(e.path());
            }
        }
    }
}

/// Pids whose command line contains `needle`.
pub fn processes_naming(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            if String::from_utf8_lossy(&cmdline).contains(needle) {
                out.push(pid);
            }
        }
    }
    out
}

/// Whether process `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next().map(|st| st != "Z"))
        })
        .unwrap_or(false)
}

/// The inode of `/proc/PID/ns/KIND`.
pub fn ns_inode(pid: u32, kind: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/{kind}"))
        .unwrap_or_else(|e| panic!("stat /proc/{pid}/ns/{kind}: {e}"))
        .ino()
}

/// Polls `cond` for up to 10 s.
/// `--rootfs ROOT` and the `--bind`s that put the host's programs, read-only, in the
/// otherwise empty `root` (its symlinks like /bin -> usr/bin copied as they are).
pub fn rootfs_of_host_programs(root: &Path) -> Vec<String> {
    let mut args: Vec<String> = vec!["--rootfs".into(), root.display().to_string()];
    for name in ["bin", "sbin", "usr", "lib", "lib64"] {
        let host = Path::new("/").join(name);
        let Ok(md) = std::fs::symlink_metadata(&host) else {
            continue;
        };
        if md.file_type().is_symlink() {
            let to = std::fs::read_link(&host).unwrap();
            std::os::unix::fs::symlink(to, root.join(name)).unwrap();
        } else if md.is_dir() {
            args.extend(["--bind".into(), format!("/{name}:/{name}:ro")]);
        }
    }
    args
}

pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
