//! The run: setup -> stress until the deadline or a signal -> quiesce ->
//! teardown -> verify. Workers are dedicated OS threads issuing syscalls;
//! tokio (one thread) drives the deadline, signals, progress, the kernel-log
//! scan and the hung-op watchdog.

mod progress;
mod shared;
mod worker;

use crate::check::Finding;
use crate::journal::Journal;
use crate::model::{LinkKind, Scope, Tag};
use crate::platform::runlock::RunLock;
use crate::platform::{EnvError, KernelLog, Platform, Session};
use crate::report::Report;
use crate::stats::WorkerStats;
use crate::suite::Suite;
use crate::world::{Layout, World};
use anyhow::{Context, anyhow};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime};

pub use progress::Signals;
pub use shared::OnHang;
pub(crate) use shared::Shared;
pub use worker::WorkerSpec;

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub suite: Suite,
    pub duration: Duration,
    pub seed: u64,
    /// Every loop's worker count is multiplied by this.
    pub workers_scale: usize,
    pub journal: Option<PathBuf>,
    pub journal_max_bytes: u64,
    /// Also stream the journal's newest lines and a heartbeat here (a serial
    /// port in `ifstress vm` guests).
    pub journal_port: Option<PathBuf>,
    pub quiet: bool,
    /// Load the kernel modules of the suite's link kinds before probing.
    pub load_modules: bool,
    /// Overrides the suite's checks.dying_grace.
    pub dying_grace: Option<Duration>,
    /// What a hang does: report it, or crash the kernel for a dump.
    pub on_hang: OnHang,
}

/// Everything set up and torn down for one run; drop order matters little
/// because teardown is explicit and idempotent.
pub struct Run {
    platform: &'static dyn Platform,
    cfg: RunConfig,
    suite: Suite,
    tag: Tag,
    notes: Vec<String>,
    signals: progress::Signals,
    /// Held until the run is torn down: `cleanup` leaves the tag alone.
    _lock: RunLock,
}

const OUT_OF_MEMORY: &str =
    "memory ran out (an allocation failed: `ulimit -v`, or the machine is out of memory)";

/// EAGAIN or ENOMEM anywhere in the chain: a thread or memory the
/// machine (or a ulimit) did not give.
fn out_of_resources(e: &anyhow::Error) -> bool {
    crate::memory::low()
        || e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .and_then(|io| io.raw_os_error())
                .is_some_and(|n| n == libc::EAGAIN || n == libc::ENOMEM)
        })
}

/// Pick a tag no live run holds and no earlier run left objects under, and
/// lock it for this run.
pub fn fresh_tag(platform: &dyn Platform) -> anyhow::Result<(Tag, RunLock)> {
    for _ in 0..32 {
        let t = Tag::new(fastrand::u16(..));
        let Some(lock) = RunLock::acquire(&t).map_err(|e| EnvError::Unusable(format!("{e}")))?
        else {
            continue;
        };
        if platform.leftovers(Scope::Run(&t))?.is_empty() {
            return Ok((t, lock));
        }
    }
    Err(anyhow!(
        "could not find an unused run tag; run `ifstress cleanup`"
    ))
}

