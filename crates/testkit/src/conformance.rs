//! One conformance suite for every backend: the same `Resources` must mean the same thing
//! on cgroup v1 and v2 (what a pids limit of 0 means, what `max` means, what swap means).
