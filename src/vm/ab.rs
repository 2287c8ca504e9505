//! `ifstress vm ab`: the A/B patch check. "Before" guests run the unpatched
//! kernel (or module), "after" guests the patched one; both sides run the
//! same suite in slices that alternate (or run side by side with
//! `--parallel 2`), so whatever the host does meanwhile falls on both. After
//! each round the reports gathered so far go through `verdict`; the run
//! stops as soon as the verdict is decided (fixed or still-broken) or the
//! budget is spent.
//!
//! Looking after every round costs little here: "still-broken" is final at
//! the first after hit, so "fixed" can only be said while every hit so far
//! fell before. Under equal rates each hit falls after with probability
//! T_a/(T_a+T_b); as long as both sides gain exposure round by round (they
//! alternate), the chance that the first k hits all fell before is about
//! (T_b/(T_a+T_b))^k, the p-value the verdict reports. It is not exact when
//! the exposure ratio swings between rounds (a side whose guests crash at
//! once gains little suite time), which the README says.

use super::{GuestModule, VmConfig};
use crate::verdict::{self, Verdict};
use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// What differs between the sides.
#[derive(Debug, Clone, Default)]
pub struct Side {
    /// The guest image (kernel) of this side; the common `--image` if none.
    pub image: Option<PathBuf>,
    /// Modules for this side only, loaded after the common ones.
    pub kmods: Vec<PathBuf>,
    /// Parameters for this side only (`NAME=VALUE` or `MODULE.NAME=VALUE`).
    pub params: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct AbConfig {
    /// Everything both sides share; its `duration` is ignored (slices are
    /// used) and its modules are loaded on both sides.
    pub base: VmConfig,
    /// The common `--module-param` values (before the side's own).
    pub common_params: Vec<String>,
    pub common_kmods: Vec<PathBuf>,
    pub before: Side,
    pub after: Side,
    /// Wall time for the whole comparison.
    pub budget: Duration,
    /// Guest time per side per round.
    pub slice: Duration,
    pub criteria: crate::verdict::Criteria,
}

/// Which side a report belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Before,
    After,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Before => "before",
            Which::After => "after",
        }
    }
}

impl AbConfig {
    /// The guest configuration of one side's slice in `round`.
    fn side_cfg(&self, which: Which, round: usize) -> Result<VmConfig, String> {
        let side = match which {
            Which::Before => &self.before,
            Which::After => &self.after,
        };
        let mut files = self.common_kmods.clone();
        files.extend(side.kmods.iter().cloned());
        let mut params = self.common_params.clone();
        params.extend(side.params.iter().cloned());
        let mut c = self.base.clone();
        c.kmods = GuestModule::assign(&files, &params)?;
        if let Some(i) = &side.image {
            c.image = i.clone();
        }
        c.duration = self.slice;
        c.out = self.base.out.join(format!("{}-{round}", which.name()));
        // One seed per side and round, mixed (not added: guest seeds are
        // derived from it by index, and sums of small numbers meet), so that
        // no two slices and no two guests replay the same op sequence.
        c.seed = self.base.seed.map(|s| {
            crate::model::derive_seed(s, round as u64 * 2 + (which == Which::After) as u64)
        });
        c.parallel = 1;
        Ok(c)
    }

    /// Check both sides' module parameters before booting anything.
    pub fn validate(&self) -> Result<(), String> {
        self.side_cfg(Which::Before, 0)?;
        self.side_cfg(Which::After, 0)?;
        Ok(())
    }
}

/// Run rounds until decided or out of budget; the verdict over every
/// report, `partial` when interrupted or cut short by the budget.
pub fn run(cfg: &AbConfig, stop: &Arc<AtomicBool>) -> anyhow::Result<Verdict> {
    cfg.validate().map_err(crate::error::UsageError)?;
    std::fs::create_dir_all(&cfg.base.out)
        .with_context(|| format!("creating {}", cfg.base.out.display()))?;
    let t0 = Instant::now();
    let mut before: Vec<(String, serde_json::Value)> = Vec::new();
    let mut after: Vec<(String, serde_json::Value)> = Vec::new();
    let side_by_side = cfg.base.parallel >= 2;
    let mut round = 0;
    loop {
        round += 1;
        // Alternate which side goes first, so a drift of the host over time
        // does not fall on one side only.
        let order = if round % 2 == 1 {
            [Which::Before, Which::After]
        } else {
            [Which::After, Which::Before]
        };
        let results: Vec<(Which, anyhow::Result<crate::report::Report>)> = if side_by_side {
            std::thread::scope(|sc| {
                let hs: Vec<_> = order
                    .iter()
                    .map(|&w| sc.spawn(move || (w, slice(cfg, w, round, stop))))
                    .collect();
                hs.into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            (Which::Before, Err(anyhow::anyhow!("a side panicked")))
                        })
                    })
                    .collect()
            })
        } else {
            order
                .iter()
                .map(|&w| (w, slice(cfg, w, round, stop)))
                .collect()
        };
        for (w, r) in results {
            let r = r?;
            if let Some(e) = r.vm.as_ref().and_then(|v| v.module_error()) {
                return Err(crate::error::UsageError(format!(
                    "{} side: a --module did not load in the guest: {e}",
                    w.name()
                ))
                .into());
            }
            let name = format!("{}-{round}", w.name());
            let value = serde_json::to_value(&r)?;
            match w {
                Which::Before => before.push((name, value)),
                Which::After => after.push((name, value)),
            }
        }
        let v = verdict::judge_reports(&before, &after, &cfg.criteria)?;
        eprintln!(
            "ifstress vm ab: round {round}: before {} hit(s) in {:.3} h, after {} in {:.3} h: {}",
            v.before.hits,
            v.before.exposure_hours,
            v.after.hits,
            v.after.exposure_hours,
            v.verdict.as_str()
        );
        let decided = matches!(
            v.verdict,
            verdict::Outcome::Fixed
                | verdict::Outcome::StillBroken
                | verdict::Outcome::Regressed
                | verdict::Outcome::Incomparable
        );
        let interrupted = stop.load(Relaxed);
        // Another round takes two slices (one when side by side), plus boots.
        let round_time = if side_by_side {
            cfg.slice
        } else {
            cfg.slice * 2
        };
        let out_of_budget = t0.elapsed() + round_time > cfg.budget;
        if decided || interrupted || out_of_budget {
            let mut v = v;
            v.partial = interrupted;
            if interrupted {
                v.notes.push(format!("interrupted after {round} round(s)"));
            } else if !decided {
                v.notes.push(format!(
                    "budget spent after {round} round(s) ({:.0} s of {:.0} s)",
                    t0.elapsed().as_secs_f64(),
                    cfg.budget.as_secs_f64()
                ));
            }
            return Ok(v);
        }
    }
}

