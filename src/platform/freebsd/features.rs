//! The kernel facts `doctor` reports on FreeBSD, from sysctls. Turning
//! readings into facts (the D51525 expectation by `rules::d51525`)
//! is plain code compiled everywhere, so that it is tested on Linux; only
//! `read` asks the kernel.
//!
//! Where each sysctl comes from:
//! - `kern.osreldate`: sys/kern/kern_mib.c (`sysctl_osreldate`: the
//!   calling jail's `osreldate`, the kernel's own outside jails);
//! - `kern.msgbufsize`: sys/kern/subr_param.c (`init_param1`, the
//!   `kern.msgbufsize` loader tunable; read-only once booted);
//! - `debug.witness.watch`: sys/kern/subr_witness.c, exists only in a
//!   kernel built with `options WITNESS` (1 watching, 0 lock-order checks
//!   off, -1 WITNESS switched off for good);
//! - `kern.features.invariants`: sys/kern/init_main.c,
//!   `FEATURE(invariants, ...)` under `#ifdef INVARIANTS` (sys/sys/sysctl.h
//!   `FEATURE` makes `kern.features.NAME` = 1);
//! - `net.bpf.bufsize`, `net.bpf.maxbufsize`: sys/net/bpf_buffer.c; a read
//!   of a bpf descriptor must ask for exactly its buffer size
//!   (sys/net/bpf.c `bpfread` returns EINVAL otherwise);
//! - `net.link.log_link_state_change`: sys/net/if.c (default 1);
//! - `net.link.bridge.member_ifaddrs`: sys/net/if_bridge.c of 15.0 (a
//!   per-vnet switch; 0 makes if_bridge refuse a member with addresses and
//!   an address on a member with EINVAL, bridge(4); absent on 14.x, and
//!   wherever if_bridge is not loaded).

use super::rules::{D51525, d51525 as d51525_state};
use crate::platform::facts::{Fact, KernelFacts, State};

/// The sysctls as read; `None` where the sysctl does not exist or could
/// not be read.
#[derive(Debug, Clone, Default)]
pub struct Readings {
    pub osreldate: Option<i64>,
    pub msgbufsize: Option<i64>,
    pub witness_watch: Option<i64>,
    pub invariants: Option<i64>,
    pub bpf_bufsize: Option<i64>,
    pub bpf_maxbufsize: Option<i64>,
    pub log_link_state_change: Option<i64>,
    pub bridge_member_ifaddrs: Option<i64>,
}

fn d51525(osreldate: Option<i64>) -> Fact {
    const SOURCE: &str = "kern.osreldate";
    let Some(v) = osreldate else {
        return Fact::new(State::Unknown, None, SOURCE, "kern.osreldate unreadable");
    };
    let consequence = "a jail in which /dev/tun or /dev/tap was opened stays dying until \
                       reboot, and its parent with it (dying-stack findings after tun-open \
                       are expected)";
    // One rule for doctor and the dying-stack check: `rules::d51525`.
    match d51525_state(v) {
        D51525::Fixed => Fact::new(
            State::Ok,
            Some(v),
            SOURCE,
            format!("{v} >= 1500068 (15.0-RELEASE): carries D51525 (main, 2025-07-28)"),
        ),
        D51525::Missing => Fact::new(
            State::Absent,
            Some(v),
            SOURCE,
            format!("{v} predates D51525 (main, 2025-07-28): {consequence}"),
        ),
        D51525::Unknown => Fact::new(
            State::Unknown,
            Some(v),
            SOURCE,
            format!(
                "{v}: a -CURRENT or -STABLE kernel the version cannot place before or after \
                 D51525 (main, 2025-07-28); without it {consequence}"
            ),
        ),
    }
}

