//! The Linux executor: one per worker thread. It keeps, per stack, a cached
//! set of sockets opened inside that stack's namespace (plus a descriptor of
//! the namespace itself, for moves), tagged with the stack's generation so a
//! removed churn stack is let go of within a few ops.

use super::netns;
use super::session::LinuxSession;
use super::sys::{self, Ifreq, Netlink, Sys};
use crate::model::{IfName, LinkKind, OpKind};
use crate::netlink::{self, NewLink};
use crate::plan::Op;
use crate::platform::seam::{Executor, Outcome};
use crate::world::{HOME, LinkId, StackId, World};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use crate::platform::seam::SKIP;
use crate::platform::stack_cache::StackCache;
/// How many tun/tap descriptors a worker holds open at once.
const HELD: usize = 4;
/// How many TCP connections (send-tcp4/6) a worker keeps waiting at once.
const TCP_HELD: usize = 4;
/// Sweep for removed stacks every this many ops.
const SWEEP_EVERY: u32 = 64;

pub fn native_name(kind: LinkKind) -> &'static str {
    match kind {
        LinkKind::Pair => "veth",
        LinkKind::Tun => "tun",
        LinkKind::Tap => "tap",
        LinkKind::Bridge => "bridge",
        LinkKind::Lagg => "bond",
        LinkKind::Vlan => "vlan (8021q)",
        LinkKind::Macvlan => "macvlan",
        LinkKind::Eiface => "dummy",
    }
}

pub fn syscall_of(op: OpKind, kind: LinkKind) -> &'static str {
    match op {
        OpKind::Create if kind.is_tunnel() => {
            "open /dev/net/tun, TUNSETIFF(IFF_TUN_EXCL), TUNSETPERSIST"
        }
        OpKind::Create => "RTM_NEWLINK (IFLA_LINKINFO), RTM_NEWLINK IFLA_IFALIAS",
        OpKind::Destroy if kind.is_tunnel() => "TUNSETIFF attach, TUNSETPERSIST 0, close",
        OpKind::Destroy | OpKind::DestroyNetlink => "RTM_DELLINK (IFLA_IFNAME)",
        OpKind::Move | OpKind::MoveBack => "RTM_NEWLINK IFLA_NET_NS_FD",
        OpKind::UpDown => "SIOCGIFFLAGS, SIOCSIFFLAGS",
        OpKind::Mtu => "SIOCSIFMTU",
        OpKind::Rename => "SIOCSIFNAME",
        OpKind::Media => "SIOCETHTOOL ETHTOOL_GSET",
        OpKind::Addr4Add | OpKind::Addr6Add => "SIOCGIFINDEX, RTM_NEWADDR",
        OpKind::Addr4Del | OpKind::Addr6Del => "SIOCGIFINDEX, RTM_DELADDR",
        OpKind::SendUdp4 => "sendmsg 224.0.0.1 IP_PKTINFO",
        OpKind::SendUdp6 => "sendto ff02::1%link",
        OpKind::SendTcp4 => {
            "setns, socket(SOCK_STREAM), connect to the link's 198.18.x.y+1 (SYN held on ARP)"
        }
        OpKind::SendTcp6 => {
            "setns, socket(SOCK_STREAM), connect to the link's fd00:...::2 (SYN held on ND)"
        }
        OpKind::SendRaw => "AF_PACKET sendto",
        OpKind::Capture => "AF_PACKET bind, recv",
        OpKind::TunOpen => "setns, open /dev/net/tun, TUNSETIFF",
        OpKind::MemberAdd | OpKind::MemberDel => "RTM_NEWLINK IFLA_MASTER",
        OpKind::StackCreate => "unshare(CLONE_NEWNET), mount --bind, RTM_NEWLINK IFLA_NET_NS_FD",
        OpKind::StackRemove => "umount2, unlink, close",
    }
}

