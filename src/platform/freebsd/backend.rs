//! The FreeBSD platform, session and executor.
//!
//! Stacks: the run's home is a persistent VNET jail `ifstress-<tag>-h0` with
//! children; fixed and churn stacks are VNET jails beneath it
//! (`ifstress-<tag>-h0.ifstress-<tag>-s1`). The main process stays in the
//! host prison (it reads the message buffer and removes jails); every op
//! goes through sockets opened inside the run's jails by agents, so no op
//! names an interface of the host's vnet. Interfaces are created on the home
//! jail's socket, so they are born in the home vnet.
//!
//! When a removed stack's interfaces come home: jail_remove (or the last
//! process leaving a non-persistent jail) only marks the prison dying;
//! `vnet_destroy`, and with it `vnet_if_return`, runs from `prison_deref`
//! when the prison's last plain reference goes (kern_jail.c). Every socket
//! opened in the jail holds one through its credential, and so does the
//! devfs cdev of a tun/tap cloned there on kernels without D51525. So the
//! moment a stack-remove races the others is when the last executor lets go
//! of that jail's sockets: every executor drops them at its next op after
//! any stack-remove (`FbsdSession::removals`), not at its next sweep.

use super::abi::{self, Ifreq, fixed};
use super::agentproc::Agent;
use super::msgbuf::Cursor;
use super::rules;
use super::sys::{self, Sys};
use crate::model::{LinkKind, OpKind, Scope, StackRole, Tag};
use crate::plan::Op;
use crate::platform::agent::Request;
use crate::platform::seam::{EnvError, Executor, KernelLog, KindProbe, Outcome, Platform, Session};
use crate::platform::unix::Netlink;
use crate::world::{HOME, LinkId, StackId, World};
use anyhow::{Context, anyhow};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use crate::platform::seam::SKIP;
use crate::platform::stack_cache::StackCache;
const HELD: usize = 4;
const SWEEP_EVERY: u32 = 64;

pub struct FreeBsd;

fn cloner(kind: LinkKind) -> Option<&'static str> {
    Some(match kind {
        LinkKind::Pair => "epair",
        LinkKind::Tun => "tun",
        LinkKind::Tap => "tap",
        LinkKind::Bridge => "bridge",
        LinkKind::Lagg => "lagg",
        LinkKind::Vlan => "vlan",
        LinkKind::Eiface | LinkKind::Macvlan => return None,
    })
}

pub fn native_name(kind: LinkKind) -> &'static str {
    match kind {
        LinkKind::Eiface => "ng_eiface",
        LinkKind::Macvlan => "macvlan",
        k => cloner(k).expect("cloned kinds"),
    }
}

pub fn syscall_of(op: OpKind, kind: LinkKind) -> &'static str {
    if let Some(why) = rules::unsupported(op, kind) {
        return why;
    }
    match op {
        OpKind::Create if kind == LinkKind::Eiface => {
            "NGM_MKPEER eiface, NGM_NAME, NGM_EIFACE_GET_IFNAME (name:), SIOCSIFNAME, SIOCSIFDESCR"
        }
        OpKind::Create => {
            "SIOCIFCREATE2, SIOCSIFNAME, SIOCSIFDESCR (SIOCIFDESTROY if the rename fails)"
        }
        OpKind::Destroy if kind == LinkKind::Eiface => "NGM_SHUTDOWN to the node's name:",
        OpKind::Destroy => "SIOCIFDESTROY",
        OpKind::DestroyNetlink => "SIOCGIFINDEX, RTM_DELLINK (AF_NETLINK)",
        OpKind::Move => "SIOCSIFVNET",
        OpKind::MoveBack => "SIOCSIFRVNET (from the home jail's agent)",
        OpKind::UpDown => "SIOCGIFFLAGS, SIOCSIFFLAGS",
        OpKind::Mtu => "SIOCSIFMTU",
        OpKind::Rename => "SIOCSIFNAME",
        OpKind::Media => "SIOCGIFMEDIA",
        OpKind::Addr4Add => "SIOCAIFADDR",
        OpKind::Addr4Del => "SIOCDIFADDR",
        OpKind::Addr6Add => {
            "SIOCAIFADDR_IN6 (DAD off in the jail: net.inet6.ip6.dad_count=0, set by its agents)"
        }
        OpKind::Addr6Del => "SIOCDIFADDR_IN6",
        OpKind::SendUdp4 => "IP_MULTICAST_IF, sendto 224.0.0.1",
        OpKind::SendUdp6 => "sendto ff02::1%link",
        OpKind::SendTcp4 => {
            "socket(SOCK_STREAM), connect to the link's 198.18.x.y+1 in its jail (agent; SYN held on ARP)"
        }
        OpKind::SendTcp6 => {
            "socket(SOCK_STREAM), connect to the link's fd00:...::2 in its jail (agent; SYN held on ND)"
        }
        OpKind::SendRaw => "BIOCSETIF, write /dev/bpf (agent)",
        OpKind::Capture => "BIOCSBLEN, BIOCSETIF, read /dev/bpf (agent)",
        OpKind::TunOpen => {
            "open /dev/tun or /dev/tap inside the jail (agent); the one it replaces: close, SIOCIFDESTROY"
        }
        OpKind::MemberAdd if kind == LinkKind::Lagg => "SIOCSLAGGPORT",
        OpKind::MemberDel if kind == LinkKind::Lagg => "SIOCSLAGGDELPORT",
        OpKind::MemberAdd => "SIOCSDRVSPEC BRDGADD",
        OpKind::MemberDel => "SIOCSDRVSPEC BRDGDEL",
        OpKind::StackCreate => "jail_set(JAIL_CREATE, vnet=new), SIOCSIFVNET",
        OpKind::StackRemove => {
            "jail_remove, or jail_set(JAIL_UPDATE, nopersist); links come home when the last socket goes"
        }
    }
}

fn home_name(tag: &Tag) -> String {
    tag.stack_name(StackRole::Home, 0)
}

/// The jail name of a layout stack: children carry their parent's name.
fn jail_name(world: &World, s: StackId) -> String {
    let st = &world.layout.stacks[s as usize];
    if st.role == StackRole::Home {
        st.name.clone()
    } else {
        format!("{}.{}", home_name(&world.layout.tag), st.name)
    }
}

