//! `ifstress vm build-kernel`: a FreeBSD image whose kernel is built from a
//! source tree (and patches) inside a guest of the image itself, so that the
//! compiler, the config and the userland are the image's own. The result is
//! an image like the official one, which `vm run --image` boots unchanged:
//! every fresh guest of a run then has the patched kernel, and its crash
//! dumps find the matching debug symbols in /usr/lib/debug.
//!
//! The guest gets its root disk, the source as a tar stream (vtbd1) and an
//! empty scratch disk (vtbd2) where the source is unpacked and the objects
//! are built, so the image grows only by the installed kernel. At the end
//! the guest recreates /firstboot, so the next boot of the image runs its
//! first-boot scripts (nuageinit with the next guest's config drive) again.

use super::machine::{Boot, GuestSpec, Hypervisor, HypervisorKind};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct KernelBuild {
    pub image: PathBuf,
    /// A freebsd-src checkout at the image's revision (or the revision both
    /// sides of an A/B are built from).
    pub src: PathBuf,
    /// Applied in order with `patch -p1` (git's a/ b/ prefixes).
    pub patches: Vec<PathBuf>,
    /// A config in sys/amd64/conf; with `debug`, the config that includes
    /// it and adds the debug options.
    pub kernconf: String,
    pub debug: bool,
    pub out_image: PathBuf,
    pub work: PathBuf,
    pub cpus: u32,
    pub mem_mib: u32,
    pub scratch_gib: u64,
    pub timeout: Duration,
}

/// The config `--debug` builds: the named one plus what a FreeBSD developer
/// runs races under. INVARIANTS turns silent corruption into a panic at
/// the first broken assertion; WITNESS reports lock-order reversals, which
/// `ifstress` reads from the console; DIAGNOSTIC adds the cheaper checks.
/// Options that the base config already has are accepted again by config(8).
pub fn debug_config(base: &str) -> String {
    format!(
        "# Written by `ifstress vm build-kernel --debug`.\n\
         include {base}\n\
         ident IFSTRESS-DEBUG\n\
         options INVARIANTS\n\
         options INVARIANT_SUPPORT\n\
         options WITNESS\n\
         options WITNESS_SKIPSPIN\n\
         options DIAGNOSTIC\n\
         options DDB\n\
         options KDB\n"
    )
}

/// The config name the guest builds.
pub fn build_conf(kernconf: &str, debug: bool) -> String {
    if debug {
        "IFSTRESS-DEBUG".into()
    } else {
        kernconf.into()
    }
}

/// The free space the build asks for before it starts, KiB: on the image's
/// root (the installed kernel and modules, and with `--debug` their debug
/// symbols under /usr/lib/debug) and on the scratch filesystem (the source
/// and the objects). Floors ifstress sets so that an image without room
/// fails at once with a clear reason instead of after an hour in
/// installkernel; not measured sizes.
pub fn space_floor_kib(debug: bool) -> (u64, u64) {
    if debug {
        (1 << 20, 8 << 20)
    } else {
        (512 << 10, 4 << 20)
    }
}

