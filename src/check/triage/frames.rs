//! Backtrace lines and the names in them: every frame syntax the two
//! kernels print, the fault site of a register dump, lockdep's "at:" lines,
//! and the patterns that say a frame is machinery rather than the culprit.

/// One frame of a backtrace line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    /// The function, compiler suffixes (`.isra.0`, `.cold`) removed.
    pub name: &'a str,
    /// Linux's symbolizer prints inlined calls as `f file.c:1 [inline]`:
    /// not a frame of the machine stack, so never the one to blame.
    pub inline: bool,
}

/// A frame pattern. Rules list these as data: an exact name, a family by
/// prefix or suffix, or any name containing a word.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pat {
    Exact(&'static str),
    Prefix(&'static str),
    Suffix(&'static str),
    Contains(&'static str),
}

impl Pat {
    pub(crate) fn hits(&self, name: &str) -> bool {
        match *self {
            Pat::Exact(p) => name == p,
            Pat::Prefix(p) => name.starts_with(p),
            Pat::Suffix(p) => name.ends_with(p),
            Pat::Contains(p) => name.contains(p),
        }
    }
}

/// One of 128 buckets for a pair of adjacent bytes.
fn bucket(a: u8, b: u8) -> u128 {
    1u128 << ((a as usize * 31 + b as usize) & 127)
}

pub(crate) fn any_hits(pats: &[Pat], name: &str) -> bool {
    // A name holds a word only if it holds the word's first two bytes: the
    // pairs of the name, hashed into a bit set, rule most words out without
    // a substring search.
    let n = name.as_bytes();
    let pairs = n.windows(2).fold(0u128, |acc, w| acc | bucket(w[0], w[1]));
    pats.iter().any(|p| match *p {
        Pat::Contains(w) if w.len() >= 2 => {
            let w = w.as_bytes();
            pairs & bucket(w[0], w[1]) != 0 && p.hits(name)
        }
        _ => p.hits(name),
    })
}

/// A character of a C identifier.
fn ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `name` then optional `.suffix` parts then `+0x`: the length of the name
/// and of the whole symbol up to the `+`, if `s` starts with one.
fn symbol(s: &str) -> Option<(usize, usize)> {
    let b = s.as_bytes();
    let n = b.iter().take_while(|&&c| ident(c)).count();
    if n == 0 {
        return None;
    }
    let mut i = n;
    while i < b.len() && b[i] == b'.' {
        let k = b[i + 1..].iter().take_while(|&&c| ident(c)).count();
        if k == 0 {
            break;
        }
        i += 1 + k;
    }
    s[i..].starts_with("+0x").then_some((n, i))
}

/// Skip "[<ffffffff81234567>] " PC prefixes (x86 before 4.16 prints two).
fn skip_pcs(mut s: &str) -> &str {
    for _ in 0..2 {
        let t = s.trim_start();
        match t.strip_prefix("[<").and_then(|r| r.split_once(">]")) {
            Some((pc, rest))
                if pc
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b'x' || b == b' ') =>
            {
                s = rest
            }
            _ => break,
        }
    }
    s.trim_start()
}

/// The frame a backtrace line names, from text already stripped of its
/// printk prefix. FreeBSD's `#3 0xffff... at foo+0x12`, ddb's
/// `foo() at foo+0x12/frame 0x...`, Linux's ` foo+0x12/0x40 [mod]`,
/// `[<ffff...>] foo+0x12/0x40`, `foo+0x12/0x40 net/core/dev.c:1`,
/// `foo net/x.c:1 [inline]` and ARM's `[<8133f374>] (foo) from [<...>]`.
/// Unreliable frames (`? foo`, powerpc's `(unreliable)`) are not frames.
pub(crate) fn parse(text: &str) -> Option<Frame<'_>> {
    let t = text.trim();
    let b = t.as_bytes();
    match b.first()? {
        b'#' => {
            // stack(9): "#7 0xffffffff810302fc at atrtc_settime+0xc";
            // kgdb: "#8  0xffff... in selrecord (selector=..." or, for a
            // frame at a line's start, "#1  doadump (textdump=1) at ...".
            let r = t[1..].trim_start_matches(|c: char| c.is_ascii_digit());
            if r.len() + 1 == t.len() || !r.starts_with([' ', '\t']) {
                return None;
            }
            let r = r.trim_start();
            match r.strip_prefix("0x") {
                Some(r) => {
                    let r = r.trim_start_matches(|c: char| c.is_ascii_hexdigit());
                    if let Some(r) = r.strip_prefix(" at ") {
                        let n = r.bytes().take_while(|&c| ident(c)).count();
                        let after = &r[n..];
                        (n > 0 && (after.is_empty() || after.starts_with('+'))).then(|| Frame {
                            name: &r[..n],
                            inline: false,
                        })
                    } else {
                        gdb_function(r.strip_prefix(" in ")?, true)
                    }
                }
                None => gdb_function(r, false),
            }
        }
        b'[' if t.as_bytes().get(1) == Some(&b'<') && t.contains(") from [<") => {
            // ARM: "[<8133f374>] (foo) from [<8133fffc>] (bar+0x154/0x258)"
            let inner = t.split_once("] (")?.1;
            let n = inner.bytes().take_while(|&c| ident(c)).count();
            let rest = &inner[n..];
            (n > 0 && (rest.starts_with(')') || rest.starts_with('.') || rest.starts_with('+')))
                .then(|| Frame {
                    name: &inner[..n],
                    inline: false,
                })
        }
        _ => {
            // The first '(' of a ddb line ends the function's name.
            if let Some((i, at)) = ddb_call(t) {
                // ddb: "vpanic() at vpanic+0x1e0/frame 0xfffffe004b9db6b0";
                // i386 prints the arguments, "panic(c0b3c5ce,e7b0ba9c) at
                // panic+0x14b/frame 0xe7b0ba7c"; arm64 and riscv before
                // FreeBSD 14 name the return address's function after "at":
                // "panic() at pmap_is_modified+0x18". The frame is the name
                // before the parenthesis in every form.
                let name = &t[..i];
                // Unknown symbols print as their address: nothing to blame.
                return (!name.is_empty()
                    && !name.as_bytes()[0].is_ascii_digit()
                    && name.bytes().all(ident)
                    && symbol(&t[at..]).is_some())
                .then_some(Frame {
                    name,
                    inline: false,
                });
            }
            let s = skip_pcs(t);
            if s.starts_with('?') || s.starts_with('<') || t.ends_with("(unreliable)") {
                return None;
            }
            let s = s.strip_prefix('(').unwrap_or(s);
            if let Some((n, _)) = symbol(s) {
                return Some(Frame {
                    name: &s[..n],
                    inline: false,
                });
            }
            // "context_switch kernel/sched/core.c:5178 [inline]"
            let n = s.bytes().take_while(|&c| ident(c)).count();
            (n > 0 && s[n..].starts_with(' ') && s.trim_end().ends_with("[inline]")).then(|| {
                Frame {
                    name: &s[..n],
                    inline: true,
                }
            })
        }
    }
}

/// A ddb frame line "name(args) at ...": where the '(' is and where the
/// text after " at " starts. The arguments hold no parenthesis or space.
pub(crate) fn ddb_call(t: &str) -> Option<(usize, usize)> {
    let i = t.find('(')?;
    let close = i + t[i..].find(") at ")?;
    let args = &t[i + 1..close];
    (!args.contains(['(', ' ', '\t'])).then_some((i, close + 5))
}

/// gdb's frame after the address: "selrecord (selector=...) at f.c:1",
/// "cail_ioreg_write () from /boot/modules/amdgpu.ko" (gdb/stack.c
/// print_frame). "?? ()" names nothing. Without an address (`addressed`
/// false) the argument list must be there, opened or whole, so that a
/// numbered line of prose is no frame.
fn gdb_function(r: &str, addressed: bool) -> Option<Frame<'_>> {
    let n = r.bytes().take_while(|&c| ident(c)).count();
    let after = &r[n..];
    let args = after.strip_prefix(" (")?;
    (n > 0 && (addressed || args.contains(')') || args.trim_end().ends_with(','))).then(|| Frame {
        name: &r[..n],
        inline: false,
    })
}

