//! Command line: `ifstress --suite S --duration D` runs a suite (the same as
//! `ifstress run ...`); `list`, `show` and `cleanup` do what they say.

use crate::engine::{OnHang, Run, RunConfig};
use crate::model::Scope;
use crate::platform::{self, EnvError};
use crate::suite::{self, SuiteError};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// Exit statuses, part of the interface (CI scripts branch on them).
pub mod exit {
    pub const CLEAN: i32 = 0;
    pub const FINDINGS: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const INTERNAL: i32 = 3;
}

pub use crate::error::UsageError;

/// Write to stdout, ignoring a closed pipe (`ifstress ... | head`): what the
/// run found, its report files and its exit status matter more than its table.
pub fn say(text: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes()).and_then(|()| o.flush());
}

macro_rules! out {
    ($($t:tt)*) => { say(&format!($($t)*)) };
}
macro_rules! outln {
    () => { say("\n") };
    ($($t:tt)*) => { say(&format!("{}\n", format_args!($($t)*))) };
}

#[derive(Parser, Debug)]
#[command(
    name = "ifstress",
    version,
    about = "Race the kernel's network-interface lifecycle from userspace",
    long_about = "Race the kernel's network-interface lifecycle from userspace: create stacks \
(VNET jails, network namespaces) and interfaces, run many concurrent loops of clone, destroy, \
move, ioctl, send and capture ops against them, then check the kernel log, hangs and leftovers.\n\n\
Exit status: 0 clean, 1 kernel findings, 2 usage/input/environment error, 3 internal error.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a suite (the same as giving --suite without a subcommand).
    Run(RunArgs),
    /// List the shipped suites and the bugs they target.
    List,
    /// Print a suite, resolved, as TOML.
    Show {
        /// A shipped suite's name or a path to a .toml file.
        suite: String,
        /// Print it as shell loops for this OS instead (what `repro` writes
        /// as repro.sh), for machines without ifstress.
        #[arg(long, value_enum, value_name = "OS")]
        shell: Option<crate::vm::GuestOs>,
    },
    /// Remove what earlier runs left behind (by tag only). Runs still alive
    /// (holding their lock in /var/run/ifstress) are left alone.
    Cleanup {
        /// Remove live runs' objects too (their runs will then fail).
        #[arg(long)]
        force: bool,
    },
    /// Check this kernel: features, every link kind, and every op once on
    /// scratch stacks, with the syscall each uses.
    Doctor {
        /// Print JSON (for bug reports) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Read console captures, dmesg output, crashinfo core.txt files or
    /// kernel logs (`-` for stdin) and print the findings in them.
    Triage {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<String>,
        /// Print a JSON array of findings.
        #[arg(long)]
        json: bool,
        /// The kern.osreldate (__FreeBSD_version) of the kernel that wrote
        /// the files: known issues are marked only for kernels inside their
        /// version ranges (without it, only race classes are).
        #[arg(long, value_name = "N")]
        osreldate: Option<i64>,
    },
    /// After a crash and reboot: the crash (FreeBSD /var/crash, Linux
    /// pstore) and the last ops of every worker from the run's journal, as a
    /// report.
    Postmortem {
        /// The run's --journal directory.
        #[arg(long, value_name = "DIR")]
        journal: Option<PathBuf>,
        /// Where the crash is (default /var/crash on FreeBSD, /sys/fs/pstore on Linux).
        #[arg(long, value_name = "DIR")]
        crash: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
    /// Measure op throughput against a shell loop and a one-process stream
    /// (`ip -batch` on Linux) of the same ops, worker scaling, CPU split and RSS.
    Bench(BenchArgs),
    /// Run suites in disposable VMs: catch panics and hangs from outside,
    /// collect crashes, restart guests until the duration is spent.
    #[command(subcommand)]
    Vm(VmCmd),
    /// Is a race fixed? Compare reports of the unpatched kernel (before)
    /// with the patched one (after): hit rates with exact Poisson intervals,
    /// median time to hit, and a verdict with its p-value. Exit 0 fixed,
    /// 1 still-broken, 4 inconclusive or no-baseline.
    Verdict(VerdictArgs),
    /// From a crash to the smallest reproducer: confirm the report's crash
    /// in disposable guests, remove loops, ops, links, stacks and workers
    /// while it still recurs, then write repro.toml, repro.sh and
    /// repro.json. Exit 0 reproduced, 4 not reproduced within budget or
    /// interrupted.
    Repro(Box<ReproArgs>),
    /// Print a completion script for SHELL on stdout (install it where
    /// the shell looks, e.g. /usr/local/etc/bash_completion.d/ifstress).
    Completions {
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Internal: the agent process a FreeBSD run starts inside a jail.
    #[command(name = "__agent", hide = true)]
    Agent { jid: i32 },
}

#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// A shipped suite's name (see `ifstress list`) or a path to a .toml file.
    #[arg(long, value_name = "NAME|PATH")]
    suite: Option<String>,
    /// How long to stress, e.g. 30s, 90m, 24h (default: the suite's).
    #[arg(long, value_parser = parse_duration_arg)]
    duration: Option<Duration>,
    /// Seed of every worker's op sequence; the same seed replays the same ops.
    #[arg(long)]
    seed: Option<u64>,
    /// Multiply every loop's worker count by N.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    workers: u16,
    /// Write the JSON report here.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Keep a journal of the most recent ops of every worker in DIR.
    #[arg(long, value_name = "DIR")]
    journal: Option<PathBuf>,
    /// Also stream each worker's newest journal lines and a heartbeat to this
    /// file or serial port, twice a second (`ifstress vm` guests use their
    /// second serial port, so the last ops survive a panic).
    #[arg(long, value_name = "PATH", requires = "journal")]
    journal_port: Option<PathBuf>,
    /// Size bound of the journal directory, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=65536))]
    journal_max_mib: u64,
    /// No progress display; the final table and errors only.
    #[arg(long)]
    quiet: bool,
    /// Load the kernel modules of the suite's link kinds first (FreeBSD:
    /// kldload if_epair, if_tuntap, if_bridge, if_lagg, if_vlan, ng_eiface;
    /// Linux loads them on demand, so there it changes nothing).
    #[arg(long)]
    load_modules: bool,
    /// How long a stack the run removed may stay alive (a jail DYING, a
    /// namespace held) before it is a finding (default: the suite's, 30s).
    #[arg(long, value_name = "D", value_parser = parse_duration_arg)]
    dying_grace: Option<Duration>,
    /// What a hung op or a stalled run does: `report` it, or `panic` the
    /// kernel so the crash dump holds every thread (disposable VMs only).
    #[arg(long, value_enum, default_value_t = OnHang::Report)]
    on_hang: OnHang,
    /// Confirm --on-hang=panic outside `ifstress vm`.
    #[arg(long)]
    yes_really: bool,
}

#[derive(Subcommand, Debug)]
pub enum VmCmd {
    /// Boot guests one after another and run the suite in each.
    Run(Box<VmRunArgs>),
    /// A/B patch check: alternate guests of the unpatched and the patched
    /// kernel (or module) until `verdict` decides or the budget is spent.
    Ab(Box<VmAbArgs>),
    /// A FreeBSD image with a kernel built from a source tree (and
    /// patches) inside a guest of the image: the image `vm run --image`
    /// then boots for the patched side of an A/B.
    BuildKernel(Box<VmBuildKernelArgs>),
}

#[derive(Args, Debug, Clone)]
pub struct VmBuildKernelArgs {
    /// The FreeBSD VM image to start from (its compiler builds the kernel).
    #[arg(long, value_name = "FILE")]
    image: PathBuf,
    /// A freebsd-src checkout (vm/kernel-source.sh fetches the image's).
    #[arg(long, value_name = "DIR")]
    src: PathBuf,
    /// A patch applied with `patch -p1` before the build (a `git diff`).
    /// Repeatable, applied in order.
    #[arg(long, value_name = "FILE")]
    patch: Vec<PathBuf>,
    /// The kernel config in sys/amd64/conf.
    #[arg(long, value_name = "NAME", default_value = "GENERIC")]
    kernconf: String,
    /// Build it with INVARIANTS and WITNESS (and DIAGNOSTIC), as
    /// -CURRENT's GENERIC has them and releases do not.
    #[arg(long)]
    debug: bool,
    /// The image to write (.qcow2 or raw; never overwritten).
    #[arg(long, value_name = "FILE")]
    out_image: PathBuf,
    /// Where the build guest's disks and console go.
    #[arg(long, value_name = "DIR", default_value = "ifstress-kernel")]
    work: PathBuf,
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    cpus: u32,
    /// Guest memory, MiB.
    #[arg(long, value_name = "MIB", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1024..=1048576))]
    mem: u32,
    /// Size of the scratch disk the source and objects live on, GiB
    /// (sparse: it costs what is written).
    #[arg(long, value_name = "GIB", default_value_t = 32, value_parser = clap::value_parser!(u64).range(4..=4096))]
    scratch: u64,
    /// Give up after this long.
    #[arg(long, value_parser = parse_duration_arg, default_value = "4h")]
    timeout: Duration,
    #[command(flatten)]
    hv: HypervisorArgs,
}

#[derive(Args, Debug, Clone)]
pub struct VmRunArgs {
    #[command(flatten)]
    guest: GuestArgs,
    /// Total time to spend, across every guest.
    #[arg(long, value_parser = parse_duration_arg)]
    duration: Duration,
    #[command(flatten)]
    guest_modules: GuestModuleArgs,
    /// Stop after this many guests (a trial is one guest; default: as many
    /// as the duration allows).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    guests: Option<u32>,
    /// Testing the runner itself: make the first guest panic (`panic:SECS`)
    /// or wedge (`hang:SECS`), or every guest panic before its suite starts
    /// (`boot-panic:0`) or print nothing on its console (`silent:0`), on
    /// purpose.
    #[arg(long, hide = true, value_name = "WHAT:SECS")]
    inject: Option<String>,
    /// Linux guests: run this shell script (a `repro.sh`, a shell-loop
    /// baseline) with the duration in seconds as $1, instead of the suite.
    #[arg(long, value_name = "FILE.sh")]
    script: Option<PathBuf>,
    /// A host program the script runs (copied into the guest and named in
    /// the environment as its upper-cased name, e.g. IP=/usr/bin/ip).
    /// Repeatable.
    #[arg(long, value_name = "PROG", requires = "script")]
    tool: Vec<String>,
}

/// How guests boot and what they run: shared by `vm run` and `vm ab`.
#[derive(Args, Debug, Clone)]
pub struct GuestArgs {
    /// The guest: a FreeBSD VM image (qcow2 or raw), or for `--guest linux`
    /// a kernel (vmlinuz).
    #[arg(long, value_name = "FILE")]
    image: PathBuf,
    #[arg(long, value_enum, default_value_t = crate::vm::GuestOs::Freebsd)]
    guest: crate::vm::GuestOs,
    /// A shipped suite's name or a suite file (which travels into the guest).
    #[arg(long, value_name = "NAME|PATH")]
    suite: String,
    /// Where guests' consoles, journals, crashes and the reports go.
    #[arg(long, value_name = "DIR", default_value = "ifstress-vm")]
    out: PathBuf,
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    machine: MachineArgs,
}

/// The machine a guest gets: shared by `vm run`, `vm ab` and `repro`.
#[derive(Args, Debug, Clone)]
pub struct MachineArgs {
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=256))]
    cpus: u32,
    /// Guest memory, MiB.
    #[arg(long, value_name = "MIB", default_value_t = 2048, value_parser = clap::value_parser!(u32).range(256..=1048576))]
    mem: u32,
    #[command(flatten)]
    hv: HypervisorArgs,
    /// The ifstress binary to run in the guest (FreeBSD guests: required;
    /// Linux guests: this one by default).
    #[arg(long, value_name = "FILE")]
    binary: Option<PathBuf>,
    /// busybox for Linux guests (default: from PATH).
    #[arg(long, value_name = "FILE")]
    busybox: Option<PathBuf>,
    /// The guest kernel's modules directory (Linux guests; default:
    /// /lib/modules/VERSION from the vmlinuz-VERSION name).
    #[arg(long, value_name = "DIR")]
    modules: Option<PathBuf>,
    /// No progress heartbeat for this long while the suite runs is a hang.
    #[arg(long, value_parser = parse_duration_arg, default_value = "5m")]
    hang_timeout: Duration,
    /// A guest that has not started the suite after this long failed to boot.
    #[arg(long, value_parser = parse_duration_arg, default_value = "10m")]
    boot_timeout: Duration,
    /// A guest that has printed nothing on its console after this long
    /// failed to boot (a vCPU that runs no guest code); with `--accel auto`
    /// on KVM, the rest of the run falls back to TCG.
    #[arg(long, value_parser = parse_duration_arg, default_value = "60s")]
    console_timeout: Duration,
    /// Boot this many guests side by side (each with --cpus vCPUs; `vm ab`:
    /// 2 runs both sides at once). Default 1; `repro`: as many as the
    /// host's CPUs hold (CPUs / --cpus).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    parallel: Option<u16>,
    /// Keep every FreeBSD guest's root disk, payload and collect image
    /// (default: removed once the guest ended and its crash was unpacked).
    #[arg(long)]
    keep_disks: bool,
    /// Keep the vmcores of the first N guests per crash signature; later
    /// ones are removed (core.txt, info and the console always stay).
    #[arg(long, value_name = "N", default_value_t = 1)]
    keep_vmcores: usize,
}

