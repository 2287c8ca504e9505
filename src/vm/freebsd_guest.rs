//! FreeBSD guests from an official VM image, which is never modified: the
//! guest boots a qcow2 overlay of it; a `cidata` config drive (nuageinit, in
//! BASIC-CLOUDINIT images) carries a first-boot script; a raw payload disk
//! carries the ifstress binary as a tar stream; a raw collect disk comes back
//! with /var/crash as a tar stream after the crash-collection boot.
//!
//! Boot 1 (first boot): the script enables dumps and crashinfo, sets the
//! panic sysctls and a ddb script for NMIs, installs an rc.local for later
//! boots, unpacks the payload and starts the suite in the background with the
//! journal on the second serial port (/dev/cuau1).
//! Boot 2 (after a panic or a hang): savecore and crashinfo run from rc as
//! usual, then rc.local writes /var/crash to the collect disk and powers off.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// nuageinit's config drive: user-data (a shell script) and meta-data.
/// `kmods`: modules on the payload disk (`modules/NAME.ko`), loaded with
/// kldload after their parameters were set as kernel environment tunables
/// (FreeBSD modules read parameters as loader tunables at load time); one
/// that does not load ends the guest with a `module-failed` marker.
pub fn user_data(ifstress_args: &[String], kmods: &[super::guest_module::GuestModule]) -> String {
    let args: Vec<String> = ifstress_args
        .iter()
        .map(|a| super::host::shell_quote(a))
        .collect();
    let mut load = String::new();
    for m in kmods {
        let name = super::guest_module::module_name(&m.file);
        for p in &m.params {
            load.push_str(&format!(
                "kenv {} >/dev/null\n",
                super::host::shell_quote(p)
            ));
        }
        load.push_str(&format!(
            "if ! out=$(kldload /ifstress/modules/{name}.ko 2>&1); then\n  echo \"IFSTRESS-VM: module-failed {name}: $(echo $out) $(dmesg | tail -n 2 | tr '\\n' ' ')\" > /dev/console\n  rm -f /etc/rc.local\n  poweroff\n  exit 1\nfi\n"
        ));
    }
    format!(
        r#"#!/bin/sh
# Written by `ifstress vm`. Runs once, at first boot (nuageinit).
# No network is attached: firstboot updates and packages cannot run, and the
# first-boot update's reboot never happens.
sysrc firstboot_freebsd_update_enable=NO firstboot_pkgs_enable=NO
sysrc dumpdev=AUTO crashinfo_enable=YES
dumpon -v AUTO 2>/dev/null || true
sysctl debug.debugger_on_panic=0 debug.trace_on_panic=1 kern.panic_reboot_wait_time=0
# An NMI from the host (a hang) enters ddb: print what matters, dump, reset.
ddb script kdb.enter.default="show allpcpu; bt; ps; show alllocks; show lockedvnods; alltrace; call doadump; reset" 2>/dev/null || true
cat > /etc/rc.local <<'EOT'
#!/bin/sh
# Boots after the first: savecore and crashinfo have run; hand /var/crash over.
echo "IFSTRESS-VM: collecting" > /dev/console
tar -cf /dev/vtbd2 -C /var crash
echo "IFSTRESS-VM: collected" > /dev/console
poweroff
EOT
chmod +x /etc/rc.local
mkdir -p /ifstress
tar -xf /dev/vtbd1 -C /ifstress
cat > /ifstress/run.sh <<'EOT'
#!/bin/sh
{load}echo "IFSTRESS-VM: running" > /dev/console
IFSTRESS_DISPOSABLE_VM=1 /ifstress/ifstress {} --load-modules --journal /var/tmp/ifstress-journal --journal-port /dev/cuau1 --report /var/tmp/ifstress-report.json > /var/tmp/ifstress.out 2>&1
rc=$?
echo "IFSTRESS-VM: exit $rc" > /dev/console
echo "IFSTRESS-VM: report-begin" > /dev/console
cat /var/tmp/ifstress-report.json > /dev/console
echo > /dev/console
echo "IFSTRESS-VM: report-end" > /dev/console
# Clean end: no crash to collect on the next boot.
rm -f /etc/rc.local
poweroff
EOT
chmod +x /ifstress/run.sh
daemon -f /ifstress/run.sh
"#,
        args.join(" ")
    )
}

pub fn meta_data(instance: &str) -> String {
    format!("instance-id: {instance}\nlocal-hostname: ifstress-guest\n")
}

/// What the payload disk carries.
pub struct Payload<'a> {
    pub binary: &'a Path,
    /// A suite file's text, unpacked as /ifstress/suite.toml.
    pub suite: Option<&'a [u8]>,
    /// Modules, unpacked as /ifstress/modules/NAME.ko.
    pub kmods: &'a [super::guest_module::GuestModule],
}

