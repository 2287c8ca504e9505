//! Is the file given as a guest what the guest needs? Checked before any
//! guest boots, so that a wrong file is bad input (exit 2), not three
//! "boot-failure" kernel findings.

use crate::model::GuestOs;
use std::io::Read;
use std::path::Path;

/// Bytes needed to see every signature below.
const HEAD: usize = 1024;

/// Why `path` cannot be booted as `guest`, or None when it looks right.
pub fn problem(guest: GuestOs, path: &Path) -> Option<String> {
    let mut head = Vec::with_capacity(HEAD);
    match std::fs::File::open(path) {
        Ok(f) => {
            if let Err(e) = f.take(HEAD as u64).read_to_end(&mut head) {
                return Some(e.to_string());
            }
        }
        Err(e) => return Some(e.to_string()),
    }
    problem_in(guest, &head)
}

fn problem_in(guest: GuestOs, head: &[u8]) -> Option<String> {
    match guest {
        // x86 boot protocol (Documentation/arch/x86/boot.rst): "HdrS" at
        // 0x202 in every bzImage since 2.0; QEMU's -kernel also takes an
        // ELF with a PVH note, so an ELF passes here and QEMU judges it.
        GuestOs::Linux => {
            let bzimage = head.get(0x202..0x206) == Some(b"HdrS");
            let elf = head.starts_with(b"\x7fELF");
            (!bzimage && !elf).then(|| {
                "not a Linux kernel image (no x86 boot header \"HdrS\" at 0x202, not ELF)".into()
            })
        }
        // A disk: qcow2, or raw with a boot sector (FreeBSD's VM images are
        // GPT with a protective MBR, so both signatures are there).
        GuestOs::Freebsd => {
            let qcow2 = head.starts_with(b"QFI\xfb");
            let mbr = head.get(510..512) == Some(&[0x55, 0xaa]);
            let gpt = head.get(512..520) == Some(b"EFI PART");
            (!qcow2 && !mbr && !gpt).then(|| {
                "not a disk image (neither qcow2 nor a raw disk with an MBR or GPT)".into()
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_neither_a_kernel_nor_a_disk() {
        let t = b"#!/bin/sh\necho hello\n".repeat(100);
        assert!(problem_in(GuestOs::Linux, &t).is_some());
        assert!(problem_in(GuestOs::Freebsd, &t).is_some());
        assert!(problem_in(GuestOs::Linux, b"").is_some());
    }

    #[test]
    fn signatures_are_recognised() {
        let mut bz = vec![0u8; HEAD];
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        assert_eq!(problem_in(GuestOs::Linux, &bz), None);
        let mut raw = vec![0u8; HEAD];
        raw[510] = 0x55;
        raw[511] = 0xaa;
        assert_eq!(problem_in(GuestOs::Freebsd, &raw), None);
        assert_eq!(problem_in(GuestOs::Freebsd, b"QFI\xfb\0\0\0\x03"), None);
        // A kernel is not a disk.
        assert!(problem_in(GuestOs::Freebsd, &bz[..0x300]).is_some());
    }

    #[test]
    fn the_machines_own_kernel_passes() {
        // A real bzImage: the guest kernel every Linux VM test boots.
        if !crate::testutil::in_tier(crate::testutil::Tier::Guest) {
            return;
        }
        let Some(k) = std::fs::read_dir("/boot").ok().and_then(|d| {
            d.flatten()
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().contains("vmlinuz-"))
        }) else {
            crate::testutil::skip("no /boot/vmlinuz-* (CI installs linux-image-amd64)");
            return;
        };
        // Root reads it; others may not, and that is not this check's concern.
        if std::fs::File::open(&k).is_err() {
            crate::testutil::skip("cannot read /boot/vmlinuz-*");
            return;
        }
        assert_eq!(problem(GuestOs::Linux, &k), None, "{}", k.display());
    }
}
