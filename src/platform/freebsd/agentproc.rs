//! Agent processes: this binary re-executed as `ifstress __agent JID`,
//! attached to a jail, serving `platform::agent` requests on its stdin (one
//! end of a SEQPACKET pair). Supervised by the executor that spawned it:
//! killed and reaped when dropped, and it exits by itself when its socket
//! closes, so none outlives the run.

use super::abi;
use super::sys;
use crate::platform::agent::{self, Client, Handler, Reply, Request};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};

pub struct Agent {
    child: Child,
    pub client: Client,
}

impl Agent {
    pub fn spawn(jid: i32) -> std::io::Result<Agent> {
        let (ours, theirs) = agent::pair()?;
        let exe = std::env::current_exe()?;
        let child = Command::new(exe)
            .arg("__agent")
            .arg(jid.to_string())
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        Ok(Agent {
            child,
            client: Client::new(ours),
        })
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The capture buffer the agent asks bpf for.
const CAPTURE_BUF: u32 = 64 * 1024;

/// What the agent does, inside its jail.
struct InJail {
    inet: OwnedFd,
    bpf: Option<OwnedFd>,
    frame: [u8; 60],
    rx: Vec<u8>,
    /// send-tcp4/6's connections, left waiting on their SYN: TCP's timers
    /// send it again through the link while it is detached or moved. They
    /// go with the agent, which goes with the jail.
    tcp: [Option<OwnedFd>; TCP_HELD],
}

/// How many TCP connections an agent keeps waiting at once.
const TCP_HELD: usize = 4;

fn cstr_path(p: &[u8; 32]) -> std::ffi::CString {
    let end = p.iter().position(|&b| b == 0).unwrap_or(32);
    std::ffi::CString::new(&p[..end]).unwrap_or_default()
}

impl InJail {
    fn bpf(&mut self) -> sys::Sys<i32> {
        if let Some(b) = &self.bpf {
            return Ok(b.as_raw_fd());
        }
        // SAFETY: literal path.
        let fd = sys::check(unsafe {
            libc::open(c"/dev/bpf".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC)
        })?;
        // SAFETY: fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut one: u32 = 1;
        sys::ioctl(fd.as_raw_fd(), abi::BIOCIMMEDIATE, &mut one)?;
        let mut nb: i32 = 1;
        sys::ioctl(fd.as_raw_fd(), abi::FIONBIO, &mut nb)?;
        // bpfread answers EINVAL unless the read asks for exactly the
        // descriptor's buffer size (net.bpf.bufsize, 4 KiB by default), and
        // the size can only change before the first BIOCSETIF. Ask for 64 KiB
        // (the kernel clamps it to net.bpf.maxbufsize) and read what it chose.
        let mut want: u32 = CAPTURE_BUF;
        let _ = sys::ioctl(fd.as_raw_fd(), abi::BIOCSBLEN, &mut want);
        let mut have: u32 = 0;
        sys::ioctl(fd.as_raw_fd(), abi::BIOCGBLEN, &mut have)?;
        self.rx.resize(have as usize, 0);
        let raw = fd.as_raw_fd();
        self.bpf = Some(fd);
        Ok(raw)
    }

    fn attach(&mut self, name: &[u8; 16]) -> sys::Sys<i32> {
        let b = self.bpf()?;
        let mut r = abi::Ifreq::new(name);
        sys::ioctl(b, abi::BIOCSETIF, &mut r)?;
        Ok(b)
    }
}

impl Handler for InJail {
    fn handle(&mut self, req: Request) -> (Reply, Vec<OwnedFd>) {
        let r = |e: sys::Sys<()>| Reply::err(e.err().unwrap_or(0));
        match req {
            Request::OpenSockets => {
                let mut fds = Vec::new();
                let mut have = 0u8;
                for (i, (dom, ty)) in [
                    (libc::AF_INET, libc::SOCK_DGRAM),
                    (libc::AF_INET6, libc::SOCK_DGRAM),
                    (abi::AF_NETLINK, libc::SOCK_RAW),
                    (abi::AF_NETGRAPH, libc::SOCK_DGRAM),
                ]
                .into_iter()
                .enumerate()
                {
                    let proto = if dom == abi::AF_NETGRAPH {
                        abi::NG_CONTROL
                    } else {
                        0
                    };
                    match sys::socket(dom, ty, proto) {
                        Ok(fd) => {
                            have |= 1 << i;
                            fds.push(fd);
                        }
                        // The first two are required; netlink and netgraph are optional.
                        Err(e) if i < 2 => return (Reply::err(e), vec![]),
                        Err(_) => {}
                    }
                }
                let mut reply = Reply::default();
                reply.name[0] = have;
                (reply, fds)
            }
            Request::OpenDev { path } => {
                let p = cstr_path(&path);
                // SAFETY: valid C string.
                let fd = unsafe {
                    libc::open(
                        p.as_ptr(),
                        libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK,
                    )
                };
                if fd < 0 {
                    return (Reply::err(sys::errno()), vec![]);
                }
                // SAFETY: fresh descriptor.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                let reply = Reply {
                    name: sys::devname(fd.as_raw_fd()).unwrap_or_default(),
                    ..Default::default()
                };
                (reply, vec![fd])
            }
            Request::Capture { name } => {
                let res = self.attach(&name).and_then(|b| {
                    // SAFETY: rx is a valid buffer; the descriptor is non-blocking.
                    let n = unsafe { libc::read(b, self.rx.as_mut_ptr() as *mut _, self.rx.len()) };
                    if n < 0 && sys::errno() != libc::EAGAIN {
                        Err(sys::errno())
                    } else {
                        Ok(())
                    }
                });
                (r(res), vec![])
            }
            Request::SendRaw { name } => {
                let res = self.attach(&name).and_then(|b| {
                    // SAFETY: frame is a valid buffer.
                    let n = unsafe {
                        libc::write(b, self.frame.as_ptr() as *const _, self.frame.len())
                    };
                    if n < 0 { Err(sys::errno()) } else { Ok(()) }
                });
                (r(res), vec![])
            }
            Request::Reclaim { name, jid } => {
                let mut ifr = abi::Ifreq::new(&name);
                ifr.set_i32(jid);
                (
                    r(sys::ioctl(
                        self.inet.as_raw_fd(),
                        abi::SIOCSIFRVNET,
                        &mut ifr,
                    )),
                    vec![],
                )
            }
            Request::Tcp { v6, slot, addr } => {
                let k = slot as usize % TCP_HELD;
                self.tcp[k] = None;
                let res = if v6 {
                    sys::socket(libc::AF_INET6, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0)
                        .and_then(|fd| {
                            let mut dst = abi::SockaddrIn6::new(addr);
                            dst.port = 9u16.to_be();
                            sys::connect_started(fd.as_raw_fd(), &dst).map(|()| fd)
                        })
                } else {
                    sys::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0).and_then(
                        |fd| {
                            let mut dst =
                                abi::SockaddrIn::new([addr[0], addr[1], addr[2], addr[3]]);
                            dst.port = 9u16.to_be();
                            sys::connect_started(fd.as_raw_fd(), &dst).map(|()| fd)
                        },
                    )
                };
                match res {
                    Ok(fd) => {
                        self.tcp[k] = Some(fd);
                        (Reply::default(), vec![])
                    }
                    Err(e) => (Reply::err(e), vec![]),
                }
            }
            Request::Quit => (Reply::default(), vec![]),
        }
    }
}

