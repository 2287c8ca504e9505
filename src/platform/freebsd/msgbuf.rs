//! A cursor into FreeBSD's kernel message buffer. `sysctl kern.msgbuf`
//! returns the whole ring, oldest first, each time; what is new since the last
//! read is what follows the last bytes we saw. If those bytes are gone (the
//! ring wrapped past them), everything is new and some was lost; if they occur
//! more than once (a burst of identical lines), where the last read ended is
//! ambiguous and text between the copies may have been skipped.
//!
//! Also here, because they are plain text work tested on Linux: how often the
//! ring must be read for the rate it fills at, and which WITNESS reversal
//! blocks of `debug.witness.badstacks` are new.

use std::time::Duration;

/// How much of the previous read identifies where it ended. Long, so that a
/// run of repeated lines (if_rename's "changing name to", epair's link-state
/// lines) rarely makes it ambiguous; shorter suffixes are tried when the ring
/// has dropped the front of it.
const ANCHOR: usize = 2048;

#[derive(Debug, Default, Clone)]
pub struct Cursor {
    anchor: Vec<u8>,
}

/// What a read brought.
#[derive(Debug, PartialEq, Eq)]
pub struct Advance {
    pub text: String,
    /// The ring wrapped past the cursor: lines between reads may be missing.
    pub lost: bool,
    /// The cursor matched in more than one place; the newest was taken, so
    /// lines between the copies may be missing.
    pub ambiguous: bool,
}

/// The buffer as text: NULs dropped, invalid UTF-8 replaced.
fn clean(b: &[u8]) -> Vec<u8> {
    b.iter().copied().filter(|&c| c != 0).collect()
}

impl Cursor {
    /// A cursor at the end of `snapshot`: nothing in it counts as new.
    pub fn at_end(snapshot: &[u8]) -> Cursor {
        let s = clean(snapshot);
        Cursor {
            anchor: s[s.len().saturating_sub(ANCHOR)..].to_vec(),
        }
    }

    /// Where the previous read ended in `s`, and whether that is ambiguous.
    fn find(&self, s: &[u8]) -> Option<(usize, bool)> {
        let full = self.anchor.len();
        [full, 1024, 512, 256, 128, 64]
            .into_iter()
            .filter(|&n| n <= full && n > 0)
            .find_map(|n| {
                let tail = &self.anchor[full - n..];
                let last = rfind(s, tail)?;
                // Another copy starting earlier (possibly overlapping this one).
                let again = rfind(&s[..last + n - 1], tail).is_some();
                Some((last + n, again))
            })
    }

    pub fn advance(&mut self, snapshot: &[u8]) -> Advance {
        let s = clean(snapshot);
        let (start, lost, ambiguous) = if self.anchor.is_empty() {
            (0, false, false)
        } else {
            match self.find(&s) {
                Some((end, ambiguous)) => (end, false, ambiguous),
                None => (0, true, false),
            }
        };
        let text = String::from_utf8_lossy(&s[start..]).into_owned();
        if !s.is_empty() {
            self.anchor = s[s.len().saturating_sub(ANCHOR)..].to_vec();
        }
        Advance {
            text,
            lost,
            ambiguous,
        }
    }
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > hay.len() {
        return None;
    }
    (0..=hay.len() - needle.len())
        .rev()
        .find(|&i| &hay[i..i + needle.len()] == needle)
}

/// The shortest and longest wait between reads of the ring.
pub const MIN_SCAN: Duration = Duration::from_millis(50);
pub const MAX_SCAN: Duration = Duration::from_secs(2);

/// How long the reader may wait before the next read of a ring of `size`
/// bytes that took `bytes` of new text in `elapsed`: a quarter of the time
/// the ring takes to wrap at that rate, within [MIN_SCAN, MAX_SCAN]. A busy
/// run logs a rename and link-state lines for every create and destroy, so
/// the default 96 KiB ring can wrap in well under a second.
pub fn scan_interval(size: usize, bytes: usize, elapsed: Duration) -> Duration {
    if bytes == 0 || size == 0 {
        return MAX_SCAN;
    }
    let per_sec = bytes as f64 / elapsed.as_secs_f64().max(1e-3);
    let wrap = size as f64 / per_sec;
    Duration::from_secs_f64((wrap / 4.0).clamp(MIN_SCAN.as_secs_f64(), MAX_SCAN.as_secs_f64()))
}

