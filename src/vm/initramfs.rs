//! Linux guests: an initramfs (cpio "newc") holding busybox, the ifstress
//! binary with the shared libraries it loads, the kernel modules of the link
//! kinds, and an /init script that runs the suite and reports on the console.
//! cpio is written here rather than with a crate: the format is a 110-byte
//! ASCII header per entry and the crates on offer read more than they write.

use anyhow::{Context, bail};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Default)]
pub struct Cpio {
    buf: Vec<u8>,
    ino: u32,
    dirs: BTreeSet<String>,
}

fn pad4(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.ino += 1;
        let name = name.trim_start_matches('/');
        let fields = [
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        self.buf.extend_from_slice(b"070701");
        for f in fields {
            self.buf.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        pad4(&mut self.buf);
        self.buf.extend_from_slice(data);
        pad4(&mut self.buf);
    }

    /// A directory and its parents, once each.
    pub fn dir(&mut self, path: &str) {
        let mut acc = String::new();
        for part in path.trim_matches('/').split('/').filter(|p| !p.is_empty()) {
            acc.push('/');
            acc.push_str(part);
            if self.dirs.insert(acc.clone()) {
                let a = acc.clone();
                self.entry(&a, 0o040755, &[]);
            }
        }
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.entry(path, 0o100000 | mode, data);
    }

    pub fn symlink(&mut self, path: &str, target: &str) {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.entry(path, 0o120777, target.as_bytes());
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.ino = 0;
        self.entry("TRAILER!!!", 0, &[]);
        self.buf
    }
}

/// Shared libraries `ldd` says a binary loads, with the loader.
pub fn shared_libs(bin: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let out = std::process::Command::new("ldd")
        .arg(bin)
        .output()
        .context("running ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("not a dynamic executable") || text.contains("statically linked") {
        return Ok(vec![]);
    }
    Ok(parse_ldd(&text))
}

pub fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// Modules to load, dependencies first, from `modules.dep`.
pub fn module_order(dep: &str, wanted: &[&str]) -> Vec<String> {
    let deps: std::collections::BTreeMap<&str, Vec<&str>> = dep
        .lines()
        .filter_map(|l| {
            let (m, d) = l.split_once(':')?;
            Some((m.trim(), d.split_whitespace().collect()))
        })
        .collect();
    let by_name = |n: &str| {
        deps.keys()
            .find(|k| {
                let file = k.rsplit('/').next().unwrap_or(k);
                file.split('.').next() == Some(n)
            })
            .copied()
    };
    fn visit<'a>(
        m: &'a str,
        deps: &std::collections::BTreeMap<&'a str, Vec<&'a str>>,
        out: &mut Vec<String>,
    ) {
        if out.iter().any(|o| o == m) {
            return;
        }
        for d in deps.get(m).into_iter().flatten() {
            visit(d, deps, out);
        }
        out.push(m.to_string());
    }
    let mut out = Vec::new();
    for w in wanted {
        if let Some(m) = by_name(w) {
            visit(m, &deps, &mut out);
        }
    }
    out
}

/// Kernel modules behind the Linux link kinds and the features a run uses.
pub const MODULES: &[&str] = &[
    "veth", "bridge", "macvlan", "tun", "dummy", "bonding", "8021q",
];

/// What goes into the initramfs.
pub struct Contents<'a> {
    pub ifstress: &'a Path,
    pub busybox: &'a Path,
    /// /lib/modules/<version> of the guest kernel.
    pub modules: Option<&'a Path>,
    pub init: &'a str,
    /// `--module` files, stored as /lib/modules/extra/<file name>.
    pub extra_modules: &'a [PathBuf],
    /// Files placed at the given guest paths (a suite file, a script).
    pub files: &'a [(String, Vec<u8>)],
    /// Host programs copied in with their libraries, at the same paths (the
    /// shell-loop baselines run the real `ip`).
    pub tools: &'a [PathBuf],
}

/// Where a `--module` file lives in the guest.
pub fn extra_module_path(file: &Path) -> String {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "module.ko".into());
    format!("/lib/modules/extra/{name}")
}

fn read_module(path: &Path) -> anyhow::Result<Vec<u8>> {
    let name = path.to_string_lossy();
    let tool = if name.ends_with(".xz") {
        Some("xz")
    } else if name.ends_with(".zst") {
        Some("zstd")
    } else if name.ends_with(".gz") {
        Some("gzip")
    } else {
        None
    };
    match tool {
        None => std::fs::read(path).with_context(|| format!("reading {name}")),
        Some(t) => {
            let out = std::process::Command::new(t)
                .args(["-dc"])
                .arg(path)
                .output()
                .with_context(|| format!("running {t} to unpack {name}"))?;
            if !out.status.success() {
                bail!("{t} could not unpack {name}");
            }
            Ok(out.stdout)
        }
    }
}

