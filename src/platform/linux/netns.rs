//! Network namespaces as stacks: created by unshare(2) on a thread that may
//! change namespace, named under /run/netns like `ip netns add` does (so that
//! `ip netns`, `ifstress cleanup` and a person can see them), held by fd.

use super::sys::{self, Sys};
use std::ffi::{CStr, CString};
use std::os::fd::{FromRawFd, OwnedFd};

pub const RUN_DIR: &str = "/run/netns";

/// Where a namespace's name lives: /run/netns/NAME. Workers build these once,
/// so that creating and removing stacks allocates nothing per op.
pub fn path(name: &str) -> CString {
    CString::new(format!("{RUN_DIR}/{name}")).expect("stack names have no NUL")
}

/// Make /run/netns exist and be a shared mount, as iproute2 does, so that
/// namespace bind mounts made here show up in other mount namespaces.
pub fn prepare_run_dir() -> std::io::Result<()> {
    std::fs::create_dir_all(RUN_DIR)?;
    let dir = CString::new(RUN_DIR).unwrap();
    let shared = |flags| {
        // SAFETY: valid NUL-terminated paths; null fs type and data are allowed here.
        unsafe {
            libc::mount(
                c"none".as_ptr(),
                dir.as_ptr(),
                std::ptr::null(),
                flags,
                std::ptr::null(),
            )
        }
    };
    if shared(libc::MS_SHARED | libc::MS_REC) == 0 {
        return Ok(());
    }
    // Not a mount point yet: bind it onto itself first.
    // SAFETY: as above.
    let rc = unsafe {
        libc::mount(
            dir.as_ptr(),
            dir.as_ptr(),
            c"none".as_ptr(),
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        )
    };
    if rc != 0 || shared(libc::MS_SHARED | libc::MS_REC) != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Create a new namespace named `name` and return a descriptor of it. The
/// calling thread is moved into the new namespace; the caller moves it back
/// (or lets the thread end).
pub fn create_here(name: &str) -> Sys<OwnedFd> {
    create_here_at(&path(name))
}

/// `create_here` with the path made beforehand.
pub fn create_here_at(p: &CStr) -> Sys<OwnedFd> {
    // SAFETY: affects only the calling thread's namespace.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(sys::errno());
    }
    // SAFETY: literal path.
    let fd = unsafe {
        libc::open(
            c"/proc/thread-self/ns/net".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(sys::errno());
    }
    // SAFETY: fresh descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    optimistic_dad();
    // SAFETY: valid path; O_EXCL refuses to reuse a name another run holds.
    let f = unsafe {
        libc::open(
            p.as_ptr(),
            libc::O_RDONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
            0o444,
        )
    };
    if f < 0 {
        return Err(sys::errno());
    }
    // SAFETY: f is ours to close.
    unsafe { libc::close(f) };
    // SAFETY: valid paths.
    let rc = unsafe {
        libc::mount(
            c"/proc/thread-self/ns/net".as_ptr(),
            p.as_ptr(),
            c"none".as_ptr(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let e = sys::errno();
        // SAFETY: valid path.
        unsafe { libc::unlink(p.as_ptr()) };
        return Err(e);
    }
    Ok(fd)
}

/// IPv6 addresses usable while DAD still runs (RFC 4429), in the namespace
/// of the calling thread only. Without it a link that just came up has only
/// a tentative link-local address and every send to ff02::1 stops at source
/// selection (EADDRNOTAVAIL) before reaching the output path under test;
/// with it, DAD and its ND traffic still happen. /proc/sys/net shows the
/// calling thread's namespace. Best effort: a kernel without IPv6 has none.
fn optimistic_dad() {
    for knob in [
        "/proc/sys/net/ipv6/conf/all/optimistic_dad",
        "/proc/sys/net/ipv6/conf/all/use_optimistic",
        "/proc/sys/net/ipv6/conf/default/optimistic_dad",
        "/proc/sys/net/ipv6/conf/default/use_optimistic",
    ] {
        let _ = std::fs::write(knob, "1");
    }
}

/// Drop the name of a namespace. It dies when the last descriptor, socket or
/// thread inside lets go of it.
pub fn unname(name: &str) -> Sys<()> {
    unname_at(&path(name))
}

/// `unname` with the path made beforehand.
pub fn unname_at(p: &CStr) -> Sys<()> {
    // SAFETY: valid path.
    let rc = unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) };
    let e = if rc != 0 { Some(sys::errno()) } else { None };
    // SAFETY: valid path.
    unsafe { libc::unlink(p.as_ptr()) };
    match e {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

/// Names of namespaces under /run/netns.
pub fn list() -> Vec<String> {
    std::fs::read_dir(RUN_DIR)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Open a named namespace.
pub fn open(name: &str) -> Sys<OwnedFd> {
    let p = path(name);
    // SAFETY: valid path.
    let fd = unsafe { libc::open(p.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(sys::errno());
    }
    // SAFETY: fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Run `f` on a short-lived thread of its own, so that whatever namespace it
/// enters dies with the thread and never leaks into a tokio worker.
pub fn on_fresh_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<T> {
    std::thread::Builder::new()
        .name("ifstress-ns".into())
        .spawn(f)?
        .join()
        .map_err(|_| std::io::Error::other("namespace helper thread panicked"))
}
