//! One lock file per live run: `/var/run/ifstress/<tag>.lock`, held with
//! flock(2) for the run's life. `ifstress cleanup` spares the tags whose lock
//! is held; the kernel drops a lock when its holder dies, however it died, so
//! a killed run's objects are fair game at once.

use crate::model::Tag;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where the lock files live (on Linux /var/run is /run).
pub const DIR: &str = "/var/run/ifstress";

#[derive(Debug, thiserror::Error)]
#[error("run lock {path}: {source}")]
pub struct LockError {
    path: String,
    source: std::io::Error,
}

fn err(path: &Path, source: std::io::Error) -> LockError {
    LockError {
        path: path.display().to_string(),
        source,
    }
}

/// A held run lock; dropping it removes the file and releases the lock.
#[derive(Debug)]
pub struct RunLock {
    /// Never read: the open description is what holds the flock.
    _held: File,
    path: PathBuf,
}

/// flock without blocking: Ok(true) taken, Ok(false) held by someone else.
fn try_flock(f: &File) -> std::io::Result<bool> {
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// Is `f` still the file at `path`? A sweep may have unlinked it between
/// our open and our flock; a lock on an unlinked file protects nothing.
fn still_there(f: &File, path: &Path) -> std::io::Result<bool> {
    let a = f.metadata()?;
    Ok(match std::fs::metadata(path) {
        Ok(b) => a.ino() == b.ino() && a.dev() == b.dev(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    })
}

impl RunLock {
    /// Take `tag`'s lock in `dir`; None when a live run holds it.
    pub fn acquire_in(dir: &Path, tag: &Tag) -> Result<Option<RunLock>, LockError> {
        std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
        let path = dir.join(format!("{}.lock", tag.id));
        // Bounded: each retry means a sweep unlinked the file just now.
        for _ in 0..8 {
            let file = open(&path).map_err(|e| err(&path, e))?;
            if !try_flock(&file).map_err(|e| err(&path, e))? {
                return Ok(None);
            }
            if still_there(&file, &path).map_err(|e| err(&path, e))? {
                use std::io::Write;
                let mut f = &file;
                let _ = writeln!(f, "{}", std::process::id());
                held().push(path.clone());
                return Ok(Some(RunLock { _held: file, path }));
            }
        }
        Ok(None)
    }

    pub fn acquire(tag: &Tag) -> Result<Option<RunLock>, LockError> {
        RunLock::acquire_in(Path::new(DIR), tag)
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Unlink while still holding the lock, so nobody locks a file that is
        // about to vanish without noticing (see still_there).
        let _ = std::fs::remove_file(&self.path);
        held().retain(|p| p != &self.path);
    }
}

/// The lock files this process holds, for an exit that skips destructors.
fn held() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    static HELD: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    HELD.lock().unwrap_or_else(|p| p.into_inner())
}

/// Unlink every lock file this process holds; for `process::exit` after a
/// second signal, which runs no destructor (a second SIGINT within 10 ms
/// of the start left `<tag>.lock` behind). The flocks go with the process.
pub fn release_all() {
    for p in held().drain(..) {
        let _ = std::fs::remove_file(p);
    }
}

/// Remove the lock files in `dir` no live process holds (a run killed
/// before it could unlink its own), and name them.
pub fn sweep_stale_in(dir: &Path) -> Vec<String> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return removed;
    };
    for e in entries.flatten().take(65536 + 16) {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(tag) = name.strip_suffix(".lock").and_then(Tag::parse) else {
            continue;
        };
        // Taken: nobody held it; dropped at once, which unlinks it.
        if let Ok(Some(l)) = RunLock::acquire_in(dir, &tag) {
            drop(l);
            removed.push(format!("stale run lock {}", dir.join(&name).display()));
        }
    }
    removed
}

pub fn sweep_stale() -> Vec<String> {
    sweep_stale_in(Path::new(DIR))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_refuses_a_second_taker_until_dropped() {
        let d = tempfile::tempdir().unwrap();
        let t = Tag::new(0xbeef);
        let l = RunLock::acquire_in(d.path(), &t).unwrap().expect("free");
        assert!(
            RunLock::acquire_in(d.path(), &t).unwrap().is_none(),
            "a second taker must be refused"
        );
        drop(l);
        assert!(!d.path().join("beef.lock").exists());
        assert!(RunLock::acquire_in(d.path(), &t).unwrap().is_some());
    }

    #[test]
    fn a_sweep_removes_free_lock_files_and_spares_held_ones() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("abcd.lock"), "12345\n").unwrap();
        let live = RunLock::acquire_in(d.path(), &Tag::new(0xbeef))
            .unwrap()
            .unwrap();
        let removed = sweep_stale_in(d.path());
        assert_eq!(removed.len(), 1, "{removed:?}");
        assert!(!d.path().join("abcd.lock").exists());
        assert!(d.path().join("beef.lock").exists());
        drop(live);
    }

    #[test]
    fn a_stale_file_is_taken_and_removed_with_its_lock() {
        // What a killed run leaves: the file, without the flock.
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("abcd.lock"), "12345\n").unwrap();
        let l = RunLock::acquire_in(d.path(), &Tag::new(0xabcd))
            .unwrap()
            .expect("a dead run's lock is free");
        drop(l);
        assert!(!d.path().join("abcd.lock").exists());
    }
}
