//! `ifstress verdict`: is a race fixed? Reports from the unpatched kernel
//! ("before") and the patched one ("after") are turned into trials (a run,
//! or a VM guest), each watched for some hours and either hit by the
//! signature or not. A single after hit means still broken; zero after hits
//! mean fixed only when, at the before rate, zero would have been unlikely.
//! The maths is in `poisson`; this file reads reports and says the result.

mod gathered;
mod numfmt;
pub mod poisson;
mod regress;
mod work;

use crate::report::guests::{GuestSummary, OpCount};
use crate::trials::{self, Trials};
pub use gathered::crash_like;
use gathered::{FindingInfo, Gathered, push_unique};
pub use numfmt::num;
use poisson::{Observation, km_median, poisson_interval};
pub use regress::Regression;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;
pub use work::{OpWork, SideWork, WorkCheck};

/// The after side's ok rate of an op kind below this fraction of the before
/// side's makes the sides incomparable (`--min-work`).
pub const MIN_WORK: f64 = 0.5;

/// What to judge and how strictly.
#[derive(Debug, Clone, PartialEq)]
pub struct Criteria {
    pub signature: Option<String>,
    /// In (0, 1): 0.95 makes `fixed` need p <= 0.05.
    pub confidence: f64,
    /// In (0, 1]: see `MIN_WORK`.
    pub min_work: f64,
}

/// What the CLI (or a caller holding file names) asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct VerdictInput {
    pub before: Vec<PathBuf>,
    pub after: Vec<PathBuf>,
    pub criteria: Criteria,
    /// The caller was interrupted: said in the output, the maths unchanged.
    pub partial: bool,
}

/// Bad input: the CLI prints it as one line and exits 2. The errors carry
/// their cause as text in the message, not as a `source`, so an anyhow
/// chain printed with `{:#}` does not say it twice.
#[derive(Debug, thiserror::Error)]
pub enum VerdictError {
    #[error("{file}: cannot read: {error}")]
    Read { file: String, error: std::io::Error },
    #[error("{file}: not JSON: {error}")]
    NotJson {
        file: String,
        error: serde_json::Error,
    },
    #[error("{file}: not an ifstress report: {why}")]
    NotAReport { file: String, why: String },
    #[error(
        "{file} is the same report as {other} (same {what}) on the other side: a run cannot be both before and after"
    )]
    BothSides {
        file: String,
        other: String,
        what: String,
    },
    #[error("--{side}: no report given")]
    NoReports { side: &'static str },
    #[error("--confidence {0}: must be strictly between 0 and 1")]
    Confidence(f64),
    #[error("--min-work {0}: must be above 0 and at most 1")]
    MinWork(f64),
}

/// The answers; the names are the JSON values and the words printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The judged crash is gone with the stated confidence, nothing
    /// regressed, and the after side did comparable work.
    Fixed,
    /// The judged crash occurred after the patch.
    StillBroken,
    /// A crash seen after and never before, or significantly more often
    /// after than before.
    Regressed,
    /// The after side did not do the work the before side did (an op kind
    /// that stopped succeeding, a racebench window never entered).
    Incomparable,
    Inconclusive,
    NoBaseline,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Fixed => "fixed",
            Outcome::StillBroken => "still-broken",
            Outcome::Regressed => "regressed",
            Outcome::Incomparable => "incomparable",
            Outcome::Inconclusive => "inconclusive",
            Outcome::NoBaseline => "no-baseline",
        }
    }

    /// 0 fixed; 1 still broken or regressed (the patch is wrong); 4 cannot
    /// tell (incomparable, inconclusive, no baseline).
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Fixed => 0,
            Outcome::StillBroken | Outcome::Regressed => 1,
            Outcome::Incomparable | Outcome::Inconclusive | Outcome::NoBaseline => 4,
        }
    }
}

/// One side (before or after) as the verdict saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    pub files: Vec<String>,
    /// Runs plus guests that ran the suite.
    pub trials: usize,
    /// Trials in which the signature occurred (at least once).
    pub hits: usize,
    /// Trials that ended without it.
    pub censored: usize,
    /// Guests and runs that never ran the suite: no exposure, not trials.
    pub not_run: usize,
    /// `not_run` by reason (boot-failure, boot-panic, module-failed,
    /// no-suite-time, ifstress-error).
    pub not_run_by_reason: BTreeMap<trials::NotRun, usize>,
    pub exposure_hours: f64,
    /// NaN (null in JSON) when the side had no exposure.
    pub rate_per_hour: f64,
    /// Exact (Garwood) interval at the verdict's confidence; NaN (null)
    /// without exposure.
    pub rate_ci: [f64; 2],
    /// Kaplan–Meier median over the trials; None: not reached.
    pub median_time_to_hit_s: Option<f64>,
    pub suites: Vec<String>,
    pub kernels: Vec<String>,
    pub seeds: Vec<u64>,
}

/// The result; serialized as is for `--json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub verdict: Outcome,
    pub signature: Option<String>,
    pub title: Option<String>,
    pub confidence: f64,
    pub method: String,
    pub p_value: Option<f64>,
    pub more_after_hours: Option<f64>,
    pub before: Side,
    pub after: Side,
    pub regressions: Vec<Regression>,
    /// What each side did, per op kind, and whether that compares.
    pub work: WorkCheck,
    pub notes: Vec<String>,
    pub partial: bool,
}

// ---------------------------------------------------------------- input

/// The few report fields the verdict needs; unknown fields are ignored so
/// older and newer reports both read.
#[derive(Deserialize)]
struct RawReport {
    suite: String,
    #[serde(default)]
    kernel: Option<String>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    duration_s: Option<f64>,
    findings: Vec<RawFinding>,
    #[serde(default)]
    vm: Option<RawVm>,
    /// "error": no finding, but ifstress itself failed (workers that never
    /// raced): not a trial of the kernel.
    #[serde(default)]
    verdict: Option<String>,
    #[serde(default)]
    errors: Vec<String>,
    /// A run's op table, read as counts (a VM report's is the sum over the
    /// guests that reported; their own tables are read instead).
    #[serde(default)]
    ops: BTreeMap<String, OpCount>,
}

#[derive(Deserialize)]
struct RawFinding {
    signature: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    guilty_frame: Option<String>,
    /// Seconds into the run of the first occurrence, when the run knew it.
    #[serde(default)]
    first_hit_s: Option<f64>,
}

#[derive(Deserialize)]
struct RawVm {
    guests: Vec<GuestSummary>,
}

fn not_a_report(file: &str, why: impl Into<String>) -> VerdictError {
    VerdictError::NotAReport {
        file: file.to_string(),
        why: why.into(),
    }
}

/// `suite` and `findings` are what every ifstress report has and other
/// JSON rarely does; the rest is read leniently.
fn parse_report(file: &str, v: &Value) -> Result<RawReport, VerdictError> {
    let Some(obj) = v.as_object() else {
        return Err(not_a_report(file, "not a JSON object"));
    };
    for key in ["suite", "findings"] {
        if !obj.contains_key(key) {
            return Err(not_a_report(file, format!("no `{key}`")));
        }
    }
    serde_path_to_error::deserialize(v)
        .map_err(|e| not_a_report(file, format!("{}: {}", e.path(), e.inner())))
}

/// A VM report's finding that no guest lists (a report written before
/// guests carried their signatures) still happened: count it as one hit, on
/// the first trial that crashed, else the last trial. One hit is the
/// cautious count both ways: it cannot make a fix look better proven (before)
/// and is enough to say still-broken (after).
fn attribute_unlisted(
    file: &str,
    r: &RawReport,
    guests: &[GuestSummary],
    t: &mut Trials,
) -> Option<String> {
    let listed: std::collections::HashSet<&str> = guests
        .iter()
        .flat_map(|g| g.signatures.iter().map(String::as_str))
        .collect();
    let listed = |sig: &str| listed.contains(sig);
    let crashed = t.trials.iter().position(|x| x.crashed);
    let target = crashed.or(t.trials.len().checked_sub(1))?;
    let mut n = 0;
    for f in &r.findings {
        // Boot failures come from guests that are not trials.
        if f.kind == "boot-failure" || listed(&f.signature) {
            continue;
        }
        let at = t.trials[target].exposure_s;
        t.trials[target].add_hit(&f.signature, at);
        n += 1;
    }
    (n > 0).then(|| {
        format!(
            "{file}: {n} finding(s) not listed by any guest (a report from before per-guest \
             signatures?): each counted as one hit on {}",
            t.trials[target]
                .guest
                .map_or_else(|| "the last trial".to_string(), |g| format!("guest {g}"))
        )
    })
}

