//! QEMU: the command line of a guest, the accelerator choice, and the QMP
//! monitor (NMI injection, quit). Only `std::process` and a Unix socket: the
//! machine description is data, tested as such.

use anyhow::{Context, anyhow, bail};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use crate::model::Accel;

pub use super::machine::Boot;
use super::machine::{GuestSpec, Hypervisor, HypervisorKind, RunningGuest};

#[derive(Debug, Clone)]
pub struct Machine {
    pub qemu: PathBuf,
    pub accel: Accel,
    pub cpus: u32,
    pub mem_mib: u32,
    /// First serial port: the console.
    pub console: PathBuf,
    /// Second serial port: the journal stream.
    pub port: PathBuf,
    pub qmp: PathBuf,
    pub boot: Boot,
}

impl Machine {
    pub fn argv(&self) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
        let (accel, cpu) = match self.accel {
            Accel::Kvm => ("kvm", "host"),
            _ => ("tcg", "max"),
        };
        push(&["-machine", &format!("q35,accel={accel}"), "-cpu", cpu]);
        push(&[
            "-smp",
            &self.cpus.to_string(),
            "-m",
            &self.mem_mib.to_string(),
        ]);
        // No default devices, no network, no display: nothing the guest can
        // reach but its own disks and the two serial ports.
        push(&["-nodefaults", "-no-user-config", "-display", "none"]);
        // A reboot (after a panic) ends QEMU; the manager decides what next.
        push(&["-no-reboot"]);
        push(&["-serial", &format!("file:{}", self.console.display())]);
        push(&["-serial", &format!("file:{}", self.port.display())]);
        push(&[
            "-qmp",
            &format!("unix:{},server=on,wait=off", self.qmp.display()),
        ]);
        match &self.boot {
            Boot::Kernel {
                kernel,
                initrd,
                append,
            } => push(&[
                "-kernel",
                &kernel.display().to_string(),
                "-initrd",
                &initrd.display().to_string(),
                "-append",
                append,
            ]),
            Boot::Disk { disks, cdrom } => {
                for (d, fmt) in disks {
                    push(&[
                        "-drive",
                        &format!("file={},if=virtio,format={fmt}", d.display()),
                    ]);
                }
                if let Some(c) = cdrom {
                    push(&["-cdrom", &c.display().to_string()]);
                }
            }
        }
        a
    }
}

/// QEMU as a `Hypervisor`, its accelerator resolved; `auto`'s KVM can
/// still fall back to TCG while guests run (`Hypervisor::fall_back`).
pub struct Qemu {
    qemu: PathBuf,
    choice: std::sync::Mutex<super::accel::Choice>,
    auto: bool,
}

impl Qemu {
    /// `want` resolved now (`auto` probes once per process).
    pub fn new(qemu: PathBuf, want: Accel) -> Qemu {
        Qemu {
            choice: std::sync::Mutex::new(super::accel::resolve(&qemu, want)),
            auto: want == Accel::Auto,
            qemu,
        }
    }

    fn choice(&self) -> super::accel::Choice {
        self.choice
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn machine(&self, spec: &GuestSpec) -> Machine {
        Machine {
            qemu: self.qemu.clone(),
            accel: self.accel(),
            cpus: spec.cpus,
            mem_mib: spec.mem_mib,
            console: spec.console.clone(),
            port: spec.port.clone(),
            qmp: spec.dir.join(format!("{}qmp.sock", spec.prefix)),
            boot: spec.boot.clone(),
        }
    }
}

impl Hypervisor for Qemu {
    fn start(&self, spec: &GuestSpec) -> anyhow::Result<Box<dyn RunningGuest>> {
        let m = self.machine(spec);
        let log = std::fs::File::create(spec.dir.join(format!("{}qemu.log", spec.prefix)))?;
        let child = Command::new(&m.qemu)
            .args(m.argv())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", m.qemu.display()))?;
        Ok(Box::new(QemuGuest {
            child,
            qmp: m.qmp,
            done: false,
        }))
    }

    fn root_disk(&self, image: &Path, dir: &Path) -> anyhow::Result<(PathBuf, &'static str)> {
        let disk = dir.join("root.qcow2");
        super::freebsd_guest::overlay(image, &disk)?;
        Ok((disk, "qcow2"))
    }

    fn label(&self) -> String {
        format!(
            "qemu ({})",
            if self.accel() == Accel::Kvm {
                "kvm"
            } else {
                "tcg"
            }
        )
    }

    fn kind(&self) -> HypervisorKind {
        HypervisorKind::Qemu
    }

    fn accel(&self) -> Accel {
        self.choice().accel
    }

    fn accel_why(&self) -> String {
        self.choice().why
    }

