//! The agent protocol. Some kernel paths take the network stack from the
//! calling thread's credential rather than from a socket: FreeBSD's devfs
//! clone of /dev/tun (tunopen: TD_TO_VNET), bpf's BIOCSETIF, and
//! SIOCSIFRVNET (if_vmove_reclaim moves to the caller's own vnet). On FreeBSD
//! jail_attach(2) moves the whole process, so such work is done by an agent:
//! this binary re-executed as `ifstress __agent JID`, attached to the jail,
//! serving requests over a SEQPACKET socketpair and handing descriptors back
//! with SCM_RIGHTS. The framing and descriptor passing here are plain unix
//! and are tested on Linux.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub const REQ_LEN: usize = 64;
pub const REPLY_LEN: usize = 24;
pub const MAX_FDS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Open the control sockets of the agent's stack.
    OpenSockets,
    /// Open a device node inside the stack (/dev/tun, /dev/tap ...).
    OpenDev {
        path: [u8; 32],
    },
    /// Attach the agent's capture to a link and read without blocking.
    Capture {
        name: [u8; 16],
    },
    /// Write one raw frame out of a link through the capture descriptor.
    SendRaw {
        name: [u8; 16],
    },
    /// Reclaim a link from child jail `jid` into the agent's own stack.
    Reclaim {
        name: [u8; 16],
        jid: i32,
    },
    /// Start a TCP connection to `addr` (IPv4 in its first 4 bytes unless
    /// `v6`) from inside the stack and keep it in `slot`, closing the one
    /// there: sockets a process makes belong to its own jail's stack.
    Tcp {
        v6: bool,
        slot: u8,
        addr: [u8; 16],
    },
    Quit,
}

impl Request {
    pub fn encode(&self) -> [u8; REQ_LEN] {
        let mut b = [0u8; REQ_LEN];
        match self {
            Request::OpenSockets => b[0] = 1,
            Request::OpenDev { path } => {
                b[0] = 2;
                b[8..40].copy_from_slice(path);
            }
            Request::Capture { name } => {
                b[0] = 3;
                b[8..24].copy_from_slice(name);
            }
            Request::SendRaw { name } => {
                b[0] = 4;
                b[8..24].copy_from_slice(name);
            }
            Request::Reclaim { name, jid } => {
                b[0] = 5;
                b[4..8].copy_from_slice(&jid.to_ne_bytes());
                b[8..24].copy_from_slice(name);
            }
            Request::Quit => b[0] = 6,
            Request::Tcp { v6, slot, addr } => {
                b[0] = 7;
                b[1] = *v6 as u8;
                b[2] = *slot;
                b[8..24].copy_from_slice(addr);
            }
        }
        b
    }

    pub fn decode(b: &[u8]) -> Option<Request> {
        if b.len() != REQ_LEN {
            return None;
        }
        let name = || b[8..24].try_into().unwrap();
        Some(match b[0] {
            1 => Request::OpenSockets,
            2 => Request::OpenDev {
                path: b[8..40].try_into().unwrap(),
            },
            3 => Request::Capture { name: name() },
            4 => Request::SendRaw { name: name() },
            5 => Request::Reclaim {
                name: name(),
                jid: i32::from_ne_bytes(b[4..8].try_into().unwrap()),
            },
            6 => Request::Quit,
            7 => Request::Tcp {
                v6: b[1] != 0,
                slot: b[2],
                addr: name(),
            },
            _ => return None,
        })
    }
}

/// An agent's answer: an errno (0 for success), a name (the interface a
/// devfs clone created) and up to MAX_FDS descriptors alongside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reply {
    pub errno: i32,
    /// How many descriptors were requested to be sent, for the caller to check.
    pub nfds: u32,
    pub name: [u8; 16],
}