impl Gathered {
    fn add(&mut self, file: &str, v: &Value) -> Result<(), VerdictError> {
        let r = parse_report(file, v)?;
        let bad = |e: trials::BadDuration| not_a_report(file, e.to_string());
        let t = match &r.vm {
            None => {
                let failed = (r.verdict.as_deref() == Some("error"))
                    .then(|| r.errors.first().map_or("verdict error", String::as_str));
                if let Some(why) = failed {
                    // Its exposure would count as clean time the kernel never had.
                    self.notes.push(format!(
                        "{file}: not counted: ifstress itself failed in that run ({why})"
                    ));
                }
                let duration_s = r
                    .duration_s
                    .ok_or_else(|| not_a_report(file, "a run report without `duration_s`"))?;
                trials::of_run(&trials::RunView {
                    name: file,
                    duration_s,
                    failed,
                    hits: r
                        .findings
                        .iter()
                        .map(|f| (f.signature.as_str(), f.first_hit_s))
                        .collect(),
                    seed: r.seed,
                    work: r.ops.clone(),
                })
                .map_err(bad)?
            }
            Some(vm) => {
                if !r.errors.is_empty() {
                    self.notes.push(format!(
                        "{file}: {} ifstress failure(s) inside its guests; a guest whose run \
                         failed with no finding is not a trial (first: {})",
                        r.errors.len(),
                        r.errors[0]
                    ));
                }
                let mut t = trials::of_guests(&vm.guests).map_err(bad)?;
                if let Some(note) = attribute_unlisted(file, &r, &vm.guests, &mut t) {
                    self.notes.push(note);
                }
                t
            }
        };
        self.files.push(file.to_string());
        push_unique(&mut self.suites, r.suite.clone());
        if let Some(k) = &r.kernel {
            push_unique(&mut self.kernels, k.clone());
        }
        if let Some(s) = r.seed {
            push_unique(&mut self.seeds, s);
        }
        for s in t.trials.iter().filter_map(|t| t.seed) {
            push_unique(&mut self.seeds, s);
        }
        for f in &r.findings {
            if self.info(&f.signature).is_none() {
                self.add_finding(FindingInfo {
                    signature: f.signature.clone(),
                    title: f.title.clone(),
                    kind: f.kind.clone(),
                    guilty_frame: f.guilty_frame.clone(),
                });
            }
        }
        self.trials.extend(t);
        Ok(())
    }
}

fn gather(side: &'static str, reports: &[(String, Value)]) -> Result<Gathered, VerdictError> {
    if reports.is_empty() {
        return Err(VerdictError::NoReports { side });
    }
    let mut g = Gathered::default();
    for (name, v) in reports {
        g.add(name, v)?;
    }
    Ok(g)
}

/// The largest report file read: a report holds one finding per signature
/// and one entry per guest; ten thousand guests with their findings are a
/// few MiB. The bound keeps `--before /dev/zero`'s kind out of memory.
pub const MAX_REPORT_BYTES: u64 = 128 << 20;

fn read_reports(paths: &[PathBuf]) -> Result<Vec<(String, Value)>, VerdictError> {
    paths
        .iter()
        .map(|p| {
            let file = p.display().to_string();
            let bytes = crate::bounded::read(p, MAX_REPORT_BYTES, "a report").map_err(|error| {
                VerdictError::Read {
                    file: file.clone(),
                    error,
                }
            })?;
            let v = serde_json::from_slice(&bytes).map_err(|error| VerdictError::NotJson {
                file: file.clone(),
                error,
            })?;
            Ok((file, v))
        })
        .collect()
}

/// What makes a report one run: its tag, seed and start time (a `vm run`
/// report's guests are told apart by their index inside it, so the same
/// three name the same guests). A report without them (hand-made, or older)
/// is known by its whole content. A path, a copy or a link to it is the
/// same run.
fn identity(v: &Value) -> (String, String) {
    let field = |k: &str| v.get(k).filter(|x| !x.is_null()).map(|x| x.to_string());
    match (field("tag"), field("started_at")) {
        (Some(tag), Some(at)) => {
            let seed = field("seed").unwrap_or_default();
            (
                format!("{tag}|{at}|{seed}"),
                format!("run tag {tag}, seed {seed}, start {at}"),
            )
        }
        _ => {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            v.to_string().hash(&mut h);
            (format!("#{:016x}", h.finish()), "content".to_string())
        }
    }
}

/// Reports as read: (the name they were given by, the JSON).
type Named = Vec<(String, Value)>;

/// Drop a side's repeats of one run (each is noted) and refuse a run on
/// both sides: counted twice, one report's hours would prove a fix alone.
fn drop_duplicates(
    before: Named,
    after: Named,
) -> Result<(Named, Named, Vec<String>), VerdictError> {
    let mut notes = Vec::new();
    let mut seen: std::collections::HashMap<String, (bool, String)> = Default::default();
    let mut keep = |side_after: bool, reports: Vec<(String, Value)>| {
        let mut kept = Vec::new();
        for (file, v) in reports {
            let (key, what) = identity(&v);
            match seen.get(&key) {
                Some((s, other)) if *s != side_after => {
                    return Err(VerdictError::BothSides {
                        file,
                        other: other.clone(),
                        what,
                    });
                }
                Some((_, other)) => {
                    notes.push(format!(
                        "{file}: the same run as {other} ({what}): counted once"
                    ));
                }
                None => {
                    seen.insert(key, (side_after, file.clone()));
                    kept.push((file, v));
                }
            }
        }
        Ok(kept)
    };
    let b = keep(false, before)?;
    let a = keep(true, after)?;
    Ok((b, a, notes))
}

fn check_confidence(c: f64) -> Result<(), VerdictError> {
    if c > 0.0 && c < 1.0 {
        Ok(())
    } else {
        Err(VerdictError::Confidence(c))
    }
}

// ---------------------------------------------------------------- choice

/// The before side's crash-like signature hit in the most trials; at a tie
/// the first seen, so the order the user gave the files decides.
fn auto_signature(before: &Gathered) -> Option<(String, usize)> {
    // First seen first (ties go to it), counted through an index.
    let mut counts: Vec<(String, usize)> = Vec::new();
    let mut at: std::collections::HashMap<&str, usize> = Default::default();
    for t in &before.trials.trials {
        for (s, _) in &t.hits {
            match at.get(s.as_str()) {
                Some(&i) => counts[i].1 += 1,
                None => {
                    at.insert(s, counts.len());
                    counts.push((s.clone(), 1));
                }
            }
        }
    }
    let mut best: Option<(String, usize)> = None;
    for (s, n) in counts {
        if before.is_crash_like(&s) && best.as_ref().is_none_or(|b| n > b.1) {
            best = Some((s, n));
        }
    }
    best
}

/// The signature to judge and what to say about how it was chosen.
fn choose(
    before: &Gathered,
    after: &Gathered,
    given: Option<&str>,
) -> (Option<String>, Vec<String>) {
    if let Some(s) = given {
        let notes = if before.mentions(s) || after.mentions(s) {
            vec![]
        } else {
            vec![format!("signature {s} occurs on neither side")]
        };
        return (Some(s.to_string()), notes);
    }
    if before.findings.is_empty() && before.trials.trials.iter().all(|t| t.hits.is_empty()) {
        return (
            None,
            vec!["the before side has no findings: nothing to compare".into()],
        );
    }
    let Some((sig, n)) = auto_signature(before) else {
        return (
            None,
            vec![
                "the before side has only run-hygiene findings (leftover, leak, stall ...): \
                 give --signature to judge one of them"
                    .into(),
            ],
        );
    };
    let others = before
        .findings
        .iter()
        .filter(|f| f.signature != sig && crash_like(&f.kind))
        .count();
    let mut note = format!(
        "signature picked automatically: the before side's most frequent crash-like finding \
         ({n} of {} trials)",
        before.trials.trials.len()
    );
    if others > 0 {
        let _ = write!(
            note,
            "; {others} other(s) before: give --signature to judge one"
        );
    }
    (Some(sig), vec![note])
}

