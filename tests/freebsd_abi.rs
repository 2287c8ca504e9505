//! The FreeBSD backend's ABI checked against FreeBSD's own headers: every
//! ioctl request number, constant, struct size, alignment and field offset
//! (and field width) in `platform::freebsd::abi`, the ifreq union members its
//! helpers write and read, the netgraph reply fields `rules::ng_reply` reads,
//! and the netlink layout the backend shares with Linux.
//!
//! No FreeBSD binary runs here, so the header side comes out of the compile
//! step. Each check is keyed by a C constant expression; the test writes them
//! after tests/abi/prelude.h into one C file, compiles it with
//! `zig cc -target x86_64-freebsd` (the `ziglang` pip package ships FreeBSD's
//! libc and system headers) into an object whose `ifstress_abi` section holds
//! the values in order, and reads that section back out of the ELF file. A
//! mismatch names the expression, the Rust value and the header value.
//!
//! Headers: FreeBSD 15.0's, as ziglang 0.17.1 ships them. Zig does not name
//! the tree; its sys/param.h (where zig patched out `__FreeBSD_version`) has
//! P_OSREL_EXTERRCTL 1500045, its sys/jail.h has 15.0's jail descriptors
//! (JAIL_USE_DESC...), its COPYRIGHT ends in 2025 and zig's FreeBSD target
//! range ends at 15.1. Where 15.0 differs from 14.x in a way the backend
//! deliberately does not follow, `divergent()` says why.

