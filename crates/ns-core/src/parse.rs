//! Parsers for the formats the kernel writes in cgroup and proc files.
//!
//! They take the file's text and a path (used only in errors), so they are tested
//! against fixture strings and never touch the filesystem. See the kernel's
//! Documentation/admin-guide/cgroup-v2.rst, "Interface Files / Format", and proc(5).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::units::Limit;
use crate::{Error, Result};

/// Reads a whole (small) kernel file, naming it in the error.
pub fn read(path: &Path) -> Result<String> {
    read_text(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a whole kernel file as text, 8 KiB at a time. `std::fs::read_to_string` sizes
/// its buffer by the file's size, which procfs and cgroupfs report as 0, so it starts
/// with 32-byte reads: five calls for a short `/proc/PID/stat`, and for a seq_file such
/// as `/proc/self/mountinfo` each call formats the records again from where the last
/// stopped (0.1 ms of kernel time per read of the host's mountinfo).
pub fn read_text(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 8192];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(2 * len, 0);
        }
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Writes `value` to a kernel file (never creating it), naming the file and the value in
/// the error: `write "0" to …/pids.max: …`. It opens with `O_TRUNC`, as a shell's `>`
/// does: kernfs and procfs ignore it (a write replaces the value), and a plain file
/// standing in for a cgroup file in a test then behaves the same way.
pub fn write(path: &Path, value: &str) -> Result<()> {
    write_each(path, [value])
}

/// Writes each of `values` to `path` in a `write` of its own, through one open file: for
/// the kernel files that take one entry per write (v1's `devices.allow`).
pub fn write_each<S: AsRef<str>>(path: &Path, values: impl IntoIterator<Item = S>) -> Result<()> {
    use std::io::Write;
    let failed = |value: &str, source| Error::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    };
    let mut values = values.into_iter().peekable();
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) => return Err(failed(values.peek().map_or("", |v| v.as_ref()), e)),
    };
    for v in values {
        let v = v.as_ref();
        f.write_all(v.as_bytes()).map_err(|e| failed(v, e))?;
    }
    Ok(())
}

/// A file holding one unsigned number (`memory.current`, `pids.current`).
pub fn single_u64(path: &Path, text: &str) -> Result<u64> {
    let t = text.trim();
    t.parse()
        .map_err(|_| Error::parse(path, format!("expected one number, found {t:?}")))
}

/// A file holding one number or `max` (`memory.max`, `pids.max`).
pub fn single_limit(path: &Path, text: &str) -> Result<Limit> {
    match text.trim() {
        "max" => Ok(Limit::Max),
        _ => single_u64(path, text).map(Limit::Value),
    }
}

/// A flat-keyed file: one `KEY VALUE` per line (`memory.stat`, `cpu.stat`,
/// `memory.events`, v1 `memory.oom_control`). Blank lines are skipped; a line without a
/// numeric value is an error quoting the line.
pub fn flat_keyed(path: &Path, text: &str) -> Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(key), Some(value), None) = (words.next(), words.next(), words.next()) else {
            return Err(Error::parse(
                path,
                format!("expected \"KEY VALUE\", found {line:?}"),
            ));
        };
        let value = value.parse().map_err(|_| {
            Error::parse(
                path,
                format!("value of {key:?} is not a number in {line:?}"),
            )
        })?;
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

/// One line of a nested-keyed file: `KEY SUB=VALUE SUB=VALUE…`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NestedLine {
    /// The line's key (`8:0` in `io.stat`, `some` in a PSI file).
    pub key: String,
    /// The sub-keys and their values, as written.
    pub fields: BTreeMap<String, String>,
}

impl NestedLine {
    /// A sub-key's value as a number; `None` when absent or not a number.
    pub fn u64(&self, sub: &str) -> Option<u64> {
        self.fields.get(sub)?.parse().ok()
    }

    /// A sub-key's value as a float (`avg10=0.52` in PSI files).
    pub fn f64(&self, sub: &str) -> Option<f64> {
        self.fields.get(sub)?.parse().ok()
    }

    /// A sub-key's value as a number or `max` (`io.max`).
    pub fn limit(&self, sub: &str) -> Option<Limit> {
        match self.fields.get(sub)?.as_str() {
            "max" => Some(Limit::Max),
            v => v.parse().ok().map(Limit::Value),
        }
    }
}

/// A nested-keyed file (`io.stat`, `io.max`, `memory.pressure`). A word without `=`
/// after the key is an error quoting the line.
pub fn nested_keyed(path: &Path, text: &str) -> Result<Vec<NestedLine>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(key) = words.next() else { continue };
        let mut fields = BTreeMap::new();
        for word in words {
            let (k, v) = word.split_once('=').ok_or_else(|| {
                Error::parse(
                    path,
                    format!("expected SUB=VALUE, found {word:?} in {line:?}"),
                )
            })?;
            fields.insert(k.to_string(), v.to_string());
        }
        out.push(NestedLine {
            key: key.to_string(),
            fields,
        });
    }
    Ok(out)
}

