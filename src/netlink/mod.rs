//! Route netlink messages, encoded into a fixed buffer without allocating.
//!
//! Hand-rolled rather than built with netlink-packet-route because ops sit on
//! the hot path: that crate builds a `Vec` of attributes per message. The
//! tests encode the same messages with netlink-packet-route and compare bytes.
//! FreeBSD's netlink(4) (14.0+) speaks the Linux wire format with the same
//! numbers, so both backends use this module.

pub const NETLINK_ROUTE: i32 = 0;

pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const RTM_NEWNSID: u16 = 88;
pub const RTM_GETNSID: u16 = 90;
pub const NETNSA_NSID: u16 = 1;
pub const NETNSA_FD: u16 = 3;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_MULTI: u16 = 0x2;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
pub const NLM_F_DUMP: u16 = 0x300;

pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;

pub const IFLA_IFNAME: u16 = 3;
pub const IFLA_LINK: u16 = 5;
pub const IFLA_MASTER: u16 = 10;
pub const IFLA_LINKINFO: u16 = 18;
pub const IFLA_IFALIAS: u16 = 20;
pub const IFLA_NET_NS_FD: u16 = 28;
pub const IFLA_INFO_KIND: u16 = 1;
pub const IFLA_INFO_DATA: u16 = 2;
pub const VETH_INFO_PEER: u16 = 1;
pub const IFLA_VLAN_ID: u16 = 1;
pub const IFLA_MACVLAN_MODE: u16 = 1;
pub const MACVLAN_MODE_BRIDGE: u32 = 4;

pub const IFA_ADDRESS: u16 = 1;
pub const IFA_LOCAL: u16 = 2;

pub const NLA_F_NESTED: u16 = 0x8000;

const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Room for the largest message ifstress sends (a veth create is ~100 bytes).
pub const MSG_CAPACITY: usize = 512;

/// A netlink message under construction. Overflow is a programming error:
/// messages are small and of fixed shape, so it panics rather than truncate.
pub struct Msg {
    buf: [u8; MSG_CAPACITY],
    len: usize,
    nests: [usize; 4],
    depth: usize,
}

impl Default for Msg {
    fn default() -> Self {
        Msg {
            buf: [0; MSG_CAPACITY],
            len: 0,
            nests: [0; 4],
            depth: 0,
        }
    }
}

impl Msg {
    /// Start a message: nlmsghdr with type, flags and sequence number.
    pub fn begin(&mut self, ty: u16, flags: u16, seq: u32) -> &mut Self {
        self.len = 0;
        self.depth = 0;
        self.put(&0u32.to_ne_bytes());
        self.put(&ty.to_ne_bytes());
        self.put(&flags.to_ne_bytes());
        self.put(&seq.to_ne_bytes());
        self.put(&0u32.to_ne_bytes()); // port id: the kernel fills it
        self
    }

    fn put(&mut self, b: &[u8]) {
        self.buf[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
    }

    fn pad(&mut self) {
        let n = align4(self.len);
        self.buf[self.len..n].fill(0);
        self.len = n;
    }

    /// struct ifinfomsg { family, pad, type, index, flags, change }.
    pub fn ifinfomsg(&mut self, index: i32, flags: u32, change: u32) -> &mut Self {
        self.put(&[0, 0]); // AF_UNSPEC, pad
        self.put(&0u16.to_ne_bytes());
        self.put(&index.to_ne_bytes());
        self.put(&flags.to_ne_bytes());
        self.put(&change.to_ne_bytes());
        debug_assert_eq!(self.len % 4, 0);
        self
    }

    /// struct ifaddrmsg { family, prefixlen, flags, scope, index }.
    pub fn ifaddrmsg(&mut self, family: u8, prefixlen: u8, index: u32) -> &mut Self {
        self.put(&[family, prefixlen, 0, 0]);
        self.put(&index.to_ne_bytes());
        self
    }

    pub fn attr(&mut self, ty: u16, payload: &[u8]) -> &mut Self {
        let len = (4 + payload.len()) as u16;
        self.put(&len.to_ne_bytes());
        self.put(&ty.to_ne_bytes());
        self.put(payload);
        self.pad();
        self
    }

    pub fn attr_u32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.attr(ty, &v.to_ne_bytes())
    }

    pub fn attr_u16(&mut self, ty: u16, v: u16) -> &mut Self {
        self.attr(ty, &v.to_ne_bytes())
    }

    /// A NUL-terminated string attribute, as the kernel's NLA_STRING wants.
    pub fn attr_str(&mut self, ty: u16, s: &[u8]) -> &mut Self {
        let len = (4 + s.len() + 1) as u16;
        self.put(&len.to_ne_bytes());
        self.put(&ty.to_ne_bytes());
        self.put(s);
        self.put(&[0]);
        self.pad();
        self
    }

