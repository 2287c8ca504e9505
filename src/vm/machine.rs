//! The seam between the guest runner and a hypervisor: what a guest is made
//! of (`GuestSpec`), how one is started (`Hypervisor`) and what the runner
//! can do to a running one (`RunningGuest`). The runner reads the console and
//! the journal port as files either way: QEMU writes them itself, bhyve's
//! nmdm(4) ports are copied into them by the bhyve machine.

use crate::model::Accel;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the guest boots.
#[derive(Debug, Clone)]
pub enum Boot {
    /// A kernel and initramfs straight from files (Linux guests).
    Kernel {
        kernel: PathBuf,
        initrd: PathBuf,
        append: String,
    },
    /// Disks: the first boots; an optional CD (a cidata config drive).
    Disk {
        disks: Vec<(PathBuf, &'static str)>,
        cdrom: Option<PathBuf>,
    },
}

/// One guest, whichever hypervisor runs it.
#[derive(Debug, Clone)]
pub struct GuestSpec {
    /// Unique on this host while the guest lives (bhyve's VM name).
    pub name: String,
    pub cpus: u32,
    pub mem_mib: u32,
    /// First serial port, as a file the runner tails: the console.
    pub console: PathBuf,
    /// Second serial port: the journal stream.
    pub port: PathBuf,
    /// Where the machine keeps what else it needs (QMP socket, its log).
    pub dir: PathBuf,
    /// Prefix of those files, so that a second boot in `dir` keeps its own.
    pub prefix: String,
    pub boot: Boot,
    /// How long starting may take (bhyveload waits out the loader's menu).
    pub start_timeout: Duration,
}

/// A hypervisor that can run guests side by side.
pub trait Hypervisor: Send + Sync {
    /// Start a guest; the runner then watches its console and port files.
    fn start(&self, spec: &GuestSpec) -> anyhow::Result<Box<dyn RunningGuest>>;
    /// The guest's root disk made from `image` in `dir`, which the image
    /// itself never becomes: its path and format.
    fn root_disk(&self, image: &Path, dir: &Path) -> anyhow::Result<(PathBuf, &'static str)>;
    /// For reports: "qemu (kvm)", "bhyve".
    fn label(&self) -> String;
    fn kind(&self) -> HypervisorKind;
    /// QEMU's accelerator as resolved; `Auto` for hypervisors without one.
    fn accel(&self) -> Accel {
        Accel::Auto
    }
    /// Why that accelerator (empty for hypervisors without a choice).
    fn accel_why(&self) -> String {
        String::new()
    }
    /// A guest printed nothing on its console: if `auto` chose an
    /// accelerator that may be why, the rest of the run uses the fallback;
    /// what to say, the first time only.
    fn fall_back(&self, _why: &str) -> Option<String> {
        None
    }
}

/// What the runner does to a running guest.
pub trait RunningGuest: Send {
    /// Has the machine ended (the guest powered off, rebooted or died)?
    fn exited(&mut self) -> anyhow::Result<bool>;
    /// Make the guest print its state: the hang path.
    fn nmi(&mut self) -> anyhow::Result<()>;
    /// End it now and free what it held; also what dropping it does.
    fn stop(&mut self);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HypervisorKind {
    /// bhyve for FreeBSD guests on a FreeBSD host that has it, else QEMU.
    #[default]
    Auto,
    Qemu,
    /// FreeBSD's hypervisor (FreeBSD hosts; FreeBSD guests).
    Bhyve,
}

/// Settings of the hypervisors, as the command line gave them.
#[derive(Debug, Clone)]
pub struct HypervisorConfig {
    pub kind: HypervisorKind,
    pub qemu: PathBuf,
    pub accel: Accel,
    /// bhyve: boot through this UEFI firmware instead of bhyveload.
    pub firmware: Option<PathBuf>,
}

/// A name for a guest no other guest of this process has had: bhyve's VM
/// names are host-wide, and `vm ab --parallel 2` runs two runners at once.
pub fn guest_name(what: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("ifstress-{}-{n}{what}", std::process::id())
}
