//! seccomp filters: docker's default blocklist, or a profile in docker's JSON format,
//! compiled into one classic BPF program before the clone.
//!
//! seccompiler compiles each rule (the conditions on a call's arguments) into BPF; isol
//! lays the rules out in one filter:
//!
//! 1. seccompiler's architecture check: another architecture's calls (`int 0x80` on
//!    x86_64) kill the process, which a 64-bit box has no use for;
//! 2. on x86_64, EPERM for every x32 call number (bit 30): the filter compares call
//!    numbers exactly, so a blocklist would otherwise be bypassed through the x32
//!    numbers of the same calls;
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
//! default profile went from 338 instructions in two filters (~170 µs to install on a
//! test VM) to one of 84 (~40 µs); see `examples/security_cost.rs`.
//!
//! # References
//! seccomp(2); the kernel's `seccomp_cache_prepare` (kernel/seccomp.c, Linux 5.11);
//! moby's `profiles/seccomp/default.json` and its documentation ("Seccomp security
//! profiles for Docker"), whose gating by capability the default follows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};
use serde::{Deserialize, Serialize};

use super::caps::{CapSet, Capability};
use super::syscalls;
use crate::{Error, Result};

/// Which seccomp filter a box gets.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeccompProfile {
    /// Docker's default: EPERM for the calls its default profile blocks, each gated by
    /// the capability docker gates it by ([`default_blocklist`]), for `socket(AF_VSOCK)`
    /// (as docker's), and for the terminal's `TIOCSTI` and `TIOCLINUX` ioctls, with which
    /// a box on its caller's terminal would type into it.
    #[default]
    Default,
    /// No filter.
    Unconfined,
    /// A profile in docker's JSON format.
    Docker {
        /// The file it was read from.
        path: PathBuf,
        /// The parsed profile (read again from `path` when absent, e.g. deserialized).
        #[serde(skip)]
        profile: Option<Arc<DockerProfile>>,
    },
}

impl PartialEq for SeccompProfile {
    /// Profiles read from files are equal when their paths are.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (SeccompProfile::Default, SeccompProfile::Default)
            | (SeccompProfile::Unconfined, SeccompProfile::Unconfined) => true,
            (SeccompProfile::Docker { path: a, .. }, SeccompProfile::Docker { path: b, .. }) => {
                a == b
            }
            _ => false,
        }
    }
}

impl SeccompProfile {
    /// `default`, `unconfined`, or the path of a docker-format JSON profile (read now).
    pub fn parse(s: &str) -> Result<SeccompProfile> {
        match s {
            "default" => Ok(SeccompProfile::Default),
            "unconfined" => Ok(SeccompProfile::Unconfined),
            path if !Path::new(path).exists() => Err(Error::invalid(
                "seccomp",
                path,
                format!(
                    "{path:?} is neither default, unconfined, nor a file (a docker JSON profile)"
                ),
            )),
            path => SeccompProfile::from_docker_json(path),
        }
    }

    /// Reads a docker-format JSON profile (`defaultAction`, `syscalls[].names/action/args`).
    pub fn from_docker_json(path: impl AsRef<Path>) -> Result<SeccompProfile> {
        let path = path.as_ref();
        let profile = DockerProfile::read(path)?;
        // Refuse what cannot be compiled now, not in the child.
        profile.rules(CapSet::all(), path)?;
        Ok(SeccompProfile::Docker {
            path: path.to_path_buf(),
            profile: Some(Arc::new(profile)),
        })
    }

    /// The BPF programs to install, in order, for a box that keeps `caps` (docker gates
    /// some rules on capabilities): one filter, none for `Unconfined`.
    pub fn compile(&self, caps: CapSet) -> Result<Vec<BpfProgram>> {
        let (default, rules) = match self {
            SeccompProfile::Unconfined => return Ok(Vec::new()),
            SeccompProfile::Default => {
                // The common case, stored as compiled: compiling it in a fresh process
                // (the CLI's case) costs ~45 µs, cold, against ~3 µs warm.
                if caps == CapSet::docker_default() {
                    if let Some(p) = super::stored_filter::docker_default() {
                        return Ok(vec![p]);
                    }
                }
                // Compiled once per capability set: the same for every box.
                type Cache = std::sync::Mutex<Vec<(CapSet, Vec<BpfProgram>)>>;
                static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
                let cache = CACHE.get_or_init(Default::default);
                let hit = cache
                    .lock()
                    .ok()
                    .and_then(|c| c.iter().find(|(k, _)| *k == caps).map(|(_, p)| p.clone()));
                if let Some(p) = hit {
                    return Ok(p);
                }
                let out = vec![filter(SeccompAction::Allow, &default_rules(caps)?)?];
                if let Ok(mut c) = cache.lock() {
                    c.push((caps, out.clone()));
                }
                return Ok(out);
            }
            SeccompProfile::Docker { path, profile } => {
                let read;
                let p = match profile {
                    Some(p) => p.as_ref(),
                    None => {
                        read = DockerProfile::read(path)?;
                        &read
                    }
                };
                (p.default_action(path)?, p.rules(caps, path)?)
            }
        };
        Ok(vec![filter(default, &rules)?])
    }
}

