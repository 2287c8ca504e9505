//! Putting a report where the user asked, without replacing what the path
//! names. A regular file (or a new name) is written beside and renamed over,
//! so the report is whole or absent; a character device or a FIFO
//! (`/dev/stdout`, `/dev/null`, a serial port, a pipe) is written in place,
//! since renaming over it would replace the node with a regular file. A
//! symlink is followed: the rules apply to what it names, and a regular
//! target is replaced beside the target, so the link stays a link.

use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What a report path names, as far as writing it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Nothing yet, or a regular file: written atomically at this path
    /// (the symlink's target when the path was a symlink).
    Atomic(PathBuf),
    /// A character device or FIFO: opened and written as it is.
    InPlace,
}

fn refuse(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.to_string())
}

/// The least free space a report's file system must have at the start (a
/// report of a long run with many findings is a few hundred KiB).
pub const MIN_FREE_BYTES: u64 = 1 << 20;

/// How `path` would be written, or why it cannot be.
pub fn target(path: &Path) -> io::Result<Target> {
    let lm = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Target::Atomic(path.to_path_buf()));
        }
        Err(e) => return Err(e),
    };
    let link = lm.file_type().is_symlink();
    let m = if link {
        std::fs::metadata(path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                refuse("a symlink to nothing (ifstress does not create a symlink's target)")
            } else {
                e
            }
        })?
    } else {
        lm
    };
    let ft = m.file_type();
    if ft.is_file() {
        let real = if link {
            std::fs::canonicalize(path)?
        } else {
            path.to_path_buf()
        };
        Ok(Target::Atomic(real))
    } else if ft.is_char_device() || ft.is_fifo() {
        Ok(Target::InPlace)
    } else if ft.is_dir() {
        Err(refuse("is a directory"))
    } else {
        Err(refuse(
            "is a block device or a socket: reports go to regular files, character devices and FIFOs only",
        ))
    }
}

/// Write `bytes` to `path` by the rules above.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    match target(path)? {
        Target::Atomic(p) => write_atomically(&p, bytes),
        Target::InPlace => write_in_place(path, bytes),
    }
}

/// A temporary name beside `path` no other writer uses: hidden, with this
/// process's id and a random part, made with O_EXCL so an existing file of
/// that name (someone's `PATH.tmp`) is never touched.
fn temp_beside(path: &Path) -> io::Result<(PathBuf, std::fs::File)> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| refuse("names no file"))?
        .to_string_lossy();
    for _ in 0..16 {
        let tmp = dir.join(format!(
            ".{name}.{}.{:08x}.tmp",
            std::process::id(),
            fastrand::u32(..)
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no free temporary name beside it"))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (tmp, mut f) = temp_beside(path)?;
    let done = f
        .write_all(bytes)
        .and_then(|()| f.sync_all())
        .and_then(|()| {
            drop(f);
            std::fs::rename(&tmp, path)
        });
    if done.is_err() {
        // A full disk leaves no empty file behind.
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

fn write_in_place(path: &Path, bytes: &[u8]) -> io::Result<()> {
    // Non-blocking open: a FIFO without a reader is an error now, not a
    // wait without end (ENXIO); then blocking writes, so a slow reader
    // gets the whole report.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ENXIO) {
                refuse("a FIFO without a reader")
            } else {
                e
            }
        })?;
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on a descriptor this function owns.
    unsafe {
        let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
        }
    }
    let mut f = f;
    f.write_all(bytes)?;
    f.flush()
}

/// Do `a` and `b` name the same file (the same node, or the same name in
/// the same directory once symlinks and `..` are resolved)?
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if a == b {
        return true;
    }
    if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
        return x.dev() == y.dev() && x.ino() == y.ino();
    }
    let resolved = |p: &Path| -> Option<PathBuf> {
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Some(std::fs::canonicalize(dir).ok()?.join(p.file_name()?))
    };
    matches!((resolved(a), resolved(b)), (Some(x), Some(y)) if x == y)
}

/// Free bytes for an unprivileged writer on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> io::Result<u64> {
    let s = nix::sys::statvfs::statvfs(dir).map_err(io::Error::from)?;
    Ok((s.blocks_available() as u64).saturating_mul(s.fragment_size() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_tmp_beside_is_left_alone_and_no_temp_remains() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r.json");
        std::fs::write(d.path().join("r.tmp"), "theirs").unwrap();
        write(&p, b"ours").unwrap();
        write(&p, b"again").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "again");
        assert_eq!(
            std::fs::read_to_string(d.path().join("r.tmp")).unwrap(),
            "theirs"
        );
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_symlink_to_a_file_stays_a_symlink() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real.json");
        std::fs::write(&real, "old").unwrap();
        let link = d.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write(&link, b"new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        assert!(same_file(&link, &real));
    }

    #[test]
    fn a_dangling_symlink_and_a_directory_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let link = d.path().join("dangling");
        std::os::unix::fs::symlink(d.path().join("nothing"), &link).unwrap();
        assert!(target(&link).is_err());
        assert!(target(d.path()).is_err());
        assert!(!d.path().join("nothing").exists());
    }

    #[test]
    fn a_fifo_without_a_reader_is_an_error_not_a_wait() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("fifo");
        nix::unistd::mkfifo(&f, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(target(&f).unwrap(), Target::InPlace);
        let e = write(&f, b"x").unwrap_err();
        assert!(e.to_string().contains("without a reader"), "{e}");
        assert!(std::fs::symlink_metadata(&f).unwrap().file_type().is_fifo());
    }
}