/// One side's slice: a `vm run` of `slice` guest time, its report kept in
/// the side's directory (so an interrupted comparison keeps what it ran).
fn slice(
    cfg: &AbConfig,
    which: Which,
    round: usize,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<crate::report::Report> {
    let c = cfg
        .side_cfg(which, round)
        .map_err(crate::error::UsageError)?;
    eprintln!(
        "ifstress vm ab: round {round}: {} side for {} s",
        which.name(),
        c.duration.as_secs()
    );
    let r = super::run(&c, stop)?;
    std::fs::create_dir_all(&c.out)?;
    r.write_json(&c.out.join("report.json"))
        .with_context(|| format!("writing {}/report.json", c.out.display()))?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> VmConfig {
        VmConfig {
            guest: super::super::GuestOs::Linux,
            image: "/boot/vmlinuz".into(),
            suite: "vmove".into(),
            duration: Duration::from_secs(3600),
            cpus: 2,
            mem_mib: 1024,
            hv: super::super::machine::HypervisorConfig {
                kind: super::super::machine::HypervisorKind::Qemu,
                qemu: "qemu-system-x86_64".into(),
                accel: super::super::qemu::Accel::Tcg,
                firmware: None,
            },
            out: "/tmp/ab".into(),
            binary: None,
            busybox: None,
            modules: None,
            hang_timeout: Duration::from_secs(300),
            boot_timeout: Duration::from_secs(600),
            console_timeout: crate::vm::CONSOLE_TIMEOUT,
            seed: Some(7),
            replay_seed: None,
            keep: Default::default(),
            inject: None,
            kmods: vec![],
            parallel: 1,
            max_guests: None,
            script: None,
            tools: vec![],
        }
    }

    #[test]
    fn sides_share_modules_and_differ_by_their_own_parameters_and_images() {
        let cfg = AbConfig {
            base: base(),
            common_params: vec!["scenarios=vmove".into()],
            common_kmods: vec!["/m/racebench.ko".into()],
            before: Side::default(),
            after: Side {
                image: Some("/boot/vmlinuz-patched".into()),
                kmods: vec![],
                params: vec!["fixed=1".into()],
            },
            budget: Duration::from_secs(600),
            slice: Duration::from_secs(90),
            criteria: crate::verdict::Criteria {
                signature: None,
                confidence: 0.95,
                min_work: crate::verdict::MIN_WORK,
            },
        };
        let b = cfg.side_cfg(Which::Before, 1).unwrap();
        let a = cfg.side_cfg(Which::After, 1).unwrap();
        assert_eq!(b.kmods[0].params, vec!["scenarios=vmove"]);
        assert_eq!(a.kmods[0].params, vec!["scenarios=vmove", "fixed=1"]);
        assert_eq!(b.image, PathBuf::from("/boot/vmlinuz"));
        assert_eq!(a.image, PathBuf::from("/boot/vmlinuz-patched"));
        assert_eq!((b.duration, a.duration), (cfg.slice, cfg.slice));
        assert_eq!(b.out, PathBuf::from("/tmp/ab/before-1"));
        assert_eq!(a.out, PathBuf::from("/tmp/ab/after-1"));
        assert_ne!(a.seed, b.seed);
        assert_ne!(cfg.side_cfg(Which::Before, 2).unwrap().seed, b.seed);
        // No guest of one slice shares a seed with a guest of another.
        let mut seeds = std::collections::BTreeSet::new();
        for round in 1..=20 {
            for w in [Which::Before, Which::After] {
                let s0 = cfg.side_cfg(w, round).unwrap().seed.unwrap();
                for g in 1..=50 {
                    assert!(seeds.insert(crate::model::derive_seed(s0, g)));
                }
            }
        }
    }

    #[test]
    fn a_side_parameter_without_a_module_is_refused_before_any_boot() {
        let cfg = AbConfig {
            base: base(),
            common_params: vec![],
            common_kmods: vec![],
            before: Side::default(),
            after: Side {
                params: vec!["fixed=1".into()],
                ..Side::default()
            },
            budget: Duration::from_secs(600),
            slice: Duration::from_secs(90),
            criteria: crate::verdict::Criteria {
                signature: None,
                confidence: 0.95,
                min_work: crate::verdict::MIN_WORK,
            },
        };
        let e = cfg.validate().unwrap_err();
        assert!(e.contains("no --module given"), "{e}");
    }
}
