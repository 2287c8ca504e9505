//! FreeBSD's ioctl request numbers and the structures they carry, as
//! amd64 lays them out. Plain Rust with fixed-width fields so that the tests
//! (which run on Linux) check every request number and size.
//!
//! Sources: sys/sys/ioccom.h (encoding), sys/sys/sockio.h, net/if.h,
//! net/if_media.h, netinet/in_var.h, netinet6/in6_var.h, net/if_lagg.h,
//! net/if_bridgevar.h, net/if_vlan_var.h, net/bpf.h, netgraph/ng_message.h,
//! netgraph/ng_eiface.h, sys/jail.h. Layouts are those of FreeBSD 14/15;
//! tests/freebsd_abi.rs checks every value here against FreeBSD's headers.

// sys/sys/ioccom.h
pub const IOCPARM_MASK: u64 = 0x1fff;
pub const IOC_OUT: u64 = 0x4000_0000;
pub const IOC_IN: u64 = 0x8000_0000;
pub const IOC_INOUT: u64 = IOC_IN | IOC_OUT;

pub const fn ioc(dir: u64, group: u8, num: u8, len: usize) -> u64 {
    dir | ((len as u64 & IOCPARM_MASK) << 16) | ((group as u64) << 8) | num as u64
}
pub const fn iow(group: u8, num: u8, len: usize) -> u64 {
    ioc(IOC_IN, group, num, len)
}
pub const fn iowr(group: u8, num: u8, len: usize) -> u64 {
    ioc(IOC_INOUT, group, num, len)
}
pub const fn ior(group: u8, num: u8, len: usize) -> u64 {
    ioc(IOC_OUT, group, num, len)
}

use std::mem::size_of;

pub const IFNAMSIZ: usize = 16;

/// struct ifreq: name and a 16-byte union (sockaddr / ifreq_buffer / jid / flags ...).
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct Ifreq {
    pub name: [u8; IFNAMSIZ],
    pub u: [u8; 16],
}

impl Ifreq {
    pub fn new(name: &[u8; IFNAMSIZ]) -> Ifreq {
        Ifreq {
            name: *name,
            u: [0; 16],
        }
    }
    pub fn set_i32(&mut self, v: i32) {
        self.u[..4].copy_from_slice(&v.to_ne_bytes());
    }
    pub fn get_i32(&self) -> i32 {
        i32::from_ne_bytes(self.u[..4].try_into().unwrap())
    }
    /// ifr_index: a short, read unsigned (indexes run up to 65535).
    pub fn index(&self) -> i32 {
        u16::from_ne_bytes(self.u[0..2].try_into().unwrap()) as i32
    }
    /// ifr_flags (low 16 bits) and ifr_flagshigh.
    pub fn flags(&self) -> u32 {
        let lo = u16::from_ne_bytes(self.u[0..2].try_into().unwrap()) as u32;
        let hi = u16::from_ne_bytes(self.u[2..4].try_into().unwrap()) as u32;
        lo | hi << 16
    }
    pub fn set_flags(&mut self, f: u32) {
        self.u[0..2].copy_from_slice(&(f as u16).to_ne_bytes());
        self.u[2..4].copy_from_slice(&((f >> 16) as u16).to_ne_bytes());
    }
    /// ifr_data / ifr_buffer.buffer: a user pointer.
    pub fn set_ptr(&mut self, at: usize, p: usize) {
        self.u[at..at + 8].copy_from_slice(&(p as u64).to_ne_bytes());
    }
    /// struct ifreq_buffer { size_t length; void *buffer; }
    pub fn set_buffer(&mut self, p: usize, len: usize) {
        self.u[0..8].copy_from_slice(&(len as u64).to_ne_bytes());
        self.set_ptr(8, p);
    }
}

/// struct ifmediareq (net/if.h).
#[repr(C)]
pub struct IfmediaReq {
    pub name: [u8; IFNAMSIZ],
    pub current: i32,
    pub mask: i32,
    pub status: i32,
    pub active: i32,
    pub count: i32,
    pub ulist: u64,
}

