//! What the VM is made of besides our own binaries: qemu, a kernel and busybox.
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
    if exec::on_path(QEMU) {
        return Ok(());
    }
    if !sys::is_root() || !exec::on_path("apt-get") {
        bail!(
            "{QEMU} is not installed; install it (as root) with \
             `apt-get install -y --no-install-recommends {QEMU_PKG}`"
        );
    }
    progress::step("vm", format!("install {QEMU_PKG}"));
    let install = || {
        exec::exec(
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", QEMU_PKG])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    if install().is_err() {
        apt_update()?;
        install()?;
    }
    if !exec::on_path(QEMU) {
        bail!("installed {QEMU_PKG}, yet {QEMU} is not on PATH");
    }
    Ok(())
}

/// The cached cloud kernel image, fetched first when the cache has none.
pub fn kernel(cache: &Path) -> Result<PathBuf> {
    let dir = cache.join("kernel");
    if let Some(found) = newest_vmlinuz(&dir)? {
        progress::step("vm", format!("kernel {} (cached)", found.display()));
        return Ok(found);
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
    progress::step("vm", format!("fetch kernel {package}"));
    let tmp = scratch_dir(cache, "kernel")?;
    let deb = apt_download(&package, &tmp)?;
    extract(&deb, &tmp, "./boot")?;
    let image = newest_vmlinuz(&tmp.join("boot"))?
        .with_context(|| format!("{} has no boot/vmlinuz-*", deb.display()))?;
    std::fs::create_dir_all(&dir)?;
    let dest = dir.join(image.file_name().expect("a file name"));
    rename(&image, &dest)?;
    remove_dir(&tmp)?;
    progress::step("vm", format!("kernel {}", dest.display()));
    Ok(dest)
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
fn apt_download(package: &str, dir: &Path) -> Result<PathBuf> {
    let download = || {
        exec::exec(
            Command::new("apt-get")
                .args(["download", "-q", package])
                // As root, apt drops to the `_apt` user, who cannot write to our
                // cache dir; downloading as ourselves is what happens anyway.
                .args(["-o", "APT::Sandbox::User=root"])
                .current_dir(dir),
        )
    };
    if let Err(err) = download() {
        if !sys::is_root() {
            return Err(err);
        }
        apt_update()?;
        download()?;
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

/// `apt-get update`, at most once per xtask run, and only as root.
fn apt_update() -> Result<()> {
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
fn scratch_dir(cache: &Path, what: &str) -> Result<PathBuf> {
    let dir = cache.join(format!("tmp-{what}-{}", std::process::id()));
    if dir.exists() {
        remove_dir(&dir)?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    Ok(dir)
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to)
        .with_context(|| format!("rename {} to {}", from.display(), to.display()))
}

fn remove_dir(dir: &Path) -> Result<()> {
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