/// The payload disk: a tar stream holding `ifstress` (and a suite file and
/// modules), padded to whole MiB so that the guest's disk reads (bsdtar
/// reads 10 KiB blocks) never run short.
pub fn payload(p: &Payload, out: &Path) -> anyhow::Result<()> {
    let mut b = tar::Builder::new(Vec::new());
    b.append_path_with_name(p.binary, "ifstress")
        .with_context(|| format!("adding {} to the payload", p.binary.display()))?;
    if let Some(text) = p.suite {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "suite.toml", text)?;
    }
    for m in p.kmods {
        let name = format!("modules/{}.ko", super::guest_module::module_name(&m.file));
        b.append_path_with_name(&m.file, &name)
            .with_context(|| format!("adding {} to the payload", m.file.display()))?;
    }
    let mut v = b.into_inner()?;
    v.resize(v.len().div_ceil(1 << 20) * (1 << 20), 0);
    std::fs::write(out, v).with_context(|| format!("writing {}", out.display()))
}

/// An empty raw disk for the guest to write /var/crash into.
pub fn collect_disk(out: &Path, mib: u64) -> anyhow::Result<()> {
    let f = std::fs::File::create(out)?;
    f.set_len(mib << 20)?;
    Ok(())
}

/// Files the guest wrote to the collect disk, unpacked under `into`.
pub fn unpack_collect(disk: &Path, into: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let f = std::fs::File::open(disk)?;
    let mut a = tar::Archive::new(f);
    let mut got = Vec::new();
    for e in a.entries()? {
        let mut e = e?;
        let path = e.path()?.into_owned();
        // Only plain relative paths: the disk came from a crashed guest.
        if path.is_absolute() || path.components().any(|c| c.as_os_str() == "..") {
            continue;
        }
        let dest = into.join(&path);
        if e.header().entry_type().is_file() {
            if let Some(p) = dest.parent() {
                std::fs::create_dir_all(p)?;
            }
            e.unpack(&dest)?;
            got.push(dest);
        }
    }
    Ok(got)
}

/// The config drive image: an ISO 9660 volume labelled `cidata`, made by
/// whichever of xorriso, genisoimage, mkisofs (Linux) or makefs (FreeBSD)
/// the host has.
pub fn cidata_iso(dir: &Path, out: &Path) -> anyhow::Result<()> {
    let attempts: [(&str, Vec<String>); 4] = [
        (
            "xorriso",
            vec!["-as".into(), "mkisofs".into(), "-quiet".into()],
        ),
        ("genisoimage", vec!["-quiet".into()]),
        ("mkisofs", vec!["-quiet".into()]),
        ("makefs", vec![]),
    ];
    for (tool, pre) in attempts {
        let mut c = Command::new(tool);
        if tool == "makefs" {
            c.args(["-t", "cd9660", "-o", "rockridge,label=cidata"])
                .arg(out)
                .arg(dir);
        } else {
            c.args(&pre)
                .args(["-V", "cidata", "-J", "-r", "-o"])
                .arg(out)
                .arg(dir);
        }
        match c.output() {
            Ok(o) if o.status.success() => return Ok(()),
            Ok(o) => bail!(
                "{tool} failed: {}",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .next()
                    .unwrap_or("")
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("running {tool}")),
        }
    }
    bail!("no ISO 9660 tool found for the cidata drive: install xorriso (or genisoimage)")
}

/// The guest's disk: a qcow2 overlay of the image, so the image stays as shipped.
pub fn overlay(image: &Path, out: &Path) -> anyhow::Result<()> {
    let fmt = if image.extension().is_some_and(|e| e == "qcow2") {
        "qcow2"
    } else {
        "raw"
    };
    let image =
        std::fs::canonicalize(image).with_context(|| format!("image {}", image.display()))?;
    qemu_img(&[
        "create".as_ref(),
        "-q".as_ref(),
        "-f".as_ref(),
        "qcow2".as_ref(),
        "-F".as_ref(),
        fmt.as_ref(),
        "-b".as_ref(),
        image.as_os_str(),
        out.as_os_str(),
    ])
}

