//! Known bugs: `suites/known-issues.toml`, compiled in, matched against
//! findings so that a report says "known: PR NNN" or "NEW".
//!
//! A rule is about kernels, not only about stack shapes: each gives the
//! `kern.osreldate` (__FreeBSD_version) ranges, per branch, where the bug is
//! known to be there. A finding is labelled known only when the kernel that
//! produced it is inside one of them; outside them, or when the kernel's
//! version is not known, the same shape is something else: NEW. Rules that
//! name a race class rather than a fixed bug say `any_kernel = true`.

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
    /// Where the bug is known to be: `kern.osreldate` ranges, per branch.
    /// Required (an empty list: no kernel is known to have it, see `versions`).
    pub kernels: Vec<Range>,
    /// A race class or a seeded race: any kernel of the rule's system.
    #[serde(default)]
    pub any_kernel: bool,
    /// Why these ranges: the fixes and versions they rest on, and what could
    /// not be placed.
    pub versions: String,
    pub basis: String,
}

/// An inclusive `kern.osreldate` range on one branch ("main", "stable/14",
/// "releng/14.3" ...). The branch is what the range is read against; the
/// version numbers decide.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Range {
    pub branch: String,
    pub from: i64,
    pub to: i64,
}

impl Range {
    pub fn contains(&self, osreldate: i64) -> bool {
        (self.from..=self.to).contains(&osreldate)
    }

    /// What is wrong with the range, if anything: bounds in order, and a
    /// stable or release branch's bounds inside its major version
    /// (__FreeBSD_version is major * 100000 + ...).
    pub fn defect(&self) -> Option<String> {
        if self.from > self.to {
            return Some(format!(
                "{}: from {} > to {}",
                self.branch, self.from, self.to
            ));
        }
        let major = self
            .branch
            .strip_prefix("stable/")
            .or_else(|| self.branch.strip_prefix("releng/"))
            .map(|v| v.split('.').next().unwrap_or(v));
        match major.map(str::parse::<i64>) {
            Some(Ok(m)) if self.from / 100_000 != m || self.to / 100_000 != m => Some(format!(
                "{}: {}..={} is not a {m}.x version",
                self.branch, self.from, self.to
            )),
            Some(Err(_)) => Some(format!("{}: not a branch name", self.branch)),
            None if self.branch != "main" => Some(format!(
                "{}: a branch is main, stable/N or releng/N.M",
                self.branch
            )),
            _ => None,
        }
    }
}

/// The kernel a finding came from, as far as it is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kernel<'a> {
    /// The run's platform ("freebsd", "linux"); `None` applies every
    /// system's rules (`ifstress triage` of a file).
    pub os: Option<&'a str>,
    /// `kern.osreldate`; `None` when not known, and then only rules for any
    /// kernel can call a finding known.
    pub osreldate: Option<i64>,
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
    /// Whether the bug is known to be in `kernel`: a rule for any kernel of
    /// its system, or one of its ranges holds the kernel's version.
    pub fn applies_to(&self, kernel: Kernel) -> bool {
        let os = kernel.os.is_none() || self.os.is_none() || self.os.as_deref() == kernel.os;
        os && (self.any_kernel
            || kernel
                .osreldate
                .is_some_and(|v| self.kernels.iter().any(|r| r.contains(v))))
    }

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

