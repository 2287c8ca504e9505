//! `ifstress bench`: op throughput side by side, on the same kernel, with
//! (a) ifstress at one worker, (b) a shell loop of the equivalent commands,
//! (c) a one-process sequential stream where the system has one (`ip
//! -batch`), and (d) ifstress at more workers. ifstress runs through the real
//! engine (`order = "cycle"` so that workers do not collide on a link and
//! every counted op did its work); the baselines come from the platform.

mod baseline;
mod render;
mod results;
pub mod seeded;

use crate::engine::{OnHang, Run, RunConfig};
use crate::model::{LinkKind, OpKind, Tag};
use crate::platform::Platform;
use crate::platform::baseline::Case;
use crate::suite::{Checks, LinkSpec, LoopSpec, Order, Suite, Topology};
use anyhow::Context;
use results::round;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

pub use render::render;
pub use results::{BenchReport, CaseResult, Footprint, IfstressRate, Rate, Soak};

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub cases: Vec<Case>,
    pub workers: Vec<usize>,
    pub seconds: Duration,
    /// Also run `all` widened to 1,000 links and 64 stacks for CPU split and RSS.
    pub footprint: bool,
    pub baselines: bool,
    /// Also run `all` with the journal on for this long and watch RSS.
    pub soak: Option<Duration>,
}

/// The suite a case runs: one loop, cycle order, enough links that every
/// worker has its own.
pub fn case_suite(case: Case, workers: usize) -> Suite {
    let ops: &[OpKind] = match case {
        Case::UpDown => &[OpKind::UpDown],
        Case::Mtu => &[OpKind::Mtu],
        Case::Addr => &[OpKind::Addr4Add, OpKind::Addr4Del],
        Case::Media => &[OpKind::Media],
        Case::CreateDestroy => &[OpKind::Create, OpKind::Destroy],
        Case::Move => &[OpKind::Move, OpKind::MoveBack],
    };
    // Two ends per pair serve ops on any link; create-destroy needs a pair
    // (its creating end) per worker.
    let pairs = if case == Case::CreateDestroy {
        workers
    } else {
        workers.div_ceil(2)
    }
    .clamp(4, 999);
    Suite {
        name: format!("bench-{}", case.as_str()),
        description: format!("ifstress bench: {}", case.as_str()),
        targets: vec![],
        duration: "10s".into(),
        topology: Topology {
            stacks: usize::from(case == Case::Move),
            churn_stacks: 0,
            links: vec![LinkSpec {
                kind: LinkKind::Pair,
                count: pairs,
                optional: false,
            }],
        },
        loops: vec![LoopSpec {
            name: case.as_str().into(),
            workers,
            ops: ops.iter().map(|k| (*k, 1)).collect(),
            rate: None,
            order: Order::Cycle,
            kinds: vec![],
        }],
        checks: Checks {
            dying_grace: "10s".into(),
            ..Checks::default()
        },
    }
}

/// `all`, widened: 500 pairs (1,000 interfaces) and 63 stacks beside the home one.
pub fn footprint_suite() -> Suite {
    let mut s = crate::suite::load("all").expect("embedded suite");
    s.name = "bench-footprint".into();
    s.topology.stacks = 63 - s.topology.churn_stacks;
    for l in &mut s.topology.links {
        if l.kind == LinkKind::Pair {
            l.count = 500;
        }
    }
    s
}

fn config(suite: Suite, seconds: Duration) -> RunConfig {
    RunConfig {
        suite,
        duration: seconds,
        seed: 1,
        workers_scale: 1,
        journal: None,
        journal_max_bytes: 0,
        journal_port: None,
        quiet: true,
        load_modules: false,
        dying_grace: Some(Duration::from_secs(10)),
        on_hang: OnHang::Report,
    }
}

