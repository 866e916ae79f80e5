//! What the VM is made of besides our own binaries: qemu, a kernel (with the few
//! modules the tools disk needs) and busybox.
//!
//! The kernel is Debian's cloud kernel (every cgroup controller and namespace built
//! in, gzip-compressed, boots in seconds under TCG) and busybox is Debian's static
//! build. Both are fetched with apt-get as .deb files and unpacked — nothing is
//! installed on the host — into a cache under the target dir, so that a second run
//! works offline. Delete `target/vm-cache` to fetch newer ones.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context, Result};

use super::kmod;
use crate::exec;
use crate::progress;
use crate::sys;

/// The meta-package whose dependency names the current versioned cloud kernel.
const KERNEL_META: &str = "linux-image-cloud-amd64";
const BUSYBOX_PKG: &str = "busybox-static";
const QEMU: &str = "qemu-system-x86_64";
const QEMU_PKG: &str = "qemu-system-x86";

/// Makes sure qemu is on `PATH`, installing it with apt-get when we are root.
pub fn ensure_qemu() -> Result<()> {
    ensure_program(QEMU, QEMU_PKG).map(drop)
}

/// The path of `program` (on `PATH`, or in /usr/sbin or /sbin, where Debian keeps
/// `mkfs.ext4` out of an ordinary user's `PATH`), installing `package` with apt-get
/// first when it is missing and we are root.
pub fn ensure_program(program: &str, package: &str) -> Result<PathBuf> {
    if let Some(found) = find_program(program) {
        return Ok(found);
    }
    if !sys::is_root() || !exec::on_path("apt-get") {
        bail!(
            "{program} is not installed; install it (as root) with \
             `apt-get install -y --no-install-recommends {package}`"
        );
    }
    progress::step("vm", format!("install {package}"));
    let install = || {
        exec::exec(
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", package])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    if install().is_err() {
        apt_update()?;
        install()?;
    }
    find_program(program).with_context(|| format!("installed {package}, yet there is no {program}"))
}

fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| {
            p.metadata().is_ok_and(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
        })
}

/// A kernel image and the modules the guest is to load, in load order.
pub struct Kernel {
    pub image: PathBuf,
    /// Plain `.ko` files; empty when none were asked for.
    pub modules: Vec<PathBuf>,
}

/// The cached cloud kernel with the modules `wanted` needs (and their dependencies),
/// fetched first when the cache lacks either. Image and modules always come from
/// one package: a module loads only into the very build it was made for.
pub fn kernel(cache: &Path, wanted: &[&str]) -> Result<Kernel> {
    let dir = cache.join("kernel");
    if let Some(image) = newest_vmlinuz(&dir)? {
        let release = release_of(&image);
        match cached_modules(&dir, &release, wanted)? {
            Some(modules) => {
                progress::step("vm", format!("kernel {} (cached)", image.display()));
                return Ok(Kernel { image, modules });
            }
            // A cache from before modules were kept, or made for other modules:
            // fetch the same kernel again.
            None => match fetch_kernel(cache, &format!("linux-image-{release}"), wanted) {
                Ok(kernel) => return Ok(kernel),
                Err(err) => progress::step(
                    "vm",
                    format!(
                        "cannot fetch kernel {release} again ({err:#}); fetching the current one"
                    ),
                ),
            },
        }
    }
    let package = match apt_cache_depends(KERNEL_META)? {
        Some(p) => p,
        None => {
            apt_update()?;
            apt_cache_depends(KERNEL_META)?.with_context(|| {
                format!("`apt-cache depends {KERNEL_META}` names no linux-image package")
            })?
        }
    };
    fetch_kernel(cache, &package, wanted)
}

/// `6.1.0-48-cloud-amd64` for `…/vmlinuz-6.1.0-48-cloud-amd64`.
fn release_of(image: &Path) -> String {
    image
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default()
        .trim_start_matches("vmlinuz-")
        .to_owned()
}

