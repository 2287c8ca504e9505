//! What the run believes exists. Workers race on purpose, so every field here
//! is a hint: an op whose target vanished gets ENXIO/ENODEV/EBUSY from the
//! kernel, which is counted, never treated as a tool error.
//!
//! The layout (names, kinds, relations) is fixed at start; the per-link state
//! is one atomic word so that ops read and update it without locks.

use crate::model::{IfName, LinkKind, StackRole, Tag};
use crate::suite::Suite;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

pub type LinkId = u16;
pub type StackId = u8;
pub const HOME: StackId = 0;

/// One interface the run may create.
#[derive(Debug, Clone)]
pub struct LinkSlot {
    pub kind: LinkKind,
    /// Index among links of the same kind (what the name carries).
    pub ordinal: usize,
    /// 0 for the first (creating) end, 1 for the second end of a pair.
    pub end: u8,
    /// Primary name and the name `rename` toggles to.
    pub names: [IfName; 2],
    /// The other end of a pair.
    pub peer: Option<LinkId>,
    /// The pair end a vlan/macvlan sits on.
    pub parent: Option<LinkId>,
}

impl LinkSlot {
    /// Pair second ends are created and destroyed with their first end.
    pub fn is_creator(&self) -> bool {
        self.end == 0
    }
}

#[derive(Debug, Clone)]
pub struct StackSlot {
    pub name: String,
    pub role: StackRole,
}

/// The fixed shape of a run: which links and stacks exist by name.
#[derive(Debug, Clone)]
pub struct Layout {
    pub tag: Tag,
    pub links: Vec<LinkSlot>,
    pub stacks: Vec<StackSlot>,
    /// The suite's `checks.leave_tun_clones` (the D51525 scenario).
    pub leave_tun_clones: bool,
    /// Per link, the links that die with it; made once because every destroy
    /// asks, and a scan of 1,000 links per op is the wrong price.
    deps: Vec<Vec<LinkId>>,
}

impl Layout {
    pub fn new(suite: &Suite, tag: &Tag) -> Layout {
        let mut links: Vec<LinkSlot> = Vec::new();
        let mut ordinals = std::collections::HashMap::<LinkKind, usize>::new();
        // Parents first, so stacked kinds can point at pair ends already laid out.
        let mut specs = suite.topology.links.clone();
        specs.sort_by_key(|l| l.kind.needs_parent());
        let mut pair_ends: Vec<LinkId> = Vec::new();
        for spec in &specs {
            for _ in 0..spec.count {
                let ord = ordinals.entry(spec.kind).or_default();
                let ordinal = *ord;
                *ord += 1;
                let names = |end| {
                    [
                        tag.link_name(spec.kind, ordinal, end, false),
                        tag.link_name(spec.kind, ordinal, end, true),
                    ]
                };
                let id = links.len() as LinkId;
                let parent = spec
                    .kind
                    .needs_parent()
                    .then(|| pair_ends[ordinal % pair_ends.len()]);
                links.push(LinkSlot {
                    kind: spec.kind,
                    ordinal,
                    end: 0,
                    names: names(0),
                    peer: None,
                    parent,
                });
                if spec.kind == LinkKind::Pair {
                    pair_ends.push(id);
                    links.push(LinkSlot {
                        kind: spec.kind,
                        ordinal,
                        end: 1,
                        names: names(1),
                        peer: Some(id),
                        parent: None,
                    });
                    links[id as usize].peer = Some(id + 1);
                }
            }
        }
        let t = &suite.topology;
        let mut stacks = vec![StackSlot {
            name: tag.stack_name(StackRole::Home, 0),
            role: StackRole::Home,
        }];
        for i in 0..t.stacks {
            stacks.push(StackSlot {
                name: tag.stack_name(StackRole::Fixed, i + 1),
                role: StackRole::Fixed,
            });
        }
        for i in 0..t.churn_stacks {
            stacks.push(StackSlot {
                name: tag.stack_name(StackRole::Churn, i),
                role: StackRole::Churn,
            });
        }
        let deps = (0..links.len() as LinkId)
            .map(|id| {
                let mut v: Vec<LinkId> = links[id as usize].peer.into_iter().collect();
                let ends: Vec<LinkId> = std::iter::once(id).chain(v.clone()).collect();
                v.extend(
                    (0..links.len() as LinkId)
                        .filter(|&c| links[c as usize].parent.is_some_and(|p| ends.contains(&p))),
                );
                v
            })
            .collect();
        Layout {
            tag: tag.clone(),
            links,
            stacks,
            leave_tun_clones: suite.checks.leave_tun_clones,
            deps,
        }
    }

