//! Packing the guest's initramfs: a gzip'd `newc` cpio archive written here in Rust.
//!
//! The host has no `cpio` command, and writing the format ourselves means the archive
//! holds exactly what we list, in an order where every directory precedes its
//! contents, owned by root with fixed timestamps — no `find` ordering, no host uids.
//! The format is the kernel's: `Documentation/driver-api/early-userspace/buffer-format.rst`.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::binaries::Built;
use crate::exec;
use crate::progress;

/// The guest's init: stage 1 moves to a tmpfs, stage 2 mounts and runs the tests.
const INIT: &str = include_str!("init.sh");
/// The checks init runs before the tests: the tools disk's programs, the test user,
/// the delegated cgroup. A broken one fails the run.
const SMOKE: &str = include_str!("smoke.sh");
/// root, the unprivileged test user (see `TEST_USER` in init.sh) and nobody.
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                      isoltest:x:1000:1000:isol test user:/home/isoltest:/bin/sh\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nisoltest:x:1000:\nnogroup:x:65534:\n";
/// Subordinate ids for newuidmap/newgidmap: the test user's range and root's.
const SUBIDS: &str = "isoltest:100000:65536\nroot:165536:65536\n";
/// For the glibc programs of the tools disk: local files only.
const NSSWITCH: &str = "passwd: files\ngroup: files\nshadow: files\nhosts: files\n";
const HOSTS: &str = "127.0.0.1\tlocalhost isol-vm\n::1\tlocalhost\n";

/// The directories every guest has, in an order where parents come first.
const BASE_DIRS: [&str; 13] = [
    "bin",
    "dev",
    "etc",
    "home",
    "isol",
    "isol/modules",
    "isol/tests",
    "newroot",
    "proc",
    "root",
    "run",
    "sys",
    "tmp",
];

/// What goes into the archive besides the fixed files.
pub struct Contents<'a> {
    pub busybox: &'a Path,
    pub built: &'a Built,
    /// The arguments every test binary gets.
    pub args: &'a [String],
    /// Kernel modules to load, in order (`/isol/modules/NAME.ko`).
    pub modules: &'a [PathBuf],
    /// The packages on the tools disk; empty when no disk is attached.
    pub tools: &'a [String],
    /// A script to run instead of the test binaries.
    pub script: Option<&'a Path>,
}

/// Writes the initramfs to `out`: busybox, init, the test binaries (in `/isol/tests`),
/// the workspace's programs (at their host paths), the arguments every binary gets
/// (`/isol/args`, one per line), and what [`Contents`] adds.
pub fn write(out: &Path, contents: &Contents) -> Result<()> {
    let args = contents.args;
    if let Some(bad) = args.iter().find(|a| a.contains('\n')) {
        bail!("test arguments cannot contain a newline: {bad:?}");
    }
    progress::step("vm", format!("pack {}", out.display()));
    let dir = out.parent().expect("initramfs path has a parent");
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let tmp = out.with_extension("tmp");
    let file = File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    let mut gzip = Command::new("gzip");
    gzip.arg("-1").stdin(Stdio::piped()).stdout(file);
    let mut child = exec::spawn(&mut gzip)?;
    let stdin = child.stdin.take().expect("stdin was piped");
    let written = fill(Newc::new(BufWriter::new(stdin)), contents)
        .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
        .map(drop);
    let status = child.wait().context("wait for gzip")?;
    written.context("write the initramfs")?;
    exec::check(&gzip, status)?;
    std::fs::rename(&tmp, out).with_context(|| format!("rename to {}", out.display()))?;
    let size = std::fs::metadata(out)?.len();
    progress::step(
        "vm",
        format!("initramfs is {:.1} MiB", size as f64 / 1048576.0),
    );
    Ok(())
}