use ifstress::netlink;
use ifstress::platform::freebsd::abi::{self, *};
use std::mem::{align_of, offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One value the kernel sees: `c` is a C constant expression over FreeBSD's
/// headers, `rust` what the Rust side hands the kernel for it.
struct Check {
    c: String,
    rust: u64,
}

#[derive(Default)]
struct Checks(Vec<Check>);

impl Checks {
    fn add(&mut self, c: impl Into<String>, rust: u64) {
        self.0.push(Check { c: c.into(), rust });
    }
}

/// Constants whose C name is their Rust name, in module `$m`.
macro_rules! same_name {
    ($k:expr, $m:ident: $($name:ident),+ $(,)?) => {
        $( $k.add(stringify!($name), $m::$name as i128 as u64); )+
    };
}

/// The width of one field, measured without reading anything.
macro_rules! field_size {
    ($t:ty, $f:ident) => {{
        fn size<F>(_: *const F) -> usize {
            size_of::<F>()
        }
        let u = std::mem::MaybeUninit::<$t>::uninit();
        // SAFETY: only the field's address is formed; nothing is read.
        size(unsafe { &raw const (*u.as_ptr()).$f })
    }};
}

/// A struct's size and alignment, and each field's offset and width, against
/// the C struct `$c` whose members are named on the right.
macro_rules! layout {
    ($k:expr, $t:ty = $c:literal { $($f:ident => $cf:literal),+ $(,)? }) => {{
        $k.add(concat!("sizeof(", $c, ")"), size_of::<$t>() as u64);
        $k.add(concat!("_Alignof(", $c, ")"), align_of::<$t>() as u64);
        fields!($k, $t = $c { $($f => $cf),+ });
    }};
}

/// Offset and size of each named field, for a struct whose whole size is
/// checked elsewhere (or knowingly differs).
macro_rules! fields {
    ($k:expr, $t:ty = $c:literal { $($f:ident => $cf:literal),+ $(,)? }) => {{
        $(
            $k.add(concat!("offsetof(", $c, ", ", $cf, ")"), offset_of!($t, $f) as u64);
            $k.add(concat!("FSIZE(", $c, ", ", $cf, ")"), field_size!($t, $f) as u64);
        )+
    }};
}

/// The bytes of an ifreq.
fn bytes(r: &mut Ifreq) -> &mut [u8] {
    // SAFETY: Ifreq is plain bytes without padding.
    unsafe { std::slice::from_raw_parts_mut(r as *mut Ifreq as *mut u8, size_of::<Ifreq>()) }
}

/// (first byte, byte count) of a run of byte positions.
fn span(at: impl Iterator<Item = usize>) -> (u64, u64) {
    let at: Vec<usize> = at.collect();
    let (first, last) = (at[0], at[at.len() - 1]);
    (first as u64, (last + 1 - first) as u64)
}

/// Where a helper writes into a zeroed ifreq, so the union member it means
/// is measured, not assumed.
fn written(f: impl FnOnce(&mut Ifreq)) -> (u64, u64) {
    let mut r = Ifreq::new(&[0; IFNAMSIZ]);
    f(&mut r);
    span(
        bytes(&mut r)
            .iter()
            .enumerate()
            .filter(|(_, x)| **x != 0)
            .map(|(i, _)| i),
    )
}

/// Which bytes of an ifreq a reader looks at: those whose change it sees.
fn read(f: impl Fn(&Ifreq) -> u32) -> (u64, u64) {
    let seen = (0..size_of::<Ifreq>()).filter(|&i| {
        let mut r = Ifreq::new(&[0; IFNAMSIZ]);
        bytes(&mut r)[i] = 0xff;
        f(&r) != 0
    });
    span(seen)
}

/// Where `rules::ng_reply` reads a reply header's fields: for each, the one
/// 4-byte slot where writing a value changes its answer as that field would.
fn ng_reply_reads() -> Vec<(&'static str, u64)> {
    use ifstress::platform::freebsd::rules::ng_reply;
    let reply = |arglen: u32, flags: u32, token: u32| {
        let h = NgMsgHdr {
            version: NG_VERSION,
            spare: 0,
            spare2: 0,
            arglen,
            cmd: 0,
            flags,
            token,
            typecookie: 0,
            cmdstr: [0; 32],
        };
        // SAFETY: NgMsgHdr is plain data without padding.
        let mut m = unsafe {
            std::slice::from_raw_parts(&h as *const NgMsgHdr as *const u8, size_of::<NgMsgHdr>())
        }
        .to_vec();
        m.extend_from_slice(&[0xaa; 8]);
        m
    };
    let slot = |base: Vec<u8>, v: u32, takes: &dyn Fn(&[u8]) -> bool| {
        let hits: Vec<usize> = (0..size_of::<NgMsgHdr>())
            .step_by(4)
            .filter(|&p| {
                let mut m = base.clone();
                m[p..p + 4].copy_from_slice(&v.to_ne_bytes());
                takes(&m)
            })
            .collect();
        assert_eq!(hits.len(), 1, "ng_reply reads the field from {hits:?}");
        hits[0] as u64
    };
    let arglen = slot(reply(0, NGF_RESP, 1), 8, &|m| {
        ng_reply(m, 1).is_some_and(|a| a.len() == 8)
    });
    let flags = slot(reply(8, 0, 1), NGF_RESP, &|m| ng_reply(m, 1).is_some());
    let token = slot(reply(8, NGF_RESP, 1), 2, &|m| ng_reply(m, 2).is_some());
    let m = reply(8, NGF_RESP, 1);
    let arg = ng_reply(&m, 1).expect("a well-formed reply is taken");
    let data = arg.as_ptr() as u64 - m.as_ptr() as u64;
    vec![
        (
            "offsetof(struct ng_msghdr, arglen) /* rules::ng_reply */",
            arglen,
        ),
        (
            "offsetof(struct ng_msghdr, flags) /* rules::ng_reply */",
            flags,
        ),
        (
            "offsetof(struct ng_msghdr, token) /* rules::ng_reply */",
            token,
        ),
        ("offsetof(struct ng_mesg, data) /* rules::ng_reply */", data),
    ]
}

fn find(hay: &[u8], needle: &[u8]) -> u64 {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("pattern in the message") as u64
}

fn checks() -> Checks {
    let mut k = Checks::default();

    // sys/ioccom.h: the encoding, then every request number the backend uses.
    same_name!(k, abi: IOCPARM_MASK, IOC_OUT, IOC_IN, IOC_INOUT);
    k.add(
        "_IOW('i', 7, struct ifreq)",
        abi::iow(b'i', 7, size_of::<Ifreq>()),
    );
    k.add("_IOR('B', 102, u_int)", abi::ior(b'B', 102, 4));
    k.add(
        "_IOWR('N', 200, struct ngm_mkpeer)",
        abi::iowr(b'N', 200, 96),
    );
    same_name!(k, abi:
        SIOCSIFFLAGS, SIOCGIFFLAGS, SIOCDIFADDR, SIOCGIFINDEX, SIOCSIFNAME,
        SIOCSIFDESCR, SIOCAIFADDR, SIOCSIFMTU, SIOCGIFMEDIA, SIOCSIFVNET,
        SIOCSIFRVNET, SIOCIFGCLONERS, SIOCIFDESTROY, SIOCSDRVSPEC, SIOCIFCREATE2,
        SIOCDIFADDR_IN6, SIOCAIFADDR_IN6, SIOCSLAGGPORT, SIOCSLAGGDELPORT,
        BIOCSETIF, BIOCIMMEDIATE, BIOCSRTIMEOUT, FIONBIO, BIOCSBLEN, BIOCGBLEN,
    );

    // Plain constants.
    same_name!(k, abi:
        IFNAMSIZ, IFF_UP, AF_INET, AF_INET6, AF_NETLINK, AF_NETGRAPH, NG_CONTROL,
        ND6_INFINITE_LIFETIME, BRDGADD, BRDGDEL, ETHERTYPE_VLAN,
        NG_VERSION, NGM_GENERIC_COOKIE, NGM_SHUTDOWN, NGM_MKPEER,
        NGM_EIFACE_COOKIE, NGM_EIFACE_GET_IFNAME, NG_HOOKSIZ, NG_TYPESIZ,
        JAIL_CREATE, JAIL_UPDATE, JAIL_DYING, JAIL_SYS_NEW,
        NGM_NAME, NG_NODESIZ, NGF_RESP, IN6_IFF_NODAD,
    );
    k.add(
        "sizeof(struct sockaddr_in) /* SockaddrIn::new's sin_len */",
        SockaddrIn::new([0; 4]).len as u64,
    );
    k.add(
        "sizeof(struct sockaddr_in6) /* SockaddrIn6::new's sin6_len */",
        SockaddrIn6::new([0; 16]).len as u64,
    );

    // Structures.
    layout!(k, Ifreq = "struct ifreq" { name => "ifr_name", u => "ifr_ifru" });
    layout!(k, IfmediaReq = "struct ifmediareq" {
        name => "ifm_name", current => "ifm_current", mask => "ifm_mask",
        status => "ifm_status", active => "ifm_active", count => "ifm_count",
        ulist => "ifm_ulist",
    });
    layout!(k, SockaddrIn = "struct sockaddr_in" {
        len => "sin_len", family => "sin_family", port => "sin_port",
        addr => "sin_addr", zero => "sin_zero",
    });
    layout!(k, SockaddrIn6 = "struct sockaddr_in6" {
        len => "sin6_len", family => "sin6_family", port => "sin6_port",
        flowinfo => "sin6_flowinfo", addr => "sin6_addr", scope_id => "sin6_scope_id",
    });
    layout!(k, IpMreqn = "struct ip_mreqn" {
        multiaddr => "imr_multiaddr", address => "imr_address", ifindex => "imr_ifindex",
    });
    layout!(k, InAliasreq = "struct in_aliasreq" {
        name => "ifra_name", addr => "ifra_addr", broadaddr => "ifra_broadaddr",
        mask => "ifra_mask", vhid => "ifra_vhid",
    });
    layout!(k, In6Addrlifetime = "struct in6_addrlifetime" {
        expire => "ia6t_expire", preferred => "ia6t_preferred",
        vltime => "ia6t_vltime", pltime => "ia6t_pltime",
    });
    layout!(k, In6Aliasreq = "struct in6_aliasreq" {
        name => "ifra_name", addr => "ifra_addr", dstaddr => "ifra_dstaddr",
        prefixmask => "ifra_prefixmask", flags => "ifra_flags",
        lifetime => "ifra_lifetime", vhid => "ifra_vhid",
    });
    layout!(k, In6Ifreq = "struct in6_ifreq" { name => "ifr_name", u => "ifr_ifru" });
    layout!(k, Ifdrv = "struct ifdrv" {
        name => "ifd_name", cmd => "ifd_cmd", len => "ifd_len", data => "ifd_data",
    });
    layout!(k, Ifbreq = "struct ifbreq" {
        ifsname => "ifbr_ifsname", ifsflags => "ifbr_ifsflags",
        stpflags => "ifbr_stpflags", path_cost => "ifbr_path_cost",
        portno => "ifbr_portno", priority => "ifbr_priority", proto => "ifbr_proto",
        role => "ifbr_role", state => "ifbr_state", addrcnt => "ifbr_addrcnt",
        addrmax => "ifbr_addrmax", addrexceeded => "ifbr_addrexceeded",
    });
    // 14.x ends struct ifbreq with pad[32]; 15.0 carved ifbr_pvid and
    // ifbr_vlanproto out of its front (bridge VLAN filtering). Rust's `pad`
    // spans the same 32 bytes and sends zeros; the size, which the bridge
    // checks against ifd_len, did not change. BRDGADD takes the member by
    // ifbr_ifsname (bridge_ioctl_add).
    k.add(
        "offsetof(struct ifbreq, ifbr_pvid)",
        offset_of!(Ifbreq, pad) as u64,
    );
    k.add(
        "sizeof(struct ifbreq) - offsetof(struct ifbreq, ifbr_pvid)",
        field_size!(Ifbreq, pad) as u64,
    );
    layout!(k, LaggReqport = "struct lagg_reqport" {
        ifname => "rp_ifname", portname => "rp_portname", prio => "rp_prio",
        flags => "rp_flags", lacp => "rp_psc",
    });
    layout!(k, Vlanreq = "struct vlanreq" {
        parent => "vlr_parent", tag => "vlr_tag", proto => "vlr_proto",
    });
    layout!(k, IfCloneReq = "struct if_clonereq" {
        total => "ifcr_total", count => "ifcr_count", buffer => "ifcr_buffer",
    });
    layout!(k, NgMsgHdr = "struct ng_msghdr" {
        version => "version", spare => "spare", spare2 => "spare2",
        arglen => "arglen", cmd => "cmd", flags => "flags", token => "token",
        typecookie => "typecookie", cmdstr => "cmdstr",
    });
    // The backend writes a message's argument right after the header.
    k.add(
        "offsetof(struct ng_mesg, data)",
        size_of::<NgMsgHdr>() as u64,
    );
    layout!(k, NgmMkpeer = "struct ngm_mkpeer" {
        type_ => "type", ourhook => "ourhook", peerhook => "peerhook",
    });
    layout!(k, NgmName = "struct ngm_name" { name => "name" });
    k.add(
        "_Alignof(struct sockaddr_ng)",
        align_of::<SockaddrNg>() as u64,
    );
    fields!(k, SockaddrNg = "struct sockaddr_ng" {
        len => "sg_len", family => "sg_family",
    });
    k.add(
        "offsetof(struct sockaddr_ng, sg_data)",
        offset_of!(SockaddrNg, data) as u64,
    );

    // The ifreq union members the Ifreq helpers write and read. A trailing C
    // comment says which Rust helper a line measures.
    let mut member = |c: &str, (at, n): (u64, u64)| {
        k.add(format!("offsetof(struct ifreq, {c})"), at);
        k.add(format!("FSIZE(struct ifreq, {c})"), n);
    };
    member(
        "ifr_flags /* set_flags */",
        written(|r| r.set_flags(0xffff)),
    );
    member(
        "ifr_flagshigh /* set_flags */",
        written(|r| r.set_flags(0xffff_0000)),
    );
    member("ifr_flags /* flags() */", read(|r| r.flags() & 0xffff));
    member("ifr_flagshigh /* flags() */", read(|r| r.flags() >> 16));
    // SIOCSIFVNET/SIOCSIFRVNET's jail id and SIOCSIFMTU's mtu.
    member("ifr_jid /* set_i32 */", written(|r| r.set_i32(-1)));
    member("ifr_mtu /* set_i32 */", written(|r| r.set_i32(-1)));
    member("ifr_jid /* get_i32 */", read(|r| r.get_i32() as u32));
    // SIOCGIFINDEX's answer.
    member("ifr_index /* index() */", read(|r| r.index() as u32));
    // SIOCSIFNAME's new name and SIOCIFCREATE2's vlanreq.
    member(
        "ifr_data /* set_ptr(0, ..) */",
        written(|r| r.set_ptr(0, usize::MAX)),
    );
    // SIOCSIFDESCR's description.
    member(
        "ifr_buffer.length /* set_buffer */",
        written(|r| r.set_buffer(0, usize::MAX)),
    );
    member(
        "ifr_buffer.buffer /* set_buffer */",
        written(|r| r.set_buffer(usize::MAX, 0)),
    );
    // SIOCDIFADDR: a sockaddr_in copied over the whole union.
    k.add(
        "offsetof(struct ifreq, ifr_addr) /* Ifreq.u */",
        offset_of!(Ifreq, u) as u64,
    );
    k.add(
        "sizeof(struct sockaddr_in) /* Ifreq.u */",
        field_size!(Ifreq, u) as u64,
    );
    // SIOCDIFADDR_IN6: In6Ifreq::with_addr puts the sockaddr_in6 first in the union.
    k.add(
        "offsetof(struct in6_ifreq, ifr_ifru.ifru_addr) /* with_addr */",
        offset_of!(In6Ifreq, u) as u64,
    );

    // What rules::ng_reply reads out of a netgraph reply.
    for (c, at) in ng_reply_reads() {
        k.add(c, at);
    }

    // netlink(4): the backend's RTM_DELLINK and the ACK it waits for.
    same_name!(k, netlink:
        NETLINK_ROUTE, RTM_DELLINK, NLM_F_REQUEST, NLM_F_ACK, NLMSG_ERROR, NLMSG_DONE,
    );
    let mut m = netlink::Msg::default();
    let index = 0x0d0c_0b0a_i32;
    let del = m.del_link_index(0x0908_0706, index).to_vec();
    let parsed = netlink::messages(&del).next().expect("one message");
    assert_eq!((parsed.ty, parsed.seq), (netlink::RTM_DELLINK, 0x0908_0706));
    k.add("NLMSG_HDRLEN + sizeof(struct ifinfomsg)", del.len() as u64);
    k.add("NLMSG_HDRLEN", (del.len() - parsed.payload.len()) as u64);
    k.add(
        "offsetof(struct nlmsghdr, nlmsg_len)",
        find(&del, &(del.len() as u32).to_ne_bytes()),
    );
    k.add(
        "offsetof(struct nlmsghdr, nlmsg_type)",
        find(&del, &netlink::RTM_DELLINK.to_ne_bytes()),
    );
    let flags = netlink::NLM_F_REQUEST | netlink::NLM_F_ACK;
    k.add(
        "offsetof(struct nlmsghdr, nlmsg_flags)",
        find(&del, &flags.to_ne_bytes()),
    );
    k.add(
        "offsetof(struct nlmsghdr, nlmsg_seq)",
        find(&del, &0x0908_0706u32.to_ne_bytes()),
    );
    k.add(
        "NLMSG_HDRLEN + offsetof(struct ifinfomsg, ifi_index)",
        find(&del, &index.to_ne_bytes()),
    );
    // error_code reads the negated errno: find which of four ints it takes.
    let mut err = Vec::new();
    for e in 1..=4i32 {
        err.extend_from_slice(&(-e).to_ne_bytes());
    }
    let e = netlink::error_code(&err).expect("an error code");
    k.add("offsetof(struct nlmsgerr, error)", (e as u64 - 1) * 4);
    k
}

/// Where 15.0's headers differ from what the backend sends, on purpose. Both
/// sides are pinned: a change on either calls for a second look.
struct Divergent {
    c: &'static str,
    rust: u64,
    pinned: (u64, u64),
    why: &'static str,
}

fn divergent() -> Vec<Divergent> {
    let why_ng = "15.0 declares sg_data[32] (14.x: [14]); sockaddr_ng is variable-length: \
                  ngc_send takes the path's length from sg_len, and libnetgraph's NgDeliverMsg \
                  sends up to NG_PATHSIZ bytes of path, so the 16-byte prefix works on both";
    vec![
        Divergent {
            c: "sizeof(struct sockaddr_ng)",
            rust: size_of::<SockaddrNg>() as u64,
            pinned: (16, 34),
            why: why_ng,
        },
        Divergent {
            c: "FSIZE(struct sockaddr_ng, sg_data)",
            rust: field_size!(SockaddrNg, data) as u64,
            pinned: (14, 32),
            why: why_ng,
        },
    ]
}

/// How to run zig: the `ziglang` pip package (what .ci/run installs), else
/// a `zig` on PATH.
/// The C compiler the probe is built with, and the arguments that make it
/// compile for FreeBSD: on a FreeBSD host its own `cc` and the running
/// system's headers; elsewhere zig's FreeBSD headers.
fn zig() -> Option<Vec<String>> {
    if cfg!(target_os = "freebsd") {
        let ok = Command::new("cc")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        return ok.then(|| vec!["cc".to_string()]);
    }
    let candidates: [&[&str]; 2] = [&["python3", "-m", "ziglang"], &["zig"]];
    for c in candidates {
        let ok = Command::new(c[0])
            .args(&c[1..])
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(c.iter().map(|s| s.to_string()).collect());
        }
    }
    None
}