/// Which hypervisor runs guests, and its settings.
#[derive(Args, Debug, Clone)]
pub struct HypervisorArgs {
    /// The hypervisor: `auto` is bhyve for FreeBSD guests on a FreeBSD host
    /// with vmm(4) loaded, QEMU otherwise.
    #[arg(long, value_enum, default_value_t = crate::vm::machine::HypervisorKind::Auto)]
    hypervisor: crate::vm::machine::HypervisorKind,
    /// QEMU's accelerator.
    #[arg(long, value_enum, default_value_t = crate::vm::qemu::Accel::Auto)]
    accel: crate::vm::qemu::Accel,
    /// The QEMU system emulator.
    #[arg(long, value_name = "FILE", default_value = "qemu-system-x86_64")]
    qemu: PathBuf,
    /// bhyve: boot this UEFI firmware (edk2-bhyve's BHYVE_UEFI.fd) instead
    /// of loading the kernel with bhyveload.
    #[arg(long, value_name = "FILE")]
    firmware: Option<PathBuf>,
}

impl HypervisorArgs {
    fn config(self) -> crate::vm::machine::HypervisorConfig {
        crate::vm::machine::HypervisorConfig {
            kind: self.hypervisor,
            qemu: self.qemu,
            accel: self.accel,
            firmware: self.firmware,
        }
    }
}