/// The first-boot script of the build guest.
pub fn build_script(kernconf: &str, debug: bool) -> String {
    let conf = build_conf(kernconf, debug);
    let (root_kib, scratch_kib) = space_floor_kib(debug);
    let debug_file = if debug {
        // GENERIC-DEBUG's form where the tree has sys/conf/std.debug
        // (the debug options -CURRENT's GENERIC carries); the options
        // themselves where it does not.
        format!(
            "if [ -f sys/conf/std.debug ]; then\n\
             \tprintf 'include {kernconf}\\ninclude \"std.debug\"\\nident IFSTRESS-DEBUG\\n' > sys/amd64/conf/IFSTRESS-DEBUG\n\
             else\n\
             cat > sys/amd64/conf/IFSTRESS-DEBUG <<'EOC'\n{}EOC\nfi\n",
            debug_config(kernconf)
        )
    } else {
        String::new()
    };
    format!(
        r#"#!/bin/sh
# Written by `ifstress vm build-kernel`. Runs once, at first boot (nuageinit):
# build and install a kernel from the source on vtbd1, in a scratch
# filesystem on vtbd2, then make the image's next boot a first boot again.
sysrc firstboot_freebsd_update_enable=NO firstboot_pkgs_enable=NO >/dev/null
say() {{ echo "IFSTRESS-VM: $*" > /dev/console; }}
fail() {{
	say "build-failed $1"
	tail -n 60 /build/log 2>/dev/null | sed 's/^/build: /' > /dev/console
	poweroff
	exit 1
}}
newfs -U /dev/vtbd2 >/dev/null 2>&1 || fail "newfs of the scratch disk"
mkdir -p /build && mount /dev/vtbd2 /build || fail "mounting the scratch disk"
# Preflight, before anything is unpacked: a compiler, make, and room.
say "preflight"
command -v cc >/dev/null 2>&1 || fail "preflight: no C compiler (cc) in the image"
command -v make >/dev/null 2>&1 || fail "preflight: no make in the image"
need() {{
	avail=$(df -k "$1" | awk 'NR == 2 {{ print $4 }}')
	[ "${{avail:-0}}" -ge "$2" ] || fail "preflight: $1 has ${{avail:-0}} KiB free, $3 need $2 KiB"
}}
need / {root_kib} "the installed kernel and its symbols"
need /build {scratch_kib} "the source and the objects"
say "unpacking the source"
tar -xf /dev/vtbd1 -C /build || fail "unpacking the source"
cd /build/src || fail "no src in the source disk"
: > /build/log
for p in /build/patches/*.patch; do
	[ -e "$p" ] || continue
	say "applying ${{p##*/}}"
	patch -p1 -s -f -E < "$p" >> /build/log 2>&1 || fail "patch-does-not-apply ${{p##*/}}"
done
{debug_file}[ -f sys/amd64/conf/{conf} ] || fail "no kernel config {conf}"
jobs=$(sysctl -n hw.ncpu)
say "building {conf} with $jobs jobs"
# A heartbeat: the host sees the build move (from /, so that it never
# holds the scratch filesystem busy).
( cd / && while sleep 60; do say "building: $(wc -l < /build/log) log lines"; done ) &
beat=$!
# MAKEOBJDIRPREFIX only from the environment: src/Makefile refuses it on
# the command line. The same for both steps, so installkernel finds the build.
export MAKEOBJDIRPREFIX=/build/obj
make -j"$jobs" buildkernel KERNCONF={conf} >> /build/log 2>&1 || {{ kill $beat; fail "buildkernel"; }}
make installkernel KERNCONF={conf} >> /build/log 2>&1 || {{ kill $beat; fail "installkernel"; }}
kill $beat
cd /
umount -f /build
# This script runs from rc (nuageinit) before rc's own `rm -f /firstboot`,
# which the poweroff below pre-empts: the sentinel stays, and the image's
# next boot runs its first-boot scripts, nuageinit with a new config drive
# among them.
touch /firstboot
say "built {conf}"
poweroff
"#
    )
}

/// The source disk: a tar stream with `src/` (the tree without `.git`)
/// and `patches/NNN-NAME.patch`, padded to whole MiB.
pub fn source_disk(src: &Path, patches: &[PathBuf], out: &Path) -> anyhow::Result<()> {
    let f = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(f));
    b.follow_symlinks(false);
    add_tree(&mut b, src, Path::new("src"))?;
    for (i, p) in patches.iter().enumerate() {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        b.append_path_with_name(p, format!("patches/{:03}-{name}.patch", i + 1))
            .with_context(|| format!("adding {}", p.display()))?;
    }
    let w = b.into_inner()?;
    let f = w.into_inner().map_err(|e| e.into_error())?;
    let len = f.metadata()?.len();
    f.set_len(len.div_ceil(1 << 20) * (1 << 20))?;
    Ok(())
}

