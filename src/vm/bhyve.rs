//! bhyve(8) as a `Hypervisor`, for FreeBSD guests on FreeBSD hosts: the
//! guest's kernel is loaded by bhyveload(8) from its own disk (or the guest
//! boots UEFI firmware), COM1 and COM2 are nmdm(4) pairs copied into the
//! console and journal files, an NMI is `bhyvectl --inject-nmi`, and the VM
//! is destroyed with `bhyvectl --destroy` whenever it ends. The argument
//! lists are data, tested against bhyve(8)'s documented options.

use super::machine::{Boot, GuestSpec, Hypervisor, HypervisorKind, RunningGuest};
use super::nmdm::{self, PortCopy};
use anyhow::{Context, bail};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

pub struct Bhyve {
    /// UEFI firmware (edk2-bhyve's BHYVE_UEFI.fd); None: bhyveload.
    pub firmware: Option<PathBuf>,
}

/// The nmdm pairs of a start's two ports. Digits only: nmdm_clone() in
/// sys/dev/nmdm/nmdm.c takes any name today, but older releases parsed a
/// decimal unit. This process's id, the start's number (5 digits) and the
/// port make it unique among live runs.
fn ports(pid: u32, start: u64) -> [(PathBuf, PathBuf); 2] {
    [
        nmdm::pair(&format!("{pid}{start:05}0")),
        nmdm::pair(&format!("{pid}{start:05}1")),
    ]
}

/// bhyve's arguments: PCI slot 0 the host bridge, the disks in order from
/// slot 2 (the guest sees vtbd0, vtbd1 ... in this order, which the
/// first-boot script relies on), the config drive on AHCI, the LPC bridge
/// with the two COM ports at slot 31. No network device at all.
pub fn bhyve_argv(
    spec: &GuestSpec,
    firmware: Option<&Path>,
    com1: &Path,
    com2: &Path,
) -> anyhow::Result<Vec<String>> {
    let Boot::Disk { disks, cdrom } = &spec.boot else {
        bail!("bhyve boots disk images only");
    };
    let mut a: Vec<String> = Vec::new();
    let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
    push(&[
        "-c",
        &spec.cpus.to_string(),
        "-m",
        &format!("{}M", spec.mem_mib),
    ]);
    // -H: a halted vCPU yields the host CPU; -P: so does a spinning one;
    // -u: the RTC keeps UTC; -w: unknown MSRs are ignored, not fatal. No
    // -A: usr.sbin/bhyve/bhyve.8 (2023-10, 14.x) calls it obsolete, as
    // bhyve always generates ACPI tables; a no-op to pass.
    push(&["-H", "-P", "-u", "-w"]);
    push(&["-s", "0,hostbridge"]);
    let mut slot = 2;
    for (d, fmt) in disks {
        if *fmt != "raw" {
            bail!("bhyve reads raw disks only, not {fmt} ({})", d.display());
        }
        push(&["-s", &format!("{slot},virtio-blk,{}", d.display())]);
        slot += 1;
    }
    if let Some(c) = cdrom {
        push(&["-s", &format!("{slot},ahci-cd,{}", c.display())]);
    }
    push(&["-s", "31,lpc"]);
    push(&["-l", &format!("com1,{}", com1.display())]);
    push(&["-l", &format!("com2,{}", com2.display())]);
    if let Some(f) = firmware {
        push(&["-l", &format!("bootrom,{}", f.display())]);
    }
    push(&[&spec.name]);
    Ok(a)
}

/// bhyveload's arguments: the loader reads the kernel from the root disk,
/// with its own console on COM1's pair so its messages land in the log.
pub fn bhyveload_argv(spec: &GuestSpec, com1: &Path) -> anyhow::Result<Vec<String>> {
    let Boot::Disk { disks, .. } = &spec.boot else {
        bail!("bhyve boots disk images only");
    };
    let Some((root, _)) = disks.first() else {
        bail!("no root disk");
    };
    Ok(vec![
        "-c".into(),
        com1.display().to_string(),
        "-m".into(),
        format!("{}M", spec.mem_mib),
        "-d".into(),
        root.display().to_string(),
        spec.name.clone(),
    ])
}

pub fn nmi_argv(name: &str) -> Vec<String> {
    vec![format!("--vm={name}"), "--inject-nmi".into()]
}

pub fn destroy_argv(name: &str) -> Vec<String> {
    vec![format!("--vm={name}"), "--destroy".into()]
}

