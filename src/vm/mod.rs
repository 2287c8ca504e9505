//! `ifstress vm run`: a fuzzing-manager loop around disposable guests. Each
//! guest boots, runs the suite with its journal on a second serial port, and
//! is watched from outside: a panic on the console, or a heartbeat that stops
//! moving (then an NMI makes the guest print its state and dump), ends it; the
//! crash is collected (FreeBSD: a second boot runs savecore and crashinfo),
//! and a fresh guest goes on until the duration is spent. One report covers
//! every guest, crashes deduplicated by signature.

pub mod ab;
pub mod accel;
pub mod bhyve;
mod console;
pub mod freebsd_guest;
mod guest_module;
mod host;
pub mod hypervisor;
mod image_kind;
pub mod initramfs;
pub mod kernel;
pub mod machine;
mod nmdm;
pub mod qemu;
pub mod spent;

use crate::check::Finding;
use crate::report::Report;
use anyhow::{Context, bail};
use console::{Console, Phase, Port};
use machine::{Boot, GuestSpec, Hypervisor, HypervisorConfig};

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

pub use crate::model::GuestOs;

#[derive(Debug, Clone)]
pub struct VmConfig {
    pub guest: GuestOs,
    pub image: PathBuf,
    pub suite: String,
    pub duration: Duration,
    pub cpus: u32,
    pub mem_mib: u32,
    /// Which hypervisor, and its settings.
    pub hv: HypervisorConfig,
    pub out: PathBuf,
    /// The ifstress binary for the guest (default: this one, for Linux guests).
    pub binary: Option<PathBuf>,
    pub busybox: Option<PathBuf>,
    /// The guest kernel's /lib/modules/<version> (Linux guests).
    pub modules: Option<PathBuf>,
    /// No heartbeat progress for this long while the suite runs: a hang.
    pub hang_timeout: Duration,
    pub boot_timeout: Duration,
    /// A guest that has printed nothing on its console after this long (or
    /// `boot_timeout`, if shorter) failed to boot: whatever the
    /// accelerator, a vCPU that runs the guest prints within seconds.
    pub console_timeout: Duration,
    /// The run's seed; guest i runs `model::derive_seed(seed, i)`.
    pub seed: Option<u64>,
    /// The first guest runs exactly this seed (`repro` replaying the guest
    /// that hit); the others derive theirs from `seed` as usual.
    pub replay_seed: Option<u64>,
    /// What of a spent guest stays on disk.
    pub keep: spent::Keep,
    /// Test hook for the first guest only: `panic:S` or `hang:S`.
    pub inject: Option<String>,
    /// Kernel modules loaded before the suite starts, with their parameters
    /// (Linux: insmod NAME=VALUE; FreeBSD: kenv NAME=VALUE, then kldload).
    pub kmods: Vec<GuestModule>,
    /// Guests booted side by side.
    pub parallel: usize,
    /// Stop after this many guests (a trial is one guest).
    pub max_guests: Option<usize>,
    /// Run this shell script in the guest instead of ifstress (the
    /// shell-loop baselines of `bench --seeded`); Linux guests only.
    pub script: Option<PathBuf>,
    /// Host programs the script needs (copied with their libraries).
    pub tools: Vec<PathBuf>,
}

pub use crate::report::guests::{GuestSummary, VmSummary};

/// `--console-timeout`'s default: a Linux guest under TCG prints within a
/// second or two and FreeBSD's loader within seconds; a minute is slack for
/// a loaded host, not a boot.
pub const CONSOLE_TIMEOUT: Duration = Duration::from_secs(60);
pub use guest_module::GuestModule;
pub(crate) use host::{check_regular, which};

/// What ended a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Finished,
    Panic,
    Hang,
    BootFailure,
    /// A panic before the suite started: the kernel cannot run the suite,
    /// the guest is no trial, and it counts toward the boot-failure stop.
    BootPanic,
    Lost,
    ModuleFailed,
}

impl End {
    fn as_str(self) -> &'static str {
        match self {
            End::Finished => "finished",
            End::Panic => "panic",
            End::Hang => "hang",
            End::BootFailure => "boot-failure",
            End::BootPanic => "boot-panic",
            End::Lost => "lost",
            End::ModuleFailed => "module-failed",
        }
    }
}

/// New lines of a file another process appends to.
struct Tail {
    path: PathBuf,
    pos: u64,
    partial: String,
}

impl Tail {
    fn new(path: PathBuf) -> Tail {
        Tail {
            path,
            pos: 0,
            partial: String::new(),
        }
    }