fn add_tree<W: std::io::Write>(
    b: &mut tar::Builder<W>,
    dir: &Path,
    name: &Path,
) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if e.file_name() == ".git" {
            continue;
        }
        let path = e.path();
        let to = name.join(e.file_name());
        if e.file_type()?.is_dir() {
            add_tree(b, &path, &to)?;
        } else {
            b.append_path_with_name(&path, &to)
                .with_context(|| format!("adding {}", path.display()))?;
        }
    }
    Ok(())
}

/// What the guest said at the end.
#[derive(Debug, PartialEq)]
enum Outcome {
    Built,
    Failed(String),
}

/// Read the console's markers: the build's end, or why it failed.
fn outcome(console: &str) -> Option<Outcome> {
    for l in console.lines() {
        let l = l.trim_end_matches('\r');
        if let Some(rest) = l.strip_prefix("IFSTRESS-VM: build-failed ") {
            return Some(Outcome::Failed(rest.to_string()));
        }
        if l.starts_with("IFSTRESS-VM: built ") {
            return Some(Outcome::Built);
        }
    }
    None
}

impl KernelBuild {
    pub fn check_inputs(&self) -> anyhow::Result<()> {
        use crate::error::UsageError;
        super::host::check_regular("--image", &self.image)?;
        if !self.src.join("sys/conf/newvers.sh").is_file() {
            bail!(UsageError(format!(
                "--src {}: not a FreeBSD source tree (no sys/conf/newvers.sh)",
                self.src.display()
            )));
        }
        let conf = self.src.join("sys/amd64/conf").join(&self.kernconf);
        if !conf.is_file() {
            bail!(UsageError(format!(
                "--kernconf {}: no {}",
                self.kernconf,
                conf.display()
            )));
        }
        for p in &self.patches {
            super::host::check_regular("--patch", p)?;
        }
        if self.out_image.exists() {
            bail!(UsageError(format!(
                "--out-image {}: exists; not overwritten",
                self.out_image.display()
            )));
        }
        let need_gib = space_floor_kib(self.debug).1.div_ceil(1 << 20);
        if self.scratch_gib < need_gib {
            bail!(UsageError(format!(
                "--scratch {}: a{} kernel build asks for {need_gib} GiB of scratch at least",
                self.scratch_gib,
                if self.debug { " --debug" } else { "" }
            )));
        }
        Ok(())
    }
}