/// The function a register dump says the CPU was in: Linux's `RIP:`
/// (`RIP: 0010:foo+0x1/0x2`, older `RIP: 0010:[<...>]  [<...>] foo+0x1/0x2`),
/// `IP:`, `EIP:`/`EIP is at`, arm64's `pc : `, ARM's `PC is at`, powerpc's
/// `NIP [...] `. User-mode addresses (`RIP: 0033:0x452a09`) name nothing.
pub(crate) fn fault_site(text: &str) -> Option<&str> {
    let t = text.trim_start();
    let rest = [
        "RIP: ",
        "IP: ",
        "EIP: ",
        "EIP is at ",
        "pc : ",
        "PC is at ",
        "NIP ",
    ]
    .iter()
    .find_map(|p| t.strip_prefix(p))?;
    let rest = rest.trim_start();
    // A segment selector ("0010:") comes first on x86.
    let rest = match rest.split_once(':') {
        Some((sel, r)) if sel.len() == 4 && sel.bytes().all(|b| b.is_ascii_hexdigit()) => r,
        _ => rest,
    };
    let rest = skip_pcs(rest);
    // powerpc: "NIP [c000000000123456] foo+0x12/0x40"
    let rest = match rest.strip_prefix('[') {
        Some(r) => r.split_once("] ").map(|x| x.1)?,
        None => rest,
    };
    symbol(rest).map(|(n, _)| &rest[..n])
}