    fn lines(&mut self, mut f: impl FnMut(&str)) {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return;
        };
        if file.seek(SeekFrom::Start(self.pos)).is_err() {
            return;
        }
        let mut buf = Vec::new();
        if let Ok(n) = file.read_to_end(&mut buf) {
            self.pos += n as u64;
        }
        self.partial.push_str(&String::from_utf8_lossy(&buf));
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            f(&line);
        }
    }

    /// What is left without a newline (a guest that died mid-line).
    fn rest(&mut self, mut f: impl FnMut(&str)) {
        if !self.partial.is_empty() {
            let l = std::mem::take(&mut self.partial);
            f(&l);
        }
    }
}

struct GuestResult {
    end: End,
    seconds: f64,
    suite_seconds: Option<f64>,
    module_state: Vec<String>,
    module_error: Option<String>,
    ops: u64,
    findings: Vec<Finding>,
    report: Option<Report>,
    /// Ended as a boot failure with an empty console.
    silent: bool,
    /// What the guest's ifstress said of its kernel's version.
    kernel_version: Option<i64>,
    last_ops: std::collections::BTreeMap<String, Vec<String>>,
    /// What the journal port last said the suite had done, per op kind.
    port_counts: std::collections::BTreeMap<String, crate::report::guests::OpCount>,
}

struct Runner<'a> {
    cfg: &'a VmConfig,
    hv: Box<dyn Hypervisor>,
    stop: &'a AtomicBool,
}