const MAGIC: u64 = u64::from_le_bytes(*b"ifstress");

/// The probe: the prelude, then every expression in order into one array.
fn probe_source(exprs: &[&str]) -> String {
    let mut s = String::from(
        "#include \"prelude.h\"\n\
         __attribute__((used, section(\"ifstress_abi\")))\n\
         const unsigned long long probe[] = {\n",
    );
    s += &format!("\t{MAGIC:#x}ULL,\n\t{}ULL,\n", exprs.len());
    for e in exprs {
        s += &format!("\t(unsigned long long)({e}),\n");
    }
    s += "};\n";
    s
}

/// A named section of a little-endian ELF64 object.
fn elf_section<'a>(elf: &'a [u8], want: &str) -> Result<&'a [u8], String> {
    let get = |at: usize, n: usize| elf.get(at..at + n).ok_or("truncated ELF file");
    let u16_at = |at| get(at, 2).map(|b| u16::from_le_bytes(b.try_into().unwrap()) as usize);
    let u32_at = |at| get(at, 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize);
    let u64_at = |at| get(at, 8).map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize);
    if get(0, 6)? != b"\x7fELF\x02\x01" {
        return Err("not a little-endian ELF64 object".into());
    }
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(0x28)?, u16_at(0x3a)?, u16_at(0x3c)?, u16_at(0x3e)?);
    let header = |i: usize| shoff + i * shentsize;
    let names = u64_at(header(shstrndx) + 0x18)?;
    for i in 0..shnum {
        let name_at = names + u32_at(header(i))?;
        let name = elf
            .get(name_at..)
            .and_then(|b| b.split(|&c| c == 0).next())
            .ok_or("bad section name")?;
        if name == want.as_bytes() {
            let (off, size) = (u64_at(header(i) + 0x18)?, u64_at(header(i) + 0x20)?);
            return Ok(get(off, size)?);
        }
    }
    Err(format!("no section {want}"))
}

