//! The tools disk: Debian's packages of the programs tests drive inside the guest
//! (podman, containerd, crun, runc, bubblewrap, util-linux's unshare, newuidmap…), on
//! a read-only ext4 image attached as a virtio disk.
//!
//! The guest is busybox and static binaries; it has no C library, no package manager
//! and no network. Packing those programs into the initramfs would put a few hundred
//! MiB into guest memory, and the kernel has no 9p to share the host's files. So
//! xtask resolves the asked-for packages with apt's own resolver against an empty
//! package database (every dependency, down to libc6, and nothing else), downloads
//! them with `apt-get download`, unpacks them with `dpkg-deb -x` (maintainer scripts
//! never run: set-uid bits come from the package itself), merges `/bin`, `/sbin` and
//! `/lib` into `/usr` as a merged-usr system has them, and writes the tree with
//! `mkfs.ext4 -d`. Nothing is installed on the host but e2fsprogs when it is missing.
//!
//! Images are cached in `target/vm-cache/tools/` under a hash of the asked-for
//! package names and this recipe, so a later run reuses one without asking apt
//! anything (and works offline); the resolved `name=version` list sits beside it.
//! The three most recently used images are kept. Delete that directory to pick up
//! newer packages. The guest's side — where the
//! disk is mounted and how its tree is made usable — is in `init.sh`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::assets::{
    apt_get_download, apt_update, ensure_program, remove_dir, rename, scratch_dir,
};
use crate::exec;
use crate::progress;

/// `--tools default`: what the rootless, OCI-runtime and benchmark work runs in the
/// guest. podman 4.3 needs conmon and a runtime to start a container, catatonit for
/// `--init` and pods' infra containers, netavark (with aardvark-dns) as its network
/// stack, slirp4netns and fuse-overlayfs for rootless use; uidmap brings the set-uid
/// newuidmap/newgidmap.
pub const DEFAULT: [&str; 13] = [
    "aardvark-dns",
    "bubblewrap",
    "catatonit",
    "conmon",
    "containerd",
    "crun",
    "fuse-overlayfs",
    "netavark",
    "podman",
    "runc",
    "slirp4netns",
    "uidmap",
    "util-linux",
];

/// Asked for with every set: satisfies init-system-helpers' "usrmerge |
/// usr-is-merged" with the empty package, where apt would pick usrmerge and perl.
const ALWAYS: [&str; 1] = ["usr-is-merged"];

/// What nobody reads in the guest, removed before the image is written.
const TRIM: [&str; 8] = [
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/share/bash-completion",
    "usr/share/zsh",
    "usr/share/bug",
];

/// podman's settings for a guest without systemd or journald (the packaged defaults
/// are the systemd cgroup manager and the journald event logger), with netavark. Written to the
/// image's /etc/containers/containers.conf when podman is on it.
const CONTAINERS_CONF: &str = "\
# Written by `cargo xtask test-vm`: the guest has no systemd and no journald.
[containers]
log_driver = \"k8s-file\"

[engine]
cgroup_manager = \"cgroupfs\"
events_logger = \"file\"

[network]
# The podman package also ships a CNI config, which would make podman pick CNI,
# whose plugins are not installed.
network_backend = \"netavark\"
";

/// Bumped whenever the image's recipe changes, so cached images are rebuilt.
const RECIPE: &str = "tools-disk v1";

/// The packages a run asks for: `none`, `default`, or a comma-separated list of
/// package names in which `default` stands for [`DEFAULT`]. Sorted, without
/// duplicates; empty for `none`.
pub fn parse(spec: &str) -> Result<Vec<String>> {
    let mut set = BTreeSet::new();
    for word in spec
        .split([',', ' '])
        .map(str::trim)
        .filter(|w| !w.is_empty())
    {
        match word {
            "none" => {}
            "default" => set.extend(DEFAULT.iter().map(|p| p.to_string())),
            name if valid_package_name(name) => {
                set.insert(name.to_owned());
            }
            bad => bail!("--tools: {bad:?} is not a Debian package name (nor none or default)"),
        }
    }
    if spec.split([',', ' ']).any(|w| w.trim() == "none") && !set.is_empty() {
        bail!("--tools: none cannot be combined with packages ({spec:?})");
    }
    Ok(set.into_iter().collect())
}

