//! What a console line is before any rule looks at it: cleaned of control
//! characters, terminal escapes and invalid UTF-8 (each becomes one U+FFFD,
//! so a title never carries them and never doubles them), and split into
//! the printk context it came from and the text after the timestamp.

use std::borrow::Cow;

/// Lines longer than this are cut: a console line is a few hundred bytes,
/// and a file with no newline must not become one line of gigabytes.
pub(crate) const MAX_LINE: usize = 4096;

const REPLACEMENT: char = '\u{FFFD}';

/// Where a line came from, as printk says it: Linux's `[  12.3]` timestamp
/// ("console"), CONFIG_PRINTK_CALLER's `[ T123]` task or `[ C1]` CPU, or
/// nothing (FreeBSD's console, user-space output, a plain dmesg).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ctx {
    None,
    Console,
    Task(u32),
    Cpu(u32),
}

/// `bytes` as text a title or excerpt may carry: each run of invalid UTF-8,
/// each control character and each terminal escape sequence (CSI, OSC, or
/// ESC and one character) becomes one U+FFFD, never two in a row; a tab
/// stays (FreeBSD aligns trap fields with tabs); a trailing CR goes.
pub(crate) fn clean(bytes: &[u8]) -> Cow<'_, str> {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    // Without an early exit this loop vectorises: most lines take this path.
    let control = bytes.iter().fold(false, |acc, &b| {
        acc | ((b < 0x20) & (b != b'\t')) | (b >= 0x7f)
    });
    if !control {
        // Checked above: printable ASCII.
        return Cow::Borrowed(std::str::from_utf8(bytes).unwrap_or_default());
    }
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    let push_bad = |out: &mut String| {
        if !out.ends_with(REPLACEMENT) {
            out.push(REPLACEMENT);
        }
    };
    while !rest.is_empty() {
        let (good, bad_len) = match std::str::from_utf8(rest) {
            Ok(s) => (s, 0),
            Err(e) => {
                let valid = e.valid_up_to();
                // Checked by from_utf8 up to `valid`.
                let s = std::str::from_utf8(&rest[..valid]).unwrap_or_default();
                (s, e.error_len().unwrap_or(rest.len() - valid))
            }
        };
        let mut chars = good.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '\u{1b}' {
                // ESC [ params final, ESC ] ... BEL|ESC \, or ESC x.
                let tail = &good.as_bytes()[i + 1..];
                let len = match tail.first() {
                    Some(b'[') => tail[1..]
                        .iter()
                        .position(|b| (0x40..=0x7e).contains(b))
                        .map_or(tail.len(), |p| p + 2),
                    Some(b']') => tail
                        .iter()
                        .position(|&b| b == 0x07 || b == 0x1b)
                        .map_or(tail.len(), |p| {
                            p + 1 + usize::from(tail[p] == 0x1b && tail.get(p + 1) == Some(&b'\\'))
                        }),
                    Some(_) => 1,
                    None => 0,
                };
                while chars.peek().is_some_and(|&(j, _)| j <= i + len) {
                    chars.next();
                }
                push_bad(&mut out);
            } else if c == '\t' {
                out.push(c);
            } else if c.is_control() || c == REPLACEMENT {
                push_bad(&mut out);
            } else {
                out.push(c);
            }
        }
        if bad_len > 0 {
            push_bad(&mut out);
        }
        rest = &rest[good.len() + bad_len..];
    }
    Cow::Owned(out)
}

/// Remove Linux's "[  12.345678]" and "[  12.345678][ T123]" prefixes (and a
/// syslog `<N>` level, journald's "... kernel: ").
pub fn strip_prefix(line: &str) -> &str {
    split(line).1
}

/// The printk context of a cleaned line and its text after the prefixes.
pub(crate) fn split(line: &str) -> (Ctx, &str) {
    let mut s = unquote(line.trim_end_matches(['\r', '\n'])).trim_start();
    let mut ctx = Ctx::None;
    // "<4>" from /dev/kmsg-style or `dmesg -r` captures.
    if let Some(r) = s.strip_prefix('<')
        && let Some(end) = r.find('>')
        && (1..=3).contains(&end)
        && r[..end].bytes().all(|b| b.is_ascii_digit())
    {
        s = &r[end + 1..];
    }
    // journald / syslog: "Jan  2 03:04:05 host kernel: [   1.2] text";
    // OpenWrt's logread: "Tue Feb  1 19:02:25 2022 kern.warn kernel: ...".
    if s.len() > 16
        && s.as_bytes()[..3].iter().all(u8::is_ascii_alphabetic)
        && s.as_bytes()[3] == b' '
        && (s.as_bytes()[9] == b':' || s.as_bytes()[13] == b':')
        && let Some(k) = s[..s.len().min(80)].find(" kernel: ")
    {
        s = &s[k + 9..];
    }
    if let Some(r) = s.strip_prefix("** ")
        && let Some(end) = r.find(" **")
        && r[..end].contains("printk messages dropped")
    {
        s = r[end + 3..].trim_start();
    }
    let t = s.trim_start();
    if let Some((inside, after)) = bracket(t)
        && is_stamp(inside)
    {
        ctx = Ctx::Console;
        s = after;
        if let Some((inside, after)) = bracket(s)
            && let Some(c) = caller(inside)
        {
            ctx = c;
            s = after;
        }
        s = s.strip_prefix(' ').unwrap_or(s);
    }
    (ctx, s.trim_start())
}

