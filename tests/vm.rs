//! `ifstress vm run` for real: QEMU (TCG, no KVM needed) boots a Debian
//! kernel with an initramfs that `ifstress vm` builds around this very
//! binary and busybox; the guest runs a suite with the Linux backend. One
//! test makes the first guest panic on purpose, the other wedges its run; the
//! runner must name what happened, attach the last journaled ops from the
//! second serial port, boot a fresh guest and write a correct report. A
//! kernel that panics before its suite, and FreeBSD-lane guests on an image
//! that boots nothing, stop the run after three guests; the latter leave no
//! disks behind unless `--keep-disks`. `--accel auto` boots a probe
//! firmware and chooses KVM only if it ran: the default boots guests here; a
//! guest that prints nothing is a boot failure within `--console-timeout`,
//! and one on `auto`'s KVM turns the rest of the run to TCG.

mod common;

use common::*;
use std::path::PathBuf;
use std::time::Duration;

/// The newest installed Debian kernel, or why the test cannot run.
fn guest_kernel() -> Result<PathBuf, String> {
    need_tool("qemu-system-x86_64", "qemu-system-x86")?;
    need_tool("busybox", "busybox-static")?;
    Ok(boot_kernels()?.pop().expect("boot_kernels is never empty"))
}

macro_rules! require_guest_kernel {
    () => {{
        if !common::in_tier(common::Tier::Guest) {
            return;
        }
        match guest_kernel() {
            Ok(k) => k,
            Err(why) => {
                skip(&why);
                return;
            }
        }
    }};
}

/// `vm run` of the ioctl suite in a Linux guest of `kernel` under TCG.
fn vm_args<'a>(
    kernel: &'a std::path::Path,
    out: &'a std::path::Path,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "vm",
        "run",
        "--guest",
        "linux",
        "--image",
        kernel.to_str().unwrap(),
        "--suite",
        "ioctl",
        "--accel",
        "tcg",
        "--mem",
        "1024",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args
}

/// Run ifstress to its end within `secs`, its stderr read as it goes (a
/// full pipe would block it): the exit code and stderr.
fn exit_and_stderr(args: &[&str], secs: u64) -> (Option<i32>, String) {
    let mut child = std::process::Command::new(bin())
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let err = std::thread::spawn({
        let mut e = child.stderr.take().unwrap();
        move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
            s
        }
    });
    let status = wait_bounded(&mut child, Duration::from_secs(secs))
        .unwrap_or_else(|| panic!("ifstress did not stop within {secs} s"));
    (status.code(), err.join().unwrap())
}

fn vm_run(kernel: &std::path::Path, out: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let mut child = std::process::Command::new(bin())
        .args(vm_args(kernel, out, extra))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(300))
        .expect("vm run did not end within 5 minutes");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut text).unwrap();
    eprintln!("{text}");
    assert_eq!(status.code(), Some(1), "findings exit 1");
    assert!(out.join("junit.xml").is_file());
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
}

/// The first guest ended as `outcome`, a fresh one followed, and the journal
/// port outlived the first: its workers' last ops are in the report.
fn first_guest_ended_and_a_fresh_one_followed(r: &serde_json::Value, outcome: &str) {
    let guests = r["vm"]["guests"].as_array().unwrap();
    assert_eq!(guests[0]["outcome"], outcome, "{guests:?}");
    assert!(
        guests.len() >= 2,
        "no fresh guest after the {outcome}: {guests:?}"
    );
    let last = r["last_ops"].as_object().unwrap();
    assert!(
        last.keys().any(|k| k.starts_with("guest-1 worker-")),
        "{last:?}"
    );
}

