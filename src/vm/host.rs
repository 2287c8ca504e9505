//! Small host-side helpers of the runner: quoting for the guest scripts,
//! finding a program on PATH.

use std::path::PathBuf;

/// A word for `sh`, quoted only when it needs to be. Guest scripts (the
/// Linux /init, the FreeBSD first-boot script) embed ifstress arguments.
pub(crate) fn shell_quote(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

pub(crate) fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|c| c.is_file())
    })
}

/// A file an option names (`--image`, `--module`, `--patch`, `--script`):
/// a regular file, else one line saying what it is instead. `vm run
/// --image /dev/zero` said "no such file" of a device that exists.
pub(crate) fn check_regular(
    flag: &str,
    p: &std::path::Path,
) -> Result<(), crate::error::UsageError> {
    use std::os::unix::fs::FileTypeExt;
    let bad = |why: String| crate::error::UsageError(format!("{flag} {}: {why}", p.display()));
    let m = std::fs::metadata(p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            bad("no such file".into())
        } else {
            bad(e.to_string())
        }
    })?;
    let t = m.file_type();
    let what = if t.is_file() {
        return Ok(());
    } else if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a FIFO"
    } else {
        "a socket"
    };
    Err(bad(format!("{what}, not a regular file")))
}
