//! Which hypervisor runs a run's guests: `--hypervisor` resolved against
//! the host (is bhyve usable here?) and the image (bhyve reads raw only).

use super::machine::{Hypervisor, HypervisorConfig, HypervisorKind};
use crate::model::{Accel, GuestOs};
use std::path::Path;

/// Is bhyve usable here? vmm(4) must be loaded: 15.0 makes /dev/vmmctl
/// then (sys/dev/vmm/vmm_dev.c, vmmdev_init); on 14.x /dev/vmm appears only
/// with a first VM, so ask kldstat(8).
fn bhyve_here() -> bool {
    cfg!(target_os = "freebsd")
        && super::host::which("bhyve").is_some()
        && (Path::new("/dev/vmmctl").exists()
            || std::process::Command::new("kldstat")
                .args(["-q", "-m", "vmm"])
                .status()
                .is_ok_and(|s| s.success()))
}

/// nmdm(4) is a module, not in GENERIC: without it bhyve's console pairs
/// cannot be opened (ENOENT). Load it unless it is there (`kldload -n`);
/// `Err` says why it is not.
fn nmdm_ready() -> Result<(), String> {
    if !cfg!(target_os = "freebsd") {
        return Err("not a FreeBSD host".into());
    }
    let loaded = || {
        std::process::Command::new("kldstat")
            .args(["-q", "-m", "nmdm"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if loaded() {
        return Ok(());
    }
    match std::process::Command::new("kldload")
        .args(["-n", "nmdm"])
        .output()
    {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "kldload nmdm: {}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .next()
                .unwrap_or("failed")
        )),
        Err(e) => Err(format!("kldload nmdm: {e}")),
    }
}

/// What `auto` picks for a FreeBSD raw image: bhyve when it is usable and
/// its consoles can be made, else QEMU with a one-line reason.
fn auto_for_freebsd(
    bhyve: bool,
    nmdm: impl FnOnce() -> Result<(), String>,
) -> (HypervisorKind, Option<String>) {
    if !bhyve {
        return (HypervisorKind::Qemu, None);
    }
    match nmdm() {
        Ok(()) => (
            HypervisorKind::Bhyve,
            Some("bhyve found with vmm(4) loaded: guests run under bhyve".into()),
        ),
        Err(why) => (
            HypervisorKind::Qemu,
            Some(format!(
                "bhyve not used: its consoles need nmdm(4) ({why}); guests run under QEMU"
            )),
        ),
    }
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
    let (kind, auto_note) = match cfg.kind {
        // bhyve reads raw images only: a qcow2 one goes to QEMU.
        HypervisorKind::Auto if guest == GuestOs::Freebsd && raw => {
            auto_for_freebsd(bhyve_here(), nmdm_ready)
        }
        HypervisorKind::Auto => (HypervisorKind::Qemu, None),
        k => (k, None),
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
            if cfg.kind == HypervisorKind::Bhyve
                && let Err(why) = nmdm_ready()
            {
                return Err(crate::error::UsageError(format!(
                    "--hypervisor bhyve: its consoles need nmdm(4): {why}"
                )));
            }
            Ok((
                Box::new(super::bhyve::Bhyve {
                    firmware: cfg.firmware.clone(),
                }),
                auto_note,
            ))
        }
        _ => {
            if cfg.firmware.is_some() {
                return Err(crate::error::UsageError(
                    "--firmware is for bhyve guests".into(),
                ));
            }
            let q = super::qemu::Qemu::new(cfg.qemu.clone(), cfg.accel);
            // `auto` says why it is not KVM; a named accelerator needs no word.
            let note = (cfg.accel == Accel::Auto && q.accel() == Accel::Tcg).then(|| q.accel_why());
            let note = match (auto_note, note) {
                (Some(a), Some(b)) => Some(format!("{a}; {b}")),
                (a, b) => a.or(b),
            };
            Ok((Box::new(q), note))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Accel;
    use crate::vm::machine::guest_name;

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

    #[test]
    fn auto_uses_bhyve_only_when_nmdm_is_there_and_says_why_not() {
        let (k, n) = auto_for_freebsd(true, || Ok(()));
        assert_eq!(k, HypervisorKind::Bhyve);
        assert!(n.unwrap().contains("bhyve"));
        let (k, n) = auto_for_freebsd(true, || Err("kldload nmdm: no such file".into()));
        assert_eq!(k, HypervisorKind::Qemu);
        let n = n.unwrap();
        assert!(
            n.contains("nmdm(4)") && n.contains("QEMU") && !n.contains('\n'),
            "{n}"
        );
        // No bhyve: nmdm is not even looked at.
        let (k, n) = auto_for_freebsd(false, || panic!("asked for nmdm"));
        assert_eq!((k, n), (HypervisorKind::Qemu, None));
    }
}
