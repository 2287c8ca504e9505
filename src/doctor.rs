//! `ifstress doctor`: what this kernel supports, found out by doing it. It
//! checks privileges and features, probes every link kind, then performs
//! every op kind once on scratch stacks tagged like a run, prints op ->
//! result with the syscall used, and removes everything again. The first
//! thing to run on a new kernel, and what to attach to a bug report.
//!
//! It also reports the kernel features findings depend on
//! (`Platform::kernel_facts`, the same fields on every system) and judges
//! the kernel log buffer against the log rate its own ops produced.

use crate::model::{LinkKind, OpKind};
use crate::plan::Op;
use crate::platform::facts::{Fact, KernelFacts, State};
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
    pub kernel_features: KernelFacts,
    /// The kernel log written while doctor's ops ran, and what a suite
    /// would write between two scans at that rate; `None` when nothing was
    /// measured (the log unreadable, no op run).
    pub log_rate: Option<LogRate>,
    pub checks: Vec<Row>,
    pub kinds: Vec<Row>,
    pub ops: Vec<Row>,
    pub leftovers: Vec<String>,
    /// A signal stopped it: the ops after it were not run, and what it had
    /// made was removed all the same.
    pub interrupted: bool,
}

/// The engine scans the kernel log every other second (engine::progress);
/// what the kernel writes in between must still be in its buffer then.
const SCAN_EVERY_S: f64 = 2.0;
/// Room for bursts (a churn stack's removal logs for every link in it at
/// once) and for whatever else writes to the same log.
const HEADROOM: f64 = 2.0;

/// The log rate doctor measured, scaled to a suite.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogRate {
    /// Kernel log bytes read while the ops below ran.
    pub bytes: u64,
    /// Ops issued (skipped ones not counted), one at a time.
    pub ops: u64,
    pub seconds: f64,
    /// The shipped suite with the most workers.
    pub suite: String,
    /// How many of its workers run at once here: its workers, at most
    /// this machine's CPUs (ops are kernel work; more threads than CPUs
    /// do not add ops per second).
    pub parallel: u64,
    /// bytes/op x ops/s x parallel x the scan interval x HEADROOM.
    pub needed_bytes: u64,
}

impl LogRate {
    pub fn new(bytes: u64, ops: u64, seconds: f64, suite: &str, parallel: u64) -> Option<LogRate> {
        if ops == 0 || seconds <= 0.0 || parallel == 0 {
            return None;
        }
        let per_op = bytes as f64 / ops as f64;
        let ops_per_s = ops as f64 / seconds;
        Some(LogRate {
            bytes,
            ops,
            seconds,
            suite: suite.to_string(),
            parallel,
            needed_bytes: (per_op * ops_per_s * parallel as f64 * SCAN_EVERY_S * HEADROOM).ceil()
                as u64,
        })
    }
}

/// The rule: the log buffer must hold what the busiest shipped suite can
/// log between two scans of the log, with room to spare (`LogRate`);
/// smaller, and lines are lost before they are read.
pub fn judge_log_buffer(f: &mut Fact, rate: Option<&LogRate>) {
    let Some(size) = f.value else { return };
    let Some(r) = rate else {
        f.detail = format!("not judged: no log rate measured; {}", f.detail);
        return;
    };
    let how = format!(
        "suite `{}` logs about {} B between two scans here ({:.0} B/op measured x {:.1} op/s x {} at once x {} s x {})",
        r.suite,
        r.needed_bytes,
        r.bytes as f64 / r.ops as f64,
        r.ops as f64 / r.seconds,
        r.parallel,
        SCAN_EVERY_S,
        HEADROOM
    );
    if (size as u64) < r.needed_bytes {
        f.state = State::Warn;
        f.detail = format!(
            "too small: {how}; lines will be lost between scans; raise it to at least {} ({})",
            r.needed_bytes, f.detail
        );
    } else {
        f.detail = format!("enough: {how}; {}", f.detail);
    }
}