    pub fn ids_where(&self, f: impl Fn(&LinkSlot) -> bool) -> Vec<LinkId> {
        (0..self.links.len() as LinkId)
            .filter(|&i| f(&self.links[i as usize]))
            .collect()
    }

    pub fn stacks_where(&self, f: impl Fn(&StackSlot) -> bool) -> Vec<StackId> {
        (0..self.stacks.len() as StackId)
            .filter(|&i| f(&self.stacks[i as usize]))
            .collect()
    }

    /// Links that die with `id`: a pair's other end, and stacked children.
    pub fn dependents(&self, id: LinkId) -> &[LinkId] {
        &self.deps[id as usize]
    }
}

const EXISTS: u32 = 1 << 8;
const ALT: u32 = 1 << 9;

/// Run-time hints, shared by all workers.
pub struct World {
    pub layout: Layout,
    links: Vec<AtomicU32>,
    stacks: Vec<StackState>,
}

pub struct StackState {
    alive: AtomicBool,
    /// Devices opened inside (tun-open), for what a dying stack held.
    tun_opens: AtomicU32,
    /// Bumped on every removal, so workers drop sockets they hold on the old one.
    generation: AtomicU32,
}

/// A link's believed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkHint {
    pub exists: bool,
    pub stack: StackId,
    pub alt_name: bool,
}

impl World {
    pub fn new(layout: Layout) -> World {
        let links = layout.links.iter().map(|_| AtomicU32::new(0)).collect();
        let stacks = layout
            .stacks
            .iter()
            .map(|s| StackState {
                alive: AtomicBool::new(s.role != StackRole::Churn),
                tun_opens: AtomicU32::new(0),
                generation: AtomicU32::new(0),
            })
            .collect();
        World {
            layout,
            links,
            stacks,
        }
    }

    pub fn hint(&self, id: LinkId) -> LinkHint {
        let w = self.links[id as usize].load(Relaxed);
        LinkHint {
            exists: w & EXISTS != 0,
            stack: (w & 0xff) as StackId,
            alt_name: w & ALT != 0,
        }
    }

    pub fn set_hint(&self, id: LinkId, h: LinkHint) {
        let w =
            h.stack as u32 | if h.exists { EXISTS } else { 0 } | if h.alt_name { ALT } else { 0 };
        self.links[id as usize].store(w, Relaxed);
    }

    /// The name the link is believed to carry now.
    pub fn name(&self, id: LinkId) -> &IfName {
        let h = self.hint(id);
        &self.layout.links[id as usize].names[h.alt_name as usize]
    }

    pub fn created(&self, id: LinkId) {
        let fresh = LinkHint {
            exists: true,
            stack: HOME,
            alt_name: false,
        };
        self.set_hint(id, fresh);
        if let Some(p) = self.layout.links[id as usize].peer {
            self.set_hint(p, fresh);
        }
    }

    pub fn destroyed(&self, id: LinkId) {
        self.set_hint(
            id,
            LinkHint {
                exists: false,
                ..self.hint(id)
            },
        );
        for &d in self.layout.dependents(id) {
            self.set_hint(
                d,
                LinkHint {
                    exists: false,
                    ..self.hint(d)
                },
            );
        }
    }

    pub fn moved(&self, id: LinkId, to: StackId) {
        self.set_hint(
            id,
            LinkHint {
                stack: to,
                exists: true,
                ..self.hint(id)
            },
        );
    }

    /// Find where a link really is after its hint proved wrong: `probe`
    /// says whether stack `s` has an interface called `name`. The first hit
    /// becomes the hint; none means the link is gone.
    pub fn relocate(&self, id: LinkId, mut probe: impl FnMut(StackId, &IfName) -> bool) {
        let names = self.layout.links[id as usize].names;
        for s in 0..self.stacks.len() as StackId {
            for (alt, name) in names.iter().enumerate() {
                if probe(s, name) {
                    self.set_hint(
                        id,
                        LinkHint {
                            exists: true,
                            stack: s,
                            alt_name: alt == 1,
                        },
                    );
                    return;
                }
            }
        }
        self.set_hint(
            id,
            LinkHint {
                exists: false,
                ..self.hint(id)
            },
        );
    }

