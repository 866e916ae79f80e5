//! isol's one seccomp filter, laid out from a profile's rules.
//!
//! seccompiler compiles each rule (the conditions on a call's arguments) into BPF; isol
//! lays the rules out in one filter:
//!
//! 1. seccompiler's architecture check: another architecture's calls (`int 0x80` on
//!    x86_64) kill the process, which a 64-bit box has no use for;
//! 2. on x86_64, EPERM for every x32 call number (bit 30): the filter compares call
//!    numbers exactly, so a rule on a call would otherwise be bypassed through the x32
//!    number of the same call;
//! 3. a binary search on the call number over *segments*: runs of numbers that return
//!    the same constant (the default, or a rule's action without conditions) are one
//!    segment, and a call whose rules have conditions gets its own, which holds its rules
//!    (most severe action first) and returns the default when none holds.
//!
//! So a call gets the most severe action among the rules whose conditions hold, and the
//! profile's default action when none holds (rules whose action is the default are
//! moot): what a stack of one filter per action gave when the kernel obeyed the most
//! severe result of the stack (KILL_PROCESS > KILL_THREAD > TRAP > ERRNO > TRACE > LOG >
//! ALLOW; seccomp(2) "Filter return values").
//!
//! Why one filter and a search, not seccompiler's own layout (one filter per action,
//! each a linear chain of comparisons): the cost is at install time, per spawn. Each
//! filter has a fixed cost (allocation, JIT image); the kernel JIT-compiles it, at a
//! cost that grows with its length, and then runs it, emulated, on every call number of
//! both architectures to find the calls it always allows (which then skip the filter):
//! a linear chain of ~60 calls costs that emulation ~60 comparisons per number, the
//! search ~5 (it is weighted: a segment of many numbers gets a short path). Docker's
//! default profile, as a block-list, went from 338 instructions in two filters (~170 µs
//! to install on a test VM) to one of 84 (~40 µs); see `examples/security_cost.rs`. As
//! the allow-list it is now, every call of the table is a rule, and the search runs over
//! the 69 segments its refused calls cut x86_64's table into: 129 instructions (see
//! BENCHMARKS.md).
//!
//! The filter is built for the architecture of a system call table (`Syscalls`), this
//! one's in a box, any in the tests.
//!
//! # References
//! seccomp(2); the kernel's `seccomp_cache_prepare` (kernel/seccomp.c, Linux 5.11).

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};

use super::{invalid, Rule};
use crate::security::syscalls::{self, Syscalls};
use crate::{Error, Result};

/// `BPF_MAXINSNS`: the longest program the kernel accepts.
const MAX_LEN: usize = 4096;

const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

