//! The hardening system calls the child makes between clone and exec.
//!
//! # Safety
//!
//! [`run`] is called in the cloned child (see `spawn::sys`): it may only make system
//! calls on data prepared before the clone — no allocation, no lock, no panic. Each
//! [`ChildOp`] carries plain numbers or a `Vec` filled before the clone, which the child
//! only reads; the kernel structures (`__user_cap_header_struct`, `sock_fprog`,
//! `rlimit64`) are built on the child's stack.
#![allow(unsafe_code)]

use seccompiler::BpfProgram;

/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW` (linux/seccomp.h, Linux 4.17): installing a filter
/// does not also force the Spectre v4 (SSBD) and v2-user (STIBP/IBPB) mitigations on the
/// task. They guard code against other code *in its own address space* (a browser's JS
/// sandbox), not a box against the host, and cost ~0.8 ms per spawn of /bin/true on a
/// VM here; runc (since 1.1.5, PR 3588) and crun set it by default too.
const SECCOMP_FILTER_FLAG_SPEC_ALLOW: usize = 1 << 2;

/// `_LINUX_CAPABILITY_VERSION_3` (linux/capability.h): two 32-bit words per set.
const CAP_V3: u32 = 0x2008_0522;

/// One hardening step of the child (built by the security policy's plan).
#[derive(Clone, Debug)]
pub enum ChildOp {
    /// `prctl(PR_CAPBSET_DROP, n)` for every `n ≤ last_cap` not in `keep`.
    DropBounding {
        /// The kernel's highest capability.
        last_cap: u32,
        /// The mask kept.
        keep: u64,
    },
    /// `prctl(PR_SET_KEEPCAPS, 1)`: keep the permitted set across a uid change (execve
    /// resets it).
    KeepCaps,
    /// `capset(v3)`: effective = permitted = inheritable = `caps`.
    Capset {
        /// The mask.
        caps: u64,
    },
    /// `prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)`.
    ClearAmbient,
    /// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
    NoNewPrivs,
    /// `seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_SPEC_ALLOW, &prog)`.
    Seccomp {
        /// The compiled filter.
        program: BpfProgram,
    },
    /// `prlimit64(0, resource, &{soft, hard}, NULL)`.
    Setrlimit {
        /// `RLIMIT_*`.
        resource: u32,
        /// The soft limit (`u64::MAX`: unlimited).
        soft: u64,
        /// The hard limit.
        hard: u64,
    },
}

impl ChildOp {
    /// The step's name in errors.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            ChildOp::DropBounding { .. } => "drop bounding set",
            ChildOp::KeepCaps => "keep capabilities",
            ChildOp::Capset { .. } => "capset",
            ChildOp::ClearAmbient => "clear ambient set",
            ChildOp::NoNewPrivs => "no_new_privs",
            ChildOp::Seccomp { .. } => "seccomp",
            ChildOp::Setrlimit { .. } => "setrlimit",
        }
    }
}

fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

fn check(r: libc::c_long) -> Result<(), i32> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// `prctl(option, arg2, 0, 0, 0)` as a raw system call.
fn prctl(option: libc::c_int, arg2: libc::c_ulong) -> Result<(), i32> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_prctl, option, arg2, 0usize, 0usize, 0usize) })
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const seccompiler::sock_filter,
}

/// Runs one step in the child; the errno on failure.
pub(crate) fn run(op: &ChildOp) -> Result<(), i32> {
    match op {
        ChildOp::DropBounding { last_cap, keep } => {
            for cap in 0..=*last_cap {
                if keep & (1u64 << cap) != 0 {
                    continue;
                }
                match prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong) {
                    // A capability this kernel does not have.
                    Err(libc::EINVAL) => {}
                    r => r?,
                }
            }
            Ok(())
        }
        ChildOp::KeepCaps => prctl(libc::PR_SET_KEEPCAPS, 1),
        ChildOp::Capset { caps } => {
            let hdr = CapHeader {
                version: CAP_V3,
                pid: 0,
            };
            let word = |w: u32| CapData {
                effective: w,
                permitted: w,
                inheritable: w,
            };
            let data = [word(*caps as u32), word((*caps >> 32) as u32)];
            // SAFETY: a v3 header and the two data words it asks for, on our stack.
            check(unsafe {
                libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr())
            })
        }
        ChildOp::ClearAmbient => {
            // SAFETY: integer arguments only.
            check(unsafe {
                libc::syscall(
                    libc::SYS_prctl,
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                    0usize,
                    0usize,
                    0usize,
                )
            })
        }
        ChildOp::NoNewPrivs => prctl(libc::PR_SET_NO_NEW_PRIVS, 1),
        ChildOp::Seccomp { program } => {
            let prog = SockFprog {
                len: program.len() as libc::c_ushort,
                filter: program.as_ptr(),
            };
            // SAFETY: `prog` points at the instructions compiled before the clone (the
            // child's copy); the kernel copies them in.
            check(unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    SECCOMP_FILTER_FLAG_SPEC_ALLOW,
                    &prog as *const SockFprog,
                )
            })
        }
        ChildOp::Setrlimit {
            resource,
            soft,
            hard,
        } => {
            let lim = [*soft, *hard];
            // SAFETY: `lim` is a struct rlimit64 on our stack; the old-limit pointer is NULL.
            check(unsafe {
                libc::syscall(
                    libc::SYS_prlimit64,
                    0,
                    *resource,
                    lim.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                )
            })
        }
    }
}
