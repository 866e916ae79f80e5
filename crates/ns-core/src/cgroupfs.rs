//! The mechanics of the cgroup filesystem that do not depend on its version, shared by
//! both backends: reading and writing a cgroup's files (a setting whose file the kernel
//! lacks is [`Error::Unsupported`], named by its [`Setting`]), walking a cgroup's
//! subtree, listing its tasks from `cgroup.procs`, SIGKILLing them until none is left,
//! `rmdir` retried while the kernel says EBUSY, and waiting with a growing pause; and the
//! one controller whose logic is the same on both, huge page limits ([`PageSizeLimits`]).
//!
//! It knows one file, `cgroup.procs`, which both versions have (cgroups.rst 2.2,
//! cgroup-v2.rst "Core Interface Files"); which controller files to read is the
//! backends' business, and the names they hand in here are just names.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::controller::Setting;
use crate::units::Limit;
use crate::{parse, Error, Result};

/// How long isol waits for the kernel: to freeze, thaw or empty a cgroup, or to let a
/// busy cgroup be removed.
pub const WAIT: Duration = Duration::from_secs(10);

/// A wait for the kernel: pauses that double from 1 ms up to a cap, until a deadline.
#[derive(Debug)]
pub struct Backoff {
    start: Instant,
    timeout: Duration,
    pause: Duration,
    cap: Duration,
}

impl Backoff {
    /// A wait of at most `timeout`, pausing at most `cap` at a time.
    pub fn new(timeout: Duration, cap: Duration) -> Backoff {
        Backoff {
            start: Instant::now(),
            timeout,
            pause: Duration::from_millis(1).min(cap),
            cap,
        }
    }

    /// Sleeps the next pause and says `true`; `false`, without sleeping, once the time
    /// is up.
    pub fn pause(&mut self) -> bool {
        if self.start.elapsed() >= self.timeout {
            return false;
        }
        std::thread::sleep(self.pause);
        self.pause = (self.pause * 2).min(self.cap);
        true
    }

    /// The [`Error::Timeout`] for `what`, with the time waited.
    pub fn timed_out(&self, what: impl Into<String>) -> Error {
        Error::Timeout {
            what: what.into(),
            waited_ms: self.start.elapsed().as_millis() as u64,
        }
    }
}

/// The text of `dir/file`.
pub fn read(dir: &Path, file: &str) -> Result<String> {
    parse::read(&dir.join(file))
}

/// The text of `dir/file`, or `None` when the file does not exist (the kernel lacks it,
/// or its controller is not enabled).
pub fn read_optional(dir: &Path, file: &str) -> Result<Option<String>> {
    optional(read(dir, file))
}

/// `r`, with a file that does not exist (ENOENT) as `None`.
pub fn optional<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The number in `dir/file`.
pub fn read_u64(dir: &Path, file: &str) -> Result<u64> {
    let path = dir.join(file);
    parse::single_u64(&path, &parse::read(&path)?)
}

/// The number or `max` in `dir/file`.
pub fn read_limit(dir: &Path, file: &str) -> Result<Limit> {
    let path = dir.join(file);
    parse::single_limit(&path, &parse::read(&path)?)
}

/// The `0` or `1` in `dir/file` as a flag (`cgroup.freeze`, `memory.oom.group`), or
/// `None` when the file does not exist.
pub fn read_flag(dir: &Path, file: &str) -> Result<Option<bool>> {
    let Some(text) = read_optional(dir, file)? else {
        return Ok(None);
    };
    match parse::single_u64(&dir.join(file), &text)? {
        0 => Ok(Some(false)),
        1 => Ok(Some(true)),
        v => Err(Error::parse(
            dir.join(file),
            format!("expected 0 or 1, found {v}"),
        )),
    }
}

