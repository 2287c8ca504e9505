//! ifstress: races the kernel's network-interface lifecycle from userspace.
//!
//! The crate is split the way the run flows: `suite` (what to do) ->
//! `plan` (which op next) -> `engine` (workers, deadline, signals) ->
//! `platform` (the only place that names an OS) -> `check` and `report`.

pub mod addr;
pub mod bench;
pub mod bounded;
pub mod check;
pub mod cli;
pub mod doctor;
pub mod engine;
pub mod error;
pub mod journal;
pub mod memory;
pub mod model;
pub mod netlink;
pub mod plan;
pub mod platform;
pub mod postmortem;
pub mod report;
pub mod repro;
pub mod resources;
pub mod stats;
pub mod suite;
#[doc(hidden)]
pub mod testutil;
pub mod trials;
pub mod verdict;
pub mod vm;
pub mod world;