impl Runner<'_> {
    /// A guest with its console and journal port in `dir`, their names
    /// starting with `prefix` (the collection boot has its own), named on
    /// the host uniquely (`machine::guest_name`).
    fn spec(&self, index: usize, dir: &Path, prefix: &str, boot: Boot) -> GuestSpec {
        GuestSpec {
            name: machine::guest_name(&format!(
                "-g{index}{}",
                if prefix.is_empty() { "" } else { "k" }
            )),
            cpus: self.cfg.cpus,
            mem_mib: self.cfg.mem_mib,
            console: dir.join(format!("{prefix}console.log")),
            port: dir.join(format!("{prefix}journal.log")),
            dir: dir.to_path_buf(),
            prefix: prefix.into(),
            boot,
            start_timeout: self.cfg.boot_timeout,
        }
    }

    /// Boot one guest and watch it to its end.
    fn guest(&self, index: usize, dir: &Path, boot: Boot) -> anyhow::Result<GuestResult> {
        let m = self.spec(index, dir, "", boot);
        let mut child = self.hv.start(&m)?;
        let t0 = Instant::now();
        let mut con = Console::default();
        con.scanner.source(&format!("guest-{index}/console.log"));
        let mut port = Port::default();
        let mut tc = Tail::new(m.console.clone());
        let mut tp = Tail::new(m.port.clone());
        let mut progress = (0u64, Instant::now());
        let mut running_at: Option<Instant> = None;
        let mut fatal_at: Option<Instant> = None;
        let mut nmi_at: Option<(Instant, usize)> = None;
        let mut end = None;
        let mut exited = false;
        let silent_after = self.cfg.console_timeout.min(self.cfg.boot_timeout);
        let mut silent = false;
        loop {
            std::thread::sleep(Duration::from_millis(100));
            tc.lines(|l| con.feed(l));
            tp.lines(|l| port.feed(l));
            if !exited && child.exited()? {
                exited = true;
                tc.lines(|l| con.feed(l));
                tc.rest(|l| con.feed(l));
                tp.lines(|l| port.feed(l));
            }
            if port.ops != progress.0 || con.phase() != Phase::Running {
                progress = (port.ops, Instant::now());
            }
            if con.phase() != Phase::Booting {
                running_at.get_or_insert_with(Instant::now);
            }
            if let Some((at, _)) = nmi_at {
                // The guest prints its state and dumps; give it time.
                if exited || at.elapsed() > Duration::from_secs(120) {
                    end = Some(End::Hang);
                }
            } else if con.scanner.fatal() {
                // Wait for the backtrace and the dump to finish: the guest
                // reboots (QEMU exits) or goes quiet.
                let at = *fatal_at.get_or_insert_with(Instant::now);
                if exited || at.elapsed() > Duration::from_secs(90) {
                    end = Some(if running_at.is_some_and(|r| r <= at) {
                        End::Panic
                    } else {
                        End::BootPanic
                    });
                }
            } else if con.phase() == Phase::ModuleFailed {
                end = Some(End::ModuleFailed);
            } else if let Phase::Finished(_) = con.phase() {
                // Let it power off, then make sure.
                let waited = Instant::now();
                while !exited && waited.elapsed() < Duration::from_secs(30) {
                    exited = child.exited()?;
                    std::thread::sleep(Duration::from_millis(100));
                }
                end = Some(End::Finished);
            } else if exited {
                end = Some(if con.phase() == Phase::Booting {
                    End::BootFailure
                } else {
                    End::Lost
                });
            } else if con.phase() == Phase::Booting && tc.pos == 0 && t0.elapsed() > silent_after {
                silent = true;
                end = Some(End::BootFailure);
            } else if con.phase() == Phase::Booting && t0.elapsed() > self.cfg.boot_timeout {
                end = Some(End::BootFailure);
            } else if con.phase() == Phase::Running
                && !port.ended
                && progress.1.elapsed() > self.cfg.hang_timeout
            {
                eprintln!(
                    "ifstress vm: guest {index}: no progress for {} s: injecting an NMI",
                    self.cfg.hang_timeout.as_secs()
                );
                match child.nmi() {
                    Ok(_) => nmi_at = Some((Instant::now(), con.scanned)),
                    Err(e) => {
                        eprintln!("ifstress vm: guest {index}: NMI: {e:#}");
                        end = Some(End::Hang);
                    }
                }
            } else if self.stop.load(Relaxed) {
                end = Some(End::Lost);
            }
            if let Some(e) = end {
                if !exited {
                    child.stop();
                    tc.lines(|l| con.feed(l));
                    tc.rest(|l| con.feed(l));
                }
                tp.lines(|l| port.feed(l));
                // A crashed guest's time to hit ends where the crash began,
                // not after the dump.
                let until = fatal_at
                    .or(nmi_at.map(|n| n.0))
                    .unwrap_or_else(Instant::now);
                let suite_seconds = running_at
                    .filter(|_| !matches!(e, End::ModuleFailed | End::BootPanic))
                    .map(|r| until.saturating_duration_since(r).as_secs_f64());
                let silent = silent.then_some(silent_after);
                let mut g = self.result(e, t0, con, port, nmi_at.map(|n| n.1), silent);
                g.suite_seconds = suite_seconds;
                return Ok(g);
            }
        }
    }

    fn result(
        &self,
        end: End,
        t0: Instant,
        con: Console,
        port: Port,
        nmi_line: Option<usize>,
        silent: Option<Duration>,
    ) -> GuestResult {
        let report: Option<Report> = con.report().and_then(|t| serde_json::from_str(t).ok());
        let tail = con.tail_text(60);
        let module_state = con.module_state.clone();
        let module_error = con.module_error.clone();
        let mut findings = con.scanner.into_findings();
        match end {
            End::Hang => {
                // What the guest printed after the NMI is the hang's evidence,
                // not a panic of its own.
                let (after, before): (Vec<Finding>, Vec<Finding>) = findings
                    .into_iter()
                    .partition(|f| nmi_line.is_some() && is_after(f, nmi_line.unwrap_or(0)));
                findings = before;
                let mut h = Finding::new(
                    "hang",
                    format!(
                        "guest made no progress for {} s",
                        self.cfg.hang_timeout.as_secs()
                    ),
                    format!(
                        "ops stopped at {}; console after the NMI:\n{}",
                        port.ops,
                        after
                            .iter()
                            .map(|f| f.excerpt.as_str())
                            .collect::<Vec<_>>()
                            .join("\n")
                    ),
                );
                if let Some(f) = after.first() {
                    h.frames = f.frames.clone();
                    h.guilty_frame = f.guilty_frame.clone();
                }
                if after.is_empty() {
                    h.excerpt.push_str(&tail);
                }
                findings.push(h);
            }
            End::BootFailure => findings.push(match silent {
                Some(after) => Finding::new(
                    "boot-failure",
                    format!(
                        "guest printed nothing on its console in {} s ({})",
                        after.as_secs(),
                        self.hv.label()
                    ),
                    "the console is empty: no guest code ran that reached the serial port",
                ),
                None => Finding::new("boot-failure", "guest did not start the suite", tail),
            }),
            End::Lost => {
                if !self.stop.load(Relaxed) {
                    findings.push(Finding::new(
                        "lost",
                        "guest ended without a report or a panic",
                        tail,
                    ))
                }
            }
            End::Panic | End::BootPanic | End::Finished | End::ModuleFailed => {}
        }
        if let Some(r) = &report {
            for f in &r.findings {
                if !findings.iter().any(|x| x.signature == f.signature) {
                    findings.push(f.clone());
                }
            }
        }
        GuestResult {
            end,
            seconds: t0.elapsed().as_secs_f64(),
            suite_seconds: None,
            module_state,
            module_error,
            ops: report.as_ref().map_or(port.ops, |r| r.total_ops),
            findings,
            report,
            silent: silent.is_some(),
            kernel_version: port.kernel_version,
            last_ops: port.last_ops(),
            port_counts: port.op_counts,
        }
    }
}

