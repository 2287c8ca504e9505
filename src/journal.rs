//! A durable, bounded record of the most recent ops of every worker, so that
//! what ran just before a panic can be read after the reboot.
//!
//! Workers write fixed-size records into a lock-free ring of their own (three
//! relaxed stores and a release store per op, no allocation, no formatting).
//! A flusher thread formats what is new every `FLUSH_EVERY`, appends it to
//! `worker-N.log`, fdatasyncs, and rotates the file to `worker-N.log.1` when it
//! passes its share of the size limit, so the directory never holds more than
//! the limit.

use crate::model::OpKind;
use crate::platform::Outcome;
use crate::world::Layout;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::time::Duration;

pub const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// Starts the heartbeat line on the journal port: `#hb OPS [end]`.
pub const HEARTBEAT: &str = "#hb";
/// Starts the per-kind totals line on the journal port, written before each
/// heartbeat: `#ops KIND=ISSUED/OK ...`, counted from every record the
/// flusher drains. A guest that crashes sends no report, yet the host
/// still knows what work its suite did up to the last flush.
pub const OP_TOTALS: &str = "#ops";
/// The port's first line: `#kernel_version N` (FreeBSD's kern.osreldate),
/// so that the host keys known issues by the guest's kernel, which only the
/// guest knows.
pub const KERNEL_VERSION: &str = "#kernel_version";
const RING: usize = 1 << 16;

pub struct Ring {
    slots: Box<[[AtomicU64; 3]]>,
    head: AtomicU64,
}

impl Default for Ring {
    fn default() -> Self {
        let slots: Box<[[AtomicU64; 3]]> = (0..RING).map(|_| Default::default()).collect();
        // The zeroed allocation may come straight from fresh pages (calloc),
        // which become resident only as the ring first wraps: hours for a
        // slow worker, which looks like the tool's RSS creeping up. Touch
        // them now so the journal's memory is paid for at start.
        for s in slots.iter() {
            s[0].store(0, Relaxed);
        }
        Ring {
            slots,
            head: AtomicU64::new(0),
        }
    }
}

/// One decoded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub t_us: u64,
    pub kind: OpKind,
    pub link: u16,
    pub stack: u8,
    pub outcome: Outcome,
    pub latency_us: u32,
}

impl Ring {
    #[inline]
    pub fn push(
        &self,
        t_us: u64,
        kind: OpKind,
        link: u16,
        stack: u8,
        out: Outcome,
        latency_us: u32,
    ) {
        let h = self.head.load(Relaxed);
        let s = &self.slots[(h as usize) & (RING - 1)];
        let code: u64 = match out {
            Outcome::Ok => 0,
            Outcome::Skipped => 0xffff,
            Outcome::Err(e) => (e.clamp(1, 0xfffe)) as u64,
        };
        s[0].store(t_us, Relaxed);
        s[1].store(
            kind.index() as u64 | (link as u64) << 8 | (stack as u64) << 24 | code << 32,
            Relaxed,
        );
        s[2].store(latency_us as u64, Relaxed);
        self.head.store(h + 1, Release);
    }

    /// Records pushed so far.
    pub fn head(&self) -> u64 {
        self.head.load(Acquire)
    }

    /// Records from `from` up to the head, oldest first; those overwritten
    /// meanwhile are skipped. Returns the new read position.
    pub fn drain(&self, from: u64, mut f: impl FnMut(Record)) -> u64 {
        let head = self.head.load(Acquire);
        let start = from.max(head.saturating_sub(RING as u64));
        for seq in start..head {
            let s = &self.slots[(seq as usize) & (RING - 1)];
            let t_us = s[0].load(Relaxed);
            let w = s[1].load(Relaxed);
            let latency_us = s[2].load(Relaxed) as u32;
            // The writer may have lapped us while we read: drop what it could have touched.
            if self.head.load(Acquire) >= seq + RING as u64 {
                continue;
            }
            let code = (w >> 32) & 0xffff;
            let outcome = match code {
                0 => Outcome::Ok,
                0xffff => Outcome::Skipped,
                e => Outcome::Err(e as i32),
            };
            let Some(kind) = OpKind::from_index((w & 0xff) as usize) else {
                continue;
            };
            f(Record {
                seq,
                t_us,
                kind,
                link: (w >> 8) as u16,
                stack: (w >> 24) as u8,
                outcome,
                latency_us,
            });
        }
        head
    }
}

