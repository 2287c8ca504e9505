//! The vocabulary shared by suites, the engine and the backends: what kinds of
//! links exist, what an op is, and how the run names the objects it creates.
//!
//! Names are platform-neutral on purpose: a suite says `pair`, the FreeBSD
//! backend makes an epair and the Linux one a veth.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A kind of interface a suite can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum LinkKind {
    /// Two ends joined back to back: epair(4) / veth.
    Pair,
    /// Layer-3 tunnel device: tun(4) / tun.
    Tun,
    /// Layer-2 tunnel device: tap(4) / tap.
    Tap,
    /// if_bridge(4) / Linux bridge.
    Bridge,
    /// Link aggregation: lagg(4) / bonding.
    Lagg,
    /// 802.1Q VLAN on top of a pair end: vlan(4) / 8021q.
    Vlan,
    /// A MAC-address child of a pair end; Linux only (FreeBSD has no peer).
    Macvlan,
    /// A standalone Ethernet interface: netgraph ng_eiface / Linux dummy.
    Eiface,
}

impl LinkKind {
    pub const ALL: [LinkKind; 8] = [
        LinkKind::Pair,
        LinkKind::Tun,
        LinkKind::Tap,
        LinkKind::Bridge,
        LinkKind::Lagg,
        LinkKind::Vlan,
        LinkKind::Macvlan,
        LinkKind::Eiface,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Pair => "pair",
            LinkKind::Tun => "tun",
            LinkKind::Tap => "tap",
            LinkKind::Bridge => "bridge",
            LinkKind::Lagg => "lagg",
            LinkKind::Vlan => "vlan",
            LinkKind::Macvlan => "macvlan",
            LinkKind::Eiface => "eiface",
        }
    }

    /// One letter in interface names; names must fit IFNAMSIZ on both systems.
    pub fn letter(self) -> u8 {
        match self {
            LinkKind::Pair => b'p',
            LinkKind::Tun => b't',
            LinkKind::Tap => b'a',
            LinkKind::Bridge => b'b',
            LinkKind::Lagg => b'l',
            LinkKind::Vlan => b'v',
            LinkKind::Macvlan => b'm',
            LinkKind::Eiface => b'e',
        }
    }

    /// Kinds that live on top of a parent link (a pair end).
    pub fn needs_parent(self) -> bool {
        matches!(self, LinkKind::Vlan | LinkKind::Macvlan)
    }

    /// Kinds that can take member links.
    pub fn has_members(self) -> bool {
        matches!(self, LinkKind::Bridge | LinkKind::Lagg)
    }

    pub fn is_tunnel(self) -> bool {
        matches!(self, LinkKind::Tun | LinkKind::Tap)
    }
}

impl fmt::Display for LinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One kind of kernel action. Each maps to one syscall path per backend; the
/// mapping is listed in ARCHITECTURE.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum OpKind {
    /// Clone-create the target link (a pair creates both ends).
    Create,
    /// Destroy through the backend's primary path (SIOCIFDESTROY / RTM_DELLINK).
    Destroy,
    /// Destroy through netlink RTM_DELLINK, to race the ioctl path.
    DestroyNetlink,
    /// Move the link into another (non-home) stack.
    Move,
    /// Move the link back into the home stack.
    MoveBack,
    /// Toggle IFF_UP with SIOCGIFFLAGS/SIOCSIFFLAGS.
    UpDown,
    /// Alternate the MTU with SIOCSIFMTU.
    Mtu,
    /// Toggle between the link's two names with SIOCSIFNAME.
    Rename,
    /// Query media/link settings through the driver (SIOCGIFMEDIA / SIOCETHTOOL).
    Media,
    Addr4Add,
    Addr4Del,
    Addr6Add,
    Addr6Del,
    /// UDP to 224.0.0.1 out of the link.
    SendUdp4,
    /// UDP to ff02::1%link.
    SendUdp6,
    /// A raw Ethernet frame out of the link (bpf write / AF_PACKET).
    SendRaw,
    /// Attach a capture to the link and read without blocking (bpf / AF_PACKET).
    Capture,
    /// Open the tun/tap device node inside a stack, creating an interface whose
    /// life is the descriptor's, and hold it for a while.
    TunOpen,
    /// Add a member to a bridge or lagg.
    MemberAdd,
    /// Remove a member from a bridge or lagg.
    MemberDel,
    /// Create a churn stack and move a link into it at creation.
    StackCreate,
    /// Remove a churn stack with whatever is still inside it.
    StackRemove,
    // Appended, so that the indices of the others (journals) stay.
    /// A TCP connect out of the link to an unassigned host of its own run
    /// subnet (198.18.x.y+1): the SYN waits on ARP across the link and is
    /// sent again by TCP's timers, so tcp_output runs on the link while it
    /// is detached or moved. A few such connections stay open per worker.
    SendTcp4,
    /// The same over IPv6 (fd00:6966:7374:<link>::2, waiting on ND).
    SendTcp6,
}

