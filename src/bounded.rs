//! Reading a file a user named, with a bound: a regular file only (not
//! /dev/zero, not a FIFO that would wait for a writer), at most `max`
//! bytes whatever its size claims. Suites, reports for `verdict` and
//! `repro` are read this way; triage streams its input instead.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

fn ours(m: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, m)
}

/// `path` opened for reading if it is a regular file, with its metadata.
/// Non-blocking, and typed by the descriptor, not by an earlier stat: a
/// FIFO (or one swapped in meanwhile) is refused without waiting for a
/// writer; a regular file reads the same either way.
pub fn open_regular(path: &Path) -> std::io::Result<(std::fs::File, std::fs::Metadata)> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let m = f.metadata()?;
    if !m.is_file() {
        return Err(ours("not a regular file".into()));
    }
    Ok((f, m))
}

/// The file's bytes, or why not (the OS's error, its kind kept, or one of
/// ours). `what` names the kind of file in the size message ("a suite").
pub fn read(path: &Path, max: u64, what: &str) -> std::io::Result<Vec<u8>> {
    let (f, m) = open_regular(path)?;
    if m.len() > max {
        return Err(ours(format!(
            "{} bytes is larger than {what} can be ({max})",
            m.len()
        )));
    }
    let mut buf = Vec::new();
    f.take(max + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(ours(format!("larger than {what} can be ({max} bytes)")));
    }
    Ok(buf)
}

/// As `read`, as UTF-8 text.
pub fn read_text(path: &Path, max: u64, what: &str) -> Result<String, String> {
    String::from_utf8(read(path, max, what).map_err(|e| e.to_string())?)
        .map_err(|_| "not UTF-8 text".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_oversized_files_are_refused() {
        assert_eq!(
            read(Path::new("/dev/zero"), 10, "x")
                .unwrap_err()
                .to_string(),
            "not a regular file"
        );
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, "0123456789a").unwrap();
        assert!(
            read(&p, 10, "a thing")
                .unwrap_err()
                .to_string()
                .contains("larger than a thing")
        );
        assert_eq!(read_text(&p, 11, "x").unwrap(), "0123456789a");
    }
}