/// The `KEY VALUE` lines of `dir/file`, or `None` when it does not exist.
pub fn read_flat_keyed(
    dir: &Path,
    file: &str,
) -> Result<Option<std::collections::BTreeMap<String, u64>>> {
    read_optional(dir, file)?
        .map(|text| parse::flat_keyed(&dir.join(file), &text))
        .transpose()
}

/// Writes `value` to `dir/file`; the error names both.
pub fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    parse::write(&dir.join(file), value)
}

/// Refuses `setting` for `backend` unless every one of `files` exists in `dir`, naming
/// the first that does not: a setting that takes several files is written all or none.
pub fn require_files<S: AsRef<str>>(
    dir: &Path,
    files: &[S],
    setting: Setting,
    backend: &'static str,
) -> Result<()> {
    match files.iter().find(|f| !dir.join(f.as_ref()).exists()) {
        None => Ok(()),
        Some(missing) => Err(setting.unsupported(
            backend,
            format!(
                "{} does not exist: the running kernel lacks {}, or its controller is not enabled for this cgroup",
                dir.join(missing.as_ref()).display(),
                missing.as_ref()
            ),
        )),
    }
}

/// Writes `value` to `dir/file` for `setting`; a file the kernel lacks is
/// [`Error::Unsupported`] naming the setting (and the file, in the reason). The write
/// never creates the file, so its ENOENT says so without a `stat` first.
pub fn write_setting(
    dir: &Path,
    file: &str,
    value: &str,
    setting: Setting,
    backend: &'static str,
) -> Result<()> {
    match write(dir, file, value) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            require_files(dir, &[file], setting, backend).and(Err(e))
        }
        r => r,
    }
}

/// A setting kept in one file per key, `{prefix}KEY{suffix}` — hugetlb's limits, one per
/// page size (`hugetlb.2MB.max`; v1 `hugetlb.2MB.limit_in_bytes`). It is written all or
/// none and read back for every key the kernel has.
#[derive(Clone, Copy, Debug)]
pub struct KeyedFiles {
    /// What the file names start with (`hugetlb.`).
    pub prefix: &'static str,
    /// What they end with (`.max`).
    pub suffix: &'static str,
}

impl KeyedFiles {
    /// The file of `key`.
    pub fn file(&self, key: &str) -> String {
        format!("{}{key}{}", self.prefix, self.suffix)
    }

    /// Writes each `(key, value)` to its file in `dir` for `setting`, all or none: every
    /// file is checked before the first is written, so a set with a key the kernel lacks
    /// is refused whole rather than half-applied.
    pub fn write_all(
        &self,
        dir: &Path,
        values: &[(&str, String)],
        setting: Setting,
        backend: &'static str,
    ) -> Result<()> {
        let files: Vec<String> = values.iter().map(|(k, _)| self.file(k)).collect();
        require_files(dir, &files, setting, backend)?;
        for (file, (_, value)) in files.iter().zip(values) {
            write_setting(dir, file, value, setting, backend)?;
        }
        Ok(())
    }

    /// Every key with a file in `dir`, sorted, each with its file read by `read`. A key
    /// with a dot names another file (`hugetlb.2MB.rsvd.max`, Linux 5.7's reservation
    /// limits), not a key.
    pub fn read_all<T>(
        &self,
        dir: &Path,
        read: impl Fn(&Path, &str) -> Result<T>,
    ) -> Result<Vec<(String, T)>> {
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io("read directory", dir, e))?;
        let mut keys = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("read directory", dir, e))?;
            let name = entry.file_name();
            let key = name
                .to_str()
                .and_then(|n| n.strip_prefix(self.prefix)?.strip_suffix(self.suffix));
            if let Some(key) = key.filter(|k| !k.is_empty() && !k.contains('.')) {
                keys.push(key.to_string());
            }
        }
        keys.sort();
        keys.into_iter()
            .map(|k| Ok((k.clone(), read(dir, &self.file(&k))?)))
            .collect()
    }
}