impl OpKind {
    pub const ALL: [OpKind; 24] = [
        OpKind::Create,
        OpKind::Destroy,
        OpKind::DestroyNetlink,
        OpKind::Move,
        OpKind::MoveBack,
        OpKind::UpDown,
        OpKind::Mtu,
        OpKind::Rename,
        OpKind::Media,
        OpKind::Addr4Add,
        OpKind::Addr4Del,
        OpKind::Addr6Add,
        OpKind::Addr6Del,
        OpKind::SendUdp4,
        OpKind::SendUdp6,
        OpKind::SendRaw,
        OpKind::Capture,
        OpKind::TunOpen,
        OpKind::MemberAdd,
        OpKind::MemberDel,
        OpKind::StackCreate,
        OpKind::StackRemove,
        OpKind::SendTcp4,
        OpKind::SendTcp6,
    ];
    pub const COUNT: usize = Self::ALL.len();

    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Create => "create",
            OpKind::Destroy => "destroy",
            OpKind::DestroyNetlink => "destroy-netlink",
            OpKind::Move => "move",
            OpKind::MoveBack => "move-back",
            OpKind::UpDown => "up-down",
            OpKind::Mtu => "mtu",
            OpKind::Rename => "rename",
            OpKind::Media => "media",
            OpKind::Addr4Add => "addr4-add",
            OpKind::Addr4Del => "addr4-del",
            OpKind::Addr6Add => "addr6-add",
            OpKind::Addr6Del => "addr6-del",
            OpKind::SendUdp4 => "send-udp4",
            OpKind::SendUdp6 => "send-udp6",
            OpKind::SendTcp4 => "send-tcp4",
            OpKind::SendTcp6 => "send-tcp6",
            OpKind::SendRaw => "send-raw",
            OpKind::Capture => "capture",
            OpKind::TunOpen => "tun-open",
            OpKind::MemberAdd => "member-add",
            OpKind::MemberDel => "member-del",
            OpKind::StackCreate => "stack-create",
            OpKind::StackRemove => "stack-remove",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(i: usize) -> Option<OpKind> {
        Self::ALL.get(i).copied()
    }

