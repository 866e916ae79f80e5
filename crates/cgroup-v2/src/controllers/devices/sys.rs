//! The `bpf(2)` calls of the v2 device controller: load a `BPF_PROG_TYPE_CGROUP_DEVICE`
//! program, attach it to a cgroup and detach it, list the programs attached to a cgroup
//! and open one by id.
//!
//! # Safety
//!
//! The `bpf(2)` calls pass pointers to `bpf_attr` unions and instruction arrays that live
//! on the stack or in a `Vec` for the duration of the call; the kernel copies them in
//! (and writes program ids into a buffer of the size it is told). Every returned fd is
//! wrapped in an `OwnedFd` at once.
//!
//! # References
//! bpf(2); include/uapi/linux/bpf.h (`union bpf_attr`).
#![allow(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::Insn;

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The `BPF_PROG_LOAD` member of `union bpf_attr`, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The `BPF_PROG_ATTACH`/`DETACH` member.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// The `BPF_PROG_QUERY` member.
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// The `BPF_PROG_GET_FD_BY_ID` member.
#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// `bpf(cmd, attr, sizeof(*attr))` — bpf(2).
///
/// # Safety
/// `attr` must be the member of `union bpf_attr` that `cmd` reads, initialised, and every
/// pointer in it must be valid, for the whole call, for what `cmd` reads or writes
/// through it (and as long as it says).
unsafe fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, exclusive reference of the size passed; what the kernel
    // does with its contents is the caller's promise.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>(),
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// [`bpf`] for a command that returns a new fd, which the result owns.
///
/// # Safety
/// As for [`bpf`]; and `cmd` returns a new fd on success.
unsafe fn bpf_fd<T>(cmd: libc::c_int, attr: &mut T) -> std::io::Result<OwnedFd> {
    // SAFETY: the caller's promise, passed on.
    let fd = unsafe { bpf(cmd, attr) }?;
    // SAFETY: the kernel just returned this new fd (the caller says `cmd` does); nothing
    // else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `BPF_PROG_LOAD` of a device program made of `insns`, named `isol_devs`.
pub(super) fn load(insns: &[Insn]) -> std::io::Result<OwnedFd> {
    let license = c"GPL";
    let mut name = [0u8; 16];
    name[..9].copy_from_slice(b"isol_devs");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        ..Default::default()
    };
    // SAFETY: the BPF_PROG_LOAD member; `insns` (insn_cnt of them) and the license outlive
    // the call, and no log buffer is given. It returns the program's new fd.
    unsafe { bpf_fd(BPF_PROG_LOAD, &mut attr) }
}

/// `BPF_PROG_ATTACH` of the device program `prog` to `cgroup`, beside the others.
pub(super) fn attach(cgroup: impl AsFd, prog: impl AsFd) -> std::io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: cgroup.as_fd().as_raw_fd() as u32,
        attach_bpf_fd: prog.as_fd().as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    // SAFETY: the BPF_PROG_ATTACH member, with no pointers; both fds are open (borrowed).
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }.map(drop)
}

/// `BPF_PROG_DETACH` of the device program `prog` from `cgroup`.
pub(super) fn detach(cgroup: impl AsFd, prog: impl AsFd) -> std::io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: cgroup.as_fd().as_raw_fd() as u32,
        attach_bpf_fd: prog.as_fd().as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    // SAFETY: the BPF_PROG_DETACH member, with no pointers; both fds are open (borrowed).
    unsafe { bpf(BPF_PROG_DETACH, &mut attr) }.map(drop)
}

/// `BPF_PROG_QUERY`: the ids of the device programs attached to `cgroup` itself (not
/// inherited ones), at most 64.
pub(super) fn query(cgroup: impl AsFd) -> std::io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: cgroup.as_fd().as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    // SAFETY: the BPF_PROG_QUERY member; the kernel writes at most `prog_cnt` ids into
    // `ids`, which holds that many and outlives the call.
    unsafe { bpf(BPF_PROG_QUERY, &mut attr) }?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

/// `BPF_PROG_GET_FD_BY_ID`: a new fd on the program `id`.
pub(super) fn prog_fd_by_id(id: u32) -> std::io::Result<OwnedFd> {
    let mut attr = GetFdAttr {
        prog_id: id,
        ..Default::default()
    };
    // SAFETY: the BPF_PROG_GET_FD_BY_ID member, with no pointers; it returns a new fd.
    unsafe { bpf_fd(BPF_PROG_GET_FD_BY_ID, &mut attr) }
}