/// `ifstress __agent JID`: attach to the jail, set the jail's own sysctls
/// (`rules::JAIL_SYSCTLS`: per-vnet, so they die with the jail), and serve
/// requests on stdin. Every agent sets them, so a jail has them before any
/// op reaches it: every op on a jail goes through an agent of that jail.
pub fn main(jid: i32) -> i32 {
    if let Err(e) = sys::jail_attach(jid) {
        eprintln!(
            "ifstress agent: jail_attach({jid}): {}",
            std::io::Error::from_raw_os_error(e)
        );
        return 2;
    }
    for s in super::rules::JAIL_SYSCTLS {
        let errno = sys::set_sysctl_int(s.name, s.value)
            .err()
            .map_or(0, |e| e.raw_os_error().unwrap_or(libc::EIO));
        if let Some(note) = super::rules::jail_sysctl_note(s, jid, errno) {
            eprintln!("{note}");
        }
    }
    let inet = match sys::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "ifstress agent: socket: {}",
                std::io::Error::from_raw_os_error(e)
            );
            return 2;
        }
    };
    let mut frame = [0u8; 60];
    frame[..6].fill(0xff);
    frame[6..12].copy_from_slice(&[0x02, 0x69, 0x66, 0x73, 0, 1]);
    frame[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
    let mut h = InJail {
        inet,
        bpf: None,
        frame,
        rx: Vec::with_capacity(CAPTURE_BUF as usize),
        tcp: Default::default(),
    };
    match agent::serve(0, &mut h) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ifstress agent: {e}");
            3
        }
    }
}