impl Reply {
    pub fn err(errno: i32) -> Reply {
        Reply {
            errno,
            ..Default::default()
        }
    }
    fn encode(&self) -> [u8; REPLY_LEN] {
        let mut b = [0u8; REPLY_LEN];
        b[0..4].copy_from_slice(&self.errno.to_ne_bytes());
        b[4..8].copy_from_slice(&self.nfds.to_ne_bytes());
        b[8..24].copy_from_slice(&self.name);
        b
    }
    fn decode(b: &[u8]) -> Option<Reply> {
        (b.len() == REPLY_LEN).then(|| Reply {
            errno: i32::from_ne_bytes(b[0..4].try_into().unwrap()),
            nfds: u32::from_ne_bytes(b[4..8].try_into().unwrap()),
            name: b[8..24].try_into().unwrap(),
        })
    }
}

/// A connected SEQPACKET pair: one end for us, one for the agent.
pub fn pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptors we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[repr(C, align(8))]
struct CmsgBuf([u8; 64]);

/// Send one message with descriptors attached.
pub fn send_with_fds(sock: RawFd, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    assert!(fds.len() <= MAX_FDS);
    let mut cbuf = CmsgBuf([0; 64]);
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut _,
        iov_len: data.len(),
    };
    // SAFETY: a zeroed msghdr is valid; all pointers reference locals that
    // outlive sendmsg, and the control buffer is large and aligned enough.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !fds.is_empty() {
            let bytes = std::mem::size_of_val(fds) as u32;
            msg.msg_control = cbuf.0.as_mut_ptr() as *mut _;
            msg.msg_controllen = libc::CMSG_SPACE(bytes) as _;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(bytes) as _;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr() as *const u8,
                libc::CMSG_DATA(c),
                bytes as usize,
            );
        }
        if libc::sendmsg(sock, &msg, 0) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Receive one message and the descriptors attached to it. Returns the
/// payload length (0 at end of stream).
pub fn recv_with_fds(sock: RawFd, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
    let mut cbuf = CmsgBuf([0; 64]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut _,
        iov_len: buf.len(),
    };
    // SAFETY: as in send_with_fds; descriptors from SCM_RIGHTS are new and ours.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.0.as_mut_ptr() as *mut _;
        msg.msg_controllen = cbuf.0.len() as _;
        let n = libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c);
                let len = (*c).cmsg_len as usize - (data as usize - c as usize);
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    let fd = std::ptr::read_unaligned((data as *const RawFd).add(i));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        Ok(n as usize)
    }
}

/// What an agent does with a request.
pub trait Handler {
    fn handle(&mut self, req: Request) -> (Reply, Vec<OwnedFd>);
}

/// Serve requests until the peer closes or asks to quit.
pub fn serve(sock: RawFd, h: &mut dyn Handler) -> io::Result<()> {
    let mut buf = [0u8; REQ_LEN];
    let mut junk = Vec::new();
    loop {
        junk.clear();
        let n = recv_with_fds(sock, &mut buf, &mut junk)?;
        if n == 0 {
            return Ok(());
        }
        let Some(req) = Request::decode(&buf[..n]) else {
            send_with_fds(sock, &Reply::err(libc::EINVAL).encode(), &[])?;
            continue;
        };
        if req == Request::Quit {
            return Ok(());
        }
        let (mut reply, fds) = h.handle(req);
        reply.nfds = fds.len() as u32;
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        send_with_fds(sock, &reply.encode(), &raw)?;
    }
}

/// Our end of an agent's socket.
pub struct Client {
    sock: OwnedFd,
}

impl Client {
    pub fn new(sock: OwnedFd) -> Client {
        Client { sock }
    }

