//! Timing the platform's baselines: the shell loop and the batch stream, each
//! calibrated on a short run and then run for about the requested time.

use super::results::Rate;
use crate::model::{LinkKind, Tag};
use crate::platform::Platform;
use crate::platform::baseline::{Baseline, BatchProc, Case, Names};
use crate::resources::Cpu;
use anyhow::{Context, anyhow};
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

pub struct Measured {
    pub shell: Option<Rate>,
    pub batch: Option<Rate>,
    pub batch_label: String,
    pub notes: Vec<String>,
}

/// Pairs the baseline makes: moves are batched over all of them, so that a
/// batch process start is spread over many moves.
fn pairs_for(case: Case) -> usize {
    if case == Case::Move { 32 } else { 1 }
}

pub fn names(tag: &Tag, case: Case) -> Names {
    let name = |i, end| {
        tag.link_name(LinkKind::Pair, i, end, false)
            .as_str()
            .to_string()
    };
    let [a, b, c, d] = crate::addr::v4(1);
    Names {
        home: tag.named_stack('b', 0),
        other: tag.named_stack('b', 1),
        pairs: (0..pairs_for(case))
            .map(|i| (name(i, 0), name(i, 1)))
            .collect(),
        spare: (name(900, 0), name(900, 1)),
        alias: tag.alias(),
        addr4: format!("{a}.{b}.{c}.{d}"),
    }
}

pub fn measure(
    platform: &dyn Platform,
    case: Case,
    seconds: Duration,
    stop: &AtomicBool,
) -> anyhow::Result<Measured> {
    let (tag, _lock) = crate::engine::fresh_tag(platform)?;
    let b = platform.baseline(case, &names(&tag, case));
    let mut m = Measured {
        shell: None,
        batch: None,
        batch_label: b.batch_label.to_string(),
        notes: vec![],
    };
    let result = sh(&b.setup, stop).context("baseline setup").map(|_| {
        match shell_rate(&b, seconds, stop) {
            Ok(r) => m.shell = Some(r),
            Err(e) => m.notes.push(format!("shell loop: {e:#}")),
        }
        if b.batch.is_some() && !stop.load(Relaxed) {
            match batch_rate(&b, seconds, stop) {
                Ok(r) => m.batch = Some(r),
                Err(e) => m.notes.push(format!("{}: {e:#}", b.batch_label)),
            }
        }
    });
    // Whatever happened, remove what the baseline made, by script and by tag.
    let _ = sh(&b.teardown, &AtomicBool::new(false));
    platform
        .cleanup(crate::model::Scope::Run(&tag))
        .context("removing the baseline's stacks")?;
    result?;
    Ok(m)
}

fn shell_rate(b: &Baseline, seconds: Duration, stop: &AtomicBool) -> anyhow::Result<Rate> {
    calibrated(3, b.ops_per_step, seconds, |n| sh(&b.loop_script(n), stop))
}

fn batch_rate(b: &Baseline, seconds: Duration, stop: &AtomicBool) -> anyhow::Result<Rate> {
    let make = b.batch.as_ref().expect("checked by the caller");
    let probe = (1000 / b.batch_ops_per_unit.max(1) as usize).max(1);
    calibrated(probe, b.batch_ops_per_unit, seconds, |n| {
        run_procs(&make(n), stop)
    })
}

/// Time `probe` units, then as many as fill about `seconds`, and rate those.
fn calibrated(
    probe: usize,
    ops_per_unit: u32,
    seconds: Duration,
    mut run: impl FnMut(usize) -> anyhow::Result<(Duration, Cpu)>,
) -> anyhow::Result<Rate> {
    let (t, _) = run(probe)?;
    let units = scale(probe, t, seconds);
    let (t, cpu) = run(units)?;
    Ok(Rate::new(
        units as u64 * ops_per_unit as u64,
        t.as_secs_f64(),
        cpu.user.as_secs_f64(),
        cpu.sys.as_secs_f64(),
    ))
}

/// How many units fill `seconds`, given that `done` took `took`.
fn scale(done: usize, took: Duration, seconds: Duration) -> usize {
    let per = took.as_secs_f64().max(1e-6) / done as f64;
    ((seconds.as_secs_f64() / per).ceil() as usize).clamp(done, 10_000_000)
}

/// Run a script under `sh -e`; wall time and the children's CPU.
fn sh(script: &str, stop: &AtomicBool) -> anyhow::Result<(Duration, Cpu)> {
    let child = Command::new("sh")
        .args(["-e", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting sh")?;
    let cpu0 = Cpu::children();
    let t0 = Instant::now();
    wait(child, stop)?;
    Ok((t0.elapsed(), Cpu::children().since(&cpu0)))
}

fn run_procs(procs: &[BatchProc], stop: &AtomicBool) -> anyhow::Result<(Duration, Cpu)> {
    let cpu0 = Cpu::children();
    let t0 = Instant::now();
    for p in procs {
        let mut child = Command::new(&p.argv[0])
            .args(&p.argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", p.argv[0]))?;
        // The stream is written before waiting; a process that dies early
        // closes its end and the write fails, which wait() then explains.
        let mut stdin = child.stdin.take().expect("piped");
        let _ = stdin.write_all(p.stdin.as_bytes());
        drop(stdin);
        wait(child, stop)?;
    }
    Ok((t0.elapsed(), Cpu::children().since(&cpu0)))
}

/// Wait for a child, killing it if the bench is interrupted; a failure
/// carries the child's last line of stderr.
fn wait(mut child: Child, stop: &AtomicBool) -> anyhow::Result<()> {
    loop {
        if let Some(status) = child.try_wait()? {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            if status.success() {
                return Ok(());
            }
            let last = err.lines().last().unwrap_or("").trim().to_string();
            return Err(anyhow!("{status}: {last}"));
        }
        if stop.load(Relaxed) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(anyhow!("interrupted"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_fills_the_time_and_never_goes_below_the_probe() {
        assert_eq!(
            scale(10, Duration::from_millis(100), Duration::from_secs(2)),
            200
        );
        assert_eq!(
            scale(10, Duration::from_secs(100), Duration::from_secs(1)),
            10
        );
    }

    #[test]
    fn names_are_the_runs_own() {
        let t = Tag::new(0xabc);
        let n = names(&t, Case::Move);
        assert_eq!(n.pairs.len(), 32);
        assert!(
            crate::model::Scope::Run(&t).owns_stack(&n.home)
                && crate::model::Scope::Run(&t).owns_stack(&n.other)
        );
        assert!(
            n.pairs
                .iter()
                .all(|(a, b)| a.starts_with("is0abc") && b.starts_with("is0abc"))
        );
        assert!(n.addr4.starts_with("198.18."));
    }
}
