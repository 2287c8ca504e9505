//! What a run tells afterwards: a human table, a JSON document (schema in the
//! README) and JUnit XML for CI systems.

pub mod guests;
mod human;
mod junit;

use crate::check::{Finding, triage::Scanner};
use crate::model::Tag;
use crate::stats::OpSummary;
use crate::suite::Suite;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

pub use human::{findings_text, render as human};
pub use junit::render as junit;

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
    /// "clean" or "findings".
    pub verdict: String,
    pub workers: usize,
    pub total_ops: u64,
    pub setup: SetupSummary,
    pub ops: BTreeMap<String, OpSummary>,
    pub findings: Vec<Finding>,
    pub leftovers: Vec<String>,
    /// Things the run changed or skipped and says so (missing optional kinds ...).
    pub notes: Vec<String>,
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
    pub vm: Option<guests::VmSummary>,
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

    /// Settle the verdict once every check has spoken.
    pub fn finish(&mut self) {
        self.verdict = if self.findings.is_empty() {
            "clean"
        } else {
            "findings"
        }
        .into();
    }

    pub fn clean(&self) -> bool {
        self.verdict == "clean"
    }

    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        write_atomically(path, text.as_bytes())
    }

    pub fn write_junit(&self, path: &Path) -> std::io::Result<()> {
        write_atomically(path, junit(self).as_bytes())
    }
}

/// Write beside, then rename: a report is either whole or absent.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
pub(crate) fn sample() -> Report {
    let mut ops = BTreeMap::new();
    ops.insert(
        "move".to_string(),
        OpSummary {
            count: 10,
            ok: 7,
            skipped: 1,
            errors: [("ENODEV".to_string(), 2)].into_iter().collect(),
            p50_us: 40,
            p99_us: 900,
            max_us: 1200,
        },
    );
    Report {
        suite: "vmove".into(),
        suite_toml: None,
        targets: vec!["PR 292993".into()],
        platform: "linux".into(),
        kernel: "Linux 6.1".into(),
        seed: 42,
        tag: "beef".into(),
        started_at: "2026-11-22T08:00:00Z".into(),
        duration_s: 2.5,
        planned_duration_s: 2.0,
        interrupted: false,
        verdict: "findings".into(),
        workers: 3,
        total_ops: 10,
        setup: SetupSummary::default(),
        ops,
        findings: vec![Finding::new(
            "panic",
            "panic: <boom> & \"x\"",
            "panic: <boom>\nline 2",
        )],
        leftovers: vec![],
        notes: vec![],
        last_ops: BTreeMap::new(),
        stacks_gone_after_s: Some(1.25),
        resources: Default::default(),
        vm: None,
        scanner: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_documented_schema() {
        let v: serde_json::Value = serde_json::to_value(sample()).unwrap();
        for k in [
            "suite",
            "platform",
            "kernel",
            "seed",
            "duration_s",
            "interrupted",
            "verdict",
            "ops",
            "findings",
            "leftovers",
            "tag",
            "workers",
            "total_ops",
            "notes",
            "targets",
            "started_at",
            "setup",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        let m = &v["ops"]["move"];
        for k in ["count", "ok", "errors", "p50_us", "p99_us", "max_us"] {
            assert!(m.get(k).is_some(), "ops.move lacks {k}");
        }
        assert_eq!(m["errors"]["ENODEV"], 2);
        let f = &v["findings"][0];
        for k in ["kind", "title", "excerpt"] {
            assert!(f.get(k).is_some(), "finding lacks {k}");
        }
        assert!(v.get("scanner").is_none());
        let back: Report = serde_json::from_value(v).unwrap();
        assert_eq!(back.ops, sample().ops);
    }

    #[test]
    fn verdict_follows_findings() {
        let mut r = sample();
        r.finish();
        assert!(!r.clean());
        r.findings.clear();
        r.finish();
        assert!(r.clean());
        assert_eq!(r.verdict, "clean");
    }
}
