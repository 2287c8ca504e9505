//! Console and kernel-log triage: turns what a kernel printed (a serial
//! console capture, `dmesg -a`, crashinfo's core.txt, /dev/kmsg, or a mix)
//! into findings a kernel developer recognises: a title naming the failure
//! and the function to blame, a signature stable across runs and machines,
//! the call frames, and the evidence.
//!
//! FreeBSD first: `Fatal trap`, `panic:` (KASSERT, deadlres), `Fatal double
//! fault`, WITNESS lock-order reversals and friends, with backtraces in both
//! the `#N 0x... at f+0x..` and ddb `f() at f+0x../frame` forms. Linux:
//! `BUG:`, `WARNING:`, GPF, Oops, `kernel BUG at`, hung tasks, RCU stalls,
//! refcount_t, lockdep, `unregister_netdevice: waiting`.

use super::finding::{Finding, is_ident};
pub use super::finding::{normalize, signature};

/// Lines kept as a finding's evidence.
const EXCERPT_LINES: usize = 60;

/// Frames that never name the culprit: trap and panic machinery, lock and
/// wait primitives, sanitizers, allocators, string routines, scheduling,
/// interrupt and timer plumbing, and the report printers themselves.
const SKIP_EXACT: &[&str] = &[
    // FreeBSD
    "kdb_backtrace",
    "db_trace_self_wrapper",
    "db_trace_self",
    "vpanic",
    "panic",
    "kassert_panic",
    "trap_fatal",
    "trap_pfault",
    "trap",
    "calltrap",
    "dblfault_handler",
    "kdb_enter",
    "breakpoint",
    "witness_checkorder",
    "witness_warn",
    "witness_assert",
    "sleepq_add",
    "sleepq_wait",
    "mi_switch",
    "sched_switch",
    "_sleep",
    "msleep_spin_sbt",
    "deadlres_td_sleep_q",
    "deadlkres",
    "bcopy",
    "bzero",
    "memcpy",
    "memset",
    "memmove",
    "strlen",
    "strcmp",
    "strncmp",
    "strcpy",
    "strlcpy",
    "copyin",
    "copyout",
    "copyinstr",
    "malloc",
    "free",
    "uma_zalloc_arg",
    "uma_zfree_arg",
    "sx_destroy",
    "mtx_destroy",
    "rw_destroy",
    // Linux
    "dump_stack",
    "dump_stack_lvl",
    "__dump_stack",
    "show_stack",
    "dump_backtrace",
    // Stack saving and allocation under a sanitizer: where a stalled CPU was
    // caught, not what it was doing.
    "is_ftrace_trampoline",
    "__kernel_text_address",
    "kernel_text_address",
    "print_context_stack",
    "dump_trace",
    "save_stack_trace",
    "save_stack",
    "stack_trace_save",
    "arch_stack_walk",
    "unwind_next_frame",
    "panic",
    "__warn",
    "report_bug",
    "handle_bug",
    "exc_invalid_op",
    "asm_exc_invalid_op",
    "do_error_trap",
    "do_trap",
    "do_invalid_op",
    "invalid_op",
    "fixup_bug",
    "__warn_printk",
    "lock_acquire",
    "__lock_acquire",
    "lock_release",
    "register_lock_class",
    "mark_lock",
    "validate_chain",
    "check_noncircular",
    "check_prev_add",
    "__schedule",
    "schedule",
    "schedule_timeout",
    "schedule_preempt_disabled",
    "context_switch",
    "io_schedule",
    "wait_for_completion",
    "wait_for_common",
    "do_wait_for_common",
    "__wait_for_common",
    "synchronize_rcu",
    "synchronize_net",
    "synchronize_rcu_expedited",
    "rcu_barrier",
    "flush_work",
    "__flush_work",
    "msleep",
    "usleep_range",
    "kfree",
    "kmalloc",
    "__kmalloc",
    "kmem_cache_alloc",
    "kmem_cache_free",
    "___slab_alloc",
    "__slab_alloc",
    "kzalloc",
    "kvfree",
    "_sched_show_task",
    "sched_show_task",
    "dump_cpu_task",
    "rcu_dump_cpu_stacks",
    "update_process_times",
    "tick_sched_handle",
    "tick_sched_timer",
    "hrtimer_interrupt",
    "local_apic_timer_interrupt",
    "smp_apic_timer_interrupt",
    "apic_timer_interrupt",
    "irq_exit",
    "__do_softirq",
    "do_softirq",
    "print_usage_bug",
    "mark_lock_irq",
    "refcount_warn_saturate",
    "ret_from_fork",
    "kthread",
    "worker_thread",
    "process_one_work",
    "entry_SYSCALL_64_after_hwframe",
    "do_syscall_64",
    "strlen",
    "strcmp",
    "strcpy",
    "memcpy",
    "memset",
    "memmove",
    "kasan_report",
    "__kasan_report",
    "print_address_description",
    "check_memory_region",
];

