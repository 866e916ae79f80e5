//! The state directory: what isol knows about the boxes and pods it made, shared by every
//! isol process on the host.
//!
//! Records are JSON files under `<root>/<kind>/<name>.json` (`boxes/`, `pods/`: the
//! [`RecordKind`] of a [`Record`] type), written atomically (a temp
//! file in the same directory, then swapped in) while holding an exclusive `flock` on
//! `<root>/.lock`, so a reader never sees a half-written record and two writers never
//! interleave. Records are not fsync'd: they describe live kernel objects (processes,
//! cgroups, mounts) that a power loss or reboot ends too, and the swap is atomic against
//! any crash of isol itself, since the page cache survives it. (An fsync cost about
//! 0.5 ms per write on the ext4 `/run` of the development host.) An existing record is
//! replaced by exchanging the two names (`renameat2(RENAME_EXCHANGE)`) and unlinking the
//! old one, not by renaming over it: ext4 answers a rename over a file by writing the new
//! file's data out at once (`auto_da_alloc`), and the record's removal at the end of the
//! box then waited for that write (0.1–0.2 ms a box on the development host).
//!
//! Each record may own a directory `<root>/<kind>/<name>.d/` for files that must live as
//! long as it (bind-mounted namespace files, sockets).

mod sys;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Error, Result};

/// The kinds of record the state directory holds, each in a directory of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// Boxes (`boxes/`): [`crate::boxes::BoxRecord`].
    Box,
    /// Pods (`pods/`): [`crate::pod::PodRecord`].
    Pod,
}

impl RecordKind {
    /// Every kind.
    pub const ALL: [RecordKind; 2] = [RecordKind::Box, RecordKind::Pod];

    /// The kind's directory beneath the state directory's root.
    pub const fn dir_name(self) -> &'static str {
        match self {
            RecordKind::Box => "boxes",
            RecordKind::Pod => "pods",
        }
    }
}

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.dir_name())
    }
}

/// A type stored in the state directory: its kind says where, its name which file.
pub trait Record: Serialize + DeserializeOwned {
    /// Where records of this type live.
    const KIND: RecordKind;

    /// The record's name (its file is `<kind>/<name>.json`).
    fn name(&self) -> &str;
}

/// The environment variable that overrides the default state directory.
pub const STATE_DIR_ENV: &str = "ISOL_STATE_DIR";

/// An open state directory.
#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
}

/// An exclusive lock on the state directory, released on drop.
#[derive(Debug)]
pub struct StateLock {
    _flock: nix::fcntl::Flock<File>,
}

