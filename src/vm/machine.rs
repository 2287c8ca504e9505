//! The seam between the guest runner and a hypervisor: what a guest is made
//! of (`GuestSpec`), how one is started (`Hypervisor`) and what the runner
//! can do to a running one (`RunningGuest`). The runner reads the console and
//! the journal port as files either way: QEMU writes them itself, bhyve's
//! nmdm(4) ports are copied into them by the bhyve machine.

use super::GuestOs;
use super::qemu::Accel;
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

/// Is bhyve usable here? vmm(4) must be loaded: 15.0 makes /dev/vmmctl
/// then (sys/dev/vmm/vmm_dev.c, vmmdev_init); on 14.x /dev/vmm appears only
/// with a first VM, so ask kldstat(8).
fn bhyve_here() -> bool {
    cfg!(target_os = "freebsd")
        && super::which("bhyve").is_some()
        && (Path::new("/dev/vmmctl").exists()
            || std::process::Command::new("kldstat")
                .args(["-q", "-m", "vmm"])
                .status()
                .is_ok_and(|s| s.success()))
}

/// A name for a guest no other guest of this process has had: bhyve's VM
/// names are host-wide, and `vm ab --parallel 2` runs two runners at once.
pub fn guest_name(what: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("ifstress-{}-{n}{what}", std::process::id())
}

/// The hypervisor a run uses for `image`, with a note on how `auto`
/// decided. Bad combinations are bad input: the caller maps `UsageError`
/// to exit 2.
pub fn select(
    cfg: &HypervisorConfig,
    guest: GuestOs,
    image: &Path,
) -> Result<(Box<dyn Hypervisor>, Option<String>), crate::error::UsageError> {
    let raw = !super::bhyve::is_qcow2(image);
    let kind = match cfg.kind {
        // bhyve reads raw images only: a qcow2 one goes to QEMU.
        HypervisorKind::Auto if guest == GuestOs::Freebsd && raw && bhyve_here() => {
            HypervisorKind::Bhyve
        }
        HypervisorKind::Auto => HypervisorKind::Qemu,
        k => k,
    };
    match kind {
        HypervisorKind::Bhyve => {
            if guest != GuestOs::Freebsd {
                return Err(crate::error::UsageError(
                    "--hypervisor bhyve runs FreeBSD guests only (a Linux vmlinuz has no loader bhyve can start)".into(),
                ));
            }
            if !cfg!(target_os = "freebsd") {
                return Err(crate::error::UsageError(
                    "--hypervisor bhyve runs on FreeBSD hosts only".into(),
                ));
            }
            if !raw {
                return Err(crate::error::UsageError(format!(
                    "--image {}: bhyve needs a raw image (vm/fetch-image.sh RELEASE DIR raw, or qemu-img convert -O raw)",
                    image.display()
                )));
            }
            let note = (cfg.kind == HypervisorKind::Auto)
                .then(|| "bhyve found with vmm(4) loaded: guests run under bhyve".to_string());
            Ok((
                Box::new(super::bhyve::Bhyve {
                    firmware: cfg.firmware.clone(),
                }),
                note,
            ))
        }
        _ => {
            if cfg.firmware.is_some() {
                return Err(crate::error::UsageError(
                    "--firmware is for bhyve guests".into(),
                ));
            }
            let (accel, note) = super::qemu::resolve_accel(&cfg.qemu, cfg.accel);
            Ok((
                Box::new(super::qemu::Qemu {
                    qemu: cfg.qemu.clone(),
                    accel,
                }),
                note,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(kind: HypervisorKind, firmware: bool) -> HypervisorConfig {
        HypervisorConfig {
            kind,
            qemu: "qemu-system-x86_64".into(),
            accel: Accel::Tcg,
            firmware: firmware.then(|| "/fw.fd".into()),
        }
    }

    fn err(r: Result<(Box<dyn Hypervisor>, Option<String>), crate::error::UsageError>) -> String {
        match r {
            Ok((h, _)) => panic!("expected a usage error, got {}", h.label()),
            Err(e) => e.0,
        }
    }

    #[test]
    fn bad_combinations_are_usage_errors_and_auto_is_qemu_for_linux_guests() {
        let e = err(select(
            &cfg(HypervisorKind::Bhyve, false),
            GuestOs::Linux,
            Path::new("/none"),
        ));
        assert!(e.contains("FreeBSD guests only"), "{e}");
        let e = err(select(
            &cfg(HypervisorKind::Qemu, true),
            GuestOs::Freebsd,
            Path::new("/none"),
        ));
        assert!(e.contains("--firmware"), "{e}");
        let (h, _) = select(
            &cfg(HypervisorKind::Auto, false),
            GuestOs::Linux,
            Path::new("/none"),
        )
        .unwrap();
        assert_eq!(h.kind(), HypervisorKind::Qemu);
        assert_eq!(h.label(), "qemu (tcg)");
        #[cfg(not(target_os = "freebsd"))]
        {
            let e = err(select(
                &cfg(HypervisorKind::Bhyve, false),
                GuestOs::Freebsd,
                Path::new("/none"),
            ));
            assert!(e.contains("FreeBSD hosts only"), "{e}");
            // Not a FreeBSD host: auto never picks bhyve.
            let (h, _) = select(
                &cfg(HypervisorKind::Auto, false),
                GuestOs::Freebsd,
                Path::new("/none"),
            )
            .unwrap();
            assert_eq!(h.kind(), HypervisorKind::Qemu);
        }
        // Names never repeat within a process.
        let (a, b) = (guest_name(""), guest_name("k"));
        assert_ne!(a, b[..b.len() - 1]);
        assert!(a.starts_with(&format!("ifstress-{}-", std::process::id())));
    }
}
