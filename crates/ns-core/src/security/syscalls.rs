//! System call names and numbers, per architecture, for seccomp filters that name
//! system calls: docker's default profile (an allow-list, so a call missing here is
//! refused) and profiles in docker's JSON format. Numbers are kernel ABI: they never
//! change. The tables, one file each, say where they come from: x86_64's
//! (`syscalls/x86_64.rs`) and the generic table aarch64 uses (`syscalls/aarch64.rs`),
//! both up to Linux 6.15.
//!
//! Both tables are compiled on every architecture, so that the filters of each can be
//! built and checked on any host (the unit tests do); [`native`] is this one's. On
//! another architecture it is empty, and a profile that names system calls is refused
//! (see [`super::seccomp`]).

mod aarch64;
mod x86_64;

/// One architecture's system calls.
#[derive(Debug)]
pub(crate) struct Syscalls {
    /// The architecture, as Rust names it (`std::env::consts::ARCH`).
    pub arch: &'static str,
    /// `(name, number)`, sorted by number.
    pub table: &'static [(&'static str, i64)],
    /// [`Self::table`]'s indices in the order of the names, sorted when isol is compiled.
    by_name: &'static [u16],
}

impl Syscalls {
    /// The number of system call `name`: a binary search of the names (a filter compiled
    /// for a spawn looks up hundreds of names, and a scan of the table cost 17 µs for
    /// dozens).
    pub fn number(&self, name: &str) -> Option<i64> {
        self.by_name
            .binary_search_by(|&i| self.table[usize::from(i)].0.cmp(name))
            .ok()
            .map(|k| self.table[usize::from(self.by_name[k])].1)
    }

    /// Calls `found(number)` for each of `names` the table knows. Names sorted as `str`
    /// sorts are found in one walk beside the table's name index, which costs a third of
    /// a search for each when they are many (the default profile's allow-list, which the
    /// CLI compiles cold for every capability set but docker's default).
    pub fn numbers_of(&self, names: &[&str], mut found: impl FnMut(i64)) {
        let sorted = names.windows(2).all(|w| w[0] < w[1]);
        if !sorted || names.len() * 8 < self.table.len() {
            names.iter().filter_map(|n| self.number(n)).for_each(found);
            return;
        }
        let mut index = self.by_name.iter().map(|&i| self.table[usize::from(i)]);
        let mut entry = index.next();
        for name in names {
            while let Some((known, nr)) = entry {
                match known.cmp(name) {
                    std::cmp::Ordering::Less => entry = index.next(),
                    std::cmp::Ordering::Equal => {
                        found(nr);
                        break;
                    }
                    std::cmp::Ordering::Greater => break,
                }
            }
        }
    }

    /// The highest number the table knows; calls above it are newer than the table.
    pub fn last(&self) -> Option<i64> {
        self.table.last().map(|(_, nr)| *nr)
    }
}

/// x86_64's 64-bit calls.
pub(crate) static X86_64: Syscalls = Syscalls {
    arch: "x86_64",
    table: x86_64::CALLS,
    by_name: &X86_64_BY_NAME,
};
const X86_64_BY_NAME: [u16; x86_64::CALLS.len()] = sorted_by_name(x86_64::CALLS);

/// aarch64's calls (the generic table).
pub(crate) static AARCH64: Syscalls = Syscalls {
    arch: "aarch64",
    table: aarch64::CALLS,
    by_name: &AARCH64_BY_NAME,
};
const AARCH64_BY_NAME: [u16; aarch64::CALLS.len()] = sorted_by_name(aarch64::CALLS);

/// An architecture isol has no table for.
static NONE: Syscalls = Syscalls {
    arch: std::env::consts::ARCH,
    table: &[],
    by_name: &[],
};

/// A table of no calls, for tests of an architecture isol has none for.
#[cfg(test)]
pub(crate) const fn empty(arch: &'static str) -> Syscalls {
    Syscalls {
        arch,
        table: &[],
        by_name: &[],
    }
}

/// This architecture's calls: an empty table where isol has none.
pub(crate) fn native() -> &'static Syscalls {
    if cfg!(target_arch = "x86_64") {
        &X86_64
    } else if cfg!(target_arch = "aarch64") {
        &AARCH64
    } else {
        &NONE
    }
}

/// The number of system call `name` on this architecture.
pub(crate) fn number(name: &str) -> Option<i64> {
    native().number(name)
}