    /// What an op acts on, which decides the links the planner may pick.
    pub fn target(self) -> OpTarget {
        match self {
            OpKind::StackCreate | OpKind::StackRemove => OpTarget::Stack,
            OpKind::TunOpen => OpTarget::Stack,
            OpKind::MemberAdd | OpKind::MemberDel => OpTarget::Master,
            OpKind::Create | OpKind::Destroy | OpKind::DestroyNetlink => OpTarget::Creatable,
            _ => OpTarget::AnyLink,
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpTarget {
    /// Any interface the run created.
    AnyLink,
    /// A link that is created and destroyed as a whole (a pair's first end, a
    /// tun, a bridge ...), never the second end of a pair.
    Creatable,
    /// A bridge or lagg, with a member picked among pair ends.
    Master,
    /// A stack rather than a link.
    Stack,
}

/// The run's tag: every object the run creates carries it, and teardown and
/// `ifstress cleanup` touch nothing without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// Four lowercase hex digits, unique per run.
    pub id: String,
}

/// Prefix of every stack name (jail or netns) any run ever creates.
pub const STACK_PREFIX: &str = "ifstress-";
/// Prefix of every interface description/alias any run ever sets.
pub const ALIAS_PREFIX: &str = "ifstress:";
/// Interface names start with this, then the run id.
pub const LINK_PREFIX: &str = "is";

impl Tag {
    pub fn new(id: u16) -> Tag {
        Tag {
            id: format!("{id:04x}"),
        }
    }

    pub fn parse(id: &str) -> Option<Tag> {
        (id.len() == 4
            && id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
        .then(|| Tag { id: id.to_string() })
    }

    pub fn stack_name(&self, role: StackRole, index: usize) -> String {
        let r = match role {
            StackRole::Home => 'h',
            StackRole::Fixed => 's',
            StackRole::Churn => 'c',
        };
        self.named_stack(r, index)
    }

    /// A stack a backend keeps for itself outside the layout (a scratch stack
    /// for probing, an observer), tagged like the others.
    pub fn named_stack(&self, letter: char, index: usize) -> String {
        format!("{STACK_PREFIX}{}-{letter}{index}", self.id)
    }

    pub fn alias(&self) -> String {
        format!("{ALIAS_PREFIX}{}", self.id)
    }

    /// Interface name for link `index` of `kind`; `alt` is the rename target,
    /// `end` distinguishes the second end of a pair.
    pub fn link_name(&self, kind: LinkKind, index: usize, end: u8, alt: bool) -> IfName {
        let mut s = format!("{LINK_PREFIX}{}{}{index}", self.id, kind.letter() as char);
        if end != 0 {
            s.push((b'a' + end) as char);
        }
        if alt {
            s.push('r');
        }
        IfName::new(&s).expect("link names are short by construction")
    }

    /// The run tag a stack name carries, if it is one of ifstress's.
    pub fn of_stack(name: &str) -> Option<Tag> {
        let rest = name.strip_prefix(STACK_PREFIX)?;
        (rest.len() > 5 && rest.as_bytes()[4] == b'-')
            .then(|| Tag::parse(&rest[..4]))
            .flatten()
    }

    /// The run tag an interface alias/description carries, if any.
    pub fn of_alias(alias: &str) -> Option<Tag> {
        Tag::parse(alias.strip_prefix(ALIAS_PREFIX)?)
    }
}

/// Whose objects a leftover check or a cleanup concerns.
#[derive(Clone, Copy)]
pub enum Scope<'a> {
    /// One run's.
    Run(&'a Tag),
    /// Every run's (`cleanup --force`).
    All,
    /// Every run's that this predicate claims. `cleanup` passes one that
    /// takes each tag's run lock as the tag is met (and holds it), so a run
    /// that is alive, or starts meanwhile, is never swept.
    Claimed(&'a dyn Fn(&Tag) -> bool),
}

impl std::fmt::Debug for Scope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Run(t) => write!(f, "Run({})", t.id),
            Scope::All => write!(f, "All"),
            Scope::Claimed(_) => write!(f, "Claimed"),
        }
    }
}

impl Scope<'_> {
    fn owns(self, tag: Option<Tag>) -> bool {
        match (self, tag) {
            (_, None) => false,
            (Scope::Run(t), Some(x)) => *t == x,
            (Scope::All, Some(_)) => true,
            (Scope::Claimed(claim), Some(x)) => claim(&x),
        }
    }

    /// Does a stack name (jail or netns) fall in this scope?
    pub fn owns_stack(self, name: &str) -> bool {
        self.owns(Tag::of_stack(name))
    }

    /// Does an interface alias/description fall in this scope?
    pub fn owns_alias(self, alias: &str) -> bool {
        self.owns(Tag::of_alias(alias))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackRole {
    /// Where links are created and where move-back returns them.
    Home,
    /// Lives for the whole run.
    Fixed,
    /// Created and removed by stack-create/stack-remove.
    Churn,
}

/// Maximum interface name length including the NUL, the same on FreeBSD and Linux.
pub const IFNAMSIZ: usize = 16;

/// An interface name kept inline, NUL-terminated, so that ops copy it into
/// ioctl and netlink buffers without allocating.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IfName {
    bytes: [u8; IFNAMSIZ],
    len: u8,
}

impl IfName {
    pub fn new(s: &str) -> Option<IfName> {
        let b = s.as_bytes();
        if b.is_empty() || b.len() >= IFNAMSIZ || b.contains(&0) {
            return None;
        }
        let mut bytes = [0u8; IFNAMSIZ];
        bytes[..b.len()].copy_from_slice(b);
        Some(IfName {
            bytes,
            len: b.len() as u8,
        })
    }

