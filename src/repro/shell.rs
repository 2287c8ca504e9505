//! `repro.sh`: a minimal suite as shell loops, for people who cannot install
//! ifstress on the machine that crashes. One `ip` (Linux) or `ifconfig` /
//! `jail` (FreeBSD) process per op, the way tests/sys/net scripts work: far
//! slower than ifstress, and some ops have no shell equivalent; the header
//! says which.

use crate::model::{LinkKind, OpKind};
use crate::suite::Suite;
use std::fmt::Write;

/// Which system's tools the script uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Linux,
    Freebsd,
}

impl From<crate::vm::GuestOs> for Os {
    fn from(g: crate::vm::GuestOs) -> Os {
        match g {
            crate::vm::GuestOs::Linux => Os::Linux,
            crate::vm::GuestOs::Freebsd => Os::Freebsd,
        }
    }
}

/// Helpers both scripts define: where a link is (`where N` prints its stack,
/// empty for home), `in_stack S CMD...` runs a command there, and the LCG
/// every worker draws from (POSIX sh has no $RANDOM).
const LINUX_HELPERS: &str = r#": "${IP:=ip}" "${ETHTOOL:=ethtool}"   # busybox sh would pick its own applets
H=rph   # the home stack: a namespace of its own, never the machine's
in_stack() { s=$1; shift; $IP netns exec "${s:-$H}" "$@"; }
where() { for s in "" $STACKS $CHURN; do $IP -n "${s:-$H}" link show dev "$1" >/dev/null 2>&1 && { echo "$s"; return 0; }; done; return 1; }
mk() { # NAME: create it in the home stack, by its kind letter
	case $1 in
	rpp*) $IP -n $H link add "${1%?}a" type veth peer name "${1%?}b" ;;
	rpt*) $IP -n $H tuntap add "$1" mode tun ;;
	rpa*) $IP -n $H tuntap add "$1" mode tap ;;
	rpb*) $IP -n $H link add "$1" type bridge ;;
	rpl*) $IP -n $H link add "$1" type bond ;;
	rpv*) $IP -n $H link add link rpp0a name "$1" type vlan id $((10 + ${1#rpv})) ;;
	rpm*) $IP -n $H link add link rpp0a name "$1" type macvlan ;;
	rpe*) $IP -n $H link add "$1" type dummy ;;
	esac
}
setup() { $IP netns add $H; for s in $STACKS; do $IP netns add "$s"; done; for n in $TOPS; do mk "$n"; done; }
teardown() { for s in $CHURN $STACKS $H; do $IP netns del "$s" 2>/dev/null; done; }
"#;

const FREEBSD_HELPERS: &str = r#"H=rph   # the home stack: a VNET jail of its own, the stacks its children
in_stack() { s=$1; shift; jexec "$H${s:+.$s}" "$@"; }
where() { for s in "" $STACKS $CHURN; do jexec "$H${s:+.$s}" ifconfig "$1" >/dev/null 2>&1 && { echo "$s"; return 0; }; done; return 1; }
mk() { # NAME: clone it in the home jail and rename it to NAME; a failed rename destroys the clone
	case $1 in
	rpp*) c="epair create" ;;
	rpt*) c="tun create" ;;
	rpa*) c="tap create" ;;
	rpb*) c="bridge create" ;;
	rpl*) c="lagg create" ;;
	rpv*) c="vlan create vlan $((10 + ${1#rpv})) vlandev rpp0a" ;;
	*) return 1 ;;
	esac
	n=$(jexec $H ifconfig $c) || return 1
	case $1 in
	rpp*) jexec $H ifconfig "$n" name "${1%?}a" >/dev/null && jexec $H ifconfig "${n%a}b" name "${1%?}b" >/dev/null ;;
	*) jexec $H ifconfig "$n" name "$1" >/dev/null ;;
	esac || { jexec $H ifconfig "$n" destroy; return 1; }
}
# A new jail's own vnet as ifstress's agents set it: DAD off (no_dad does not
# keep an address from being tentative), bridge members may carry addresses
# (15.0; absent before). Per-vnet: both die with the jail.
tune() { jexec "$1" sysctl net.inet6.ip6.dad_count=0 >/dev/null; jexec "$1" sysctl net.link.bridge.member_ifaddrs=1 >/dev/null 2>&1; return 0; }
setup() { jail -c name=$H vnet persist children.max=64 || exit 1; tune $H; for s in $STACKS; do jexec $H jail -c name="$s" vnet persist && tune "$H.$s"; done; for n in $TOPS; do mk "$n"; done; }
teardown() { jail -r $H 2>/dev/null; } # its children and its clones go with it
"#;

