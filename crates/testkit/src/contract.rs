//! What a controller of either backend must do, checked against a [`FakeTree`] (no
//! root needed): the same table for the v1 and the v2 implementation, the files named
//! by the caller. The conformance suite checks the same on a real kernel.

use isol_ns_core::resources::HugetlbLimit;
use isol_ns_core::units::Limit;
use isol_ns_core::{Error, ResourceController, Resources};

use crate::FakeTree;

/// A hugetlb controller whose limit file for page size `S` is `file(S)`, and which shows
/// an unlimited size as `unlimited`: applies one size, reads back every size but the
/// reservation limits (`file("2MB.rsvd")`), and refuses a set with a size the kernel
/// lacks naming `hugetlb`, writing none of it.
pub fn hugetlb(
    controller: &dyn ResourceController,
    file: impl Fn(&str) -> String,
    unlimited: &str,
) {
    let t = FakeTree::new();
    for size in ["2MB", "1GB", "2MB.rsvd"] {
        t.file(&file(size), unlimited);
    }
    let two_mb = HugetlbLimit::new("2MB", Limit::Value(4 << 20));
    let r = Resources {
        hugetlb: vec![two_mb.clone()],
        ..Resources::default()
    };
    controller.apply(t.path(), &r).expect("apply 2MB");
    assert_eq!(t.read(&file("2MB")), (4u64 << 20).to_string());
    let mut back = Resources::default();
    controller.read(t.path(), &mut back).expect("read");
    assert_eq!(
        back.hugetlb,
        vec![HugetlbLimit::new("1GB", Limit::Max), two_mb],
        "every page size, sorted, not the reservation limits"
    );

    let r = Resources {
        hugetlb: vec![
            HugetlbLimit::new("1GB", Limit::Value(1 << 30)),
            HugetlbLimit::new("16GB", Limit::Max),
        ],
        ..Resources::default()
    };
    let err = controller
        .apply(t.path(), &r)
        .expect_err("no 16GB pages here");
    assert!(
        matches!(&err, Error::Unsupported { setting, .. } if setting == "hugetlb"),
        "{err}"
    );
    assert!(err.to_string().contains(&file("16GB")), "{err}");
    assert_eq!(
        t.read(&file("1GB")),
        unlimited.trim(),
        "no half-applied limit"
    );
}