/// struct sockaddr_in, with BSD's sin_len. Aligned as C's, whose sin_addr
/// is a struct in_addr around a uint32_t.
#[repr(C, align(4))]
#[derive(Clone, Copy, Default)]
pub struct SockaddrIn {
    pub len: u8,
    pub family: u8,
    pub port: u16,
    pub addr: [u8; 4],
    pub zero: [u8; 8],
}

impl SockaddrIn {
    pub fn new(addr: [u8; 4]) -> SockaddrIn {
        SockaddrIn {
            len: 16,
            family: AF_INET,
            port: 0,
            addr,
            zero: [0; 8],
        }
    }
}

/// struct sockaddr_in6, with BSD's sin6_len.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct SockaddrIn6 {
    pub len: u8,
    pub family: u8,
    pub port: u16,
    pub flowinfo: u32,
    pub addr: [u8; 16],
    pub scope_id: u32,
}

impl SockaddrIn6 {
    pub fn new(addr: [u8; 16]) -> SockaddrIn6 {
        SockaddrIn6 {
            len: 28,
            family: AF_INET6,
            port: 0,
            flowinfo: 0,
            addr,
            scope_id: 0,
        }
    }
}

/// struct ip_mreqn (netinet/in.h): FreeBSD's IP_MULTICAST_IF accepts it to
/// pick the outgoing interface by index.
#[repr(C)]
pub struct IpMreqn {
    pub multiaddr: [u8; 4],
    pub address: [u8; 4],
    pub ifindex: i32,
}

pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 28;
/// sys/sys/socket.h (FreeBSD 14+).
pub const AF_NETLINK: i32 = 38;
pub const AF_NETGRAPH: i32 = 32;
/// netgraph/ng_socket.h
pub const NG_CONTROL: i32 = 2;

/// struct in_aliasreq (netinet/in_var.h).
#[repr(C)]
pub struct InAliasreq {
    pub name: [u8; IFNAMSIZ],
    pub addr: SockaddrIn,
    pub broadaddr: SockaddrIn,
    pub mask: SockaddrIn,
    pub vhid: i32,
}

/// struct in6_addrlifetime.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct In6Addrlifetime {
    pub expire: i64,
    pub preferred: i64,
    pub vltime: u32,
    pub pltime: u32,
}

pub const ND6_INFINITE_LIFETIME: u32 = 0xffff_ffff;

/// struct in6_aliasreq (netinet6/in6_var.h).
#[repr(C)]
pub struct In6Aliasreq {
    pub name: [u8; IFNAMSIZ],
    pub addr: SockaddrIn6,
    pub dstaddr: SockaddrIn6,
    pub prefixmask: SockaddrIn6,
    pub flags: i32,
    pub lifetime: In6Addrlifetime,
    pub vhid: i32,
}

/// struct in6_ifreq: the name and a union whose largest member is struct
/// icmp6_ifstat (34 uint64_t counters).
#[repr(C)]
pub struct In6Ifreq {
    pub name: [u8; IFNAMSIZ],
    pub u: [u64; 34],
}

impl In6Ifreq {
    pub fn with_addr(name: &[u8; IFNAMSIZ], a: SockaddrIn6) -> In6Ifreq {
        let mut r = In6Ifreq {
            name: *name,
            u: [0; 34],
        };
        // SAFETY: SockaddrIn6 is plain data of 28 bytes; u has 272.
        unsafe {
            std::ptr::copy_nonoverlapping(
                &a as *const SockaddrIn6 as *const u8,
                r.u.as_mut_ptr() as *mut u8,
                size_of::<SockaddrIn6>(),
            )
        };
        r
    }
}

/// struct ifdrv (net/if.h), carrier of SIOCSDRVSPEC.
#[repr(C)]
pub struct Ifdrv {
    pub name: [u8; IFNAMSIZ],
    pub cmd: u64,
    pub len: u64,
    pub data: u64,
}

/// struct ifbreq (net/if_bridgevar.h): the bridge checks ifd_len against
/// its exact size.
#[repr(C)]
pub struct Ifbreq {
    pub ifsname: [u8; IFNAMSIZ],
    pub ifsflags: u32,
    pub stpflags: u32,
    pub path_cost: u32,
    pub portno: u8,
    pub priority: u8,
    pub proto: u8,
    pub role: u8,
    pub state: u8,
    pub addrcnt: u32,
    pub addrmax: u32,
    pub addrexceeded: u32,
    pub pad: [u8; 32],
}

