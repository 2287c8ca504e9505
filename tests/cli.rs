//! Bad input: exit 2, one clear line, never a panic. These need no root.

mod common;
use common::*;

fn assert_usage_error(o: &std::process::Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.contains(needle), "`{needle}` not in: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
}

#[test]
fn unknown_suite() {
    assert_usage_error(
        &run(&["--suite", "nosuch", "--duration", "1s"]),
        "unknown suite `nosuch`",
    );
}

#[test]
fn bad_duration() {
    assert_usage_error(
        &run(&["--suite", "vmove", "--duration", "banana"]),
        "invalid duration `banana`",
    );
}

#[test]
fn malformed_toml_names_file_and_line() {
    let d = tmp();
    let p = d.path().join("bad.toml");
    std::fs::write(&p, "name = \"x\"\ndescription = [\n").unwrap();
    let o = run(&["--suite", p.to_str().unwrap(), "--duration", "1s"]);
    assert_usage_error(&o, &format!("{}:", p.display()));
}

#[test]
fn unknown_op_kind_names_the_field() {
    let d = tmp();
    let p = d.path().join("op.toml");
    std::fs::write(
        &p,
        "name = \"x\"\ndescription = \"d\"\n[topology]\nstacks = 1\nlinks = [{ kind = \"pair\", count = 1 }]\n[[loop]]\nname = \"l\"\nworkers = 1\nops = { warp = 1 }\n",
    )
    .unwrap();
    let o = run(&["--suite", p.to_str().unwrap()]);
    assert_usage_error(&o, ":9: loop[0].ops: unknown variant `warp`");
    assert!(stderr(&o).contains("warp"));
}

#[test]
fn missing_suite_and_unknown_flag() {
    assert_usage_error(&run(&["--duration", "1s"]), "--suite is required");
    assert_usage_error(&run(&["--suite", "vmove", "--frobnicate"]), "--frobnicate");
    assert_usage_error(
        &run(&["--suite", "vmove", "--report", "/nonexistent/dir/r.json"]),
        "does not exist",
    );
}

