//! `ifstress repro`: from a crash to the smallest suite that still makes it.
//!
//! Three phases, every trial a disposable guest:
//! 1. **Confirm**: the run's own suite again (its seed first, then fresh
//!    ones) until the signature has recurred `trials` times. This measures
//!    the rate the rest relies on.
//! 2. **Minimise**: one reduction at a time (`reduce`), kept only when the
//!    signature recurs within the step budget E (below).
//! 3. **Measure**: the minimal suite for `trials` guests, its median time to
//!    hit against the original's; then `repro.toml`, `repro.sh`, `repro.json`.
//!
//! The step budget: confirm saw k hits in T seconds of suite time. The rate
//! is taken at its one-sided 90% lower confidence bound, λ_lo = χ²(0.10;
//! 2k)/(2T), not at k/T, so that a race that came fast by luck in the
//! confirm phase does not make steps too short. A step watches its
//! candidate for E = ln(1/miss)/λ_lo seconds of suite time (across as many
//! guests as that takes). What E bounds: a reduction that removed nothing
//! the race needs leaves its rate at λ ≥ λ_lo, so the candidate goes unseen
//! for E, and the reduction is wrongly refused, with probability at most
//! `miss` (default 5%; given λ ≥ λ_lo, itself a 90% bound). A needed op is
//! never dropped whatever E is: a reduction is kept only when its suite hit
//! the signature by itself. A refused reduction costs one E; one that makes
//! the race rarer may be refused, and the result is then less minimal, never
//! wrong.
//!
//! Before the confirm phase has a hit, the report's own trials (k_r hits in
//! T_r) give the same bound: a confirm that watched ln(1/miss)/λ_lo(k_r,
//! T_r) without a hit ends "not reproduced within budget".

pub mod reduce;
pub mod shell;

use crate::model::OpKind;
use crate::report::Report;
use crate::suite::Suite;
use crate::verdict::poisson::{self, Observation};
use anyhow::Context;
use reduce::Reduction;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// One guest's run of a suite, as far as the signature goes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Trial {
    pub hit: bool,
    /// Suite seconds: until the hit, or watched without one (censored).
    pub seconds: f64,
    /// The guest's whole life, boot included.
    pub guest_seconds: f64,
}

/// What one batch of guests gave.
#[derive(Debug, Default)]
pub struct Batch {
    pub trials: Vec<Trial>,
    /// Where its reports are, for repro.json.
    pub dir: Option<PathBuf>,
}

/// Runs guests of a suite. The real one boots QEMU guests; tests give a
/// simulated kernel.
pub trait Guests {
    /// Guests of `suite` (as many as run side by side), each watched for at
    /// most `cap` seconds of suite time. `seed` None means fresh.
    fn run(
        &mut self,
        label: &str,
        suite: &Suite,
        cap: f64,
        seed: Option<u64>,
    ) -> anyhow::Result<Batch>;
    /// How many guests one batch runs side by side.
    fn width(&self) -> usize;
}

#[derive(Debug, Clone)]
pub struct ReproConfig {
    pub signature: String,
    pub title: String,
    pub original: Suite,
    pub seed: Option<u64>,
    /// From the crashed run's journal: how recently each op kind ran.
    pub scores: BTreeMap<OpKind, usize>,
    /// The report's own trials: hits and suite seconds.
    pub prior: (usize, f64),
    pub trials: usize,
    pub miss: f64,
    pub budget: Duration,
    pub out: PathBuf,
    pub os: shell::Os,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub index: usize,
    pub phase: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reduction: Option<Reduction>,
    pub description: String,
    /// The suite tried, in short: loops and their op kinds.
    pub suite: String,
    pub trials: Vec<Trial>,
    pub hits: usize,
    pub exposure_s: f64,
    pub budget_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<String>,
}

