//! One report while it is read, and the finding it becomes: its backtrace,
//! the function to blame under its rule, its title and signature.

use super::clean::Ctx;
use super::frames::{self, Frame, any_hits};
use super::freebsd;
use super::linux;
use super::rules::{Guilty, Joins, Os, Rule, Seen, Title};
use crate::check::finding::{Finding, normalize, signature};

/// Lines kept as a finding's evidence, and their size in all.
pub(crate) const EXCERPT_LINES: usize = 60;
const EXCERPT_BYTES: usize = 8 * 1024;
/// Lines a report may take: a hung-task report with every CPU's backtrace
/// and every held lock is a few hundred.
pub(crate) const MAX_LINES: usize = 800;
/// Lines a crash dump's report may take (crashinfo's summary, kgdb's
/// banner, the unread message buffer and the backtrace): still a bound.
const CRASH_LINES: usize = 4000;
/// Frames kept on a finding.
const MAX_FRAMES: usize = 64;
/// Titles longer than this were merged with other output.
const MAX_TITLE: usize = 200;

/// A report being read: its lines (prefix-stripped, cleaned) in one buffer.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    pub rule: &'static Rule,
    pub ctx: Ctx,
    /// Linux's hung-task and stall reports dump every CPU ("Sending NMI
    /// from CPU"): lines of CPU contexts belong to the report from then on.
    pub cpu_traceback: bool,
    /// Where the header starts in the first line.
    head_at: usize,
    text: String,
    ends: Vec<u32>,
    pub first_seen: String,
    /// Headers of later start lines this report took in.
    pub joined: Vec<&'static str>,
    /// Lines read since this report last took one.
    pub idle: u32,
    /// Leading lines that are the header (repeated per inlined frame).
    heads: usize,
    /// The line the title is read from: the first, or the trap report a
    /// crash dump's summary panic was followed by.
    head_line: usize,
    /// The crash of a crash dump's text: open until its sections start,
    /// whatever else starts meanwhile, and bounded by `CRASH_LINES`.
    pub pinned: bool,
    /// The crash repeated in a crash dump's later sections (its dmesg): it
    /// only completes the crash already read.
    pub shadow: bool,
    /// Read past a crash dump's first section rule: a report its message
    /// buffer already showed is not counted twice.
    pub repeat: bool,
}

impl Report {
    pub(crate) fn new(
        rule: &'static Rule,
        ctx: Ctx,
        line: &str,
        head_at: usize,
        first_seen: String,
    ) -> Report {
        let mut r = Report {
            rule,
            ctx,
            cpu_traceback: false,
            head_at,
            text: String::with_capacity(4096),
            ends: Vec::with_capacity(64),
            first_seen,
            joined: Vec::new(),
            idle: 0,
            heads: 1,
            head_line: 0,
            pinned: false,
            shadow: false,
            repeat: false,
        };
        r.push(line);
        r
    }

    pub(crate) fn push(&mut self, line: &str) {
        self.idle = 0;
        if line.starts_with("Sending NMI from CPU") || line.starts_with("NMI backtrace for cpu") {
            self.cpu_traceback = true;
        }
        if self.rule.os == Os::FreeBsd
            && self.ends.len() > 1
            && let Some(glue) = freebsd::continues(self.last(), line)
        {
            // A line the console wrapped at its width: one line again.
            self.text.push_str(glue);
            self.text.push_str(line);
            if let Some(e) = self.ends.last_mut() {
                *e = self.text.len() as u32;
            }
            return;
        }
        if self.ends.len() < self.cap() {
            self.text.push_str(line);
            self.ends.push(self.text.len() as u32);
        }
    }

    fn cap(&self) -> usize {
        if self.pinned { CRASH_LINES } else { MAX_LINES }
    }

    fn last(&self) -> &str {
        let n = self.ends.len();
        let from = if n > 1 { self.ends[n - 2] as usize } else { 0 };
        &self.text[from..]
    }

