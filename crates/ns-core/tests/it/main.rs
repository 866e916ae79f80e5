//! Integration tests of isol-ns-core: spawning into real namespaces and cgroups.
//!
//! Privileged: each test passes `isol_testkit::require_root` first, so it runs for real
//! as root (host, VM in every mode) and fails under `ISOL_REQUIRE_PRIVILEGED=1` without
//! root. Programs run inside are busybox-compatible `/bin/sh -c …` one-liners.

mod cgroups;
mod common;
mod failures;
mod init_fds;
mod join_persist;
mod kinds;
mod pods;
mod rootfs;
mod rootless;
mod security;
mod spawn_basics;
