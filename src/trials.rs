//! Trials: the one reading of reports that everything counting hits against
//! time shares (`verdict`, `vm ab`, `repro`, `bench --seeded`). A trial is a
//! run, or a guest of a `vm run`, watched while its suite ran: its exposure
//! is the suite's time from its start to its end or its first hit, never the
//! boot, the panic's dump or the collection. A guest that never ran the suite
//! is not a trial at all; it is kept, with why, so that a side made only of
//! such guests reads as "no exposure", never as clean hours.

use crate::report::guests::{GuestSummary, OpCount};
use serde::Serialize;
use std::collections::BTreeMap;

/// Why a guest or run is not a trial of the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotRun {
    /// The guest never started the suite (no console marker in time).
    BootFailure,
    /// The kernel panicked before the suite started.
    BootPanic,
    /// A `--module` did not load, so the suite never ran.
    ModuleFailed,
    /// The report does not say how long the suite ran (older reports, and
    /// guests that ended before their suite started).
    NoSuiteTime,
    /// ifstress itself failed and the kernel showed nothing.
    IfstressError,
}

impl NotRun {
    pub fn as_str(self) -> &'static str {
        match self {
            NotRun::BootFailure => "boot-failure",
            NotRun::BootPanic => "boot-panic",
            NotRun::ModuleFailed => "module-failed",
            NotRun::NoSuiteTime => "no-suite-time",
            NotRun::IfstressError => "ifstress-error",
        }
    }
}

/// A report field that makes no sense (the caller names the file).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{field} is {value}: a duration must be finite, not negative and at most {MAX_REPORT_SECONDS} s (two of the longest runs ifstress takes)"
)]
pub struct BadDuration {
    pub field: String,
    pub value: f64,
}

/// The longest duration a report may claim: a run or `vm run` is at most
/// `model::MAX_DURATION`, and the margin covers setup and teardown. A
/// larger number (1e308) would swamp every other report's hours.
pub const MAX_REPORT_SECONDS: f64 = 2.0 * crate::model::MAX_DURATION.as_secs() as f64;

fn duration(field: impl FnOnce() -> String, value: f64) -> Result<f64, BadDuration> {
    if value.is_finite() && (0.0..=MAX_REPORT_SECONDS).contains(&value) {
        Ok(value)
    } else {
        Err(BadDuration {
            field: field(),
            value,
        })
    }
}

/// One trial of the kernel.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trial {
    /// Seconds of suite time: to the end, or to the first crash.
    pub exposure_s: f64,
    /// Signatures hit, each with the seconds into the suite of its first
    /// occurrence. Filled by `add_hit` only, which keeps `index`.
    pub hits: Vec<(String, f64)>,
    pub seed: Option<u64>,
    /// The guest's index in its `vm run` (None for a run).
    pub guest: Option<usize>,
    /// The guest ended in a panic or a hang.
    pub crashed: bool,
    /// What the run did per op kind, when its report came back.
    pub work: Option<BTreeMap<String, OpCount>>,
    /// `MODULE.PARAM VALUE` lines read after the suite (racebench's counters).
    pub module_state: Vec<String>,
    /// Where each signature is in `hits`, kept by `add_hit`: a report with
    /// 200,000 distinct findings is one trial with as many hits, and a
    /// search of the list per hit made reading it quadratic.
    pub index: std::collections::HashMap<String, usize>,
}

impl Trial {
    pub fn hit_time(&self, sig: &str) -> Option<f64> {
        self.index.get(sig).map(|&i| self.hits[i].1)
    }

    pub fn hit(&self, sig: &str) -> bool {
        self.hit_time(sig).is_some()
    }

    pub fn add_hit(&mut self, sig: &str, at: f64) {
        if !self.hit(sig) {
            self.index.insert(sig.to_string(), self.hits.len());
            self.hits.push((sig.to_string(), at));
        }
    }
}

/// A guest or run that was not a trial, and what it showed anyway (a boot
/// panic's signature is still a crash of that kernel).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    /// "guest 3", or the report's name for a run.
    pub what: String,
    pub why: NotRun,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trials {
    pub trials: Vec<Trial>,
    pub not_run: Vec<Skipped>,
}

impl Trials {
    pub fn exposure_s(&self) -> f64 {
        self.trials.iter().map(|t| t.exposure_s).sum()
    }

    /// Trials that hit `sig`.
    pub fn hits(&self, sig: &str) -> usize {
        self.trials.iter().filter(|t| t.hit(sig)).count()
    }

    /// How many were not trials, for each reason that occurred.
    pub fn not_run_counts(&self) -> BTreeMap<NotRun, usize> {
        let mut m = BTreeMap::new();
        for s in &self.not_run {
            *m.entry(s.why).or_default() += 1;
        }
        m
    }

    pub fn extend(&mut self, other: Trials) {
        self.trials.extend(other.trials);
        self.not_run.extend(other.not_run);
    }
}

/// Why a guest is not a trial, if it is not.
pub fn not_run(g: &GuestSummary) -> Option<NotRun> {
    match g.outcome.as_str() {
        "boot-failure" => Some(NotRun::BootFailure),
        "boot-panic" => Some(NotRun::BootPanic),
        "module-failed" => Some(NotRun::ModuleFailed),
        _ if g.module_error.is_some() => Some(NotRun::ModuleFailed),
        _ if g.error.is_some() && g.signatures.is_empty() => Some(NotRun::IfstressError),
        _ if g.suite_seconds.is_none() => Some(NotRun::NoSuiteTime),
        _ => None,
    }
}