pub fn rtnl_kind(kind: LinkKind, parent_ix: i32, ordinal: usize, peer: &IfName) -> NewLink<'_> {
    match kind {
        LinkKind::Pair => NewLink::Veth {
            peer: peer.as_bytes(),
        },
        LinkKind::Bridge => NewLink::Bridge,
        LinkKind::Lagg => NewLink::Bond,
        LinkKind::Eiface => NewLink::Dummy,
        LinkKind::Vlan => NewLink::Vlan {
            parent: parent_ix,
            id: 100 + (ordinal % 3900) as u16,
        },
        LinkKind::Macvlan => NewLink::Macvlan { parent: parent_ix },
        LinkKind::Tun | LinkKind::Tap => unreachable!("tun/tap are made with /dev/net/tun"),
    }
}

/// A TCP connection send-tcp4/6 keeps waiting on its SYN, in the stack it
/// was opened in (it holds that namespace: let go of when the stack goes).
struct HeldTcp {
    _fd: OwnedFd,
    stack: StackId,
    generation: u32,
}

/// Sockets opened inside one stack.
struct StackSocks {
    /// A descriptor of the namespace: IFLA_NET_NS_FD for moves into it, and
    /// setns for opening /dev/net/tun there.
    ns: OwnedFd,
    nl: Netlink,
    inet: OwnedFd,
    inet6: OwnedFd,
    pkt: OwnedFd,
}

struct Ctx {
    session: Arc<LinuxSession>,
    world: Arc<World>,
    home: OwnedFd,
}

pub struct LinuxExec {
    ctx: Ctx,
    socks: StackCache<StackSocks>,
    /// /run/netns/NAME of every stack, made once.
    ns_paths: Vec<std::ffi::CString>,
    held: [Option<OwnedFd>; HELD],
    tun_names: [IfName; HELD],
    tcp: [Option<HeldTcp>; TCP_HELD],
    alias: Vec<u8>,
    ops: u32,
    frame: [u8; 60],
    rx: [u8; 2048],
    ethtool: [u8; 44],
}

fn open_socks(ctx: &Ctx, ns: OwnedFd) -> Sys<StackSocks> {
    sys::setns(&ns)?;
    let made = (|| {
        Ok(StackSocks {
            nl: Netlink::open(libc::AF_NETLINK)?,
            inet: sys::socket(libc::AF_INET, libc::SOCK_DGRAM, 0)?,
            inet6: sys::socket(libc::AF_INET6, libc::SOCK_DGRAM, 0)?,
            pkt: sys::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW,
                (libc::ETH_P_ALL as u16).to_be() as i32,
            )?,
            ns,
        })
    })();
    // Back home before anything else happens on this thread.
    sys::setns(&ctx.home)?;
    made
}

/// The fresh sockets of stack `s`, opening them if needed.
fn socks<'a>(
    ctx: &Ctx,
    cache: &'a mut StackCache<StackSocks>,
    s: StackId,
) -> Sys<&'a mut StackSocks> {
    cache.get_or_open(s, ctx.world.stack_generation(s), || {
        open_socks(ctx, ctx.session.dup_stack(s).ok_or(SKIP)?)
    })
}

impl LinuxExec {
    pub fn new(
        session: Arc<LinuxSession>,
        home: OwnedFd,
        worker: usize,
    ) -> anyhow::Result<LinuxExec> {
        let world = session.world.clone();
        let tag = world.layout.tag.clone();
        let tun_names = std::array::from_fn(|k| {
            IfName::new(&format!("is{}o{}x{k}", tag.id, worker % 1000)).expect("short")
        });
        let mut frame = [0u8; 60];
        frame[..6].fill(0xff);
        // Locally administered source address, then the experimental ethertype.
        frame[6..12].copy_from_slice(&[0x02, 0x69, 0x66, 0x73, (worker >> 8) as u8, worker as u8]);
        frame[12..14].copy_from_slice(&sys::ETH_P_EXPERIMENTAL.to_be_bytes());
        let nstacks = world.layout.stacks.len();
        let ns_paths = world
            .layout
            .stacks
            .iter()
            .map(|s| netns::path(&s.name))
            .collect();
        let mut e = LinuxExec {
            ctx: Ctx {
                session,
                world,
                home,
            },
            socks: StackCache::new(nstacks),
            ns_paths,
            held: Default::default(),
            tun_names,
            tcp: Default::default(),
            alias: tag.alias().into_bytes(),
            ops: 0,
            frame,
            rx: [0; 2048],
            ethtool: [0; 44],
        };
        // Home and fixed stacks up front, so the first ops do not pay for it.
        for s in 0..nstacks as StackId {
            if e.ctx.world.stack_alive(s) {
                socks(&e.ctx, &mut e.socks, s).map_err(|c| {
                    anyhow::anyhow!(
                        "opening sockets in {}: {}",
                        e.ctx.world.layout.stacks[s as usize].name,
                        std::io::Error::from_raw_os_error(c)
                    )
                })?;
            }
        }
        Ok(e)
    }

