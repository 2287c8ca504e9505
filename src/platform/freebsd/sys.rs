//! FreeBSD syscalls: ioctls with their request numbers from `abi`, sysctl
//! reads, and jails through jail_set(2)/jail_get(2)/jail_remove(2).

use super::abi;
use super::jailparam::JailParams;
pub use crate::platform::unix::{Sys, check, connect_started, errno, socket};
use std::ffi::CString;
use std::os::fd::RawFd;

pub fn ioctl<T>(fd: RawFd, req: u64, arg: &mut T) -> Sys<()> {
    // SAFETY: every caller passes the structure its request number encodes.
    check(unsafe { libc::ioctl(fd, req as libc::c_ulong, arg as *mut T) }).map(drop)
}

/// A second descriptor of the same open file, close-on-exec.
pub fn dup(fd: RawFd) -> Sys<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain syscall; a non-negative result is a fresh descriptor we own.
    let d = check(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })?;
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(d) })
}

pub fn ifindex(fd: RawFd, name: &[u8; 16]) -> Sys<i32> {
    let mut r = abi::Ifreq::new(name);
    ioctl(fd, abi::SIOCGIFINDEX, &mut r)?;
    Ok(r.index())
}

/// A sysctl's value, sized by asking first and retried while it grows.
pub fn sysctl_bytes(name: &str) -> std::io::Result<Vec<u8>> {
    let c = CString::new(name).map_err(std::io::Error::other)?;
    for _ in 0..8 {
        let mut len: libc::size_t = 0;
        // SAFETY: size probe with a null buffer.
        if unsafe {
            libc::sysctlbyname(
                c.as_ptr(),
                std::ptr::null_mut(),
                &mut len,
                std::ptr::null(),
                0,
            )
        } < 0
        {
            return Err(std::io::Error::last_os_error());
        }
        let mut buf = vec![0u8; len + len / 8 + 64];
        let mut got = buf.len();
        // SAFETY: buf has `got` bytes.
        let rc = unsafe {
            libc::sysctlbyname(
                c.as_ptr(),
                buf.as_mut_ptr() as *mut _,
                &mut got,
                std::ptr::null(),
                0,
            )
        };
        if rc == 0 {
            buf.truncate(got);
            return Ok(buf);
        }
        if errno() != libc::ENOMEM {
            return Err(std::io::Error::last_os_error());
        }
    }
    Err(std::io::Error::from_raw_os_error(libc::ENOMEM))
}

pub fn sysctl_int(name: &str) -> Option<i64> {
    let b = sysctl_bytes(name).ok()?;
    match b.len() {
        // SYSCTL_BOOL (sysctl_handle_bool) answers one byte.
        1 => Some(b[0] as i64),
        4 => Some(i32::from_ne_bytes(b[..4].try_into().ok()?) as i64),
        8 => Some(i64::from_ne_bytes(b[..8].try_into().ok()?)),
        _ => None,
    }
}

pub fn set_sysctl_int(name: &str, v: i32) -> std::io::Result<()> {
    let c = CString::new(name).map_err(std::io::Error::other)?;
    // SAFETY: v outlives the call.
    let rc = unsafe {
        libc::sysctlbyname(
            c.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &v as *const i32 as *const _,
            4,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Create a persistent VNET jail at path "/"; `children` lets it hold jails.
pub fn jail_create(name: &str, children: Option<i32>) -> Sys<i32> {
    let mut p = JailParams::new();
    p.string("name", name)
        .string("path", "/")
        .int("vnet", abi::JAIL_SYS_NEW)
        .flag("persist");
    if let Some(n) = children {
        p.int("children.max", n);
    }
    let mut iov = p.iovecs();
    // SAFETY: iov points into `p`, alive for the call.
    check(unsafe { libc::jail_set(iov.as_mut_ptr(), iov.len() as u32, abi::JAIL_CREATE) })
}

/// Clear `persist`: the jail goes away when its last process exits, and
/// prison_deref returns its interfaces (vnet_if_return) on that path.
pub fn jail_unpersist(jid: i32) -> Sys<()> {
    let mut p = JailParams::new();
    p.int("jid", jid).flag("nopersist");
    let mut iov = p.iovecs();
    // SAFETY: iov points into `p`, alive for the call.
    check(unsafe { libc::jail_set(iov.as_mut_ptr(), iov.len() as u32, abi::JAIL_UPDATE) }).map(drop)
}

pub fn jail_remove(jid: i32) -> Sys<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::jail_remove(jid) }).map(drop)
}

pub fn jail_attach(jid: i32) -> Sys<()> {
    // SAFETY: plain syscall; moves this whole process into the jail.
    check(unsafe { libc::jail_attach(jid) }).map(drop)
}

#[derive(Debug, Clone)]
pub struct JailInfo {
    pub jid: i32,
    pub name: String,
    pub dying: bool,
}

