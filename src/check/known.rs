//! Known bugs: `suites/known-issues.toml`, compiled in, matched against
//! findings so that a report says "known: PR NNN" or "NEW".

use super::finding::Finding;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Issue {
    #[serde(default)]
    pub os: Option<String>,
    pub id: String,
    pub summary: String,
    #[serde(default)]
    pub kinds: Vec<String>,
    #[serde(default)]
    pub frames: Vec<String>,
    #[serde(default)]
    pub any_frame: Vec<String>,
    #[serde(default)]
    pub title: Option<String>,
    pub basis: String,
}

#[derive(Debug, Deserialize)]
struct File {
    issue: Vec<Issue>,
}

pub const TEXT: &str = include_str!("../../suites/known-issues.toml");

pub fn load() -> Vec<Issue> {
    toml::from_str::<File>(TEXT)
        .expect("known-issues.toml is validated by its test")
        .issue
}

impl Issue {
    pub fn matches(&self, f: &Finding) -> bool {
        if !self.kinds.is_empty() && !self.kinds.contains(&f.kind) {
            return false;
        }
        if let Some(t) = &self.title {
            if f.title.contains(t.as_str()) {
                return true;
            }
            if self.frames.is_empty() && self.any_frame.is_empty() {
                return false;
            }
        }
        if self.frames.is_empty() && self.any_frame.is_empty() {
            return false;
        }
        let has = |n: &String| f.frames.contains(n) || f.guilty_frame.as_ref() == Some(n);
        self.frames.iter().all(has) && (self.any_frame.is_empty() || self.any_frame.iter().any(has))
    }
}

/// The issue a finding is: among the rules it matches, the one that names
/// the guilty frame itself wins (a trace through if_vmove that faults in
/// epair_qflush is the epair bug, not the generic vmove one).
pub fn best<'a>(issues: &'a [Issue], f: &Finding) -> Option<&'a Issue> {
    best_of(&issues.iter().collect::<Vec<_>>(), f)
}

fn best_of<'a>(issues: &[&'a Issue], f: &Finding) -> Option<&'a Issue> {
    let names_guilty = |i: &&Issue| {
        f.guilty_frame
            .as_ref()
            .or(f.frames.first())
            .is_some_and(|g| i.any_frame.contains(g) || i.frames.contains(g))
    };
    let all: Vec<&Issue> = issues.iter().copied().filter(|i| i.matches(f)).collect();
    all.iter()
        .copied()
        .find(names_guilty)
        .or(all.first().copied())
}

/// Mark each finding with the known issue it matches; `os` (a run's
/// platform) leaves out rules for other systems.
pub fn annotate(findings: &mut [Finding], issues: &[Issue], os: Option<&str>) {
    let usable: Vec<&Issue> = issues
        .iter()
        .filter(|i| os.is_none() || i.os.is_none() || i.os.as_deref() == os)
        .collect();
    for f in findings {
        if let Some(i) = best_of(&usable, f) {
            f.known_issue = Some(format!("{}: {}", i.id, i.summary));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(kind: &str, frames: &[&str]) -> Finding {
        let mut f = Finding::new(kind, "x", "");
        f.frames = frames.iter().map(|s| s.to_string()).collect();
        f
    }

    #[test]
    fn file_loads_and_rules_match_their_bugs_only() {
        let issues = load();
        assert!(issues.len() >= 8);
        let id = |f: &Finding| best(&issues, f).map(|i| i.id.clone());
        // D20868's recorded backtrace.
        let f = finding(
            "fatal-trap",
            &[
                "epair_qflush",
                "if_down",
                "if_detach_internal",
                "if_vmove",
                "vnet_if_return",
                "vnet_destroy",
            ],
        );
        assert_eq!(id(&f).as_deref(), Some("D20868"));
        // D54728 / PR 279653's recorded in6_selecthlim fault.
        let f = finding(
            "fatal-trap",
            &["in6_selecthlim", "sctp_lowlevel_chunk_output", "ip6_input"],
        );
        assert_eq!(id(&f).as_deref(), Some("PR 279653"));
        let f = finding(
            "fatal-trap",
            &["lagg_port_state", "if_down", "if_detach", "tap_destroy"],
        );
        assert_eq!(id(&f).as_deref(), Some("PR 244168"));
        let f = finding(
            "fatal-trap",
            &["if_unlink_ifnet", "if_detach_internal", "if_vmove"],
        );
        assert_eq!(id(&f).as_deref(), Some("PR 292993"));
        let mut d = Finding::new(
            "dying-stack",
            "jail ifstress-ab12-h0.ifstress-ab12-c0 still dying 30 s after removal (tun-open 4 times inside)",
            "",
        );
        d.frames.clear();
        assert_eq!(id(&d).as_deref(), Some("D51525"));
        // Rules for FreeBSD stay out of a Linux run's findings.
        let mut held = vec![d.clone()];
        annotate(&mut held, &issues, Some("linux"));
        assert_eq!(held[0].known_issue, None);
        annotate(&mut held, &issues, Some("freebsd"));
        assert!(
            held[0]
                .known_issue
                .as_deref()
                .unwrap()
                .starts_with("D51525")
        );
        // Unrelated crashes stay NEW.
        assert_eq!(
            id(&finding("fatal-trap", &["atrtc_settime", "resettodr"])),
            None
        );
        assert_eq!(id(&finding("fatal-trap", &[])), None);
        assert_eq!(id(&finding("panic", &["if_vmove"])), None);
    }
}