/// `first_seen` is "guest-N/console.log:LINE", LINE counting the lines the
/// scanner was fed (`Console::scanned`).
fn is_after(f: &Finding, line: usize) -> bool {
    f.first_seen
        .rsplit(':')
        .next()
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|n| n > line)
}

/// The ifstress arguments a guest runs with.
fn guest_args(suite: &str) -> Vec<String> {
    vec![
        "--suite".into(),
        suite.into(),
        "--quiet".into(),
        "--on-hang".into(),
        "panic".into(),
        "--dying-grace".into(),
        "10s".into(),
    ]
}

/// Where a suite given as a file travels in each kind of guest.
const LINUX_SUITE: &str = "/etc/ifstress-suite.toml";
const FREEBSD_SUITE: &str = "/ifstress/suite.toml";
const LINUX_SCRIPT: &str = "/etc/ifstress-script.sh";

/// What every guest of a run shares: how it boots, and what was learned.
struct Shared {
    next: std::sync::atomic::AtomicUsize,
    acc: std::sync::Mutex<Acc>,
    /// A module failed to load: every further guest would fail the same way.
    abort: AtomicBool,
    known: Vec<crate::check::known::Issue>,
}

#[derive(Default)]
struct Acc {
    all: Vec<Finding>,
    guests: Vec<GuestSummary>,
    last_ops: std::collections::BTreeMap<String, Vec<String>>,
    ops: std::collections::BTreeMap<String, crate::stats::OpSummary>,
    notes: Vec<String>,
    /// The guests' runs' own failures (their reports' `errors`).
    errors: Vec<String>,
    /// Why the run stopped before its time: its guests could not boot.
    stopped: Option<String>,
    vmcores: spent::VmcoreBook,
}

/// How guests boot: prepared once per run.
struct Prepared {
    seed0: u64,
    binary: PathBuf,
    initrd: PathBuf,
    /// The suite as the guest names it: a shipped name or the shipped file.
    guest_suite: String,
    suite_file: Option<Vec<u8>>,
}

impl VmConfig {
    /// The files a run needs, checked before anything is created or booted:
    /// a missing one is bad input (exit 2), not a guest that fails.
    pub fn check_inputs(&self) -> anyhow::Result<()> {
        host::check_regular("--image", &self.image)?;
        for m in &self.kmods {
            host::check_regular("--module", &m.file)?;
        }
        if self.script.is_some() && self.guest != GuestOs::Linux {
            bail!(crate::error::UsageError(
                "a guest script runs in Linux guests only".into()
            ));
        }
        Ok(())
    }
}