/// Build the archive; returns it and the module files it loads, in order.
pub fn build(c: &Contents) -> anyhow::Result<(Vec<u8>, Vec<String>)> {
    let mut a = Cpio::default();
    for d in [
        "/dev", "/proc", "/sys", "/run", "/tmp", "/bin", "/sbin", "/etc",
    ] {
        a.dir(d);
    }
    let bb =
        std::fs::read(c.busybox).with_context(|| format!("reading {}", c.busybox.display()))?;
    a.file("/bin/busybox", 0o755, &bb);
    a.symlink("/bin/sh", "busybox");
    let me =
        std::fs::read(c.ifstress).with_context(|| format!("reading {}", c.ifstress.display()))?;
    a.file("/bin/ifstress", 0o755, &me);
    for lib in shared_libs(c.ifstress)? {
        let data = std::fs::read(&lib).with_context(|| format!("reading {}", lib.display()))?;
        a.file(&lib.to_string_lossy(), 0o755, &data);
    }
    let mut loaded = Vec::new();
    if let Some(dir) = c.modules {
        let dep = std::fs::read_to_string(dir.join("modules.dep"))
            .with_context(|| format!("reading {}/modules.dep", dir.display()))?;
        for m in module_order(&dep, MODULES) {
            let data = read_module(&dir.join(&m))?;
            let base = m.rsplit('/').next().unwrap_or(&m);
            let base = base.split(".ko").next().unwrap_or(base);
            let path = format!("/lib/modules/{base}.ko");
            a.file(&path, 0o644, &data);
            loaded.push(path);
        }
    }
    let mut list = loaded.join("\n");
    list.push('\n');
    a.file("/etc/modules.order", 0o644, list.as_bytes());
    for m in c.extra_modules {
        let data = read_module(m)?;
        a.file(&extra_module_path(m), 0o644, &data);
    }
    for (path, data) in c.files {
        a.file(path, 0o644, data);
    }
    let mut libs = BTreeSet::new();
    for t in c.tools {
        let data = std::fs::read(t).with_context(|| format!("reading {}", t.display()))?;
        a.file(&t.to_string_lossy(), 0o755, &data);
        libs.extend(shared_libs(t)?);
    }
    for lib in libs {
        if let Ok(data) = std::fs::read(&lib) {
            a.file(&lib.to_string_lossy(), 0o755, &data);
        }
    }
    a.file("/init", 0o755, c.init.as_bytes());
    Ok((a.finish(), loaded))
}

/// What the guest's /init does besides booting.
pub struct InitSpec<'a> {
    /// ifstress's arguments (the suite, seed, ...).
    pub ifstress_args: &'a [String],
    /// `--module` files with their `insmod` parameters, loaded in order
    /// after the link kinds' modules; one that fails ends the guest with a
    /// `module-failed` marker instead of a run.
    pub modules: &'a [super::guest_module::GuestModule],
    /// Run this guest script (`sh SCRIPT DURATION`) instead of ifstress: the
    /// shell-loop baselines. It gets a heartbeat of its own.
    pub script: Option<&'a str>,
    /// Host programs in the initramfs, passed to the script by name
    /// (`IP=/usr/sbin/ip`): busybox's sh runs its own applet for a bare
    /// `ip` whatever PATH says, so scripts call `$IP`.
    pub tools: &'a [PathBuf],
}

/// `NAME=PATH ` for each tool: the upper-cased file name.
fn tool_env(tools: &[PathBuf]) -> String {
    tools
        .iter()
        .filter_map(|t| {
            let name = t
                .file_name()?
                .to_string_lossy()
                .to_uppercase()
                .replace('-', "_");
            Some(format!(
                "{name}={} ",
                super::host::shell_quote(&t.to_string_lossy())
            ))
        })
        .collect()
}