    pub fn call(&mut self, req: Request, fds: &mut Vec<OwnedFd>) -> io::Result<Reply> {
        send_with_fds(self.sock.as_raw_fd(), &req.encode(), &[])?;
        let mut buf = [0u8; REPLY_LEN];
        let n = recv_with_fds(self.sock.as_raw_fd(), &mut buf, fds)?;
        if n == 0 {
            return Err(io::Error::from_raw_os_error(libc::EPIPE));
        }
        let reply =
            Reply::decode(&buf[..n]).ok_or_else(|| io::Error::from_raw_os_error(libc::EPROTO))?;
        if reply.nfds as usize != fds.len() {
            return Err(io::Error::from_raw_os_error(libc::EPROTO));
        }
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;
    impl Handler for Fake {
        fn handle(&mut self, req: Request) -> (Reply, Vec<OwnedFd>) {
            match req {
                Request::OpenDev { path } => {
                    let end = path.iter().position(|&b| b == 0).unwrap();
                    let p = std::str::from_utf8(&path[..end]).unwrap();
                    match std::fs::OpenOptions::new().read(true).write(true).open(p) {
                        Ok(f) => {
                            let mut r = Reply::default();
                            r.name[..4].copy_from_slice(b"tun7");
                            (r, vec![OwnedFd::from(f)])
                        }
                        Err(e) => (Reply::err(e.raw_os_error().unwrap()), vec![]),
                    }
                }
                Request::OpenSockets => {
                    let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                    let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                    (Reply::default(), vec![OwnedFd::from(a), OwnedFd::from(b)])
                }
                _ => (Reply::err(libc::EOPNOTSUPP), vec![]),
            }
        }
    }

    #[test]
    fn requests_round_trip() {
        let mut path = [0u8; 32];
        path[..8].copy_from_slice(b"/dev/tun");
        for r in [
            Request::OpenSockets,
            Request::OpenDev { path },
            Request::Capture {
                name: *b"isab12p0\0\0\0\0\0\0\0\0",
            },
            Request::SendRaw { name: [1; 16] },
            Request::Tcp {
                v6: true,
                slot: 3,
                addr: [0xfd; 16],
            },
            Request::Reclaim {
                name: [2; 16],
                jid: 4711,
            },
            Request::Quit,
        ] {
            assert_eq!(Request::decode(&r.encode()), Some(r));
        }
        assert_eq!(Request::decode(&[9u8; REQ_LEN]), None);
        assert_eq!(Request::decode(&[1u8; 3]), None);
    }

    #[test]
    fn descriptors_cross_the_socket_and_work_on_the_other_side() {
        let (ours, theirs) = pair().unwrap();
        let agent =
            std::thread::spawn(move || serve(theirs.as_raw_fd(), &mut Fake).map(|_| drop(theirs)));
        let mut c = Client::new(ours);
        let mut fds = Vec::new();
        let mut path = [0u8; 32];
        path[..9].copy_from_slice(b"/dev/null");
        let r = c.call(Request::OpenDev { path }, &mut fds).unwrap();
        assert_eq!(r.errno, 0);
        assert_eq!(&r.name[..5], b"tun7\0");
        assert_eq!(fds.len(), 1);
        // The descriptor is a live /dev/null: writes succeed.
        let mut f = std::fs::File::from(fds.pop().unwrap());
        use std::io::Write;
        f.write_all(b"x").unwrap();
        // Two descriptors at once, and they are distinct working sockets.
        let r = c.call(Request::OpenSockets, &mut fds).unwrap();
        assert_eq!((r.errno, fds.len()), (0, 2));
        assert_ne!(fds[0].as_raw_fd(), fds[1].as_raw_fd());
        let s = std::net::UdpSocket::from(fds.pop().unwrap());
        assert!(s.local_addr().unwrap().ip().is_loopback());
        fds.clear();
        // An error travels as an errno, with no descriptor.
        let r = c
            .call(Request::Capture { name: [0; 16] }, &mut fds)
            .unwrap();
        assert_eq!((r.errno, fds.len()), (libc::EOPNOTSUPP, 0));
        let mut missing = [0u8; 32];
        missing[..13].copy_from_slice(b"/nonexistent!");
        let r = c
            .call(Request::OpenDev { path: missing }, &mut fds)
            .unwrap();
        assert_eq!(r.errno, libc::ENOENT);
        c.call(Request::Quit, &mut fds).unwrap_err();
        let r = agent.join().unwrap();
        assert!(r.is_ok(), "agent: {r:?}");
    }
}