/// The file listing the modules of `modules-RELEASE` in load order, one per line.
const ORDER_FILE: &str = "order";
/// The file naming what `modules-RELEASE` was collected for, so that another wish
/// collects again.
const WANTED_FILE: &str = "wanted";

/// The cached modules of `release` in load order, when they were collected for
/// exactly `wanted`; `Some(empty)` when nothing is wanted.
fn cached_modules(dir: &Path, release: &str, wanted: &[&str]) -> Result<Option<Vec<PathBuf>>> {
    if wanted.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let mods = dir.join(format!("modules-{release}"));
    let Ok(was_for) = std::fs::read_to_string(mods.join(WANTED_FILE)) else {
        return Ok(None);
    };
    if was_for.trim() != wanted.join(" ") {
        return Ok(None);
    }
    let order = std::fs::read_to_string(mods.join(ORDER_FILE))
        .with_context(|| format!("read {}", mods.join(ORDER_FILE).display()))?;
    let files: Vec<PathBuf> = order
        .lines()
        .filter(|l| !l.is_empty())
        .map(|name| mods.join(format!("{name}.ko")))
        .collect();
    Ok(files.iter().all(|f| f.is_file()).then_some(files))
}

/// Downloads `package` and keeps its vmlinuz and, when `wanted` is not empty, the
/// modules it needs in `modules-RELEASE`.
fn fetch_kernel(cache: &Path, package: &str, wanted: &[&str]) -> Result<Kernel> {
    progress::step("vm", format!("fetch kernel {package}"));
    let dir = cache.join("kernel");
    let tmp = scratch_dir(cache, "kernel")?;
    let deb = apt_download(package, &tmp)?;
    let root = tmp.join("root");
    std::fs::create_dir_all(&root)?;
    if wanted.is_empty() {
        extract(&deb, &root, "./boot")?;
    } else {
        exec::exec(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root))?;
    }
    let image = newest_vmlinuz(&root.join("boot"))?
        .with_context(|| format!("{} has no boot/vmlinuz-*", deb.display()))?;
    let release = release_of(&image);
    std::fs::create_dir_all(&dir)?;
    let mut modules = Vec::new();
    if !wanted.is_empty() {
        let tree = ["lib/modules", "usr/lib/modules"]
            .map(|d| root.join(d).join(&release))
            .into_iter()
            .find(|t| t.is_dir())
            .with_context(|| format!("{} has no lib/modules/{release}", deb.display()))?;
        let staged = tmp.join("modules");
        let order = kmod::collect(&tree, wanted, &staged)?;
        std::fs::write(staged.join(ORDER_FILE), order.join("\n") + "\n")?;
        std::fs::write(staged.join(WANTED_FILE), wanted.join(" ") + "\n")?;
        let mods = dir.join(format!("modules-{release}"));
        if mods.exists() {
            remove_dir(&mods)?;
        }
        rename(&staged, &mods)?;
        modules = order
            .iter()
            .map(|name| mods.join(format!("{name}.ko")))
            .collect();
        progress::step("vm", format!("kernel modules: {}", order.join(" ")));
    }
    let dest = dir.join(image.file_name().expect("a file name"));
    rename(&image, &dest)?;
    remove_dir(&tmp)?;
    progress::step("vm", format!("kernel {}", dest.display()));
    Ok(Kernel {
        image: dest,
        modules,
    })
}

/// The cached static busybox, fetched first when the cache has none.
pub fn busybox(cache: &Path) -> Result<PathBuf> {
    let dest = cache.join("busybox");
    if dest.is_file() {
        progress::step("vm", format!("busybox {} (cached)", dest.display()));
        return Ok(dest);
    }
    progress::step("vm", format!("fetch {BUSYBOX_PKG}"));
    let tmp = scratch_dir(cache, "busybox")?;
    let deb = apt_download(BUSYBOX_PKG, &tmp)?;
    extract(&deb, &tmp, "./bin/busybox")?;
    rename(&tmp.join("bin/busybox"), &dest)?;
    remove_dir(&tmp)?;
    Ok(dest)
}