fn title_of(sig: &str, before: &Gathered, after: &Gathered) -> Option<String> {
    before
        .info(sig)
        .or_else(|| after.info(sig))
        .map(|f| f.title.clone())
        .filter(|t| !t.is_empty())
}

// ---------------------------------------------------------------- maths

fn summarize(g: &Gathered, sig: Option<&str>, confidence: f64) -> Side {
    let obs: Vec<Observation> = g
        .trials
        .trials
        .iter()
        .map(|t| match sig.and_then(|s| t.hit_time(s)) {
            Some(time) => Observation { time, event: true },
            None => Observation {
                time: t.exposure_s,
                event: false,
            },
        })
        .collect();
    let hits = obs.iter().filter(|o| o.event).count();
    let hours = g.exposure_s() / 3600.0;
    let (rate_per_hour, rate_ci) = rate(hits, hours, confidence);
    Side {
        files: g.files.clone(),
        trials: obs.len(),
        hits,
        censored: obs.len() - hits,
        not_run: g.trials.not_run.len(),
        not_run_by_reason: g.trials.not_run_counts(),
        exposure_hours: hours,
        rate_per_hour,
        rate_ci,
        median_time_to_hit_s: km_median(&obs),
        suites: g.suites.clone(),
        kernels: g.kernels.clone(),
        seeds: g.seeds.clone(),
    }
}

/// Hits per hour and its exact interval; NaN (JSON null) without exposure,
/// where a rate means nothing. Not an error: `vm ab` judges after every
/// round, and a round whose guests all failed to boot must not end it.
pub fn rate(hits: usize, hours: f64, confidence: f64) -> (f64, [f64; 2]) {
    if hours <= 0.0 {
        return (f64::NAN, [f64::NAN; 2]);
    }
    let (lo, hi) = poisson_interval(hits as u64, confidence);
    (hits as f64 / hours, [lo / hours, hi / hours])
}

/// The decision on counts and hours alone.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Decision {
    outcome: Outcome,
    p_value: Option<f64>,
    more_after_hours: Option<f64>,
}

/// Under equal rates, each of the k_b before hits would have fallen on the
/// after side with chance T_a / (T_a + T_b) (the after count given the total
/// is binomial), so zero after hits has probability (T_b / (T_a + T_b))^k_b.
fn p_zero_after(k_b: usize, t_b: f64, t_a: f64) -> f64 {
    if t_a + t_b <= 0.0 {
        // Nothing ran: nothing is improbable.
        return 1.0;
    }
    (t_b / (t_a + t_b)).powi(k_b as i32)
}

/// After-hours without a hit at which that probability reaches alpha:
/// solving (T_b / (T + T_b))^k_b = alpha for T.
fn after_hours_needed(k_b: usize, t_b: f64, alpha: f64) -> f64 {
    t_b * (alpha.powf(-1.0 / k_b as f64) - 1.0)
}

fn decide(k_b: usize, t_b: f64, k_a: usize, t_a: f64, confidence: f64) -> Decision {
    let plain = |outcome| Decision {
        outcome,
        p_value: None,
        more_after_hours: None,
    };
    if k_a > 0 {
        return plain(Outcome::StillBroken);
    }
    if k_b == 0 {
        return plain(Outcome::NoBaseline);
    }
    let alpha = 1.0 - confidence;
    let p = p_zero_after(k_b, t_b, t_a);
    if p <= alpha {
        return Decision {
            outcome: Outcome::Fixed,
            p_value: Some(p),
            more_after_hours: None,
        };
    }
    Decision {
        outcome: Outcome::Inconclusive,
        p_value: Some(p),
        more_after_hours: Some((after_hours_needed(k_b, t_b, alpha) - t_a).max(0.0)),
    }
}

fn method(outcome: Outcome, confidence: f64) -> String {
    let alpha = alpha_text(confidence);
    match outcome {
        Outcome::Fixed | Outcome::Inconclusive => format!(
            "conditional test of equal rates: given the k before hits in T_b hours, zero hits \
             in T_a after-hours has probability p = (T_b/(T_a+T_b))^k if the patch changed \
             nothing; fixed when p <= {alpha}"
        ),
        Outcome::StillBroken => {
            "the signature occurred in at least one after trial: a fixed race would not occur \
             at all"
                .into()
        }
        Outcome::NoBaseline => {
            "a fix can only be judged for a signature seen before the patch; this one was not \
             (or there was none to judge)"
                .into()
        }
        Outcome::Regressed => format!(
            "a crash-like signature occurred after the patch and never before it, or more often \
             after: given its n hits on both sides, k or more of them falling on the after side \
             has probability p = P(Bin(n, T_a/(T_a+T_b)) >= k) if the patch changed nothing; \
             regressed when p <= {alpha}"
        ),
        Outcome::Incomparable => {
            "the after side did not do the before side's work (see the work table): its clean \
             hours are not evidence that the race is gone"
                .into()
        }
    }
}

// ---------------------------------------------------------------- notes

/// Several suites or kernels on one side are allowed (the user mixed them on
/// purpose) but said. Several seeds are the normal way to repeat a run and
/// are only listed in `seeds`.
fn mix_notes(side: &str, g: &Gathered) -> Vec<String> {
    let mut notes = Vec::new();
    if g.suites.len() > 1 {
        notes.push(format!("{side}: several suites: {}", g.suites.join(", ")));
    }
    if g.kernels.len() > 1 {
        notes.push(format!("{side}: several kernels: {}", g.kernels.join("; ")));
    }
    for (why, n) in g.trials.not_run_counts() {
        notes.push(format!(
            "{side}: {n} guest(s) or run(s) did not run the suite ({}): no exposure, not trials",
            why.as_str()
        ));
    }
    if g.exposure_s() <= 0.0 {
        notes.push(format!("{side}: no exposure at all: its rate is unknown"));
    }
    notes
}

fn suite_note(before: &Gathered, after: &Gathered) -> Option<String> {
    let same = before.suites.iter().all(|s| after.suites.contains(s))
        && after.suites.iter().all(|s| before.suites.contains(s));
    (!same).then(|| {
        format!(
            "the sides ran different suites: before {}, after {}",
            before.suites.join(", "),
            after.suites.join(", ")
        )
    })
}

/// Why an inconclusive answer can take long, and what helps.
fn small_baseline_note(k_b: usize, t_b: f64, confidence: f64) -> String {
    let alpha = 1.0 - confidence;
    let need = after_hours_needed(k_b, t_b, alpha);
    let doubled = after_hours_needed(2 * k_b, 2.0 * t_b, alpha);
    let floor = -alpha.ln() * t_b / k_b as f64;
    format!(
        "with {k_b} before hit(s) a fix shows only after {} h of after exposure without a \
         hit; more before hits shrink that (twice the before hours at the same rate: {} h), \
         but never below {} h (-ln({})/before rate)",
        num(need),
        num(doubled),
        num(floor),
        alpha_text(confidence)
    )
}

/// Hits on both sides, and the after interval wholly below the before one:
/// the patch made the race rarer without closing it.
fn narrowed_note(before: &Side, after: &Side) -> Option<String> {
    (before.hits > 0 && after.hits > 0 && after.rate_ci[1] < before.rate_ci[0]).then(|| {
        format!(
            "the after rate ({}/h) is below the before rate ({}/h), intervals apart: the patch \
             narrows the race but does not close it",
            num(after.rate_per_hour),
            num(before.rate_per_hour)
        )
    })
}

// ---------------------------------------------------------------- API

