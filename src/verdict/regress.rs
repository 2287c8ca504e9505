//! Regressions: crashes the patch added. A crash-like signature seen after
//! the patch and nowhere before it (not in a trial, a finding, or a guest
//! that panicked at boot) is new; one seen on both sides is a regression
//! when its after rate is significantly above its before rate, by the same
//! conditional test `fixed` uses, the other way round.

use super::{gathered::Gathered, numfmt::num, poisson::binomial_upper_tail};
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Regression {
    pub signature: String,
    pub title: Option<String>,
    pub guilty_frame: Option<String>,
    /// Before trials it occurred in.
    pub before_hits: usize,
    /// After trials it occurred in.
    pub after_hits: usize,
    /// After guests that never ran the suite yet showed it (boot panics).
    pub after_not_run: usize,
    /// "new": never before; "more": significantly more often after.
    pub why: &'static str,
    /// For "more": the one-sided p-value of so many after hits at equal rates.
    pub p_value: Option<f64>,
    /// Shares the judged crash's guilty frame or title: the same race,
    /// perhaps moved by the patch rather than closed.
    pub same_race_moved: bool,
}

impl Regression {
    pub fn render(&self) -> String {
        let mut o = format!(
            "  {} ({}): before {} hit(s), after {}",
            self.signature, self.why, self.before_hits, self.after_hits
        );
        if self.after_not_run > 0 {
            let _ = write!(o, " (+{} at boot)", self.after_not_run);
        }
        if let Some(p) = self.p_value {
            let _ = write!(o, ", p = {}", num(p));
        }
        let _ = write!(o, ": {}", self.title.as_deref().unwrap_or("(no title)"));
        if let Some(g) = &self.guilty_frame {
            let _ = write!(o, " [guilty: {g}]");
        }
        if self.same_race_moved {
            o.push_str(" -- the same race, moved?");
        }
        o.push('\n');
        o
    }
}

/// Every crash-like signature of the after side other than the judged one,
/// most after hits first.
pub(super) fn find(
    before: &Gathered,
    after: &Gathered,
    judged: Option<&str>,
    confidence: f64,
) -> Vec<Regression> {
    let alpha = 1.0 - confidence;
    let (t_b, t_a) = (before.exposure_s(), after.exposure_s());
    let judged_info = judged.and_then(|j| before.info(j).or_else(|| after.info(j)));
    let mut seen: std::collections::HashSet<&str> = Default::default();
    let sightings = after
        .trials
        .trials
        .iter()
        .flat_map(|t| t.hits.iter().map(|(s, _)| s.as_str()))
        .chain(
            after
                .trials
                .not_run
                .iter()
                .flat_map(|n| n.signatures.iter().map(String::as_str)),
        );
    let mut out = Vec::new();
    for s in sightings {
        if Some(s) == judged || seen.contains(s) || !after.is_crash_like(s) {
            continue;
        }
        seen.insert(s);
        let k_a = after.trials.hits(s);
        let k_b = before.trials.hits(s);
        let at_boot = after
            .trials
            .not_run
            .iter()
            .filter(|n| n.signatures.iter().any(|x| x == s))
            .count();
        let (why, p_value) = if !before.mentions(s) {
            ("new", None)
        } else {
            // Under equal rates each of the n hits falls after with chance
            // T_a / (T_a + T_b).
            let n = k_a + k_b;
            if n == 0 || t_a + t_b <= 0.0 {
                continue;
            }
            let p = binomial_upper_tail(n as u64, k_a as u64, t_a / (t_a + t_b));
            if p > alpha {
                continue;
            }
            ("more", Some(p))
        };
        let info = after.info(s).or_else(|| before.info(s));
        let title = info.map(|f| f.title.clone()).filter(|t| !t.is_empty());
        let guilty_frame = info.and_then(|f| f.guilty_frame.clone());
        let same_race_moved = judged_info.is_some_and(|j| {
            (j.guilty_frame.is_some() && j.guilty_frame == guilty_frame)
                || (!j.title.is_empty() && Some(&j.title) == title.as_ref())
        });
        out.push(Regression {
            signature: s.to_string(),
            title,
            guilty_frame,
            before_hits: k_b,
            after_hits: k_a,
            after_not_run: at_boot,
            why,
            p_value,
            same_race_moved,
        });
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.after_hits + r.after_not_run));
    out
}