/// The `vmlinuz-*` in `dir` with the greatest name, if any.
fn newest_vmlinuz(dir: &Path) -> Result<Option<PathBuf>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .collect();
    found.sort();
    Ok(found.pop())
}

/// The versioned package `meta` depends on (`linux-image-6.1.0-28-cloud-amd64`), or
/// `None` when apt knows no such package (its lists are empty or stale).
fn apt_cache_depends(meta: &str) -> Result<Option<String>> {
    let out = Command::new("apt-cache")
        .args(["depends", meta])
        .output()
        .context("failed to start `apt-cache` (is this Debian? else pass --kernel)")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(parse_depends_line))
}

/// `linux-image-X` from a line `  Depends: linux-image-X` of `apt-cache depends`.
fn parse_depends_line(line: &str) -> Option<String> {
    let dep = line
        .trim()
        .trim_start_matches('|')
        .strip_prefix("Depends:")?
        .trim();
    (dep.starts_with("linux-image-") && !dep.contains(['<', ' '])).then(|| dep.to_owned())
}

/// `apt-get download package` into `dir`; returns the .deb. Refreshes apt's lists
/// once and retries when the download fails (a stale list names a removed version).
pub(super) fn apt_download(package: &str, dir: &Path) -> Result<PathBuf> {
    let packages = [package.to_owned()];
    if let Err(err) = apt_get_download(&packages, dir) {
        if !sys::is_root() {
            return Err(err);
        }
        apt_update()?;
        apt_get_download(&packages, dir)?;
    }
    std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .with_context(|| {
            format!(
                "apt-get download {package} left no .deb in {}",
                dir.display()
            )
        })
}

/// `apt-get download PACKAGE…` into `dir` (names, or `name=version`).
pub(super) fn apt_get_download(packages: &[String], dir: &Path) -> Result<()> {
    exec::exec(
        Command::new("apt-get")
            .args(["download", "-q"])
            // As root, apt drops to the `_apt` user, who cannot write to our
            // cache dir; downloading as ourselves is what happens anyway.
            .args(["-o", "APT::Sandbox::User=root"])
            .args(packages)
            .current_dir(dir),
    )
}

/// `apt-get update`, at most once per xtask run, and only as root.
pub(super) fn apt_update() -> Result<()> {
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    if !sys::is_root() {
        bail!("apt's package lists need a refresh: run `apt-get update` as root");
    }
    progress::step("vm", "apt-get update");
    exec::exec(Command::new("apt-get").args(["update", "-q"]))
}

/// Unpacks `member` (a path as the package's data tarball names it, e.g. `./boot`)
/// of `deb` into `dir`, without installing anything.
fn extract(deb: &Path, dir: &Path, member: &str) -> Result<()> {
    exec::pipe(
        Command::new("dpkg-deb").arg("--fsys-tarfile").arg(deb),
        Command::new("tar").arg("-x").arg("-C").arg(dir).arg(member),
    )
}

/// A fresh directory in `cache` for one download, so that an interrupted run leaves
/// no half-written file where a cached one is looked for.
pub(super) fn scratch_dir(cache: &Path, what: &str) -> Result<PathBuf> {
    let dir = cache.join(format!("tmp-{what}-{}", std::process::id()));
    if dir.exists() {
        remove_dir(&dir)?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    Ok(dir)
}

pub(super) fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to)
        .with_context(|| format!("rename {} to {}", from.display(), to.display()))
}

pub(super) fn remove_dir(dir: &Path) -> Result<()> {
    std::fs::remove_dir_all(dir).with_context(|| format!("remove {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_versioned_kernel_package() {
        let out = "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-56-cloud-amd64\n";
        assert_eq!(
            out.lines().find_map(parse_depends_line).as_deref(),
            Some("linux-image-6.1.0-56-cloud-amd64")
        );
        assert_eq!(parse_depends_line("  Depends: <linux-image-x>"), None);
        assert_eq!(parse_depends_line("  Recommends: linux-image-x"), None);
    }
}
