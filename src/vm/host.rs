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
