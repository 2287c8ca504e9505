//! Kernel features the findings depend on, as `ifstress doctor` reports
//! them: the same fields on every system, each with where it was read, so
//! one `doctor --json` answers them on any machine. A leaf: the backends
//! fill it (`freebsd::features`, `linux::features`); doctor judges the log
//! buffer against the log rate it measured.

use serde::Serialize;

/// What a fact means for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Present, or enough for what the run needs.
    Ok,
    /// Findings will be lost or misread; the detail says what to change.
    Warn,
    /// This kernel lacks it (a checker not built in, a fix not carried).
    Absent,
    /// Could not be read or decided; the detail says why.
    Unknown,
    /// The system has no such thing.
    NotApplicable,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Warn => "warn",
            State::Absent => "absent",
            State::Unknown => "unknown",
            State::NotApplicable => "not applicable",
        }
    }
}

/// One kernel fact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fact {
    pub state: State,
    /// The number read (bytes, a version, a switch's setting), if any.
    pub value: Option<i64>,
    /// Where it was read (sysctl names, files, a syscall); empty when the
    /// system has no such thing.
    pub source: String,
    pub detail: String,
}

impl Fact {
    pub fn new(state: State, value: Option<i64>, source: &str, detail: impl Into<String>) -> Fact {
        Fact {
            state,
            value,
            source: source.to_string(),
            detail: detail.into(),
        }
    }

    pub fn not_applicable(detail: &str) -> Fact {
        Fact::new(State::NotApplicable, None, "", detail)
    }
}

/// The facts, in the order `doctor` prints them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KernelFacts {
    /// The kernel's version as a number (FreeBSD `kern.osreldate`; Linux
    /// KERNEL_VERSION(a, b, c) of the release).
    pub version: Fact,
    /// The kernel message buffer's size in bytes: what the log scan can
    /// miss when the kernel writes more than this between two scans.
    pub log_buffer: Fact,
    /// The lock-order checker (WITNESS, lockdep): without it lock-order
    /// reversals are never reported.
    pub lock_order_checker: Fact,
    /// Kernel assertions (INVARIANTS): without them a broken invariant
    /// corrupts memory quietly instead of panicking.
    pub invariants: Fact,
    /// Whether a device opened inside a stack pins it until reboot (the
    /// D51525 bug), so that a dying stack after tun-open is expected.
    pub d51525_fix: Fact,
    /// The default capture buffer in bytes.
    pub capture_buffer: Fact,
    /// Whether link-state changes are logged (a log line per pair
    /// create/destroy, which fills the log buffer).
    pub link_state_log: Fact,
    /// Whether a bridge member may carry addresses (FreeBSD 15.0's
    /// `net.link.bridge.member_ifaddrs`, which ifstress sets to 1 in each
    /// of its own stacks).
    pub bridge_member_addrs: Fact,
}

impl KernelFacts {
    /// Every fact with its JSON name.
    pub fn rows(&self) -> [(&'static str, &Fact); 8] {
        [
            ("version", &self.version),
            ("log_buffer", &self.log_buffer),
            ("lock_order_checker", &self.lock_order_checker),
            ("invariants", &self.invariants),
            ("d51525_fix", &self.d51525_fix),
            ("capture_buffer", &self.capture_buffer),
            ("link_state_log", &self.link_state_log),
            ("bridge_member_addrs", &self.bridge_member_addrs),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_name_every_field_as_json_does() {
        let f = Fact::new(State::Ok, Some(1), "x", "");
        let k = KernelFacts {
            version: f.clone(),
            log_buffer: f.clone(),
            lock_order_checker: f.clone(),
            invariants: f.clone(),
            d51525_fix: f.clone(),
            capture_buffer: f.clone(),
            link_state_log: Fact::not_applicable("none"),
            bridge_member_addrs: f.clone(),
        };
        let v = serde_json::to_value(&k).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|s| s.as_str()).collect();
        let mut rows: Vec<&str> = k.rows().iter().map(|r| r.0).collect();
        rows.sort();
        let mut keys = keys.clone();
        keys.sort();
        assert_eq!(rows, keys);
        assert_eq!(v["link_state_log"]["state"], "not-applicable");
        assert_eq!(v["version"]["value"], 1);
    }
}
