//! Oracles: what turns a run into findings. Each check is OS-neutral; the
//! platform supplies the raw material (kernel messages, leftovers, stacks).

mod finding;
pub mod known;
pub mod leak;
pub mod triage;

pub use finding::Finding;

/// `ifstress triage`: findings in files (or `-` for stdin), known issues
/// marked for the kernel `osreldate` names (without it, only rules for any
/// kernel mark). Each input is streamed: memory is bounded by the findings.
pub fn triage_files(files: &[String], osreldate: Option<i64>) -> anyhow::Result<Vec<Finding>> {
    use anyhow::Context;
    let mut s = triage::Scanner::default();
    for name in files {
        if name == "-" {
            s.read(name, std::io::stdin().lock())
                .context("reading stdin")?;
        } else {
            let f = std::fs::File::open(name)
                .map_err(|e| crate::error::UsageError(format!("{name}: {e}")))?;
            s.read(name, std::io::BufReader::with_capacity(1 << 16, f))
                .map_err(|e| crate::error::UsageError(format!("{name}: {e}")))?;
        }
    }
    let mut f = s.into_findings();
    known::annotate(
        &mut f,
        &known::load(),
        known::Kernel {
            os: None,
            osreldate,
        },
    );
    Ok(f)
}