impl Platform for FreeBsd {
    fn name(&self) -> &'static str {
        "freebsd"
    }

    fn kernel(&self) -> String {
        crate::platform::unix::uname()
    }

    fn kernel_version(&self) -> Option<i64> {
        sys::sysctl_int("kern.osreldate")
    }

    fn require_privileges(&self) -> Result<(), EnvError> {
        crate::platform::unix::require_root("creating VNET jails and interfaces needs root")
    }

    fn require_features(&self) -> Result<(), EnvError> {
        if sys::sysctl_int("kern.features.vimage") != Some(1) {
            return Err(EnvError::Missing(
                "VIMAGE (kern.features.vimage is not 1; build the kernel with `options VIMAGE`)"
                    .into(),
            ));
        }
        Ok(())
    }

    fn load_modules(&self, kinds: &[LinkKind]) -> anyhow::Result<Vec<String>> {
        let mut loaded = Vec::new();
        for k in kinds {
            for &(m, f) in rules::modules(*k) {
                if sys::load_module(m, f).with_context(|| format!("kldload {f}"))? {
                    loaded.push(f.to_string());
                }
            }
        }
        Ok(loaded)
    }

    fn probe_kinds(&self, _tag: &Tag, kinds: &[LinkKind]) -> anyhow::Result<Vec<KindProbe>> {
        let have = sys::cloners().context("listing interface cloners (SIOCIFGCLONERS)")?;
        Ok(kinds
            .iter()
            .map(|&kind| {
                let result = match kind {
                    LinkKind::Macvlan => Err("FreeBSD has no macvlan".to_string()),
                    LinkKind::Eiface => {
                        sys::socket(abi::AF_NETGRAPH, libc::SOCK_DGRAM, abi::NG_CONTROL)
                            .map(drop)
                            .map_err(|e| {
                                format!(
                                    "no netgraph socket ({}); kldload ng_socket ng_eiface",
                                    std::io::Error::from_raw_os_error(e)
                                )
                            })
                    }
                    k => {
                        let c = cloner(k).expect("cloned kinds");
                        if have.iter().any(|h| h == c) {
                            Ok(())
                        } else {
                            Err(format!(
                                "no `{c}` cloner (kldload {}, or --load-modules)",
                                rules::modules(k).first().map_or("?", |m| m.1)
                            ))
                        }
                    }
                };
                KindProbe {
                    kind,
                    native: native_name(kind),
                    result,
                }
            })
            .collect())
    }

    fn start(&self, world: Arc<World>) -> anyhow::Result<Arc<dyn Session>> {
        let n = world.layout.stacks.len() as i32;
        let mut jids = Vec::new();
        for s in 0..world.layout.stacks.len() as StackId {
            let role = world.layout.stacks[s as usize].role;
            if role == StackRole::Churn {
                jids.push(None);
                continue;
            }
            let name = jail_name(&world, s);
            let children = (role == StackRole::Home).then_some(n + 8);
            match sys::jail_create(&name, children) {
                Ok(j) => jids.push(Some(j)),
                Err(e) => {
                    if let Some(Some(home)) = jids.first() {
                        let _ = sys::jail_remove(*home);
                    }
                    return Err(anyhow!(
                        "creating jail {name}: {}",
                        std::io::Error::from_raw_os_error(e)
                    ));
                }
            }
        }
        // Every create and destroy of an epair logs its link-state changes
        // (if_link_state_change -> do_link_state_change, when
        // net.link.log_link_state_change is set). That switch is the
        // machine's, not the run's: it is left as it is (a run killed
        // outright could not set it back); the log reader keeps pace with
        // the rate instead, and `doctor` reports the setting.
        Ok(Arc::new(FbsdSession {
            world,
            jids: jids.into_iter().map(Mutex::new).collect(),
            removals: AtomicU32::new(0),
            osreldate: sys::sysctl_int("kern.osreldate"),
        }))
    }

    fn kernel_log(&self) -> anyhow::Result<Box<dyn KernelLog>> {
        let now = sys::sysctl_bytes("kern.msgbuf").context("reading kern.msgbuf")?;
        let shared = Arc::new(LogShared {
            stop: AtomicBool::new(false),
            ring: Mutex::new(Ring {
                cursor: Cursor::at_end(&now),
                pending: String::new(),
                lost: 0,
                ambiguous: 0,
                error: None,
            }),
        });
        let s2 = shared.clone();
        let sampler = std::thread::Builder::new()
            .name("ifstress-msgbuf".into())
            .spawn(move || sample_loop(&s2))
            .context("starting the kernel message buffer reader")?;
        Ok(Box::new(Msgbuf {
            shared,
            sampler: Some(sampler),
            badstacks: badstacks(),
            badstacks_at: std::time::Instant::now(),
        }))
    }

    fn leftovers(&self, scope: Scope) -> anyhow::Result<Vec<String>> {
        Ok(sys::jails()
            .context("listing jails (jail_get)")?
            .into_iter()
            .filter(|j| scope.owns_stack(&j.name))
            .map(|j| {
                format!(
                    "jail {} (jid {}){}",
                    j.name,
                    j.jid,
                    if j.dying { " dying" } else { "" }
                )
            })
            .collect())
    }

    fn cleanup(&self, scope: Scope) -> anyhow::Result<Vec<String>> {
        let mut removed = Vec::new();
        // Parents first: removing a jail removes its children.
        let mut js: Vec<_> = sys::jails()
            .context("listing jails (jail_get)")?
            .into_iter()
            .filter(|j| scope.owns_stack(&j.name) && !j.dying)
            .collect();
        js.sort_by_key(|j| j.name.matches('.').count());
        for j in js {
            match sys::jail_remove(j.jid) {
                Ok(()) => removed.push(format!("jail {} (jid {})", j.name, j.jid)),
                Err(libc::EINVAL) => {} // gone with its parent
                Err(e) => {
                    return Err(std::io::Error::from_raw_os_error(e))
                        .with_context(|| format!("removing jail {}", j.name));
                }
            }
        }
        Ok(removed)
    }

    fn kernel_facts(&self) -> crate::platform::facts::KernelFacts {
        super::features::read()
    }

    fn syscall_of(&self, op: OpKind, kind: LinkKind) -> &'static str {
        syscall_of(op, kind)
    }

    fn memory_counters(&self) -> std::collections::BTreeMap<String, i64> {
        use crate::check::leak;
        let run = |arg: &str| {
            std::process::Command::new("vmstat")
                .arg(arg)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        let mut all = leak::parse_vmstat_m(&run("-m"));
        all.extend(leak::parse_vmstat_z(&run("-z")));
        leak::watched(all)
    }

    fn force_dump(&self) -> std::io::Result<()> {
        // debug.kdb.panic=1: panic now; with a dumpdev set, savecore finds it.
        sys::set_sysctl_int("debug.kdb.panic", 1)
    }

    fn thread_id(&self) -> i64 {
        sys::thread_id()
    }

    fn baseline(
        &self,
        case: crate::platform::baseline::Case,
        names: &crate::platform::baseline::Names,
    ) -> crate::platform::baseline::Baseline {
        super::baseline::baseline(case, names)
    }

    fn rss_bytes(&self) -> Option<u64> {
        sys::own_rss_pages().map(|p| p * crate::resources::page_size())
    }

    fn thread_stack(&self, tid: i64) -> Option<String> {
        let out = std::process::Command::new("procstat")
            .args(["-kk", &std::process::id().to_string()])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(&tid.to_string()))?;
        Some(line.to_string())
    }
}