    /// A further report of the same crash in a crash dump's text: its
    /// lines are this one's, and a trap report titles it rather than the
    /// panic the summary printed first.
    pub(crate) fn take(&mut self, rule: &'static Rule, line: &str, at: usize) {
        let trap = matches!(rule.kind, "fatal-trap" | "double-fault");
        if trap && self.rule.kind == "panic" && self.ends.len() < self.cap() {
            self.rule = rule;
            self.head_line = self.ends.len();
            self.head_at = at;
        }
        self.push(line);
    }

    /// Is this a header line again, right after the header lines?
    pub(crate) fn repeats(&self, rule: &'static Rule) -> bool {
        std::ptr::eq(self.rule, rule) && self.heads == self.ends.len()
    }

    pub(crate) fn push_head(&mut self, line: &str) {
        self.push(line);
        self.heads += 1;
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn full(&self) -> bool {
        self.ends.len() >= self.cap()
    }

    fn lines(&self) -> Vec<&str> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&e| {
                let l = &self.text[start..e as usize];
                start = e as usize;
                l
            })
            .collect()
    }

    /// The finding this report is, as it stands.
    pub(crate) fn finish(&self) -> Finding {
        let lines = self.lines();
        let rule = self.rule;
        let own = &lines[self.head_line.min(lines.len() - 1)..];
        let head = own[0].get(self.head_at..).unwrap_or(own[0]);
        let seen = Seen { head, lines: own };
        let (guilty, frames) = blame(rule, head, &lines);
        let base = match rule.title {
            Title::Fixed(t) | Title::In(t) => t.to_string(),
            Title::Line => head.trim().to_string(),
            Title::Custom(f, _) => f(&seen),
        };
        let mut corrupted = None;
        let mut title = match (&guilty, rule.names_function()) {
            (Some(g), true) => format!("{base} in {g}"),
            (None, true) if rule.expects_frame => {
                corrupted = Some("the report holds no frame to blame".to_string());
                format!("{base} (corrupted report)")
            }
            _ => base,
        };
        if matches!(rule.title, Title::Fixed(t) if t.ends_with(": corrupted")) {
            corrupted = Some("the report's header is cut".into());
        }
        if rule.headless {
            corrupted = Some("only the middle of a report is left: its header is lost".into());
            title.push_str(" (corrupted report)");
        }
        if rule.joins == Joins::Consequence {
            corrupted = Some("only the panic that follows a report is left".into());
            title.push_str(" (corrupted report)");
        }
        let title = tidy(&normalize(&title));
        let mut excerpt = String::new();
        for l in own.iter().take(EXCERPT_LINES) {
            if excerpt.len() + l.len() + 1 > EXCERPT_BYTES {
                break;
            }
            excerpt.push_str(l);
            excerpt.push('\n');
        }
        let mut f = Finding::new(rule.kind, title.clone(), excerpt.trim_end().to_string());
        f.signature = signature(rule.kind, &title);
        f.frames = frames;
        f.guilty_frame = guilty;
        f.first_seen = self.first_seen.clone();
        f.corrupted = corrupted;
        f
    }
}

/// One line of text, whitespace collapsed, bounded.
fn tidy(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_TITLE + 4));
    for w in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
        if out.len() > MAX_TITLE {
            let mut cut = MAX_TITLE;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            break;
        }
    }
    out
}

/// A frame's name as titles give it: Linux's syscall entry points are one.
fn shown(rule: &Rule, name: &str) -> String {
    match rule.os {
        Os::Linux => frames::canonical(name).to_string(),
        Os::FreeBsd => name.to_string(),
    }
}

fn skipped(rule: &Rule, name: &str) -> bool {
    any_hits(rule.base, name) || any_hits(rule.skip, name)
}

/// The first frame of `fs` to blame.
fn first(rule: &Rule, fs: &[Frame]) -> Option<String> {
    fs.iter()
        .filter(|f| !f.inline && !skipped(rule, f.name))
        .map(|f| shown(rule, f.name))
        .next()
}

/// Each line of a report parsed once: its frame, and whether it starts a
/// Linux backtrace.
struct Parsed<'a> {
    frames: Vec<Option<Frame<'a>>>,
    starts: Vec<bool>,
}

