//! Linux's reports, as data: the line each report type starts with (from
//! the kernel's own printers), its title in the community's form (syzbot's:
//! "KASAN: use-after-free Read in f", "WARNING in f", "possible deadlock in
//! f", "INFO: task hung in f" ...), where its culprit is read from, and the
//! frames that are report, lock, allocator or library machinery.
//!
//! The printers each rule serves are named on the rule: lib/bug.c
//! (report_bug: "kernel BUG at", WARN's "WARNING: CPU: N PID: N at"),
//! kernel/panic.c (__warn, panic: "Kernel panic - not syncing: "),
//! mm/kasan/report.c (print_error_description: "BUG: KASAN: %s in %pS",
//! then "%s of size %zu at addr" or, before 4.x's rework, "... at addr" on
//! the header and "Read of size N by task" after it),
//! kernel/locking/lockdep.c (the "WARNING: possible circular locking
//! dependency detected" family, "INFO:" in kernels before 4.10,
//! print_unlock_imbalance_bug, "INFO: trying to register non-static key."),
//! kernel/hung_task.c ("INFO: task %s:%d blocked for more than %ld
//! seconds."), kernel/rcu/tree_stall.h ("INFO: %s detected stalls on
//! CPUs/tasks:", "%s self-detected stall on CPU"), lib/debugobjects.c
//! (debug_print_object's WARN), mm/usercopy.c (usercopy_abort's BUG,
//! usercopy_warn's WARN), lib/list_debug.c (CHECK_DATA_CORRUPTION: BUG or
//! WARN in lib/list_debug.c), mm/kmemleak.c (the "unreferenced object"
//! records syzkaller prints after "BUG: memory leak").

use super::frames::Pat::{self, Contains, Exact, Prefix, Suffix};
use super::rules::{Guilty, Joins, Os, Rule, Seen, Title};