pub const BRDGADD: u64 = 0;
pub const BRDGDEL: u64 = 1;

/// struct lagg_reqport (net/if_lagg.h) with struct lacp_opreq (32 bytes).
#[repr(C)]
pub struct LaggReqport {
    pub ifname: [u8; IFNAMSIZ],
    pub portname: [u8; IFNAMSIZ],
    pub prio: u32,
    pub flags: u32,
    pub lacp: [u16; 16],
}

/// struct vlanreq (net/if_vlan_var.h), passed in ifr_data to SIOCIFCREATE2.
#[repr(C)]
pub struct Vlanreq {
    pub parent: [u8; IFNAMSIZ],
    pub tag: u16,
    pub proto: u16,
}

pub const ETHERTYPE_VLAN: u16 = 0x8100;

/// struct if_clonereq (net/if.h).
#[repr(C)]
pub struct IfCloneReq {
    pub total: i32,
    pub count: i32,
    pub buffer: u64,
}

/// struct ng_mesg's header (netgraph/ng_message.h).
#[repr(C)]
pub struct NgMsgHdr {
    pub version: u8,
    pub spare: u8,
    pub spare2: u16,
    pub arglen: u32,
    pub cmd: u32,
    pub flags: u32,
    pub token: u32,
    pub typecookie: u32,
    pub cmdstr: [u8; 32],
}

pub const NG_VERSION: u8 = 8;
pub const NGM_GENERIC_COOKIE: u32 = 1137070366;
pub const NGM_SHUTDOWN: u32 = 1;
pub const NGM_MKPEER: u32 = 2;
pub const NGM_EIFACE_COOKIE: u32 = 948105892;
pub const NGM_EIFACE_GET_IFNAME: u32 = 1;
pub const NG_HOOKSIZ: usize = 32;
pub const NG_TYPESIZ: usize = 32;

/// struct ngm_mkpeer.
#[repr(C)]
pub struct NgmMkpeer {
    pub type_: [u8; NG_TYPESIZ],
    pub ourhook: [u8; NG_HOOKSIZ],
    pub peerhook: [u8; NG_HOOKSIZ],
}

/// struct sockaddr_ng (netgraph/ng_socket.h).
#[repr(C)]
pub struct SockaddrNg {
    pub len: u8,
    pub family: u8,
    pub data: [u8; 14],
}

// sys/sys/sockio.h
pub const SIOCSIFFLAGS: u64 = iow(b'i', 16, size_of::<Ifreq>());
pub const SIOCGIFFLAGS: u64 = iowr(b'i', 17, size_of::<Ifreq>());
pub const SIOCDIFADDR: u64 = iow(b'i', 25, size_of::<Ifreq>());
pub const SIOCGIFINDEX: u64 = iowr(b'i', 32, size_of::<Ifreq>());
pub const SIOCSIFNAME: u64 = iow(b'i', 40, size_of::<Ifreq>());
pub const SIOCSIFDESCR: u64 = iow(b'i', 41, size_of::<Ifreq>());
pub const SIOCAIFADDR: u64 = iow(b'i', 43, size_of::<InAliasreq>());
pub const SIOCSIFMTU: u64 = iow(b'i', 52, size_of::<Ifreq>());
pub const SIOCGIFMEDIA: u64 = iowr(b'i', 56, size_of::<IfmediaReq>());
pub const SIOCSIFVNET: u64 = iowr(b'i', 90, size_of::<Ifreq>());
pub const SIOCSIFRVNET: u64 = iowr(b'i', 91, size_of::<Ifreq>());
pub const SIOCIFGCLONERS: u64 = iowr(b'i', 120, size_of::<IfCloneReq>());
pub const SIOCIFDESTROY: u64 = iow(b'i', 121, size_of::<Ifreq>());
pub const SIOCSDRVSPEC: u64 = iow(b'i', 123, size_of::<Ifdrv>());
pub const SIOCIFCREATE2: u64 = iowr(b'i', 124, size_of::<Ifreq>());
// netinet6/in6_var.h
pub const SIOCDIFADDR_IN6: u64 = iow(b'i', 25, size_of::<In6Ifreq>());
pub const SIOCAIFADDR_IN6: u64 = iow(b'i', 27, size_of::<In6Aliasreq>());
// net/if_lagg.h
pub const SIOCSLAGGPORT: u64 = iow(b'i', 141, size_of::<LaggReqport>());
pub const SIOCSLAGGDELPORT: u64 = iow(b'i', 142, size_of::<LaggReqport>());
// net/bpf.h
pub const BIOCSETIF: u64 = iow(b'B', 108, size_of::<Ifreq>());
pub const BIOCIMMEDIATE: u64 = iow(b'B', 112, 4);
pub const BIOCSRTIMEOUT: u64 = iow(b'B', 109, 16);
// sys/filio.h
pub const FIONBIO: u64 = iow(b'f', 126, 4);

