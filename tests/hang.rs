//! The hang checks can fail. A platform that is the real Linux backend except
//! that one op of worker 0 blocks in read(2) on a pipe the test holds open:
//! a real syscall that does not return until the test lets it.
#![cfg(target_os = "linux")]

mod common;
use common::*;
use ifstress::engine::{OnHang, Run, RunConfig};
use ifstress::model::{LinkKind, OpKind, Scope, Tag};
use ifstress::plan::Op;
use ifstress::platform::baseline::{Baseline, Case, Names};
use ifstress::platform::linux::Linux;
use ifstress::platform::{EnvError, Executor, KernelLog, KindProbe, Outcome, Platform, Session};
use ifstress::world::{StackId, World};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Blocking {
    inner: Linux,
    /// The read end; whoever takes it blocks on it.
    pipe: Mutex<Option<OwnedFd>>,
}

struct BSession {
    inner: Arc<dyn Session>,
    plat: &'static Blocking,
}

struct BExec {
    inner: Box<dyn Executor>,
    plat: &'static Blocking,
    worker: usize,
    ops: u32,
}

impl Executor for BExec {
    fn exec(&mut self, op: &Op) -> Outcome {
        self.ops += 1;
        let due = self.worker == 0 && self.ops == 20 && op.kind == OpKind::UpDown;
        if let Some(fd) = due.then(|| self.plat.pipe.lock().unwrap().take()).flatten() {
            let mut b = [0u8; 1];
            // Blocks until the test closes the write end.
            // SAFETY: b is a valid buffer.
            unsafe { libc::read(fd.as_raw_fd(), b.as_mut_ptr() as *mut _, 1) };
            return Outcome::Ok;
        }
        self.inner.exec(op)
    }
    fn finish(&mut self) {
        self.inner.finish()
    }
}

impl Session for BSession {
    fn executor(self: Arc<Self>, worker: usize) -> anyhow::Result<Box<dyn Executor>> {
        Ok(Box::new(BExec {
            inner: self.inner.clone().executor(worker)?,
            plat: self.plat,
            worker,
            ops: 0,
        }))
    }
    fn teardown(&self) -> anyhow::Result<()> {
        self.inner.teardown()
    }
    fn dying(&self, g: Duration) -> anyhow::Result<Vec<(StackId, String)>> {
        self.inner.dying(g)
    }
}

impl Platform for Blocking {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn kernel(&self) -> String {
        self.inner.kernel()
    }
    fn require_privileges(&self) -> Result<(), EnvError> {
        self.inner.require_privileges()
    }
    fn require_features(&self) -> Result<(), EnvError> {
        self.inner.require_features()
    }
    fn load_modules(&self, k: &[LinkKind]) -> anyhow::Result<Vec<String>> {
        self.inner.load_modules(k)
    }
    fn probe_kinds(&self, t: &Tag, k: &[LinkKind]) -> anyhow::Result<Vec<KindProbe>> {
        self.inner.probe_kinds(t, k)
    }
    fn start(&self, w: Arc<World>) -> anyhow::Result<Arc<dyn Session>> {
        // SAFETY of the 'static: the platform is leaked for the test's life.
        let plat: &'static Blocking = unsafe { &*(self as *const Blocking) };
        Ok(Arc::new(BSession {
            inner: self.inner.start(w)?,
            plat,
        }))
    }
    fn kernel_log(&self) -> anyhow::Result<Box<dyn KernelLog>> {
        self.inner.kernel_log()
    }
    fn leftovers(&self, t: Scope) -> anyhow::Result<Vec<String>> {
        self.inner.leftovers(t)
    }
    fn cleanup(&self, t: Scope) -> anyhow::Result<Vec<String>> {
        self.inner.cleanup(t)
    }
    fn syscall_of(&self, o: OpKind, k: LinkKind) -> &'static str {
        self.inner.syscall_of(o, k)
    }
    fn kernel_facts(&self) -> ifstress::platform::facts::KernelFacts {
        self.inner.kernel_facts()
    }
    fn memory_counters(&self) -> std::collections::BTreeMap<String, i64> {
        self.inner.memory_counters()
    }
    fn force_dump(&self) -> std::io::Result<()> {
        panic!("a test never crashes the machine")
    }
    fn thread_id(&self) -> i64 {
        self.inner.thread_id()
    }
    fn thread_stack(&self, tid: i64) -> Option<String> {
        self.inner.thread_stack(tid)
    }
    fn rss_bytes(&self) -> Option<u64> {
        self.inner.rss_bytes()
    }
    fn baseline(&self, c: Case, n: &Names) -> Baseline {
        self.inner.baseline(c, n)
    }
}

#[test]
fn an_op_that_does_not_return_is_a_hang_and_a_stall() {
    require_root!();
    let host = host_test();
    let mut fds = [0; 2];
    // SAFETY: fds has room for two.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh descriptors.
    let (r, w) = unsafe {
        (
            <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fds[0]),
            <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fds[1]),
        )
    };
    let plat: &'static Blocking = Box::leak(Box::new(Blocking {
        inner: Linux,
        pipe: Mutex::new(Some(r)),
    }));
    let suite = ifstress::suite::parse(
        "name = \"hang\"\ndescription = \"d\"\ntargets = [\"test\"]\n[topology]\nstacks = 1\nlinks = [ { kind = \"pair\", count = 2 } ]\n[[loop]]\nname = \"l\"\nworkers = 1\nops = { up-down = 1 }\n[checks]\nhang_after = \"2s\"\n",
        "hang.toml",
    )
    .unwrap();
    // Let the op go after 7 s: past the 5 s run, within the 30 s quiesce bound.
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(7));
        drop(w);
    });
    let cfg = RunConfig {
        suite,
        duration: Duration::from_secs(5),
        seed: 1,
        workers_scale: 1,
        journal: None,
        journal_max_bytes: 1 << 20,
        journal_port: None,
        quiet: true,
        load_modules: false,
        dying_grace: Some(Duration::from_secs(2)),
        on_hang: OnHang::Report,
    };
    let report = Run::prepare(plat, cfg).unwrap().execute().unwrap();
    release.join().unwrap();
    let hang = report
        .findings
        .iter()
        .find(|f| f.kind == "hang")
        .expect("no hang finding");
    assert_eq!(
        hang.title,
        "op up-down on ".to_string()
            + hang
                .title
                .trim_start_matches("op up-down on ")
                .split(' ')
                .next()
                .unwrap()
            + " has not returned after 2 s"
    );
    assert!(
        hang.excerpt.contains("worker 0 (thread "),
        "{}",
        hang.excerpt
    );
    // The kernel shows where the thread sleeps: its stack, or wchan and syscall.
    assert!(
        hang.excerpt.contains("wchan:") || hang.excerpt.contains("pipe"),
        "{}",
        hang.excerpt
    );
    let stall = report
        .findings
        .iter()
        .find(|f| f.kind == "stall")
        .expect("no stall finding");
    assert_eq!(
        stall.title,
        "no op completed for 2 s while 1 ops were in flight"
    );
    assert!(!report.clean());
    assert!(report.leftovers.is_empty());
    assert!(leftover_namespaces().is_empty());
    host.assert_untouched();
}