/// Frames that never name the culprit of a Linux report.
pub(crate) static MACHINERY: &[Pat] = &[
    // The report printers and the trap path of BUG()/WARN() (lib/bug.c,
    // kernel/panic.c, arch/x86/kernel/traps.c, arch/x86/mm/fault.c).
    Contains("dump_stack"),
    Contains("show_stack"),
    Contains("dump_backtrace"),
    Contains("walk_stack"),
    Contains("panic"),
    Exact("__warn"),
    Contains("warn_slowpath"),
    Contains("warn_alloc"),
    Contains("warn_bogus"),
    Contains("report_bug"),
    Exact("handle_bug"),
    Contains("fixup_bug"),
    Contains("invalid_op"),
    Prefix("do_error"),
    Suffix("_trap"),
    Contains("do_trap"),
    Contains("print_report"),
    Contains("print_address_description"),
    Contains("print_usage_bug"),
    Contains("print_unlock"),
    Contains("imbalance_bug"),
    Contains("print_tainted"),
    Exact("get_taint"),
    Contains("page_fault"),
    Exact("__die"),
    Exact("die"),
    Exact("die_addr"),
    Contains("general_protection"),
    Prefix("asm_exc_"),
    Contains("program_check"),
    // Sanitizer runtimes: they detect, the caller did it.
    Contains("__sanitizer"),
    Contains("__asan"),
    Contains("kasan"),
    Contains("__msan"),
    Contains("kmsan"),
    Contains("kcsan_setup_watchpoint"),
    Contains("kfence"),
    Contains("check_memory_region"),
    Contains("check_heap_object"),
    Exact("check_object"),
    Contains("__check_object_size"),
    Prefix("usercopy_"),
    Contains("read_word_at_a_time"),
    // lockdep and the lock primitives (kernel/locking/*): the lock was
    // taken by the caller.
    Contains("lockdep"),
    Contains("lock_acquire"),
    Contains("lock_release"),
    Contains("lock_class"),
    Contains("mark_lock"),
    Contains("held_locks"),
    Exact("validate_chain"),
    Exact("check_noncircular"),
    Exact("check_prev_add"),
    Contains("raw_spin_rq"),
    Contains("spin_lock"),
    Contains("spin_trylock"),
    Contains("spin_unlock"),
    Contains("read_lock"),
    Contains("read_trylock"),
    Contains("read_unlock"),
    Contains("write_lock"),
    Contains("write_trylock"),
    Contains("write_unlock"),
    Exact("down"),
    Contains("down_read"),
    Contains("down_write"),
    Contains("down_trylock"),
    Contains("up_read"),
    Contains("up_write"),
    Contains("rwsem"),
    Prefix("mutex_"),
    Prefix("__mutex_"),
    Prefix("rt_mutex_"),
    Contains("owner_on_cpu"),
    Contains("osq_lock"),
    Contains("osq_unlock"),
    Contains("seqprop_assert"),
    // Atomics, bit operations and reference counts.
    Prefix("atomic_"),
    Prefix("atomic64_"),
    Prefix("arch_atomic"),
    Prefix("raw_atomic"),
    Contains("set_bit"),
    Contains("clear_bit"),
    Contains("change_bit"),
    Contains("test_bit"),
    Prefix("refcount_"),
    Prefix("__refcount"),
    Prefix("kref_"),
    Contains("ref_tracker"),
    // Memory, string and formatting routines: the caller passed the bad
    // pointer.
    Contains("memcpy"),
    Contains("memcmp"),
    Contains("memset"),
    Contains("memchr"),
    Contains("memmove"),
    Contains("memdup"),
    Contains("strcmp"),
    Contains("strncmp"),
    Contains("strcpy"),
    Contains("strlcpy"),
    Contains("strncpy"),
    Contains("strscpy"),
    Contains("strlen"),
    Contains("strstr"),
    Contains("strnstr"),
    Contains("strnlen"),
    Contains("strchr"),
    Contains("strdup"),
    Contains("strndup"),
    Contains("string"),
    Contains("pointer"),
    Contains("snprintf"),
    Contains("scnprintf"),
    Contains("kasprintf"),
    Contains("printk"),
    Contains("va_format"),
    Prefix("_dev_"),
    Exact("dev_info"),
    Exact("dev_notice"),
    Exact("dev_warn"),
    Exact("dev_err"),
    Exact("dev_alert"),
    Exact("dev_crit"),
    Exact("dev_emerg"),
    Contains("hex_dump"),
    // User copies and sleeping checks.
    Contains("copy_to_user"),
    Contains("copy_from_user"),
    Contains("copy_to_iter"),
    Contains("copy_from_iter"),
    Contains("copy_page_to_iter"),
    Contains("copy_page_from_iter"),
    Contains("copy_folio_to_iter"),
    Contains("put_user"),
    Contains("get_user"),
    Contains("might_fault"),
    Contains("might_sleep"),
    Contains("might_resched"),
    // Allocators (mm/slub.c, mm/page_alloc.c, mm/vmalloc.c ...).
    Contains("malloc"),
    Contains("zalloc"),
    Contains("calloc"),
    Contains("krealloc"),
    Contains("kmem_cache"),
    Contains("slab_"),
    Contains("alloc_page"),
    Contains("alloc_frozen_pages"),
    Contains("folio_alloc"),
    Contains("folio_unlock"),
    Contains("filemap_alloc_folio"),
    Contains("filemap_get_folio"),
    Contains("find_or_create_page"),
    Contains("read_cache_page"),
    Contains("read_cache_folio"),
    Contains("pagecache_get_page"),
    Exact("kfree"),
    Exact("kvfree"),
    Contains("kfree_skb"),
    Contains("ida_free"),
    // Lists and trees: lib/list_debug.c reports, the caller corrupted.
    Contains("list_add"),
    Contains("list_del"),
    Contains("list_replace"),
    Contains("list_move"),
    Contains("list_splice"),
    Prefix("__rb_"),
    Prefix("rb_insert"),
    Prefix("rb_erase"),
    Exact("rb_next"),
    Exact("rb_prev"),
    Exact("rb_first"),
    Exact("rb_replace_node"),
    Prefix("klist_"),
    Contains("rhashtable_lookup"),
    Contains("_indirect_thunk_"),
    // lib/debugobjects.c: it checks, the caller freed or reused.
    Contains("debug_object"),
    Contains("timer_is_static_object"),
    Contains("work_is_static_object"),
    // Deferred work, timers and waits: where a task waited, not why.
    Contains("del_timer"),
    Contains("flush_work"),
    Contains("__cancel_work_timer"),
    Contains("cancel_work_sync"),
    Contains("try_to_grab_pending"),
    Contains("flush_workqueue"),
    Contains("drain_workqueue"),
    Contains("destroy_workqueue"),
    Prefix("queue_work"),
    Suffix("_queue_work"),
    Exact("__queue_work"),
    Prefix("queue_delayed_work"),
    Exact("__queue_delayed_work"),
    Exact("mod_delayed_work_on"),
    Exact("insert_work"),
    Contains("finish_wait"),
    Contains("kthread_stop"),
    Exact("complete"),
    Contains("wait_for_completion"),
    Contains("__wake_up"),
    Contains("lock_timer_base"),
    Contains("timer_delete_sync"),
    Contains("sk_stop_timer_sync"),
    Contains("__mod_timer"),
    // The device model tears down for its caller.
    Contains("kobject_"),
    Contains("add_uevent_var"),
    Contains("get_device_parent"),
    Contains("device_add"),
    Contains("device_del"),
    Contains("device_unregister"),
    Contains("device_destroy"),
    Contains("device_release"),
    Contains("devres_release_all"),
    Contains("device_for_each_child"),
    Contains("sysfs_remove"),
    Contains("device_remove_file"),
    Exact("put_device"),
    Contains("rollback_registered"),
    Contains("unregister_netdev"),
    Contains("tty_unregister_device"),
    Contains("hwrng_unregister"),
    Contains("i2c_del_adapter"),
    Contains("__unregister_client"),
    // The USB core submits and kills for the driver that asked.
    Contains("dummy_urb_enqueue"),
    Contains("usb_kill_urb"),
    Contains("usb_kill_anchored_urbs"),
    Contains("usb_control_msg"),
    Contains("usb_hcd_submit_urb"),
    Contains("usb_submit_urb"),
    // Stack walkers, tracing hooks, VFS reference helpers.
    Contains("stack_trace_save"),
    Contains("stack_trace_consume_entry"),
    Contains("arch_stack_walk"),
    Contains("trace_hardirqs"),
    Contains("trace_softirqs"),
    Contains("perf_trace"),
    Contains("bh_enable"),
    Contains("bh_disable"),
    Exact("iput"),
    Exact("iput_final"),
    Exact("ihold"),
    Contains("dput"),
    Contains("drop_nlink"),
    Contains("mark_buffer_dirty"),
    Contains("__phys_addr"),
    Contains("__fortify_report"),
    Contains("xas_load"),
    Contains("xas_find"),
    Contains("xas_start"),
    // arm64's fault entry.
    Contains("do_translation_fault"),
    Contains("do_kernel_fault"),
    Contains("do_mem_abort"),
    Contains("el1_abort"),
    Contains("el1h_64_sync"),
];

/// The dispatchers that bound a stall's loop (kernel/rcu/tree_stall.h and
/// the soft-lockup watchdog catch a CPU anywhere inside the loop; the frame
/// just above the dispatcher is stable across hits).
static STALL_DISPATCH: &[Pat] = &[
    Contains("process_one_work"),
    Contains("do_syscall_"),
    Contains("do_fast_syscall_"),
    Contains("invoke_syscall"),
    Contains("el0_svc"),
    Contains("ret_fast_syscall"),
    Contains("netif_receive_skb"),
    Contains("do_softirq"),
    Contains("call_timer_fn"),
    Contains("_run_timers"),
    Contains("run_timer_softirq"),
    Contains("hrtimer_run"),
    Contains("run_ksoftirqd"),
    Contains("smpboot_thread_fn"),
    Exact("kthread"),
    Contains("start_secondary"),
    Contains("cpu_startup_entry"),
    Contains("ret_from_fork"),
    Contains("vfs_write"),
    Contains("vfs_read"),
    Contains("vfs_iter_read"),
    Contains("vfs_iter_write"),
    Contains("do_iter_read"),
    Contains("do_iter_write"),
    Contains("call_read_iter"),
    Contains("call_write_iter"),
    Contains("new_sync_read"),
    Contains("new_sync_write"),
    Contains("vfs_ioctl"),
    Contains("compat_ioctl"),
    Contains("blkdev_ioctl"),
    Contains("do_iter_readv_writev"),
    Prefix("call_mmap"),
    Contains("mmap_region"),
    Contains("do_mmap"),
    Contains("do_dentry_open"),
    Contains("vfs_open"),
    Prefix("sock_sendmsg"),
    Prefix("sock_recvmsg"),
    Prefix("sock_release"),
    Prefix("__sock_release"),
    Exact("setsockopt"),
    Contains("kernel_setsockopt"),
    Contains("sock_common_setsockopt"),
    Exact("listen"),
    Contains("kernel_listen"),
    Contains("sk_common_release"),
    Prefix("sock_mmap"),
    Exact("accept"),
    Contains("kernel_accept"),
    Prefix("sock_do_ioctl"),
    Prefix("sock_ioctl"),
    Prefix("compat_sock_ioctl"),
    Prefix("nfnetlink_rcv_msg"),
    Prefix("rtnetlink_rcv_msg"),
    Prefix("netlink_dump"),
    Prefix("socketpair"),
    Prefix("sys_socketpair"),
    Prefix("connect"),
    Prefix("sys_connect"),
    Prefix("ioctl"),
    Prefix("sys_ioctl"),
    Contains("__do_fault"),
    Contains("do_page_fault"),
    Exact("page_fault"),
    Contains("__fput"),
    Contains("task_work_run"),
    Contains("exit_to_usermode"),
    Contains("exit_to_user_mode"),
    Contains("smp_call_function"),
    Contains("tasklet_action"),
    Contains("tasklet_hi_action"),
];

