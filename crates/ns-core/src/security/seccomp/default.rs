//! Docker's default seccomp profile as rules: an allow-list. A call docker's default
//! profile allows (for a box with the capabilities this one keeps) is allowed; a call
//! the table knows but docker does not allow is refused with EPERM; a call number the
//! table does not know (newer than it, or a hole in it) gets ENOSYS, as the kernel
//! answers for a call it lacks, so that a libc falls back to an older call (runc answers
//! ENOSYS for calls newer than its profile for the same reason). Besides docker's, isol
//! refuses the terminal's `TIOCSTI` and `TIOCLINUX` ioctls, and every x32 call (see
//! `layout.rs`).
//!
//! The table follows moby's `profiles/seccomp/default.json` as of June 2025: after
//! moby#50077 (the calls of Linux 6.8–6.13, libseccomp 2.6.0) and moby#50097 (the
//! `lsm_*` calls need CAP_SYS_ADMIN); before those, moby#46762 (Docker 25: `io_uring_*`
//! removed) and moby#47341 (Docker 26: the calls of Linux 5.17–6.7). It lists the names
//! that x86_64 or aarch64 have; the 32-bit ones docker lists too (`chown32`, `_llseek`,
//! `socketcall`, …) are left out, and a name this architecture lacks is skipped, as docker
//! skips it. Where isol differs from docker, deliberately:
//!
//! - x32 calls (bit 30 on x86_64) are refused, and another architecture's calls (i386's
//!   `int 0x80`) kill the process: docker allows both through libseccomp's
//!   sub-architectures, which a 64-bit box has no use for;
//! - `socket`, `personality` and `clone` compare the low 32 bits of their argument, all
//!   the kernel reads of an `int` or `unsigned int` (docker compares 64);
//! - `ptrace`, `process_vm_readv` and `process_vm_writev` are allowed without docker's
//!   "kernel 4.8 or later" condition: a hardened box needs 5.12 (`mount_setattr`).
//!
//! Changing the default means changing this file, then writing the stored filters again
//! (`ISOL_BLESS=1 cargo test -p isol-ns-core stored_filter`).
//!
//! # References
//! moby's `profiles/seccomp/default.json` and its documentation ("Seccomp security
//! profiles for Docker"); seccomp(2); personality(2).

use seccompiler::{SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition};

use super::{invalid, Rule};
use crate::security::caps::{CapSet, Capability};
use crate::security::syscalls::Syscalls;
use crate::{Error, Result};

/// Calls docker's default profile allows, in groups, each with the capability a box must
/// keep for its calls (`None`: every box), each sorted by name. A call may be in several
/// groups; any one lets it through. Four calls are allowed with conditions on their arguments, which
/// [`rules`] adds: `personality` with one of [`PERSONAS`], `socket` of any family but
/// `AF_VSOCK` (the hypervisor's services, which no network namespace fences), `clone`
/// without CAP_SYS_ADMIN only without a `CLONE_NEW*` flag ([`CLONE_NS_FLAGS`]), and
/// `clone3` without CAP_SYS_ADMIN not at all but with ENOSYS, since its flags sit behind
/// a pointer the filter cannot read (a libc then falls back to `clone`). `ioctl` is in
/// docker's list whole; isol refuses `TIOCSTI` and `TIOCLINUX` of it.
#[rustfmt::skip]
pub fn default_allowlist() -> &'static [(Option<Capability>, &'static [&'static str])] {
    use Capability::*;
    &[
        (None, ALWAYS),
        // x86_64's own calls (docker: amd64 only).
        (None, &["arch_prctl", "modify_ldt"]),
        (Some(DAC_READ_SEARCH), &["open_by_handle_at"]),
        (Some(SYS_ADMIN), &[
            "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen",
            "fspick", "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules",
            "lsm_set_self_attr", "mount", "mount_setattr", "move_mount", "open_tree",
            "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname",
            "setns", "syslog", "umount2", "unshare",
        ]),
        (Some(SYS_BOOT), &["reboot"]),
        (Some(SYS_CHROOT), &["chroot"]),
        (Some(SYS_MODULE), &["delete_module", "finit_module", "init_module"]),
        (Some(SYS_PACCT), &["acct"]),
        (Some(SYS_PTRACE), &[
            "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
            "process_vm_writev", "ptrace",
        ]),
        (Some(SYS_RAWIO), &["ioperm", "iopl"]),
        (Some(SYS_TIME), &["clock_settime", "settimeofday"]),
        (Some(SYS_TTY_CONFIG), &["vhangup"]),
        (Some(SYS_NICE), &["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"]),
        (Some(SYSLOG), &["syslog"]),
        (Some(BPF), &["bpf"]),
        (Some(PERFMON), &["perf_event_open"]),
    ]
}

