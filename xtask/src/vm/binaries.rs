//! Building the integration test binaries as static musl executables and finding them.
//!
//! Static binaries need nothing from the guest but a kernel, so the initramfs holds
//! them as they are. Their paths come from cargo's JSON messages, never from guessing
//! at `target/…/deps/NAME-HASH`: only cargo knows which hash is current.
//!
//! Integration tests may run the workspace's programs through
//! `env!("CARGO_BIN_EXE_<name>")`, an absolute host path compiled into the test. So the
//! programs cargo built along with the tests are collected too, and the initramfs holds
//! them at that same path.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::exec;
use crate::progress;

/// The target the guest binaries are built for.
pub const TARGET: &str = "x86_64-unknown-linux-musl";
/// Cargo's per-target rustflags variable for [`TARGET`].
const RUSTFLAGS_VAR: &str = "CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS";

/// One integration test executable and the name it gets in the guest.
#[derive(Debug, PartialEq, Eq)]
pub struct TestBinary {
    /// `<crate dir>.<test target>`, e.g. `cgroup-v1.it`: unique, and readable in logs.
    pub name: String,
    pub path: PathBuf,
}

/// What the guest needs from one build.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Built {
    /// The integration test executables, sorted by name.
    pub tests: Vec<TestBinary>,
    /// The workspace's programs (bin targets), to be found at these same paths.
    pub programs: Vec<PathBuf>,
    /// Shared libraries (and the dynamic loader) the executables need, to be found at
    /// these same paths; empty for static musl builds.
    pub libraries: Vec<PathBuf>,
    /// Files to pack in place of some of the above (copies with compressed debug
    /// sections), by the path cargo gave.
    pub substitutes: BTreeMap<PathBuf, PathBuf>,
}

impl Built {
    /// The file whose contents go into the guest for `path`.
    pub fn source_of<'a>(&'a self, path: &'a Path) -> &'a Path {
        self.substitutes.get(path).map_or(path, PathBuf::as_path)
    }
}

/// Which C library the guest binaries link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Libc {
    /// Static musl executables: nothing else to pack. The default.
    Musl,
    /// The host's own (glibc) build, packed with the shared libraries `ldd` names.
    /// The fallback where the musl target cannot be installed.
    Host,
}

/// Builds the workspace's integration tests (and the programs they run) for the
/// guest. `manifest_path` points cargo at another workspace; `work` is where copies
/// of the binaries may be made.
pub fn build(manifest_path: Option<&Path>, libc: Libc, work: &Path) -> Result<Built> {
    let libc = match libc {
        Libc::Musl => match ensure_musl() {
            Ok(()) => Libc::Musl,
            Err(err) => {
                progress::step(
                    "vm",
                    format!(
                        "cannot build for {TARGET} ({err:#}); packing the host's \
                         glibc build and its shared libraries instead"
                    ),
                );
                Libc::Host
            }
        },
        Libc::Host => Libc::Host,
    };
    let mut cmd = Command::new(exec::cargo());
    cmd.args(["test", "--workspace", "--exclude", "xtask", "--no-run"])
        // Diagnostics rendered on stderr as usual; the artifacts as JSON on stdout.
        .arg("--message-format=json-render-diagnostics");
    if let Some(path) = manifest_path {
        cmd.arg("--manifest-path").arg(path);
    }
    if libc == Libc::Musl {
        cmd.args(["--target", TARGET]);
        // Debug info is most of a test binary, and the initramfs lives in guest
        // memory: zlib-compressed debug sections make the binaries about three times
        // smaller, and std's backtraces still read them (file and line in a guest
        // panic). Only the musl units see this, so host builds are not rebuilt.
        if std::env::var_os(RUSTFLAGS_VAR).is_none() {
            cmd.env(
                RUSTFLAGS_VAR,
                "-C link-arg=-Wl,--compress-debug-sections=zlib",
            );
        }
        progress::step("vm", format!("build test binaries for {TARGET}"));
    } else {
        // Without --target: the very artifacts of a host `cargo test`.
        progress::step("vm", "build test binaries for the host");
    }
    let json = exec::output(&mut cmd)?;
    let mut built = collect(&json)?;
    for t in &built.tests {
        progress::step(
            "vm",
            format!("test binary {} = {}", t.name, t.path.display()),
        );
    }
    for p in &built.programs {
        progress::step("vm", format!("program {}", p.display()));
    }
    built.libraries = shared_libraries(
        built
            .tests
            .iter()
            .map(|t| t.path.as_path())
            .chain(built.programs.iter().map(PathBuf::as_path)),
    )?;
    for l in &built.libraries {
        progress::step("vm", format!("shared library {}", l.display()));
    }
    if libc == Libc::Host {
        built.substitutes = compress_debug_sections(&built, &work.join("elf"))?;
    }
    Ok(built)
}

