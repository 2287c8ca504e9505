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
    /// Every one of these is among the finding's frames.
    #[serde(default)]
    pub frames: Vec<String>,
    /// At least one of these is.
    #[serde(default)]
    pub any_frame: Vec<String>,
    /// The function the finding blames is one of these.
    #[serde(default)]
    pub guilty: Vec<String>,
    /// None of these is among the frames (a path that cannot race).
    #[serde(default)]
    pub not_frames: Vec<String>,
    #[serde(default)]
    pub title: Option<String>,
    /// The kernels the rule applies to, and why those.
    pub kernels: String,
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

/// A rule's function name: exact, or a family when it ends in `*`
/// ("in6_selectsrc*" is in6_selectsrc, in6_selectsrc_socket ...).
fn named(pattern: &str, f: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => f.starts_with(prefix),
        None => f == pattern,
    }
}

impl Issue {
    /// Every condition the rule gives holds, and it gives at least one
    /// about the crash itself (title, frames or the blamed function).
    pub fn matches(&self, f: &Finding) -> bool {
        if !self.kinds.is_empty() && !self.kinds.contains(&f.kind) {
            return false;
        }
        let says_something = self.title.is_some()
            || !self.frames.is_empty()
            || !self.any_frame.is_empty()
            || !self.guilty.is_empty();
        let has = |n: &String| {
            f.frames.iter().any(|x| named(n, x))
                || f.guilty_frame.as_ref().is_some_and(|g| named(n, g))
        };
        says_something
            && self
                .title
                .as_ref()
                .is_none_or(|t| f.title.contains(t.as_str()))
            && self.frames.iter().all(has)
            && (self.any_frame.is_empty() || self.any_frame.iter().any(has))
            && (self.guilty.is_empty()
                || f.guilty_frame
                    .as_ref()
                    .is_some_and(|g| self.guilty.iter().any(|p| named(p, g))))
            && !self
                .not_frames
                .iter()
                .any(|n| f.frames.iter().any(|x| named(n, x)))
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
            .is_some_and(|g| {
                i.guilty
                    .iter()
                    .chain(&i.any_frame)
                    .chain(&i.frames)
                    .any(|p| named(p, g))
            })
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

    /// A finding with these frames, innermost first, blaming the first one
    /// that is not trap or panic machinery (as triage does).
    fn finding(kind: &str, frames: &[&str]) -> Finding {
        let mut f = Finding::new(kind, "x", "");
        f.frames = frames.iter().map(|s| s.to_string()).collect();
        f.guilty_frame = frames
            .iter()
            .find(|n| {
                ![
                    "vpanic",
                    "panic",
                    "trap_fatal",
                    "trap_pfault",
                    "trap",
                    "calltrap",
                ]
                .contains(n)
            })
            .map(|s| s.to_string());
        f
    }

    #[test]
    fn every_rule_says_which_kernels_and_why() {
        let issues = load();
        assert!(issues.len() >= 10);
        for i in &issues {
            assert!(!i.kernels.trim().is_empty(), "{}", i.id);
            assert!(!i.basis.trim().is_empty(), "{}", i.id);
            assert!(
                i.title.is_some()
                    || !i.frames.is_empty()
                    || !i.any_frame.is_empty()
                    || !i.guilty.is_empty(),
                "{} can never match",
                i.id
            );
        }
    }

    #[test]
    fn file_loads_and_rules_match_their_bugs_only() {
        let issues = load();
        let id = |f: &Finding| best(&issues, f).map(|i| i.id.clone());
        // D20868's recorded backtrace (an old kernel's).
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
        // PR 292993 on 14.x: the vmove re-attaches the freed ifnet.
        let f = finding(
            "fatal-trap",
            &[
                "if_attach_internal",
                "if_vmove",
                "vnet_if_return",
                "vnet_destroy",
            ],
        );
        assert_eq!(id(&f).as_deref(), Some("PR 292993"));
        let f = finding("fatal-trap", &["ifunit_ref", "ifioctl", "kern_ioctl"]);
        assert_eq!(id(&f).as_deref(), Some("PR 292993"));
        // ... not a fault inside the detach itself, which 14.x never shows.
        let f = finding(
            "fatal-trap",
            &["if_unlink_ifnet", "if_detach_internal", "if_vmove"],
        );
        assert_eq!(id(&f), None);
        // With D56374 the failed unlink panics in if_detach().
        let f = finding(
            "panic",
            &["vpanic", "panic", "if_detach", "ng_eiface_rmnode"],
        );
        assert_eq!(id(&f).as_deref(), Some("PR 292993"));
        // ... and from a tun close, not through SIOCIFDESTROY: e9fc0c538264.
        let f = finding(
            "panic",
            &["vpanic", "panic", "if_detach", "tun_destroy", "tundtor"],
        );
        assert_eq!(id(&f).as_deref(), Some("e9fc0c538264"));
        let f = finding(
            "panic",
            &[
                "vpanic",
                "panic",
                "if_detach",
                "tun_destroy",
                "tun_clone_destroy",
                "if_clone_destroy",
                "ifioctl",
            ],
        );
        assert_eq!(id(&f).as_deref(), Some("PR 292993"));
        // PR 285129: the output path's own lookups fault; ip6_output and
        // the detach side never share a stack.
        let f = finding(
            "fatal-trap",
            &[
                "in6_selectsrc_socket",
                "in6_selectsrc",
                "udp6_output",
                "sosend_dgram",
            ],
        );
        assert_eq!(id(&f).as_deref(), Some("PR 285129"));
        let f = finding(
            "fatal-trap",
            &["ip6_getpmtu_ctl", "ip6_getpmtu", "ip6_output"],
        );
        assert_eq!(id(&f).as_deref(), Some("PR 285129"));
        let f = finding(
            "fatal-trap",
            &["m_copydata_x", "ip6_output", "in6_ifdetach"],
        );
        assert_eq!(id(&f), None);
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