#[test]
fn list_and_show() {
    let o = run(&["list"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    for s in [
        "vmove", "clone", "ioctl", "outpath", "tun", "bpf", "netlink", "jail", "all",
    ] {
        assert!(out.lines().any(|l| l.starts_with(s)), "{s} not listed");
    }
    assert!(out.contains("PR 292993"));
    let o = run(&["show", "vmove"]);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("name = \"vmove\""), "{text}");
    // What `show` prints loads back as a suite file.
    let d = tmp();
    let p = d.path().join("v.toml");
    std::fs::write(&p, text.as_bytes()).unwrap();
    assert_eq!(run(&["show", p.to_str().unwrap()]).stdout, o.stdout);
}

/// Issue 26: `ifstress triage core.txt.0` on a crashinfo file of a page
/// fault is one finding, with kgdb's frames and the function to blame.
/// The file is synthetic, in crashinfo.sh's layout (see postmortem.rs).
#[test]
fn triage_of_a_crashinfo_file_is_one_finding_with_frames() {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/crashinfo-if_vmove.core.txt");
    let o = run(&["triage", "--json", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "findings exit 1");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let all = v.as_array().unwrap();
    assert_eq!(all.len(), 1, "{v:#}");
    assert_eq!(
        all[0]["title"],
        "Fatal trap N: page fault while in kernel mode in if_vmove"
    );
    assert_eq!(all[0]["guilty_frame"], "if_vmove");
    assert_eq!(all[0]["frames"][0], "__curthread");
}

/// A real transcript (syzkaller pkg/report testdata, Apache-2.0, in
/// ../shared/fixtures) through `ifstress triage -`.
#[test]
fn triage_reads_stdin_and_titles_a_real_panic() {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/freebsd/syzkaller-freebsd-8.txt");
    if !common::in_tier(common::Tier::Fixtures) {
        return;
    }
    let Ok(text) = std::fs::read_to_string(&p) else {
        skip(&format!("{} is absent", p.display()));
        return;
    };
    let body = text.split_once("\n\n").unwrap().1;
    use std::io::Write;
    let mut child = std::process::Command::new(bin())
        .args(["triage", "-", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "findings exit 1");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let f = &v[0];
    assert_eq!(f["kind"], "fatal-trap");
    assert_eq!(
        f["title"],
        "Fatal trap N: page fault while in kernel mode in inp_freemoptions"
    );
    assert_eq!(f["guilty_frame"], "inp_freemoptions");
    assert_eq!(f["count"], 1);
    assert_eq!(f["first_seen"], "-:1");
    assert!(f["known_issue"].is_null());
    assert!(
        f["excerpt"]
            .as_str()
            .unwrap()
            .contains("KDB: stack backtrace:")
    );
    // Nothing alarming: exit 0.
    let d = tmp();
    let quiet = d.path().join("boot.log");
    std::fs::write(
        &quiet,
        "Copyright (c) 1992-2025 The FreeBSD Project.\nepair0a: link state changed to UP\n",
    )
    .unwrap();
    let o = run(&["triage", quiet.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert_usage_error(
        &run(&["triage", "/nonexistent/console.log"]),
        "/nonexistent/console.log",
    );
}

#[test]
fn verdict_refuses_unreadable_and_non_report_files() {
    let d = tmp();
    let junk = d.path().join("junk.json");
    std::fs::write(&junk, "not json").unwrap();
    let notreport = d.path().join("other.json");
    std::fs::write(&notreport, "{\"hello\": 1}").unwrap();
    let missing = d.path().join("missing.json");
    let (j, n, m) = (
        junk.to_str().unwrap(),
        notreport.to_str().unwrap(),
        missing.to_str().unwrap(),
    );
    assert_usage_error(&run(&["verdict", "--before", j, "--after", j]), "junk.json");
    assert_usage_error(
        &run(&["verdict", "--before", n, "--after", n]),
        "other.json",
    );
    assert_usage_error(
        &run(&["verdict", "--before", m, "--after", m]),
        "missing.json",
    );
    assert_usage_error(
        &run(&[
            "verdict",
            "--before",
            j,
            "--after",
            j,
            "--confidence",
            "1.5",
        ]),
        "--confidence",
    );
}

#[test]
fn vm_module_flags_are_checked_before_anything_boots() {
    let d = tmp();
    let k = d.path().join("vmlinuz");
    std::fs::write(&k, "k").unwrap();
    let k = k.to_str().unwrap();
    let base = [
        "vm",
        "run",
        "--guest",
        "linux",
        "--image",
        k,
        "--suite",
        "vmove",
        "--duration",
        "1m",
    ];
    let with = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend_from_slice(extra);
        run(&a)
    };
    assert_usage_error(&with(&["--module-param", "x=1"]), "no --module given");
    assert_usage_error(&with(&["--module", "/nonexistent/rb.ko"]), "no such file");
    assert_usage_error(
        &with(&[
            "--module",
            "/nonexistent/rb.ko",
            "--module-param",
            "noequals",
        ]),
        "expected NAME=VALUE",
    );
    assert_usage_error(
        &with(&["--module", "/a/rb.ko", "--module-param", "other.x=1"]),
        "no --module named other",
    );
}

/// A run report (not a guest's) with the given findings.
fn run_report(findings: &str) -> String {
    format!(
        r#"{{"suite": "vmove", "targets": [], "platform": "linux", "kernel": "Linux 6.1",
"seed": 7, "tag": "abcd", "started_at": "2026-11-27T00:00:00Z", "duration_s": 60.0,
"planned_duration_s": 60.0, "interrupted": false, "verdict": "findings", "workers": 7,
"total_ops": 100, "setup": {{"created": 1, "failed": {{}}}}, "ops": {{}},
"findings": [{findings}], "leftovers": [], "notes": []}}"#
    )
}

#[test]
fn repro_refuses_reports_it_cannot_reproduce_from_before_anything_boots() {
    let d = tmp();
    let clean = d.path().join("clean.json");
    std::fs::write(&clean, run_report("")).unwrap();
    let crash = d.path().join("crash.json");
    std::fs::write(
        &crash,
        run_report(
            r#"{"kind": "panic", "title": "panic: x in f", "signature": "0123456789abcdef", "excerpt": "x"}"#,
        ),
    )
    .unwrap();
    let junk = d.path().join("junk.json");
    std::fs::write(&junk, "{\"hello\": 1}").unwrap();
    let p = |x: &std::path::PathBuf| x.to_str().unwrap().to_string();
    assert_usage_error(&run(&["repro", &p(&clean)]), "no crash to reproduce");
    assert_usage_error(&run(&["repro", &p(&junk)]), "not an ifstress report");
    assert_usage_error(
        &run(&["repro", &p(&d.path().join("missing.json"))]),
        "cannot read",
    );
    // A crash on this machine: repro needs a guest to crash instead.
    assert_usage_error(&run(&["repro", &p(&crash)]), "give --image");
    assert_usage_error(
        &run(&["repro", &p(&crash), "--signature", "ffff"]),
        "no finding with signature ffff",
    );
    assert_usage_error(
        &run(&["repro", &p(&crash), "--image", "/nonexistent/vmlinuz"]),
        "no such file",
    );
    assert_usage_error(&run(&["repro", &p(&crash), "--miss", "0.7"]), "--miss");
    // The directory form reads its report.json.
    assert_usage_error(&run(&["repro", d.path().to_str().unwrap()]), "report.json");
}

#[test]
fn show_prints_a_suite_as_shell_loops_that_sh_accepts() {
    for os in ["linux", "freebsd"] {
        let o = run(&["show", "all", "--shell", os]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let text = String::from_utf8(o.stdout).unwrap();
        assert!(text.starts_with("#!/bin/sh\n"), "{text}");
        let d = tmp();
        let f = d.path().join("s.sh");
        std::fs::write(&f, &text).unwrap();
        let check = std::process::Command::new("sh")
            .arg("-n")
            .arg(&f)
            .output()
            .unwrap();
        assert!(check.status.success(), "{os}: {}", stderr(&check));
    }
    assert_usage_error(&run(&["show", "nosuch", "--shell", "linux"]), "nosuch");
}

#[test]
fn a_hypervisor_that_cannot_run_the_guest_is_refused_before_anything_is_made() {
    let d = tmp();
    let img = d.path().join("img.qcow2");
    std::fs::write(&img, b"QFI\xfb").unwrap();
    let img = img.to_str().unwrap();
    let out = d.path().join("out");
    let o = out.to_str().unwrap();
    let common = [
        "vm",
        "run",
        "--image",
        img,
        "--suite",
        "vmove",
        "--duration",
        "1m",
        "--out",
        o,
    ];
    let with = |extra: &[&str]| {
        let mut a: Vec<&str> = common.to_vec();
        a.extend_from_slice(extra);
        run(&a)
    };
    assert_usage_error(
        &with(&["--guest", "linux", "--hypervisor", "bhyve"]),
        "FreeBSD guests only",
    );
    assert_usage_error(
        &with(&["--binary", "/bin/true", "--firmware", "/fw.fd"]),
        "--firmware is for bhyve",
    );
    #[cfg(not(target_os = "freebsd"))]
    assert_usage_error(
        &with(&["--binary", "/bin/true", "--hypervisor", "bhyve"]),
        "FreeBSD hosts only",
    );
    assert!(!out.exists(), "nothing is created for bad input");
    // vm build-kernel checks its own inputs the same way.
    assert_usage_error(
        &run(&[
            "vm",
            "build-kernel",
            "--image",
            img,
            "--src",
            d.path().to_str().unwrap(),
            "--out-image",
            d.path().join("k.qcow2").to_str().unwrap(),
        ]),
        "not a FreeBSD source tree",
    );
}

/// `triage --osreldate N`: a known bug's crash is known only on a kernel
/// inside its rule's ranges; without a version it is NEW; a version that is
/// not a number is bad input.
#[test]
fn triage_keys_known_issues_by_the_kernel_version_given() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/check/triage/testdata/freebsd-pr279653-in6-selecthlim.txt"
    );
    let known = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["triage", "--json", file];
        args.extend_from_slice(extra);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v[0]["guilty_frame"], "in6_selecthlim");
        v[0]["known_issue"].clone()
    };
    let k = known(&["--osreldate", "1403000"]);
    assert!(k.as_str().unwrap().starts_with("PR 279653"), "{k}");
    assert!(known(&["--osreldate", "1600010"]).is_null());
    assert!(known(&[]).is_null());
    let o = run(&["triage", "--osreldate", "15.0", file]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
