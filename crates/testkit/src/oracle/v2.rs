//! cgroups-rs reader for the unified hierarchy (owned by the cgroup-v2 backend work).