/// Mark each finding with the known issue it matches among the rules that
/// apply to `kernel`; any other finding stays NEW.
pub fn annotate(findings: &mut [Finding], issues: &[Issue], kernel: Kernel) {
    let usable: Vec<&Issue> = issues.iter().filter(|i| i.applies_to(kernel)).collect();
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
            assert!(!i.versions.trim().is_empty(), "{}", i.id);
            assert!(!i.basis.trim().is_empty(), "{}", i.id);
            // A rule says where the bug is, or that it is a race class; one
            // whose kernels cannot be placed says so, and never marks.
            assert!(!i.any_kernel || i.kernels.is_empty(), "{}", i.id);
            if !i.any_kernel && i.kernels.is_empty() {
                assert!(i.versions.contains("cannot be placed"), "{}", i.id);
            }
            for r in &i.kernels {
                assert_eq!(r.defect(), None, "{}", i.id);
            }
            // FreeBSD's rules are keyed by version; only race classes and
            // Linux's seeded races are for any kernel.
            if i.os.as_deref() == Some("freebsd") && i.any_kernel {
                assert!(i.versions.contains("race class"), "{}", i.id);
            }
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
        // Shapes only: every rule, whatever kernel it names.
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
        let linux = Kernel {
            os: Some("linux"),
            osreldate: None,
        };
        annotate(&mut held, &issues, linux);
        assert_eq!(held[0].known_issue, None);
        annotate(&mut held, &issues, freebsd(Some(1_403_000)));
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

    fn freebsd(osreldate: Option<i64>) -> Kernel<'static> {
        Kernel {
            os: Some("freebsd"),
            osreldate,
        }
    }

    /// PR 285129's output-path fault, as a run's finding on `kernel`.
    fn pr285129_on(kernel: Kernel) -> Option<String> {
        let mut f = vec![finding(
            "fatal-trap",
            &["in6_selectsrc_socket", "in6_selectsrc", "udp6_output"],
        )];
        annotate(&mut f, &load(), kernel);
        f.pop().unwrap().known_issue
    }

    #[test]
    fn a_finding_is_known_only_on_a_kernel_inside_the_rules_ranges() {
        // In range: 14.2-RELEASE predates D49447.
        let k = pr285129_on(freebsd(Some(1_402_000)));
        assert!(
            k.as_deref().is_some_and(|k| k.starts_with("PR 285129")),
            "{k:?}"
        );
        // Out of range: 15.0-RELEASE, a kernel with D49447, reads NEW; and
        // so does 14.3-RELEASE, which the version cannot place before it.
        assert_eq!(pr285129_on(freebsd(Some(1_500_068))), None);
        assert_eq!(pr285129_on(freebsd(Some(1_403_000))), None);
        // A kernel whose version is not known: NEW.
        assert_eq!(pr285129_on(freebsd(None)), None);
        // ... as for a file triaged without a version.
        assert_eq!(
            pr285129_on(Kernel {
                os: None,
                osreldate: None
            }),
            None
        );
        // A race class is known on any kernel, its version known or not.
        let mut f = vec![finding("fatal-trap", &["lagg_media_status", "ifioctl"])];
        annotate(&mut f, &load(), freebsd(None));
        assert!(
            f[0].known_issue
                .as_deref()
                .unwrap()
                .starts_with("lagg ioctl")
        );
        // A rule whose kernels cannot be placed never marks.
        let mut f = vec![finding(
            "panic",
            &["vpanic", "panic", "if_detach", "tun_destroy", "tundtor"],
        )];
        annotate(&mut f, &load(), freebsd(Some(1_600_000)));
        assert_eq!(f[0].known_issue, None);
    }

    #[test]
    fn ranges_are_inclusive_and_checked_against_their_branch() {
        let r = |branch: &str, from, to| Range {
            branch: branch.into(),
            from,
            to,
        };
        let a = r("stable/14", 1_400_000, 1_402_000);
        assert!(a.contains(1_400_000) && a.contains(1_402_000));
        assert!(!a.contains(1_402_001) && !a.contains(1_399_999));
        assert_eq!(a.defect(), None);
        assert_eq!(r("releng/14.2", 1_402_000, 1_402_000).defect(), None);
        assert_eq!(r("main", 1_500_000, 1_600_010).defect(), None);
        assert!(r("stable/14", 1_500_000, 1_500_068).defect().is_some());
        assert!(r("stable/14", 1_402_000, 1_400_000).defect().is_some());
        assert!(r("head", 1_400_000, 1_400_001).defect().is_some());
        assert!(r("stable/x", 1_400_000, 1_400_001).defect().is_some());
    }
}