/// Run guests until the duration is spent; one report over all of them.
pub fn run(cfg: &VmConfig, stop: &Arc<AtomicBool>) -> anyhow::Result<Report> {
    let suite = crate::suite::load(&cfg.suite)?;
    cfg.check_inputs()?;
    // A hypervisor that cannot run this guest is bad input: say so before
    // anything is created.
    let (hv, hv_note) = hypervisor::select(&cfg.hv, cfg.guest, &cfg.image)?;
    if let Some(why) = image_kind::problem(cfg.guest, &cfg.image) {
        bail!(crate::error::UsageError(format!(
            "--image {}: {why}",
            cfg.image.display()
        )));
    }
    // QEMU makes a FreeBSD guest's disk as a qcow2 overlay.
    if cfg.guest == GuestOs::Freebsd
        && hv.kind() == machine::HypervisorKind::Qemu
        && host::which("qemu-img").is_none()
    {
        bail!(crate::error::UsageError(
            "qemu-img is not in PATH: FreeBSD guests under QEMU need it (Debian: qemu-utils; FreeBSD: qemu-tools)".into()
        ));
    }
    std::fs::create_dir_all(&cfg.out).with_context(|| format!("creating {}", cfg.out.display()))?;
    // Once per process: `bench --seeded`, `vm ab` and `repro` run many.
    static SAID: AtomicBool = AtomicBool::new(false);
    if let Some(n) = &hv_note
        && !SAID.swap(true, Relaxed)
    {
        eprintln!("ifstress vm: {n}");
    }
    let mut notes: Vec<String> = hv_note.into_iter().collect();
    let runner = Runner { cfg, hv, stop };
    let started = std::time::SystemTime::now();
    let t0 = Instant::now();
    let prep = prepare(cfg, &mut notes)?;
    let shared = Shared {
        next: std::sync::atomic::AtomicUsize::new(0),
        acc: std::sync::Mutex::new(Acc {
            notes,
            ..Acc::default()
        }),
        abort: AtomicBool::new(false),
        known: crate::check::known::load(),
    };
    let lanes = cfg.parallel.max(1);
    std::thread::scope(|sc| {
        let handles: Vec<_> = (0..lanes)
            .map(|_| sc.spawn(|| lane(&runner, &prep, &shared, t0)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a guest lane panicked")))
            })
            .collect::<anyhow::Result<Vec<()>>>()
    })?;
    let mut acc = shared.acc.into_inner().unwrap_or_else(|p| p.into_inner());
    acc.guests.sort_by_key(|g| g.index);
    let mut r = Report::new(
        &suite,
        (
            VmPlatform(cfg.guest).label(),
            "guest kernels: see each guest's console".into(),
        ),
        prep.seed0,
        &crate::model::Tag::new(0),
        started,
        t0.elapsed(),
        cfg.duration,
    );
    r.tag = String::new();
    r.interrupted = stop.load(Relaxed);
    r.findings = crate::check::triage::dedup(acc.all);
    // Each guest's findings were keyed by its own kernel's version (its
    // journal port); what none marked, rules for any kernel may.
    crate::check::known::annotate(
        &mut r.findings,
        &shared.known,
        crate::check::known::Kernel {
            os: Some(cfg.guest.name()),
            osreldate: None,
        },
    );
    r.total_ops = acc.guests.iter().map(|g| g.ops).sum();
    r.ops = acc.ops;
    r.last_ops = acc.last_ops;
    if let Some(e) = acc.guests.iter().find_map(|g| g.module_error.as_deref()) {
        acc.notes
            .push(format!("a --module did not load, no further guests: {e}"));
    }
    let held = format!(
        "{} holds {:.1} MiB",
        cfg.out.display(),
        spent::usage(&cfg.out) as f64 / (1 << 20) as f64
    );
    eprintln!("ifstress vm: {held}");
    acc.notes.push(format!(
        "{held} after the run (disks {}, vmcores kept for the first {} crash(es) per signature)",
        if cfg.keep.disks { "kept" } else { "removed" },
        cfg.keep.vmcores
    ));
    r.notes = acc.notes;
    r.errors = acc.errors;
    r.vm = Some(VmSummary {
        guest_os: cfg.guest,
        image: cfg.image.display().to_string(),
        accel: runner.hv.accel(),
        accel_why: runner.hv.accel_why(),
        hypervisor: runner.hv.label(),
        guest_hours: (acc.guests.iter().map(|g| g.seconds).sum::<f64>() / 3600.0 * 1000.0).round()
            / 1000.0,
        guests: acc.guests,
        stopped: acc.stopped,
        modules: cfg
            .kmods
            .iter()
            .map(|m| {
                let mut s = m.file.display().to_string();
                for p in &m.params {
                    s.push(' ');
                    s.push_str(p);
                }
                s
            })
            .collect(),
    });
    r.finish();
    Ok(r)
}