impl MachineArgs {
    fn config(
        self,
        guest: crate::vm::GuestOs,
        image: PathBuf,
        suite: String,
        out: PathBuf,
        seed: Option<u64>,
        duration: Duration,
    ) -> crate::vm::VmConfig {
        crate::vm::VmConfig {
            guest,
            image,
            suite,
            duration,
            cpus: self.cpus,
            mem_mib: self.mem,
            hv: self.hv.config(),
            out,
            binary: self.binary,
            busybox: self.busybox,
            modules: self.modules,
            hang_timeout: self.hang_timeout,
            boot_timeout: self.boot_timeout,
            console_timeout: self.console_timeout,
            seed,
            replay_seed: None,
            keep: crate::vm::spent::Keep {
                disks: self.keep_disks,
                vmcores: self.keep_vmcores,
            },
            inject: None,
            kmods: vec![],
            parallel: self.parallel.unwrap_or(1) as usize,
            max_guests: None,
            script: None,
            tools: vec![],
        }
    }
}

impl GuestArgs {
    fn config(self, duration: Duration) -> crate::vm::VmConfig {
        self.machine.config(
            self.guest, self.image, self.suite, self.out, self.seed, duration,
        )
    }
}

/// `ifstress repro`: what to reproduce, and the guests to do it in.
#[derive(Args, Debug, Clone)]
pub struct ReproArgs {
    /// A report with the crash (`report.json` of `vm run` or `run
    /// --report`), or a `vm run --out` directory holding one.
    #[arg(value_name = "REPORT.json|OUT_DIR")]
    input: PathBuf,
    /// The crash to reproduce (default: the report's most frequent crash).
    #[arg(long, value_name = "SIG")]
    signature: Option<String>,
    /// The crashed run's --journal directory, for its workers' last ops
    /// (default: the last ops the report carries).
    #[arg(long, value_name = "DIR")]
    journal: Option<PathBuf>,
    /// The guest image or kernel (default: the report's, for a `vm run` report).
    #[arg(long, value_name = "FILE")]
    image: Option<PathBuf>,
    /// The guest OS (default: the report's, else freebsd).
    #[arg(long, value_enum)]
    guest: Option<crate::vm::GuestOs>,
    /// Modules and parameters; none given: the report's own.
    #[command(flatten)]
    guest_modules: GuestModuleArgs,
    /// Wall time for the whole reproduction.
    #[arg(long, value_parser = parse_duration_arg, default_value = "60m")]
    budget: Duration,
    /// Hits to confirm the crash, and trials to measure the minimal suite.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    trials: u32,
    /// Accepted chance that a step refuses a reduction the race survives
    /// at the confirmed rate (sets the step budget).
    #[arg(long, default_value_t = 0.05)]
    miss: f64,
    /// Where repro.toml, repro.sh, repro.json and every step's guests go.
    #[arg(long, value_name = "DIR", default_value = "ifstress-repro")]
    out: PathBuf,
    #[command(flatten)]
    machine: MachineArgs,
}

#[derive(Args, Debug, Clone)]
pub struct VmAbArgs {
    #[command(flatten)]
    guest: GuestArgs,
    /// Modules and parameters loaded on both sides.
    #[command(flatten)]
    guest_modules: GuestModuleArgs,
    /// The before side's guest image (default: --image).
    #[arg(long, value_name = "FILE")]
    before_image: Option<PathBuf>,
    /// The after side's guest image, e.g. a patched kernel (default: --image).
    #[arg(long, value_name = "FILE")]
    after_image: Option<PathBuf>,
    /// A module for the before side only. Repeatable.
    #[arg(long, value_name = "FILE.ko")]
    before_module: Vec<PathBuf>,
    /// A module for the after side only, e.g. a patched if_epair.ko. Repeatable.
    #[arg(long, value_name = "FILE.ko")]
    after_module: Vec<PathBuf>,
    /// A module parameter for the before side only. Repeatable.
    #[arg(long, value_name = "NAME=VALUE")]
    before_param: Vec<String>,
    /// A module parameter for the after side only (racebench: fixed=1). Repeatable.
    #[arg(long, value_name = "NAME=VALUE")]
    after_param: Vec<String>,
    /// Wall time for the whole comparison; it stops earlier once decided.
    #[arg(long, value_parser = parse_duration_arg)]
    budget: Duration,
    /// Guest time per side per round.
    #[arg(long, value_parser = parse_duration_arg, default_value = "10m")]
    slice: Duration,
    #[command(flatten)]
    judge: JudgeArgs,
}

/// What a verdict is about and how sure it must be.
#[derive(Args, Debug, Clone)]
pub struct JudgeArgs {
    /// The crash signature to judge (default: the before side's most frequent).
    #[arg(long, value_name = "SIG")]
    signature: Option<String>,
    /// Confidence of the verdict and of the rate intervals.
    #[arg(long, default_value_t = 0.95)]
    confidence: f64,
    /// The after side's ok ops per hour of an op kind below this fraction of
    /// the before side's make the verdict `incomparable` (exit 4).
    #[arg(long, value_name = "FRACTION", default_value_t = crate::verdict::MIN_WORK)]
    min_work: f64,
    /// Also write the verdict as JSON here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

impl JudgeArgs {
    fn check(&self) -> anyhow::Result<()> {
        crate::verdict::check_criteria(&self.criteria()).map_err(|e| UsageError(e.to_string()))?;
        if let Some(p) = &self.json {
            check_writable_file(p, "--json")?;
        }
        Ok(())
    }

