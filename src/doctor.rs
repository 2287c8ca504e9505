//! `ifstress doctor`: what this kernel supports, found out by doing it. It
//! checks privileges and features, probes every link kind, then performs
//! every op kind once on scratch stacks tagged like a run, prints op ->
//! result with the syscall used, and removes everything again. The first
//! thing to run on a new kernel, and what to attach to a bug report.

use crate::model::{LinkKind, OpKind, Tag};
use crate::plan::Op;
use crate::platform::{Outcome, Platform};
use crate::stats::errno_name;
use crate::suite::{Checks, LinkSpec, Suite, Topology};
use crate::world::{HOME, Layout, LinkId, World};
use anyhow::Context;
use serde::Serialize;
use std::sync::Arc;

#[derive(Debug, Serialize)]
pub struct Row {
    pub what: String,
    pub target: String,
    pub result: String,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct Doctor {
    pub platform: String,
    pub kernel: String,
    pub checks: Vec<Row>,
    pub kinds: Vec<Row>,
    pub ops: Vec<Row>,
    pub leftovers: Vec<String>,
}

fn outcome(o: Outcome) -> String {
    match o {
        Outcome::Ok => "OK".into(),
        Outcome::Skipped => "skipped".into(),
        Outcome::Err(e) => errno_name(e).into(),
    }
}

fn scratch_suite(kinds: &[LinkKind]) -> Suite {
    let mut links: Vec<LinkSpec> = kinds
        .iter()
        .map(|&kind| LinkSpec {
            kind,
            count: if kind == LinkKind::Pair { 2 } else { 1 },
            optional: false,
        })
        .collect();
    if !kinds.contains(&LinkKind::Pair) {
        links.push(LinkSpec {
            kind: LinkKind::Pair,
            count: 2,
            optional: false,
        });
    }
    Suite {
        name: "doctor".into(),
        description: "one of every op".into(),
        targets: vec![],
        duration: "1s".into(),
        topology: Topology {
            stacks: 1,
            churn_stacks: 1,
            links,
        },
        loops: vec![],
        checks: Checks::default(),
    }
}

/// The ops to try, in an order that gives each a chance to succeed.
fn steps(l: &Layout) -> Vec<Op> {
    let first = |k: LinkKind, end: u8| -> Option<LinkId> {
        (0..l.links.len() as LinkId)
            .find(|&i| l.links[i as usize].kind == k && l.links[i as usize].end == end)
    };
    let pairs: Vec<LinkId> = l.ids_where(|s| s.kind == LinkKind::Pair && s.end == 0);
    let (p0, p1) = (pairs[0], pairs[1]);
    let p1b = l.links[p1 as usize].peer.expect("pairs have peers");
    let p0b = l.links[p0 as usize].peer.expect("pairs have peers");
    let churn = l.stacks_where(|s| s.role == crate::model::StackRole::Churn)[0];
    let op = |kind, link, other, stack| Op {
        kind,
        link,
        other,
        stack,
        arg: 0,
    };
    let mut v: Vec<Op> = l
        .ids_where(|s| s.is_creator())
        .into_iter()
        .map(|i| op(OpKind::Create, i, 0, HOME))
        .collect();
    v.extend([
        op(OpKind::UpDown, p0, 0, HOME),
        op(OpKind::UpDown, p0b, 0, HOME),
        op(OpKind::Mtu, p0, 0, HOME),
        op(OpKind::Media, p0, 0, HOME),
        op(OpKind::Addr4Add, p0, 0, HOME),
        op(OpKind::Addr6Add, p0, 0, HOME),
        op(OpKind::SendUdp4, p0, 0, HOME),
        op(OpKind::SendUdp6, p0, 0, HOME),
        op(OpKind::SendRaw, p0, 0, HOME),
        op(OpKind::Capture, p0, 0, HOME),
        op(OpKind::Addr4Del, p0, 0, HOME),
        op(OpKind::Addr6Del, p0, 0, HOME),
    ]);
    for master in [first(LinkKind::Bridge, 0), first(LinkKind::Lagg, 0)]
        .into_iter()
        .flatten()
    {
        v.push(op(OpKind::MemberAdd, master, p1b, HOME));
        v.push(op(OpKind::MemberDel, master, p1b, HOME));
    }
    if let Some(t) = first(LinkKind::Tun, 0).or(first(LinkKind::Tap, 0)) {
        v.push(op(OpKind::TunOpen, t, 0, 1));
    }
    v.extend([
        op(OpKind::UpDown, p0, 0, HOME),
        op(OpKind::Rename, p0, 0, HOME),
        op(OpKind::Rename, p0, 0, HOME),
        op(OpKind::Move, p0, 0, 1),
        op(OpKind::MoveBack, p0, 0, HOME),
        op(OpKind::StackCreate, p1, 0, churn),
        op(OpKind::StackRemove, p1, 0, churn),
        op(OpKind::Destroy, p0, 0, HOME),
    ]);
    let last = first(LinkKind::Bridge, 0)
        .or(first(LinkKind::Tap, 0))
        .unwrap_or(p0);
    v.push(op(OpKind::DestroyNetlink, last, 0, HOME));
    v
}

pub fn run(platform: &'static dyn Platform) -> anyhow::Result<Doctor> {
    platform.require_privileges()?;
    let mut d = Doctor {
        platform: platform.name().into(),
        kernel: platform.kernel(),
        checks: vec![Row {
            what: "privileges".into(),
            target: String::new(),
            result: "OK".into(),
            detail: "root".into(),
        }],
        kinds: vec![],
        ops: vec![],
        leftovers: vec![],
    };
    let features = platform.require_features();
    d.checks.push(Row {
        what: "stacks".into(),
        target: String::new(),
        result: if features.is_ok() {
            "OK".into()
        } else {
            "missing".into()
        },
        detail: features
            .as_ref()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "network stacks can be created".into()),
    });
    let klog = platform.kernel_log();
    d.checks.push(Row {
        what: "kernel log".into(),
        target: String::new(),
        result: if klog.is_ok() {
            "OK".into()
        } else {
            "unreadable".into()
        },
        detail: klog
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_else(|| "readable from now on".into()),
    });
    if features.is_err() {
        return Ok(d);
    }
    let tag = Tag::new(fastrand::u16(..));
    let probes = platform
        .probe_kinds(&tag, &LinkKind::ALL)
        .context("probing link kinds")?;
    let mut have = Vec::new();
    for p in probes {
        if p.result.is_ok() {
            have.push(p.kind);
        }
        d.kinds.push(Row {
            what: p.kind.to_string(),
            target: p.native.into(),
            result: if p.result.is_ok() {
                "OK".into()
            } else {
                "missing".into()
            },
            detail: p.result.err().unwrap_or_default(),
        });
    }
    if !have.contains(&LinkKind::Pair) {
        return Ok(d);
    }
    let suite = scratch_suite(&have);
    let world = Arc::new(World::new(Layout::new(&suite, &tag)));
    let session = platform
        .start(world.clone())
        .context("creating scratch stacks")?;
    let s2 = session.clone();
    let w2 = world.clone();
    let rows = std::thread::Builder::new()
        .name("ifstress-doctor".into())
        .spawn(move || -> anyhow::Result<Vec<Row>> {
            let mut exec = s2.executor(0)?;
            let mut rows = Vec::new();
            for op in steps(&w2.layout) {
                let slot = &w2.layout.links[op.link as usize];
                let target = match op.kind {
                    OpKind::MemberAdd | OpKind::MemberDel => {
                        format!("{} + {}", w2.name(op.link), w2.name(op.other))
                    }
                    OpKind::StackCreate | OpKind::StackRemove | OpKind::TunOpen | OpKind::Move => {
                        format!(
                            "{} in {}",
                            w2.name(op.link),
                            w2.layout.stacks[op.stack as usize].name
                        )
                    }
                    _ => format!("{} ({})", w2.name(op.link), slot.kind),
                };
                let out = exec.exec(&op);
                rows.push(Row {
                    what: op.kind.to_string(),
                    target,
                    result: outcome(out),
                    detail: platform.syscall_of(op.kind, slot.kind).into(),
                });
            }
            exec.finish();
            Ok(rows)
        })?
        .join()
        .map_err(|_| anyhow::anyhow!("doctor thread panicked"));
    let torn = session.teardown();
    let _ = session.dying(std::time::Duration::from_secs(5));
    drop(session);
    d.ops = rows??;
    torn?;
    for _ in 0..20 {
        d.leftovers = platform.leftovers(Some(&tag))?;
        if d.leftovers.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    Ok(d)
}

pub fn render(d: &Doctor) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "{} ({})", d.platform, d.kernel);
    for (title, rows) in [
        ("check", &d.checks),
        ("link kind", &d.kinds),
        ("op", &d.ops),
    ] {
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(
            o,
            "\n{:<16} {:<30} {:<14} detail",
            title, "target", "result"
        );
        for r in rows {
            let _ = writeln!(
                o,
                "{:<16} {:<30} {:<14} {}",
                r.what, r.target, r.result, r.detail
            );
        }
    }
    if d.leftovers.is_empty() {
        let _ = writeln!(o, "\nscratch stacks removed, nothing left behind");
    } else {
        let _ = writeln!(o, "\nLEFT BEHIND: {}", d.leftovers.join(", "));
    }
    o
}