/// One rule: a call, the conditions on its arguments (all must hold; none: always), and
/// the action.
#[derive(Clone, Debug)]
pub(crate) struct Rule {
    pub nr: i64,
    pub conds: Vec<SeccompCondition>,
    pub action: SeccompAction,
}

fn arch() -> Result<TargetArch> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|_| Error::Unsupported {
        setting: "seccomp".into(),
        backend: "isol",
        reason: format!(
            "seccompiler cannot build filters for {}",
            std::env::consts::ARCH
        ),
    })
}

fn backend_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::invalid("seccomp", what, e.to_string())
}

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

/// Compiles `rules` under `default` into one filter, described in the module docs.
pub(crate) fn filter(default: SeccompAction, rules: &[Rule]) -> Result<BpfProgram> {
    let arch = arch()?;
    // The actions rules may return, most severe first. Among equals (ERRNO with two
    // errnos) the later action of `rules` first: that is the data the kernel returned
    // when each action had a filter of its own, installed in that order.
    let mut actions: Vec<SeccompAction> = Vec::new();
    for r in rules.iter().filter(|r| r.action != default) {
        if !actions.contains(&r.action) {
            actions.push(r.action.clone());
        }
    }
    let mut order: Vec<usize> = (0..actions.len()).collect();
    order.sort_by_key(|&i| (precedence(&actions[i]), std::cmp::Reverse(i)));
    let actions: Vec<SeccompAction> = order.into_iter().map(|i| actions[i].clone()).collect();

    // Per call, per action: None (unconditional) or the OR of condition lists.
    type Slots = Vec<Option<Vec<Vec<SeccompCondition>>>>;
    let mut calls: BTreeMap<u32, Slots> = BTreeMap::new();
    for r in rules.iter().filter(|r| r.action != default) {
        let nr = u32::try_from(r.nr)
            .map_err(|_| backend_err("rule", format!("{} is no system call number", r.nr)))?;
        let i = actions.iter().position(|a| *a == r.action).unwrap_or(0);
        let slot = &mut calls
            .entry(nr)
            .or_insert_with(|| vec![Some(Vec::new()); actions.len()])[i];
        match (slot.as_mut(), r.conds.is_empty()) {
            (_, true) => *slot = None,
            (Some(list), false) => list.push(r.conds.clone()),
            (None, false) => {}
        }
    }

    // Each call's leaf: its rules, most severe action first, each rule compiled by
    // seccompiler (falls through to the `ret` that follows when its conditions hold,
    // jumps past it when they do not), and the default when none holds.
    let leaf = |slots: Slots| -> Result<Leaf> {
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
                        let rule = SeccompRule::new(conds).map_err(|e| backend_err("rule", e))?;
                        let mut rule = BpfProgram::from(rule);
                        // seccompiler begins a rule with `ja 1; ja <out>` for its own
                        // layout: the first steps over the second, which nothing else
                        // reaches. Here a rule is only entered at its start: both go.
                        if rule.len() > 2
                            && (rule[0].code, rule[0].k) == (JA, 1)
                            && rule[1].code == JA
                        {
                            rule.drain(..2);
                        }
                        code.extend(rule);
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
    };

    // The call numbers as segments `(first number, leaf)`, each lasting until the next:
    // runs of numbers that return the same constant are one segment.
    let mut segments: Vec<(u32, Leaf)> = vec![(0, Leaf::Ret(u32::from(default.clone())))];
    let push = |segments: &mut Vec<(u32, Leaf)>, start: u32, leaf: Leaf| {
        if segments.last().is_some_and(|(s, _)| *s == start) {
            segments.pop();
        }
        match (segments.last(), &leaf) {
            (Some((_, Leaf::Ret(a))), Leaf::Ret(b)) if a == b => {}
            _ => segments.push((start, leaf)),
        }
    };
    for (nr, slots) in calls {
        push(&mut segments, nr, leaf(slots)?);
        if let Some(next) = nr.checked_add(1) {
            push(&mut segments, next, Leaf::Ret(u32::from(default.clone())));
        }
    }

    // seccompiler's architecture check (`ld arch; jeq AUDIT_ARCH, +1; ret KILL_PROCESS`),
    // without the `ret` it ends an empty filter with.
    let mut out = BpfProgram::try_from(
        SeccompFilter::new(
            BTreeMap::new(),
            SeccompAction::Allow,
            SeccompAction::KillProcess,
            arch,
        )
        .map_err(|e| backend_err("architecture check", e))?,
    )
    .map_err(|e| backend_err("architecture check", e))?;
    match out.pop() {
        Some(last) if last.code == RET_K && out.len() == 3 && out[0].code == LD_W_ABS => {}
        _ => {
            return Err(backend_err(
                "architecture check",
                "seccompiler's filter does not begin as expected",
            ))
        }
    }
    out.push(ins(LD_W_ABS, 0, 0, 0)); // seccomp_data.nr
    if cfg!(target_arch = "x86_64") {
        // x32 call numbers (bit 30): the segments compare x86_64 numbers, so a blocklist
        // would otherwise be bypassed through the x32 numbers of the same calls.
        out.push(ins(JSET_K, 0, 1, 0x4000_0000));
        out.push(ins(
            RET_K,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        ));
    }
    out.extend(search(&segments));
    if out.len() > MAX_LEN {
        return Err(backend_err(
            "filter",
            format!(
                "{} instructions, more than the kernel's {MAX_LEN}",
                out.len()
            ),
        ));
    }
    Ok(out)
}

