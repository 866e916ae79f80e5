//! Device rules on cgroup v2: an eBPF program of type `BPF_PROG_TYPE_CGROUP_DEVICE`
//! attached to the cgroup (cgroup-v2.rst, "Controllers / Device controller": "Device
//! controller manages access to device files … implemented on top of cgroup BPF").
//!
//! The program is assembled here from the rules — a handful of instructions per rule,
//! as runc, crun and youki do (no well-kept pure-Rust eBPF assembler exists for this).
//! It reads `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! (`access_type` = access << 16 | type), tries the rules from the *last* to the first,
//! and the first that matches decides (return 1 allows, 0 denies); nothing matching
//! denies. So "deny all, then the rules in order" means the same as on v1 for the rules
//! isol writes (allow-lists, with later denials carving out of earlier allows). A rule
//! matches when the type agrees (or is `a`), the numbers agree (or are `*`), and the
//! access asked for is within the rule's `rwm` letters.
//!
//! Applying loads the program (`bpf(BPF_PROG_LOAD)`), attaches it to the cgroup
//! directory with `BPF_F_ALLOW_MULTI` (`bpf(BPF_PROG_ATTACH)`), then detaches every
//! device program attached to this same cgroup before (isol's cgroup, isol's programs),
//! so there is no moment without one. A program cannot be read back as rules, so
//! [`ResourceController::read`] leaves `devices` empty.
//!
//! The assembler is safe code; the `bpf(2)` calls are in `sys`, the one module with
//! `unsafe`.
//!
//! # References
//! bpf(2); include/uapi/linux/bpf.h (`bpf_cgroup_dev_ctx`, `BPF_DEVCG_*`); runc's
//! libcontainer/cgroups/devices/devicefilter.go.

mod sys;

use std::fs::File;
use std::path::Path;

use isol_ns_core::resources::{DeviceRule, DeviceType};
use isol_ns_core::{Controller, Error, ResourceController, Resources, Result};

/// Applies device rules as an eBPF program.
#[derive(Debug)]
pub struct Devices;

impl ResourceController for Devices {
    fn controller(&self) -> Controller {
        Controller::Devices
    }

    fn apply(&self, dir: &Path, r: &Resources) -> Result<()> {
        if r.devices.is_empty() {
            return Ok(());
        }
        let insns = assemble(&r.devices);
        let cgroup = File::open(dir).map_err(|e| Error::io("open cgroup", dir, e))?;
        let old = sys::query(&cgroup).map_err(|e| Error::io("bpf(BPF_PROG_QUERY)", dir, e))?;
        let prog = sys::load(&insns)
            .map_err(|e| Error::io("bpf(BPF_PROG_LOAD) device program", dir, e))?;
        sys::attach(&cgroup, &prog)
            .map_err(|e| Error::io("bpf(BPF_PROG_ATTACH) device program", dir, e))?;
        for id in old {
            // A program detached meanwhile is gone already.
            if let Ok(fd) = sys::prog_fd_by_id(id) {
                sys::detach(&cgroup, &fd)
                    .map_err(|e| Error::io("bpf(BPF_PROG_DETACH) old device program", dir, e))?;
            }
        }
        Ok(())
    }

    fn read(&self, _dir: &Path, _out: &mut Resources) -> Result<()> {
        Ok(())
    }
}

/// `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// `dst_reg:4` (low nibble), `src_reg:4` (high nibble).
    pub regs: u8,
    /// Jump offset (in instructions, from the next one) or memory offset.
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

const BPF_DEVCG_DEV_BLOCK: i32 = 1;
const BPF_DEVCG_DEV_CHAR: i32 = 2;
const BPF_DEVCG_ACC_MKNOD: i32 = 1;
const BPF_DEVCG_ACC_READ: i32 = 2;
const BPF_DEVCG_ACC_WRITE: i32 = 4;

fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0xf),
        off,
        imm,
    }
}
/// `dst = *(u32 *)(src + off)` (BPF_LDX | BPF_MEM | BPF_W).
fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
    ins(0x61, dst, src, off, 0)
}
/// `dst &= imm` (32-bit ALU).
fn and32(dst: u8, imm: i32) -> Insn {
    ins(0x54, dst, 0, 0, imm)
}
/// `dst >>= imm` (32-bit ALU).
fn rsh32(dst: u8, imm: i32) -> Insn {
    ins(0x74, dst, 0, 0, imm)
}
/// `dst = src` (32-bit ALU).
fn mov32_reg(dst: u8, src: u8) -> Insn {
    ins(0xbc, dst, src, 0, 0)
}
/// `dst = imm` (64-bit ALU).
fn mov64_imm(dst: u8, imm: i32) -> Insn {
    ins(0xb7, dst, 0, 0, imm)
}
/// `if dst != imm goto +off`.
fn jne_imm(dst: u8, imm: i32, off: i16) -> Insn {
    ins(0x55, dst, 0, off, imm)
}
/// `if dst != src goto +off`.
fn jne_reg(dst: u8, src: u8, off: i16) -> Insn {
    ins(0x5d, dst, src, off, 0)
}
/// `return r0`.
fn exit() -> Insn {
    ins(0x95, 0, 0, 0, 0)
}

fn access_bits(access: &str) -> i32 {
    access.chars().fold(0, |a, c| {
        a | match c {
            'r' => BPF_DEVCG_ACC_READ,
            'w' => BPF_DEVCG_ACC_WRITE,
            'm' => BPF_DEVCG_ACC_MKNOD,
            _ => 0,
        }
    })
}

/// The program for `rules`: r2 = type, r3 = access, r4 = major, r5 = minor; one block per
/// rule, last rule first; deny when none matches.
pub fn assemble(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut p = vec![
        ldx_w(2, 1, 0),
        and32(2, 0xffff),
        ldx_w(3, 1, 0),
        rsh32(3, 16),
        ldx_w(4, 1, 4),
        ldx_w(5, 1, 8),
    ];
    for rule in rules.iter().rev() {
        // Conditions jump to the end of the block, whose length is known once built.
        let mut conds: Vec<(Insn, bool)> = Vec::new();
        match rule.kind {
            DeviceType::All => {}
            DeviceType::Char => conds.push((jne_imm(2, BPF_DEVCG_DEV_CHAR, 0), true)),
            DeviceType::Block => conds.push((jne_imm(2, BPF_DEVCG_DEV_BLOCK, 0), true)),
        }
        let acc = access_bits(&rule.access);
        if acc != BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD {
            // if (access & acc) != access: the request asks for more than the rule has.
            conds.push((mov32_reg(1, 3), false));
            conds.push((and32(1, acc), false));
            conds.push((jne_reg(1, 3, 0), true));
        }
        if let Some(m) = rule.major {
            conds.push((jne_imm(4, m as i32, 0), true));
        }
        if let Some(m) = rule.minor {
            conds.push((jne_imm(5, m as i32, 0), true));
        }
        let len = conds.len() + 2;
        for (i, (mut insn, jumps)) in conds.into_iter().enumerate() {
            if jumps {
                // From the instruction after this one to the first after the block.
                insn.off = (len - i - 1) as i16;
            }
            p.push(insn);
        }
        p.push(mov64_imm(0, rule.allow as i32));
        p.push(exit());
    }
    p.push(mov64_imm(0, 0));
    p.push(exit());
    p
}