/// Compile the probe for FreeBSD/amd64 and read back the header values.
fn header_values(zig: &[String], exprs: &[&str]) -> Vec<u64> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("freebsd_abi");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("probe.c");
    let obj = dir.join("probe.o");
    std::fs::write(&src, probe_source(exprs)).unwrap();
    let _ = std::fs::remove_file(&obj);
    let prelude = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/abi");
    let cross: &[&str] = if zig[0] == "cc" {
        &[]
    } else {
        &["cc", "-target", "x86_64-freebsd"]
    };
    let out = Command::new(&zig[0])
        .args(&zig[1..])
        .args(cross)
        .args(["-c", "-o"])
        .arg(&obj)
        .arg("-I")
        .arg(&prelude)
        .arg(&src)
        .output()
        .expect("run zig cc");
    assert!(
        out.status.success(),
        "zig cc could not compile {} against FreeBSD's headers (an expression names \
         something the headers lack?):\n{}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let elf = std::fs::read(&obj).unwrap();
    let sec =
        elf_section(&elf, "ifstress_abi").unwrap_or_else(|e| panic!("{}: {e}", obj.display()));
    let words: Vec<u64> = sec
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(
        words.first(),
        Some(&MAGIC),
        "{}: not the probe's table",
        obj.display()
    );
    assert_eq!(
        words.get(1),
        Some(&(exprs.len() as u64)),
        "{}: table length",
        obj.display()
    );
    assert_eq!(
        words.len(),
        exprs.len() + 2,
        "{}: section size",
        obj.display()
    );
    words[2..].to_vec()
}

