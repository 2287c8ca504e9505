//! Reading a file a user named, with a bound: a regular file only (not
//! /dev/zero, not a FIFO that would wait for a writer), at most `max`
//! bytes whatever its size claims. Suites, reports for `verdict` and
//! `repro` are read this way; triage streams its input instead.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The file's bytes, or one line saying why not. `what` names the kind of
/// file in the size message ("a suite", "a report").
pub fn read(path: &Path, max: u64, what: &str) -> Result<Vec<u8>, String> {
    // O_NONBLOCK: opening a FIFO must not wait for a writer before its type
    // is seen; a regular file reads the same either way.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| e.to_string())?;
    let m = f.metadata().map_err(|e| e.to_string())?;
    if !m.is_file() {
        return Err("not a regular file".into());
    }
    if m.len() > max {
        return Err(format!(
            "{} bytes is larger than {what} can be ({max})",
            m.len()
        ));
    }
    let mut buf = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > max {
        return Err(format!("larger than {what} can be ({max} bytes)"));
    }
    Ok(buf)
}

/// As `read`, as UTF-8 text.
pub fn read_text(path: &Path, max: u64, what: &str) -> Result<String, String> {
    String::from_utf8(read(path, max, what)?).map_err(|_| "not UTF-8 text".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_oversized_files_are_refused() {
        assert_eq!(
            read(Path::new("/dev/zero"), 10, "x").unwrap_err(),
            "not a regular file"
        );
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, "0123456789a").unwrap();
        assert!(
            read(&p, 10, "a thing")
                .unwrap_err()
                .contains("larger than a thing")
        );
        assert_eq!(read_text(&p, 11, "x").unwrap(), "0123456789a");
    }
}
