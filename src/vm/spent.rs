//! What a finished guest leaves on the host's disk, and removing what is
//! spent. A FreeBSD guest's root disk (a qcow2 overlay that grows by every
//! dump savecore writes, or bhyve's whole copy of the image), its payload and
//! its 2 GiB collect image are worth nothing once the crash is unpacked into
//! `crash/`; and a racy kernel that panics every few minutes for hours must
//! not fill the runner's disk with a vmcore per panic of the same crash.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How much of a run's disk use to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    /// Keep every guest's disks (`--keep-disks`).
    pub disks: bool,
    /// Vmcores kept per crash signature (`--keep-vmcores`).
    pub vmcores: usize,
}

impl Default for Keep {
    fn default() -> Self {
        Keep {
            disks: false,
            vmcores: 1,
        }
    }
}

/// Bytes a file really takes (sparse images count their written blocks).
fn allocated(m: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    m.blocks() * 512
}

/// Remove the guest's disk files; the bytes freed.
pub fn drop_disks(disks: &[PathBuf]) -> u64 {
    let mut freed = 0;
    for d in disks {
        if let Ok(m) = std::fs::symlink_metadata(d)
            && m.is_file()
            && std::fs::remove_file(d).is_ok()
        {
            freed += allocated(&m);
        }
    }
    freed
}

/// The vmcores among the files collected from a guest (savecore's
/// `vmcore.N`, and `vmcore.N.zst` / `.gz` when compressed).
pub fn vmcores(collected: &[PathBuf]) -> Vec<&PathBuf> {
    collected
        .iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmcore."))
        })
        .collect()
}

/// Per crash signature, how many guests' vmcores were kept so far.
#[derive(Debug, Default)]
pub struct VmcoreBook {
    kept: BTreeMap<String, usize>,
}

impl VmcoreBook {
    /// A guest crashed with `signature` and brought back `collected`: keep
    /// its vmcores if fewer than `keep` guests' were kept for that
    /// signature, else remove them. Returns the removed paths.
    pub fn settle(&mut self, signature: &str, collected: &[PathBuf], keep: usize) -> Vec<PathBuf> {
        let cores = vmcores(collected);
        if cores.is_empty() {
            return Vec::new();
        }
        let n = self.kept.entry(signature.to_string()).or_default();
        if *n < keep {
            *n += 1;
            return Vec::new();
        }
        cores
            .into_iter()
            .filter(|p| std::fs::remove_file(p).is_ok())
            .cloned()
            .collect()
    }
}

/// Bytes allocated under `dir`, links not followed.
pub fn usage(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => usage(&e.path()),
            Ok(m) if m.is_file() => allocated(&m),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(p: &Path, bytes: usize) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, vec![7u8; bytes]).unwrap();
    }

    #[test]
    fn disks_go_and_the_rest_stays() {
        let d = tempfile::tempdir().unwrap();
        let g = d.path().join("guest-1");
        for (n, size) in [("root.qcow2", 300_000), ("collect.img", 100_000)] {
            file(&g.join(n), size);
        }
        file(&g.join("console.log"), 1000);
        file(&g.join("crash/core.txt.0"), 1000);
        let before = usage(d.path());
        assert!(before >= 400_000, "{before}");
        let freed = drop_disks(&[
            g.join("root.qcow2"),
            g.join("collect.img"),
            g.join("payload.img"),
        ]);
        assert!(freed >= 400_000, "{freed}");
        assert!(!g.join("root.qcow2").exists() && !g.join("collect.img").exists());
        assert!(g.join("console.log").exists() && g.join("crash/core.txt.0").exists());
        assert!(usage(d.path()) < 100_000);
    }

    #[test]
    fn vmcores_are_kept_for_the_first_n_crashes_of_each_signature() {
        let d = tempfile::tempdir().unwrap();
        let mut book = VmcoreBook::default();
        let guest = |i: usize| {
            let c = d.path().join(format!("guest-{i}/crash"));
            let files = vec![c.join("vmcore.0"), c.join("core.txt.0"), c.join("info.0")];
            for f in &files {
                file(f, 10);
            }
            files
        };
        let (g1, g2, g3) = (guest(1), guest(2), guest(3));
        assert!(book.settle("aaaa", &g1, 1).is_empty());
        assert_eq!(book.settle("aaaa", &g2, 1), vec![g2[0].clone()]);
        // Another signature keeps its own first vmcore.
        assert!(book.settle("bbbb", &g3, 1).is_empty());
        assert!(g1[0].exists() && !g2[0].exists() && g3[0].exists());
        // core.txt and info always stay.
        assert!(g2[1].exists() && g2[2].exists());
        // --keep-vmcores 0 keeps none.
        let g4 = guest(4);
        assert_eq!(VmcoreBook::default().settle("c", &g4, 0).len(), 1);
    }
}