const SKIP_PREFIX: &[&str] = &[
    // FreeBSD lock primitives and sanitizers.
    "__mtx_",
    "_mtx_",
    "__rw_",
    "_rw_",
    "_sx_",
    "sx_x",
    "sx_s",
    "__sx_",
    "lockmgr",
    "__lockmgr",
    "_rm_",
    "_rw_",
    "__asan_",
    "kasan_",
    "__msan_",
    "kmsan_",
    "uma_dbg",
    "witness_",
    // Linux.
    "_raw_",
    "__raw_",
    "mutex_lock",
    "__mutex_",
    "mutex_unlock",
    "down_",
    "__down",
    "rwsem_",
    "__rwsem",
    "lockdep_",
    "__lockdep",
    "__kasan",
    "kasan_",
    "__asan",
    "__ubsan",
    "ubsan_",
    "kcsan_",
    "__tsan",
    "kfence_",
    "__kfence",
    "debug_",
    "__might_",
    "___might_",
    "might_",
    "__seqprop",
    "seqcount_",
    "__hrtimer",
    "hrtimer_",
    "tick_",
    "sysvec_",
    "asm_sysvec",
    "asm_exc_",
    "__sysvec",
    "rcu_",
    "__rcu_",
    "smp_apic_",
    "print_",
    "__print",
    "refcount_",
    "__refcount",
    "warn_slowpath",
    "slab_",
];

fn skipped(f: &str) -> bool {
    SKIP_EXACT.contains(&f) || SKIP_PREFIX.iter().any(|p| f.starts_with(p))
}

/// Remove Linux's "[  12.345678]" and "[  12.345678][ T123]" prefixes.
pub fn strip_prefix(line: &str) -> &str {
    let mut s = line.trim_end_matches(['\r', '\n']);
    for _ in 0..2 {
        let t = s.trim_start();
        let stamp = t
            .strip_prefix('[')
            .and_then(|r| r.find(']'))
            .filter(|&end| {
                t[1..end + 1]
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'T' | 'C' | ' '))
            });
        match stamp {
            Some(end) => s = &t[end + 2..],
            None => break,
        }
    }
    s.trim_start()
}

/// The function a backtrace line names, if it is one. Handles FreeBSD's
/// `#3 0xffff... at foo+0x12`, ddb's `foo() at foo+0x12/frame 0x...`, and
/// Linux's ` foo+0x12/0x40 [mod]`, `[<ffff...>] foo+0x12/0x40`,
/// `foo+0x12/0x40 net/core/dev.c:1` and `foo net/x.c:1 [inline]`.
/// Unreliable Linux frames (`? foo`) yield None.
pub fn frame_of(line: &str) -> Option<String> {
    let l = strip_prefix(line).trim();
    // FreeBSD numbered form.
    if let Some(rest) = l.strip_prefix('#') {
        let at = rest.find(" at ")?;
        let f: String = rest[at + 4..]
            .chars()
            .take_while(|&c| is_ident(c))
            .collect();
        return (!f.is_empty()).then_some(f);
    }
    // ddb form: "foo() at foo+0x12/frame 0x..."
    if let Some(i) = l.find("() at ") {
        let f = &l[..i];
        if !f.is_empty() && f.chars().all(is_ident) && l[i..].contains("/frame") {
            return Some(f.to_string());
        }
    }
    // ARM: "[<8133f374>] (foo) from [<8133fffc>] (bar+0x154/0x258)"
    if l.starts_with("[<") && l.contains(") from [<") {
        let f = l.split_once("] (")?.1.split(')').next()?;
        return (!f.is_empty() && f.chars().all(is_ident))
            .then(|| f.split('.').next().unwrap_or(f).to_string());
    }
    // Linux forms.
    let mut l = l;
    if l.starts_with("[<") {
        l = l.split_once("] ").map(|x| x.1).unwrap_or("").trim_start();
    }
    if l.starts_with('?') || l.starts_with('<') {
        return None;
    }
    let f: String = l.chars().take_while(|&c| is_ident(c)).collect();
    if f.is_empty() {
        return None;
    }
    let rest = &l[f.len()..];
    let inline = rest.starts_with(' ') && rest.trim_end().ends_with("[inline]");
    if rest.starts_with("+0x") || inline {
        // Strip compiler suffixes: foo.cold.76, foo.isra.16, foo.constprop.0
        let base = f.split('.').next().unwrap_or(&f).to_string();
        return Some(base);
    }
    None
}

