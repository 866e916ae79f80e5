//! seccomp profiles in docker's JSON format (`--seccomp FILE`): moby's `types.Seccomp`,
//! read with serde and turned into rules for a box's capabilities, architecture and
//! kernel. What seccompiler cannot express (`SCMP_ACT_NOTIFY`, an unknown comparison, an
//! argument index beyond 5) is refused when the file is read, naming the field.
//!
//! # References
//! moby's `api/types/seccomp.go`, and "Seccomp security profiles for Docker".

use std::path::Path;

use seccompiler::{SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition};
use serde::{Deserialize, Serialize};

use super::Rule;
use crate::security::caps::{CapSet, Capability};
use crate::security::syscalls;
use crate::{Error, Result};

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

/// The running kernel's `(major, minor, patch)`, for `minKernel` (zeros if unknown).
fn running_kernel() -> (u32, u32, u32) {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let (a, b) = crate::host::kernel_version(&release);
    let patch = release
        .split(['.', '-'])
        .nth(2)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    (a, b, patch)
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

    pub(super) fn default_action(&self, path: &Path) -> Result<SeccompAction> {
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

    /// The conditions of `syscalls[i]` (`s`), all of which must hold.
    fn conditions(i: usize, s: &DockerSyscall, path: &Path) -> Result<Vec<SeccompCondition>> {
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
            let c = SeccompCondition::new(arg.index, SeccompCmpArgLen::Qword, op, value).map_err(
                |e| {
                    Error::invalid(
                        format!("syscalls[{i}].args[{j}].index"),
                        arg.index.to_string(),
                        format!("{}: index {}: {e}", path.display(), arg.index),
                    )
                },
            )?;
            conds.push(c);
        }
        Ok(conds)
    }

    /// The rules for a box keeping `caps`; refuses what seccompiler cannot express, naming
    /// the field.
    pub(crate) fn rules(&self, caps: CapSet, path: &Path) -> Result<Vec<Rule>> {
        self.default_action(path)?;
        let calls = syscalls::native();
        if calls.table.is_empty() && !self.syscalls.is_empty() {
            return Err(Error::Unsupported {
                setting: "seccomp".into(),
                backend: "isol",
                reason: format!(
                    "system call names are known on x86_64 and aarch64 only, not {}",
                    calls.arch
                ),
            });
        }
        let kernel = running_kernel();
        let mut out = Vec::new();
        for (i, s) in self.syscalls.iter().enumerate() {
            let field = format!("syscalls[{i}].action");
            let action = Self::action(&field, &s.action, s.errno_ret, path)?;
            let conds = Self::conditions(i, s, path)?;
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
    use std::path::PathBuf;

    use super::super::SeccompProfile;

    fn profile(json: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("profile.json");
        std::fs::write(&p, json).unwrap();
        (dir, p)
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn docker_allowlist_profile() {
        use super::super::layout::interp::{decide, ALLOW};
        use super::*;
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
    }
}