impl Run {
    /// Check privileges and kernel support, and settle what will run.
    /// Signal handling is in place before anything is created (the link-kind
    /// probe creates a scratch stack).
    pub fn prepare(platform: &'static dyn Platform, cfg: RunConfig) -> anyhow::Result<Run> {
        // First of all: the memory teardown and the report will need, and a
        // thread can be started (the orchestrator's runtime panics if not).
        if crate::memory::low() {
            return Err(EnvError::Unusable(format!("{OUT_OF_MEMORY} before the run began")).into());
        }
        crate::memory::arm().map_err(|e| EnvError::Unusable(e.to_string()))?;
        std::thread::Builder::new()
            .spawn(|| ())
            .and_then(|t| t.join().map_err(|_| std::io::Error::other("panicked")))
            .map_err(|e| {
                EnvError::Unusable(format!(
                    "cannot start a thread ({e}): raise `ulimit -v` / `ulimit -u` or free memory"
                ))
            })?;
        let signals = progress::Signals::install(platform)?;
        platform.require_privileges()?;
        platform.require_features()?;
        let (tag, lock) = fresh_tag(platform)?;
        signals.set_tag(&tag);
        let mut kinds: Vec<LinkKind> = cfg.suite.topology.links.iter().map(|l| l.kind).collect();
        kinds.sort();
        kinds.dedup();
        let probes = match platform.probe_kinds(&tag, &kinds) {
            Ok(p) => p,
            Err(e) => {
                // Whatever the cut-short probe made goes; a machine out of
                // threads or memory is the environment, not ifstress.
                let _ = platform.cleanup(Scope::Run(&tag));
                if out_of_resources(&e) {
                    return Err(EnvError::Unusable(format!(
                        "probing link kinds: {e:#} (out of memory or threads: `ulimit -v`/`-u`?)"
                    ))
                    .into());
                }
                return Err(e.context("probing link kinds"));
            }
        };
        let mut missing = Vec::new();
        let mut notes = Vec::new();
        for p in probes {
            if let Err(why) = p.result {
                let optional = cfg
                    .suite
                    .topology
                    .links
                    .iter()
                    .any(|l| l.kind == p.kind && l.optional);
                if !optional {
                    return Err(EnvError::Missing(format!(
                        "link kind `{}` ({}): {why}",
                        p.kind, p.native
                    ))
                    .into());
                }
                notes.push(format!(
                    "link kind {} ({}) skipped: {why}",
                    p.kind, p.native
                ));
                missing.push(p.kind);
            }
        }
        let (suite, dropped) = cfg.suite.without_kinds(&missing);
        notes.extend(dropped);
        if suite.loops.is_empty() {
            return Err(EnvError::Missing("every link kind the suite needs".into()).into());
        }
        Ok(Run {
            platform,
            cfg,
            suite,
            tag,
            notes,
            signals,
            _lock: lock,
        })
    }

    pub fn tag(&self) -> &Tag {
        &self.tag
    }

    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    pub fn suite(&self) -> &Suite {
        &self.suite
    }

    /// Worker threads by loop, with their global indices.
    pub fn worker_specs(&self) -> Vec<WorkerSpec> {
        let mut v = Vec::new();
        for (li, lp) in self.suite.loops.iter().enumerate() {
            let of = lp.workers * self.cfg.workers_scale;
            for index in 0..of {
                v.push(WorkerSpec {
                    index: v.len(),
                    loop_index: li,
                    share: crate::plan::Share { index, of },
                    rate: lp.rate,
                });
            }
        }
        v
    }

    /// Run to the end. Interrupts are handled inside; the report says so.
    pub fn execute(self) -> anyhow::Result<Report> {
        let layout = Layout::new(&self.suite, &self.tag);
        let world = Arc::new(World::new(layout.clone()));
        let specs = self.worker_specs();
        let check_log = self.suite.checks.kernel_log;
        let mut klog: Option<Box<dyn KernelLog>> = if check_log {
            Some(
                self.platform
                    .kernel_log()
                    .context("opening the kernel log")?,
            )
        } else {
            None
        };
        let started_at = SystemTime::now();
        let memory_before = self.platform.memory_counters();
        if self.signals.interrupted.load(Relaxed) {
            // Stopped while preparing: nothing to set up only to tear down.
            let mut report = self.report_without_stress(started_at);
            report
                .notes
                .push("interrupted before the run's stacks were made".into());
            self.verify(&mut report, &mut klog);
            return Ok(report);
        }
        let session = match self.platform.start(world.clone()) {
            Ok(s) => s,
            Err(e) => {
                // Nothing raced, but the log is still read and whatever the
                // failed setup made is still removed: a report, not a bare error.
                let mut report = self.report_without_stress(started_at);
                report
                    .errors
                    .push(format!("creating the run's stacks: {e:#}"));
                if let Err(e) = self.platform.cleanup(Scope::Run(&self.tag)) {
                    report
                        .notes
                        .push(format!("cleanup after a failed setup: {e:#}"));
                }
                self.verify(&mut report, &mut klog);
                return Ok(report);
            }
        };
        // From here on, whatever happens, the run's objects are removed and
        // the report is written: ifstress's own failure is one of its lines.
        let result = self.stress(&session, &world, &specs, &layout, &mut klog, started_at);
        let teardown = session.teardown();
        let grace = self
            .cfg
            .dying_grace
            .unwrap_or_else(|| self.suite.dying_grace());
        let waiting = std::time::Instant::now();
        let dying = session.dying(grace);
        let waited = waiting.elapsed();
        drop(session);
        let mut report = result.unwrap_or_else(|e| {
            eprintln!("ifstress: {e:#}");
            let mut r = self.report_without_stress(started_at);
            r.errors.push(format!("{e:#}"));
            r
        });
        if let Err(e) = teardown {
            report.errors.push(format!("teardown: {e:#}"));
        }
        match dying {
            Ok(held) => {
                if held.is_empty() {
                    report.stacks_gone_after_s =
                        Some((waited.as_secs_f64() * 100.0).round() / 100.0);
                }
                for (s, what) in held {
                    let opens = world.tun_opens(s);
                    let inside = if opens > 0 {
                        format!(" (tun-open {opens} times inside)")
                    } else {
                        String::new()
                    };
                    report.findings.push(Finding::new(
                        "dying-stack",
                        format!(
                            "{what} still alive {} s after removal{inside}",
                            grace.as_secs()
                        ),
                        format!(
                            "{what}\nremoved at teardown, still present after {} s{inside}",
                            grace.as_secs()
                        ),
                    ));
                }
            }
            Err(e) => report.notes.push(format!("dying-stack check: {e:#}")),
        }
        for (what, before, after) in
            crate::check::leak::grown(&memory_before, &self.platform.memory_counters())
        {
            report.findings.push(Finding::new(
                "leak",
                format!("{what} grew by {} across the run", after - before),
                format!("{what}: {before} before setup, {after} after teardown"),
            ));
        }
        self.verify(&mut report, &mut klog);
        Ok(report)
    }

