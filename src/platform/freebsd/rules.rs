//! What the FreeBSD backend relies on of the kernel's behaviour, as plain
//! functions compiled on every OS so that their tests run on Linux: op/kind
//! pairs that cannot succeed, the kernels whose devfs tun clones keep a jail
//! alive (D51525), how a netgraph reply is matched to its request, the
//! modules a kind needs, and how netgraph names the run's eiface nodes.

use super::abi;
use crate::model::{LinkKind, OpKind};

/// Why `op` can never succeed on a link of `kind` (the executor skips it
/// instead of counting a certain failure as a race's outcome).
pub fn unsupported(op: OpKind, kind: LinkKind) -> Option<&'static str> {
    match (op, kind) {
        // bpf_movein takes DLT_NULL's first 4 bytes as the address family and
        // tunoutput answers EHOSTDOWN unless the device is open (TUN_READY);
        // the run's tun links are never opened by anyone.
        (OpKind::SendRaw, LinkKind::Tun) => {
            Some("bpf write on tun (DLT_NULL, device not open: tunoutput refuses it)")
        }
        // rtnl_handle_dellink destroys through if_clone_destroy; an ng_eiface
        // ifnet has no cloner, so the answer is always EINVAL.
        (OpKind::DestroyNetlink, LinkKind::Eiface) => {
            Some("RTM_DELLINK on ng_eiface (no interface cloner: always EINVAL)")
        }
        _ => None,
    }
}

/// A sysctl every agent sets inside its jail, right after jail_attach. All
/// are per-vnet (CTLFLAG_VNET), so they change the run's own stacks only,
/// and they die with the jail's vnet: nothing to restore, even after a kill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JailSysctl {
    pub name: &'static str,
    pub value: i32,
    /// Kernels without it are fine as they are (ENOENT is not an error).
    pub optional: bool,
}

/// The per-jail settings.
/// - `net.inet6.ip6.dad_count=0`: IN6_IFF_NODAD on SIOCAIFADDR_IN6 does not
///   skip DAD. in6_update_ifa_internal() (sys/netinet6/in6.c) sets
///   IN6_IFF_TENTATIVE whenever in6if_do_dad() holds, and nd6_dad_start()
///   (nd6_nbr.c) clears it at once only for anycast, V_ip6_dad_count == 0 or
///   ND6_IFF_NO_DAD; with the link down the address stays tentative, and
///   IPv6 sends meet source-selection failures instead of the race.
/// - `net.link.bridge.member_ifaddrs=1`: 15.0's if_bridge refuses (EINVAL)
///   a member that has addresses, and an address on a member, unless it is
///   set (bridge(4); b61850c4e6f6). 14.x has no such sysctl and allows both,
///   so with it member and address ops do the same work on both.
pub const JAIL_SYSCTLS: &[JailSysctl] = &[
    JailSysctl {
        name: "net.inet6.ip6.dad_count",
        value: 0,
        optional: false,
    },
    JailSysctl {
        name: "net.link.bridge.member_ifaddrs",
        value: 1,
        optional: true,
    },
];

/// What to say of setting `s` inside jail `jid` when it answered `errno`
/// (0: set); `None` when there is nothing to say.
pub fn jail_sysctl_note(s: &JailSysctl, jid: i32, errno: i32) -> Option<String> {
    match errno {
        0 => None,
        libc::ENOENT if s.optional => None,
        e => Some(format!(
            "ifstress agent: jail {jid}: sysctl {}={}: {}",
            s.name,
            s.value,
            std::io::Error::from_raw_os_error(e)
        )),
    }
}

/// A failed jail_get(lastjid) walking the jail list: ENOENT is its end
/// (kern_jail_get, sys/kern/kern_jail.c: "no jail after %d"); any other
/// errno is an error to report.
pub fn jail_list_end(errno: i32) -> Result<(), i32> {
    if errno == libc::ENOENT {
        Ok(())
    } else {
        Err(errno)
    }
}

/// The kernel modules (modfind name, kldload file) behind a link kind, in
/// load order. ng_eiface nodes are made through a netgraph control socket,
/// which is ng_socket's: without it the kind is unusable even when ng_eiface
/// is loaded.
pub fn modules(kind: LinkKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        LinkKind::Pair => &[("if_epair", "if_epair")],
        LinkKind::Tun | LinkKind::Tap => &[("if_tuntap", "if_tuntap")],
        LinkKind::Bridge => &[("if_bridge", "if_bridge")],
        LinkKind::Lagg => &[("if_lagg", "if_lagg")],
        LinkKind::Vlan => &[("if_vlan", "if_vlan")],
        LinkKind::Eiface => &[("ng_socket", "ng_socket"), ("ng_eiface", "ng_eiface")],
        LinkKind::Macvlan => &[],
    }
}

