//! The shape of a triage rule, shared by the Linux and FreeBSD rule sets:
//! the line that starts a report, how the report is titled, where the
//! function to blame is read from, and which frames are machinery. The
//! tables themselves live in `linux` and `freebsd`; this module also finds
//! which rule, if any, a line starts.

use super::frames::Pat;

/// How a finding is titled.
#[derive(Clone, Copy)]
pub(crate) enum Title {
    /// This text; no function.
    Fixed(&'static str),
    /// This text and " in F".
    In(&'static str),
    /// The line from the header on, normalised, and " in F" when known.
    Line,
    /// Computed from the report; " in F" follows when the flag says so.
    Custom(fn(&Seen) -> String, bool),
}

/// What a title function sees: the first line from the header on, and the
/// report's lines (the first included).
pub(crate) struct Seen<'a> {
    pub head: &'a str,
    pub lines: &'a [&'a str],
}

/// Where the function to blame comes from.
#[derive(Clone, Copy)]
pub(crate) enum Guilty {
    /// The report names none.
    None,
    /// The first frame of the report's own backtrace that is not machinery.
    Stack,
    /// The register dump's fault site (RIP, pc), then the backtrace.
    FaultThenStack,
    /// The function the header line names ("in foo+0x..", a WARNING's
    /// "foo+0x.." at the end), then the fault site, then the backtrace.
    HeaderThenStack,
    /// As `HeaderThenStack`, but the fallback is the stack printed right
    /// after the header (KMSAN's), not the one after "Call Trace:".
    HeaderThenOwn,
    /// The first frame line after the header (lockdep prints the lock's
    /// user there), then the backtrace.
    FirstThenStack,
    /// The first "at: f" line after each phrase in turn; then the frames
    /// after the last line looked at (lockdep's dependency chain, where the
    /// other order was taken); then the backtrace. With the flag, the "at:"
    /// function counts as printed, machinery or not (lockdep names the
    /// lock's user there, and that is what the report is about).
    At(&'static [&'static str], bool),
    /// A stall: the interrupted stack's frames up to the first dispatcher
    /// (syscall entry, workqueue, timer, socket op ...): the frame just
    /// above it names the work that looped. With the flag, the stack is
    /// the one the timer interrupt caught (RCU's self-detected stalls print
    /// the interrupt's own frames first); without, the fault site and the
    /// backtrace.
    Stall(&'static [Pat], bool),
    /// A hung task: a wait on one of these is the bucket it belongs to
    /// (contains, then the name to report); otherwise the first frame not
    /// matching `skip`.
    Hang(&'static [(&'static str, &'static str)], &'static [Pat]),
    /// FreeBSD: the first frame after the trap frame ("--- trap 0xc ...").
    AfterTrap,
    /// FreeBSD panic: a function the message names ("foo: ..."), if the
    /// backtrace holds it and it is not machinery; else as `AfterTrap`.
    Panic,
    /// The function right after this text on the first line holding it
    /// ("INFO: Freed in f", "last function: f", "corrupted in: f"), as
    /// printed, then the backtrace.
    After(&'static str),
}

/// Which kernel's conventions a rule follows (frame names, backtraces).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Os {
    Linux,
    FreeBsd,
}

/// How a start line relates to a report already open.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Joins {
    /// Always opens a report.
    Never,
    /// Part of any open report (Linux prints these inside others).
    Any,
    /// Part of an open report of these kinds, if it has none of itself yet.
    Kinds(&'static [&'static str]),
    /// Only ever follows a report (Linux's "Fatal exception", FreeBSD's
    /// "panic: from debugger"): joins an open one, folds into the last one
    /// seen, or, alone, is a corrupted report.
    Consequence,
}

