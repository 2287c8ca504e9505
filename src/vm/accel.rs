//! QEMU's accelerator for `auto`: KVM only when a probe guest has run code
//! under it. /dev/kvm can open and QEMU can start a KVM machine on a host
//! whose vCPUs never run guest code in protected mode (nested setups without
//! hardware virtualisation): a paused guest proves nothing there, and a real
//! guest spins with an empty console. So the probe boots a 64 KiB firmware
//! (`vm/accel-probe.S`) that walks real, protected and long mode, printing
//! on COM1 as it goes, and KVM is chosen only when it printed its marker.
//! The choice holds for the process; a KVM guest that later prints nothing
//! turns it to TCG (`fall_back`).

use crate::model::Accel;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The accelerator guests run with, and why (the report's `vm.accel_why`).
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub accel: Accel,
    pub why: String,
}

/// `vm/accel-probe.S` assembled, up to its GDT pointer; the rest of the
/// image is `hlt` but for the reset vector's jump.
const PROBE_CODE: [u8; 246] = [
    0xfa, 0xba, 0xf8, 0x03, 0xb0, 0x52, 0xee, 0x31, 0xc0, 0x8e, 0xd8, 0x2e, 0x66, 0x0f, 0x01, 0x16,
    0xf0, 0x00, 0x0f, 0x20, 0xc0, 0x66, 0x83, 0xc8, 0x01, 0x0f, 0x22, 0xc0, 0x66, 0xea, 0x24, 0x00,
    0xff, 0xff, 0x08, 0x00, 0x66, 0xb8, 0x10, 0x00, 0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xd0, 0xb0, 0x50,
    0xee, 0xbf, 0x00, 0x10, 0x00, 0x00, 0x31, 0xc0, 0xb9, 0x00, 0x10, 0x00, 0x00, 0xf3, 0xab, 0xc7,
    0x05, 0x00, 0x10, 0x00, 0x00, 0x03, 0x20, 0x00, 0x00, 0xc7, 0x05, 0x00, 0x20, 0x00, 0x00, 0x03,
    0x30, 0x00, 0x00, 0xc7, 0x05, 0x18, 0x20, 0x00, 0x00, 0x03, 0x40, 0x00, 0x00, 0xc7, 0x05, 0x00,
    0x30, 0x00, 0x00, 0x83, 0x00, 0x00, 0x00, 0xc7, 0x05, 0xf8, 0x4f, 0x00, 0x00, 0x83, 0x00, 0xe0,
    0xff, 0x0f, 0x20, 0xe0, 0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0, 0xb8, 0x00, 0x10, 0x00, 0x00, 0x0f,
    0x22, 0xd8, 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32, 0x0d, 0x00, 0x01, 0x00, 0x00, 0x0f, 0x30,
    0x0f, 0x20, 0xc0, 0x0d, 0x00, 0x00, 0x00, 0x80, 0x0f, 0x22, 0xc0, 0xea, 0xa2, 0x00, 0xff, 0xff,
    0x18, 0x00, 0x66, 0xba, 0xf8, 0x03, 0xb0, 0x4c, 0xee, 0x48, 0x8d, 0x35, 0x0c, 0x00, 0x00, 0x00,
    0xac, 0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8, 0xfa, 0xf4, 0xeb, 0xfc, 0x0a, 0x49, 0x46, 0x53,
    0x54, 0x52, 0x45, 0x53, 0x53, 0x2d, 0x50, 0x52, 0x4f, 0x42, 0x45, 0x0a, 0x00, 0x8d, 0x74, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xcf, 0x00,
    0xff, 0xff, 0x00, 0x00, 0x00, 0x92, 0xcf, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xaf, 0x00,
    0x1f, 0x00, 0xd0, 0x00, 0xff, 0xff,
];
/// At 0xFFF0 (0xFFFFFFF0, where the CPU starts): `jmp` to offset 0.
const RESET_JUMP: [u8; 3] = [0xe9, 0x0d, 0x00];
const MARKER: &str = "IFSTRESS-PROBE";

/// How long QEMU may take to start and the probe to print its first byte.
pub const FIRST_BYTE: Duration = Duration::from_secs(5);
/// After the first byte, the rest takes microseconds on any accelerator
/// that runs it; this is slack for a loaded host.
pub const REST: Duration = Duration::from_secs(1);

/// The 64 KiB firmware image.
pub fn firmware() -> Vec<u8> {
    let mut v = vec![0xf4; 0x10000];
    v[..PROBE_CODE.len()].copy_from_slice(&PROBE_CODE);
    v[0xfff0..0xfff3].copy_from_slice(&RESET_JUMP);
    v
}

/// What one probe guest did.
#[derive(Debug, Clone)]
pub struct Probe {
    /// What it printed on COM1.
    pub printed: String,
    pub elapsed: Duration,
    /// QEMU ended by itself: the first line it wrote to stderr.
    pub exited: Option<String>,
}

impl Probe {
    pub fn ran(&self) -> bool {
        self.printed.contains(MARKER)
    }