    fn criteria(&self) -> crate::verdict::Criteria {
        crate::verdict::Criteria {
            signature: self.signature.clone(),
            confidence: self.confidence,
            min_work: self.min_work,
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct VerdictArgs {
    /// Reports of the unpatched kernel (`ifstress run --report` or `vm run`'s report.json).
    #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
    before: Vec<PathBuf>,
    /// Reports of the patched kernel.
    #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
    after: Vec<PathBuf>,
    #[command(flatten)]
    judge: JudgeArgs,
}

/// Kernel modules for guests.
#[derive(Args, Debug, Clone, Default)]
pub struct GuestModuleArgs {
    /// Load this kernel module in every guest before the suite starts
    /// (Linux: insmod; FreeBSD: kldload, e.g. a patched if_epair.ko).
    /// Repeatable.
    #[arg(long = "module", value_name = "FILE.ko")]
    module: Vec<PathBuf>,
    /// A parameter for the module: NAME=VALUE (MODULE.NAME=VALUE when several
    /// are loaded). Linux: an insmod parameter; FreeBSD: a kenv tunable set
    /// before kldload. Repeatable.
    #[arg(long = "module-param", value_name = "NAME=VALUE")]
    module_param: Vec<String>,
}

impl GuestModuleArgs {
    fn resolve(&self) -> Result<Vec<crate::vm::GuestModule>, UsageError> {
        crate::vm::GuestModule::assign(&self.module, &self.module_param).map_err(UsageError)
    }
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Cases to measure, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST")]
    ops: Vec<crate::platform::baseline::Case>,
    /// Worker counts to measure ifstress at, comma-separated; 1 is always included.
    #[arg(long, value_delimiter = ',', value_name = "LIST", default_value = "1,2,4,8,16",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: Vec<u16>,
    /// Seconds per measurement.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=3600))]
    seconds: u32,
    /// Write the results as JSON here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Skip the shell-loop and batch baselines.
    #[arg(long)]
    no_baseline: bool,
    /// Skip the footprint run (`all` widened to 1,000 links and 64 stacks).
    #[arg(long)]
    no_footprint: bool,
    /// Also run `all` with the journal on for this long and report how the
    /// resident set moves after warm-up (a leak check: `--soak 10m`).
    #[arg(long, value_name = "D", value_parser = parse_duration_arg)]
    soak: Option<Duration>,
    #[command(flatten)]
    seeded: SeededArgs,
}

/// `bench --seeded`: time to first hit of planted races in Linux guests.
#[derive(Args, Debug, Clone)]
pub struct SeededArgs {
    /// Measure time to first hit of racebench's seeded races in QEMU guests
    /// instead of op throughput (needs --image and --racebench).
    #[arg(long, requires_all = ["image", "racebench"])]
    seeded: bool,
    /// The guest kernel (vmlinuz) racebench was built for.
    #[arg(long, value_name = "FILE", requires = "seeded")]
    image: Option<PathBuf>,
    /// racebench.ko (make -C vm/racebench).
    #[arg(long, value_name = "FILE", requires = "seeded")]
    racebench: Option<PathBuf>,
    /// Scenarios, comma-separated (default: vmove,outpath,media,tun).
    #[arg(long, value_delimiter = ',', value_name = "LIST", requires = "seeded")]
    scenarios: Vec<String>,
    /// Window widths in microseconds; the first is also the fixed=1 check's.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LIST",
        default_value = "5000,500,50"
    )]
    windows: Vec<u32>,
    /// Trials (guests) per scenario, window and method.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    trials: u32,
    /// Suite time after which an ifstress trial without a hit is censored.
    #[arg(long, value_parser = parse_duration_arg, default_value = "10m")]
    cap: Duration,
    /// The same for the shell-loop reproducers.
    #[arg(long, value_parser = parse_duration_arg, default_value = "3m")]
    shell_cap: Duration,
    /// Skip the shell-loop reproducers.
    #[arg(long)]
    no_shell: bool,
    /// Where guests' consoles and reports go.
    #[arg(long, value_name = "DIR", default_value = "ifstress-seeded")]
    out: PathBuf,
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=256))]
    cpus: u32,
    #[arg(long, value_name = "MIB", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(256..=1048576))]
    mem: u32,
    #[arg(long, value_enum, default_value_t = crate::vm::qemu::Accel::Auto)]
    accel: crate::vm::qemu::Accel,
}

/// Set in guests `ifstress vm` boots: crashing them is their purpose.
pub const DISPOSABLE_ENV: &str = "IFSTRESS_DISPOSABLE_VM";

fn check_on_hang(on_hang: OnHang, yes_really: bool, disposable: bool) -> Result<(), UsageError> {
    if on_hang == OnHang::Panic && !yes_really && !disposable {
        return Err(UsageError(format!(
            "--on-hang=panic crashes this machine on purpose; it is meant for disposable VMs: add --yes-really (guests of `ifstress vm` have {DISPOSABLE_ENV}=1)"
        )));
    }
    if yes_really && on_hang != OnHang::Panic {
        return Err(UsageError(
            "--yes-really confirms --on-hang panic, which is not given: drop it, or add --on-hang panic".into(),
        ));
    }
    Ok(())
}

fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    suite::parse_duration(s)
}

/// Would this command line parse? For tests that check command lines written
/// elsewhere (CI files, the README) against the real parser.
pub fn check_args<I: IntoIterator<Item = String>>(args: I) -> Result<(), String> {
    Cli::try_parse_from(args)
        .map(drop)
        .map_err(|e| e.to_string().lines().next().unwrap_or("").to_string())
}

/// clap's error as one line: its first paragraph, which for a missing
/// argument is the heading and the indented names below it.
fn one_line(text: &str) -> String {
    let para: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let joined = para.join(" ");
    let joined = joined.strip_prefix("error: ").unwrap_or(&joined);
    if joined.is_empty() {
        "bad arguments".into()
    } else {
        joined.to_string()
    }
}

/// The process's exit status for an error.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    let user = e
        .chain()
        .any(|c| c.is::<SuiteError>() || c.is::<EnvError>() || c.is::<UsageError>());
    if user { exit::USAGE } else { exit::INTERNAL }
}