/// Copies of the test binaries and programs with zlib-compressed debug sections
/// (`objcopy --compress-debug-sections`), as the musl build gets from its linker:
/// uncompressed, a glibc debug build of the workspace's tests outgrows the guest's
/// memory. Without objcopy the originals are packed.
fn compress_debug_sections(built: &Built, dir: &Path) -> Result<BTreeMap<PathBuf, PathBuf>> {
    let mut copies = BTreeMap::new();
    if !exec::on_path("objcopy") {
        progress::step(
            "vm",
            "no objcopy: packing binaries with uncompressed debug info",
        );
        return Ok(copies);
    }
    progress::step("vm", "compress debug sections (objcopy)");
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let originals = built.tests.iter().map(|t| &t.path).chain(&built.programs);
    for (i, original) in originals.enumerate() {
        let name = original
            .file_name()
            .map_or("bin".into(), |n| n.to_string_lossy());
        let copy = dir.join(format!("{i}-{name}"));
        exec::exec(
            Command::new("objcopy")
                .arg("--compress-debug-sections=zlib")
                .arg(original)
                .arg(&copy),
        )?;
        copies.insert(original.clone(), copy);
    }
    Ok(copies)
}

/// Makes sure the standard library for [`TARGET`] is installed, adding it with
/// rustup when it is missing.
pub(crate) fn ensure_musl() -> Result<()> {
    if musl_installed()? {
        return Ok(());
    }
    if !exec::on_path("rustup") {
        anyhow::bail!("{TARGET} is not installed and there is no rustup to add it");
    }
    progress::step("vm", format!("rustup target add {TARGET}"));
    exec::exec(Command::new("rustup").args(["target", "add", TARGET]))?;
    if !musl_installed()? {
        anyhow::bail!("rustup added {TARGET}, yet rustc has no standard library for it");
    }
    Ok(())
}

/// Whether rustc has a standard library for [`TARGET`].
fn musl_installed() -> Result<bool> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let libdir =
        exec::output(Command::new(rustc).args(["--print", "target-libdir", "--target", TARGET]))?;
    let libdir = Path::new(libdir.trim());
    Ok(std::fs::read_dir(libdir).is_ok_and(|entries| {
        entries
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
    }))
}

/// The shared libraries and dynamic loaders `ldd` names for `executables`; none for
/// static ones.
fn shared_libraries<'a>(executables: impl Iterator<Item = &'a Path>) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for exe in executables {
        let out = Command::new("ldd")
            .arg(exe)
            .output()
            .with_context(|| format!("failed to start `ldd {}`", exe.display()))?;
        // A static executable makes ldd fail ("not a dynamic executable"); the
        // libraries of a dynamic one are listed either way.
        found.extend(parse_ldd(&String::from_utf8_lossy(&out.stdout)));
    }
    found.sort();
    found.dedup();
    Ok(found)
}

/// The absolute paths in `ldd` output: `libc.so.6 => /lib/…/libc.so.6 (0x…)` and
/// `/lib64/ld-linux-x86-64.so.2 (0x…)`.
fn parse_ldd(out: &str) -> Vec<PathBuf> {
    out.lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.trim(),
                None => line,
            };
            let path = path.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// The parts of a cargo JSON message that tell a test executable apart.
#[derive(Deserialize)]
struct Message {
    reason: String,
    #[serde(default)]
    manifest_path: Option<PathBuf>,
    #[serde(default)]
    target: Option<Target>,
    #[serde(default)]
    profile: Option<Profile>,
    #[serde(default)]
    executable: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
}

#[derive(Deserialize)]
struct Profile {
    test: bool,
}

