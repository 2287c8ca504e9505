//! What the orchestrator, the workers and the watchdog share: the stop
//! flag and clock, the live counters, what a hang does, and how an op in
//! flight is named. A leaf under `engine`'s parts.

use crate::model::OpKind;
use crate::world::World;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OnHang {
    /// A finding in the report.
    #[default]
    Report,
    /// A finding, then a forced kernel crash so that the dump holds every
    /// thread's state (FreeBSD debug.kdb.panic=1, Linux sysrq c). Disposable
    /// VMs only.
    Panic,
}

/// Shared between the workers, the watchdog and the orchestrator.
pub(crate) struct Shared {
    pub stop: Arc<AtomicBool>,
    pub epoch: Instant,
    pub live: Vec<crate::stats::Live>,
    /// Workers that ended with an error; when all have, the run stops early.
    pub failed: std::sync::atomic::AtomicUsize,
}

impl Shared {
    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

/// Short name of an op in flight, for hang findings.
pub(crate) fn describe_in_flight(world: &World, word: u32) -> String {
    let kind = OpKind::from_index((word & 0xff) as usize)
        .map(|k| k.as_str())
        .unwrap_or("?");
    let link = world
        .layout
        .links
        .get((word >> 8) as usize)
        .map(|l| l.names[0].as_str())
        .unwrap_or("?");
    format!("{kind} on {link}")
}