/// Debian policy's package names: lowercase letters, digits, `+ - .`, starting
/// alphanumeric, at least two characters.
fn valid_package_name(name: &str) -> bool {
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

/// A built tools image.
pub struct Disk {
    pub image: PathBuf,
    /// The asked-for package names (not their dependencies), for the guest's
    /// `ISOL_TOOLS`.
    pub packages: Vec<String>,
}

/// The cached image holding `packages` and their dependencies, built first when the
/// cache has none.
pub fn ensure(cache: &Path, packages: &[String]) -> Result<Disk> {
    let dir = cache.join("tools");
    let key = cache_key(packages);
    let image = dir.join(format!("tools-{key:016x}.ext4"));
    let manifest = image.with_extension("packages");
    let disk = Disk {
        image: image.clone(),
        packages: packages.to_vec(),
    };
    if image.is_file() {
        progress::step("vm", format!("tools disk {} (cached)", image.display()));
        // Marks it recently used, for prune().
        std::fs::File::options()
            .write(true)
            .open(&image)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()))
            .with_context(|| format!("touch {}", image.display()))?;
        return Ok(disk);
    }
    let start = Instant::now();
    let mkfs = ensure_program("mkfs.ext4", "e2fsprogs")?;
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let (resolved, debs) = fetch(&cache.join("debs"), packages)?;
    let tmp = scratch_dir(&dir, "build")?;
    let root = tmp.join("root");
    progress::step("vm", format!("unpack {} packages", debs.len()));
    for deb in &debs {
        exec::exec(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&root))?;
    }
    merge_usr(&root)?;
    for t in TRIM {
        let p = root.join(t);
        if p.exists() {
            remove_dir(&p)?;
        }
    }
    if resolved.iter().any(|r| r.starts_with("podman=")) {
        let conf = root.join("etc/containers/containers.conf");
        std::fs::create_dir_all(conf.parent().expect("a parent"))?;
        std::fs::write(&conf, CONTAINERS_CONF)
            .with_context(|| format!("write {}", conf.display()))?;
    }
    let staged = tmp.join("tools.ext4");
    make_ext4(&mkfs, &root, &staged)?;
    std::fs::write(&manifest, resolved.join("\n") + "\n")
        .with_context(|| format!("write {}", manifest.display()))?;
    rename(&staged, &image)?;
    remove_dir(&tmp)?;
    prune(&dir)?;
    progress::step(
        "vm",
        format!(
            "tools disk {} ({} packages, {:.0} MiB used) built in {:.1}s",
            image.display(),
            resolved.len(),
            used_bytes(&image)? as f64 / 1048576.0,
            start.elapsed().as_secs_f64()
        ),
    );
    Ok(disk)
}

/// How many images the cache keeps: a few sets in use side by side.
const KEEP: usize = 3;

/// Removes all but the [`KEEP`] most recently used images (and their package
/// lists): each is some 200 MiB, and a changed recipe leaves its old one unused.
fn prune(dir: &Path) -> Result<()> {
    let mut images = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "ext4") {
            let used = path.metadata()?.modified()?;
            images.push((used, path));
        }
    }
    images.sort();
    let stale = images.len().saturating_sub(KEEP);
    for (_, path) in images.into_iter().take(stale) {
        progress::step("vm", format!("remove unused {}", path.display()));
        std::fs::remove_file(&path).with_context(|| format!("remove {}", path.display()))?;
        let _ = std::fs::remove_file(path.with_extension("packages"));
    }
    Ok(())
}