    fn sweep(&mut self) {
        let world = &self.ctx.world;
        self.socks.sweep(|s| world.stack_generation(s));
        for t in &mut self.tcp {
            if t.as_ref()
                .is_some_and(|h| world.stack_generation(h.stack) != h.generation)
            {
                *t = None;
            }
        }
    }

    /// Find where a link really is after the hint proved wrong.
    fn locate(&mut self, id: LinkId) {
        let world = self.ctx.world.clone();
        let (ctx, cache) = (&self.ctx, &mut self.socks);
        world.relocate(id, |s, name| {
            socks(ctx, cache, s).is_ok_and(|k| sys::ifindex(k.inet.as_raw_fd(), name).is_ok())
        });
    }

    fn run(&mut self, op: &Op) -> Sys<()> {
        let world = &*self.ctx.world;
        let id = op.link;
        let slot = &world.layout.links[id as usize];
        let hint = world.hint(id);
        let name = *world.name(id);
        match op.kind {
            OpKind::Create => self.create(id),
            OpKind::Destroy if slot.kind.is_tunnel() => {
                // The descriptor path: attach, drop persistence, close.
                let k = socks(&self.ctx, &mut self.socks, hint.stack)?;
                let ns = k.ns.as_raw_fd();
                let tap = slot.kind == LinkKind::Tap;
                let fd = in_ns(&self.ctx, ns, || sys::tun_attach(&name, tap, 0))?;
                sys::tun_persist(&fd, false)?;
                drop(fd);
                world.destroyed(id);
                Ok(())
            }
            OpKind::Destroy | OpKind::DestroyNetlink => {
                let k = socks(&self.ctx, &mut self.socks, hint.stack)?;
                k.nl.request(|m, s| m.del_link(s, name.as_bytes()).len())?;
                world.destroyed(id);
                Ok(())
            }
            OpKind::Move | OpKind::MoveBack => {
                let to = if op.kind == OpKind::Move {
                    op.stack
                } else {
                    HOME
                };
                self.move_to(id, name, hint.stack, to)
            }
            OpKind::UpDown => {
                let k = socks(&self.ctx, &mut self.socks, hint.stack)?;
                let mut r = Ifreq::new(&name);
                sys::ioctl(k.inet.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut r)?;
                r.set_i16(r.get_i16() ^ libc::IFF_UP as i16);
                sys::ioctl(k.inet.as_raw_fd(), libc::SIOCSIFFLAGS as _, &mut r)
            }
            OpKind::Mtu => {
                let k = socks(&self.ctx, &mut self.socks, hint.stack)?;
                let mut r = Ifreq::new(&name);
                r.set_i32(1280 + (op.arg % 8) as i32 * 32);
                sys::ioctl(k.inet.as_raw_fd(), libc::SIOCSIFMTU as _, &mut r)
            }
            OpKind::Rename => {
                let k = socks(&self.ctx, &mut self.socks, hint.stack)?;
                let mut r = Ifreq::new(&name);
                let to = slot.names[!hint.alt_name as usize];
                r.u[..16].copy_from_slice(to.raw());
                sys::ioctl(k.inet.as_raw_fd(), libc::SIOCSIFNAME as _, &mut r)?;
                world.renamed(id);
                Ok(())
            }
            OpKind::Media => {
                let k = socks(&self.ctx, &mut self.socks, hint.stack)?;
                self.ethtool = [0; 44];
                self.ethtool[..4].copy_from_slice(&sys::ETHTOOL_GSET.to_ne_bytes());
                let mut r = Ifreq::new(&name);
                r.set_ptr(self.ethtool.as_mut_ptr());
                sys::ioctl(k.inet.as_raw_fd(), sys::SIOCETHTOOL, &mut r)
            }
            OpKind::Addr4Add | OpKind::Addr4Del | OpKind::Addr6Add | OpKind::Addr6Del => {
                let k = socks(&self.ctx, &mut self.socks, hint.stack)?;
                let ix = sys::ifindex(k.inet.as_raw_fd(), &name)?;
                let add = matches!(op.kind, OpKind::Addr4Add | OpKind::Addr6Add);
                if matches!(op.kind, OpKind::Addr4Add | OpKind::Addr4Del) {
                    let a = crate::addr::v4(id);
                    k.nl.request(|m, s| m.addr(s, add, ix as u32, &a, 28).len())
                } else {
                    let a = crate::addr::v6(id);
                    k.nl.request(|m, s| m.addr(s, add, ix as u32, &a, 64).len())
                }
            }
            OpKind::SendUdp4 => {
                let k = socks(&self.ctx, &mut self.socks, hint.stack)?;
                let ix = sys::ifindex(k.inet.as_raw_fd(), &name)?;
                send_udp4(k.inet.as_raw_fd(), ix, &self.frame[14..])
            }
            OpKind::SendUdp6 => {
                let k = socks(&self.ctx, &mut self.socks, hint.stack)?;
                let ix = sys::ifindex(k.inet.as_raw_fd(), &name)?;
                send_udp6(k.inet6.as_raw_fd(), ix, &self.frame[14..])
            }
            OpKind::SendTcp4 | OpKind::SendTcp6 => {
                let k = op.arg as usize % TCP_HELD;
                self.tcp[k] = None;
                let ns = socks(&self.ctx, &mut self.socks, hint.stack)?
                    .ns
                    .as_raw_fd();
                let v6 = op.kind == OpKind::SendTcp6;
                let domain = if v6 { libc::AF_INET6 } else { libc::AF_INET };
                let fd = in_ns(&self.ctx, ns, || {
                    sys::socket(domain, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0)
                })?;
                if v6 {
                    // SAFETY: all-zero is a valid sockaddr_in6.
                    let mut dst: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
                    dst.sin6_family = libc::AF_INET6 as u16;
                    dst.sin6_port = 9u16.to_be();
                    dst.sin6_addr.s6_addr = crate::addr::v6_neighbour(id);
                    crate::platform::unix::connect_started(fd.as_raw_fd(), &dst)?;
                } else {
                    // SAFETY: all-zero is a valid sockaddr_in.
                    let mut dst: libc::sockaddr_in = unsafe { std::mem::zeroed() };
                    dst.sin_family = libc::AF_INET as u16;
                    dst.sin_port = 9u16.to_be();
                    dst.sin_addr.s_addr = u32::from_ne_bytes(crate::addr::v4_neighbour(id));
                    crate::platform::unix::connect_started(fd.as_raw_fd(), &dst)?;
                }
                self.tcp[k] = Some(HeldTcp {
                    _fd: fd,
                    stack: hint.stack,
                    generation: world.stack_generation(hint.stack),
                });
                Ok(())
            }
            OpKind::SendRaw => {
                let k = socks(&self.ctx, &mut self.socks, hint.stack)?;
                let ix = sys::ifindex(k.inet.as_raw_fd(), &name)?;
                let sll = sockaddr_ll(ix, sys::ETH_P_EXPERIMENTAL);
                // SAFETY: frame and sll are valid for the call.
                let n = unsafe {
                    libc::sendto(
                        k.pkt.as_raw_fd(),
                        self.frame.as_ptr() as *const _,
                        self.frame.len(),
                        libc::MSG_DONTWAIT,
                        &sll as *const _ as *const libc::sockaddr,
                        std::mem::size_of::<libc::sockaddr_ll>() as u32,
                    )
                };
                if n < 0 { Err(sys::errno()) } else { Ok(()) }
            }
            OpKind::Capture => {
                let k = socks(&self.ctx, &mut self.socks, hint.stack)?;
                let ix = sys::ifindex(k.inet.as_raw_fd(), &name)?;
                let sll = sockaddr_ll(ix, libc::ETH_P_ALL as u16);
                // SAFETY: sll is valid for the call.
                let rc = unsafe {
                    libc::bind(
                        k.pkt.as_raw_fd(),
                        &sll as *const _ as *const libc::sockaddr,
                        std::mem::size_of::<libc::sockaddr_ll>() as u32,
                    )
                };
                if rc < 0 {
                    return Err(sys::errno());
                }
                for _ in 0..4 {
                    // SAFETY: rx is a valid buffer.
                    let n = unsafe {
                        libc::recv(
                            k.pkt.as_raw_fd(),
                            self.rx.as_mut_ptr() as *mut _,
                            self.rx.len(),
                            libc::MSG_DONTWAIT,
                        )
                    };
                    if n <= 0 {
                        break;
                    }
                }
                Ok(())
            }
            OpKind::TunOpen => {
                let k = op.arg as usize % HELD;
                self.held[k] = None; // closing it destroys its interface
                let ns = socks(&self.ctx, &mut self.socks, op.stack)?.ns.as_raw_fd();
                let tap = slot.kind == LinkKind::Tap;
                let tname = self.tun_names[k];
                let fd = in_ns(&self.ctx, ns, || {
                    sys::tun_attach(&tname, tap, sys::IFF_TUN_EXCL)
                })?;
                self.held[k] = Some(fd);
                Ok(())
            }
            OpKind::MemberAdd | OpKind::MemberDel => {
                let member = op.other;
                let mname = *world.name(member);
                let mstack = world.hint(member).stack;
                let k = socks(&self.ctx, &mut self.socks, mstack)?;
                let master_ix = if op.kind == OpKind::MemberAdd {
                    sys::ifindex(k.inet.as_raw_fd(), &name)? as u32
                } else {
                    0
                };
                k.nl.request(|m, s| {
                    m.set_link_u32(s, mname.as_bytes(), netlink::IFLA_MASTER, master_ix)
                        .len()
                })
            }
            OpKind::StackCreate => {
                let s = op.stack;
                {
                    let mut g = self.ctx.session.stacks[s as usize]
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    if g.is_some() {
                        return Err(SKIP);
                    }
                    let made = netns::create_here_at(&self.ns_paths[s as usize]);
                    let back = sys::setns(&self.ctx.home);
                    let made = made?;
                    self.ctx.session.watch(&made, s);
                    *g = Some(made);
                    world.stack_created(s);
                    back?;
                }
                // Links inside from the start, as a jail's vnet.interface does.
                self.move_to(id, name, hint.stack, s)
            }
            OpKind::StackRemove => {
                let s = op.stack;
                let fd = {
                    let mut g = self.ctx.session.stacks[s as usize]
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    let fd = g.take().ok_or(SKIP)?;
                    world.stack_removed(s);
                    let r = netns::unname_at(&self.ns_paths[s as usize]);
                    (fd, r)
                };
                self.socks.forget(s);
                drop(fd.0);
                fd.1
            }
        }
    }