/// Build the image; the console of the build guest is `work/console.log`.
pub fn build(kb: &KernelBuild, hv: &dyn Hypervisor, stop: &AtomicBool) -> anyhow::Result<()> {
    kb.check_inputs()?;
    let out_fmt = if kb.out_image.extension().is_some_and(|e| e == "qcow2") {
        "qcow2"
    } else {
        "raw"
    };
    if hv.kind() == HypervisorKind::Bhyve && out_fmt == "qcow2" {
        bail!(crate::error::UsageError(
            "--out-image: bhyve writes raw images; name it .img or .raw".into()
        ));
    }
    let dir = &kb.work;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    eprintln!("ifstress vm build-kernel: packing {}", kb.src.display());
    let root = hv.root_disk(&kb.image, dir)?;
    let src_disk = dir.join("source.img");
    source_disk(&kb.src, &kb.patches, &src_disk)?;
    let scratch = dir.join("scratch.img");
    std::fs::File::create(&scratch)?.set_len(kb.scratch_gib << 30)?;
    let iso = super::freebsd_guest::config_drive(
        dir,
        &build_script(&kb.kernconf, kb.debug),
        "ifstress-build",
    )?;
    let spec = GuestSpec {
        name: super::machine::guest_name("b"),
        cpus: kb.cpus,
        mem_mib: kb.mem_mib,
        console: dir.join("console.log"),
        port: dir.join("port.log"),
        dir: dir.clone(),
        prefix: String::new(),
        boot: Boot::Disk {
            disks: vec![
                root.clone(),
                (src_disk.clone(), "raw"),
                (scratch.clone(), "raw"),
            ],
            cdrom: Some(iso),
        },
        start_timeout: Duration::from_secs(600),
    };
    eprintln!(
        "ifstress vm build-kernel: booting {} on {} (console {})",
        kb.image.display(),
        hv.label(),
        spec.console.display()
    );
    let mut guest = hv.start(&spec)?;
    let t0 = Instant::now();
    let mut said = 0usize;
    let result = loop {
        std::thread::sleep(Duration::from_secs(1));
        let text = std::fs::read(&spec.console)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        for l in text.lines().skip(said) {
            if l.contains("IFSTRESS-VM: ") {
                eprintln!("ifstress vm build-kernel: {}", l.trim_end());
            }
        }
        said = text.lines().count();
        let exited = guest.exited()?;
        if let Some(o) = outcome(&text).filter(|_| exited) {
            break o;
        }
        if exited {
            guest.stop();
            bail!(
                "the build guest ended without saying how the build went; console: {}",
                spec.console.display()
            );
        }
        if t0.elapsed() > kb.timeout {
            guest.stop();
            bail!(
                "the build did not end within {} s; console: {}",
                kb.timeout.as_secs(),
                spec.console.display()
            );
        }
        if stop.load(Relaxed) {
            guest.stop();
            bail!("interrupted");
        }
    };
    guest.stop();
    // The source and scratch disks are only the build's.
    let _ = std::fs::remove_file(&src_disk);
    let _ = std::fs::remove_file(&scratch);
    if let Outcome::Failed(why) = result {
        let msg = format!(
            "the kernel did not build: {why} (the build log's end is in {})",
            spec.console.display()
        );
        // The change or the tree does not build on this image: the input's
        // fault, not ifstress's.
        bail!(crate::error::UsageError(msg));
    }
    write_image(&root, &kb.out_image, out_fmt)?;
    let _ = std::fs::remove_file(&root.0);
    eprintln!(
        "ifstress vm build-kernel: wrote {} ({} built in {:.0} min)",
        kb.out_image.display(),
        build_conf(&kb.kernconf, kb.debug),
        t0.elapsed().as_secs_f64() / 60.0
    );
    Ok(())
}