/// Read the reports named in `input` and judge them.
pub fn judge(input: &VerdictInput) -> Result<Verdict, VerdictError> {
    check_criteria(&input.criteria)?;
    if input.before.is_empty() {
        return Err(VerdictError::NoReports { side: "before" });
    }
    if input.after.is_empty() {
        return Err(VerdictError::NoReports { side: "after" });
    }
    let before = read_reports(&input.before)?;
    let after = read_reports(&input.after)?;
    let (before, after, dropped) = drop_duplicates(before, after)?;
    let mut v = judge_reports(&before, &after, &input.criteria)?;
    v.notes.extend(dropped);
    v.partial = input.partial;
    Ok(v)
}

/// Bad criteria are bad input: the CLI checks them before any guest boots.
pub fn check_criteria(c: &Criteria) -> Result<(), VerdictError> {
    check_confidence(c.confidence)?;
    if c.min_work > 0.0 && c.min_work <= 1.0 {
        Ok(())
    } else {
        Err(VerdictError::MinWork(c.min_work))
    }
}

/// Judge reports already in memory; each is (a name for messages, the JSON).
/// The order of the rules: a hit after is still-broken; else a regression
/// is regressed; else work the after side did not do is incomparable; else
/// the test of the judged signature's rates says fixed or inconclusive.
pub fn judge_reports(
    before: &[(String, Value)],
    after: &[(String, Value)],
    criteria: &Criteria,
) -> Result<Verdict, VerdictError> {
    check_criteria(criteria)?;
    let confidence = criteria.confidence;
    let b = gather("before", before)?;
    let a = gather("after", after)?;
    let (sig, mut notes) = choose(&b, &a, criteria.signature.as_deref());
    let bs = summarize(&b, sig.as_deref(), confidence);
    let as_ = summarize(&a, sig.as_deref(), confidence);
    // Without a signature both sides count 0 hits: no-baseline.
    let mut d = decide(
        bs.hits,
        bs.exposure_hours,
        as_.hits,
        as_.exposure_hours,
        confidence,
    );
    let regressions = regress::find(&b, &a, sig.as_deref(), confidence);
    let work = work::compare(&b.trials, &a.trials, criteria.min_work);
    if d.outcome == Outcome::Inconclusive {
        notes.push(small_baseline_note(bs.hits, bs.exposure_hours, confidence));
    }
    if d.outcome != Outcome::StillBroken {
        let over = if !regressions.is_empty() {
            Some(Outcome::Regressed)
        } else if work.incomparable() && d.outcome != Outcome::NoBaseline {
            Some(Outcome::Incomparable)
        } else {
            None
        };
        if let Some(o) = over {
            notes.push(format!(
                "without it the verdict would have been {}{}",
                d.outcome.as_str(),
                d.p_value
                    .map(|p| format!(" (p = {})", num(p)))
                    .unwrap_or_default()
            ));
            d.outcome = o;
            d.more_after_hours = None;
        }
    }
    notes.extend(narrowed_note(&bs, &as_));
    notes.extend(suite_note(&b, &a));
    notes.extend(mix_notes("before", &b));
    notes.extend(mix_notes("after", &a));
    notes.extend(b.notes.iter().chain(&a.notes).cloned());
    notes.extend(work.notes.iter().cloned());
    Ok(Verdict {
        verdict: d.outcome,
        title: sig.as_deref().and_then(|s| title_of(s, &b, &a)),
        regressions,
        signature: sig,
        confidence,
        method: method(d.outcome, confidence),
        p_value: d.p_value,
        more_after_hours: d.more_after_hours,
        before: bs,
        after: as_,
        work,
        notes,
        partial: false,
    })
}

// ---------------------------------------------------------------- output

/// 1 - confidence as people write it: 0.05, not 0.0500 or 0.050000000000000044.
fn alpha_text(confidence: f64) -> String {
    format!("{}", ((1.0 - confidence) * 1e6).round() / 1e6)
}

fn percent(c: f64) -> String {
    let s = format!("{:.2}", c * 100.0);
    format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
}

fn duration(s: f64) -> String {
    if s < 120.0 {
        format!("{} s", num(s))
    } else if s < 7200.0 {
        format!("{} min", num(s / 60.0))
    } else {
        format!("{} h", num(s / 3600.0))
    }
}

impl Verdict {
    /// See `Outcome::exit_code`.
    pub fn exit_code(&self) -> i32 {
        self.verdict.exit_code()
    }

    /// The signature and its title, as the headline names it.
    fn named(&self) -> String {
        match (&self.signature, &self.title) {
            (Some(s), Some(t)) => format!("{s} ({t})"),
            (Some(s), None) => s.clone(),
            (None, _) => "no signature".into(),
        }
    }

    fn headline(&self) -> String {
        let label = if self.partial {
            "partial verdict"
        } else {
            "verdict"
        };
        let (b, a) = (&self.before, &self.after);
        let detail = match self.verdict {
            Outcome::Fixed => format!(
                "0 hits in {} after-hours against {} in {} before-hours, p = {}",
                num(a.exposure_hours),
                b.hits,
                num(b.exposure_hours),
                num(self.p_value.unwrap_or(f64::NAN))
            ),
            Outcome::StillBroken => format!(
                "{} of {} after trials hit it in {} h",
                a.hits,
                a.trials,
                num(a.exposure_hours)
            ),
            Outcome::Inconclusive => format!(
                "no hit in {} after-hours, but p = {} > {}; {} more after-hours without a \
                 hit would make it fixed",
                num(a.exposure_hours),
                num(self.p_value.unwrap_or(f64::NAN)),
                alpha_text(self.confidence),
                num(self.more_after_hours.unwrap_or(f64::NAN))
            ),
            Outcome::NoBaseline if self.signature.is_some() => {
                "never hit before the patch: nothing to compare".into()
            }
            Outcome::NoBaseline => "no crash-like finding before the patch to judge".into(),
            Outcome::Regressed => format!(
                "{} crash signature(s) new or more frequent after the patch (below); the \
                 judged one: {} hit(s) in {} after-hours",
                self.regressions.len(),
                a.hits,
                num(a.exposure_hours)
            ),
            Outcome::Incomparable => format!(
                "the after side did not do the same work: {}",
                self.work.short.join("; ")
            ),
        };
        let mut line = format!(
            "{label}: {}: {}: {detail}",
            self.verdict.as_str(),
            self.named()
        );
        if !self.regressions.is_empty() && self.verdict != Outcome::Regressed {
            let _ = write!(
                line,
                " (and {} regression(s) below)",
                self.regressions.len()
            );
        }
        line
    }

    fn table(&self) -> String {
        let ci = format!("{} CI", percent(self.confidence));
        let mut o = format!(
            "{:<6} {:>5} {:>6} {:>5} {:>8} {:>9} {:>8} {:>8}  {:<20} {}\n",
            "side",
            "files",
            "trials",
            "hits",
            "censored",
            "not-run",
            "hours",
            "rate/h",
            ci,
            "median to hit"
        );
        for (name, s) in [("before", &self.before), ("after", &self.after)] {
            let interval = format!("[{}, {}]", num(s.rate_ci[0]), num(s.rate_ci[1]));
            let median = s
                .median_time_to_hit_s
                .map_or_else(|| "not reached".to_string(), duration);
            let _ = writeln!(
                o,
                "{:<6} {:>5} {:>6} {:>5} {:>8} {:>9} {:>8} {:>8}  {:<20} {}",
                name,
                s.files.len(),
                s.trials,
                s.hits,
                s.censored,
                s.not_run,
                num(s.exposure_hours),
                num(s.rate_per_hour),
                interval,
                median
            );
        }
        o
    }