    /// The run's report before the stress phase has said anything: its
    /// identity, `elapsed`, whether a signal came, and the setup notes.
    fn base_report(&self, started_at: SystemTime, elapsed: Duration) -> Report {
        let mut r = Report::new(
            &self.suite,
            (self.platform.name(), self.platform.kernel()),
            self.cfg.seed,
            &self.tag,
            started_at,
            elapsed,
            self.cfg.duration,
        );
        r.interrupted = self.signals.interrupted.load(Relaxed);
        r.notes = self.notes.clone();
        r
    }

    /// The report of a run whose stress phase never happened or failed.
    fn report_without_stress(&self, started_at: SystemTime) -> Report {
        self.base_report(started_at, started_at.elapsed().unwrap_or_default())
    }

    fn stress(
        &self,
        session: &Arc<dyn Session>,
        world: &Arc<World>,
        specs: &[WorkerSpec],
        layout: &Layout,
        klog: &mut Option<Box<dyn KernelLog>>,
        started_at: SystemTime,
    ) -> anyhow::Result<Report> {
        let signals = &self.signals;
        let setup = worker::populate(session.clone(), world.clone(), specs.len())?;
        if crate::memory::low() {
            // Out of memory already while setting up: no worker is started,
            // the stacks are torn down and the report says why.
            anyhow::bail!("{OUT_OF_MEMORY} during setup");
        }
        let shared = Arc::new(Shared {
            stop: signals.stop.clone(),
            epoch: Instant::now(),
            live: (0..specs.len()).map(|_| Default::default()).collect(),
            failed: Default::default(),
        });
        let epoch_unix_us = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros() as u64;
        let (journal, rings) = match &self.cfg.journal {
            Some(dir) => {
                let header = format!(
                    "suite = {}\nseed = {}\ntag = {}\nplatform = {}\nkernel = {}\n{}start_unix_us = {epoch_unix_us}\nformat = unix_us worker #seq op link stack result latency\n",
                    self.suite.name,
                    self.cfg.seed,
                    self.tag.id,
                    self.platform.name(),
                    self.platform.kernel(),
                    // postmortem keys known issues by it after the reboot.
                    self.platform
                        .kernel_version()
                        .map_or(String::new(), |v| format!("kernel_version = {v}\n")),
                );
                let (j, rings) = Journal::create(
                    dir,
                    specs.len(),
                    self.cfg.journal_max_bytes,
                    Arc::new(layout.clone()),
                    &header,
                    epoch_unix_us,
                )
                .with_context(|| format!("creating the journal in {}", dir.display()))?;
                let mut j = j;
                if let Some(port) = &self.cfg.journal_port {
                    let f = std::fs::OpenOptions::new()
                        .append(true)
                        .open(port)
                        .with_context(|| format!("opening the journal port {}", port.display()))?;
                    j.mirror_to(f, self.platform.kernel_version());
                }
                (
                    Some(j.start().context("starting the journal")?),
                    Some(rings),
                )
            }
            None => (None, None),
        };
        let cpu_before = crate::resources::Cpu::this_process();
        let (tx, rx) = std::sync::mpsc::channel::<worker::Done>();
        let mut errors = Vec::new();
        for spec in specs {
            if crate::memory::low() {
                // Out of memory: start no more; the run stops at once.
                shared.failed.fetch_add(1, Relaxed);
                continue;
            }
            let ring = rings.as_ref().map(|r| r[spec.index].clone());
            if let Err(e) = worker::spawn(
                *spec,
                &self.suite.loops[spec.loop_index],
                self.cfg.seed,
                session.clone(),
                world.clone(),
                shared.clone(),
                ring,
                self.platform,
                tx.clone(),
            ) {
                // Out of threads: the run goes on with the workers it has.
                let text = format!(
                    "worker {} (loop {}) failed to start: {e:#}",
                    spec.index, self.suite.loops[spec.loop_index].name
                );
                eprintln!("ifstress: {text}");
                errors.push((spec.index, text));
                shared.failed.fetch_add(1, Relaxed);
            }
        }
        drop(tx);
        let orchestration = progress::orchestrate(
            signals,
            self.platform,
            &shared,
            self.cfg.duration,
            self.suite.hang_after(),
            self.cfg.quiet,
            klog,
            world,
            self.cfg.on_hang,
        );
        // Quiesce: a worker stuck in the kernel cannot be joined; wait a bounded time.
        shared.stop.store(true, Relaxed);
        let mut total = WorkerStats::default();
        let mut pending = specs.len();
        let mut hung_workers = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while pending > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((_, Ok(stats))) => total.merge(&stats),
                Ok((worker, Err(text))) => errors.push((worker, text)),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    for (i, l) in shared.live.iter().enumerate() {
                        if l.in_flight_since.load(Relaxed) != 0 {
                            hung_workers.push(i);
                        }
                    }
                    break;
                }
            }
            pending -= 1;
        }
        // Each was said on stderr as it happened; the report keeps them.
        let journal_notes = journal.map(|j| j.close()).unwrap_or_default();
        errors.sort_by_key(|(worker, _)| *worker);
        let elapsed = shared.epoch.elapsed();
        let cpu = crate::resources::Cpu::this_process().since(&cpu_before);
        let mut findings = orchestration.findings;
        for i in hung_workers {
            if !findings
                .iter()
                .any(|f| f.kind == "hang" && f.excerpt.contains(&format!("worker {i} ")))
            {
                findings.push(Finding::new(
                    "hang",
                    format!("worker {i} did not stop within 30 s of the end of the run"),
                    format!("worker {i} was still inside an op when the run ended"),
                ));
            }
        }
        let mut report = self.base_report(started_at, elapsed);
        report.interrupted |= orchestration.interrupted;
        report.workers = specs.len();
        report.setup = setup;
        report.ops = total.summary();
        report.total_ops = report.ops.values().map(|o| o.count).sum();
        report.findings = findings;
        report.errors = errors.into_iter().map(|(_, e)| e).collect();
        report.notes.extend(journal_notes);
        if crate::memory::low() {
            report.errors.push(format!(
                "{OUT_OF_MEMORY}: the run stopped early, tore down and wrote this report from the reserve"
            ));
        }
        if shared.failed.load(Relaxed) >= specs.len() && !report.interrupted {
            report
                .notes
                .push("every worker failed: the run stopped early".into());
        }
        report.scanner = orchestration.scanner;
        report.resources = crate::resources::Resources::new(
            &cpu,
            orchestration.rss.samples(),
            self.platform.rss_peak_bytes().map(|b| b / 1024),
        );
        Ok(report)
    }

    /// After teardown: leftovers and the last of the kernel log.
    fn verify(&self, report: &mut Report, klog: &mut Option<Box<dyn KernelLog>>) {
        if self.suite.checks.leftovers {
            // Namespace and jail removal finish asynchronously in the kernel.
            let mut left = Vec::new();
            for _ in 0..20 {
                left = match self.platform.leftovers(Scope::Run(&self.tag)) {
                    Ok(l) => l,
                    Err(e) => vec![format!("could not check for leftovers: {e:#}")],
                };
                if left.is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            for l in &left {
                report.findings.push(Finding::new(
                    "leftover",
                    format!("still present after teardown: {l}"),
                    l.clone(),
                ));
            }
            report.leftovers = left;
        }
        if let Some(k) = klog {
            let mut scanner = std::mem::take(&mut report.scanner).unwrap_or_default();
            let mut lines = String::new();
            if let Err(e) = k.read_final(&mut lines) {
                report.notes.push(format!("reading the kernel log: {e}"));
            }
            for l in lines.lines() {
                scanner.feed(l);
            }
            for f in scanner.into_findings() {
                if !report.findings.contains(&f) {
                    report.findings.push(f);
                }
            }
        }
        crate::check::known::annotate(
            &mut report.findings,
            &crate::check::known::load(),
            crate::check::known::Kernel {
                os: Some(self.platform.name()),
                osreldate: self.platform.kernel_version(),
            },
        );
        report.finish();
    }
}