/// The body of `op_KIND`, with `$1` the target (a link, or for stack ops a
/// churn stack) and `$i` a small number; None where the shell has no way
/// to do what the op does.
fn body(os: Os, op: OpKind) -> Option<&'static str> {
    use OpKind::*;
    let linux = match op {
        Create => "mk \"$1\"",
        Destroy | DestroyNetlink => "s=$(where \"$1\") && $IP -n \"${s:-$H}\" link del \"$1\"",
        Move => {
            "s=$(where \"$1\") && t=$(pick $j $STACKS) && [ \"$t\" != \"$s\" ] && $IP -n \"${s:-$H}\" link set \"$1\" netns \"$t\""
        }
        MoveBack => "s=$(where \"$1\") && [ -n \"$s\" ] && $IP -n \"$s\" link set \"$1\" netns $H",
        UpDown => {
            "s=$(where \"$1\") && $IP -n \"${s:-$H}\" link set \"$1\" up && $IP -n \"${s:-$H}\" link set \"$1\" down"
        }
        Mtu => "s=$(where \"$1\") && $IP -n \"${s:-$H}\" link set \"$1\" mtu $((1280 + i))",
        Rename => {
            "s=$(where \"$1\") && $IP -n \"${s:-$H}\" link set \"$1\" down && $IP -n \"${s:-$H}\" link set \"$1\" name \"${1}x\" && $IP -n \"${s:-$H}\" link set \"${1}x\" name \"$1\""
        }
        Media => "s=$(where \"$1\") && in_stack \"$s\" $ETHTOOL \"$1\"",
        Addr4Add => "s=$(where \"$1\") && $IP -n \"${s:-$H}\" addr add 198.18.$i.1/24 dev \"$1\"",
        Addr4Del => "s=$(where \"$1\") && $IP -n \"${s:-$H}\" addr del 198.18.$i.1/24 dev \"$1\"",
        Addr6Add => "s=$(where \"$1\") && $IP -n \"${s:-$H}\" addr add fd00::$i:1/64 dev \"$1\"",
        Addr6Del => "s=$(where \"$1\") && $IP -n \"${s:-$H}\" addr del fd00::$i:1/64 dev \"$1\"",
        SendUdp4 => "s=$(where \"$1\") && in_stack \"$s\" ping -c 1 -W 1 -I \"$1\" 224.0.0.1",
        SendUdp6 => "s=$(where \"$1\") && in_stack \"$s\" ping -6 -c 1 -W 1 \"ff02::1%$1\"",
        MemberAdd => {
            "b=$(pick $j $BRIDGES) && s=$(where \"$1\") && $IP -n \"${s:-$H}\" link set \"$1\" master \"$b\""
        }
        MemberDel => "s=$(where \"$1\") && $IP -n \"${s:-$H}\" link set \"$1\" nomaster",
        StackCreate => {
            "$IP netns add \"$1\" && n=$(pick $j $LINKS) && s=$(where \"$n\") && $IP -n \"${s:-$H}\" link set \"$n\" netns \"$1\""
        }
        StackRemove => "$IP netns del \"$1\"",
        // No shell tool every system has opens a TCP connection and leaves it waiting.
        SendRaw | Capture | TunOpen | SendTcp4 | SendTcp6 => return None,
    };
    let freebsd = match op {
        Create => "mk \"$1\"",
        Destroy | DestroyNetlink => "s=$(where \"$1\") && in_stack \"$s\" ifconfig \"$1\" destroy",
        Move => {
            "s=$(where \"$1\") && t=$(pick $j $STACKS) && [ \"$t\" != \"$s\" ] && { [ -z \"$s\" ] || jexec $H ifconfig \"$1\" -vnet \"$s\"; } && jexec $H ifconfig \"$1\" vnet \"$t\""
        }
        MoveBack => "s=$(where \"$1\") && [ -n \"$s\" ] && jexec $H ifconfig \"$1\" -vnet \"$s\"",
        UpDown => {
            "s=$(where \"$1\") && in_stack \"$s\" ifconfig \"$1\" up && in_stack \"$s\" ifconfig \"$1\" down"
        }
        Mtu => "s=$(where \"$1\") && in_stack \"$s\" ifconfig \"$1\" mtu $((1280 + i))",
        Rename => {
            "s=$(where \"$1\") && in_stack \"$s\" ifconfig \"$1\" name \"${1}x\" && in_stack \"$s\" ifconfig \"${1}x\" name \"$1\""
        }
        Media => "s=$(where \"$1\") && in_stack \"$s\" ifconfig -m \"$1\"",
        Addr4Add => {
            "s=$(where \"$1\") && in_stack \"$s\" ifconfig \"$1\" inet 198.18.$i.1/24 alias"
        }
        Addr4Del => "s=$(where \"$1\") && in_stack \"$s\" ifconfig \"$1\" inet 198.18.$i.1 -alias",
        Addr6Add => {
            "s=$(where \"$1\") && in_stack \"$s\" ifconfig \"$1\" inet6 fd00::$i:1/64 alias"
        }
        Addr6Del => "s=$(where \"$1\") && in_stack \"$s\" ifconfig \"$1\" inet6 fd00::$i:1 -alias",
        // FreeBSD's ping -I takes the interface's address, not its name.
        SendUdp4 => {
            "s=$(where \"$1\") && a=$(in_stack \"$s\" ifconfig \"$1\" inet | awk '/inet /{print $2; exit}') && [ -n \"$a\" ] && in_stack \"$s\" ping -c 1 -t 1 -I \"$a\" 224.0.0.1"
        }
        SendUdp6 => "s=$(where \"$1\") && in_stack \"$s\" ping -6 -c 1 \"ff02::1%$1\"",
        Capture => "s=$(where \"$1\") && in_stack \"$s\" timeout 1 tcpdump -p -c 1 -i \"$1\"",
        // lagg(4) takes laggport, if_bridge(4) addm.
        MemberAdd => {
            "b=$(pick $j $BRIDGES) && s=$(where \"$1\") && case $b in rpl*) in_stack \"$s\" ifconfig \"$b\" laggport \"$1\" ;; *) in_stack \"$s\" ifconfig \"$b\" addm \"$1\" ;; esac"
        }
        MemberDel => {
            "b=$(pick $j $BRIDGES) && s=$(where \"$1\") && case $b in rpl*) in_stack \"$s\" ifconfig \"$b\" -laggport \"$1\" ;; *) in_stack \"$s\" ifconfig \"$b\" deletem \"$1\" ;; esac"
        }
        StackCreate => {
            "jexec $H jail -c name=\"$1\" vnet persist && tune \"$H.$1\" && n=$(pick $j $LINKS) && [ -z \"$(where \"$n\")\" ] && jexec $H ifconfig \"$n\" vnet \"$1\""
        }
        StackRemove => "jexec $H jail -r \"$1\"",
        SendRaw | TunOpen | SendTcp4 | SendTcp6 => return None,
    };
    Some(match os {
        Os::Linux => linux,
        Os::Freebsd => freebsd,
    })
}

