//! Docker's default seccomp profile as rules: EPERM for the calls docker's default
//! profile does not allow, each unless the box keeps the capability docker gates it by;
//! `socket(AF_VSOCK)`; the terminal's `TIOCSTI` and `TIOCLINUX` ioctls; and, without
//! CAP_SYS_ADMIN, new namespaces through `clone` (and `clone3`, whose flags the filter
//! cannot read, answered ENOSYS).
//!
//! Changing the default means changing this file, then writing the stored filter again
//! (`ISOL_BLESS=1 cargo test -p isol-ns-core stored_filter`).
//!
//! # References
//! moby's `profiles/seccomp/default.json` and its documentation ("Seccomp security
//! profiles for Docker").

use seccompiler::{SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition};

use super::{invalid, Rule};
use crate::security::caps::{CapSet, Capability};
use crate::security::syscalls;
use crate::{Error, Result};

/// Calls docker's default profile does not allow, each with the capability that lets a
/// box have it back (`None`: blocked whatever the capabilities). ptrace and
/// process_vm_readv/writev are allowed, as docker does on kernels from 4.8 on.
pub fn default_blocklist() -> &'static [(&'static str, Option<Capability>)] {
    use Capability::*;
    &[
        // The kernel's keyring is not namespaced.
        ("add_key", None),
        ("keyctl", None),
        ("request_key", None),
        // Obsolete or unimplemented.
        ("uselib", None),
        ("nfsservctl", None),
        ("_sysctl", None),
        ("create_module", None),
        ("get_kernel_syms", None),
        ("query_module", None),
        ("sysfs", None),
        ("ustat", None),
        // io_uring bypasses seccomp for the operations it performs (moby 25 blocks it).
        ("io_uring_setup", None),
        ("io_uring_enter", None),
        ("io_uring_register", None),
        ("userfaultfd", Some(SYS_PTRACE)),
        ("kcmp", Some(SYS_PTRACE)),
        ("init_module", Some(SYS_MODULE)),
        ("finit_module", Some(SYS_MODULE)),
        ("delete_module", Some(SYS_MODULE)),
        ("reboot", Some(SYS_BOOT)),
        ("kexec_load", Some(SYS_BOOT)),
        ("kexec_file_load", Some(SYS_BOOT)),
        ("settimeofday", Some(SYS_TIME)),
        ("clock_settime", Some(SYS_TIME)),
        ("clock_adjtime", Some(SYS_TIME)),
        ("adjtimex", Some(SYS_TIME)),
        ("acct", Some(SYS_PACCT)),
        ("iopl", Some(SYS_RAWIO)),
        ("ioperm", Some(SYS_RAWIO)),
        ("syslog", Some(SYSLOG)),
        ("open_by_handle_at", Some(DAC_READ_SEARCH)),
        ("name_to_handle_at", Some(DAC_READ_SEARCH)),
        ("bpf", Some(SYS_ADMIN)),
        ("perf_event_open", Some(SYS_ADMIN)),
        ("lookup_dcookie", Some(SYS_ADMIN)),
        ("quotactl", Some(SYS_ADMIN)),
        ("quotactl_fd", Some(SYS_ADMIN)),
        ("swapon", Some(SYS_ADMIN)),
        ("swapoff", Some(SYS_ADMIN)),
        ("mount", Some(SYS_ADMIN)),
        ("umount2", Some(SYS_ADMIN)),
        ("pivot_root", Some(SYS_ADMIN)),
        ("unshare", Some(SYS_ADMIN)),
        ("setns", Some(SYS_ADMIN)),
        ("fsopen", Some(SYS_ADMIN)),
        ("fsconfig", Some(SYS_ADMIN)),
        ("fsmount", Some(SYS_ADMIN)),
        ("fspick", Some(SYS_ADMIN)),
        ("move_mount", Some(SYS_ADMIN)),
        ("open_tree", Some(SYS_ADMIN)),
        ("mount_setattr", Some(SYS_ADMIN)),
    ]
}

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