    /// The name without its NUL.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The whole IFNAMSIZ buffer, NUL-padded, as ifreq wants it.
    pub fn raw(&self) -> &[u8; IFNAMSIZ] {
        &self.bytes
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("?")
    }
}

impl fmt::Debug for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The OS a disposable guest runs (`vm run --guest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuestOs {
    /// An official FreeBSD VM image (BASIC-CLOUDINIT), provisioned by a config drive.
    Freebsd,
    /// A Linux kernel (`--image` is the vmlinuz) booted with a generated initramfs.
    Linux,
}

impl GuestOs {
    /// The platform's name, as its reports and known-issue rules say it.
    pub fn name(self) -> &'static str {
        match self {
            GuestOs::Freebsd => "freebsd",
            GuestOs::Linux => "linux",
        }
    }
}

/// QEMU's accelerator for guests.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// KVM when it works here, else TCG.
    Auto,
    Kvm,
    /// Software emulation: slow, but works anywhere.
    Tcg,
}

/// A child seed from a parent and an index (a guest of a run, a slice of an
/// A/B comparison): SplitMix64's finaliser over both, so that children of
/// nearby parents do not collide the way `parent + index` does. Below 2^63:
/// seeds travel through TOML, whose integers are signed.
pub fn derive_seed(parent: u64, index: u64) -> u64 {
    let mut z = parent ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) >> 1
}

/// The longest duration ifstress takes anywhere (a run, a grace, a budget,
/// a timeout): a year. Bounded at parse time so that adding one to an
/// instant cannot overflow (`Instant + 500000000000y` panics in std).
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(366 * 24 * 3600);

/// `from + d`, saturating at `from + MAX_DURATION`: deadlines never panic,
/// whatever a caller passes.
pub fn deadline(from: std::time::Instant, d: std::time::Duration) -> std::time::Instant {
    from.checked_add(d.min(MAX_DURATION))
        .or_else(|| from.checked_add(std::time::Duration::from_secs(3600)))
        .unwrap_or(from)
}

/// The characters a name may hold when it reaches generated shell (a
/// suite's and its loops' names, module and tool file names): letters,
/// digits and `._-`, at most 64, not starting with `-`. Such a word needs
/// no quoting in sh and cannot end a comment line.
pub fn safe_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 64 {
        return Err(format!("{:?} must be 1 to 64 characters", s));
    }
    if s.starts_with('-') {
        return Err(format!("{s:?} must not start with `-`"));
    }
    match s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(c) => Err(format!(
            "{s:?} holds {c:?}; only letters, digits and `._-` are allowed (names reach generated shell scripts)"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names_are_words_sh_takes_as_they_are() {
        for ok in ["vmove", "my-suite_2.1", "a"] {
            assert!(safe_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-x",
            "a b",
            "x\ntouch /tmp/p #",
            "$(reboot)",
            "é",
            &"a".repeat(65),
        ] {
            assert!(safe_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_deadline_never_overflows() {
        let now = std::time::Instant::now();
        let far = deadline(now, std::time::Duration::MAX);
        assert_eq!(far, now + MAX_DURATION);
        let near = deadline(now, std::time::Duration::from_secs(3));
        assert_eq!(near, now + std::time::Duration::from_secs(3));
    }

    #[test]
    fn op_kind_index_round_trips() {
        for (i, k) in OpKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
            assert_eq!(OpKind::from_index(i), Some(*k));
        }
        assert_eq!(OpKind::from_index(OpKind::COUNT), None);
    }

    #[test]
    fn names_fit_ifnamsiz_and_are_tagged() {
        let t = Tag::new(0xbeef);
        let n = t.link_name(LinkKind::Pair, 999, 1, true);
        assert_eq!(n.as_str(), "isbeefp999br");
        assert!(n.as_bytes().len() < IFNAMSIZ);
        assert_eq!(t.stack_name(StackRole::Churn, 3), "ifstress-beef-c3");
        assert!(Scope::Run(&t).owns_stack("ifstress-beef-c3"));
        assert!(!Scope::Run(&t).owns_stack("ifstress-beee-c3"));
        assert!(Scope::All.owns_stack("ifstress-beee-c3"));
        assert!(!Scope::All.owns_stack("ifstress-xyzw-c3"));
        assert!(!Scope::All.owns_stack("docker"));
        assert!(Scope::Run(&t).owns_alias("ifstress:beef"));
        assert!(!Scope::All.owns_alias("ifstress:BEEF"));
        assert!(!Scope::All.owns_alias("my uplink"));
        // A live run's objects (its tag not claimed) are spared by a sweep.
        let claim = |t: &Tag| t.id != "beef";
        assert!(!Scope::Claimed(&claim).owns_stack("ifstress-beef-h0"));
        assert!(Scope::Claimed(&claim).owns_stack("ifstress-beee-h0"));
        assert!(!Scope::Claimed(&claim).owns_alias("ifstress:beef"));
        assert!(!Scope::Claimed(&claim).owns_stack("docker"));
    }

    #[test]
    fn ifname_rejects_overlong_and_nul() {
        assert!(IfName::new("0123456789abcdef").is_none());
        assert!(IfName::new("").is_none());
        assert!(IfName::new("a\0b").is_none());
        assert_eq!(IfName::new("epair0a").unwrap().raw()[7], 0);
    }
}
