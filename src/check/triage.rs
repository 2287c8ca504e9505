//! Console and kernel-log triage: turns what a kernel printed (a serial
//! console capture, `dmesg`, crashinfo's core.txt, /dev/kmsg, or a mix of
//! both kernels' output) into findings a kernel developer recognises: a
//! title in the form the community searches (syzbot's), the function to
//! blame, a signature stable across runs and machines, the call frames and
//! the evidence.
//!
//! The rules are data, one table per system (`linux`, `freebsd`, shaped by
//! `rules`): which line starts each report type, how it is titled, where
//! its culprit is read from and which frames are machinery. This module
//! reads lines as a stream and drives them: a report is open from its start
//! line until another report starts in the same printk context, its line
//! budget is spent, or its context has been silent for long; lines of other
//! contexts (CONFIG_PRINTK_CALLER's `[T123]`) and user-space output between
//! kernel lines stay out of it. The first real report of a log is its
//! primary finding: the panic that follows a report ("Kernel panic - not
//! syncing: Fatal exception", "panic_on_warn set", FreeBSD's "panic: page
//! fault" after "Fatal trap") belongs to it, and only stands alone, titled
//! as a corrupted report, when the report it followed is missing.
//!
//! Memory is bounded by the findings, not the input: lines are read one at
//! a time (each cut at `clean::MAX_LINE`), an open report holds at most
//! `report::MAX_LINES`, and findings are deduplicated by signature as they
//! close (a hash map, so time stays linear in the input).

mod clean;
mod frames;
mod freebsd;
mod linux;
mod report;
mod rules;

use super::finding::Finding;
pub use super::finding::{normalize, signature};
use clean::Ctx;
/// Journal lines shown by `postmortem` get the same cleaning as console lines.
pub(crate) use clean::clean;
pub use clean::strip_prefix;
pub use frames::frame_of;
#[cfg(test)]
use report::EXCERPT_LINES;
use report::Report;
use rules::{Index, Joins};
use std::collections::HashMap;
use std::io::BufRead;
use std::sync::OnceLock;

/// Reports open at once: one per printk context that is in a report.
const MAX_OPEN: usize = 8;
/// Lines of other contexts after which a quiet report is over.
const MAX_IDLE: u32 = 2_000;
/// Bytes of evidence (excerpts and frames) the findings of one scanner
/// keep in all. Past it a new finding keeps its header line and its first
/// frames: a log of a hundred thousand distinct reports stays in memory
/// with every title, signature and culprit, at a bounded size.
const EVIDENCE_BUDGET: usize = 16 << 20;
/// Frames a finding keeps once the budget is spent.
const LEAN_FRAMES: usize = 4;

fn index() -> &'static Index {
    static IX: OnceLock<Index> = OnceLock::new();
    IX.get_or_init(|| Index::new(&[freebsd::QUIET, linux::RULES, freebsd::RULES]))
}

/// Incremental scanner, fed line by line (live, from a file, or both).
#[derive(Debug, Default, Clone)]
pub struct Scanner {
    /// Distinct findings in order of first appearance.
    done: Vec<Finding>,
    /// Signatures are 64-bit hashes in hex: the number is the key.
    by_signature: HashMap<u64, usize>,
    open: Vec<Report>,
    line_no: usize,
    source: String,
    fatal: bool,
    /// A report was seen in this source: a lone follow-up panic is its.
    seen_report: bool,
    /// The system was seen up in this source (a timestamped kernel line, a
    /// program running, a login prompt): a boot banner after it is an
    /// unexpected reboot, one before it the capture's own first boot.
    kernel_output: bool,
    /// Of `EVIDENCE_BUDGET`.
    evidence: usize,
    /// The source is a crash dump's text (crashinfo's core.txt, kgdb's
    /// output): one crash, however often its text repeats.
    dump: Dump,
}

#[derive(Debug, Default, Clone)]
struct Dump {
    on: bool,
    /// Past crashinfo's first section rule: the crash is only repeated.
    after: bool,
    /// The crash's finding, in `done`.
    found: Option<usize>,
    /// Signatures of the reports read before the first section rule: the
    /// dmesg section prints the same message buffer again.
    read: std::collections::HashSet<u64>,
}

