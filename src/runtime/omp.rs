//! parfor beside an OpenMP runtime: is the calling thread inside an active OpenMP
//! parallel region, and running a call on the OpenMP runtime's own threads.
//!
//! parfor has no link-time dependency on any OpenMP runtime: it looks up
//! `omp_in_parallel` among the symbols already loaded in the process (libgomp, LLVM
//! libomp and Intel's runtime all export it). A process may load an OpenMP runtime
//! after its first parfor call (a Python extension, say), so a failed lookup is
//! retried, at most every `RETRY` and every 64th call.
//!
//! ## Borrowing OpenMP's threads
//! After each parallel region libgomp's workers spin for milliseconds
//! (GOMP_SPINCOUNT) without yielding, and LLVM libomp's for 200 ms (KMP_BLOCKTIME).
//! A program that alternates OpenMP regions with parfor calls then finds the other
//! cores taken whenever parfor's own workers need them: measured on the 2-core
//! target machine, parfor's side of such a loop ran 2-360 times slower than alone.
//! Two teams cannot share the cores well; one team can. So while parfor's workers
//! are being kept off the CPUs ([`note_contention`], called by a spinning worker that
//! picked jobs up half a millisecond late twice within a second) and an OpenMP runtime is loaded, calls run
//! their parts on OpenMP's threads through `GOMP_parallel`, the entry point gcc
//! emits for `#pragma omp parallel` (LLVM libomp exports it too). PARFOR_OMP_TEAM
//! =always does this whenever OpenMP is loaded, =never never.

use std::ffi::c_void;
use std::os::raw::{c_int, c_uint};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::config::{self, OmpTeam};
use super::once::ForkOnce;
use super::placement;
use super::FirstPanic;

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
    *EPOCH.get_or_init(Instant::now)
}

/// The clock origin of `LAST_MISS` (fork-safe, see `once.rs`).
static EPOCH: ForkOnce<Instant> = ForkOnce::new();

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

fn lookup() -> usize {
    symbol(b"omp_in_parallel\0").map_or(1, |p| p as usize)
}

/// The address of a loaded symbol. `name` is NUL-terminated: a byte string rather
/// than a `c"..."` literal, which the cbindgen that maturin bundles cannot parse.
#[cfg(not(miri))]
fn symbol(name: &[u8]) -> Option<*mut c_void> {
    debug_assert_eq!(name.last(), Some(&0));
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only reads the
    // loaded objects' symbol tables.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr().cast()) };
    (!p.is_null()).then_some(p)
}

#[cfg(miri)]
fn symbol(_name: &[u8]) -> Option<*mut c_void> {
    // Miri cannot run dlsym; it interprets pure-Rust tests with no OpenMP runtime.
    None
}

/// `void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads,
/// unsigned flags)`: libgomp's ABI since GCC 4.9, also exported by LLVM libomp.
type GompParallel = unsafe extern "C" fn(extern "C" fn(*mut c_void), *mut c_void, c_uint, c_uint);
type OmpInt = unsafe extern "C" fn() -> c_int;

/// The OpenMP entry points a borrowed call needs.
struct OmpTeamFns {
    parallel: GompParallel,
    thread_num: OmpInt,
    num_threads: OmpInt,
}

/// The borrowed-call entry points (fork-safe, see `once.rs`).
static FNS: ForkOnce<Option<OmpTeamFns>> = ForkOnce::new();

/// The entry points, looked up once an OpenMP runtime was seen in the process.
fn team_fns() -> Option<&'static OmpTeamFns> {
    if FUNC.load(Ordering::Acquire) <= 1 {
        // No OpenMP runtime seen (yet): `in_parallel` keeps looking for one.
        return None;
    }
    FNS.get_or_init(|| {
        let parallel = symbol(b"GOMP_parallel\0")?;
        let thread_num = symbol(b"omp_get_thread_num\0")?;
        let num_threads = symbol(b"omp_get_num_threads\0")?;
        // SAFETY: these are the runtime's exports of the OpenMP API and libgomp ABI
        // functions with exactly these signatures (see the type aliases).
        unsafe {
            Some(OmpTeamFns {
                parallel: std::mem::transmute::<*mut c_void, GompParallel>(parallel),
                thread_num: std::mem::transmute::<*mut c_void, OmpInt>(thread_num),
                num_threads: std::mem::transmute::<*mut c_void, OmpInt>(num_threads),
            })
        }
    })
    .as_ref()
}

