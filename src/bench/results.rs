//! What a bench measured: rates, per-case results with their ratios, the
//! footprint and soak runs, the whole report. A leaf: the runner fills it,
//! the baselines and the renderer read it.

use crate::platform::baseline::Case;
use serde::Serialize;
use std::collections::BTreeMap;

/// One measured configuration.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Rate {
    /// Ops that did their work, per second.
    pub ops_per_s: f64,
    pub ops: u64,
    pub seconds: f64,
    /// CPU per op, microseconds: user space and kernel.
    pub user_us_per_op: f64,
    pub sys_us_per_op: f64,
}

impl Rate {
    pub(super) fn new(ops: u64, seconds: f64, user_s: f64, sys_s: f64) -> Rate {
        let per = |s: f64| {
            if ops == 0 {
                0.0
            } else {
                round(s * 1e6 / ops as f64, 100.0)
            }
        };
        Rate {
            ops_per_s: if seconds > 0.0 {
                round(ops as f64 / seconds, 10.0)
            } else {
                0.0
            },
            ops,
            seconds: round(seconds, 1000.0),
            user_us_per_op: per(user_s),
            sys_us_per_op: per(sys_s),
        }
    }
}

pub(super) fn round(x: f64, d: f64) -> f64 {
    (x * d).round() / d
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IfstressRate {
    pub workers: usize,
    #[serde(flatten)]
    pub rate: Rate,
    /// Share of issued ops that succeeded (cycle order makes collisions rare).
    pub ok_share: f64,
    pub max_rss_kib: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CaseResult {
    pub case: Case,
    pub heavy: bool,
    pub ifstress: Vec<IfstressRate>,
    /// The shell loop; None when it was not run or failed (see `notes`).
    pub shell: Option<Rate>,
    pub batch: Option<Rate>,
    pub batch_label: String,
    /// ifstress at 1 worker over the shell loop (a/b).
    pub vs_shell: Option<f64>,
    /// ifstress at 1 worker over the batch stream (a/c).
    pub vs_batch: Option<f64>,
    /// workers -> rate over the 1-worker rate (d/a).
    pub scaling: BTreeMap<usize, f64>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Footprint {
    pub links: usize,
    pub stacks: usize,
    pub workers: usize,
    pub ops: u64,
    pub seconds: f64,
    pub user_s: f64,
    pub sys_s: f64,
    /// user / (user + sys) over the stress window.
    pub user_share: f64,
    pub max_rss_kib: u64,
    pub rss_slope_kib_per_min: f64,
    /// How long the kernel took to free its 64 stacks after teardown.
    pub stacks_gone_after_s: Option<f64>,
}

/// `all` with the journal on for a long stretch: does the resident set stay
/// flat once warm? Growth here, per op, would be a leak on the hot path.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Soak {
    pub suite: String,
    pub ops: u64,
    pub seconds: f64,
    pub resources: crate::resources::Resources,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub platform: String,
    pub kernel: String,
    pub cpus: usize,
    pub seconds_per_measure: f64,
    pub cases: Vec<CaseResult>,
    pub footprint: Option<Footprint>,
    pub soak: Option<Soak>,
    pub findings: Vec<crate::check::Finding>,
    pub interrupted: bool,
}

impl CaseResult {
    pub(super) fn ratios(&mut self) {
        let Some(one) = self
            .ifstress
            .iter()
            .find(|r| r.workers == 1)
            .map(|r| r.rate.ops_per_s)
        else {
            return;
        };
        let ratio = |x: f64, y: f64| (y > 0.0).then(|| round(x / y, 100.0));
        self.vs_shell = self.shell.as_ref().and_then(|s| ratio(one, s.ops_per_s));
        self.vs_batch = self.batch.as_ref().and_then(|s| ratio(one, s.ops_per_s));
        for r in &self.ifstress {
            if let Some(x) = ratio(r.rate.ops_per_s, one) {
                self.scaling.insert(r.workers, x);
            }
        }
    }
}
