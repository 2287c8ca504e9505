//! Thin wrappers over the Linux syscalls ops issue. Each returns the errno
//! as `Err(i32)` so that the executor counts it without allocating.

use crate::model::IfName;
use crate::netlink::{self, Msg};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub type Sys<T> = Result<T, i32>;

pub fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn check(rc: libc::c_int) -> Sys<libc::c_int> {
    if rc < 0 { Err(errno()) } else { Ok(rc) }
}

pub const SIOCETHTOOL: libc::c_ulong = 0x8946;
pub const ETHTOOL_GSET: u32 = 0x1;
/// `_IOW('T', 202, int)` and `_IOW('T', 203, int)` from linux/if_tun.h.
pub const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
pub const TUNSETPERSIST: libc::c_ulong = 0x4004_54cb;
pub const IFF_TUN: i16 = 0x0001;
pub const IFF_TAP: i16 = 0x0002;
pub const IFF_NO_PI: i16 = 0x1000;
pub const IFF_TUN_EXCL: i16 = -0x8000; // 0x8000 as the kernel's short
/// IEEE 802 local experimental ethertype: no stack consumes it.
pub const ETH_P_EXPERIMENTAL: u16 = 0x88b5;

/// struct ifreq: the name, then a 24-byte union (on LP64).
#[repr(C, align(8))]
pub struct Ifreq {
    pub name: [u8; 16],
    pub u: [u8; 24],
}

impl Ifreq {
    pub fn new(name: &IfName) -> Ifreq {
        Ifreq {
            name: *name.raw(),
            u: [0; 24],
        }
    }
    pub fn get_i32(&self) -> i32 {
        i32::from_ne_bytes(self.u[..4].try_into().unwrap())
    }
    pub fn set_i32(&mut self, v: i32) {
        self.u[..4].copy_from_slice(&v.to_ne_bytes());
    }
    pub fn get_i16(&self) -> i16 {
        i16::from_ne_bytes(self.u[..2].try_into().unwrap())
    }
    pub fn set_i16(&mut self, v: i16) {
        self.u[..2].copy_from_slice(&v.to_ne_bytes());
    }
    pub fn set_ptr(&mut self, p: *mut u8) {
        self.u[..8].copy_from_slice(&(p as usize).to_ne_bytes());
    }
}

pub fn ioctl(fd: RawFd, req: libc::c_ulong, ifr: &mut Ifreq) -> Sys<()> {
    // SAFETY: ifr is a live, correctly sized struct ifreq for every request used here.
    check(unsafe { libc::ioctl(fd, req as _, ifr as *mut Ifreq) }).map(drop)
}

pub fn ifindex(fd: RawFd, name: &IfName) -> Sys<i32> {
    let mut r = Ifreq::new(name);
    ioctl(fd, libc::SIOCGIFINDEX as _, &mut r)?;
    Ok(r.get_i32())
}

pub fn socket(domain: i32, ty: i32, proto: i32) -> Sys<OwnedFd> {
    // SAFETY: plain syscall; a non-negative result is a fresh descriptor we own.
    let fd = check(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) })?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn set_timeout(fd: RawFd, opt: i32, secs: i64) {
    let tv = libc::timeval {
        tv_sec: secs,
        tv_usec: 0,
    };
    // SAFETY: tv outlives the call. A failure leaves the default, which is only slower to fail.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            &tv as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as u32,
        );
    }
}

/// A NETLINK_ROUTE socket in the stack it was opened in.
pub struct Netlink {
    pub fd: OwnedFd,
    seq: u32,
    pub msg: Msg,
    rx: Box<[u8]>,
}