    /// How far the vCPU got, in words.
    pub fn reached(&self) -> &'static str {
        let p = self.printed.as_str();
        if self.ran() {
            "long mode"
        } else if p.contains('L') {
            "long mode, but not its output"
        } else if p.contains('P') {
            "protected mode only"
        } else if p.contains('R') {
            "real mode only"
        } else {
            "no guest code at all"
        }
    }
}

/// Boot the probe under `accel` ("kvm" or "tcg") and watch its serial port:
/// up to `first` for the first byte, then up to `rest` for the marker.
pub fn probe(qemu: &Path, accel: &str, first: Duration, rest: Duration) -> std::io::Result<Probe> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ifstress-accel-probe-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    let r = probe_in(&dir, qemu, accel, first, rest);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn probe_in(
    dir: &Path,
    qemu: &Path,
    accel: &str,
    first: Duration,
    rest: Duration,
) -> std::io::Result<Probe> {
    let bios = dir.join("probe.fd");
    let serial = dir.join("serial");
    std::fs::write(&bios, firmware())?;
    let cpu = if accel == "kvm" { "host" } else { "max" };
    let mut child = Command::new(qemu)
        .args(["-machine", &format!("q35,accel={accel}"), "-cpu", cpu])
        .args(["-m", "16", "-nodefaults", "-no-user-config"])
        .args(["-display", "none", "-no-reboot", "-bios"])
        .arg(&bios)
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let t0 = Instant::now();
    let mut printed = String::new();
    let mut first_at: Option<Instant> = None;
    let mut exited = None;
    loop {
        std::thread::sleep(Duration::from_millis(10));
        if let Ok(b) = std::fs::read(&serial) {
            printed = String::from_utf8_lossy(&b).into_owned();
        }
        if !printed.is_empty() {
            first_at.get_or_insert_with(Instant::now);
        }
        if printed.contains(MARKER) {
            break;
        }
        if let Some(_status) = child.try_wait()? {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            exited = Some(err.lines().next().unwrap_or("exited").trim().to_string());
            if let Ok(b) = std::fs::read(&serial) {
                printed = String::from_utf8_lossy(&b).into_owned();
            }
            break;
        }
        let late = match first_at {
            Some(at) => at.elapsed() > rest,
            None => t0.elapsed() > first,
        };
        if late {
            break;
        }
    }
    let elapsed = t0.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    Ok(Probe {
        printed,
        elapsed,
        exited,
    })
}

/// Whether the host's CPU shows hardware virtualisation (Linux only; a
/// guest CPU may hide it and still have nested KVM).
fn cpu_flags_note() -> &'static str {
    match std::fs::read_to_string("/proc/cpuinfo") {
        Ok(s) => {
            let flags = s.lines().find(|l| l.starts_with("flags")).unwrap_or("");
            if flags.split_whitespace().any(|f| f == "vmx" || f == "svm") {
                "the CPU shows vmx/svm"
            } else {
                "the CPU shows no vmx/svm"
            }
        }
        Err(_) => "CPU flags unknown",
    }
}

/// The decision for `auto` from a probe: KVM only if it ran to its marker.
pub fn decide(p: &Probe) -> Choice {
    if p.ran() {
        return Choice {
            accel: Accel::Kvm,
            why: format!(
                "auto: a probe guest ran real, protected and long mode under KVM in {:.2} s",
                p.elapsed.as_secs_f64()
            ),
        };
    }
    let mut why = format!(
        "auto: KVM did not run the probe guest (it reached {} in {:.1} s; {})",
        p.reached(),
        p.elapsed.as_secs_f64(),
        cpu_flags_note()
    );
    if let Some(e) = &p.exited {
        why.push_str(&format!("; QEMU: {e}"));
    }
    why.push_str(": using TCG");
    Choice {
        accel: Accel::Tcg,
        why,
    }
}

/// Choices made in this process, by QEMU binary.
static CHOSEN: Mutex<Vec<(PathBuf, Choice)>> = Mutex::new(Vec::new());

/// The accelerator for `want`: asked for by name, or `auto`'s probed and
/// cached choice.
pub fn resolve(qemu: &Path, want: Accel) -> Choice {
    if want != Accel::Auto {
        return Choice {
            accel: want,
            why: format!("--accel {}", if want == Accel::Kvm { "kvm" } else { "tcg" }),
        };
    }
    let mut chosen = CHOSEN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, c)) = chosen.iter().find(|(q, _)| q == qemu) {
        return c.clone();
    }
    let c = choose(qemu);
    chosen.push((qemu.to_path_buf(), c.clone()));
    c
}

fn choose(qemu: &Path) -> Choice {
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        return Choice {
            accel: Accel::Tcg,
            why: format!("auto: no usable /dev/kvm ({e}): using TCG"),
        };
    }
    match probe(qemu, "kvm", FIRST_BYTE, REST) {
        Ok(p) => decide(&p),
        Err(e) => Choice {
            accel: Accel::Tcg,
            why: format!(
                "auto: could not start {} for the KVM probe ({e}): using TCG",
                qemu.display()
            ),
        },
    }
}

