//! The table printed at the end of a run.

use super::contents::Report;
use std::fmt::Write;

fn fmt_us(us: u64) -> String {
    if us >= 1_000_000 {
        format!("{:.1}s", us as f64 / 1e6)
    } else if us >= 1000 {
        format!("{:.1}ms", us as f64 / 1e3)
    } else {
        format!("{us}us")
    }
}

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "suite {} on {} ({}), seed {}, tag {}, {:.1}s of {:.0}s{}, {} workers",
        r.suite,
        r.platform,
        r.kernel,
        r.seed,
        r.tag,
        r.duration_s,
        r.planned_duration_s,
        if r.interrupted { " (interrupted)" } else { "" },
        r.workers
    );
    if let Some(vm) = &r.vm {
        let _ = writeln!(
            o,
            "{} guest(s) of {} on {}, {:.3} guest-hours",
            vm.guests.len(),
            vm.image,
            if vm.hypervisor.is_empty() {
                format!("{:?}", vm.accel)
            } else {
                vm.hypervisor.clone()
            },
            vm.guest_hours
        );
        if !vm.accel_why.is_empty() {
            let _ = writeln!(o, "  accelerator: {}", vm.accel_why);
        }
        for g in &vm.guests {
            let _ = writeln!(
                o,
                "  guest {}: {} after {:.0} s, {} ops, console {}",
                g.index, g.outcome, g.seconds, g.ops, g.console
            );
        }
    }
    for n in &r.notes {
        let _ = writeln!(o, "note: {n}");
    }
    for e in &r.errors {
        let _ = writeln!(o, "error: {e}");
    }
    let _ = writeln!(
        o,
        "{:<16} {:>10} {:>9} {:>7} {:>8} {:>8} {:>8} {:>9}  errors",
        "op", "count", "ops/s", "ok%", "p50", "p99", "max", "skipped"
    );
    let secs = r.duration_s.max(0.001);
    for (name, s) in &r.ops {
        let mut errs: Vec<(&String, &u64)> = s.errors.iter().collect();
        errs.sort_by(|a, b| b.1.cmp(a.1));
        let errs: Vec<String> = errs
            .iter()
            .take(4)
            .map(|(e, n)| format!("{e} {n}"))
            .collect();
        let _ = writeln!(
            o,
            "{:<16} {:>10} {:>9.0} {:>6.1}% {:>8} {:>8} {:>8} {:>9}  {}",
            name,
            s.count,
            s.count as f64 / secs,
            100.0 * s.ok as f64 / s.count.max(1) as f64,
            fmt_us(s.p50_us),
            fmt_us(s.p99_us),
            fmt_us(s.max_us),
            s.skipped,
            errs.join(", ")
        );
    }
    let _ = writeln!(
        o,
        "{:<16} {:>10} {:>9.0}",
        "total",
        r.total_ops,
        r.total_ops as f64 / secs
    );
    let res = &r.resources;
    if res.rss_samples > 0 || res.user_s + res.sys_s > 0.0 {
        let _ = writeln!(
            o,
            "ifstress itself: cpu user {:.2}s sys {:.2}s (user {:.1}%), rss {} KiB peak, {:+} KiB after warm-up ({:+.1} KiB/min) over {} samples",
            res.user_s,
            res.sys_s,
            100.0 * res.user_share,
            res.max_rss_kib,
            res.rss_growth_kib,
            res.rss_slope_kib_per_min,
            res.rss_samples
        );
    }
    if let Some(t) = r.stacks_gone_after_s {
        let _ = writeln!(o, "removed stacks: all gone {t:.2}s after teardown");
    }
    for (w, ops) in &r.last_ops {
        let _ = writeln!(o, "last ops of {w}:");
        for l in ops {
            let _ = writeln!(o, "    {l}");
        }
    }
    if r.findings.is_empty() {
        let _ = writeln!(o, "verdict: clean (no kernel messages, hangs or leftovers)");
    } else {
        let _ = writeln!(o, "verdict: {} finding(s)", r.findings.len());
        o.push_str(&findings_text(&r.findings));
    }
    o
}

/// Findings as a kernel developer reads them: what, where, known or new.
pub fn findings_text(findings: &[crate::check::Finding]) -> String {
    let mut o = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write_findings(&mut o, findings);
    String::from_utf8(o).unwrap_or_default()
}

/// `findings_text`, written finding by finding: a hundred thousand findings
/// never stand in memory twice, as one string and as its copy on the way
/// out.
pub fn write_findings<W: std::io::Write>(
    o: &mut W,
    findings: &[crate::check::Finding],
) -> std::io::Result<()> {
    for f in findings {
        write!(o, "  [{}] {}", f.kind, f.title)?;
        if f.count > 1 {
            write!(o, " (x{})", f.count)?;
        }
        writeln!(o)?;
        match f.known_issue.as_deref() {
            Some(k) => write!(o, "      known: {k}")?,
            None => write!(o, "      NEW")?,
        }
        write!(o, "  signature {}", f.signature)?;
        if !f.first_seen.is_empty() {
            write!(o, "  first at {}", f.first_seen)?;
        }
        writeln!(o)?;
        if !f.frames.is_empty() {
            write!(o, "      frames: ")?;
            for (i, x) in f.frames.iter().take(8).enumerate() {
                if i > 0 {
                    write!(o, " < ")?;
                }
                write!(o, "{x}")?;
            }
            writeln!(o)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_lists_ops_errors_and_findings() {
        let t = super::render(&super::super::sample());
        assert!(t.contains("move"), "{t}");
        assert!(t.contains("ENODEV 2"), "{t}");
        assert!(t.contains("900us"), "{t}");
        assert!(t.contains("1.2ms"), "{t}");
        assert!(t.contains("[panic] panic: <boom>"), "{t}");
        assert!(t.contains("NEW  signature "), "{t}");
        assert!(
            t.contains("removed stacks: all gone 1.25s after teardown"),
            "{t}"
        );
    }
}