/// Hung tasks (kernel/hung_task.c) are victims: the waits most of them
/// share are reported as one bucket each.
static HANG_BUCKETS: &[(&str, &str)] = &[
    ("rtnl_lock", "rtnl_lock"),
    ("synchronize_rcu", "synchronize_rcu"),
    ("synchronize_srcu", "synchronize_rcu"),
    ("synchronize_net", "synchronize_rcu"),
    ("synchronize_sched", "synchronize_rcu"),
];

/// What a hung task waits in: scheduling, sleeping locks, completions.
static HANG_WAITS: &[Pat] = &[
    Contains("sched"),
    Contains("_lock"),
    Contains("_slowlock"),
    Contains("down"),
    Contains("rwsem"),
    Contains("completion"),
    Contains("kthread"),
    Contains("wait"),
    Contains("synchronize"),
    Contains("context_switch"),
    Contains("__switch_to"),
    Contains("cancel_delayed_work"),
    Contains("rcu_barrier"),
];

// ----------------------------------------------------------- title helpers

/// Text of `head` after `prefix`, up to the first of `ends`.
fn between<'a>(head: &'a str, prefix: &str, ends: &[&str]) -> &'a str {
    let rest = head.find(prefix).map_or("", |i| &head[i + prefix.len()..]);
    let end = ends
        .iter()
        .filter_map(|e| rest.find(e))
        .min()
        .unwrap_or(rest.len());
    rest[..end].trim()
}

/// KASAN's access: "Read"/"Write" from "Read of size 8 at addr" (or the
/// older "Read of size 8 by task", or "Write at addr").
fn access(lines: &[&str]) -> Option<&'static str> {
    lines.iter().take(12).find_map(|l| {
        ["Read", "Write"].into_iter().find(|a| {
            l.find(a).is_some_and(|i| {
                let r = &l[i + a.len()..];
                r.starts_with(" of size") || r.starts_with(" at addr")
            })
        })
    })
}

fn kasan(s: &Seen) -> String {
    let kind = between(s.head, "KASAN: ", &[" in ", " on address", " at addr"]);
    match access(s.lines) {
        Some(a) => format!("KASAN: {kind} {a}"),
        None => format!("KASAN: {kind}"),
    }
}

fn kmsan(s: &Seen) -> String {
    format!("KMSAN: {}", between(s.head, "KMSAN: ", &[" in "]))
}

fn kfence(s: &Seen) -> String {
    format!("KFENCE: {}", between(s.head, "KFENCE: ", &[" in "]))
}

fn kcsan(s: &Seen) -> String {
    format!("KCSAN: {}", between(s.head, "KCSAN: ", &[]))
}

fn ubsan(s: &Seen) -> String {
    let kind = between(s.head, "UBSAN: ", &[" in "]);
    if kind.eq_ignore_ascii_case("undefined behaviour") {
        "UBSAN: undefined-behaviour".into()
    } else {
        format!("UBSAN: {kind}")
    }
}

/// "BUG: spinlock bad magic on CPU#0, ..." -> "BUG: spinlock bad magic".
fn spinlock(s: &Seen) -> String {
    const WHAT: &[&str] = &[
        "lockup suspected",
        "already unlocked",
        "cpu recursion",
        "recursion",
        "bad magic",
        "wrong owner",
        "wrong CPU",
        "trylock failure on UP",
    ];
    let lock = if s.head.contains("rwlock") {
        "rwlock"
    } else {
        "spinlock"
    };
    let what = WHAT
        .iter()
        .find(|w| s.head.contains(*w))
        .copied()
        .unwrap_or("");
    format!("BUG: {lock} {what}").trim_end().to_string()
}

/// "BUG: using __this_cpu_read() in preemptible [00000000] code: x/1".
fn preemptible(s: &Seen) -> String {
    let f = between(s.head, "BUG: using ", &["()"]);
    format!("BUG: using {f}() in preemptible code")
}

fn bad_page(s: &Seen) -> String {
    let what = if s.head.contains("Bad page cache") {
        "cache"
    } else {
        "state"
    };
    format!("BUG: Bad page {what}")
}

fn freed_in(s: &Seen) -> String {
    let what = if s.head.contains("INFO: Allocated") {
        "Allocated"
    } else {
        "Freed"
    };
    format!("INFO: {what}")
}

/// "Kernel panic - not syncing: X" -> "kernel panic: X".
fn kernel_panic(s: &Seen) -> String {
    let msg = between(s.head, "not syncing: ", &[]);
    let msg = msg.trim_end_matches(['.', ' ']);
    format!("kernel panic: {msg}")
}

// ----------------------------------------------------------------- checks

fn blank_after(from_header: &str) -> bool {
    from_header
        .split_once(':')
        .is_some_and(|(_, rest)| rest.trim().is_empty())
}

fn kasan_free(from_header: &str) -> bool {
    let t = from_header.trim_start_matches("BUG: KASAN: ");
    t.starts_with("double-free") || t.starts_with("invalid-free")
}