/// The guest's /init: mount, load modules, run the suite with the journal on
/// the second serial port, print the loaded modules' parameters and the
/// report between markers, power off. A test can ask (kernel command line
/// `ifstress.inject=panic:S` or `hang:S`) for a panic or a wedged run after
/// S seconds, or (`boot-panic:0`) a panic before the suite starts, to
/// exercise the host side.
pub fn init_script(spec: &InitSpec) -> String {
    let args: Vec<String> = spec
        .ifstress_args
        .iter()
        .map(|a| super::host::shell_quote(a))
        .collect();
    let mut load = String::new();
    let mut names = Vec::new();
    for m in spec.modules {
        let path = extra_module_path(&m.file);
        let words: Vec<String> = m
            .params
            .iter()
            .map(|p| super::host::shell_quote(p))
            .collect();
        let name = kernel_module_name(&m.file);
        load.push_str(&format!(
            "if ! out=$(insmod {path} {} 2>&1); then\n  echo \"IFSTRESS-VM: module-failed {name}: $(echo $out) $(dmesg | tail -n 2 | tr '\\n' ' ')\"\n  poweroff -f\nfi\n",
            words.join(" ")
        ));
        names.push(name);
    }
    let run = match spec.script {
        None => format!(
            "IFSTRESS_DISPOSABLE_VM=1 /bin/ifstress {} $seed --duration \"$duration\" --journal /tmp/journal --journal-port /dev/ttyS1 --report /tmp/report.json > /tmp/ifstress.out 2>&1 &\npid=$!",
            args.join(" ")
        ),
        // The script has no journal: a counter stands in for the heartbeat,
        // so the host's hang check still sees a live guest.
        Some(script) => format!(
            "{}sh {script} \"$duration\" > /tmp/ifstress.out 2>&1 &\npid=$!\n(n=0; while kill -0 $pid 2>/dev/null; do n=$((n+1)); echo \"#hb $n\" > /dev/ttyS1; sleep 1; done; echo \"#hb $n end\" > /dev/ttyS1) &\necho '{{}}' > /tmp/report.json",
            tool_env(spec.tools)
        ),
    };
    format!(
        r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
# /usr first: host programs copied in (the shell loops' real ip, ethtool)
# go before busybox's applets of the same name.
export PATH=/usr/sbin:/usr/bin:/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
for m in $(cat /etc/modules.order); do insmod "$m" 2>/dev/null; done
{load}ip link set lo up
echo 1 > /proc/sys/kernel/sysrq
inject=
duration=60s
seed=
for w in $(cat /proc/cmdline); do
  case "$w" in
    ifstress.inject=*) inject="${{w#ifstress.inject=}}" ;;
    ifstress.duration=*) duration="${{w#ifstress.duration=}}" ;;
    ifstress.seed=*) seed="--seed ${{w#ifstress.seed=}}" ;;
  esac
done
# A kernel that cannot run the suite, on purpose: it panics before the
# suite starts, in every guest.
case "$inject" in boot-panic:*) echo c > /proc/sysrq-trigger ;; esac
echo "IFSTRESS-VM: running"
{run}
case "$inject" in
  panic:*) (sleep "${{inject#panic:}}"; echo c > /proc/sysrq-trigger) & ;;
  hang:*) (sleep "${{inject#hang:}}"; kill -STOP $pid) & ;;
esac
wait $pid
rc=$?
echo "IFSTRESS-VM: exit $rc"
tail -n 5 /tmp/ifstress.out
for m in {names}; do
  for p in /sys/module/$m/parameters/*; do
    [ -r "$p" ] || continue
    cat "$p" | while read -r l; do echo "IFSTRESS-VM: param $m.${{p##*/}} $l"; done
  done
done
echo "IFSTRESS-VM: report-begin"
cat /tmp/report.json
echo
echo "IFSTRESS-VM: report-end"
poweroff -f
"#,
        names = names.join(" ")
    )
}

/// The name the Linux kernel gives a module (`/sys/module/NAME`): the
/// `name=` entry of its `.modinfo`, which a renamed file keeps; else the
/// file's name.
pub fn kernel_module_name(file: &Path) -> String {
    read_module(file)
        .ok()
        .and_then(|data| modinfo_name(&data))
        .unwrap_or_else(|| module_name(file))
}

/// `name=` from a module image's `.modinfo` strings (NUL-separated).
fn modinfo_name(data: &[u8]) -> Option<String> {
    let at = data.windows(6).position(|w| w == b"\0name=")? + 6;
    let end = data[at..].iter().position(|&b| b == 0)? + at;
    let name = std::str::from_utf8(&data[at..end]).ok()?;
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then(|| name.to_string())
}

