//! The kernel modules the guest loads before it can read the tools disk.
//!
//! Debian's cloud kernel builds ext4 in but has virtio-pci and virtio-blk (and
//! overlayfs, fuse, tun, veth) as modules, and its package ships no `modules.dep`
//! (depmod runs at install time). The host may have no kmod either. So xtask reads
//! each module's dependencies from its own `.modinfo` ELF section, copies the closure
//! of what the guest wants out of the kernel package, and writes the order to load
//! it in; the guest runs busybox's `insmod` on that list. Debian builds these modules
//! uncompressed (`CONFIG_MODULE_COMPRESS_NONE`); a compressed one is unpacked here,
//! since busybox's insmod takes only plain `.ko` files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::exec;

/// What the guest loads when it has the tools disk: the PCI transport and the block
/// driver for the disk; overlayfs and fuse for container storage
/// (podman's overlay driver, fuse-overlayfs); tun for slirp4netns and veth for
/// boxes' network pairs.
pub const WANTED: [&str; 6] = ["virtio_pci", "virtio_blk", "overlay", "fuse", "tun", "veth"];

/// A module's name as the kernel and `depends=` spell it (dashes become underscores).
fn canonical(name: &str) -> String {
    name.replace('-', "_")
}

/// Copies the modules `wanted` needs, with their dependencies, from the unpacked
/// module tree `tree` (`…/lib/modules/RELEASE`) into `dest` as plain `NAME.ko` files,
/// and returns their names in an order where each follows what it depends on.
/// Modules the kernel has built in (`modules.builtin`) are skipped.
pub fn collect(tree: &Path, wanted: &[&str], dest: &Path) -> Result<Vec<String>> {
    let builtin = builtin_names(tree)?;
    let mut files = BTreeMap::new();
    index(&tree.join("kernel"), &mut files)?;
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for name in wanted {
        visit(&canonical(name), &files, &builtin, &mut seen, &mut order, 0)?;
    }
    std::fs::create_dir_all(dest).with_context(|| format!("create {}", dest.display()))?;
    for name in &order {
        let src = &files[name];
        let out = dest.join(format!("{name}.ko"));
        plain_copy(src, &out)?;
    }
    Ok(order)
}

/// Depth-first: a module's dependencies go into `order` before it.
fn visit(
    name: &str,
    files: &BTreeMap<String, PathBuf>,
    builtin: &BTreeSet<String>,
    seen: &mut BTreeSet<String>,
    order: &mut Vec<String>,
    depth: usize,
) -> Result<()> {
    if builtin.contains(name) || !seen.insert(name.to_owned()) {
        return Ok(());
    }
    if depth > 32 {
        bail!("module dependencies nest deeper than 32 at {name} (a cycle?)");
    }
    let Some(path) = files.get(name) else {
        bail!("the kernel package has no module {name} and does not build it in");
    };
    let bytes = read_plain(path)?;
    for dep in depends(&bytes).with_context(|| format!("read {}", path.display()))? {
        visit(&dep, files, builtin, seen, order, depth + 1)?;
    }
    order.push(name.to_owned());
    Ok(())
}

/// Every `*.ko*` under `dir`, by canonical module name.
fn index(dir: &Path, files: &mut BTreeMap<String, PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            index(&path, files)?;
        } else if let Some(name) = module_name(&path) {
            files.insert(name, path);
        }
    }
    Ok(())
}

/// `virtio_blk` for `…/virtio_blk.ko`, `.ko.xz`, `.ko.zst` or `.ko.gz`.
fn module_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let stem = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))?;
    Some(canonical(stem))
}

/// The names in `modules.builtin` (lines like `kernel/fs/ext4/ext4.ko`).
fn builtin_names(tree: &Path) -> Result<BTreeSet<String>> {
    let file = tree.join("modules.builtin");
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("read {}", file.display())),
    };
    Ok(text
        .lines()
        .filter_map(|l| module_name(Path::new(l.trim())))
        .collect())
}

/// The module's bytes, decompressed when it is `.xz`, `.zst` or `.gz`.
fn read_plain(path: &Path) -> Result<Vec<u8>> {
    let tool = match path.extension().and_then(|e| e.to_str()) {
        Some("xz") => "xz",
        Some("zst") => "zstd",
        Some("gz") => "gzip",
        _ => return std::fs::read(path).with_context(|| format!("read {}", path.display())),
    };
    let mut cmd = Command::new(tool);
    cmd.args(["-d", "-c"]).arg(path);
    let out = cmd
        .output()
        .with_context(|| format!("failed to start `{}`", exec::display(&cmd)))?;
    exec::check(&cmd, out.status)?;
    Ok(out.stdout)
}

fn plain_copy(src: &Path, dest: &Path) -> Result<()> {
    let bytes = read_plain(src)?;
    std::fs::write(dest, bytes).with_context(|| format!("write {}", dest.display()))
}

