//! Reading a guest from outside: its serial console (kernel messages and the
//! guest script's markers) and its journal port (each worker's newest ops and
//! a heartbeat). Pure line-by-line state, so that recorded transcripts test it.

use crate::check::triage::Scanner;
use crate::journal::HEARTBEAT;
use std::collections::{BTreeMap, VecDeque};

/// Lines the guest script prints on the console, so the host knows where it is.
pub const MARK: &str = "IFSTRESS-VM:";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Booting,
    /// The guest script runs ifstress.
    Running,
    /// ifstress exited with this status; its report follows.
    Exited(i32),
    /// The report has been read; the guest powers off.
    Finished(i32),
    /// A module given with `--module` did not load; the guest powers off.
    ModuleFailed,
}

#[derive(Default)]
pub struct Console {
    pub scanner: Scanner,
    phase: Option<Phase>,
    report: Option<String>,
    in_report: bool,
    report_buf: String,
    /// The newest console lines, for excerpts of hangs and boot failures.
    pub tail: VecDeque<String>,
    /// Lines fed to the scanner (markers and the report are not): the
    /// scanner's own line numbers in `first_seen` count these.
    pub scanned: usize,
    /// Why a `--module` did not load, as the guest said it.
    pub module_error: Option<String>,
    /// `MODULE.PARAM VALUE-LINE`: the loaded modules' parameters as the
    /// guest read them after the suite (racebench's window counters).
    pub module_state: Vec<String>,
}

const TAIL: usize = 120;
/// A module's parameters are a few lines; a runaway one must not grow this.
const MODULE_STATE_LINES: usize = 256;

impl Console {
    pub fn phase(&self) -> Phase {
        self.phase.unwrap_or(Phase::Booting)
    }

    /// The guest run's JSON report, once it has been printed.
    pub fn report(&self) -> Option<&str> {
        self.report.as_deref()
    }

    pub fn feed(&mut self, raw: &str) {
        let line = raw.trim_end_matches(['\r', '\n']);
        if self.tail.len() == TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_string());
        // The marker may follow kernel output on the same line (no newline
        // before it when printk interleaves).
        if let Some(at) = line.find(MARK) {
            let rest = line[at + MARK.len()..].trim();
            let mut words = rest.split_whitespace();
            match (words.next(), words.next()) {
                (Some("running"), _) => self.phase = Some(Phase::Running),
                (Some("module-failed"), _) => {
                    let why = rest["module-failed".len()..].trim();
                    self.module_error = Some(why.to_string());
                    self.phase = Some(Phase::ModuleFailed);
                }
                (Some("param"), Some(_)) if self.module_state.len() < MODULE_STATE_LINES => {
                    self.module_state
                        .push(rest["param".len()..].trim().to_string());
                }
                (Some("exit"), Some(rc)) => {
                    self.phase = Some(Phase::Exited(rc.parse().unwrap_or(-1)))
                }
                (Some("report-begin"), _) => {
                    self.in_report = true;
                    self.report_buf.clear();
                }
                (Some("report-end"), _) => {
                    self.in_report = false;
                    self.report = Some(std::mem::take(&mut self.report_buf));
                    if let Some(Phase::Exited(rc)) = self.phase {
                        self.phase = Some(Phase::Finished(rc));
                    }
                }
                _ => {}
            }
            return;
        }
        if self.in_report {
            self.report_buf.push_str(line);
            self.report_buf.push('\n');
            return;
        }
        self.scanned += 1;
        self.scanner.feed(line);
    }

    pub fn tail_text(&self, n: usize) -> String {
        let skip = self.tail.len().saturating_sub(n);
        let v: Vec<&str> = self.tail.iter().skip(skip).map(String::as_str).collect();
        v.join("\n")
    }
}

/// The journal port: per worker, the newest lines; and the heartbeat.
#[derive(Debug, Default)]
pub struct Port {
    pub last_ops: BTreeMap<String, VecDeque<String>>,
    /// Ops issued, from the newest heartbeat.
    pub ops: u64,
    pub heartbeats: u64,
    /// The journal closed: the run is past its stress phase.
    pub ended: bool,
    /// Issued and ok ops per kind, from the newest `#ops` line.
    pub op_counts: BTreeMap<String, crate::report::guests::OpCount>,
    /// The guest kernel's version (FreeBSD's kern.osreldate), when its
    /// ifstress said it.
    pub kernel_version: Option<i64>,
}

/// Lines kept per worker.
pub const LAST_OPS: usize = 20;

impl Port {
    pub fn feed(&mut self, raw: &str) {
        let line = raw.trim_end_matches(['\r', '\n']).trim();
        if let Some(rest) = line.strip_prefix(crate::journal::KERNEL_VERSION) {
            self.kernel_version = rest.trim().parse().ok();
            return;
        }
        if let Some(rest) = line.strip_prefix(crate::journal::OP_TOTALS) {
            self.op_counts = rest
                .split_whitespace()
                .filter_map(|w| {
                    let (k, v) = w.split_once('=')?;
                    let (issued, ok) = v.split_once('/')?;
                    Some((
                        k.to_string(),
                        crate::report::guests::OpCount {
                            issued: issued.parse().ok()?,
                            ok: ok.parse().ok()?,
                        },
                    ))
                })
                .collect();
            return;
        }
        if let Some(rest) = line.strip_prefix(HEARTBEAT) {
            let mut w = rest.split_whitespace();
            if let Some(n) = w.next().and_then(|n| n.parse().ok()) {
                self.ops = n;
                self.heartbeats += 1;
                self.ended |= w.next() == Some("end");
            }
            return;
        }
        // "unix_us wN #seq op link stack result latency"
        let mut w = line.split_whitespace();
        let (Some(t), Some(worker)) = (w.next(), w.next()) else {
            return;
        };
        if !t.bytes().all(|b| b.is_ascii_digit()) || !worker.starts_with('w') {
            return;
        }
        let q = self
            .last_ops
            .entry(format!("worker-{}", &worker[1..]))
            .or_default();
        if q.len() == LAST_OPS {
            q.pop_front();
        }
        q.push_back(line.to_string());
    }