    fn create(&mut self, id: LinkId) -> Sys<()> {
        let world = &*self.ctx.world;
        let slot = &world.layout.links[id as usize];
        let name = slot.names[0];
        let k = socks(&self.ctx, &mut self.socks, HOME)?;
        if slot.kind.is_tunnel() {
            let fd = sys::tun_attach(&name, slot.kind == LinkKind::Tap, sys::IFF_TUN_EXCL)?;
            sys::tun_persist(&fd, true)?;
        } else {
            let parent_ix = match slot.parent {
                Some(p) => sys::ifindex(k.inet.as_raw_fd(), world.name(p))?,
                None => 0,
            };
            let peer = slot
                .peer
                .map(|p| world.layout.links[p as usize].names[0])
                .unwrap_or(name);
            let nk = rtnl_kind(slot.kind, parent_ix, slot.ordinal, &peer);
            k.nl.request(|m, s| m.new_link(s, name.as_bytes(), nk).len())?;
        }
        world.created(id);
        // The tag. A racing destroy may beat us to it; that is fine.
        let alias = &self.alias;
        for l in std::iter::once(id).chain(slot.peer) {
            let n = world.layout.links[l as usize].names[0];
            let _ =
                k.nl.request(|m, s| m.set_alias(s, n.as_bytes(), alias).len());
        }
        Ok(())
    }

