//! The kernel facts `doctor` reports on Linux: the same fields as on
//! FreeBSD, with Linux's equivalent where one exists and "not applicable"
//! where none does.
//!
//! - log buffer: syslog(2) `SYSLOG_ACTION_SIZE_BUFFER` (10), the printk
//!   ring's size (`log_buf_len=` at boot); /dev/kmsg readers lose records
//!   the ring overwrote before they read them (EPIPE), as FreeBSD's msgbuf
//!   scan loses what wrapped;
//! - lock-order checker: lockdep, whose /proc/lockdep exists only with
//!   CONFIG_LOCKDEP (kernel/locking/lockdep_proc.c); `debug_locks` in
//!   /proc/lockdep_stats drops to 0 after its first report, which turns it
//!   off until reboot;
//! - capture buffer: an AF_PACKET socket's default receive buffer,
//!   net.core.rmem_default;
//! - INVARIANTS, D51525, link-state logging: FreeBSD's; Linux has no
//!   single switch for its assertions, no such devfs clone, and no sysctl
//!   for link-state lines.

use crate::platform::facts::{Fact, KernelFacts, State};

/// KERNEL_VERSION(a, b, c) of a release string such as "6.1.0-18-amd64"
/// (the sublevel saturates at 255, as the kernel's own macro does).
pub fn version_code(release: &str) -> Option<i64> {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(|p| p.parse::<i64>().ok());
    let a = parts.next()??;
    let b = parts.next()??;
    let c = parts.next().flatten().unwrap_or(0);
    Some((a << 16) + (b << 8) + c.min(255))
}

/// `debug_locks` from /proc/lockdep_stats.
pub fn debug_locks(stats: &str) -> Option<i64> {
    stats.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == "debug_locks").then(|| v.trim().parse().ok())?
    })
}

fn log_buffer_size() -> std::io::Result<i64> {
    const SYSLOG_ACTION_SIZE_BUFFER: libc::c_int = 10;
    // SAFETY: this action ignores the buffer and its length.
    let n = unsafe { libc::klogctl(SYSLOG_ACTION_SIZE_BUFFER, std::ptr::null_mut(), 0) };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as i64)
    }
}

fn read_i64(path: &str) -> Option<i64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Read the running kernel's facts.
pub fn read() -> KernelFacts {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let version = match version_code(&release) {
        Some(v) => Fact::new(
            State::Ok,
            Some(v),
            "uname release",
            format!(
                "{release}: KERNEL_VERSION({}, {}, {})",
                v >> 16,
                (v >> 8) & 255,
                v & 255
            ),
        ),
        None => Fact::new(State::Unknown, None, "uname release", release),
    };
    let log_buffer = match log_buffer_size() {
        Ok(n) => Fact::new(
            State::Ok,
            Some(n),
            "syslog(SYSLOG_ACTION_SIZE_BUFFER)",
            "set at boot: log_buf_len=BYTES on the kernel command line",
        ),
        Err(e) => Fact::new(
            State::Unknown,
            None,
            "syslog(SYSLOG_ACTION_SIZE_BUFFER)",
            e.to_string(),
        ),
    };
    let lock_order_checker = if std::path::Path::new("/proc/lockdep").exists() {
        let on = std::fs::read_to_string("/proc/lockdep_stats")
            .ok()
            .and_then(|s| debug_locks(&s));
        match on {
            Some(0) => Fact::new(
                State::Warn,
                Some(0),
                "/proc/lockdep, /proc/lockdep_stats",
                "lockdep built in but off (debug_locks 0: it already reported once since boot)",
            ),
            v => Fact::new(
                State::Ok,
                v,
                "/proc/lockdep, /proc/lockdep_stats",
                "lockdep watching",
            ),
        }
    } else {
        Fact::new(
            State::Absent,
            None,
            "/proc/lockdep",
            "no lockdep in this kernel (CONFIG_PROVE_LOCKING): lock-order inversions are never reported",
        )
    };
    let capture_buffer = match read_i64("/proc/sys/net/core/rmem_default") {
        Some(v) => Fact::new(
            State::Ok,
            Some(v),
            "net.core.rmem_default",
            "an AF_PACKET capture socket's default receive buffer",
        ),
        None => Fact::new(State::Unknown, None, "net.core.rmem_default", "unreadable"),
    };
    KernelFacts {
        version,
        log_buffer,
        lock_order_checker,
        invariants: Fact::not_applicable(
            "Linux has no single switch for kernel assertions (BUG_ON/WARN_ON are always built in)",
        ),
        d51525_fix: Fact::not_applicable("a FreeBSD tun/tap devfs clone bug"),
        capture_buffer,
        link_state_log: Fact::not_applicable("no sysctl switches link-state log lines"),
        bridge_member_addrs: Fact::not_applicable(
            "a Linux bridge port may carry addresses; no switch refuses them",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_codes_as_the_kernel_macro() {
        assert_eq!(version_code("6.1.0-18-amd64"), Some((6 << 16) + (1 << 8)));
        assert_eq!(
            version_code("6.18.44-fc-v595"),
            Some((6 << 16) + (18 << 8) + 44)
        );
        assert_eq!(version_code("4.9.337"), Some((4 << 16) + (9 << 8) + 255));
        assert_eq!(version_code("6.8"), Some((6 << 16) + (8 << 8)));
        assert_eq!(version_code("garbage"), None);
        assert_eq!(version_code(""), None);
    }

    #[test]
    fn debug_locks_from_lockdep_stats() {
        let s = " lock-classes:                         1834 [max: 8192]\n debug_locks:                             1\n";
        assert_eq!(debug_locks(s), Some(1));
        assert_eq!(debug_locks(" debug_locks: 0\n"), Some(0));
        assert_eq!(debug_locks("nothing\n"), None);
    }

    #[test]
    fn this_kernel_answers_every_fact() {
        let f = read();
        assert!(
            f.version.value.is_some_and(|v| v > 2 << 16),
            "{:?}",
            f.version
        );
        assert!(f.capture_buffer.value.is_some_and(|v| v > 0));
        assert_eq!(f.d51525_fix.state, State::NotApplicable);
        assert!(matches!(
            f.lock_order_checker.state,
            State::Ok | State::Absent | State::Warn
        ));
        // Root reads the ring's size; others may be refused (dmesg_restrict).
        if nix::unistd::geteuid().is_root() {
            assert!(
                f.log_buffer.value.is_some_and(|v| v >= 4096),
                "{:?}",
                f.log_buffer
            );
        }
    }
}