    pub fn last_ops(&self) -> BTreeMap<String, Vec<String>> {
        self.last_ops
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_drive_the_phase_and_carry_the_report() {
        let mut c = Console::default();
        assert_eq!(c.phase(), Phase::Booting);
        c.feed("[    1.2] veth: loaded\r\n");
        c.feed("IFSTRESS-VM: running suite vmove for 10s");
        assert_eq!(c.phase(), Phase::Running);
        c.feed("[   12.0] random kernel line IFSTRESS-VM: exit 1");
        assert_eq!(c.phase(), Phase::Exited(1));
        c.feed("IFSTRESS-VM: report-begin");
        c.feed("{\"suite\": \"vmove\",");
        c.feed("\"total_ops\": 5}");
        c.feed("IFSTRESS-VM: report-end");
        assert_eq!(c.phase(), Phase::Finished(1));
        assert_eq!(
            c.report(),
            Some("{\"suite\": \"vmove\",\n\"total_ops\": 5}\n")
        );
        assert!(!c.scanner.fatal());
        // Only kernel lines reach the scanner: its line numbers count those.
        assert_eq!(c.scanned, 1);
    }

    #[test]
    fn module_markers_carry_the_load_error_and_the_parameters() {
        let mut c = Console::default();
        c.feed("IFSTRESS-VM: running");
        c.feed("IFSTRESS-VM: param racebench.counters vmove armed=1 entered=12 hit=0");
        c.feed("IFSTRESS-VM: param racebench.window_us 2000");
        assert_eq!(
            c.module_state,
            vec![
                "racebench.counters vmove armed=1 entered=12 hit=0",
                "racebench.window_us 2000"
            ]
        );
        let mut d = Console::default();
        d.feed("[ 3.1] IFSTRESS-VM: module-failed racebench.ko: insmod: can't insert: Invalid argument");
        assert_eq!(d.phase(), Phase::ModuleFailed);
        assert_eq!(
            d.module_error.as_deref(),
            Some("racebench.ko: insmod: can't insert: Invalid argument")
        );
        assert_eq!(d.scanned, 0);
    }

    #[test]
    fn a_panic_on_the_console_is_fatal_and_titled() {
        let mut c = Console::default();
        for l in [
            "IFSTRESS-VM: running",
            "[   20.1] sysrq: Trigger a crash",
            "[   20.1] Kernel panic - not syncing: sysrq triggered crash",
            "[   20.1] CPU: 0 PID: 80 Comm: sh Not tainted 6.1.0-56-amd64 #1  Debian 6.1.140-1",
            "[   20.1] Call Trace:",
            "[   20.1]  <TASK>",
            "[   20.1]  dump_stack_lvl+0x44/0x5c",
            "[   20.1]  panic+0x118/0x2ed",
            "[   20.1]  sysrq_handle_crash+0x16/0x20",
            "[   20.1]  __handle_sysrq.cold+0x43/0x11b",
            "[   20.1]  write_sysrq_trigger+0x24/0x40",
        ] {
            c.feed(l);
        }
        assert!(c.scanner.fatal());
        let f = std::mem::take(&mut c.scanner).into_findings();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, "panic");
        assert!(
            f[0].title.contains("sysrq triggered crash"),
            "{}",
            f[0].title
        );
        assert_eq!(c.tail_text(2).lines().count(), 2);
    }

    #[test]
    fn port_keeps_the_newest_ops_per_worker_and_the_heartbeat() {
        let mut p = Port::default();
        assert_eq!(p.kernel_version, None);
        p.feed("#kernel_version 1500068\r");
        assert_eq!(p.kernel_version, Some(1_500_068));
        for i in 0..30 {
            p.feed(&format!(
                "17000000{i:02} w0 #{i} move is0abcp0 ifstress-0abc-s1 ok 12us\r"
            ));
        }
        p.feed("17000000 w1 #0 mtu is0abcp1 ifstress-0abc-h0 ENODEV 3us");
        p.feed("garbage line");
        p.feed("#hb 31");
        assert_eq!((p.ops, p.heartbeats, p.ended), (31, 1, false));
        p.feed("#hb 40 end");
        assert!(p.ended);
        let l = p.last_ops();
        assert_eq!(l["worker-0"].len(), LAST_OPS);
        assert!(l["worker-0"].last().unwrap().contains("#29 move"));
        assert_eq!(l["worker-1"].len(), 1);
        assert_eq!(l.len(), 2);
        // Per-kind totals: the newest line replaces the last; junk is skipped.
        p.feed("#ops move=10/4 mtu=3/3");
        p.feed("#ops move=20/9 mtu=x/1 bad");
        assert_eq!(p.op_counts.len(), 1);
        assert_eq!(
            (p.op_counts["move"].issued, p.op_counts["move"].ok),
            (20, 9)
        );
        assert!(
            p.last_ops()
                .values()
                .all(|v| v.iter().all(|l| !l.starts_with('#')))
        );
    }
}