/// A KVM guest `auto` chose printed nothing: TCG for the rest of the
/// process. The new choice, or `None` when `auto` had not chosen KVM.
pub fn fall_back(qemu: &Path, why: &str) -> Option<Choice> {
    let mut chosen = CHOSEN.lock().unwrap_or_else(|p| p.into_inner());
    let c = chosen
        .iter_mut()
        .find(|(q, c)| q == qemu && c.accel == Accel::Kvm)?;
    c.1 = fallen_back(why);
    Some(c.1.clone())
}

/// TCG after `auto`'s KVM ran a guest that printed nothing (`why`).
pub fn fallen_back(why: &str) -> Choice {
    Choice {
        accel: Accel::Tcg,
        why: format!("auto: KVM passed the probe, but {why}: TCG from then on"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(printed: &str, exited: Option<&str>) -> Probe {
        Probe {
            printed: printed.into(),
            elapsed: Duration::from_millis(1200),
            exited: exited.map(Into::into),
        }
    }

    #[test]
    fn only_a_probe_that_printed_its_marker_chooses_kvm() {
        let c = decide(&p("RPL\nIFSTRESS-PROBE\n", None));
        assert_eq!(c.accel, Accel::Kvm, "{}", c.why);
        for (printed, reached) in [
            ("", "no guest code at all"),
            ("R", "real mode only"),
            ("RP", "protected mode only"),
            ("RPL\nIFSTRESS-PRO", "long mode, but not its output"),
        ] {
            let c = decide(&p(printed, None));
            assert_eq!(c.accel, Accel::Tcg, "{printed:?}");
            assert!(c.why.contains(reached), "{}", c.why);
            assert!(c.why.ends_with(": using TCG"), "{}", c.why);
        }
        let c = decide(&p("", Some("failed to initialize kvm: Permission denied")));
        assert!(
            c.why.contains("QEMU: failed to initialize kvm"),
            "{}",
            c.why
        );
    }

    #[test]
    fn the_firmware_jumps_from_the_reset_vector_to_its_code() {
        let f = firmware();
        assert_eq!(f.len(), 0x10000);
        assert_eq!(f[0], 0xfa, "cli first");
        assert_eq!(&f[0xfff0..0xfff3], &RESET_JUMP);
        // rel16 from the jump's end (0xfff3) wraps to offset 0.
        let rel = u16::from_le_bytes([RESET_JUMP[1], RESET_JUMP[2]]);
        assert_eq!(0xfff3u16.wrapping_add(rel), 0);
        assert!(String::from_utf8_lossy(&f).contains(MARKER));
    }

    /// A QEMU that starts and never runs anything: the probe gives up after
    /// `first` and the decision is TCG.
    #[test]
    fn a_silent_qemu_is_tcg_within_the_bound() {
        let d = tempfile::tempdir().unwrap();
        let fake = d.path().join("qemu");
        std::fs::write(&fake, "#!/bin/sh\nexec sleep 30\n").unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let t0 = Instant::now();
        let pr = probe(&fake, "kvm", Duration::from_millis(800), REST).unwrap();
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        assert!(pr.exited.is_none() && pr.printed.is_empty(), "{pr:?}");
        let c = decide(&pr);
        assert_eq!(c.accel, Accel::Tcg);
        assert!(c.why.contains("no guest code at all"), "{}", c.why);
    }

    /// A QEMU that prints the first stage and stops (what KVM without
    /// hardware virtualisation does): the probe waits `rest`, not `first`.
    #[test]
    fn a_probe_stuck_after_its_first_byte_ends_early() {
        let d = tempfile::tempdir().unwrap();
        let fake = d.path().join("qemu");
        // The serial file is the argument after -serial, "file:PATH".
        std::fs::write(
            &fake,
            "#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = -serial ] && f=${2#file:}; shift; done\nprintf R > \"$f\"\nexec sleep 30\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let t0 = Instant::now();
        let pr = probe(
            &fake,
            "kvm",
            Duration::from_secs(20),
            Duration::from_millis(300),
        )
        .unwrap();
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        assert_eq!(pr.reached(), "real mode only", "{pr:?}");
    }

    #[test]
    fn a_fall_back_turns_only_an_auto_kvm_choice_to_tcg() {
        let q = Path::new("/test/qemu-fall-back");
        assert!(fall_back(q, "a guest printed nothing").is_none());
        CHOSEN.lock().unwrap().push((
            q.to_path_buf(),
            Choice {
                accel: Accel::Kvm,
                why: "probe".into(),
            },
        ));
        let c = fall_back(q, "guest 1 printed nothing in 60 s").unwrap();
        assert_eq!(c.accel, Accel::Tcg);
        assert!(c.why.contains("guest 1 printed nothing"), "{}", c.why);
        assert_eq!(resolve(q, Accel::Auto), c, "cached for the process");
        assert!(fall_back(q, "again").is_none(), "said once");
    }
}
