//! Faults, signals and hostile input (issue 17): each test is one way an
//! adversarial user or a sick machine tried to make ifstress lose what it
//! learned, touch what is not its own, or fail without saying why. Numbers
//! in the names are the items.

mod common;

use common::*;
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Spawn ifstress and collect its stderr lines on a channel.
fn spawn_watched(cmd: &mut Command) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    (child, rx)
}

/// `ifstress --suite vmove` for `duration`, reporting to `rep`, stdout
/// discarded.
fn vmove_run(duration: &str, rep: &Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(["--suite", "vmove", "--duration", duration, "--report"])
        .arg(rep)
        .stdout(Stdio::null());
    cmd
}

/// The run's tag, from its start line, within `limit`.
fn tag_of(rx: &std::sync::mpsc::Receiver<String>, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let l = rx.recv_timeout(left).expect("no start line from the run");
        eprintln!("{l}");
        if let Some(t) = l.split(", tag ").nth(1) {
            return t.trim().to_string();
        }
    }
}

// 1 -------------------------------------------------------------------------

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "a Linux host test (namespaces, ip(8)); FreeBSD's are tests/freebsd_e2e.rs"
)]
fn item1_a_failing_worker_keeps_the_runs_report() {
    require_root!();
    let h = host_test();
    let d = tmp();
    let rep = d.path().join("r.json");
    // 64 descriptors: the run starts, but some workers cannot open their
    // sockets. That must be a line in the report, not the report's loss.
    let mut cmd = Command::new(bin());
    cmd.args(["--suite", "all", "--duration", "4s", "--report"])
        .arg(&rep)
        .stdout(Stdio::null());
    // SAFETY: setrlimit between fork and exec touches only the child.
    unsafe {
        cmd.pre_exec(|| {
            let l = libc::rlimit {
                rlim_cur: 64,
                rlim_max: 64,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (mut child, rx) = spawn_watched(&mut cmd);
    let status = wait_bounded(&mut child, Duration::from_secs(120)).expect("run did not end");
    let err: Vec<String> = rx.try_iter().collect();
    let err = err.join("\n");
    let r = report(&rep);
    let errors = r["errors"].as_array().cloned().unwrap_or_default();
    assert!(!errors.is_empty(), "no worker failure in the report: {err}");
    assert!(
        errors[0].as_str().unwrap().starts_with("worker "),
        "{errors:?}"
    );
    assert!(
        err.contains("failed before its first op") || err.contains("failed during"),
        "not said on stderr: {err}"
    );
    // No kernel finding: ifstress's own failure, exit 3, verdict says so.
    if r["findings"].as_array().unwrap().is_empty() {
        assert_eq!(status.code(), Some(3), "{err}");
        assert_eq!(r["verdict"], "error");
    } else {
        assert_eq!(status.code(), Some(1), "{err}");
    }
    h.assert_untouched();
}

// 2 -------------------------------------------------------------------------

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "a Linux host test (namespaces, ip(8)); FreeBSD's are tests/freebsd_e2e.rs"
)]
fn item2_cleanup_leaves_a_live_run_alone() {
    require_root!();
    let h = host_test();
    let d = tmp();
    let rep = d.path().join("r.json");
    let mut cmd = vmove_run("8s", &rep);
    let (mut child, rx) = spawn_watched(&mut cmd);
    let tag = tag_of(&rx, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    let ours = |t: &str| {
        leftover_namespaces()
            .into_iter()
            .filter(|n| n.starts_with(&format!("ifstress-{t}-")))
            .count()
    };
    assert!(ours(&tag) > 0, "the run has no namespaces to spare");
    let o = run(&["cleanup"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        out.contains(&format!("left alone: run {tag} is still running")),
        "{out}"
    );
    assert!(!out.contains(&format!("ifstress-{tag}-")), "removed: {out}");
    assert!(ours(&tag) > 0, "cleanup removed the live run's namespaces");
    let status = wait_bounded(&mut child, Duration::from_secs(90)).expect("run did not end");
    let r = report(&rep);
    assert!(
        r["leftovers"].as_array().unwrap().is_empty(),
        "{:?}",
        r["leftovers"]
    );
    assert!(
        status.code() == Some(0) || !r["findings"].as_array().unwrap().is_empty(),
        "the run was disturbed: {r}"
    );
    // The run is over: its lock went with it.
    assert!(!Path::new(&format!("/var/run/ifstress/{tag}.lock")).exists());
    h.assert_untouched();
}

// 3 and 12 ------------------------------------------------------------------

/// A signal `after` the start: whatever the moment, nothing is left, and a
/// run that had begun writes its report.
fn signal_early(sig: i32, after: Duration) {
    let d = tmp();
    let rep = d.path().join("r.json");
    let mut child = Command::new(bin())
        .args(["--suite", "vmove", "--duration", "20s", "--report"])
        .arg(&rep)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
    let status = wait_bounded(&mut child, Duration::from_secs(90)).expect("no exit after signal");
    assert!(
        leftover_namespaces().is_empty(),
        "signal {sig} at {after:?} left {:?}",
        leftover_namespaces()
    );
    use std::os::unix::process::ExitStatusExt;
    if status.signal().is_none() {
        // The handler was in place: a whole report, marked interrupted.
        let r = report(&rep);
        assert_eq!(r["interrupted"], true, "{r}");
    }
}

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "a Linux host test (namespaces, ip(8)); FreeBSD's are tests/freebsd_e2e.rs"
)]
fn item3_sigint_in_the_first_tenth_of_a_second_leaves_nothing() {
    require_root!();
    let h = host_test();
    for ms in [10, 30, 50, 75, 100] {
        signal_early(libc::SIGINT, Duration::from_millis(ms));
    }
    h.assert_untouched();
}

/// Start the run, send it SIGHUP `after` its start line, and return its
/// report once it has exited on its own (not been killed by the signal).
fn hangup_after_start(cmd: &mut Command, rep: &Path, after: Duration) -> serde_json::Value {
    let (mut child, rx) = spawn_watched(cmd);
    tag_of(&rx, Duration::from_secs(30));
    std::thread::sleep(after);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    let status = wait_bounded(&mut child, Duration::from_secs(90)).expect("no exit after SIGHUP");
    assert!(status.code().is_some(), "killed by the signal: {status:?}");
    report(&rep.to_path_buf())
}

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "a Linux host test (namespaces, ip(8)); FreeBSD's are tests/freebsd_e2e.rs"
)]
fn item12_nohup_still_means_no_hangup() {
    require_root!();
    let h = host_test();
    let d = tmp();
    let rep = d.path().join("r.json");
    let mut cmd = vmove_run("4s", &rep);
    // What nohup(1) does: SIGHUP ignored, inherited across exec.
    // SAFETY: signal(2) between fork and exec touches only the child.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let r = hangup_after_start(&mut cmd, &rep, Duration::from_secs(1));
    assert_eq!(r["interrupted"], false, "a nohup'ed run stopped on SIGHUP");
    h.assert_untouched();
}

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "a Linux host test (namespaces, ip(8)); FreeBSD's are tests/freebsd_e2e.rs"
)]
fn item12_sighup_is_handled_like_sigterm() {
    require_root!();
    let h = host_test();
    let d = tmp();
    let rep = d.path().join("r.json");
    let mut cmd = vmove_run("30s", &rep);
    let r = hangup_after_start(&mut cmd, &rep, Duration::from_secs(2));
    assert_eq!(r["interrupted"], true);
    h.assert_untouched();
}

