//! One side's reports as the verdict reads them, and which findings are
//! crashes: a leaf that the verdict and its parts (regressions) share.

use crate::trials::Trials;

/// Finding kinds that describe the run, not a kernel bug: never picked
/// automatically and never regressions. Every other kind (panic, fatal-trap,
/// bug, warning, lock-order-reversal, hang, hung-task and whatever the
/// kernel-log parser learns next) counts. `stall` is here because it says
/// only that no op completed for a while; a stuck op is a `hang`.
const NOT_CRASH_LIKE: [&str; 6] = [
    "leftover",
    "dying-stack",
    "leak",
    "boot-failure",
    "lost",
    "stall",
];

pub fn crash_like(kind: &str) -> bool {
    !NOT_CRASH_LIKE.contains(&kind)
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct FindingInfo {
    pub(super) signature: String,
    pub(super) title: String,
    pub(super) kind: String,
    pub(super) guilty_frame: Option<String>,
}

/// One side's reports, before any signature is chosen.
#[derive(Debug, Default)]
pub(super) struct Gathered {
    pub(super) files: Vec<String>,
    pub(super) trials: Trials,
    /// Every finding of the side's reports, first seen first, one per signature.
    pub(super) findings: Vec<FindingInfo>,
    pub(super) suites: Vec<String>,
    pub(super) kernels: Vec<String>,
    pub(super) seeds: Vec<u64>,
    pub(super) notes: Vec<String>,
    /// Where each signature is in `findings`: looked up per finding and
    /// per hit, so a search of the list would make verdict quadratic.
    pub(super) by_sig: std::collections::HashMap<String, usize>,
}

impl Gathered {
    pub(super) fn info(&self, sig: &str) -> Option<&FindingInfo> {
        self.by_sig.get(sig).map(|&i| &self.findings[i])
    }

    pub(super) fn add_finding(&mut self, f: FindingInfo) {
        if !self.by_sig.contains_key(&f.signature) {
            self.by_sig.insert(f.signature.clone(), self.findings.len());
            self.findings.push(f);
        }
    }

    /// Unknown kinds count as crash-like: a guest may list a signature the
    /// report's findings do not describe, and hiding a crash is the worse error.
    pub(super) fn is_crash_like(&self, sig: &str) -> bool {
        self.info(sig).is_none_or(|f| crash_like(&f.kind))
    }

    /// Seen on this side at all: in a finding, a trial or a guest that
    /// never ran the suite (a boot panic is still this kernel's crash).
    pub(super) fn mentions(&self, sig: &str) -> bool {
        self.info(sig).is_some()
            || self.trials.trials.iter().any(|t| t.hit(sig))
            || self
                .trials
                .not_run
                .iter()
                .any(|n| n.signatures.iter().any(|s| s == sig))
    }

    pub(super) fn exposure_s(&self) -> f64 {
        self.trials.exposure_s()
    }
}

pub(super) fn push_unique<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}