pub const IFF_UP: u32 = 0x1;

// sys/jail.h
pub const JAIL_CREATE: i32 = 0x01;
pub const JAIL_UPDATE: i32 = 0x02;
pub const JAIL_DYING: i32 = 0x08;
pub const JAIL_SYS_NEW: i32 = 1;

/// Copy a name into a fixed, NUL-padded field (truncating, always terminated).
pub fn fixed<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    let n = s.len().min(N - 1);
    a[..n].copy_from_slice(&s[..n]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_sizes_match_freebsd_amd64() {
        assert_eq!(size_of::<Ifreq>(), 32);
        assert_eq!(std::mem::align_of::<Ifreq>(), 8);
        assert_eq!(size_of::<IfmediaReq>(), 48);
        assert_eq!(size_of::<SockaddrIn>(), 16);
        assert_eq!(size_of::<SockaddrIn6>(), 28);
        assert_eq!(size_of::<InAliasreq>(), 68);
        assert_eq!(size_of::<In6Addrlifetime>(), 24);
        assert_eq!(size_of::<In6Aliasreq>(), 136);
        assert_eq!(std::mem::offset_of!(In6Aliasreq, lifetime), 104);
        assert_eq!(size_of::<In6Ifreq>(), 288);
        assert_eq!(size_of::<Ifdrv>(), 40);
        assert_eq!(size_of::<Ifbreq>(), 80);
        assert_eq!(std::mem::offset_of!(Ifbreq, addrcnt), 36);
        assert_eq!(size_of::<LaggReqport>(), 72);
        assert_eq!(size_of::<Vlanreq>(), 20);
        assert_eq!(size_of::<IfCloneReq>(), 16);
        assert_eq!(size_of::<NgMsgHdr>(), 56);
        assert_eq!(size_of::<NgmMkpeer>(), 96);
        assert_eq!(size_of::<SockaddrNg>(), 16);
    }

    /// The numbers `_IOW`/`_IOWR` produce in FreeBSD's own headers for amd64.
    #[test]
    fn request_numbers_match_freebsd_headers() {
        let want: &[(&str, u64, u64)] = &[
            ("SIOCSIFFLAGS", SIOCSIFFLAGS, 0x8020_6910),
            ("SIOCGIFFLAGS", SIOCGIFFLAGS, 0xc020_6911),
            ("SIOCDIFADDR", SIOCDIFADDR, 0x8020_6919),
            ("SIOCGIFINDEX", SIOCGIFINDEX, 0xc020_6920),
            ("SIOCSIFNAME", SIOCSIFNAME, 0x8020_6928),
            ("SIOCSIFDESCR", SIOCSIFDESCR, 0x8020_6929),
            ("SIOCAIFADDR", SIOCAIFADDR, 0x8044_692b),
            ("SIOCSIFMTU", SIOCSIFMTU, 0x8020_6934),
            ("SIOCGIFMEDIA", SIOCGIFMEDIA, 0xc030_6938),
            ("SIOCSIFVNET", SIOCSIFVNET, 0xc020_695a),
            ("SIOCSIFRVNET", SIOCSIFRVNET, 0xc020_695b),
            ("SIOCIFGCLONERS", SIOCIFGCLONERS, 0xc010_6978),
            ("SIOCIFDESTROY", SIOCIFDESTROY, 0x8020_6979),
            ("SIOCSDRVSPEC", SIOCSDRVSPEC, 0x8028_697b),
            ("SIOCIFCREATE2", SIOCIFCREATE2, 0xc020_697c),
            ("SIOCDIFADDR_IN6", SIOCDIFADDR_IN6, 0x8120_6919),
            ("SIOCAIFADDR_IN6", SIOCAIFADDR_IN6, 0x8088_691b),
            ("SIOCSLAGGPORT", SIOCSLAGGPORT, 0x8048_698d),
            ("SIOCSLAGGDELPORT", SIOCSLAGGDELPORT, 0x8048_698e),
            ("BIOCSETIF", BIOCSETIF, 0x8020_426c),
            ("BIOCIMMEDIATE", BIOCIMMEDIATE, 0x8004_4270),
            // The libc crate's own value for amd64, checked there against real headers.
            ("BIOCSRTIMEOUT", BIOCSRTIMEOUT, 0x8010_426d),
            ("FIONBIO", FIONBIO, 0x8004_667e),
        ];
        for (name, got, expect) in want {
            assert_eq!(got, expect, "{name}: {got:#x} != {expect:#x}");
        }
    }

    #[test]
    fn ifreq_helpers_lay_fields_where_the_kernel_reads_them() {
        let mut r = Ifreq::new(&fixed(b"epair0a"));
        r.set_flags(0x1_8843);
        assert_eq!(r.flags(), 0x1_8843);
        assert_eq!(&r.u[0..4], &[0x43, 0x88, 0x01, 0x00]);
        r.set_i32(42);
        assert_eq!(r.get_i32(), 42);
        r.set_buffer(0x1122, 14);
        assert_eq!(&r.u[0..8], &14u64.to_ne_bytes());
        assert_eq!(&r.u[8..16], &0x1122u64.to_ne_bytes());
        assert_eq!(&r.name[..8], b"epair0a\0");
        assert_eq!(fixed::<4>(b"abcdef"), *b"abc\0");
        let q = In6Ifreq::with_addr(&r.name, SockaddrIn6::new([0xfd; 16]));
        // SAFETY: reading plain bytes.
        let b: &[u8] = unsafe { std::slice::from_raw_parts(q.u.as_ptr() as *const u8, 28) };
        assert_eq!(&b[..2], &[28, AF_INET6]);
        assert_eq!(b[8], 0xfd);
    }
}