fn ins(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// What the filter does for one call number: return a constant, or run code (the call's
/// rule chain) that ends in returns.
#[derive(Clone, Debug, PartialEq)]
enum Leaf {
    Ret(u32),
    Code(Vec<sock_filter>),
}

impl Leaf {
    fn code(&self) -> Vec<sock_filter> {
        match self {
            Leaf::Ret(k) => vec![ins(RET_K, 0, 0, *k)],
            Leaf::Code(c) => c.clone(),
        }
    }
}

/// Where `a` stands among actions, as the kernel combines filters (seccomp(2) "Filter
/// return values"): the lower, the more it wins.
fn precedence(a: &SeccompAction) -> i32 {
    (u32::from(a.clone()) & libc::SECCOMP_RET_ACTION_FULL) as i32
}

/// Compiles `rules` under `default` into one filter for this architecture, described in
/// the module docs.
pub(crate) fn filter(default: SeccompAction, rules: &[Rule]) -> Result<BpfProgram> {
    filter_for(syscalls::native(), default, rules)
}

/// Compiles `rules` (numbered as in `calls`) under `default` into one filter for the
/// architecture of `calls`.
pub(crate) fn filter_for(
    calls: &Syscalls,
    default: SeccompAction,
    rules: &[Rule],
) -> Result<BpfProgram> {
    let arch = TargetArch::try_from(calls.arch).map_err(|_| Error::Unsupported {
        setting: "seccomp".into(),
        backend: "isol",
        reason: format!("seccompiler cannot build filters for {}", calls.arch),
    })?;
    let actions = actions(&default, rules);
    let by_nr = by_number(&default, rules, &actions)?;
    let segments = segments(&default, &actions, by_nr)?;
    let mut out = arch_check(arch)?;
    out.push(ins(LD_W_ABS, 0, 0, 0)); // seccomp_data.nr
    if calls.arch == "x86_64" {
        // x32 call numbers (bit 30): the segments compare x86_64 numbers, so a rule
        // would otherwise be bypassed through the x32 number of the same call.
        out.push(ins(JSET_K, 0, 1, 0x4000_0000));
        out.push(ins(
            RET_K,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        ));
    }
    out.extend(search(&segments, calls));
    if out.len() > MAX_LEN {
        return Err(invalid(
            "filter",
            format!(
                "{} instructions, more than the kernel's {MAX_LEN}",
                out.len()
            ),
        ));
    }
    Ok(out)
}

/// The actions `rules` may return besides `default`, most severe first. Among equals
/// (ERRNO with two errnos) the later action of `rules` first: that is the data the kernel
/// returned when each action had a filter of its own, installed in that order.
fn actions(default: &SeccompAction, rules: &[Rule]) -> Vec<SeccompAction> {
    let mut actions: Vec<SeccompAction> = Vec::new();
    for r in rules.iter().filter(|r| r.action != *default) {
        if !actions.contains(&r.action) {
            actions.push(r.action.clone());
        }
    }
    let mut order: Vec<usize> = (0..actions.len()).collect();
    order.sort_by_key(|&i| (precedence(&actions[i]), std::cmp::Reverse(i)));
    order.into_iter().map(|i| actions[i].clone()).collect()
}

/// One call's rules, per action (in the order of [`actions`]): `None` when a rule
/// without conditions returns it, else the rules' condition lists (any of which holding
/// returns it; none: the action is not returned).
type Slots = Vec<Option<Vec<Vec<SeccompCondition>>>>;

/// What the rules say for one call number.
enum Call {
    /// Rules without conditions only: the most severe of their actions (its index in
    /// [`actions`]). Most calls of an allow-list, which need no [`Slots`] of their own.
    Const(usize),
    /// Rules with conditions among them.
    Slots(Slots),
}

/// The rules that do not return `default`, by call number, in the order of the numbers.
fn by_number(
    default: &SeccompAction,
    rules: &[Rule],
    actions: &[SeccompAction],
) -> Result<Vec<(u32, Call)>> {
    let mut order: Vec<(u32, usize)> = Vec::with_capacity(rules.len());
    for (i, r) in rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.action != *default)
    {
        let nr = u32::try_from(r.nr)
            .map_err(|_| invalid("rule", format!("{} is no system call number", r.nr)))?;
        order.push((nr, i));
    }
    // Stable: a call's rules keep their order.
    order.sort_by_key(|&(nr, _)| nr);
    let action = |i: usize| {
        actions
            .iter()
            .position(|a| *a == rules[i].action)
            .unwrap_or(0)
    };
    let mut out = Vec::new();
    for group in order.chunk_by(|a, b| a.0 == b.0) {
        let nr = group[0].0;
        if group.iter().all(|&(_, i)| rules[i].conds.is_empty()) {
            let most_severe = group.iter().map(|&(_, i)| action(i)).min().unwrap_or(0);
            out.push((nr, Call::Const(most_severe)));
            continue;
        }
        let mut slots: Slots = vec![Some(Vec::new()); actions.len()];
        for &(_, i) in group {
            let slot = &mut slots[action(i)];
            match (slot.as_mut(), rules[i].conds.is_empty()) {
                (_, true) => *slot = None,
                (Some(list), false) => list.push(rules[i].conds.clone()),
                (None, false) => {}
            }
        }
        out.push((nr, Call::Slots(slots)));
    }
    Ok(out)
}