    /// The human text: headline, per-side table, method and numbers,
    /// regressions, notes.
    pub fn render(&self) -> String {
        let mut o = self.headline();
        o.push_str("\n\n");
        o.push_str(&self.table());
        o.push_str(
            "rates: exact Poisson (Garwood) intervals; median time to hit: Kaplan-Meier, a \
             trial without a hit censored at its end\n",
        );
        let _ = writeln!(o, "method: {}", self.method);
        if let Some(p) = self.p_value {
            let _ = writeln!(
                o,
                "p-value: {} (fixed when <= {})",
                num(p),
                alpha_text(self.confidence)
            );
        }
        if let Some(h) = self.more_after_hours {
            let _ = writeln!(o, "more after-hours without a hit needed: {} h", num(h));
        }
        if !self.regressions.is_empty() {
            o.push_str(
                "regressions (crash-like; new after the patch, or significantly more often):\n",
            );
            for r in &self.regressions {
                o.push_str(&r.render());
            }
        }
        o.push_str(&self.work.render());
        for n in &self.notes {
            let _ = writeln!(o, "note: {n}");
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const A: &str = "aaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccc";
    const L: &str = "1111111111111111";

    fn close(got: f64, want: f64, tol: f64) {
        assert!((got - want).abs() <= tol, "got {got}, want {want}");
    }

    fn finding(sig: &str, kind: &str) -> Value {
        json!({"kind": kind, "title": format!("{kind} in f_{}", &sig[..4]),
               "signature": sig, "excerpt": "x", "count": 1, "first_seen": "kernel log:1"})
    }

    /// An `ifstress run` report (no `vm`), with fields verdict does not read.
    fn run(duration_s: f64, findings: Vec<Value>) -> Value {
        json!({"suite": "vmove", "targets": [], "platform": "linux", "kernel": "Linux 6.1",
               "seed": 1, "tag": "beef", "duration_s": duration_s, "verdict": "clean",
               "ops": {}, "findings": findings, "leftovers": [], "notes": []})
    }

    /// A guest whose suite ran for all of its `seconds` (boot failures and
    /// boot panics record no suite time).
    fn guest(outcome: &str, seconds: f64, sigs: &[&str]) -> Value {
        let mut g = json!({"index": 1, "outcome": outcome, "seconds": seconds, "ops": 10,
               "console": "c.log", "collected": [], "signatures": sigs});
        if !matches!(outcome, "boot-failure" | "boot-panic") {
            g["suite_seconds"] = json!(seconds);
        }
        g
    }

    fn criteria(sig: Option<&str>, confidence: f64) -> Criteria {
        Criteria {
            signature: sig.map(str::to_string),
            confidence,
            min_work: MIN_WORK,
        }
    }

    /// An `ifstress vm run` report.
    fn vm(guests: Vec<Value>, findings: Vec<Value>) -> Value {
        let mut r = run(0.0, findings);
        r["platform"] = json!("vm:linux");
        r["kernel"] = json!("guest kernels: see each guest's console");
        r["vm"] = json!({"guest_os": "linux", "image": "vmlinuz", "accel": "tcg",
                         "guests": guests, "guest_hours": 0.0});
        r
    }

    /// `n` guests of `secs` seconds each, all panicking with A.
    fn panics(n: usize, secs: f64) -> Value {
        vm(
            (0..n).map(|_| guest("panic", secs, &[A])).collect(),
            vec![finding(A, "panic")],
        )
    }

    fn named(reports: Vec<Value>) -> Vec<(String, Value)> {
        reports
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("r{i}.json"), v))
            .collect()
    }

    fn judged(before: Vec<Value>, after: Vec<Value>, sig: Option<&str>) -> Verdict {
        judge_reports(&named(before), &named(after), &criteria(sig, 0.95)).unwrap()
    }

    #[test]
    fn fixed_when_zero_after_hits_are_improbable() {
        // 10 hits in 1 h before, none in 1 h after: p = 0.5^10.
        let v = judged(vec![panics(10, 360.0)], vec![run(3600.0, vec![])], None);
        assert_eq!(v.verdict, Outcome::Fixed);
        assert_eq!(v.exit_code(), 0);
        assert_eq!(v.signature.as_deref(), Some(A));
        assert_eq!(v.title.as_deref(), Some("panic in f_aaaa"));
        close(v.p_value.unwrap(), 0.5f64.powi(10), 1e-12);
        assert_eq!(v.more_after_hours, None);
        assert_eq!(
            (v.before.trials, v.before.hits, v.before.censored),
            (10, 10, 0)
        );
        close(v.before.exposure_hours, 1.0, 1e-12);
        close(v.before.rate_per_hour, 10.0, 1e-12);
        close(v.before.rate_ci[0], 4.7954, 1e-3);
        close(v.before.rate_ci[1], 18.3904, 1e-3);
        assert_eq!(v.before.median_time_to_hit_s, Some(360.0));
        assert_eq!((v.after.trials, v.after.hits, v.after.censored), (1, 0, 1));
        assert_eq!(v.after.rate_ci[0], 0.0);
        close(v.after.rate_ci[1], 3.6889, 1e-3);
        assert_eq!(v.after.median_time_to_hit_s, None);
        assert!(v.regressions.is_empty());
    }

    /// A run report with an op table: (kind, issued, ok).
    fn run_ops(duration_s: f64, findings: Vec<Value>, ops: &[(&str, u64, u64)]) -> Value {
        let mut r = run(duration_s, findings);
        for (k, n, ok) in ops {
            r["ops"][*k] = json!({"count": n, "ok": ok, "skipped": 0, "errors": {},
                                 "p50_us": 1, "p99_us": 2, "max_us": 3});
        }
        r
    }

    /// A finished guest with an op table.
    fn guest_ops(seconds: f64, ops: &[(&str, u64, u64)]) -> Value {
        let mut g = guest("finished", seconds, &[]);
        for (k, n, ok) in ops {
            g["op_counts"][*k] = json!({"issued": n, "ok": ok});
        }
        g
    }

    const WORK: &[(&str, u64, u64)] = &[("move", 4000, 1200), ("mtu", 3000, 2500)];
    const NO_MOVES: &[(&str, u64, u64)] = &[("move", 4000, 0), ("mtu", 3000, 2500)];

    #[test]
    fn an_after_kernel_that_never_ran_the_suite_is_never_fixed() {
        // The reproduction of the old bug: 10 before hits in 1 h against 200
        // after guests that each panicked at boot after 90 s.
        let boot_panics = |sigs: &[&str]| {
            let guests = (0..200)
                .map(|i| {
                    let mut g = guest("boot-panic", 90.0, sigs);
                    g["index"] = json!(i + 1);
                    g
                })
                .collect();
            vm(guests, sigs.iter().map(|s| finding(s, "panic")).collect())
        };
        let v = judged(vec![panics(10, 360.0)], vec![boot_panics(&[C])], None);
        assert_eq!(v.after.trials, 0);
        assert_eq!(v.after.not_run, 200);
        assert_eq!(v.after.not_run_by_reason[&trials::NotRun::BootPanic], 200);
        assert_eq!(v.after.exposure_hours, 0.0);
        // The boot panic is a crash the patch added.
        assert_eq!(v.verdict, Outcome::Regressed);
        assert_eq!(v.regressions[0].after_not_run, 200);
        // Without a signature on the boot panics: no exposure, inconclusive.
        let v = judged(vec![panics(10, 360.0)], vec![boot_panics(&[])], None);
        assert_eq!(v.verdict, Outcome::Inconclusive);
        assert_eq!(v.exit_code(), 4);
        // An older report: "panic" guests without suite time, and guests
        // whose module did not load, are not exposure either.
        let mut old = guest("panic", 90.0, &[]);
        old.as_object_mut().unwrap().remove("suite_seconds");
        let mut failed = guest("finished", 3600.0, &[]);
        failed["module_error"] = json!("racebench: Invalid parameters");
        let v = judged(
            vec![panics(10, 360.0)],
            vec![vm(vec![old.clone(), old, failed], vec![])],
            None,
        );
        assert_eq!(v.verdict, Outcome::Inconclusive);
        assert_eq!(v.after.not_run_by_reason[&trials::NotRun::NoSuiteTime], 2);
        assert_eq!(v.after.not_run_by_reason[&trials::NotRun::ModuleFailed], 1);
    }