/// What opens a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    FatalTrap,
    DoubleFault,
    Panic,
    Lor,
    DupLock,
    NonSleepable,
    SleepingOwner,
    Bug,
    KernelBug,
    Warning,
    Gpf,
    Oops,
    HungTask,
    RcuStall,
    Refcount,
    NetdevWait,
    Lockdep,
}

fn marker(line: &str) -> Option<Marker> {
    use Marker::*;
    let m = if line.starts_with("Fatal trap ") {
        FatalTrap
    } else if line.starts_with("Fatal double fault") {
        DoubleFault
    } else if line.starts_with("panic: ")
        || line.contains(": panic: ")
        || line.starts_with("Kernel panic - not syncing")
    {
        Panic
    } else if line.starts_with("lock order reversal") {
        Lor
    } else if line.starts_with("acquiring duplicate lock of same type") {
        DupLock
    } else if line.contains("with the following non-sleepable locks held:") {
        NonSleepable
    } else if line.starts_with("Sleeping thread ") && line.contains("owns a non-sleepable lock") {
        SleepingOwner
    } else if line.starts_with("BUG: ") {
        Bug
    } else if line.starts_with("kernel BUG at ") {
        KernelBug
    } else if line.starts_with("WARNING: possible circular locking dependency")
        || line.starts_with("WARNING: inconsistent lock state")
        || line.starts_with("[ INFO: possible ")
        || line.starts_with("WARNING: possible recursive locking")
        || line.starts_with("INFO: trying to register non-static key")
    {
        Lockdep
    } else if line.starts_with("WARNING: ") {
        Warning
    } else if line.starts_with("general protection fault") {
        Gpf
    } else if line.starts_with("Oops: ") {
        Oops
    } else if line.starts_with("INFO: task ") && line.contains(" blocked for more than ") {
        HungTask
    } else if line.starts_with("INFO: rcu") || line.starts_with("rcu: INFO: ") {
        RcuStall
    } else if line.starts_with("refcount_t: ") {
        Refcount
    } else if line.starts_with("unregister_netdevice: waiting for ") {
        NetdevWait
    } else {
        return None;
    };
    Some(m)
}

/// Markers that continue the finding open before them rather than start one.
fn continues(open: Marker, next: Marker) -> bool {
    use Marker::*;
    matches!(
        (open, next),
        (
            FatalTrap | DoubleFault | Gpf | Bug | KernelBug | Oops | Warning | Refcount | Lockdep,
            Panic
        ) | (Bug | KernelBug | Gpf, Oops)
            | (Bug | KernelBug, Gpf)
            | (Refcount, Warning)
            | (HungTask, NetdevWait)
    )
}

#[derive(Debug)]
struct Open {
    marker: Marker,
    first_line: String,
    lines: Vec<String>,
    where_: String,
}