/// The facts from the readings.
pub fn facts(r: &Readings) -> KernelFacts {
    let version = match r.osreldate {
        Some(v) => Fact::new(State::Ok, Some(v), "kern.osreldate", "__FreeBSD_version"),
        None => Fact::new(State::Unknown, None, "kern.osreldate", "unreadable"),
    };
    let log_buffer = match r.msgbufsize {
        Some(v) => Fact::new(
            State::Ok,
            Some(v),
            "kern.msgbufsize",
            "a boot-time tunable: kern.msgbufsize=BYTES in /boot/loader.conf",
        ),
        None => Fact::new(State::Unknown, None, "kern.msgbufsize", "unreadable"),
    };
    let lock_order_checker = match r.witness_watch {
        None => Fact::new(
            State::Absent,
            None,
            "debug.witness.watch",
            "no WITNESS in this kernel: lock-order reversals are never reported \
             (options WITNESS; `vm build-kernel --debug`)",
        ),
        Some(w) if w > 0 => Fact::new(
            State::Ok,
            Some(w),
            "debug.witness.watch",
            "WITNESS watching",
        ),
        Some(w) => Fact::new(
            State::Warn,
            Some(w),
            "debug.witness.watch",
            "WITNESS built in but not checking lock order (debug.witness.watch <= 0)",
        ),
    };
    let invariants = match r.invariants {
        Some(v) if v != 0 => Fact::new(
            State::Ok,
            Some(v),
            "kern.features.invariants",
            "INVARIANTS: a broken assertion panics at once",
        ),
        _ => Fact::new(
            State::Absent,
            None,
            "kern.features.invariants",
            "no INVARIANTS in this kernel: a use-after-free or a broken invariant usually \
             passes quietly (options INVARIANTS; `vm build-kernel --debug`)",
        ),
    };
    let capture_buffer = match r.bpf_bufsize {
        Some(b) => Fact::new(
            State::Ok,
            Some(b),
            "net.bpf.bufsize, net.bpf.maxbufsize",
            format!(
                "a bpf read must ask for exactly the descriptor's buffer size \
                 (bpfread: EINVAL otherwise); BIOCSBLEN may raise it to net.bpf.maxbufsize {}",
                r.bpf_maxbufsize
                    .map_or_else(|| "(unreadable)".to_string(), |m| m.to_string())
            ),
        ),
        None => Fact::new(
            State::Unknown,
            None,
            "net.bpf.bufsize",
            "unreadable (bpf(4) not in this kernel?)",
        ),
    };
    let link_state_log = match r.log_link_state_change {
        Some(v) => Fact::new(
            State::Ok,
            Some(v),
            "net.link.log_link_state_change",
            if v != 0 {
                "every link state change is logged: each pair create and destroy writes lines"
            } else {
                "link state changes are not logged"
            },
        ),
        None => Fact::new(
            State::Unknown,
            None,
            "net.link.log_link_state_change",
            "unreadable",
        ),
    };
    let bridge_member_addrs = bridge_member_addrs(r.bridge_member_ifaddrs);
    KernelFacts {
        version,
        log_buffer,
        lock_order_checker,
        invariants,
        d51525_fix: d51525(r.osreldate),
        capture_buffer,
        link_state_log,
        bridge_member_addrs,
    }
}

/// What `net.link.bridge.member_ifaddrs` means for a run. Its value here is
/// the host's vnet's; ifstress sets it to 1 in each of its jails (a per-vnet
/// sysctl: it dies with the jail), so member and address ops behave as on
/// 14.x and rates compare across versions.
fn bridge_member_addrs(v: Option<i64>) -> Fact {
    const SOURCE: &str = "net.link.bridge.member_ifaddrs";
    match v {
        None => Fact::new(
            State::Ok,
            None,
            SOURCE,
            "absent (a kernel before 15.0, or if_bridge not loaded): bridge members may \
             carry addresses",
        ),
        Some(v) => Fact::new(
            State::Ok,
            Some(v),
            SOURCE,
            format!(
                "{} in the host's vnet; ifstress sets it to 1 in each of its jails (it dies \
                 with the jail), else if_bridge refuses members with addresses (EINVAL)",
                if v != 0 { "allowed" } else { "refused" }
            ),
        ),
    }
}