    #[test]
    fn a_crash_the_patch_added_is_a_regression_in_both_report_kinds() {
        let mut moved = finding(C, "panic");
        moved["guilty_frame"] = json!("if_vmove");
        let mut judged_one = finding(A, "panic");
        judged_one["guilty_frame"] = json!("if_vmove");
        // Runs: A before; after, A is gone and C (same guilty frame) appears.
        let before = vec![run_ops(3600.0, vec![judged_one.clone()], WORK); 10];
        let after = vec![
            run_ops(3600.0, vec![], WORK),
            run_ops(3600.0, vec![moved.clone()], WORK),
        ];
        let mut after = after;
        after.extend(vec![run_ops(3600.0, vec![], WORK); 8]);
        let v = judged(before, after, Some(A));
        assert_eq!(v.verdict, Outcome::Regressed);
        assert_eq!(v.exit_code(), 1);
        assert!(v.regressions[0].same_race_moved);
        assert!(v.render().contains("the same race, moved?"));
        assert!(
            v.notes
                .iter()
                .any(|n| n.starts_with("without it the verdict would have been fixed")),
            "{:?}",
            v.notes
        );
        // Guests: B on both sides, 1 of 20 before and 12 of 20 after at
        // equal hours: significantly more often after.
        let side = |b_hits: usize| {
            let guests = (0..20)
                .map(|i| {
                    let mut g = if i < b_hits {
                        guest("panic", 600.0, &[B])
                    } else {
                        guest_ops(600.0, WORK)
                    };
                    g["index"] = json!(i + 1);
                    g
                })
                .collect();
            vm(guests, vec![finding(B, "warning")])
        };
        let mut before = side(1);
        before["vm"]["guests"][5]["signatures"] = json!([A]);
        before["findings"] = json!([finding(A, "panic"), finding(B, "warning")]);
        let v = judged(vec![before], vec![side(12)], Some(A));
        assert_eq!(v.verdict, Outcome::Regressed, "{}", v.render());
        let r = &v.regressions[0];
        assert_eq!((r.why, r.before_hits, r.after_hits), ("more", 1, 12));
        assert!(r.p_value.unwrap() < 0.05);
        // The same counts both sides: nothing regressed.
        let v = judged(vec![side(6)], vec![side(6)], Some(B));
        assert!(v.regressions.is_empty());
    }

    #[test]
    fn work_the_after_side_stopped_doing_is_incomparable_in_both_report_kinds() {
        let before = vec![run_ops(360.0, vec![finding(A, "panic")], WORK); 10];
        let v = judged(before, vec![run_ops(360.0, vec![], NO_MOVES); 10], None);
        assert_eq!(v.verdict, Outcome::Incomparable);
        assert_eq!(v.exit_code(), 4);
        assert!(
            v.work.short[0].starts_with("move: 0 ok/h after"),
            "{:?}",
            v.work.short
        );
        let text = v.render();
        assert!(text.starts_with("verdict: incomparable:"), "{text}");
        assert!(text.contains("SHORT"), "{text}");
        // The same from guests: the before guests crashed (no op table),
        // the after guests finished and never moved anything.
        let after = vm((0..6).map(|_| guest_ops(600.0, NO_MOVES)).collect(), vec![]);
        let v = judged(vec![panics(10, 360.0)], vec![after], None);
        assert_eq!(v.verdict, Outcome::Incomparable, "{}", v.render());
        assert!(v.work.short[0].starts_with("move: none of 24000"));
        // A window armed and never entered after.
        let mut g = guest_ops(3600.0, WORK);
        g["module_state"] =
            json!(["racebench.counters vmove armed=1 entered=0 hit=0 averted=0 skipped=0"]);
        let v = judged(vec![panics(10, 360.0)], vec![vm(vec![g], vec![])], None);
        assert_eq!(v.verdict, Outcome::Incomparable);
    }

    #[test]
    fn the_same_work_without_the_crash_is_fixed_in_both_report_kinds() {
        let before = vec![run_ops(360.0, vec![finding(A, "panic")], WORK); 10];
        let v = judged(before, vec![run_ops(360.0, vec![], WORK); 10], None);
        assert_eq!(v.verdict, Outcome::Fixed, "{}", v.render());
        assert_eq!(v.exit_code(), 0);
        assert!(!v.work.incomparable());
        assert_eq!(v.work.ops.len(), 2);
        let after = vm((0..6).map(|_| guest_ops(600.0, WORK)).collect(), vec![]);
        let v = judged(vec![panics(10, 360.0)], vec![after], None);
        assert_eq!(v.verdict, Outcome::Fixed, "{}", v.render());
        assert!(v.regressions.is_empty());
    }

    #[test]
    fn a_run_where_ifstress_itself_failed_is_not_a_trial() {
        // Without the rule, the failed hour would be clean exposure after
        // the patch and tip the verdict toward fixed.
        let mut failed = run(3600.0, vec![]);
        failed["verdict"] = json!("error");
        failed["errors"] = json!(["worker 0 (loop a) failed before its first op: EMFILE"]);
        let v = judged(
            vec![panics(10, 360.0)],
            vec![failed, run(60.0, vec![])],
            None,
        );
        assert_eq!(v.after.trials, 1, "only the run that raced counts");
        close(v.after.exposure_hours, 60.0 / 3600.0, 1e-12);
        assert!(
            v.notes.iter().any(|n| n.contains("r0.json: not counted")),
            "{:?}",
            v.notes
        );
        assert_ne!(v.verdict, Outcome::Fixed);
    }

    #[test]
    fn inconclusive_says_how_many_more_hours() {
        // 2 hits in 1 h before, none in 0.5 h after: p = (1/1.5)^2 = 0.444;
        // T_a' = 1 * (0.05^(-1/2) - 1) = 3.472 h, so 2.972 h more.
        let v = judged(vec![panics(2, 1800.0)], vec![run(1800.0, vec![])], None);
        assert_eq!(v.verdict, Outcome::Inconclusive);
        assert_eq!(v.exit_code(), 4);
        close(v.p_value.unwrap(), 4.0 / 9.0, 1e-12);
        close(v.more_after_hours.unwrap(), 2.9721, 1e-4);
        close(after_hours_needed(2, 1.0, 0.05), 3.4721, 1e-4);
        // Exactly that much more, and the same test says fixed.
        let p = p_zero_after(2, 1.0, 0.5 + v.more_after_hours.unwrap());
        close(p, 0.05, 1e-12);
        assert!(v.notes.iter().any(|n| n.contains("with 2 before hit(s)")));
        assert!(v.render().contains("2.97"));
    }

    #[test]
    fn decide_on_counts_alone() {
        let d = decide(10, 1.0, 0, 1.0, 0.95);
        assert_eq!(d.outcome, Outcome::Fixed);
        let d = decide(2, 1.0, 0, 0.5, 0.95);
        assert_eq!(d.outcome, Outcome::Inconclusive);
        assert_eq!(decide(2, 1.0, 1, 0.5, 0.95).outcome, Outcome::StillBroken);
        assert_eq!(decide(0, 1.0, 1, 0.5, 0.95).outcome, Outcome::StillBroken);
        assert_eq!(decide(0, 1.0, 0, 0.5, 0.95).outcome, Outcome::NoBaseline);
        // Enough after hours already: nothing more is needed, and p is at alpha.
        let t = after_hours_needed(3, 2.0, 0.01);
        assert_eq!(
            decide(3, 2.0, 0, t * 1.000001, 0.99).outcome,
            Outcome::Fixed
        );
    }

    #[test]
    fn still_broken_on_one_after_hit() {
        let after = run(600.0, vec![finding(A, "panic")]);
        let v = judged(
            vec![panics(10, 360.0)],
            vec![run(36000.0, vec![]), after],
            None,
        );
        assert_eq!(v.verdict, Outcome::StillBroken);
        assert_eq!(v.exit_code(), 1);
        assert_eq!((v.after.trials, v.after.hits), (2, 1));
        assert_eq!(v.p_value, None);
        assert!(
            v.render()
                .starts_with("verdict: still-broken: aaaaaaaaaaaaaaaa")
        );
    }

    #[test]
    fn still_broken_notes_a_narrowed_race() {
        let v = judged(vec![panics(20, 180.0)], vec![panics(1, 36000.0)], None);
        assert_eq!(v.verdict, Outcome::StillBroken);
        assert!(v.notes.iter().any(|n| n.contains("narrows the race")));
    }

