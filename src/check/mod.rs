//! Oracles: what turns a run into findings. Each check is OS-neutral; the
//! platform supplies the raw material (kernel messages, leftovers, stacks).

pub mod console;

use serde::{Deserialize, Serialize};

/// Something a kernel developer should look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// "kernel-log", "hang", "leftover", "dying-stack".
    pub kind: String,
    pub title: String,
    /// The lines that matter, bounded.
    pub excerpt: String,
}

impl Finding {
    pub fn new(kind: &str, title: impl Into<String>, excerpt: impl Into<String>) -> Finding {
        Finding {
            kind: kind.to_string(),
            title: title.into(),
            excerpt: excerpt.into(),
        }
    }
}