    fn move_to(&mut self, id: LinkId, name: IfName, from: StackId, to: StackId) -> Sys<()> {
        let target: RawFd = socks(&self.ctx, &mut self.socks, to)?.ns.as_raw_fd();
        let k = socks(&self.ctx, &mut self.socks, from)?;
        k.nl.request(|m, s| {
            m.set_link_u32(s, name.as_bytes(), netlink::IFLA_NET_NS_FD, target as u32)
                .len()
        })?;
        self.ctx.world.moved(id, to);
        Ok(())
    }
}

/// Run `f` with the calling thread inside namespace `ns`, then come home.
fn in_ns<T>(ctx: &Ctx, ns: RawFd, f: impl FnOnce() -> Sys<T>) -> Sys<T> {
    // SAFETY: ns is a namespace descriptor held by the executor's cache.
    if unsafe { libc::setns(ns, libc::CLONE_NEWNET) } != 0 {
        return Err(sys::errno());
    }
    let r = f();
    sys::setns(&ctx.home)?;
    r
}

fn sockaddr_ll(ifindex: i32, proto: u16) -> libc::sockaddr_ll {
    // SAFETY: all-zero is a valid sockaddr_ll.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto.to_be();
    sll.sll_ifindex = ifindex;
    sll.sll_halen = 6;
    sll.sll_addr[..6].fill(0xff);
    sll
}