/// Where to split `segments` (at least two, the last lasting until `upper`) for the
/// search: so that as many call numbers of this architecture lie on each side, as near
/// as can be. The kernel runs the filter on every one of them at install (see the
/// module docs), so a segment that holds many is worth a short path.
fn split(segments: &[(u32, Leaf)], upper: u64) -> usize {
    // This architecture's call numbers: the table's (sorted by number), with room for
    // calls added since.
    let end = syscalls::TABLE.last().map_or(512, |(_, nr)| *nr as u64 + 1) + 8;
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
fn search(segments: &[(u32, Leaf)]) -> Vec<sock_filter> {
    shared_search(segments).unwrap_or_else(|| inline_search(segments, u64::MAX))
}

/// Where a comparison goes: `n` instructions further on, or the shared `ret k`.
#[derive(Clone, Copy)]
enum Jump {
    Skip(usize),
    Ret(u32),
}

fn shared_search(segments: &[(u32, Leaf)]) -> Option<Vec<sock_filter>> {
    enum Node {
        Ins(sock_filter),
        Cmp { k: u32, jt: Jump, jf: Jump },
    }
    fn walk(segments: &[(u32, Leaf)], upper: u64) -> Vec<Node> {
        if let [(_, leaf)] = segments {
            return leaf.code().into_iter().map(Node::Ins).collect();
        }
        let mid = split(segments, upper);
        let side = |segs: &[(u32, Leaf)], upper| match segs {
            [(_, Leaf::Ret(k))] => (Jump::Ret(*k), Vec::new()),
            _ => (Jump::Skip(0), walk(segs, upper)),
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
    let nodes = walk(segments, u64::MAX);
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
fn inline_search(segments: &[(u32, Leaf)], upper: u64) -> Vec<sock_filter> {
    if let [(_, leaf)] = segments {
        return leaf.code();
    }
    let mid = split(segments, upper);
    let below = inline_search(&segments[..mid], u64::from(segments[mid].0));
    let above = inline_search(&segments[mid..], upper);
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
const CLONE_NS_FLAGS: [u64; 7] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWCGROUP as u64,
];

/// The default profile's rules for a box keeping `caps`.
pub(crate) fn default_rules(caps: CapSet) -> Result<Vec<Rule>> {
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
            .map_err(|e| backend_err(name, e))?;
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
            .map_err(|e| backend_err("clone", e))?;
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

// ---------------------------------------------------------------------------------------
// docker's format

/// A seccomp profile in docker's JSON format (moby's `types.Seccomp`). Fields isol does
/// not use (`architectures`, `archMap`, `flags`, `comment`, …) are ignored.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerProfile {
    /// `SCMP_ACT_ERRNO`, `SCMP_ACT_ALLOW`, …
    pub default_action: String,
    /// The errno of a default `SCMP_ACT_ERRNO` (EPERM when absent).
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    /// The rules.
    #[serde(default)]
    pub syscalls: Vec<DockerSyscall>,
}

/// One entry of `syscalls`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerSyscall {
    /// The calls (unknown names are skipped, as docker does).
    #[serde(default)]
    pub names: Vec<String>,
    /// The old single-name form.
    #[serde(default)]
    pub name: Option<String>,
    /// The action when the call (and its `args`) match.
    pub action: String,
    /// Conditions on arguments, all of which must hold.
    #[serde(default)]
    pub args: Vec<DockerArg>,
    /// The errno of `SCMP_ACT_ERRNO` (or the data of `SCMP_ACT_TRACE`).
    #[serde(default)]
    pub errno_ret: Option<u32>,
    /// The rule applies only when these hold.
    #[serde(default)]
    pub includes: DockerFilter,
    /// The rule does not apply when any of these holds.
    #[serde(default)]
    pub excludes: DockerFilter,
}

/// `includes` / `excludes`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerFilter {
    /// Capabilities (`CAP_SYS_ADMIN`).
    #[serde(default)]
    pub caps: Vec<String>,
    /// Docker's architecture names (`amd64`, `arm64`, …).
    #[serde(default)]
    pub arches: Vec<String>,
    /// A kernel version, `4.8`.
    #[serde(default)]
    pub min_kernel: Option<String>,
}

/// One condition of `args`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerArg {
    /// The argument, 0..=5.
    pub index: u8,
    /// The value (the mask for `SCMP_CMP_MASKED_EQ`).
    pub value: u64,
    /// The value `(arg & mask)` must equal for `SCMP_CMP_MASKED_EQ`.
    #[serde(default)]
    pub value_two: u64,
    /// `SCMP_CMP_EQ`, `NE`, `LT`, `LE`, `GT`, `GE`, `MASKED_EQ`.
    pub op: String,
}

fn docker_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "riscv64" => "riscv64",
        other => other,
    }
}

