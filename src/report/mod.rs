//! What a run tells afterwards: a human table, a JSON document (schema in the
//! README) and JUnit XML for CI systems.

mod contents;
pub mod guests;
mod human;
mod junit;
pub mod output;

use std::path::Path;

#[cfg(test)]
use crate::{check::Finding, stats::OpSummary};
pub use contents::{Report, SetupSummary};
#[cfg(test)]
use std::collections::BTreeMap;

pub use human::{findings_text, render as human, write_findings};
pub use junit::render as junit;

impl Report {
    pub fn write_junit(&self, path: &Path) -> std::io::Result<()> {
        contents::write_atomically(path, junit(self).as_bytes())
    }
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
        errors: vec![],
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
        r.errors.push("worker 3 failed".into());
        r.finish();
        assert!(!r.clean() && r.failed());
        assert_eq!(r.verdict, "error");
        r.findings = sample().findings;
        r.finish();
        assert_eq!(r.verdict, "findings", "a kernel finding outranks an error");
    }
}