/// Huge page limits, one file per page size ([`KeyedFiles`]): the hugetlb controller of
/// both backends, which differ only in the files' names and in how the kernel writes a
/// limit (cgroup-v2.rst, "HugeTLB Interface Files": `max`; cgroup-v1/hugetlb.rst: `-1`,
/// read back as the largest page multiple). A set of limits is written all or none.
#[derive(Clone, Copy, Debug)]
pub struct PageSizeLimits {
    /// The limit files, one per page size.
    pub files: KeyedFiles,
    /// The backend's name, for [`Error::Unsupported`].
    pub backend: &'static str,
    /// A limit as the kernel takes it.
    pub to_kernel: fn(Limit) -> String,
    /// A limit file read back.
    pub read: fn(&Path, &str) -> Result<Limit>,
}

impl crate::ResourceController for PageSizeLimits {
    fn controller(&self) -> crate::Controller {
        crate::Controller::Hugetlb
    }

    /// Checks that the kernel has every page size before writing any.
    fn apply(&self, dir: &Path, r: &crate::Resources) -> Result<()> {
        let values: Vec<(&str, String)> = r
            .hugetlb
            .iter()
            .map(|h| (h.page_size.as_str(), (self.to_kernel)(h.max)))
            .collect();
        self.files
            .write_all(dir, &values, Setting::Hugetlb, self.backend)
    }

    /// Every page size's limit, sorted by size.
    fn read(&self, dir: &Path, out: &mut crate::Resources) -> Result<()> {
        let limits = self.files.read_all(dir, self.read)?;
        out.hugetlb = limits
            .into_iter()
            .map(|(size, max)| crate::resources::HugetlbLimit::new(&size, max))
            .collect();
        Ok(())
    }
}

/// `dir` and every directory beneath it, parents before children; empty when `dir` is
/// gone. A cgroup's descendants are its subdirectories.
pub fn subtree(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        match std::fs::read_dir(&d) {
            Ok(entries) => {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        todo.push(e.path());
                    }
                }
                out.push(d);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("read directory", d, e)),
        }
    }
    out.sort_by_key(|d| d.components().count());
    Ok(out)
}

/// The pids listed in `dir/cgroup.procs` (thread-group ids).
pub fn procs(dir: &Path) -> Result<Vec<u32>> {
    let path = dir.join("cgroup.procs");
    parse::read(&path)?
        .split_whitespace()
        .map(|p| {
            p.parse()
                .map_err(|_| Error::parse(&path, format!("{p:?} is not a pid")))
        })
        .collect()
}