impl DockerProfile {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<DockerProfile> {
        let text = crate::parse::read(path)?;
        serde_json::from_str(&text).map_err(|e| Error::parse(path, e.to_string()))
    }

    fn action(field: &str, name: &str, errno: Option<u32>, path: &Path) -> Result<SeccompAction> {
        Ok(match name {
            "SCMP_ACT_ALLOW" => SeccompAction::Allow,
            "SCMP_ACT_ERRNO" => SeccompAction::Errno(errno.unwrap_or(libc::EPERM as u32)),
            "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => SeccompAction::KillThread,
            "SCMP_ACT_KILL_PROCESS" => SeccompAction::KillProcess,
            "SCMP_ACT_TRAP" => SeccompAction::Trap,
            "SCMP_ACT_LOG" => SeccompAction::Log,
            "SCMP_ACT_TRACE" => SeccompAction::Trace(errno.unwrap_or(0)),
            other => {
                return Err(Error::invalid(
                    field,
                    other,
                    format!(
                        "{}: {other} is not supported; isol supports SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, \
                         SCMP_ACT_KILL_THREAD, SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP, \
                         SCMP_ACT_LOG and SCMP_ACT_TRACE",
                        path.display()
                    ),
                ))
            }
        })
    }

    fn default_action(&self, path: &Path) -> Result<SeccompAction> {
        Self::action(
            "defaultAction",
            &self.default_action,
            self.default_errno_ret,
            path,
        )
    }

