//! What the run itself costs the machine: CPU split between user space and
//! the kernel over the stress window, and the resident set over time. A
//! stress tool whose own RSS creeps up over 24 hours skews the very kernel
//! memory counters it checks.

use serde::{Deserialize, Serialize};
use std::time::Duration;

pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}

/// Descriptors a run needs before its first op: the setup thread's
/// sockets in every stack (a route socket, three datagram and packet
/// sockets, the stack's own handle: about five) plus the run's own (the
/// kernel log, the lock, the signal runtime, stdio). Measured on Linux with
/// `vmove` (six stacks): setup failed at 38 descriptors and got through at
/// 40. Workers need more (their own sockets per stack); a worker that
/// cannot open them fails on its own and the report says so.
pub fn descriptors_to_start(stacks: usize) -> u64 {
    20 + 6 * stacks as u64
}

/// Raise the soft descriptor limit towards `want` (never above the hard
/// limit); the soft limit afterwards.
// rlim_t is u64 on Linux and i64 on FreeBSD.
#[allow(clippy::unnecessary_cast)]
pub fn raise_nofile(want: u64) -> u64 {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
            return u64::MAX;
        }
        let cur = l.rlim_cur as u64;
        if cur < want {
            let to = want.min(l.rlim_max as u64);
            let n = libc::rlimit {
                rlim_cur: to as libc::rlim_t,
                rlim_max: l.rlim_max,
            };
            if to > cur && libc::setrlimit(libc::RLIMIT_NOFILE, &n) == 0 {
                return to;
            }
        }
        cur
    }
}

/// User and system CPU this process (all threads) or its waited-for children used.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cpu {
    pub user: Duration,
    pub sys: Duration,
    /// Peak resident set, KiB (getrusage's ru_maxrss on Linux and FreeBSD).
    pub max_rss_kib: u64,
}

impl Cpu {
    fn of(who: libc::c_int) -> Cpu {
        // SAFETY: rusage is plain data, filled by the kernel.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: ru outlives the call.
        if unsafe { libc::getrusage(who, &mut ru) } != 0 {
            return Cpu::default();
        }
        let tv = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        Cpu {
            user: tv(ru.ru_utime),
            sys: tv(ru.ru_stime),
            max_rss_kib: ru.ru_maxrss as u64,
        }
    }

    pub fn this_process() -> Cpu {
        Cpu::of(libc::RUSAGE_SELF)
    }

    /// Children that have been waited for.
    pub fn children() -> Cpu {
        Cpu::of(libc::RUSAGE_CHILDREN)
    }

    /// CPU spent between `earlier` and `self`.
    pub fn since(&self, earlier: &Cpu) -> Cpu {
        Cpu {
            user: self.user.saturating_sub(earlier.user),
            sys: self.sys.saturating_sub(earlier.sys),
            max_rss_kib: self.max_rss_kib,
        }
    }
}

/// The run's own footprint, in the report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Resources {
    /// CPU over the stress window, all threads of ifstress.
    pub user_s: f64,
    pub sys_s: f64,
    /// user / (user + sys): how much of the work is ifstress rather than the kernel.
    pub user_share: f64,
    pub max_rss_kib: u64,
    /// RSS samples kept from the stress window: one a second, thinned to at
    /// most 1,024 evenly spaced ones on long runs (`RssSeries`).
    pub rss_samples: usize,
    pub rss_first_kib: u64,
    /// The sample at the end of the warm-up (the first tenth of the samples):
    /// by then the journal rings, histograms and per-stack sockets exist.
    #[serde(default)]
    pub rss_warm_kib: u64,
    pub rss_last_kib: u64,
    /// last - warm: what the steady state added. A leak on the per-op path
    /// shows here, growing with the duration.
    #[serde(default)]
    pub rss_growth_kib: i64,
    /// Least-squares slope over the samples after the first tenth (warm-up), KiB per minute.
    pub rss_slope_kib_per_min: f64,
}

impl Resources {
    /// `samples` are (seconds since start, KiB); `peak_kib` is the platform's
    /// own high-water mark, when it has one (else getrusage's is used).
    pub fn new(cpu: &Cpu, samples: &[(f64, u64)], peak_kib: Option<u64>) -> Resources {
        let user = cpu.user.as_secs_f64();
        let sys = cpu.sys.as_secs_f64();
        let round = |x: f64, d: f64| (x * d).round() / d;
        let max_seen = samples.iter().map(|s| s.1).max().unwrap_or(0);
        let warm = samples.get(samples.len() / 10).map_or(0, |s| s.1);
        let last = samples.last().map_or(0, |s| s.1);
        Resources {
            user_s: round(user, 1000.0),
            sys_s: round(sys, 1000.0),
            user_share: if user + sys > 0.0 {
                round(user / (user + sys), 10000.0)
            } else {
                0.0
            },
            max_rss_kib: peak_kib.unwrap_or(cpu.max_rss_kib).max(max_seen),
            rss_samples: samples.len(),
            rss_first_kib: samples.first().map_or(0, |s| s.1),
            rss_warm_kib: warm,
            rss_last_kib: last,
            rss_growth_kib: last as i64 - warm as i64,
            rss_slope_kib_per_min: round(slope_per_min(samples), 100.0),
        }
    }
}

/// RSS samples over a run of any length in a fixed amount of memory: a
/// series that grew by a sample a second would itself be the slow growth it
/// is there to catch (1.3 MiB over a day). When full, every other sample is
/// dropped and sampling slows to match, so those kept stay evenly spaced.
pub struct RssSeries {
    kept: Vec<(f64, u64)>,
    /// Keep one offered sample in `stride`.
    stride: u64,
    offered: u64,
}

