//! One run's namespaces on Linux: the home namespace, each stack's
//! descriptor (churn stacks come and go under their lock), and the observer
//! namespace that tells which removed namespaces the kernel still holds.
//! The executors and the Platform impl build on it; it names neither.

use super::sys;
use crate::model::Tag;
use crate::world::{StackId, World};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

pub(crate) struct LinuxSession {
    pub(super) world: Arc<World>,
    /// The home namespace, for executors to enter; let go of at teardown so
    /// that the session itself never keeps a removed stack alive.
    pub(super) home: Mutex<Option<OwnedFd>>,
    /// Namespace descriptors by stack; churn stacks come and go under their lock.
    pub(super) stacks: Vec<Mutex<Option<OwnedFd>>>,
    pub(super) observer: Mutex<Option<Observer>>,
}

pub(super) fn observer_name(tag: &Tag) -> String {
    tag.named_stack('o', 0)
}

/// A namespace of the run's own that outlives its stacks: every stack gets a
/// namespace id here (RTM_NEWNSID), and the kernel drops a peer's id when that
/// peer namespace is really freed. After teardown, the ids still listed are
/// namespaces something still holds.
pub(super) struct Observer {
    pub(super) name: String,
    pub(super) _fd: OwnedFd,
    pub(super) nl: sys::Netlink,
    pub(super) next: i32,
    pub(super) ids: Vec<(i32, StackId)>,
    /// List length at which freed namespaces are forgotten (PRUNE_AT; tests lower it).
    pub(super) prune_at: usize,
}

pub(super) const PRUNE_AT: usize = 1024;

impl Observer {
    pub(super) fn watch(&mut self, ns: &OwnedFd, stack: StackId) {
        let id = self.next;
        self.next += 1;
        let fd = ns.as_raw_fd() as u32;
        // Best effort: a kernel that refuses ids just cannot be watched.
        if self.nl.request(|m, s| m.new_nsid(s, fd, id).len()).is_ok() {
            self.prune();
            self.ids.push((id, stack));
        }
    }

    /// Forget the ids of namespaces already freed, before the list would grow:
    /// a day of stack churn creates about 350,000 namespaces, and only the
    /// ones still held matter at the end.
    pub(super) fn prune(&mut self) {
        if self.ids.len() < self.prune_at || self.ids.len() < self.ids.capacity() {
            return;
        }
        if let Ok(alive) = self.alive() {
            self.ids.retain(|(id, _)| alive.contains(id));
        }
    }

    pub(super) fn alive(&mut self) -> std::io::Result<Vec<i32>> {
        let seq = self.nl.next_seq();
        let req = self.nl.msg.dump_nsids(seq).to_vec();
        let fd = self.nl.fd.as_raw_fd();
        // SAFETY: req is a valid buffer.
        if unsafe { libc::send(fd, req.as_ptr() as *const _, req.len(), 0) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut buf = vec![0u8; 64 * 1024];
        let mut out = Vec::new();
        loop {
            // SAFETY: buf is a valid writable buffer.
            let n = unsafe { libc::recv(fd, buf.as_mut_ptr() as *mut _, buf.len(), 0) };
            if n < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for m in crate::netlink::messages(&buf[..n as usize]) {
                match m.ty {
                    crate::netlink::NLMSG_DONE => return Ok(out),
                    crate::netlink::NLMSG_ERROR => {
                        return Err(std::io::Error::from_raw_os_error(
                            crate::netlink::error_code(m.payload).unwrap_or(libc::EPROTO),
                        ));
                    }
                    crate::netlink::RTM_NEWNSID => {
                        out.extend(crate::netlink::parse_nsid(m.payload))
                    }
                    _ => {}
                }
            }
        }
    }
}

impl LinuxSession {
    pub(super) fn home_fd(&self) -> std::io::Result<OwnedFd> {
        match self.home.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(fd) => fd.try_clone(),
            None => Err(std::io::Error::other("the run is already torn down")),
        }
    }

    /// Give a stack created during the run its id in the observer.
    pub(super) fn watch(&self, ns: &OwnedFd, stack: StackId) {
        if let Some(o) = self
            .observer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            o.watch(ns, stack);
        }
    }

    /// A descriptor of the stack's namespace, owned by the caller, or None
    /// when the stack does not exist right now.
    pub(super) fn dup_stack(&self, s: StackId) -> Option<OwnedFd> {
        let g = self.stacks[s as usize]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        g.as_ref().and_then(|fd| fd.try_clone().ok())
    }
}

impl std::fmt::Debug for LinuxSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LinuxSession({} stacks)", self.stacks.len())
    }
}