/// The line that opens each reversal in `debug.witness.badstacks`
/// (sysctl_debug_witness_badstacks).
const LOR_HEADER: &str = "Lock order reversal between ";

/// The reversal blocks of a badstacks text: each from its header line to the
/// next header (or the end).
fn lor_blocks(text: &str) -> Vec<&str> {
    let starts: Vec<usize> = text
        .match_indices(LOR_HEADER)
        .map(|(i, _)| i)
        .filter(|&i| i == 0 || text.as_bytes()[i - 1] == b'\n')
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(k, &a)| &text[a..starts.get(k + 1).copied().unwrap_or(text.len())])
        .collect()
}

/// How often at most `debug.witness.badstacks` is read between a run's first
/// and last read. Its handler (sys/kern/subr_witness.c,
/// sysctl_debug_witness_badstacks -> sbuf_print_witness_badstacks) walks
/// every witness pair, taking the w_mtx spin lock for each, and starts over
/// whenever the graph changes: on a debug kernel, reading it every 2 s
/// disturbs the very lock timing a run races.
pub const BADSTACKS_EVERY: Duration = Duration::from_secs(30);

/// Whether to read badstacks now: at the last read always, otherwise when
/// `BADSTACKS_EVERY` has passed since the previous read (the first is taken
/// when the reader starts).
pub fn badstacks_due(since_last: Duration, last_read: bool) -> bool {
    last_read || since_last >= BADSTACKS_EVERY
}