impl StateDir {
    /// `$ISOL_STATE_DIR`; else `/run/isol` for root; else `$XDG_RUNTIME_DIR/isol`; else
    /// `/tmp/isol-<uid>`.
    pub fn default_path() -> PathBuf {
        if let Some(dir) = std::env::var_os(STATE_DIR_ENV).filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        let uid = nix::unistd::geteuid();
        if uid.is_root() {
            return PathBuf::from("/run/isol");
        }
        match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
            Some(dir) => PathBuf::from(dir).join("isol"),
            None => PathBuf::from(format!("/tmp/isol-{uid}")),
        }
    }

    /// Opens (creating, mode 0700) the state directory at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<StateDir> {
        let root = root.into();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .map_err(|e| match e.raw_os_error() {
                // A file where the directory (or one above it) should be.
                Some(libc::EEXIST) | Some(libc::ENOTDIR) => Error::invalid(
                    "state directory",
                    root.display().to_string(),
                    format!(
                        "{} is, or lies beneath, a file that is not a directory: give a directory (or one isol may create)",
                        root.display()
                    ),
                ),
                _ => Error::io("create state directory", &root, e),
            })?;
        Ok(StateDir { root })
    }

    /// The directory's path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the exclusive lock; blocks until other isol processes release it. Hold it
    /// across a read-modify-write of records (e.g. checking a name is free, then claiming it).
    pub fn lock(&self) -> Result<StateLock> {
        let path = self.root.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        let flock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, errno)| Error::io("flock", &path, errno.into()))?;
        Ok(StateLock { _flock: flock })
    }

    /// The directory holding records of `kind` (`boxes`, `pods`).
    pub fn kind_dir(&self, kind: RecordKind) -> PathBuf {
        self.root.join(kind.dir_name())
    }

    /// The record file of `name`.
    pub fn record_path(&self, kind: RecordKind, name: &str) -> PathBuf {
        self.kind_dir(kind).join(format!("{name}.json"))
    }

    /// The directory a record may own for its files (created on demand by the caller
    /// through [`StateDir::create_entry_dir`]).
    pub fn entry_dir(&self, kind: RecordKind, name: &str) -> PathBuf {
        self.kind_dir(kind).join(format!("{name}.d"))
    }

    /// Creates [`StateDir::entry_dir`] (mode 0700) and returns it.
    pub fn create_entry_dir(&self, kind: RecordKind, name: &str) -> Result<PathBuf> {
        let dir = self.entry_dir(kind, name);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::io("create", &dir, e))?;
        Ok(dir)
    }

    /// Writes `value` as the record `<kind>/<name>`, atomically.
    pub fn write<R: Record>(&self, value: &R) -> Result<()> {
        let (kind, name) = (R::KIND, value.name());
        check_name(name)?;
        let dir = self.kind_dir(kind);
        let path = self.record_path(kind, name);
        let tmp = dir.join(format!(".{name}.json.{}.tmp", std::process::id()));
        let json =
            serde_json::to_vec_pretty(value).map_err(|e| Error::parse(&path, e.to_string()))?;
        let result = (|| {
            let open = || {
                OpenOptions::new()
                    .create(true)
                    .truncate(true)
                    .write(true)
                    .mode(0o600)
                    .open(&tmp)
            };
            // The kind's directory is made when the first record needs it, not checked
            // at every write.
            let mut f = match open() {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(&dir)?;
                    open()?
                }
                r => r?,
            };
            f.write_all(&json)?;
            f.write_all(b"\n")?;
            match sys::rename_exchange(&tmp, &path) {
                // `tmp` now holds the old record. Should the unlink fail, it is a leftover
                // of a live writer, which `remove_leftovers` takes once this process ends.
                Ok(()) => {
                    let _ = fs::remove_file(&tmp);
                    Ok(())
                }
                // No record yet, or a file system that cannot exchange names.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EINVAL)) => {
                    fs::rename(&tmp, &path)
                }
                Err(e) => Err(e),
            }
        })();
        result.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io("write", &path, e)
        })
    }

    /// Reads the record `<kind>/<name>`; `None` when there is none.
    pub fn read<R: Record>(&self, name: &str) -> Result<Option<R>> {
        check_name(name)?;
        let path = self.record_path(R::KIND, name);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::Read { path, source }),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::parse(&path, e.to_string()))
    }

    /// The names of every record of `kind`, sorted.
    pub fn list(&self, kind: RecordKind) -> Result<Vec<String>> {
        let dir = self.kind_dir(kind);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(Error::Read { path: dir, source }),
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".json")
                    .map(str::to_string)
            })
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Removes what a writer that died mid-way left of `kind`: temp files of writes that
    /// never reached their rename (`.NAME.json.PID.tmp` whose PID is gone), and entry
    /// directories whose record is gone (removal died between the two) unless something
    /// is still mounted beneath them. Hold the lock while calling it, so that no write is
    /// in flight. Returns what it removed.
    pub fn remove_leftovers(&self, kind: RecordKind) -> Result<Vec<PathBuf>> {
        let dir = self.kind_dir(kind);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(Error::Read { path: dir, source }),
        };
        let mounts = crate::parse::read_text(Path::new("/proc/self/mountinfo")).unwrap_or_default();
        let mut removed = Vec::new();
        for e in entries.flatten() {
            let file = e.file_name();
            let Some(file) = file.to_str() else { continue };
            let path = e.path();
            if let Some(rest) = file.strip_prefix('.').and_then(|f| f.strip_suffix(".tmp")) {
                let writer = rest
                    .rsplit_once('.')
                    .and_then(|(_, pid)| pid.parse::<u32>().ok());
                let gone = writer.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
                if gone {
                    fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
                    removed.push(path);
                }
            } else if let Some(name) = file.strip_suffix(".d") {
                let orphan = !self.record_path(kind, name).exists();
                let mounted = mounts.lines().any(|l| {
                    l.split_whitespace()
                        .nth(4)
                        .is_some_and(|m| Path::new(m).starts_with(&path))
                });
                if orphan && !mounted {
                    fs::remove_dir_all(&path).map_err(|e| Error::io("remove", &path, e))?;
                    removed.push(path);
                }
            }
        }
        Ok(removed)
    }

    /// Removes the record `<kind>/<name>` and its entry directory (which must hold no
    /// mounts any more: the caller releases them first). Missing is not an error.
    pub fn remove(&self, kind: RecordKind, name: &str) -> Result<()> {
        check_name(name)?;
        let path = self.record_path(kind, name);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &path, e)),
        }
        let dir = self.entry_dir(kind, name);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", &dir, e)),
        }
    }
}

/// Checks a box or pod name: 1–64 characters of letters, digits, `-`, `_` and `.`,
/// starting with a letter or digit. Names become file and cgroup names.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "name",
            name,
            format!("{name:?} is not a valid name (1-64 letters, digits, - _ or ., starting with a letter or digit)"),
        ))
    }
}