/// Kinds a crash dump holds one of: the panic and the trap it followed.
fn crash_kind(rule: &rules::Rule) -> bool {
    matches!(rule.kind, "panic" | "fatal-trap" | "double-fault")
}

impl Scanner {
    /// Name the input, for `first_seen` ("FILE:LINE").
    pub fn source(&mut self, name: &str) {
        self.flush();
        self.source = name.to_string();
        self.line_no = 0;
        self.seen_report = false;
        self.kernel_output = false;
        self.dump = Dump::default();
    }

    /// What follows is a crash dump's text (postmortem's crash files): one
    /// crash, read as `feed_bytes` would read crashinfo's core.txt.
    pub fn crash_dump(&mut self) {
        self.dump.on = true;
        for r in &mut self.open {
            r.pinned |= crash_kind(r.rule);
        }
    }

    /// One line of text (a trailing newline is ignored).
    pub fn feed(&mut self, raw: &str) {
        self.feed_bytes(raw.as_bytes());
    }

    /// One line as read, in any encoding: invalid UTF-8, control characters
    /// and terminal escapes are cleaned first (see `clean::clean`).
    pub fn feed_bytes(&mut self, raw: &[u8]) {
        self.line_no += 1;
        let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        let raw = &raw[..raw.len().min(clean::MAX_LINE)];
        let cleaned = clean::clean(raw);
        let (ctx, line) = clean::split(&cleaned);
        if freebsd::crash_dump_start(line) {
            self.crash_dump();
        }
        if self.dump.on && !self.dump.after && freebsd::crashinfo_section(line) {
            self.dump.after = true;
            let (pinned, keep): (Vec<Report>, Vec<Report>) = std::mem::take(&mut self.open)
                .into_iter()
                .partition(|r| r.pinned);
            self.open = keep;
            for r in pinned {
                self.close(r);
            }
        }
        let start = index()
            .find(line)
            .filter(|(_, r)| r.kind != freebsd::BENIGN);
        for r in &mut self.open {
            r.idle += 1;
        }
        if let Some((at, rule)) = start {
            self.start(ctx, line, at, rule);
        } else {
            self.route(ctx, line);
        }
        // The system was up: the kernel had printed, or a program ran.
        if !self.kernel_output
            && (ctx != Ctx::None || line.contains("executing program") || line.contains(" login: "))
        {
            self.kernel_output = true;
        }
        // Reports that are full or whose context went quiet are over.
        let over = |r: &Report| r.full() || (r.idle > MAX_IDLE && !r.pinned);
        if self.open.iter().any(over) {
            let (over, keep): (Vec<Report>, Vec<Report>) =
                std::mem::take(&mut self.open).into_iter().partition(over);
            self.open = keep;
            for r in over {
                self.close(r);
            }
        }
    }

    /// The open report a line of `ctx` belongs to.
    fn owner(&self, ctx: Ctx) -> Option<usize> {
        self.open.iter().rposition(|r| r.ctx == ctx).or_else(|| {
            matches!(ctx, Ctx::Cpu(_))
                .then(|| self.open.iter().rposition(|r| r.cpu_traceback))
                .flatten()
        })
    }

    fn route(&mut self, ctx: Ctx, line: &str) {
        if let Some(i) = self.owner(ctx) {
            self.open[i].push(line);
            let r = &self.open[i];
            if r.rule.os == rules::Os::Linux && r.len() > 2 && linux::report_end(line) {
                let r = self.open.remove(i);
                self.close(r);
            }
        }
    }