/// Read the sysctls of the running kernel.
#[cfg(target_os = "freebsd")]
pub fn read() -> KernelFacts {
    use super::sys::sysctl_int;
    facts(&Readings {
        osreldate: sysctl_int("kern.osreldate"),
        msgbufsize: sysctl_int("kern.msgbufsize"),
        witness_watch: sysctl_int("debug.witness.watch"),
        invariants: sysctl_int("kern.features.invariants"),
        bpf_bufsize: sysctl_int("net.bpf.bufsize"),
        bpf_maxbufsize: sysctl_int("net.bpf.maxbufsize"),
        log_link_state_change: sysctl_int("net.link.log_link_state_change"),
        bridge_member_ifaddrs: sysctl_int("net.link.bridge.member_ifaddrs"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d51525_fact_by_version() {
        let f = |v| {
            facts(&Readings {
                osreldate: Some(v),
                ..Readings::default()
            })
            .d51525_fix
        };
        assert_eq!(f(1_403_000).state, State::Absent); // 14.3-RELEASE
        assert_eq!(f(1_500_068).state, State::Ok); // 15.0-RELEASE
        assert_eq!(f(1_600_000).state, State::Ok);
        assert_eq!(f(1_403_500).state, State::Unknown); // 14-STABLE after 14.3
        assert_eq!(f(1_403_500).value, Some(1_403_500));
    }

    #[test]
    fn a_release_kernel_reads_as_it_is() {
        // A release kernel: no WITNESS sysctls, no INVARIANTS feature (the
        // sizes are test values).
        let f = facts(&Readings {
            osreldate: Some(1_403_000),
            msgbufsize: Some(98_304),
            witness_watch: None,
            invariants: None,
            bpf_bufsize: Some(4096),
            bpf_maxbufsize: Some(524_288),
            log_link_state_change: Some(1),
            bridge_member_ifaddrs: None,
        });
        assert_eq!(f.version.value, Some(1_403_000));
        assert_eq!(f.bridge_member_addrs.value, None);
        assert!(f.bridge_member_addrs.detail.contains("before 15.0"));
        assert_eq!(f.log_buffer.value, Some(98_304));
        assert_eq!(f.lock_order_checker.state, State::Absent);
        assert_eq!(f.invariants.state, State::Absent);
        assert_eq!(f.d51525_fix.state, State::Absent);
        assert!(
            f.d51525_fix.detail.contains("dying"),
            "{}",
            f.d51525_fix.detail
        );
        assert_eq!(f.capture_buffer.value, Some(4096));
        assert!(f.capture_buffer.detail.contains("524288"));
        assert_eq!(f.link_state_log.value, Some(1));
    }

    #[test]
    fn a_current_debug_kernel_reads_as_it_is() {
        let f = facts(&Readings {
            osreldate: Some(1_600_010),
            msgbufsize: Some(98_304),
            witness_watch: Some(1),
            invariants: Some(1),
            bpf_bufsize: Some(4096),
            bpf_maxbufsize: Some(524_288),
            log_link_state_change: Some(0),
            bridge_member_ifaddrs: Some(0),
        });
        assert_eq!(f.bridge_member_addrs.value, Some(0));
        assert!(
            f.bridge_member_addrs.detail.contains("refused")
                && f.bridge_member_addrs.detail.contains("dies with the jail"),
            "{}",
            f.bridge_member_addrs.detail
        );
        assert_eq!(f.lock_order_checker.state, State::Ok);
        assert_eq!(f.invariants.state, State::Ok);
        assert_eq!(f.d51525_fix.state, State::Ok);
        // WITNESS switched off at run time is present but not checking.
        let off = facts(&Readings {
            witness_watch: Some(-1),
            ..Readings::default()
        });
        assert_eq!(off.lock_order_checker.state, State::Warn);
        assert_eq!(off.d51525_fix.state, State::Unknown);
        assert_eq!(off.log_buffer.state, State::Unknown);
    }
}
