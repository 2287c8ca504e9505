//! Linux backend: stacks are network namespaces, links are rtnetlink and
//! /dev/net/tun objects, ops are ioctls and netlink messages on sockets opened
//! inside each namespace and used from the worker threads.
//!
//! Safety: every worker thread lives in the run's home namespace for its whole
//! life, and every socket an op uses was opened inside one of the run's own
//! namespaces. Nothing an op does can reach the host's interfaces.

mod baseline;
mod exec;
mod features;
mod kmsg;
pub mod netns;
mod session;
pub mod sys;

use super::seam::{EnvError, Executor, KernelLog, KindProbe, Platform, Session};
use crate::model::{LinkKind, OpKind, Scope, StackRole, Tag};
use crate::netlink::NewLink;
use crate::world::{StackId, World};
use anyhow::{Context, anyhow};
pub(crate) use session::LinuxSession;
use session::{Observer, PRUNE_AT, observer_name};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};

pub struct Linux;

impl Platform for Linux {
    fn name(&self) -> &'static str {
        "linux"
    }

    fn kernel(&self) -> String {
        crate::platform::unix::uname()
    }

    fn require_privileges(&self) -> Result<(), EnvError> {
        crate::platform::unix::require_root(
            "creating network namespaces and interfaces needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN)",
        )?;
        // Root with capabilities dropped (capsh, a container) fails at the
        // first namespace otherwise, as an internal error after setup.
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        match missing_caps(&status) {
            Some(m) if !m.is_empty() => Err(EnvError::Unusable(format!(
                "root without {}: network namespaces and interfaces need them",
                m.join(", ")
            ))),
            _ => Ok(()),
        }
    }

    fn require_features(&self) -> Result<(), EnvError> {
        if !std::path::Path::new("/proc/self/ns/net").exists() {
            return Err(EnvError::Missing(
                "network namespaces (CONFIG_NET_NS)".into(),
            ));
        }
        Ok(())
    }

    fn load_modules(&self, _kinds: &[LinkKind]) -> anyhow::Result<Vec<String>> {
        // rtnetlink asks the kernel to load link-type modules on demand.
        Ok(Vec::new())
    }

    fn probe_kinds(&self, tag: &Tag, kinds: &[LinkKind]) -> anyhow::Result<Vec<KindProbe>> {
        netns::prepare_run_dir().context("preparing /run/netns")?;
        let name = tag.named_stack('p', 0);
        let kinds = kinds.to_vec();
        let tag = tag.clone();
        let n2 = name.clone();
        let res = netns::on_fresh_thread(move || probe_in_scratch(&n2, &tag, &kinds))?;
        let _ = netns::unname(&name);
        res
    }

    fn start(&self, world: Arc<World>) -> anyhow::Result<Arc<dyn Session>> {
        netns::prepare_run_dir().context("preparing /run/netns")?;
        let names: Vec<(String, StackRole)> = world
            .layout
            .stacks
            .iter()
            .map(|s| (s.name.clone(), s.role))
            .collect();
        let observer_name = observer_name(&world.layout.tag);
        let oname = observer_name.clone();
        let created = netns::on_fresh_thread(move || {
            // The observer first: the thread opens its netlink socket inside it.
            let ofd = netns::create_here(&oname).map_err(|e| {
                anyhow!(
                    "creating network namespace {oname}: {}",
                    std::io::Error::from_raw_os_error(e)
                )
            })?;
            let onl = match sys::Netlink::open(libc::AF_NETLINK) {
                Ok(n) => n,
                Err(e) => {
                    let _ = netns::unname(&oname);
                    return Err(anyhow!(
                        "netlink socket in {oname}: {}",
                        std::io::Error::from_raw_os_error(e)
                    ));
                }
            };
            let mut fds = Vec::new();
            for (name, role) in &names {
                if *role == StackRole::Churn {
                    fds.push(None);
                    continue;
                }
                match netns::create_here(name) {
                    Ok(fd) => fds.push(Some(fd)),
                    Err(e) => {
                        for (n, _) in names.iter().take(fds.len()) {
                            let _ = netns::unname(n);
                        }
                        let _ = netns::unname(&oname);
                        return Err(anyhow!(
                            "creating network namespace {name}: {}",
                            std::io::Error::from_raw_os_error(e)
                        ));
                    }
                }
            }
            Ok((fds, ofd, onl))
        })??;
        let (created, ofd, onl) = created;
        let mut observer = Observer {
            name: observer_name,
            _fd: ofd,
            nl: onl,
            next: 1,
            ids: Vec::new(),
            prune_at: PRUNE_AT,
        };
        for (s, fd) in created.iter().enumerate() {
            if let Some(fd) = fd {
                observer.watch(fd, s as StackId);
            }
        }
        let home = created[0]
            .as_ref()
            .expect("home stack is never churned")
            .try_clone()
            .context("duplicating the home namespace descriptor")?;
        Ok(Arc::new(LinuxSession {
            world,
            home: Mutex::new(Some(home)),
            stacks: created.into_iter().map(Mutex::new).collect(),
            observer: Mutex::new(Some(observer)),
        }))
    }

    fn kernel_log(&self) -> anyhow::Result<Box<dyn KernelLog>> {
        Ok(Box::new(
            kmsg::Kmsg::open_at_end().context("opening /dev/kmsg")?,
        ))
    }

    fn leftovers(&self, scope: Scope) -> anyhow::Result<Vec<String>> {
        let mut out: Vec<String> = netns::list()
            .into_iter()
            .filter(|n| scope.owns_stack(n))
            .map(|n| format!("network namespace {n}"))
            .collect();
        for l in host_links()? {
            if l.alias.as_deref().is_some_and(|a| scope.owns_alias(a)) {
                out.push(format!("interface {} in the host namespace", l.name));
            }
        }
        Ok(out)
    }

    fn cleanup(&self, scope: Scope) -> anyhow::Result<Vec<String>> {
        let mut removed = Vec::new();
        for n in netns::list() {
            if scope.owns_stack(&n) {
                netns::unname(&n)
                    .map_err(std::io::Error::from_raw_os_error)
                    .with_context(|| format!("removing network namespace {n}"))?;
                removed.push(format!("network namespace {n}"));
            }
        }
        let links = host_links()?;
        let mut nl =
            sys::Netlink::open(libc::AF_NETLINK).map_err(std::io::Error::from_raw_os_error)?;
        for l in links {
            if l.alias.as_deref().is_some_and(|a| scope.owns_alias(a)) {
                let name = l.name.clone();
                nl.request(|m, s| m.del_link(s, name.as_bytes()).len())
                    .map_err(std::io::Error::from_raw_os_error)
                    .with_context(|| format!("deleting interface {name}"))?;
                removed.push(format!("interface {name} in the host namespace"));
            }
        }
        Ok(removed)
    }

    fn kernel_facts(&self) -> crate::platform::facts::KernelFacts {
        features::read()
    }

    fn syscall_of(&self, op: OpKind, kind: LinkKind) -> &'static str {
        exec::syscall_of(op, kind)
    }

    fn memory_counters(&self) -> std::collections::BTreeMap<String, i64> {
        // See check::leak: SLUB's slabinfo counts do not follow namespaces.
        std::collections::BTreeMap::new()
    }

    fn force_dump(&self) -> std::io::Result<()> {
        // sysrq 'c': a crash kdump or pstore records, whatever kernel.sysrq says.
        std::fs::write("/proc/sysrq-trigger", "c")
    }

    fn thread_id(&self) -> i64 {
        sys::gettid()
    }

    fn baseline(
        &self,
        case: crate::platform::baseline::Case,
        names: &crate::platform::baseline::Names,
    ) -> crate::platform::baseline::Baseline {
        baseline::baseline(case, names)
    }

    fn rss_bytes(&self) -> Option<u64> {
        // statm: size resident shared ... in pages.
        let s = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
        Some(pages * crate::resources::page_size())
    }

    fn rss_peak_bytes(&self) -> Option<u64> {
        // VmHWM belongs to this address space, so it starts afresh at exec.
        let s = std::fs::read_to_string("/proc/self/status").ok()?;
        let kib: u64 = s
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    }

    fn thread_stack(&self, tid: i64) -> Option<String> {
        let base = format!("/proc/self/task/{tid}");
        if let Some(s) = std::fs::read_to_string(format!("{base}/stack"))
            .ok()
            .filter(|s| !s.trim().is_empty())
        {
            return Some(s);
        }
        // Kernels without CONFIG_STACKTRACE: where it sleeps and in which syscall.
        let wchan = std::fs::read_to_string(format!("{base}/wchan")).ok()?;
        let syscall = std::fs::read_to_string(format!("{base}/syscall")).unwrap_or_default();
        Some(format!(
            "wchan: {}\nsyscall: {}",
            wchan.trim(),
            syscall.trim()
        ))
    }
}