impl Netlink {
    pub fn open() -> Sys<Netlink> {
        let fd = socket(libc::AF_NETLINK, libc::SOCK_RAW, netlink::NETLINK_ROUTE)?;
        let one: libc::c_int = 1;
        // SAFETY: option value outlives the call. CAP_ACK keeps error replies
        // short (no echo of our request); failure only makes them longer.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_NETLINK,
                libc::NETLINK_CAP_ACK,
                &one as *const _ as *const libc::c_void,
                4,
            );
        }
        // A request never waits forever on a wedged kernel: the watchdog sees it first.
        set_timeout(fd.as_raw_fd(), libc::SO_RCVTIMEO, 300);
        Ok(Netlink {
            fd,
            seq: 1,
            msg: Msg::default(),
            rx: vec![0u8; 32 * 1024].into_boxed_slice(),
        })
    }

    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Send `build`'s message and wait for its ACK.
    pub fn request(&mut self, build: impl FnOnce(&mut Msg, u32) -> usize) -> Sys<()> {
        let seq = self.next_seq();
        let len = build(&mut self.msg, seq);
        let fd = self.fd.as_raw_fd();
        let bytes = &self.msg_bytes()[..len];
        // SAFETY: bytes is a valid buffer of len bytes.
        let n = unsafe { libc::send(fd, bytes.as_ptr() as *const _, len, 0) };
        if n < 0 {
            return Err(errno());
        }
        loop {
            // SAFETY: rx is a valid writable buffer.
            let n = unsafe { libc::recv(fd, self.rx.as_mut_ptr() as *mut _, self.rx.len(), 0) };
            if n < 0 {
                return Err(errno());
            }
            for m in netlink::messages(&self.rx[..n as usize]) {
                if m.ty == netlink::NLMSG_ERROR && m.seq == seq {
                    return match netlink::error_code(m.payload) {
                        Some(0) => Ok(()),
                        Some(e) => Err(e),
                        None => Err(libc::EPROTO),
                    };
                }
            }
        }
    }

    fn msg_bytes(&mut self) -> &[u8] {
        // The builder wrote into msg; finish() was called by it and the
        // length returned. Re-finishing is idempotent.
        self.msg.finish()
    }

    /// Every link of this socket's stack (off the hot path: allocates).
    pub fn dump_links(&mut self) -> Sys<Vec<netlink::LinkInfo>> {
        let seq = self.next_seq();
        let fd = self.fd.as_raw_fd();
        let req = self.msg.dump_links(seq).to_vec();
        // SAFETY: req is a valid buffer.
        if unsafe { libc::send(fd, req.as_ptr() as *const _, req.len(), 0) } < 0 {
            return Err(errno());
        }
        let mut out = Vec::new();
        loop {
            // SAFETY: rx is a valid writable buffer.
            let n = unsafe { libc::recv(fd, self.rx.as_mut_ptr() as *mut _, self.rx.len(), 0) };
            if n < 0 {
                return Err(errno());
            }
            for m in netlink::messages(&self.rx[..n as usize]) {
                if m.seq != seq {
                    continue;
                }
                match m.ty {
                    netlink::NLMSG_DONE => return Ok(out),
                    netlink::NLMSG_ERROR => {
                        return Err(netlink::error_code(m.payload).unwrap_or(libc::EPROTO));
                    }
                    netlink::RTM_NEWLINK => out.extend(netlink::parse_link(m.payload)),
                    _ => {}
                }
            }
        }
    }
}

/// Open /dev/net/tun and attach or create `name`. The interface appears in
/// the network namespace of the calling thread.
pub fn tun_attach(name: &IfName, tap: bool, flags: i16) -> Sys<OwnedFd> {
    // SAFETY: a NUL-terminated literal path.
    let fd = check(unsafe {
        libc::open(
            c"/dev/net/tun".as_ptr(),
            libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK,
        )
    })?;
    // SAFETY: fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut r = Ifreq::new(name);
    r.set_i16(if tap { IFF_TAP } else { IFF_TUN } | IFF_NO_PI | flags);
    ioctl(fd.as_raw_fd(), TUNSETIFF, &mut r)?;
    Ok(fd)
}

pub fn tun_persist(fd: &OwnedFd, on: bool) -> Sys<()> {
    // SAFETY: TUNSETPERSIST takes its argument by value.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETPERSIST as _, on as libc::c_ulong) }).map(drop)
}

/// The calling thread's network namespace becomes `ns`.
pub fn setns(ns: &OwnedFd) -> Sys<()> {
    // SAFETY: ns is a namespace descriptor we own.
    check(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) }).map(drop)
}

pub fn gettid() -> i64 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::gettid() as i64 }
}