/// The guests of one `vm run`: each that ran its suite is a trial, ended at
/// its crash (so a hit's time is its exposure), the rest are skipped.
pub fn of_guests(guests: &[GuestSummary]) -> Result<Trials, BadDuration> {
    let mut out = Trials::default();
    for (i, g) in guests.iter().enumerate() {
        if let Some(why) = not_run(g) {
            out.not_run.push(Skipped {
                what: if g.index > 0 {
                    format!("guest {}", g.index)
                } else {
                    format!("guest #{}", i + 1)
                },
                why,
                signatures: g.signatures.clone(),
            });
            continue;
        }
        let exposure_s = duration(
            || format!("vm.guests[{i}].suite_seconds"),
            g.suite_seconds.unwrap_or_default(),
        )?;
        let mut t = Trial {
            exposure_s,
            seed: g.seed,
            guest: Some(g.index),
            crashed: matches!(g.outcome.as_str(), "panic" | "hang"),
            work: (!g.op_counts.is_empty()).then(|| g.op_counts.clone()),
            module_state: g.module_state.clone(),
            ..Trial::default()
        };
        for s in &g.signatures {
            t.add_hit(s, exposure_s);
        }
        out.trials.push(t);
    }
    Ok(out)
}

/// What a run report (`ifstress run`, no guests) says, in the fields the
/// trial needs.
pub struct RunView<'a> {
    pub name: &'a str,
    pub duration_s: f64,
    /// The first of ifstress's own errors when the run's verdict is `error`.
    pub failed: Option<&'a str>,
    /// Each finding's signature and, when known, its first hit's seconds
    /// into the run.
    pub hits: Vec<(&'a str, Option<f64>)>,
    pub seed: Option<u64>,
    pub work: BTreeMap<String, OpCount>,
}

/// A run is one trial; a hit without a time is counted at the run's end
/// (it hit no later than that). A run where ifstress failed is skipped.
pub fn of_run(r: &RunView) -> Result<Trials, BadDuration> {
    if r.failed.is_some() {
        return Ok(Trials {
            trials: vec![],
            not_run: vec![Skipped {
                what: r.name.to_string(),
                why: NotRun::IfstressError,
                signatures: vec![],
            }],
        });
    }
    let exposure_s = duration(|| "duration_s".into(), r.duration_s)?;
    let mut t = Trial {
        exposure_s,
        seed: r.seed,
        work: (!r.work.is_empty()).then(|| r.work.clone()),
        ..Trial::default()
    };
    for (sig, at) in &r.hits {
        t.add_hit(sig, at.map_or(exposure_s, |s| s.clamp(0.0, exposure_s)));
    }
    Ok(Trials {
        trials: vec![t],
        not_run: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest(outcome: &str, suite: Option<f64>, sigs: &[&str]) -> GuestSummary {
        GuestSummary {
            index: 1,
            outcome: outcome.into(),
            seconds: 500.0,
            suite_seconds: suite,
            signatures: sigs.iter().map(|s| s.to_string()).collect(),
            ..GuestSummary::default()
        }
    }

    #[test]
    fn only_suite_time_is_exposure() {
        let t = of_guests(&[
            guest("finished", Some(100.0), &[]),
            guest("panic", Some(30.0), &["a"]),
            // It panicked at boot: 500 s of life, none of it suite time.
            guest("panic", None, &["b"]),
            guest("boot-panic", None, &["b"]),
            guest("boot-failure", None, &[]),
            guest("module-failed", Some(5.0), &[]),
        ])
        .unwrap();
        assert_eq!(t.trials.len(), 2);
        assert_eq!(t.exposure_s(), 130.0);
        assert_eq!(t.hits("a"), 1);
        assert_eq!(t.hits("b"), 0);
        let why: Vec<NotRun> = t.not_run.iter().map(|s| s.why).collect();
        assert_eq!(
            why,
            [
                NotRun::NoSuiteTime,
                NotRun::BootPanic,
                NotRun::BootFailure,
                NotRun::ModuleFailed
            ]
        );
        assert_eq!(t.not_run[1].signatures, ["b"]);
    }

    #[test]
    fn a_guest_where_ifstress_failed_without_a_finding_is_not_a_trial() {
        let mut g = guest("finished", Some(100.0), &[]);
        g.error = Some("worker 0: EPERM".into());
        assert_eq!(not_run(&g), Some(NotRun::IfstressError));
        g.signatures = vec!["a".into()];
        assert_eq!(not_run(&g), None);
    }

    #[test]
    fn negative_or_infinite_suite_time_is_an_error() {
        for v in [-1.0, f64::INFINITY, f64::NAN] {
            let e = of_guests(&[guest("finished", Some(v), &[])]).unwrap_err();
            assert_eq!(e.field, "vm.guests[0].suite_seconds");
        }
    }

    #[test]
    fn a_run_is_one_trial_unless_ifstress_failed() {
        let v = RunView {
            name: "r.json",
            duration_s: 60.0,
            failed: None,
            hits: vec![("a", Some(12.0)), ("b", None), ("c", Some(99.0))],
            seed: Some(3),
            work: BTreeMap::new(),
        };
        let t = of_run(&v).unwrap();
        assert_eq!(t.trials[0].hit_time("a"), Some(12.0));
        assert_eq!(t.trials[0].hit_time("b"), Some(60.0));
        assert_eq!(t.trials[0].hit_time("c"), Some(60.0));
        assert_eq!(t.trials[0].seed, Some(3));
        let failed = of_run(&RunView {
            failed: Some("boom"),
            ..v
        })
        .unwrap();
        assert!(failed.trials.is_empty());
        assert_eq!(failed.not_run[0].why, NotRun::IfstressError);
    }
}