#[test]
fn a_guest_panic_is_named_with_its_last_ops_and_a_fresh_guest_goes_on() {
    let kernel = require_guest_kernel!();
    let _s = serial();
    let d = tmp();
    let r = vm_run(
        &kernel,
        d.path(),
        &[
            "--duration",
            "75s",
            "--inject",
            "panic:10",
            "--hang-timeout",
            "60s",
        ],
    );
    first_guest_ended_and_a_fresh_one_followed(&r, "panic");
    let guests = r["vm"]["guests"].as_array().unwrap();
    assert_eq!(guests.last().unwrap()["outcome"], "finished", "{guests:?}");
    assert!(guests.last().unwrap()["ops"].as_u64().unwrap() > 0);
    let panics: Vec<&serde_json::Value> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "panic")
        .collect();
    assert_eq!(panics.len(), 1, "{:?}", r["findings"]);
    assert!(
        panics[0]["title"]
            .as_str()
            .unwrap()
            .contains("sysrq triggered crash")
    );
    assert!(
        panics[0]["frames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "sysrq_handle_crash")
    );
    // Every crashed guest's worker has lines, not just a key.
    let last = r["last_ops"].as_object().unwrap();
    assert!(last.values().all(|v| !v.as_array().unwrap().is_empty()));
    assert!(r["total_ops"].as_u64().unwrap() > guests.last().unwrap()["ops"].as_u64().unwrap());
    assert_eq!(r["verdict"], "findings");
    // The crashed guest sent no report, yet its journal port told what work
    // its suite did, per op kind; each guest ran a seed of its own.
    let counts = guests[0]["op_counts"].as_object().expect("op_counts");
    assert!(
        counts.values().any(|c| c["issued"].as_u64().unwrap() > 0),
        "{counts:?}"
    );
    assert!(guests[0]["suite_seconds"].as_f64().unwrap() > 0.0);
    let seeds: Vec<u64> = guests.iter().map(|g| g["seed"].as_u64().unwrap()).collect();
    assert!(
        seeds.windows(2).all(|w| w[0] != w[1]),
        "guests share a seed: {seeds:?}"
    );
}

#[test]
fn a_kernel_that_panics_before_the_suite_stops_after_three_boot_panics() {
    let kernel = require_guest_kernel!();
    let _s = serial();
    let d = tmp();
    let (code, err) = exit_and_stderr(
        &vm_args(
            &kernel,
            d.path(),
            &["--duration", "20m", "--inject", "boot-panic:0"],
        ),
        400,
    );
    eprintln!("{err}");
    assert_eq!(code, Some(2), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains(
            "three guests in a row did not start the suite (boot-panic, boot-panic, boot-panic)"
        ),
        "{err}"
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("report.json")).unwrap())
            .unwrap();
    let guests = r["vm"]["guests"].as_array().unwrap();
    assert_eq!(guests.len(), 3, "{guests:?}");
    for g in guests {
        assert_eq!(g["outcome"], "boot-panic", "{g}");
        assert!(g.get("suite_seconds").is_none(), "{g}");
    }
    // The panic is still a finding of that kernel.
    assert!(
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "panic"),
        "{:?}",
        r["findings"]
    );
}

#[test]
fn a_wedged_guest_is_a_hang_with_the_nmi_output_and_a_fresh_guest_goes_on() {
    let kernel = require_guest_kernel!();
    let _s = serial();
    let d = tmp();
    let r = vm_run(
        &kernel,
        d.path(),
        &[
            "--duration",
            "80s",
            "--inject",
            "hang:8",
            "--hang-timeout",
            "12s",
        ],
    );
    first_guest_ended_and_a_fresh_one_followed(&r, "hang");
    let findings = r["findings"].as_array().unwrap();
    let hang = findings
        .iter()
        .find(|f| f["kind"] == "hang")
        .expect("a hang finding");
    assert!(
        hang["title"]
            .as_str()
            .unwrap()
            .contains("no progress for 12 s")
    );
    // The NMI made the guest print its state; that is the hang's evidence,
    // not a panic finding of its own.
    assert!(hang["excerpt"].as_str().unwrap().contains("NMI"), "{hang}");
    assert!(
        !findings.iter().any(|f| f["kind"] == "panic"),
        "{findings:?}"
    );
}

/// A FreeBSD guest's disks, for real (qemu-img's overlay, the payload and
/// the 2 GiB collect image), on an image that boots nothing: each guest
/// fails to boot, and its disks are gone when it ends, unless
/// `--keep-disks`. Three in a row stop the run (exit 2).
#[test]
fn a_freebsd_guests_disks_are_removed_when_it_ends_unless_kept() {
    if !common::in_tier(common::Tier::Guest) {
        return;
    }
    for (tool, pkg) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("qemu-img", "qemu-utils"),
        ("xorriso", "xorriso"),
    ] {
        if let Err(why) = need_tool(tool, pkg) {
            skip(&why);
            return;
        }
    }
    let _s = serial();
    let d = tmp();
    let image = d.path().join("blank.qcow2");
    let st = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&image)
        .arg("64M")
        .status()
        .unwrap();
    assert!(st.success());
    let binary = d.path().join("ifstress-freebsd");
    std::fs::write(&binary, b"not run: the guest never boots").unwrap();
    for keep in [false, true] {
        let out = d.path().join(format!("out-{keep}"));
        let mut args = vec![
            "vm",
            "run",
            "--guest",
            "freebsd",
            "--image",
            image.to_str().unwrap(),
            "--binary",
            binary.to_str().unwrap(),
            "--suite",
            "vmove",
            "--accel",
            "tcg",
            "--mem",
            "256",
            "--boot-timeout",
            "8s",
            "--duration",
            "10m",
            "--out",
            out.to_str().unwrap(),
        ];
        if keep {
            args.push("--keep-disks");
        }
        let (code, err) = exit_and_stderr(&args, 240);
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.contains("three guests in a row did not start the suite (boot-failure, boot-failure, boot-failure)"),
            "{err}"
        );
        let r = report(&out.join("report.json"));
        assert_eq!(r["vm"]["guests"].as_array().unwrap().len(), 3);
        for g in 1..=3 {
            let dir = out.join(format!("guest-{g}"));
            assert!(dir.join("console.log").exists(), "{}", dir.display());
            for disk in ["root.qcow2", "payload.img", "collect.img"] {
                assert_eq!(
                    dir.join(disk).exists(),
                    keep,
                    "{disk} of guest {g} with --keep-disks {keep}"
                );
            }
        }
    }
}

