//! The bench's table.

use super::BenchReport;
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
    if let Some(label) = r.cases.first().map(|c| c.batch_label.as_str()) {
        let _ = writeln!(
            o,
            "a = ifstress, 1 worker; b = shell loop, one process per op; c = {label}, one process, sequential"
        );
    }
    if let Some(f) = &r.footprint {
        let _ = writeln!(
            o,
            "footprint: {} links, {} stacks, {} workers: {} ops in {:.1} s; cpu user {:.2} s, sys {:.2} s (user {:.1}%); rss peak {} KiB",
            f.links,
            f.stacks,
            f.workers,
            f.ops,
            f.seconds,
            f.user_s,
            f.sys_s,
            100.0 * f.user_share,
            f.max_rss_kib
        );
    }
    if !r.findings.is_empty() {
        let _ = writeln!(o, "kernel findings during the bench:");
        o.push_str(&crate::report::findings_text(&r.findings));
    }
    o
}
