//! Memory held back for the end of a run. Under `ulimit -v` (or a machine
//! out of memory) an allocation can fail in the middle of the stress phase;
//! Rust's default answer is to abort, which leaves the run's namespaces or
//! jails behind and writes no report. So the run reserves address space
//! before it creates anything (`arm`), and the process's allocator
//! (`Allocator`, installed by the binary) gives that reserve back the first
//! time an allocation fails, retries, and raises `low()`: the engine then
//! stops the run as it would on a signal, tears down and writes the report
//! with what the reserve left room for.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

/// Held back for teardown and the report: the report of a run (its JSON,
/// the human table, the JUnit XML) is a few hundred KiB at most, teardown
/// allocates little, and a helper thread's stack (2 MiB) may be needed.
pub const RESERVE_BYTES: usize = 8 << 20;
/// Given back a piece at a time: other threads (a worker starting, the
/// journal flusher) may take the first piece's room before the failed
/// allocation's retry gets it, and the next failure still has a piece.
const PIECES: usize = 4;
const PIECE: usize = RESERVE_BYTES / PIECES;

static RESERVE: [AtomicPtr<libc::c_void>; PIECES] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; PIECES];
static LOW: AtomicBool = AtomicBool::new(false);

/// Why the run cannot start: not even the reserve could be mapped.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot reserve {mib} MiB of memory for teardown and the report before creating anything ({0}); raise `ulimit -v` or free memory",
    mib = RESERVE_BYTES >> 20
)]
pub struct NoReserve(std::io::Error);

/// Main-thread stack grown before the reserve is mapped. A stack grows on
/// fault and its growth counts against `ulimit -v` too: with the reserve
/// holding the last of the address space, a deeper call later faults
/// (SIGSEGV, nothing torn down) instead of failing an allocation the
/// reserve could answer. Measured: the debug binary faulted at 20-24 MiB
/// right after mapping the reserve without this.
const STACK_HEADROOM: usize = 1 << 20;

#[inline(never)]
fn grow_stack() {
    let mut room = [0u8; STACK_HEADROOM];
    std::hint::black_box(&mut room);
}

/// Map the reserve's missing pieces. Address space is what `ulimit -v`
/// counts; the pages are never touched, so it costs no resident memory.
pub fn arm() -> Result<(), NoReserve> {
    grow_stack();
    for slot in &RESERVE {
        if !slot.load(Ordering::Acquire).is_null() {
            continue;
        }
        // SAFETY: an anonymous private mapping, owned by the slot from here on.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PIECE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANON,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(NoReserve(std::io::Error::last_os_error()));
        }
        if slot
            .compare_exchange(std::ptr::null_mut(), p, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // SAFETY: our own mapping, never published.
            unsafe { libc::munmap(p, PIECE) };
        }
    }
    Ok(())
}

/// Give a piece of the reserve back (to the allocator that just failed)
/// and say memory ran out. True if there was a piece to give.
pub fn release() -> bool {
    LOW.store(true, Ordering::Release);
    for slot in &RESERVE {
        let p = slot.swap(std::ptr::null_mut(), Ordering::AcqRel);
        if !p.is_null() {
            // SAFETY: a mapping arm() made, taken out of its slot above.
            unsafe { libc::munmap(p, PIECE) };
            return true;
        }
    }
    false
}

/// Memory ran out at least once in this process.
pub fn low() -> bool {
    LOW.load(Ordering::Acquire)
}

/// The system allocator, with one retry after giving back the reserve.
pub struct Allocator;

/// `f` (an allocation), again after each piece of the reserve given back,
/// until it succeeds or the reserve is gone.
#[inline]
fn retrying(mut f: impl FnMut() -> *mut u8) -> *mut u8 {
    let mut p = f();
    while p.is_null() && release() {
        p = f();
    }
    p
}

// SAFETY: every call is forwarded to System with the same arguments; the
// retry happens only after a null result, which leaves nothing allocated
// (a failed realloc leaves `p` as it was).
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded.
        retrying(|| unsafe { System.alloc(l) })
    }

    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded.
        retrying(|| unsafe { System.alloc_zeroed(l) })
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded.
        unsafe { System.dealloc(p, l) }
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: forwarded.
        retrying(|| unsafe { System.realloc(p, l, new) })
    }
}
