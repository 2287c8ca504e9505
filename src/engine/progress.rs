//! The orchestrator: signals, the deadline, the live kernel-log scan, the
//! hung-op watchdog and the progress display, on a one-thread tokio runtime
//! that lives as long as the run.

use super::shared::{OnHang, Shared, describe_in_flight};
use crate::check::{Finding, triage::Scanner};
use crate::model::{Scope, Tag};
use crate::platform::{KernelLog, Platform};
use crate::world::World;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;
use tokio::sync::Notify;

/// SIGINT/SIGTERM/SIGHUP handling for the whole run, installed before the
/// run creates anything (the link-kind probe included). The first signal
/// asks the run to stop (it still cleans up and writes its report); a
/// second one removes everything tagged with the run's tag and exits at once.
pub struct Signals {
    pub rt: tokio::runtime::Runtime,
    pub interrupted: Arc<AtomicBool>,
    /// The workers' stop flag: raised by the deadline or by a signal.
    pub stop: Arc<AtomicBool>,
    notify: Arc<Notify>,
    /// The run's tag, once chosen: what a second signal sweeps.
    tag: Arc<std::sync::OnceLock<Tag>>,
}

impl Signals {
    pub fn install(platform: &'static dyn Platform) -> anyhow::Result<Signals> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ifstress-orchestrator")
            .enable_all()
            .build()?;
        // Registered before returning, so no signal falls between the cracks.
        let mut signals = {
            let _g = rt.enter();
            crate::platform::unix::StopSignals::new()?
        };
        let interrupted = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let notify = Arc::new(Notify::new());
        let tag = Arc::new(std::sync::OnceLock::<Tag>::new());
        let (i2, s2, n2, t2) = (
            interrupted.clone(),
            stop.clone(),
            notify.clone(),
            tag.clone(),
        );
        rt.spawn(async move {
            signals.recv().await;
            i2.store(true, Relaxed);
            s2.store(true, Relaxed);
            n2.notify_one();
            eprintln!(
                "ifstress: stopping: letting ops finish, removing what the run created, writing the report (signal again to exit at once)"
            );
            signals.recv().await;
            let Some(tag) = t2.get() else {
                eprintln!("ifstress: second signal: nothing created yet; exiting");
                crate::platform::runlock::release_all();
                std::process::exit(130);
            };
            eprintln!("ifstress: second signal: removing objects tagged {} and exiting", tag.id);
            // Workers stopped at the first signal, but one may still be inside
            // an op that creates a stack: give in-flight ops a moment, and
            // sweep twice so that such a straggler is caught too.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            for _ in 0..2 {
                if let Err(e) = platform.cleanup(Scope::Run(tag)) {
                    eprintln!("ifstress: cleanup: {e:#}");
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            crate::platform::runlock::release_all();
            std::process::exit(130);
        });
        Ok(Signals {
            rt,
            interrupted,
            stop,
            notify,
            tag,
        })
    }

    /// From now on a second signal sweeps this tag.
    pub fn set_tag(&self, tag: &Tag) {
        let _ = self.tag.set(tag.clone());
    }
}

pub struct Orchestration {
    pub findings: Vec<Finding>,
    pub interrupted: bool,
    pub scanner: Option<Scanner>,
    /// (seconds since the workers started, RSS KiB), once a second, thinned on long runs.
    pub rss: crate::resources::RssSeries,
}

/// Wait for the deadline or a signal, watching the run meanwhile.
#[allow(clippy::too_many_arguments)]
pub fn orchestrate(
    signals: &Signals,
    platform: &dyn Platform,
    shared: &Shared,
    duration: Duration,
    hang_after: Duration,
    quiet: bool,
    klog: &mut Option<Box<dyn KernelLog>>,
    world: &World,
    on_hang: OnHang,
) -> Orchestration {
    let tty = std::io::stderr().is_terminal() && !quiet;
    let bar = tty.then(|| {
        let b = indicatif::ProgressBar::new(duration.as_secs().max(1));
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len}s {msg}",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        b
    });
    let mut scanner = klog.as_ref().map(|_| Scanner::default());
    let mut findings: Vec<Finding> = Vec::new();
    let mut hung_reported: Vec<(usize, u64)> = Vec::new();
    let mut lines = String::new();
    let mut last_ops = 0u64;
    let mut ticks = 0u64;
    let mut progress_at = std::time::Instant::now();
    let mut stall_reported = false;
    let mut dumped = false;
    let mut rss = crate::resources::RssSeries::new();
    let hang_us = hang_after.as_micros() as u64;
    let interrupted = signals.rt.block_on(async {
        let deadline = tokio::time::sleep(duration);
        tokio::pin!(deadline);
        // The first tick a second in, not at once: an RSS sample taken before
        // the workers have touched their memory would read as growth.
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + Duration::from_secs(1),
            Duration::from_secs(1),
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            if signals.interrupted.load(Relaxed) {
                return true;
            }
            // Every worker failed (each said why): nothing is racing any more.
            if shared.failed.load(Relaxed) >= shared.live.len() {
                return false;
            }
            // An allocation failed and the reserve was given back: stop
            // while teardown and the report still have room.
            if crate::memory::low() {
                return false;
            }
            tokio::select! {
                _ = &mut deadline => return false,
                _ = signals.notify.notified() => return true,
                _ = tick.tick() => {}
            }
            ticks += 1;
            if let Some(b) = platform.rss_bytes() {
                rss.offer(shared.epoch.elapsed().as_secs_f64(), b / 1024);
            }
            // Kernel log, every other second.
            if let (true, Some(k), Some(s)) =
                (ticks.is_multiple_of(2), klog.as_mut(), scanner.as_mut())
            {
                {
                    lines.clear();
                    if k.read_new(&mut lines).is_ok() {
                        let before = s.count();
                        for l in lines.lines() {
                            s.feed(l);
                        }
                        if !quiet {
                            for t in s.titles_since(before) {
                                let msg = format!("ifstress: kernel: {t}");
                                match &bar {
                                    Some(b) => b.println(msg),
                                    None => eprintln!("{msg}"),
                                }
                            }
                        }
                    }
                }
            }
            // Watchdog: an op in flight longer than the threshold is a hang.
            let now = shared.now_us();
            for (i, l) in shared.live.iter().enumerate() {
                let since = l.in_flight_since.load(Relaxed);
                if since == 0
                    || now.saturating_sub(since - 1) < hang_us
                    || hung_reported.contains(&(i, since))
                {
                    continue;
                }
                hung_reported.push((i, since));
                let what = describe_in_flight(world, l.in_flight.load(Relaxed));
                let tid = l.tid.load(Relaxed);
                let stack = platform
                    .thread_stack(tid)
                    .unwrap_or_else(|| "(kernel stack not readable)".into());
                let title = format!(
                    "op {what} has not returned after {} s",
                    hang_after.as_secs()
                );
                if !quiet {
                    eprintln!("ifstress: hang: {title}");
                }
                findings.push(Finding::new(
                    "hang",
                    title,
                    format!("worker {i} (thread {tid}) in {what}\n{stack}"),
                ));
            }
            let ops: u64 = shared.live.iter().map(|l| l.ops.load(Relaxed)).sum();
            let errs: u64 = shared.live.iter().map(|l| l.errors.load(Relaxed)).sum();
            // A run whose progress stops while ops are in flight: the kernel is
            // wedged somewhere every worker ends up waiting on.
            if ops != last_ops {
                progress_at = std::time::Instant::now();
            } else if !stall_reported && progress_at.elapsed() >= hang_after {
                let stuck: Vec<(usize, &crate::stats::Live)> = shared
                    .live
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.in_flight_since.load(Relaxed) != 0)
                    .collect();
                if !stuck.is_empty() {
                    stall_reported = true;
                    let mut ex = String::new();
                    for (i, l) in &stuck {
                        let tid = l.tid.load(Relaxed);
                        ex.push_str(&format!(
                            "worker {i} (thread {tid}) in {}\n{}\n",
                            describe_in_flight(world, l.in_flight.load(Relaxed)),
                            platform.thread_stack(tid).unwrap_or_default()
                        ));
                    }
                    let title = format!(
                        "no op completed for {} s while {} ops were in flight",
                        hang_after.as_secs(),
                        stuck.len()
                    );
                    if !quiet {
                        eprintln!("ifstress: stall: {title}");
                    }
                    findings.push(Finding::new("stall", title, ex));
                }
            }
            if !dumped
                && on_hang == OnHang::Panic
                && findings
                    .iter()
                    .any(|f| f.kind == "hang" || f.kind == "stall")
            {
                dumped = true;
                eprintln!("ifstress: hang found; forcing a kernel crash dump (--on-hang=panic)");
                // The journal flushes twice a second: let the last ops reach the disk.
                std::thread::sleep(crate::journal::FLUSH_EVERY * 3);
                if let Err(e) = platform.force_dump() {
                    eprintln!("ifstress: could not force a crash dump: {e}");
                }
            }
            let found = findings.len() + scanner.as_ref().map_or(0, |s| s.count());
            let rate = ops - last_ops;
            last_ops = ops;
            let elapsed = shared.epoch.elapsed().as_secs();
            match &bar {
                Some(b) => {
                    b.set_position(elapsed.min(duration.as_secs()));
                    b.set_message(format!(
                        "{ops} ops, {rate}/s, {errs} errors, {found} findings"
                    ));
                }
                None if !quiet && ticks.is_multiple_of(60) => eprintln!(
                    "ifstress: {elapsed}s/{}s {ops} ops ({rate}/s) {errs} errors {found} findings",
                    duration.as_secs()
                ),
                None => {}
            }
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Orchestration {
        findings,
        interrupted,
        scanner,
        rss,
    }
}
