//! Turning a loop's op mix into a stream of concrete ops. The stream depends
//! only on the layout, the loop, the seed and the worker's index, never on
//! what the kernel answered, so the same seed replays the same op sequence.

use crate::model::StackRole;
use crate::model::{LinkKind, OpKind, OpTarget};
use crate::suite::{LoopSpec, Order};
use crate::world::{HOME, Layout, LinkId, StackId};

/// One op to issue. Small and `Copy`: it travels the hot path by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    pub kind: OpKind,
    /// The link acted on (for member ops: the master).
    pub link: LinkId,
    /// The member for member ops.
    pub other: LinkId,
    /// The stack for moves, tun-open and stack ops.
    pub stack: StackId,
    /// Free bits for variation (mtu value, which held descriptor ...).
    pub arg: u32,
}

/// Where each op kind may land, computed once per run.
struct Pools {
    any: Vec<LinkId>,
    creators: Vec<LinkId>,
    masters: Vec<LinkId>,
    members: Vec<LinkId>,
    tunnels: Vec<LinkId>,
    movable_to: Vec<StackId>,
    churn: Vec<StackId>,
    all_stacks: Vec<StackId>,
}

pub struct Planner {
    cumulative: Vec<(u32, OpKind)>,
    total: u32,
    pools: Pools,
    rng: fastrand::Rng,
    cycle: Option<Cycle>,
}

/// `order = "cycle"`: the worker's own links, and where it is in the sequence.
struct Cycle {
    seq: Vec<OpKind>,
    links: Vec<LinkId>,
    step: usize,
    round: usize,
}

/// Which worker of how many in its loop: cycle mode splits the links by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    pub index: usize,
    pub of: usize,
}