/// A console finding before it is titled.
fn finish(o: Open) -> Finding {
    use Marker::*;
    let frames = frames(&o.lines);
    let guilty = guilty(&o, &frames);
    let first = o.first_line.trim();
    let in_guilty = |t: String| match &guilty {
        Some(g) => format!("{t} in {g}"),
        None => t,
    };
    let (kind, title) = match o.marker {
        FatalTrap => {
            // "Fatal trap 12: page fault while in kernel mode"
            ("fatal-trap", in_guilty(first.to_string()))
        }
        DoubleFault => ("double-fault", in_guilty("Fatal double fault".into())),
        Panic => {
            let msg = first.split_once("panic: ").map(|x| x.1).unwrap_or(first);
            let msg = msg
                .split(" @ ")
                .next()
                .unwrap_or(msg)
                .trim_end_matches(['!', ' ']);
            ("panic", in_guilty(format!("panic: {msg}")))
        }
        Lor => ("lock-order-reversal", lor_title(&o.lines)),
        DupLock => ("witness", first.to_string()),
        NonSleepable => ("witness", in_guilty(first.to_string())),
        SleepingOwner => (
            "witness",
            first.split(" (").next().unwrap_or(first).to_string() + " owns a non-sleepable lock",
        ),
        Bug => {
            let t = first.split(" at ").next().unwrap_or(first);
            let t = t.split(", address").next().unwrap_or(t);
            if t.contains(" in ") {
                // "BUG: KASAN: use-after-free in foo+0x12/0x40": the function is named.
                ("bug", t.split("+0x").next().unwrap_or(t).to_string())
            } else {
                ("bug", in_guilty(t.to_string()))
            }
        }
        KernelBug => ("bug", in_guilty("kernel BUG".into())),
        Warning => ("warning", in_guilty("WARNING".into())),
        Gpf => ("gpf", in_guilty("general protection fault".into())),
        Oops => ("oops", in_guilty("Oops".into())),
        HungTask => ("hung-task", in_guilty("INFO: task hung".into())),
        RcuStall => ("rcu-stall", in_guilty("INFO: rcu detected stall".into())),
        Refcount => {
            let t = first.trim_end_matches('.');
            ("refcount", in_guilty(t.to_string()))
        }
        NetdevWait => (
            "netdev-leak",
            "unregister_netdevice: waiting for DEV to become free".into(),
        ),
        Lockdep => {
            let what = if first.contains("non-static key") {
                "INFO: trying to register non-static key"
            } else {
                "possible deadlock"
            };
            ("lockdep", in_guilty(what.into()))
        }
    };
    let title = normalize(&title);
    let signature = signature(kind, &title);
    let mut excerpt = String::new();
    for l in o.lines.iter().take(EXCERPT_LINES) {
        excerpt.push_str(l);
        excerpt.push('\n');
    }
    Finding {
        kind: kind.into(),
        title,
        signature,
        frames,
        guilty_frame: guilty,
        excerpt: excerpt.trim_end().to_string(),
        known_issue: None,
        count: 1,
        first_seen: o.where_,
    }
}

/// "lock order reversal: A -> B" from WITNESS's " 1st 0x... A (type, class) @ f:l" lines.
fn lor_title(lines: &[String]) -> String {
    let lock = |tag: &str| {
        lines.iter().find_map(|l| {
            let t = l.trim_start();
            let rest = t.strip_prefix(tag)?;
            // " 0xfffff... name (type, class) @ file:line"
            let mut it = rest.split_whitespace();
            let first = it.next()?;
            let name = if first.starts_with("0x") {
                it.next()?
            } else {
                first
            };
            Some(name.to_string())
        })
    };
    match (lock("1st "), lock("2nd ")) {
        (Some(a), Some(b)) => format!("lock order reversal: {a} -> {b}"),
        _ => "lock order reversal".into(),
    }
}

fn frames(lines: &[String]) -> Vec<String> {
    let mut v = Vec::new();
    let mut after_eoi = None;
    for l in lines {
        let t = strip_prefix(l);
        // An RCU stall's trace starts in the timer interrupt: the task's own
        // frames follow <EOI>.
        if t.contains("<EOI>") {
            after_eoi = Some(v.len());
        }
        if let Some(f) = frame_of(l) {
            v.push(f);
        }
    }
    if let Some(i) = after_eoi.filter(|&i| i < v.len()) {
        v.drain(..i);
    }
    v.dedup();
    v
}

fn guilty(o: &Open, frames: &[String]) -> Option<String> {
    // A named culprit on the report's own line (RIP for Linux BUG/GPF/WARNING).
    let rip = o.lines.iter().find_map(|l| {
        let t = strip_prefix(l);
        let r = t.strip_prefix("RIP: ").or_else(|| t.strip_prefix("IP: "))?;
        let r = r.split_once(':').map(|x| x.1).unwrap_or(r).trim_start();
        let f: String = r.chars().take_while(|&c| is_ident(c)).collect();
        (!f.is_empty() && r[f.len()..].starts_with("+0x"))
            .then(|| f.split('.').next().unwrap_or(&f).to_string())
    });
    // Hang and stall reports carry other CPUs' NMI backtraces, whose RIP is
    // not the culprit's.
    let own_rip = !matches!(
        o.marker,
        Marker::HungTask | Marker::RcuStall | Marker::NetdevWait
    );
    if let Some(r) = rip.filter(|r| own_rip && !skipped(r)) {
        return Some(r);
    }
    // lockdep names the lock's user on "at: [<addr>] func+0x.." lines.
    if o.marker == Marker::Lockdep && o.first_line.contains("possible") {
        let at = o.lines.iter().find_map(|l| {
            let r = l.split_once(" at: ")?.1.trim_start();
            let r = if r.starts_with("[<") {
                r.split_once("] ")?.1
            } else {
                r
            };
            let f: String = r.chars().take_while(|&c| is_ident(c)).collect();
            (!f.is_empty() && !skipped(&f)).then_some(f)
        });
        if at.is_some() {
            return at;
        }
    }
    // FreeBSD: after the trap frame, if the trace has one.
    let trap_at = o.lines.iter().position(|l| {
        strip_prefix(l)
            .trim_start_matches('-')
            .trim_start()
            .starts_with("trap 0x")
    });
    if let Some(t) = trap_at {
        let after: Vec<String> = o.lines[t + 1..]
            .iter()
            .filter_map(|l| frame_of(l))
            .collect();
        if let Some(f) = after.into_iter().find(|f| !skipped(f)) {
            return Some(f);
        }
    }
    // "WARNING: CPU: 1 PID: 19 at file:line func+0x..": the function named there.
    let warned = (o.marker == Marker::Warning && o.first_line.contains("+0x"))
        .then(|| o.first_line.rsplit(' ').next())
        .flatten()
        .map(|w| {
            w.split("+0x")
                .next()
                .unwrap_or(w)
                .split('.')
                .next()
                .unwrap_or(w)
        })
        .filter(|f| !f.is_empty() && f.chars().all(is_ident) && !skipped(f));
    if let Some(f) = warned {
        return Some(f.to_string());
    }
    frames.iter().find(|f| !skipped(f)).cloned()
}