    pub fn renamed(&self, id: LinkId) {
        let h = self.hint(id);
        self.set_hint(
            id,
            LinkHint {
                alt_name: !h.alt_name,
                ..h
            },
        );
    }

    pub fn stack_alive(&self, s: StackId) -> bool {
        self.stacks[s as usize].alive.load(Relaxed)
    }

    pub fn tun_opened(&self, s: StackId) {
        self.stacks[s as usize].tun_opens.fetch_add(1, Relaxed);
    }

    pub fn tun_opens(&self, s: StackId) -> u32 {
        self.stacks[s as usize].tun_opens.load(Relaxed)
    }

    pub fn stack_generation(&self, s: StackId) -> u32 {
        self.stacks[s as usize].generation.load(Relaxed)
    }

    /// Called by the backend with the stack's own lock held.
    pub fn stack_created(&self, s: StackId) {
        self.stacks[s as usize].alive.store(true, Relaxed);
    }

    /// Called by the backend with the stack's own lock held. Links believed to
    /// be inside are gone with it (or returned home, which a later op finds).
    pub fn stack_removed(&self, s: StackId) {
        let st = &self.stacks[s as usize];
        st.generation.fetch_add(1, Relaxed);
        st.alive.store(false, Relaxed);
        for id in 0..self.links.len() as LinkId {
            let h = self.hint(id);
            if h.exists && h.stack == s {
                self.set_hint(id, LinkHint { exists: false, ..h });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite() -> Suite {
        crate::suite::parse(
            r#"
name = "t"
description = "t"
[topology]
stacks = 2
churn_stacks = 1
links = [ { kind = "vlan", count = 3 }, { kind = "pair", count = 2 }, { kind = "tun", count = 1 } ]
[[loop]]
name = "l"
workers = 1
ops = { create = 1 }
"#,
            "t.toml",
        )
        .unwrap()
    }

    #[test]
    fn layout_lays_pairs_before_children_and_names_everything() {
        let l = Layout::new(&suite(), &Tag::new(0xab));
        let kinds: Vec<_> = l.links.iter().map(|s| (s.kind, s.end)).collect();
        assert_eq!(
            kinds[..4],
            [
                (LinkKind::Pair, 0),
                (LinkKind::Pair, 1),
                (LinkKind::Pair, 0),
                (LinkKind::Pair, 1)
            ]
        );
        assert_eq!(l.links[0].peer, Some(1));
        assert_eq!(l.links[1].peer, Some(0));
        let vlans = l.ids_where(|s| s.kind == LinkKind::Vlan);
        assert_eq!(vlans.len(), 3);
        // Parents round-robin over the pairs' first ends.
        let parents: Vec<_> = vlans.iter().map(|&v| l.links[v as usize].parent).collect();
        assert_eq!(parents, [Some(0), Some(2), Some(0)]);
        assert_eq!(l.links[0].names[0].as_str(), "is00abp0");
        assert_eq!(l.links[1].names[1].as_str(), "is00abp0br");
        assert_eq!(l.stacks.len(), 4);
        assert_eq!(l.stacks[3].name, "ifstress-00ab-c0");
        let mut deps = l.dependents(0).to_vec();
        deps.sort();
        assert_eq!(deps, vec![1, vlans[0], vlans[2]]);
    }

    #[test]
    fn hints_follow_create_move_rename_destroy_and_stack_removal() {
        let w = World::new(Layout::new(&suite(), &Tag::new(1)));
        assert!(!w.hint(0).exists);
        w.created(0);
        assert!(w.hint(1).exists);
        w.moved(1, 3);
        w.renamed(1);
        assert_eq!(w.name(1).as_str(), "is0001p0br");
        assert_eq!(
            w.hint(1),
            LinkHint {
                exists: true,
                stack: 3,
                alt_name: true
            }
        );
        assert!(!w.stack_alive(3));
        w.stack_created(3);
        w.stack_removed(3);
        assert!(!w.hint(1).exists);
        assert!(w.hint(0).exists);
        assert_eq!(w.stack_generation(3), 1);
        w.destroyed(0);
        assert!(!w.hint(0).exists);
    }
}