/// Every jail, dying ones included, as `jls -vd` shows them. Only ENOENT
/// ends the list (kern_jail_get: "no jail after %d"); any other error is
/// the caller's to report, so a DYING jail is never missed in silence.
pub fn jails() -> std::io::Result<Vec<JailInfo>> {
    let mut out = Vec::new();
    let mut last = 0;
    // Bounded: jail ids only grow along the list, and no system holds more
    // jails than this.
    for _ in 0..1_000_000 {
        let mut p = JailParams::new();
        p.int("lastjid", last)
            .out("jid", 4)
            .out("name", 256)
            .out("dying", 4);
        let mut iov = p.iovecs();
        // SAFETY: iov points into `p`, alive for the call.
        let jid = unsafe { libc::jail_get(iov.as_mut_ptr(), iov.len() as u32, abi::JAIL_DYING) };
        if jid < 0 {
            return match super::rules::jail_list_end(errno()) {
                Ok(()) => Ok(out),
                Err(e) => Err(std::io::Error::from_raw_os_error(e)),
            };
        }
        out.push(JailInfo {
            jid,
            name: p.get_string("name").unwrap_or_default(),
            dying: p.get_int("dying").unwrap_or(0) != 0,
        });
        last = jid;
    }
    Err(std::io::Error::other("jail_get: the jail list did not end"))
}

unsafe extern "C" {
    fn kldload(file: *const libc::c_char) -> libc::c_int;
    fn modfind(name: *const libc::c_char) -> libc::c_int;
    fn fdevname_r(fd: libc::c_int, buf: *mut libc::c_char, len: libc::c_int) -> *mut libc::c_char;
    fn pthread_getthreadid_np() -> libc::c_int;
}

/// Load a kernel module unless it is there already.
pub fn load_module(module: &str, file: &str) -> std::io::Result<bool> {
    let m = CString::new(module).map_err(std::io::Error::other)?;
    // SAFETY: valid C string.
    if unsafe { modfind(m.as_ptr()) } >= 0 {
        return Ok(false);
    }
    let f = CString::new(file).map_err(std::io::Error::other)?;
    // SAFETY: valid C string.
    if unsafe { kldload(f.as_ptr()) } < 0 && errno() != libc::EEXIST {
        return Err(std::io::Error::last_os_error());
    }
    Ok(true)
}

/// The device name behind a descriptor ("tun3" after opening /dev/tun).
pub fn devname(fd: RawFd) -> Option<[u8; 16]> {
    let mut buf = [0 as libc::c_char; 16];
    // SAFETY: buf has 16 bytes.
    let p = unsafe { fdevname_r(fd, buf.as_mut_ptr(), 16) };
    if p.is_null() {
        return None;
    }
    Some(buf.map(|c| c as u8))
}

pub fn thread_id() -> i64 {
    // SAFETY: no arguments.
    unsafe { pthread_getthreadid_np() as i64 }
}

/// Names of the interface cloners the kernel has (SIOCIFGCLONERS).
pub fn cloners() -> std::io::Result<Vec<String>> {
    let s =
        socket(libc::AF_INET, libc::SOCK_DGRAM, 0).map_err(std::io::Error::from_raw_os_error)?;
    use std::os::fd::AsRawFd;
    let mut req = abi::IfCloneReq {
        total: 0,
        count: 0,
        buffer: 0,
    };
    ioctl(s.as_raw_fd(), abi::SIOCIFGCLONERS, &mut req)
        .map_err(std::io::Error::from_raw_os_error)?;
    let mut buf = vec![0u8; req.total as usize * 16];
    req.count = req.total;
    req.buffer = buf.as_mut_ptr() as u64;
    ioctl(s.as_raw_fd(), abi::SIOCIFGCLONERS, &mut req)
        .map_err(std::io::Error::from_raw_os_error)?;
    Ok(buf
        .chunks(16)
        .take(req.count.min(req.total) as usize)
        .map(|c| {
            let end = c.iter().position(|&b| b == 0).unwrap_or(16);
            String::from_utf8_lossy(&c[..end]).into_owned()
        })
        .collect())
}

/// This process's resident pages, from kern.proc.pid.<pid> (what ps shows as RSS).
pub fn own_rss_pages() -> Option<u64> {
    let mut mib = [
        libc::CTL_KERN,
        libc::KERN_PROC,
        libc::KERN_PROC_PID,
        std::process::id() as libc::c_int,
    ];
    // SAFETY: kinfo_proc is plain data; the kernel fills at most `len` bytes.
    let mut kp: libc::kinfo_proc = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::kinfo_proc>();
    // SAFETY: mib and kp outlive the call; len is kp's size.
    let rc = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            mib.len() as libc::c_uint,
            &mut kp as *mut _ as *mut libc::c_void,
            &mut len,
            std::ptr::null(),
            0,
        )
    };
    (rc == 0 && len == std::mem::size_of::<libc::kinfo_proc>()).then_some(kp.ki_rssize as u64)
}
