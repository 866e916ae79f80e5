//! Privilege and cgroup-mode gates for tests.
//!
//! A privileged test may skip only when `ISOL_REQUIRE_PRIVILEGED` is unset; CI and the VM
//! set it, and there a missing privilege is a failure with the reason. When
//! `ISOL_EXPECT_MODE` is set (`unified`, `hybrid`, `legacy`), the host must be in that
//! mode, which proves the VM booted what it claims.

use isol_ns_core::registry;
use isol_ns_core::{Backend, CgroupMode, HostInfo};

/// Whether `ISOL_REQUIRE_PRIVILEGED` is set (to anything but empty or `0`).
pub fn privileged() -> bool {
    std::env::var("ISOL_REQUIRE_PRIVILEGED").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The mode `ISOL_EXPECT_MODE` names, if set.
pub fn expected_mode() -> Option<CgroupMode> {
    let v = std::env::var("ISOL_EXPECT_MODE")
        .ok()
        .filter(|v| !v.is_empty())?;
    Some(
        v.parse()
            .unwrap_or_else(|e| panic!("ISOL_EXPECT_MODE: {e}")),
    )
}

/// Whether the test may go on as root. Returns `false` (the caller returns early, a
/// skip) only when not root and `ISOL_REQUIRE_PRIVILEGED` is unset; panics when it is set.
pub fn require_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if privileged() {
        panic!("{test}: needs root, and ISOL_REQUIRE_PRIVILEGED is set");
    }
    eprintln!("skipped {test}: needs root (set ISOL_REQUIRE_PRIVILEGED=1 to make this a failure)");
    false
}

/// The probed host, checked against `ISOL_EXPECT_MODE`.
pub fn host() -> HostInfo {
    let host = HostInfo::probe().expect("probe the host's cgroups");
    if let Some(want) = expected_mode() {
        assert_eq!(
            host.mode, want,
            "ISOL_EXPECT_MODE says {want}, the host is {}",
            host.mode
        );
    }
    host
}

/// The backend `name`, opened on this host, for a privileged test — or `None`, after
/// asserting what this host must show instead:
/// - not root: skip (or fail under `ISOL_REQUIRE_PRIVILEGED`);
/// - the backend does not fit the host's mode: the registry must refuse to open it, with a
///   reason that names the backend. That refusal is the test's assertion in this mode.
pub fn backend(name: &str, test: &str) -> Option<Box<dyn Backend>> {
    if !require_root(test) {
        return None;
    }
    let host = host();
    let plugin = registry::by_name(name).unwrap_or_else(|e| panic!("{test}: {e}"));
    let fit = (plugin.fit)(&host);
    if fit.usable {
        return Some(
            registry::open(name, &host).unwrap_or_else(|e| panic!("{test}: open {name}: {e}")),
        );
    }
    let err = registry::open(name, &host).err().unwrap_or_else(|| {
        panic!(
            "{test}: {name} said it does not fit a {} host, yet opened",
            host.mode
        )
    });
    let msg = err.to_string();
    assert!(
        msg.contains(name) && msg.contains(&fit.reason),
        "{test}: refusal should name {name} and say why: {msg}"
    );
    eprintln!(
        "{test}: {name} does not fit this {} host; asserted its refusal: {msg}",
        host.mode
    );
    None
}
