//! What `ifstress bench` measures ifstress against: the same ops done the way
//! kernel developers' own race scripts do them (a shell loop around `ip` or
//! `ifconfig`, one process per op) and, where the system has one, a single
//! process streaming the requests sequentially (`ip -batch`). The bench is
//! OS-neutral; each backend writes its commands here as data.

use serde::Serialize;

/// An op mix the bench times, the same on every backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Case {
    /// Interface flags up, then down.
    UpDown,
    /// MTU to 1400, then back to 1500.
    Mtu,
    /// Add an IPv4 address, then remove it.
    Addr,
    /// Ask the driver for link/media state.
    Media,
    /// Create a pair, then destroy it.
    CreateDestroy,
    /// Move an interface to another stack, then back.
    Move,
}

impl Case {
    pub const ALL: [Case; 6] = [
        Case::UpDown,
        Case::Mtu,
        Case::Addr,
        Case::Media,
        Case::CreateDestroy,
        Case::Move,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Case::UpDown => "up-down",
            Case::Mtu => "mtu",
            Case::Addr => "addr",
            Case::Media => "media",
            Case::CreateDestroy => "create-destroy",
            Case::Move => "move",
        }
    }

    /// Cheap ops touch one interface's state; heavy ones create, destroy or
    /// move interfaces and wait on the kernel's teardown.
    pub fn heavy(self) -> bool {
        matches!(self, Case::CreateDestroy | Case::Move)
    }
}

/// Names the bench made for the baseline, all carrying the run's tag.
#[derive(Debug, Clone)]
pub struct Names {
    /// The stack the ops run in.
    pub home: String,
    /// The stack moves go to.
    pub other: String,
    /// Pairs made at setup: (first end, second end).
    pub pairs: Vec<(String, String)>,
    /// A pair name that create-destroy makes and removes.
    pub spare: (String, String),
    /// The description/alias that marks an interface as the run's.
    pub alias: String,
    /// An address from the run's range (198.18.0.0/15).
    pub addr4: String,
}

/// One process of a batch: its argv and what it reads on stdin.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchProc {
    pub argv: Vec<String>,
    pub stdin: String,
}

/// Shell text for one baseline. Scripts run under `sh -e`.
pub struct Baseline {
    /// Makes the stacks and links.
    pub setup: String,
    /// One iteration of the shell loop.
    pub step: String,
    pub ops_per_step: u32,
    /// Removes everything setup made (the bench also sweeps by tag).
    pub teardown: String,
    /// One-process sequential form: `units` units of work as processes run
    /// one after another. None where the system has no such tool.
    pub batch: Option<Box<dyn Fn(usize) -> Vec<BatchProc>>>,
    pub batch_ops_per_unit: u32,
    /// What the batch form is, for the table ("ip -batch").
    pub batch_label: &'static str,
}

impl Baseline {
    /// The shell loop that runs `step` n times.
    pub fn loop_script(&self, n: usize) -> String {
        format!(
            "i=0\nwhile [ $i -lt {n} ]; do\n{}\ni=$((i+1))\ndone\n",
            self.step
        )
    }
}