/// The flusher's side.
pub struct Journal {
    dir: PathBuf,
    rings: Vec<Arc<Ring>>,
    layout: Arc<Layout>,
    /// Bytes per file; two files (current and .1) per worker.
    per_file: u64,
    epoch_unix_us: u64,
    /// A serial port (or any writable file) that gets each worker's newest
    /// lines and a heartbeat at every flush: outside the machine, it outlives
    /// a panic that takes the disk's page cache with it.
    port: Option<File>,
    /// `run.txt`, written again if the directory is removed under the run:
    /// without it `postmortem` does not take the directory for a journal.
    header: String,
}

/// Lines per worker per flush sent to the port: a serial line is slow, and
/// only the newest ops matter after a crash.
pub const PORT_TAIL: usize = 16;

/// Bytes formatted before they are written out.
const CHUNK: usize = 64 << 10;
/// No line is shorter: a 16-digit timestamp, worker, sequence, op, names,
/// result and latency.
const MIN_LINE: u64 = 40;

pub struct Handle {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    health: Arc<Health>,
}

impl Handle {
    /// Flush what is left and stop; returns every problem the journal had
    /// (each was also said on stderr when it happened).
    pub fn close(mut self) -> Vec<String> {
        self.stop.store(true, Relaxed);
        if let Some(Err(_)) = self.thread.take().map(|t| t.join()) {
            self.health.say("the journal thread panicked".into());
        }
        self.health.take()
    }
}

/// The journal's troubles, told at once on stderr and kept for the report.
/// The flusher carries on after each: a full disk or a removed directory
/// loses lines, not the run.
#[derive(Default)]
pub struct Health {
    notes: std::sync::Mutex<Vec<String>>,
    since: std::sync::OnceLock<std::time::Instant>,
}

/// Notes kept per run: a disk that stays full must not grow the report.
const MAX_NOTES: usize = 20;

impl Health {
    fn say(&self, what: String) {
        let t = self.since.get_or_init(std::time::Instant::now).elapsed();
        let text = format!("journal at +{:.1} s: {what}", t.as_secs_f64());
        let mut n = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        if n.len() < MAX_NOTES {
            eprintln!("ifstress: {text}");
            n.push(text);
        } else if n.len() == MAX_NOTES {
            eprintln!("ifstress: journal: further problems are not listed");
            n.push("journal: further problems are not listed".into());
        }
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.notes.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

pub fn format_record(
    out: &mut String,
    worker: usize,
    epoch_unix_us: u64,
    r: &Record,
    layout: &Layout,
) {
    let link = layout
        .links
        .get(r.link as usize)
        .map(|l| l.names[0].as_str())
        .unwrap_or("?");
    let stack = layout
        .stacks
        .get(r.stack as usize)
        .map(|s| s.name.as_str())
        .unwrap_or("?");
    let res = match r.outcome {
        Outcome::Ok => "ok",
        Outcome::Skipped => "skipped",
        Outcome::Err(e) => crate::stats::errno_name(e),
    };
    let _ = writeln!(
        out,
        "{} w{worker} #{} {} {link} {stack} {res} {}us",
        epoch_unix_us + r.t_us,
        r.seq,
        r.kind,
        r.latency_us
    );
}

impl Journal {
    /// Create the directory and its `run.txt` header.
    pub fn create(
        dir: &Path,
        workers: usize,
        max_bytes: u64,
        layout: Arc<Layout>,
        header: &str,
        epoch_unix_us: u64,
    ) -> std::io::Result<(Journal, Vec<Arc<Ring>>)> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("run.txt"), header)?;
        let rings: Vec<Arc<Ring>> = (0..workers).map(|_| Arc::new(Ring::default())).collect();
        let per_file = (max_bytes / (2 * workers.max(1) as u64)).max(4096);
        Ok((
            Journal {
                dir: dir.to_path_buf(),
                rings: rings.clone(),
                layout,
                per_file,
                epoch_unix_us,
                port: None,
                header: header.to_string(),
            },
            rings,
        ))
    }