impl<'a> Parsed<'a> {
    fn new(lines: &[&'a str], os: Os) -> Parsed<'a> {
        Parsed {
            frames: lines.iter().map(|l| frames::parse(l)).collect(),
            starts: lines
                .iter()
                .map(|l| os == Os::Linux && linux::stack_start(l))
                .collect(),
        }
    }

    fn in_range(&self, from: usize, to: usize) -> Vec<Frame<'a>> {
        self.frames[from..to].iter().flatten().copied().collect()
    }

    /// The next stack start at or after `from`.
    fn next_start(&self, from: usize) -> usize {
        self.starts[from..]
            .iter()
            .position(|&s| s)
            .map_or(self.starts.len(), |p| p + from)
    }

    /// Linux: the report's own backtrace: after the first stack start
    /// following the header ("Call Trace:", "Allocated by task" ...) up to
    /// the next one; with no stack start, the frames after the header.
    fn linux_stack(&self) -> Vec<Frame<'a>> {
        let n = self.frames.len();
        let s = self.next_start(1.min(n));
        if s < n {
            self.in_range(s + 1, self.next_start(s + 1))
        } else {
            self.own()
        }
    }

    /// The frames right after the header, up to the first stack start
    /// (KMSAN and KFENCE print the bad access's stack with no heading).
    fn own(&self) -> Vec<Frame<'a>> {
        let from = 1.min(self.frames.len());
        self.in_range(from, self.next_start(from))
    }
}

/// The function to blame and the frames it was chosen from.
fn blame(rule: &Rule, head: &str, lines: &[&str]) -> (Option<String>, Vec<String>) {
    let names = |fs: &[Frame]| -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for f in fs {
            if v.last().is_none_or(|l| l != f.name) {
                v.push(f.name.to_string());
            }
            if v.len() == MAX_FRAMES {
                break;
            }
        }
        v
    };
    let parsed = Parsed::new(lines, rule.os);
    if rule.os == Os::FreeBsd {
        return bsd_blame(rule, head, lines, &parsed, &names);
    }
    let stack = parsed.linux_stack();
    // The register dump of the report itself comes before its backtrace;
    // one inside the backtrace is an interrupted context's.
    let fault = || {
        lines[..parsed.next_start(1.min(lines.len()))]
            .iter()
            .take_while(|l| {
                !l.starts_with("NMI backtrace for cpu") && !l.starts_with("Sending NMI from CPU")
            })
            .find_map(|l| frames::fault_site(l))
            .filter(|f| !skipped(rule, f))
            .map(|f| shown(rule, f))
    };
    let guilty = match rule.guilty {
        Guilty::None => None,
        Guilty::Stack => first(rule, &stack),
        Guilty::FaultThenStack => fault()
            .or_else(|| header_function(rule, head, lines))
            .or_else(|| first(rule, &stack)),
        Guilty::HeaderThenStack => {
            header_function(rule, head, lines).or_else(|| first(rule, &stack))
        }
        Guilty::HeaderThenOwn => {
            header_function(rule, head, lines).or_else(|| first(rule, &parsed.own()))
        }
        Guilty::FirstThenStack => parsed.frames[1..parsed.next_start(1.min(lines.len()))]
            .iter()
            .flatten()
            .find(|f| !f.inline)
            .filter(|f| !skipped(rule, f.name))
            .map(|f| shown(rule, f.name))
            .or_else(|| first(rule, &stack)),
        Guilty::At(phrases, raw) => {
            let mut cursor = 0;
            let mut found = None;
            for p in phrases {
                let Some(i) = lines[cursor.min(lines.len())..]
                    .iter()
                    .position(|l| l.contains(p))
                else {
                    continue;
                };
                let i = cursor + i;
                cursor = i + 1;
                // The lock line follows the phrase; symbolised reports
                // print one per inlined frame, the real one last.
                let at = lines[i..]
                    .iter()
                    .enumerate()
                    .take(6)
                    .find_map(|(k, l)| frames::at_site(l).map(|f| (k, f)));
                if let Some((k, f)) = at {
                    cursor = i + k + 1;
                    if raw || !skipped(rule, f) {
                        found = Some(if raw { f.to_string() } else { shown(rule, f) });
                        break;
                    }
                }
            }
            found
                .or_else(|| {
                    let from = cursor.max(1).min(lines.len());
                    first(rule, &parsed.in_range(from, parsed.next_start(from)))
                })
                .or_else(|| first(rule, &stack))
        }
        Guilty::After(lit) => lines
            .iter()
            .find_map(|l| {
                let i = l.find(lit)?;
                let r = l[i + lit.len()..].trim_start();
                let n = r
                    .bytes()
                    .take_while(|&b| b.is_ascii_alphanumeric() || b == b'_')
                    .count();
                // An address ("INFO: Freed in 0xbbbb...") names nothing.
                (n > 0 && !r.as_bytes()[0].is_ascii_digit()).then(|| r[..n].to_string())
            })
            .or_else(|| first(rule, &stack)),
        Guilty::Stall(dispatch, irq) => {
            let fs = stall_frames(lines, &parsed, &stack, irq);
            let kept: Vec<String> = fs
                .iter()
                .filter(|f| !f.inline && !skipped(rule, f.name))
                .map(|f| shown(rule, f.name))
                .collect();
            let g = stall(&kept, dispatch).or_else(|| kept.first().cloned());
            return (g, names(&fs));
        }
        Guilty::Hang(buckets, waits) => {
            let kept: Vec<String> = stack
                .iter()
                .filter(|f| !f.inline && !skipped(rule, f.name))
                .map(|f| shown(rule, f.name))
                .collect();
            kept.iter()
                .find_map(|f| {
                    buckets
                        .iter()
                        .find(|(w, _)| f.contains(w))
                        .map(|(_, b)| b.to_string())
                })
                .or_else(|| kept.iter().find(|f| !any_hits(waits, f)).cloned())
        }
        Guilty::AfterTrap | Guilty::Panic => first(rule, &stack),
    };
    (guilty, names(&stack))
}