#[test]
fn abi_matches_freebsd_headers() {
    let Some(zig) = zig() else {
        ifstress::testutil::skip(if cfg!(target_os = "freebsd") {
            "cc is absent"
        } else {
            "zig is absent (python3 -m pip install ziglang)"
        });
        return;
    };
    let checks = checks();
    let div = divergent();
    let exprs: Vec<&str> = checks
        .0
        .iter()
        .map(|c| c.c.as_str())
        .chain(div.iter().map(|d| d.c))
        .collect();
    let header = header_values(&zig, &exprs);
    let (plain, pinned) = header.split_at(checks.0.len());

    let mut bad = Vec::new();
    for (c, &h) in checks.0.iter().zip(plain) {
        if c.rust != h {
            bad.push(format!(
                "{}: Rust {} ({:#x}), FreeBSD header {} ({:#x})",
                c.c, c.rust, c.rust, h, h
            ));
        }
    }
    for (d, &h) in div.iter().zip(pinned) {
        if (d.rust, h) != d.pinned {
            bad.push(format!(
                "{}: Rust {}, FreeBSD header {}, but the divergence recorded was Rust {}, \
                 header {}; update or drop its entry in divergent() ({})",
                d.c, d.rust, h, d.pinned.0, d.pinned.1, d.why
            ));
        }
    }
    let version = Command::new(&zig[0])
        .args(&zig[1..])
        .arg(if zig[0] == "cc" {
            "--version"
        } else {
            "version"
        })
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    assert!(
        bad.is_empty(),
        "{} of {} values differ from FreeBSD's headers (zig {version}; probe in {}):\n{}",
        bad.len(),
        exprs.len(),
        env!("CARGO_TARGET_TMPDIR"),
        bad.join("\n")
    );
    eprintln!(
        "{} values match FreeBSD's headers (zig {version}), {} known divergences pinned",
        checks.0.len(),
        div.len()
    );
}