/// Parse, run, and return the exit status. Errors are printed as one line.
pub fn main() -> i32 {
    // Before anything else allocates: under a tight `ulimit -v` the first
    // failed allocation then gives this back instead of aborting, and a run
    // refuses to start (exit 2) when it cannot get it back (Run::prepare).
    let _ = crate::memory::arm();
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("ifstress: internal error: {}{at}", msg.replace('\n', " "));
    }));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind::*;
            if matches!(
                e.kind(),
                DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return exit::CLEAN;
            }
            eprintln!(
                "ifstress: {} (see ifstress --help)",
                one_line(&e.to_string())
            );
            return exit::USAGE;
        }
    };
    match std::panic::catch_unwind(|| dispatch(cli)) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            eprintln!("ifstress: {e:#}");
            exit_code(&e)
        }
        Err(_) => exit::INTERNAL,
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    match cli.cmd {
        Some(Cmd::Run(a)) => run(a),
        None => run(cli.run),
        Some(Cmd::List) => {
            for (name, _) in suite::EMBEDDED {
                let s = suite::load(name)?;
                outln!("{:<8} {}", s.name, s.description);
                outln!("{:<8} targets: {}", "", s.targets.join("; "));
            }
            Ok(exit::CLEAN)
        }
        Some(Cmd::Show { suite, shell }) => {
            let s = suite::load(&suite)?;
            match shell {
                None => out!("{}", s.to_toml()),
                Some(os) => out!(
                    "{}",
                    crate::repro::shell::render(&s, os.into(), &format!("suite {}", s.name), "-",)
                ),
            }
            Ok(exit::CLEAN)
        }
        Some(Cmd::Doctor { json }) => {
            let d = crate::doctor::run(platform::native()?)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                out!("{}", crate::doctor::render(&d));
            }
            Ok(if d.leftovers.is_empty() {
                exit::CLEAN
            } else {
                exit::FINDINGS
            })
        }
        Some(Cmd::Agent { jid }) => Ok(platform::agent_main(jid)?),
        Some(Cmd::Completions { shell }) => {
            // clap_complete completes hidden commands and flags too (the
            // FreeBSD agent's entry point, the VM runner's test hook).
            fn visible(c: &clap::Command) -> clap::Command {
                // Command names are 'static in clap without its `string`
                // feature; this process prints one script and exits.
                let name: &'static str = c.get_name().to_string().leak();
                clap::Command::new(name)
                    .about(c.get_about().cloned().unwrap_or_default())
                    .args(c.get_arguments().filter(|a| !a.is_hide_set()).cloned())
                    .subcommands(
                        c.get_subcommands()
                            .filter(|s| !s.is_hide_set())
                            .map(visible),
                    )
            }
            let mut cmd = visible(&<Cli as clap::CommandFactory>::command())
                .version(env!("CARGO_PKG_VERSION"));
            // Into memory first: clap_complete panics on a failed write
            // (a closed pipe); `say` does not.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "ifstress", &mut script);
            say(&String::from_utf8_lossy(&script));
            Ok(exit::CLEAN)
        }
        Some(Cmd::Bench(a)) => bench(a),
        Some(Cmd::Vm(VmCmd::Run(a))) => vm_run(*a),
        Some(Cmd::Vm(VmCmd::Ab(a))) => vm_ab(*a),
        Some(Cmd::Vm(VmCmd::BuildKernel(a))) => vm_build_kernel(*a),
        Some(Cmd::Verdict(a)) => verdict(a),
        Some(Cmd::Repro(a)) => repro(*a),
        Some(Cmd::Postmortem {
            journal,
            crash,
            report,
            junit,
        }) => {
            for (p, what) in [(&report, "--report"), (&junit, "--junit")] {
                if let Some(p) = p {
                    check_writable_file(p, what)?;
                }
            }
            check_distinct(&[
                (report.as_deref(), "--report"),
                (junit.as_deref(), "--junit"),
            ])?;
            let explicit = crash.is_some();
            let crash = crash.unwrap_or_else(crate::postmortem::default_crash_dir);
            let r = crate::postmortem::run(journal.as_deref(), &crash, explicit)?;
            let written = write_reports(&r, report.as_deref(), junit.as_deref());
            out!("{}", crate::report::human(&r));
            written?;
            Ok(status(&r))
        }
        Some(Cmd::Triage {
            files,
            json,
            osreldate,
        }) => {
            let findings = crate::check::triage_files(&files, osreldate)?;
            // Written as it is made, not built as one string first (100,000
            // findings would double the memory); a closed pipe ends the
            // output, not the command.
            use std::io::Write;
            let mut o = std::io::BufWriter::new(std::io::stdout().lock());
            let _ = if json {
                serde_json::to_writer_pretty(&mut o, &findings)
                    .map_err(std::io::Error::from)
                    .and_then(|()| writeln!(o))
            } else {
                crate::report::write_findings(&mut o, &findings)
            }
            .and_then(|()| o.flush());
            Ok(if findings.is_empty() {
                exit::CLEAN
            } else {
                exit::FINDINGS
            })
        }
        Some(Cmd::Cleanup { force }) => {
            let p = platform::native()?;
            p.require_privileges()?;
            // The sweep is bounded; a signal lets it finish, so its claims
            // (lock files) are released, not left behind.
            let (_stopped, _signals) =
                stop_on_signal("ifstress cleanup: finishing the sweep, then releasing its claims")?;
            // Each tag's run lock is taken when the tag is first met and
            // held until the sweep ends: a live run (or one starting now)
            // holds its own, and is left alone.
            use crate::platform::runlock::RunLock;
            let held = std::cell::RefCell::new(
                std::collections::BTreeMap::<String, Option<RunLock>>::new(),
            );
            let lock_error = std::cell::RefCell::new(None::<String>);
            let claim = |t: &crate::model::Tag| -> bool {
                let mut h = held.borrow_mut();
                h.entry(t.id.clone())
                    .or_insert_with(|| {
                        RunLock::acquire(t).unwrap_or_else(|e| {
                            lock_error.borrow_mut().get_or_insert(e.to_string());
                            None
                        })
                    })
                    .is_some()
            };
            let removed = p.cleanup(if force {
                Scope::All
            } else {
                Scope::Claimed(&claim)
            })?;
            if let Some(e) = lock_error.take() {
                return Err(EnvError::Unusable(e).into());
            }
            for (tag, lock) in held.borrow().iter() {
                if lock.is_none() {
                    outln!(
                        "left alone: run {tag} is still running (--force removes its objects too)"
                    );
                }
            }
            // Our claims end here; then the lock files of runs that died
            // without unlinking theirs (a tag with no objects left is never
            // claimed above).
            drop(held);
            let mut removed = removed;
            removed.extend(crate::platform::runlock::sweep_stale());
            if removed.is_empty() {
                outln!("nothing to clean up");
            }
            for r in removed {
                outln!("removed {r}");
            }
            Ok(exit::CLEAN)
        }
    }
}

/// A report's exit status: findings 1, ifstress's own failure 3, else 0.
fn status(r: &crate::report::Report) -> i32 {
    if r.failed() {
        exit::INTERNAL
    } else if r.clean() {
        exit::CLEAN
    } else {
        exit::FINDINGS
    }
}

fn writable(p: &std::path::Path) -> bool {
    nix::unistd::access(p, nix::unistd::AccessFlags::W_OK).is_ok()
}

/// Can a report be written at `p`? Checked before a run starts, so that a
/// report path on a read-only mount, a full disk, a directory or a block
/// device is a usage error, not a report lost after the run.
fn check_writable_file(p: &std::path::Path, what: &str) -> Result<(), UsageError> {
    use crate::report::output::{self, Target};
    let bad = |why: String| UsageError(format!("{what} {}: {why}", p.display()));
    let real = match output::target(p).map_err(|e| bad(e.to_string()))? {
        Target::InPlace => {
            return if writable(p) {
                Ok(())
            } else {
                Err(bad("is not writable".into()))
            };
        }
        Target::Atomic(real) => real,
    };
    let parent = real
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    if !parent.is_dir() {
        return Err(bad(format!(
            "directory {} does not exist",
            parent.display()
        )));
    }
    // Written beside, then renamed: the directory must take a new file.
    if !writable(parent) || (real.exists() && !writable(&real)) {
        return Err(bad(format!("{} is not writable", parent.display())));
    }
    match output::free_bytes(parent) {
        Ok(free) if free < output::MIN_FREE_BYTES => Err(bad(format!(
            "{} has {free} bytes free; a report needs at least {}",
            parent.display(),
            output::MIN_FREE_BYTES
        ))),
        _ => Ok(()),
    }
}

/// Two output flags naming one file would silently keep only the last.
fn check_distinct(paths: &[(Option<&std::path::Path>, &str)]) -> Result<(), UsageError> {
    let given: Vec<(&std::path::Path, &str)> = paths
        .iter()
        .filter_map(|(p, w)| p.map(|p| (p, *w)))
        .collect();
    for (i, (a, wa)) in given.iter().enumerate() {
        for (b, wb) in &given[i + 1..] {
            if crate::report::output::same_file(a, b) {
                return Err(UsageError(format!(
                    "{wa} {} and {wb} {} name the same file: one would overwrite the other",
                    a.display(),
                    b.display()
                )));
            }
        }
    }
    Ok(())
}