    fn start(&mut self, ctx: Ctx, line: &str, at: usize, rule: &'static rules::Rule) {
        let mine = self.owner(ctx);
        // A symbolised report repeats its header once per inlined frame.
        if let Some(i) = mine.filter(|&i| self.open[i].repeats(rule)) {
            self.open[i].push_head(line);
            return;
        }
        // The machine is going down, whichever report this belongs to.
        self.fatal |= crash_kind(rule);
        if self.dump.on && crash_kind(rule) {
            // A crash dump's text is one crash: its summary panic, the
            // message buffer's trap and panic, kgdb's backtrace; past the
            // first section rule, the same again.
            let after = self.dump.after;
            let same = self
                .open
                .iter()
                .rposition(|r| crash_kind(r.rule) && r.shadow == after && (r.pinned || after));
            if let Some(i) = same {
                let mut r = self.open.remove(i);
                r.take(rule, line, at);
                self.open.push(r);
                return;
            }
        }
        let joins = match rule.joins {
            Joins::Never => None,
            Joins::Any | Joins::Consequence => mine.or_else(|| self.open.len().checked_sub(1)),
            Joins::Kinds(kinds) => mine.filter(|&i| {
                let r = &self.open[i];
                kinds.contains(&r.rule.kind) && !r.joined.contains(&rule.header)
            }),
        };
        if let Some(i) = joins {
            self.open[i].joined.push(rule.header);
            self.open[i].push(line);
            return;
        }
        if rule.joins == Joins::Consequence && self.seen_report {
            return;
        }
        if rule.kind == "reboot" && !self.kernel_output {
            // The first boot of a capture is no finding.
            self.route(ctx, line);
            return;
        }
        // Another report in the same context ends the one open there (not
        // a crash dump's crash: kgdb's backtrace is still to come).
        if let Some(i) = mine.filter(|&i| !self.open[i].pinned) {
            let r = self.open.remove(i);
            self.close(r);
        }
        if self.open.len() >= MAX_OPEN {
            let r = self.open.remove(0);
            self.close(r);
        }
        let first_seen = if self.source.is_empty() {
            format!("line {}", self.line_no)
        } else {
            format!("{}:{}", self.source, self.line_no)
        };
        self.seen_report = true;
        let mut r = Report::new(rule, ctx, line, at, first_seen);
        if self.dump.on && crash_kind(rule) {
            r.pinned = !self.dump.after;
            r.shadow = self.dump.after;
        }
        r.repeat = self.dump.after;
        self.open.push(r);
    }

    fn close(&mut self, r: Report) {
        let f = r.finish();
        if r.shadow
            && let Some(k) = self.dump.found
        {
            self.complete(k, f);
            return;
        }
        let key = u64::from_str_radix(&f.signature, 16).unwrap_or_default();
        if self.dump.on {
            if r.repeat && self.dump.read.contains(&key) {
                return;
            }
            if !r.repeat {
                self.dump.read.insert(key);
            }
        }
        let pinned = r.pinned;
        let at = self.add(f);
        if pinned || r.shadow {
            self.dump.found = Some(at);
        }
    }

    /// The crash of a dump read again in a later section of its text: it
    /// only fills in what the first reading lacked (a function to blame,
    /// when kgdb printed no backtrace). The same crash, so no count.
    fn complete(&mut self, k: usize, f: Finding) {
        let main = &self.done[k];
        if main.guilty_frame.is_some() || f.guilty_frame.is_none() {
            return;
        }
        let key = |f: &Finding| u64::from_str_radix(&f.signature, 16).unwrap_or_default();
        let old = key(main);
        if self.by_signature.contains_key(&key(&f)) {
            return;
        }
        self.by_signature.remove(&old);
        self.by_signature.insert(key(&f), k);
        let main = &mut self.done[k];
        main.kind = f.kind;
        main.title = f.title;
        main.signature = f.signature;
        main.guilty_frame = f.guilty_frame;
        main.frames = f.frames;
        main.corrupted = f.corrupted;
    }

