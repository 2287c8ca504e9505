//! The few distributions `verdict` needs, written out so that no statistics
//! crate is pulled in: ln Γ (Lanczos), the regularized incomplete gamma
//! function, its inverse, the exact (Garwood) Poisson interval built on it,
//! and the Kaplan–Meier median.

/// Relative accuracy the iterative sums stop at; close to f64's epsilon.
const EPS: f64 = 1e-15;
/// Stand-in for zero in the continued fraction, so no division blows up.
const TINY: f64 = 1e-300;
/// More terms than any argument `verdict` can produce needs (a ~ events).
const MAX_TERMS: usize = 10_000;

/// Lanczos coefficients for g = 7, nine terms (Godfrey's set): ln Γ to
/// about 15 significant digits for x > 0.
const LANCZOS_G: f64 = 7.0;
const LANCZOS: [f64; 9] = [
    0.999_999_999_999_809_9,
    676.520_368_121_885_1,
    -1_259.139_216_722_402_8,
    771.323_428_777_653_1,
    -176.615_029_162_140_6,
    12.507_343_278_686_905,
    -0.138_571_095_265_720_12,
    9.984_369_578_019_572e-6,
    1.505_632_735_149_311_6e-7,
];

/// ln Γ(x) for x > 0.
pub fn ln_gamma(x: f64) -> f64 {
    use std::f64::consts::PI;
    if x < 0.5 {
        // Reflection: the series is accurate only for x >= 1/2.
        return (PI / (PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + LANCZOS_G + 0.5;
    let sum = LANCZOS[1..]
        .iter()
        .enumerate()
        .fold(LANCZOS[0], |s, (i, c)| s + c / (x + i as f64 + 1.0));
    0.5 * (2.0 * PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// ln of x^a e^-x / Γ(a): the factor both expansions of P(a, x) share.
fn prefactor_ln(a: f64, x: f64) -> f64 {
    a * x.ln() - x - ln_gamma(a)
}

/// P(a, x) by its power series; converges fast for x < a + 1.
fn gamma_p_series(a: f64, x: f64) -> f64 {
    let mut term = 1.0 / a;
    let mut sum = term;
    let mut denom = a;
    for _ in 0..MAX_TERMS {
        denom += 1.0;
        term *= x / denom;
        sum += term;
        if term.abs() < sum.abs() * EPS {
            break;
        }
    }
    sum * prefactor_ln(a, x).exp()
}

/// Q(a, x) = 1 - P(a, x) by its continued fraction (modified Lentz);
/// converges fast for x >= a + 1, where the series would need many terms.
fn gamma_q_fraction(a: f64, x: f64) -> f64 {
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / TINY;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..MAX_TERMS {
        let an = -(i as f64) * (i as f64 - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < TINY {
            d = TINY;
        }
        c = b + an / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < EPS {
            break;
        }
    }
    prefactor_ln(a, x).exp() * h
}

/// The regularized lower incomplete gamma function P(a, x), a > 0, x >= 0:
/// the CDF of a Gamma(a, 1) variable.
pub fn gamma_p(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        0.0
    } else if x < a + 1.0 {
        gamma_p_series(a, x)
    } else {
        1.0 - gamma_q_fraction(a, x)
    }
}

/// The x with P(a, x) = q, 0 < q < 1. Bisection: P is monotone in x, so it
/// cannot fail, and ~100 halvings cost nothing next to reading the reports.
pub fn gamma_quantile(a: f64, q: f64) -> f64 {
    let mut hi = a.max(1.0);
    while gamma_p(a, hi) < q {
        hi *= 2.0;
    }
    let mut lo = 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if gamma_p(a, mid) < q {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= hi * EPS {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// The chi-square quantile: χ²(q; ν) = 2 · Gamma(ν/2) quantile at q.
pub fn chi2_quantile(q: f64, dof: f64) -> f64 {
    2.0 * gamma_quantile(dof / 2.0, q)
}

/// The exact (Garwood) two-sided interval for the mean of a Poisson count
/// `k` at `confidence`: [χ²(α/2; 2k)/2, χ²(1-α/2; 2k+2)/2], with the lower
/// end 0 when k = 0 (χ² with 0 degrees of freedom is the point 0).
pub fn poisson_interval(k: u64, confidence: f64) -> (f64, f64) {
    let alpha = 1.0 - confidence;
    let k = k as f64;
    let lo = if k == 0.0 {
        0.0
    } else {
        chi2_quantile(alpha / 2.0, 2.0 * k) / 2.0
    };
    let hi = chi2_quantile(1.0 - alpha / 2.0, 2.0 * k + 2.0) / 2.0;
    (lo, hi)
}

/// P(X >= k) for X ~ Binomial(n, p), summed exactly term by term in logs
/// (n is a count of crashes: small).
pub fn binomial_upper_tail(n: u64, k: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let ln_choose = |i: u64| {
        ln_gamma(n as f64 + 1.0) - ln_gamma(i as f64 + 1.0) - ln_gamma((n - i) as f64 + 1.0)
    };
    let sum: f64 = (k..=n)
        .map(|i| (ln_choose(i) + i as f64 * p.ln() + (n - i) as f64 * (1.0 - p).ln()).exp())
        .sum();
    sum.min(1.0)
}

/// One trial for Kaplan–Meier: when it hit, or until when it was watched
/// without a hit (censored).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    pub time: f64,
    pub event: bool,
}

/// The Kaplan–Meier median: the first time the estimated survival falls to
/// 0.5 or below; None when it never does (median not reached). At a tie,
/// events come before censorings, the usual convention: a trial censored at
/// t was still at risk at t.
pub fn km_median(obs: &[Observation]) -> Option<f64> {
    let mut obs = obs.to_vec();
    obs.sort_by(|a, b| a.time.total_cmp(&b.time).then(b.event.cmp(&a.event)));
    let mut at_risk = obs.len() as f64;
    let mut survival = 1.0;
    let mut i = 0;
    while i < obs.len() {
        let t = obs[i].time;
        let same: Vec<&Observation> = obs[i..].iter().take_while(|o| o.time == t).collect();
        let events = same.iter().filter(|o| o.event).count() as f64;
        if events > 0.0 {
            survival *= 1.0 - events / at_risk;
            // A product like (3/4)(2/3) lands a hair off 0.5.
            if survival <= 0.5 + 1e-12 {
                return Some(t);
            }
        }
        at_risk -= same.len() as f64;
        i += same.len();
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn binomial_upper_tail_matches_hand_sums() {
        // P(X >= 3), X ~ Bin(4, 0.5) = (4 + 1) / 16.
        assert!((binomial_upper_tail(4, 3, 0.5) - 5.0 / 16.0).abs() < 1e-12);
        // All n after at share p: p^n.
        assert!((binomial_upper_tail(6, 6, 0.5) - 0.5f64.powi(6)).abs() < 1e-12);
        assert_eq!(binomial_upper_tail(5, 0, 0.3), 1.0);
        assert_eq!(binomial_upper_tail(5, 6, 0.3), 0.0);
        assert_eq!(binomial_upper_tail(5, 2, 0.0), 0.0);
        // 1 - P(0) - P(1) for Bin(10, 0.2).
        let want = 1.0 - 0.8f64.powi(10) - 10.0 * 0.2 * 0.8f64.powi(9);
        assert!((binomial_upper_tail(10, 2, 0.2) - want).abs() < 1e-12);
    }

    use super::*;

    fn close(got: f64, want: f64, tol: f64) {
        assert!(
            (got - want).abs() <= tol,
            "got {got}, want {want} (tolerance {tol})"
        );
    }

    #[test]
    fn ln_gamma_known_values() {
        close(ln_gamma(1.0), 0.0, 1e-13);
        close(ln_gamma(2.0), 0.0, 1e-13);
        close(ln_gamma(0.5), 0.5 * std::f64::consts::PI.ln(), 1e-13);
        close(ln_gamma(10.0), 362_880f64.ln(), 1e-12);
        close(ln_gamma(0.1), 2.252_712_651_734_206, 1e-12);
        close(ln_gamma(100.0), 359.134_205_369_575_4, 1e-9);
    }

    #[test]
    fn gamma_p_known_values() {
        // P(1, x) = 1 - e^-x; P(1/2, x) = erf(sqrt x).
        for x in [0.01, 0.5, 1.0, 3.0, 20.0] {
            close(gamma_p(1.0, x), 1.0 - (-x).exp(), 1e-13);
        }
        close(gamma_p(0.5, 1.0), 0.842_700_792_949_714_9, 1e-13);
        close(gamma_p(0.5, 4.0), 0.995_322_265_018_952_7, 1e-13);
        // Both sides of the series / fraction switch at a + 1 agree.
        let a = 5.0;
        close(gamma_p(a, a + 1.0 - 1e-9), gamma_p(a, a + 1.0 + 1e-9), 1e-9);
        assert_eq!(gamma_p(3.0, 0.0), 0.0);
    }

    #[test]
    fn chi2_quantiles_match_tables() {
        close(chi2_quantile(0.95, 1.0), 3.841_458_820_694_124, 1e-9);
        close(chi2_quantile(0.95, 10.0), 18.307_038_053_275_14, 1e-9);
        close(chi2_quantile(0.025, 20.0), 9.590_777_392_264_87, 1e-9);
        close(chi2_quantile(0.5, 2.0), 2.0 * 2f64.ln(), 1e-12);
    }

    #[test]
    fn garwood_intervals_match_published_values() {
        let cases = [
            (0, 0.95, 0.0, 3.6889),
            (1, 0.95, 0.0253, 5.5716),
            (10, 0.95, 4.7954, 18.3904),
            (5, 0.99, 1.0779, 14.1495),
        ];
        for (k, c, lo, hi) in cases {
            let (l, h) = poisson_interval(k, c);
            close(l, lo, 1e-3);
            close(h, hi, 1e-3);
        }
        // The closed forms where they exist: 0 and 1 events.
        close(poisson_interval(0, 0.95).1, -(0.025f64.ln()), 1e-10);
        close(poisson_interval(1, 0.95).0, -(0.975f64.ln()), 1e-10);
    }

    fn ev(time: f64) -> Observation {
        Observation { time, event: true }
    }

    fn cens(time: f64) -> Observation {
        Observation { time, event: false }
    }

    #[test]
    fn km_median_without_censoring_is_the_sample_median_event() {
        // S: 3/4, 1/2 at t = 2.
        assert_eq!(km_median(&[ev(4.0), ev(1.0), ev(3.0), ev(2.0)]), Some(2.0));
    }

    #[test]
    fn km_median_counts_a_censored_trial_only_while_at_risk() {
        // At 1: 4/5; censored at 2 leaves 3 at risk; at 3: 0.8 * 2/3 = 0.533;
        // at 4: 0.267. Dropping the censored trial, or counting it as an
        // event, would both give 3.
        let obs = [ev(1.0), cens(2.0), ev(3.0), ev(4.0), ev(5.0)];
        assert_eq!(km_median(&obs), Some(4.0));
    }

    #[test]
    fn km_median_not_reached() {
        assert_eq!(km_median(&[ev(1.0), cens(2.0), cens(3.0), cens(4.0)]), None);
        assert_eq!(km_median(&[cens(5.0)]), None);
        assert_eq!(km_median(&[]), None);
    }

    #[test]
    fn km_median_tie_counts_the_event_first() {
        // Event and censoring at 1 out of 2: S(1) = 1/2 with both at risk.
        assert_eq!(km_median(&[cens(1.0), ev(1.0)]), Some(1.0));
    }
}
