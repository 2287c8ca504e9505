//! `ifstress postmortem`: after a crash and reboot, what happened. Reads the
//! run's journal (the last ops of every worker, flushed to disk twice a
//! second) and what the kernel left behind (FreeBSD's /var/crash: core.txt.N
//! from crashinfo(8) and info.N from savecore(8); Linux's pstore), and writes
//! the usual report with the crash as a finding and the last ops attached.

use crate::check::{Finding, known, triage::Scanner};
use crate::report::Report;
use anyhow::Context;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How many of each worker's last ops to attach.
pub const LAST_OPS: usize = 20;

/// The default places a crash is found on this system.
pub fn default_crash_dir() -> PathBuf {
    if cfg!(target_os = "freebsd") {
        "/var/crash".into()
    } else {
        "/sys/fs/pstore".into()
    }
}

/// Bytes read from the end of a worker's journal file: far more than
/// LAST_OPS lines (about 80 bytes each), and a bound however large the file
/// grew.
const TAIL_BYTES: u64 = 64 << 10;
/// Largest `run.txt` read: a header is a dozen short lines.
const HEADER_BYTES: u64 = 64 << 10;

/// A regular file (not a FIFO, device or directory): only those are read,
/// so that nothing in a crash or journal directory can block the reader.
fn regular(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file())
}

/// The last `max` bytes of a file, each line cleaned as triage cleans
/// console lines: invalid UTF-8, control characters and terminal escapes
/// (a journal may hold anything a disk returned after a crash) each shown
/// as one U+FFFD, so printing a report cannot drive the terminal.
fn tail(p: &Path, max: u64) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let (mut f, m) = crate::bounded::open_regular(p)?;
    let len = m.len();
    let from = len.saturating_sub(max);
    f.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::with_capacity((len - from) as usize);
    f.take(max).read_to_end(&mut buf)?;
    // A cut first line is not an op: drop it.
    let start = if from > 0 {
        buf.iter()
            .position(|&b| b == b'\n')
            .map_or(buf.len(), |i| i + 1)
    } else {
        0
    };
    let mut out = String::with_capacity(buf.len() - start);
    for l in buf[start..].split(|&b| b == b'\n') {
        out.push_str(&crate::check::triage::clean(l));
        out.push('\n');
    }
    out.pop();
    Ok(out)
}

/// `run.txt` of a journal: `key = value` lines.
pub fn journal_header(dir: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let path = dir.join("run.txt");
    let not_journal =
        |why: String| crate::error::UsageError(format!("{}: not a journal ({why})", dir.display()));
    if !dir.is_dir() {
        return Err(not_journal("no such directory".into()).into());
    }
    if !regular(&path) {
        return Err(not_journal("no regular run.txt".into()).into());
    }
    let t = tail(&path, HEADER_BYTES).map_err(|e| not_journal(e.to_string()))?;
    Ok(t.lines()
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

/// The last `n` ops of each worker, oldest first, across the rotated file.
/// Reads only the files' tails, so memory stays bounded by `n`.
pub fn last_ops(dir: &Path, n: usize) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = e?.file_name().to_string_lossy().into_owned();
        let Some(w) = name
            .strip_prefix("worker-")
            .and_then(|r| r.strip_suffix(".log"))
        else {
            continue;
        };
        let mut lines: Vec<String> = Vec::new();
        // Newest file first; the rotated one only when the newest is short.
        for f in [format!("worker-{w}.log"), format!("worker-{w}.log.1")] {
            let p = dir.join(f);
            if lines.len() >= n || !regular(&p) {
                continue;
            }
            let t = tail(&p, TAIL_BYTES).with_context(|| format!("reading {}", p.display()))?;
            let mut older: Vec<String> = t.lines().map(str::to_string).collect();
            older.append(&mut lines);
            lines = older;
        }
        let skip = lines.len().saturating_sub(n);
        out.insert(format!("worker {w}"), lines.split_off(skip));
    }
    Ok(out)
}

/// What a crash directory holds: FreeBSD's crashes, by dump number
/// (savecore's info.N, crashinfo's core.txt.N, either may be missing), and
/// other crash texts (Linux pstore's dmesg-*, any *.log). Regular files only.
#[derive(Debug, Default)]
struct CrashFiles {
    dumps: BTreeMap<u64, (Option<PathBuf>, Option<PathBuf>)>,
    texts: Vec<PathBuf>,
}

impl CrashFiles {
    fn is_empty(&self) -> bool {
        self.dumps.is_empty() && self.texts.is_empty()
    }
}

fn crash_files(dir: &Path) -> CrashFiles {
    let mut out = CrashFiles::default();
    let Ok(d) = std::fs::read_dir(dir) else {
        return out;
    };
    for p in d.filter_map(|e| e.ok().map(|e| e.path())) {
        let n = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The name first: a vmcore is large and its stat not needed.
        let number = |prefix: &str| n.strip_prefix(prefix).and_then(|k| k.parse::<u64>().ok());
        if let Some(k) = number("info.") {
            if regular(&p) {
                out.dumps.entry(k).or_default().0 = Some(p);
            }
        } else if let Some(k) = number("core.txt.") {
            if regular(&p) {
                out.dumps.entry(k).or_default().1 = Some(p);
            }
        } else if (n.starts_with("dmesg-") || n.ends_with(".log")) && regular(&p) {
            out.texts.push(p);
        }
    }
    out.texts.sort();
    out
}