/// Whether the running kernel has the D51525 fix: before it, a tun/tap cdev
/// cloned by an open inside a jail keeps the opener's credential
/// (tunclone -> tun_create_device -> make_dev_s with mda_cr), so the jail's
/// prison, its vnet and its parent outlive jail_remove until the interface is
/// destroyed, or until reboot if nobody destroys it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum D51525 {
    Fixed,
    Missing,
    /// A development or stable branch whose state the version cannot tell.
    Unknown,
}

/// By `kern.osreldate` (__FreeBSD_version). D51525 landed in main on
/// 2025-07-28, while main was 15.0-CURRENT; stable/15 branched after it, so
/// 15.0-RELEASE (1500068) and everything later has it. 14.3-RELEASE
/// (1403000) and every release before it do not. Between them (15.0-CURRENT
/// snapshots, 14-STABLE after 14.3 and 13-STABLE after 13.5, where a merge
/// may or may not have happened) the version alone cannot say.
pub fn d51525(osreldate: i64) -> D51525 {
    match osreldate {
        v if v >= 1_500_068 => D51525::Fixed,
        1_403_001..=1_500_067 | 1_305_001..=1_399_999 => D51525::Unknown,
        _ => D51525::Missing,
    }
}

/// What the dying-stack check says of a jail left behind after tun-opens
/// inside it (or inside a child of it), by the kernel's D51525 state.
pub fn d51525_note(osreldate: i64) -> Option<String> {
    match d51525(osreldate) {
        D51525::Fixed => None,
        D51525::Missing => Some(format!(
            "expected on kernels without the D51525 fix (this kernel: __FreeBSD_version \
             {osreldate}; a devfs-cloned tun/tap keeps its opener's jail and vnet until reboot)"
        )),
        D51525::Unknown => Some(format!(
            "expected if this kernel (__FreeBSD_version {osreldate}) lacks the D51525 fix \
             (main 2025-07-28; 15.0-RELEASE has it, 14.3-RELEASE does not)"
        )),
    }
}

/// The netgraph name of the run's eiface node for link ordinal `ordinal`,
/// NUL-padded, and the length of the `name:` path that addresses it from
/// any control socket of the home jail's vnet. Written in place: this runs on
/// every eiface create and destroy.
pub fn eiface_node(tag: &str, ordinal: usize) -> ([u8; 16], usize) {
    let mut name = [0u8; 16];
    let mut w = &mut name[..14];
    let _ = std::io::Write::write_fmt(&mut w, format_args!("is{tag}e{ordinal}"));
    let n = name.iter().position(|&b| b == 0).unwrap_or(14);
    (name, n)
}

