//! The Linux backend for real: namespaces, veth, tun/tap, bridge, macvlan ...
//! Each test holds a file lock so that its before/after snapshot of the host
//! sees only itself. Every run is bounded in time.
#![cfg(target_os = "linux")]

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

const SUITES: [&str; 9] = [
    "vmove", "clone", "ioctl", "outpath", "tun", "bpf", "netlink", "jail", "all",
];

#[test]
fn every_suite_runs_does_every_op_and_leaves_the_host_as_it_was() {
    require_root!();
    let _s = serial();
    for suite in SUITES {
        let before = host_state();
        let d = tmp();
        let rp = d.path().join("r.json");
        let jp = d.path().join("r.xml");
        let o = run(&[
            "--suite",
            suite,
            "--duration",
            "3s",
            "--quiet",
            "--report",
            rp.to_str().unwrap(),
            "--junit",
            jp.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{suite}: {}", stderr(&o));
        let r = report(&rp);
        assert_eq!(r["suite"], suite);
        assert_eq!(r["platform"], "linux");
        assert_eq!(r["verdict"], "clean", "{suite}: {}", r["findings"]);
        assert_eq!(r["interrupted"], false);
        assert_eq!(r["leftovers"].as_array().unwrap().len(), 0);
        // Clean, so every removed stack was gone within the grace, and the
        // report says how long the kernel took.
        let gone = r["stacks_gone_after_s"]
            .as_f64()
            .expect("stacks_gone_after_s");
        assert!((0.0..=30.0).contains(&gone), "{suite}: {gone}");
        // Every op the suite declares was issued, except those the run said
        // it dropped because this kernel lacks an optional link kind.
        let shown = String::from_utf8(run(&["show", suite]).stdout).unwrap();
        let suite_doc: toml::Value = toml::from_str(&shown).unwrap();
        let notes: Vec<String> = r["notes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect();
        for lp in suite_doc["loop"].as_array().unwrap() {
            for op in lp["ops"].as_table().unwrap().keys() {
                if notes
                    .iter()
                    .any(|n| n.contains(&format!("op {op} has no target left")))
                {
                    continue;
                }
                let count = r["ops"][op]["count"].as_u64().unwrap_or(0);
                assert!(count > 0, "{suite}: op {op} never ran; ops: {}", r["ops"]);
            }
        }
        let x = std::fs::read_to_string(&jp).unwrap();
        assert!(x.contains(&format!("ifstress.{suite}")));
        assert!(
            leftover_namespaces().is_empty(),
            "{suite}: {:?}",
            leftover_namespaces()
        );
        assert_eq!(before, host_state(), "{suite} changed the host");
    }
}

#[test]
fn sigint_at_a_random_moment_stops_cleans_up_and_reports() {
    require_root!();
    let host = host_test();
    let d = tmp();
    let rp = d.path().join("r.json");
    let mut child = Command::new(bin())
        .args([
            "--suite",
            "all",
            "--duration",
            "120s",
            "--quiet",
            "--report",
            rp.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let delay = Duration::from_millis(500 + fastrand::u64(..3500));
    eprintln!("sending SIGINT after {delay:?}");
    std::thread::sleep(delay);
    signal(&child, libc::SIGINT);
    let status = wait_bounded(&mut child, Duration::from_secs(45))
        .expect("did not exit within 45 s of SIGINT");
    assert!(matches!(status.code(), Some(0 | 1)), "{status:?}");
    let r = report(&rp);
    assert_eq!(r["interrupted"], true);
    assert!(r["duration_s"].as_f64().unwrap() < 60.0);
    host.assert_untouched();
}

#[test]
fn second_signal_exits_at_once_and_still_removes_everything() {
    require_root!();
    let host = host_test();
    let mut child = spawn_quiet(&["--suite", "jail", "--duration", "120s", "--quiet"]);
    std::thread::sleep(Duration::from_secs(2));
    signal(&child, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(20));
    signal(&child, libc::SIGTERM);
    let status =
        wait_bounded(&mut child, Duration::from_secs(30)).expect("did not exit after two signals");
    assert!(matches!(status.code(), Some(0 | 1 | 130)), "{status:?}");
    host.assert_untouched();
}

#[test]
fn unprivileged_run_is_refused_with_one_line() {
    require_root!();
    use std::os::unix::process::CommandExt;
    let o = Command::new(bin())
        .args(["--suite", "vmove", "--duration", "1s"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("must run as root"), "{err}");
}

#[test]
fn journal_holds_the_last_ops_of_every_worker() {
    require_root!();
    let _s = serial();
    let d = tmp();
    let j = d.path().join("journal");
    let o = run(&[
        "--suite",
        "ioctl",
        "--duration",
        "2s",
        "--quiet",
        "--seed",
        "7",
        "--journal",
        j.to_str().unwrap(),
        "--journal-max-mib",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let header = std::fs::read_to_string(j.join("run.txt")).unwrap();
    assert!(
        header.contains("suite = ioctl") && header.contains("seed = 7"),
        "{header}"
    );
    let mut total = 0;
    for w in 0..7 {
        let log = std::fs::read_to_string(j.join(format!("worker-{w}.log"))).unwrap();
        let last = log
            .lines()
            .last()
            .unwrap_or_else(|| panic!("worker {w} journal is empty"));
        assert!(last.contains(&format!(" w{w} #")), "{last}");
        total += log.len();
    }
    let on_disk: u64 = std::fs::read_dir(&j)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(
        on_disk <= (1 << 20) + 4096,
        "journal is {on_disk} bytes, bound 1 MiB"
    );
    assert!(total > 0);
}

#[test]
fn cleanup_removes_a_killed_runs_leftovers_and_nothing_else() {
    require_root!();
    let host = host_test();
    let mut child = spawn_quiet(&["--suite", "vmove", "--duration", "60s", "--quiet"]);
    std::thread::sleep(Duration::from_secs(2));
    child.kill().unwrap(); // SIGKILL: nothing of the run's own cleanup runs
    child.wait().unwrap();
    assert!(
        !leftover_namespaces().is_empty(),
        "a killed run should leave its namespaces"
    );
    let o = run(&["cleanup"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("removed network namespace ifstress-"));
    assert!(leftover_namespaces().is_empty());
    host.assert_untouched();
}

#[test]
fn doctor_performs_every_op_once_and_cleans_up() {
    require_root!();
    let host = host_test();
    let o = run(&["doctor", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["platform"], "linux");
    let ops = d["ops"].as_array().unwrap();
    let result = |op: &str| -> Vec<String> {
        ops.iter()
            .filter(|r| r["what"] == op)
            .map(|r| r["result"].as_str().unwrap().to_string())
            .collect()
    };
    for op in [
        "create",
        "destroy",
        "destroy-netlink",
        "move",
        "move-back",
        "up-down",
        "mtu",
        "rename",
        "media",
        "addr4-add",
        "addr4-del",
        "addr6-add",
        "addr6-del",
        "send-udp4",
        "send-udp6",
        "send-raw",
        "capture",
        "tun-open",
        "member-add",
        "member-del",
        "stack-create",
        "stack-remove",
    ] {
        assert!(!result(op).is_empty(), "doctor did not try {op}");
    }
    // The kinds every Linux with veth/bridge/tun has must work end to end here.
    for op in [
        "create",
        "move",
        "move-back",
        "stack-create",
        "stack-remove",
        "destroy",
        "capture",
        "member-add",
    ] {
        assert!(
            result(op).iter().all(|r| r == "OK"),
            "{op}: {:?}",
            result(op)
        );
    }
    assert!(
        ops.iter()
            .all(|r| !r["detail"].as_str().unwrap().is_empty()),
        "an op without its syscall"
    );
    let kinds = d["kinds"].as_array().unwrap();
    assert_eq!(kinds.len(), 8);
    assert!(
        kinds
            .iter()
            .any(|k| k["what"] == "pair" && k["target"] == "veth" && k["result"] == "OK")
    );
    assert_eq!(d["leftovers"].as_array().unwrap().len(), 0);
    assert!(leftover_namespaces().is_empty());
    host.assert_untouched();
}

/// The dying-stack check can fail: the test itself holds one of the run's
/// namespaces open, so it cannot die after teardown.
#[test]
fn a_namespace_held_after_teardown_is_a_dying_stack_finding() {
    require_root!();
    let host = host_test();
    let d = tmp();
    let rp = d.path().join("r.json");
    let mut child = spawn_quiet(&[
        "--suite",
        "vmove",
        "--duration",
        "4s",
        "--quiet",
        "--dying-grace",
        "2s",
        "--report",
        rp.to_str().unwrap(),
    ]);
    // Wait for the run's first fixed stack, then hold it.
    let mut held = None;
    for _ in 0..100 {
        if let Some(n) = leftover_namespaces()
            .into_iter()
            .find(|n| n.ends_with("-s1"))
        {
            held = std::fs::File::open(format!("/run/netns/{n}"))
                .ok()
                .map(|f| (n, f));
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (name, fd) = held.expect("the run's stack s1 never appeared");
    let status = wait_bounded(&mut child, Duration::from_secs(60)).expect("run did not end");
    drop(fd);
    assert_eq!(status.code(), Some(1), "a held namespace must be a finding");
    let r = report(&rp);
    let dying: Vec<&serde_json::Value> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "dying-stack")
        .collect();
    assert_eq!(dying.len(), 1, "{}", r["findings"]);
    let title = dying[0]["title"].as_str().unwrap();
    assert!(
        title.contains(&name) && title.contains("still alive 2 s after removal"),
        "{title}"
    );
    assert!(
        dying[0]["known_issue"].is_null(),
        "FreeBSD's D51525 must not be claimed on Linux"
    );
    // A stack still held: no "all gone" time.
    assert!(r["stacks_gone_after_s"].is_null(), "{r}");
    assert!(leftover_namespaces().is_empty());
    host.assert_untouched();
}

/// After "the reboot": the journal a real run left and a crash text
/// (a real FreeBSD transcript from ../shared/fixtures, syzkaller's testdata,
/// standing in for crashinfo's core.txt) become one report.
#[test]
fn postmortem_joins_the_crash_and_the_last_ops() {
    require_root!();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/freebsd/syzkaller-freebsd-0.txt");
    if !common::in_tier(common::Tier::Fixtures) {
        return;
    }
    let Ok(text) = std::fs::read_to_string(&fixture) else {
        skip(&format!("{} is absent", fixture.display()));
        return;
    };
    let _s = serial();
    let d = tmp();
    let j = d.path().join("journal");
    let o = run(&[
        "--suite",
        "clone",
        "--duration",
        "2s",
        "--quiet",
        "--journal",
        j.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let crash = d.path().join("crash");
    std::fs::create_dir(&crash).unwrap();
    std::fs::write(crash.join("core.txt.0"), text.split_once("\n\n").unwrap().1).unwrap();
    let rp = d.path().join("pm.json");
    let o = run(&[
        "postmortem",
        "--journal",
        j.to_str().unwrap(),
        "--crash",
        crash.to_str().unwrap(),
        "--report",
        rp.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r = report(&rp);
    assert_eq!(r["suite"], "clone");
    assert_eq!(r["platform"], "linux");
    assert_eq!(r["findings"][0]["kind"], "fatal-trap");
    assert_eq!(r["findings"][0]["guilty_frame"], "atrtc_settime");
    assert!(
        r["findings"][0]["first_seen"]
            .as_str()
            .unwrap()
            .ends_with("core.txt.0:1")
    );
    let last = r["last_ops"].as_object().unwrap();
    assert_eq!(last.len(), 5, "one entry per worker of `clone`: {last:?}");
    for (w, ops) in last {
        let ops = ops.as_array().unwrap();
        assert!(!ops.is_empty() && ops.len() <= 20, "{w}: {} ops", ops.len());
        let n = w.strip_prefix("worker ").unwrap();
        assert!(
            ops.iter()
                .all(|l| l.as_str().unwrap().contains(&format!(" w{n} #"))),
            "{w}"
        );
    }
    let human = String::from_utf8_lossy(&o.stdout);
    assert!(
        human.contains("last ops of worker 0:") && human.contains("[fatal-trap]"),
        "{human}"
    );
    // No crash at all: a clean report that says where it looked.
    let empty = d.path().join("nocrash");
    std::fs::create_dir(&empty).unwrap();
    let o = run(&[
        "postmortem",
        "--journal",
        j.to_str().unwrap(),
        "--crash",
        empty.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("no crash files"));
}

/// The leftover check can fail: while a run is live, the test adds a
/// namespace carrying the run's tag, which teardown (it removes the stacks
/// it made) does not know of; after teardown it must be reported.
#[test]
fn something_tagged_left_after_teardown_is_a_leftover_finding() {
    require_root!();
    let host = host_test();
    let d = tmp();
    let rp = d.path().join("r.json");
    let mut child = spawn_quiet(&[
        "--suite",
        "vmove",
        "--duration",
        "3s",
        "--quiet",
        "--report",
        rp.to_str().unwrap(),
    ]);
    let mut planted = None;
    for _ in 0..100 {
        if let Some(n) = leftover_namespaces()
            .into_iter()
            .find(|n| n.ends_with("-h0"))
        {
            let extra = n.replace("-h0", "-zz9");
            assert!(
                Command::new("ip")
                    .args(["netns", "add", &extra])
                    .status()
                    .unwrap()
                    .success()
            );
            planted = Some(extra);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let planted = planted.expect("the run's home stack never appeared");
    let status = wait_bounded(&mut child, Duration::from_secs(60)).expect("run did not end");
    let _ = Command::new("ip").args(["netns", "del", &planted]).status();
    assert_eq!(status.code(), Some(1));
    let r = report(&rp);
    assert_eq!(
        r["leftovers"],
        serde_json::json!([format!("network namespace {planted}")])
    );
    assert!(
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "leftover")
    );
    assert!(leftover_namespaces().is_empty());
    host.assert_untouched();
}