/// The guest's root disk as a standalone image: an overlay is flattened
/// (qemu-img convert), a raw copy is moved.
fn write_image(root: &(PathBuf, &'static str), out: &Path, fmt: &str) -> anyhow::Result<()> {
    if root.1 == "raw" && fmt == "raw" {
        return std::fs::rename(&root.0, out)
            .or_else(|_| super::bhyve::sparse_copy(&root.0, out).map_err(std::io::Error::other))
            .with_context(|| format!("writing {}", out.display()));
    }
    let mut args: Vec<&std::ffi::OsStr> = vec!["convert".as_ref(), "-O".as_ref(), fmt.as_ref()];
    // Compressed: the image travels between CI jobs as an artifact.
    if fmt == "qcow2" {
        args.push("-c".as_ref());
    }
    args.extend([root.0.as_os_str(), out.as_os_str()]);
    super::freebsd_guest::qemu_img(&args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn the_build_script_is_sh_and_builds_installs_and_rearms_first_boot_in_order() {
        let s = build_script("GENERIC", true);
        let at = |m: &str| s.find(m).unwrap_or_else(|| panic!("missing {m}:\n{s}"));
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(at("newfs -U /dev/vtbd2") < at("tar -xf /dev/vtbd1 -C /build"));
        // The preflight comes before anything is unpacked.
        assert!(at("mount /dev/vtbd2 /build") < at("command -v cc"));
        assert!(at("command -v cc") < at("tar -xf /dev/vtbd1"));
        assert!(at("need / 1048576 ") < at("tar -xf /dev/vtbd1"));
        assert!(at("need /build 8388608 ") < at("tar -xf /dev/vtbd1"));
        assert!(at("tar -xf /dev/vtbd1") < at("patch -p1"));
        assert!(at("patch -p1") < at("include GENERIC\nident IFSTRESS-DEBUG"));
        assert!(at("patch -p1") < at("include GENERIC\\ninclude"));
        assert!(
            at("options WITNESS\n") < at("make -j\"$jobs\" buildkernel KERNCONF=IFSTRESS-DEBUG")
        );
        // src/Makefile refuses MAKEOBJDIRPREFIX on make's command line.
        assert!(at("export MAKEOBJDIRPREFIX=/build/obj\n") < at("buildkernel"));
        assert!(
            !s.lines()
                .any(|l| l.starts_with("make") && l.contains("MAKEOBJDIRPREFIX"))
        );
        assert!(at("buildkernel") < at("make installkernel KERNCONF=IFSTRESS-DEBUG"));
        assert!(at("installkernel") < at("touch /firstboot"));
        assert!(at("touch /firstboot") < at("say \"built"));
        // The debug config as the guest writes it, with and without the
        // tree's std.debug: run that part of the script in a scratch tree.
        let part =
            &s[at("if [ -f sys/conf/std.debug ]")..at("[ -f sys/amd64/conf/IFSTRESS-DEBUG ]")];
        for with_std_debug in [true, false] {
            let d = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(d.path().join("sys/amd64/conf")).unwrap();
            if with_std_debug {
                std::fs::write(d.path().join("sys/conf/std.debug"), "")
                    .or_else(|_| {
                        std::fs::create_dir_all(d.path().join("sys/conf"))?;
                        std::fs::write(d.path().join("sys/conf/std.debug"), "")
                    })
                    .unwrap();
            }
            let st = Command::new("sh")
                .arg("-c")
                .arg(part)
                .current_dir(d.path())
                .status()
                .unwrap();
            assert!(st.success());
            let conf =
                std::fs::read_to_string(d.path().join("sys/amd64/conf/IFSTRESS-DEBUG")).unwrap();
            if with_std_debug {
                assert_eq!(
                    conf,
                    "include GENERIC\ninclude \"std.debug\"\nident IFSTRESS-DEBUG\n"
                );
            } else {
                assert_eq!(conf, debug_config("GENERIC"));
            }
        }
        let plain = build_script("GENERIC", false);
        assert!(plain.contains("buildkernel KERNCONF=GENERIC"));
        assert!(!plain.contains("IFSTRESS-DEBUG"));
        // sh -n where there is an sh: the script must parse.
        for (name, text) in [("debug", &s), ("plain", &plain)] {
            let d = tempfile::tempdir().unwrap();
            let f = d.path().join("s.sh");
            std::fs::write(&f, text).unwrap();
            let st = Command::new("sh").arg("-n").arg(&f).status().unwrap();
            assert!(st.success(), "{name}: sh -n failed:\n{text}");
            // And shellcheck as POSIX sh (CI installs it; a missing one
            // there is a failure, elsewhere it is said).
            match Command::new("shellcheck")
                .args(["-s", "sh", "-S", "warning"])
                .arg(&f)
                .output()
            {
                Ok(o) => assert!(
                    o.status.success(),
                    "{name}: shellcheck:\n{}",
                    String::from_utf8_lossy(&o.stdout)
                ),
                Err(_) if std::env::var_os("CI").is_some() => panic!("shellcheck missing in CI"),
                Err(_) => eprintln!("shellcheck not installed: sh -n only"),
            }
        }
    }

    #[test]
    fn markers_decide_the_outcome_and_a_failure_keeps_its_reason() {
        assert_eq!(
            outcome("booting\r\nIFSTRESS-VM: building GENERIC\r\n"),
            None
        );
        assert_eq!(
            outcome("IFSTRESS-VM: built IFSTRESS-DEBUG 15.0-RELEASE\r\n"),
            Some(Outcome::Built)
        );
        assert_eq!(
            outcome("IFSTRESS-VM: build-failed patch-does-not-apply 001-x.patch\r\n"),
            Some(Outcome::Failed("patch-does-not-apply 001-x.patch".into()))
        );
    }

    #[test]
    fn the_source_disk_holds_the_tree_without_git_and_the_patches_in_order() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("freebsd-src");
        std::fs::create_dir_all(src.join("sys/conf")).unwrap();
        std::fs::create_dir_all(src.join(".git/objects")).unwrap();
        std::fs::write(src.join("sys/conf/newvers.sh"), "#!/bin/sh\n").unwrap();
        std::fs::write(src.join(".git/objects/x"), "big").unwrap();
        std::os::unix::fs::symlink("conf/newvers.sh", src.join("sys/link")).unwrap();
        let p1 = d.path().join("fix.diff");
        std::fs::write(&p1, "--- a/x\n+++ b/x\n").unwrap();
        let out = d.path().join("source.img");
        source_disk(&src, &[p1.clone(), p1], &out).unwrap();
        assert_eq!(std::fs::metadata(&out).unwrap().len() % (1 << 20), 0);
        let mut a = tar::Archive::new(std::fs::File::open(&out).unwrap());
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "src/sys/conf/newvers.sh",
                "src/sys/link",
                "patches/001-fix.diff.patch",
                "patches/002-fix.diff.patch"
            ]
        );
    }

    /// A hypervisor whose guest "runs" the build at once: it writes the
    /// console the real guest would and ends.
    struct FakeBuild {
        console: &'static str,
        seen: std::sync::Mutex<Vec<String>>,
    }

    struct Ended;

    impl super::super::machine::RunningGuest for Ended {
        fn exited(&mut self) -> anyhow::Result<bool> {
            Ok(true)
        }
        fn nmi(&mut self) -> anyhow::Result<()> {
            Ok(())
        }
        fn stop(&mut self) {}
    }

    impl Hypervisor for FakeBuild {
        fn start(
            &self,
            spec: &GuestSpec,
        ) -> anyhow::Result<Box<dyn super::super::machine::RunningGuest>> {
            let Boot::Disk { disks, cdrom } = &spec.boot else {
                panic!("a build boots disks")
            };
            let mut seen = self.seen.lock().unwrap();
            for (d, f) in disks {
                seen.push(format!("{}:{f}", d.file_name().unwrap().to_string_lossy()));
            }
            assert!(cdrom.as_ref().unwrap().is_file());
            // The guest installs the kernel onto its root disk.
            std::fs::write(&disks[0].0, b"root with the new kernel").unwrap();
            std::fs::write(&spec.console, self.console).unwrap();
            Ok(Box::new(Ended))
        }
        fn root_disk(&self, image: &Path, dir: &Path) -> anyhow::Result<(PathBuf, &'static str)> {
            let d = dir.join("root.img");
            std::fs::copy(image, &d)?;
            Ok((d, "raw"))
        }
        fn label(&self) -> String {
            "fake".into()
        }
        fn kind(&self) -> HypervisorKind {
            HypervisorKind::Bhyve
        }
    }

    fn tree(d: &Path) -> KernelBuild {
        let src = d.join("src");
        std::fs::create_dir_all(src.join("sys/conf")).unwrap();
        std::fs::create_dir_all(src.join("sys/amd64/conf")).unwrap();
        std::fs::write(src.join("sys/conf/newvers.sh"), "").unwrap();
        std::fs::write(src.join("sys/amd64/conf/GENERIC"), "").unwrap();
        std::fs::write(d.join("base.img"), b"stock root").unwrap();
        KernelBuild {
            image: d.join("base.img"),
            src,
            patches: vec![],
            kernconf: "GENERIC".into(),
            debug: true,
            out_image: d.join("after.img"),
            work: d.join("work"),
            cpus: 2,
            mem_mib: 2048,
            scratch_gib: 8,
            timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_built_guest_becomes_the_output_image_and_the_build_disks_go() {
        let d = tempfile::tempdir().unwrap();
        let kb = tree(d.path());
        let hv = FakeBuild {
            console: "IFSTRESS-VM: building IFSTRESS-DEBUG with 2 jobs\r\nIFSTRESS-VM: built IFSTRESS-DEBUG\r\n",
            seen: Default::default(),
        };
        build(&kb, &hv, &AtomicBool::new(false)).unwrap();
        assert_eq!(
            std::fs::read(&kb.out_image).unwrap(),
            b"root with the new kernel"
        );
        // The stock image is untouched; root, source, scratch in that order.
        assert_eq!(std::fs::read(&kb.image).unwrap(), b"stock root");
        assert_eq!(
            *hv.seen.lock().unwrap(),
            ["root.img:raw", "source.img:raw", "scratch.img:raw"]
        );
        assert!(!kb.work.join("source.img").exists() && !kb.work.join("scratch.img").exists());
        let user_data = std::fs::read_to_string(kb.work.join("cidata/user-data")).unwrap();
        assert_eq!(user_data, build_script("GENERIC", true));
        // bhyve cannot write qcow2.
        let mut q = tree(d.path());
        q.out_image = d.path().join("after.qcow2");
        let e = format!("{:#}", build(&q, &hv, &AtomicBool::new(false)).unwrap_err());
        assert!(e.contains("bhyve writes raw images"), "{e}");
    }

    #[test]
    fn a_failed_build_is_bad_input_naming_the_step_and_writes_no_image() {
        let d = tempfile::tempdir().unwrap();
        let kb = tree(d.path());
        for (console, want) in [
            (
                "IFSTRESS-VM: build-failed patch-does-not-apply 001-fix.patch\r\nbuild: 1 out of 2 hunks FAILED\r\n",
                "patch-does-not-apply 001-fix.patch",
            ),
            ("IFSTRESS-VM: build-failed buildkernel\r\n", "buildkernel"),
        ] {
            let hv = FakeBuild {
                console,
                seen: Default::default(),
            };
            let e = build(&kb, &hv, &AtomicBool::new(false)).unwrap_err();
            assert!(
                e.downcast_ref::<crate::error::UsageError>().is_some(),
                "{e:#}"
            );
            assert!(format!("{e:#}").contains(want), "{e:#}");
            assert!(!kb.out_image.exists());
        }
        // A guest that ends without a marker is not the input's fault.
        let hv = FakeBuild {
            console: "booting\r\n",
            seen: Default::default(),
        };
        let e = build(&kb, &hv, &AtomicBool::new(false)).unwrap_err();
        assert!(
            e.downcast_ref::<crate::error::UsageError>().is_none(),
            "{e:#}"
        );
        assert!(format!("{e:#}").contains("without saying"), "{e:#}");
    }

    #[test]
    fn inputs_are_checked_before_anything_boots() {
        let d = tempfile::tempdir().unwrap();
        let img = d.path().join("base.qcow2");
        std::fs::write(&img, b"QFI\xfb").unwrap();
        let mut kb = KernelBuild {
            image: img,
            src: d.path().join("nosrc"),
            patches: vec![],
            kernconf: "GENERIC".into(),
            debug: true,
            out_image: d.path().join("out.qcow2"),
            work: d.path().join("w"),
            cpus: 2,
            mem_mib: 2048,
            scratch_gib: 32,
            timeout: Duration::from_secs(60),
        };
        let e = format!("{:#}", kb.check_inputs().unwrap_err());
        assert!(e.contains("not a FreeBSD source tree"), "{e}");
        std::fs::create_dir_all(kb.src.join("sys/conf")).unwrap();
        std::fs::write(kb.src.join("sys/conf/newvers.sh"), "").unwrap();
        let e = format!("{:#}", kb.check_inputs().unwrap_err());
        assert!(e.contains("--kernconf GENERIC"), "{e}");
        std::fs::create_dir_all(kb.src.join("sys/amd64/conf")).unwrap();
        std::fs::write(kb.src.join("sys/amd64/conf/GENERIC"), "").unwrap();
        kb.patches = vec![d.path().join("none.patch")];
        let e = format!("{:#}", kb.check_inputs().unwrap_err());
        assert!(e.contains("--patch"), "{e}");
        kb.patches.clear();
        kb.scratch_gib = 4;
        let e = format!("{:#}", kb.check_inputs().unwrap_err());
        assert!(e.contains("--scratch 4") && e.contains("8 GiB"), "{e}");
        kb.scratch_gib = 32;
        kb.check_inputs().unwrap();
        assert!(!kb.work.exists(), "nothing is created by the checks");
    }
}