    pub fn nest_begin(&mut self, ty: u16) -> &mut Self {
        self.nests[self.depth] = self.len;
        self.depth += 1;
        self.put(&0u16.to_ne_bytes());
        // No NLA_F_NESTED: the kernel does not require it on these legacy
        // attributes, and netlink-packet-route and iproute2 leave it off.
        self.put(&ty.to_ne_bytes());
        self
    }

    pub fn nest_end(&mut self) -> &mut Self {
        self.depth -= 1;
        let start = self.nests[self.depth];
        let len = (self.len - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    /// The message as last finished.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Patch nlmsg_len and return the bytes to send.
    pub fn finish(&mut self) -> &[u8] {
        debug_assert_eq!(self.depth, 0, "unclosed nest");
        let len = self.len as u32;
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        &self.buf[..self.len]
    }
}

/// What kind of link to create, in rtnetlink's terms.
#[derive(Debug, Clone, Copy)]
pub enum NewLink<'a> {
    Veth { peer: &'a [u8] },
    Bridge,
    Bond,
    Dummy,
    Vlan { parent: i32, id: u16 },
    Macvlan { parent: i32 },
}

impl Msg {
    /// RTM_NEWLINK that creates `name` (fails with EEXIST if it exists).
    pub fn new_link(&mut self, seq: u32, name: &[u8], kind: NewLink<'_>) -> &[u8] {
        self.begin(
            RTM_NEWLINK,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            seq,
        )
        .ifinfomsg(0, 0, 0)
        .attr_str(IFLA_IFNAME, name);
        match kind {
            NewLink::Vlan { parent, .. } | NewLink::Macvlan { parent } => {
                self.attr_u32(IFLA_LINK, parent as u32);
            }
            _ => {}
        }
        self.nest_begin(IFLA_LINKINFO);
        let k: &[u8] = match kind {
            NewLink::Veth { .. } => b"veth",
            NewLink::Bridge => b"bridge",
            NewLink::Bond => b"bond",
            NewLink::Dummy => b"dummy",
            NewLink::Vlan { .. } => b"vlan",
            NewLink::Macvlan { .. } => b"macvlan",
        };
        self.attr_str(IFLA_INFO_KIND, k);
        match kind {
            NewLink::Veth { peer } => {
                self.nest_begin(IFLA_INFO_DATA)
                    .nest_begin(VETH_INFO_PEER)
                    .ifinfomsg(0, 0, 0)
                    .attr_str(IFLA_IFNAME, peer)
                    .nest_end()
                    .nest_end();
            }
            NewLink::Vlan { id, .. } => {
                self.nest_begin(IFLA_INFO_DATA)
                    .attr_u16(IFLA_VLAN_ID, id)
                    .nest_end();
            }
            NewLink::Macvlan { .. } => {
                self.nest_begin(IFLA_INFO_DATA)
                    .attr_u32(IFLA_MACVLAN_MODE, MACVLAN_MODE_BRIDGE)
                    .nest_end();
            }
            _ => {}
        }
        self.nest_end();
        self.finish()
    }

    /// RTM_DELLINK by name: the name, never an index, so that an op can only
    /// ever hit a link the run named.
    pub fn del_link(&mut self, seq: u32, name: &[u8]) -> &[u8] {
        self.begin(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, seq)
            .ifinfomsg(0, 0, 0)
            .attr_str(IFLA_IFNAME, name)
            .finish()
    }

    /// RTM_DELLINK by index, for FreeBSD, whose rtnl_handle_dellink looks
    /// links up by ifi_index only.
    pub fn del_link_index(&mut self, seq: u32, index: i32) -> &[u8] {
        self.begin(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, seq)
            .ifinfomsg(index, 0, 0)
            .finish()
    }

    /// RTM_NEWLINK (set) on `name`, with one u32 attribute: IFLA_NET_NS_FD
    /// for a move, IFLA_MASTER for membership.
    pub fn set_link_u32(&mut self, seq: u32, name: &[u8], attr: u16, v: u32) -> &[u8] {
        self.begin(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq)
            .ifinfomsg(0, 0, 0)
            .attr_str(IFLA_IFNAME, name)
            .attr_u32(attr, v)
            .finish()
    }

    /// RTM_NEWLINK (set) on `name` with its alias: the run's tag.
    pub fn set_alias(&mut self, seq: u32, name: &[u8], alias: &[u8]) -> &[u8] {
        self.begin(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq)
            .ifinfomsg(0, 0, 0)
            .attr_str(IFLA_IFNAME, name)
            .attr(IFLA_IFALIAS, alias)
            .finish()
    }

    /// RTM_NEWADDR / RTM_DELADDR for one address on interface `index`.
    pub fn addr(&mut self, seq: u32, add: bool, index: u32, addr: &[u8], prefixlen: u8) -> &[u8] {
        let (ty, flags) = if add {
            (
                RTM_NEWADDR,
                NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            )
        } else {
            (RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK)
        };
        let family = if addr.len() == 4 { 2 } else { 10 };
        self.begin(ty, flags, seq)
            .ifaddrmsg(family, prefixlen, index)
            .attr(IFA_LOCAL, addr)
            .attr(IFA_ADDRESS, addr)
            .finish()
    }

    /// RTM_NEWNSID: give the namespace behind `fd` the id `nsid` in the
    /// socket's namespace. The id vanishes when that namespace dies, which
    /// is how a run sees a namespace it released still alive.
    pub fn new_nsid(&mut self, seq: u32, fd: u32, nsid: i32) -> &[u8] {
        self.begin(RTM_NEWNSID, NLM_F_REQUEST | NLM_F_ACK, seq)
            .rtgenmsg()
            .attr_u32(NETNSA_FD, fd)
            .attr_u32(NETNSA_NSID, nsid as u32)
            .finish()
    }

    /// RTM_GETNSID dump: every peer namespace that has an id here.
    pub fn dump_nsids(&mut self, seq: u32) -> &[u8] {
        self.begin(RTM_GETNSID, NLM_F_REQUEST | NLM_F_DUMP, seq)
            .rtgenmsg()
            .finish()
    }

    /// struct rtgenmsg, padded to NLMSG_ALIGNTO.
    pub fn rtgenmsg(&mut self) -> &mut Self {
        self.put(&[0, 0, 0, 0]);
        self
    }

    /// RTM_GETLINK dump of every link.
    pub fn dump_links(&mut self, seq: u32) -> &[u8] {
        self.begin(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq)
            .ifinfomsg(0, 0, 0)
            .finish()
    }
}

/// One message found in a receive buffer.
pub struct Parsed<'a> {
    pub ty: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

/// Walk the messages in a datagram. Stops at the first malformed header.
pub fn messages(mut buf: &[u8]) -> impl Iterator<Item = Parsed<'_>> {
    std::iter::from_fn(move || {
        if buf.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32::from_ne_bytes(buf[0..4].try_into().unwrap()) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            return None;
        }
        let ty = u16::from_ne_bytes(buf[4..6].try_into().unwrap());
        let seq = u32::from_ne_bytes(buf[8..12].try_into().unwrap());
        let payload = &buf[NLMSG_HDRLEN..len];
        buf = &buf[align4(len).min(buf.len())..];
        Some(Parsed { ty, seq, payload })
    })
}

