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
    // riscv's trap entry and handler (sys/riscv/riscv/exception.S, trap.c).
    Exact("cpu_exception_handler_supervisor"),
    Exact("cpu_exception_handler"),
    Exact("do_trap_supervisor"),
    Exact("page_fault_handler"),
    // kgdb's view of a dump: the dump itself and the debugger that took it
    // (kern/kern_shutdown.c doadump, kern_reboot; ddb/db_command.c db_dump,
    // db_command, db_command_loop; ddb/db_main.c db_trap).
    Exact("__curthread"),
    Exact("doadump"),
    Exact("kern_reboot"),
    Exact("dump_savectx"),
    Exact("savectx"),
    Exact("db_dump"),
    Exact("db_command"),
    Exact("db_command_loop"),
    Exact("db_trap"),
    Exact("db_fncall"),
    Exact("db_fncall_generic"),
    // linuxkpi's dump_stack() (compat/linuxkpi/common/src/linux_compat.c).
    Exact("linux_dump_stack"),
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

/// Kind of the rules that silence a line: informational printfs that stock
/// configurations print on every boot, or after every crash, and that no
/// kernel developer would file.
pub(crate) const BENIGN: &str = "benign";

const fn benign(header: &'static str) -> Rule {
    Rule::opening(
        Os::FreeBsd,
        MACHINERY,
        header,
        BENIGN,
        Title::Fixed(""),
        Guilty::None,
        false,
    )
}

/// Lines that look like reports to the Linux rules ("WARNING: ...") but
/// are FreeBSD's informational printfs. Read before every other rule.
pub(crate) static QUIET: &[Rule] = &[
    // sys/kern/init_main.c: SYSINITs witwarn/witwarn2 print wit_warn
    // through print_caddr_t on every boot of a WITNESS kernel (GENERIC on
    // -CURRENT), at SI_SUB_COPYRIGHT and again at SI_SUB_LAST.
    benign("WARNING: WITNESS option enabled, expect reduced performance."),
    // sys/kern/init_main.c: SYSINITs diagwarn/diagwarn2, diag_warn, the same
    // for DIAGNOSTIC kernels.
    benign("WARNING: DIAGNOSTIC option enabled, expect reduced performance."),
    // sys/kern/kern_conf.c prep_cdevsw: "WARNING: Device \"%s\" is Giant
    // locked and may be deleted before FreeBSD N.0.\n" for every cdevsw with
    // D_NEEDGIANT (kbd, spkr, openfirm, psm, fb on stock kernels), at boot.
    Rule {
        when: &["is Giant locked and may be deleted"],
        ..benign("WARNING: Device \"")
    },
    // sys/libkern/arc4random.c chacha20_randomstir: printed once on boots
    // where arc4random is used before the random device is seeded
    // (kern.random.initial_seeding.bypass_before_seeding, the default).
    benign("arc4random: WARNING: initial seeding bypassed the cryptographic random"),
    // sys/ufs/ffs/ffs_vfsops.c ffs_mountfs: "WARNING: %s was not properly
    // dismounted\n", printed on the first mount after every crash.
    Rule {
        when: &["was not properly dismounted"],
        ..benign("WARNING: ")
    },
    // sys/cddl/contrib/opensolaris/uts/common/fs/zfs/arc.c arc_init:
    // "ZFS WARNING: Recommended minimum RAM size is 512MB; expect unstable
    // behavior." and "... minimum kmem_size is 512MB ...", on every boot of
    // a small machine with ZFS.
    Rule {
        when: &["Recommended minimum"],
        ..benign("ZFS WARNING: ")
    },
];

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
    // A kgdb `bt` of a vmcore with no report before it: its innermost
    // frames are always the dump's own (sys/kern/kern_shutdown.c doadump,
    // called by kern_reboot, with amd64's __curthread inlined into it).
    // After a report, or inside a crash dump's text, it is that report's.
    Rule {
        check: Some(|l| kgdb_line(l) && (l.contains(" doadump (") || l.contains(" __curthread ("))),
        joins: Joins::Kinds(&["panic", "fatal-trap", "double-fault"]),
        ..rule("#0 ", "panic", Title::In("panic"), Guilty::Panic)
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
    // amd64/i386 db_nextframe: "--- trap 0xc, rip = ...", "--- syscall
    // (...)", "--- interrupt, ..."; arm64 db_stack_trace_cmd: "--- exception,
    // esr %#x", "--- interrupt", "--- system error, esr", "--- unhandled
    // exception", "--- invalid trapframe"; riscv: "--- exception %ld, tval
    // = %#lx", "--- interrupt %ld".
    [
        "trap",
        "exception",
        "syscall",
        "interrupt",
        "system error",
        "unhandled exception",
        "invalid trapframe",
    ]
    .iter()
    .any(|k| r.starts_with(k))
    .then_some(r)
}

/// A separator that starts the faulting code's own frames; in kgdb, the
/// trap frame its FreeBSD unwinder prints as "<signal handler called>".
pub(crate) fn trap_separator(t: &str) -> bool {
    separator(t).is_some_and(|r| {
        (r.starts_with("trap") && !r.starts_with("trap 0,"))
            || r.starts_with("exception")
            || r.starts_with("system error")
            || r.starts_with("unhandled exception")
    }) || (kgdb_line(t) && t.contains("<signal handler called>"))
}

