use super::*;

/// A simulated kernel: the race needs every op kind of `needs` somewhere in
/// the suite and at least two workers; its rate grows with the share of
/// workers' weight on those kinds (fewer distractions, more collisions).
struct Sim {
    needs: Vec<OpKind>,
    /// Hits per second when every op is a needed one.
    full_rate: f64,
    rng: fastrand::Rng,
    batches: usize,
    stop_after: Option<(usize, Arc<AtomicBool>)>,
    parallel: usize,
    /// repro.json's outcome and step count as each batch starts.
    seen: Vec<(String, usize)>,
    json: Option<PathBuf>,
}

impl Sim {
    fn new(needs: &[OpKind], full_rate: f64) -> Sim {
        Sim {
            needs: needs.to_vec(),
            full_rate,
            rng: fastrand::Rng::with_seed(42),
            batches: 0,
            stop_after: None,
            parallel: 1,
            seen: Vec::new(),
            json: None,
        }
    }

    fn rate(&self, s: &Suite) -> f64 {
        let kinds = s.op_kinds();
        if !self.needs.iter().all(|n| kinds.contains(n)) {
            return 0.0;
        }
        let workers: usize = s.loops.iter().map(|l| l.workers).sum();
        if workers < 2 {
            return 0.0;
        }
        let (mut on, mut all) = (0.0, 0.0);
        for l in &s.loops {
            let total: u32 = l.ops.values().sum();
            for (op, w) in &l.ops {
                let share = *w as f64 / total as f64 * l.workers as f64;
                all += share;
                if self.needs.contains(op) {
                    on += share;
                }
            }
        }
        self.full_rate * on / all
    }
}

impl Guests for Sim {
    fn width(&self) -> usize {
        self.parallel
    }

    fn run(
        &mut self,
        _label: &str,
        suite: &Suite,
        cap: f64,
        _seed: Option<u64>,
    ) -> anyhow::Result<Batch> {
        self.batches += 1;
        if let Some(j) = &self.json
            && let Ok(t) = std::fs::read_to_string(j)
        {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            self.seen.push((
                v["outcome"].as_str().unwrap().to_string(),
                v["steps"].as_array().unwrap().len(),
            ));
        }
        if let Some((n, stop)) = &self.stop_after
            && self.batches > *n
        {
            stop.store(true, Relaxed);
        }
        let rate = self.rate(suite);
        let trials = (0..self.parallel)
            .map(|_| {
                let t = if rate > 0.0 {
                    -(1.0 - self.rng.f64()).ln() / rate
                } else {
                    f64::INFINITY
                };
                let hit = t <= cap;
                let seconds = if hit { t } else { cap };
                Trial {
                    hit,
                    seconds,
                    guest_seconds: seconds + 20.0,
                }
            })
            .collect();
        Ok(Batch { trials, dir: None })
    }
}