/// `--journal DIR` and `--journal-port PATH`, before anything is created.
fn check_journal(
    dir: Option<&std::path::Path>,
    port: Option<&std::path::Path>,
) -> Result<(), UsageError> {
    if let Some(d) = dir {
        let bad = |why: &str| UsageError(format!("--journal {}: {why}", d.display()));
        if d.exists() && !d.is_dir() {
            return Err(bad("exists and is not a directory"));
        }
        let mut up = d;
        // The nearest existing ancestor is where the directory will be made.
        while !up.exists() {
            match up.parent().filter(|p| !p.as_os_str().is_empty()) {
                Some(p) => up = p,
                None => {
                    up = std::path::Path::new(".");
                    break;
                }
            }
        }
        if !up.is_dir() {
            return Err(bad(&format!("{} is not a directory", up.display())));
        }
        if !writable(up) {
            return Err(bad(&format!("{} is not writable", up.display())));
        }
    }
    if let Some(p) = port {
        use std::os::unix::fs::OpenOptionsExt;
        // Non-blocking: a FIFO without a reader, or a tty waiting for
        // carrier, must not hang the check.
        std::fs::OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(p)
            .map_err(|e| UsageError(format!("--journal-port {}: {e}", p.display())))?;
    }
    Ok(())
}

fn run(a: RunArgs) -> anyhow::Result<i32> {
    let name = a
        .suite
        .ok_or_else(|| UsageError("--suite is required (see `ifstress list`)".into()))?;
    let suite = suite::load(&name)?;
    check_on_hang(
        a.on_hang,
        a.yes_really,
        std::env::var(DISPOSABLE_ENV).is_ok_and(|v| v == "1"),
    )?;
    let threads = suite.total_workers() * a.workers as usize;
    if threads > suite::MAX_WORKERS {
        return Err(UsageError(format!(
            "--workers {}: {threads} worker threads is more than {} (suite {} has {} per scale step)",
            a.workers,
            suite::MAX_WORKERS,
            suite.name,
            suite.total_workers()
        ))
        .into());
    }
    for (p, what) in [(&a.report, "--report"), (&a.junit, "--junit")] {
        if let Some(p) = p {
            check_writable_file(p, what)?;
        }
    }
    check_distinct(&[
        (a.report.as_deref(), "--report"),
        (a.junit.as_deref(), "--junit"),
        (a.journal_port.as_deref(), "--journal-port"),
    ])?;
    check_journal(a.journal.as_deref(), a.journal_port.as_deref())?;
    // Descriptors: every worker holds about five per stack it uses; ask
    // for that much, and refuse a limit too low to even set the run up
    // (`ulimit -n 8` was an internal error from deep inside setup).
    let stacks = 1 + suite.topology.stacks + suite.topology.churn_stacks;
    let floor = crate::resources::descriptors_to_start(stacks);
    let want = floor + (threads * stacks * 5) as u64;
    let have = crate::resources::raise_nofile(want);
    if have < floor {
        return Err(UsageError(format!(
            "ulimit -n {have}: too few file descriptors to set up suite {} ({stacks} stacks need at least {floor}; its {threads} workers want about {want})",
            suite.name
        ))
        .into());
    }
    let platform = platform::native()?;
    let seed = a.seed.unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        crate::plan::worker_seed(t ^ std::process::id() as u64, 0) >> 1
    });
    let duration = a.duration.unwrap_or_else(|| suite.duration());
    let cfg = RunConfig {
        suite,
        duration,
        seed,
        workers_scale: a.workers as usize,
        journal: a.journal.clone(),
        journal_max_bytes: a.journal_max_mib << 20,
        journal_port: a.journal_port.clone(),
        quiet: a.quiet,
        load_modules: a.load_modules,
        dying_grace: a.dying_grace,
        on_hang: a.on_hang,
    };
    let run = Run::prepare(platform, cfg)?;
    if !a.quiet {
        eprintln!(
            "ifstress: suite {} on {}, {} workers, {}, seed {} (replay with --seed {}), tag {}",
            run.suite().name,
            platform.name(),
            run.worker_specs().len(),
            humantime::format_duration(duration),
            seed,
            seed,
            run.tag().id
        );
        for n in run.notes() {
            eprintln!("ifstress: note: {n}");
        }
    }
    let report = run.execute()?;
    // Files first: a closed stdout must not cost the report.
    let written = write_reports(&report, a.report.as_deref(), a.junit.as_deref());
    out!("{}", crate::report::human(&report));
    written?;
    Ok(status(&report))
}

/// A flag raised by the first SIGINT, SIGTERM or SIGHUP, for commands that end
/// their current step and still report. The listener is registered before
/// this returns; it lives as long as the returned runtime.
fn stop_on_signal(
    message: &'static str,
) -> anyhow::Result<(
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    tokio::runtime::Runtime,
)> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("ifstress-signals")
        .enable_all()
        .build()?;
    let mut signals = {
        let _g = rt.enter();
        crate::platform::unix::StopSignals::new()?
    };
    let s = stop.clone();
    rt.spawn(async move {
        signals.recv().await;
        s.store(true, std::sync::atomic::Ordering::Relaxed);
        eprintln!("{message}");
    });
    Ok((stop, rt))
}

fn vm_run(a: VmRunArgs) -> anyhow::Result<i32> {
    if let Some(i) = &a.inject {
        let ok = i.split_once(':').is_some_and(|(w, s)| {
            matches!(w, "panic" | "hang" | "boot-panic" | "silent") && s.parse::<u32>().is_ok()
        });
        if !ok {
            return Err(UsageError(format!(
                "--inject {i}: expected panic:SECS, hang:SECS, boot-panic:0 or silent:0"
            ))
            .into());
        }
    }
    let mut cfg = a.guest.config(a.duration);
    cfg.inject = a.inject;
    cfg.kmods = a.guest_modules.resolve()?;
    cfg.max_guests = a.guests.map(|g| g as usize);
    if let Some(sc) = &a.script {
        crate::vm::check_regular("--script", sc)?;
        cfg.script = Some(sc.clone());
        cfg.tools = a
            .tool
            .iter()
            .map(|t| {
                // Its upper-cased name becomes a variable of the script.
                crate::model::safe_name(t).map_err(|m| UsageError(format!("--tool {m}")))?;
                crate::vm::which(t)
                    .ok_or_else(|| UsageError(format!("--tool {t}: not found in PATH")))
            })
            .collect::<Result<_, _>>()?;
    }
    let out = cfg.out.clone();
    let (stop, _signals) =
        stop_on_signal("ifstress vm: stopping: ending the current guest and writing the report")?;
    let report = crate::vm::run(&cfg, &stop)?;
    out!("{}", crate::report::human(&report));
    write_reports(
        &report,
        Some(&out.join("report.json")),
        Some(&out.join("junit.xml")),
    )?;
    if let Some(e) = report.vm.as_ref().and_then(|v| v.module_error()) {
        return Err(UsageError(format!("a --module did not load in the guest: {e}")).into());
    }
    if let Some(why) = report.vm.as_ref().and_then(|v| v.stopped.as_deref()) {
        return Err(UsageError(why.to_string()).into());
    }
    Ok(status(&report))
}