// 4 and 9 -------------------------------------------------------------------

#[test]
fn item4_weights_that_overflow_are_refused() {
    let d = tmp();
    let s = d.path().join("w.toml");
    std::fs::write(
        &s,
        "name = \"w\"\ndescription = \"d\"\n[topology]\nlinks = [ { kind = \"pair\", count = 1 } ]\n\
         [[loop]]\nname = \"a\"\nworkers = 1\nops = { up-down = 2147483648, mtu = 2147483648 }\n",
    )
    .unwrap();
    let o = run(&["--suite", s.to_str().unwrap(), "--duration", "1s"]);
    assert_one_line_exit_2(&o, "more than 1000000");
}

#[test]
fn item9_a_suite_file_is_read_with_a_bound() {
    let t = Instant::now();
    let o = run(&["--suite", "/dev/zero", "--duration", "1s"]);
    assert_one_line_exit_2(&o, "not a regular file");
    let d = tmp();
    let big = d.path().join("big.toml");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    let o = run(&["--suite", big.to_str().unwrap(), "--duration", "1s"]);
    assert_one_line_exit_2(&o, "larger than a suite can be");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

// 5 -------------------------------------------------------------------------

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "a Linux host test (namespaces, ip(8)); FreeBSD's are tests/freebsd_e2e.rs"
)]
fn item5_a_failing_journal_is_said_at_once_and_noted() {
    require_root!();
    let h = host_test();
    let d = tmp();
    let j = d.path().join("j");
    std::fs::create_dir(&j).unwrap();
    // Worker 0's journal file behaves like a full disk.
    std::os::unix::fs::symlink("/dev/full", j.join("worker-0.log")).unwrap();
    let rep = d.path().join("r.json");
    let o = Command::new(bin())
        .args(["--suite", "vmove", "--duration", "3s", "--journal"])
        .arg(&j)
        .arg("--report")
        .arg(&rep)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(
        err.contains("journal at +") && err.contains("worker-0.log"),
        "{err}"
    );
    let r = report(&rep);
    let notes: Vec<&str> = r["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .filter(|n| n.contains("worker-0.log"))
        .collect();
    assert_eq!(notes.len(), 1, "{r}");
    assert!(notes[0].contains("lost"), "{notes:?}");
    // The other workers' journals went on.
    assert!(std::fs::metadata(j.join("worker-1.log")).unwrap().len() > 0);
    h.assert_untouched();
}

// 6 -------------------------------------------------------------------------

#[test]
fn item6_postmortem_refuses_a_missing_crash_directory() {
    let o = run(&["postmortem", "--crash", "/nonexistent/crash"]);
    assert_one_line_exit_2(&o, "--crash /nonexistent/crash: no such directory");
}

#[test]
fn item6_postmortem_shows_invalid_bytes_and_skips_fifos() {
    let d = tmp();
    let j = d.path().join("j");
    std::fs::create_dir(&j).unwrap();
    std::fs::write(j.join("run.txt"), "suite = vmove\nplatform = linux\n").unwrap();
    std::fs::write(j.join("worker-0.log"), b"1 w0 #1 mtu isa0 h0 ok 2us\n\xff").unwrap();
    nix::unistd::mkfifo(&j.join("worker-1.log"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let crash = d.path().join("crash");
    std::fs::create_dir(&crash).unwrap();
    let rep = d.path().join("r.json");
    let mut child = Command::new(bin())
        .args(["postmortem", "--journal"])
        .arg(&j)
        .arg("--crash")
        .arg(&crash)
        .arg("--report")
        .arg(&rep)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status =
        wait_bounded(&mut child, Duration::from_secs(20)).expect("postmortem hung on a FIFO");
    assert_eq!(status.code(), Some(0));
    let r = report(&rep);
    let w0: Vec<&str> = r["last_ops"]["worker 0"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    assert_eq!(w0, ["1 w0 #1 mtu isa0 h0 ok 2us", "\u{fffd}"]);
}

// 7 -------------------------------------------------------------------------

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "a Linux host test (namespaces, ip(8)); FreeBSD's are tests/freebsd_e2e.rs"
)]
fn item7_a_closed_stdout_does_not_cost_the_report() {
    require_root!();
    let h = host_test();
    let d = tmp();
    let rep = d.path().join("r.json");
    let mut child = Command::new(bin())
        .args(["--suite", "vmove", "--duration", "2s", "--report"])
        .arg(&rep)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `| true`: the reader is gone before ifstress prints its table.
    drop(child.stdout.take());
    let status = wait_bounded(&mut child, Duration::from_secs(90)).expect("run did not end");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        !err.contains("internal error") && !err.contains("Broken pipe"),
        "{err}"
    );
    assert!(
        matches!(status.code(), Some(0) | Some(1)),
        "{status:?}: {err}"
    );
    report(&rep);
    h.assert_untouched();
}

// 8 -------------------------------------------------------------------------

#[test]
fn item8_a_guest_image_that_is_not_a_kernel_is_bad_input() {
    let d = tmp();
    let k = d.path().join("vmlinuz");
    std::fs::write(&k, "#!/bin/sh\necho not a kernel\n").unwrap();
    let out = d.path().join("out");
    let o = run(&[
        "vm",
        "run",
        "--guest",
        "linux",
        "--image",
        k.to_str().unwrap(),
        "--suite",
        "vmove",
        "--duration",
        "1m",
        "--accel",
        "tcg",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_one_line_exit_2(&o, "not a Linux kernel image");
    assert!(!out.exists(), "the out directory was made before the check");
}

// 10 ------------------------------------------------------------------------

#[test]
fn item10_argument_problems_are_usage_errors_before_the_run() {
    let d = tmp();
    let file = d.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let f = file.to_str().unwrap();
    let t = Instant::now();
    assert_one_line_exit_2(
        &run(&["--suite", "vmove", "--duration", "10m", "--journal", f]),
        "exists and is not a directory",
    );
    let jd = d.path().join("j");
    assert_one_line_exit_2(
        &run(&[
            "--suite",
            "vmove",
            "--duration",
            "10m",
            "--journal",
            jd.to_str().unwrap(),
            "--journal-port",
            "/nonexistent/port",
        ]),
        "--journal-port /nonexistent/port",
    );
    assert_one_line_exit_2(
        &run(&[
            "--suite",
            "vmove",
            "--duration",
            "10m",
            "--report",
            "/nonexistent/r.json",
        ]),
        "does not exist",
    );
    // Each was refused at once, not after a ten-minute run.
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
}

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "a Linux host test (namespaces, ip(8)); FreeBSD's are tests/freebsd_e2e.rs"
)]
fn item10_a_report_on_a_read_only_mount_is_refused_before_the_run() {
    require_root!();
    let t = Instant::now();
    let Some(o) = run_reporting_to_a_private_tmpfs("ro", "10m") else {
        return;
    };
    assert_one_line_exit_2(&o, "is not writable");
    assert!(t.elapsed() < Duration::from_secs(20));
}

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "a Linux host test (namespaces, ip(8)); FreeBSD's are tests/freebsd_e2e.rs"
)]
fn item10_root_without_capabilities_is_told_so() {
    require_root!();
    if Command::new("capsh").arg("--help").output().is_err() {
        skip("capsh(1) missing (libcap2-bin)");
        return;
    }
    // Alone on the machine: the namespace check below is machine-wide.
    let h = host_test();
    let o = Command::new("capsh")
        .args([
            "--drop=cap_net_admin",
            "--",
            "-c",
            &format!("exec {} --suite vmove --duration 10m", bin()),
        ])
        .output()
        .unwrap();
    assert_one_line_exit_2(&o, "CAP_NET_ADMIN");
    h.assert_untouched();
}

