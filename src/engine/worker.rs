//! Worker threads: each runs one loop's op mix until told to stop. The loop
//! body is the hot path: no allocation, formatting, logging or lock per op.

use super::shared::Shared;
use crate::journal::Ring;
use crate::model::OpKind;
use crate::plan::{Op, Planner, Share};
use crate::platform::{Outcome, Platform, Session};
use crate::report::SetupSummary;
use crate::stats::{WorkerStats, errno_name};
use crate::suite::LoopSpec;
use crate::world::World;
use anyhow::Context;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct WorkerSpec {
    pub index: usize,
    pub loop_index: usize,
    /// Position among the loop's workers (cycle mode splits links by it).
    pub share: Share,
    pub rate: Option<u32>,
}

/// A worker's end: its counters, or why it failed (already said on stderr).
pub type Done = (usize, Result<WorkerStats, String>);

/// Signals go to the orchestrator, never to a worker inside a syscall.
fn block_signals() {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGHUP);
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
}

/// Create every link of the layout once, on a thread of its own, so the
/// workers start with something to race on.
pub fn populate(
    session: Arc<dyn Session>,
    world: Arc<World>,
    id: usize,
) -> anyhow::Result<SetupSummary> {
    std::thread::Builder::new()
        .name("ifstress-setup".into())
        .spawn(move || -> anyhow::Result<SetupSummary> {
            block_signals();
            let mut exec = session.executor(id).context("preparing the setup thread")?;
            let mut sum = SetupSummary::default();
            for (i, l) in world.layout.links.iter().enumerate() {
                if !l.is_creator() {
                    continue;
                }
                let op = Op {
                    kind: OpKind::Create,
                    link: i as u16,
                    other: 0,
                    stack: 0,
                    arg: 0,
                };
                match exec.exec(&op) {
                    Outcome::Ok => sum.created += 1,
                    Outcome::Err(e) => {
                        *sum.failed.entry(errno_name(e).to_string()).or_default() += 1
                    }
                    Outcome::Skipped => *sum.failed.entry("skipped".into()).or_default() += 1,
                }
            }
            exec.finish();
            Ok(sum)
        })?
        .join()
        .map_err(|_| anyhow::anyhow!("setup thread panicked"))?
}

#[allow(clippy::too_many_arguments)]
pub fn spawn(
    spec: WorkerSpec,
    lp: &LoopSpec,
    seed: u64,
    session: Arc<dyn Session>,
    world: Arc<World>,
    shared: Arc<Shared>,
    ring: Option<Arc<Ring>>,
    platform: &'static dyn Platform,
    done: Sender<Done>,
) -> anyhow::Result<()> {
    let planner = Planner::new(&world.layout, lp, seed, spec.index, spec.share);
    let loop_name = lp.name.clone();
    std::thread::Builder::new()
        .name(format!("ifstress-w{}", spec.index))
        .spawn(move || {
            block_signals();
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                body(
                    spec,
                    planner,
                    session,
                    &world,
                    &shared,
                    ring.as_deref(),
                    platform,
                )
            }));
            let r = r
                .map_err(|p| panic_text(p.as_ref()))
                .and_then(|r| r.map_err(|e| format!("{e:#}")))
                .map_err(|why| failure(spec, &loop_name, &shared, &world, &why));
            let _ = done.send((spec.index, r));
        })
        .context("starting a worker thread")?;
    Ok(())
}

/// Say at once that a worker failed, and what it was doing: the run goes
/// on with the others and the report lists it.
fn failure(spec: WorkerSpec, loop_name: &str, shared: &Shared, world: &World, why: &str) -> String {
    let live = &shared.live[spec.index];
    let doing = if live.in_flight_since.load(Relaxed) != 0 {
        format!(
            "during {}",
            super::shared::describe_in_flight(world, live.in_flight.load(Relaxed))
        )
    } else if live.ops.load(Relaxed) == 0 {
        "before its first op".to_string()
    } else {
        format!("after {} ops", live.ops.load(Relaxed))
    };
    // The op did not hang, it failed: the watchdog must not call it a hang.
    live.in_flight_since.store(0, Relaxed);
    let text = format!(
        "worker {} (loop {loop_name}) failed {doing}: {why}",
        spec.index
    );
    eprintln!("ifstress: {text}");
    shared.failed.fetch_add(1, Relaxed);
    text
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .map(|s| format!("panicked: {s}"))
        .unwrap_or_else(|| "panicked".into())
}

fn body(
    spec: WorkerSpec,
    mut planner: Planner,
    session: Arc<dyn Session>,
    world: &World,
    shared: &Shared,
    ring: Option<&Ring>,
    platform: &dyn Platform,
) -> anyhow::Result<WorkerStats> {
    let live = &shared.live[spec.index];
    live.tid.store(platform.thread_id(), Relaxed);
    let mut exec = session.executor(spec.index)?;
    let mut stats = WorkerStats::default();
    let interval = spec.rate.map(|r| Duration::from_secs_f64(1.0 / r as f64));
    let mut next_due = Instant::now();
    while !shared.stop.load(Relaxed) {
        let op = planner.next_op();
        let start = Instant::now();
        let t_us = start.duration_since(shared.epoch).as_micros() as u64;
        live.begin(t_us, op.kind, op.link);
        let out = exec.exec(&op);
        let took = start.elapsed();
        live.end(out);
        if op.kind == OpKind::TunOpen && out == Outcome::Ok {
            world.tun_opened(op.stack);
        }
        stats.record(op.kind, out, took);
        if let Some(r) = ring {
            r.push(
                t_us,
                op.kind,
                op.link,
                op.stack,
                out,
                took.as_micros().min(u32::MAX as u128) as u32,
            );
        }
        if let Some(iv) = interval {
            next_due += iv;
            pace(next_due, shared);
        }
    }
    exec.finish();
    Ok(stats)
}

/// Sleep until `due`, waking early enough to notice the stop flag.
fn pace(due: Instant, shared: &Shared) {
    loop {
        let now = Instant::now();
        if now >= due || shared.stop.load(Relaxed) {
            return;
        }
        std::thread::sleep((due - now).min(Duration::from_millis(50)));
    }
}