/// One line of `/proc/PID/cgroup`: `ID:CONTROLLERS:PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcCgroup {
    /// Hierarchy id; 0 is the unified (v2) hierarchy.
    pub id: u32,
    /// The controllers bound to the hierarchy (`cpu`, `cpuacct`, `name=systemd`); empty
    /// for the unified hierarchy.
    pub controllers: Vec<String>,
    /// The cgroup's path relative to the hierarchy's root, starting with `/`.
    pub path: String,
}

impl ProcCgroup {
    /// Whether this is the unified (v2) hierarchy's line (`0::/…`).
    pub fn is_unified(&self) -> bool {
        self.id == 0 && self.controllers.is_empty()
    }
}

/// Parses `/proc/PID/cgroup`. The path may contain `:`; only the first two separate.
pub fn proc_cgroup(path: &Path, text: &str) -> Result<Vec<ProcCgroup>> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(cg)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Error::parse(
                path,
                format!("expected ID:CONTROLLERS:PATH, found {line:?}"),
            ));
        };
        let id = id
            .parse()
            .map_err(|_| Error::parse(path, format!("hierarchy id {id:?} in {line:?}")))?;
        let controllers = if ctrls.is_empty() {
            Vec::new()
        } else {
            ctrls.split(',').map(str::to_string).collect()
        };
        out.push(ProcCgroup {
            id,
            controllers,
            path: cg.to_string(),
        });
    }
    Ok(out)
}

/// One line of `/proc/PID/mountinfo` (proc(5)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountInfo {
    /// Mount id.
    pub id: u32,
    /// Parent mount id.
    pub parent: u32,
    /// Device major:minor of the filesystem.
    pub dev: (u32, u32),
    /// The directory of the filesystem that forms this mount's root.
    pub root: String,
    /// Where it is mounted, relative to the process's root.
    pub mount_point: PathBuf,
    /// Per-mount options (`rw,nosuid`).
    pub options: String,
    /// Optional fields (`shared:1`, `master:2`), possibly none.
    pub optional: Vec<String>,
    /// Filesystem type (`cgroup2`, `tmpfs`).
    pub fs_type: String,
    /// Mount source.
    pub source: String,
    /// Per-superblock options (for cgroup v1, the bound controllers: `rw,cpu,cpuacct`).
    pub super_options: String,
}

impl MountInfo {
    /// Whether the mount propagates (has a `shared:N` tag).
    pub fn is_shared(&self) -> bool {
        self.optional.iter().any(|o| o.starts_with("shared:"))
    }
}

/// Parses `/proc/PID/mountinfo`, undoing the kernel's octal escapes (`\040` for space).
pub fn mountinfo(path: &Path, text: &str) -> Result<Vec<MountInfo>> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: &str| Error::parse(path, format!("{why} in {line:?}"));
        let (left, right) = line
            .split_once(" - ")
            .ok_or_else(|| bad("no \" - \" separator"))?;
        let mut l = left.split(' ');
        let mut field = |name: &str| l.next().ok_or_else(|| bad(&format!("missing {name}")));
        let id = field("mount id")?
            .parse()
            .map_err(|_| bad("bad mount id"))?;
        let parent = field("parent id")?
            .parse()
            .map_err(|_| bad("bad parent id"))?;
        let dev = field("major:minor")?;
        let root = unescape(field("root")?);
        let mount_point = PathBuf::from(unescape(field("mount point")?));
        let options = field("mount options")?.to_string();
        let optional = l.filter(|s| !s.is_empty()).map(str::to_string).collect();
        let (ma, mi) = dev.split_once(':').ok_or_else(|| bad("bad major:minor"))?;
        let dev = (
            ma.parse().map_err(|_| bad("bad major"))?,
            mi.parse().map_err(|_| bad("bad minor"))?,
        );
        let mut r = right.split(' ');
        let fs_type = r
            .next()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("missing fs type"))?
            .to_string();
        let source = unescape(r.next().unwrap_or(""));
        let super_options = r.next().unwrap_or("").to_string();
        out.push(MountInfo {
            id,
            parent,
            dev,
            root,
            mount_point,
            options,
            optional,
            fs_type,
            source,
            super_options,
        });
    }
    Ok(out)
}