// ---- Appended for issue 14 (first FreeBSD run); values checked with
// `zig cc -target x86_64-freebsd` static assertions against zig's FreeBSD 15.0
// headers (net/bpf.h, netgraph/ng_message.h, netinet6/in6_var.h).

/// net/bpf.h: read(2) on a bpf descriptor must ask for exactly its buffer
/// size (bpfread); the size is fixed before BIOCSETIF (bpf_buffer_ioctl_sblen).
pub const BIOCSBLEN: u64 = iowr(b'B', 102, 4);
pub const BIOCGBLEN: u64 = ior(b'B', 102, 4);

/// netgraph/ng_message.h: name a node so any socket of its vnet can address
/// it as `name:` (a bare hook path is resolved from the sender's own node).
pub const NGM_NAME: u32 = 4;
pub const NG_NODESIZ: usize = 32;
/// ng_mesg header flag of a reply.
pub const NGF_RESP: u32 = 1;

/// struct ngm_name.
#[repr(C)]
pub struct NgmName {
    pub name: [u8; NG_NODESIZ],
}

/// netinet6/in6_var.h: add the address without duplicate address detection,
/// so it is usable as a source at once (in6_update_ifa).
pub const IN6_IFF_NODAD: i32 = 0x20;

// A test function beside the items rather than a second test module: the
// layer check (tests/layers.rs) leaves out only `mod tests`.
#[cfg(test)]
#[test]
fn appended_numbers_match_freebsd_headers() {
    assert_eq!(BIOCSBLEN, 0xc004_4266);
    assert_eq!(BIOCGBLEN, 0x4004_4266);
    assert_eq!(size_of::<NgmName>(), 32);
    assert_eq!(std::mem::offset_of!(NgMsgHdr, token), 16);
    assert_eq!(std::mem::offset_of!(NgMsgHdr, flags), 12);
    assert_eq!(std::mem::offset_of!(NgMsgHdr, typecookie), 20);
}
