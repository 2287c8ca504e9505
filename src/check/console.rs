//! Kernel console and message-buffer scanning: FreeBSD and Linux markers of
//! panics, traps, lock-order reversals, warnings and hangs. Fed line by line,
//! live during a run or from a saved transcript.

use super::Finding;

/// Lines kept after a marker as its excerpt.
const EXCERPT_LINES: usize = 40;

/// (marker, where it must stand). Order matters: the first match names the finding.
const MARKERS: &[(&str, Anchor)] = &[
    // FreeBSD
    ("Fatal trap ", Anchor::Start),
    ("Fatal double fault", Anchor::Start),
    ("panic: ", Anchor::Anywhere),
    ("lock order reversal:", Anchor::Start),
    ("acquiring duplicate lock of same type", Anchor::Start),
    (
        "with the following non-sleepable locks held:",
        Anchor::Anywhere,
    ),
    (
        "Sleeping thread ",
        Anchor::StartAndContains("owns a non-sleepable lock"),
    ),
    // Linux
    ("BUG: ", Anchor::Start),
    ("kernel BUG at ", Anchor::Start),
    ("WARNING: ", Anchor::Start),
    ("general protection fault", Anchor::Start),
    ("Oops: ", Anchor::Start),
    ("Kernel panic - not syncing", Anchor::Start),
    ("refcount_t: ", Anchor::Start),
    ("unregister_netdevice: waiting for ", Anchor::Start),
    (
        "INFO: task ",
        Anchor::StartAndContains(" blocked for more than "),
    ),
    ("INFO: rcu", Anchor::Start),
    ("rcu: INFO: ", Anchor::Start),
    ("INFO: trying to register non-static key", Anchor::Start),
    (
        "WARNING: possible circular locking dependency",
        Anchor::Anywhere,
    ),
    ("[ INFO: possible ", Anchor::Start),
    ("WARNING: inconsistent lock state", Anchor::Start),
];

#[derive(Clone, Copy)]
enum Anchor {
    Start,
    Anywhere,
    StartAndContains(&'static str),
}

/// Remove Linux's "[  12.345678]" and "[  12.345678][ T123]" prefixes.
pub fn strip_prefix(line: &str) -> &str {
    let mut s = line.trim_end_matches(['\r', '\n']);
    for _ in 0..2 {
        let t = s.trim_start();
        let stamp = t
            .strip_prefix('[')
            .and_then(|r| r.find(']'))
            .filter(|&end| {
                t[1..end + 1]
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'T' | 'C' | ' '))
            });
        match stamp {
            Some(end) => s = &t[end + 2..],
            None => break,
        }
    }
    s.trim_start()
}

fn marker(line: &str) -> Option<&'static str> {
    for (m, a) in MARKERS {
        let hit = match a {
            Anchor::Start => line.starts_with(m),
            Anchor::Anywhere => line.contains(m),
            Anchor::StartAndContains(c) => line.starts_with(m) && line.contains(c),
        };
        if hit {
            return Some(m);
        }
    }
    None
}

/// Incremental scanner: a finding opens at a marker line and collects the
/// lines after it until the excerpt is full or the next marker opens another.
#[derive(Debug, Clone, Default)]
pub struct Scanner {
    findings: Vec<Finding>,
    open: Option<usize>,
    open_lines: usize,
}

impl Scanner {
    pub fn feed(&mut self, raw: &str) {
        let line = strip_prefix(raw);
        if let Some(_m) = marker(line) {
            // A panic right after a trap belongs to the trap's finding.
            let continues = self.open.is_some_and(|i| {
                let t = &self.findings[i].title;
                (t.starts_with("Fatal trap")
                    || t.starts_with("BUG: ")
                    || t.starts_with("general protection"))
                    && (line.starts_with("panic: ")
                        || line.starts_with("Oops: ")
                        || line.starts_with("Kernel panic"))
            });
            if !continues {
                self.findings
                    .push(Finding::new("kernel-log", line.trim(), line));
                self.open = Some(self.findings.len() - 1);
                self.open_lines = 1;
                return;
            }
        }
        if let Some(i) = self.open {
            if self.open_lines < EXCERPT_LINES {
                let ex = &mut self.findings[i].excerpt;
                ex.push('\n');
                ex.push_str(line);
                self.open_lines += 1;
            } else {
                self.open = None;
            }
        }
    }

    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Findings deduplicated by title, in order of first appearance.
    pub fn into_findings(self) -> Vec<Finding> {
        let mut out: Vec<Finding> = Vec::new();
        for f in self.findings {
            if !out.iter().any(|o| o.title == f.title) {
                out.push(f);
            }
        }
        out
    }
}

pub fn scan(text: &str) -> Vec<Finding> {
    let mut s = Scanner::default();
    for l in text.lines() {
        s.feed(l);
    }
    s.into_findings()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// ../shared/fixtures: real transcripts from syzkaller's pkg/report
    /// testdata (github.com/google/syzkaller, Apache-2.0).
    fn fixtures() -> Option<Vec<(PathBuf, String, String)>> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures");
        if !dir.exists() {
            eprintln!(
                "SKIP: {} is absent; console fixture tests not run",
                dir.display()
            );
            return None;
        }
        let mut out = Vec::new();
        for os in ["freebsd", "linux"] {
            for e in std::fs::read_dir(dir.join(os)).unwrap() {
                let p = e.unwrap().path();
                let text = std::fs::read_to_string(&p).unwrap();
                let (header, body) = text.split_once("\n\n").unwrap_or(("", &text));
                let title = header
                    .lines()
                    .find_map(|l| l.strip_prefix("TITLE: "))
                    .unwrap_or("")
                    .to_string();
                out.push((p, title, body.to_string()));
            }
        }
        Some(out)
    }

    #[test]
    fn every_titled_fixture_yields_a_finding_and_untitled_ones_none() {
        let Some(fx) = fixtures() else { return };
        assert!(fx.len() >= 18);
        for (p, title, body) in fx {
            let found = scan(&body);
            if title.is_empty() {
                assert!(
                    found.is_empty(),
                    "{}: false finding {:?}",
                    p.display(),
                    found[0].title
                );
            } else {
                assert!(!found.is_empty(), "{}: missed `{title}`", p.display());
            }
        }
    }

    #[test]
    fn trap_and_its_panic_are_one_finding() {
        let Some(fx) = fixtures() else { return };
        let (_, _, body) = fx
            .iter()
            .find(|(p, _, _)| p.ends_with("syzkaller-freebsd-0.txt"))
            .unwrap();
        let f = scan(body);
        assert_eq!(f[0].title, "Fatal trap 12: page fault while in kernel mode");
        assert!(f[0].excerpt.contains("panic: page fault"));
        assert!(f[0].excerpt.contains("KDB: stack backtrace:"));
        assert_eq!(
            f.len(),
            1,
            "{:?}",
            f.iter().map(|x| &x.title).collect::<Vec<_>>()
        );
    }

    #[test]
    fn prefixes_are_stripped() {
        assert_eq!(
            strip_prefix("[  768.680053][ T1064] INFO: task x"),
            "INFO: task x"
        );
        assert_eq!(strip_prefix("[   47.712178] BUG: x"), "BUG: x");
        assert_eq!(strip_prefix("panic: x"), "panic: x");
        assert_eq!(strip_prefix("[link] up"), "[link] up");
    }
}