/// Undoes mountinfo's `\NNN` octal escapes.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let oct = &bytes[i + 1..i + 4];
            if oct.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let oct = std::str::from_utf8(oct).unwrap_or("");
                if let Ok(v) = u8::from_str_radix(oct, 8) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_text_reads_past_its_first_buffer_and_rejects_non_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        let text: String = (0..3000).map(|i| format!("{i}\n")).collect();
        assert!(text.len() > 8192);
        std::fs::write(&big, &text).unwrap();
        assert_eq!(read_text(&big).unwrap(), text);
        let bad = dir.path().join("bad");
        std::fs::write(&bad, [0xff, 0xfe]).unwrap();
        assert_eq!(
            read_text(&bad).unwrap_err().kind(),
            std::io::ErrorKind::InvalidData
        );
        assert_eq!(
            read_text(&dir.path().join("none")).unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
    }

    fn p() -> &'static Path {
        Path::new("fixture")
    }

    #[test]
    fn write_replaces_and_never_creates() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("memory.limit_in_bytes");
        std::fs::write(&f, "9223372036854771712\n").unwrap();
        write(&f, "4096").unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "4096");
        let missing = dir.path().join("pids.max");
        let err = write(&missing, "0").unwrap_err().to_string();
        assert!(
            err.starts_with("write \"0\" to ") && err.contains("pids.max"),
            "{err}"
        );
        assert!(!missing.exists());
    }

    #[test]
    fn single_values() {
        assert_eq!(single_u64(p(), "42\n").unwrap(), 42);
        assert_eq!(single_limit(p(), "max\n").unwrap(), Limit::Max);
        assert_eq!(
            single_limit(p(), "1048576\n").unwrap(),
            Limit::Value(1 << 20)
        );
        let err = single_u64(p(), "4 2\n").unwrap_err().to_string();
        assert!(err.contains("\"4 2\""), "{err}");
        assert!(single_u64(p(), "").is_err());
        assert!(single_limit(p(), "-1").is_err());
    }

    #[test]
    fn flat_keyed_memory_stat() {
        let text = "anon 4096\nfile 8192\n\nkernel_stack 16384\n";
        let m = flat_keyed(p(), text).unwrap();
        assert_eq!(m["anon"], 4096);
        assert_eq!(m["kernel_stack"], 16384);
        assert_eq!(m.len(), 3);
        assert!(flat_keyed(p(), "anon\n")
            .unwrap_err()
            .to_string()
            .contains("\"anon\""));
        assert!(flat_keyed(p(), "anon x\n").is_err());
        assert!(flat_keyed(p(), "anon 1 2\n").is_err());
        // v1 memory.oom_control
        let oc = flat_keyed(p(), "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n").unwrap();
        assert_eq!(oc["oom_kill"], 3);
    }

    #[test]
    fn nested_keyed_io_and_psi() {
        let io = "8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n8:0 rbytes=90430464 wbytes=299008000 rios=8950 wios=1252 dbytes=50331648 dios=3021\n";
        let lines = nested_keyed(p(), io).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].key, "8:16");
        assert_eq!(lines[1].u64("rios"), Some(8950));
        assert_eq!(lines[1].u64("nope"), None);
        let psi = "some avg10=0.52 avg60=0.10 avg300=0.00 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        let lines = nested_keyed(p(), psi).unwrap();
        assert_eq!(lines[0].f64("avg10"), Some(0.52));
        assert_eq!(lines[1].u64("total"), Some(0));
        let max = nested_keyed(p(), "8:0 rbps=max wbps=1048576 riops=max wiops=max\n").unwrap();
        assert_eq!(max[0].limit("rbps"), Some(Limit::Max));
        assert_eq!(max[0].limit("wbps"), Some(Limit::Value(1 << 20)));
        assert!(nested_keyed(p(), "8:0 rbytes\n").is_err());
        assert!(nested_keyed(p(), "\n\n").unwrap().is_empty());
    }

    #[test]
    fn proc_cgroup_hybrid_and_unified() {
        let text =
            "9:name=systemd:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/a:b\n0::/user.slice/x\n";
        let cgs = proc_cgroup(p(), text).unwrap();
        assert_eq!(cgs.len(), 4);
        assert_eq!(cgs[0].controllers, vec!["name=systemd"]);
        assert_eq!(cgs[1].path, "/process_api/abc");
        assert_eq!(cgs[2].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(cgs[2].path, "/a:b");
        assert!(cgs[3].is_unified());
        assert!(!cgs[0].is_unified());
        assert!(proc_cgroup(p(), "garbage\n").is_err());
        assert!(proc_cgroup(p(), "x::/\n").is_err());
    }

    #[test]
    fn mountinfo_lines() {
        let text = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 master:3 - cgroup cgroup rw,cpu,cpuacct
32 30 0:28 /docker/abc /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
40 22 0:50 / /mnt/with\\040space rw - tmpfs none rw
";
        let m = mountinfo(p(), text).unwrap();
        assert_eq!(m.len(), 5);
        assert_eq!(m[0].dev, (254, 0));
        assert!(m[0].is_shared());
        assert!(!m[1].is_shared());
        assert_eq!(m[2].optional, vec!["shared:9", "master:3"]);
        assert_eq!(m[2].super_options, "rw,cpu,cpuacct");
        assert_eq!(m[3].root, "/docker/abc");
        assert_eq!(m[3].fs_type, "cgroup2");
        assert_eq!(m[4].mount_point, PathBuf::from("/mnt/with space"));
        assert!(mountinfo(p(), "22 1 254:0 / / rw\n").is_err());
        assert!(mountinfo(p(), "x 1 254:0 / / rw - ext4 a b\n").is_err());
    }

    #[test]
    fn unescape_edge_cases() {
        assert_eq!(unescape("a\\134b"), "a\\b");
        assert_eq!(unescape("trailing\\"), "trailing\\");
        assert_eq!(unescape("\\09x"), "\\09x");
        assert_eq!(unescape("tab\\011"), "tab\t");
    }
}
