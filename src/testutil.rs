//! What the crate's own unit tests share.

/// A prerequisite is missing: a failure under CI (`CI` set); elsewhere said
/// on stderr directly, past the test harness's capture, so it is seen.
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