/// The args of `vm_args` with `--accel tcg` removed: the default, `auto`.
fn with_default_accel(args: Vec<&str>) -> Vec<&str> {
    let i = args.iter().position(|a| *a == "--accel").unwrap();
    let mut a = args;
    a.drain(i..i + 2);
    a
}

fn guests(r: &serde_json::Value) -> Vec<ifstress::report::guests::GuestSummary> {
    serde_json::from_value(r["vm"]["guests"].clone()).unwrap()
}

/// The probe's bytes are `vm/accel-probe.S` as assembled, and under TCG
/// (which runs anywhere) the probe walks every mode to its marker: a KVM
/// probe that stops short is KVM's doing, not the probe's.
#[test]
fn the_accel_probe_is_its_source_and_runs_to_its_marker_under_tcg() {
    if !common::in_tier(common::Tier::Guest) {
        return;
    }
    if let Err(why) = need_tool("qemu-system-x86_64", "qemu-system-x86")
        .and_then(|_| need_tool("as", "binutils"))
        .and_then(|_| need_tool("ld", "binutils"))
    {
        skip(&why);
        return;
    }
    let d = tmp();
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/vm/accel-probe.S");
    let (o, bin) = (d.path().join("probe.o"), d.path().join("probe.bin"));
    let st = std::process::Command::new("as")
        .args(["--64", "-o"])
        .arg(&o)
        .arg(src)
        .status()
        .unwrap();
    assert!(st.success());
    let st = std::process::Command::new("ld")
        .args([
            "-m",
            "elf_x86_64",
            "-e",
            "0",
            "-Ttext=0",
            "--oformat",
            "binary",
            "-o",
        ])
        .arg(&bin)
        .arg(&o)
        .status()
        .unwrap();
    assert!(st.success());
    assert!(
        std::fs::read(&bin).unwrap() == ifstress::vm::accel::firmware(),
        "src/vm/accel.rs's bytes are not vm/accel-probe.S assembled"
    );
    let p = ifstress::vm::accel::probe(
        std::path::Path::new("qemu-system-x86_64"),
        "tcg",
        ifstress::vm::accel::FIRST_BYTE,
        ifstress::vm::accel::REST,
    )
    .unwrap();
    assert!(p.ran(), "{p:?}");
    assert!(p.printed.starts_with("RPL"), "{p:?}");
    eprintln!("TCG probe: {:.2} s", p.elapsed.as_secs_f64());
}