/// The kernel log reader. The orchestrator asks every 2 s, but the ring
/// (kern.msgbufsize, 96 KiB by default) can wrap faster than that under a
/// busy run (a rename line per create, link-state lines), so a thread of its
/// own reads it at the pace the measured log rate needs and keeps what is new
/// until asked.
struct Msgbuf {
    shared: Arc<LogShared>,
    sampler: Option<std::thread::JoinHandle<()>>,
    /// WITNESS's record of lock-order reversals (absent without WITNESS),
    /// as last read, and when: it is read at the start, at the end, and at
    /// most every `msgbuf::BADSTACKS_EVERY` between.
    badstacks: Option<String>,
    badstacks_at: std::time::Instant,
}

struct LogShared {
    stop: AtomicBool,
    ring: Mutex<Ring>,
}

/// What the reader has taken from the ring and not handed over yet.
struct Ring {
    cursor: Cursor,
    pending: String,
    /// Reads that found the ring wrapped past the cursor, or the cursor
    /// ambiguous, since the last hand-over.
    lost: u32,
    ambiguous: u32,
    error: Option<std::io::ErrorKind>,
}

/// What the reader keeps at most between two hand-overs; past it, the
/// oldest text goes and counts as lost.
const PENDING_MAX: usize = 4 << 20;

impl Ring {
    /// Read the ring once; returns the bytes it held and how many were new.
    fn sample(&mut self) -> (usize, usize) {
        let now = match sys::sysctl_bytes("kern.msgbuf") {
            Ok(b) => b,
            Err(e) => {
                self.error = Some(e.kind());
                return (0, 0);
            }
        };
        let a = self.cursor.advance(&now);
        self.lost += a.lost as u32;
        self.ambiguous += a.ambiguous as u32;
        self.pending.push_str(&a.text);
        if self.pending.len() > PENDING_MAX {
            // Keep the newest PENDING_MAX bytes, from a line start.
            let mut cut = self.pending.len() - PENDING_MAX;
            while !self.pending.is_char_boundary(cut) {
                cut += 1;
            }
            cut = self.pending[cut..]
                .find('\n')
                .map_or(self.pending.len(), |i| cut + i + 1);
            self.pending.drain(..cut);
            self.lost += 1;
        }
        (now.len(), a.text.len())
    }
}

fn sample_loop(shared: &LogShared) {
    use super::msgbuf::{MIN_SCAN, scan_interval};
    // Setup's creates log the most: look soon, then at the measured pace.
    let mut wait = MIN_SCAN * 5;
    while !shared.stop.load(Relaxed) {
        let since = std::time::Instant::now();
        while since.elapsed() < wait && !shared.stop.load(Relaxed) {
            std::thread::sleep(MIN_SCAN);
        }
        let (size, new) = shared
            .ring
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sample();
        wait = scan_interval(size, new, since.elapsed());
    }
}

impl Drop for Msgbuf {
    fn drop(&mut self) {
        self.shared.stop.store(true, Relaxed);
        if let Some(t) = self.sampler.take() {
            let _ = t.join();
        }
    }
}

fn badstacks() -> Option<String> {
    sys::sysctl_bytes("debug.witness.badstacks").ok().map(|b| {
        String::from_utf8_lossy(&b)
            .trim_end_matches('\0')
            .to_string()
    })
}

/// Every line of `text`, each ending in '\n', as `KernelLog` promises.
fn push_lines(out: &mut String, text: &str) {
    for l in text.lines() {
        out.push_str(l);
        out.push('\n');
    }
}

impl KernelLog for Msgbuf {
    fn read_new(&mut self, out: &mut String) -> std::io::Result<()> {
        self.read(out, false)
    }

    fn read_final(&mut self, out: &mut String) -> std::io::Result<()> {
        self.read(out, true)
    }
}

impl Msgbuf {
    fn read(&mut self, out: &mut String, last: bool) -> std::io::Result<()> {
        {
            let mut r = self.shared.ring.lock().unwrap_or_else(|p| p.into_inner());
            r.sample();
            if let Some(kind) = r.error.take() {
                return Err(std::io::Error::new(kind, "reading kern.msgbuf"));
            }
            if r.lost > 0 {
                out.push_str(
                    "ifstress: kernel message buffer wrapped between reads; lines may be missing\n",
                );
            }
            if r.ambiguous > 0 {
                out.push_str(
                    "ifstress: kernel message buffer repeats the lines read last; lines between the copies may be missing\n",
                );
            }
            (r.lost, r.ambiguous) = (0, 0);
            let text = std::mem::take(&mut r.pending);
            push_lines(out, &text);
        }
        // LORs WITNESS recorded without printing them (debug.witness.trace=0).
        if let Some(before) = &self.badstacks
            && super::msgbuf::badstacks_due(self.badstacks_at.elapsed(), last)
        {
            self.badstacks_at = std::time::Instant::now();
            let now = badstacks().unwrap_or_default();
            for block in super::msgbuf::new_badstacks(before, &now) {
                out.push_str("lock order reversal: (from debug.witness.badstacks)\n");
                push_lines(out, block);
            }
            self.badstacks = Some(now);
        }
        Ok(())
    }
}

pub(crate) struct FbsdSession {
    world: Arc<World>,
    /// Jail ids by stack; churn stacks come and go under their lock.
    jids: Vec<Mutex<Option<i32>>>,
    /// Bumped by every stack-remove: each executor compares it once per op
    /// and lets go of the removed jail's sockets and devices at once.
    removals: AtomicU32,
    osreldate: Option<i64>,
}