/// The shipped suite with the most workers, and their number.
fn busiest_suite() -> Option<(String, u64)> {
    crate::suite::EMBEDDED
        .iter()
        .filter_map(|(name, _)| crate::suite::load(name).ok())
        .map(|s| {
            let w: usize = s.loops.iter().map(|l| l.workers).sum();
            (s.name, w as u64)
        })
        .max_by_key(|(_, w)| *w)
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
    // The run's signal handling, before anything is made: a first signal
    // ends the op sequence and still removes the scratch stacks; a second
    // sweeps the tag and exits (it once left namespaces and lock files).
    let signals = crate::engine::Signals::install(platform)?;
    platform.require_privileges()?;
    let mut d = Doctor {
        platform: platform.name().into(),
        kernel: platform.kernel(),
        kernel_features: platform.kernel_facts(),
        log_rate: None,
        checks: vec![Row {
            what: "privileges".into(),
            target: String::new(),
            result: "OK".into(),
            detail: "root".into(),
        }],
        kinds: vec![],
        ops: vec![],
        leftovers: vec![],
        interrupted: false,
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
    let mut klog = platform.kernel_log();
    d.checks.push(Row {
        what: "kernel log".into(),
        target: String::new(),
        result: if klog.is_ok() {
            "OK".into()
        } else {
            "unreadable".into()
        },
        detail: klog
            .as_ref()
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_else(|| "readable from now on".into()),
    });
    if features.is_err() {
        return Ok(judged(d));
    }
    // Locked like a run's tag, so that a `cleanup` meanwhile spares it.
    let (tag, _lock) = crate::engine::fresh_tag(platform)?;
    signals.set_tag(&tag);
    let interrupted = || {
        signals
            .interrupted
            .load(std::sync::atomic::Ordering::Relaxed)
    };
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
    if interrupted() {
        // The probe removes its own stack; sweep in case it was cut short.
        platform.cleanup(crate::model::Scope::Run(&tag))?;
        d.interrupted = true;
        d.leftovers = platform.leftovers(crate::model::Scope::Run(&tag))?;
        return Ok(judged(d));
    }
    if !have.contains(&LinkKind::Pair) {
        return Ok(judged(d));
    }
    let suite = scratch_suite(&have);
    let world = Arc::new(World::new(Layout::new(&suite, &tag)));
    let session = platform
        .start(world.clone())
        .context("creating scratch stacks")?;
    let s2 = session.clone();
    let w2 = world.clone();
    let stop = signals.stop.clone();
    // What setup logged is not the ops' doing.
    let mut logged = String::new();
    if let Ok(k) = klog.as_mut() {
        let _ = k.read_new(&mut logged);
    }
    let rows = std::thread::Builder::new()
        .name("ifstress-doctor".into())
        .spawn(move || -> anyhow::Result<(Vec<Row>, f64)> {
            let mut exec = s2.executor(0)?;
            let mut rows = Vec::new();
            let t0 = std::time::Instant::now();
            for op in steps(&w2.layout) {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
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
            let secs = t0.elapsed().as_secs_f64();
            exec.finish();
            Ok((rows, secs))
        })?
        .join()
        .map_err(|_| anyhow::anyhow!("doctor thread panicked"));
    // Read before teardown, whose removals log too but are no op's.
    logged.clear();
    let bytes = klog
        .as_mut()
        .ok()
        .and_then(|k| k.read_final(&mut logged).ok())
        .map(|()| logged.len() as u64);
    let torn = session.teardown();
    let _ = session.dying(std::time::Duration::from_secs(5));
    drop(session);
    let (rows, secs) = rows??;
    d.ops = rows;
    d.interrupted = interrupted();
    torn?;
    if let (Some(bytes), Some((suite, workers))) = (bytes, busiest_suite()) {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        let ops = d.ops.iter().filter(|r| r.result != "skipped").count() as u64;
        d.log_rate = LogRate::new(bytes, ops, secs, &suite, workers.min(cpus));
    }
    for _ in 0..20 {
        d.leftovers = platform.leftovers(crate::model::Scope::Run(&tag))?;
        if d.leftovers.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    Ok(judged(d))
}

fn judged(mut d: Doctor) -> Doctor {
    judge_log_buffer(&mut d.kernel_features.log_buffer, d.log_rate.as_ref());
    d
}

pub fn render(d: &Doctor) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "{} ({})", d.platform, d.kernel);
    if d.interrupted {
        let _ = writeln!(
            o,
            "interrupted: the checks below stop where the signal came; the scratch stacks were removed"
        );
    }
    let features: Vec<Row> = d
        .kernel_features
        .rows()
        .iter()
        .map(|(name, f)| Row {
            what: name.replace('_', " "),
            target: f.source.clone(),
            result: f.state.as_str().into(),
            detail: match f.value {
                Some(v) => format!("{v}: {}", f.detail),
                None => f.detail.clone(),
            },
        })
        .collect();
    for (title, rows) in [
        ("check", &d.checks),
        ("kernel feature", &features),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer(size: i64) -> Fact {
        Fact::new(State::Ok, Some(size), "kern.msgbufsize", "set it at boot")
    }

    #[test]
    fn the_needed_size_scales_with_bytes_rate_and_parallelism() {
        // 40 ops in 2 s logging 4000 B: 100 B/op at 20 op/s; 4 at once,
        // 2 s between scans, twice that for bursts.
        let r = LogRate::new(4000, 40, 2.0, "all", 4).unwrap();
        assert_eq!(r.needed_bytes, 100 * 20 * 4 * 2 * 2);
        assert_eq!(LogRate::new(4000, 0, 2.0, "all", 4), None);
        assert_eq!(LogRate::new(4000, 40, 0.0, "all", 4), None);
        assert_eq!(LogRate::new(0, 40, 2.0, "all", 4).unwrap().needed_bytes, 0);
    }

    #[test]
    fn a_buffer_smaller_than_two_scans_of_log_is_a_warning() {
        let r = LogRate::new(4000, 40, 2.0, "all", 4).unwrap();
        let mut small = buffer(16_383);
        judge_log_buffer(&mut small, Some(&r));
        assert_eq!(small.state, State::Warn);
        assert!(small.detail.contains("at least 32000"), "{}", small.detail);
        assert!(small.detail.contains("suite `all`"), "{}", small.detail);
        assert!(
            small.detail.ends_with("(set it at boot)"),
            "{}",
            small.detail
        );
        let mut big = buffer(32_000);
        judge_log_buffer(&mut big, Some(&r));
        assert_eq!(big.state, State::Ok);
        assert!(big.detail.starts_with("enough"), "{}", big.detail);
    }

    #[test]
    fn without_a_rate_or_a_size_nothing_is_claimed() {
        let mut b = buffer(1);
        judge_log_buffer(&mut b, None);
        assert_eq!(b.state, State::Ok);
        assert!(b.detail.starts_with("not judged"), "{}", b.detail);
        let mut unread = Fact::new(State::Unknown, None, "kern.msgbufsize", "unreadable");
        judge_log_buffer(
            &mut unread,
            Some(&LogRate::new(1, 1, 1.0, "all", 1).unwrap()),
        );
        assert_eq!(unread.state, State::Unknown);
        assert_eq!(unread.detail, "unreadable");
    }

    #[test]
    fn the_busiest_shipped_suite_has_workers() {
        let (name, w) = busiest_suite().unwrap();
        assert!(w >= 2, "{name}: {w}");
    }
}