/// The errno carried by an NLMSG_ERROR payload (0 is an ACK).
pub fn error_code(payload: &[u8]) -> Option<i32> {
    payload
        .get(0..4)
        .map(|b| -i32::from_ne_bytes(b.try_into().unwrap()))
}

/// Attributes after a fixed header of `skip` bytes.
pub fn attrs(payload: &[u8], skip: usize) -> impl Iterator<Item = (u16, &[u8])> {
    let mut buf = payload.get(skip..).unwrap_or(&[]);
    std::iter::from_fn(move || {
        if buf.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes(buf[0..2].try_into().unwrap()) as usize;
        let ty = u16::from_ne_bytes(buf[2..4].try_into().unwrap()) & !NLA_F_NESTED;
        if len < 4 || len > buf.len() {
            return None;
        }
        let v = &buf[4..len];
        buf = &buf[align4(len).min(buf.len())..];
        Some((ty, v))
    })
}

/// A link as a dump reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: i32,
    pub name: String,
    pub alias: Option<String>,
}

/// Parse one RTM_NEWLINK payload of a dump.
pub fn parse_link(payload: &[u8]) -> Option<LinkInfo> {
    let index = i32::from_ne_bytes(payload.get(4..8)?.try_into().ok()?);
    let mut info = LinkInfo {
        index,
        name: String::new(),
        alias: None,
    };
    let cstr = |v: &[u8]| {
        let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
        String::from_utf8_lossy(&v[..end]).into_owned()
    };
    for (ty, v) in attrs(payload, IFINFOMSG_LEN) {
        match ty {
            IFLA_IFNAME => info.name = cstr(v),
            IFLA_IFALIAS => info.alias = Some(cstr(v)),
            _ => {}
        }
    }
    Some(info)
}

/// The id in an RTM_NEWNSID message of a dump.
pub fn parse_nsid(payload: &[u8]) -> Option<i32> {
    attrs(payload, 4).find_map(|(t, v)| {
        (t == NETNSA_NSID && v.len() >= 4).then(|| i32::from_ne_bytes(v[..4].try_into().unwrap()))
    })
}

#[cfg(test)]
mod tests;
