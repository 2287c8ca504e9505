//! Unix plumbing both backends share: errno as a plain integer, sockets,
//! and a NETLINK_ROUTE client (Linux's AF_NETLINK, or FreeBSD's since 14.0).

use crate::netlink::{self, Msg};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A syscall's result: the errno on failure, so ops count it without allocating.
pub type Sys<T> = Result<T, i32>;

pub fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

pub fn check(rc: libc::c_int) -> Sys<libc::c_int> {
    if rc < 0 { Err(errno()) } else { Ok(rc) }
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
    pub fn open(family: i32) -> Sys<Netlink> {
        let fd = socket(family, libc::SOCK_RAW, netlink::NETLINK_ROUTE)?;
        #[cfg(target_os = "linux")]
        // SAFETY: option value outlives the call. CAP_ACK keeps error replies
        // short (no echo of our request); failure only makes them longer.
        unsafe {
            let one: libc::c_int = 1;
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

    /// Wrap a netlink socket opened elsewhere (by an agent inside a jail).
    pub fn from_fd(fd: OwnedFd) -> Netlink {
        set_timeout(fd.as_raw_fd(), libc::SO_RCVTIMEO, 300);
        Netlink {
            fd,
            seq: 1,
            msg: Msg::default(),
            rx: vec![0u8; 32 * 1024].into_boxed_slice(),
        }
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
        let bytes = &self.msg.bytes()[..len];
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

/// sendto(2) with a socket address given as its raw bytes (callers build the
/// system's own sockaddr layout).
pub fn sendto<T>(fd: RawFd, payload: &[u8], addr: &T) -> Sys<()> {
    // SAFETY: payload and addr are valid for the call; addr is a sockaddr_*.
    let n = unsafe {
        libc::sendto(
            fd,
            payload.as_ptr() as *const _,
            payload.len(),
            libc::MSG_DONTWAIT,
            addr as *const T as *const libc::sockaddr,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if n < 0 { Err(errno()) } else { Ok(()) }
}

/// connect(2) on a non-blocking socket: started (EINPROGRESS) counts as done.
pub fn connect_started<T>(fd: RawFd, addr: &T) -> Sys<()> {
    // SAFETY: addr is a sockaddr_* valid for the call.
    let rc = unsafe {
        libc::connect(
            fd,
            addr as *const T as *const libc::sockaddr,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    match rc {
        0 => Ok(()),
        _ if errno() == libc::EINPROGRESS => Ok(()),
        _ => Err(errno()),
    }
}

/// uname: system, release, version.
pub fn uname() -> String {
    match nix::sys::utsname::uname() {
        Ok(u) => format!(
            "{} {} {}",
            u.sysname().to_string_lossy(),
            u.release().to_string_lossy(),
            u.version().to_string_lossy()
        ),
        Err(e) => format!("unknown ({e})"),
    }
}

/// Root, or a refusal saying why root is needed.
pub fn require_root(why: &str) -> Result<(), crate::platform::seam::EnvError> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(crate::platform::seam::EnvError::NotRoot(why.into()))
    }
}

/// The signals that ask ifstress to stop: SIGINT, SIGTERM, and SIGHUP unless
/// this process was told to ignore it (`nohup ifstress ...` inherits
/// SIG_IGN and must survive the terminal going away; a handler registered
/// for it would undo that). Made inside a tokio runtime's context.
pub struct StopSignals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    pub fn new() -> std::io::Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        // SAFETY: a query only (null new action); `old` is written by the kernel.
        let hup_ignored = unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGHUP, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction == libc::SIG_IGN
        };
        Ok(StopSignals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: if hup_ignored {
                None
            } else {
                Some(signal(SignalKind::hangup())?)
            },
        })
    }

    /// The next of them to arrive.
    pub async fn recv(&mut self) {
        let hup = async {
            match &mut self.hup {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! { _ = self.int.recv() => {}, _ = self.term.recv() => {}, _ = hup => {} }
    }
}
