//! What a report holds, and writing it as JSON: a leaf that the renderers
//! (human table, JUnit) and the runs that fill reports build on.

use crate::check::{Finding, triage::Scanner};
use crate::model::Tag;
use crate::stats::OpSummary;
use crate::suite::Suite;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Links created before the workers started.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SetupSummary {
    pub created: u64,
    /// errno name -> count.
    pub failed: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub suite: String,
    /// The suite as it ran, so that `repro` can run it again even when it
    /// came from a file that is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite_toml: Option<String>,
    pub targets: Vec<String>,
    pub platform: String,
    pub kernel: String,
    pub seed: u64,
    pub tag: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_s: f64,
    pub planned_duration_s: f64,
    pub interrupted: bool,
    /// "clean", "findings", or "error" (no finding, but ifstress itself
    /// failed: see `errors`; the run is not evidence of a clean kernel).
    pub verdict: String,
    pub workers: usize,
    pub total_ops: u64,
    pub setup: SetupSummary,
    pub ops: BTreeMap<String, OpSummary>,
    pub findings: Vec<Finding>,
    pub leftovers: Vec<String>,
    /// Things the run changed or skipped and says so (missing optional kinds ...).
    pub notes: Vec<String>,
    /// ifstress's own failures during the run (a worker that could not
    /// start or failed, a setup or teardown step that failed; journal
    /// trouble goes to `notes`). The run still scanned the log, checked and
    /// tore down.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Seconds from teardown until every stack the run removed was really
    /// gone (the kernel freed the namespace, the jail left DYING). None when
    /// one was still held at the grace, or the check could not run. Large
    /// values with no finding mean a slow teardown, not a leak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stacks_gone_after_s: Option<f64>,
    /// What ifstress itself cost: CPU split and its own RSS over time.
    #[serde(default)]
    pub resources: crate::resources::Resources,
    /// `ifstress vm run`: the guests and how each ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm: Option<super::guests::VmSummary>,
    /// `ifstress postmortem`: each worker's last journaled ops before the crash.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub last_ops: BTreeMap<String, Vec<String>>,
    #[serde(skip)]
    pub(crate) scanner: Option<Scanner>,
}

impl Report {
    /// A report with nothing in it yet (post-mortem fills it from files).
    pub fn empty() -> Report {
        Report {
            suite: String::new(),
            suite_toml: None,
            targets: Vec::new(),
            platform: String::new(),
            kernel: String::new(),
            seed: 0,
            tag: String::new(),
            started_at: String::new(),
            duration_s: 0.0,
            planned_duration_s: 0.0,
            interrupted: false,
            verdict: "clean".into(),
            workers: 0,
            total_ops: 0,
            setup: SetupSummary::default(),
            ops: BTreeMap::new(),
            findings: Vec::new(),
            leftovers: Vec::new(),
            notes: Vec::new(),
            errors: Vec::new(),
            last_ops: BTreeMap::new(),
            stacks_gone_after_s: None,
            resources: Default::default(),
            vm: None,
            scanner: None,
        }
    }

    /// `platform` is (name, kernel).
    pub fn new(
        suite: &Suite,
        platform: (&str, String),
        seed: u64,
        tag: &Tag,
        started_at: SystemTime,
        elapsed: Duration,
        planned: Duration,
    ) -> Report {
        Report {
            suite: suite.name.clone(),
            suite_toml: Some(suite.to_toml()),
            targets: suite.targets.clone(),
            platform: platform.0.into(),
            kernel: platform.1,
            seed,
            tag: tag.id.clone(),
            started_at: humantime::format_rfc3339_seconds(started_at).to_string(),
            duration_s: (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            planned_duration_s: planned.as_secs_f64(),
            ..Report::empty()
        }
    }

    /// Settle the verdict once every check has spoken. A kernel finding
    /// outranks ifstress's own failure: it is what the user came for.
    pub fn finish(&mut self) {
        self.verdict = if !self.findings.is_empty() {
            "findings"
        } else if !self.errors.is_empty() {
            "error"
        } else {
            "clean"
        }
        .into();
    }

    pub fn clean(&self) -> bool {
        self.verdict == "clean"
    }

    /// No kernel finding, but ifstress failed on its own account.
    pub fn failed(&self) -> bool {
        self.verdict == "error"
    }

    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        write_atomically(path, text.as_bytes())
    }
}

/// A regular file: written beside, then renamed (whole or absent); a
/// device or FIFO: written in place (`report::output`).
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    super::output::write(path, bytes)
}
