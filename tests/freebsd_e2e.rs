//! The FreeBSD backend for real (the host tier on a FreeBSD machine): VNET
//! jails, epair, tun/tap, bridge, lagg, vlan and ng_eiface, what
//! tests/linux_e2e.rs does on Linux. Each test holds the same file lock as
//! the Linux ones so that its before/after snapshot of the host sees only
//! itself; every run and wait is bounded.
//!
//! The host snapshot is the machine's own interfaces (names, flags,
//! addresses), routes and jails: a run may add kernel modules
//! (`--load-modules`, and `load_modules` below), nothing else.
#![cfg(target_os = "freebsd")]

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

const SUITES: [&str; 9] = [
    "vmove", "clone", "ioctl", "outpath", "tun", "bpf", "netlink", "jail", "all",
];

/// Every module behind the suites' link kinds (rules::modules), loaded up
/// front so that every optional kind is there and doctor can try it.
const MODULES: [&str; 7] = [
    "if_epair",
    "if_tuntap",
    "if_bridge",
    "if_lagg",
    "if_vlan",
    "ng_socket",
    "ng_eiface",
];

fn load_modules() {
    for m in MODULES {
        let st = Command::new("kldload")
            .args(["-n", m])
            .status()
            .expect("kldload(8)");
        assert!(st.success(), "kldload -n {m}");
    }
}