pub use super::guest_module::module_name;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpio_entries_are_newc_aligned_and_end_with_the_trailer() {
        let mut a = Cpio::default();
        a.file("/a/b/c.txt", 0o644, b"hello");
        a.symlink("/bin/sh", "busybox");
        let buf = a.finish();
        assert!(buf.starts_with(b"070701"));
        assert_eq!(buf.len() % 4, 0);
        let text = String::from_utf8_lossy(&buf);
        // Parents are created before the file, once each.
        let a_at = text.find("a\0").unwrap();
        let ab_at = text.find("a/b\0").unwrap();
        let f_at = text.find("a/b/c.txt\0").unwrap();
        assert!(a_at < ab_at && ab_at < f_at);
        assert!(text.contains("hello"));
        assert!(text.contains("TRAILER!!!\0"));
        // The header's file size field (7th) of c.txt is 5.
        let h = &buf[f_at - 110..f_at];
        assert_eq!(&h[6 + 6 * 8..6 + 7 * 8], b"00000005");
        // Mode of the symlink.
        let s_at = text.find("bin/sh\0").unwrap();
        assert_eq!(&buf[s_at - 110 + 14..s_at - 110 + 22], b"0000a1ff");
    }

    #[test]
    fn ldd_output_gives_absolute_library_paths() {
        let t = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            parse_ldd(t),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
    }

    #[test]
    fn modules_come_after_their_dependencies() {
        let dep = "kernel/net/bridge/bridge.ko: kernel/net/802/stp.ko kernel/net/llc/llc.ko\nkernel/net/802/stp.ko: kernel/net/llc/llc.ko\nkernel/net/llc/llc.ko:\nkernel/drivers/net/veth.ko:\nkernel/drivers/net/macvlan.ko.xz:\n";
        let o = module_order(dep, &["veth", "bridge", "macvlan", "nosuch"]);
        assert_eq!(
            o,
            vec![
                "kernel/drivers/net/veth.ko",
                "kernel/net/llc/llc.ko",
                "kernel/net/802/stp.ko",
                "kernel/net/bridge/bridge.ko",
                "kernel/drivers/net/macvlan.ko.xz"
            ]
        );
    }

    #[test]
    fn init_script_runs_the_suite_with_the_journal_port_and_markers() {
        let s = init_script(&InitSpec {
            ifstress_args: &[
                "--suite".into(),
                "vmove".into(),
                "--seed".into(),
                "it's".into(),
            ],
            modules: &[],
            script: None,
            tools: &[],
        });
        assert!(s.contains("/bin/ifstress --suite vmove --seed 'it'\\''s' $seed --duration \"$duration\" --journal /tmp/journal --journal-port /dev/ttyS1"), "{s}");
        assert!(
            s.contains("ifstress.seed=*) seed=\"--seed ${w#ifstress.seed=}\""),
            "{s}"
        );
        for m in [
            "IFSTRESS-VM: running",
            "IFSTRESS-VM: exit $rc",
            "IFSTRESS-VM: report-begin",
            "IFSTRESS-VM: report-end",
            "poweroff -f",
            "IFSTRESS_DISPOSABLE_VM=1",
        ] {
            assert!(s.contains(m), "{m}");
        }
        assert!(!s.contains("insmod /lib/modules/extra"));
    }

    #[test]
    fn init_script_loads_given_modules_with_their_parameters_or_says_why_not() {
        let s = init_script(&InitSpec {
            ifstress_args: &["--suite".into(), "vmove".into()],
            modules: &[super::super::guest_module::GuestModule {
                file: PathBuf::from("/tmp/x/race-bench.ko"),
                params: vec!["window_us=100".into(), "scenarios=vmove,tun".into()],
            }],
            script: None,
            tools: &[],
        });
        assert!(
            s.contains(
                "insmod /lib/modules/extra/race-bench.ko window_us=100 scenarios=vmove,tun 2>&1"
            ),
            "{s}"
        );
        assert!(s.contains("IFSTRESS-VM: module-failed race_bench:"));
        // Loaded after the link kinds' modules, before the run.
        let at = |m: &str| s.find(m).unwrap();
        assert!(at("modules.order") < at("insmod /lib/modules/extra"));
        assert!(at("insmod /lib/modules/extra") < at("IFSTRESS-VM: running"));
        assert!(s.contains("for m in race_bench; do"));
    }

    #[test]
    fn a_renamed_module_keeps_the_name_its_modinfo_gives() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("racebench-v2.ko");
        std::fs::write(
            &f,
            b"\x7fELF....\0license=GPL\0name=racebench\0vermagic=6.1\0",
        )
        .unwrap();
        assert_eq!(kernel_module_name(&f), "racebench");
        assert_eq!(module_name(&f), "racebench_v2");
        let g = d.path().join("plain-mod.ko");
        std::fs::write(&g, b"no modinfo here").unwrap();
        assert_eq!(kernel_module_name(&g), "plain_mod");
        assert_eq!(kernel_module_name(Path::new("/nonexistent/x.ko")), "x");
    }

    #[test]
    fn a_script_guest_runs_the_script_with_a_heartbeat_of_its_own() {
        let s = init_script(&InitSpec {
            ifstress_args: &[],
            modules: &[],
            script: Some("/etc/ifstress-script.sh"),
            tools: &[
                PathBuf::from("/usr/sbin/ip"),
                PathBuf::from("/usr/sbin/ethtool"),
            ],
        });
        assert!(
            s.contains(
                "IP=/usr/sbin/ip ETHTOOL=/usr/sbin/ethtool sh /etc/ifstress-script.sh \"$duration\""
            ),
            "{s}"
        );
        assert!(s.contains("echo \"#hb $n\" > /dev/ttyS1"));
        assert!(s.contains("export PATH=/usr/sbin:/usr/bin:/bin:/sbin"));
        assert!(!s.contains("/bin/ifstress"));
    }
}