/// The `depends=` list of a module: the comma-separated names in its `.modinfo`
/// section.
fn depends(elf: &[u8]) -> Result<Vec<String>> {
    let info = section(elf, ".modinfo")?.context("no .modinfo section")?;
    let mut deps = Vec::new();
    for list in info
        .split(|&b| b == 0)
        .filter_map(|entry| entry.strip_prefix(b"depends="))
    {
        let list = String::from_utf8_lossy(list);
        deps.extend(list.split(',').filter(|d| !d.is_empty()).map(canonical));
    }
    Ok(deps)
}

/// The contents of the section `name` of a little-endian ELF64 file, `None` when it
/// has none.
fn section<'a>(elf: &'a [u8], name: &str) -> Result<Option<&'a [u8]>> {
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 || elf[5] != 1 {
        bail!("not a little-endian ELF64 file");
    }
    let u16_at = |o: usize| -> Result<usize> {
        let b = elf.get(o..o + 2).context("truncated ELF")?;
        Ok(u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u32_at = |o: usize| -> Result<usize> {
        let b = elf.get(o..o + 4).context("truncated ELF")?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
    };
    let u64_at = |o: usize| -> Result<usize> {
        let b = elf.get(o..o + 8).context("truncated ELF")?;
        usize::try_from(u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .context("ELF offset overflows")
    };
    let shoff = u64_at(0x28)?;
    let shentsize = u16_at(0x3a)?;
    let shnum = u16_at(0x3c)?;
    let shstrndx = u16_at(0x3e)?;
    // (name offset, file offset, size) of section `i`.
    let header = |i: usize| -> Result<(usize, usize, usize)> {
        let h = shoff + i * shentsize;
        Ok((u32_at(h)?, u64_at(h + 24)?, u64_at(h + 32)?))
    };
    let bytes = |off: usize, size: usize| elf.get(off..off + size).context("truncated ELF");
    let (_, str_off, str_size) = header(shstrndx)?;
    let names = bytes(str_off, str_size)?;
    for i in 0..shnum {
        let (name_off, off, size) = header(i)?;
        let found = names
            .get(name_off..)
            .and_then(|rest| rest.split(|&b| b == 0).next());
        if found == Some(name.as_bytes()) {
            return Ok(Some(bytes(off, size)?));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 with a section-name table and one `.modinfo` section.
    fn elf_with_modinfo(modinfo: &[u8]) -> Vec<u8> {
        let names = b"\0.shstrtab\0.modinfo\0";
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let names_off = elf.len();
        elf.extend_from_slice(names);
        let info_off = elf.len();
        elf.extend_from_slice(modinfo);
        let shoff = elf.len();
        elf[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        elf[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        let mut sh = |name: u32, off: usize, size: usize| {
            let mut h = [0u8; 64];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[24..32].copy_from_slice(&(off as u64).to_le_bytes());
            h[32..40].copy_from_slice(&(size as u64).to_le_bytes());
            elf.extend_from_slice(&h);
        };
        sh(0, 0, 0);
        sh(1, names_off, names.len());
        sh(11, info_off, modinfo.len());
        elf
    }

    #[test]
    fn reads_depends_from_modinfo() {
        let elf = elf_with_modinfo(b"license=GPL\0depends=virtio,virtio-ring\0name=virtio_blk\0");
        assert_eq!(depends(&elf).unwrap(), ["virtio", "virtio_ring"]);
        let none = elf_with_modinfo(b"depends=\0name=overlay\0");
        assert!(depends(&none).unwrap().is_empty());
        assert!(depends(b"not an elf at all, but long enough to have a header.......").is_err());
    }

    #[test]
    fn orders_dependencies_first_and_skips_builtins() {
        let tree = std::env::temp_dir().join(format!("xtask-kmod-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tree);
        let dir = tree.join("kernel/drivers");
        std::fs::create_dir_all(&dir).unwrap();
        let module = |name: &str, deps: &str| {
            let info = format!("depends={deps}\0name={name}\0");
            std::fs::write(
                dir.join(format!("{name}.ko")),
                elf_with_modinfo(info.as_bytes()),
            )
            .unwrap();
        };
        module("virtio", "");
        module("virtio_ring", "virtio");
        module("virtio_blk", "virtio,virtio_ring,crc");
        module("unused", "");
        std::fs::write(tree.join("modules.builtin"), "kernel/lib/crc.ko\n").unwrap();
        let out = tree.join("out");
        let order = collect(&tree, &["virtio-blk"], &out).unwrap();
        assert_eq!(order, ["virtio", "virtio_ring", "virtio_blk"]);
        assert!(out.join("virtio_ring.ko").is_file());
        assert!(!out.join("unused.ko").exists());
        let err = collect(&tree, &["missing"], &out).unwrap_err();
        assert!(err.to_string().contains("no module missing"), "{err}");
        std::fs::remove_dir_all(&tree).unwrap();
    }
}