    #[test]
    fn no_baseline_without_before_findings() {
        let v = judged(vec![run(3600.0, vec![])], vec![run(3600.0, vec![])], None);
        assert_eq!(v.verdict, Outcome::NoBaseline);
        assert_eq!(v.exit_code(), 4);
        assert_eq!(v.signature, None);
        assert!(v.notes[0].contains("no findings"));
    }

    #[test]
    fn no_baseline_with_only_hygiene_findings_before() {
        let before = run(3600.0, vec![finding(L, "leftover")]);
        let v = judged(vec![before], vec![run(3600.0, vec![])], None);
        assert_eq!(v.verdict, Outcome::NoBaseline);
        assert!(v.notes[0].contains("--signature"));
    }

    #[test]
    fn a_given_signature_seen_nowhere_is_no_baseline_and_said() {
        let v = judged(vec![panics(3, 600.0)], vec![run(3600.0, vec![])], Some(C));
        assert_eq!(v.verdict, Outcome::NoBaseline);
        assert_eq!(v.signature.as_deref(), Some(C));
        assert!(v.notes.iter().any(|n| n.contains("occurs on neither side")));
    }

    #[test]
    fn a_given_signature_seen_only_after_is_still_broken() {
        let after = run(3600.0, vec![finding(C, "warning")]);
        let v = judged(vec![panics(3, 600.0)], vec![after], Some(C));
        assert_eq!(v.verdict, Outcome::StillBroken);
        assert_eq!(v.title.as_deref(), Some("warning in f_cccc"));
        // The judged signature is not also a regression.
        assert!(v.regressions.is_empty());
    }

    #[test]
    fn a_given_signature_of_any_kind_is_judged() {
        let before = run(3600.0, vec![finding(L, "leftover")]);
        let v = judged(vec![before], vec![run(3600.0, vec![])], Some(L));
        assert_eq!(v.before.hits, 1);
        assert_eq!(v.verdict, Outcome::Inconclusive);
    }

    #[test]
    fn auto_pick_takes_the_most_hit_crash_like_signature() {
        let before = vec![
            run(
                600.0,
                vec![
                    finding(B, "panic"),
                    finding(A, "warning"),
                    finding(L, "leftover"),
                ],
            ),
            run(600.0, vec![finding(A, "warning"), finding(L, "leftover")]),
            run(600.0, vec![finding(L, "leftover")]),
        ];
        let v = judged(before, vec![run(3600.0, vec![])], None);
        assert_eq!(v.signature.as_deref(), Some(A));
        assert_eq!(v.before.hits, 2);
        assert!(v.notes[0].contains("picked automatically"), "{:?}", v.notes);
        assert!(v.notes[0].contains("1 other(s)"), "{:?}", v.notes);
    }

    #[test]
    fn auto_pick_tie_goes_to_the_first_seen() {
        let before = vec![
            run(600.0, vec![finding(B, "bug")]),
            run(600.0, vec![finding(A, "panic")]),
        ];
        let v = judged(before, vec![run(3600.0, vec![])], None);
        assert_eq!(v.signature.as_deref(), Some(B));
    }

    #[test]
    fn regressions_are_crash_like_and_after_only() {
        let after = vec![
            run(3600.0, vec![finding(C, "panic"), finding(L, "leftover")]),
            run(3600.0, vec![finding(C, "panic"), finding(B, "warning")]),
        ];
        let before = vm(
            vec![guest("panic", 60.0, &[A]), guest("finished", 600.0, &[B])],
            vec![finding(A, "panic"), finding(B, "warning")],
        );
        let v = judged(vec![before], after, None);
        assert_eq!(v.signature.as_deref(), Some(A));
        assert_eq!(
            v.regressions,
            vec![Regression {
                signature: C.into(),
                title: Some("panic in f_cccc".into()),
                guilty_frame: None,
                before_hits: 0,
                after_hits: 2,
                after_not_run: 0,
                why: "new",
                p_value: None,
                same_race_moved: false,
            }]
        );
        // A gets 0 after hits in 2 h against 1 in 11 min: the patch added C.
        assert_eq!(v.verdict, Outcome::Regressed);
        assert_eq!(v.exit_code(), 1);
        let text = v.render();
        assert!(
            text.lines()
                .next()
                .unwrap()
                .starts_with("verdict: regressed: aaaaaaaaaaaaaaaa"),
            "{text}"
        );
        assert!(
            text.contains("cccccccccccccccc (new): before 0 hit(s), after 2: panic in f_cccc"),
            "{text}"
        );
    }

    #[test]
    fn vm_guests_are_trials() {
        let r = vm(
            vec![
                json!({"index": 1, "outcome": "finished", "seconds": 4000.0,
                       "suite_seconds": 3600.0, "ops": 1, "console": "c"}),
                json!({"index": 2, "outcome": "panic", "seconds": 700.0,
                       "suite_seconds": 600.0, "ops": 1, "console": "c",
                       "signatures": [A]}),
                guest("boot-failure", 300.0, &["feedfeedfeedfeed"]),
                guest("hang", 1300.0, &[A, B]),
            ],
            vec![
                finding(A, "panic"),
                finding(B, "warning"),
                finding("feedfeedfeedfeed", "boot-failure"),
            ],
        );
        let v = judged(vec![r], vec![run(3600.0, vec![])], None);
        let s = &v.before;
        assert_eq!(v.signature.as_deref(), Some(A));
        assert_eq!((s.trials, s.hits, s.censored, s.not_run), (3, 2, 1, 1));
        close(s.exposure_hours, 5500.0 / 3600.0, 1e-12);
        // KM: 2/3 at 600 s, 1/3 at 1300 s.
        assert_eq!(s.median_time_to_hit_s, Some(1300.0));
        assert_eq!(s.suites, vec!["vmove"]);
        assert_eq!(s.seeds, vec![1]);
        assert!(
            v.notes
                .iter()
                .any(|n| n.contains("1 guest(s) or run(s) did not run the suite (boot-failure)"))
        );
        assert!(
            !v.notes.iter().any(|n| n.contains("not listed")),
            "{:?}",
            v.notes
        );
    }

