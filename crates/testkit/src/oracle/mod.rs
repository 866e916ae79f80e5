//! An independent reader of cgroup state, built on cgroups-rs: a limit that isol wrote is
//! read back by a library that isol did not write.

pub mod v1;
pub mod v2;