/// Run qemu-img with `args`; a failure says which subcommand and why.
pub fn qemu_img(args: &[&std::ffi::OsStr]) -> anyhow::Result<()> {
    let o = match Command::new("qemu-img").args(args).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(crate::error::UsageError(
            "qemu-img is not in PATH (Debian: qemu-utils; FreeBSD: qemu-tools)".into()
        )),
        Err(e) => return Err(e).context("running qemu-img"),
    };
    if !o.status.success() {
        bail!(
            "qemu-img {}: {}",
            args.first().map_or("".into(), |a| a.to_string_lossy()),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(())
}

/// A guest's config drive in `dir`: `cidata/user-data` and
/// `cidata/meta-data` (instance `instance`), made into `cidata.iso`,
/// whose path is returned.
pub fn config_drive(dir: &Path, user_data: &str, instance: &str) -> anyhow::Result<PathBuf> {
    let cidata = dir.join("cidata");
    std::fs::create_dir_all(&cidata)?;
    std::fs::write(cidata.join("user-data"), user_data)?;
    std::fs::write(cidata.join("meta-data"), meta_data(instance))?;
    let iso = dir.join("cidata.iso");
    cidata_iso(&cidata, &iso)?;
    Ok(iso)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_boot_script_sets_up_dumps_ddb_collection_and_the_run() {
        let s = user_data(
            &[
                "--suite".into(),
                "vmove".into(),
                "--duration".into(),
                "6h".into(),
            ],
            &[super::super::guest_module::GuestModule {
                file: PathBuf::from("/x/if_epair.ko"),
                params: vec!["net.link.epair.fixed=1".into()],
            }],
        );
        for want in [
            "sysrc dumpdev=AUTO crashinfo_enable=YES",
            "debug.debugger_on_panic=0 debug.trace_on_panic=1",
            "ddb script kdb.enter.default=",
            "tar -cf /dev/vtbd2 -C /var crash",
            "tar -xf /dev/vtbd1 -C /ifstress",
            "/ifstress/ifstress --suite vmove --duration 6h --load-modules",
            "--journal-port /dev/cuau1",
            "IFSTRESS-VM: running",
            "IFSTRESS-VM: report-end",
            "daemon -f /ifstress/run.sh",
            "kenv net.link.epair.fixed=1",
            "kldload /ifstress/modules/if_epair.ko",
            "IFSTRESS-VM: module-failed if_epair:",
        ] {
            assert!(s.contains(want), "missing {want}");
        }
        // Tunables before the load, the load before the run.
        let at = |m: &str| s.find(m).unwrap();
        assert!(at("kenv net.link") < at("kldload /ifstress"));
        assert!(at("kldload /ifstress") < at("echo \"IFSTRESS-VM: running\""));
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(meta_data("g1").contains("instance-id: g1"));
    }

    #[test]
    fn payload_and_collect_disks_round_trip_through_tar() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("bin");
        std::fs::write(&bin, b"\x7fELF pretend").unwrap();
        let p = d.path().join("payload.img");
        let ko = d.path().join("if_epair.ko");
        std::fs::write(&ko, b"module").unwrap();
        payload(
            &Payload {
                binary: &bin,
                suite: Some(b"name = \"mine\""),
                kmods: &[super::super::guest_module::GuestModule {
                    file: ko,
                    params: vec![],
                }],
            },
            &p,
        )
        .unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len() % (1 << 20), 0);
        let out = d.path().join("out");
        let got = unpack_collect(&p, &out).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(
            std::fs::read(out.join("ifstress")).unwrap(),
            b"\x7fELF pretend"
        );
        assert_eq!(
            std::fs::read(out.join("suite.toml")).unwrap(),
            b"name = \"mine\""
        );
        assert_eq!(
            std::fs::read(out.join("modules/if_epair.ko")).unwrap(),
            b"module"
        );
        // An untouched collect disk (zeros) holds nothing.
        let c = d.path().join("collect.img");
        collect_disk(&c, 1).unwrap();
        assert!(
            unpack_collect(&c, &d.path().join("none"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn an_overlay_keeps_the_image_as_shipped_and_a_failure_names_the_subcommand() {
        if !crate::testutil::in_tier(crate::testutil::Tier::Guest) {
            return;
        }
        if Command::new("qemu-img").arg("--version").output().is_err() {
            crate::testutil::skip("qemu-img is not installed (apt install qemu-utils)");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let img = d.path().join("base.raw");
        std::fs::write(&img, vec![7u8; 1 << 20]).unwrap();
        let ov = d.path().join("root.qcow2");
        overlay(&img, &ov).unwrap();
        let o = Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(&ov)
            .output()
            .unwrap();
        let info = String::from_utf8_lossy(&o.stdout);
        assert!(info.contains("\"format\": \"qcow2\""), "{info}");
        assert!(info.contains("base.raw"), "{info}");
        // Flattened back to raw, it is the image byte for byte.
        let flat = d.path().join("flat.raw");
        qemu_img(&[
            "convert".as_ref(),
            "-O".as_ref(),
            "raw".as_ref(),
            ov.as_os_str(),
            flat.as_os_str(),
        ])
        .unwrap();
        assert_eq!(std::fs::read(&flat).unwrap(), std::fs::read(&img).unwrap());
        let e = qemu_img(&[
            "convert".as_ref(),
            d.path().join("none").as_os_str(),
            flat.as_os_str(),
        ])
        .unwrap_err();
        assert!(e.to_string().starts_with("qemu-img convert: "), "{e}");
    }
}
