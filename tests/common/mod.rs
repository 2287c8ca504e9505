//! Helpers for tests that run the real binary against the real kernel.
#![allow(dead_code)]

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The binary under test: this tree's, or `IFSTRESS_TEST_BIN` (to show
/// that a new test fails on an older build).
pub fn bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("IFSTRESS_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ifstress").into())
    })
}

pub fn is_root() -> bool {
    // SAFETY: no arguments.
    unsafe { libc::geteuid() == 0 }
}

#[allow(unused_imports)]
pub use ifstress::testutil::{Tier, in_tier, skip};

/// Tests that create kernel objects are the host tier, and need root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !common::in_tier(common::Tier::Host) {
            return;
        }
        if !common::is_root() {
            common::skip("not root; this test creates namespaces and interfaces");
            return;
        }
    };
}

/// One kernel-touching test at a time, across test processes (nextest runs
/// each test in its own process): each snapshots the host around itself.
pub struct Serial(std::fs::File);

pub fn serial() -> Serial {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("ifstress-e2e.lock"))
        .unwrap();
    // SAFETY: valid descriptor; blocks until the lock is ours.
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
    Serial(f)
}

/// What the machine had of its own before a run: it must be identical after.
pub fn host_state() -> String {
    let mut s = String::new();
    for args in [
        &["-o", "link", "show"][..],
        &["-o", "addr", "show"],
        &["route", "show", "table", "all"],
        &["-6", "route", "show", "table", "all"],
        &["rule", "show"],
        &["netns", "list"],
    ] {
        let o = Command::new("ip")
            .args(args)
            .output()
            .expect("ip(8) is needed for host snapshots");
        s.push_str(&format!(
            "$ ip {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&o.stdout)
        ));
    }
    // Link state flaps and counters are not ours to compare; names, flags
    // and addresses are.
    s.lines()
        .filter(|l| !l.contains("lifetime") && !l.contains("valid_lft"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub fn run(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Wait for a child with a bound; kill it if the bound passes.
pub fn wait_bounded(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

pub fn leftover_namespaces() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("ifstress-"))
                .collect()
        })
        .unwrap_or_default()
}

pub fn report(path: &PathBuf) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("report written"))
        .expect("report is JSON")
}

/// Run the binary with `args`, wait (up to `within`) for a stderr line that
/// contains `cue`, let `after` pass, send one SIGINT, and wait (up to 60 s)
/// for it to exit. Returns the exit code and stdout; stderr is echoed.
pub fn interrupt_at(
    args: &[&str],
    cue: &str,
    within: Duration,
    after: Duration,
) -> (Option<i32>, String) {
    use std::io::BufRead;
    use std::process::Stdio;
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(l) = rx.recv_timeout(left) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no stderr line with {cue:?} within {within:?}");
        };
        eprintln!("{l}");
        if l.contains(cue) {
            break;
        }
    }
    std::thread::sleep(after);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = wait_bounded(&mut child, Duration::from_secs(60))
        .expect("did not exit within 60 s of SIGINT");
    while let Ok(l) = rx.try_recv() {
        eprintln!("{l}");
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    (status.code(), out)
}

/// The frame of a test that touches the kernel: one such test at a time
/// (across test processes), the machine's own links, addresses, routes and
/// namespaces snapshotted at the start and compared by `assert_untouched`.
pub struct HostTest {
    _serial: Serial,
    before: String,
}

pub fn host_test() -> HostTest {
    let s = serial();
    HostTest {
        _serial: s,
        before: host_state(),
    }
}

impl HostTest {
    /// No namespace of a run is left, and the host is as it was.
    pub fn assert_untouched(&self) {
        assert_host_untouched(&self.before);
    }
}

/// ifstress with `args`, its output discarded.
pub fn spawn_quiet(args: &[&str]) -> std::process::Child {
    Command::new(bin())
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Send `sig` to a child of this test.
pub fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid; no memory involved.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// Nothing of the run is left, and the host is as `before` found it.
pub fn assert_host_untouched(before: &str) {
    assert!(
        leftover_namespaces().is_empty(),
        "{:?}",
        leftover_namespaces()
    );
    assert_eq!(before, host_state());
}

/// `Err` saying how to install `tool` when it does not run here.
pub fn need_tool(tool: &str, package: &str) -> Result<(), String> {
    match Command::new(tool).arg("--version").output() {
        Ok(_) => Ok(()),
        Err(_) => Err(format!("{tool} is not installed (apt install {package})")),
    }
}

/// The guest kernels in /boot (`vmlinuz-*`), in name order.
pub fn boot_kernels() -> Result<Vec<PathBuf>, String> {
    let mut k: Vec<PathBuf> = std::fs::read_dir("/boot")
        .map_err(|e| format!("/boot: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .collect();
    k.sort();
    if k.is_empty() {
        return Err("no /boot/vmlinuz-* (apt install linux-image-amd64)".into());
    }
    Ok(k)
}

/// Bad input, said as it must be: exit 2, one line on stderr naming
/// `needle`, no panic.
pub fn assert_one_line_exit_2(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.contains(needle), "`{needle}` not in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// `ifstress --suite vmove --duration DURATION --report DIR/r.json` with DIR
/// a tmpfs mounted with `options` in a private mount namespace (the host's
/// mounts are not touched), or `None` (said) where unshare(1) is missing.
pub fn run_reporting_to_a_private_tmpfs(options: &str, duration: &str) -> Option<Output> {
    if Command::new("unshare").arg("--version").output().is_err() {
        skip("unshare(1) missing (util-linux)");
        return None;
    }
    let d = tmp();
    let script = format!(
        "set -e; mount -t tmpfs -o {options} none '{0}'; \
         exec {1} --suite vmove --duration {duration} --report '{0}/r.json'",
        d.path().display(),
        bin()
    );
    Some(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .output()
            .unwrap(),
    )
}