/// `table`'s indices in the order of the names.
const fn sorted_by_name<const N: usize>(table: &[(&str, i64)]) -> [u16; N] {
    // Byte order, as `str`'s `Ord` compares, which is not usable in a const fn.
    const fn less(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        let mut i = 0;
        while i < a.len() && i < b.len() {
            if a[i] != b[i] {
                return a[i] < b[i];
            }
            i += 1;
        }
        a.len() < b.len()
    }
    let mut idx = [0u16; N];
    let mut i = 0;
    while i < idx.len() {
        idx[i] = i as u16;
        i += 1;
    }
    // Insertion sort: a few hundred entries, once, at compile time.
    let mut i = 1;
    while i < idx.len() {
        let mut j = i;
        while j > 0 && less(table[idx[j] as usize].0, table[idx[j - 1] as usize].0) {
            let t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
            j -= 1;
        }
        i += 1;
    }
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn agrees_with_libc() {
        for (name, nr) in [
            ("read", libc::SYS_read),
            ("keyctl", libc::SYS_keyctl),
            ("kexec_load", libc::SYS_kexec_load),
            ("kexec_file_load", libc::SYS_kexec_file_load),
            ("bpf", libc::SYS_bpf),
            ("userfaultfd", libc::SYS_userfaultfd),
            ("clone3", libc::SYS_clone3),
            ("pivot_root", libc::SYS_pivot_root),
            ("process_mrelease", libc::SYS_process_mrelease),
        ] {
            assert_eq!(number(name), Some(nr), "{name}");
        }
        assert_eq!(number("no_such_call"), None);
    }

    /// aarch64's numbers of calls whose numbers differ from x86_64's, against the
    /// kernel's generic table (include/uapi/asm-generic/unistd.h).
    #[test]
    fn aarch64_has_the_generic_numbers() {
        for (name, nr) in [
            ("io_setup", 0),
            ("openat", 56),
            ("read", 63),
            ("personality", 92),
            ("clone", 220),
            ("socket", 198),
            ("ioctl", 29),
            ("kexec_load", 104),
            ("keyctl", 219),
            ("renameat", 38),
            ("getrlimit", 163),
            ("rseq", 293),
            ("kexec_file_load", 294),
            ("pidfd_send_signal", 424),
            ("clone3", 435),
            ("open_tree_attr", 467),
        ] {
            assert_eq!(AARCH64.number(name), Some(nr), "{name}");
        }
        for name in [
            "open",
            "stat",
            "fork",
            "pipe",
            "poll",
            "arch_prctl",
            "uretprobe",
        ] {
            assert_eq!(AARCH64.number(name), None, "{name}");
        }
        assert_eq!(X86_64.number("uretprobe"), Some(335));
    }

    /// Both ways of finding many names find what a search of each finds.
    #[test]
    fn numbers_of_finds_each_known_name() {
        for calls in [&X86_64, &AARCH64] {
            let mut names: Vec<&str> = calls.table.iter().map(|(n, _)| *n).collect();
            names.extend(["", "aaa", "no_such_call", "open", "zzz", "arch_prctl"]);
            let each = |names: &[&str]| -> Vec<i64> {
                names.iter().filter_map(|n| calls.number(n)).collect()
            };
            let mut unsorted = Vec::new();
            calls.numbers_of(&names, |nr| unsorted.push(nr));
            assert_eq!(unsorted, each(&names), "{}", calls.arch);
            names.sort();
            names.dedup();
            let mut sorted = Vec::new();
            calls.numbers_of(&names, |nr| sorted.push(nr));
            assert_eq!(sorted, each(&names), "{}", calls.arch);
        }
    }

    #[test]
    fn every_name_in_each_table_is_found() {
        for calls in [&X86_64, &AARCH64] {
            assert!(
                calls.table.windows(2).all(|w| w[0].1 < w[1].1),
                "{}: sorted by number, unique",
                calls.arch
            );
            for (name, nr) in calls.table {
                assert_eq!(calls.number(name), Some(*nr), "{}: {name}", calls.arch);
            }
            assert!(
                calls
                    .by_name
                    .windows(2)
                    .all(|w| calls.table[usize::from(w[0])].0 < calls.table[usize::from(w[1])].0),
                "{}: names sorted, unique",
                calls.arch
            );
            assert_eq!(calls.number(""), None);
            assert_eq!(calls.number("zzz"), None);
            assert_eq!(calls.last(), Some(467));
        }
        assert_eq!(NONE.number("read"), None);
        assert_eq!(native().arch, std::env::consts::ARCH);
    }
}