/// Each worker's stream starts from its own well-mixed seed.
pub fn worker_seed(seed: u64, worker: usize) -> u64 {
    let mut z = seed ^ (worker as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Planner {
    pub fn new(
        layout: &Layout,
        spec: &LoopSpec,
        seed: u64,
        worker: usize,
        share: Share,
    ) -> Planner {
        let mut cumulative = Vec::new();
        let mut total = 0;
        for (op, w) in &spec.ops {
            total += w;
            cumulative.push((total, *op));
        }
        // A loop limited to some kinds acts only on those (members excepted).
        let mine =
            |l: &crate::world::LinkSlot| spec.kinds.is_empty() || spec.kinds.contains(&l.kind);
        let pools = Pools {
            any: layout.ids_where(mine),
            creators: layout.ids_where(|l| l.is_creator() && mine(l)),
            masters: layout.ids_where(|l| l.kind.has_members() && mine(l)),
            members: layout.ids_where(|l| l.kind == LinkKind::Pair),
            tunnels: layout.ids_where(|l| l.kind.is_tunnel() && mine(l)),
            movable_to: layout.stacks_where(|s| s.role != StackRole::Home),
            churn: layout.stacks_where(|s| s.role == StackRole::Churn),
            all_stacks: layout.stacks_where(|_| true),
        };
        let cycle = (spec.order == Order::Cycle).then(|| Cycle::new(spec, &pools, share));
        Planner {
            cumulative,
            total,
            pools,
            rng: fastrand::Rng::with_seed(worker_seed(seed, worker)),
            cycle,
        }
    }

    fn pick<T: Copy + Default>(rng: &mut fastrand::Rng, v: &[T]) -> T {
        if v.is_empty() {
            T::default()
        } else {
            v[rng.usize(..v.len())]
        }
    }

    pub fn next_op(&mut self) -> Op {
        if let Some(c) = &mut self.cycle {
            return c.next(&self.pools, self.rng.u32(..));
        }
        let r = self.rng.u32(..self.total);
        let kind = self
            .cumulative
            .iter()
            .find(|(c, _)| r < *c)
            .map(|(_, k)| *k)
            .expect("weights are positive");
        let p = &self.pools;
        let rng = &mut self.rng;
        let arg = rng.u32(..);
        let (link, other, stack) = match kind.target() {
            OpTarget::AnyLink => (Self::pick(rng, &p.any), 0, HOME),
            OpTarget::Creatable => (Self::pick(rng, &p.creators), 0, HOME),
            OpTarget::Master => (
                Self::pick(rng, &p.masters),
                Self::pick(rng, &p.members),
                HOME,
            ),
            OpTarget::Stack => match kind {
                OpKind::TunOpen => (
                    Self::pick(rng, &p.tunnels),
                    0,
                    Self::pick(rng, &p.all_stacks),
                ),
                _ => (Self::pick(rng, &p.creators), 0, Self::pick(rng, &p.churn)),
            },
        };
        let stack = if kind == OpKind::Move {
            Self::pick(rng, &p.movable_to)
        } else {
            stack
        };
        Op {
            kind,
            link,
            other,
            stack,
            arg,
        }
    }
}

impl Cycle {
    fn new(spec: &LoopSpec, p: &Pools, share: Share) -> Cycle {
        // BTreeMap keys come in declaration order of OpKind, which is
        // lifecycle order: create, destroy, move, move-back, add, del.
        let seq: Vec<OpKind> = spec
            .ops
            .iter()
            .flat_map(|(k, w)| std::iter::repeat_n(*k, *w as usize))
            .collect();
        let pool = if seq.iter().any(|k| k.target() == OpTarget::Master) {
            &p.masters
        } else if seq.contains(&OpKind::TunOpen) {
            &p.tunnels
        } else if seq
            .iter()
            .any(|k| matches!(k.target(), OpTarget::Creatable | OpTarget::Stack))
        {
            &p.creators
        } else {
            &p.any
        };
        let of = share.of.max(1);
        let mut links: Vec<LinkId> = pool
            .iter()
            .enumerate()
            .filter(|(i, _)| i % of == share.index % of)
            .map(|(_, l)| *l)
            .collect();
        // More workers than links: share the whole pool rather than idle.
        if links.is_empty() {
            links = pool.clone();
        }
        Cycle {
            seq,
            links,
            step: 0,
            round: 0,
        }
    }

    fn next(&mut self, p: &Pools, arg: u32) -> Op {
        let kind = self.seq[self.step % self.seq.len()];
        let link = self.links[self.round % self.links.len()];
        let turn = self.round / self.links.len();
        let at = |v: &[u8]| v.get(turn % v.len().max(1)).copied().unwrap_or(HOME);
        let (other, stack) = match kind {
            OpKind::Move => (0, at(&p.movable_to)),
            OpKind::StackCreate | OpKind::StackRemove => (0, at(&p.churn)),
            OpKind::TunOpen => (0, at(&p.all_stacks)),
            _ if kind.target() == OpTarget::Master => (
                p.members
                    .get(turn % p.members.len().max(1))
                    .copied()
                    .unwrap_or(0),
                HOME,
            ),
            _ => (0, HOME),
        };
        self.step += 1;
        if self.step.is_multiple_of(self.seq.len()) {
            self.round += 1;
        }
        Op {
            kind,
            link,
            other,
            stack,
            arg,
        }
    }
}

impl Iterator for Planner {
    type Item = Op;
    fn next(&mut self) -> Option<Op> {
        Some(self.next_op())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Tag;

    const ONE: Share = Share { index: 0, of: 1 };

    fn layout_and_suite(name: &str) -> (Layout, crate::suite::Suite) {
        let s = crate::suite::load(name).unwrap();
        (Layout::new(&s, &Tag::new(7)), s)
    }

    #[test]
    fn same_seed_same_sequence_other_seed_or_worker_differs() {
        let (l, s) = layout_and_suite("all");
        for lp in &s.loops {
            let a: Vec<Op> = Planner::new(&l, lp, 42, 3, ONE).take(2000).collect();
            let b: Vec<Op> = Planner::new(&l, lp, 42, 3, ONE).take(2000).collect();
            assert_eq!(a, b);
            let c: Vec<Op> = Planner::new(&l, lp, 43, 3, ONE).take(2000).collect();
            assert_ne!(a, c);
            let d: Vec<Op> = Planner::new(&l, lp, 42, 4, ONE).take(2000).collect();
            assert_ne!(a, d);
        }
    }

    #[test]
    fn ops_land_only_on_fitting_targets_and_every_declared_op_is_planned() {
        for (name, _) in crate::suite::EMBEDDED {
            let (l, s) = layout_and_suite(name);
            for lp in &s.loops {
                let ops: Vec<Op> = Planner::new(&l, lp, 1, 0, ONE).take(5000).collect();
                for k in lp.ops.keys() {
                    assert!(
                        ops.iter().any(|o| o.kind == *k),
                        "{name}: {k} never planned"
                    );
                }
                for o in ops {
                    let link = &l.links[o.link as usize];
                    match o.kind.target() {
                        OpTarget::Creatable => assert!(link.is_creator()),
                        OpTarget::Master => {
                            assert!(link.kind.has_members());
                            assert_eq!(l.links[o.other as usize].kind, LinkKind::Pair);
                        }
                        OpTarget::Stack if o.kind == OpKind::TunOpen => {
                            assert!(link.kind.is_tunnel())
                        }
                        OpTarget::Stack => {
                            assert_eq!(l.stacks[o.stack as usize].role, StackRole::Churn)
                        }
                        OpTarget::AnyLink => {}
                    }
                    if o.kind == OpKind::Move {
                        assert_ne!(o.stack, HOME);
                    }
                }
            }
        }
    }

    #[test]
    fn weights_shape_the_mix() {
        let (l, s) = layout_and_suite("vmove");
        let movers = &s.loops[0];
        let ops: Vec<Op> = Planner::new(&l, movers, 9, 0, ONE).take(50_000).collect();
        let moves = ops.iter().filter(|o| o.kind == OpKind::Move).count() as f64;
        // move = 3, move-back = 2
        let share = moves / ops.len() as f64;
        assert!((share - 0.6).abs() < 0.02, "share {share}");
    }

    #[test]
    fn cycle_walks_disjoint_shares_in_lifecycle_order() {
        let text = r#"
name = "c"
description = "c"
[topology]
stacks = 2
links = [{ kind = "pair", count = 6 }]
[[loop]]
name = "l"
workers = 3
order = "cycle"
ops = { move-back = 1, move = 1 }
"#;
        let s = crate::suite::parse(text, "c.toml").unwrap();
        let l = Layout::new(&s, &Tag::new(7));
        let mut seen = Vec::new();
        for index in 0..3 {
            let share = Share { index, of: 3 };
            let ops: Vec<Op> = Planner::new(&l, &s.loops[0], 1, index, share)
                .take(8)
                .collect();
            // Move then move-back, on the same link, then the next link.
            for pair in ops.chunks(2) {
                assert_eq!(pair[0].kind, OpKind::Move);
                assert_eq!(pair[1].kind, OpKind::MoveBack);
                assert_eq!(pair[0].link, pair[1].link);
                assert_ne!(pair[0].stack, HOME);
            }
            let mine: std::collections::BTreeSet<LinkId> = ops.iter().map(|o| o.link).collect();
            assert_eq!(mine.len(), 4, "12 pair ends over 3 workers");
            seen.extend(mine);
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 12, "shares are disjoint and cover the pool");
    }
}