/// The calls every box may make (docker's first group, with `ptrace`,
/// `process_vm_readv` and `process_vm_writev`).
#[rustfmt::skip]
const ALWAYS: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat",
    "capget", "capset", "chdir", "chmod", "chown", "clock_adjtime", "clock_getres",
    "clock_gettime", "clock_nanosleep", "close", "close_range", "connect",
    "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1",
    "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait",
    "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group",
    "faccessat", "faccessat2", "fadvise64", "fallocate", "fanotify_mark", "fchdir",
    "fchmod", "fchmodat", "fchmodat2", "fchown", "fchownat", "fcntl", "fdatasync",
    "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat",
    "fstatfs", "fsync", "ftruncate", "futex", "futex_requeue", "futex_wait", "futex_waitv",
    "futex_wake", "futimesat", "get_robust_list", "get_thread_area", "getcpu", "getcwd",
    "getdents", "getdents64", "getegid", "geteuid", "getgid", "getgroups", "getitimer",
    "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom",
    "getresgid", "getresuid", "getrlimit", "getrusage", "getsid", "getsockname",
    "getsockopt", "gettid", "gettimeofday", "getuid", "getxattr", "getxattrat",
    "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel",
    "io_destroy", "io_getevents", "io_pgetevents", "io_setup", "io_submit", "ioctl",
    "ioprio_get", "ioprio_set", "kill", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "lchown", "lgetxattr", "link", "linkat", "listen",
    "listmount", "listxattr", "listxattrat", "llistxattr", "lremovexattr", "lseek",
    "lsetxattr", "lstat", "madvise", "map_shadow_stack", "membarrier", "memfd_create",
    "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2",
    "mlockall", "mmap", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedsend", "mq_unlink", "mremap", "mseal", "msgctl", "msgget",
    "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap", "name_to_handle_at",
    "nanosleep", "newfstatat", "open", "openat", "openat2", "pause", "pidfd_open",
    "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect",
    "poll", "ppoll", "prctl", "pread64", "preadv", "preadv2", "prlimit64",
    "process_mrelease", "process_vm_readv", "process_vm_writev", "pselect6", "ptrace",
    "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat",
    "readv", "recvfrom", "recvmmsg", "recvmsg", "remap_file_pages", "removexattr",
    "removexattrat", "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq",
    "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
    "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity", "sched_setattr",
    "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl",
    "semget", "semop", "semtimedop", "sendfile", "sendmmsg", "sendmsg", "sendto",
    "set_robust_list", "set_thread_area", "set_tid_address", "setfsgid", "setfsuid",
    "setgid", "setgroups", "setitimer", "setpgid", "setpriority", "setregid", "setresgid",
    "setresuid", "setreuid", "setrlimit", "setsid", "setsockopt", "setuid", "setxattr",
    "setxattrat", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack",
    "signalfd", "signalfd4", "socketpair", "splice", "stat", "statfs", "statmount",
    "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee",
    "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
    "timer_settime", "timerfd_create", "timerfd_gettime", "timerfd_settime", "times",
    "tkill", "truncate", "umask", "uname", "unlink", "unlinkat", "uretprobe", "utime",
    "utimensat", "utimes", "vfork", "vmsplice", "wait4", "waitid", "write", "writev",
];

