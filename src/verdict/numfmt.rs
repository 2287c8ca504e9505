//! Numbers as the verdict prints them: a leaf its parts share.

/// Three significant digits, plain down to 0.001, then scientific; "-" for
/// what has no value (a rate without exposure).
pub fn num(x: f64) -> String {
    let a = x.abs();
    if !x.is_finite() {
        "-".into()
    } else if x == 0.0 {
        "0".into()
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 0.001 {
        let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
        format!("{x:.decimals$}")
    } else {
        format!("{x:.2e}")
    }
}
