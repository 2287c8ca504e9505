//! Work equivalence: clean hours after a patch are evidence only if the
//! after kernel was put through the same work. A patch under which `move`
//! fails every time, or ops run at a tenth of the rate, earns clean hours
//! without racing anything.
//!
//! The rule, per op kind, on the trials that reported an op table (a guest
//! that crashed sends none): its ok ops per hour of those trials' suite
//! time, before and after. The after side falls short when its rate is
//! below `min_work` times the before rate. Kinds with fewer than `MIN_OK`
//! ok ops before are not judged: their rate is too noisy (at 30 a count's
//! Poisson spread is about 18%, far inside a factor of two). When the
//! before side has no op table at all (every guest crashed), the after side
//! falls short only where an op kind was issued `MIN_OK` times and never
//! succeeded. A racebench window that was armed after the patch and never
//! entered (its `counters` parameter) falls short too.

use super::numfmt::num;
use crate::report::guests::OpCount;
use crate::trials::Trials;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Ok ops an op kind needs before the patch for its rate to be compared.
pub const MIN_OK: u64 = 30;

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SideWork {
    pub issued: u64,
    pub ok: u64,
    /// Ok ops per hour of the suite time of trials with an op table; None
    /// without such time.
    pub ok_per_hour: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpWork {
    pub op: String,
    pub before: SideWork,
    pub after: SideWork,
    /// The after side fell short on this op kind.
    pub short: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WorkCheck {
    pub min_work: f64,
    /// Suite hours of the trials whose op tables are summed, per side.
    pub before_hours: f64,
    pub after_hours: f64,
    pub ops: Vec<OpWork>,
    /// Why the sides are incomparable; empty when they compare.
    pub short: Vec<String>,
    #[serde(skip)]
    pub notes: Vec<String>,
}

impl WorkCheck {
    pub fn incomparable(&self) -> bool {
        !self.short.is_empty()
    }

    pub fn render(&self) -> String {
        if self.ops.is_empty() {
            return String::new();
        }
        let mut o = format!(
            "work (ok ops per suite hour of the trials that reported, {} h before, {} h after; \
             after below {} of before falls short):\n",
            num(self.before_hours),
            num(self.after_hours),
            num(self.min_work)
        );
        let _ = writeln!(o, "  {:<14} {:>32}   {:>32}", "", "before", "after");
        let _ = writeln!(
            o,
            "  {:<14} {:>10} {:>10} {:>10}   {:>10} {:>10} {:>10}",
            "op", "issued", "ok", "ok/h", "issued", "ok", "ok/h"
        );
        for w in &self.ops {
            let rate = |s: &SideWork| s.ok_per_hour.map_or_else(|| "-".into(), num);
            let _ = writeln!(
                o,
                "  {:<14} {:>10} {:>10} {:>10}   {:>10} {:>10} {:>10}{}",
                w.op,
                w.before.issued,
                w.before.ok,
                rate(&w.before),
                w.after.issued,
                w.after.ok,
                rate(&w.after),
                if w.short { "  SHORT" } else { "" }
            );
        }
        o
    }
}

/// Summed op tables and the hours they cover.
fn tables(t: &Trials) -> (BTreeMap<String, OpCount>, f64) {
    let mut m: BTreeMap<String, OpCount> = BTreeMap::new();
    let mut secs = 0.0;
    for x in &t.trials {
        let Some(w) = &x.work else { continue };
        secs += x.exposure_s;
        for (k, c) in w {
            let e = m.entry(k.clone()).or_default();
            e.issued += c.issued;
            e.ok += c.ok;
        }
    }
    (m, secs / 3600.0)
}

fn side(c: Option<&OpCount>, hours: f64) -> SideWork {
    let c = c.copied().unwrap_or_default();
    SideWork {
        issued: c.issued,
        ok: c.ok,
        ok_per_hour: (hours > 0.0).then(|| c.ok as f64 / hours),
    }
}

/// racebench-style counters: `MODULE.PARAM SCENARIO armed=1 entered=N ...`.
/// Returns, per `MODULE.PARAM SCENARIO` armed in some trial, the entries
/// summed over the trials.
fn windows(t: &Trials) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for x in &t.trials {
        for line in &x.module_state {
            let mut w = line.split_whitespace();
            let (Some(param), Some(scenario)) = (w.next(), w.next()) else {
                continue;
            };
            let fields: BTreeMap<&str, &str> = w.filter_map(|f| f.split_once('=')).collect();
            let (Some(armed), Some(entered)) = (fields.get("armed"), fields.get("entered")) else {
                continue;
            };
            if *armed != "1" {
                continue;
            }
            let n: u64 = entered.parse().unwrap_or(0);
            *m.entry(format!("{param} {scenario}")).or_default() += n;
        }
    }
    m
}

pub(super) fn compare(before: &Trials, after: &Trials, min_work: f64) -> WorkCheck {
    let (b, bh) = tables(before);
    let (a, ah) = tables(after);
    let mut c = WorkCheck {
        min_work,
        before_hours: bh,
        after_hours: ah,
        ..WorkCheck::default()
    };
    let kinds: Vec<&String> = {
        let mut k: Vec<&String> = b.keys().chain(a.keys()).collect();
        k.sort();
        k.dedup();
        k
    };
    let before_has = bh > 0.0 && !b.is_empty();
    let after_has = ah > 0.0 && !a.is_empty();
    for k in kinds {
        let (bw, aw) = (side(b.get(k), bh), side(a.get(k), ah));
        let mut short = None;
        if before_has && after_has && bw.ok >= MIN_OK {
            let (rb, ra) = (bw.ok as f64 / bh, aw.ok as f64 / ah);
            if ra < min_work * rb {
                short = Some(format!(
                    "{k}: {} ok/h after against {} ok/h before ({} of {} issued ok after)",
                    num(ra),
                    num(rb),
                    aw.ok,
                    aw.issued
                ));
            }
        } else if !before_has && after_has && aw.issued >= MIN_OK && aw.ok == 0 {
            short = Some(format!(
                "{k}: none of {} issued succeeded after (the before side has no op table to \
                 compare rates with)",
                aw.issued
            ));
        }
        c.ops.push(OpWork {
            op: k.clone(),
            before: bw,
            after: aw,
            short: short.is_some(),
        });
        c.short.extend(short);
    }
    for (w, entered) in windows(after) {
        if entered == 0 {
            c.short.push(format!(
                "{w}: the window was armed after the patch and never entered"
            ));
        }
    }
    if !before_has && !after.trials.is_empty() {
        c.notes.push(
            "work: the before side has no op table (its runs crashed before reporting): rates \
             not compared, only op kinds that never succeeded after"
                .into(),
        );
    }
    if before_has && !after_has && !after.trials.is_empty() {
        c.notes
            .push("work: the after side has no op table: its work was not compared".into());
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trials::Trial;

    fn trial(secs: f64, ops: &[(&str, u64, u64)]) -> Trial {
        Trial {
            exposure_s: secs,
            work: Some(
                ops.iter()
                    .map(|(k, issued, ok)| {
                        (
                            k.to_string(),
                            OpCount {
                                issued: *issued,
                                ok: *ok,
                            },
                        )
                    })
                    .collect(),
            ),
            ..Trial::default()
        }
    }

    fn trials(t: Vec<Trial>) -> Trials {
        Trials {
            trials: t,
            not_run: vec![],
        }
    }

    #[test]
    fn the_same_work_compares() {
        let b = trials(vec![trial(
            3600.0,
            &[("move", 1000, 400), ("mtu", 900, 800)],
        )]);
        let a = trials(vec![
            trial(1800.0, &[("move", 500, 190), ("mtu", 450, 420)]),
            trial(1800.0, &[("move", 500, 210), ("mtu", 450, 380)]),
        ]);
        let c = compare(&b, &a, 0.5);
        assert!(!c.incomparable(), "{:?}", c.short);
        assert_eq!(c.ops.len(), 2);
        assert_eq!(c.ops[0].after.ok, 400);
        assert_eq!(c.ops[0].after.ok_per_hour, Some(400.0));
    }

    #[test]
    fn an_op_kind_that_stopped_succeeding_is_short() {
        let b = trials(vec![trial(
            3600.0,
            &[("move", 1000, 400), ("mtu", 900, 800)],
        )]);
        let a = trials(vec![trial(3600.0, &[("move", 1000, 0), ("mtu", 900, 800)])]);
        let c = compare(&b, &a, 0.5);
        assert!(c.incomparable());
        assert_eq!(c.short.len(), 1);
        assert!(
            c.short[0].starts_with("move: 0 ok/h after against 400 ok/h"),
            "{}",
            c.short[0]
        );
        assert!(c.render().contains("SHORT"));
    }

    #[test]
    fn a_tenth_of_the_rate_is_short_and_half_is_not() {
        let b = trials(vec![trial(3600.0, &[("mtu", 1000, 1000)])]);
        let tenth = trials(vec![trial(3600.0, &[("mtu", 100, 100)])]);
        assert!(compare(&b, &tenth, 0.5).incomparable());
        let half = trials(vec![trial(3600.0, &[("mtu", 500, 500)])]);
        assert!(!compare(&b, &half, 0.5).incomparable());
        assert!(compare(&b, &half, 0.6).incomparable());
        // An op kind the after side never issued at all.
        let none = trials(vec![trial(3600.0, &[("move", 10, 10)])]);
        assert!(compare(&b, &none, 0.5).incomparable());
    }

    #[test]
    fn rare_kinds_are_not_judged_and_crashed_trials_carry_no_table() {
        let b = trials(vec![trial(3600.0, &[("rename", 50, 20)])]);
        let a = trials(vec![trial(3600.0, &[("rename", 50, 0)])]);
        assert!(!compare(&b, &a, 0.5).incomparable());
        // The before guests all crashed: only never-succeeding kinds count.
        let crashed = trials(vec![Trial {
            exposure_s: 100.0,
            ..Trial::default()
        }]);
        let a = trials(vec![trial(3600.0, &[("move", 500, 0), ("mtu", 500, 3)])]);
        let c = compare(&crashed, &a, 0.5);
        assert_eq!(c.short.len(), 1, "{:?}", c.short);
        assert!(c.short[0].starts_with("move: none of 500"));
        assert!(!c.notes.is_empty());
    }

    #[test]
    fn a_window_armed_and_never_entered_after_is_short() {
        let mut t = trial(600.0, &[]);
        t.module_state = vec![
            "racebench.counters vmove armed=1 entered=0 hit=0 averted=0 skipped=0".into(),
            "racebench.counters media armed=0 entered=0 hit=0 averted=0 skipped=0".into(),
        ];
        let mut u = t.clone();
        let c = compare(&trials(vec![]), &trials(vec![t.clone(), u.clone()]), 0.5);
        assert_eq!(
            c.short,
            ["racebench.counters vmove: the window was armed after the patch and never entered"]
        );
        u.module_state[0] = u.module_state[0].replace("entered=0", "entered=7");
        assert!(!compare(&trials(vec![]), &trials(vec![t, u]), 0.5).incomparable());
    }
}