/// The pids in the `cgroup.procs` of each of `dirs` and of their descendants. A cgroup
/// that is gone (or goes while it is read) has none.
pub fn subtree_pids<P: AsRef<Path>>(dirs: &[P]) -> Result<BTreeSet<u32>> {
    let mut out = BTreeSet::new();
    for dir in dirs {
        for d in subtree(dir.as_ref())? {
            match procs(&d) {
                Ok(pids) => out.extend(pids),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(out)
}

/// Refuses to act on the cgroup at `what` when this process is among `pids`.
pub fn refuse_self(pids: &BTreeSet<u32>, what: &str) -> Result<()> {
    let me = std::process::id();
    if pids.contains(&me) {
        return Err(Error::Refused {
            what: format!("kill {what}"),
            reason: format!("this process ({me}) is inside it; kill it from outside"),
        });
    }
    Ok(())
}

/// SIGKILLs every task in `dirs` and their descendants — ours: isol only kills in the
/// cgroups it made — then calls `after_first_round` (to thaw what was frozen so the
/// signals are delivered), and goes on signalling what is left until nothing is, for
/// at most `timeout`. Refuses when this process is inside. `what` names the cgroup in
/// errors.
pub fn sigkill_until_empty<P: AsRef<Path>>(
    dirs: &[P],
    what: &str,
    timeout: Duration,
    after_first_round: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let first = sigkill_round(dirs, what);
    let after = after_first_round();
    let mut left = first?;
    after?;
    let mut backoff = Backoff::new(timeout, Duration::from_millis(5));
    while !left.is_empty() {
        if !backoff.pause() {
            return Err(backoff.timed_out(format!("{what} to empty (left: {left:?})")));
        }
        left = sigkill_round(dirs, what)?;
    }
    Ok(())
}

/// One round of [`sigkill_until_empty`]: the tasks it found (and signalled).
fn sigkill_round<P: AsRef<Path>>(dirs: &[P], what: &str) -> Result<BTreeSet<u32>> {
    let pids = subtree_pids(dirs)?;
    refuse_self(&pids, what)?;
    for &pid in &pids {
        match kill(Pid::from_raw(pid as i32), Signal::SIGKILL) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => return Err(Error::io("kill -9", format!("pid {pid}"), e.into())),
        }
    }
    Ok(pids)
}

/// A plain `rmdir(2)` of `dir`: whether it is gone now. The kernel refuses a cgroup
/// that holds tasks or children (EBUSY), so this is how an emptied cgroup goes at the
/// cost of one system call.
pub fn rmdir_if_empty(dir: &Path) -> bool {
    match std::fs::remove_dir(dir) {
        Ok(()) => true,
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// `rmdir(2)`, retried with back-off for at most `timeout` while the kernel says EBUSY
/// (a task that was just killed can hold the cgroup for a moment). Gone already is done.
pub fn rmdir_retrying(dir: &Path, timeout: Duration) -> Result<()> {
    let mut backoff = Backoff::new(timeout, Duration::from_millis(100));
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && backoff.pause() => {}
            Err(e) => return Err(Error::io("rmdir", dir, e)),
        }
    }
}

/// Removes `dir` and its descendants, children first, each with [`rmdir_retrying`].
pub fn remove_tree(dir: &Path, timeout: Duration) -> Result<()> {
    for d in subtree(dir)?.iter().rev() {
        rmdir_retrying(d, timeout)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for d in ["a/b", "c"] {
            std::fs::create_dir_all(t.path().join(d)).unwrap();
        }
        std::fs::write(t.path().join("cgroup.procs"), "12\n34\n").unwrap();
        std::fs::write(t.path().join("a/b/cgroup.procs"), "56\n").unwrap();
        t
    }

    #[test]
    fn subtree_lists_parents_first_and_nothing_when_gone() {
        let t = tree();
        let dirs = subtree(t.path()).unwrap();
        assert_eq!(dirs[0], t.path());
        assert_eq!(dirs.len(), 4);
        let pos = |p: &str| dirs.iter().position(|d| d == &t.path().join(p)).unwrap();
        assert!(pos("a") < pos("a/b"));
        assert!(subtree(&t.path().join("gone")).unwrap().is_empty());
    }

    #[test]
    fn pids_of_a_subtree() {
        let t = tree();
        assert_eq!(procs(t.path()).unwrap(), vec![12, 34]);
        assert!(procs(&t.path().join("c")).is_err(), "no cgroup.procs");
        let all = subtree_pids(&[t.path()]).unwrap();
        assert_eq!(all.into_iter().collect::<Vec<_>>(), vec![12, 34, 56]);
        std::fs::write(t.path().join("c/cgroup.procs"), "x\n").unwrap();
        let err = subtree_pids(&[t.path()]).unwrap_err().to_string();
        assert!(err.contains("\"x\" is not a pid"), "{err}");
        let me = BTreeSet::from([std::process::id()]);
        assert!(refuse_self(&me, "cgroup /x")
            .unwrap_err()
            .to_string()
            .starts_with("kill cgroup /x: this process"));
    }

    #[test]
    fn an_empty_tree_needs_no_signal_and_is_removed() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("cg");
        std::fs::create_dir_all(root.join("inner")).unwrap();
        let mut thawed = false;
        sigkill_until_empty(&[&root], "cgroup cg", WAIT, || {
            thawed = true;
            Ok(())
        })
        .unwrap();
        assert!(thawed, "the first round always ends with the thaw");
        assert!(!rmdir_if_empty(&root), "not empty: it has a child");
        remove_tree(&root, WAIT).unwrap();
        assert!(!root.exists());
        assert!(rmdir_if_empty(&root), "gone is gone");
        rmdir_retrying(&root, WAIT).unwrap();
    }

    #[test]
    fn settings_are_written_all_or_none() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::write(d.join("hugetlb.2MB.max"), "max\n").unwrap();
        let err = require_files(
            d,
            &["hugetlb.2MB.max", "hugetlb.16GB.max"],
            Setting::Hugetlb,
            "cgroup-v2",
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::Unsupported { setting, .. } if setting == "hugetlb"),
            "{err}"
        );
        assert!(err.to_string().contains("hugetlb.16GB.max does not exist"));
        let hugetlb = KeyedFiles {
            prefix: "hugetlb.",
            suffix: ".max",
        };
        let values = [("2MB", "4096".to_string()), ("16GB", "0".to_string())];
        assert!(hugetlb
            .write_all(d, &values, Setting::Hugetlb, "cgroup-v2")
            .is_err());
        assert_eq!(read(d, "hugetlb.2MB.max").unwrap(), "max\n", "none written");
        let err = write_setting(d, "pids.max", "5", Setting::PidsMax, "cgroup-v1").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("pids.max is not supported by cgroup-v1"));
        assert!(!d.join("pids.max").exists(), "never created");
        write_setting(d, "hugetlb.2MB.max", "4096", Setting::Hugetlb, "cgroup-v2").unwrap();
        assert_eq!(read(d, "hugetlb.2MB.max").unwrap(), "4096");
        assert_eq!(read_u64(d, "hugetlb.2MB.max").unwrap(), 4096);
        assert_eq!(read_optional(d, "nope").unwrap(), None);
        assert_eq!(read_flat_keyed(d, "nope").unwrap(), None);
        assert_eq!(read_flag(d, "nope").unwrap(), None);
        for (text, flag) in [("0\n", false), ("1\n", true)] {
            std::fs::write(d.join("cgroup.freeze"), text).unwrap();
            assert_eq!(read_flag(d, "cgroup.freeze").unwrap(), Some(flag));
        }
        std::fs::write(d.join("cgroup.freeze"), "2\n").unwrap();
        let err = read_flag(d, "cgroup.freeze").unwrap_err().to_string();
        assert!(err.contains("expected 0 or 1, found 2"), "{err}");
    }

    #[test]
    fn keyed_files_skip_dotted_ones() {
        let t = tempfile::tempdir().unwrap();
        for f in [
            "hugetlb.2MB.max",
            "hugetlb.1GB.max",
            "hugetlb.2MB.rsvd.max",
            "hugetlb.2MB.current",
            "hugetlb..max",
        ] {
            std::fs::write(t.path().join(f), "max\n").unwrap();
        }
        let hugetlb = KeyedFiles {
            prefix: "hugetlb.",
            suffix: ".max",
        };
        assert_eq!(
            hugetlb.read_all(t.path(), read_limit).unwrap(),
            vec![("1GB".into(), Limit::Max), ("2MB".into(), Limit::Max)]
        );
    }

    #[test]
    fn backoff_gives_up_at_the_deadline() {
        let mut b = Backoff::new(Duration::from_millis(20), Duration::from_millis(8));
        let mut pauses = 0;
        while b.pause() {
            pauses += 1;
        }
        assert!((2..=20).contains(&pauses), "{pauses}");
        let e = b.timed_out("x").to_string();
        assert!(
            e.starts_with("timed out after") && e.ends_with("waiting for x"),
            "{e}"
        );
    }
}