/// Time to hit over a set of trials.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HitTimes {
    pub trials: usize,
    pub hits: usize,
    pub exposure_s: f64,
    /// Kaplan–Meier median; None when fewer than half hit.
    pub median_s: Option<f64>,
    pub min_s: Option<f64>,
    pub max_s: Option<f64>,
    pub rate_per_hour: f64,
    /// Exact (Garwood) 95% interval of the rate.
    pub rate_interval_per_hour: [f64; 2],
}

impl HitTimes {
    pub fn of(trials: &[Trial]) -> HitTimes {
        let hits: Vec<f64> = trials.iter().filter(|t| t.hit).map(|t| t.seconds).collect();
        let exposure_s: f64 = trials.iter().map(|t| t.seconds).sum();
        let obs: Vec<Observation> = trials
            .iter()
            .map(|t| Observation {
                time: t.seconds,
                event: t.hit,
            })
            .collect();
        // Without exposure there is no rate; 0, as the report has always said.
        let (rate_per_hour, rate_interval_per_hour) = if exposure_s > 0.0 {
            crate::verdict::rate(hits.len(), exposure_s / 3600.0, 0.95)
        } else {
            (0.0, [0.0; 2])
        };
        HitTimes {
            trials: trials.len(),
            hits: hits.len(),
            exposure_s: round1(exposure_s),
            median_s: poisson::km_median(&obs).map(round1),
            min_s: hits.iter().copied().reduce(f64::min),
            max_s: hits.iter().copied().reduce(f64::max),
            rate_per_hour,
            rate_interval_per_hour,
        }
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// λ_lo: the one-sided 90% lower confidence bound of a Poisson rate, per
/// second, from k hits in t seconds. None without a hit.
pub fn rate_lower_bound(k: usize, t: f64) -> Option<f64> {
    (k > 0 && t > 0.0).then(|| poisson::chi2_quantile(0.10, 2.0 * k as f64) / 2.0 / t)
}

/// E: suite seconds within which a race at rate ≥ λ_lo shows with
/// probability ≥ 1 - miss.
pub fn step_budget(k: usize, t: f64, miss: f64) -> Option<f64> {
    rate_lower_bound(k, t).map(|l| (1.0 / miss).ln() / l)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Still going: what repro.json says until the end.
    Running,
    /// Confirmed, minimised (as far as the budget allowed) and measured.
    Reproduced,
    NotReproduced,
    Interrupted,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReproResult {
    pub outcome: Outcome,
    pub signature: String,
    pub title: String,
    pub original_suite: String,
    pub statement: String,
    pub method: String,
    pub confirm: Option<HitTimes>,
    /// E, seconds of suite time per reduction step.
    pub step_budget_s: Option<f64>,
    pub minimal: Option<HitTimes>,
    /// Loops and op kinds of the minimal suite.
    pub minimal_suite: Option<String>,
    pub steps: Vec<Step>,
    pub kept: usize,
    pub refused: usize,
    pub guests: usize,
    pub guest_seconds: f64,
    pub suite_seconds: f64,
    pub wall_seconds: f64,
    pub notes: Vec<String>,
}

/// A suite in one line: `loop(workers): op op | ...; links; stacks`.
pub fn brief(s: &Suite) -> String {
    let loops: Vec<String> = s
        .loops
        .iter()
        .map(|l| {
            let ops: Vec<&str> = l.ops.keys().map(|o| o.as_str()).collect();
            format!("{}({}): {}", l.name, l.workers, ops.join(" "))
        })
        .collect();
    let links: Vec<String> = s
        .topology
        .links
        .iter()
        .map(|l| format!("{}x{}", l.count, l.kind))
        .collect();
    format!(
        "{}; links {}; stacks {}+{} churn",
        loops.join(" | "),
        links.join(" "),
        s.topology.stacks,
        s.topology.churn_stacks
    )
}

struct Driver<'a, G: Guests> {
    cfg: &'a ReproConfig,
    guests: &'a mut G,
    stop: &'a Arc<AtomicBool>,
    t0: Instant,
    result: ReproResult,
    best: Suite,
    /// Batches so far: each gets its own directory.
    batches: usize,
}

impl<G: Guests> Driver<'_, G> {
    fn stopped(&self) -> bool {
        self.stop.load(Relaxed)
    }

    fn elapsed(&self) -> Duration {
        self.t0.elapsed()
    }

    /// Seconds left before `share` of the budget is spent: no guest is
    /// given longer, so the budget holds however long E is.
    fn left(&self, share: f64) -> f64 {
        (self.cfg.budget.mul_f64(share).as_secs_f64() - self.elapsed().as_secs_f64()).max(0.0)
    }

    /// Suite seconds each guest of a batch watches when the step still needs
    /// `need`: shared among the guests side by side, within the budget.
    fn cap(&self, need: f64, share: f64) -> f64 {
        (need / self.guests.width().max(1) as f64).min(self.left(share))
    }

    /// Guests of `suite` until `done` says so or nothing more should run.
    fn batch(
        &mut self,
        label: &str,
        suite: &Suite,
        cap: f64,
        seed: Option<u64>,
        step: &mut Step,
    ) -> anyhow::Result<()> {
        self.batches += 1;
        let label = format!("{label}-{:03}", self.batches);
        let label = label.as_str();
        let b = self
            .guests
            .run(label, suite, cap.max(10.0), seed)
            .with_context(|| format!("{label}: running guests"))?;
        if b.trials.is_empty() && !self.stopped() {
            anyhow::bail!(
                "{label}: no guest ran the suite (boot failures: see the guests' consoles)"
            );
        }
        for t in &b.trials {
            self.result.guests += 1;
            self.result.guest_seconds += t.guest_seconds;
            self.result.suite_seconds += t.seconds;
        }
        step.hits += b.trials.iter().filter(|t| t.hit).count();
        step.exposure_s = round1(step.exposure_s + b.trials.iter().map(|t| t.seconds).sum::<f64>());
        step.trials.extend(b.trials);
        if let Some(d) = b.dir {
            step.reports.push(d.display().to_string());
        }
        Ok(())
    }

    fn new_step(
        &self,
        phase: &'static str,
        description: String,
        suite: &Suite,
        budget: f64,
    ) -> Step {
        Step {
            index: self.result.steps.len(),
            phase,
            reduction: None,
            description,
            suite: brief(suite),
            trials: Vec::new(),
            hits: 0,
            exposure_s: 0.0,
            budget_s: round1(budget),
            kept: None,
            reports: Vec::new(),
        }
    }

    /// Confirm: the original until `trials` hits, or proof enough that it
    /// does not recur. Returns false when not reproduced.
    fn confirm(&mut self) -> anyhow::Result<bool> {
        let cfg = self.cfg;
        let give_up = step_budget(cfg.prior.0, cfg.prior.1, cfg.miss);
        let mut step = self.new_step(
            "confirm",
            "the run's suite again: its seed first, then fresh seeds".into(),
            &cfg.original,
            give_up.unwrap_or(0.0),
        );
        let share = cfg.budget.mul_f64(0.4);
        let mut seed = cfg.seed;
        let original = cfg.original.clone();
        while step.hits < cfg.trials && !self.stopped() {
            let now = HitTimes::of(&step.trials);
            let enough_without = give_up.is_some_and(|e| now.hits == 0 && now.exposure_s >= e);
            if enough_without || self.elapsed() >= share {
                break;
            }
            // Each guest watches for as long as the report's rate says a
            // hit should take at worst; after a hit, for the new bound.
            let need = step_budget(now.hits, now.exposure_s, cfg.miss)
                .or(give_up.map(|e| e - now.exposure_s))
                .unwrap_or(600.0);
            // Before a hit the give-up time is shared among the guests;
            // after, each watches the whole bound (a time to hit, not a sum).
            let cap = if now.hits == 0 {
                self.cap(need, 0.4)
            } else {
                need.min(self.left(0.4))
            };
            if cap < 10.0 {
                break;
            }
            let label = format!("{:03}-confirm", self.result.steps.len());
            self.batch(&label, &original, cap, seed.take(), &mut step)?;
            self.save_progress(&step)?;
        }
        let h = HitTimes::of(&step.trials);
        step.kept = Some(h.hits > 0);
        self.result.steps.push(step);
        self.result.confirm = Some(h.clone());
        self.result.step_budget_s = step_budget(h.hits, h.exposure_s, cfg.miss).map(round1);
        self.save()?;
        Ok(h.hits > 0)
    }

    fn minimise(&mut self) -> anyhow::Result<()> {
        let cfg = self.cfg;
        let e = self.result.step_budget_s.expect("confirmed");
        let mut refused: Vec<Reduction> = Vec::new();
        // The last fifth of the budget is for measuring the result.
        let share = cfg.budget.mul_f64(0.8);
        while !self.stopped() {
            if self.elapsed() >= share {
                self.result.notes.push(format!(
                    "minimising stopped at {:.0} s: the rest of the budget measures the result",
                    self.elapsed().as_secs_f64()
                ));
                break;
            }
            let Some((r, cand)) = reduce::next(&self.best, &cfg.scores, &refused) else {
                break;
            };
            let mut step = self.new_step("reduce", r.describe(), &cand, e);
            step.reduction = Some(r.clone());
            let label = format!("{:03}-reduce", self.result.steps.len());
            while step.hits == 0 && step.exposure_s < e && !self.stopped() {
                let cap = self.cap(e - step.exposure_s, 0.8);
                if cap < 10.0 {
                    break;
                }
                self.batch(&label, &cand, cap, None, &mut step)?;
                self.save_progress(&step)?;
            }
            if step.hits == 0 && step.exposure_s < e - 0.1 {
                // Not judged: a step cut short by an interrupt or the
                // budget says nothing about the reduction.
                self.result
                    .notes
                    .push(format!("step {} not judged: cut short", step.index));
                self.result.steps.push(step);
                self.save()?;
                break;
            }
            let kept = step.hits > 0;
            step.kept = Some(kept);
            eprintln!(
                "ifstress repro: step {}: {}: {} ({} hit(s) in {:.0} s of suite time)",
                step.index,
                step.description,
                if kept { "kept" } else { "refused" },
                step.hits,
                step.exposure_s
            );
            if kept {
                self.best = cand;
                self.result.kept += 1;
            } else {
                refused.push(r);
                self.result.refused += 1;
            }
            self.result.steps.push(step);
            self.save()?;
        }
        Ok(())
    }

    fn measure(&mut self) -> anyhow::Result<()> {
        let cfg = self.cfg;
        let e = self.result.step_budget_s.expect("confirmed");
        let best = self.best.clone();
        let mut step = self.new_step(
            "measure",
            format!("the minimal suite, {} trials", cfg.trials),
            &best,
            e,
        );
        while step.trials.len() < cfg.trials && !self.stopped() {
            let cap = e.min(self.left(1.0));
            if cap < 10.0 {
                break;
            }
            let label = format!("{:03}-measure", self.result.steps.len());
            self.batch(&label, &best, cap, None, &mut step)?;
            self.save_progress(&step)?;
        }
        let h = HitTimes::of(&step.trials);
        if h.trials < cfg.trials {
            self.result.notes.push(format!(
                "the minimal suite was measured on {} of {} trials (budget or interrupt)",
                h.trials, cfg.trials
            ));
        }
        self.result.minimal = Some(h);
        self.result.steps.push(step);
        Ok(())
    }

    /// The best suite's run length: long enough that a race at its measured
    /// lower-bound rate shows with probability 1 - miss, at least 30 s.
    fn best_duration(&self) -> String {
        let from = self
            .result
            .minimal
            .as_ref()
            .filter(|m| m.hits > 0)
            .or(self.result.confirm.as_ref());
        let secs = from
            .and_then(|h| step_budget(h.hits, h.exposure_s, self.cfg.miss))
            .unwrap_or(60.0);
        format!("{}s", secs.max(30.0).ceil() as u64)
    }

    fn best_named(&self) -> Suite {
        let mut s = self.best.clone();
        // Within model::safe_name's 64 (suite names are ASCII, checked at load).
        let base = &self.cfg.original.name;
        s.name = format!("{}-repro", &base[..base.len().min(58)]);
        s.description = format!("minimal reproducer of: {}", self.cfg.title);
        s.duration = self.best_duration();
        s
    }

    fn save_progress(&mut self, current: &Step) -> anyhow::Result<()> {
        self.result.steps.push(current.clone());
        let r = self.save();
        self.result.steps.pop();
        r
    }

    /// repro.toml, repro.sh and repro.json as they stand: always on disk, so
    /// an interrupted repro keeps what it learned.
    fn save(&mut self) -> anyhow::Result<()> {
        let out = &self.cfg.out;
        self.result.wall_seconds = round1(self.elapsed().as_secs_f64());
        self.result.guest_seconds = round1(self.result.guest_seconds);
        self.result.suite_seconds = round1(self.result.suite_seconds);
        // Only a suite that has hit the signature is a reproducer.
        if self.result.confirm.as_ref().is_some_and(|c| c.hits > 0) {
            self.write_suite()?;
        }
        write(
            &out.join("repro.json"),
            serde_json::to_string_pretty(&self.result)?.as_bytes(),
        )
    }

    fn write_suite(&mut self) -> anyhow::Result<()> {
        let out = &self.cfg.out;
        self.result.minimal_suite = Some(brief(&self.best));
        let named = self.best_named();
        write(&out.join("repro.toml"), named.to_toml().as_bytes())?;
        let sh = shell::render(&named, self.cfg.os, &self.cfg.title, &self.cfg.signature);
        write(&out.join("repro.sh"), sh.as_bytes())?;
        use std::os::unix::fs::PermissionsExt;
        let _ =
            std::fs::set_permissions(out.join("repro.sh"), std::fs::Permissions::from_mode(0o755));
        Ok(())
    }
}

/// As every report is written (`report::output`): atomically beside a
/// regular file, never over a device, a link's target kept a link.
fn write(p: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    crate::report::output::write(p, bytes).with_context(|| format!("writing {}", p.display()))
}

pub const METHOD: &str = "confirm: the original suite until TRIALS hits; step budget E = ln(1/MISS) / λ_lo, \
λ_lo the one-sided 90% lower confidence bound of the confirmed rate (χ²(0.10; 2k)/2T); a reduction is kept \
when its suite hits within E of suite time, else refused and not retried; times to hit: Kaplan–Meier \
median over trials (censored trials count as censored), rates with exact Poisson 95% intervals";

/// Confirm, minimise, measure; files are written as it goes.
pub fn run<G: Guests>(
    cfg: &ReproConfig,
    guests: &mut G,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<ReproResult> {
    std::fs::create_dir_all(&cfg.out).with_context(|| format!("creating {}", cfg.out.display()))?;
    let mut d = Driver {
        cfg,
        guests,
        stop,
        t0: Instant::now(),
        best: cfg.original.clone(),
        batches: 0,
        result: ReproResult {
            outcome: Outcome::Running,
            signature: cfg.signature.clone(),
            title: cfg.title.clone(),
            original_suite: cfg.original.name.clone(),
            statement: String::new(),
            method: METHOD
                .replace("TRIALS", &cfg.trials.to_string())
                .replace("MISS", &cfg.miss.to_string()),
            confirm: None,
            step_budget_s: None,
            minimal: None,
            minimal_suite: None,
            steps: Vec::new(),
            kept: 0,
            refused: 0,
            guests: 0,
            guest_seconds: 0.0,
            suite_seconds: 0.0,
            wall_seconds: 0.0,
            notes: Vec::new(),
        },
    };
    d.save()?;
    let confirmed = d.confirm()?;
    if !confirmed {
        let h = d.result.confirm.clone().expect("set by confirm");
        d.result.outcome = if d.stopped() {
            Outcome::Interrupted
        } else {
            Outcome::NotReproduced
        };
        // No hit in T: the one-sided 95% upper bound of the rate is ln(20)/T.
        let bound = (1.0 / 0.05f64).ln() / h.exposure_s.max(1e-9) * 3600.0;
        d.result.statement = format!(
            "{}: {} guest(s), {:.0} s of suite time ({:.0} s of guest time) without `{}`; \
             the rate is below {}/h (one-sided 95%, exact Poisson); no repro.toml was written",
            if d.stopped() {
                "interrupted before a hit"
            } else {
                "not reproduced within budget"
            },
            h.trials,
            h.exposure_s,
            d.result.guest_seconds,
            cfg.title,
            crate::verdict::num(bound)
        );
        d.save()?;
        return Ok(d.result);
    }
    d.minimise()?;
    if !d.stopped() {
        d.measure()?;
    }
    let orig = d.result.confirm.clone().expect("confirmed");
    d.result.outcome = if d.stopped() {
        Outcome::Interrupted
    } else {
        Outcome::Reproduced
    };
    let fmt = |h: &HitTimes| match h.median_s {
        Some(m) => format!("median {m:.1} s over {} trials ({} hit)", h.trials, h.hits),
        None => format!(
            "median not reached over {} trials ({} hit)",
            h.trials, h.hits
        ),
    };
    d.result.statement = format!(
        "{}: {} reduction(s) kept, {} refused; minimal suite: {}; time to hit {} against the original's {}; \
         {} guests, {:.0} s of guest time",
        if d.stopped() {
            "interrupted, so far"
        } else {
            "reproduced"
        },
        d.result.kept,
        d.result.refused,
        brief(&d.best),
        d.result
            .minimal
            .as_ref()
            .map_or("not measured".into(), &fmt),
        fmt(&orig),
        d.result.guests,
        d.result.guest_seconds
    );
    d.save()?;
    Ok(d.result)
}

// ------------------------------------------------------------ the report

/// What `repro` takes from a finding's report.
#[derive(Debug, Clone)]
pub struct Source {
    pub signature: String,
    pub title: String,
    pub suite: Suite,
    pub seed: u64,
    pub last_ops: BTreeMap<String, Vec<String>>,
    pub prior: (usize, f64),
    /// The report's platform ("linux", "freebsd", or a guest's label).
    pub platform: String,
    /// From a `vm run` report: the guest OS, image and modules it ran.
    pub vm: Option<crate::vm::VmSummary>,
}

/// Why a report cannot be reproduced from.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}: cannot read: {1}")]
    Read(String, std::io::Error),
    #[error("{0}: not an ifstress report: {1}")]
    NotAReport(String, String),
    #[error("{0}: no crash to reproduce (no panic, bug, warning or hang among its findings)")]
    NoCrash(String),
    #[error("{0}: no finding with signature {1}")]
    NoSuchSignature(String, String),
    #[error("{0}: suite `{1}` is neither shipped nor recorded in the report: {2}")]
    Suite(String, String, String),
}

/// Read REPORT.json or OUT_DIR/report.json.
pub fn source(path: &Path, signature: Option<&str>) -> Result<Source, SourceError> {
    let file = if path.is_dir() {
        path.join("report.json")
    } else {
        path.to_path_buf()
    };
    let name = file.display().to_string();
    // Bounded like the verdict's reads: `repro /dev/zero` must not fill memory.
    let text = crate::bounded::read(&file, crate::verdict::MAX_REPORT_BYTES, "a report")
        .map_err(|e| SourceError::Read(name.clone(), e))?;
    let r: Report = serde_json::from_slice(&text)
        .map_err(|e| SourceError::NotAReport(name.clone(), e.to_string()))?;
    let finding = match signature {
        Some(s) => r
            .findings
            .iter()
            .find(|f| f.signature == s)
            .ok_or_else(|| SourceError::NoSuchSignature(name.clone(), s.into()))?,
        None => r
            .findings
            .iter()
            .filter(|f| crate::verdict::crash_like(&f.kind))
            .max_by_key(|f| f.count)
            .ok_or_else(|| SourceError::NoCrash(name.clone()))?,
    };
    let suite = match &r.suite_toml {
        Some(t) => crate::suite::parse(t, &format!("{name}: suite_toml")),
        None => crate::suite::load(&r.suite),
    }
    .map_err(|e| SourceError::Suite(name.clone(), r.suite.clone(), e.to_string()))?;
    let sig = finding.signature.clone();
    let mut seed = r.seed;
    let mut last_ops = r.last_ops.clone();
    let prior = match &r.vm {
        Some(vm) => {
            let t = crate::trials::of_guests(&vm.guests)
                .map_err(|e| SourceError::NotAReport(name.clone(), e.to_string()))?;
            let hit: Vec<&crate::trials::Trial> = t.trials.iter().filter(|x| x.hit(&sig)).collect();
            let k = hit.len();
            let hitting: Vec<String> = hit
                .iter()
                .filter_map(|x| x.guest)
                .map(|g| format!("guest-{g} "))
                .collect();
            // Replay the first guest that hit, with the seed it ran (older
            // reports did not record it: the run's seed).
            if let Some(s) = hit.first().and_then(|x| x.seed) {
                seed = s;
            }
            // Only the journals of guests that crashed on this signature.
            if !hitting.is_empty() {
                last_ops.retain(|w, _| hitting.iter().any(|h| w.starts_with(h.as_str())));
            }
            // Reports from before guests listed signatures: one hit.
            (k.max(1), t.exposure_s().max(1.0))
        }
        None => (1, r.duration_s.max(1.0)),
    };
    Ok(Source {
        signature: sig,
        title: finding.title.clone(),
        suite,
        seed,
        last_ops,
        prior,
        platform: r.platform.clone(),
        vm: r.vm.clone(),
    })
}

// ------------------------------------------------------------ real guests

/// Guests under QEMU through `vm::run`: one batch boots `parallel` guests.
pub struct VmGuests {
    pub base: crate::vm::VmConfig,
    pub signature: String,
    pub stop: Arc<AtomicBool>,
}

impl Guests for VmGuests {
    fn width(&self) -> usize {
        self.base.parallel.max(1)
    }