/// The fixed files of `/etc`, and what init and the smoke checks read from `/isol`.
fn fill_fixed<W: Write>(cpio: &mut Newc<W>, contents: &Contents) -> io::Result<()> {
    cpio.bytes("init", 0o755, INIT.as_bytes())?;
    cpio.bytes("isol/smoke.sh", 0o755, SMOKE.as_bytes())?;
    cpio.bytes("etc/passwd", 0o644, PASSWD.as_bytes())?;
    cpio.bytes("etc/group", 0o644, GROUP.as_bytes())?;
    cpio.bytes("etc/subuid", 0o644, SUBIDS.as_bytes())?;
    cpio.bytes("etc/subgid", 0o644, SUBIDS.as_bytes())?;
    cpio.bytes("etc/nsswitch.conf", 0o644, NSSWITCH.as_bytes())?;
    cpio.bytes("etc/hosts", 0o644, HOSTS.as_bytes())?;
    let mut names = String::new();
    for module in contents.modules {
        let name = module
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| io::Error::other(format!("{} has no name", module.display())))?;
        cpio.file(&format!("isol/modules/{name}.ko"), 0o644, module)?;
        names.push_str(&name);
        names.push('\n');
    }
    cpio.bytes("isol/modules.list", 0o644, names.as_bytes())?;
    // Comma-separated: init passes it on as one word, ISOL_TOOLS.
    cpio.bytes(
        "isol/tools.list",
        0o644,
        contents.tools.join(",").as_bytes(),
    )?;
    if let Some(script) = contents.script {
        cpio.file("isol/script", 0o755, script)?;
    }
    Ok(())
}

fn fill<W: Write>(mut cpio: Newc<W>, contents: &Contents) -> io::Result<W> {
    let (built, args) = (contents.built, contents.args);
    for dir in BASE_DIRS {
        cpio.dir(dir, if dir == "tmp" { 0o1777 } else { 0o755 })?;
    }
    // The kernel opens /dev/console for init's stdio before anything is mounted.
    cpio.char_dev("dev/console", 0o600, 5, 1)?;
    cpio.char_dev("dev/null", 0o666, 1, 3)?;
    cpio.file("bin/busybox", 0o755, contents.busybox)?;
    fill_fixed(&mut cpio, contents)?;
    let mut arg_lines = String::new();
    for a in args {
        arg_lines.push_str(a);
        arg_lines.push('\n');
    }
    cpio.bytes("isol/args", 0o644, arg_lines.as_bytes())?;
    for t in &built.tests {
        cpio.file(
            &format!("isol/tests/{}", t.name),
            0o755,
            built.source_of(&t.path),
        )?;
    }
    // The programs go under isol/programs/<host path>; init links each host path to
    // its copy once /tmp and /run are mounted (a clone under /tmp would be hidden).
    let mut dirs = BTreeSet::new();
    let mut list = String::new();
    for program in &built.programs {
        let rel = Path::new("isol/programs").join(relative(program)?);
        for dir in rel
            .ancestors()
            .skip(1)
            .filter(|d| d.starts_with("isol/programs"))
        {
            dirs.insert(dir.to_path_buf());
        }
        list.push_str(&program.to_string_lossy());
        list.push('\n');
    }
    // BTreeSet order puts every directory before what it contains.
    for dir in &dirs {
        cpio.dir(&dir.to_string_lossy(), 0o755)?;
    }
    for program in &built.programs {
        let rel = Path::new("isol/programs").join(relative(program)?);
        cpio.file(&rel.to_string_lossy(), 0o755, built.source_of(program))?;
    }
    cpio.bytes("isol/programs.list", 0o644, list.as_bytes())?;
    // Shared libraries (glibc builds only) at their own paths, where the dynamic
    // loader looks for them.
    let mut lib_dirs = BTreeSet::new();
    for lib in &built.libraries {
        for dir in relative(lib)?.ancestors().skip(1) {
            if !dir.as_os_str().is_empty() && !BASE_DIRS.iter().any(|b| Path::new(b) == dir) {
                lib_dirs.insert(dir.to_path_buf());
            }
        }
    }
    for dir in &lib_dirs {
        cpio.dir(&dir.to_string_lossy(), 0o755)?;
    }
    for lib in &built.libraries {
        // File::open follows symlinks: the archive holds the library itself.
        cpio.file(&relative(lib)?.to_string_lossy(), 0o755, lib)?;
    }
    // Written last: init refuses to run when the kernel could not unpack it all
    // (the archive outgrew the guest's memory).
    cpio.bytes("isol/complete", 0o644, b"")?;
    cpio.finish()
}

