//! Per-worker op statistics. Each worker owns its `WorkerStats` outright (no
//! sharing, no locks); the engine merges them after the workers stop. The
//! only shared per-op state is `Live`: two relaxed counters and the watchdog's
//! op-in-flight stamp, on a cache line of the worker's own.

use crate::model::OpKind;
use crate::platform::Outcome;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Errnos above this are counted together (no OS ifstress runs on goes near it).
const ERRNO_SLOTS: usize = 160;

pub struct OpStats {
    pub count: u64,
    pub ok: u64,
    pub skipped: u64,
    errors: [u64; ERRNO_SLOTS],
    /// Latency in microseconds.
    hist: Histogram<u64>,
}

impl OpStats {
    fn new() -> OpStats {
        OpStats {
            count: 0,
            ok: 0,
            skipped: 0,
            errors: [0; ERRNO_SLOTS],
            hist: Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("static bounds"),
        }
    }
}

pub struct WorkerStats {
    pub ops: Vec<OpStats>,
}

impl Default for WorkerStats {
    fn default() -> Self {
        WorkerStats {
            ops: (0..OpKind::COUNT).map(|_| OpStats::new()).collect(),
        }
    }
}

impl WorkerStats {
    #[inline]
    pub fn record(&mut self, kind: OpKind, out: Outcome, took: Duration) {
        let s = &mut self.ops[kind.index()];
        s.count += 1;
        match out {
            Outcome::Ok => s.ok += 1,
            Outcome::Skipped => s.skipped += 1,
            Outcome::Err(e) => s.errors[(e.max(0) as usize).min(ERRNO_SLOTS - 1)] += 1,
        }
        let us = (took.as_micros() as u64).max(1);
        s.hist.saturating_record(us);
    }

    pub fn merge(&mut self, other: &WorkerStats) {
        for (a, b) in self.ops.iter_mut().zip(&other.ops) {
            a.count += b.count;
            a.ok += b.ok;
            a.skipped += b.skipped;
            for (x, y) in a.errors.iter_mut().zip(b.errors.iter()) {
                *x += y;
            }
            let _ = a.hist.add(&b.hist);
        }
    }

    /// The report's view: only op kinds that ran.
    pub fn summary(&self) -> BTreeMap<String, OpSummary> {
        let mut m = BTreeMap::new();
        for (i, s) in self.ops.iter().enumerate() {
            if s.count == 0 {
                continue;
            }
            let errors = s
                .errors
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(e, n)| (errno_name(e as i32).to_string(), *n))
                .collect();
            m.insert(
                OpKind::from_index(i)
                    .expect("index in range")
                    .as_str()
                    .to_string(),
                OpSummary {
                    count: s.count,
                    ok: s.ok,
                    skipped: s.skipped,
                    errors,
                    p50_us: s.hist.value_at_quantile(0.5),
                    p99_us: s.hist.value_at_quantile(0.99),
                    max_us: s.hist.max(),
                },
            );
        }
        m
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct OpSummary {
    pub count: u64,
    pub ok: u64,
    /// Ops that had nothing to act on (their stack did not exist then).
    pub skipped: u64,
    /// errno name -> count; expected under racing, never a tool failure.
    pub errors: BTreeMap<String, u64>,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// "ENODEV" for 19 on Linux: the symbolic name of the running OS's errno.
pub fn errno_name(e: i32) -> &'static str {
    // Made once: the journal flusher names every failed op it writes.
    static NAMES: std::sync::OnceLock<[String; ERRNO_SLOTS]> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        std::array::from_fn(|i| {
            if i == ERRNO_SLOTS - 1 {
                return "E_OTHER".into();
            }
            let n = format!("{:?}", nix::errno::Errno::from_raw(i as i32));
            if n.starts_with('E') {
                n
            } else {
                format!("E{i}")
            }
        })
    });
    &names[usize::try_from(e).map_or(ERRNO_SLOTS - 1, |i| i.min(ERRNO_SLOTS - 1))]
}

/// What other threads may read of a worker while it runs.
#[repr(align(64))]
#[derive(Default)]
pub struct Live {
    pub ops: AtomicU64,
    pub errors: AtomicU64,
    /// Start of the op in flight, in µs since the run's epoch plus one; 0 when idle.
    pub in_flight_since: AtomicU64,
    /// The op in flight: kind index | link << 8.
    pub in_flight: AtomicU32,
    /// The worker's kernel thread id.
    pub tid: AtomicI64,
}

impl Live {
    #[inline]
    pub fn begin(&self, now_us: u64, kind: OpKind, link: u16) {
        self.in_flight
            .store(kind.index() as u32 | (link as u32) << 8, Relaxed);
        self.in_flight_since.store(now_us + 1, Relaxed);
    }

    #[inline]
    pub fn end(&self, out: Outcome) {
        self.in_flight_since.store(0, Relaxed);
        self.ops.fetch_add(1, Relaxed);
        if matches!(out, Outcome::Err(_)) {
            self.errors.fetch_add(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_merge_and_summarise() {
        let mut a = WorkerStats::default();
        a.record(OpKind::Move, Outcome::Ok, Duration::from_micros(10));
        a.record(
            OpKind::Move,
            Outcome::Err(libc::ENODEV),
            Duration::from_micros(1000),
        );
        a.record(OpKind::Move, Outcome::Skipped, Duration::from_micros(5));
        let mut b = WorkerStats::default();
        b.record(
            OpKind::Move,
            Outcome::Err(libc::ENODEV),
            Duration::from_micros(20),
        );
        b.record(OpKind::Create, Outcome::Err(9999), Duration::ZERO);
        a.merge(&b);
        let s = a.summary();
        assert_eq!(s.len(), 2);
        let m = &s["move"];
        assert_eq!((m.count, m.ok, m.skipped), (4, 1, 1));
        assert_eq!(m.errors["ENODEV"], 2);
        assert!(m.max_us >= 1000 && m.max_us < 1010);
        assert!(m.p50_us >= 10 && m.p50_us <= 20, "{}", m.p50_us);
        assert_eq!(s["create"].errors["E_OTHER"], 1);
    }

    #[test]
    fn errno_names_are_the_os_symbols_and_out_of_range_is_other() {
        assert_eq!(errno_name(libc::ENODEV), "ENODEV");
        assert_eq!(errno_name(libc::EEXIST), "EEXIST");
        assert_eq!(errno_name(-1), "E_OTHER");
        assert_eq!(errno_name(9999), "E_OTHER");
        // The same static string each time: nothing is built per call.
        assert!(std::ptr::eq(
            errno_name(libc::EBUSY),
            errno_name(libc::EBUSY)
        ));
    }
}