fn wait_for_free(from_header: &str) -> bool {
    from_header.contains(" to become free")
}

// ------------------------------------------------------------------- rules

/// A rule with the common fields filled: Linux machinery, opens a report.
const fn rule(header: &'static str, kind: &'static str, title: Title, guilty: Guilty) -> Rule {
    let expects_frame = !matches!(guilty, Guilty::None);
    Rule::opening(
        Os::Linux,
        MACHINERY,
        header,
        kind,
        title,
        guilty,
        expects_frame,
    )
}

const LOCKDEP_DEADLOCK: Title = Title::In("possible deadlock");

/// Linux's report types. Within a header the specific forms come first.
pub(crate) static RULES: &[Rule] = &[
    // mm/kasan/report.c: double and invalid frees name the freeing caller.
    Rule {
        check: Some(kasan_free),
        skip: &[
            Contains("slab_"),
            Contains("kfree"),
            Contains("vunmap"),
            Contains("vfree"),
        ],
        ..rule(
            "BUG: KASAN: ",
            "kasan",
            Title::In("KASAN: invalid-free"),
            Guilty::HeaderThenStack,
        )
    },
    // mm/kasan/report.c: "BUG: KASAN: <type> in <f>", the access on the
    // next lines; hardware tag faults add arm64 fault frames.
    Rule {
        skip: &[
            Contains("kernel_fault"),
            Contains("tag_check"),
            Contains("mem_abort"),
            Prefix("el1_"),
            Prefix("el1h_"),
        ],
        ..rule(
            "BUG: KASAN: ",
            "kasan",
            Title::Custom(kasan, true),
            Guilty::HeaderThenStack,
        )
    },
    // mm/kmsan/report.c: the uninit use's own stack comes first.
    Rule {
        skip: &[
            Contains("alloc_skb"),
            Contains("usb_start_wait_urb"),
            Contains("usb_bulk_msg"),
            Contains("usb_interrupt_msg"),
            Contains("netlink_ack"),
            Contains("netlink_rcv_skb"),
            Suffix("_encrypt"),
            Prefix("crypto_"),
            Prefix("cipher_"),
        ],
        ..rule(
            "BUG: KMSAN: ",
            "kmsan",
            Title::Custom(kmsan, true),
            Guilty::HeaderThenOwn,
        )
    },
    // kernel/kcsan/report.c: "BUG: KCSAN: data-race in f / g".
    rule(
        "BUG: KCSAN: ",
        "kcsan",
        Title::Custom(kcsan, false),
        Guilty::After(" in "),
    ),
    // mm/kfence/report.c: "BUG: KFENCE: use-after-free read in f".
    rule(
        "BUG: KFENCE: ",
        "kfence",
        Title::Custom(kfence, true),
        Guilty::HeaderThenStack,
    ),
    // arch/x86/mm/fault.c page_fault_oops and its older wordings.
    rule(
        "BUG: unable to handle kernel paging request",
        "bug",
        Title::In("BUG: unable to handle kernel paging request"),
        Guilty::FaultThenStack,
    ),
    rule(
        "BUG: unable to handle page fault for address",
        "bug",
        Title::In("BUG: unable to handle kernel paging request"),
        Guilty::FaultThenStack,
    ),
    rule(
        "BUG: Unable to handle kernel data access",
        "bug",
        Title::In("BUG: unable to handle kernel paging request"),
        Guilty::FaultThenStack,
    ),
    rule(
        "BUG: unable to handle kernel NULL pointer dereference",
        "bug",
        Title::In("BUG: unable to handle kernel NULL pointer dereference"),
        Guilty::FaultThenStack,
    ),
    rule(
        "BUG: kernel NULL pointer dereference",
        "bug",
        Title::In("BUG: unable to handle kernel NULL pointer dereference"),
        Guilty::FaultThenStack,
    ),
    rule(
        "BUG: Kernel NULL pointer dereference",
        "bug",
        Title::In("BUG: unable to handle kernel NULL pointer dereference"),
        Guilty::FaultThenStack,
    ),
    // The header's second half is a separate printk: cut, it is corrupted.
    rule(
        "BUG: unable to handle kernel",
        "bug",
        Title::In("BUG: unable to handle kernel"),
        Guilty::FaultThenStack,
    ),
    // kernel/locking/spinlock_debug.c spin_dump / rwlock_bug.
    Rule {
        check: Some(|l| l.starts_with("BUG: spinlock ") || l.starts_with("BUG: rwlock ")),
        skip: &[Contains("spin_"), Contains("_lock"), Contains("_unlock")],
        ..rule("BUG: ", "bug", Title::Custom(spinlock, true), Guilty::Stack)
    },
    // kernel/watchdog.c: "watchdog: BUG: soft lockup - CPU#0 stuck for 22s!".
    rule(
        "BUG: soft lockup",
        "soft-lockup",
        Title::In("BUG: soft lockup"),
        Guilty::Stall(STALL_DISPATCH, false),
    ),
    // lockdep: a task exits or returns to user space holding locks.
    Rule {
        when: &["still has locks held!"],
        ..rule(
            "BUG: ",
            "lockdep",
            Title::In("BUG: still has locks held"),
            Guilty::At(&["still has locks held"], true),
        )
    },
    Rule {
        skip: &[Contains("schedule")],
        ..rule(
            "BUG: scheduling while atomic",
            "bug",
            Title::In("BUG: scheduling while atomic"),
            Guilty::Stack,
        )
    },
    rule(
        "BUG: lock held when returning to user space",
        "lockdep",
        Title::In("BUG: lock held when returning to user space"),
        Guilty::At(&["leaving the kernel with locks still held"], true),
    ),
    // lockdep print_unlock_imbalance_bug: the releasing caller is printed
    // on its own line ("[<pc>] f+0x..") before the stack.
    rule(
        "BUG: bad unlock balance detected!",
        "lockdep",
        Title::In("BUG: bad unlock balance"),
        Guilty::FirstThenStack,
    ),
    rule(
        "BUG: held lock freed!",
        "lockdep",
        Title::In("BUG: held lock freed"),
        Guilty::At(&["held lock freed"], true),
    ),
    rule(
        "BUG: Bad rss-counter state",
        "bug",
        Title::Fixed("BUG: Bad rss-counter state"),
        Guilty::None,
    ),
    rule(
        "BUG: non-zero nr_ptes on freeing mm",
        "bug",
        Title::Fixed("BUG: non-zero nr_ptes on freeing mm"),
        Guilty::None,
    ),
    rule(
        "BUG: non-zero nr_pmds on freeing mm",
        "bug",
        Title::Fixed("BUG: non-zero nr_pmds on freeing mm"),
        Guilty::None,
    ),
    rule(
        "BUG: Bad page map",
        "bug",
        Title::Fixed("BUG: Bad page map"),
        Guilty::None,
    ),
    // mm/page_alloc.c bad_page.
    Rule {
        skip: &[
            Contains("free_page"),
            Contains("put_page"),
            Contains("free_unref"),
            Contains("folio"),
        ],
        ..rule(
            "BUG: Bad page ",
            "bug",
            Title::Custom(bad_page, true),
            Guilty::Stack,
        )
    },
    rule(
        "BUG: workqueue lockup",
        "bug",
        Title::Fixed("BUG: workqueue lockup"),
        Guilty::None,
    ),
    // kernel/sched/core.c __might_resched.
    rule(
        "BUG: sleeping function called from invalid context",
        "bug",
        Title::In("BUG: sleeping function called from invalid context"),
        Guilty::Stack,
    ),
    // lib/smp_processor_id.c check_preemption_disabled.
    Rule {
        when: &["in preemptible"],
        skip: &[
            Contains("preempt"),
            Prefix("debug_"),
            Contains("processor_id"),
            Contains("this_cpu"),
        ],
        ..rule(
            "BUG: using ",
            "bug",
            Title::Custom(preemptible, true),
            Guilty::Stack,
        )
    },
    // kernel/workqueue.c process_one_work: "last function: f".
    rule(
        "BUG: workqueue leaked lock or atomic",
        "lockdep",
        Title::In("BUG: workqueue leaked lock or atomic"),
        Guilty::After("last function: "),
    ),
    // mm/kmemleak.c records, as syzkaller prints them after "BUG: memory
    // leak"; the allocation's caller is the leak.
    Rule {
        skip: &[
            Contains("kmemleak"),
            Contains("mmap"),
            Contains("kmem"),
            Contains("slab"),
            Contains("alloc"),
            Contains("create_object"),
            Contains("idr_get"),
            Contains("list_lru_init"),
            Contains("kasprintf"),
            Contains("pcpu_create"),
            Contains("strdup"),
            Contains("memdup"),
        ],
        ..rule(
            "BUG: memory leak",
            "memory-leak",
            Title::In("memory leak"),
            Guilty::Stack,
        )
    },
    // arch/x86/kernel/traps.c handle_stack_overflow.
    Rule {
        when: &["stack guard page was hit"],
        ..rule(
            "BUG: ",
            "bug",
            Title::In("BUG: stack guard page was hit"),
            Guilty::Stall(STALL_DISPATCH, false),
        )
    },
    // lockdep print_lock_invalid_wait_context ("[ BUG: Invalid wait context ]").
    Rule {
        skip: &[Contains("lock_sock"), Contains("release_sock")],
        ..rule(
            "BUG: Invalid wait context",
            "lockdep",
            Title::In("WARNING: locking bug"),
            Guilty::Stack,
        )
    },
    // A header cut right after "BUG:".
    Rule {
        check: Some(blank_after),
        expects_frame: false,
        ..rule("BUG:", "bug", Title::Fixed("BUG: corrupted"), Guilty::None)
    },
    // Any other BUG: the line is the title.
    Rule {
        unless: &["BUG: no syscalls can create resource"],
        expects_frame: false,
        ..rule("BUG: ", "bug", Title::Line, Guilty::Stack)
    },
    // mm/slub.c slab_bug on a double free.
    Rule {
        when: &["Object already free"],
        ..rule(
            "BUG kmalloc-",
            "bug",
            Title::Fixed("BUG: Object already free"),
            Guilty::None,
        )
    },
    // WARN()s in helpers whose callers are at fault: lib/debugobjects.c,
    // mm/usercopy.c, lib/kobject.c, fs/proc/generic.c, lib/refcount.c,
    // kernel/locking/lockdep.c, the slab allocators.
    Rule {
        when: &["lib/debugobjects.c"],
        skip: &[
            Prefix("debug_"),
            Contains("rcu"),
            Prefix("hrtimer_"),
            Prefix("timer_"),
            Prefix("work_"),
            Prefix("percpu_"),
            Contains("vunmap"),
            Contains("vfree"),
            Prefix("__free_"),
            Contains("debug_check"),
        ],
        ..rule(
            "WARNING: ",
            "warning",
            Title::In("WARNING: ODEBUG bug"),
            Guilty::FaultThenStack,
        )
    },
    Rule {
        when: &["mm/usercopy.c"],
        skip: &[Contains("usercopy"), Contains("__check")],
        ..rule(
            "WARNING: ",
            "warning",
            Title::In("WARNING: bad usercopy"),
            Guilty::FaultThenStack,
        )
    },
    Rule {
        when: &["lib/kobject.c"],
        ..rule(
            "WARNING: ",
            "warning",
            Title::In("WARNING: kobject bug"),
            Guilty::FaultThenStack,
        )
    },
    Rule {
        when: &["fs/proc/generic.c"],
        skip: &[Prefix("proc_")],
        ..rule(
            "WARNING: ",
            "warning",
            Title::In("WARNING: proc registration bug"),
            Guilty::FaultThenStack,
        )
    },
    Rule {
        when: &["lib/refcount.c"],
        skip: &[Contains("refcount")],
        ..rule(
            "WARNING: ",
            "refcount",
            Title::In("WARNING: refcount bug"),
            Guilty::FaultThenStack,
        )
    },
    Rule {
        when: &["kernel/locking/lockdep.c"],
        skip: &[Contains("lock_sock"), Contains("release_sock")],
        ..rule(
            "WARNING: ",
            "lockdep",
            Title::In("WARNING: locking bug"),
            Guilty::FaultThenStack,
        )
    },
    Rule {
        when: &["mm/", "alloc"],
        check: Some(|l| l.contains("malloc") || l.contains("kmalloc") || l.contains("krealloc")),
        skip: &[
            Contains("kmalloc"),
            Contains("krealloc"),
            Contains("slab"),
            Contains("kmem"),
        ],
        ..rule(
            "WARNING: ",
            "warning",
            Title::In("WARNING: kmalloc bug"),
            Guilty::FaultThenStack,
        )
    },
    // kernel/locking/lockdep.c, in the wording of kernels since 4.10.
    Rule {
        skip: &[
            Contains("process_one_work"),
            Contains("flush_workqueue"),
            Contains("drain_workqueue"),
            Contains("destroy_workqueue"),
        ],
        ..rule(
            "WARNING: possible circular locking dependency detected",
            "lockdep",
            LOCKDEP_DEADLOCK,
            Guilty::At(
                &[
                    "is trying to acquire lock",
                    "but task is already holding lock",
                ],
                false,
            ),
        )
    },
    rule(
        "WARNING: possible irq lock inversion dependency detected",
        "lockdep",
        LOCKDEP_DEADLOCK,
        Guilty::At(&["just changed the state of lock"], true),
    ),
    Rule {
        when: &["-safe -> ", "-unsafe lock order detected"],
        ..rule(
            "WARNING: ",
            "lockdep",
            LOCKDEP_DEADLOCK,
            Guilty::At(&["which became"], false),
        )
    },
    rule(
        "WARNING: possible recursive locking detected",
        "lockdep",
        LOCKDEP_DEADLOCK,
        Guilty::At(&["is trying to acquire lock"], true),
    ),
    rule(
        "WARNING: inconsistent lock state",
        "lockdep",
        Title::In("inconsistent lock state"),
        Guilty::Stack,
    ),
    Rule {
        skip: &[Contains("rcu"), Contains("kmem"), Contains("slab")],
        ..rule(
            "WARNING: suspicious RCU usage",
            "lockdep",
            Title::In("WARNING: suspicious RCU usage"),
            Guilty::Stack,
        )
    },
    rule(
        "WARNING: bad unlock balance detected!",
        "lockdep",
        Title::In("WARNING: bad unlock balance"),
        Guilty::FirstThenStack,
    ),
    rule(
        "WARNING: held lock freed!",
        "lockdep",
        Title::In("WARNING: held lock freed"),
        Guilty::At(&["held lock freed"], true),
    ),
    Rule {
        when: &["still has locks held!"],
        ..rule(
            "WARNING: ",
            "lockdep",
            Title::In("WARNING: still has locks held"),
            Guilty::At(&["still has locks held"], true),
        )
    },
    rule(
        "WARNING: Nested lock was not taken",
        "lockdep",
        Title::In("WARNING: nested lock was not taken"),
        Guilty::Stack,
    ),
    rule(
        "WARNING: lock held when returning to user space",
        "lockdep",
        Title::In("WARNING: lock held when returning to user space"),
        Guilty::At(&["leaving the kernel with locks still held"], true),
    ),
    // arch/x86/kernel/unwind_frame.c: the unwinder, not a bug site.
    Rule {
        when: &["has bad '"],
        expects_frame: false,
        ..rule(
            "WARNING: kernel stack regs at ",
            "warning",
            Title::Fixed("WARNING: kernel stack regs has bad value"),
            Guilty::None,
        )
    },
    Rule {
        expects_frame: false,
        ..rule(
            "WARNING: kernel stack frame pointer at ",
            "warning",
            Title::Fixed("WARNING: kernel stack frame pointer has bad value"),
            Guilty::None,
        )
    },
    // drivers/usb/core/urb.c: a WARN in usb_submit_urb is the driver's.
    Rule {
        when: &["usb_submit_urb"],
        skip: &[
            Contains("usb_submit_urb"),
            Contains("usb_start_wait_urb"),
            Contains("usb_bulk_msg"),
            Contains("usb_interrupt_msg"),
            Contains("usb_control_msg"),
        ],
        ..rule(
            "WARNING: ",
            "warning",
            Title::In("WARNING"),
            Guilty::FaultThenStack,
        )
    },
    // kernel/panic.c __warn: "WARNING: CPU: 0 PID: 1 at net/x.c:12 f+0x1/0x2"
    // (older: "WARNING: at ...", newest: "WARNING: net/x.c:12 at f+0x1/0x2").
    Rule {
        check: Some(|l| {
            l.contains(" at ") && (l.contains("CPU") || l.contains(".c:") || l.contains(".h:"))
        }),
        ..rule(
            "WARNING: ",
            "warning",
            Title::In("WARNING"),
            Guilty::FaultThenStack,
        )
    },
    Rule {
        check: Some(blank_after),
        expects_frame: false,
        ..rule(
            "WARNING:",
            "warning",
            Title::Fixed("WARNING: corrupted"),
            Guilty::None,
        )
    },
    // Any other WARNING line from the kernel; user-space and boot notices
    // that say WARNING are not reports.
    Rule {
        unless: &[
            "WARNING: /etc/ssh/moduli does not exist",
            "WARNING: workqueue cpumask: online intersect > possible intersect",
            "WARNING: The mand mount option",
            "WARNING: the mand mount option",
            "WARNING: Unsupported flag value",
            "WARNING: Unprivileged eBPF is enabled",
            "WARNING: fbcon: Driver",
            "WARNING: See https",
            "WARNING: kernel not compiled with CPU_SRSO",
            "uses deprecated v2 capabilities",
            "uses wireless extensions",
        ],
        expects_frame: false,
        ..rule("WARNING: ", "warning", Title::Line, Guilty::None)
    },
    // kernel/locking/lockdep.c before 4.10: "[ INFO: ... ]".
    rule(
        "INFO: possible circular locking dependency detected",
        "lockdep",
        LOCKDEP_DEADLOCK,
        Guilty::At(
            &[
                "is trying to acquire lock",
                "but task is already holding lock",
            ],
            true,
        ),
    ),
    rule(
        "INFO: possible irq lock inversion dependency detected",
        "lockdep",
        LOCKDEP_DEADLOCK,
        Guilty::At(&["just changed the state of lock"], true),
    ),
    Rule {
        when: &["-safe -> ", "-unsafe lock order detected"],
        ..rule(
            "INFO: ",
            "lockdep",
            LOCKDEP_DEADLOCK,
            Guilty::At(&["is trying to acquire"], true),
        )
    },
    rule(
        "INFO: possible recursive locking detected",
        "lockdep",
        LOCKDEP_DEADLOCK,
        Guilty::At(&["is trying to acquire lock"], true),
    ),
    rule(
        "INFO: inconsistent lock state",
        "lockdep",
        Title::In("inconsistent lock state"),
        Guilty::At(&["takes"], true),
    ),
    // kernel/rcu/tree_stall.h: "rcu: INFO: rcu_preempt detected stalls on
    // CPUs/tasks:" and "... self-detected stall on CPU".
    Rule {
        check: Some(|l| {
            l.starts_with("INFO: rcu_")
                && (l.contains("detected stall") || l.contains("detected expedited stall"))
        }),
        skip: &[
            Contains("apic_timer_interrupt"),
            Contains("rcu"),
            Contains("cpu_stall"),
        ],
        ..rule(
            "INFO: ",
            "rcu-stall",
            Title::In("INFO: rcu detected stall"),
            Guilty::Stall(STALL_DISPATCH, true),
        )
    },
    // kernel/locking/lockdep.c register_lock_class.
    Rule {
        skip: &[Contains("stack"), Contains("lock"), Contains("IRQ")],
        ..rule(
            "INFO: trying to register non-static key",
            "lockdep",
            Title::In("INFO: trying to register non-static key"),
            Guilty::Stack,
        )
    },
    Rule {
        skip: &[Contains("rcu"), Contains("kmem"), Contains("slab")],
        ..rule(
            "INFO: suspicious RCU usage",
            "lockdep",
            Title::In("INFO: suspicious RCU usage"),
            Guilty::Stack,
        )
    },
    // kernel/hung_task.c check_hung_task.
    Rule {
        when: &[" blocked ", " for more than "],
        ..rule(
            "INFO: task ",
            "hung-task",
            Title::In("INFO: task hung"),
            Guilty::Hang(HANG_BUCKETS, HANG_WAITS),
        )
    },
    Rule {
        when: &[" can't die for more than "],
        skip: &[Contains("schedule")],
        ..rule(
            "INFO: task ",
            "hung-task",
            Title::In("INFO: task can't die"),
            Guilty::Stack,
        )
    },
    // SLUB debug's object history, all that is left of a cut KASAN report
    // of kernels before 4.6.
    Rule {
        joins: Joins::Kinds(&["kasan"]),
        headless: true,
        ..rule(
            "INFO: Freed in ",
            "kasan",
            Title::Custom(freed_in, true),
            Guilty::After(" in "),
        )
    },
    Rule {
        joins: Joins::Kinds(&["kasan"]),
        headless: true,
        ..rule(
            "INFO: Allocated in ",
            "kasan",
            Title::Custom(freed_in, true),
            Guilty::After(" in "),
        )
    },
    Rule {
        check: Some(blank_after),
        expects_frame: false,
        ..rule(
            "INFO:",
            "bug",
            Title::Fixed("INFO: corrupted"),
            Guilty::None,
        )
    },
    Rule {
        unless: &[
            "INFO: lockdep is turned off",
            "INFO: Stall ended before state dump start",
            "INFO: NMI handler",
            "INFO: recovery required on readonly filesystem",
            "took too long",
            "is not present in /proc/kallsyms",
            "INFO: no syscalls can create resource",
        ],
        expects_frame: false,
        ..rule("INFO: ", "bug", Title::Line, Guilty::None)
    },
    // arch/arm/mm/fault.c and arm64's __do_kernel_fault.
    rule(
        "Unable to handle kernel paging request",
        "bug",
        Title::In("BUG: unable to handle kernel paging request"),
        Guilty::FaultThenStack,
    ),
    rule(
        "Unable to handle kernel NULL pointer dereference",
        "bug",
        Title::In("BUG: unable to handle kernel NULL pointer dereference"),
        Guilty::FaultThenStack,
    ),
    rule(
        "Unable to handle kernel access to user memory",
        "bug",
        Title::In("BUG: unable to handle kernel access to user memory"),
        Guilty::FaultThenStack,
    ),
    // arch/x86/kernel/traps.c exc_general_protection (user-space GPFs are
    // logged as "traps: x[1] general protection fault ip:... error:0").
    Rule {
        unless: &[" ip:", " error:"],
        ..rule(
            "general protection fault",
            "gpf",
            Title::In("general protection fault"),
            Guilty::FaultThenStack,
        )
    },
    rule(
        "stack segment: ",
        "oops",
        Title::In("stack segment fault"),
        Guilty::FaultThenStack,
    ),
    Rule {
        joins: Joins::Any,
        ..rule(
            "PANIC: double fault",
            "oops",
            Title::In("PANIC: double fault"),
            Guilty::FaultThenStack,
        )
    },
    // lib/bug.c report_bug: helpers whose BUG_ON catches the caller.
    Rule {
        when: &["mm/usercopy.c"],
        skip: &[Contains("usercopy"), Contains("__check")],
        ..rule(
            "kernel BUG at ",
            "bug",
            Title::In("BUG: bad usercopy"),
            Guilty::Stack,
        )
    },
    Rule {
        when: &["lib/list_debug.c"],
        ..rule(
            "kernel BUG at ",
            "bug",
            Title::In("BUG: corrupted list"),
            Guilty::Stack,
        )
    },
    Rule {
        skip: &[Prefix("skb_")],
        ..rule(
            "kernel BUG at ",
            "bug",
            Title::In("kernel BUG"),
            Guilty::FaultThenStack,
        )
    },
    Rule {
        expects_frame: false,
        ..rule("Kernel BUG ", "bug", Title::Line, Guilty::FaultThenStack)
    },
    // x86 exception handlers; the fault site is the culprit.
    rule(
        "divide error: ",
        "oops",
        Title::In("divide error"),
        Guilty::FaultThenStack,
    ),
    rule(
        "divide_error: ",
        "oops",
        Title::In("divide error"),
        Guilty::FaultThenStack,
    ),
    Rule {
        joins: Joins::Any,
        ..rule(
            "invalid opcode: ",
            "oops",
            Title::In("invalid opcode"),
            Guilty::FaultThenStack,
        )
    },
    rule("int3: ", "oops", Title::In("int3"), Guilty::FaultThenStack),
    // lib/ubsan.c: "UBSAN: array-index-out-of-bounds in net/x.c:1:2".
    Rule {
        skip: &[Contains("ubsan"), Contains("overflow")],
        ..rule(
            "UBSAN: ",
            "ubsan",
            Title::Custom(ubsan, true),
            Guilty::Stack,
        )
    },
    // arch/arm and arm64 die(): "Internal error: Oops: 96000005 [#1]".
    Rule {
        joins: Joins::Any,
        ..rule(
            "Internal error:",
            "oops",
            Title::In("Internal error"),
            Guilty::FaultThenStack,
        )
    },
    rule(
        "Unhandled fault:",
        "oops",
        Title::In("Unhandled fault"),
        Guilty::FaultThenStack,
    ),
    rule(
        "Alignment trap:",
        "oops",
        Title::In("Alignment trap"),
        Guilty::FaultThenStack,
    ),
    // kernel/panic.c panic() after a report: the report is the finding.
    Rule {
        when: &["Fatal exception"],
        joins: Joins::Consequence,
        ..rule(
            "Kernel panic - not syncing: ",
            "panic",
            Title::Custom(kernel_panic, false),
            Guilty::None,
        )
    },
    Rule {
        check: Some(|l| {
            [
                "panic_on_warn set",
                "hung_task: blocked tasks",
                "softlockup: hung tasks",
                "hard LOCKUP",
                "kasan.fault=panic",
                "RCU Stall",
                "panic_on_oops",
            ]
            .iter()
            .any(|c| l.contains(c))
        }),
        joins: Joins::Consequence,
        ..rule(
            "Kernel panic - not syncing: ",
            "panic",
            Title::Custom(kernel_panic, false),
            Guilty::None,
        )
    },
    // kernel/panic.c __stack_chk_fail: "stack-protector: Kernel stack is
    // corrupted in: f".
    Rule {
        when: &["stack-protector: "],
        joins: Joins::Any,
        skip: &[Contains("stack_chk")],
        ..rule(
            "Kernel panic - not syncing: ",
            "panic",
            Title::In("kernel panic: stack is corrupted"),
            Guilty::After("corrupted in: "),
        )
    },
    Rule {
        when: &["corrupted stack end detected inside scheduler"],
        joins: Joins::Any,
        skip: &[Contains("schedule"), Contains("retint_kernel")],
        ..rule(
            "Kernel panic - not syncing: ",
            "panic",
            Title::In("kernel panic: corrupted stack end"),
            Guilty::Stall(STALL_DISPATCH, false),
        )
    },
    Rule {
        when: &["kernel stack overflow"],
        joins: Joins::Any,
        skip: &[Contains("bad_stack")],
        ..rule(
            "Kernel panic - not syncing: ",
            "panic",
            Title::In("kernel stack overflow"),
            Guilty::Stall(STALL_DISPATCH, false),
        )
    },
    // Any other panic message is the title; the stack says where.
    Rule {
        joins: Joins::Any,
        expects_frame: false,
        ..rule(
            "Kernel panic - not syncing: ",
            "panic",
            Title::Custom(kernel_panic, false),
            Guilty::Stack,
        )
    },
    // arch/x86/boot/compressed: the kernel booted again in the middle of a
    // log that already had kernel output.
    Rule {
        unless: &["Parsing ELF", "Decompressing Linux", "Unknown parameter '"],
        ..rule(
            "Booting the kernel",
            "reboot",
            Title::Fixed("unexpected kernel reboot"),
            Guilty::None,
        )
    },
    // net/core/dev.c netdev_wait_allrefs: a reference leak on a device.
    Rule {
        check: Some(wait_for_free),
        joins: Joins::Any,
        ..rule(
            "unregister_netdevice: waiting for ",
            "netdev-leak",
            Title::Fixed("unregister_netdevice: waiting for DEV to become free"),
            Guilty::None,
        )
    },
    rule(
        "VFS: Close: file count is 0",
        "bug",
        Title::Fixed("VFS: Close: file count is zero (use-after-free)"),
        Guilty::None,
    ),
    rule(
        "VFS: Busy inodes after unmount",
        "bug",
        Title::Fixed("VFS: Busy inodes after unmount (use-after-free)"),
        Guilty::None,
    ),
];