/// savecore's info.N: "  Panic String: page fault" (sbin/savecore/savecore.c
/// printheader, `{P:  }{Lwc:Panic String}{:panic_string/%s}`), the line
/// crashinfo.sh turns into core.txt's "panic: ..." summary.
fn panic_string(info: &Path) -> std::io::Result<Option<String>> {
    let t = tail(info, HEADER_BYTES)?;
    Ok(t.lines()
        .find_map(|l| l.trim_start().strip_prefix("Panic String:"))
        .map(|p| p.trim().to_string()))
}

/// `crash_explicit`: the user named the crash directory, so its absence is
/// their mistake; the default one is simply absent on a machine that never
/// crashed.
pub fn run(journal: Option<&Path>, crash: &Path, crash_explicit: bool) -> anyhow::Result<Report> {
    if crash_explicit && !crash.is_dir() {
        return Err(crate::error::UsageError(format!(
            "--crash {}: no such directory",
            crash.display()
        ))
        .into());
    }
    let header = match journal {
        Some(j) => journal_header(j)?,
        None => BTreeMap::new(),
    };
    let mut s = Scanner::default();
    let files = crash_files(crash);
    // Streamed: memory bounded by the findings, not by the file.
    let open = |f: &Path| {
        crate::bounded::open_regular(f)
            .map(|(h, _)| std::io::BufReader::with_capacity(256 << 10, h))
    };
    for (info, core) in files.dumps.values() {
        let panic = match info {
            Some(i) => panic_string(i).with_context(|| format!("reading {}", i.display()))?,
            None => None,
        };
        let name = core
            .as_ref()
            .or(info.as_ref())
            .map_or_else(String::new, |p| p.display().to_string());
        let reader = core.as_deref().map(open).transpose();
        reader
            .and_then(|r| s.read_crash(&name, panic.as_deref(), r))
            .with_context(|| format!("reading {name}"))?;
    }
    for f in &files.texts {
        open(f)
            .and_then(|r| s.read(&f.display().to_string(), r))
            .with_context(|| format!("reading {}", f.display()))?;
    }
    let mut findings: Vec<Finding> = s.into_findings();
    // The kernel that crashed is the one the journal's run ran on (a
    // reboot into another kernel is the user's to say; the header is the
    // best record there is).
    let kernel = known::Kernel {
        os: header.get("platform").map(String::as_str),
        osreldate: header.get("kernel_version").and_then(|v| v.parse().ok()),
    };
    known::annotate(&mut findings, &known::load(), kernel);
    let get = |k: &str| header.get(k).cloned().unwrap_or_default();
    let mut r = Report::empty();
    r.suite = get("suite");
    r.platform = get("platform");
    r.kernel = get("kernel");
    r.seed = get("seed").parse().unwrap_or(0);
    r.tag = get("tag");
    r.interrupted = true;
    r.findings = findings;
    if files.is_empty() {
        r.notes.push(format!(
            "no crash files (core.txt.N, info.N, dmesg-*) in {}",
            crash.display()
        ));
    }
    if let Some(j) = journal {
        r.last_ops = last_ops(j, LAST_OPS)?;
    }
    r.finish();
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("run.txt"),
            "suite = vmove\nplatform = linux\n",
        )
        .unwrap();
        d
    }

    #[test]
    fn invalid_bytes_are_shown_not_dropped() {
        let d = journal_dir();
        std::fs::write(
            d.path().join("worker-0.log"),
            b"1 w0 #1 move isa0 h0 ok 3us\n2 w0 #2 mtu isa0 h0 ok 2us\n\xff",
        )
        .unwrap();
        let ops = last_ops(d.path(), 20).unwrap();
        let w = &ops["worker 0"];
        assert_eq!(w.len(), 3, "{w:?}");
        assert_eq!(w[1], "2 w0 #2 mtu isa0 h0 ok 2us");
        assert_eq!(w[2], "\u{fffd}");
    }

    #[test]
    fn only_the_tail_is_read_and_rotation_is_followed() {
        let d = journal_dir();
        let mut big = String::new();
        for i in 0..20_000 {
            big.push_str(&format!("{i} w1 #{i} up-down isa1 h0 ok 1us\n"));
        }
        std::fs::write(d.path().join("worker-1.log.1"), &big).unwrap();
        std::fs::write(
            d.path().join("worker-1.log"),
            "20000 w1 #20000 mtu isa1 h0 ok 1us\n",
        )
        .unwrap();
        let ops = last_ops(d.path(), 5).unwrap();
        let w = &ops["worker 1"];
        assert_eq!(w.len(), 5);
        assert!(w[0].starts_with("19996 "), "{w:?}");
        assert!(w[4].starts_with("20000 "), "{w:?}");
    }

    #[test]
    fn a_fifo_does_not_hang_the_reader() {
        let d = journal_dir();
        let fifo = d.path().join("worker-2.log");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let crash = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(
            &crash.path().join("dmesg-1"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (j, c) = (d.path().to_path_buf(), crash.path().to_path_buf());
        std::thread::spawn(move || {
            let _ = tx.send(run(Some(&j), &c, true).map(|r| r.last_ops.len()));
        });
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("postmortem blocked on a FIFO");
        assert_eq!(got.unwrap(), 1, "the FIFO is listed with no ops");
    }

    /// A core.txt in crashinfo.sh's layout (its echo lines, the summary
    /// panic from info.N, kgdb's banner, unread message buffer and `bt`, then
    /// the sections that repeat the message buffer). Synthetic: the layout
    /// is usr.sbin/crashinfo/crashinfo.sh's and the frame lines gdb's
    /// print_frame form, the crash the if_vmove page fault ifstress hunts.
    /// tests/cli.rs reads the same file through `ifstress triage`.
    pub(crate) const CORE_TXT: &str = include_str!("../tests/data/crashinfo-if_vmove.core.txt");

    #[test]
    fn a_crash_dump_is_one_finding_with_kgdbs_frames_and_infos_panic() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("core.txt.0"), CORE_TXT).unwrap();
        std::fs::write(
            d.path().join("info.0"),
            "Dump header from device: /dev/vtbd0p3\n  Architecture: amd64\n  Panic String: page fault\n  Dump Parity: 1\n",
        )
        .unwrap();
        // A second crash with only savecore's info: its panic string alone.
        std::fs::write(
            d.path().join("info.1"),
            "  Architecture: amd64\n  Panic String: vm_fault_lookup: fault on nofault entry\n",
        )
        .unwrap();
        let r = run(None, d.path(), true).unwrap();
        let titles: Vec<&str> = r.findings.iter().map(|f| f.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Fatal trap N: page fault while in kernel mode in if_vmove",
                "panic: vm_fault_lookup: fault on nofault entry",
            ],
            "{:#?}",
            r.findings
        );
        let f = &r.findings[0];
        assert_eq!(f.guilty_frame.as_deref(), Some("if_vmove"));
        assert_eq!(f.count, 1);
        // kgdb's frames, not ddb's.
        assert_eq!(f.frames.first().map(String::as_str), Some("__curthread"));
        assert!(f.frames.iter().any(|x| x == "ifioctl"), "{:?}", f.frames);
    }

    #[test]
    fn a_named_crash_directory_that_is_missing_is_bad_input() {
        let e = run(None, Path::new("/nonexistent/crash"), true).unwrap_err();
        assert!(
            e.chain().any(|c| c.is::<crate::error::UsageError>()),
            "{e:#}"
        );
        // The default place, absent on a machine that never crashed, is fine.
        let r = run(None, Path::new("/nonexistent/crash"), false).unwrap();
        assert!(r.notes.iter().any(|n| n.contains("no crash files")));
    }

    #[test]
    fn a_missing_journal_is_bad_input() {
        let e = run(
            Some(Path::new("/nonexistent/j")),
            Path::new("/nonexistent"),
            false,
        )
        .unwrap_err();
        assert!(
            e.chain().any(|c| c.is::<crate::error::UsageError>()),
            "{e:#}"
        );
    }

    /// The journal says which kernel the run was on; the crash after the
    /// reboot is keyed by it: a known bug's shape is known only on a kernel
    /// inside the rule's ranges.
    #[test]
    fn the_journals_kernel_version_keys_known_issues() {
        let text = include_str!("check/triage/testdata/freebsd-pr279653-in6-selecthlim.txt");
        let body = text.split_once("\n\n").unwrap().1;
        let crash = tempfile::tempdir().unwrap();
        std::fs::write(crash.path().join("core.txt.0"), body).unwrap();
        let known = |version: Option<i64>| {
            let j = tempfile::tempdir().unwrap();
            let v = version.map_or(String::new(), |v| format!("kernel_version = {v}\n"));
            std::fs::write(
                j.path().join("run.txt"),
                format!("suite = outpath\nplatform = freebsd\n{v}"),
            )
            .unwrap();
            let r = run(Some(j.path()), crash.path(), true).unwrap();
            assert_eq!(
                r.findings[0].guilty_frame.as_deref(),
                Some("in6_selecthlim")
            );
            r.findings[0].known_issue.clone()
        };
        // 14.3-RELEASE: inside PR 279653's ranges.
        assert!(known(Some(1_403_000)).is_some_and(|k| k.starts_with("PR 279653")));
        // A kernel after them, and one whose version the journal lacks: NEW.
        assert_eq!(known(Some(1_600_010)), None);
        assert_eq!(known(None), None);
    }
}