    #[test]
    fn vm_findings_no_guest_lists_still_count_once() {
        // A report from before guests carried `signatures`.
        let mut old = vm(
            vec![guest("finished", 3600.0, &[]), guest("panic", 600.0, &[])],
            vec![finding(A, "panic")],
        );
        for (i, g) in old["vm"]["guests"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .enumerate()
        {
            g.as_object_mut().unwrap().remove("signatures");
            g["index"] = json!(i + 1);
        }
        let v = judged(vec![panics(4, 600.0)], vec![old], None);
        assert_eq!(v.verdict, Outcome::StillBroken);
        assert_eq!(v.after.hits, 1);
        // On the panicked guest: 1 of 2 at risk hits at 600 s, S = 1/2.
        assert_eq!(v.after.median_time_to_hit_s, Some(600.0));
        assert!(
            v.notes
                .iter()
                .any(|n| n.contains("counted as one hit on guest 2"))
        );
    }

    #[test]
    fn a_run_hit_is_timed_by_first_hit_s_when_known() {
        let mut f = finding(A, "panic");
        let before = vec![run(3600.0, vec![f.clone()])];
        let v = judged(before.clone(), vec![run(3600.0, vec![])], None);
        assert_eq!(v.before.median_time_to_hit_s, Some(3600.0));
        f["first_hit_s"] = json!(90.5);
        let v = judged(vec![run(3600.0, vec![f])], vec![run(3600.0, vec![])], None);
        assert_eq!(v.before.median_time_to_hit_s, Some(90.5));
    }

    #[test]
    fn mixed_suites_and_kernels_are_noted() {
        let mut other = run(600.0, vec![]);
        other["suite"] = json!("all");
        other["kernel"] = json!("Linux 6.2");
        let v = judged(
            vec![panics(3, 600.0), other],
            vec![run(3600.0, vec![])],
            None,
        );
        assert_eq!(v.before.suites, vec!["vmove", "all"]);
        assert!(
            v.notes
                .iter()
                .any(|n| n == "before: several suites: vmove, all")
        );
        assert!(
            v.notes
                .iter()
                .any(|n| n.starts_with("before: several kernels"))
        );
        assert!(
            v.notes
                .iter()
                .any(|n| n.starts_with("the sides ran different suites"))
        );
    }

    #[test]
    fn not_a_report_names_the_file_and_what_is_wrong() {
        let bad = |v: Value| {
            let before = vec![("x.json".to_string(), v)];
            let after = named(vec![run(1.0, vec![])]);
            judge_reports(&before, &after, &criteria(None, 0.95))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            bad(json!([1, 2])),
            "x.json: not an ifstress report: not a JSON object"
        );
        assert_eq!(
            bad(json!({"findings": []})),
            "x.json: not an ifstress report: no `suite`"
        );
        let e = bad(json!({"suite": "s", "findings": [{"title": "t"}]}));
        assert!(
            e.starts_with("x.json: not an ifstress report: findings[0]"),
            "{e}"
        );
        assert!(e.contains("signature"), "{e}");
        let e = bad(json!({"suite": "s", "findings": []}));
        assert!(e.contains("without `duration_s`"), "{e}");
        let e = bad(run(-1.0, vec![]));
        assert!(e.contains("duration_s is -1"), "{e}");
    }

    #[test]
    fn empty_sides_and_bad_confidence_are_errors() {
        let one = named(vec![run(1.0, vec![])]);
        let e = judge_reports(&[], &one, &criteria(None, 0.95)).unwrap_err();
        assert_eq!(e.to_string(), "--before: no report given");
        let e = judge_reports(&one, &[], &criteria(None, 0.95)).unwrap_err();
        assert_eq!(e.to_string(), "--after: no report given");
        for c in [0.0, 1.0, 1.5, -0.1, f64::NAN] {
            let e = judge_reports(&one, &one, &criteria(None, c)).unwrap_err();
            assert!(matches!(e, VerdictError::Confidence(_)), "{c}");
        }
        for w in [0.0, 1.5, -1.0, f64::NAN] {
            let mut c = criteria(None, 0.95);
            c.min_work = w;
            let e = judge_reports(&one, &one, &c).unwrap_err();
            assert!(matches!(e, VerdictError::MinWork(_)), "{w}");
        }
    }

    #[test]
    fn a_side_without_exposure_is_judged_not_refused() {
        let none = vm(vec![guest("boot-failure", 300.0, &[])], vec![]);
        let v = judged(vec![panics(2, 60.0)], vec![none], None);
        assert_eq!(v.verdict, Outcome::Inconclusive);
        close(v.p_value.unwrap(), 1.0, 0.0);
        assert_eq!((v.after.trials, v.after.not_run), (0, 1));
        assert!(v.after.rate_per_hour.is_nan());
        let j = serde_json::to_value(&v).unwrap();
        assert!(j["after"]["rate_per_hour"].is_null());
        assert!(j["after"]["rate_ci"][1].is_null());
        assert!(
            v.notes
                .iter()
                .any(|n| n == "after: no exposure at all: its rate is unknown")
        );
        assert!(v.render().lines().nth(4).unwrap().contains("[-, -]"));
        // Nothing ran on either side: nothing to judge, and nothing breaks.
        let v = judged(vec![run(0.0, vec![])], vec![run(0.0, vec![])], None);
        assert_eq!(v.verdict, Outcome::NoBaseline);
        assert_eq!(p_zero_after(3, 0.0, 0.0), 1.0);
    }

    fn input(dir: &std::path::Path, before: &[&str], after: &[&str]) -> VerdictInput {
        VerdictInput {
            before: before.iter().map(|f| dir.join(f)).collect(),
            after: after.iter().map(|f| dir.join(f)).collect(),
            criteria: criteria(None, 0.95),
            partial: false,
        }
    }

    #[test]
    fn judge_reads_files_and_names_the_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
        write("b.json", panics(10, 360.0).to_string());
        write("a.json", run(3600.0, vec![]).to_string());
        write("junk.json", "not json {".into());

        let mut i = input(dir.path(), &["b.json"], &["a.json"]);
        i.partial = true;
        let v = judge(&i).unwrap();
        assert_eq!(v.verdict, Outcome::Fixed);
        assert!(v.partial);
        assert!(
            v.render()
                .starts_with("partial verdict: fixed: aaaaaaaaaaaaaaaa")
        );
        assert_eq!(
            v.before.files,
            vec![dir.path().join("b.json").display().to_string()]
        );

        let e = judge(&input(dir.path(), &["b.json"], &["junk.json"])).unwrap_err();
        assert!(matches!(e, VerdictError::NotJson { .. }));
        assert!(e.to_string().contains("junk.json: not JSON: "), "{e}");
        assert_eq!(e.to_string().lines().count(), 1);

        let e = judge(&input(dir.path(), &["gone.json"], &["a.json"])).unwrap_err();
        match &e {
            VerdictError::Read { file, error } => {
                assert!(file.ends_with("gone.json"));
                assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("{other:?}"),
        }

        let e = judge(&input(dir.path(), &["b.json"], &[])).unwrap_err();
        assert_eq!(e.to_string(), "--after: no report given");
    }

    #[test]
    fn json_output_has_the_documented_fields() {
        let v = judged(vec![panics(2, 1800.0)], vec![run(1800.0, vec![])], None);
        let j = serde_json::to_value(&v).unwrap();
        for k in [
            "verdict",
            "signature",
            "title",
            "confidence",
            "method",
            "p_value",
            "more_after_hours",
            "before",
            "after",
            "regressions",
            "work",
            "notes",
            "partial",
        ] {
            assert!(j.get(k).is_some(), "missing {k}");
        }
        assert_eq!(j["verdict"], "inconclusive");
        for k in [
            "files",
            "trials",
            "hits",
            "censored",
            "not_run",
            "not_run_by_reason",
            "exposure_hours",
            "rate_per_hour",
            "rate_ci",
            "median_time_to_hit_s",
            "suites",
            "kernels",
            "seeds",
        ] {
            assert!(j["after"].get(k).is_some(), "side lacks {k}");
        }
        assert_eq!(j["after"]["rate_ci"].as_array().unwrap().len(), 2);
        assert!(j["after"]["median_time_to_hit_s"].is_null());
        let s = serde_json::to_value(Outcome::StillBroken).unwrap();
        assert_eq!(s, "still-broken");
    }

    #[test]
    fn render_has_headline_table_and_method() {
        let v = judged(vec![panics(10, 360.0)], vec![run(3600.0, vec![])], None);
        let text = v.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "verdict: fixed: aaaaaaaaaaaaaaaa (panic in f_aaaa): 0 hits in 1.00 after-hours \
             against 10 in 1.00 before-hours, p = 9.77e-4"
        );
        assert!(lines[2].starts_with("side") && lines[2].contains("95% CI"));
        assert!(lines[3].starts_with("before") && lines[3].contains("[4.80, 18.4]"));
        assert!(lines[3].ends_with("6.00 min"));
        assert!(lines[4].starts_with("after") && lines[4].ends_with("not reached"));
        assert!(text.contains("method: conditional test"));
        assert!(text.contains("p-value: 9.77e-4 (fixed when <= 0.05)"));
        assert_eq!(alpha_text(0.95), "0.05");
        assert_eq!(alpha_text(0.999), "0.001");
    }

    #[test]
    fn numbers_are_rounded_for_people() {
        assert_eq!(num(0.0), "0");
        assert_eq!(num(f64::NAN), "-");
        assert_eq!(num(0.4444), "0.444");
        assert_eq!(num(2.97213), "2.97");
        assert_eq!(num(18.3904), "18.4");
        assert_eq!(num(1234.5), "1234");
        assert_eq!(num(0.000977), "9.77e-4");
        assert_eq!(percent(0.95), "95%");
        assert_eq!(percent(0.999), "99.9%");
        assert_eq!(duration(90.0), "90.0 s");
        assert_eq!(duration(360.0), "6.00 min");
        assert_eq!(duration(36000.0), "10.0 h");
    }
}