impl RssSeries {
    pub const CAPACITY: usize = 1024;

    pub fn new() -> RssSeries {
        let mut kept = Vec::with_capacity(Self::CAPACITY);
        // Pay for the pages now rather than as the series fills.
        kept.resize(Self::CAPACITY, (0.0, 0));
        kept.clear();
        RssSeries {
            kept,
            stride: 1,
            offered: 0,
        }
    }

    /// Offer a sample taken `t` seconds in.
    pub fn offer(&mut self, t: f64, kib: u64) {
        let take = self.offered.is_multiple_of(self.stride);
        self.offered += 1;
        if !take {
            return;
        }
        if self.kept.len() == Self::CAPACITY {
            let mut i = 0;
            self.kept.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            // The series fills at sample 1024 × stride, which is on the
            // doubled stride too, so this one is still kept.
            self.stride *= 2;
        }
        self.kept.push((t, kib));
    }

    pub fn samples(&self) -> &[(f64, u64)] {
        &self.kept
    }
}

impl Default for RssSeries {
    fn default() -> Self {
        Self::new()
    }
}

/// Least squares over the samples after the first tenth; 0 with fewer than 3.
pub fn slope_per_min(samples: &[(f64, u64)]) -> f64 {
    let s = &samples[samples.len() / 10..];
    if s.len() < 3 {
        return 0.0;
    }
    let n = s.len() as f64;
    let mx = s.iter().map(|p| p.0).sum::<f64>() / n;
    let my = s.iter().map(|p| p.1 as f64).sum::<f64>() / n;
    let sxy: f64 = s.iter().map(|p| (p.0 - mx) * (p.1 as f64 - my)).sum();
    let sxx: f64 = s.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 { 0.0 } else { sxy / sxx * 60.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_flat_rising_and_warmup_series() {
        let flat: Vec<(f64, u64)> = (0..100).map(|i| (i as f64, 5000)).collect();
        assert_eq!(slope_per_min(&flat), 0.0);
        // 2 KiB a second is 120 KiB a minute.
        let rising: Vec<(f64, u64)> = (0..100).map(|i| (i as f64, 5000 + 2 * i)).collect();
        assert!((slope_per_min(&rising) - 120.0).abs() < 1e-6);
        // A warm-up jump in the first tenth does not count as growth.
        let warm: Vec<(f64, u64)> = (0..100)
            .map(|i| (i as f64, if i < 5 { 1000 } else { 9000 }))
            .collect();
        assert_eq!(slope_per_min(&warm), 0.0);
        assert_eq!(slope_per_min(&flat[..2]), 0.0);
    }

    #[test]
    fn rss_series_stays_bounded_and_evenly_spaced() {
        let mut s = RssSeries::new();
        let cap = s.kept.capacity();
        // A day of one-second samples.
        for i in 0..86_400u64 {
            s.offer(i as f64, 1000 + i);
        }
        let k = s.samples();
        assert!(k.len() <= RssSeries::CAPACITY && k.len() > RssSeries::CAPACITY / 2);
        assert_eq!(s.kept.capacity(), cap, "the series reallocated");
        assert_eq!(k[0], (0.0, 1000));
        let step = k[1].0 - k[0].0;
        assert_eq!(step, s.stride as f64);
        assert!(
            k.windows(2).all(|w| w[1].0 - w[0].0 == step),
            "uneven spacing"
        );
        assert!(k.last().unwrap().0 > 86_400.0 - 2.0 * step);
        // Thinning keeps the slope: 1 KiB a second is 60 KiB a minute.
        assert!((slope_per_min(k) - 60.0).abs() < 1e-6);
        // Short runs keep every sample.
        let mut s = RssSeries::new();
        for i in 0..600u64 {
            s.offer(i as f64, 7);
        }
        assert_eq!(s.samples().len(), 600);
    }

    #[test]
    fn cpu_of_this_process_moves_forward_and_shares_add_up() {
        let a = Cpu::this_process();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let d = Cpu::this_process().since(&a);
        assert!(d.user > Duration::ZERO, "busy loop used no user CPU: {d:?}");
        assert!(d.max_rss_kib > 0);
        let r = Resources::new(&d, &[(0.0, 10), (1.0, 20)], None);
        assert!(r.user_share > 0.0 && r.user_share <= 1.0);
        assert_eq!(r.max_rss_kib, d.max_rss_kib.max(20));
        // The platform's own high-water mark wins over getrusage's, and a
        // sample above it still counts.
        let r2 = Resources::new(&d, &[(0.0, 10), (1.0, 20)], Some(15));
        assert_eq!(r2.max_rss_kib, 20);
        let r3 = Resources::new(&d, &[(0.0, 10)], Some(d.max_rss_kib + 7));
        assert_eq!(r3.max_rss_kib, d.max_rss_kib + 7);
        assert_eq!((r.rss_first_kib, r.rss_last_kib), (10, 20));
        // Two samples: no warm-up to skip, so growth is all of it.
        assert_eq!((r.rss_warm_kib, r.rss_growth_kib), (10, 10));
        // Growth is counted from the end of the warm-up and may be negative.
        let s: Vec<(f64, u64)> = (0..20).map(|i| (i as f64, 900 - i)).collect();
        let r = Resources::new(&d, &s, None);
        assert_eq!(
            (r.rss_warm_kib, r.rss_last_kib, r.rss_growth_kib),
            (898, 881, -17)
        );
    }
}
