//! The bench's table.

use super::results::BenchReport;
use std::fmt::Write;

fn opt(x: Option<f64>, suffix: &str) -> String {
    x.map_or_else(|| "n/a".into(), |v| format!("{v:.1}{suffix}"))
}

pub fn render(r: &BenchReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "ifstress bench on {} ({}), {} CPUs, {:.0} s per measurement{}",
        r.platform,
        r.kernel,
        r.cpus,
        r.seconds_per_measure,
        if r.interrupted { " (interrupted)" } else { "" }
    );
    let _ = writeln!(
        o,
        "{:<15} {:>10} {:>9} {:>10} {:>9} {:>9} {:>11} {:>11}  scaling (workers: x)",
        "case", "ifstress/s", "shell/s", "batch/s", "a/b", "a/c", "user us/op", "sys us/op"
    );
    for c in &r.cases {
        let one = c.ifstress.iter().find(|x| x.workers == 1);
        let scaling: Vec<String> = c
            .scaling
            .iter()
            .filter(|(w, _)| **w != 1)
            .map(|(w, x)| format!("{w}: {x:.2}"))
            .collect();
        let _ = writeln!(
            o,
            "{:<15} {:>10} {:>9} {:>10} {:>9} {:>9} {:>11} {:>11}  {}",
            c.case.as_str(),
            opt(one.map(|x| x.rate.ops_per_s), ""),
            opt(c.shell.as_ref().map(|s| s.ops_per_s), ""),
            opt(c.batch.as_ref().map(|s| s.ops_per_s), ""),
            opt(c.vs_shell, "x"),
            opt(c.vs_batch, "x"),
            opt(one.map(|x| x.rate.user_us_per_op), ""),
            opt(one.map(|x| x.rate.sys_us_per_op), ""),
            scaling.join(", ")
        );
        for n in &c.notes {
            let _ = writeln!(o, "  note: {n}");
        }
    }
    match r
        .cases
        .iter()
        .map(|c| c.batch_label.as_str())
        .find(|l| !l.is_empty())
    {
        Some(label) => {
            let _ = writeln!(
                o,
                "a = ifstress, 1 worker; b = shell loop, one process per op; c = {label}, one process, sequential"
            );
        }
        None if !r.cases.is_empty() => {
            let _ = writeln!(o, "a = ifstress, 1 worker (baselines not run)");
        }
        None => {}
    }
    if let Some(f) = &r.footprint {
        let _ = writeln!(
            o,
            "footprint: {} links, {} stacks, {} workers: {} ops in {:.1} s; cpu user {:.2} s, sys {:.2} s (user {:.1}%); rss peak {} KiB; stacks gone {}",
            f.links,
            f.stacks,
            f.workers,
            f.ops,
            f.seconds,
            f.user_s,
            f.sys_s,
            100.0 * f.user_share,
            f.max_rss_kib,
            f.stacks_gone_after_s
                .map_or_else(|| "n/a".into(), |t| format!("{t:.2} s after teardown"))
        );
    }
    if let Some(s) = &r.soak {
        let m = &s.resources;
        let _ = writeln!(
            o,
            "soak: `{}` with the journal, {} ops in {:.0} s; rss {} KiB at warm-up, {} KiB at the end ({:+} KiB, {:+.1} KiB/min), peak {} KiB",
            s.suite,
            s.ops,
            s.seconds,
            m.rss_warm_kib,
            m.rss_last_kib,
            m.rss_growth_kib,
            m.rss_slope_kib_per_min,
            m.max_rss_kib
        );
    }
    if !r.findings.is_empty() {
        let _ = writeln!(o, "kernel findings during the bench:");
        o.push_str(&crate::report::findings_text(&r.findings));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{CaseResult, IfstressRate, Rate, Soak};
    use crate::platform::baseline::Case;

    #[test]
    fn table_names_missing_baselines_and_prints_the_soak() {
        let mut r = BenchReport {
            platform: "linux".into(),
            kernel: "test".into(),
            cpus: 2,
            seconds_per_measure: 1.0,
            cases: vec![CaseResult {
                case: Case::Media,
                heavy: false,
                ifstress: vec![IfstressRate {
                    workers: 1,
                    rate: Rate {
                        ops_per_s: 1000.0,
                        ..Rate::default()
                    },
                    ok_share: 1.0,
                    max_rss_kib: 1,
                }],
                shell: None,
                batch: None,
                batch_label: String::new(),
                vs_shell: None,
                vs_batch: None,
                scaling: Default::default(),
                notes: vec![],
            }],
            footprint: None,
            soak: Some(Soak {
                suite: "all".into(),
                ops: 1234,
                seconds: 600.0,
                resources: crate::resources::Resources {
                    rss_warm_kib: 22_000,
                    rss_last_kib: 22_100,
                    rss_growth_kib: 100,
                    rss_slope_kib_per_min: 11.1,
                    max_rss_kib: 22_500,
                    ..Default::default()
                },
            }),
            findings: vec![],
            interrupted: false,
        };
        let t = render(&r);
        assert!(
            t.contains("a = ifstress, 1 worker (baselines not run)"),
            "{t}"
        );
        assert!(!t.contains("c = ,"), "{t}");
        assert!(
            t.contains("soak: `all` with the journal, 1234 ops in 600 s; rss 22000 KiB at warm-up, 22100 KiB at the end (+100 KiB, +11.1 KiB/min), peak 22500 KiB"),
            "{t}"
        );
        r.cases[0].batch_label = "ip -batch".into();
        assert!(render(&r).contains("c = ip -batch, one process, sequential"));
    }
}
