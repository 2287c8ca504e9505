//! FreeBSD's reports, as data. The printers each rule serves:
//! sys/amd64/amd64/trap.c trap_fatal ("Fatal trap %d: %s while in %s
//! mode", then panic() with the trap's name), dblfault_handler ("Fatal
//! double fault"), sys/arm64/arm64/trap.c data_abort ("Fatal data abort:",
//! then panic "vm_fault failed"), sys/kern/kern_shutdown.c vpanic
//! ("panic: %s", "cpuid = ", "time = ", then kdb_backtrace's "KDB: stack
//! backtrace:"), KASSERT/MPASS (sys/sys/lock.h MPASS4: "Assertion %s failed
//! at %s:%d", through kassert_panic), sys/kern/kern_mutex.c and kern_sx.c
//! ("mtx_lock() of destroyed mutex @ %s:%d", "sx lock still held"),
//! sys/kern/subr_witness.c (witness_checkorder: "lock order reversal:"
//! with " 1st %p %s (%s, %s) @ %s:%d" lines, "acquiring duplicate lock of
//! same type:"; witness_warn: "<msg> with the following non-sleepable
//! locks held:"), sys/kern/subr_turnstile.c propagate_priority ("Sleeping
//! thread (tid %d, pid %d) owns a non-sleepable lock").

use super::frames::Pat::{self, Exact, Prefix};
use super::rules::{Guilty, Joins, Os, Rule, Seen, Title};

/// Frames that never name the culprit of a FreeBSD report.
pub(crate) static MACHINERY: &[Pat] = &[
    // Trap, panic and debugger entry.
    Exact("kdb_backtrace"),
    Exact("db_trace_self_wrapper"),
    Exact("db_trace_self"),
    Exact("vpanic"),
    Exact("panic"),
    Exact("kassert_panic"),
    Exact("trap_fatal"),
    Exact("trap_pfault"),
    Exact("trap"),
    Exact("calltrap"),
    Exact("dblfault_handler"),
    Exact("kdb_enter"),
    Exact("kdb_trap"),
    Exact("breakpoint"),
    Exact("doreti"),
    Exact("data_abort"),
    Exact("do_el1h_sync"),
    Exact("handle_el1h_sync"),
    Prefix("witness_"),
    // Sleep and scheduling: where a thread waited.
    Exact("mi_switch"),
    Exact("sched_switch"),
    Prefix("sleepq_"),
    Exact("_sleep"),
    Exact("msleep_spin_sbt"),
    Exact("pause_sbt"),
    Prefix("_cv_"),
    Exact("turnstile_wait"),
    Exact("propagate_priority"),
    Prefix("epoch_wait"),
    // Lock primitives and their assertions (kern_mutex.c, kern_rwlock.c,
    // kern_sx.c, kern_lock.c, kern_rmlock.c): the caller misused the lock.
    Prefix("__mtx_"),
    Prefix("_mtx_"),
    Prefix("mtx_lock"),
    Prefix("mtx_unlock"),
    Exact("mtx_destroy"),
    Prefix("thread_lock"),
    Prefix("__rw_"),
    Prefix("_rw_"),
    Exact("rw_destroy"),
    Prefix("_sx_"),
    Prefix("sx_xlock"),
    Prefix("sx_slock"),
    Prefix("sx_xunlock"),
    Prefix("sx_sunlock"),
    Prefix("sx_try"),
    Exact("sx_destroy"),
    Prefix("__lockmgr"),
    Prefix("lockmgr"),
    Prefix("_rm_"),
    Prefix("rms_"),
    Exact("lock_delay"),
    // Memory and string routines: the caller passed the bad pointer.
    Prefix("bcopy"),
    Prefix("bzero"),
    Prefix("memcpy"),
    Prefix("memmove"),
    Prefix("memset"),
    Exact("memcmp"),
    Exact("bcmp"),
    Exact("timingsafe_bcmp"),
    Exact("strlen"),
    Exact("strnlen"),
    Exact("strcmp"),
    Exact("strncmp"),
    Exact("strcasecmp"),
    Exact("strncasecmp"),
    Exact("strcpy"),
    Exact("strncpy"),
    Exact("strlcpy"),
    Exact("strlcat"),
    Exact("strcat"),
    Exact("strstr"),
    Exact("strchr"),
    Exact("strrchr"),
    Exact("strsep"),
    Exact("strdup"),
    Exact("index"),
    Exact("rindex"),
    Prefix("copyin"),
    Prefix("copyout"),
    Exact("fubyte"),
    Exact("subyte"),
    Prefix("fueword"),
    Prefix("suword"),
    Exact("kvprintf"),
    Exact("vprintf"),
    Exact("printf"),
    Exact("snprintf"),
    Exact("vsnprintf"),
    Exact("sprintf"),
    Exact("log"),
    Prefix("sbuf_"),
    // Hash and checksum helpers (sys/crypto/siphash, libkern): the caller
    // handed them the bad buffer.
    Prefix("SipHash"),
    Exact("SipBuf"),
    Prefix("murmur3_"),
    Prefix("jenkins_hash"),
    Prefix("crc32"),
    Prefix("fnv_"),
    Exact("in_cksum"),
    Prefix("in_cksum_"),
    Exact("in6_cksum"),
    // mbuf helpers (kern/uipc_mbuf.c): a bad chain is the caller's.
    Exact("m_copydata"),
    Exact("m_copyback"),
    Exact("m_copym"),
    Exact("m_copypacket"),
    Exact("m_copymdata"),
    Exact("m_dup"),
    Exact("m_dup_pkthdr"),
    Exact("m_pullup"),
    Exact("m_pulldown"),
    Exact("m_append"),
    Exact("m_cat"),
    Exact("m_catpkt"),
    Exact("m_adj"),
    Exact("m_split"),
    Exact("m_prepend"),
    Exact("m_length"),
    Exact("m_fixhdr"),
    Exact("m_apply"),
    Exact("m_free"),
    Exact("m_freem"),
    Exact("m_free_raw"),
    Exact("mb_free_ext"),
    Exact("mb_dupcl"),
    Exact("m_demote"),
    Exact("m_unshare"),
    Exact("m_defrag"),
    Exact("m_collapse"),
    Exact("m_getm2"),
    Exact("m_get2"),
    Exact("m_getjcl"),
    Exact("m_clget"),
    Exact("m_cljget"),
    Exact("m_sanity"),
    // Allocators (kern_malloc.c, vm/uma_core.c).
    Exact("malloc"),
    Exact("free"),
    Exact("zfree"),
    Exact("realloc"),
    Exact("reallocf"),
    Exact("malloc_domainset"),
    Exact("contigmalloc"),
    Exact("contigfree"),
    Prefix("uma_"),
    Prefix("zone_"),
    Prefix("keg_"),
    Prefix("slab_"),
    Prefix("bucket_"),
    Prefix("cache_alloc"),
    Prefix("cache_free"),
    Exact("kmem_malloc"),
    Exact("kmem_free"),
    // Sanitizer runtimes (KASAN, KMSAN, KCSAN).
    Prefix("__asan_"),
    Prefix("kasan_"),
    Prefix("__msan_"),
    Prefix("kmsan_"),
    Prefix("kcsan_"),
    Prefix("san_"),
];