    /// Also stream to `port` (see the field), after a line with the
    /// kernel's version where the platform has one.
    pub fn mirror_to(&mut self, mut port: File, kernel_version: Option<i64>) {
        if let Some(v) = kernel_version {
            // A port that cannot take it is not worth failing the run for.
            let _ = writeln!(port, "{KERNEL_VERSION} {v}");
        }
        self.port = Some(port);
    }

    pub fn start(self) -> std::io::Result<Handle> {
        let stop = Arc::new(AtomicBool::new(false));
        let health = Arc::new(Health::default());
        health.since.get_or_init(std::time::Instant::now);
        let (s2, h2) = (stop.clone(), health.clone());
        let thread = std::thread::Builder::new()
            .name("ifstress-journal".into())
            .spawn(move || self.run(&s2, &h2))?;
        Ok(Handle {
            stop,
            thread: Some(thread),
            health,
        })
    }

    fn open(&self, w: usize) -> std::io::Result<(File, u64)> {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("worker-{w}.log")))?;
        let len = f.metadata()?.len();
        Ok((f, len))
    }

    /// Append to worker `w`'s file, rotating first if `bytes` would take it
    /// past its share.
    fn append(&self, w: usize, file: &mut (File, u64), bytes: &[u8]) -> std::io::Result<()> {
        if file.1 > 0 && file.1 + bytes.len() as u64 > self.per_file {
            file.0.sync_data()?;
            let cur = self.dir.join(format!("worker-{w}.log"));
            std::fs::rename(&cur, self.dir.join(format!("worker-{w}.log.1")))?;
            *file = self.open(w)?;
        }
        file.0.write_all(bytes)?;
        file.1 += bytes.len() as u64;
        Ok(())
    }

    /// An open worker file, or why it is not: a file that failed stays shut
    /// until the next flush retries it, and the same failure is told once.
    fn ensure(&self, w: usize, slot: &mut Slot, health: &Health) {
        if let Some((f, _)) = &slot.file {
            // Written to an unlinked file, lines vanish with the descriptor.
            if f.metadata().is_ok_and(|m| {
                use std::os::unix::fs::MetadataExt;
                m.nlink() == 0
            }) {
                health.say(format!(
                    "worker-{w}.log was removed from {}; making it again",
                    self.dir.display()
                ));
                slot.file = None;
                slot.failing = None;
            }
        }
        if slot.file.is_none() {
            let _ = std::fs::create_dir_all(&self.dir);
            match self.open(w) {
                Ok(f) => slot.file = Some(f),
                Err(e) => slot.fail(w, "opening", e, health),
            }
        }
    }

    fn run(mut self, stop: &AtomicBool, health: &Health) {
        let mut slots: Vec<Slot> = (0..self.rings.len()).map(|_| Slot::default()).collect();
        let mut pos = vec![0u64; self.rings.len()];
        // Lines are formatted and written a chunk at a time, so the buffer
        // stays small however far a fast worker got since the last flush: a
        // buffer sized by the largest batch ever seen grows for hours, as
        // ever rarer bursts come, and reads as the tool's memory creeping up.
        let chunk = (self.per_file as usize / 2).min(CHUNK);
        let mut text = String::with_capacity(chunk + 256);
        // More than a file can hold since the last flush: only the newest
        // lines would survive the rotation, so the rest are skipped.
        let keep = self.per_file / MIN_LINE;
        let mut tail = [None::<Record>; PORT_TAIL];
        let mut port_text = String::new();
        // (issued, ok) per op kind, over every drained record.
        let mut totals = [(0u64, 0u64); OpKind::COUNT];
        for (w, slot) in slots.iter_mut().enumerate() {
            self.ensure(w, slot, health);
        }
        loop {
            let last = stop.load(Relaxed);
            // The whole directory gone (told once, not once per worker):
            // made again with its header, and every file reopened.
            if !self.dir.join("run.txt").exists() {
                let made = std::fs::create_dir_all(&self.dir)
                    .and_then(|()| std::fs::write(self.dir.join("run.txt"), &self.header));
                health.say(match made {
                    Ok(()) => format!("{} was removed; made it again", self.dir.display()),
                    Err(e) => format!(
                        "{} was removed and cannot be made again: {e}",
                        self.dir.display()
                    ),
                });
                for s in &mut slots {
                    s.file = None;
                }
            }
            port_text.clear();
            for (w, ring) in self.rings.iter().enumerate() {
                let from = pos[w].max(ring.head().saturating_sub(keep));
                if ring.head() == from {
                    continue;
                }
                let slot = &mut slots[w];
                self.ensure(w, slot, health);
                let mut n = 0usize;
                let mut failed = None;
                text.clear();
                pos[w] = ring.drain(from, |r| {
                    format_record(&mut text, w, self.epoch_unix_us, &r, &self.layout);
                    let t = &mut totals[r.kind as usize];
                    t.0 += 1;
                    t.1 += u64::from(r.outcome == Outcome::Ok);
                    tail[n % PORT_TAIL] = Some(r);
                    n += 1;
                    if text.len() >= chunk {
                        if let (None, Some(file)) = (&failed, slot.file.as_mut()) {
                            failed = self.append(w, file, text.as_bytes()).err();
                        }
                        text.clear();
                    }
                });
                let mut result = match failed {
                    Some(e) => Err(e),
                    None => match slot.file.as_mut() {
                        Some(file) => self.append(w, file, text.as_bytes()),
                        None => Ok(()),
                    },
                };
                if result.is_ok()
                    && let Some((f, _)) = &slot.file
                {
                    result = f.sync_data();
                }
                match result {
                    Err(e) => {
                        slot.fail(w, "writing", e, health);
                        slot.file = None;
                    }
                    Ok(()) if slot.file.is_some() && slot.failing.take().is_some() => {
                        health.say(format!("worker-{w}.log writable again"));
                    }
                    Ok(()) => {}
                }
                if self.port.is_some() {
                    // The ring of the last PORT_TAIL records, oldest first.
                    for i in n.saturating_sub(PORT_TAIL)..n {
                        if let Some(r) = &tail[i % PORT_TAIL] {
                            format_record(&mut port_text, w, self.epoch_unix_us, r, &self.layout);
                        }
                    }
                }
            }
            if let Some(p) = &mut self.port {
                // The heartbeat: ops issued so far. A host that sees it stop
                // moving knows the run is wedged, even with the kernel alive.
                let ops: u64 = pos.iter().sum();
                port_text.push_str(OP_TOTALS);
                for (k, (issued, ok)) in OpKind::ALL.iter().zip(totals) {
                    if issued > 0 {
                        let _ = write!(port_text, " {k}={issued}/{ok}");
                    }
                }
                port_text.push('\n');
                let _ = writeln!(
                    port_text,
                    "{HEARTBEAT} {ops}{}",
                    if last { " end" } else { "" }
                );
                // A port that cannot take it is not worth failing the run for.
                let _ = p.write_all(port_text.as_bytes());
            }
            if last {
                return;
            }
            std::thread::sleep(FLUSH_EVERY);
        }
    }
}