fn bench_seeded(a: SeededArgs, json: Option<PathBuf>) -> anyhow::Result<i32> {
    use crate::bench::seeded;
    let scenarios = if a.scenarios.is_empty() {
        seeded::SCENARIOS.iter().collect()
    } else {
        a.scenarios
            .iter()
            .map(|n| {
                seeded::scenario(n).ok_or_else(|| {
                    UsageError(format!(
                        "--scenarios {n}: unknown (vmove, outpath, media, tun)"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    if a.windows.is_empty() {
        return Err(UsageError("--windows: give at least one width".into()).into());
    }
    let guest = GuestArgs {
        image: a.image.unwrap_or_default(),
        guest: crate::vm::GuestOs::Linux,
        suite: "vmove".into(),
        out: a.out.clone(),
        seed: None,
        machine: MachineArgs {
            cpus: a.cpus,
            mem: a.mem,
            hv: HypervisorArgs {
                accel: a.accel,
                qemu: "qemu-system-x86_64".into(),
                hypervisor: crate::vm::machine::HypervisorKind::Qemu,
                firmware: None,
            },
            binary: None,
            busybox: None,
            modules: None,
            hang_timeout: Duration::from_secs(300),
            boot_timeout: Duration::from_secs(600),
            console_timeout: crate::vm::CONSOLE_TIMEOUT,
            parallel: None,
            keep_disks: false,
            keep_vmcores: 1,
        },
    }
    .config(a.cap);
    let cfg = seeded::SeededConfig {
        guest,
        racebench: a.racebench.unwrap_or_default(),
        scenarios,
        windows_us: a.windows,
        trials: a.trials as usize,
        cap: a.cap,
        shell_cap: a.shell_cap,
        shell: !a.no_shell,
        boot_allowance: Duration::from_secs(25),
    };
    let (stop, _signals) = stop_on_signal(
        "ifstress bench: stopping: ending the current guest and writing what was measured",
    )?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let r = seeded::run(&cfg, &stop, &|m| eprintln!("ifstress bench: {m}"))?;
    out!("{}", seeded::render(&r));
    let text = serde_json::to_string_pretty(&r)?;
    std::fs::write(a.out.join("seeded.json"), &text)?;
    if let Some(p) = json {
        std::fs::write(&p, &text).with_context(|| format!("writing {}", p.display()))?;
    }
    // Exit 1 when the patched variant was hit: the bench's own check failed.
    let fixed_hit = r
        .cells
        .iter()
        .any(|c| c.method.ends_with("fixed=1") && c.hits > 0);
    Ok(if fixed_hit {
        exit::FINDINGS
    } else {
        exit::CLEAN
    })
}

fn vm_ab(a: VmAbArgs) -> anyhow::Result<i32> {
    a.judge.check()?;
    // Both sides the same kernel, modules and parameters: the budget would
    // go to comparing a kernel with itself.
    let image = |side: &Option<PathBuf>| side.clone().unwrap_or_else(|| a.guest.image.clone());
    if image(&a.before_image) == image(&a.after_image)
        && a.before_module == a.after_module
        && a.before_param == a.after_param
    {
        return Err(UsageError(
            "the before and after sides are the same: give --after-image, --after-module or --after-param (or their --before-* twins) for the side that differs".into(),
        )
        .into());
    }
    let out = a.guest.out.clone();
    let base = a.guest.config(a.budget);
    let cfg = crate::vm::ab::AbConfig {
        base,
        common_params: a.guest_modules.module_param.clone(),
        common_kmods: a.guest_modules.module.clone(),
        before: crate::vm::ab::Side {
            image: a.before_image,
            kmods: a.before_module,
            params: a.before_param,
        },
        after: crate::vm::ab::Side {
            image: a.after_image,
            kmods: a.after_module,
            params: a.after_param,
        },
        budget: a.budget,
        slice: a.slice,
        criteria: a.judge.criteria(),
    };
    let (stop, _signals) = stop_on_signal(
        "ifstress vm ab: stopping: ending the current guests and writing the partial verdict",
    )?;
    let v = crate::vm::ab::run(&cfg, &stop)?;
    out!("{}", v.render());
    let json = serde_json::to_string_pretty(&v)?;
    std::fs::write(out.join("verdict.json"), &json)
        .with_context(|| format!("writing {}/verdict.json", out.display()))?;
    if let Some(p) = &a.judge.json {
        std::fs::write(p, &json).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(v.exit_code())
}

fn vm_build_kernel(a: VmBuildKernelArgs) -> anyhow::Result<i32> {
    let kb = crate::vm::kernel::KernelBuild {
        image: a.image,
        src: a.src,
        patches: a.patch,
        kernconf: a.kernconf,
        debug: a.debug,
        out_image: a.out_image,
        work: a.work,
        cpus: a.cpus,
        mem_mib: a.mem,
        scratch_gib: a.scratch,
        timeout: a.timeout,
    };
    kb.check_inputs()?;
    let (hv, note) =
        crate::vm::hypervisor::select(&a.hv.config(), crate::vm::GuestOs::Freebsd, &kb.image)?;
    if let Some(n) = note {
        eprintln!("ifstress vm build-kernel: {n}");
    }
    let (stop, _signals) =
        stop_on_signal("ifstress vm build-kernel: stopping: ending the build guest")?;
    crate::vm::kernel::build(&kb, hv.as_ref(), &stop)?;
    Ok(0)
}

fn repro(a: ReproArgs) -> anyhow::Result<i32> {
    if !(a.miss > 0.0 && a.miss < 0.5) {
        return Err(UsageError(format!("--miss {}: must be between 0 and 0.5", a.miss)).into());
    }
    let src = crate::repro::source(&a.input, a.signature.as_deref())
        .map_err(|e| UsageError(e.to_string()))?;
    let vm = src.vm.as_ref();
    let image = match (a.image, vm) {
        (Some(i), _) => i,
        (None, Some(v)) => PathBuf::from(&v.image),
        (None, None) => {
            return Err(UsageError(format!(
                "{}: a run on this machine, not in guests: give --image (repro runs only in disposable guests, since a reproduced crash takes its machine down)",
                a.input.display()
            ))
            .into());
        }
    };
    let guest =
        a.guest
            .or(vm.map(|v| v.guest_os))
            .unwrap_or(if src.platform.starts_with("linux") {
                crate::vm::GuestOs::Linux
            } else {
                crate::vm::GuestOs::Freebsd
            });
    // The report's modules and parameters (a report lists each module as
    // "PATH PARAM..."), unless the command line names modules of its own;
    // --module-param alone replaces the parameters only.
    let mut files = a.guest_modules.module.clone();
    let mut params = a.guest_modules.module_param.clone();
    if files.is_empty() {
        let mut theirs = Vec::new();
        for m in vm.map(|v| v.modules.as_slice()).unwrap_or_default() {
            let mut words = m.split_whitespace();
            if let Some(f) = words.next() {
                let file = PathBuf::from(f);
                // Qualified by the module's own name, so that a FreeBSD
                // tunable's dots (net.link.epair.x=1) are not read as one.
                let name = crate::vm::initramfs::module_name(&file);
                theirs.extend(words.map(|p| format!("{name}.{p}")));
                files.push(file);
            }
        }
        if params.is_empty() {
            params = theirs;
        }
    }
    let mut last_ops = src.last_ops.clone();
    if let Some(j) = &a.journal {
        last_ops = crate::postmortem::last_ops(j, 16)
            .map_err(|e| UsageError(format!("--journal {}: {e:#}", j.display())))?;
    }
    let out = a.out.clone();
    // Side by side where the host has the cores: under TCG every vCPU is a
    // host thread, so more guests than CPUs / vCPUs only slow each other.
    let host = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let parallel = a
        .machine
        .parallel
        .map_or((host / a.machine.cpus).max(1), u32::from);
    let mut base = a.machine.config(
        guest,
        image,
        String::new(),
        out.clone(),
        None,
        Duration::from_secs(60),
    );
    base.parallel = parallel as usize;
    base.kmods = crate::vm::GuestModule::assign(&files, &params).map_err(UsageError)?;
    base.check_inputs()?;
    // Every batch builds a guest payload from the binary: a copy taken now
    // keeps a long repro going when ifstress is rebuilt meanwhile.
    if base.binary.is_none() && guest == crate::vm::GuestOs::Linux {
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        let copy = out.join("ifstress-guest");
        std::fs::copy(std::env::current_exe()?, &copy)
            .with_context(|| format!("copying this binary to {}", copy.display()))?;
        base.binary = Some(copy);
    }
    let cfg = crate::repro::ReproConfig {
        signature: src.signature.clone(),
        title: src.title.clone(),
        original: src.suite.clone(),
        seed: Some(src.seed),
        scores: crate::repro::reduce::journal_scores(&last_ops),
        prior: src.prior,
        trials: a.trials as usize,
        miss: a.miss,
        budget: a.budget,
        out: out.clone(),
        os: guest.into(),
    };
    eprintln!(
        "ifstress repro: {} ({}) from suite {}; {} hit(s) in {:.0} s in the report; journal hints: {}",
        src.title,
        src.signature,
        src.suite.name,
        src.prior.0,
        src.prior.1,
        if cfg.scores.is_empty() {
            "none".to_string()
        } else {
            cfg.scores
                .keys()
                .map(|o| o.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        }
    );
    let (stop, _signals) = stop_on_signal(
        "ifstress repro: stopping: ending the current guests and writing what was learned",
    )?;
    let mut guests = crate::repro::VmGuests {
        base,
        signature: src.signature,
        stop: stop.clone(),
    };
    let r = crate::repro::run(&cfg, &mut guests, &stop)?;
    outln!("{}", r.statement);
    outln!(
        "files: {}/repro.json{}",
        out.display(),
        if r.minimal_suite.is_some() {
            format!(", {0}/repro.toml, {0}/repro.sh", out.display())
        } else {
            String::new()
        }
    );
    Ok(match r.outcome {
        crate::repro::Outcome::Reproduced => exit::CLEAN,
        _ => 4,
    })
}

fn verdict(a: VerdictArgs) -> anyhow::Result<i32> {
    a.judge.check()?;
    let v = crate::verdict::judge(&crate::verdict::VerdictInput {
        before: a.before,
        after: a.after,
        criteria: a.judge.criteria(),
        partial: false,
    })
    .map_err(|e| UsageError(e.to_string()))?;
    out!("{}", v.render());
    if let Some(p) = &a.judge.json {
        std::fs::write(p, serde_json::to_string_pretty(&v)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(v.exit_code())
}

fn bench(a: BenchArgs) -> anyhow::Result<i32> {
    if let Some(p) = &a.json {
        check_writable_file(p, "--json")?;
    }
    if a.seeded.seeded {
        return bench_seeded(a.seeded, a.json);
    }
    let platform = platform::native()?;
    let mut workers: Vec<usize> = a.workers.iter().map(|w| *w as usize).collect();
    workers.push(1);
    workers.sort();
    workers.dedup();
    let mut cases = a.ops.clone();
    if cases.is_empty() {
        cases = crate::platform::baseline::Case::ALL.to_vec();
    }
    cases.dedup();
    let cfg = crate::bench::BenchConfig {
        cases,
        workers,
        seconds: Duration::from_secs(a.seconds as u64),
        footprint: !a.no_footprint,
        baselines: !a.no_baseline,
        soak: a.soak,
    };
    // Each measured run also listens, and stops itself cleanly on the same signal.
    let (stop, _signals) =
        stop_on_signal("ifstress: bench interrupted: finishing the current step and cleaning up")?;
    let report = crate::bench::run(platform, &cfg, &stop, &|m| eprintln!("ifstress bench: {m}"))?;
    out!("{}", crate::bench::render(&report));
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_string_pretty(&report)? + "\n")
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", p.display()))?;
    }
    // As a run: an interrupt is in the JSON (`interrupted`), not in the
    // status, which says only whether the kernel logged something.
    Ok(if report.findings.is_empty() {
        exit::CLEAN
    } else {
        exit::FINDINGS
    })
}

fn write_reports(
    r: &crate::report::Report,
    json: Option<&std::path::Path>,
    junit: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    if let Some(p) = json {
        r.write_json(p)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", p.display()))?;
    }
    if let Some(p) = junit {
        r.write_junit(p)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", p.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_form_and_subcommand_form_parse_alike() {
        let a = Cli::try_parse_from(["ifstress", "--suite", "vmove", "--duration", "24h"]).unwrap();
        assert!(a.cmd.is_none());
        assert_eq!(a.run.suite.as_deref(), Some("vmove"));
        assert_eq!(a.run.duration, Some(Duration::from_secs(86400)));
        let b = Cli::try_parse_from(["ifstress", "run", "--suite", "vmove", "--duration", "24h"])
            .unwrap();
        match b.cmd {
            Some(Cmd::Run(r)) => assert_eq!(r.duration, Some(Duration::from_secs(86400))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_values_are_refused_by_the_parser() {
        assert!(Cli::try_parse_from(["ifstress", "--suite", "x", "--duration", "banana"]).is_err());
        assert!(Cli::try_parse_from(["ifstress", "--suite", "x", "--workers", "0"]).is_err());
        assert!(Cli::try_parse_from(["ifstress", "list", "--suite", "x"]).is_err());
    }

    #[test]
    fn on_hang_panic_needs_a_disposable_machine_or_consent() {
        assert!(check_on_hang(OnHang::Report, false, false).is_ok());
        let e = check_on_hang(OnHang::Panic, false, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--yes-really") && !e.contains('\n'), "{e}");
        assert!(check_on_hang(OnHang::Panic, true, false).is_ok());
        assert!(check_on_hang(OnHang::Panic, false, true).is_ok());
        let a = Cli::try_parse_from(["ifstress", "--suite", "x", "--on-hang", "panic"]).unwrap();
        assert_eq!(a.run.on_hang, OnHang::Panic);
        assert!(Cli::try_parse_from(["ifstress", "--suite", "x", "--on-hang", "explode"]).is_err());
    }

    #[test]
    fn user_errors_map_to_2_and_others_to_3() {
        let e: anyhow::Error = SuiteError::Unknown("x".into()).into();
        assert_eq!(exit_code(&e.context("loading")), exit::USAGE);
        let e: anyhow::Error = EnvError::Missing("VIMAGE".into()).into();
        assert_eq!(exit_code(&e), exit::USAGE);
        assert_eq!(exit_code(&anyhow::anyhow!("boom")), exit::INTERNAL);
    }
}