/// One call's leaf: its rules, most severe action first, each rule compiled by
/// seccompiler (falls through to the `ret` that follows when its conditions hold, jumps
/// past it when they do not), and the default when none holds.
fn leaf(default: &SeccompAction, actions: &[SeccompAction], slots: Slots) -> Result<Leaf> {
    let mut code = Vec::new();
    let mut open = true;
    for (action, slot) in actions.iter().zip(slots) {
        let ret = ins(RET_K, 0, 0, u32::from(action.clone()));
        match slot {
            None => {
                code.push(ret);
                open = false;
                break;
            }
            Some(lists) => {
                for conds in lists {
                    code.extend(rule_code(conds)?);
                    code.push(ret.clone());
                }
            }
        }
    }
    if open {
        code.push(ins(RET_K, 0, 0, u32::from(default.clone())));
    }
    Ok(match code.as_slice() {
        [only] => Leaf::Ret(only.k),
        _ => Leaf::Code(code),
    })
}

/// seccompiler's code for one rule's conditions: falls through when they all hold, jumps
/// past the instruction that follows when one does not.
fn rule_code(conds: Vec<SeccompCondition>) -> Result<Vec<sock_filter>> {
    let rule = SeccompRule::new(conds).map_err(|e| invalid("rule", e))?;
    let mut rule = BpfProgram::from(rule);
    // seccompiler begins a rule with `ja 1; ja <out>` for its own layout: the first steps
    // over the second, which nothing else reaches. Here a rule is only entered at its
    // start: both go.
    if rule.len() > 2 && (rule[0].code, rule[0].k) == (JA, 1) && rule[1].code == JA {
        rule.drain(..2);
    }
    Ok(rule)
}

/// The call numbers as segments `(first number, leaf)`, each lasting until the next:
/// runs of numbers that return the same constant are one segment.
fn segments(
    default: &SeccompAction,
    actions: &[SeccompAction],
    calls: Vec<(u32, Call)>,
) -> Result<Vec<(u32, Leaf)>> {
    let ret_default = || Leaf::Ret(u32::from(default.clone()));
    let mut segments: Vec<(u32, Leaf)> = vec![(0, ret_default())];
    for (nr, call) in calls {
        let leaf = match call {
            Call::Const(i) => Leaf::Ret(u32::from(actions[i].clone())),
            Call::Slots(slots) => leaf(default, actions, slots)?,
        };
        push_segment(&mut segments, nr, leaf);
        if let Some(next) = nr.checked_add(1) {
            push_segment(&mut segments, next, ret_default());
        }
    }
    Ok(segments)
}

/// Appends the segment starting at `start` (replacing one that starts there too), unless
/// it returns the same constant as the one before.
fn push_segment(segments: &mut Vec<(u32, Leaf)>, start: u32, leaf: Leaf) {
    if segments.last().is_some_and(|(s, _)| *s == start) {
        segments.pop();
    }
    match (segments.last(), &leaf) {
        (Some((_, Leaf::Ret(a))), Leaf::Ret(b)) if a == b => {}
        _ => segments.push((start, leaf)),
    }
}

/// seccompiler's architecture check (`ld arch; jeq AUDIT_ARCH, +1; ret KILL_PROCESS`),
/// without the `ret` it ends an empty filter with.
fn arch_check(arch: TargetArch) -> Result<BpfProgram> {
    let mut out = BpfProgram::try_from(
        SeccompFilter::new(
            BTreeMap::new(),
            SeccompAction::Allow,
            SeccompAction::KillProcess,
            arch,
        )
        .map_err(|e| invalid("architecture check", e))?,
    )
    .map_err(|e| invalid("architecture check", e))?;
    match out.pop() {
        Some(last) if last.code == RET_K && out.len() == 3 && out[0].code == LD_W_ABS => Ok(out),
        _ => Err(invalid(
            "architecture check",
            "seccompiler's filter does not begin as expected",
        )),
    }
}

/// Where to split `segments` (at least two, the last lasting until `upper`) for the
/// search: so that as many call numbers of this architecture lie on each side, as near
/// as can be. The kernel runs the filter on every one of them at install (see the
/// module docs), so a segment that holds many is worth a short path.
fn split(segments: &[(u32, Leaf)], upper: u64, calls: &Syscalls) -> usize {
    // This architecture's call numbers: the table's, with room for calls added since.
    let end = calls.last().map_or(512, |nr| nr as u64 + 1) + 8;
    let weight = |i: usize| {
        let from = u64::from(segments[i].0);
        let to = segments.get(i + 1).map_or(upper, |(s, _)| u64::from(*s));
        to.min(end).saturating_sub(from.min(end))
    };
    let total: u64 = (0..segments.len()).map(weight).sum();
    let mut below = 0;
    let mut best = (u64::MAX, segments.len() / 2);
    for mid in 1..segments.len() {
        below += weight(mid - 1);
        let gap = below.abs_diff(total - below);
        if gap < best.0 {
            best = (gap, mid);
        }
    }
    best.1
}