/// A fresh name for an unnamed box: `isol-` and 8 hex digits from the pid, the time
/// and a counter (unique on this host in practice; callers still check under the lock).
pub fn generate_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ u64::from(COUNTER.fetch_add(1, Ordering::Relaxed)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // splitmix64 finaliser, so that consecutive names look unrelated.
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    format!("isol-{:08x}", x as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Rec {
        name: String,
        pid: u32,
        note: String,
    }

    impl Record for Rec {
        const KIND: RecordKind = RecordKind::Box;
        fn name(&self) -> &str {
            &self.name
        }
    }

    fn rec(name: &str, pid: u32, note: &str) -> Rec {
        Rec {
            name: name.into(),
            pid,
            note: note.into(),
        }
    }

    const BOX: RecordKind = RecordKind::Box;

    #[test]
    fn write_read_list_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let st = StateDir::open(tmp.path().join("state")).unwrap();
        let _lock = st.lock().unwrap();
        assert_eq!(st.read::<Rec>("a").unwrap(), None);
        st.write(&rec("b", 2, "x")).unwrap();
        st.write(&rec("a", 1, "y")).unwrap();
        st.write(&rec("a", 3, "z")).unwrap();
        assert_eq!(st.read::<Rec>("a").unwrap().unwrap().pid, 3);
        assert_eq!(st.list(BOX).unwrap(), vec!["a", "b"]);
        assert!(st.list(RecordKind::Pod).unwrap().is_empty());
        assert!(st
            .record_path(BOX, "a")
            .starts_with(tmp.path().join("state/boxes")));
        let d = st.create_entry_dir(BOX, "a").unwrap();
        std::fs::write(d.join("net"), "").unwrap();
        st.remove(BOX, "a").unwrap();
        assert!(!d.exists());
        assert_eq!(st.list(BOX).unwrap(), vec!["b"]);
        st.remove(BOX, "a").unwrap();
        // No temp files are left behind.
        let leftovers: Vec<_> = std::fs::read_dir(st.kind_dir(BOX))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[test]
    fn leftovers_of_dead_writers_are_removed_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let st = StateDir::open(tmp.path()).unwrap();
        let _lock = st.lock().unwrap();
        let kept = rec("kept", 1, "x");
        st.write(&kept).unwrap();
        let kept_dir = st.create_entry_dir(BOX, "kept").unwrap();
        let orphan_dir = st.entry_dir(BOX, "gone");
        std::fs::create_dir_all(&orphan_dir).unwrap();
        std::fs::write(orphan_dir.join("output"), "log").unwrap();
        let dir = st.kind_dir(BOX);
        // pid_max is at most 2^22, so this writer cannot exist; ours does.
        let dead = dir.join(".half.json.4194305.tmp");
        let live = dir.join(format!(".busy.json.{}.tmp", std::process::id()));
        std::fs::write(&dead, "{").unwrap();
        std::fs::write(&live, "{").unwrap();
        let mut removed = st.remove_leftovers(BOX).unwrap();
        removed.sort();
        let mut want = vec![dead.clone(), orphan_dir.clone()];
        want.sort();
        assert_eq!(removed, want);
        assert!(live.exists() && kept_dir.exists());
        assert_eq!(st.read::<Rec>("kept").unwrap(), Some(kept));
        assert!(st.remove_leftovers(RecordKind::Pod).unwrap().is_empty());
    }

    #[test]
    fn corrupt_records_are_errors_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let st = StateDir::open(tmp.path()).unwrap();
        std::fs::create_dir_all(st.kind_dir(BOX)).unwrap();
        std::fs::write(st.record_path(BOX, "bad"), "{not json").unwrap();
        let err = st.read::<Rec>("bad").unwrap_err().to_string();
        assert!(err.contains("bad.json"), "{err}");
    }

    #[test]
    fn names() {
        for good in ["a", "box-1", "web_2.x", &"a".repeat(64)] {
            check_name(good).unwrap();
        }
        for bad in ["", "-a", ".a", "a/b", "a b", "ä", &"a".repeat(65), ".."] {
            let err = check_name(bad).unwrap_err().to_string();
            assert!(err.starts_with("name:"), "{bad:?}: {err}");
        }
        let a = generate_name();
        let b = generate_name();
        assert_ne!(a, b);
        check_name(&a).unwrap();
    }

    #[test]
    fn lock_is_exclusive_between_processes() {
        let tmp = tempfile::tempdir().unwrap();
        let st = StateDir::open(tmp.path()).unwrap();
        let lock = st.lock().unwrap();
        // Another open file description on the same lock file must not get the lock.
        let other = OpenOptions::new()
            .write(true)
            .open(tmp.path().join(".lock"))
            .unwrap();
        let try_lock = nix::fcntl::Flock::lock(other, nix::fcntl::FlockArg::LockExclusiveNonblock);
        assert!(
            try_lock.is_err(),
            "second flock should fail while the first is held"
        );
        drop(lock);
        let other = OpenOptions::new()
            .write(true)
            .open(tmp.path().join(".lock"))
            .unwrap();
        assert!(
            nix::fcntl::Flock::lock(other, nix::fcntl::FlockArg::LockExclusiveNonblock).is_ok()
        );
    }
}
