//! seccomp filters: docker's default blocklist, or a profile in docker's JSON format,
//! compiled with seccompiler into classic BPF programs before the clone.
//!
//! seccompiler compiles one filter per *action* (a filter returns one action when a rule
//! matches and another otherwise), so a profile becomes a short stack of filters. The
//! kernel runs every filter of the stack and obeys the most severe result (KILL_PROCESS >
//! KILL_THREAD > TRAP > ERRNO > TRACE > LOG > ALLOW; seccomp(2) "Filter return values"):
//!
//! - the *base* filter returns the profile's default action for every call that no rule
//!   names (it is left out when the default is ALLOW);
//! - one filter per other action returns that action for its rules and ALLOW otherwise.
//!
//! So a rule's action wins over the default exactly where its conditions hold. On x86_64
//! a small hand-written filter refuses every x32 call number (bit 30): the other filters
//! compare call numbers exactly, so a blocklist would otherwise be bypassed through the
//! x32 numbers of the same calls. seccompiler's own arch check kills a process that
//! makes i386 calls (`int 0x80`), which a 64-bit box has no use for.
//!
//! # References
//! seccomp(2); moby's `profiles/seccomp/default.json` and its documentation ("Seccomp
//! security profiles for Docker"), whose gating by capability the default follows.

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
    /// the capability docker gates it by ([`default_blocklist`]).
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
    /// some rules on capabilities). Empty for `Unconfined`.
    pub fn compile(&self, caps: CapSet) -> Result<Vec<BpfProgram>> {
        let (default, rules) = match self {
            SeccompProfile::Unconfined => return Ok(Vec::new()),
            SeccompProfile::Default => {
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
                let mut out = stack(SeccompAction::Allow, &default_rules(caps)?)?;
                add_x32_guard(&mut out);
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
        let mut out = stack(default, &rules)?;
        add_x32_guard(&mut out);
        Ok(out)
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

/// Compiles `rules` under `default` into the stack described in the module docs.
pub(crate) fn stack(default: SeccompAction, rules: &[Rule]) -> Result<Vec<BpfProgram>> {
    let arch = arch()?;
    // Per action: call → None (unconditional) or the OR of condition lists.
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
                    .map(|conds| SeccompRule::new(conds).map_err(|e| backend_err("rule", e)))
                    .collect::<Result<Vec<_>>>()?;
                Ok((nr, rules))
            })
            .collect::<Result<BTreeMap<_, _>>>()?;
        let f = SeccompFilter::new(map, mismatch, matched.clone(), arch)
            .map_err(|e| backend_err(&format!("{matched:?} filter"), e))?;
        BpfProgram::try_from(f).map_err(|e| backend_err(&format!("{matched:?} filter"), e))
    };
    let mut out = Vec::new();
    if default != SeccompAction::Allow {
        let mut known = Chains::new();
        for r in rules.iter().filter(|r| r.action != default) {
            add(&mut known, r);
        }
        out.push(build(known, default.clone(), SeccompAction::Allow)?);
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
        out.push(build(chains, SeccompAction::Allow, action)?);
    }
    Ok(out)
}

/// On x86_64, refuses x32 call numbers: spliced into the first program right after
/// seccompiler's arch check (`ld arch; jeq AUDIT_ARCH, +1; ret KILL_PROCESS`), whose
/// jump lands on the splice, so a default box installs one filter, not two (each filter
/// is JIT-compiled at install and freed at exit); a stand-alone guard filter otherwise.
fn add_x32_guard(progs: &mut Vec<BpfProgram>) {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    let arch_check = |p: &BpfProgram| {
        p.len() > 3
            && (p[0].code, p[0].k) == (0x20, 4)
            && (p[1].code, p[1].jt, p[1].jf) == (0x15, 1, 0)
            && (p[2].code, p[2].k) == (0x06, libc::SECCOMP_RET_KILL_PROCESS)
    };
    match progs.first_mut() {
        Some(p) if arch_check(p) => {
            let guard = x32_guard();
            // ld nr; jset x32 → ret ERRNO; (fall through to the original `ld nr`).
            p.splice(3..3, guard[..3].iter().cloned());
        }
        _ => progs.insert(0, x32_guard()),
    }
}

/// `if (nr & __X32_SYSCALL_BIT) return ERRNO(EPERM); return ALLOW;`
fn x32_guard() -> BpfProgram {
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    let ins = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    vec![
        ins(LD_W_ABS, 0, 0, 0), // seccomp_data.nr
        ins(JSET_K, 0, 1, 0x4000_0000),
        ins(RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        ins(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]
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
    if !caps.contains(Capability::SYS_ADMIN) {
        // New namespaces only with CAP_SYS_ADMIN; clone3's flags sit behind a pointer
        // the filter cannot read, so it says ENOSYS and libc falls back to clone.
        for flag in CLONE_NS_FLAGS {
            let c = SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
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
        // Another architecture's calls kill.
        assert_eq!(
            eval(&progs[1], 0x4000_0003, 1, z),
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
        let progs = stack(SeccompAction::Allow, &rules).unwrap();
        assert_eq!(decide(&progs, libc::SYS_read, [7, 0, 0, 0, 0, 0]), EPERM);
    }
}