/// A binary search over `segments` (sorted, the first starting at 0) on the call number
/// in the accumulator, down to each segment's leaf. Leaves that only return a constant
/// are one shared `ret` after the search, which the comparisons jump to, where the
/// 8-bit offsets of conditional jumps reach; otherwise each leaf is laid out in place.
fn search(segments: &[(u32, Leaf)], calls: &Syscalls) -> Vec<sock_filter> {
    shared_search(segments, calls).unwrap_or_else(|| inline_search(segments, u64::MAX, calls))
}

/// Where a comparison goes: `n` instructions further on, or the shared `ret k`.
#[derive(Clone, Copy)]
enum Jump {
    Skip(usize),
    Ret(u32),
}

fn shared_search(segments: &[(u32, Leaf)], calls: &Syscalls) -> Option<Vec<sock_filter>> {
    enum Node {
        Ins(sock_filter),
        Cmp { k: u32, jt: Jump, jf: Jump },
    }
    fn walk(segments: &[(u32, Leaf)], upper: u64, calls: &Syscalls) -> Vec<Node> {
        if let [(_, leaf)] = segments {
            return leaf.code().into_iter().map(Node::Ins).collect();
        }
        let mid = split(segments, upper, calls);
        let side = |segs: &[(u32, Leaf)], upper| match segs {
            [(_, Leaf::Ret(k))] => (Jump::Ret(*k), Vec::new()),
            _ => (Jump::Skip(0), walk(segs, upper, calls)),
        };
        let (jf, below) = side(&segments[..mid], u64::from(segments[mid].0));
        let (mut jt, above) = side(&segments[mid..], upper);
        if let Jump::Skip(_) = jt {
            jt = Jump::Skip(below.len());
        }
        let mut out = vec![Node::Cmp {
            k: segments[mid].0,
            jt,
            jf,
        }];
        out.extend(below);
        out.extend(above);
        out
    }
    let nodes = walk(segments, u64::MAX, calls);
    let mut pool: Vec<u32> = Vec::new();
    for n in &nodes {
        if let Node::Cmp { jt, jf, .. } = n {
            for j in [jt, jf] {
                if let Jump::Ret(k) = j {
                    if !pool.contains(k) {
                        pool.push(*k);
                    }
                }
            }
        }
    }
    let len = nodes.len();
    let mut out = Vec::with_capacity(len + pool.len());
    for (i, n) in nodes.into_iter().enumerate() {
        match n {
            Node::Ins(i) => out.push(i),
            Node::Cmp { k, jt, jf } => {
                let off = |j: Jump| -> Option<u8> {
                    let n = match j {
                        Jump::Skip(n) => n,
                        Jump::Ret(k) => len - i - 1 + pool.iter().position(|p| *p == k)?,
                    };
                    u8::try_from(n).ok()
                };
                out.push(ins(JGE_K, off(jt)?, off(jf)?, k));
            }
        }
    }
    out.extend(pool.into_iter().map(|k| ins(RET_K, 0, 0, k)));
    Some(out)
}

/// The search with every leaf in place, for programs too long for [`shared_search`].
fn inline_search(segments: &[(u32, Leaf)], upper: u64, calls: &Syscalls) -> Vec<sock_filter> {
    if let [(_, leaf)] = segments {
        return leaf.code();
    }
    let mid = split(segments, upper, calls);
    let below = inline_search(&segments[..mid], u64::from(segments[mid].0), calls);
    let above = inline_search(&segments[mid..], upper, calls);
    let start = segments[mid].0;
    let mut out = Vec::with_capacity(below.len() + above.len() + 2);
    match u8::try_from(below.len()) {
        // nr >= start: skip the lower half.
        Ok(skip) => out.push(ins(JGE_K, skip, 0, start)),
        // Too far for a conditional jump (8-bit offsets): through an unconditional one.
        Err(_) => {
            out.push(ins(JGE_K, 0, 1, start));
            out.push(ins(JA, 0, 0, below.len() as u32));
        }
    }
    out.extend(below);
    out.extend(above);
    out
}