/// One worker's file in the flusher.
#[derive(Default)]
struct Slot {
    file: Option<(File, u64)>,
    /// The failure already told, so a disk that stays full is told once.
    failing: Option<String>,
}

impl Slot {
    fn fail(&mut self, w: usize, doing: &str, e: std::io::Error, health: &Health) {
        let what = format!("{doing} worker-{w}.log: {e}");
        let kind = format!("{doing} {e}");
        if self.failing.as_deref() != Some(&kind) {
            health.say(format!("{what}; its lines are lost until it recovers"));
            self.failing = Some(kind);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Tag;

    fn layout() -> Arc<Layout> {
        Arc::new(Layout::new(
            &crate::suite::load("vmove").unwrap(),
            &Tag::new(0xa1),
        ))
    }

    #[test]
    fn ring_round_trips_and_skips_what_was_overwritten() {
        let r = Ring::default();
        r.push(5, OpKind::Move, 3, 2, Outcome::Err(19), 77);
        r.push(6, OpKind::Create, 1, 0, Outcome::Skipped, 1);
        let mut got = Vec::new();
        let pos = r.drain(0, |x| got.push(x));
        assert_eq!(pos, 2);
        assert_eq!(
            got[0],
            Record {
                seq: 0,
                t_us: 5,
                kind: OpKind::Move,
                link: 3,
                stack: 2,
                outcome: Outcome::Err(19),
                latency_us: 77
            }
        );
        assert_eq!(got[1].outcome, Outcome::Skipped);
        for i in 0..(RING as u64 + 10) {
            r.push(i, OpKind::UpDown, 0, 0, Outcome::Ok, 1);
        }
        let mut n = 0;
        let mut first = None;
        r.drain(pos, |x| {
            n += 1;
            first.get_or_insert(x.seq);
        });
        // The oldest slot is the one a writer would overwrite next, so it is
        // never trusted: RING - 1 records survive.
        assert_eq!(n, RING - 1);
        assert_eq!(first, Some(13));
    }

    #[test]
    fn a_burst_is_written_in_chunks_without_losing_or_splitting_lines() {
        // 60,000 records (about 4 MiB of text) waiting at the first flush:
        // written a chunk at a time, they must come out whole and in order.
        let dir = tempfile::tempdir().unwrap();
        let (j, rings) = Journal::create(dir.path(), 1, 64 << 20, layout(), "x\n", 0).unwrap();
        let n = 60_000u64;
        for i in 0..n {
            rings[0].push(i, OpKind::Mtu, (i % 12) as u16, 0, Outcome::Err(19), 2);
        }
        assert!(j.start().unwrap().close().is_empty());
        let text = std::fs::read_to_string(dir.path().join("worker-0.log")).unwrap();
        assert!(text.len() > 4 * CHUNK, "too little text to span chunks");
        assert!(!dir.path().join("worker-0.log.1").exists());
        let mut count = 0u64;
        for (i, l) in text.lines().enumerate() {
            assert!(l.starts_with(&format!("{i} w0 #{i} mtu ")), "line {i}: {l}");
            assert!(l.ends_with(" ENODEV 2us"), "line {i}: {l}");
            count += 1;
        }
        assert_eq!(count, n);
    }

    #[test]
    fn files_are_flushed_rotated_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let max = 64 * 1024;
        let (j, rings) =
            Journal::create(dir.path(), 2, max, layout(), "suite = vmove\n", 1_000_000).unwrap();
        let h = j.start().unwrap();
        for i in 0..20_000u64 {
            rings[(i % 2) as usize].push(i, OpKind::Move, (i % 12) as u16, 1, Outcome::Ok, 3);
            if i % 5000 == 0 {
                std::thread::sleep(FLUSH_EVERY + Duration::from_millis(100));
            }
        }
        assert!(h.close().is_empty());
        let mut total = 0;
        for e in std::fs::read_dir(dir.path()).unwrap() {
            total += e.unwrap().metadata().unwrap().len();
        }
        assert!(
            total <= max + 64,
            "journal holds {total} bytes, limit {max}"
        );
        assert!(dir.path().join("worker-0.log.1").exists(), "never rotated");
        let last = std::fs::read_to_string(dir.path().join("worker-1.log")).unwrap();
        let tail = last.lines().last().unwrap();
        assert!(
            tail.starts_with("1019999 w1 #9999 move is00a1p3b "),
            "{tail}"
        );
        assert!(tail.ends_with(" ifstress-00a1-s1 ok 3us"), "{tail}");
    }

    #[test]
    fn the_port_gets_each_workers_newest_lines_and_a_heartbeat() {
        let dir = tempfile::tempdir().unwrap();
        let port = dir.path().join("port");
        let (mut j, rings) =
            Journal::create(&dir.path().join("j"), 2, 1 << 20, layout(), "x\n", 0).unwrap();
        j.mirror_to(File::create(&port).unwrap(), Some(1_403_000));
        let h = j.start().unwrap();
        for i in 0..100u64 {
            rings[(i % 2) as usize].push(i, OpKind::Mtu, 0, 0, Outcome::Ok, 1);
        }
        assert!(h.close().is_empty());
        let text = std::fs::read_to_string(&port).unwrap();
        // First the kernel's version, for the host's known-issue keys.
        assert_eq!(text.lines().next(), Some("#kernel_version 1403000"));
        let ops: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        // 50 ops per worker, at most PORT_TAIL each per flush.
        assert!(ops.len() <= 2 * PORT_TAIL * 2, "{text}");
        assert!(ops.iter().any(|l| l.contains(" w1 #49 mtu ")), "{text}");
        let last = text.lines().last().unwrap();
        assert_eq!(last, "#hb 100 end");
        // Before it, the totals of every record drained, per kind.
        let totals = text.lines().rev().nth(1).unwrap();
        assert_eq!(totals, "#ops mtu=100/100");
    }

    #[test]
    fn a_full_disk_is_told_once_and_the_other_workers_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let (j, rings) = Journal::create(dir.path(), 2, 1 << 20, layout(), "x\n", 0).unwrap();
        // Every write to worker 0's file fails as on a full disk.
        std::os::unix::fs::symlink("/dev/full", dir.path().join("worker-0.log")).unwrap();
        let h = j.start().unwrap();
        for round in 0..4u64 {
            for i in 0..50 {
                rings[0].push(round * 50 + i, OpKind::Mtu, 0, 0, Outcome::Ok, 1);
                rings[1].push(round * 50 + i, OpKind::Mtu, 0, 0, Outcome::Ok, 1);
            }
            std::thread::sleep(FLUSH_EVERY + Duration::from_millis(100));
        }
        let notes = h.close();
        let about0: Vec<_> = notes
            .iter()
            .filter(|n| n.contains("worker-0.log"))
            .collect();
        assert_eq!(about0.len(), 1, "told once, not every flush: {notes:?}");
        assert!(about0[0].contains("lost"), "{notes:?}");
        let w1 = std::fs::read_to_string(dir.path().join("worker-1.log")).unwrap();
        assert_eq!(w1.lines().count(), 200, "worker 1's journal went on");
    }