/// Text as pasted through mail and trackers: "> " quote marks, nested or
/// not; gdb's "(kgdb) " prompt before the first frame of `bt`; a stray
/// punctuation mark before a numbered frame ("*#0 0x...", "`#0 ...").
fn unquote(s: &str) -> &str {
    let mut t = s;
    while let Some(r) = t.trim_start_matches([' ', '\t']).strip_prefix('>') {
        if !(r.is_empty() || r.starts_with([' ', '\t', '>'])) {
            break;
        }
        t = r;
    }
    let u = t.trim_start();
    if let Some(r) = u.strip_prefix("(kgdb)") {
        let r = r.trim_start();
        if r.starts_with('#') {
            return r;
        }
    }
    if let Some(c) = u.bytes().next()
        && c.is_ascii_punctuation()
        && c != b'#'
    {
        let r = u[1..].trim_start();
        if r.starts_with('#') && r.as_bytes().get(1).is_some_and(u8::is_ascii_digit) {
            return r;
        }
    }
    t
}

/// "[inside]rest" split, when `s` starts with a short bracketed field.
fn bracket(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    if b.first() != Some(&b'[') {
        return None;
    }
    // ']' is ASCII: its index is a char boundary.
    let end = b[1..b.len().min(41)].iter().position(|&c| c == b']')? + 1;
    Some((&s[1..end], &s[end + 1..]))
}

/// printk's "  12.345678", FreeBSD's msgbuf uptime "114565"
/// (kern.msgbuf_show_timestamp) or `dmesg -T`'s "Mon Jan  2 03:04:05 2024".
fn is_stamp(inside: &str) -> bool {
    let t = inside.trim();
    if t.is_empty() {
        return false;
    }
    let clock = t.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let human = t.len() >= 20
        && t.bytes().filter(|&b| b == b':').count() == 2
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b':');
    clock || human
}

/// CONFIG_PRINTK_CALLER's " T123" or "C1".
fn caller(inside: &str) -> Option<Ctx> {
    let t = inside.trim_start();
    let (kind, num) = t.split_at_checked(1)?;
    let n: u32 = num.parse().ok()?;
    match kind {
        "T" => Some(Ctx::Task(n)),
        "C" => Some(Ctx::Cpu(n)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_escapes_and_bad_bytes_become_one_replacement_each() {
        assert!(matches!(
            clean(b"plain\ttext\r"),
            Cow::Borrowed("plain\ttext")
        ));
        assert_eq!(clean(b"a\x1b[31mred\x1b[0m b"), "a\u{FFFD}red\u{FFFD} b");
        assert_eq!(clean(b"x\xff\xfe\xfdy"), "x\u{FFFD}y");
        assert_eq!(clean(b"x\x07\x08y"), "x\u{FFFD}y");
        // Already replaced once upstream, then bad again: still one.
        assert_eq!(clean("x\u{FFFD}".as_bytes()), "x\u{FFFD}");
        assert_eq!(clean(b"x\xef\xbf\xbd\xffy"), "x\u{FFFD}y");
        // Real non-ASCII text stays.
        assert_eq!(clean("caf\u{e9}".as_bytes()), "caf\u{e9}");
        // OSC title sequence ended by BEL.
        assert_eq!(clean(b"\x1b]0;title\x07rest"), "\u{FFFD}rest");
    }

    #[test]
    fn prefixes_and_contexts() {
        assert_eq!(
            split("[  768.680053][ T1064] INFO: x"),
            (Ctx::Task(1064), "INFO: x")
        );
        assert_eq!(
            split("[   92.053788][    C0] CPU0: stopping"),
            (Ctx::Cpu(0), "CPU0: stopping")
        );
        assert_eq!(split("[   47.712178] BUG: x"), (Ctx::Console, "BUG: x"));
        assert_eq!(split("<4>[   47.712178] BUG: x"), (Ctx::Console, "BUG: x"));
        assert_eq!(split("panic: x"), (Ctx::None, "panic: x"));
        assert_eq!(
            split("[ thread pid 1 tid 2 ]"),
            (Ctx::None, "[ thread pid 1 tid 2 ]")
        );
        assert_eq!(
            split("Jan  2 03:04:05 host kernel: [   1.250000] WARNING: y"),
            (Ctx::Console, "WARNING: y")
        );
        assert_eq!(
            split("[Mon Jan  2 03:04:05 2024] BUG: z"),
            (Ctx::Console, "BUG: z")
        );
        assert_eq!(split("[link] up"), (Ctx::None, "[link] up"));
        assert_eq!(split("[114565] panic: x"), (Ctx::Console, "panic: x"));
        // OpenWrt's logread (openwrt/mt76 issue 646).
        assert_eq!(
            split(
                "Tue Feb  1 19:02:25 2022 kern.warn kernel: [11134.332928] ------------[ cut here ]------------"
            ),
            (Ctx::Console, "------------[ cut here ]------------")
        );
        // Quoted, prompted and bulleted.
        assert_eq!(split("> > panic: x"), (Ctx::None, "panic: x"));
        assert_eq!(split(">panic: x"), (Ctx::None, ">panic: x"));
        assert_eq!(
            split("(kgdb) #0  __curthread () at pcpu_aux.h:55"),
            (Ctx::None, "#0  __curthread () at pcpu_aux.h:55")
        );
        assert_eq!(
            split("*#0 0xffff at f+0x1"),
            (Ctx::None, "#0 0xffff at f+0x1")
        );
        assert_eq!(
            split("> \t#3 0xffff at f+0x1"),
            (Ctx::None, "#3 0xffff at f+0x1")
        );
        assert_eq!(split("--- trap 0xc"), (Ctx::None, "--- trap 0xc"));
    }
}
