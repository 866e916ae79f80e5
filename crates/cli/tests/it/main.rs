//! Runs the real `isol` binary the way a person or a script would. Each privileged test
//! has its own state directory and creates its boxes beneath its own scratch cgroup.

mod badinput;
mod boxes;
mod common;
mod concurrency;
mod crash;
mod hostile;
mod pods;
mod report;
mod run;
mod security;