/// `placement::ticks()` when a worker last reported contention; 0: never.
static CONTENDED_AT: AtomicU64 = AtomicU64::new(0);
/// A spinning worker this many ticks late (about half a millisecond) was kept off
/// the CPU by another thread; twice within [`BORROW_TICKS`] is contention.
pub(crate) const CONTENDED_TICKS: u64 = 1_300_000;
/// After contention is reported, calls borrow OpenMP's threads for this many ticks
/// (about a second) before trying parfor's own team again.
pub(crate) const BORROW_TICKS: u64 = 2_600_000_000;

/// Called by a worker that picked jobs up [`CONTENDED_TICKS`] late twice in a row.
pub(crate) fn note_contention(now: u64) {
    CONTENDED_AT.store(now.max(1), Ordering::Relaxed);
}

/// Set in a forked child: libgomp's thread pool does not survive fork() (its
/// workers do not exist in the child and the next region would wait for them), so a
/// child never borrows, whatever PARFOR_OMP_TEAM says; it uses parfor's own team,
/// which `mod.rs` rebuilds there.
static FORKED: AtomicBool = AtomicBool::new(false);

/// From the `pthread_atfork` child handler: async-signal-safe (atomic stores only).
pub(crate) fn after_fork_in_child() {
    EPOCH.reset_in_child();
    FNS.reset_in_child();
    FORKED.store(true, Ordering::Relaxed);
    CONTENDED_AT.store(0, Ordering::Relaxed);
}

/// Whether a call of more than one part should run on OpenMP's threads now.
fn should_borrow() -> bool {
    if FORKED.load(Ordering::Relaxed) {
        return false;
    }
    match config::config().omp_team {
        OmpTeam::Never => false,
        OmpTeam::Always => true,
        OmpTeam::Auto => {
            let at = CONTENDED_AT.load(Ordering::Relaxed);
            at != 0 && placement::ticks().wrapping_sub(at) < BORROW_TICKS
        }
    }
}

/// What the OpenMP threads of a borrowed call share.
struct Borrowed<'a> {
    part: &'a (dyn Fn(usize) + Sync),
    parts: usize,
    fns: &'static OmpTeamFns,
    panic: FirstPanic,
}

/// The function each OpenMP thread runs: parts tid, tid + team, ... so that every
/// part runs even when OpenMP gives fewer threads than asked (OMP_DYNAMIC, thread
/// limits). Panics are caught here: they must not unwind through OpenMP's frames.
extern "C" fn run_parts(data: *mut c_void) {
    // SAFETY: `data` is the `Borrowed` that `borrow` passed to GOMP_parallel, which
    // does not return (so the value stays alive) before every thread is back here.
    let b = unsafe { &*(data as *const Borrowed<'_>) };
    // SAFETY: OpenMP API functions with no preconditions, called inside the region.
    let (me, team) = unsafe { ((b.fns.thread_num)(), (b.fns.num_threads)()) };
    let team = usize::try_from(team).unwrap_or(1).max(1);
    let mut tid = usize::try_from(me).unwrap_or(0);
    while tid < b.parts {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| (b.part)(tid))) {
            b.panic.record(p);
        }
        tid += team;
    }
}

/// Runs `part(tid)` for tid in 0..parts on the OpenMP runtime's threads when this
/// call should borrow them (see the module docs); `false` when it should not or
/// cannot, and nothing ran. A panic in a part is re-raised here once all are done.
pub(crate) fn borrow(parts: usize, part: &(dyn Fn(usize) + Sync)) -> bool {
    if !should_borrow() {
        return false;
    }
    let Some(fns) = team_fns() else {
        return false;
    };
    let Ok(threads) = c_uint::try_from(parts) else {
        return false;
    };
    let b = Borrowed {
        part,
        parts,
        fns,
        panic: FirstPanic::default(),
    };
    // SAFETY: GOMP_parallel runs `run_parts(data)` on a team of up to `threads`
    // threads (the caller among them) and returns once all have returned; `b` lives
    // until then. Flags 0: the default thread binding.
    unsafe {
        (fns.parallel)(
            run_parts,
            &b as *const Borrowed<'_> as *mut c_void,
            threads,
            0,
        )
    };
    b.panic.resume();
    true
}
