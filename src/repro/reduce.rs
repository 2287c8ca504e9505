//! The reductions `repro` tries on a suite, one at a time, and the order it
//! tries them in. Pure: a reduction maps a suite to a smaller valid suite or
//! to nothing; whether the crash survives it is the driver's business.

use crate::model::{LinkKind, OpKind};
use crate::suite::{self, Suite};
use serde::Serialize;
use std::collections::BTreeMap;

/// One way to make a suite smaller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reduction {
    /// Drop every op kind the crashed run's workers did not issue in their
    /// last journaled ops: one step that, when it holds, saves many.
    KeepJournaled {
        drop: Vec<OpKind>,
    },
    DropLoop {
        name: String,
    },
    DropOp {
        r#loop: String,
        op: OpKind,
    },
    DropLinkKind {
        link: LinkKind,
    },
    /// Halve a link kind's count (at least one stays).
    HalveLinks {
        link: LinkKind,
    },
    HalveStacks,
    HalveChurnStacks,
    /// Halve a loop's workers (at least one stays).
    HalveWorkers {
        r#loop: String,
    },
}

impl Reduction {
    pub fn describe(&self) -> String {
        match self {
            Reduction::KeepJournaled { drop } => {
                let names: Vec<&str> = drop.iter().map(|o| o.as_str()).collect();
                format!(
                    "drop the op kinds absent from the journal's last ops ({})",
                    names.join(", ")
                )
            }
            Reduction::DropLoop { name } => format!("drop loop `{name}`"),
            Reduction::DropOp { r#loop, op } => format!("drop op {op} from loop `{}`", r#loop),
            Reduction::DropLinkKind { link } => format!("drop the {link} links"),
            Reduction::HalveLinks { link } => format!("halve the {link} links"),
            Reduction::HalveStacks => "halve the stacks".into(),
            Reduction::HalveChurnStacks => "halve the churn stacks".into(),
            Reduction::HalveWorkers { r#loop } => format!("halve loop `{}`'s workers", r#loop),
        }
    }

    /// The reduced suite, or None when this reduction changes nothing or
    /// leaves a suite that would not load (an op with nothing to act on).
    pub fn apply(&self, s: &Suite) -> Option<Suite> {
        let mut c = s.clone();
        match self {
            Reduction::KeepJournaled { drop } => {
                for lp in &mut c.loops {
                    lp.ops.retain(|op, _| !drop.contains(op));
                }
                c.loops.retain(|l| !l.ops.is_empty());
            }
            Reduction::DropLoop { name } => c.loops.retain(|l| &l.name != name),
            Reduction::DropOp { r#loop, op } => {
                let lp = c.loops.iter_mut().find(|l| &l.name == r#loop)?;
                lp.ops.remove(op)?;
                c.loops.retain(|l| !l.ops.is_empty());
            }
            Reduction::DropLinkKind { link } => c.topology.links.retain(|l| l.kind != *link),
            Reduction::HalveLinks { link } => {
                let l = c.topology.links.iter_mut().find(|l| l.kind == *link)?;
                l.count /= 2;
                l.count = l.count.max(1);
            }
            Reduction::HalveStacks => c.topology.stacks /= 2,
            Reduction::HalveChurnStacks => c.topology.churn_stacks /= 2,
            Reduction::HalveWorkers { r#loop } => {
                let lp = c.loops.iter_mut().find(|l| &l.name == r#loop)?;
                lp.workers = (lp.workers / 2).max(1);
            }
        }
        if c == *s {
            return None;
        }
        // Only what `ifstress --suite repro.toml` would load is a candidate.
        suite::parse(&c.to_toml(), "candidate").ok()
    }
}

/// How many of each worker's newest journal lines the one big step keeps.
pub const RECENT: usize = 3;

/// How recently each op kind ran before the crash, from the journal lines
/// (`T wN #SEQ KIND LINK STACK RESULT LAT`), per worker oldest first: a
/// worker's newest line scores 1000, the one before 999, and so on; a kind
/// keeps its best score. Kinds that ran last are the likeliest parties to
/// the race; they are tried last for removal, and the first step keeps
/// only the kinds among each worker's `RECENT` newest ops.
pub fn journal_scores(last_ops: &BTreeMap<String, Vec<String>>) -> BTreeMap<OpKind, usize> {
    let mut scores = BTreeMap::new();
    for lines in last_ops.values() {
        for (d, line) in lines.iter().rev().enumerate() {
            let Some(kind) = line.split_whitespace().nth(3) else {
                continue;
            };
            if let Some(op) = OpKind::ALL.iter().find(|o| o.as_str() == kind) {
                let e = scores.entry(*op).or_insert(0);
                *e = (*e).max(1000usize.saturating_sub(d));
            }
        }
    }
    scores
}

fn recent(score: usize) -> bool {
    score > 1000 - RECENT
}

/// The reductions of one pass over `s`, in the order they are tried:
/// first the journal's one big step, then whole loops, single op kinds (the
/// ones the journal saw last, last), link kinds, then the sizes.
pub fn candidates(s: &Suite, scores: &BTreeMap<OpKind, usize>) -> Vec<Reduction> {
    let mut v = Vec::new();
    if !scores.is_empty() {
        let drop: Vec<OpKind> = s
            .op_kinds()
            .into_iter()
            .filter(|o| !scores.get(o).is_some_and(|s| recent(*s)))
            .collect();
        if !drop.is_empty() && drop.len() < s.op_kinds().len() {
            v.push(Reduction::KeepJournaled { drop });
        }
    }
    if s.loops.len() > 1 {
        // Loops whose ops the journal saw least go first: by their newest
        // op, then by how many of their kinds were among the newest.
        let mut loops: Vec<((usize, usize), &str)> = s
            .loops
            .iter()
            .map(|l| {
                let best = l.ops.keys().filter_map(|o| scores.get(o)).max();
                let newest = l
                    .ops
                    .keys()
                    .filter(|o| scores.get(o).is_some_and(|s| recent(*s)))
                    .count();
                ((best.copied().unwrap_or(0), newest), l.name.as_str())
            })
            .collect();
        loops.sort_by_key(|(score, _)| *score);
        for (_, name) in loops {
            v.push(Reduction::DropLoop { name: name.into() });
        }
    }
    let mut ops: Vec<(usize, &str, OpKind)> = s
        .loops
        .iter()
        .filter(|l| l.ops.len() > 1)
        .flat_map(|l| {
            l.ops
                .keys()
                .map(|o| (scores.get(o).copied().unwrap_or(0), l.name.as_str(), *o))
        })
        .collect();
    ops.sort_by_key(|(score, _, _)| *score);
    for (_, name, op) in ops {
        v.push(Reduction::DropOp {
            r#loop: name.into(),
            op,
        });
    }
    if s.topology.links.len() > 1 {
        for l in &s.topology.links {
            v.push(Reduction::DropLinkKind { link: l.kind });
        }
    }
    for l in &s.topology.links {
        if l.count > 1 {
            v.push(Reduction::HalveLinks { link: l.kind });
        }
    }
    if s.topology.stacks > 0 {
        v.push(Reduction::HalveStacks);
    }
    if s.topology.churn_stacks > 0 {
        v.push(Reduction::HalveChurnStacks);
    }
    for l in &s.loops {
        if l.workers > 1 {
            v.push(Reduction::HalveWorkers {
                r#loop: l.name.clone(),
            });
        }
    }
    v
}

/// The next reduction to try on the current best: the first of a fresh
/// pass that applies and was not refused before. A kept reduction is gone
/// from the next pass by itself (its loop or op is gone), except halvings,
/// which repeat until refused or down to one; a refused one is not retried.
pub fn next(
    best: &Suite,
    scores: &BTreeMap<OpKind, usize>,
    refused: &[Reduction],
) -> Option<(Reduction, Suite)> {
    // The journal's step is one idea, whatever it drops on the suite of
    // the moment: refused once, it is not tried again.
    let journal_refused = refused
        .iter()
        .any(|r| matches!(r, Reduction::KeepJournaled { .. }));
    candidates(best, scores)
        .into_iter()
        .filter(|r| !refused.contains(r))
        .filter(|r| !(journal_refused && matches!(r, Reduction::KeepJournaled { .. })))
        .find_map(|r| {
            let c = r.apply(best)?;
            Some((r, c))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Suite {
        suite::load("all").unwrap()
    }

    #[test]
    fn journal_scores_rank_the_newest_ops_highest() {
        let mut m = BTreeMap::new();
        m.insert(
            "guest-1 w0".to_string(),
            vec![
                "1 w0 #1 mtu isp0a is1 ok 3us".to_string(),
                "2 w0 #2 move isp0a is1 ok 3us".to_string(),
                "garbage".to_string(),
            ],
        );
        m.insert(
            "guest-1 w1".to_string(),
            vec!["3 w1 #9 destroy isp1a is0 ENXIO 3us".to_string()],
        );
        let s = journal_scores(&m);
        // The garbage line is w0's newest; move is one before it.
        assert_eq!(s.get(&OpKind::Move), Some(&999));
        assert_eq!(s.get(&OpKind::Mtu), Some(&998));
        assert_eq!(s.get(&OpKind::Destroy), Some(&1000));
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn a_pass_starts_with_the_journal_step_then_loops_then_ops_and_sizes() {
        let s = all();
        let mut scores = BTreeMap::new();
        scores.insert(OpKind::Move, 1000);
        scores.insert(OpKind::Destroy, 999);
        scores.insert(OpKind::Mtu, 990);
        let c = candidates(&s, &scores);
        match &c[0] {
            Reduction::KeepJournaled { drop } => {
                assert!(!drop.contains(&OpKind::Move) && !drop.contains(&OpKind::Destroy));
                // Seen, but not among the newest: dropped too.
                assert!(drop.contains(&OpKind::Mtu) && drop.contains(&OpKind::Create));
            }
            other => panic!("{other:?}"),
        }
        // The loop holding the journal's ops is tried last.
        let loops: Vec<&Reduction> = c
            .iter()
            .filter(|r| matches!(r, Reduction::DropLoop { .. }))
            .collect();
        assert_eq!(loops.len(), 4);
        assert_eq!(
            *loops.last().unwrap(),
            &Reduction::DropLoop {
                name: "lifecycle".into()
            }
        );
        let last_op = c
            .iter()
            .rev()
            .find(|r| matches!(r, Reduction::DropOp { .. }))
            .unwrap();
        assert_eq!(
            last_op,
            &Reduction::DropOp {
                r#loop: "lifecycle".into(),
                op: OpKind::Move
            }
        );
        assert!(c.contains(&Reduction::HalveWorkers {
            r#loop: "lifecycle".into()
        }));
    }

    #[test]
    fn reductions_yield_only_loadable_smaller_suites() {
        let s = all();
        let kept = Reduction::KeepJournaled {
            drop: s
                .op_kinds()
                .into_iter()
                .filter(|o| !matches!(o, OpKind::Move | OpKind::Destroy | OpKind::Create))
                .collect(),
        }
        .apply(&s)
        .unwrap();
        assert_eq!(kept.loops.len(), 1);
        assert_eq!(
            kept.op_kinds(),
            vec![OpKind::Create, OpKind::Destroy, OpKind::Move]
        );
        // Dropping the pairs would leave vlan/macvlan without a parent: refused.
        assert!(
            Reduction::DropLinkKind {
                link: LinkKind::Pair
            }
            .apply(&s)
            .is_none()
        );
        // The last op of a one-op loop cannot go by DropOp when the suite
        // would have no loop left.
        let one = Reduction::KeepJournaled {
            drop: kept
                .op_kinds()
                .into_iter()
                .filter(|o| *o != OpKind::Move)
                .collect(),
        }
        .apply(&kept)
        .unwrap();
        assert!(
            Reduction::DropOp {
                r#loop: "lifecycle".into(),
                op: OpKind::Move
            }
            .apply(&one)
            .is_none()
        );
        // Halving stops at one.
        let mut w = one.clone();
        for _ in 0..4 {
            if let Some(n) = (Reduction::HalveWorkers {
                r#loop: "lifecycle".into(),
            })
            .apply(&w)
            {
                w = n;
            }
        }
        assert_eq!(w.loops[0].workers, 1);
        // No churn stacks left while stack ops remain: refused.
        let stacks = s.clone();
        let mut r = Reduction::HalveChurnStacks.apply(&stacks).unwrap();
        assert_eq!(r.topology.churn_stacks, 1);
        r.topology.churn_stacks = 1;
        assert!(Reduction::HalveChurnStacks.apply(&r).is_none());
    }
}