fn destroy(name: &str) {
    let _ = Command::new("bhyvectl")
        .args(destroy_argv(name))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Destroys the VM it names when dropped, unless disarmed: between
/// bhyveload creating the VM and bhyve running it, every early return
/// must not leave a VM in the kernel.
struct DestroyOnDrop(Option<String>);

impl Drop for DestroyOnDrop {
    fn drop(&mut self) {
        if let Some(n) = self.0.take() {
            destroy(&n);
        }
    }
}

/// Starts in this process: each gets nmdm pairs of its own.
static STARTS: AtomicU64 = AtomicU64::new(0);

impl Hypervisor for Bhyve {
    fn start(&self, spec: &GuestSpec) -> anyhow::Result<Box<dyn RunningGuest>> {
        let n = STARTS.fetch_add(1, Relaxed);
        let [(con_a, con_b), (port_a, port_b)] = ports(std::process::id(), n);
        // Everything that can fail without a VM, first.
        let argv = bhyve_argv(spec, self.firmware.as_deref(), &con_a, &port_a)?;
        let load_argv = match self.firmware {
            None => Some(bhyveload_argv(spec, &con_a)?),
            Some(_) => None,
        };
        let log_path = spec.dir.join(format!("{}bhyve.log", spec.prefix));
        let log = std::fs::File::create(&log_path)?;
        let (load_out, load_err, out) = (log.try_clone()?, log.try_clone()?, log.try_clone()?);
        let copies = vec![
            PortCopy::start(&con_b, &spec.console)?,
            PortCopy::start(&port_b, &spec.port)?,
        ];
        let mut vm = DestroyOnDrop(Some(spec.name.clone()));
        if let Some(load_argv) = load_argv {
            let mut load = Command::new("bhyveload")
                .args(load_argv)
                .stdin(Stdio::null())
                .stdout(load_out)
                .stderr(load_err)
                .spawn()
                .context("starting bhyveload")?;
            let t0 = Instant::now();
            let status = loop {
                let waited = load.try_wait();
                if let Ok(Some(s)) = waited {
                    break s;
                }
                if waited.is_err() || t0.elapsed() > spec.start_timeout {
                    let _ = load.kill();
                    let _ = load.wait();
                    bail!(
                        "bhyveload did not finish within {} s; see {}",
                        spec.start_timeout.as_secs(),
                        log_path.display()
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            };
            if !status.success() {
                bail!("bhyveload failed ({status}); see {}", log_path.display());
            }
        }
        let child = Command::new("bhyve")
            .args(argv)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(log)
            .spawn()
            .context("starting bhyve")?;
        // From here the guest's own stop() destroys it.
        vm.0 = None;
        Ok(Box::new(BhyveGuest {
            name: spec.name.clone(),
            child,
            copies,
            done: false,
            destroyed: false,
        }))
    }

    /// bhyve has no copy-on-write image format: each guest gets a sparse
    /// copy of the raw image (holes stay holes, so it costs what the
    /// image's data does, not its size).
    fn root_disk(&self, image: &Path, dir: &Path) -> anyhow::Result<(PathBuf, &'static str)> {
        let disk = dir.join("root.img");
        sparse_copy(image, &disk)?;
        Ok((disk, "raw"))
    }

    fn label(&self) -> String {
        match &self.firmware {
            Some(_) => "bhyve (uefi)".into(),
            None => "bhyve".into(),
        }
    }

    fn kind(&self) -> HypervisorKind {
        HypervisorKind::Bhyve
    }
}

struct BhyveGuest {
    name: String,
    child: Child,
    copies: Vec<PortCopy>,
    done: bool,
    destroyed: bool,
}

impl RunningGuest for BhyveGuest {
    fn exited(&mut self) -> anyhow::Result<bool> {
        // bhyve exits when the guest reboots (a panic's end), powers off
        // or halts; the VM stays in the kernel until destroyed.
        if !self.done && self.child.try_wait()?.is_some() {
            self.done = true;
            // What the guest wrote last is in the ports' buffers: copy it
            // out before the runner reads the files for the last time.
            for c in &mut self.copies {
                c.stop();
            }
        }
        Ok(self.done)
    }

    fn nmi(&mut self) -> anyhow::Result<()> {
        let o = Command::new("bhyvectl")
            .args(nmi_argv(&self.name))
            .stdin(Stdio::null())
            .output()
            .context("running bhyvectl")?;
        if !o.status.success() {
            bail!(
                "bhyvectl --inject-nmi: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
        Ok(())
    }

    fn stop(&mut self) {
        if !self.done {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.done = true;
        }
        if !self.destroyed {
            destroy(&self.name);
            self.destroyed = true;
        }
        for c in &mut self.copies {
            c.stop();
        }
    }
}

impl Drop for BhyveGuest {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Is this a qcow2 image (bhyve cannot read one)?
pub fn is_qcow2(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"QFI\xfb"
}

/// Copy `src` to `dst` leaving every all-zero MiB a hole.
pub fn sparse_copy(src: &Path, dst: &Path) -> anyhow::Result<()> {
    const CHUNK: usize = 1 << 20;
    let mut r = std::fs::File::open(src).with_context(|| format!("opening {}", src.display()))?;
    let mut w =
        std::fs::File::create(dst).with_context(|| format!("creating {}", dst.display()))?;
    let mut buf = vec![0u8; CHUNK];
    let mut len = 0u64;
    loop {
        let mut n = 0;
        while n < CHUNK {
            match r.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).with_context(|| format!("reading {}", src.display())),
            }
        }
        if n == 0 {
            break;
        }
        if buf[..n].iter().all(|b| *b == 0) {
            w.seek(SeekFrom::Current(n as i64))?;
        } else {
            w.write_all(&buf[..n])
                .with_context(|| format!("writing {}", dst.display()))?;
        }
        len += n as u64;
    }
    w.set_len(len)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(firmware: bool) -> (GuestSpec, Option<PathBuf>) {
        (
            GuestSpec {
                name: "ifstress-4242-3".into(),
                cpus: 4,
                mem_mib: 8192,
                console: "/o/console.log".into(),
                port: "/o/journal.log".into(),
                dir: "/o".into(),
                prefix: String::new(),
                boot: Boot::Disk {
                    disks: vec![
                        ("/o/root.img".into(), "raw"),
                        ("/o/payload.img".into(), "raw"),
                        ("/o/collect.img".into(), "raw"),
                    ],
                    cdrom: Some("/o/cidata.iso".into()),
                },
                start_timeout: Duration::from_secs(60),
            },
            firmware.then(|| "/usr/local/share/uefi-firmware/BHYVE_UEFI.fd".into()),
        )
    }

    #[test]
    fn bhyve_gets_disks_in_order_the_config_drive_two_com_ports_and_no_network() {
        let (s, fw) = spec(false);
        let [(c1, _), (c2, _)] = ports(4242, 3);
        let a = bhyve_argv(&s, fw.as_deref(), &c1, &c2).unwrap();
        let j = a.join(" ");
        assert!(
            j.starts_with("-c 4 -m 8192M -H -P -u -w -s 0,hostbridge"),
            "{j}"
        );
        let root = j.find("-s 2,virtio-blk,/o/root.img").unwrap();
        let pay = j.find("-s 3,virtio-blk,/o/payload.img").unwrap();
        let col = j.find("-s 4,virtio-blk,/o/collect.img").unwrap();
        assert!(root < pay && pay < col, "{j}");
        assert!(j.contains("-s 5,ahci-cd,/o/cidata.iso -s 31,lpc"), "{j}");
        assert!(
            j.contains("-l com1,/dev/nmdm4242000030A -l com2,/dev/nmdm4242000031A"),
            "{j}"
        );
        assert!(!j.contains("virtio-net") && !j.contains("tap") && !j.contains("bootrom"));
        // The VM name is the last argument (bhyve(8): `bhyve [options] vmname`).
        assert_eq!(a.last().unwrap(), "ifstress-4242-3");
        // Every option is one bhyve(8) documents.
        for w in a.iter().filter(|w| w.starts_with('-')) {
            assert!(
                ["-c", "-m", "-H", "-P", "-u", "-w", "-s", "-l"].contains(&w.as_str()),
                "{w}"
            );
        }
    }

    #[test]
    fn uefi_boot_adds_the_bootrom_and_bhyveload_reads_the_root_disk() {
        let (s, fw) = spec(true);
        let [(c1, _), (c2, _)] = ports(4242, 3);
        let j = bhyve_argv(&s, fw.as_deref(), &c1, &c2).unwrap().join(" ");
        assert!(
            j.contains("-l bootrom,/usr/local/share/uefi-firmware/BHYVE_UEFI.fd ifstress-4242-3"),
            "{j}"
        );
        assert_eq!(
            bhyveload_argv(&s, &c1).unwrap().join(" "),
            "-c /dev/nmdm4242000030A -m 8192M -d /o/root.img ifstress-4242-3"
        );
        assert_eq!(nmi_argv("v").join(" "), "--vm=v --inject-nmi");
        assert_eq!(destroy_argv("v").join(" "), "--vm=v --destroy");
    }

    #[test]
    fn a_qcow2_disk_or_a_kernel_boot_is_refused() {
        let (mut s, _) = spec(false);
        let [(c1, _), (c2, _)] = ports(4242, 3);
        if let Boot::Disk { disks, .. } = &mut s.boot {
            disks[0].1 = "qcow2";
        }
        let e = bhyve_argv(&s, None, &c1, &c2).unwrap_err();
        assert!(e.to_string().contains("raw disks only"), "{e}");
        s.boot = Boot::Kernel {
            kernel: "/k".into(),
            initrd: "/i".into(),
            append: String::new(),
        };
        assert!(bhyve_argv(&s, None, &c1, &c2).is_err());
        assert!(bhyveload_argv(&s, &c1).is_err());
    }

    #[test]
    fn a_sparse_copy_is_byte_identical_and_keeps_holes() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("img.raw");
        {
            let mut f = std::fs::File::create(&src).unwrap();
            f.write_all(b"QFI? not qcow2, a boot block").unwrap();
            f.seek(SeekFrom::Start(64 << 20)).unwrap();
            f.write_all(&[7u8; 3000]).unwrap();
            f.set_len((128 << 20) + 5).unwrap();
        }
        let dst = d.path().join("root.img");
        sparse_copy(&src, &dst).unwrap();
        assert_eq!(std::fs::read(&src).unwrap(), std::fs::read(&dst).unwrap());
        // Two MiB of data at most, not 128.
        assert!(std::fs::metadata(&dst).unwrap().blocks() * 512 <= 3 << 20);
        assert!(!is_qcow2(&dst));
        std::fs::write(d.path().join("q"), b"QFI\xfb\0\0\0\x03").unwrap();
        assert!(is_qcow2(&d.path().join("q")));
    }
}
