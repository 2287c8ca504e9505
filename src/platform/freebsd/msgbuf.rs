//! A cursor into FreeBSD's kernel message buffer. `sysctl kern.msgbuf`
//! returns the whole ring, oldest first, each time; what is new since the last
//! read is what follows the last bytes we saw. If those bytes are gone (the
//! ring wrapped past them), everything is new and some was lost.

/// How much of the previous read identifies where it ended.
const ANCHOR: usize = 512;

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

    pub fn advance(&mut self, snapshot: &[u8]) -> Advance {
        let s = clean(snapshot);
        let (start, lost) = if self.anchor.is_empty() {
            (0, false)
        } else {
            // The ring may have dropped the front of the anchor too: the end
            // of the last read is still known from a shorter suffix.
            let found = [ANCHOR, 256, 128, 64].iter().find_map(|&n| {
                let tail = &self.anchor[self.anchor.len().saturating_sub(n)..];
                rfind(&s, tail).map(|i| i + tail.len())
            });
            match found {
                Some(end) => (end, false),
                None => (0, true),
            }
        };
        let text = String::from_utf8_lossy(&s[start..]).into_owned();
        if !s.is_empty() {
            self.anchor = s[s.len().saturating_sub(ANCHOR)..].to_vec();
        }
        Advance { text, lost }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A real FreeBSD console transcript (syzkaller pkg/report testdata,
    /// Apache-2.0, from ../shared/fixtures) stands in for the buffer.
    fn transcript() -> Option<String> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/fixtures/freebsd/syzkaller-freebsd-8.txt");
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
                lost: false
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
}