/// A numbered line of gdb's `bt` (gdb/stack.c print_frame): "#N  0x... in
/// f (...)", "#N  f (...) at ...", and the ones that name no function,
/// "#N  0x0000000000000000 in ?? ()" and "#N  <signal handler called>".
/// stack(9)'s "#N 0x... at f+0x.." is not one.
pub(crate) fn kgdb_line(t: &str) -> bool {
    let Some(r) = t.strip_prefix('#') else {
        return false;
    };
    let d = r.bytes().take_while(u8::is_ascii_digit).count();
    if d == 0 || !r[d..].starts_with([' ', '\t']) {
        return false;
    }
    let r = r[d..].trim_start();
    match r.strip_prefix("0x") {
        Some(a) => a
            .trim_start_matches(|c: char| c.is_ascii_hexdigit())
            .starts_with(" in "),
        None => r.starts_with('<') || r.contains(" ("),
    }
}

/// A line inside a backtrace that names no frame of its own but does not
/// end it: a trap separator; a ddb frame of an unknown symbol ("??() at
/// 0/frame ...", arm64's "(null)() at ..."); a kgdb line naming nothing;
/// `kgdb` (the line before was gdb's) its argument list or location
/// wrapped onto the next lines ("    at /usr/src/sys/kern/x.c:12", "
/// from /boot/kernel/if_x.ko", "usermode=<optimized out>, ...)") and
/// `bt full`'s locals ("        res = <optimized out>", "No locals."); arm64
/// and riscv ddb before FreeBSD 14 print each frame's registers on two
/// lines, "\t pc = 0x%016lx  lr = 0x%016lx" and "\t sp = 0x%016lx  fp =
/// 0x%016lx" (riscv: "ra =" for "lr ="), then an empty line
/// (sys/arm64/arm64/db_trace.c, sys/riscv/riscv/db_trace.c
/// db_stack_trace_cmd).
pub(crate) fn filler(t: &str, kgdb: bool) -> bool {
    let t = t.trim();
    separator(t).is_some()
        || (t.contains("() at ") && !t.starts_with('#'))
        || kgdb_line(t)
        || (kgdb
            && !t.starts_with('#')
            && (t.starts_with("at ")
                || t.starts_with("from /")
                || t.contains('=')
                || t == "No locals."))
        || t.starts_with("pc = 0x")
        || t.starts_with("sp = 0x")
}

/// The first line of a crash dump's text: crashinfo(8)'s core.txt
/// (usr.sbin/crashinfo/crashinfo.sh: `echo "$HOSTNAME dumped core - see
/// $VMCORE"`) or kgdb's message buffer ("Unread portion of the kernel
/// message buffer:", printed by kgdb when it opens a vmcore). What follows
/// is one crash: the summary's panic, the message buffer's report and
/// kgdb's backtrace.
pub(crate) fn crash_dump_start(t: &str) -> bool {
    t.contains(" dumped core - see ")
        || t.starts_with("Unread portion of the kernel message buffer")
}

/// crashinfo.sh's rule between sections ("ps -axl", "vmstat -s", ...,
/// "dmesg", "ddb capture buffer"): 72 dashes. Past it the crash is only
/// repeated.
pub(crate) fn crashinfo_section(t: &str) -> bool {
    t.len() >= 60 && t.bytes().all(|b| b == b'-')
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

/// `next` is the rest of `prev`, cut by the console's width (80 columns
/// on a VGA or serial console; mail wraps at about as much): what joins
/// them again. A trap separator ("--- trap 0xc, rip = 0x..., rsp = 0x...,
/// rbp =") goes on to the line ending in "---"; a long ddb frame line
/// broken inside a word ("... at sctp_common_input_processing+0xa2a/fra")
/// goes on to a lone fragment ("me 0xfffffe2f434b7e40").
pub(crate) fn continues(prev: &str, next: &str) -> Option<&'static str> {
    let n = next.trim();
    if n.is_empty()
        || separator(n).is_some()
        || n.starts_with('#')
        || super::frames::parse(n).is_some()
    {
        return None;
    }
    let p = prev.trim_end();
    if separator(p).is_some() && !p.ends_with("---") && n.ends_with("---") {
        return Some(" ");
    }
    let cut_frame = p.len() >= 60
        && super::frames::ddb_call(p).is_some()
        && !p.ends_with("---")
        && !complete_frame(p);
    (cut_frame && !n.contains([' ', '\t']) && n.len() < 40).then_some("")
}

/// An amd64/i386 ddb frame line that ends in its whole frame address
/// ("/frame 0xfffffe0074be6750", at least 8 hex digits).
fn complete_frame(p: &str) -> bool {
    p.rsplit_once("/frame 0x")
        .is_some_and(|(_, hex)| hex.len() >= 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The function witness_warn's message names as the one that may sleep
/// ("Calling uiomove() with ...", "calling _callout_stop_safe with ...",
/// "uma_zalloc_debug: zone ... with ..."): it only reports that its caller
/// held the lock, so neither it nor its own helpers are to blame.
pub(crate) fn sleeps_in(head: &str, frame: &str) -> bool {
    let msg = head.split(" with the following").next().unwrap_or(head);
    msg.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.len() >= 4 && w.contains(|c: char| c == '_' || c.is_ascii_lowercase()))
        .any(|w| {
            frame == w
                || frame
                    .strip_prefix(w)
                    .is_some_and(|rest| rest.starts_with('_'))
        })
}
