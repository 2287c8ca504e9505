//! JUnit XML: one test case per check (failing with its findings) and one per
//! op kind (carrying its counts), so CI systems show a run like a test suite.

use super::contents::Report;
use std::fmt::Write;

pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            // XML 1.0 has no way to carry most control characters.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => o.push('?'),
            c => o.push(c),
        }
    }
    o
}

const CHECKS: &[(&str, &str)] = &[
    (
        "kernel-log",
        "kernel log has no panic, warning or lock-order reversal",
    ),
    ("hang", "no op hung"),
    ("leftover", "nothing the run created is left"),
];

pub fn render(r: &Report) -> String {
    let suite = format!("ifstress.{}", r.suite);
    // Console findings (panic, fatal-trap, warning ...) fail the kernel-log check.
    let check_of = |f: &crate::check::Finding| {
        if f.from_kernel_log() {
            "kernel-log".to_string()
        } else {
            f.kind.clone()
        }
    };
    let mut kinds: Vec<String> = CHECKS.iter().map(|(k, _)| k.to_string()).collect();
    for f in &r.findings {
        let k = check_of(f);
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    let failures = kinds
        .iter()
        .filter(|k| r.findings.iter().any(|f| check_of(f) == **k))
        .count();
    // ifstress's own failures: one erroring testcase, so a CI dashboard
    // does not show a run that exited 3 as green.
    let errors = usize::from(!r.errors.is_empty());
    let tests = kinds.len() + r.ops.len() + errors;
    let mut o = String::new();
    let _ = writeln!(o, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        o,
        r#"<testsuites tests="{tests}" failures="{failures}" errors="{errors}" time="{:.3}">"#,
        r.duration_s
    );
    let _ = writeln!(
        o,
        r#"  <testsuite name="{}" tests="{tests}" failures="{failures}" errors="{errors}" time="{:.3}" timestamp="{}">"#,
        escape(&suite),
        r.duration_s,
        escape(&r.started_at)
    );
    let _ = writeln!(o, "    <properties>");
    for (k, v) in [
        ("platform", r.platform.clone()),
        ("kernel", r.kernel.clone()),
        ("seed", r.seed.to_string()),
        ("tag", r.tag.clone()),
        ("interrupted", r.interrupted.to_string()),
    ] {
        let _ = writeln!(o, r#"      <property name="{k}" value="{}"/>"#, escape(&v));
    }
    let _ = writeln!(o, "    </properties>");
    for kind in &kinds {
        let desc = CHECKS
            .iter()
            .find(|(k, _)| k == kind)
            .map_or(kind.as_str(), |(_, d)| d);
        let _ = write!(
            o,
            r#"    <testcase classname="{}.check" name="{}""#,
            escape(&suite),
            escape(desc)
        );
        let found: Vec<_> = r.findings.iter().filter(|f| check_of(f) == *kind).collect();
        if found.is_empty() {
            let _ = writeln!(o, "/>");
            continue;
        }
        let _ = writeln!(o, ">");
        for f in found {
            let known = f
                .known_issue
                .as_deref()
                .map(|k| format!("known: {k}\n"))
                .unwrap_or_else(|| "NEW\n".into());
            let _ = writeln!(
                o,
                r#"      <failure type="{}" message="{}">{}{}</failure>"#,
                escape(&f.kind),
                escape(&f.title),
                escape(&known),
                escape(&f.excerpt)
            );
        }
        let _ = writeln!(o, "    </testcase>");
    }
    if errors > 0 {
        let _ = writeln!(
            o,
            r#"    <testcase classname="{}.ifstress" name="the run itself"><error type="ifstress" message="{}">{}</error></testcase>"#,
            escape(&suite),
            escape(&r.errors[0]),
            escape(&r.errors.join("\n"))
        );
    }
    for (name, s) in &r.ops {
        let errs: Vec<String> = s.errors.iter().map(|(e, n)| format!("{e}={n}")).collect();
        let _ = writeln!(
            o,
            r#"    <testcase classname="{}.op" name="{}"><system-out>count={} ok={} skipped={} p50_us={} p99_us={} max_us={} errors: {}</system-out></testcase>"#,
            escape(&suite),
            escape(name),
            s.count,
            s.ok,
            s.skipped,
            s.p50_us,
            s.p99_us,
            s.max_us,
            escape(&errs.join(" "))
        );
    }
    let _ = writeln!(o, "  </testsuite>\n</testsuites>");
    o
}

#[cfg(test)]
mod tests {
    #[test]
    fn junit_escapes_and_fails_the_right_check() {
        let x = super::render(&super::super::sample());
        assert!(x.starts_with("<?xml"));
        assert!(x.contains(r#"failures="1""#), "{x}");
        assert!(
            x.contains("message=\"panic: &lt;boom&gt; &amp; &quot;x&quot;\""),
            "{x}"
        );
        assert!(x.contains(r#"name="move""#));
        assert!(!x.contains("<boom>"));
        assert_eq!(x.matches("<testcase").count(), 4);
        assert_eq!(super::escape("a\u{1}b"), "a?b");
        assert!(x.contains(r#"errors="0""#));
        let mut r = super::super::sample();
        r.errors
            .push("worker 2 (loop a) failed before its first op: EMFILE".into());
        let x = super::render(&r);
        assert!(x.contains(r#"errors="1""#), "{x}");
        assert!(
            x.contains("<error type=\"ifstress\" message=\"worker 2"),
            "{x}"
        );
    }
}