/// The personas `personality` may set (or, `0xffffffff`, only ask for): `PER_LINUX`,
/// `PER_LINUX32`, `UNAME26`, `UNAME26 | PER_LINUX32`, and the query. Not
/// `ADDR_NO_RANDOMIZE` nor `READ_IMPLIES_EXEC`, nor another ABI's persona.
pub const PERSONAS: [u32; 5] = [
    0x0000_0000,
    0x0000_0008,
    0x0002_0000,
    0x0002_0008,
    0xffff_ffff,
];

/// The `CLONE_NEW*` flags `clone` may not carry without CAP_SYS_ADMIN.
pub(super) const CLONE_NS_FLAGS: [u64; 7] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWCGROUP as u64,
];

/// The default profile's rules for a box keeping `caps`, on the architecture of `calls`,
/// under the default action ENOSYS: ALLOW or EPERM for every call of the table, and the
/// conditions on arguments.
pub(crate) fn rules(calls: &Syscalls, caps: CapSet) -> Result<Vec<Rule>> {
    if calls.table.is_empty() {
        return Err(Error::Unsupported {
            setting: "seccomp".into(),
            backend: "isol",
            reason: format!(
                "docker's default profile is an allow-list of system calls, and isol knows \
                 them on x86_64 and aarch64 only, not {}",
                calls.arch
            ),
        });
    }
    let eperm = SeccompAction::Errno(libc::EPERM as u32);
    let admin = caps.contains(Capability::SYS_ADMIN);
    // Allowed, by number: the table's, all below 512.
    let mut allowed = vec![false; calls.last().map_or(0, |n| n as usize + 1)];
    let groups = default_allowlist()
        .iter()
        .filter(|(gate, _)| gate.is_none_or(|c| caps.contains(c)))
        .map(|(_, names)| *names)
        .chain([&["clone", "personality", "socket"][..]]);
    for names in groups {
        calls.numbers_of(names, |nr| allowed[nr as usize] = true);
    }
    let mut rules: Vec<Rule> = Vec::with_capacity(calls.table.len() + 16);
    rules.extend(calls.table.iter().map(|&(name, nr)| Rule {
        nr,
        conds: Vec::new(),
        action: match name {
            "clone3" if !admin => SeccompAction::Errno(libc::ENOSYS as u32),
            _ if allowed[nr as usize] => SeccompAction::Allow,
            _ => eperm.clone(),
        },
    }));
    let nr = |name: &str| {
        calls.number(name).ok_or_else(|| Error::Unsupported {
            setting: "seccomp".into(),
            backend: "isol",
            reason: format!("isol does not know the number of {name} on {}", calls.arch),
        })
    };
    // An argument compared in its low 32 bits, which is all the kernel reads of these (an
    // int domain, the tty layer's unsigned int request, an unsigned int persona).
    let cond = |name: &str, arg: u8, op: SeccompCmpOp, value: u64| {
        SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value).map_err(|e| invalid(name, e))
    };
    let refuse = |name: &str, conds: Vec<SeccompCondition>| -> Result<Rule> {
        Ok(Rule {
            nr: nr(name)?,
            conds,
            action: eperm.clone(),
        })
    };
    rules.push(refuse(
        "personality",
        PERSONAS
            .iter()
            .map(|&p| cond("personality", 0, SeccompCmpOp::Ne, u64::from(p)))
            .collect::<Result<_>>()?,
    )?);
    let vsock = libc::AF_VSOCK as u64;
    rules.push(refuse(
        "socket",
        vec![cond("socket", 0, SeccompCmpOp::Eq, vsock)?],
    )?);
    // A box on the caller's terminal must not type into it (TIOCSTI, the CVE-2017-5226
    // class), nor paste the console selection (TIOCLINUX).
    // (An unsigned long on glibc, an int on musl.)
    #[allow(clippy::unnecessary_cast)]
    let requests = [libc::TIOCSTI as u64, libc::TIOCLINUX as u64];
    for request in requests {
        rules.push(refuse(
            "ioctl",
            vec![cond("ioctl", 1, SeccompCmpOp::Eq, request)?],
        )?);
    }
    if !admin {
        // The flags are in the low 32 bits: comparing those alone is the same test in
        // half the instructions.
        for flag in CLONE_NS_FLAGS {
            rules.push(refuse(
                "clone",
                vec![cond("clone", 0, SeccompCmpOp::MaskedEq(flag), flag)?],
            )?);
        }
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::super::default_filter;
    use super::super::layout::interp::{audit_arch, decide, decide_on, eval, ALLOW, ENOSYS, EPERM};
    use super::*;
    use crate::security::syscalls::{self, AARCH64, X86_64};

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn default_profile_blocks_and_gates() {
        use super::super::SeccompProfile;
        let progs = SeccompProfile::Default
            .compile(CapSet::docker_default())
            .unwrap();
        let z = [0u64; 6];
        for name in [
            "keyctl",
            "add_key",
            "kexec_load",
            "mount",
            "unshare",
            "bpf",
            "reboot",
        ] {
            let nr = syscalls::number(name).unwrap();
            assert_eq!(decide(&progs, nr, z), EPERM, "{name}");
        }
        for name in [
            "read", "write", "ptrace", "chroot", "clone", "execve", "setuid",
        ] {
            let nr = syscalls::number(name).unwrap();
            assert_eq!(decide(&progs, nr, z), ALLOW, "{name}");
        }
        let clone = libc::SYS_clone;
        let newuser = [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0];
        assert_eq!(decide(&progs, clone, newuser), EPERM);
        let thread = [
            (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64,
            0,
            0,
            0,
            0,
            0,
        ];
        assert_eq!(decide(&progs, clone, thread), ALLOW);
        assert_eq!(
            decide(&progs, libc::SYS_clone3, z),
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32
        );
        // x32 numbers of allowed and blocked calls alike.
        assert_eq!(decide(&progs, 0x4000_0000 | libc::SYS_keyctl, z), EPERM);
        assert_eq!(decide(&progs, 0x4000_0000, z), EPERM);
        // One filter; another architecture's calls kill.
        assert_eq!(progs.len(), 1);
        assert_eq!(
            eval(&progs[0], 0x4000_0003, 1, z),
            libc::SECCOMP_RET_KILL_PROCESS
        );

        // With CAP_SYS_ADMIN (and SYS_BOOT) the gated calls come back; keyctl never does,
        // nor kexec_load (docker gives SYS_BOOT reboot alone).
        let mut caps = CapSet::docker_default();
        caps.insert(Capability::SYS_ADMIN);
        caps.insert(Capability::SYS_BOOT);
        let progs = SeccompProfile::Default.compile(caps).unwrap();
        for name in ["mount", "unshare", "setns", "reboot", "clone3"] {
            assert_eq!(
                decide(&progs, syscalls::number(name).unwrap(), z),
                ALLOW,
                "{name}"
            );
        }
        assert_eq!(decide(&progs, clone, newuser), ALLOW);
        assert_eq!(decide(&progs, libc::SYS_keyctl, z), EPERM);
        assert_eq!(decide(&progs, libc::SYS_kexec_load, z), EPERM);
        assert!(SeccompProfile::Unconfined.compile(caps).unwrap().is_empty());
    }

    /// Every name of the allow-list is a system call of x86_64 or aarch64 (a misspelt
    /// one would be skipped as another architecture's, and its call refused), and each
    /// group is sorted (so that the names are found in one walk of the table).
    #[test]
    fn every_default_name_is_known() {
        for (gate, names) in default_allowlist() {
            assert!(names.windows(2).all(|w| w[0] < w[1]), "{gate:?}: {names:?}");
        }
        for (_, names) in default_allowlist() {
            for name in *names {
                assert!(
                    X86_64.number(name).is_some() || AARCH64.number(name).is_some(),
                    "{name}"
                );
            }
        }
        for name in ["personality", "socket", "clone", "clone3", "ioctl"] {
            assert!(X86_64.number(name).is_some() && AARCH64.number(name).is_some());
        }
    }

    /// What docker's default profile (with isol's additions) answers for call `nr` with
    /// arguments `a` on the architecture of `calls`, for a box keeping `caps`: written
    /// from the profile's description, not from the rules, as the oracle of the filter.
    struct Oracle<'a> {
        calls: &'a Syscalls,
        caps: CapSet,
        names: HashMap<i64, &'static str>,
        allowed: HashSet<&'static str>,
    }

    impl<'a> Oracle<'a> {
        fn new(calls: &'a Syscalls, caps: CapSet) -> Self {
            let mut allowed = HashSet::new();
            for (gate, names) in default_allowlist() {
                if gate.is_none_or(|c| caps.contains(c)) {
                    allowed.extend(names.iter().copied());
                }
            }
            let names = calls.table.iter().map(|&(n, nr)| (nr, n)).collect();
            Oracle {
                calls,
                caps,
                names,
                allowed,
            }
        }

        fn answer(&self, nr: i64, a: [u64; 6]) -> u32 {
            if self.calls.arch == "x86_64" && (nr as u32) & 0x4000_0000 != 0 {
                return EPERM; // x32
            }
            let Some(&name) = self.names.get(&nr) else {
                return ENOSYS;
            };
            let lo = |i: usize| a[i] as u32;
            let admin = self.caps.contains(Capability::SYS_ADMIN);
            let ns: u32 = CLONE_NS_FLAGS.iter().map(|f| *f as u32).sum();
            #[allow(clippy::unnecessary_cast)]
            let tty = [libc::TIOCSTI as u32, libc::TIOCLINUX as u32];
            let refuse_if = |c: bool| if c { EPERM } else { ALLOW };
            match name {
                "personality" => refuse_if(!PERSONAS.contains(&lo(0))),
                "socket" => refuse_if(lo(0) == libc::AF_VSOCK as u32),
                "ioctl" => refuse_if(tty.contains(&lo(1))),
                "clone" if !admin => refuse_if(lo(0) & ns != 0),
                "clone3" if !admin => ENOSYS,
                _ if self.allowed.contains(name) => ALLOW,
                _ => EPERM,
            }
        }
    }

    /// Capability sets that each open a part of the profile: docker's default, none,
    /// every one, and docker's default with each capability docker gates calls on.
    fn capability_sets() -> Vec<CapSet> {
        let mut sets = vec![CapSet::docker_default(), CapSet::EMPTY, CapSet::all()];
        for (gate, _) in default_allowlist() {
            if let Some(c) = gate {
                let mut s = CapSet::docker_default();
                s.insert(*c);
                sets.push(s);
            }
        }
        sets
    }

    /// Argument vectors that make each condition of the profile hold and fail, in the
    /// first two arguments (the ones the profile reads), with and without bits above the
    /// 32 the kernel reads.
    fn argument_vectors() -> Vec<[u64; 6]> {
        #[allow(clippy::unnecessary_cast)]
        let mut values: Vec<u64> = vec![
            0,
            u64::MAX,
            0x0004_0000, // ADDR_NO_RANDOMIZE
            0x0040_0000, // READ_IMPLIES_EXEC
            0x0044_0000,
            0x0004_0008,
            0x0000_0001, // PER_SVR4
            libc::AF_VSOCK as u64,
            libc::AF_INET as u64,
            libc::AF_UNIX as u64,
            libc::TIOCSTI as u64,
            libc::TIOCLINUX as u64,
            libc::TCGETS as u64,
            libc::SIGCHLD as u64,
            (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64,
        ];
        values.extend(PERSONAS.iter().map(|p| u64::from(*p)));
        values.extend(CLONE_NS_FLAGS);
        values.push(CLONE_NS_FLAGS.iter().sum::<u64>() | libc::SIGCHLD as u64);
        let mut out = Vec::new();
        for v in values {
            for high in [0, 1 << 32, u64::MAX << 32] {
                let v = v | high;
                out.push([v, v, 0, 0, 0, 0]);
                out.push([v, 0, v, 0, 0, 0]);
                out.push([0, v, 0, 0, 0, 0]);
            }
        }
        out
    }

    /// The filter answers as the allow-list says for every call number (and beyond the
    /// table, x32 numbers, the largest ones), under argument vectors that make the
    /// conditions hold and fail, for each capability set, on x86_64 and aarch64 alike.
    #[test]
    fn the_allow_list_answers_for_every_call_number() {
        let args = argument_vectors();
        for calls in [&X86_64, &AARCH64] {
            let arch = audit_arch(calls.arch);
            let last = calls.last().unwrap();
            let mut nrs: Vec<i64> = (0..=last + 600).collect();
            nrs.extend([
                i64::from(u32::MAX >> 1),
                -1,
                0x4000_0000 | 56,
                0x4000_0000 | 1,
            ]);
            for caps in capability_sets() {
                let progs = [default_filter(calls, caps).unwrap()];
                let oracle = Oracle::new(calls, caps);
                for &nr in &nrs {
                    // Every vector for the calls with conditions, two for the others.
                    let conditional = oracle.names.get(&nr).is_some_and(|n| {
                        ["personality", "socket", "ioctl", "clone", "clone3"].contains(n)
                    });
                    let args = if conditional { &args[..] } else { &args[..2] };
                    for a in args {
                        assert_eq!(
                            decide_on(arch, &progs, nr, *a),
                            oracle.answer(nr, *a),
                            "{}: call {nr}, args {a:x?}, caps {caps:?}",
                            calls.arch
                        );
                    }
                }
                // Another architecture's calls (i386's, arm's) kill.
                for other in [0x4000_0003, 0x4000_0028] {
                    assert_eq!(
                        eval(&progs[0], other, 1, [0; 6]),
                        libc::SECCOMP_RET_KILL_PROCESS
                    );
                }
            }
        }
    }

    /// The answers the issue asks for, spelt out by name and number, on both
    /// architectures: none of them goes through the table of the oracle.
    #[test]
    fn docker_refuses_what_it_refuses_and_allows_what_it_allows() {
        let z = [0u64; 6];
        let arg0 = |v: u64| [v, 0, 0, 0, 0, 0];
        for calls in [&X86_64, &AARCH64] {
            let arch = audit_arch(calls.arch);
            let nr = |name: &str| calls.number(name).unwrap();
            let default = [default_filter(calls, CapSet::docker_default()).unwrap()];
            let ask = |progs: &[seccompiler::BpfProgram], name: &str, a: [u64; 6]| {
                decide_on(arch, progs, nr(name), a)
            };
            // Not in docker's profile, for any capability (or not for docker's default).
            let mut all = CapSet::all();
            all.remove(Capability::DAC_READ_SEARCH);
            let all_but = [default_filter(calls, all).unwrap()];
            for name in [
                "kexec_load",
                "kexec_file_load",
                "add_key",
                "keyctl",
                "request_key",
                "userfaultfd",
                "io_uring_setup",
                "io_uring_enter",
                "io_uring_register",
                "swapon",
                "swapoff",
                "pivot_root",
                "nfsservctl",
                "migrate_pages",
                "move_pages",
                "open_by_handle_at",
                "open_tree_attr",
            ] {
                assert_eq!(ask(&default, name, z), EPERM, "{}: {name}", calls.arch);
                assert_eq!(ask(&all_but, name, z), EPERM, "{}: {name}", calls.arch);
            }
            // Gated by a capability docker's default set lacks.
            for name in [
                "mount",
                "umount2",
                "unshare",
                "setns",
                "bpf",
                "perf_event_open",
                "reboot",
                "init_module",
                "settimeofday",
                "clock_settime",
                "syslog",
                "kcmp",
                "pidfd_getfd",
                "mbind",
                "vhangup",
                "acct",
                "fsopen",
                "lsm_get_self_attr",
            ] {
                assert_eq!(ask(&default, name, z), EPERM, "{}: {name}", calls.arch);
                assert_eq!(ask(&all_but, name, z), ALLOW, "{}: {name}", calls.arch);
            }
            for name in [
                "read",
                "openat",
                "execve",
                "exit_group",
                "rt_sigreturn",
                "wait4",
                "kill",
                "ptrace",
                "chroot",
                "setuid",
                "name_to_handle_at",
                "adjtimex",
                "getrandom",
                "rseq",
                "statx",
                "faccessat2",
                "fchmodat2",
                "futex_waitv",
                "mseal",
                "landlock_create_ruleset",
                "memfd_create",
                "close_range",
                "pidfd_open",
            ] {
                assert_eq!(ask(&default, name, z), ALLOW, "{}: {name}", calls.arch);
            }
            // personality: docker's personas only.
            for p in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
                assert_eq!(ask(&default, "personality", arg0(p)), ALLOW, "{p:#x}");
            }
            for p in [
                0x0004_0000,
                0x0040_0000,
                0x0044_0000,
                0x0004_0008,
                1,
                0x0008_0000,
            ] {
                assert_eq!(ask(&default, "personality", arg0(p)), EPERM, "{p:#x}");
                assert_eq!(ask(&all_but, "personality", arg0(p)), EPERM, "{p:#x}");
            }
            // clone: no namespace without CAP_SYS_ADMIN; clone3: ENOSYS, so libc uses clone.
            let newuser = arg0(libc::CLONE_NEWUSER as u64 | libc::SIGCHLD as u64);
            assert_eq!(ask(&default, "clone", newuser), EPERM);
            assert_eq!(ask(&default, "clone", arg0(libc::SIGCHLD as u64)), ALLOW);
            assert_eq!(ask(&all_but, "clone", newuser), ALLOW);
            assert_eq!(ask(&default, "clone3", z), ENOSYS);
            assert_eq!(ask(&all_but, "clone3", z), ALLOW);
            // unshare needs CAP_SYS_ADMIN whatever its flags.
            assert_eq!(
                ask(&default, "unshare", arg0(libc::CLONE_NEWUSER as u64)),
                EPERM
            );
            // Newer than the table, or in no table at all: ENOSYS.
            let last = calls.last().unwrap();
            for n in [last + 1, last + 3, 1000, 4095] {
                assert_eq!(decide_on(arch, &default, n, z), ENOSYS, "{n}");
                assert_eq!(decide_on(arch, &all_but, n, z), ENOSYS, "{n}");
            }
        }
        // Each architecture's own: x86_64's arch_prctl, a hole in the table.
        let x86 = [default_filter(&X86_64, CapSet::docker_default()).unwrap()];
        assert_eq!(decide(&x86, X86_64.number("arch_prctl").unwrap(), z), ALLOW);
        assert_eq!(decide(&x86, 400, z), ENOSYS);
    }

    /// Without a table the default profile is refused, not an empty allow-list.
    #[test]
    fn no_table_no_default_profile() {
        let none = syscalls::empty("riscv64");
        let e = rules(&none, CapSet::docker_default()).unwrap_err();
        assert!(e.to_string().contains("riscv64"), "{e}");
    }
}
