//! `ifstress bench --seeded`: how fast races are hit, measured on races
//! planted on purpose. Guests boot with racebench (vm/racebench) armed for
//! one scenario at a time; each trial is one guest that runs until the
//! scenario's panic (a hit, at the guest's time to hit) or the cap (a
//! censored trial). Per scenario and window width it measures (a) the
//! scenario's ifstress suite and (b) a shell-loop reproducer written the way
//! tests/sys/net writes them, then one `fixed=1` trial of the suite: it must
//! not hit, and its counters show the windows were still entered.

use crate::verdict::poisson::{Observation, km_median};
use crate::vm::{GuestModule, VmConfig};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

/// A seeded race and how each method provokes it.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// racebench's name for it (`scenarios=`).
    pub name: &'static str,
    /// The shipped suite that targets its race class.
    pub suite: &'static str,
    /// The shell-loop reproducer (vm/racebench/shell).
    pub script: &'static str,
    /// Host programs the script runs besides busybox.
    pub tools: &'static [&'static str],
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "vmove",
        suite: "vmove",
        script: include_str!("../../vm/racebench/shell/vmove.sh"),
        tools: &["ip"],
    },
    Scenario {
        name: "outpath",
        suite: "outpath",
        script: include_str!("../../vm/racebench/shell/outpath.sh"),
        tools: &["ip"],
    },
    Scenario {
        name: "media",
        suite: "ioctl",
        script: include_str!("../../vm/racebench/shell/media.sh"),
        tools: &["ip", "ethtool"],
    },
    Scenario {
        name: "tun",
        suite: "tun",
        script: include_str!("../../vm/racebench/shell/tun.sh"),
        tools: &["ip"],
    },
];

pub fn scenario(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

#[derive(Debug, Clone)]
pub struct SeededConfig {
    /// Guest settings (image, cpus, memory, accel, out, ...); duration,
    /// modules and guest count are set per trial.
    pub guest: VmConfig,
    pub racebench: PathBuf,
    pub scenarios: Vec<&'static Scenario>,
    pub windows_us: Vec<u32>,
    pub trials: usize,
    /// Suite time per ifstress trial before it counts as censored.
    pub cap: Duration,
    /// The same for shell-loop trials (they are slow to hit, if at all).
    pub shell_cap: Duration,
    pub shell: bool,
    /// Time a guest needs to boot before the suite starts, added to caps.
    pub boot_allowance: Duration,
}

/// What one trial saw.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Trial {
    pub hit: bool,
    /// Suite seconds to the hit, or watched without one (censored).
    pub seconds: f64,
    pub outcome: String,
    /// Why the guest was no trial (it never ran the suite): kept in the
    /// cell's list, left out of its counts and median.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_run: Option<crate::trials::NotRun>,
    /// racebench's counters after a trial that did not crash.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub counters: Vec<String>,
    /// Share of ops that found their target alive (ok / issued), from the
    /// guest's report; none for crashed guests or shell loops.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_share: Option<f64>,
    pub console: String,
}

/// Trials of one method at one window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Cell {
    pub scenario: String,
    pub suite: String,
    pub window_us: u32,
    /// `ifstress`, `shell`, or `ifstress fixed=1`.
    pub method: String,
    pub cap_s: f64,
    pub trials: Vec<Trial>,
    pub hits: usize,
    pub censored: usize,
    /// Guests that never ran the suite: not trials.
    pub not_run: usize,
    /// Kaplan–Meier median time to first hit over the trials, censored
    /// trials counted as such; None when fewer than half hit.
    pub median_s: Option<f64>,
    /// Share of trials still without a hit at the cap.
    pub survival_at_cap: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SeededReport {
    pub image: String,
    pub accel: String,
    pub cpus: u32,
    pub cells: Vec<Cell>,
    pub interrupted: bool,
    pub method: String,
}

pub const METHOD: &str = "Each trial is one fresh guest: time from the suite's start to the \
scenario's panic, or censored when the cap passed without one. Median = Kaplan-Meier over the \
trials (censored trials stay at risk until their cap); 'not reached' when fewer than half hit.";

/// The hit of this scenario, by its panic's title (a racebench constant).
fn is_hit(report: &crate::report::Report, scenario: &str) -> bool {
    let want = format!("racebench: seeded race {scenario} hit");
    report.findings.iter().any(|f| f.title.contains(&want))
}

/// ok / issued over every op kind of a finished guest's report.
fn live_share(report: &crate::report::Report) -> Option<f64> {
    let (ok, n) = report
        .ops
        .values()
        .fold((0u64, 0u64), |(ok, n), o| (ok + o.ok, n + o.count));
    (n > 0).then(|| (ok as f64 / n as f64 * 1000.0).round() / 1000.0)
}