/// Incremental scanner, fed line by line (live, from a file, or both).
#[derive(Debug, Default)]
pub struct Scanner {
    done: Vec<Finding>,
    open: Option<Open>,
    line_no: usize,
    source: String,
    fatal: bool,
}

impl Clone for Scanner {
    fn clone(&self) -> Self {
        Scanner {
            done: self.done.clone(),
            open: None,
            line_no: self.line_no,
            source: self.source.clone(),
            fatal: self.fatal,
        }
    }
}

impl Scanner {
    /// Name the input, for `first_seen` ("FILE:LINE").
    pub fn source(&mut self, name: &str) {
        self.flush();
        self.source = name.to_string();
        self.line_no = 0;
    }

    pub fn feed(&mut self, raw: &str) {
        self.line_no += 1;
        let line = strip_prefix(raw);
        if let Some(m) = marker(line) {
            self.fatal |= matches!(m, Marker::Panic | Marker::FatalTrap | Marker::DoubleFault);
            let joins = self.open.as_ref().is_some_and(|o| continues(o.marker, m));
            if !joins {
                self.flush();
                self.open = Some(Open {
                    marker: m,
                    first_line: line.to_string(),
                    lines: vec![line.to_string()],
                    where_: if self.source.is_empty() {
                        format!("line {}", self.line_no)
                    } else {
                        format!("{}:{}", self.source, self.line_no)
                    },
                });
                return;
            }
        }
        if let Some(o) = &mut self.open {
            if o.lines.len() < EXCERPT_LINES * 2 {
                o.lines.push(line.to_string());
            } else {
                self.flush();
            }
        }
    }

    /// Has the machine gone down: a panic, a fatal trap or a double fault?
    pub fn fatal(&self) -> bool {
        self.fatal
    }

    /// Titled findings so far (the open one included, titled as it stands).
    pub fn count(&self) -> usize {
        self.done.len() + self.open.is_some() as usize
    }

    pub fn titles_since(&self, n: usize) -> Vec<String> {
        let mut all: Vec<String> = self.done.iter().map(|f| f.title.clone()).collect();
        if let Some(o) = &self.open {
            all.push(
                finish(Open {
                    marker: o.marker,
                    first_line: o.first_line.clone(),
                    lines: o.lines.clone(),
                    where_: o.where_.clone(),
                })
                .title,
            );
        }
        all.into_iter().skip(n).collect()
    }

    fn flush(&mut self) {
        if let Some(o) = self.open.take() {
            self.done.push(finish(o));
        }
    }

    /// Findings deduplicated by signature, with counts, in order of first appearance.
    pub fn into_findings(mut self) -> Vec<Finding> {
        self.flush();
        dedup(self.done)
    }
}

pub fn dedup(all: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for f in all {
        match out.iter_mut().find(|o| o.signature == f.signature) {
            Some(o) => o.count += f.count,
            None => out.push(f),
        }
    }
    out
}

pub fn scan(text: &str) -> Vec<Finding> {
    let mut s = Scanner::default();
    for l in text.lines() {
        s.feed(l);
    }
    s.into_findings()
}

#[cfg(test)]
mod tests;