/// Links of the host namespace, read with a dump from the calling thread,
/// which is never one that entered a run's namespace. Read-only.
fn host_links() -> anyhow::Result<Vec<crate::netlink::LinkInfo>> {
    let mut nl = sys::Netlink::open(libc::AF_NETLINK)
        .map_err(std::io::Error::from_raw_os_error)
        .context("opening a netlink socket")?;
    nl.dump_links()
        .map_err(std::io::Error::from_raw_os_error)
        .context("listing interfaces")
}

/// Runs on a throwaway thread that enters a fresh scratch namespace.
fn probe_in_scratch(name: &str, tag: &Tag, kinds: &[LinkKind]) -> anyhow::Result<Vec<KindProbe>> {
    let _ns = netns::create_here(name)
        .map_err(std::io::Error::from_raw_os_error)
        .with_context(|| format!("creating network namespace {name}"))?;
    let mut nl = sys::Netlink::open(libc::AF_NETLINK).map_err(std::io::Error::from_raw_os_error)?;
    let inet = sys::socket(libc::AF_INET, libc::SOCK_DGRAM, 0)
        .map_err(std::io::Error::from_raw_os_error)?;
    let parent = tag.link_name(LinkKind::Pair, 900, 0, false);
    let peer = tag.link_name(LinkKind::Pair, 900, 1, false);
    let mut have_parent = false;
    let mut out = Vec::new();
    for &kind in kinds {
        let native = exec::native_name(kind);
        if kind.needs_parent() && !have_parent {
            have_parent = nl
                .request(|m, s| {
                    m.new_link(
                        s,
                        parent.as_bytes(),
                        NewLink::Veth {
                            peer: peer.as_bytes(),
                        },
                    )
                    .len()
                })
                .is_ok();
        }
        let name = tag.link_name(kind, 901, 0, false);
        let r = match kind {
            LinkKind::Tun | LinkKind::Tap => {
                sys::tun_attach(&name, kind == LinkKind::Tap, 0).map(drop)
            }
            _ => {
                let parent_ix = sys::ifindex(inet.as_raw_fd(), &parent).unwrap_or(0);
                let nk = exec::rtnl_kind(kind, parent_ix, 1, &peer);
                nl.request(|m, s| m.new_link(s, name.as_bytes(), nk).len())
                    .and_then(|_| nl.request(|m, s| m.del_link(s, name.as_bytes()).len()))
            }
        };
        let result = r.map_err(|e| {
            format!(
                "creating a {native} failed: {}",
                std::io::Error::from_raw_os_error(e)
            )
        });
        out.push(KindProbe {
            kind,
            native,
            result,
        });
    }
    Ok(out)
}
impl Session for LinuxSession {
    fn executor(self: Arc<Self>, worker: usize) -> anyhow::Result<Box<dyn Executor>> {
        let home = self.home_fd().context("the run's home namespace")?;
        sys::setns(&home)
            .map_err(std::io::Error::from_raw_os_error)
            .context("entering the run's home namespace")?;
        Ok(Box::new(exec::LinuxExec::new(self, home, worker)?))
    }