    fn applies(s: &DockerSyscall, caps: CapSet, kernel: (u32, u32, u32)) -> Result<bool> {
        let has = |c: &String| -> Result<bool> { Ok(caps.contains(c.parse::<Capability>()?)) };
        let kernel_at_least = |v: &String| -> bool {
            let mut it = v.split('.').map(|n| n.parse::<u32>().unwrap_or(0));
            let want = (
                it.next().unwrap_or(0),
                it.next().unwrap_or(0),
                it.next().unwrap_or(0),
            );
            kernel >= want
        };
        let arch = docker_arch();
        let inc = &s.includes;
        for c in &inc.caps {
            if !has(c)? {
                return Ok(false);
            }
        }
        if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == arch) {
            return Ok(false);
        }
        if inc.min_kernel.as_ref().is_some_and(|v| !kernel_at_least(v)) {
            return Ok(false);
        }
        let exc = &s.excludes;
        for c in &exc.caps {
            if has(c)? {
                return Ok(false);
            }
        }
        if exc.arches.iter().any(|a| a == arch) {
            return Ok(false);
        }
        if exc.min_kernel.as_ref().is_some_and(kernel_at_least) {
            return Ok(false);
        }
        Ok(true)
    }

    /// The rules for a box keeping `caps`; refuses what seccompiler cannot express, naming
    /// the field.
    pub(crate) fn rules(&self, caps: CapSet, path: &Path) -> Result<Vec<Rule>> {
        self.default_action(path)?;
        if syscalls::TABLE.is_empty() && !self.syscalls.is_empty() {
            return Err(Error::Unsupported {
                setting: "seccomp".into(),
                backend: "isol",
                reason: format!(
                    "system call names are known on x86_64 only, not {}",
                    std::env::consts::ARCH
                ),
            });
        }
        let release = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        let (a, b) = crate::host::kernel_version(&release);
        let patch = release
            .split(['.', '-'])
            .nth(2)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let kernel = (a, b, patch);
        let mut out = Vec::new();
        for (i, s) in self.syscalls.iter().enumerate() {
            let field = format!("syscalls[{i}].action");
            let action = Self::action(&field, &s.action, s.errno_ret, path)?;
            let mut conds = Vec::new();
            for (j, arg) in s.args.iter().enumerate() {
                let field = format!("syscalls[{i}].args[{j}].op");
                let (op, value) = match arg.op.as_str() {
                    "SCMP_CMP_EQ" => (SeccompCmpOp::Eq, arg.value),
                    "SCMP_CMP_NE" => (SeccompCmpOp::Ne, arg.value),
                    "SCMP_CMP_LT" => (SeccompCmpOp::Lt, arg.value),
                    "SCMP_CMP_LE" => (SeccompCmpOp::Le, arg.value),
                    "SCMP_CMP_GT" => (SeccompCmpOp::Gt, arg.value),
                    "SCMP_CMP_GE" => (SeccompCmpOp::Ge, arg.value),
                    "SCMP_CMP_MASKED_EQ" => (SeccompCmpOp::MaskedEq(arg.value), arg.value_two),
                    other => {
                        return Err(Error::invalid(
                            field,
                            other,
                            format!("{}: {other} is not a comparison isol supports (SCMP_CMP_EQ, NE, LT, LE, GT, GE, MASKED_EQ)", path.display()),
                        ))
                    }
                };
                let c = SeccompCondition::new(arg.index, SeccompCmpArgLen::Qword, op, value)
                    .map_err(|e| {
                        Error::invalid(
                            format!("syscalls[{i}].args[{j}].index"),
                            arg.index.to_string(),
                            format!("{}: index {}: {e}", path.display(), arg.index),
                        )
                    })?;
                conds.push(c);
            }
            for c in s.includes.caps.iter().chain(&s.excludes.caps) {
                c.parse::<Capability>().map_err(|_| {
                    Error::invalid(
                        format!("syscalls[{i}].includes/excludes.caps"),
                        c,
                        "not a capability name",
                    )
                })?;
            }
            if !Self::applies(s, caps, kernel)? {
                continue;
            }
            for name in s.names.iter().chain(&s.name) {
                // Names of other architectures are skipped, as docker does.
                if let Some(nr) = syscalls::number(name) {
                    out.push(Rule {
                        nr,
                        conds: conds.clone(),
                        action: action.clone(),
                    });
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// The most severe result of a stack, as the kernel combines them.
    pub(crate) fn decide(progs: &[BpfProgram], nr: i64, args: [u64; 6]) -> u32 {
        let arch = 0xC000_003E; // AUDIT_ARCH_X86_64
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

    const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;

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

    fn profile(json: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("profile.json");
        std::fs::write(&p, json).unwrap();
        (dir, p)
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn docker_allowlist_profile() {
        let (_d, p) = profile(
            r#"{
              "defaultAction": "SCMP_ACT_ERRNO",
              "defaultErrnoRet": 38,
              "architectures": ["SCMP_ARCH_X86_64"],
              "syscalls": [
                {"names": ["read", "write", "exit_group", "not_a_call_here"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["mkdir"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["getppid"], "action": "SCMP_ACT_TRAP", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["getuid"], "action": "SCMP_ACT_LOG", "includes": {"minKernel": "4.14"}},
                {"names": ["getgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
              ]
            }"#,
        );
        let prof = SeccompProfile::from_docker_json(&p).unwrap();
        let z = [0u64; 6];
        let enosys = libc::SECCOMP_RET_ERRNO | 38;
        let progs = prof.compile(CapSet::docker_default()).unwrap();
        assert_eq!(decide(&progs, libc::SYS_read, z), ALLOW);
        assert_eq!(decide(&progs, libc::SYS_open, z), enosys, "default");
        assert_eq!(
            decide(&progs, libc::SYS_personality, [8, 0, 0, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(
            decide(&progs, libc::SYS_personality, [9, 0, 0, 0, 0, 0]),
            enosys
        );
        assert_eq!(
            decide(&progs, libc::SYS_mkdir, z),
            libc::SECCOMP_RET_KILL_PROCESS
        );
        assert_eq!(
            decide(&progs, libc::SYS_getpid, z),
            enosys,
            "needs CAP_SYS_ADMIN"
        );
        assert_eq!(decide(&progs, libc::SYS_getppid, z), libc::SECCOMP_RET_TRAP);
        assert_eq!(decide(&progs, libc::SYS_getuid, z), libc::SECCOMP_RET_LOG);
        assert_eq!(
            decide(&progs, libc::SYS_getgid, z),
            libc::SECCOMP_RET_ERRNO | 13
        );
        let progs = prof.compile(CapSet::all()).unwrap();
        assert_eq!(decide(&progs, libc::SYS_getpid, z), ALLOW);
        assert_eq!(
            decide(&progs, libc::SYS_getppid, z),
            enosys,
            "excluded by the cap"
        );
    }

    #[test]
    fn refuses_what_it_cannot_express_naming_the_field() {
        let (_d, p) = profile(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#);
        let e = SeccompProfile::from_docker_json(&p)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("defaultAction") && e.contains("SCMP_ACT_NOTIFY"),
            "{e}"
        );
        let (_d, p) = profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SOMETIMES"}]}]}"#,
        );
        let e = SeccompProfile::from_docker_json(&p)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("syscalls[1].args[0].op") && e.contains("SCMP_CMP_SOMETIMES"),
            "{e}"
        );
        let (_d, p) = profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
        );
        let e = SeccompProfile::from_docker_json(&p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("syscalls[0].args[0].index"), "{e}");
        let (_d, p) = profile("{not json");
        let e = SeccompProfile::from_docker_json(&p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("profile.json"), "{e}");
        assert!(SeccompProfile::parse("/nonexistent/profile.json").is_err());
        assert_eq!(
            SeccompProfile::parse("default").unwrap(),
            SeccompProfile::Default
        );
        assert_eq!(
            SeccompProfile::parse("unconfined").unwrap(),
            SeccompProfile::Unconfined
        );
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
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
        let arch = arch().unwrap();
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
    #[cfg(target_arch = "x86_64")]
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
            profiles.push((SeccompAction::Allow, default_rules(caps).unwrap()));
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
        let one = [filter(Allow, &default_rules(CapSet::docker_default()).unwrap()).unwrap()];
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
            let one = [filter(Allow, &ours).unwrap()];
            let stack = linear_stack(Allow, &qword);
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
        let theirs: usize = linear_stack(
            SeccompAction::Allow,
            &default_rules(CapSet::docker_default()).unwrap(),
        )
        .iter()
        .map(Vec::len)
        .sum();
        assert!(ours.len() * 3 < theirs, "{} vs {theirs}", ours.len());
        // One return per rule with conditions (its match), and a few shared by all the
        // rest: the architecture's kill, x32's and the blocklist's EPERM, ALLOW, ENOSYS
        // and each conditional segment's default.
        let rets = ours.iter().filter(|i| i.code == RET_K).count();
        let conditional = default_rules(CapSet::docker_default())
            .unwrap()
            .iter()
            .filter(|r| !r.conds.is_empty())
            .count();
        assert!(
            rets <= conditional + 8,
            "returns are shared: {rets} of {} ({conditional} rules with conditions)",
            ours.len()
        );
    }
}
