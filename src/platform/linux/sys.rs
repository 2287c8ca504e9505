//! Thin wrappers over the Linux syscalls ops issue. Each returns the errno
//! as `Err(i32)` so that the executor counts it without allocating.

use crate::model::IfName;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub use crate::platform::unix::{Netlink, Sys, check, errno, sendto, set_timeout, socket};

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