fn cfg(out: &Path) -> ReproConfig {
    let mut scores = BTreeMap::new();
    // The crashed run's journal: the movers and destroyers ran last.
    scores.insert(OpKind::Move, 1000);
    scores.insert(OpKind::Destroy, 999);
    scores.insert(OpKind::Create, 998);
    scores.insert(OpKind::Mtu, 1000);
    scores.insert(OpKind::UpDown, 990);
    ReproConfig {
        signature: "sig".into(),
        title: "racebench: seeded race vmove hit".into(),
        original: crate::suite::load("all").unwrap(),
        seed: Some(7),
        scores,
        prior: (1, 3.0),
        trials: 5,
        miss: 0.05,
        budget: Duration::from_secs(3600),
        out: out.to_path_buf(),
        os: shell::Os::Linux,
    }
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ifstress-repro-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn the_step_budget_is_ln_one_over_miss_at_the_lower_rate_bound() {
    // chi2(0.10; 10) = 4.865: λ_lo = 4.865 / 2 / 15 s.
    let e = step_budget(5, 15.0, 0.05).unwrap();
    assert!((e - 20f64.ln() / (4.865 / 30.0)).abs() < 0.05, "{e}");
    // One hit in 3 s: λ_lo = 0.1054/3, E about 85 s.
    let e1 = step_budget(1, 3.0, 0.05).unwrap();
    assert!((e1 - 85.3).abs() < 0.5, "{e1}");
    assert!(step_budget(0, 100.0, 0.05).is_none());
}

#[test]
fn hit_times_count_censored_trials_as_censored() {
    let t = |hit, s| Trial {
        hit,
        seconds: s,
        guest_seconds: s,
    };
    let h = HitTimes::of(&[t(true, 2.0), t(false, 50.0), t(true, 4.0), t(true, 6.0)]);
    assert_eq!((h.trials, h.hits), (4, 3));
    assert_eq!(h.median_s, Some(4.0));
    assert_eq!(h.exposure_s, 62.0);
    assert!((h.rate_per_hour - 3.0 / 62.0 * 3600.0).abs() < 1e-9);
    let none = HitTimes::of(&[t(false, 9.0), t(false, 9.0), t(true, 3.0)]);
    assert_eq!(none.median_s, None);
}

#[test]
fn all_is_reduced_to_the_ops_the_race_needs_and_the_files_load() {
    let out = tmp("min");
    let c = cfg(&out);
    let mut sim = Sim::new(&[OpKind::Move, OpKind::Destroy, OpKind::Create], 0.2);
    let stop = Arc::new(AtomicBool::new(false));
    let r = run(&c, &mut sim, &stop).unwrap();
    assert_eq!(r.outcome, Outcome::Reproduced, "{}", r.statement);
    let s = crate::suite::load(out.join("repro.toml").to_str().unwrap()).unwrap();
    assert_eq!(
        s.op_kinds(),
        vec![OpKind::Create, OpKind::Destroy, OpKind::Move],
        "{}",
        brief(&s)
    );
    assert!(s.loops.len() <= 2);
    // The simulated race needs one stack of any kind.
    assert_eq!(s.topology.stacks + s.topology.churn_stacks, 1);
    assert_eq!(s.name, "all-repro");
    let confirm = r.confirm.as_ref().unwrap();
    assert_eq!(confirm.hits, 5);
    let minimal = r.minimal.as_ref().unwrap();
    assert_eq!(minimal.trials, 5);
    // Every kept step hit; every refused one watched a full E without a hit.
    let e = r.step_budget_s.unwrap();
    for st in r.steps.iter().filter(|s| s.phase == "reduce") {
        match st.kept {
            Some(true) => assert!(st.hits > 0),
            Some(false) => assert!(st.hits == 0 && st.exposure_s >= e - 0.1, "{st:?}"),
            None => panic!("unjudged step {st:?}"),
        }
    }
    // The journal's jump came first and was kept: the journal's four kinds
    // stayed and everything else went in one step.
    assert_eq!(r.steps[1].kept, Some(true), "{:?}", r.steps[1]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("repro.json")).unwrap()).unwrap();
    assert_eq!(json["outcome"], "reproduced");
    assert!(json["steps"].as_array().unwrap().len() >= 3);
    let sh = std::fs::read_to_string(out.join("repro.sh")).unwrap();
    assert!(sh.contains("op_move()") && sh.contains("op_create()"));
    assert!(!sh.contains("op_mtu()"));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_fixed_kernel_ends_not_reproduced_with_the_exposure_spent() {
    let out = tmp("fixed");
    let c = cfg(&out);
    let mut sim = Sim::new(&[OpKind::Move], 0.0);
    let stop = Arc::new(AtomicBool::new(false));
    let r = run(&c, &mut sim, &stop).unwrap();
    assert_eq!(r.outcome, Outcome::NotReproduced);
    assert!(
        r.statement.starts_with("not reproduced within budget"),
        "{}",
        r.statement
    );
    let h = r.confirm.as_ref().unwrap();
    // It watched at least the report's give-up time (one hit in 3 s: 85 s).
    assert!(h.exposure_s >= 85.0, "{h:?}");
    assert_eq!(r.steps.len(), 1);
    assert!(r.minimal.is_none());
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn an_interrupted_repro_keeps_the_best_suite_and_its_steps() {
    let out = tmp("int");
    let c = cfg(&out);
    let stop = Arc::new(AtomicBool::new(false));
    let mut sim = Sim::new(&[OpKind::Move, OpKind::Destroy, OpKind::Create], 0.2);
    sim.stop_after = Some((8, stop.clone()));
    sim.json = Some(out.join("repro.json"));
    let r = run(&c, &mut sim, &stop).unwrap();
    assert_eq!(r.outcome, Outcome::Interrupted);
    // While it ran, the file said so and grew batch by batch.
    assert!(
        sim.seen.iter().all(|(o, _)| o == "running"),
        "{:?}",
        sim.seen
    );
    assert!(sim.seen.windows(2).all(|w| w[0].1 <= w[1].1));
    assert!(sim.seen.last().unwrap().1 >= 2, "{:?}", sim.seen);
    assert!(out.join("repro.toml").is_file());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("repro.json")).unwrap()).unwrap();
    assert_eq!(json["outcome"], "interrupted");
    crate::suite::load(out.join("repro.toml").to_str().unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn side_by_side_guests_share_a_step() {
    let out = tmp("par");
    let c = cfg(&out);
    let mut sim = Sim::new(&[OpKind::Move, OpKind::Destroy, OpKind::Create], 0.2);
    sim.parallel = 2;
    let stop = Arc::new(AtomicBool::new(false));
    let r = run(&c, &mut sim, &stop).unwrap();
    assert_eq!(r.outcome, Outcome::Reproduced);
    assert!(r.minimal.as_ref().unwrap().trials >= 5);
    let _ = std::fs::remove_dir_all(&out);
}
