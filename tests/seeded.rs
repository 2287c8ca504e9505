//! Seeded races for real: racebench (vm/racebench) is built with kbuild
//! against the guest kernel's headers and loaded into QEMU guests (the
//! default accelerator: TCG on this project's machines) by
//! `ifstress vm`. One bounded check of the whole chain: the vmove suite hits
//! the vmove seed, the same module with fixed=1 is not hit although its
//! window is entered and the fix averted the race, and the verdict over both
//! sides' reports is `fixed`. The verdict cannot be fooled: an after side
//! whose moves all fail (`break=move`) is `incomparable`, one whose race
//! warns instead of panicking (`hit=warn`) is `regressed`. A module that
//! does not load ends the guest at once with one line and is no trial. And
//! `repro` starts from a crash of the ioctl suite on the media seed,
//! confirms it and reduces the suite around the race's query op.
//!
//! Prerequisites: qemu-system-x86_64, busybox, a /boot/vmlinuz-VERSION with
//! its /lib/modules/VERSION/build headers, make and gcc. Without them the
//! tests say SKIPPED (uncaptured); under CI (`CI` set) a missing one is a failure.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The newest guest kernel with headers to build against, or why not.
fn guest_kernel_with_headers() -> Result<(PathBuf, String), String> {
    for (tool, pkg) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("busybox", "busybox-static"),
        ("make", "make"),
        ("gcc", "gcc"),
    ] {
        need_tool(tool, pkg)?;
    }
    let k = boot_kernels()?;
    let ver =
        |k: &PathBuf| k.file_name().unwrap().to_string_lossy()["vmlinuz-".len()..].to_string();
    let newest = ver(k.last().expect("boot_kernels is never empty"));
    k.into_iter()
        .rev()
        .map(|k| {
            let v = ver(&k);
            (k, v)
        })
        .find(|(_, v)| Path::new(&format!("/lib/modules/{v}/build/Makefile")).is_file())
        .ok_or(format!(
            "no headers for the guest kernel {newest} (apt install linux-headers-{newest})"
        ))
}

macro_rules! require {
    ($e:expr) => {{
        if !common::in_tier(common::Tier::Guest) {
            return;
        }
        match $e {
            Ok(v) => v,
            Err(why) => {
                skip(&why);
                return;
            }
        }
    }};
}

