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
