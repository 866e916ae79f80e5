//! The shared conformance suite (crates/testkit/src/conformance.rs) on cgroup v1.

#[test]
fn conformance_suite() {
    let Some(scratch) = crate::scratch("conformance") else {
        return;
    };
    crate::testkit::conformance::run_all(&scratch);
}