#[test]
fn item10_freebsd_guests_without_qemu_img_are_refused_before_booting() {
    let d = tmp();
    // A raw disk as far as its boot sector goes.
    let img = d.path().join("disk.raw");
    let mut head = vec![0u8; 4096];
    head[510] = 0x55;
    head[511] = 0xaa;
    std::fs::write(&img, &head).unwrap();
    if !common::in_tier(common::Tier::Guest) {
        return;
    }
    // A PATH with QEMU but no qemu-img.
    let bin_dir = d.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    let Some(qemu) = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("qemu-system-x86_64"))
            .find(|q| q.exists())
    }) else {
        skip("qemu-system-x86_64 missing (CI installs qemu-system-x86)");
        return;
    };
    std::os::unix::fs::symlink(qemu, bin_dir.join("qemu-system-x86_64")).unwrap();
    let out = d.path().join("out");
    let o = Command::new(bin())
        .env("PATH", &bin_dir)
        .args([
            "vm",
            "run",
            "--guest",
            "freebsd",
            "--hypervisor",
            "qemu",
            "--image",
        ])
        .arg(&img)
        .args([
            "--suite",
            "vmove",
            "--duration",
            "1m",
            "--accel",
            "tcg",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_one_line_exit_2(&o, "qemu-img is not in PATH");
    assert!(!out.exists());
}

// 11 ------------------------------------------------------------------------

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "a Linux host test (namespaces, ip(8)); FreeBSD's are tests/freebsd_e2e.rs"
)]
fn item11_a_userspace_warning_in_kmsg_is_not_a_kernel_finding() {
    require_root!();
    let h = host_test();
    let d = tmp();
    let rep = d.path().join("r.json");
    let mut cmd = vmove_run("5s", &rep);
    let (mut child, rx) = spawn_watched(&mut cmd);
    tag_of(&rx, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(1));
    // What a daemon logging through /dev/kmsg looks like: the kernel gives
    // it facility LOG_USER whatever priority it claims.
    let mut k = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/kmsg")
        .unwrap();
    k.write_all(
        b"<4>WARNING: CPU: 0 PID: 1 at net/core/dev.c:1 ifstress_adversarial_test+0x1/0x2\n",
    )
    .unwrap();
    let _ = wait_bounded(&mut child, Duration::from_secs(90)).expect("run did not end");
    let r = report(&rep);
    let from_us: Vec<_> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f.to_string().contains("ifstress_adversarial_test"))
        .collect();
    assert!(
        from_us.is_empty(),
        "a userspace line became a finding: {from_us:?}"
    );
    h.assert_untouched();
}

// 12 ------------------------------------------------------------------------

#[test]
fn item12_show_without_a_suite_names_what_is_missing() {
    let o = run(&["show"]);
    assert_one_line_exit_2(&o, "<SUITE>");
}

#[test]
fn item12_a_missing_suite_file_says_the_os_error_once() {
    let o = run(&["--suite", "/nonexistent/x.toml", "--duration", "1s"]);
    assert_one_line_exit_2(&o, "No such file");
    assert_eq!(
        stderr(&o).matches("No such file").count(),
        1,
        "{}",
        stderr(&o)
    );
}

#[test]
fn item12_rust_version_is_declared_and_the_readme_agrees() {
    let cargo =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let v = cargo
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|r| r.strip_suffix('"'))
        .expect("Cargo.toml declares rust-version");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains(&format!("Rust {v} or newer")),
        "README disagrees with {v}"
    );
    // hdrhistogram 7.6 declares 1.88: ours may not be lower.
    let parts: Vec<u32> = v.split('.').map(|p| p.parse().unwrap()).collect();
    assert!(parts[0] > 1 || parts[1] >= 88, "{v}");
}