/// What a newcomer runs: `vm run` without `--accel`. `auto` must choose an
/// accelerator that boots the guest: on a host with /dev/kvm and no
/// hardware virtualisation (this project's machines) that is TCG, decided
/// by the probe within seconds, and the report says why.
#[test]
fn vm_run_with_the_default_accelerator_boots_and_says_why() {
    let kernel = require_guest_kernel!();
    let _s = serial();
    let d = tmp();
    let t0 = std::time::Instant::now();
    let args = with_default_accel(vm_args(
        &kernel,
        d.path(),
        &["--duration", "30s", "--guests", "1"],
    ));
    let (code, err) = exit_and_stderr(&args, 300);
    eprintln!("{err}");
    assert!(matches!(code, Some(0) | Some(1)), "{code:?}: {err}");
    let r = report(&d.path().join("report.json"));
    let g = guests(&r);
    assert_eq!(g[0].outcome, "finished", "{g:?}");
    assert!(g[0].ops > 0);
    let why = r["vm"]["accel_why"].as_str().unwrap();
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    let hw = flags
        .lines()
        .find(|l| l.starts_with("flags"))
        .is_some_and(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
    let kvm_dev = std::path::Path::new("/dev/kvm").exists();
    eprintln!(
        "auto chose {} ({why}); /dev/kvm {kvm_dev}, vmx/svm {hw}",
        r["vm"]["accel"]
    );
    if !kvm_dev {
        assert_eq!(r["vm"]["accel"], "tcg");
        assert!(why.contains("no usable /dev/kvm"), "{why}");
    } else if !hw {
        assert_eq!(r["vm"]["accel"], "tcg", "{why}");
        assert!(why.contains("KVM did not run the probe guest"), "{why}");
        assert!(why.contains("no vmx/svm"), "{why}");
    } else {
        // KVM that works: chosen, and the guest above booted on it.
        assert!(why.starts_with("auto:"), "{why}");
    }
    assert!(t0.elapsed() < Duration::from_secs(240));
}

/// A kernel that prints nothing on its console (its console= on a port
/// nobody reads) is a boot failure within --console-timeout, not a run:
/// no suite time, not a trial.
#[test]
fn a_guest_that_prints_nothing_is_a_boot_failure_within_the_bound() {
    let kernel = require_guest_kernel!();
    let _s = serial();
    let d = tmp();
    let t0 = std::time::Instant::now();
    let (code, err) = exit_and_stderr(
        &vm_args(
            &kernel,
            d.path(),
            &[
                "--duration",
                "10m",
                "--guests",
                "1",
                "--console-timeout",
                "10s",
                "--inject",
                "silent:0",
            ],
        ),
        120,
    );
    eprintln!("{err}");
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
    assert_eq!(code, Some(1), "{err}");
    let r = report(&d.path().join("report.json"));
    let g = guests(&r);
    assert_eq!(g[0].outcome, "boot-failure", "{g:?}");
    assert_eq!(g[0].suite_seconds, None);
    let f = &r["findings"][0];
    assert_eq!(f["kind"], "boot-failure");
    assert!(
        f["title"]
            .as_str()
            .unwrap()
            .contains("guest printed nothing on its console in 10 s (qemu (tcg))"),
        "{f}"
    );
    let t = ifstress::trials::of_guests(&g).unwrap();
    assert!(t.trials.is_empty(), "{t:?}");
    assert_eq!(t.exposure_s(), 0.0);
    assert_eq!(t.not_run[0].why, ifstress::trials::NotRun::BootFailure);
}

/// `auto` chose KVM (a stand-in QEMU lets the probe pass under TCG) and
/// KVM then runs nothing (it stands in a guest that never prints): the
/// first guest is a boot failure, the run says once that it falls back,
/// and the next guest boots under TCG.
#[test]
fn auto_falls_back_to_tcg_when_a_kvm_guest_prints_nothing() {
    let kernel = require_guest_kernel!();
    let _s = serial();
    let d = tmp();
    let fake = d.path().join("qemu");
    std::fs::write(
        &fake,
        r#"#!/bin/sh
case " $* " in
  *" -bios "*) # the probe: let it pass, so that auto chooses KVM
    # shellcheck disable=SC2046 # the probe's arguments hold no spaces
    exec qemu-system-x86_64 $(printf '%s\n' "$*" | sed 's/accel=kvm/accel=tcg/; s/-cpu host/-cpu max/') ;;
  *accel=kvm*) exec sleep 600 ;; # a KVM guest that runs nothing
  *) exec qemu-system-x86_64 "$@" ;;
esac
"#,
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = d.path().join("out");
    let mut args = with_default_accel(vm_args(
        &kernel,
        &out,
        &[
            "--duration",
            "50s",
            "--guests",
            "2",
            "--console-timeout",
            "10s",
        ],
    ));
    args.extend(["--qemu", fake.to_str().unwrap()]);
    let (code, err) = exit_and_stderr(&args, 300);
    eprintln!("{err}");
    assert!(matches!(code, Some(0) | Some(1)), "{code:?}: {err}");
    assert_eq!(
        err.matches("TCG from then on").count(),
        1,
        "said once: {err}"
    );
    let r = report(&out.join("report.json"));
    let g = guests(&r);
    assert_eq!(g.len(), 2, "{g:?}");
    assert_eq!(g[0].outcome, "boot-failure", "{g:?}");
    assert_eq!(g[1].outcome, "finished", "{g:?}");
    assert_eq!(r["vm"]["accel"], "tcg");
    assert_eq!(r["vm"]["hypervisor"], "qemu (tcg)");
    let why = r["vm"]["accel_why"].as_str().unwrap();
    assert!(
        why.contains("guest 1 printed nothing on its console"),
        "{why}"
    );
    assert!(
        r["findings"].as_array().unwrap().iter().any(|f| f["title"]
            .as_str()
            .unwrap()
            .contains("printed nothing on its console in 10 s (qemu (kvm))")),
        "{}",
        r["findings"]
    );
}