/// What a filter decides for a call, for the tests of every part of the profile.
#[cfg(test)]
pub(super) mod interp {
    use seccompiler::{sock_filter, BpfProgram};

    /// Runs a classic BPF seccomp program on `(arch, nr, args)`: a tiny interpreter of
    /// the instructions seccompiler and the x32 guard emit, so the tests check what the
    /// filters *decide*, not how they are spelled.
    pub(crate) fn eval(prog: &[sock_filter], arch: u32, nr: i32, args: [u64; 6]) -> u32 {
        let mut data = [0u32; 16];
        data[0] = nr as u32;
        data[1] = arch;
        for (i, a) in args.iter().enumerate() {
            data[4 + 2 * i] = *a as u32;
            data[5 + 2 * i] = (*a >> 32) as u32;
        }
        let (mut acc, mut x, mut pc) = (0u32, 0u32, 0usize);
        let mut mem = [0u32; 16];
        loop {
            let i = &prog[pc];
            pc += 1;
            let k = i.k;
            match i.code {
                0x20 => acc = data[(k / 4) as usize], // ld [k]
                0x00 => acc = k,                      // ld #k
                0x01 => x = k,                        // ldx #k
                0x02 => mem[k as usize] = acc,        // st
                0x60 => acc = mem[k as usize],        // ld M[k]
                0x54 => acc &= k,                     // and #k
                0x05 => pc += k as usize,             // ja
                0x15 => pc += if acc == k { i.jt } else { i.jf } as usize, // jeq
                0x25 => pc += if acc > k { i.jt } else { i.jf } as usize, // jgt
                0x35 => pc += if acc >= k { i.jt } else { i.jf } as usize, // jge
                0x45 => pc += if acc & k != 0 { i.jt } else { i.jf } as usize, // jset
                0x06 => return k,                     // ret #k
                0x16 => return acc,                   // ret a
                c => panic!("instruction {c:#x} not interpreted (x={x})"),
            }
        }
    }

    /// The most severe result of a stack of x86_64 filters, as the kernel combines them.
    pub(crate) fn decide(progs: &[BpfProgram], nr: i64, args: [u64; 6]) -> u32 {
        decide_on(AUDIT_ARCH_X86_64, progs, nr, args)
    }

    /// The most severe result of a stack, for a call of architecture `arch` (an
    /// `AUDIT_ARCH_*`), as the kernel combines them.
    pub(crate) fn decide_on(arch: u32, progs: &[BpfProgram], nr: i64, args: [u64; 6]) -> u32 {
        let rank = |r: u32| match r & 0xffff_0000 {
            0x8000_0000 => 0, // KILL_PROCESS
            0x0000_0000 => 1, // KILL_THREAD
            0x0003_0000 => 2, // TRAP
            0x0005_0000 => 3, // ERRNO
            0x7ff0_0000 => 4, // TRACE
            0x7ffc_0000 => 5, // LOG
            _ => 6,           // ALLOW
        };
        progs
            .iter()
            .map(|p| eval(p, arch, nr as i32, args))
            .min_by_key(|r| rank(*r))
            .unwrap_or(libc::SECCOMP_RET_ALLOW)
    }

    pub(crate) const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    pub(crate) const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    pub(crate) const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    /// linux/audit.h.
    pub(crate) const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    pub(crate) const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;

    /// The `AUDIT_ARCH_*` of the architecture Rust names `arch`.
    pub(crate) fn audit_arch(arch: &str) -> u32 {
        match arch {
            "x86_64" => AUDIT_ARCH_X86_64,
            "aarch64" => AUDIT_ARCH_AARCH64,
            other => panic!("no audit architecture for {other}"),
        }
    }
}