/// The reversal blocks of `now` that `before` does not have. WITNESS prints
/// reversals in lock order (i over witnesses, j > i), not in the order they
/// were found, so a new one between older locks lands in the middle of the
/// text: blocks are compared as a set, keyed by their header line (the pair of
/// locks; the stacks under it are the first seen and do not change).
pub fn new_badstacks<'a>(before: &str, now: &'a str) -> Vec<&'a str> {
    let header = |b: &str| b.lines().next().unwrap_or("").trim_end().to_string();
    let old: std::collections::HashSet<String> =
        lor_blocks(before).into_iter().map(header).collect();
    lor_blocks(now)
        .into_iter()
        .filter(|b| !old.contains(&header(b)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real FreeBSD console transcript (syzkaller pkg/report testdata,
    /// Apache-2.0, from ../shared/fixtures) stands in for the buffer.
    fn transcript() -> Option<String> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/fixtures/freebsd/syzkaller-freebsd-8.txt");
        if !crate::testutil::in_tier(crate::testutil::Tier::Fixtures) {
            return None;
        }
        match std::fs::read_to_string(&p) {
            Ok(t) => Some(t.split_once("\n\n").map(|x| x.1.to_string()).unwrap_or(t)),
            Err(_) => {
                crate::testutil::skip(&format!("{} is absent", p.display()));
                None
            }
        }
    }

    #[test]
    fn reads_only_what_follows_the_cursor() {
        let Some(t) = transcript() else { return };
        let boot = "Copyright (c) 1992-2019 The FreeBSD Project.\n".repeat(20);
        let mut c = Cursor::at_end(boot.as_bytes());
        assert_eq!(
            c.advance(boot.as_bytes()),
            Advance {
                text: String::new(),
                lost: false,
                ambiguous: false,
            }
        );
        let after = format!("{boot}{t}");
        let a = c.advance(after.as_bytes());
        assert_eq!(a.text, t);
        assert!(!a.lost);
        assert!(a.text.starts_with("Fatal trap 12"));
        // Nothing new the second time.
        assert_eq!(c.advance(after.as_bytes()).text, "");
    }

    #[test]
    fn a_ring_that_dropped_its_oldest_lines_still_finds_the_cursor() {
        let Some(t) = transcript() else { return };
        let old = "x".repeat(2000) + "\nboot done\n";
        let mut c = Cursor::at_end(old.as_bytes());
        // The ring keeps only its newest bytes: the start of `old` is gone.
        let now = format!("{}{t}", &old[1500..]);
        let a = c.advance(now.as_bytes());
        assert_eq!(a.text, t);
        assert!(!a.lost);
    }

    #[test]
    fn wrapped_past_the_cursor_reports_loss_and_nul_bytes_are_dropped() {
        let mut c = Cursor::at_end(b"first boot line\n");
        let mut buf = b"panic: something\n".to_vec();
        buf.extend_from_slice(&[0, 0, 0]);
        let a = c.advance(&buf);
        assert!(a.lost);
        assert_eq!(a.text, "panic: something\n");
    }

    #[test]
    fn a_cursor_inside_repeated_lines_says_it_may_have_skipped() {
        // 3000 bytes of one repeated line: the 2 KiB anchor matches at every
        // line boundary, so where the last read ended cannot be known.
        let flood = "epair7a: link state changed to UP\n".repeat(90);
        let mut c = Cursor::at_end(flood.as_bytes());
        let now = format!("{flood}{flood}panic: after the flood\n");
        let a = c.advance(now.as_bytes());
        assert!(a.ambiguous);
        assert!(!a.lost);
        // The newest copy is taken: nothing is read twice.
        assert_eq!(a.text, "panic: after the flood\n");
        // Distinct lines before the cursor: unambiguous.
        let mut c = Cursor::at_end(b"boot line 1\nboot line 2\n");
        let a = c.advance(b"boot line 1\nboot line 2\nnew\n");
        assert_eq!(
            (a.text.as_str(), a.ambiguous, a.lost),
            ("new\n", false, false)
        );
    }

    #[test]
    fn the_scan_keeps_up_with_the_log_rate() {
        let size = 96 * 1024;
        // Quiet: the slowest pace.
        assert_eq!(scan_interval(size, 0, Duration::from_secs(2)), MAX_SCAN);
        assert_eq!(scan_interval(size, 100, Duration::from_secs(2)), MAX_SCAN);
        // 48 KiB/s wraps a 96 KiB ring in 2 s: read every 0.5 s.
        let d = scan_interval(size, 96 * 1024, Duration::from_secs(2));
        assert!((d.as_secs_f64() - 0.5).abs() < 1e-6, "{d:?}");
        // A flood: never faster than the floor.
        assert_eq!(
            scan_interval(size, 10 << 20, Duration::from_millis(100)),
            MIN_SCAN
        );
    }

    const OLD: &str = "\nLock order reversal between \"a\"(sleep mutex) and \"z\"(sleep mutex)!\n\
        Lock order \"a\"(sleep mutex) -> \"z\"(sleep mutex) first seen at:\n#0 f1\n\n\
        \nLock order reversal between \"m\"(sx) and \"q\"(sx)!\n#0 f2\n\n";

    #[test]
    fn a_new_reversal_in_the_middle_is_found() {
        // WITNESS lists by lock index: a new (b, c) pair lands between the two.
        let now = "\nLock order reversal between \"a\"(sleep mutex) and \"z\"(sleep mutex)!\n\
            Lock order \"a\"(sleep mutex) -> \"z\"(sleep mutex) first seen at:\n#0 f1\n\n\
            \nLock order reversal between \"b\"(sleep mutex) and \"c\"(rw)!\n#0 g\n\n\
            \nLock order reversal between \"m\"(sx) and \"q\"(sx)!\n#0 f2\n\n";
        // The old prefix test would have missed it: `now` does not start with OLD.
        assert!(!now.starts_with(OLD));
        let new = new_badstacks(OLD, now);
        assert_eq!(new.len(), 1);
        assert!(new[0].starts_with("Lock order reversal between \"b\""));
        assert!(new[0].contains("#0 g"));
        assert!(new_badstacks(now, now).is_empty());
        assert_eq!(new_badstacks("", OLD).len(), 2);
        assert!(new_badstacks(OLD, "").is_empty());
    }

    #[test]
    fn badstacks_are_read_at_the_end_and_at_most_every_30_s_between() {
        assert!(!badstacks_due(Duration::from_secs(2), false));
        assert!(!badstacks_due(Duration::from_secs(29), false));
        assert!(badstacks_due(Duration::from_secs(30), false));
        assert!(badstacks_due(Duration::ZERO, true));
    }
}