/// lockdep's "..., at: foo+0x12/0x40" (or "at: [<ffff...>] foo+0x12/0x40").
pub(crate) fn at_site(text: &str) -> Option<&str> {
    let i = text.find("at: ")?;
    let rest = skip_pcs(&text[i + 4..]);
    symbol(rest).map(|(n, _)| &rest[..n])
}

/// Linux names one syscall by several entry points (`SyS_`, `__x64_sys_`,
/// `__do_sys_`, `ksys_` ...): the shortest name left after removing any one
/// of these prefixes is the one a title uses, the same on every arch.
pub(crate) fn canonical(name: &str) -> &str {
    const PREFIXES: &[&str] = &[
        "SYSC_",
        "SyS_",
        "sys_",
        "__x64_",
        "__ia32_",
        "__arm64_",
        "____sys_",
        "___sys_",
        "__sys_",
        "__se_",
        "__se_sys_",
        "__do_sys_",
        "compat_SYSC_",
        "compat_SyS_",
        "ksys_",
    ];
    PREFIXES
        .iter()
        .filter_map(|p| name.strip_prefix(p))
        .filter(|s| !s.is_empty())
        .min_by_key(|s| s.len())
        .unwrap_or(name)
}

/// The function a backtrace line names, if it is one (a line as read, with
/// its printk prefix).
pub fn frame_of(line: &str) -> Option<String> {
    parse(super::clean::strip_prefix(line)).map(|f| f.name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_sites_in_every_dialect() {
        assert_eq!(
            fault_site("RIP: 0010:free_netdev+0x4b3/0x5e0"),
            Some("free_netdev")
        );
        assert_eq!(
            fault_site("RIP: 0010:[<ffffffff8123>]  [<ffffffff8123>] foo.isra.3+0x1/0x2"),
            Some("foo")
        );
        assert_eq!(fault_site("IP: strlen+0x0/0x30"), Some("strlen"));
        assert_eq!(fault_site("pc : bar+0x10/0x20"), Some("bar"));
        assert_eq!(fault_site("PC is at baz+0x10/0x20"), Some("baz"));
        assert_eq!(
            fault_site("NIP [c000000000123456] qux+0x12/0x40"),
            Some("qux")
        );
        assert_eq!(fault_site("RIP: 0033:0x452a09"), None);
        assert_eq!(
            fault_site("RIP: 0010:div_u64_rem include/linux/math64.h:29 [inline]"),
            None
        );
    }

    #[test]
    fn lockdep_sites_and_syscall_names() {
        assert_eq!(
            at_site(
                " (&(&r->consumer_lock)->rlock){+.+...}, at: [<ffffffff82de6c86>] tun_queue_purge+0xe6/0x210"
            ),
            Some("tun_queue_purge")
        );
        assert_eq!(
            at_site("ffff (rtnl_mutex){+.+.}-{3:3}, at: rtnl_lock+0x17/0x20"),
            Some("rtnl_lock")
        );
        assert_eq!(canonical("SyS_writev"), "writev");
        assert_eq!(canonical("__x64_sys_ioctl"), "sys_ioctl");
        assert_eq!(canonical("__do_sys_sendmsg"), "sendmsg");
        assert_eq!(canonical("sys_"), "sys_");
        assert_eq!(canonical("rtnl_newlink"), "rtnl_newlink");
    }
}
