//! Triage against real console transcripts: ../shared/fixtures holds files of
//! syzkaller's pkg/report testdata (github.com/google/syzkaller, commit
//! 1e72964b0111319984575e60f266d1fa0a98abb5, Apache-2.0).

use super::*;
use std::path::PathBuf;

struct Fixture {
    name: String,
    title: String,
    body: String,
}

fn fixtures() -> Option<Vec<Fixture>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures");
    if !dir.exists() {
        crate::testutil::skip(&format!(
            "{} is absent; transcript tests not run",
            dir.display()
        ));
        return None;
    }
    let mut out = Vec::new();
    for os in ["freebsd", "linux"] {
        for e in std::fs::read_dir(dir.join(os)).unwrap() {
            let p = e.unwrap().path();
            let text = std::fs::read_to_string(&p).unwrap();
            let (header, body) = text.split_once("\n\n").unwrap_or(("", &text));
            let title = header
                .lines()
                .find_map(|l| l.strip_prefix("TITLE: "))
                .unwrap_or("")
                .to_string();
            out.push(Fixture {
                name: p.file_name().unwrap().to_string_lossy().into(),
                title,
                body: body.to_string(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Some(out)
}

/// (fixture, kind, our title, guilty frame). The guilty frame agrees with the
/// function syzkaller's own parser blames in every case but one (295, noted).
const EXPECT: &[(&str, &str, &str, Option<&str>)] = &[
    (
        "syzkaller-freebsd-0.txt",
        "fatal-trap",
        "Fatal trap N: page fault while in kernel mode in atrtc_settime",
        Some("atrtc_settime"),
    ),
    (
        "syzkaller-freebsd-12.txt",
        "panic",
        "panic: sx lock still held in solisten_proto",
        Some("solisten_proto"),
    ),
    (
        "syzkaller-freebsd-14.txt",
        "panic",
        "panic: ASan: Invalid access, N-byte read at ADDR, RedZonePartial(N) in aesni_encrypt_icm",
        Some("aesni_encrypt_icm"),
    ),
    (
        "syzkaller-freebsd-2.txt",
        "fatal-trap",
        "Fatal trap N: general protection fault while in kernel mode in udp_close",
        Some("udp_close"),
    ),
    (
        "syzkaller-freebsd-4.txt",
        "panic",
        "panic: mtx_lock() of destroyed mutex in soo_stat",
        Some("soo_stat"),
    ),
    (
        "syzkaller-freebsd-8.txt",
        "fatal-trap",
        "Fatal trap N: page fault while in kernel mode in inp_freemoptions",
        Some("inp_freemoptions"),
    ),
    (
        "syzkaller-linux-119.txt",
        "lockdep",
        "INFO: trying to register non-static key in tun_flow_cleanup",
        Some("tun_flow_cleanup"),
    ),
    (
        "syzkaller-linux-174.txt",
        "bug",
        "BUG: unable to handle kernel NULL pointer dereference in rtnl_dump_ifinfo",
        Some("rtnl_dump_ifinfo"),
    ),
    (
        "syzkaller-linux-233.txt",
        "netdev-leak",
        "unregister_netdevice: waiting for DEV to become free",
        None,
    ),
    (
        "syzkaller-linux-29.txt",
        "lockdep",
        "possible deadlock in tun_queue_purge",
        Some("tun_queue_purge"),
    ),
    // syzkaller blames the outer rtnl_newlink; the stalled CPU was caught in
    // ida_pre_get (below it only KASAN's allocation-time stack saving), so
    // that is the frame named here.
    (
        "syzkaller-linux-295.txt",
        "rcu-stall",
        "INFO: rcu detected stall in ida_pre_get",
        Some("ida_pre_get"),
    ),
    (
        "syzkaller-linux-436.txt",
        "hung-task",
        "INFO: task hung in rtnl_lock",
        Some("rtnl_lock"),
    ),
    (
        "syzkaller-linux-578.txt",
        "bug",
        "kernel BUG in free_netdev",
        Some("free_netdev"),
    ),
    (
        "syzkaller-linux-589.txt",
        "warning",
        "WARNING in macvlan_broadcast",
        Some("macvlan_broadcast"),
    ),
    (
        "syzkaller-linux-692.txt",
        "hung-task",
        "INFO: task hung in netdev_run_todo",
        Some("netdev_run_todo"),
    ),
    (
        "syzkaller-linux-74.txt",
        "hung-task",
        "INFO: task hung in copy_net_ns",
        Some("copy_net_ns"),
    ),
];

#[test]
fn every_fixture_is_titled_and_blames_the_right_function() {
    let Some(fx) = fixtures() else { return };
    assert_eq!(fx.len(), 18);
    let mut failures = Vec::new();
    for f in &fx {
        let found = scan(&f.body);
        match EXPECT.iter().find(|e| e.0 == f.name) {
            None => {
                assert!(
                    f.title.is_empty(),
                    "{} has a TITLE but no expectation",
                    f.name
                );
                if !found.is_empty() {
                    failures.push(format!("{}: false finding `{}`", f.name, found[0].title));
                }
            }
            Some((_, kind, title, guilty)) => {
                let Some(first) = found.first() else {
                    failures.push(format!(
                        "{}: nothing found (syzkaller: {})",
                        f.name, f.title
                    ));
                    continue;
                };
                if first.kind != *kind
                    || first.title != *title
                    || first.guilty_frame.as_deref() != *guilty
                {
                    failures.push(format!(
                        "{}: got [{}] `{}` guilty {:?}; want [{kind}] `{title}` guilty {guilty:?}",
                        f.name, first.kind, first.title, first.guilty_frame
                    ));
                }
                if let (Some(g), true) = (
                    guilty,
                    f.title.contains(" in ") && f.name != "syzkaller-linux-295.txt",
                ) {
                    // Where syzkaller's title names a function, it is the same one.
                    assert!(
                        f.title.ends_with(&format!(" in {g}")),
                        "{}: {} vs {}",
                        f.name,
                        g,
                        f.title
                    );
                }
                assert!(
                    !first.excerpt.is_empty() && first.excerpt.lines().count() <= EXCERPT_LINES
                );
                assert_eq!(first.signature.len(), 16);
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn signatures_survive_other_addresses_timestamps_and_pids() {
    let Some(fx) = fixtures() else { return };
    for f in &fx {
        let a = scan(&f.body);
        // The same crash on another boot: every digit differs, so addresses,
        // offsets, times, pids, cpu and line numbers all move.
        let shifted: String = f
            .body
            .chars()
            .map(|c| match c {
                '1' => '7',
                '2' => '5',
                '3' => '8',
                c => c,
            })
            .collect();
        let b = scan(&shifted);
        assert_eq!(a.len(), b.len(), "{}", f.name);
        for (x, y) in a.iter().zip(&b) {
            // A digit inside a function's own name (amd64_syscall) may move
            // the guilty frame; nothing else may move the signature.
            if x.guilty_frame == y.guilty_frame {
                assert_eq!(
                    x.signature, y.signature,
                    "{}: `{}` vs `{}`",
                    f.name, x.title, y.title
                );
            }
        }
    }
    // Addresses alone never move a signature.
    let t1 = "Fatal trap 12: page fault while in kernel mode\nKDB: stack backtrace:\n#0 0xffffffff80aada97 at kdb_backtrace+0x67\n#1 0xffffffff80a6bb76 at vpanic+0x186\n#7 0xffffffff810302fc at if_vmove+0xc\n";
    let t2 = t1
        .replace("80aada97", "81234567")
        .replace("0x186", "0x99")
        .replace("0xc\n", "0x1f\n");
    assert_eq!(scan(t1)[0].signature, scan(&t2)[0].signature);
}

#[test]
fn repeated_crashes_dedup_with_counts_and_first_place() {
    let text = "panic: foo 0x1 @ /usr/src/sys/net/if.c:12\nKDB: stack backtrace:\nif_detach() at if_detach+0x1/frame 0x1\n\
                panic: foo 0x2 @ /usr/src/sys/net/if.c:99\nKDB: stack backtrace:\nif_detach() at if_detach+0x2/frame 0x2\n";
    let mut s = Scanner::default();
    s.source("console.log");
    for l in text.lines() {
        s.feed(l);
    }
    let f = s.into_findings();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].count, 2);
    assert_eq!(f[0].first_seen, "console.log:1");
    assert_eq!(f[0].title, "panic: foo ADDR in if_detach");
}

/// WITNESS output, in the form FreeBSD's subr_witness.c prints it.
#[test]
fn lock_order_reversal_names_both_locks() {
    let lor = "lock order reversal:\n 1st 0xfffff80003c9a5a8 ifnet_sx (ifnet_sx, sx) @ /usr/src/sys/net/if.c:3209\n 2nd 0xfffffe0000f4d6d8 in_multi_sx (in_multi_sx, sx) @ /usr/src/sys/netinet/in_mcast.c:1234\nstack backtrace:\n#0 0xffffffff80c4f4e3 at witness_debugger+0x73\n#1 0xffffffff80c4e1c9 at witness_checkorder+0xcb9\n#2 0xffffffff80bd6f2a at _sx_xlock+0x6a\n#3 0xffffffff80d1c0b7 at if_vmove+0x47\n";
    let f = scan(lor);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].kind, "lock-order-reversal");
    assert_eq!(f[0].title, "lock order reversal: ifnet_sx -> in_multi_sx");
    assert_eq!(
        f[0].frames,
        [
            "witness_debugger",
            "witness_checkorder",
            "_sx_xlock",
            "if_vmove"
        ]
    );
}

#[test]
fn frames_in_every_form() {
    assert_eq!(
        frame_of("#7 0xffffffff810302fc at atrtc_settime+0xc").as_deref(),
        Some("atrtc_settime")
    );
    assert_eq!(
        frame_of("vpanic() at vpanic+0x1e0/frame 0xfffffe004b9db6b0").as_deref(),
        Some("vpanic")
    );
    assert_eq!(
        frame_of("[  768.724280][ T1064]  __schedule+0x94f/0x1e70").as_deref(),
        Some("__schedule")
    );
    assert_eq!(
        frame_of(" [<ffffffff816faea8>] rcu_dump_cpu_stacks+0x155/0x169").as_deref(),
        Some("rcu_dump_cpu_stacks")
    );
    assert_eq!(
        frame_of(" rcu_barrier+0x44/0x710 kernel/rcu/tree.c:3951").as_deref(),
        Some("rcu_barrier")
    );
    assert_eq!(
        frame_of(" context_switch kernel/sched/core.c:5178 [inline]").as_deref(),
        Some("context_switch")
    );
    assert_eq!(
        frame_of(" rcu_check_callbacks.cold.76+0x61e/0xc77").as_deref(),
        Some("rcu_check_callbacks")
    );
    assert_eq!(
        frame_of("[<8133fea8>] (macvlan_broadcast) from [<81340500>] (x+0x1/0x2)").as_deref(),
        Some("macvlan_broadcast")
    );
    assert_eq!(frame_of("  ? copy_net_ns+0xcc/0x220"), None);
    assert_eq!(frame_of("cpuid = 0; apic id = 00"), None);
    assert_eq!(frame_of("Call Trace:"), None);
}

#[test]
fn normalisation() {
    assert_eq!(
        normalize("Fatal trap 12: page fault"),
        "Fatal trap N: page fault"
    );
    assert_eq!(
        normalize("at /usr/src/sys/kern/sys_socket.c:316"),
        "at sys/kern/sys_socket.c:N"
    );
    assert_eq!(normalize("foo+0x12/0x40 bar"), "foo bar");
    assert_eq!(
        normalize("waiting for is3f2ap1 to"),
        "waiting for IFNAME to"
    );
    assert_eq!(
        normalize("ip6_output in6_ifdetach"),
        "ip6_output in6_ifdetach"
    );
    assert_eq!(signature("a", "b"), signature("a", "b"));
    assert_ne!(signature("a", "b"), signature("a", "c"));
}

#[test]
fn prefixes_are_stripped() {
    assert_eq!(
        strip_prefix("[  768.680053][ T1064] INFO: task x"),
        "INFO: task x"
    );
    assert_eq!(strip_prefix("[   47.712178] BUG: x"), "BUG: x");
    assert_eq!(strip_prefix("panic: x"), "panic: x");
    assert_eq!(strip_prefix("[link] up"), "[link] up");
}

#[test]
fn loading_an_unsigned_out_of_tree_module_is_not_a_finding() {
    // What a Linux guest prints when `vm run --module` insmods racebench.
    let log = "[    3.153558] racebench: loading out-of-tree module taints kernel.\n\
[    3.154012] racebench: module verification failed: signature and/or required key missing - tainting kernel\n\
[    3.160001] racebench: armed=vmove window_us=5000 tun_window_us=500000 fixed=0 hit=panic kprobes=none\n";
    assert!(scan(log).is_empty(), "{:?}", scan(log));
    // The seed's own panic is one, titled with the scenario.
    let hit = "[   20.1] Kernel panic - not syncing: racebench: seeded race vmove hit: interface state freed during its window\n\
[   20.1] CPU: 1 PID: 93 Comm: ifstress Tainted: G           OE      6.1.0-56-amd64 #1  Debian 6.1.140-1\n\
[   20.1] Call Trace:\n\
[   20.1]  <TASK>\n\
[   20.1]  dump_stack_lvl+0x44/0x5c\n\
[   20.1]  panic+0x118/0x2ed\n\
[   20.1]  rb_hit_vmove.cold+0x5/0x5 [racebench]\n\
[   20.1]  rb_window_cb+0x9a/0x150 [racebench]\n\
[   20.1]  task_work_run+0x59/0x90\n\
[   20.1]  exit_to_user_mode_prepare+0x1a1/0x1b0\n";
    let f = scan(hit);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        f[0].title.contains("racebench: seeded race vmove hit"),
        "{}",
        f[0].title
    );
    assert_eq!(f[0].guilty_frame.as_deref(), Some("rb_hit_vmove"));
    let mut f = f;
    crate::check::known::annotate(&mut f, &crate::check::known::load(), Some("linux"));
    assert!(
        f[0].known_issue
            .as_deref()
            .is_some_and(|k| k.starts_with("racebench vmove")),
        "{:?}",
        f[0].known_issue
    );
}