/// `path` without its leading `/`; an archive member's name.
fn relative(path: &Path) -> io::Result<&Path> {
    path.strip_prefix("/")
        .map_err(|_| io::Error::other(format!("{} is not absolute", path.display())))
}

/// A writer of the `newc` ("070701") cpio format: entries owned by root, mtime 0,
/// one inode number each.
pub struct Newc<W: Write> {
    out: W,
    offset: u64,
    next_ino: u32,
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;

impl<W: Write> Newc<W> {
    pub fn new(out: W) -> Self {
        Newc {
            out,
            offset: 0,
            next_ino: 1,
        }
    }

    pub fn dir(&mut self, path: &str, perm: u32) -> io::Result<()> {
        self.header(path, S_IFDIR | perm, 2, 0, (0, 0))
    }

    pub fn char_dev(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        self.header(path, S_IFCHR | perm, 1, 0, (major, minor))
    }

    pub fn bytes(&mut self, path: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.header(path, S_IFREG | perm, 1, size32(data.len() as u64)?, (0, 0))?;
        self.write(data)?;
        self.pad()
    }

    /// A regular file with the contents of `src`, streamed.
    pub fn file(&mut self, path: &str, perm: u32, src: &Path) -> io::Result<()> {
        let mut f = File::open(src)
            .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", src.display())))?;
        let len = f.metadata()?.len();
        self.header(path, S_IFREG | perm, 1, size32(len)?, (0, 0))?;
        let copied = io::copy(&mut (&mut f).take(len), &mut self.out)?;
        if copied != len {
            return Err(io::Error::other(format!(
                "{} shrank while packing",
                src.display()
            )));
        }
        self.offset += copied;
        self.pad()
    }

    /// Writes the trailer and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.header("TRAILER!!!", 0, 1, 0, (0, 0))?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn header(
        &mut self,
        name: &str,
        mode: u32,
        nlink: u32,
        size: u32,
        rdev: (u32, u32),
    ) -> io::Result<()> {
        let ino = if name == "TRAILER!!!" {
            0
        } else {
            self.next_ino += 1;
            self.next_ino
        };
        let fields = [
            ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            size,
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0, // check
        ];
        let mut head = String::with_capacity(110 + name.len() + 1);
        head.push_str("070701");
        for f in fields {
            head.push_str(&format!("{f:08x}"));
        }
        head.push_str(name);
        head.push('\0');
        self.write(head.as_bytes())?;
        self.pad()
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)?;
        self.offset += data.len() as u64;
        Ok(())
    }

    /// Zero bytes up to the next multiple of four.
    fn pad(&mut self) -> io::Result<()> {
        let n = (4 - (self.offset % 4) as usize) % 4;
        self.write(&[0; 3][..n])
    }
}

fn size32(len: u64) -> io::Result<u32> {
    u32::try_from(len).map_err(|_| io::Error::other("newc cannot hold files of 4 GiB or more"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_aligned_newc_entries() {
        let mut cpio = Newc::new(Vec::new());
        cpio.dir("bin", 0o755).unwrap();
        cpio.bytes("bin/hi", 0o755, b"hello").unwrap();
        let out = cpio.finish().unwrap();

        // Entry 1: a 110-byte header, "bin\0", padded to 116.
        assert_eq!(&out[..6], b"070701");
        assert_eq!(&out[14..22], b"000041ed"); // mode: directory, 0755
        assert_eq!(&out[110..114], b"bin\0");
        // Entry 2 starts at 116: header, "bin/hi\0" (ends at 233, padded to 236), then
        // "hello" padded to 244.
        let e2 = &out[116..];
        assert_eq!(&e2[14..22], b"000081ed"); // regular file, 0755
        assert_eq!(&e2[54..62], b"00000005"); // size
        assert_eq!(&e2[94..102], b"00000007"); // name size with the NUL
        assert_eq!(&out[236..241], b"hello");
        // The trailer follows at 244.
        assert_eq!(&out[244..250], b"070701");
        assert_eq!(&out[354..365], b"TRAILER!!!\0");
        assert_eq!(out.len() % 4, 0);
    }
}