/// The guest payload: the initramfs (Linux), seeds, the suite's file.
fn prepare(cfg: &VmConfig, notes: &mut Vec<String>) -> anyhow::Result<Prepared> {
    let seed0 = cfg.seed.unwrap_or_else(|| fastrand::u64(..) >> 1);
    let binary = match &cfg.binary {
        Some(b) => b.clone(),
        None if cfg.guest == GuestOs::Linux => std::env::current_exe()?,
        None => bail!(crate::error::UsageError(
            "--binary is required for FreeBSD guests (build one with cargo-zigbuild, see the README)".into()
        )),
    };
    // A suite file (not a shipped name) travels into the guest.
    let shipped = crate::suite::EMBEDDED.iter().any(|(n, _)| *n == cfg.suite);
    let suite_file = if shipped {
        None
    } else {
        Some(std::fs::read(&cfg.suite).with_context(|| format!("reading {}", cfg.suite))?)
    };
    let guest_suite = match (&suite_file, cfg.guest) {
        (None, _) => cfg.suite.clone(),
        (Some(_), GuestOs::Linux) => LINUX_SUITE.into(),
        (Some(_), GuestOs::Freebsd) => FREEBSD_SUITE.into(),
    };
    // Linux guests: one initramfs for all; the duration and the test hook
    // travel on each guest's kernel command line.
    let initrd = cfg.out.join("initramfs.cpio");
    if cfg.guest == GuestOs::Linux {
        let busybox = cfg
            .busybox
            .clone()
            .or_else(|| which("busybox"))
            .ok_or_else(|| {
                crate::error::UsageError(
                    "busybox not found: install busybox-static or give --busybox".into(),
                )
            })?;
        let modules = cfg.modules.clone().or_else(|| {
            let name = cfg.image.file_name()?.to_string_lossy().to_string();
            let ver = name.strip_prefix("vmlinuz-")?;
            Some(PathBuf::from("/lib/modules").join(ver)).filter(|p| p.is_dir())
        });
        if modules.is_none() {
            notes.push(
                "no kernel modules directory for the guest kernel: only built-in link kinds".into(),
            );
        }
        let mut files = Vec::new();
        if let Some(t) = &suite_file {
            files.push((LINUX_SUITE.to_string(), t.clone()));
        }
        if let Some(s) = &cfg.script {
            let text = std::fs::read(s).with_context(|| format!("reading {}", s.display()))?;
            files.push((LINUX_SCRIPT.to_string(), text));
        }
        let init = initramfs::init_script(&initramfs::InitSpec {
            ifstress_args: &guest_args(&guest_suite),
            modules: &cfg.kmods,
            script: cfg.script.as_ref().map(|_| LINUX_SCRIPT),
            tools: &cfg.tools,
        });
        let extra: Vec<PathBuf> = cfg.kmods.iter().map(|m| m.file.clone()).collect();
        let (cpio, loaded) = initramfs::build(&initramfs::Contents {
            ifstress: &binary,
            busybox: &busybox,
            modules: modules.as_deref(),
            init: &init,
            extra_modules: &extra,
            files: &files,
            tools: &cfg.tools,
        })?;
        std::fs::write(&initrd, cpio)?;
        notes.push(format!("guest modules: {}", loaded.len()));
    }
    Ok(Prepared {
        seed0,
        binary,
        initrd,
        guest_suite,
        suite_file,
    })
}