    fn fall_back(&self, why: &str) -> Option<String> {
        if !self.auto {
            return None;
        }
        let mut c = self.choice.lock().unwrap_or_else(|p| p.into_inner());
        if c.accel != Accel::Kvm {
            return None;
        }
        // The process's choice too: later runs (bench, repro steps) start
        // on TCG. Another runner may have turned it already.
        *c = super::accel::fall_back(&self.qemu, why)
            .unwrap_or_else(|| super::accel::fallen_back(why));
        Some(c.why.clone())
    }
}

struct QemuGuest {
    child: std::process::Child,
    qmp: PathBuf,
    done: bool,
}

impl RunningGuest for QemuGuest {
    fn exited(&mut self) -> anyhow::Result<bool> {
        self.done = self.done || self.child.try_wait()?.is_some();
        Ok(self.done)
    }

    fn nmi(&mut self) -> anyhow::Result<()> {
        Qmp::connect(&self.qmp, Duration::from_secs(5))?.execute("inject-nmi")?;
        Ok(())
    }

    fn stop(&mut self) {
        if !self.done {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.done = true;
        }
    }
}

impl Drop for QemuGuest {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A QMP session: greeting, capabilities, then commands.
pub struct Qmp {
    w: UnixStream,
    r: BufReader<UnixStream>,
}

impl Qmp {
    pub fn connect(path: &Path, within: Duration) -> anyhow::Result<Qmp> {
        let t0 = Instant::now();
        let s = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if t0.elapsed() > within => {
                    return Err(e).with_context(|| format!("connecting to {}", path.display()));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut q = Qmp {
            r: BufReader::new(s.try_clone()?),
            w: s,
        };
        let mut greeting = String::new();
        q.r.read_line(&mut greeting)?;
        if !greeting.contains("QMP") {
            bail!("not a QMP greeting: {}", greeting.trim());
        }
        q.execute("qmp_capabilities")?;
        Ok(q)
    }

    /// Run a command; its `return` or its error.
    pub fn execute(&mut self, cmd: &str) -> anyhow::Result<serde_json::Value> {
        writeln!(self.w, "{}", serde_json::json!({ "execute": cmd }))?;
        loop {
            let mut line = String::new();
            if self.r.read_line(&mut line)? == 0 {
                bail!("QMP closed during {cmd}");
            }
            let v: serde_json::Value = serde_json::from_str(line.trim())
                .with_context(|| format!("QMP answer to {cmd}"))?;
            if let Some(r) = v.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = v.get("error") {
                return Err(anyhow!("QMP {cmd}: {e}"));
            }
            // An event (GUEST_PANICKED, RESET ...): not our answer.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(boot: Boot) -> Machine {
        Machine {
            qemu: "qemu-system-x86_64".into(),
            accel: Accel::Tcg,
            cpus: 2,
            mem_mib: 1024,
            console: "/o/console.log".into(),
            port: "/o/journal.log".into(),
            qmp: "/o/qmp.sock".into(),
            boot,
        }
    }

    #[test]
    fn kernel_boot_has_two_serial_ports_qmp_and_no_network() {
        let a = machine(Boot::Kernel {
            kernel: "/k".into(),
            initrd: "/i".into(),
            append: "console=ttyS0 panic=-1".into(),
        })
        .argv();
        let s = a.join(" ");
        assert!(
            s.contains("-machine q35,accel=tcg -cpu max -smp 2 -m 1024"),
            "{s}"
        );
        assert!(
            s.contains("-serial file:/o/console.log -serial file:/o/journal.log"),
            "{s}"
        );
        assert!(
            s.contains("-qmp unix:/o/qmp.sock,server=on,wait=off"),
            "{s}"
        );
        assert!(s.contains("-nodefaults") && s.contains("-no-reboot"), "{s}");
        assert!(!s.contains("-netdev") && !s.contains("-nic"), "{s}");
        let i = a.iter().position(|x| x == "-append").unwrap();
        assert_eq!(a[i + 1], "console=ttyS0 panic=-1");
    }

    #[test]
    fn disk_boot_attaches_disks_in_order_and_the_config_drive() {
        let mut m = machine(Boot::Disk {
            disks: vec![
                ("/o/root.qcow2".into(), "qcow2"),
                ("/o/payload.img".into(), "raw"),
            ],
            cdrom: Some("/o/cidata.iso".into()),
        });
        m.accel = Accel::Kvm;
        let s = m.argv().join(" ");
        assert!(s.contains("accel=kvm -cpu host"), "{s}");
        let root = s.find("file=/o/root.qcow2,if=virtio,format=qcow2").unwrap();
        let payload = s.find("file=/o/payload.img,if=virtio,format=raw").unwrap();
        assert!(root < payload);
        assert!(s.ends_with("-cdrom /o/cidata.iso"), "{s}");
    }
}