    #[test]
    fn a_removed_directory_is_noticed_and_made_again() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("j");
        let (j, rings) = Journal::create(&dir, 3, 1 << 20, layout(), "x\n", 0).unwrap();
        let h = j.start().unwrap();
        rings[0].push(1, OpKind::Mtu, 0, 0, Outcome::Ok, 1);
        rings[1].push(1, OpKind::Mtu, 0, 0, Outcome::Ok, 1);
        rings[2].push(1, OpKind::Mtu, 0, 0, Outcome::Ok, 1);
        std::thread::sleep(FLUSH_EVERY + Duration::from_millis(100));
        std::fs::remove_dir_all(&dir).unwrap();
        rings[0].push(2, OpKind::Move, 0, 0, Outcome::Ok, 1);
        rings[1].push(2, OpKind::Move, 0, 0, Outcome::Ok, 1);
        rings[2].push(2, OpKind::Move, 0, 0, Outcome::Ok, 1);
        std::thread::sleep(FLUSH_EVERY + Duration::from_millis(100));
        let notes = h.close();
        assert_eq!(notes.len(), 1, "told once: {notes:?}");
        assert!(notes[0].contains("was removed; made it again"), "{notes:?}");
        let text = std::fs::read_to_string(dir.join("worker-0.log")).unwrap();
        assert!(text.contains(" move "), "the newer line is kept: {text}");
        // postmortem still takes it for a journal.
        assert_eq!(std::fs::read_to_string(dir.join("run.txt")).unwrap(), "x\n");
    }
}
