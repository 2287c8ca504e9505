//! What the crate's tests share with the integration tests in `tests/`
//! (compiled always, so that they can call it; hidden from the docs).

/// A prerequisite is missing. Under CI (`CI` set) that fails the test: an
/// install step that silently failed must not turn into green. Elsewhere the
/// skip is written to stderr directly, past the harness's capture (which
/// takes only `print!`/`eprint!`), so it shows in `cargo test`'s output
/// beside the test's "ok" instead of passing unseen.
pub fn skip(why: &str) {
    let name = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    if std::env::var_os("CI").is_some() {
        panic!("{name}: prerequisite missing under CI: {why}");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {name}: {why}");
}

/// What a test needs, and so which machines can run it. A CI names the
/// tiers its machine has in `IFSTRESS_TIERS` (comma-separated); a test of a
/// tier it did not name is left out with a note, never failed, while a test
/// of a named tier whose prerequisite is missing fails under CI (`skip`).
/// Unset, every tier runs (and a missing prerequisite is a noted skip
/// outside CI, as before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// The repository and its build tools only (parsers, renderers, unit
    /// logic, the CI files, the man page, the ABI against FreeBSD's headers).
    Static,
    /// The shared fixtures beside the repository (`../shared/fixtures`).
    Fixtures,
    /// Root on this machine's own kernel: real stacks and interfaces (Linux
    /// namespaces, FreeBSD VNET jails), tagged and removed.
    Host,
    /// Disposable guests: QEMU and a guest kernel.
    Guest,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::Static, Tier::Fixtures, Tier::Host, Tier::Guest];

    pub fn name(self) -> &'static str {
        match self {
            Tier::Static => "static",
            Tier::Fixtures => "fixtures",
            Tier::Host => "host",
            Tier::Guest => "guest",
        }
    }
}

/// The tiers a value of `IFSTRESS_TIERS` names; `None` (unset) is all.
pub fn parse_tiers(v: Option<&str>) -> Result<Vec<Tier>, String> {
    let Some(v) = v else {
        return Ok(Tier::ALL.to_vec());
    };
    v.split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(|w| {
            Tier::ALL
                .into_iter()
                .find(|t| t.name() == w)
                .ok_or_else(|| {
                    format!("IFSTRESS_TIERS: unknown tier `{w}` (static, fixtures, host, guest)")
                })
        })
        .collect()
}

/// Whether this test run includes `tier`; when it does not, says so on
/// stderr (past the harness's capture, as `skip` does).
pub fn in_tier(tier: Tier) -> bool {
    let v = std::env::var("IFSTRESS_TIERS").ok();
    let tiers = parse_tiers(v.as_deref()).unwrap_or_else(|e| panic!("{e}"));
    if tiers.contains(&tier) {
        return true;
    }
    let name = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "NOT RUN {name}: tier {} is not in IFSTRESS_TIERS={}",
        tier.name(),
        v.unwrap_or_default()
    );
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_parse_and_unset_is_all() {
        assert_eq!(parse_tiers(None).unwrap(), Tier::ALL.to_vec());
        assert_eq!(
            parse_tiers(Some("static, host")).unwrap(),
            vec![Tier::Static, Tier::Host]
        );
        assert_eq!(parse_tiers(Some("")).unwrap(), vec![]);
        assert!(parse_tiers(Some("static,vm")).unwrap_err().contains("`vm`"));
    }
}
