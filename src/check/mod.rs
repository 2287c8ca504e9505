//! Oracles: what turns a run into findings. Each check is OS-neutral; the
//! platform supplies the raw material (kernel messages, leftovers, stacks).

pub mod known;
pub mod leak;
pub mod triage;

use serde::{Deserialize, Serialize};

/// Something a kernel developer should look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Console kinds: "panic", "fatal-trap", "double-fault",
    /// "lock-order-reversal", "witness", "bug", "warning", "gpf", "oops",
    /// "hung-task", "rcu-stall", "refcount", "netdev-leak", "lockdep".
    /// Run checks: "hang", "stall", "leftover", "dying-stack", "leak".
    pub kind: String,
    /// Normalised: the same bug gets the same title on any run or machine.
    pub title: String,
    /// Stable hash of kind and title, to deduplicate on.
    pub signature: String,
    /// Function names of the backtrace, innermost first.
    #[serde(default)]
    pub frames: Vec<String>,
    /// The first frame that is not trap, lock, wait or report machinery.
    #[serde(default)]
    pub guilty_frame: Option<String>,
    /// The lines that matter, bounded.
    pub excerpt: String,
    /// "PR 292993 ..." when the finding matches a known bug.
    #[serde(default)]
    pub known_issue: Option<String>,
    #[serde(default = "one")]
    pub count: u64,
    /// Where it was first seen: "FILE:LINE", "line N", or "+12.3s" into a run.
    #[serde(default)]
    pub first_seen: String,
}

fn one() -> u64 {
    1
}

impl Finding {
    /// A finding of a run check (not from a console).
    pub fn new(kind: &str, title: impl Into<String>, excerpt: impl Into<String>) -> Finding {
        let title = title.into();
        Finding {
            kind: kind.to_string(),
            signature: triage::signature(kind, &triage::normalize(&title)),
            title,
            frames: Vec::new(),
            guilty_frame: None,
            excerpt: excerpt.into(),
            known_issue: None,
            count: 1,
            first_seen: String::new(),
        }
    }

    /// Did this come from the kernel's console or message buffer?
    pub fn from_kernel_log(&self) -> bool {
        !matches!(
            self.kind.as_str(),
            "hang" | "stall" | "leftover" | "dying-stack" | "leak"
        )
    }
}

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
