//! What a finding is and how it is named: the normalised title and the
//! stable signature findings are deduplicated on. A leaf: the scanner, the
//! known-issue table and the run checks all build on it.

use serde::{Deserialize, Serialize};

/// Something a kernel developer should look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Console kinds: "panic", "fatal-trap", "double-fault",
    /// "lock-order-reversal", "witness", "bug", "warning", "gpf", "oops",
    /// "hung-task", "rcu-stall", "refcount", "netdev-leak", "lockdep".
    /// Run checks: "hang", "stall", "leftover", "dying-stack", "leak".
    pub kind: String,
    /// Normalised: the same bug gets the same title on any run or machine.
    pub title: String,
    /// Stable hash of kind and title, to deduplicate on.
    pub signature: String,
    /// Function names of the backtrace, innermost first.
    #[serde(default)]
    pub frames: Vec<String>,
    /// The first frame that is not trap, lock, wait or report machinery.
    #[serde(default)]
    pub guilty_frame: Option<String>,
    /// The lines that matter, bounded.
    pub excerpt: String,
    /// "PR 292993 ..." when the finding matches a known bug.
    #[serde(default)]
    pub known_issue: Option<String>,
    #[serde(default = "one")]
    pub count: u64,
    /// Where it was first seen: "FILE:LINE", "line N", or "+12.3s" into a run.
    #[serde(default)]
    pub first_seen: String,
    /// Why the report is incomplete (cut, interleaved, only its panic
    /// left), when it is; its title then says "(corrupted report)" unless
    /// what is left still names the function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupted: Option<String>,
}

fn one() -> u64 {
    1
}

impl Finding {
    /// A finding of a run check (not from a console).
    pub fn new(kind: &str, title: impl Into<String>, excerpt: impl Into<String>) -> Finding {
        let title = title.into();
        Finding {
            kind: kind.to_string(),
            signature: signature(kind, &normalize(&title)),
            title,
            frames: Vec::new(),
            guilty_frame: None,
            excerpt: excerpt.into(),
            known_issue: None,
            count: 1,
            first_seen: String::new(),
            corrupted: None,
        }
    }

    /// Did this come from the kernel's console or message buffer?
    pub fn from_kernel_log(&self) -> bool {
        !matches!(
            self.kind.as_str(),
            "hang" | "stall" | "leftover" | "dying-stack" | "leak"
        )
    }
}

/// Normalise text for signatures: addresses, numbers, offsets, source paths
/// up to the kernel tree, and the run's own interface names. Digits inside
/// an identifier stay (`nl80211_new_interface`, `ip6_output`); text other
/// than ASCII is kept as it is.
pub fn normalize(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    // Inside an identifier: a run of word characters that began with one.
    let mut in_word = false;
    while i < b.len() {
        let c = b[i];
        if !c.is_ascii() {
            let ch = s[i..].chars().next().unwrap_or('\u{FFFD}');
            out.push(ch);
            i += ch.len_utf8().max(1);
            in_word = false;
            continue;
        }
        if c == b'+' && s[i..].starts_with("+0x") {
            // func+0x12/0x40: the offset goes.
            i += 1;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'/') {
                i += 1;
            }
            continue;
        }
        if !in_word && word_char(c) {
            // A word of eight or more hex digits, one of them a digit, is an
            // address however it starts ("ffff888012345678").
            let n = b[i..].iter().take_while(|&&x| word_char(x)).count();
            let w = &b[i..i + n];
            if n >= 8 && w.iter().all(u8::is_ascii_hexdigit) && w.iter().any(u8::is_ascii_digit) {
                out.push_str("ADDR");
                i += n;
                continue;
            }
        }
        if c == b'0' && !in_word && matches!(b.get(i + 1), Some(b'x' | b'X')) {
            i += 2;
            while i < b.len() && b[i].is_ascii_hexdigit() {
                i += 1;
            }
            out.push_str("ADDR");
            continue;
        }
        if c.is_ascii_digit() && !in_word {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            out.push('N');
            continue;
        }
        in_word = if c.is_ascii_alphabetic() || c == b'_' {
            true
        } else {
            in_word && c.is_ascii_digit()
        };
        out.push(c as char);
        i += 1;
    }
    // Absolute source paths: keep from the kernel tree's top (sys/, net/, kernel/ ...).
    let mut words: Vec<String> = out
        .split(' ')
        .map(|w| {
            if w.contains('/') && w.starts_with('/') {
                for top in [
                    "/sys/",
                    "/net/",
                    "/kernel/",
                    "/drivers/",
                    "/include/",
                    "/fs/",
                    "/mm/",
                    "/lib/",
                ] {
                    if let Some(p) = w.find(top) {
                        return w[p + 1..].to_string();
                    }
                }
            }
            w.to_string()
        })
        .collect();
    // Interface names of a run (is<tag><kind><n>): the same bug, any run.
    for w in &mut words {
        if w.len() > 6
            && w.starts_with("is")
            && w.is_char_boundary(6)
            && w[2..6].chars().all(|c| c.is_ascii_hexdigit() || c == 'N')
        {
            *w = "IFNAME".into();
        }
    }
    words.join(" ").trim().to_string()
}

fn word_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// FNV-1a 64: stable across builds and platforms (std's hasher is not).
pub fn signature(kind: &str, title: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in kind.bytes().chain([b'|']).chain(title.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}