/// FNV-1a over the recipe and the package names: stable across Rust releases, unlike
/// std's hasher.
fn cache_key(packages: &[String]) -> u64 {
    let mut text = format!("{RECIPE}\n{CONTAINERS_CONF}\n");
    for p in packages {
        let _ = writeln!(text, "{p}");
    }
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Resolves `packages` and downloads what the cache lacks into `debs`; returns the
/// `name=version` list and the .deb files. A failed download (apt's lists name a
/// version the archive dropped) refreshes the lists and resolves again, once.
fn fetch(debs: &Path, packages: &[String]) -> Result<(Vec<String>, Vec<PathBuf>)> {
    std::fs::create_dir_all(debs).with_context(|| format!("create {}", debs.display()))?;
    let mut retried = false;
    loop {
        let resolved = resolve(packages)?;
        let mut files = Vec::new();
        let mut missing = Vec::new();
        for r in &resolved {
            match cached_deb(debs, r)? {
                Some(f) => files.push(f),
                None => missing.push(r.clone()),
            }
        }
        if missing.is_empty() {
            return Ok((resolved, files));
        }
        progress::step(
            "vm",
            format!("download {} of {} packages", missing.len(), resolved.len()),
        );
        match apt_get_download(&missing, debs) {
            Ok(()) => {}
            Err(err) if !retried => {
                progress::step("vm", format!("{err:#}; refreshing apt's lists"));
                apt_update()?;
                retried = true;
                continue;
            }
            Err(err) => return Err(err),
        }
        for r in &missing {
            files.push(cached_deb(debs, r)?.with_context(|| {
                format!(
                    "apt-get download {r} left no matching .deb in {}",
                    debs.display()
                )
            })?);
        }
        return Ok((resolved, files));
    }
}

/// Every package `packages` needs, as `name=version`: what apt would install on a
/// system that has nothing installed (its package database is /dev/null), without
/// recommends. Refreshes apt's lists once when it knows none of them.
fn resolve(packages: &[String]) -> Result<Vec<String>> {
    let run = || -> Result<Vec<String>> {
        let mut cmd = Command::new("apt-get");
        cmd.args(["--simulate", "--quiet", "--no-install-recommends"])
            .args([
                "-o",
                "Dir::State::status=/dev/null",
                "-o",
                "Debug::NoLocking=1",
            ])
            .arg("install")
            .args(ALWAYS)
            .args(packages);
        let out = exec::output(&mut cmd)?;
        let resolved = parse_simulation(&out);
        if resolved.is_empty() {
            bail!("`{}` would install nothing", exec::display(&cmd));
        }
        Ok(resolved)
    };
    progress::step("vm", format!("resolve {}", packages.join(" ")));
    run().or_else(|err| {
        progress::step("vm", format!("{err:#}; refreshing apt's lists"));
        apt_update()?;
        run()
    })
}

/// `name=version` of every `Inst name (version …)` line of `apt-get --simulate`.
fn parse_simulation(out: &str) -> Vec<String> {
    let mut found: Vec<String> = out
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("Inst ")?;
            let (name, rest) = rest.split_once(' ')?;
            let version = rest.strip_prefix('(')?.split_whitespace().next()?;
            Some(format!("{name}={version}"))
        })
        .collect();
    found.sort();
    found
}

/// The .deb of `name=version` in `dir`: apt names it `NAME_VERSION_ARCH.deb` with
/// the epoch's colon written `%3a`.
fn cached_deb(dir: &Path, resolved: &str) -> Result<Option<PathBuf>> {
    let (name, version) = resolved.split_once('=').expect("name=version");
    // With foreign architectures enabled apt may say `libc6:amd64`; the file has
    // the bare name.
    let name = name.split(':').next().unwrap_or(name);
    let prefix = format!("{name}_{}_", version.replace(':', "%3a"));
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let path = entry?.path();
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
        if file.is_some_and(|f| f.starts_with(&prefix) && f.ends_with(".deb")) {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// Moves `/bin`, `/sbin`, `/lib*` into `/usr` and leaves symlinks in their place, as
/// on a merged-usr system (Debian 12 packages still ship files in both). Where both
/// halves have a file, `/usr`'s is kept.
fn merge_usr(root: &Path) -> Result<()> {
    for top in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
        let from = root.join(top);
        let Ok(meta) = from.symlink_metadata() else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        let to = root.join("usr").join(top);
        if to.exists() {
            move_into(&from, &to)?;
            remove_dir(&from)?;
        } else {
            std::fs::create_dir_all(root.join("usr"))?;
            rename(&from, &to)?;
        }
        std::os::unix::fs::symlink(format!("usr/{top}"), &from)
            .with_context(|| format!("symlink {}", from.display()))?;
    }
    Ok(())
}

/// Moves everything in `from` into the existing directory `to`, merging
/// directories that exist in both.
fn move_into(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("read {}", from.display()))? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        let is_dir = entry.file_type()?.is_dir();
        match dest.symlink_metadata() {
            Ok(m) if is_dir && m.is_dir() => move_into(&entry.path(), &dest)?,
            Ok(_) => {} // /usr's copy wins
            Err(_) => rename(&entry.path(), &dest)?,
        }
    }
    Ok(())
}

