//! Progress lines with the time since xtask started.
//!
//! A full test run takes many minutes, most of them inside qemu under TCG; a line per
//! step, naming the step, its scope (a mode, a phase) and the elapsed time, shows where
//! the time goes and where a hang happened.

use std::fmt::Display;
use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Instant> = OnceLock::new();

/// Seconds since the first call into this module.
pub fn elapsed() -> f64 {
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// Prints `==> [  12.3s] scope: what` on standard error.
pub fn step(scope: &str, what: impl Display) {
    eprintln!("==> [{:>7.1}s] {scope}: {what}", elapsed());
}