/// UDP to 224.0.0.1:9 (discard) out of interface `ifindex`, chosen with
/// IP_PKTINFO so that it takes one syscall.
fn send_udp4(fd: RawFd, ifindex: i32, payload: &[u8]) -> Sys<()> {
    // SAFETY: zeroed sockaddr_in/msghdr are valid; every pointer below points
    // at locals that outlive sendmsg.
    unsafe {
        let mut dst: libc::sockaddr_in = std::mem::zeroed();
        dst.sin_family = libc::AF_INET as u16;
        dst.sin_port = 9u16.to_be();
        dst.sin_addr.s_addr = u32::from_be_bytes([224, 0, 0, 1]).to_be();
        let mut iov = libc::iovec {
            iov_base: payload.as_ptr() as *mut _,
            iov_len: payload.len(),
        };
        #[repr(C, align(8))]
        struct Cmsg([u8; 64]);
        let mut cbuf = Cmsg([0; 64]);
        let space = libc::CMSG_SPACE(std::mem::size_of::<libc::in_pktinfo>() as u32) as usize;
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = &mut dst as *mut _ as *mut _;
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.0.as_mut_ptr() as *mut _;
        msg.msg_controllen = space as _;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::IPPROTO_IP;
        (*c).cmsg_type = libc::IP_PKTINFO;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::in_pktinfo>() as u32) as _;
        let pi = libc::CMSG_DATA(c) as *mut libc::in_pktinfo;
        (*pi).ipi_ifindex = ifindex;
        if libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT) < 0 {
            return Err(sys::errno());
        }
    }
    Ok(())
}

/// UDP to ff02::1%ifindex port 9: all-nodes, link-local scope.
fn send_udp6(fd: RawFd, ifindex: i32, payload: &[u8]) -> Sys<()> {
    // SAFETY: all-zero is a valid sockaddr_in6.
    let mut dst: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    dst.sin6_family = libc::AF_INET6 as u16;
    dst.sin6_port = 9u16.to_be();
    dst.sin6_addr.s6_addr = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    dst.sin6_scope_id = ifindex as u32;
    sys::sendto(fd, payload, &dst)
}

impl Executor for LinuxExec {
    fn exec(&mut self, op: &Op) -> Outcome {
        self.ops = self.ops.wrapping_add(1);
        if self.ops.is_multiple_of(SWEEP_EVERY) {
            self.sweep();
        }
        let (out, relocate) = crate::platform::seam::settle(self.run(op), op, &[libc::ENODEV]);
        if relocate {
            self.locate(op.link);
        }
        out
    }

    fn finish(&mut self) {
        self.held = Default::default();
        self.tcp = Default::default();
        self.socks.clear();
    }
}