/// The integration test executables (`tests/*.rs`, `tests/it/main.rs`) and the
/// programs among cargo's JSON messages; unit-test binaries of libs and bins are left
/// out.
fn collect(json: &str) -> Result<Built> {
    let mut built = Built::default();
    let mut names = HashSet::new();
    for line in json.lines().filter(|l| l.starts_with('{')) {
        let msg: Message = serde_json::from_str(line)
            .with_context(|| format!("unexpected cargo message: {line}"))?;
        let (Some(target), Some(profile), Some(executable), Some(manifest)) =
            (msg.target, msg.profile, msg.executable, msg.manifest_path)
        else {
            continue;
        };
        if msg.reason != "compiler-artifact" {
            continue;
        }
        let is = |kind: &str| target.kind.iter().any(|k| k == kind);
        if !profile.test && is("bin") {
            built.programs.push(executable);
            continue;
        }
        if !profile.test || !is("test") {
            continue;
        }
        let krate = manifest
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "crate".to_owned());
        let base = format!("{krate}.{}", target.name);
        let mut name = base.clone();
        let mut n = 1;
        while !names.insert(name.clone()) {
            n += 1;
            name = format!("{base}.{n}");
        }
        built.tests.push(TestBinary {
            name,
            path: executable,
        });
    }
    built.tests.sort_by(|a, b| a.name.cmp(&b.name));
    built.programs.sort();
    built.programs.dedup();
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_integration_test_executables() {
        let json = r#"
{"reason":"compiler-artifact","package_id":"path+file:///w/crates/ns-core#isol-ns-core@0.1.0","manifest_path":"/w/crates/ns-core/Cargo.toml","target":{"kind":["lib"],"crate_types":["lib"],"name":"isol_ns_core","src_path":"/w/crates/ns-core/src/lib.rs","test":true},"profile":{"test":false},"executable":null,"fresh":true}
{"reason":"compiler-artifact","manifest_path":"/w/crates/ns-core/Cargo.toml","target":{"kind":["lib"],"name":"isol_ns_core"},"profile":{"test":true},"executable":"/w/target/x86_64-unknown-linux-musl/debug/deps/isol_ns_core-1111","fresh":true}
{"reason":"compiler-artifact","manifest_path":"/w/crates/ns-core/Cargo.toml","target":{"kind":["test"],"name":"it"},"profile":{"test":true},"executable":"/w/target/x86_64-unknown-linux-musl/debug/deps/it-2222","fresh":false}
{"reason":"compiler-artifact","manifest_path":"/w/crates/cgroup-v1/Cargo.toml","target":{"kind":["test"],"name":"it"},"profile":{"test":true},"executable":"/w/target/x86_64-unknown-linux-musl/debug/deps/it-3333","fresh":false}
{"reason":"compiler-artifact","manifest_path":"/w/crates/cli/Cargo.toml","target":{"kind":["bin"],"name":"isol"},"profile":{"test":false},"executable":"/w/target/x86_64-unknown-linux-musl/debug/isol","fresh":false}
{"reason":"compiler-artifact","manifest_path":"/w/crates/cli/Cargo.toml","target":{"kind":["bin"],"name":"isol"},"profile":{"test":true},"executable":"/w/target/x86_64-unknown-linux-musl/debug/deps/isol-4444","fresh":false}
{"reason":"build-finished","success":true}
"#;
        let built = collect(json).unwrap();
        assert_eq!(
            built.tests,
            vec![
                TestBinary {
                    name: "cgroup-v1.it".into(),
                    path: "/w/target/x86_64-unknown-linux-musl/debug/deps/it-3333".into()
                },
                TestBinary {
                    name: "ns-core.it".into(),
                    path: "/w/target/x86_64-unknown-linux-musl/debug/deps/it-2222".into()
                },
            ]
        );
        assert_eq!(
            built.programs,
            vec![PathBuf::from(
                "/w/target/x86_64-unknown-linux-musl/debug/isol"
            )]
        );
    }

    #[test]
    fn reads_library_paths_from_ldd() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                   \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f1)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f3)\n";
        assert_eq!(
            parse_ldd(out),
            [
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
        assert!(parse_ldd("\tstatically linked\n").is_empty());
    }
}
