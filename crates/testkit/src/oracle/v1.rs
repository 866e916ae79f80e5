//! cgroups-rs reader for v1 hierarchies (owned by the cgroup-v1 backend work).