    /// Where `f` is kept: a new finding, or the one of its signature.
    fn add(&mut self, mut f: Finding) -> usize {
        let key = u64::from_str_radix(&f.signature, 16).unwrap_or_else(|_| {
            u64::from_str_radix(&signature(&f.kind, &f.signature), 16).unwrap_or_default()
        });
        match self.by_signature.get(&key) {
            Some(&i) => {
                self.done[i].count += f.count;
                i
            }
            None => {
                let weight = |f: &Finding| {
                    f.excerpt.len() + f.frames.iter().map(|x| x.len() + 24).sum::<usize>()
                };
                if self.evidence + weight(&f) > EVIDENCE_BUDGET {
                    let head = f.excerpt.lines().next().unwrap_or("").len();
                    f.excerpt.truncate(head);
                    f.excerpt.shrink_to_fit();
                    f.frames.truncate(LEAN_FRAMES);
                    f.frames.shrink_to_fit();
                }
                self.evidence += weight(&f);
                self.by_signature.insert(key, self.done.len());
                self.done.push(f);
                self.done.len() - 1
            }
        }
    }

    fn flush(&mut self) {
        for r in std::mem::take(&mut self.open) {
            self.close(r);
        }
    }

    /// Has the machine gone down: a panic, a fatal trap or a double fault?
    pub fn fatal(&self) -> bool {
        self.fatal
    }

    /// Distinct findings so far, the open reports included.
    pub fn count(&self) -> usize {
        self.done.len() + self.open.len()
    }

    /// Titles of the findings after the first `n` (the open reports titled
    /// as they stand).
    pub fn titles_since(&self, n: usize) -> Vec<String> {
        self.done
            .iter()
            .map(|f| f.title.clone())
            .chain(self.open.iter().map(|r| r.finish().title))
            .skip(n)
            .collect()
    }

    /// Findings deduplicated by signature, with counts, in order of first appearance.
    pub fn into_findings(mut self) -> Vec<Finding> {
        self.flush();
        self.done
    }

    /// Read `input` to its end, line by line, as the source `name`: memory
    /// stays bounded whatever the input (a line is cut at `clean::MAX_LINE`
    /// bytes, the rest of it skipped).
    pub fn read<R: BufRead>(&mut self, name: &str, input: R) -> std::io::Result<()> {
        self.source(name);
        self.read_lines(input)
    }

    /// One crash of a crash directory, as the source `name`: savecore's
    /// panic string (info.N's "Panic String:") and crashinfo's core.txt.N,
    /// either of which may be missing, are one finding.
    pub fn read_crash<R: BufRead>(
        &mut self,
        name: &str,
        panic: Option<&str>,
        core: Option<R>,
    ) -> std::io::Result<()> {
        self.source(name);
        self.crash_dump();
        if let Some(p) = panic.map(str::trim).filter(|p| !p.is_empty()) {
            self.feed(&format!("panic: {p}"));
            self.line_no = 0;
        }
        if let Some(r) = core {
            self.read_lines(r)?;
        }
        self.flush();
        Ok(())
    }

    fn read_lines<R: BufRead>(&mut self, mut input: R) -> std::io::Result<()> {
        let mut line: Vec<u8> = Vec::with_capacity(clean::MAX_LINE);
        loop {
            let buf = match input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                if !line.is_empty() {
                    self.feed_bytes(&line);
                }
                return Ok(());
            }
            let (take, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(p) => (p, p + 1),
                None => (buf.len(), buf.len()),
            };
            if line.is_empty() && done > take {
                // The whole line is in the reader's buffer: no copy.
                self.feed_bytes(&buf[..take]);
                input.consume(done);
                continue;
            }
            let room = clean::MAX_LINE.saturating_sub(line.len());
            line.extend_from_slice(&buf[..take.min(room)]);
            let ended = done > take;
            input.consume(done);
            if ended {
                self.feed_bytes(&line);
                line.clear();
            }
        }
    }
}

/// Deduplicate by signature, adding counts, in order of first appearance.
pub fn dedup(all: Vec<Finding>) -> Vec<Finding> {
    let mut s = Scanner::default();
    for f in all {
        s.add(f);
    }
    s.done
}

pub fn scan(text: &str) -> Vec<Finding> {
    let mut s = Scanner::default();
    for l in text.lines() {
        s.feed(l);
    }
    s.into_findings()
}

#[cfg(test)]
mod tests;
