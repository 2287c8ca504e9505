//! The traits each backend implements (`Platform`, `Session`, `Executor`,
//! `KernelLog`) and what crosses them: an op's outcome, environment
//! errors, kind probes. A leaf: the backends and the engine both build on
//! it; `platform` only picks the backend.

use super::baseline;
use crate::model::{LinkKind, OpKind, Scope, Tag};
use crate::plan::Op;
use crate::world::World;
use std::sync::Arc;

/// What one op came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The kernel said no, with this errno. Expected under racing.
    Err(i32),
    /// Nothing to issue: the target stack does not exist right now.
    Skipped,
}

/// A backend's "nothing to act on" (the target stack does not exist now):
/// not an errno, never sent by a kernel.
pub const SKIP: i32 = -1;

/// Settle a backend's result: the outcome to count, and whether the op's
/// link hint proved wrong (`gone` are the errnos meaning "no such
/// interface here") so that the executor should find the link again.
pub fn settle(r: Result<(), i32>, op: &crate::plan::Op, gone: &[i32]) -> (Outcome, bool) {
    use crate::model::OpKind;
    match r {
        Ok(()) => (Outcome::Ok, false),
        Err(SKIP) => (Outcome::Skipped, false),
        Err(e) => {
            let lost = gone.contains(&e) || (op.kind == OpKind::Create && e == libc::EEXIST);
            let on_link = !matches!(
                op.kind,
                OpKind::StackCreate | OpKind::StackRemove | OpKind::TunOpen
            );
            (Outcome::Err(e), lost && on_link)
        }
    }
}

/// Refusals caused by the machine rather than by ifstress (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("must run as root: {0}")]
    NotRoot(String),
    #[error("kernel lacks {0}")]
    Missing(String),
    /// The machine cannot host a run as set up (a lock directory that
    /// cannot be written, a capability dropped ...): one line, exit 2.
    #[error("{0}")]
    Unusable(String),
    #[error("no ifstress backend for this operating system ({0}); FreeBSD and Linux are supported")]
    Unsupported(&'static str),
}

/// How a link kind fared when probed.
#[derive(Debug, Clone)]
pub struct KindProbe {
    pub kind: LinkKind,
    /// What the backend makes for it ("veth", "epair" ...).
    pub native: &'static str,
    pub result: Result<(), String>,
}

/// A stateless view of the machine's kernel.
pub trait Platform: Send + Sync {
    /// "linux" or "freebsd".
    fn name(&self) -> &'static str;
    /// uname: system, release, version.
    fn kernel(&self) -> String;
    /// The version number known issues' ranges are keyed by (FreeBSD:
    /// `kern.osreldate`); `None` where the system has none, and then only
    /// rules for any kernel can call a finding known.
    fn kernel_version(&self) -> Option<i64> {
        None
    }
    fn require_privileges(&self) -> Result<(), EnvError>;
    /// Check what the run needs beyond link kinds (VIMAGE on FreeBSD).
    fn require_features(&self) -> Result<(), EnvError>;
    /// Load the kernel modules behind these link kinds (FreeBSD kldload);
    /// returns the ones loaded. Linux loads them on demand and returns none.
    fn load_modules(&self, kinds: &[LinkKind]) -> anyhow::Result<Vec<String>>;
    /// Try to create and destroy one link of each kind in a scratch stack
    /// tagged with `tag`.
    fn probe_kinds(&self, tag: &Tag, kinds: &[LinkKind]) -> anyhow::Result<Vec<KindProbe>>;
    /// Create the run's stacks. Links are created afterwards by executors.
    fn start(&self, world: Arc<World>) -> anyhow::Result<Arc<dyn Session>>;
    /// A reader of kernel messages from now on.
    fn kernel_log(&self) -> anyhow::Result<Box<dyn KernelLog>>;
    /// Tagged objects still present in the scope.
    fn leftovers(&self, scope: Scope) -> anyhow::Result<Vec<String>>;
    /// Remove tagged objects; returns what was removed.
    fn cleanup(&self, scope: Scope) -> anyhow::Result<Vec<String>>;
    /// The syscall path an op takes on this platform, for `ifstress doctor`.
    fn syscall_of(&self, op: OpKind, kind: LinkKind) -> &'static str;
    /// The kernel features findings depend on, for `ifstress doctor`.
    fn kernel_facts(&self) -> super::facts::KernelFacts;
    /// Counters of kernel memory tied to interfaces and stacks (FreeBSD:
    /// malloc types and UMA zones), compared before and after a run. Empty
    /// where the kernel shows none reliably (Linux under SLUB).
    fn memory_counters(&self) -> std::collections::BTreeMap<String, i64>;
    /// Crash the kernel on purpose so that a dump records a hang
    /// (`--on-hang=panic`, for disposable VMs only).
    fn force_dump(&self) -> std::io::Result<()>;
    /// The calling thread's kernel id, for the watchdog.
    fn thread_id(&self) -> i64;
    /// The kernel stack (or the best the OS shows) of a thread of this process.
    fn thread_stack(&self, tid: i64) -> Option<String>;
    /// This process's resident set now, in bytes (the report's RSS trend).
    fn rss_bytes(&self) -> Option<u64>;
    /// The high-water mark of this process image's resident set, in bytes,
    /// where the OS keeps one per address space. getrusage's ru_maxrss is the
    /// fallback, but Linux carries it across exec: a child of a big parent
    /// would report the parent's peak.
    fn rss_peak_bytes(&self) -> Option<u64> {
        None
    }
    /// The shell commands `ifstress bench` measures this backend against.
    fn baseline(&self, case: baseline::Case, names: &baseline::Names) -> baseline::Baseline;
}

/// One run's kernel objects.
pub trait Session: Send + Sync {
    /// Make an executor. Called on the worker's own OS thread, which the
    /// backend may bind to the run's home stack for its whole life.
    fn executor(self: Arc<Self>, worker: usize) -> anyhow::Result<Box<dyn Executor>>;
    /// Remove every stack and link of the run. Idempotent.
    fn teardown(&self) -> anyhow::Result<()>;
    /// After teardown: the stacks the run removed that are still alive
    /// (a VNET jail stuck DYING; a namespace something still holds) once
    /// `grace` has passed, with what the kernel shows of each. Returns as
    /// soon as none is left.
    fn dying(
        &self,
        grace: std::time::Duration,
    ) -> anyhow::Result<Vec<(crate::world::StackId, String)>>;
}

/// Issues ops. Lives on one worker thread; no locks, no allocation per op.
pub trait Executor {
    fn exec(&mut self, op: &Op) -> Outcome;
    /// Close what the executor holds (descriptors, sockets into stacks).
    fn finish(&mut self);
}

/// New kernel messages since the reader was opened.
pub trait KernelLog: Send {
    /// Append them to `out`, one line each, every line ending in '\n'. One
    /// growing buffer rather than a String per line: a busy bridge logs
    /// hundreds of port-state lines a second.
    fn read_new(&mut self, out: &mut String) -> std::io::Result<()>;
    /// The run's last read: like `read_new`, and also whatever the reader
    /// reads less often than it is asked (FreeBSD's WITNESS record).
    fn read_final(&mut self, out: &mut String) -> std::io::Result<()> {
        self.read_new(out)
    }
}