/// One lane: guests one after another until the time is spent, the guest
/// budget is used, or a module failed to load.
fn lane(runner: &Runner, prep: &Prepared, shared: &Shared, t0: Instant) -> anyhow::Result<()> {
    let cfg = runner.cfg;
    // The lane's consecutive guests that did not start the suite.
    let mut boot_failures: Vec<&'static str> = Vec::new();
    loop {
        let left = cfg.duration.saturating_sub(t0.elapsed());
        if left < Duration::from_secs(5) || runner.stop.load(Relaxed) || shared.abort.load(Relaxed)
        {
            return Ok(());
        }
        let index = shared.next.fetch_add(1, Relaxed) + 1;
        if cfg.max_guests.is_some_and(|m| index > m) {
            return Ok(());
        }
        let dir = cfg.out.join(format!("guest-{index}"));
        std::fs::create_dir_all(&dir)?;
        let seed = match cfg.replay_seed {
            Some(s) if index == 1 => s,
            _ => crate::model::derive_seed(prep.seed0, index as u64),
        };
        let secs = left.as_secs();
        // A boot panic is every guest's (a kernel that cannot boot); the
        // others are the first guest's only.
        let inject = cfg
            .inject
            .clone()
            .filter(|i| index == 1 || i.starts_with("boot-panic:") || i.starts_with("silent:"));
        eprintln!(
            "ifstress vm: guest {index}: booting for {secs} s of {}",
            cfg.suite
        );
        let boot = match cfg.guest {
            GuestOs::Linux => {
                // `silent:0`: the kernel's console on a port nobody reads
                // (ttyS3 exists but is not wired), as a wrong console= does.
                let silent = inject.as_deref().is_some_and(|i| i.starts_with("silent:"));
                let mut append = format!(
                    "console={} loglevel=5 panic=-1 unknown_nmi_panic=1 ifstress.duration={secs}s ifstress.seed={seed}",
                    if silent { "ttyS3" } else { "ttyS0" }
                );
                if let Some(i) = inject.as_ref().filter(|_| !silent) {
                    append.push_str(&format!(" ifstress.inject={i}"));
                }
                Boot::Kernel {
                    kernel: cfg.image.clone(),
                    initrd: prep.initrd.clone(),
                    append,
                }
            }
            GuestOs::Freebsd => {
                let mut args = guest_args(&prep.guest_suite);
                args.extend([
                    "--seed".into(),
                    seed.to_string(),
                    "--duration".into(),
                    format!("{secs}s"),
                ]);
                freebsd_boot(
                    runner.hv.as_ref(),
                    &dir,
                    &cfg.image,
                    &FreebsdPayload {
                        binary: &prep.binary,
                        suite: prep.suite_file.as_deref(),
                        kmods: &cfg.kmods,
                    },
                    &args,
                    index,
                )?
            }
        };
        let (root, disks) = match &boot {
            Boot::Disk { disks, .. } => (
                disks.first().cloned(),
                disks.iter().map(|d| d.0.clone()).collect(),
            ),
            Boot::Kernel { .. } => (None, Vec::new()),
        };
        let mut g = runner.guest(index, &dir, boot)?;
        let mut collected = Vec::new();
        let mut notes = Vec::new();
        if cfg.guest == GuestOs::Freebsd && matches!(g.end, End::Panic | End::BootPanic | End::Hang)
        {
            match collect_freebsd(runner, index, &dir, root.clone().context("no root disk")?) {
                Ok(files) => {
                    for f in &files {
                        let is_core = f
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("core.txt"));
                        if is_core && let Ok(t) = std::fs::read_to_string(f) {
                            for x in crate::check::triage::scan(&t) {
                                if !g.findings.iter().any(|y| y.signature == x.signature) {
                                    g.findings.push(x);
                                }
                            }
                        }
                        collected.push(f.display().to_string());
                    }
                }
                Err(e) => notes.push(format!("guest {index}: crash collection: {e:#}")),
            }
        }
        // The crash is unpacked (or there was none): the disks are spent.
        if !cfg.keep.disks {
            spent::drop_disks(&disks);
        }
        match &g.module_error {
            Some(e) => eprintln!("ifstress vm: guest {index}: a --module did not load: {e}"),
            None => eprintln!(
                "ifstress vm: guest {index}: {} after {:.0} s, {} ops, {} finding(s)",
                g.end.as_str(),
                g.seconds,
                g.ops,
                g.findings.len()
            ),
        }
        // `auto`'s KVM that runs no guest: TCG from now on, and the guests
        // that failed on KVM do not count toward stopping the run.
        let fell_back = if g.silent {
            runner
                .hv
                .fall_back(&format!("guest {index} printed nothing on its console"))
        } else {
            None
        };
        if let Some(why) = &fell_back {
            eprintln!("ifstress vm: {why}");
            notes.push(why.clone());
            boot_failures.clear();
        } else if matches!(g.end, End::BootFailure | End::BootPanic) {
            boot_failures.push(g.end.as_str());
        } else {
            boot_failures.clear();
        }
        let mut acc = shared.acc.lock().unwrap_or_else(|p| p.into_inner());
        acc.notes.extend(notes);
        if let Some(f) = g
            .findings
            .iter()
            .find(|f| crate::verdict::crash_like(&f.kind))
        {
            let paths: Vec<PathBuf> = collected.iter().map(PathBuf::from).collect();
            let removed = acc.vmcores.settle(&f.signature, &paths, cfg.keep.vmcores);
            collected.retain(|c| !removed.iter().any(|r| Path::new(c) == r));
        }
        if matches!(g.end, End::Panic | End::BootPanic | End::Hang | End::Lost) {
            for (w, l) in &g.last_ops {
                acc.last_ops.insert(format!("guest-{index} {w}"), l.clone());
            }
        }
        let mut signatures: Vec<String> = Vec::new();
        for f in &g.findings {
            if !signatures.contains(&f.signature) {
                signatures.push(f.signature.clone());
            }
        }
        for f in &mut g.findings {
            f.first_seen = format!("guest {index}: {}", f.first_seen);
        }
        // Known issues keyed by this guest's kernel: only the guest knows
        // its version (its journal port's first line). The run's own
        // annotation afterwards adds only rules for any kernel.
        crate::check::known::annotate(
            &mut g.findings,
            &shared.known,
            crate::check::known::Kernel {
                os: Some(cfg.guest.name()),
                osreldate: g.kernel_version,
            },
        );
        acc.all.extend(g.findings);
        // A crashed guest sends no report: its journal port's last totals.
        let mut op_counts = std::mem::take(&mut g.port_counts);
        let mut error = None;
        if let Some(r) = &g.report {
            merge_ops(&mut acc.ops, &r.ops);
            acc.errors
                .extend(r.errors.iter().map(|e| format!("guest {index}: {e}")));
            op_counts = r.ops.iter().map(|(k, o)| (k.clone(), o.into())).collect();
            if r.failed() {
                error = Some(r.errors.first().cloned().unwrap_or_default());
            }
        }
        if g.module_error.is_some() {
            shared.abort.store(true, Relaxed);
        }
        acc.guests.push(GuestSummary {
            index,
            outcome: g.end.as_str().into(),
            seconds: (g.seconds * 10.0).round() / 10.0,
            ops: g.ops,
            console: dir.join("console.log").display().to_string(),
            collected,
            suite_seconds: g.suite_seconds.map(|s| (s * 10.0).round() / 10.0),
            seed: Some(seed),
            signatures,
            module_state: g.module_state,
            module_error: g.module_error,
            op_counts,
            error,
            kernel_version: g.kernel_version,
        });
        if boot_failures.len() >= 3 {
            let why = format!(
                "three guests in a row did not start the suite ({}): the kernel cannot run it; stopped",
                boot_failures.join(", ")
            );
            acc.notes.push(why.clone());
            acc.stopped.get_or_insert(why);
            shared.abort.store(true, Relaxed);
            return Ok(());
        }
    }
}