impl FbsdSession {
    fn jid(&self, s: StackId) -> Option<i32> {
        *self.jids[s as usize]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

impl Session for FbsdSession {
    fn executor(self: Arc<Self>, worker: usize) -> anyhow::Result<Box<dyn Executor>> {
        Ok(Box::new(FbsdExec::new(self, worker)?))
    }

    fn teardown(&self) -> anyhow::Result<()> {
        let mut errs = Vec::new();
        // Children, then home.
        for (i, slot) in self.jids.iter().enumerate().rev() {
            let mut g = slot.lock().unwrap_or_else(|p| p.into_inner());
            // EINVAL: the jail went with its parent.
            if let Some(Err(e)) = g.take().map(sys::jail_remove)
                && e != libc::EINVAL
            {
                errs.push(format!(
                    "{}: {}",
                    jail_name(&self.world, i as StackId),
                    std::io::Error::from_raw_os_error(e)
                ));
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(anyhow!("removing jails: {}", errs.join("; ")))
        }
    }

    fn dying(&self, grace: std::time::Duration) -> anyhow::Result<Vec<(StackId, String)>> {
        let names: Vec<String> = (0..self.world.layout.stacks.len() as StackId)
            .map(|s| jail_name(&self.world, s))
            .collect();
        let until = crate::model::deadline(std::time::Instant::now(), grace);
        loop {
            // `jls -vd`: jails the run removed that the kernel still holds.
            let held: Vec<(StackId, String)> = sys::jails()
                .context("listing jails (jail_get)")?
                .into_iter()
                .filter_map(|j| {
                    let s = names.iter().position(|n| *n == j.name)? as StackId;
                    Some((
                        s,
                        format!(
                            "jail {} (jid {}){}",
                            j.name,
                            j.jid,
                            if j.dying { " DYING" } else { "" }
                        ),
                    ))
                })
                .collect();
            if held.is_empty() || std::time::Instant::now() >= until {
                return Ok(self.with_d51525_note(held));
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    }
}

impl FbsdSession {
    /// Say, of a jail held after tun-opens inside it (or of the home jail
    /// whose held child had them), whether this kernel is expected to hold
    /// it (rules::d51525_note).
    fn with_d51525_note(&self, held: Vec<(StackId, String)>) -> Vec<(StackId, String)> {
        let w = &self.world;
        let opened = |s: StackId| w.tun_opens(s) > 0;
        let child_opened = held.iter().any(|&(s, _)| s != HOME && opened(s));
        let note = self.osreldate.and_then(rules::d51525_note);
        held.into_iter()
            .map(|(s, what)| match &note {
                Some(n) if opened(s) || (s == HOME && child_opened) => (s, format!("{what}; {n}")),
                _ => (s, what),
            })
            .collect()
    }
}

/// Sockets and the agent of one jail, for one worker.
struct StackSocks {
    jid: i32,
    agent: Agent,
    inet: OwnedFd,
    inet6: OwnedFd,
    nl: Option<Netlink>,
    ng: Option<OwnedFd>,
}

/// A tun/tap descriptor tun-open holds, and what it cloned.
struct Held {
    fd: OwnedFd,
    name: [u8; 16],
    stack: StackId,
    generation: u32,
    /// A socket of the jail it was opened in: its interface is destroyed
    /// through it even after that jail was removed (the cdev on kernels
    /// without D51525, and this socket, keep the jail's vnet until then).
    sock: Option<OwnedFd>,
}

impl Held {
    /// Let go of the descriptor. Closing it does not destroy the interface
    /// the devfs clone made (tundtor only brings it down); that is done here
    /// through the jail's socket (tun_clone_destroy -> destroy_dev frees the
    /// cdev and the credential it holds), unless the suite leaves it to the
    /// jail's removal (the D51525 scenario).
    fn release(self, leave: bool) {
        drop(self.fd);
        if let (false, Some(s)) = (leave, &self.sock) {
            let mut r = Ifreq::new(&self.name);
            let _ = sys::ioctl(s.as_raw_fd(), abi::SIOCIFDESTROY, &mut r);
        }
    }
}

/// What every op reads and none changes. Split from `State` so that an op
/// holds the world while it changes the caches, with no `Arc` clone per op.
struct Ctx {
    session: Arc<FbsdSession>,
    world: Arc<World>,
}

pub struct FbsdExec {
    ctx: Ctx,
    st: State,
}

/// What ops change: the per-stack sockets and agents, held descriptors,
/// buffers.
struct State {
    socks: StackCache<StackSocks>,
    held: [Option<Held>; HELD],
    /// The run's tag as an interface description, NUL included.
    descr: Vec<u8>,
    fds: Vec<OwnedFd>,
    ops: u32,
    /// `FbsdSession::removals` as of the last sweep.
    seen_removals: u32,
    ng_token: u32,
    ng_rx: Vec<u8>,
    payload: [u8; 46],
}

fn open_socks(jid: i32) -> Sys<StackSocks> {
    let mut agent = Agent::spawn(jid).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    let mut fds = Vec::new();
    let r = agent
        .client
        .call(Request::OpenSockets, &mut fds)
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    if r.errno != 0 {
        return Err(r.errno);
    }
    let have = r.name[0];
    let mut it = fds.into_iter();
    let inet = it.next().ok_or(libc::EPROTO)?;
    let inet6 = it.next().ok_or(libc::EPROTO)?;
    let nl = if have & 4 != 0 {
        it.next().map(Netlink::from_fd)
    } else {
        None
    };
    let ng = if have & 8 != 0 { it.next() } else { None };
    Ok(StackSocks {
        jid,
        agent,
        inet,
        inet6,
        nl,
        ng,
    })
}

fn socks<'a>(
    ctx: &Ctx,
    cache: &'a mut StackCache<StackSocks>,
    s: StackId,
) -> Sys<&'a mut StackSocks> {
    cache.get_or_open(s, ctx.world.stack_generation(s), || {
        open_socks(ctx.session.jid(s).ok_or(SKIP)?)
    })
}

impl FbsdExec {
    fn new(session: Arc<FbsdSession>, _worker: usize) -> anyhow::Result<FbsdExec> {
        let world = session.world.clone();
        let n = world.layout.stacks.len();
        let mut e = FbsdExec {
            st: State {
                // SIOCSIFDESCR copies length-1 bytes and NUL-terminates
                // (ifhwioctl): the length counts the NUL.
                descr: {
                    let mut d = world.layout.tag.alias().into_bytes();
                    d.push(0);
                    d
                },
                socks: StackCache::new(n),
                held: Default::default(),
                fds: Vec::with_capacity(4),
                ops: 0,
                seen_removals: 0,
                ng_token: 1,
                ng_rx: vec![0; 512],
                payload: [0; 46],
            },
            ctx: Ctx { session, world },
        };
        for s in 0..n as StackId {
            if e.ctx.world.stack_alive(s) {
                socks(&e.ctx, &mut e.st.socks, s).map_err(|c| {
                    anyhow!(
                        "starting the agent of jail {}: {}",
                        jail_name(&e.ctx.world, s),
                        std::io::Error::from_raw_os_error(c)
                    )
                })?;
            }
        }
        Ok(e)
    }
}

impl Ctx {
    /// The eiface node's name (also the hook name on the creating socket's
    /// node) and its length.
    fn eiface_node(&self, id: LinkId) -> ([u8; 16], usize) {
        let slot = &self.world.layout.links[id as usize];
        rules::eiface_node(&self.world.layout.tag.id, slot.ordinal)
    }

    /// `name:`, the absolute path of the eiface node from any control
    /// socket of the home jail's vnet.
    fn eiface_path(&self, id: LinkId) -> ([u8; 16], usize) {
        let (mut p, n) = self.eiface_node(id);
        p[n] = b':';
        (p, n + 1)
    }
}

/// The bytes of a plain-data request structure.
fn bytes_of<T>(v: &T) -> &[u8] {
    // SAFETY: only used on repr(C) structures of bytes and integers.
    unsafe { std::slice::from_raw_parts(v as *const T as *const u8, std::mem::size_of::<T>()) }
}

impl State {
    /// Let go of the sockets and devices of stacks removed since they were
    /// opened.
    fn sweep(&mut self, ctx: &Ctx) {
        self.socks.sweep(|s| ctx.world.stack_generation(s));
        let leave = ctx.world.layout.leave_tun_clones;
        for slot in &mut self.held {
            if slot
                .as_ref()
                .is_some_and(|h| ctx.world.stack_generation(h.stack) != h.generation)
                && let Some(h) = slot.take()
            {
                h.release(leave);
            }
        }
    }

    fn locate(&mut self, ctx: &Ctx, id: LinkId) {
        let cache = &mut self.socks;
        ctx.world.relocate(id, |s, name| {
            socks(ctx, cache, s).is_ok_and(|k| sys::ifindex(k.inet.as_raw_fd(), name.raw()).is_ok())
        });
    }

    fn rename(fd: RawFd, from: &[u8; 16], to: &[u8; 16]) -> Sys<()> {
        let mut to = *to;
        let mut r = Ifreq::new(from);
        r.set_ptr(0, to.as_mut_ptr() as usize);
        sys::ioctl(fd, abi::SIOCSIFNAME, &mut r)
    }

    fn describe(&mut self, fd: RawFd, name: &[u8; 16]) -> Sys<()> {
        let mut r = Ifreq::new(name);
        r.set_buffer(self.descr.as_mut_ptr() as usize, self.descr.len());
        sys::ioctl(fd, abi::SIOCSIFDESCR, &mut r)
    }

    /// A netgraph control message to `path`, through the home jail's
    /// socket; returns its token.
    fn ng_send(&mut self, ctx: &Ctx, path: &[u8], cookie: u32, cmd: u32, arg: &[u8]) -> Sys<u32> {
        let k = socks(ctx, &mut self.socks, HOME)?;
        let ng = k.ng.as_ref().ok_or(libc::EAFNOSUPPORT)?.as_raw_fd();
        self.ng_token = self.ng_token.wrapping_add(1);
        let mut msg = [0u8; 56 + 96];
        let hdr = abi::NgMsgHdr {
            version: abi::NG_VERSION,
            spare: 0,
            spare2: 0,
            arglen: arg.len() as u32,
            cmd,
            flags: 0,
            token: self.ng_token,
            typecookie: cookie,
            cmdstr: [0; 32],
        };
        // SAFETY: NgMsgHdr is plain data of 56 bytes.
        let hb = unsafe { std::slice::from_raw_parts(&hdr as *const _ as *const u8, 56) };
        msg[..56].copy_from_slice(hb);
        msg[56..56 + arg.len()].copy_from_slice(arg);
        let mut sa = abi::SockaddrNg {
            len: 0,
            family: abi::AF_NETGRAPH as u8,
            data: [0; 14],
        };
        let n = path.len().min(13);
        sa.data[..n].copy_from_slice(&path[..n]);
        sa.len = (n + 3) as u8;
        // SAFETY: buffers are valid for the call.
        let rc = unsafe {
            libc::sendto(
                ng,
                msg.as_ptr() as *const _,
                56 + arg.len(),
                0,
                &sa as *const _ as *const libc::sockaddr,
                sa.len as u32,
            )
        };
        if rc < 0 {
            Err(sys::errno())
        } else {
            Ok(self.ng_token)
        }
    }

    /// The interface name of the eiface node at `path` (NGM_EIFACE_GET_IFNAME),
    /// from the reply carrying the request's token: replies to requests that
    /// timed out earlier may still be queued on the socket.
    fn ng_ifname(&mut self, ctx: &Ctx, path: &[u8]) -> Sys<[u8; 16]> {
        let token = self.ng_send(
            ctx,
            path,
            abi::NGM_EIFACE_COOKIE,
            abi::NGM_EIFACE_GET_IFNAME,
            &[],
        )?;
        let k = socks(ctx, &mut self.socks, HOME)?;
        let ng = k.ng.as_ref().ok_or(libc::EAFNOSUPPORT)?.as_raw_fd();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
        for _ in 0..8 {
            let left = until.saturating_duration_since(std::time::Instant::now());
            let mut pfd = libc::pollfd {
                fd: ng,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one pollfd.
            if unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32) } <= 0 {
                return Err(libc::ETIMEDOUT);
            }
            // SAFETY: ng_rx is a valid buffer.
            let n =
                unsafe { libc::recv(ng, self.ng_rx.as_mut_ptr() as *mut _, self.ng_rx.len(), 0) };
            if n < 0 {
                return Err(sys::errno());
            }
            if let Some(arg) = rules::ng_reply(&self.ng_rx[..n as usize], token) {
                return Ok(fixed(&arg[..arg.len().min(16)]));
            }
        }
        Err(libc::ETIMEDOUT)
    }

    /// Shut an eiface node down (detaching its ifnet wherever it is).
    fn ng_shutdown(&mut self, ctx: &Ctx, path: &[u8]) -> Sys<()> {
        self.ng_send(ctx, path, abi::NGM_GENERIC_COOKIE, abi::NGM_SHUTDOWN, &[])
            .map(drop)
    }

    /// An ng_eiface node for link `id`: made as our socket node's peer,
    /// then named so that every worker's socket can address it as `name:`
    /// (a bare hook path is resolved from the sending socket's own node,
    /// ng_path2noderef). Returns the ifnet's kernel name.
    fn make_eiface(&mut self, ctx: &Ctx, id: LinkId) -> Sys<[u8; 16]> {
        let (node, nlen) = ctx.eiface_node(id);
        let mut mk = abi::NgmMkpeer {
            type_: [0; 32],
            ourhook: [0; 32],
            peerhook: [0; 32],
        };
        mk.type_[..6].copy_from_slice(b"eiface");
        mk.ourhook[..16].copy_from_slice(&node);
        mk.peerhook[..5].copy_from_slice(b"ether");
        self.ng_send(
            ctx,
            b".",
            abi::NGM_GENERIC_COOKIE,
            abi::NGM_MKPEER,
            bytes_of(&mk),
        )?;
        let mut nm = abi::NgmName {
            name: [0; abi::NG_NODESIZ],
        };
        nm.name[..16].copy_from_slice(&node);
        if let Err(e) = self.ng_send(
            ctx,
            &node[..nlen],
            abi::NGM_GENERIC_COOKIE,
            abi::NGM_NAME,
            bytes_of(&nm),
        ) {
            // Another worker's node has the name: ours would be an orphan.
            let _ = self.ng_shutdown(ctx, &node[..nlen]);
            return Err(if e == libc::EADDRINUSE {
                libc::EEXIST
            } else {
                e
            });
        }
        let (path, plen) = ctx.eiface_path(id);
        self.ng_ifname(ctx, &path[..plen]).inspect_err(|_| {
            let _ = self.ng_shutdown(ctx, &path[..plen]);
        })
    }

    fn create(&mut self, ctx: &Ctx, id: LinkId) -> Sys<()> {
        let world = &*ctx.world;
        let slot = &world.layout.links[id as usize];
        let name = *slot.names[0].raw();
        let eiface = slot.kind == LinkKind::Eiface;
        let created: [u8; 16] = if eiface {
            self.make_eiface(ctx, id)?
        } else {
            let k = socks(ctx, &mut self.socks, HOME)?;
            let c = cloner(slot.kind).ok_or(libc::EOPNOTSUPP)?;
            let mut r = Ifreq::new(&fixed(c.as_bytes()));
            let mut vreq;
            if let Some(p) = slot.parent {
                vreq = abi::Vlanreq {
                    parent: *world.name(p).raw(),
                    tag: 100 + (slot.ordinal % 3900) as u16,
                    proto: abi::ETHERTYPE_VLAN,
                };
                r.set_ptr(0, &mut vreq as *mut _ as usize);
            }
            sys::ioctl(k.inet.as_raw_fd(), abi::SIOCIFCREATE2, &mut r)?;
            r.name
        };
        let home = socks(ctx, &mut self.socks, HOME)?.inet.as_raw_fd();
        // The rename fails (EEXIST, if_rename) when a racing create of the
        // same link won: what was just made would stay behind untagged in the
        // home jail, and a long soak would run out of units. Undo it.
        // On failure, the name the interface has now: once the a-end is
        // renamed, its old name (epairNa) is free and may already be another
        // worker's fresh epair, which must not be destroyed in its place.
        let renamed = match Self::rename(home, &created, &name) {
            Err(e) => Err((e, created)),
            Ok(()) => match slot.peer {
                Some(p) => {
                    // epairNa was created along with epairNb.
                    let mut b = created;
                    if let Some(i) = b.iter().position(|&c| c == 0) {
                        b[i - 1] = b'b';
                    }
                    Self::rename(home, &b, world.layout.links[p as usize].names[0].raw())
                        .map_err(|e| (e, name))
                }
                None => Ok(()),
            },
        };
        if let Err((e, now_named)) = renamed {
            if eiface {
                let (path, plen) = ctx.eiface_path(id);
                let _ = self.ng_shutdown(ctx, &path[..plen]);
            } else {
                // Destroying either end of an epair destroys both.
                destroy_named(home, &now_named);
            }
            return Err(e);
        }
        world.created(id);
        let _ = self.describe(home, &name);
        if let Some(p) = slot.peer {
            let _ = self.describe(home, world.layout.links[p as usize].names[0].raw());
        }
        Ok(())
    }

    fn move_to(
        &mut self,
        ctx: &Ctx,
        id: LinkId,
        name: &[u8; 16],
        from: StackId,
        to: StackId,
    ) -> Sys<()> {
        let jid = socks(ctx, &mut self.socks, to)?.jid;
        let k = socks(ctx, &mut self.socks, from)?;
        let mut r = Ifreq::new(name);
        r.set_i32(jid);
        sys::ioctl(k.inet.as_raw_fd(), abi::SIOCSIFVNET, &mut r)?;
        ctx.world.moved(id, to);
        Ok(())
    }

    fn agent_call(&mut self, ctx: &Ctx, s: StackId, req: Request) -> Sys<()> {
        let k = socks(ctx, &mut self.socks, s)?;
        self.fds.clear();
        let r = k
            .agent
            .client
            .call(req, &mut self.fds)
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
        if r.errno != 0 { Err(r.errno) } else { Ok(()) }
    }

    fn run(&mut self, ctx: &Ctx, op: &Op) -> Sys<()> {
        let world = &*ctx.world;
        let id = op.link;
        let slot = &world.layout.links[id as usize];
        let hint = world.hint(id);
        let name = *world.name(id).raw();
        if rules::unsupported(op.kind, slot.kind).is_some() {
            return Err(SKIP);
        }
        match op.kind {
            OpKind::Create => self.create(ctx, id),
            OpKind::Destroy if slot.kind == LinkKind::Eiface => {
                // The netgraph path: shut the node down, which detaches the ifnet
                // wherever it is (FreeBSD's PR 292993 regression test does this).
                // By name, so that any worker reaches the node any worker made.
                let (path, plen) = ctx.eiface_path(id);
                self.ng_shutdown(ctx, &path[..plen])?;
                world.destroyed(id);
                Ok(())
            }
            OpKind::Destroy => {
                let k = socks(ctx, &mut self.socks, hint.stack)?;
                let mut r = Ifreq::new(&name);
                sys::ioctl(k.inet.as_raw_fd(), abi::SIOCIFDESTROY, &mut r)?;
                world.destroyed(id);
                Ok(())
            }
            OpKind::DestroyNetlink => {
                let k = socks(ctx, &mut self.socks, hint.stack)?;
                // FreeBSD's rtnl_handle_dellink looks links up by index only;
                // the index is resolved in the same jail a moment before.
                let ix = sys::ifindex(k.inet.as_raw_fd(), &name)?;
                let nl = k.nl.as_mut().ok_or(libc::EAFNOSUPPORT)?;
                nl.request(|m, s| m.del_link_index(s, ix).len())?;
                world.destroyed(id);
                Ok(())
            }
            OpKind::Move => self.move_to(ctx, id, &name, hint.stack, op.stack),
            OpKind::MoveBack => {
                // `ifconfig X -vnet J` from the parent: if_vmove_reclaim moves
                // the link into the caller's own vnet, so the home agent asks.
                let jid = socks(ctx, &mut self.socks, hint.stack)?.jid;
                self.agent_call(ctx, HOME, Request::Reclaim { name, jid })?;
                world.moved(id, HOME);
                Ok(())
            }
            OpKind::UpDown => {
                let k = socks(ctx, &mut self.socks, hint.stack)?;
                let mut r = Ifreq::new(&name);
                sys::ioctl(k.inet.as_raw_fd(), abi::SIOCGIFFLAGS, &mut r)?;
                r.set_flags(r.flags() ^ abi::IFF_UP);
                sys::ioctl(k.inet.as_raw_fd(), abi::SIOCSIFFLAGS, &mut r)
            }
            OpKind::Mtu => {
                let k = socks(ctx, &mut self.socks, hint.stack)?;
                let mut r = Ifreq::new(&name);
                r.set_i32(1280 + (op.arg % 8) as i32 * 32);
                sys::ioctl(k.inet.as_raw_fd(), abi::SIOCSIFMTU, &mut r)
            }
            OpKind::Rename => {
                let k = socks(ctx, &mut self.socks, hint.stack)?;
                let to = *slot.names[!hint.alt_name as usize].raw();
                Self::rename(k.inet.as_raw_fd(), &name, &to)?;
                world.renamed(id);
                Ok(())
            }
            OpKind::Media => {
                let k = socks(ctx, &mut self.socks, hint.stack)?;
                let mut m = abi::IfmediaReq {
                    name,
                    current: 0,
                    mask: 0,
                    status: 0,
                    active: 0,
                    count: 0,
                    ulist: 0,
                };
                sys::ioctl(k.inet.as_raw_fd(), abi::SIOCGIFMEDIA, &mut m)
            }
            OpKind::Addr4Add => {
                let k = socks(ctx, &mut self.socks, hint.stack)?;
                let a = crate::addr::v4(id);
                let mut bcast = a;
                bcast[3] |= 0x0f;
                let mut req = abi::InAliasreq {
                    name,
                    addr: abi::SockaddrIn::new(a),
                    broadaddr: abi::SockaddrIn::new(bcast),
                    mask: abi::SockaddrIn::new([255, 255, 255, 240]),
                    vhid: 0,
                };
                sys::ioctl(k.inet.as_raw_fd(), abi::SIOCAIFADDR, &mut req)
            }
            OpKind::Addr4Del => {
                let k = socks(ctx, &mut self.socks, hint.stack)?;
                let mut r = Ifreq::new(&name);
                let sa = abi::SockaddrIn::new(crate::addr::v4(id));
                // SAFETY: SockaddrIn is 16 plain bytes, the size of the union.
                r.u.copy_from_slice(unsafe {
                    std::slice::from_raw_parts(&sa as *const _ as *const u8, 16)
                });
                sys::ioctl(k.inet.as_raw_fd(), abi::SIOCDIFADDR, &mut r)
            }
            OpKind::Addr6Add => {
                let k = socks(ctx, &mut self.socks, hint.stack)?;
                let mut mask = [0u8; 16];
                mask[..8].fill(0xff);
                let mut req = abi::In6Aliasreq {
                    name,
                    addr: abi::SockaddrIn6::new(crate::addr::v6(id)),
                    dstaddr: abi::SockaddrIn6::default(),
                    prefixmask: abi::SockaddrIn6::new(mask),
                    // No flags: IN6_IFF_NODAD would not keep the address
                    // from being tentative (in6_update_ifa_internal sets
                    // IN6_IFF_TENTATIVE whenever in6if_do_dad holds). It is
                    // usable at once because the jail's agents set
                    // net.inet6.ip6.dad_count=0 (rules::JAIL_SYSCTLS), which
                    // nd6_dad_start honours.
                    flags: 0,
                    lifetime: abi::In6Addrlifetime {
                        vltime: abi::ND6_INFINITE_LIFETIME,
                        pltime: abi::ND6_INFINITE_LIFETIME,
                        ..Default::default()
                    },
                    vhid: 0,
                };
                sys::ioctl(k.inet6.as_raw_fd(), abi::SIOCAIFADDR_IN6, &mut req)
            }
            OpKind::Addr6Del => {
                let k = socks(ctx, &mut self.socks, hint.stack)?;
                let mut req =
                    abi::In6Ifreq::with_addr(&name, abi::SockaddrIn6::new(crate::addr::v6(id)));
                sys::ioctl(k.inet6.as_raw_fd(), abi::SIOCDIFADDR_IN6, &mut req)
            }
            OpKind::SendUdp4 => {
                let k = socks(ctx, &mut self.socks, hint.stack)?;
                let ix = sys::ifindex(k.inet.as_raw_fd(), &name)?;
                send_udp4(k.inet.as_raw_fd(), ix, &self.payload)
            }
            OpKind::SendUdp6 => {
                let k = socks(ctx, &mut self.socks, hint.stack)?;
                let ix = sys::ifindex(k.inet.as_raw_fd(), &name)?;
                send_udp6(k.inet6.as_raw_fd(), ix, &self.payload)
            }
            OpKind::SendTcp4 | OpKind::SendTcp6 => {
                let v6 = op.kind == OpKind::SendTcp6;
                let mut addr = [0u8; 16];
                if v6 {
                    addr = crate::addr::v6_neighbour(id);
                } else {
                    addr[..4].copy_from_slice(&crate::addr::v4_neighbour(id));
                }
                let slot = op.arg as u8;
                self.agent_call(ctx, hint.stack, Request::Tcp { v6, slot, addr })
            }
            OpKind::SendRaw => self.agent_call(ctx, hint.stack, Request::SendRaw { name }),
            OpKind::Capture => self.agent_call(ctx, hint.stack, Request::Capture { name }),
            OpKind::TunOpen => {
                let k = op.arg as usize % HELD;
                if let Some(h) = self.held[k].take() {
                    h.release(world.layout.leave_tun_clones);
                }
                let mut path = [0u8; 32];
                let dev: &[u8] = if slot.kind == LinkKind::Tap {
                    b"/dev/tap"
                } else {
                    b"/dev/tun"
                };
                path[..dev.len()].copy_from_slice(dev);
                let ks = socks(ctx, &mut self.socks, op.stack)?;
                self.fds.clear();
                let r = ks
                    .agent
                    .client
                    .call(Request::OpenDev { path }, &mut self.fds)
                    .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
                if r.errno != 0 {
                    return Err(r.errno);
                }
                let fd = self.fds.pop().ok_or(libc::EPROTO)?;
                let sock = sys::dup(ks.inet.as_raw_fd()).ok();
                self.held[k] = Some(Held {
                    fd,
                    name: r.name,
                    stack: op.stack,
                    generation: world.stack_generation(op.stack),
                    sock,
                });
                Ok(())
            }
            OpKind::MemberAdd | OpKind::MemberDel => {
                let member = *world.name(op.other).raw();
                let mstack = world.hint(op.other).stack;
                let k = socks(ctx, &mut self.socks, mstack)?;
                let add = op.kind == OpKind::MemberAdd;
                if slot.kind == LinkKind::Lagg {
                    let mut rp = abi::LaggReqport {
                        ifname: name,
                        portname: member,
                        prio: 0,
                        flags: 0,
                        lacp: [0; 16],
                    };
                    let req = if add {
                        abi::SIOCSLAGGPORT
                    } else {
                        abi::SIOCSLAGGDELPORT
                    };
                    sys::ioctl(k.inet.as_raw_fd(), req, &mut rp)
                } else {
                    let mut br = abi::Ifbreq {
                        ifsname: member,
                        ifsflags: 0,
                        stpflags: 0,
                        path_cost: 0,
                        portno: 0,
                        priority: 0,
                        proto: 0,
                        role: 0,
                        state: 0,
                        addrcnt: 0,
                        addrmax: 0,
                        addrexceeded: 0,
                        pad: [0; 32],
                    };
                    let mut d = abi::Ifdrv {
                        name,
                        cmd: if add { abi::BRDGADD } else { abi::BRDGDEL },
                        len: std::mem::size_of::<abi::Ifbreq>() as u64,
                        data: &mut br as *mut _ as u64,
                    };
                    sys::ioctl(k.inet.as_raw_fd(), abi::SIOCSDRVSPEC, &mut d)
                }
            }
            OpKind::StackCreate => {
                let s = op.stack;
                {
                    let mut g = ctx.session.jids[s as usize]
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    if g.is_some() {
                        return Err(SKIP);
                    }
                    *g = Some(sys::jail_create(&jail_name(world, s), None)?);
                    world.stack_created(s);
                }
                // A link inside from the start, as jail(8)'s vnet.interface does.
                self.move_to(ctx, id, &name, hint.stack, s)
            }
            OpKind::StackRemove => {
                let s = op.stack;
                let r = {
                    let mut g = ctx.session.jids[s as usize]
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    let jid = g.take().ok_or(SKIP)?;
                    world.stack_removed(s);
                    if op.arg.is_multiple_of(2) {
                        sys::jail_remove(jid)
                    } else {
                        // The other way a VNET jail ends: no longer persistent,
                        // it dies when the last agent inside exits (every
                        // executor lets go of it at its next op).
                        sys::jail_unpersist(jid)
                    }
                };
                self.socks.forget(s);
                ctx.session.removals.fetch_add(1, Relaxed);
                r
            }
        }
    }
}

/// SIOCIFDESTROY by name, for undoing a create; a failure leaves nothing
/// more to do.
fn destroy_named(fd: RawFd, name: &[u8; 16]) {
    let mut r = Ifreq::new(name);
    let _ = sys::ioctl(fd, abi::SIOCIFDESTROY, &mut r);
}

fn send_udp4(fd: RawFd, ifindex: i32, payload: &[u8]) -> Sys<()> {
    // struct ip_mreqn: FreeBSD's IP_MULTICAST_IF accepts it to pick by index.
    let m = abi::IpMreqn {
        multiaddr: [0; 4],
        address: [0; 4],
        ifindex,
    };
    // SAFETY: m outlives the call.
    sys::check(unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            &m as *const _ as *const _,
            std::mem::size_of::<abi::IpMreqn>() as libc::socklen_t,
        )
    })?;
    let mut dst = abi::SockaddrIn::new([224, 0, 0, 1]);
    dst.port = 9u16.to_be();
    crate::platform::unix::sendto(fd, payload, &dst)
}