/// racebench built in a scratch copy of vm/racebench (kbuild writes next
/// to the sources; the repository stays clean and tests do not collide).
fn build_racebench(dir: &Path, ver: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("vm/racebench");
    for f in ["racebench.c", "Makefile"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let o = Command::new("make")
        .arg("-C")
        .arg(dir)
        .arg(format!("KVER={ver}"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "racebench did not build: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let ko = dir.join("racebench.ko");
    assert!(ko.is_file());
    ko
}

/// `vm CMD` on a Linux guest of `kernel` with the default accelerator
/// (`auto`, as a newcomer runs it: TCG where KVM runs no guest), running the
/// vmove suite, then `extra`.
fn vm_cmd(cmd: &str, kernel: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "vm", cmd, "--guest", "linux", "--image", "", "--suite", "vmove", "--mem", "1024",
    ]
    .map(String::from)
    .to_vec();
    a[5] = kernel.display().to_string();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn run_bounded(args: &[String], limit: Duration) -> (Option<i32>, String) {
    let mut child = Command::new(bin())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Both pipes are drained while the child runs: one left unread fills
    // at 64 KiB and blocks the child until it "did not end in time".
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = r.read_to_end(&mut b);
            String::from_utf8_lossy(&b).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let status = wait_bounded(&mut child, limit).expect("did not end in time");
    let _ = out.join();
    let err = err.join().unwrap();
    eprintln!("{err}");
    (status.code(), err)
}

#[test]
fn a_module_that_does_not_load_ends_the_guest_at_once_with_one_line() {
    let (kernel, _) = require!(guest_kernel_with_headers());
    let _s = serial();
    let d = tmp();
    let bad = d.path().join("broken.ko");
    std::fs::write(&bad, b"this is not an ELF object").unwrap();
    let out = d.path().join("out");
    let t0 = std::time::Instant::now();
    let (code, err) = run_bounded(
        &vm_cmd(
            "run",
            &kernel,
            &[
                "--duration",
                "5m",
                "--module",
                bad.to_str().unwrap(),
                "--module-param",
                "window_us=5",
                "--out",
                out.to_str().unwrap(),
            ],
        ),
        Duration::from_secs(240),
    );
    assert_eq!(code, Some(2), "{err}");
    // Not the boot timeout (10 min): the guest said so and the runner stopped.
    assert!(
        t0.elapsed() < Duration::from_secs(180),
        "{:?}",
        t0.elapsed()
    );
    let last = err.trim_end().lines().last().unwrap();
    assert!(
        last.starts_with("ifstress: a --module did not load in the guest: broken"),
        "{last}"
    );
    let r = report(&out.join("report.json"));
    let guests = r["vm"]["guests"].as_array().unwrap();
    assert_eq!(guests.len(), 1, "no further guests after a load failure");
    assert_eq!(guests[0]["outcome"], "module-failed");
    assert!(
        guests[0]["module_error"]
            .as_str()
            .unwrap()
            .contains("broken")
    );
    // Not exposure: the suite never ran, so a verdict counts no trial. The
    // before side is another run (the same report on both sides is refused).
    assert!(guests[0].get("suite_seconds").is_none(), "{:?}", guests[0]);
    let mut other = r.clone();
    other["seed"] = serde_json::json!(r["seed"].as_u64().unwrap() ^ 1);
    let before = d.path().join("before.json");
    std::fs::write(&before, other.to_string()).unwrap();
    let o = Command::new(bin())
        .args(["verdict", "--before"])
        .arg(&before)
        .arg("--after")
        .arg(out.join("report.json"))
        .args(["--json"])
        .arg(d.path().join("v.json"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    let v = report(&d.path().join("v.json"));
    assert_eq!(v["after"]["trials"], 0, "{v:#}");
    assert_eq!(v["after"]["not_run_by_reason"]["module-failed"], 1, "{v:#}");
}

/// `vm ab` of the vmove seed at a 10 ms window, 60 s slices, seed 1: the
/// before side loads racebench with `scenarios=vmove`, the after side with
/// those parameters and `after`. Its exit code, verdict.json and stderr.
fn vmove_ab(
    kernel: &Path,
    ko: &Path,
    out: &Path,
    after: &[&str],
    budget: &str,
) -> (Option<i32>, serde_json::Value, String) {
    let mut extra = vec![
        "--module",
        ko.to_str().unwrap(),
        "--module-param",
        "scenarios=vmove",
        "--module-param",
        "window_us=10000",
    ];
    for a in after {
        extra.extend(["--after-param", a]);
    }
    extra.extend([
        "--slice",
        "60s",
        "--budget",
        budget,
        "--seed",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (code, err) = run_bounded(&vm_cmd("ab", kernel, &extra), Duration::from_secs(600));
    let v = serde_json::from_str(&std::fs::read_to_string(out.join("verdict.json")).unwrap())
        .unwrap_or_else(|e| panic!("verdict.json: {e}\n{err}"));
    (code, v, err)
}

#[test]
fn the_vmove_seed_is_hit_fixed_is_not_and_the_verdict_says_fixed() {
    let (kernel, ver) = require!(guest_kernel_with_headers());
    let _s = serial();
    let d = tmp();
    let ko = build_racebench(d.path(), &ver);
    let out = d.path().join("ab");
    let (code, v, err) = vmove_ab(&kernel, &ko, &out, &["fixed=1"], "6m");
    assert_eq!(v["verdict"], "fixed", "{v:#}\n{err}");
    assert!(v["regressions"].as_array().unwrap().is_empty(), "{v:#}");
    assert!(v["work"]["short"].as_array().unwrap().is_empty(), "{v:#}");
    assert_eq!(code, Some(0));
    assert!(v["p_value"].as_f64().unwrap() <= 0.05, "{v:#}");
    assert!(v["before"]["hits"].as_u64().unwrap() >= 1);
    assert_eq!(v["after"]["hits"], 0);
    // Before: the panics are the vmove seed, recognised as such.
    let (before, after) = slice_reports(&out);
    // Every slice ran on what `auto` chose, and says why.
    for r in before.iter().chain(&after).map(report) {
        let why = r["vm"]["accel_why"].as_str().unwrap_or_default();
        assert!(why.starts_with("auto:"), "{why:?}");
    }
    let hit = before.iter().map(report).find_map(|r| {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| {
                f["known_issue"]
                    .as_str()
                    .is_some_and(|k| k.starts_with("racebench vmove"))
            })
            .cloned()
    });
    let hit = hit.expect("a before guest panicked on the vmove seed");
    assert!(
        hit["title"]
            .as_str()
            .unwrap()
            .contains("seeded race vmove hit"),
        "{hit}"
    );
    // After: the window was entered (the race ran) and the fix averted it
    // (a free found the window open: the two ops met), never hit.
    let mut entered = 0;
    let mut averted = 0;
    for r in after.iter().map(report) {
        assert!(
            !r["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["title"].as_str().unwrap().contains("racebench")),
            "fixed=1 was hit: {r:#}"
        );
        for g in r["vm"]["guests"].as_array().unwrap() {
            for l in g["module_state"].as_array().into_iter().flatten() {
                let l = l.as_str().unwrap();
                if let Some(rest) = l.strip_prefix("racebench.counters vmove ") {
                    let field = |name: &str| {
                        rest.split_whitespace()
                            .find_map(|w| w.strip_prefix(name))
                            .unwrap()
                            .parse::<u64>()
                            .unwrap()
                    };
                    entered += field("entered=");
                    averted += field("averted=");
                }
            }
        }
    }
    assert!(entered > 0, "fixed=1 guests never entered the window");
    assert!(
        averted > 0,
        "fixed=1 guests entered the window {entered} times but no destroy ever met one open: \
         the after side never raced, so its clean hours are no evidence"
    );
    // The standalone command agrees on the same reports.
    let mut args: Vec<String> = vec!["verdict".into(), "--before".into()];
    args.extend(before.iter().map(|p| p.display().to_string()));
    args.push("--after".into());
    args.extend(after.iter().map(|p| p.display().to_string()));
    let o = Command::new(bin()).args(&args).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(text.to_lowercase().contains("fixed"), "{text}");
    // So does the patch-verdict workflow's verdict job, its script run as
    // written, on these reports laid out as its artifacts download.
    let (summary, rc) = workflow_verdict(&before, &after);
    assert_eq!(rc, Some(0), "{summary}");
    assert!(
        summary.starts_with("## Patch verdict: fixed\n"),
        "{summary}"
    );
}

#[test]
fn a_patch_that_stops_the_moves_is_incomparable_not_fixed() {
    let (kernel, ver) = require!(guest_kernel_with_headers());
    let _s = serial();
    let d = tmp();
    let ko = build_racebench(d.path(), &ver);
    let out = d.path().join("ab");
    // break=move: every move fails after the patch, so the after side never
    // opens the vmove window, and its clean hours must not read as fixed.
    let (code, v, err) = vmove_ab(&kernel, &ko, &out, &["break=move"], "4m");
    assert_eq!(v["verdict"], "incomparable", "{v:#}\n{err}");
    assert_eq!(code, Some(4), "{err}");
    assert_eq!(v["after"]["hits"], 0, "{v:#}");
    let short: Vec<&str> = v["work"]["short"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        short
            .iter()
            .any(|s| s.starts_with("move:") || s.contains("vmove: the window was armed")),
        "{short:?}"
    );
    // The work table shows the after side's moves failing.
    let mv = v["work"]["ops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["op"] == "move")
        .expect("a move row");
    assert_eq!(mv["after"]["ok"], 0, "{mv}");
    assert!(mv["after"]["issued"].as_u64().unwrap() > 0, "{mv}");
    // The workflow's summary says so and is not green.
    let (before, after) = slice_reports(&out);
    let (summary, rc) = workflow_verdict(&before, &after);
    assert_eq!(rc, Some(4), "{summary}");
    assert!(
        summary.starts_with("## Patch verdict: incomparable\n"),
        "{summary}"
    );
}

#[test]
fn a_patch_that_turns_the_panic_into_a_warning_is_regressed_not_fixed() {
    let (kernel, ver) = require!(guest_kernel_with_headers());
    let _s = serial();
    let d = tmp();
    let ko = build_racebench(d.path(), &ver);
    let out = d.path().join("ab");
    // hit=warn: after the patch the same race still happens, but warns
    // instead of panicking. The judged panic is gone; a crash-like
    // signature the before side never had appeared.
    let (code, v, err) = vmove_ab(&kernel, &ko, &out, &["hit=warn"], "4m");
    assert_eq!(v["verdict"], "regressed", "{v:#}\n{err}");
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(v["after"]["hits"], 0, "{v:#}");
    let r = &v["regressions"][0];
    assert_eq!(r["why"], "new", "{v:#}");
    assert_eq!(r["before_hits"], 0, "{v:#}");
    assert!(r["after_hits"].as_u64().unwrap() >= 1, "{v:#}");
    assert!(
        r["title"].as_str().unwrap_or_default().contains("WARNING")
            || r["title"]
                .as_str()
                .unwrap_or_default()
                .contains("racebench"),
        "{r}"
    );
}

/// The slices' reports of a `vm ab` in `out`: (before, after), neither empty.
fn slice_reports(out: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut before = Vec::new();
    let mut after = Vec::new();
    for e in std::fs::read_dir(out).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if p.is_dir() {
            let r = p.join("report.json");
            if name.starts_with("before-") {
                before.push(r);
            } else if name.starts_with("after-") {
                after.push(r);
            }
        }
    }
    assert!(!before.is_empty() && !after.is_empty(), "{}", out.display());
    (before, after)
}

/// Run the verdict step of .github/workflows/patch-verdict.yml with
/// `before`/`after` as the stress jobs' report artifacts; the step summary
/// it wrote and its exit code.
fn workflow_verdict(before: &[PathBuf], after: &[PathBuf]) -> (String, Option<i32>) {
    let text = std::fs::read_to_string(".github/workflows/patch-verdict.yml").unwrap();
    let y = yaml_rust2::YamlLoader::load_from_str(&text)
        .unwrap()
        .remove(0);
    let script = y["jobs"]["verdict"]["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str() == Some("Verdict"))
        .and_then(|s| s["run"].as_str())
        .expect("the verdict job's Verdict step")
        .replace("./target/release/ifstress", bin());
    let d = tmp();
    for (side, reports) in [("before", before), ("after", after)] {
        for (i, r) in reports.iter().enumerate() {
            let dir = d.path().join(format!("reports/report-{side}-{}", i + 1));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy(r, dir.join("report.json")).unwrap();
        }
    }
    let summary = d.path().join("summary.md");
    let o = Command::new("bash")
        .args(["-e", "-c", &script])
        .current_dir(d.path())
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert!(d.path().join("verdict.json").is_file());
    (
        std::fs::read_to_string(&summary).unwrap_or_default(),
        o.status.code(),
    )
}

#[test]
fn repro_confirms_a_media_crash_and_reduces_the_suite_around_its_ops() {
    let (kernel, ver) = require!(guest_kernel_with_headers());
    let _s = serial();
    let d = tmp();
    let ko = build_racebench(d.path(), &ver);
    // The crash to start from: the ioctl suite (ten op kinds, three loops)
    // against the media seed at a wide window.
    let src = d.path().join("src");
    let mut args = vm_cmd(
        "run",
        &kernel,
        &[
            "--module",
            ko.to_str().unwrap(),
            "--module-param",
            "scenarios=media",
            "--module-param",
            "window_us=10000",
            "--duration",
            "3m",
            "--guests",
            "1",
            "--seed",
            "3",
            "--out",
            src.to_str().unwrap(),
        ],
    );
    let at = args.iter().position(|a| a == "--suite").unwrap();
    args[at + 1] = "ioctl".into();
    let (code, err) = run_bounded(&args, Duration::from_secs(300));
    assert_eq!(code, Some(1), "the source run hit nothing: {err}");
    let out = d.path().join("repro");
    let (code, err) = run_bounded(
        &[
            "repro",
            src.to_str().unwrap(),
            "--mem",
            "1024",
            "--trials",
            "2",
            "--budget",
            "7m",
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from),
        Duration::from_secs(600),
    );
    let r = report(&out.join("repro.json"));
    assert_eq!(code, Some(0), "{r:#}\n{err}");
    assert_eq!(r["outcome"], "reproduced");
    assert!(r["confirm"]["hits"].as_u64().unwrap() >= 1);
    // Every kept reduction hit the signature by itself; a refused one
    // watched its whole step budget.
    let e = r["step_budget_s"].as_f64().unwrap();
    let steps = r["steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["phase"] == "reduce"), "{r:#}");
    for s in steps.iter().filter(|s| s["phase"] == "reduce") {
        match s["kept"].as_bool() {
            Some(true) => assert!(s["hits"].as_u64().unwrap() >= 1, "{s}"),
            Some(false) => assert!(s["exposure_s"].as_f64().unwrap() >= e - 0.1, "{s}"),
            None => {}
        }
    }
    // The minimal suite loads, still has an op that opens the window, and is
    // smaller.
    let min = std::fs::read_to_string(out.join("repro.toml")).unwrap();
    let toml: toml::Value = toml::from_str(&min).unwrap();
    let loops = toml["loop"].as_array().unwrap();
    let kinds: std::collections::BTreeSet<String> = loops
        .iter()
        .flat_map(|l| l["ops"].as_table().unwrap().keys().cloned())
        .collect();
    // The media window opens in veth's and bonding's ethtool handlers: a
    // `media` query reaches them, and so does `member-add` to a lagg
    // (bonding asks its new slave's link settings on enslave), which a CI
    // run showed: dropping `media` was kept because member-add hit.
    assert!(
        kinds.contains("media") || kinds.contains("member-add"),
        "{min}"
    );
    assert!(kinds.len() < 10, "nothing was reduced: {min}");
    let sh = std::fs::read_to_string(out.join("repro.sh")).unwrap();
    assert!(sh.starts_with("#!/bin/sh"), "{sh}");
    // The script does every op kind the minimal suite kept, so it carries
    // whichever window-opening op the reduction left.
    for k in &kinds {
        let f = format!("op_{}() {{", k.replace('-', "_"));
        let left_out = sh
            .lines()
            .any(|l| l.starts_with("# Not expressible in sh") && l.contains(k.as_str()));
        assert!(
            sh.contains(&f) || left_out,
            "{f} missing from repro.sh:\n{sh}"
        );
    }
}