/// The function the header names ("in f+0x..", a WARNING's "f+0x.." at the
/// end). A symbolised report repeats the header once per inlined call
/// ("in read_pnet include/net/net_namespace.h:419 [inline]"): the first of
/// those lines that names a real frame does.
fn header_function(rule: &Rule, head: &str, lines: &[&str]) -> Option<String> {
    let repeats = lines.iter().skip(1).take_while(|l| l.contains(rule.header));
    std::iter::once(head)
        .chain(repeats.copied())
        .find_map(|l| {
            l.split_whitespace()
                .find_map(|w| frames::parse(w).filter(|f| !f.inline))
        })
        .filter(|f| !skipped(rule, f.name))
        .map(|f| shown(rule, f.name))
}

/// A stall's interrupted frames: after the timer interrupt that caught the
/// CPU (its register dump's fault site first), else the fault site and the
/// backtrace.
fn stall_frames<'a>(
    lines: &[&'a str],
    parsed: &Parsed<'a>,
    stack: &[Frame<'a>],
    irq: bool,
) -> Vec<Frame<'a>> {
    // The timer interrupt's entry frame, in the backtrace (not lockdep's
    // "hardirqs last disabled at ... sysvec_apic_timer_interrupt").
    let boundary = (0..lines.len()).filter(|_| irq).find(|&i| {
        let l = lines[i];
        (parsed.frames[i].is_some_and(|f| f.name.contains("apic_timer_interrupt"))
            && !l.contains(" at ("))
            || l.contains("Exception stack")
            || parsed.frames[i].is_some_and(|f| f.name.contains("el1h_64_irq"))
    });
    let rip = |from: usize| {
        lines[from..]
            .iter()
            .position(|l| frames::fault_site(l).is_some())
            .map(|p| p + from)
    };
    let (site, from) = match boundary {
        Some(b) => match rip(b + 1) {
            Some(r) => (frames::fault_site(lines[r]), r + 1),
            None => (None, b + 1),
        },
        None => {
            let mut v: Vec<Frame> = rip(0)
                .and_then(|r| frames::fault_site(lines[r]))
                .map(|name| Frame {
                    name,
                    inline: false,
                })
                .into_iter()
                .collect();
            v.extend_from_slice(stack);
            return v;
        }
    };
    let mut v: Vec<Frame> = site
        .map(|name| Frame {
            name,
            inline: false,
        })
        .into_iter()
        .collect();
    v.extend(parsed.in_range(from, parsed.next_start(from)));
    v
}