/// The default profile's rules for a box keeping `caps`.
pub(crate) fn rules(caps: CapSet) -> Result<Vec<Rule>> {
    let eperm = SeccompAction::Errno(libc::EPERM as u32);
    let nr = |name: &str| {
        syscalls::number(name).ok_or_else(|| Error::Unsupported {
            setting: "seccomp".into(),
            backend: "isol",
            reason: format!(
                "the default profile does not know the number of {name} on {}",
                std::env::consts::ARCH
            ),
        })
    };
    let mut rules = Vec::new();
    for (name, gate) in default_blocklist() {
        if gate.is_some_and(|c| caps.contains(c)) {
            continue;
        }
        if !cfg!(target_arch = "x86_64") && syscalls::number(name).is_none() {
            continue;
        }
        rules.push(Rule {
            nr: nr(name)?,
            conds: Vec::new(),
            action: eperm.clone(),
        });
    }
    // An argument the filter compares in its low 32 bits, which is all the kernel reads
    // of these (an int domain, the tty layer's unsigned int request).
    let arg_is = |name: &str, arg: u8, value: u64| -> Result<Rule> {
        let c = SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, value)
            .map_err(|e| invalid(name, e))?;
        Ok(Rule {
            nr: nr(name)?,
            conds: vec![c],
            action: eperm.clone(),
        })
    };
    // vsock reaches the hypervisor's services, which no network namespace fences (docker
    // allows socket only for other families).
    rules.push(arg_is("socket", 0, libc::AF_VSOCK as u64)?);
    // A box on the caller's terminal must not type into it (TIOCSTI, the CVE-2017-5226
    // class), nor paste the console selection (TIOCLINUX).
    // (An unsigned long on glibc, an int on musl.)
    #[allow(clippy::unnecessary_cast)]
    let requests = [libc::TIOCSTI as u64, libc::TIOCLINUX as u64];
    for request in requests {
        rules.push(arg_is("ioctl", 1, request)?);
    }
    if !caps.contains(Capability::SYS_ADMIN) {
        // New namespaces only with CAP_SYS_ADMIN; clone3's flags sit behind a pointer
        // the filter cannot read, so it says ENOSYS and libc falls back to clone. The
        // flags are in the low 32 bits: comparing those alone is the same test in half
        // the instructions.
        for flag in CLONE_NS_FLAGS {
            let c = SeccompCondition::new(
                0,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::MaskedEq(flag),
                flag,
            )
            .map_err(|e| invalid("clone", e))?;
            rules.push(Rule {
                nr: nr("clone")?,
                conds: vec![c],
                action: eperm.clone(),
            });
        }
        rules.push(Rule {
            nr: nr("clone3")?,
            conds: Vec::new(),
            action: SeccompAction::Errno(libc::ENOSYS as u32),
        });
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::super::layout::interp::{decide, eval, ALLOW, EPERM};
    use super::super::SeccompProfile;
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn default_profile_blocks_and_gates() {
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

        // With CAP_SYS_ADMIN (and SYS_BOOT) the gated calls come back; keyctl never does.
        let mut caps = CapSet::docker_default();
        caps.insert(Capability::SYS_ADMIN);
        caps.insert(Capability::SYS_BOOT);
        let progs = SeccompProfile::Default.compile(caps).unwrap();
        for name in ["mount", "unshare", "setns", "kexec_load", "clone3"] {
            assert_eq!(
                decide(&progs, syscalls::number(name).unwrap(), z),
                ALLOW,
                "{name}"
            );
        }
        assert_eq!(decide(&progs, clone, newuser), ALLOW);
        assert_eq!(decide(&progs, libc::SYS_keyctl, z), EPERM);
        assert!(SeccompProfile::Unconfined.compile(caps).unwrap().is_empty());
    }

    #[test]
    fn every_default_name_is_known() {
        if cfg!(target_arch = "x86_64") {
            for (name, _) in default_blocklist() {
                assert!(syscalls::number(name).is_some(), "{name}");
            }
        }
    }
}
