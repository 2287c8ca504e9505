//! Oracles: what turns a run into findings. Each check is OS-neutral; the
//! platform supplies the raw material (kernel messages, leftovers, stacks).

mod finding;
pub mod known;
pub mod leak;
pub mod triage;

pub use finding::Finding;

/// `ifstress triage`: findings in files (or `-` for stdin), known issues marked.
pub fn triage_files(files: &[String]) -> anyhow::Result<Vec<Finding>> {
    use anyhow::Context;
    use std::io::Read;
    let mut s = triage::Scanner::default();
    for name in files {
        let mut bytes = Vec::new();
        if name == "-" {
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("reading stdin")?;
        } else {
            bytes = std::fs::read(name)
                .map_err(|e| crate::error::UsageError(format!("{name}: {e}")))?;
        }
        s.source(name);
        for line in String::from_utf8_lossy(&bytes).lines() {
            s.feed(line);
        }
    }
    let mut f = s.into_findings();
    known::annotate(&mut f, &known::load(), None);
    Ok(f)
}