/// Writes the tree `root` into a fresh ext4 image `out` sized to fit it: 4 KiB
/// blocks, no journal and no reserved blocks (the guest mounts it read-only), owners
/// and modes (set-uid bits included) as in the tree.
fn make_ext4(mkfs: &Path, root: &Path, out: &Path) -> Result<()> {
    let (bytes, inodes) = tree_usage(root)?;
    // ext4's own metadata (inode tables, bitmaps, directories' blocks) on top.
    let size = (bytes + bytes / 8 + inodes * 256 + (32 << 20)).div_ceil(1 << 20) << 20;
    let file = std::fs::File::create(out).with_context(|| format!("create {}", out.display()))?;
    file.set_len(size)?;
    drop(file);
    progress::step(
        "vm",
        format!(
            "mkfs.ext4 {} ({} MiB, {inodes} files)",
            out.display(),
            size >> 20
        ),
    );
    exec::exec(
        Command::new(mkfs)
            .args(["-q", "-F", "-b", "4096", "-m", "0", "-O", "^has_journal"])
            .args(["-N", &(inodes + inodes / 8 + 256).to_string()])
            .args(["-E", "root_owner=0:0", "-L", "isol-tools", "-d"])
            .arg(root)
            .arg(out),
    )
}

/// The bytes the files under `root` occupy (whole 4 KiB blocks) and how many entries
/// it has.
fn tree_usage(root: &Path) -> Result<(u64, u64)> {
    let meta = root
        .symlink_metadata()
        .with_context(|| format!("stat {}", root.display()))?;
    let mut bytes = meta.len().div_ceil(4096) * 4096;
    let mut count = 1;
    if meta.is_dir() {
        for entry in std::fs::read_dir(root).with_context(|| format!("read {}", root.display()))? {
            let (b, c) = tree_usage(&entry?.path())?;
            bytes += b;
            count += c;
        }
    }
    Ok((bytes, count))
}

/// The bytes `path` occupies on the host's disk (it is sparse).
fn used_bytes(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("stat {}", path.display()))?
        .blocks()
        * 512)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tool_sets() {
        assert!(parse("none").unwrap().is_empty());
        let default = parse("default").unwrap();
        assert_eq!(default.len(), DEFAULT.len());
        let more = parse("default,strace, podman").unwrap();
        assert_eq!(more.len(), DEFAULT.len() + 1);
        assert!(more.contains(&"strace".to_owned()));
        assert!(parse("podman;rm -rf").is_err());
        assert!(parse("none,podman").is_err());
        assert_ne!(cache_key(&default), cache_key(&more));
    }

    #[test]
    fn reads_apt_simulation() {
        let out = "NOTE: This is only a simulation!\n\
                   Inst libc6 (2.36-9+deb12u14 Debian-Security:12/oldstable-security [amd64])\n\
                   Inst uidmap (1:4.13+dfsg1-1+deb12u2 Debian:12.15/oldstable [amd64])\n\
                   Conf libc6 (2.36-9+deb12u14 Debian-Security:12/oldstable-security [amd64])\n";
        assert_eq!(
            parse_simulation(out),
            ["libc6=2.36-9+deb12u14", "uidmap=1:4.13+dfsg1-1+deb12u2"]
        );
    }

    #[test]
    fn merges_bin_and_lib_into_usr() {
        let root = std::env::temp_dir().join(format!("xtask-merge-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in [
            "bin",
            "lib/x86_64-linux-gnu",
            "usr/lib/x86_64-linux-gnu",
            "sbin",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("bin/mount"), "a").unwrap();
        std::fs::write(root.join("lib/x86_64-linux-gnu/libmount.so.1"), "b").unwrap();
        std::fs::write(root.join("usr/lib/x86_64-linux-gnu/libc.so.6"), "c").unwrap();
        merge_usr(&root).unwrap();
        assert_eq!(
            std::fs::read_link(root.join("bin")).unwrap(),
            Path::new("usr/bin")
        );
        assert_eq!(
            std::fs::read_link(root.join("lib")).unwrap(),
            Path::new("usr/lib")
        );
        assert_eq!(
            std::fs::read_link(root.join("sbin")).unwrap(),
            Path::new("usr/sbin")
        );
        assert!(root.join("usr/bin/mount").is_file());
        assert!(root
            .join("usr/lib/x86_64-linux-gnu/libmount.so.1")
            .is_file());
        assert!(root.join("usr/lib/x86_64-linux-gnu/libc.so.6").is_file());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