/// x86_64's numbers and filters (the tests of other architectures' filters are in
/// `default.rs`).
#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use seccompiler::{SeccompCmpArgLen, SeccompCmpOp};

    use super::super::default::{rules, CLONE_NS_FLAGS};
    use super::super::SeccompProfile;
    use super::interp::{decide, eval, EPERM};
    use super::*;
    use crate::security::caps::{CapSet, Capability};
    use crate::security::syscalls::X86_64;

    /// Docker's default profile's rules on x86_64, for a box keeping `caps`.
    fn default_rules(caps: CapSet) -> Result<Vec<Rule>> {
        rules(&X86_64, caps)
    }

    /// Docker's default profile's default action: ENOSYS.
    const ENOSYS: SeccompAction = SeccompAction::Errno(libc::ENOSYS as u32);

    #[test]
    fn unconditional_rule_beats_conditional_one() {
        let rules = vec![
            Rule {
                nr: libc::SYS_read,
                conds: vec![
                    SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::Eq, 5).unwrap(),
                ],
                action: SeccompAction::Errno(1),
            },
            Rule {
                nr: libc::SYS_read,
                conds: Vec::new(),
                action: SeccompAction::Errno(1),
            },
        ];
        let progs = [filter(SeccompAction::Allow, &rules).unwrap()];
        assert_eq!(decide(&progs, libc::SYS_read, [7, 0, 0, 0, 0, 0]), EPERM);
    }

    /// The layout isol used before one filter: one linear seccompiler filter per action
    /// (the base filter returning the default for calls no other rule names), with the
    /// x32 guard spliced in after the architecture check. The oracle the single filter
    /// must agree with.
    fn linear_stack(default: SeccompAction, rules: &[Rule]) -> Vec<BpfProgram> {
        let arch = TargetArch::x86_64;
        type Chains = BTreeMap<i64, Option<Vec<Vec<SeccompCondition>>>>;
        let add = |chains: &mut Chains, r: &Rule| {
            let slot = chains.entry(r.nr).or_insert_with(|| Some(Vec::new()));
            match (slot.as_mut(), r.conds.is_empty()) {
                (_, true) => *slot = None,
                (Some(list), false) => list.push(r.conds.clone()),
                (None, false) => {}
            }
        };
        let build = |chains: Chains, mismatch: SeccompAction, matched: SeccompAction| {
            let map = chains
                .into_iter()
                .map(|(nr, c)| {
                    let rules = c
                        .unwrap_or_default()
                        .into_iter()
                        .map(|conds| SeccompRule::new(conds).unwrap())
                        .collect::<Vec<_>>();
                    (nr, rules)
                })
                .collect::<BTreeMap<_, _>>();
            let f = SeccompFilter::new(map, mismatch, matched, arch).unwrap();
            BpfProgram::try_from(f).unwrap()
        };
        let mut out = Vec::new();
        if default != SeccompAction::Allow {
            let mut known = Chains::new();
            for r in rules.iter().filter(|r| r.action != default) {
                add(&mut known, r);
            }
            out.push(build(known, default.clone(), SeccompAction::Allow));
        }
        let mut by_action: Vec<(SeccompAction, Chains)> = Vec::new();
        for r in rules
            .iter()
            .filter(|r| r.action != default && r.action != SeccompAction::Allow)
        {
            let i = match by_action.iter().position(|(a, _)| *a == r.action) {
                Some(i) => i,
                None => {
                    by_action.push((r.action.clone(), Chains::new()));
                    by_action.len() - 1
                }
            };
            add(&mut by_action[i].1, r);
        }
        for (action, chains) in by_action {
            out.push(build(chains, SeccompAction::Allow, action));
        }
        if cfg!(target_arch = "x86_64") {
            let guard = [
                ins(LD_W_ABS, 0, 0, 0),
                ins(JSET_K, 0, 1, 0x4000_0000),
                ins(RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
                ins(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
            ];
            match out.first_mut() {
                Some(p) => {
                    p.splice(3..3, guard[..3].iter().cloned());
                }
                None => out.push(guard.to_vec()),
            }
        }
        out
    }

    /// Like [`decide`], but among results of equal precedence the later filter's, as
    /// the kernel does (it walks the stack from the newest filter and replaces its
    /// result only with a strictly more severe one).
    fn decide_stack(progs: &[BpfProgram], nr: i64, args: [u64; 6]) -> u32 {
        let arch = 0xC000_003E;
        let mut ret = libc::SECCOMP_RET_ALLOW;
        for p in progs.iter().rev() {
            let cur = eval(p, arch, nr as i32, args);
            let rank = |r: u32| (r & libc::SECCOMP_RET_ACTION_FULL) as i32;
            if rank(cur) < rank(ret) {
                ret = cur;
            }
        }
        ret
    }

    fn cond(index: u8, op: SeccompCmpOp, value: u64) -> SeccompCondition {
        SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value).unwrap()
    }

    /// Every call number (and x32 and out-of-range ones) under argument vectors that
    /// make the profiles' conditions hold and fail: the single filter decides as the
    /// stack it replaced did, for docker's default under several capability sets,
    /// overlapping rules of several actions and errnos under each kind of default, and
    /// a profile large enough that the search needs long jumps.
    #[test]
    fn one_filter_decides_like_the_stack_of_filters() {
        let mut profiles: Vec<(SeccompAction, Vec<Rule>)> = Vec::new();
        let mut admin = CapSet::docker_default();
        admin.insert(Capability::SYS_ADMIN);
        let mut ptrace = CapSet::docker_default();
        ptrace.insert(Capability::SYS_PTRACE);
        for caps in [
            CapSet::docker_default(),
            CapSet::EMPTY,
            CapSet::all(),
            admin,
            ptrace,
        ] {
            profiles.push((ENOSYS, default_rules(caps).unwrap()));
        }
        let rule = |nr: i64, conds: Vec<SeccompCondition>, action: SeccompAction| Rule {
            nr,
            conds,
            action,
        };
        use SeccompAction::*;
        use SeccompCmpOp::*;
        let overlapping = vec![
            rule(0, vec![cond(0, Eq, 5)], Errno(1)),
            rule(0, vec![cond(0, Eq, 5)], Errno(13)),
            rule(0, vec![cond(1, Gt, 9)], Trap),
            rule(0, vec![cond(0, Eq, 7)], Allow),
            rule(1, vec![cond(0, Le, 1)], Allow),
            rule(1, vec![], Errno(13)),
            rule(2, vec![cond(0, MaskedEq(0xf0), 0x10)], KillProcess),
            rule(2, vec![cond(0, Ne, 0)], Log),
            rule(3, vec![], Allow),
            rule(4, vec![], Errno(1)),
            rule(5, vec![], Errno(1)),
            rule(7, vec![], Errno(1)),
            rule(8, vec![cond(1, Ge, 1 << 32)], Errno(1)),
            rule(8, vec![cond(0, Lt, 3), cond(1, Eq, 0)], Trace(4)),
            rule(9, vec![], KillThread),
            rule(435, vec![], Errno(38)),
            rule(436, vec![cond(0, Eq, 5)], Allow),
        ];
        for default in [Allow, Errno(38), Errno(1), KillProcess, Trap, Log] {
            profiles.push((default, overlapping.clone()));
        }
        let mut large = Vec::new();
        for nr in 0..450 {
            match nr % 4 {
                0 => large.push(rule(nr, vec![cond(0, Eq, nr as u64)], Errno(1))),
                1 => large.push(rule(nr, vec![], Errno(1))),
                2 => large.push(rule(nr, vec![cond(1, Ge, 5), cond(2, Le, 6)], Allow)),
                _ => {}
            }
        }
        profiles.push((Errno(38), large));

        let mut args = vec![[0u64; 6], [u64::MAX; 6]];
        for a0 in [1, 3, 5, 7, 8, 9, 0x10, 0x1f, 0x20, 1 << 32] {
            for a1 in [0, 1, 9, 10, 1 << 32] {
                args.push([a0, a1, 6, 0, 0, 0]);
            }
        }
        args.push([libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]);
        args.push([
            libc::CLONE_NEWNS as u64 | libc::SIGCHLD as u64,
            0,
            0,
            0,
            0,
            0,
        ]);
        let mut nrs: Vec<i64> = (0..600).collect();
        nrs.extend([0x4000_0000, 0x4000_0000 | libc::SYS_keyctl, 0x7fff_ffff, -1]);
        for (default, rules) in &profiles {
            let one = [filter(default.clone(), rules).unwrap()];
            let stack = linear_stack(default.clone(), rules);
            for &nr in &nrs {
                for a in &args {
                    assert_eq!(
                        decide(&one, nr, *a),
                        decide_stack(&stack, nr, *a),
                        "default {default:?}, call {nr}, args {a:?}"
                    );
                }
            }
            assert_eq!(
                eval(&one[0], 0x4000_0003, 1, [0; 6]),
                libc::SECCOMP_RET_KILL_PROCESS
            );
        }
        // socket(AF_VSOCK), TIOCSTI and TIOCLINUX are refused, whatever the upper half of
        // the argument holds (the kernel reads only the lower); their neighbours are not.
        let one = [filter(ENOSYS, &default_rules(CapSet::docker_default()).unwrap()).unwrap()];
        let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        #[allow(clippy::unnecessary_cast)]
        let (tiocsti, tioclinux, tcgets) = (
            libc::TIOCSTI as u64,
            libc::TIOCLINUX as u64,
            libc::TCGETS as u64,
        );
        for high in [0u64, 1 << 32, u64::MAX << 32] {
            for (nr, arg, value, refused) in [
                (libc::SYS_socket, 0, libc::AF_VSOCK as u64, true),
                (libc::SYS_socket, 0, libc::AF_INET as u64, false),
                (libc::SYS_ioctl, 1, tiocsti, true),
                (libc::SYS_ioctl, 1, tioclinux, true),
                (libc::SYS_ioctl, 1, tcgets, false),
            ] {
                let mut a = [3u64; 6];
                a[arg] = value | high;
                let want = if refused {
                    eperm
                } else {
                    libc::SECCOMP_RET_ALLOW
                };
                assert_eq!(decide(&one, nr, a), want, "call {nr}, args {a:?}");
            }
        }
        // The clone flags compared on their low 32 bits decide as on all 64.
        for caps in [CapSet::docker_default(), CapSet::EMPTY] {
            let ours = default_rules(caps).unwrap();
            let mut flags = CLONE_NS_FLAGS.iter();
            let qword: Vec<Rule> = ours
                .iter()
                .map(|r| match r.nr == libc::SYS_clone && !r.conds.is_empty() {
                    false => r.clone(),
                    true => {
                        let f = *flags.next().unwrap();
                        rule(r.nr, vec![cond(0, MaskedEq(f), f)], r.action.clone())
                    }
                })
                .collect();
            assert!(flags.next().is_none());
            let one = [filter(ENOSYS, &ours).unwrap()];
            let stack = linear_stack(ENOSYS, &qword);
            for a in &args {
                for bits in [0u64, 1 << 40, u64::MAX << 32] {
                    let mut a = *a;
                    a[0] |= bits;
                    assert_eq!(
                        decide(&one, libc::SYS_clone, a),
                        decide_stack(&stack, libc::SYS_clone, a),
                        "{a:?}"
                    );
                }
            }
        }
        // The large profile needs jumps beyond 255 instructions, and still fits.
        let (default, rules) = profiles.last().unwrap();
        let big = filter(default.clone(), rules).unwrap();
        assert!(big.len() > 1000 && big.len() <= MAX_LEN, "{}", big.len());
        assert!(big.iter().any(|i| i.code == JA && i.k > 255));
        // Docker's default is a short search: fewer instructions than the linear stack.
        let ours = &SeccompProfile::Default
            .compile(CapSet::docker_default())
            .unwrap()[0];
        let theirs: usize = linear_stack(ENOSYS, &default_rules(CapSet::docker_default()).unwrap())
            .iter()
            .map(Vec::len)
            .sum();
        assert!(ours.len() * 3 < theirs, "{} vs {theirs}", ours.len());
        // One return per rule with conditions (its match) and per call with conditions
        // (when none holds), and a few shared by all the rest: the architecture's kill,
        // x32's EPERM, and the search's EPERM, ALLOW and ENOSYS.
        let rets = ours.iter().filter(|i| i.code == RET_K).count();
        let rules = default_rules(CapSet::docker_default()).unwrap();
        let conditional: Vec<&Rule> = rules.iter().filter(|r| !r.conds.is_empty()).collect();
        let mut calls: Vec<i64> = conditional.iter().map(|r| r.nr).collect();
        calls.dedup();
        assert!(
            rets <= conditional.len() + calls.len() + 5,
            "returns are shared: {rets} of {} ({} rules with conditions on {} calls)",
            ours.len(),
            conditional.len(),
            calls.len()
        );
    }
}