    fn teardown(&self) -> anyhow::Result<()> {
        self.home.lock().unwrap_or_else(|p| p.into_inner()).take();
        let mut errors = Vec::new();
        for (i, slot) in self.stacks.iter().enumerate().rev() {
            let mut g = slot.lock().unwrap_or_else(|p| p.into_inner());
            if g.take().is_some() {
                let name = &self.world.layout.stacks[i].name;
                if let Err(e) = netns::unname(name) {
                    errors.push(format!("{name}: {}", std::io::Error::from_raw_os_error(e)));
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(anyhow!("removing namespaces: {}", errors.join("; ")))
        }
    }

    fn dying(&self, grace: std::time::Duration) -> anyhow::Result<Vec<(StackId, String)>> {
        let Some(mut o) = self
            .observer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            return Ok(Vec::new());
        };
        let until = crate::model::deadline(std::time::Instant::now(), grace);
        let result = loop {
            let alive = o.alive().context("listing namespace ids in the observer")?;
            let held: Vec<(StackId, String)> = o
                .ids
                .iter()
                .filter(|(id, _)| alive.contains(id))
                .map(|(id, s)| {
                    (
                        *s,
                        format!(
                            "network namespace {} (nsid {id} in {})",
                            self.world.layout.stacks[*s as usize].name, o.name
                        ),
                    )
                })
                .collect();
            if held.is_empty() || std::time::Instant::now() >= until {
                break held;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        };
        let _ = netns::unname(&o.name);
        Ok(result)
    }
}

/// The capabilities a run needs that `CapEff:` in /proc/self/status lacks;
/// None when the line cannot be read (then the first syscall will tell).
fn missing_caps(status: &str) -> Option<Vec<&'static str>> {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    let eff = u64::from_str_radix(hex, 16).ok()?;
    // include/uapi/linux/capability.h
    const NEEDED: [(u32, &str); 2] = [(12, "CAP_NET_ADMIN"), (21, "CAP_SYS_ADMIN")];
    Some(
        NEEDED
            .iter()
            .filter(|(bit, _)| eff & (1 << bit) == 0)
            .map(|(_, n)| *n)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn dropped_capabilities_are_named() {
        let full = "Name:\tx\nCapEff:\t000001ffffffffff\n";
        assert_eq!(super::missing_caps(full), Some(vec![]));
        // capsh --drop=cap_net_admin: bit 12 cleared.
        let no_net = "CapEff:\t000001ffffffefff\n";
        assert_eq!(super::missing_caps(no_net), Some(vec!["CAP_NET_ADMIN"]));
        assert_eq!(
            super::missing_caps("CapEff:\t0000000000000000\n"),
            Some(vec!["CAP_NET_ADMIN", "CAP_SYS_ADMIN"])
        );
        assert_eq!(super::missing_caps("garbage"), None);
    }

    use super::*;
    use std::os::fd::OwnedFd;

    /// A namespace nobody names: it lives exactly as long as its descriptor.
    fn anonymous_ns() -> OwnedFd {
        // SAFETY: only this short-lived thread changes namespace.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
        std::fs::File::open("/proc/thread-self/ns/net")
            .expect("own namespace")
            .into()
    }

    #[test]
    fn peak_rss_is_this_images_high_water_mark() {
        let now = Linux.rss_bytes().unwrap();
        let peak = Linux.rss_peak_bytes().unwrap();
        assert!(peak >= now && now > 0, "peak {peak} now {now}");
        // Touch 8 MiB more than ever before: the mark follows.
        let mut v = vec![1u8; (peak as usize) + (8 << 20)];
        v[4096] = 2;
        std::hint::black_box(&v);
        let after = Linux.rss_peak_bytes().unwrap();
        assert!(after >= peak + (8 << 20), "peak {peak} after {after}");
    }

    #[test]
    fn observer_forgets_freed_namespaces_and_keeps_held_ones() {
        if !crate::testutil::in_tier(crate::testutil::Tier::Host) {
            return;
        }
        if !nix::unistd::geteuid().is_root() {
            crate::testutil::skip("observer pruning needs root (namespaces)");
            return;
        }
        // The observer and 6 stacks, all anonymous: nothing is left on the host.
        let (ofd, nl, mut stacks) = netns::on_fresh_thread(|| {
            let ofd = anonymous_ns();
            let nl = sys::Netlink::open(libc::AF_NETLINK).expect("netlink in the observer");
            let stacks: Vec<OwnedFd> = (0..6).map(|_| anonymous_ns()).collect();
            (ofd, nl, stacks)
        })
        .unwrap();
        let mut o = Observer {
            name: "ifstress-test-observer".into(),
            _fd: ofd,
            nl,
            next: 1,
            ids: Vec::with_capacity(4),
            prune_at: 4,
        };
        for (s, fd) in stacks.iter().take(4).enumerate() {
            o.watch(fd, s as StackId);
        }
        assert_eq!(o.ids.len(), 4, "the kernel gave no nsids: {:?}", o.ids);
        // Free stacks 1..3 and keep 0; wait (bounded) until the kernel has
        // really freed them, which happens in its cleanup work, not at close.
        let held_id = o.ids[0].0;
        drop(stacks.drain(1..4));
        let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let alive = o.alive().unwrap();
            if alive.len() == 1 {
                assert_eq!(alive, vec![held_id]);
                break;
            }
            assert!(
                std::time::Instant::now() < until,
                "namespaces not freed: {alive:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // The list is full: the next watch forgets the freed three first.
        o.watch(&stacks[1], 4);
        assert_eq!(
            o.ids.iter().map(|i| i.1).collect::<Vec<_>>(),
            vec![0, 4],
            "{:?}",
            o.ids
        );
        // Below the threshold nothing is pruned (and no dump is sent).
        o.watch(&stacks[2], 5);
        assert_eq!(o.ids.len(), 3);
    }
}
