//! The shared conformance suite (testkit::conformance) on the v2 backend: the same
//! `Resources` mean the same thing here as on cgroup-v1.

use testkit::Scratch;

use crate::{testkit, NAME};

#[test]
fn conformance_suite() {
    let Some(backend) = testkit::backend(NAME, "conformance_suite") else {
        return;
    };
    let scratch = Scratch::new(backend, "conf");
    testkit::conformance::run_all(&scratch);
}