/// One guest, one trial.
fn trial(
    cfg: &SeededConfig,
    sc: &Scenario,
    window: u32,
    method: &str,
    index: usize,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<Trial> {
    let shell = method == "shell";
    let fixed = method.ends_with("fixed=1");
    let cap = if shell { cfg.shell_cap } else { cfg.cap };
    let mut g = cfg.guest.clone();
    let dir = format!(
        "{}-{window}us-{}-{index}",
        sc.name,
        method.replace([' ', '='], "-")
    );
    g.out = cfg.guest.out.join(dir);
    g.suite = sc.suite.into();
    g.duration = cap + cfg.boot_allowance;
    g.max_guests = Some(1);
    g.parallel = 1;
    let mut params = vec![
        format!("scenarios={}", sc.name),
        format!("window_us={window}"),
    ];
    if fixed {
        params.push("fixed=1".into());
    }
    g.kmods = vec![GuestModule {
        file: cfg.racebench.clone(),
        params,
    }];
    if shell {
        std::fs::create_dir_all(&g.out)?;
        let script = g.out.join(format!("{}.sh", sc.name));
        std::fs::write(&script, sc.script)?;
        g.script = Some(script);
        g.tools = sc
            .tools
            .iter()
            .map(|t| {
                super::super::vm::which(t).ok_or_else(|| {
                    anyhow::Error::new(crate::error::UsageError(format!(
                        "`{t}` not found on this machine: the {} shell loop runs it in the guest (apt install {})",
                        sc.name,
                        if *t == "ip" { "iproute2" } else { t }
                    )))
                })
            })
            .collect::<anyhow::Result<_>>()?;
    }
    let r = crate::vm::run(&g, stop)?;
    r.write_json(&g.out.join("report.json"))?;
    let vm = r.vm.as_ref();
    if let Some(e) = vm.and_then(|v| v.module_error()) {
        anyhow::bail!(crate::error::UsageError(format!(
            "racebench did not load in the guest: {e}"
        )));
    }
    let guest = vm.and_then(|v| v.guests.first());
    let hit = is_hit(&r, sc.name);
    let guest_report_ops = !r.ops.is_empty();
    Ok(Trial {
        hit,
        seconds: guest.and_then(|g| g.suite_seconds).unwrap_or(0.0),
        outcome: guest.map_or("none".into(), |g| g.outcome.clone()),
        not_run: match guest {
            Some(g) => crate::trials::not_run(g),
            None => Some(crate::trials::NotRun::NoSuiteTime),
        },
        counters: guest
            .map(|g| {
                g.module_state
                    .iter()
                    .filter_map(|l| l.strip_prefix("racebench.counters "))
                    .filter(|l| l.starts_with(sc.name))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        live_share: if guest_report_ops {
            live_share(&r)
        } else {
            None
        },
        console: guest.map_or(String::new(), |g| g.console.clone()),
    })
}

fn cell(sc: &Scenario, window: u32, method: &str, cap: Duration, trials: Vec<Trial>) -> Cell {
    let ran: Vec<&Trial> = trials.iter().filter(|t| t.not_run.is_none()).collect();
    let obs: Vec<Observation> = ran
        .iter()
        .map(|t| Observation {
            time: t.seconds,
            event: t.hit,
        })
        .collect();
    let hits = ran.iter().filter(|t| t.hit).count();
    let n = ran.len().max(1);
    Cell {
        scenario: sc.name.into(),
        suite: sc.suite.into(),
        window_us: window,
        method: method.into(),
        cap_s: cap.as_secs_f64(),
        hits,
        censored: ran.len() - hits,
        not_run: trials.len() - ran.len(),
        median_s: km_median(&obs).map(|m| (m * 10.0).round() / 10.0),
        survival_at_cap: ((ran.len() - hits) as f64 / n as f64 * 100.0).round() / 100.0,
        trials,
    }
}

/// Every scenario, window and method; `progress` hears each trial.
pub fn run(
    cfg: &SeededConfig,
    stop: &Arc<AtomicBool>,
    progress: &dyn Fn(&str),
) -> anyhow::Result<SeededReport> {
    if !cfg.racebench.is_file() {
        anyhow::bail!(crate::error::UsageError(format!(
            "--racebench {}: no such file (build it: make -C vm/racebench)",
            cfg.racebench.display()
        )));
    }
    let mut cells = Vec::new();
    'all: for sc in &cfg.scenarios {
        for &w in &cfg.windows_us {
            let mut methods = vec!["ifstress"];
            if cfg.shell {
                methods.push("shell");
            }
            for m in methods {
                let cap = if m == "shell" { cfg.shell_cap } else { cfg.cap };
                let mut trials = Vec::new();
                for i in 1..=cfg.trials {
                    if stop.load(Relaxed) {
                        cells.push(cell(sc, w, m, cap, trials));
                        break 'all;
                    }
                    let t = trial(cfg, sc, w, m, i, stop)?;
                    progress(&format!(
                        "{} window {w} us, {m}, trial {i}: {} after {:.1} s ({}){}",
                        sc.name,
                        if t.hit { "hit" } else { "no hit" },
                        t.seconds,
                        t.outcome,
                        t.counters
                            .first()
                            .map(|c| format!(" [{c}]"))
                            .unwrap_or_default()
                    ));
                    trials.push(t);
                }
                cells.push(cell(sc, w, m, cap, trials));
            }
        }
        // The patched variant at the first (default) window: no hit allowed.
        if stop.load(Relaxed) {
            break;
        }
        let w = cfg.windows_us[0];
        let t = trial(cfg, sc, w, "ifstress fixed=1", 1, stop)?;
        progress(&format!(
            "{} window {w} us, fixed=1: {} after {:.1} s{}",
            sc.name,
            if t.hit { "HIT" } else { "no hit" },
            t.seconds,
            t.counters
                .first()
                .map(|c| format!(" [{c}]"))
                .unwrap_or_default()
        ));
        cells.push(cell(sc, w, "ifstress fixed=1", cfg.cap, vec![t]));
    }
    // Resolved (and probed) by the first guest's run; after it, whatever
    // a fallback made of it.
    let accel = crate::vm::accel::resolve(&cfg.guest.hv.qemu, cfg.guest.hv.accel).accel;
    Ok(SeededReport {
        image: cfg.guest.image.display().to_string(),
        accel: format!("{accel:?}").to_lowercase(),
        cpus: cfg.guest.cpus,
        cells,
        interrupted: stop.load(Relaxed),
        method: METHOD.into(),
    })
}

/// A table: one row per scenario, window and method.
pub fn render(r: &SeededReport) -> String {
    let mut s = format!(
        "seeded races ({}, {} vCPUs, {}){}\n",
        r.image,
        r.cpus,
        r.accel,
        if r.interrupted { " (interrupted)" } else { "" }
    );
    s.push_str(&format!(
        "{:<8} {:>9} {:<18} {:>7} {:>6} {:>11} {:>9} {:>6}  counters\n",
        "scenario", "window", "method", "trials", "hits", "median s", "cap s", "live"
    ));
    for c in &r.cells {
        let live: Vec<f64> = c.trials.iter().filter_map(|t| t.live_share).collect();
        let live = if live.is_empty() {
            "-".to_string()
        } else {
            format!("{:.2}", live.iter().sum::<f64>() / live.len() as f64)
        };
        s.push_str(&format!(
            "{:<8} {:>6} us {:<18} {:>7} {:>6} {:>11} {:>9.0} {:>6}  {}\n",
            c.scenario,
            c.window_us,
            c.method,
            c.trials.len() - c.not_run,
            c.hits,
            c.median_s
                .map_or("not reached".into(), |m| format!("{m:.1}")),
            c.cap_s,
            live,
            c.trials
                .iter()
                .find_map(|t| t.counters.first().cloned())
                .unwrap_or_default()
        ));
    }
    s.push_str(&format!("\n{}\n", r.method));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(hit: bool, seconds: f64) -> Trial {
        Trial {
            hit,
            seconds,
            outcome: if hit { "panic" } else { "finished" }.into(),
            not_run: None,
            counters: vec![],
            live_share: None,
            console: String::new(),
        }
    }

    #[test]
    fn every_scenario_names_a_shipped_suite_and_a_script_that_stops_by_itself() {
        for s in SCENARIOS {
            crate::suite::load(s.suite).unwrap();
            assert!(s.script.starts_with("#!/bin/sh\n"), "{}", s.name);
            // Bounded: every loop compares against the end time.
            assert!(
                s.script.contains("end=$(( $(date +%s) + d ))"),
                "{}",
                s.name
            );
            assert!(s.script.contains("-lt \"$end\""), "{}", s.name);
            assert!(s.script.trim_end().ends_with("wait"), "{}", s.name);
        }
        assert_eq!(scenario("media").unwrap().suite, "ioctl");
        assert!(scenario("nope").is_none());
    }

    #[test]
    fn a_cell_counts_censored_trials_and_takes_the_kaplan_meier_median() {
        let sc = scenario("vmove").unwrap();
        let c = cell(
            sc,
            2000,
            "ifstress",
            Duration::from_secs(600),
            vec![t(true, 30.0), t(false, 600.0), t(true, 10.0), t(true, 50.0)],
        );
        assert_eq!((c.hits, c.censored), (3, 1));
        assert_eq!(c.median_s, Some(30.0));
        assert_eq!(c.survival_at_cap, 0.25);
        // A guest that never ran the suite is not a censored trial.
        let mut boot = t(false, 0.0);
        boot.not_run = Some(crate::trials::NotRun::BootPanic);
        let with_boot = cell(
            sc,
            2000,
            "ifstress",
            Duration::from_secs(600),
            vec![t(true, 30.0), t(false, 600.0), boot],
        );
        assert_eq!(
            (with_boot.hits, with_boot.censored, with_boot.not_run),
            (1, 1, 1)
        );
        assert_eq!(with_boot.survival_at_cap, 0.5);
        let none = cell(
            sc,
            2000,
            "shell",
            Duration::from_secs(180),
            vec![t(false, 180.0), t(false, 181.0), t(true, 100.0)],
        );
        assert_eq!(none.median_s, None);
        assert!(
            render(&SeededReport {
                image: "k".into(),
                accel: "tcg".into(),
                cpus: 2,
                cells: vec![c, none],
                interrupted: false,
                method: METHOD.into(),
            })
            .contains("not reached")
        );
    }
}