// ----------------------------------------------------------- title helpers

fn head(s: &Seen) -> String {
    s.head.trim().to_string()
}

/// "panic: <msg>": the location ("@ /usr/src/sys/x.c:12", MPASS's "failed
/// at /x.c:12") and a sanitizer's address details go; the function the
/// title names says where, and line numbers move between builds.
fn panic_msg(s: &Seen) -> String {
    let msg = s.head.trim_start_matches("panic:").trim();
    let mut msg = msg.split(" @ ").next().unwrap_or(msg);
    if let Some(i) = msg.find(" failed at ") {
        msg = &msg[..i + " failed".len()];
    }
    let sanitizer = ["ASan: ", "MSan: ", "KCSan: "]
        .iter()
        .any(|p| msg.starts_with(p));
    if sanitizer && let Some(i) = msg.find(" at 0x") {
        msg = &msg[..i];
    }
    format!("panic: {}", msg.trim_end_matches(['!', ' ', '.']))
}

/// WITNESS's " 1st 0xfffff8000 ifnet_sx (ifnet_sx, sx) @ /x/if.c:1" line: the
/// witness (lock type) name in parentheses, else the lock's own name.
fn lor_lock(lines: &[&str], tag: &str) -> Option<String> {
    lines.iter().find_map(|l| {
        let rest = l.trim_start().strip_prefix(tag)?;
        let rest = rest.trim_start();
        let rest = match rest.strip_prefix("0x") {
            Some(r) => r
                .trim_start_matches(|c: char| c.is_ascii_hexdigit())
                .trim_start(),
            None => rest,
        };
        let rest = rest.split(" @ ").next().unwrap_or(rest);
        let own = rest.split(" (").next().unwrap_or(rest).trim();
        let witness = rest
            .split_once(" (")
            .and_then(|(_, r)| r.split([',', ')']).next())
            .map(str::trim)
            .filter(|w| !w.is_empty());
        Some(witness.unwrap_or(own).to_string())
    })
}

fn lor(s: &Seen) -> String {
    let why = s
        .head
        .split_once('(')
        .and_then(|(_, r)| r.split(')').next())
        .map(|q| format!(" ({q})"))
        .unwrap_or_default();
    match (lor_lock(s.lines, "1st "), lor_lock(s.lines, "2nd ")) {
        (Some(a), Some(b)) => format!("lock order reversal: {a} -> {b}{why}"),
        _ => format!("lock order reversal{why}"),
    }
}