/// One report type.
pub(crate) struct Rule {
    pub os: Os,
    /// The literal that starts the report, found at a word start anywhere
    /// in the line (interleaved consoles put it mid-line).
    pub header: &'static str,
    /// Further literals the line must hold after the header.
    pub when: &'static [&'static str],
    /// Literals that make the line something else.
    pub unless: &'static [&'static str],
    /// A last test on the line from the header on.
    pub check: Option<fn(&str) -> bool>,
    pub kind: &'static str,
    pub title: Title,
    pub guilty: Guilty,
    /// The system's machinery (report printers, traps, locks, allocators).
    pub base: &'static [Pat],
    /// Machinery particular to this report type.
    pub skip: &'static [Pat],
    pub joins: Joins,
    /// The kernel prints a backtrace for this type: without a function the
    /// report was cut, and its title says so.
    pub expects_frame: bool,
    /// This line is the middle of a report whose header was lost: alone,
    /// it is a corrupted report.
    pub headless: bool,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rule({:?} {:?} -> {})", self.os, self.header, self.kind)
    }
}

impl Rule {
    /// A rule that opens a report on `header` and has no further conditions
    /// or own machinery: what each system's table starts its rules from.
    pub(crate) const fn opening(
        os: Os,
        base: &'static [Pat],
        header: &'static str,
        kind: &'static str,
        title: Title,
        guilty: Guilty,
        expects_frame: bool,
    ) -> Rule {
        Rule {
            os,
            header,
            when: &[],
            unless: &[],
            check: None,
            kind,
            title,
            guilty,
            base,
            skip: &[],
            joins: Joins::Never,
            expects_frame,
            headless: false,
        }
    }

    /// A title ends in " in F".
    pub(crate) fn names_function(&self) -> bool {
        matches!(
            self.title,
            Title::In(_) | Title::Line | Title::Custom(_, true)
        )
    }

    fn matches(&self, from_header: &str) -> bool {
        let after = &from_header[self.header.len()..];
        self.when.iter().all(|w| after.contains(w))
            && !self.unless.iter().any(|u| from_header.contains(u))
            && self.check.is_none_or(|c| c(from_header))
    }
}

/// A byte that continues a word: a header never starts right after one
/// ("ODEBUG:" is not "BUG:", "kern.panic:" is not "panic:").
fn word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
}

/// Rules by the first byte of their header, in table order, and which
/// first two bytes any header has (most words of a console line fail there).
pub(crate) struct Index {
    by_first: Vec<Vec<&'static Rule>>,
    pairs: Vec<u64>,
    /// Per byte: `WORD` if it continues a word, `FIRST` if a header starts
    /// with it.
    class: [u8; 256],
}

const WORD: u8 = 1;
const FIRST: u8 = 2;

impl Index {
    pub(crate) fn new(sets: &[&'static [Rule]]) -> Index {
        let mut by_first = vec![Vec::new(); 256];
        let mut pairs = vec![0u64; 1024];
        let mut class = [0u8; 256];
        for (b, c) in class.iter_mut().enumerate() {
            if word(b as u8) {
                *c |= WORD;
            }
        }
        for set in sets {
            for r in *set {
                let h = r.header.as_bytes();
                by_first[h[0] as usize].push(r);
                class[h[0] as usize] |= FIRST;
                let pair = (h[0] as usize) << 8 | h[1] as usize;
                pairs[pair / 64] |= 1 << (pair % 64);
            }
        }
        Index {
            by_first,
            pairs,
            class,
        }
    }

    /// The earliest report start in `line` (prefix-stripped): where it is
    /// and which rule it is. Within a family the first matching rule wins,
    /// so the tables list specific forms before general ones.
    pub(crate) fn find(&self, line: &str) -> Option<(usize, &'static Rule)> {
        let b = line.as_bytes();
        let mut after_word = false;
        for p in 0..b.len().saturating_sub(1) {
            let c = self.class[b[p] as usize];
            if c & FIRST != 0 && !after_word {
                let pair = (b[p] as usize) << 8 | b[p + 1] as usize;
                if self.pairs[pair / 64] & (1 << (pair % 64)) != 0 {
                    // A header starts with an ASCII byte: `p` is a char boundary.
                    let rest = &line[p..];
                    for r in &self.by_first[b[p] as usize] {
                        if rest.starts_with(r.header) && r.matches(rest) {
                            return Some((p, r));
                        }
                    }
                }
            }
            after_word = c & WORD != 0;
        }
        None
    }
}