/// The shell function of a loop: its name with anything sh would not take
/// in a name made `_`.
fn loop_fn(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("loop_{safe}")
}

/// Which name list an op draws its target from.
fn targets(op: OpKind) -> &'static str {
    match op {
        OpKind::Create | OpKind::Destroy | OpKind::DestroyNetlink => "$TOPS",
        OpKind::MemberAdd | OpKind::MemberDel => "$MEMBERS",
        OpKind::StackCreate | OpKind::StackRemove => "$CHURN",
        _ => "$LINKS",
    }
}

/// Text for a `#` comment line: a newline or carriage return would end the
/// comment and make the rest a command, and other control characters
/// rewrite a terminal showing the script; each becomes `?`. (A suite's
/// name cannot hold them, checked at load; a title and a signature come
/// from a kernel's log and a report.)
fn comment(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The script. `title` and `signature` go into its header.
pub fn render(s: &Suite, os: Os, title: &str, signature: &str) -> String {
    let title = comment(title);
    let signature = comment(signature);
    let name = comment(&s.name);
    let mut links = Vec::new();
    let mut tops = Vec::new();
    let mut members = Vec::new();
    let mut bridges = Vec::new();
    for l in &s.topology.links {
        if os == Os::Freebsd && matches!(l.kind, LinkKind::Macvlan | LinkKind::Eiface) {
            continue;
        }
        for i in 0..l.count {
            let base = format!("rp{}{i}", l.kind.letter() as char);
            if l.kind == LinkKind::Pair {
                tops.push(format!("{base}a"));
                for end in ["a", "b"] {
                    links.push(format!("{base}{end}"));
                    members.push(format!("{base}{end}"));
                }
            } else {
                tops.push(base.clone());
                links.push(base.clone());
                if l.kind.has_members() {
                    bridges.push(base);
                }
            }
        }
    }
    let stacks: Vec<String> = (1..=s.topology.stacks).map(|i| format!("rps{i}")).collect();
    let churn: Vec<String> = (1..=s.topology.churn_stacks)
        .map(|i| format!("rpc{i}"))
        .collect();
    let ops = s.op_kinds();
    let missing: Vec<&str> = ops
        .iter()
        .filter(|o| body(os, **o).is_none())
        .map(|o| o.as_str())
        .collect();
    let mut out = String::new();
    let tools = match os {
        Os::Linux => "ip(8), ethtool(8) and ping(8)",
        Os::Freebsd => "ifconfig(8), jail(8), jexec(8) and ping(8)",
    };
    let _ = writeln!(out, "#!/bin/sh");
    let _ = writeln!(
        out,
        "# Reproducer written by `ifstress repro` for: {title}\n# signature {signature}\n#\n\
         # The minimal suite `{}` as shell loops with {tools}, for machines\n\
         # without ifstress. It is much slower than `ifstress --suite repro.toml`\n\
         # (one process per op instead of one syscall), so it may need far longer\n\
         # to hit, or never hit a narrow race; prefer ifstress where you can.\n\
         # Run it as root in a disposable machine: a hit crashes the kernel.\n\
         # It creates only names starting with rp and removes them at the end.",
        name
    );
    if !missing.is_empty() {
        let _ = writeln!(
            out,
            "# Not expressible in sh, left out: {} (ifstress does them with\n\
             # syscalls no shell tool makes).",
            missing.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "# Usage: repro.sh [SECONDS]   (default {})\n",
        crate::suite::parse_duration(&s.duration)
            .map(|d| d.as_secs())
            .unwrap_or(60)
    );
    let _ = writeln!(
        out,
        "d=${{1:-{}}}; d=${{d%s}}; end=$(( $(date +%s) + d ))",
        crate::suite::parse_duration(&s.duration)
            .map(|d| d.as_secs())
            .unwrap_or(60)
    );
    let list = |v: &[String]| v.join(" ");
    let _ = writeln!(out, "LINKS=\"{}\"", list(&links));
    let _ = writeln!(out, "TOPS=\"{}\"", list(&tops));
    let _ = writeln!(out, "MEMBERS=\"{}\"", list(&members));
    let _ = writeln!(out, "BRIDGES=\"{}\"", list(&bridges));
    let _ = writeln!(out, "STACKS=\"{}\"", list(&stacks));
    let _ = writeln!(out, "CHURN=\"{}\"", list(&churn));
    out.push_str(match os {
        Os::Linux => LINUX_HELPERS,
        Os::Freebsd => FREEBSD_HELPERS,
    });
    out.push_str(
        "# pick N WORD...: word N modulo their count.\n\
         pick() { n=$1; shift; [ $# -gt 0 ] || return 1; shift $(( n % $# )); echo \"$1\"; }\n\
         # next: step this worker's generator r (POSIX sh has no $RANDOM); its\n\
         # high bits, the low ones of an LCG being poor.\n\
         next() { r=$(( (r * 1103515245 + 12345) % 2147483648 )); x=$(( r / 65536 )); }\n",
    );
    for op in &ops {
        if let Some(b) = body(os, *op) {
            let _ = writeln!(out, "op_{}() {{ {b}; }}", op.as_str().replace('-', "_"));
        }
    }
    for lp in &s.loops {
        let fname = loop_fn(&lp.name);
        let runnable: Vec<(OpKind, u32)> = lp
            .ops
            .iter()
            .filter(|(o, _)| body(os, **o).is_some())
            .map(|(o, w)| (*o, *w))
            .collect();
        let total: u64 = runnable.iter().map(|(_, w)| *w as u64).sum();
        let _ = writeln!(out, "{fname}() {{ # worker seed in $1");
        let _ = writeln!(out, "\tr=$1");
        let _ = writeln!(out, "\twhile [ \"$(date +%s)\" -lt \"$end\" ]; do");
        if total == 0 {
            let _ = writeln!(
                out,
                "\t\tsleep 1 # nothing this loop does is expressible in sh"
            );
        } else {
            let _ = writeln!(
                out,
                "\t\tnext; w=$(( x % {total} )); next; i=$(( x % 200 )); next; k=$x; next; j=$x"
            );
            let mut acc = 0u64;
            let mut first = true;
            for (op, w) in &runnable {
                acc += *w as u64;
                let kw = if first { "if" } else { "elif" };
                first = false;
                let _ = writeln!(
                    out,
                    "\t\t{kw} [ $w -lt {acc} ]; then n=$(pick $k {}) && op_{} \"$n\"",
                    targets(*op),
                    op.as_str().replace('-', "_")
                );
            }
            let _ = writeln!(out, "\t\tfi >/dev/null 2>&1");
        }
        let _ = writeln!(out, "\tdone\n}}");
    }
    // Background jobs of a script ignore SIGINT: the trap stops them before
    // the teardown, so nothing is created after it.
    let _ = writeln!(
        out,
        "pids=\"\"\ntrap 'exit 130' INT TERM\ntrap 'kill $pids 2>/dev/null; wait; teardown' EXIT\nsetup"
    );
    let mut seed = 1u32;
    for lp in &s.loops {
        let fname = loop_fn(&lp.name);
        for _ in 0..lp.workers {
            let _ = writeln!(out, "{fname} {} & pids=\"$pids $!\"", seed * 7919);
            seed += 1;
        }
    }
    let _ = writeln!(out, "wait");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vmove_like() -> Suite {
        crate::suite::parse(
            r#"
name = "vmove-repro"
description = "d"
duration = "45s"
[topology]
stacks = 2
links = [{ kind = "pair", count = 2 }, { kind = "tun", count = 1 }]
[[loop]]
name = "lifecycle"
workers = 2
ops = { create = 2, destroy = 1, move = 3, tun-open = 1 }
"#,
            "t",
        )
        .unwrap()
    }

    #[test]
    fn linux_script_names_its_own_objects_only_and_every_op_it_can_do() {
        let s = render(
            &vmove_like(),
            Os::Linux,
            "racebench: seeded race vmove hit",
            "abc",
        );
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains("LINKS=\"rpp0a rpp0b rpp1a rpp1b rpt0\""), "{s}");
        assert!(s.contains("TOPS=\"rpp0a rpp1a rpt0\""));
        assert!(s.contains("STACKS=\"rps1 rps2\""));
        assert!(s.contains("op_move() {"));
        assert!(s.contains("op_create() {"));
        assert!(!s.contains("op_tun_open"));
        assert!(s.contains("Not expressible in sh, left out: tun-open"));
        assert!(s.contains("much slower"));
        // Two workers of the loop, distinct seeds; weights sum to 6 (tun-open out).
        assert_eq!(s.matches("loop_lifecycle 7919 &").count(), 1);
        assert_eq!(s.matches("loop_lifecycle 15838 &").count(), 1);
        assert!(s.contains("w=$(( x % 6 ))"));
        assert!(s.contains("d=${1:-45}"));
        // The machine's own namespace and interfaces are never named.
        assert!(!s.contains("netns 1"));
        assert!(!s.contains("eth0"));
    }

    #[test]
    fn freebsd_script_uses_ifconfig_and_jails() {
        let s = render(&vmove_like(), Os::Freebsd, "t", "abc");
        assert!(s.contains("c=\"epair create\""));
        assert!(s.contains("jail -c name=$H vnet persist"));
        // Its jails get the agents' per-vnet sysctls.
        assert!(
            s.contains("tune $H;") && s.contains("tune \"$H.$s\""),
            "{s}"
        );
        assert!(s.contains("net.inet6.ip6.dad_count=0"));
        assert!(s.contains("jexec $H ifconfig \"$1\" vnet \"$t\""));
        assert!(!s.contains("ip netns"));
    }

    #[test]
    fn the_scripts_are_valid_sh() {
        for os in [Os::Linux, Os::Freebsd] {
            let s = render(&crate::suite::load("all").unwrap(), os, "t", "abc");
            let out = std::process::Command::new("sh")
                .arg("-n")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .and_then(|mut c| {
                    use std::io::Write as _;
                    c.stdin.take().unwrap().write_all(s.as_bytes())?;
                    c.wait_with_output()
                })
                .unwrap();
            assert!(
                out.status.success(),
                "{os:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