/// "Sleeping on \"vmwait\" with the following non-sleepable locks held:".
fn locks_held(s: &Seen) -> String {
    let line = s.lines.first().copied().unwrap_or(s.head);
    let msg = line
        .split(" with the following")
        .next()
        .unwrap_or(line)
        .trim();
    let what = if s.head.contains("non-sleepable") {
        "non-sleepable locks"
    } else {
        "locks"
    };
    if msg.is_empty() {
        format!("with {what} held")
    } else {
        format!("{msg} with {what} held")
    }
}

fn fatal_trap(from_header: &str) -> bool {
    from_header["Fatal trap ".len()..]
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit())
}

// ------------------------------------------------------------------- rules

const fn rule(header: &'static str, kind: &'static str, title: Title, guilty: Guilty) -> Rule {
    // A kernel without KDB prints no backtrace: not a cut report.
    Rule::opening(Os::FreeBsd, MACHINERY, header, kind, title, guilty, false)
}

/// The trap reports a panic follows.
const TRAPS: &[&str] = &["fatal-trap", "double-fault"];

/// FreeBSD's report types.
pub(crate) static RULES: &[Rule] = &[
    // trap_fatal.
    Rule {
        check: Some(fatal_trap),
        ..rule(
            "Fatal trap ",
            "fatal-trap",
            Title::Custom(head, true),
            Guilty::AfterTrap,
        )
    },
    // amd64 dblfault_handler.
    rule(
        "Fatal double fault",
        "double-fault",
        Title::In("Fatal double fault"),
        Guilty::AfterTrap,
    ),
    // arm64 data_abort.
    rule(
        "Fatal data abort:",
        "fatal-trap",
        Title::In("Fatal data abort"),
        Guilty::AfterTrap,
    ),
    // The debugger's own "panic" command and witness_warn's WARN_PANIC only
    // ever follow a report.
    Rule {
        check: Some(|l| {
            let m = l["panic:".len()..].trim();
            m == "from debugger" || m == "witness_warn" || m.starts_with("witness_warn ")
        }),
        joins: Joins::Consequence,
        ..rule(
            "panic:",
            "panic",
            Title::Custom(panic_msg, true),
            Guilty::Panic,
        )
    },
    // vpanic; after trap_fatal it is the trap's own panic.
    Rule {
        unless: &["ddb.onpanic:"],
        joins: Joins::Kinds(TRAPS),
        ..rule(
            "panic:",
            "panic",
            Title::Custom(panic_msg, true),
            Guilty::Panic,
        )
    },
    // witness_checkorder.
    rule(
        "lock order reversal",
        "lock-order-reversal",
        Title::Custom(lor, false),
        Guilty::Stack,
    ),
    rule(
        "acquiring duplicate lock of same type:",
        "witness",
        Title::Line,
        Guilty::Stack,
    ),
    // witness_warn.
    rule(
        "with the following non-sleepable locks held:",
        "witness",
        Title::Custom(locks_held, true),
        Guilty::Stack,
    ),
    rule(
        "with the following locks held:",
        "witness",
        Title::Custom(locks_held, true),
        Guilty::Stack,
    ),
    // propagate_priority.
    Rule {
        when: &["owns a non-sleepable lock"],
        ..rule(
            "Sleeping thread ",
            "witness",
            Title::In("Sleeping thread owns a non-sleepable lock"),
            Guilty::Stack,
        )
    },
];

/// A line between frames that says the stack crossed a trap, exception or
/// syscall ("--- trap 0xc, rip = ...", arm64's "--- exception, esr ...";
/// some web copies collapse the dashes to one).
pub(crate) fn separator(t: &str) -> Option<&str> {
    let r = t.trim_start();
    if !r.starts_with('-') {
        return None;
    }
    let r = r.trim_start_matches('-').trim_start();
    ["trap", "exception", "syscall", "interrupt"]
        .iter()
        .any(|k| r.starts_with(k))
        .then_some(r)
}

/// A separator that starts the faulting code's own frames.
pub(crate) fn trap_separator(t: &str) -> bool {
    separator(t).is_some_and(|r| {
        (r.starts_with("trap") && !r.starts_with("trap 0,")) || r.starts_with("exception")
    })
}

/// ddb's "Stopped at      atrtc_settime+0xc:  movl ...": where the CPU was.
pub(crate) fn stopped_at(t: &str) -> Option<&str> {
    let r = t.strip_prefix("Stopped at")?.trim_start();
    let n = r
        .bytes()
        .take_while(|&b| b.is_ascii_alphanumeric() || b == b'_')
        .count();
    (n > 0 && r[n..].starts_with('+')).then(|| &r[..n])
}