/// The ids of the device programs attached to the cgroup at `dir` (for tests and
/// diagnostics).
pub fn attached(dir: &Path) -> Result<Vec<u32>> {
    let cgroup = File::open(dir).map_err(|e| Error::io("open cgroup", dir, e))?;
    sys::query(&cgroup).map_err(|e| Error::io("bpf(BPF_PROG_QUERY)", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a device program on `(type, access, major, minor)`: an interpreter of the
    /// instructions [`assemble`] emits.
    fn run(p: &[Insn], ty: i32, access: i32, major: u32, minor: u32) -> i64 {
        let ctx = [((access << 16) | ty) as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            pc += 1;
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            let jump = |pc: &mut usize, cond: bool| {
                if cond {
                    *pc = (*pc as i64 + i.off as i64) as usize;
                }
            };
            match i.code {
                0x61 => {
                    assert_eq!(src, 1, "loads only from the context");
                    r[dst] = ctx[(i.off / 4) as usize] as u64;
                }
                0x54 => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
                0x74 => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
                0xbc => r[dst] = r[src] as u32 as u64,
                0xb7 => r[dst] = i.imm as i64 as u64,
                0x55 => jump(&mut pc, r[dst] != i.imm as i64 as u64),
                0x5d => jump(&mut pc, r[dst] != r[src]),
                0x95 => return r[0] as i64,
                c => panic!("opcode {c:#x}"),
            }
        }
    }

    const C: i32 = BPF_DEVCG_DEV_CHAR;
    const B: i32 = BPF_DEVCG_DEV_BLOCK;
    const R: i32 = BPF_DEVCG_ACC_READ;
    const W: i32 = BPF_DEVCG_ACC_WRITE;
    const M: i32 = BPF_DEVCG_ACC_MKNOD;

    fn rules(lines: &[&str]) -> Vec<DeviceRule> {
        lines.iter().map(|l| l.parse().unwrap()).collect()
    }

    #[test]
    fn docker_allow_list() {
        let p = assemble(&isol_ns_core::security::default_devices());
        let table: &[(i32, i32, u32, u32, i64)] = &[
            (C, R | W, 1, 3, 1), // /dev/null
            (C, M, 1, 9, 1),     // mknod urandom
            (C, R, 136, 7, 1),   // /dev/pts/7
            (C, R | W, 5, 2, 1), // ptmx
            (C, R, 1, 1, 0),     // /dev/mem
            (C, R, 5, 1, 0),     // /dev/console
            (B, R, 8, 0, 0),     // sda
            (B, M, 8, 0, 0),     // mknod sda
            (B, R, 1, 3, 0),     // a block device with null's numbers
            (C, R, 4, 0, 0),     // tty0
        ];
        for &(ty, acc, maj, min, want) in table {
            assert_eq!(run(&p, ty, acc, maj, min), want, "{ty} {acc} {maj}:{min}");
        }
    }

    #[test]
    fn access_letters_and_wildcards() {
        let p = assemble(&rules(&["c 1:3 r", "b *:* m", "a 7:* rw"]));
        assert_eq!(run(&p, C, R, 1, 3), 1);
        assert_eq!(run(&p, C, W, 1, 3), 0, "w not granted");
        assert_eq!(run(&p, C, R | W, 1, 3), 0, "asks for more than r");
        assert_eq!(run(&p, B, M, 259, 1), 1);
        assert_eq!(run(&p, B, R, 259, 1), 0);
        assert_eq!(run(&p, B, R | W, 7, 4), 1, "a matches block");
        assert_eq!(run(&p, C, W, 7, 0), 1, "a matches char");
        assert_eq!(run(&p, C, M, 7, 0), 0);
        assert_eq!(assemble(&[]).len(), 8, "deny everything");
        assert_eq!(run(&assemble(&[]), C, R, 1, 3), 0);
    }

    #[test]
    fn later_rules_win() {
        let p = assemble(&rules(&["c 1:* rwm", "deny c 1:5 w"]));
        assert_eq!(run(&p, C, R, 1, 5), 1);
        assert_eq!(run(&p, C, W, 1, 5), 0);
        assert_eq!(run(&p, C, W, 1, 3), 1);
        let p = assemble(&rules(&["deny c 1:5 rwm", "c 1:* rwm"]));
        assert_eq!(run(&p, C, W, 1, 5), 1);
    }

    #[test]
    fn encoding() {
        // The prologue, byte for byte as runc's devicefilter emits it.
        let p = assemble(&[]);
        assert_eq!(
            p[0],
            Insn {
                code: 0x61,
                regs: 0x12,
                off: 0,
                imm: 0
            }
        );
        assert_eq!(
            p[1],
            Insn {
                code: 0x54,
                regs: 0x02,
                off: 0,
                imm: 0xffff
            }
        );
        assert_eq!(
            p[3],
            Insn {
                code: 0x74,
                regs: 0x03,
                off: 0,
                imm: 16
            }
        );
        assert_eq!(
            p[5],
            Insn {
                code: 0x61,
                regs: 0x15,
                off: 8,
                imm: 0
            }
        );
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }
}