/// The line that closes a Linux report: kernel/panic.c's "---[ end trace
/// ... ]---" (and "---[ end Kernel panic"), or the rule of '=' that KASAN,
/// KMSAN, KCSAN and hung-task lock dumps print after their last line.
pub(crate) fn report_end(t: &str) -> bool {
    t.starts_with("---[ end trace")
        || t.starts_with("---[ end Kernel panic")
        || (t.len() >= 20 && t.trim_end().bytes().all(|b| b == b'='))
}

/// The lines that start a backtrace in a Linux report. KASAN and kmemleak
/// print several in one report (the access, then "Allocated by task N:",
/// "Freed by task N:", or kmemleak's "backtrace:"); the first one after the
/// header is the report's own.
pub(crate) fn stack_start(t: &str) -> bool {
    match t.as_bytes().first() {
        Some(b'C') => t.starts_with("Call Trace") || t.starts_with("Call trace"),
        Some(b'B') => t.starts_with("Backtrace:"),
        Some(b'A') => t.starts_with("Allocated by task") || t.starts_with("Allocated:"),
        Some(b'F') => t.starts_with("Freed by task") || t.starts_with("Freed:"),
        Some(b'U') => {
            t.starts_with("Uninit was stored to memory at")
                || t.starts_with("Uninit was created at")
        }
        Some(b'L') => {
            t.starts_with("Local variable ")
                || t.starts_with("Last potentially related work creation")
        }
        Some(b'S') => t.starts_with("Second to last potentially related work creation"),
        Some(b'b') => t.starts_with("backtrace") && t.trim_end().ends_with(':'),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_is_reachable_and_kinds_are_known() {
        const KINDS: &[&str] = &[
            "kasan",
            "kmsan",
            "kcsan",
            "kfence",
            "ubsan",
            "bug",
            "warning",
            "refcount",
            "lockdep",
            "gpf",
            "oops",
            "hung-task",
            "rcu-stall",
            "soft-lockup",
            "memory-leak",
            "panic",
            "reboot",
            "netdev-leak",
        ];
        for r in RULES {
            assert!(KINDS.contains(&r.kind), "{}: {}", r.header, r.kind);
            assert!(!r.header.is_empty());
        }
    }
}