fn merge_ops(
    into: &mut std::collections::BTreeMap<String, crate::stats::OpSummary>,
    from: &std::collections::BTreeMap<String, crate::stats::OpSummary>,
) {
    for (k, v) in from {
        let e = into
            .entry(k.clone())
            .or_insert_with(|| crate::stats::OpSummary {
                count: 0,
                ok: 0,
                skipped: 0,
                errors: Default::default(),
                p50_us: 0,
                p99_us: 0,
                max_us: 0,
            });
        e.count += v.count;
        e.ok += v.ok;
        e.skipped += v.skipped;
        for (n, c) in &v.errors {
            *e.errors.entry(n.clone()).or_default() += c;
        }
        // Percentiles do not add up; the worst guest's stand for all.
        e.p50_us = e.p50_us.max(v.p50_us);
        e.p99_us = e.p99_us.max(v.p99_us);
        e.max_us = e.max_us.max(v.max_us);
    }
}

/// What a FreeBSD guest's payload disk carries.
struct FreebsdPayload<'a> {
    binary: &'a Path,
    suite: Option<&'a [u8]>,
    kmods: &'a [GuestModule],
}

fn freebsd_boot(
    hv: &dyn Hypervisor,
    dir: &Path,
    image: &Path,
    payload: &FreebsdPayload,
    args: &[String],
    index: usize,
) -> anyhow::Result<Boot> {
    let root = hv.root_disk(image, dir)?;
    let disks = freebsd_disks(dir, root);
    freebsd_guest::payload(
        &freebsd_guest::Payload {
            binary: payload.binary,
            suite: payload.suite,
            kmods: payload.kmods,
        },
        &disks[1].0,
    )?;
    freebsd_guest::collect_disk(&disks[2].0, 2048)?;
    let iso = freebsd_guest::config_drive(
        dir,
        &freebsd_guest::user_data(args, payload.kmods),
        &format!("ifstress-guest-{index}"),
    )?;
    Ok(Boot::Disk {
        disks,
        cdrom: Some(iso),
    })
}

/// vtbd0 the guest's root disk, vtbd1 the payload, vtbd2 the collect
/// disk: the order the first-boot script and rc.local rely on.
fn freebsd_disks(dir: &Path, root: (PathBuf, &'static str)) -> Vec<(PathBuf, &'static str)> {
    vec![
        root,
        (dir.join("payload.img"), "raw"),
        (dir.join("collect.img"), "raw"),
    ]
}

/// Boot the crashed guest's disk again: savecore and crashinfo run from rc,
/// then rc.local writes /var/crash to the collect disk and powers off.
fn collect_freebsd(
    runner: &Runner,
    index: usize,
    dir: &Path,
    root: (PathBuf, &'static str),
) -> anyhow::Result<Vec<PathBuf>> {
    let spec = runner.spec(
        index,
        dir,
        "collect-",
        Boot::Disk {
            disks: freebsd_disks(dir, root),
            cdrom: None,
        },
    );
    let mut child = runner.hv.start(&spec)?;
    // crashinfo on a large dump takes minutes.
    let limit = runner.cfg.boot_timeout + Duration::from_secs(900);
    let t0 = Instant::now();
    while !child.exited()? {
        if t0.elapsed() > limit || runner.stop.load(Relaxed) {
            child.stop();
            bail!(
                "the collection boot did not power off within {} s",
                limit.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    freebsd_guest::unpack_collect(&dir.join("collect.img"), &dir.join("crash"))
}

/// The report's platform fields for a VM run.
struct VmPlatform(GuestOs);

impl VmPlatform {
    fn label(&self) -> &'static str {
        match self.0 {
            GuestOs::Freebsd => "vm:freebsd",
            GuestOs::Linux => "vm:linux",
        }
    }
}