fn send_udp6(fd: RawFd, ifindex: i32, payload: &[u8]) -> Sys<()> {
    let mut dst = abi::SockaddrIn6::new([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    dst.port = 9u16.to_be();
    dst.scope_id = ifindex as u32;
    crate::platform::unix::sendto(fd, payload, &dst)
}

impl Executor for FbsdExec {
    fn exec(&mut self, op: &Op) -> Outcome {
        let (ctx, st) = (&self.ctx, &mut self.st);
        st.ops = st.ops.wrapping_add(1);
        // One relaxed load per op: a stack-remove anywhere makes every
        // executor let go of that jail now, so the jail ends (and its links
        // come home) when the remover meant it to, not up to 64 ops later.
        let removals = ctx.session.removals.load(Relaxed);
        if removals != st.seen_removals || st.ops.is_multiple_of(SWEEP_EVERY) {
            st.seen_removals = removals;
            st.sweep(ctx);
        }
        let (out, relocate) =
            crate::platform::seam::settle(st.run(ctx, op), op, &[libc::ENXIO, libc::ENOENT]);
        if relocate {
            st.locate(ctx, op.link);
        }
        out
    }

    fn finish(&mut self) {
        let leave = self.ctx.world.layout.leave_tun_clones;
        for h in self.st.held.iter_mut().filter_map(Option::take) {
            h.release(leave);
        }
        self.st.socks.clear();
    }
}
