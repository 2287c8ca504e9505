//! A serial port of a bhyve guest, copied into a file: bhyve connects the
//! guest's COM port to the A side of an nmdm(4) null-modem pair; a thread
//! here reads the B side and appends what comes to the file the runner
//! tails, as QEMU's `-serial file:` would.

use anyhow::Context;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::Duration;

/// The two ends of the pair named `stem` (`/dev/nmdm<stem>A` and `...B`).
pub fn pair(stem: &str) -> (PathBuf, PathBuf) {
    (
        PathBuf::from(format!("/dev/nmdm{stem}A")),
        PathBuf::from(format!("/dev/nmdm{stem}B")),
    )
}

/// The copying thread of one port; stopping drains what is buffered.
pub struct PortCopy {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PortCopy {
    /// Open the B side (which creates the pair) and copy it into `out`.
    pub fn start(b_side: &Path, out: &Path) -> anyhow::Result<PortCopy> {
        let tty = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(b_side)
            .with_context(|| format!("opening {} (is nmdm(4) loaded?)", b_side.display()))?;
        raw(&tty).with_context(|| format!("setting {} raw", b_side.display()))?;
        let mut file = File::create(out).with_context(|| format!("creating {}", out.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("nmdm-copy".into())
            .spawn(move || copy(tty, &mut file, &flag))?;
        Ok(PortCopy {
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for PortCopy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// No echo (it would type the guest's output back into its console), no
/// line editing or CR/NL translation, no carrier needed: bytes as sent.
fn raw(tty: &File) -> nix::Result<()> {
    use nix::sys::termios::{ControlFlags, SetArg, cfmakeraw, tcgetattr, tcsetattr};
    let mut t = tcgetattr(tty)?;
    cfmakeraw(&mut t);
    t.control_flags |= ControlFlags::CLOCAL;
    tcsetattr(tty, SetArg::TCSANOW, &t)
}

/// Copy until told to stop, then until the port has nothing more.
fn copy(mut tty: File, out: &mut File, stop: &AtomicBool) {
    let mut buf = [0u8; 8192];
    loop {
        match tty.read(&mut buf) {
            Ok(0) => {
                if stop.load(Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(n) => {
                if out.write_all(&buf[..n]).is_err() {
                    return;
                }
                continue;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                if stop.load(Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            // The A side closing ends nothing: bhyve reopens it after
            // bhyveload, and a rebooting guest's port goes quiet, not away.
            Err(_) => {
                if stop.load(Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pty_stands_in_for_an_nmdm_pair_and_everything_written_arrives_in_order() {
        // nmdm(4) is FreeBSD's; a pseudo-terminal is the same kind of
        // device pair, so the copying (raw mode, non-blocking reads, the
        // drain on stop) is tested on it.
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let slave = nix::unistd::ttyname(&pty.slave).expect("ttyname");
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("console.log");
        let mut copy = PortCopy::start(&slave, &out).unwrap();
        let mut master = File::from(pty.master);
        let mut want = Vec::new();
        for i in 0..200 {
            let line = format!("line {i}: Fatal trap 12\r\n");
            master.write_all(line.as_bytes()).unwrap();
            want.extend_from_slice(line.as_bytes());
        }
        std::thread::sleep(Duration::from_millis(300));
        copy.stop();
        let got = std::fs::read(&out).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want)
        );
    }

    #[test]
    fn a_missing_device_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let e = PortCopy::start(Path::new("/dev/nmdm-no-such-B"), &dir.path().join("x"))
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("/dev/nmdm-no-such-B"), "{e:#}");
    }
}