    fn run(
        &mut self,
        label: &str,
        suite: &Suite,
        cap: f64,
        seed: Option<u64>,
    ) -> anyhow::Result<Batch> {
        let dir = self.base.out.join("steps").join(label);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let file = dir.join("suite.toml");
        write(&file, suite.to_toml().as_bytes())?;
        let mut c = self.base.clone();
        c.suite = file.display().to_string();
        // The guest's suite runs for the time left at its boot; +2 s so a
        // cap of E is E of suite time, not less.
        c.duration = Duration::from_secs_f64(cap.ceil() + 2.0);
        // The given seed is replayed exactly by the first guest.
        c.seed = None;
        c.replay_seed = seed;
        c.out = dir.clone();
        c.max_guests = Some(c.parallel.max(1));
        let r = crate::vm::run(&c, &self.stop)?;
        r.write_json(&dir.join("report.json"))
            .with_context(|| format!("writing {}/report.json", dir.display()))?;
        // The initramfs is rebuilt per batch and large; the reports stay.
        let _ = std::fs::remove_file(dir.join("initramfs.cpio"));
        let vm = r.vm.as_ref().context("vm::run wrote no guest summary")?;
        if let Some(e) = vm.module_error() {
            return Err(crate::error::UsageError(format!(
                "a --module did not load in the guest: {e}"
            ))
            .into());
        }
        let trials = crate::trials::of_guests(&vm.guests)
            .with_context(|| format!("{}/report.json", dir.display()))?
            .trials
            .iter()
            .map(|t| Trial {
                hit: t.hit(&self.signature),
                seconds: t.exposure_s,
                guest_seconds: t
                    .guest
                    .and_then(|i| vm.guests.iter().find(|g| g.index == i))
                    .map_or(0.0, |g| g.seconds),
            })
            .collect();
        Ok(Batch {
            trials,
            dir: Some(dir),
        })
    }
}

#[cfg(test)]
mod tests;
