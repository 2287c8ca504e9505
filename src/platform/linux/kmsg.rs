//! /dev/kmsg from a cursor: opened, then positioned at the end, so only what
//! the kernel says during the run is read.

use crate::platform::seam::KernelLog;
use std::io::Read;
use std::os::fd::AsRawFd;

pub struct Kmsg {
    file: std::fs::File,
    buf: Vec<u8>,
}

impl Kmsg {
    pub fn open_at_end() -> std::io::Result<Kmsg> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")?;
        // SAFETY: plain lseek on our descriptor; SEEK_END on /dev/kmsg moves
        // the reader past every record already in the buffer.
        if unsafe { libc::lseek(file.as_raw_fd(), 0, libc::SEEK_END) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Kmsg {
            file,
            buf: vec![0; 16 * 1024],
        })
    }
}

/// The message text of one /dev/kmsg record ("prio,seq,usec,flags;text\n"
/// followed by " KEY=value" continuation lines, which are dropped), if the
/// kernel wrote it. `prio` is facility << 3 | level; the kernel's own
/// messages have facility 0, and a write to /dev/kmsg from userspace never
/// does (devkmsg_write in kernel/printk/printk.c forces LOG_USER when the
/// writer names facility 0 or none), so a daemon's "WARNING:" is not the
/// kernel's.
pub fn record_text(rec: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    let first = rec.split(|&b| b == b'\n').next()?;
    let semi = first.iter().position(|&b| b == b';')?;
    let prio: u32 = std::str::from_utf8(&first[..semi])
        .ok()?
        .split(',')
        .next()?
        .parse()
        .ok()?;
    (prio >> 3 == 0).then(|| String::from_utf8_lossy(&first[semi + 1..]))
}

impl KernelLog for Kmsg {
    fn read_new(&mut self, out: &mut String) -> std::io::Result<()> {
        loop {
            match self.file.read(&mut self.buf) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    if let Some(t) = record_text(&self.buf[..n]) {
                        out.push_str(&t);
                        out.push('\n');
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                // Records were overwritten before we read them; go on from the oldest left.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn record_text_drops_header_and_dictionary() {
        let r = b"4,1234,5678901,-;WARNING: CPU: 0 PID: 1 at net/core/dev.c:1 f+0x1/0x2\n SUBSYSTEM=net\n";
        assert_eq!(
            super::record_text(r).unwrap(),
            "WARNING: CPU: 0 PID: 1 at net/core/dev.c:1 f+0x1/0x2"
        );
        assert!(super::record_text(b"garbage").is_none());
        // Written to /dev/kmsg by a process: facility LOG_USER (1), level 4.
        assert!(
            super::record_text(b"12,99,5,-;WARNING: CPU: 0 PID: 1 at x.c:1 f+0x1/0x2").is_none()
        );
        // Any other non-kernel facility (LOG_DAEMON = 3).
        assert!(super::record_text(b"28,99,5,-;WARNING: something").is_none());
        // A line whose text is cut by the record's end still counts.
        assert_eq!(
            super::record_text(b"6,1,2,-;eth0: link up").unwrap(),
            "eth0: link up"
        );
    }
}
