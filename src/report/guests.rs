//! What a report says about the guests of a `vm run`: defined here, with
//! the rest of the report, and filled in by the runner.

use crate::model::{Accel, GuestOs};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Issued and succeeded ops of one kind in one guest's run. Reads a run
/// report's op table too (`count` is what it calls issued).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct OpCount {
    #[serde(default, alias = "count")]
    pub issued: u64,
    #[serde(default)]
    pub ok: u64,
}

impl From<&crate::stats::OpSummary> for OpCount {
    fn from(o: &crate::stats::OpSummary) -> OpCount {
        OpCount {
            issued: o.count,
            ok: o.ok,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct GuestSummary {
    #[serde(default)]
    pub index: usize,
    /// finished, panic, hang, lost; and the guests that never ran the suite:
    /// boot-failure, boot-panic (a panic before the suite started),
    /// module-failed.
    pub outcome: String,
    pub seconds: f64,
    #[serde(default)]
    pub ops: u64,
    #[serde(default)]
    pub console: String,
    /// The seed this guest's suite ran with: `repro` replays it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Files brought back from the guest's crash directory.
    #[serde(default)]
    pub collected: Vec<String>,
    /// Seconds from the suite's start to the guest's end: to the panic or
    /// the hang's NMI for a crashed guest (its time to hit), to the report
    /// for a finished one. Absent when the suite never started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite_seconds: Option<f64>,
    /// Signatures of the findings this guest produced (for `verdict`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<String>,
    /// `MODULE.PARAM VALUE`: the `--module`s' parameters read after the
    /// suite (racebench's window counters); none when the guest crashed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub module_state: Vec<String>,
    /// A `--module` that did not load, as the guest said it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_error: Option<String>,
    /// Per op kind, what the guest's run did, from its report; empty when
    /// no report came back (a guest that crashed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub op_counts: BTreeMap<String, OpCount>,
    /// ifstress itself failed in this guest and the kernel showed nothing
    /// (its report's verdict was `error`): not a trial of the kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The guest kernel's version as its ifstress said it (FreeBSD's
    /// kern.osreldate): what its findings' known issues were keyed by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_version: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VmSummary {
    pub guest_os: GuestOs,
    pub image: String,
    /// QEMU's accelerator (bhyve runs are `auto` here: see `hypervisor`).
    pub accel: Accel,
    /// How `accel` was chosen: named, or `auto`'s probe and any fallback.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub accel_why: String,
    /// "qemu (kvm)", "qemu (tcg)", "bhyve".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hypervisor: String,
    pub guests: Vec<GuestSummary>,
    pub guest_hours: f64,
    /// The run stopped before its time because guests in a row did not
    /// start the suite (boot failures, boot panics): why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// `--module` files and their parameters, as loaded in every guest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<String>,
}

impl VmSummary {
    /// Why a `--module` did not load, if one did not: the run then measured
    /// nothing, and the caller says so with exit 2.
    pub fn module_error(&self) -> Option<&str> {
        self.guests.iter().find_map(|g| g.module_error.as_deref())
    }
}