/// The argument of `msg` if it is the reply to the request with `token`.
/// A control socket also receives replies to requests that timed out
/// earlier, so a reply is taken only by its token.
pub fn ng_reply(msg: &[u8], token: u32) -> Option<&[u8]> {
    const HDR: usize = std::mem::size_of::<abi::NgMsgHdr>();
    if msg.len() < HDR || msg[0] != abi::NG_VERSION {
        return None;
    }
    let u32_at = |o: usize| u32::from_ne_bytes(msg[o..o + 4].try_into().unwrap());
    let arglen = u32_at(4) as usize;
    let (flags, tok) = (u32_at(12), u32_at(16));
    if flags & abi::NGF_RESP == 0 || tok != token || arglen > msg.len() - HDR {
        return None;
    }
    Some(&msg[HDR..HDR + arglen])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_impossible_pairs_are_skipped() {
        assert!(unsupported(OpKind::SendRaw, LinkKind::Tun).is_some());
        assert!(unsupported(OpKind::DestroyNetlink, LinkKind::Eiface).is_some());
        // Their neighbours stay: tap is Ethernet, eiface dies by NGM_SHUTDOWN.
        assert!(unsupported(OpKind::SendRaw, LinkKind::Tap).is_none());
        assert!(unsupported(OpKind::Capture, LinkKind::Tun).is_none());
        assert!(unsupported(OpKind::Destroy, LinkKind::Eiface).is_none());
        assert!(unsupported(OpKind::DestroyNetlink, LinkKind::Pair).is_none());
        let skipped = OpKind::ALL
            .iter()
            .flat_map(|&o| LinkKind::ALL.map(|k| (o, k)))
            .filter(|&(o, k)| unsupported(o, k).is_some())
            .count();
        assert_eq!(skipped, 2);
    }

    #[test]
    fn eiface_needs_the_socket_module_first() {
        let m = modules(LinkKind::Eiface);
        assert_eq!(m[0].0, "ng_socket");
        assert_eq!(m.last().unwrap().0, "ng_eiface");
        assert!(modules(LinkKind::Macvlan).is_empty());
        for k in LinkKind::ALL {
            if k != LinkKind::Macvlan {
                assert!(!modules(k).is_empty(), "{k}");
            }
        }
    }

    #[test]
    fn d51525_by_version() {
        assert_eq!(d51525(1_403_000), D51525::Missing); // 14.3-RELEASE
        assert_eq!(d51525(1_402_000), D51525::Missing);
        assert_eq!(d51525(1_305_000), D51525::Missing); // 13.5-RELEASE
        assert_eq!(d51525(1_403_500), D51525::Unknown); // 14-STABLE after 14.3
        assert_eq!(d51525(1_500_050), D51525::Unknown); // 15.0-CURRENT
        assert_eq!(d51525(1_500_068), D51525::Fixed); // 15.0-RELEASE
        assert_eq!(d51525(1_600_000), D51525::Fixed);
        assert!(d51525_note(1_600_000).is_none());
        let n = d51525_note(1_403_000).unwrap();
        assert!(n.starts_with("expected on kernels without the D51525 fix"));
        assert!(n.contains("1403000"));
        assert!(
            d51525_note(1_500_050)
                .unwrap()
                .contains("lacks the D51525 fix")
        );
    }

    #[test]
    fn eiface_names_fit_a_netgraph_path() {
        let (n, len) = eiface_node("beef", 999);
        assert_eq!(&n[..len], b"isbeefe999");
        assert!(n[len..].iter().all(|&b| b == 0));
        // `name:` must fit sockaddr_ng's 14 data bytes with its NUL.
        assert!(len + 2 <= 14);
        assert!(len < abi::NG_NODESIZ);
    }

    fn reply(token: u32, flags: u32, arg: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8; 56];
        m[0] = abi::NG_VERSION;
        m[4..8].copy_from_slice(&(arg.len() as u32).to_ne_bytes());
        m[12..16].copy_from_slice(&flags.to_ne_bytes());
        m[16..20].copy_from_slice(&token.to_ne_bytes());
        m.extend_from_slice(arg);
        m
    }

    #[test]
    fn a_reply_is_taken_only_by_its_token() {
        let m = reply(7, abi::NGF_RESP, b"ngeth3\0");
        assert_eq!(ng_reply(&m, 7), Some(&b"ngeth3\0"[..]));
        // A late reply to an earlier request, or a request, or garbage.
        assert_eq!(ng_reply(&m, 8), None);
        assert_eq!(ng_reply(&reply(7, 0, b"x"), 7), None);
        assert_eq!(ng_reply(&m[..40], 7), None);
        let mut bad = m.clone();
        bad[4..8].copy_from_slice(&100u32.to_ne_bytes());
        assert_eq!(ng_reply(&bad, 7), None);
        let mut old = m;
        old[0] = abi::NG_VERSION - 1;
        assert_eq!(ng_reply(&old, 7), None);
    }

    #[test]
    fn jail_sysctls_are_said_only_when_they_matter() {
        let dad = JAIL_SYSCTLS[0];
        let br = JAIL_SYSCTLS[1];
        assert_eq!(
            (dad.name, dad.value, dad.optional),
            ("net.inet6.ip6.dad_count", 0, false)
        );
        assert_eq!(br.name, "net.link.bridge.member_ifaddrs");
        assert_eq!(jail_sysctl_note(&dad, 7, 0), None);
        // 14.x has no member_ifaddrs: nothing to say.
        assert_eq!(jail_sysctl_note(&br, 7, libc::ENOENT), None);
        let n = jail_sysctl_note(&dad, 7, libc::EPERM).unwrap();
        assert!(n.contains("jail 7") && n.contains("dad_count=0"), "{n}");
        assert!(jail_sysctl_note(&br, 7, libc::EPERM).is_some());
    }

    #[test]
    fn only_enoent_ends_the_jail_list() {
        assert_eq!(jail_list_end(libc::ENOENT), Ok(()));
        for e in [libc::EFAULT, libc::EINVAL, libc::EPERM, libc::ENOMEM] {
            assert_eq!(jail_list_end(e), Err(e));
        }
    }

    /// known-issues.toml's D51525 ranges and `d51525` are one reading: the
    /// rule marks exactly the kernels `d51525` calls Missing (from 13.0 on,
    /// where both speak).
    #[test]
    fn d51525_known_issue_ranges_agree_with_the_version_rule() {
        use crate::check::known::{Kernel, load};
        let issues = load();
        let rule = issues.iter().find(|i| i.id == "D51525").unwrap();
        for v in [
            1_300_000, 1_305_000, 1_305_001, 1_399_999, 1_400_000, 1_403_000, 1_403_001, 1_500_000,
            1_500_067, 1_500_068, 1_600_000,
        ] {
            let k = Kernel {
                os: Some("freebsd"),
                osreldate: Some(v),
            };
            assert_eq!(rule.applies_to(k), d51525(v) == D51525::Missing, "{v}");
        }
    }
}
