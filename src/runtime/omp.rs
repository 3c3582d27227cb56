//! Is the calling thread inside an active OpenMP parallel region?
//!
//! parfor has no link-time dependency on any OpenMP runtime: it looks up
//! `omp_in_parallel` among the symbols already loaded in the process (libgomp, LLVM
//! libomp and Intel's runtime all export it). A process may load an OpenMP runtime
//! after its first parfor call (a Python extension, say), so a failed lookup is
//! retried, at most every `RETRY` and every 64th call.

use std::os::raw::c_int;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// `omp_in_parallel` state: 0 never looked up, 1 absent, else the function address.
static FUNC: AtomicUsize = AtomicUsize::new(0);
/// Calls since the lookup failed, to space out clock reads.
static MISS_CALLS: AtomicU32 = AtomicU32::new(0);
/// Nanoseconds since `epoch()` of the last failed lookup.
static LAST_MISS: AtomicU64 = AtomicU64::new(0);
/// A failed lookup costs about a microsecond; retrying every 100 ms bounds that cost
/// to 0.001 % of a core while still noticing a runtime loaded later.
const RETRY: Duration = Duration::from_millis(100);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

type InParallel = unsafe extern "C" fn() -> c_int;

/// True when the calling thread runs inside an active OpenMP parallel region (one
/// with more than one thread).
pub(crate) fn in_parallel() -> bool {
    let mut f = FUNC.load(Ordering::Acquire);
    if f == 1 {
        // Reading the clock costs 25-50 ns on the target VM, a fifth of a whole
        // fork-join: look at it only every 64th call (a racy count is fine here).
        let calls = MISS_CALLS.load(Ordering::Relaxed).wrapping_add(1);
        MISS_CALLS.store(calls, Ordering::Relaxed);
        if calls % 64 != 0 {
            return false;
        }
        let now = epoch().elapsed().as_nanos() as u64;
        if now.saturating_sub(LAST_MISS.load(Ordering::Relaxed)) < RETRY.as_nanos() as u64 {
            return false;
        }
        f = 0;
    }
    if f == 0 {
        f = lookup();
        FUNC.store(f, Ordering::Release);
        if f == 1 {
            LAST_MISS.store(epoch().elapsed().as_nanos() as u64, Ordering::Relaxed);
            return false;
        }
    }
    // SAFETY: `f` is the address dlsym returned for `omp_in_parallel`, whose OpenMP
    // signature is `int omp_in_parallel(void)` in every runtime; it has no
    // preconditions and may be called from any thread.
    let f: InParallel = unsafe { std::mem::transmute::<usize, InParallel>(f) };
    // SAFETY: see above.
    unsafe { f() != 0 }
}

#[cfg(miri)]
fn lookup() -> usize {
    // Miri cannot run dlsym; it interprets pure-Rust tests with no OpenMP runtime.
    1
}

/// The symbol name, NUL-terminated. A byte string rather than a `c"..."` literal:
/// the cbindgen that maturin bundles cannot parse C-string literals.
#[cfg(not(miri))]
const NAME: &[u8] = b"omp_in_parallel\0";

#[cfg(not(miri))]
fn lookup() -> usize {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only reads the
    // loaded objects' symbol tables.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, NAME.as_ptr().cast()) };
    if p.is_null() {
        1
    } else {
        p as usize
    }
}