/// The frame just above the first dispatcher, innermost first; a cross-CPU
/// call is reported as itself.
fn stall(frames: &[String], dispatch: &[frames::Pat]) -> Option<String> {
    let mut prev = frames.first()?;
    for f in frames {
        if any_hits(dispatch, f) {
            if f.contains("smp_call_function") {
                return Some("smp_call_function".into());
            }
            return Some(prev.clone());
        }
        prev = f;
    }
    None
}

/// The backtraces of a FreeBSD report from line `from` on: runs of frame
/// lines and what may sit between them (`freebsd::filler`), as (first
/// line, end, printed by kgdb).
fn bsd_runs(lines: &[&str], parsed: &Parsed, from: usize) -> Vec<(usize, usize, bool)> {
    let mut runs = Vec::new();
    let mut i = from;
    while i < lines.len() && runs.len() < 32 {
        if parsed.frames[i].is_none() {
            i += 1;
            continue;
        }
        let first = i;
        let (mut end, mut kgdb, mut any_kgdb, mut regs) = (i, false, false, false);
        while i < lines.len() {
            let t = lines[i].trim();
            let frame = parsed.frames[i].is_some();
            if !(frame || freebsd::filler(t, kgdb) || (t.is_empty() && regs)) {
                break;
            }
            if !t.is_empty() {
                let gdb = freebsd::kgdb_line(t);
                kgdb = gdb || (kgdb && !frame);
                any_kgdb |= gdb;
                end = i + 1;
            }
            regs = t.starts_with("sp = 0x");
            i += 1;
        }
        runs.push((first, end, any_kgdb));
    }
    runs
}

fn bsd_blame(
    rule: &Rule,
    head: &str,
    lines: &[&str],
    parsed: &Parsed,
    names: &dyn Fn(&[Frame]) -> Vec<String>,
) -> (Option<String>, Vec<String>) {
    let start = lines
        .iter()
        .position(|l| l.trim_end().ends_with("attempted at:"))
        .map_or(1, |i| i + 1)
        .min(lines.len());
    let runs = bsd_runs(lines, parsed, start);
    // kgdb's backtrace of a dump, when there is one, is the one read: it
    // holds the frames ddb's may lack (a module's functions, inlined ones).
    let Some(&(s, e, _)) = runs.iter().rev().find(|r| r.2).or(runs.first()) else {
        let stopped = matches!(rule.guilty, Guilty::AfterTrap | Guilty::Panic)
            .then(|| lines.iter().find_map(|l| freebsd::stopped_at(l)))
            .flatten()
            .filter(|f| !skipped(rule, f))
            .map(str::to_string);
        return (stopped, Vec::new());
    };
    let all = parsed.in_range(s, e);
    // The faulting code's own frames start after the trap frame.
    let after_trap = (s..e)
        .find(|&i| freebsd::trap_separator(lines[i].trim()))
        .map(|i| parsed.in_range(i + 1, e))
        .filter(|v| !v.is_empty());
    let candidates = match rule.guilty {
        Guilty::AfterTrap | Guilty::Panic => after_trap.as_deref().unwrap_or(&all),
        _ => &all,
    };
    let named = matches!(rule.guilty, Guilty::Panic)
        .then(|| {
            let msg = head.trim_start_matches("panic:").trim_start();
            let n = msg
                .bytes()
                .take_while(|&b| b.is_ascii_alphanumeric() || b == b'_')
                .count();
            let after = &msg[n..];
            (n > 0 && (after.starts_with(':') || after.starts_with("()"))).then(|| &msg[..n])
        })
        .flatten()
        .filter(|m| all.iter().any(|f| f.name == *m) && !skipped(rule, m))
        .map(str::to_string);
    // witness_warn names where the thread may sleep; its caller held the lock.
    let candidates: Vec<Frame> = candidates
        .iter()
        .filter(|f| rule.kind != "witness" || !freebsd::sleeps_in(lines[0], f.name))
        .copied()
        .collect();
    let guilty = match rule.guilty {
        Guilty::None => None,
        _ => named.or_else(|| first(rule, &candidates)),
    };
    (guilty, names(&all))
}