/// Run the whole bench. `stop` is raised by a signal: what was measured so
/// far is returned, marked interrupted.
pub fn run(
    platform: &'static dyn Platform,
    cfg: &BenchConfig,
    stop: &Arc<AtomicBool>,
    progress: &dyn Fn(&str),
) -> anyhow::Result<BenchReport> {
    platform.require_privileges()?;
    platform.require_features()?;
    let mut out = BenchReport {
        platform: platform.name().into(),
        kernel: platform.kernel(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        seconds_per_measure: cfg.seconds.as_secs_f64(),
        cases: vec![],
        footprint: None,
        soak: None,
        findings: vec![],
        interrupted: false,
    };
    for &case in &cfg.cases {
        let mut res = CaseResult {
            case,
            heavy: case.heavy(),
            ifstress: vec![],
            shell: None,
            batch: None,
            batch_label: String::new(),
            vs_shell: None,
            vs_batch: None,
            scaling: BTreeMap::new(),
            notes: vec![],
        };
        for &w in &cfg.workers {
            if stop.load(Relaxed) {
                break;
            }
            progress(&format!("{}: ifstress, {w} worker(s)", case.as_str()));
            let report = Run::prepare(platform, config(case_suite(case, w), cfg.seconds))
                .and_then(|r| r.execute())
                .with_context(|| format!("{} with {w} workers", case.as_str()))?;
            let ok: u64 = report.ops.values().map(|o| o.ok).sum();
            let secs = report.duration_s;
            res.ifstress.push(IfstressRate {
                workers: w,
                rate: Rate::new(ok, secs, report.resources.user_s, report.resources.sys_s),
                ok_share: round(ok as f64 / report.total_ops.max(1) as f64, 1000.0),
                max_rss_kib: report.resources.max_rss_kib,
            });
            out.findings.extend(report.findings);
            if report.interrupted {
                stop.store(true, Relaxed);
            }
        }
        if cfg.baselines && !stop.load(Relaxed) {
            progress(&format!("{}: shell loop and batch", case.as_str()));
            let b = baseline::measure(platform, case, cfg.seconds, stop)?;
            res.shell = b.shell;
            res.batch = b.batch;
            res.batch_label = b.batch_label;
            res.notes = b.notes;
        }
        res.ratios();
        out.cases.push(res);
        if stop.load(Relaxed) {
            break;
        }
    }
    if cfg.footprint && !stop.load(Relaxed) {
        progress("footprint: `all` with 1,000 links and 64 stacks");
        let suite = footprint_suite();
        let links = crate::world::Layout::new(&suite, &Tag::new(0)).links.len();
        let stacks = 1 + suite.topology.stacks + suite.topology.churn_stacks;
        let mut fcfg = config(suite, cfg.seconds.max(Duration::from_secs(5)));
        // 64 namespaces or jails and 1,000 links take the kernel longer to
        // free than the cases' few: the suite's own grace, not the bench's 10 s.
        fcfg.dying_grace = None;
        let run = Run::prepare(platform, fcfg)?;
        let workers = run.worker_specs().len();
        let r = run.execute().context("footprint run")?;
        out.footprint = Some(Footprint {
            links,
            stacks,
            workers,
            ops: r.total_ops,
            seconds: r.duration_s,
            user_s: r.resources.user_s,
            sys_s: r.resources.sys_s,
            user_share: r.resources.user_share,
            max_rss_kib: r.resources.max_rss_kib,
            rss_slope_kib_per_min: r.resources.rss_slope_kib_per_min,
            stacks_gone_after_s: r.stacks_gone_after_s,
        });
        out.findings.extend(r.findings);
    }
    if let (Some(d), false) = (cfg.soak, stop.load(Relaxed)) {
        progress(&format!(
            "soak: `all` with the journal on for {}",
            humantime::format_duration(d)
        ));
        let (soak, findings) = soak(d, stop)?;
        out.soak = Some(soak);
        out.findings.extend(findings);
    }
    out.interrupted = stop.load(Relaxed);
    Ok(out)
}

/// The soak runs as a child process of this binary (`ifstress run`), not in
/// the bench's own process: the memory the earlier measurements freed would
/// otherwise be reused and hide growth.
fn soak(
    duration: Duration,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<(Soak, Vec<crate::check::Finding>)> {
    use std::os::unix::process::CommandExt;
    let dir = std::env::temp_dir().join(format!("ifstress-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let report = dir.join("report.json");
    let secs = format!("{}s", duration.as_secs().max(1));
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("run")
        .args([
            "--suite",
            "all",
            "--duration",
            &secs,
            "--seed",
            "1",
            "--quiet",
        ])
        // The journal is part of what is measured: its rings and flusher are
        // the largest per-worker memory ifstress has.
        .arg("--journal")
        .arg(dir.join("journal"))
        .arg("--report")
        .arg(&report)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        // Its own process group: a terminal's ^C reaches the bench, which
        // passes one SIGINT on; two would make the child skip its report.
        .process_group(0)
        .spawn()
        .context("starting the soak run")?;
    let mut err = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let mut signalled = false;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if stop.load(Relaxed) && !signalled {
            signalled = true;
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = reader.join().unwrap_or_default();
    let parsed = std::fs::read(&report)
        .ok()
        .and_then(|b| serde_json::from_slice::<crate::report::Report>(&b).ok());
    let _ = std::fs::remove_dir_all(&dir);
    let r = parsed.ok_or_else(|| {
        anyhow::anyhow!(
            "soak run ended with {status} and no report: {}",
            stderr.lines().last().unwrap_or("")
        )
    })?;
    if r.interrupted {
        stop.store(true, Relaxed);
    }
    Ok((
        Soak {
            suite: r.suite,
            ops: r.total_ops,
            seconds: r.duration_s,
            resources: r.resources,
        },
        r.findings,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Planner, Share};
    use crate::world::Layout;

    #[test]
    fn case_suites_validate_and_give_each_worker_its_own_links() {
        for case in Case::ALL {
            for w in [1, 2, 4, 8, 16] {
                let s = case_suite(case, w);
                let text = s.to_toml();
                let back = crate::suite::parse(&text, "bench.toml")
                    .unwrap_or_else(|e| panic!("{case:?} {w}: {e}\n{text}"));
                assert_eq!(back, s);
                let l = Layout::new(&s, &Tag::new(1));
                let mut seen = std::collections::BTreeSet::new();
                for index in 0..w {
                    let p = Planner::new(&l, &s.loops[0], 1, index, Share { index, of: w });
                    let mine: std::collections::BTreeSet<u16> =
                        p.take(64).map(|o| o.link).collect();
                    assert!(
                        mine.is_disjoint(&seen),
                        "{case:?} {w}: workers share a link"
                    );
                    seen.extend(mine);
                }
            }
        }
    }

    #[test]
    fn footprint_suite_is_1000_links_and_64_stacks() {
        let s = footprint_suite();
        crate::suite::parse(&s.to_toml(), "f.toml").unwrap();
        let l = Layout::new(&s, &Tag::new(1));
        assert!(l.links.len() >= 1000, "{}", l.links.len());
        assert_eq!(l.stacks.len(), 64);
    }

    #[test]
    fn ratios_are_a_over_b_a_over_c_and_d_over_a() {
        let r = |w, ops_per_s| IfstressRate {
            workers: w,
            rate: Rate {
                ops_per_s,
                ..Rate::default()
            },
            ok_share: 1.0,
            max_rss_kib: 1,
        };
        let mut c = CaseResult {
            case: Case::UpDown,
            heavy: false,
            ifstress: vec![r(1, 1000.0), r(4, 2500.0)],
            shell: Some(Rate {
                ops_per_s: 50.0,
                ..Rate::default()
            }),
            batch: Some(Rate {
                ops_per_s: 800.0,
                ..Rate::default()
            }),
            batch_label: "ip -batch".into(),
            vs_shell: None,
            vs_batch: None,
            scaling: BTreeMap::new(),
            notes: vec![],
        };
        c.ratios();
        assert_eq!(c.vs_shell, Some(20.0));
        assert_eq!(c.vs_batch, Some(1.25));
        assert_eq!(c.scaling[&4], 2.5);
        assert_eq!(c.scaling[&1], 1.0);
        let r = Rate::new(200, 2.0, 0.001, 0.01);
        assert_eq!(
            (r.ops_per_s, r.user_us_per_op, r.sys_us_per_op),
            (100.0, 5.0, 50.0)
        );
    }
}