fn text_of(cmd: &str, args: &[&str]) -> String {
    let o = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The machine's own interfaces, routes and jails (not the run's: those
/// are `ifstress-` jails, invisible from the host's vnet for interfaces).
fn fbsd_state() -> String {
    let jails: Vec<String> = jails()
        .into_iter()
        .filter(|(n, _)| !n.starts_with("ifstress-"))
        .map(|(n, d)| format!("{n} dying={d}"))
        .collect();
    // Link state and media lines follow cables, not runs.
    let ifconfig: String = text_of("ifconfig", &["-a"])
        .lines()
        .filter(|l| !l.contains("status:") && !l.contains("media:"))
        .map(|l| format!("{l}\n"))
        .collect();
    format!(
        "$ ifconfig -a\n{ifconfig}$ netstat -rn -f inet\n{}$ netstat -rn -f inet6\n{}$ jls -d\n{}\n",
        text_of("netstat", &["-rn", "-f", "inet"]),
        text_of("netstat", &["-rn", "-f", "inet6"]),
        jails.join("\n")
    )
}

/// Every jail, dying ones included: (name, dying).
fn jails() -> Vec<(String, bool)> {
    text_of("jls", &["-d", "-n", "name", "dying"])
        .lines()
        .filter_map(|l| {
            let name = l.split_whitespace().find_map(|w| w.strip_prefix("name="))?;
            // jls -n prints a boolean as `dying` or `nodying`.
            let dying = l
                .split_whitespace()
                .any(|w| w == "dying" || w == "dying=true" || w == "dying=1");
            Some((name.to_string(), dying))
        })
        .collect()
}

fn run_jails() -> Vec<(String, bool)> {
    jails()
        .into_iter()
        .filter(|(n, _)| n.starts_with("ifstress-"))
        .collect()
}

struct FbsdHost {
    _serial: Serial,
    before: String,
}

fn fbsd_host() -> FbsdHost {
    let s = serial();
    load_modules();
    FbsdHost {
        _serial: s,
        before: fbsd_state(),
    }
}

impl FbsdHost {
    /// No jail of a run is left (alive or DYING) unless `allowed_dying`
    /// names it, and the host is as it was.
    fn assert_untouched(&self, allowed_dying: &[String]) {
        let left: Vec<(String, bool)> = run_jails()
            .into_iter()
            .filter(|(n, d)| !(*d && allowed_dying.iter().any(|a| a.contains(n.as_str()))))
            .collect();
        assert!(left.is_empty(), "jails left: {left:?}");
        assert_eq!(self.before, fbsd_state(), "the host changed");
    }
}

/// Titles of the findings a kernel without D51525 is expected to give
/// after tun-opens (the `tun` suite keeps its clones on purpose): a jail
/// stays DYING until reboot. Anything else is a real finding.
fn expected_dying(r: &serde_json::Value) -> Vec<String> {
    r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["kind"] == "dying-stack"
                && f["known_issue"]
                    .as_str()
                    .is_some_and(|k| k.starts_with("D51525"))
        })
        .map(|f| f["title"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_suite_runs_does_every_op_and_leaves_the_host_as_it_was() {
    require_root!();
    let host = fbsd_host();
    let mut dying_ok = Vec::new();
    for suite in SUITES {
        let before = fbsd_state();
        let d = tmp();
        let rp = d.path().join("r.json");
        let jp = d.path().join("r.xml");
        let o = run(&[
            "--suite",
            suite,
            "--duration",
            "3s",
            "--quiet",
            "--load-modules",
            "--report",
            rp.to_str().unwrap(),
            "--junit",
            jp.to_str().unwrap(),
        ]);
        let r = report(&rp);
        assert_eq!(r["suite"], suite);
        assert_eq!(r["platform"], "freebsd");
        assert_eq!(r["interrupted"], false);
        assert_eq!(
            r["errors"].as_array().map_or(0, Vec::len),
            0,
            "{suite}: {}",
            r["errors"]
        );
        // Clean, or only D51525's DYING jails on a kernel without the fix.
        let expected = expected_dying(&r);
        let findings = r["findings"].as_array().unwrap().len();
        assert_eq!(findings, expected.len(), "{suite}: {}", r["findings"]);
        assert_eq!(
            o.status.code(),
            Some(if findings == 0 { 0 } else { 1 }),
            "{suite}: {}",
            stderr(&o)
        );
        assert_eq!(r["leftovers"].as_array().unwrap().len(), 0, "{suite}");
        // Every op the suite declares was issued, except those the run said
        // it dropped (a kind this kernel lacks, an op a kind cannot do).
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
        // IPv6 sources are usable at once (DAD is off in the run's jails):
        // no send failed for want of a source address.
        for op in ["send-udp6", "send-tcp6"] {
            let e = &r["ops"][op]["errors"]["EADDRNOTAVAIL"];
            assert!(e.is_null() || e == 0, "{suite}: {op}: {}", r["ops"][op]);
        }
        let x = std::fs::read_to_string(&jp).unwrap();
        assert!(x.contains(&format!("ifstress.{suite}")));
        dying_ok.extend(expected);
        // No jail of the run is left, alive or DYING, but D51525's.
        let left: Vec<(String, bool)> = run_jails()
            .into_iter()
            .filter(|(n, d)| !(*d && dying_ok.iter().any(|t| t.contains(n.as_str()))))
            .collect();
        assert!(left.is_empty(), "{suite}: {left:?}");
        assert_eq!(before, fbsd_state(), "{suite} changed the host");
    }
    host.assert_untouched(&dying_ok);
}

#[test]
fn doctor_performs_every_op_once_and_cleans_up() {
    require_root!();
    let host = fbsd_host();
    let o = run(&["doctor", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["platform"], "freebsd");
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
        "send-tcp4",
        "send-tcp6",
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
    // What every VNET kernel with the modules loaded does end to end: with
    // DAD off in the jail an IPv6 address is a source at once, and with
    // member_ifaddrs set (15.0) an addressed member joins a bridge.
    for op in [
        "create",
        "move",
        "move-back",
        "stack-create",
        "stack-remove",
        "destroy",
        "addr6-add",
        "send-udp6",
        "member-add",
        "member-del",
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
    for (kind, native) in [
        ("pair", "epair"),
        ("tun", "tun"),
        ("tap", "tap"),
        ("bridge", "bridge"),
        ("lagg", "lagg"),
        ("vlan", "vlan"),
        ("eiface", "ng_eiface"),
    ] {
        assert!(
            kinds
                .iter()
                .any(|k| k["what"] == kind && k["target"] == native && k["result"] == "OK"),
            "{kind}: {kinds:?}"
        );
    }
    // The kernel facts, the bridge member switch among them.
    let facts = &d["kernel_features"];
    assert!(
        facts["version"]["value"].as_i64().unwrap() >= 1_300_000,
        "{facts}"
    );
    assert!(!facts["bridge_member_addrs"].is_null(), "{facts}");
    assert_eq!(d["leftovers"].as_array().unwrap().len(), 0);
    host.assert_untouched(&[]);
}

#[test]
fn sigint_at_a_random_moment_stops_cleans_up_and_reports() {
    require_root!();
    let host = fbsd_host();
    let d = tmp();
    let rp = d.path().join("r.json");
    let mut child = Command::new(bin())
        .args([
            "--suite",
            "vmove",
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
    let status = wait_bounded(&mut child, Duration::from_secs(60))
        .expect("did not exit within 60 s of SIGINT");
    assert!(matches!(status.code(), Some(0 | 1)), "{status:?}");
    let r = report(&rp);
    assert_eq!(r["interrupted"], true);
    assert!(r["duration_s"].as_f64().unwrap() < 90.0);
    host.assert_untouched(&expected_dying(&r));
}

#[test]
fn cleanup_removes_a_killed_runs_jails_and_nothing_else() {
    require_root!();
    let host = fbsd_host();
    let mut child = spawn_quiet(&["--suite", "vmove", "--duration", "60s", "--quiet"]);
    std::thread::sleep(Duration::from_secs(3));
    child.kill().unwrap(); // SIGKILL: nothing of the run's own cleanup runs
    child.wait().unwrap();
    assert!(
        run_jails().iter().any(|(_, dying)| !dying),
        "a killed run should leave its jails"
    );
    let o = run(&["cleanup"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("removed jail ifstress-"));
    // jail_remove only marks a jail dying; it goes when its last reference
    // does (prison_deref). Bounded wait for that.
    for _ in 0..120 {
        if run_jails().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    host.assert_untouched(&[]);
}

/// The leftover check can fail: while a run is live, the test makes a jail
/// carrying the run's tag, which teardown does not know of; after teardown
/// it must be reported, by name.
#[test]
fn something_tagged_left_after_teardown_is_a_leftover_finding() {
    require_root!();
    let host = fbsd_host();
    let d = tmp();
    let rp = d.path().join("r.json");
    let mut child = spawn_quiet(&[
        "--suite",
        "vmove",
        "--duration",
        "4s",
        "--quiet",
        "--report",
        rp.to_str().unwrap(),
    ]);
    let mut planted = None;
    for _ in 0..100 {
        if let Some((n, _)) = run_jails().into_iter().find(|(n, _)| n.ends_with("-h0")) {
            let extra = n.replace("-h0", "-zz9");
            assert!(
                Command::new("jail")
                    .args(["-c", &format!("name={extra}"), "path=/", "persist"])
                    .status()
                    .unwrap()
                    .success()
            );
            planted = Some(extra);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let planted = planted.expect("the run's home jail never appeared");
    let status = wait_bounded(&mut child, Duration::from_secs(90)).expect("run did not end");
    let _ = Command::new("jail").args(["-r", &planted]).status();
    assert_eq!(status.code(), Some(1));
    let r = report(&rp);
    let left: Vec<&str> = r["leftovers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    assert!(
        left.len() == 1 && left[0].starts_with(&format!("jail {planted} (jid ")),
        "{left:?}"
    );
    assert!(
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "leftover")
    );
    for _ in 0..120 {
        if run_jails().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    host.assert_untouched(&[]);
}

/// The journal after a real run says which kernel version it ran on, so
/// that a postmortem after the reboot keys known issues by it.
#[test]
fn the_journal_records_the_kernel_version_for_postmortem() {
    require_root!();
    let host = fbsd_host();
    let d = tmp();
    let j = d.path().join("journal");
    let o = run(&[
        "--suite",
        "ioctl",
        "--duration",
        "2s",
        "--quiet",
        "--journal",
        j.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let header = std::fs::read_to_string(j.join("run.txt")).unwrap();
    let osreldate = text_of("sysctl", &["-n", "kern.osreldate"]);
    assert!(
        header.contains(&format!("kernel_version = {}", osreldate.trim())),
        "{header}"
    );
    host.assert_untouched(&[]);
}
