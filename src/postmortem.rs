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

/// `run.txt` of a journal: `key = value` lines.
pub fn journal_header(dir: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let t = std::fs::read_to_string(dir.join("run.txt"))
        .map_err(|e| crate::error::UsageError(format!("{}: not a journal ({e})", dir.display())))?;
    Ok(t.lines()
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

/// The last `n` ops of each worker, oldest first, across the rotated file.
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
        for f in [format!("worker-{w}.log.1"), format!("worker-{w}.log")] {
            if let Ok(t) = std::fs::read_to_string(dir.join(f)) {
                lines.extend(t.lines().map(str::to_string));
            }
        }
        let skip = lines.len().saturating_sub(n);
        out.insert(format!("worker {w}"), lines.split_off(skip));
    }
    Ok(out)
}

/// Crash texts: core.txt.N and info.N (FreeBSD), dmesg-* (Linux pstore),
/// and any *.txt or console log given directly.
fn crash_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let n = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    n.starts_with("core.txt.")
                        || n.starts_with("info.")
                        || n.starts_with("dmesg-")
                        || n.ends_with(".log")
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn run(journal: Option<&Path>, crash: &Path) -> anyhow::Result<Report> {
    let header = match journal {
        Some(j) => journal_header(j)?,
        None => BTreeMap::new(),
    };
    let mut s = Scanner::default();
    let files = crash_files(crash);
    for f in &files {
        let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        s.source(&f.display().to_string());
        for line in String::from_utf8_lossy(&bytes).lines() {
            s.feed(line);
        }
    }
    let mut findings: Vec<Finding> = s.into_findings();
    let os = header.get("platform").map(String::as_str);
    known::annotate(&mut findings, &known::load(), os);
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
