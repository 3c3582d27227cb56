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
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use super::config::{self, OmpTeam};
use super::once::ForkOnce;
use super::placement;
use super::FirstPanic;

/// `omp_in_parallel`: null while never looked up, [`absent`] after a failed lookup,
/// else the function. A pointer, not an integer, so that the function pointer made
/// from it keeps the provenance `dlsym` gave it.
static FUNC: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
/// The `dlopen` handle of the OpenMP runtime `FUNC` came from, kept open for the life
/// of the process: while parfor holds it the runtime cannot be unloaded, so the
/// cached function pointers never dangle. Null: symbols are looked up with
/// RTLD_DEFAULT (a runtime linked into the executable, which is never unloaded).
/// (Unused under Miri, which cannot call `dlopen`: the lookup is compiled out there.)
#[cfg_attr(miri, allow(dead_code))]
static HANDLE: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
/// Calls since the lookup failed, to space out clock reads.
static MISS_CALLS: AtomicU32 = AtomicU32::new(0);
/// Nanoseconds since `epoch()` of the last failed lookup.
static LAST_MISS: AtomicU64 = AtomicU64::new(0);
/// A failed lookup costs about ten microseconds (a walk of the loaded objects);
/// retrying every 100 ms bounds that cost to 0.01 % of a core while still noticing
/// a runtime loaded later.
const RETRY: Duration = Duration::from_millis(100);

/// The marker `FUNC` holds after a failed lookup: the address of a private static,
/// which no function has.
fn absent() -> *mut c_void {
    static MARKER: u8 = 0;
    std::ptr::addr_of!(MARKER).cast_mut().cast()
}

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
    if f == absent() {
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
        f = std::ptr::null_mut();
    }
    if f.is_null() {
        f = lookup().unwrap_or_else(absent);
        FUNC.store(f, Ordering::Release);
        if f == absent() {
            LAST_MISS.store(epoch().elapsed().as_nanos() as u64, Ordering::Relaxed);
            return false;
        }
    }
    // SAFETY: `f` is the address dlsym returned for `omp_in_parallel` in a runtime
    // that stays loaded (see HANDLE); its OpenMP signature is `int
    // omp_in_parallel(void)` in every runtime, with no preconditions, callable from
    // any thread.
    let f: InParallel = unsafe { std::mem::transmute::<*mut c_void, InParallel>(f) };
    // SAFETY: see above.
    unsafe { f() != 0 }
}

/// Finds `omp_in_parallel` in a loaded OpenMP runtime and pins that runtime.
///
/// `dlsym(RTLD_DEFAULT)` sees only the executable and libraries loaded with
/// RTLD_GLOBAL; CPython loads extension modules RTLD_LOCAL, and so the libgomp that
/// numpy, scikit-learn or PyTorch bring (issue 13). So, as threadpoolctl does, the
/// loaded objects are walked with `dl_iterate_phdr`, and each OpenMP runtime among
/// them (libgomp, LLVM libomp, Intel libiomp) is opened with RTLD_NOLOAD, which
/// returns a handle to the loaded copy without loading anything, and whose symbols
/// `dlsym(handle)` then finds whatever the copy's visibility.
#[cfg(not(miri))]
fn lookup() -> Option<*mut c_void> {
    const NAME: &[u8] = b"omp_in_parallel\0";
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only reads the
    // loaded objects' symbol tables.
    let global = unsafe { libc::dlsym(libc::RTLD_DEFAULT, NAME.as_ptr().cast()) };
    if !global.is_null() {
        // Pin the object that defines it, when it is a library (the executable is
        // never unloaded, and then the handle stays null: RTLD_DEFAULT).
        if let Some(handle) = object_of(global) {
            HANDLE.store(handle, Ordering::Release);
        }
        return Some(global);
    }
    for name in loaded_openmp_runtimes() {
        // SAFETY: `name` is a NUL-terminated path of an object that is loaded now;
        // RTLD_NOLOAD never loads anything (a null return: it was unloaded since).
        let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
        if handle.is_null() {
            continue;
        }
        // SAFETY: a live handle and a NUL-terminated name.
        let f = unsafe { libc::dlsym(handle, NAME.as_ptr().cast()) };
        if f.is_null() {
            // SAFETY: the handle came from the dlopen above; this drops its reference.
            unsafe { libc::dlclose(handle) };
            continue;
        }
        // Kept open (never dlclosed): see HANDLE.
        HANDLE.store(handle, Ordering::Release);
        return Some(f);
    }
    None
}

#[cfg(miri)]
fn lookup() -> Option<*mut c_void> {
    // Miri cannot run dlsym; it interprets pure-Rust tests with no OpenMP runtime.
    None
}

/// A handle that pins the shared object defining `addr`, or `None` for the
/// executable or when it cannot be known.
#[cfg(not(miri))]
fn object_of(addr: *mut c_void) -> Option<*mut c_void> {
    // SAFETY: Dl_info is plain data, valid zeroed; dladdr only fills it.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is writable; dladdr reads the loader's tables.
    if unsafe { libc::dladdr(addr, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dli_fname is the NUL-terminated path of a loaded object.
    let handle = unsafe { libc::dlopen(info.dli_fname, libc::RTLD_NOW | libc::RTLD_NOLOAD) };
    (!handle.is_null()).then_some(handle)
}

/// Paths of the loaded objects whose file name marks an OpenMP runtime.
#[cfg(not(miri))]
fn loaded_openmp_runtimes() -> Vec<std::ffi::CString> {
    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: dl_iterate_phdr passes a valid info and our `data`, a Vec.
        let (info, found) = unsafe { (&*info, &mut *data.cast::<Vec<std::ffi::CString>>()) };
        if info.dlpi_name.is_null() {
            return 0;
        }
        // SAFETY: dlpi_name is a NUL-terminated path (empty for the executable).
        let path = unsafe { std::ffi::CStr::from_ptr(info.dlpi_name) };
        let file = path.to_bytes().rsplit(|&b| b == b'/').next().unwrap_or(&[]);
        if [&b"libgomp"[..], b"libomp", b"libiomp"]
            .iter()
            .any(|p| file.starts_with(p))
        {
            found.push(path.to_owned());
        }
        0
    }
    let mut found: Vec<std::ffi::CString> = Vec::new();
    let _walk = LoaderWalk::begin();
    // SAFETY: `visit` matches the callback type and only reads what it is given;
    // `found` outlives the call. Opening happens after the walk, outside the
    // loader's lock that dl_iterate_phdr holds.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&mut found as *mut Vec<_>).cast()) };
    found
}

/// Who holds the loader walk: [`FREE`], [`WALKER`] (a thread inside
/// `dl_iterate_phdr`) or [`FORK`] (a `fork()` between its prepare and its parent or
/// child handlers).
///
/// `dl_iterate_phdr` holds glibc's loader write lock, and `fork()` does not reset
/// that lock in the child (glibc 2.36): a child forked while another thread walked
/// inherits it held by a thread that does not exist there, and its first lookup
/// hangs for ever (seen in `tests/edges.rs` `fork_during_first_call`: every child of
/// a round stuck in `dl_iterate_phdr`). So walks and forks exclude each other, as
/// malloc's arenas and fork do: `fork()`'s prepare handler waits for a walk to end
/// (microseconds) and holds off new ones until the fork is done.
static LOADER_WALK: AtomicU8 = AtomicU8::new(FREE);
const FREE: u8 = 0;
#[cfg_attr(miri, allow(dead_code))] // Miri does not walk the loader (see `lookup`).
const WALKER: u8 = 1;
const FORK: u8 = 2;

/// Holds [`LOADER_WALK`] for one walk.
#[cfg(not(miri))]
struct LoaderWalk;

#[cfg(not(miri))]
impl LoaderWalk {
    fn begin() -> LoaderWalk {
        // The handlers must be in place before the first walk (a registration is
        // wholly before or after any fork: see `register_fork_handler`).
        super::register_fork_handler();
        while LOADER_WALK
            .compare_exchange(FREE, WALKER, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::thread::yield_now();
        }
        LoaderWalk
    }
}

#[cfg(not(miri))]
impl Drop for LoaderWalk {
    fn drop(&mut self) {
        LOADER_WALK.store(FREE, Ordering::Release);
    }
}

/// `fork()`'s prepare handler: waits until no thread walks the loaded objects and
/// keeps new walks out. Run twice in one fork when the handler was registered twice
/// (see `register_fork_handler`): the second run finds the fork's own hold.
pub(crate) fn before_fork() {
    loop {
        match LOADER_WALK.compare_exchange(FREE, FORK, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) | Err(FORK) => return,
            Err(_) => std::thread::yield_now(),
        }
    }
}

/// `fork()`'s parent handler (and part of the child's): walks may start again.
pub(crate) fn after_fork_in_parent() {
    LOADER_WALK.store(FREE, Ordering::Release);
}

/// The address of a symbol of the OpenMP runtime found by [`lookup`]. `name` is
/// NUL-terminated: a byte string rather than a `c"..."` literal, which the cbindgen
/// that maturin bundles cannot parse.
#[cfg(not(miri))]
fn symbol(name: &[u8]) -> Option<*mut c_void> {
    debug_assert_eq!(name.last(), Some(&0));
    let handle = match HANDLE.load(Ordering::Acquire) {
        h if h.is_null() => libc::RTLD_DEFAULT,
        h => h,
    };
    // SAFETY: dlsym with a live handle (never closed) or RTLD_DEFAULT and a
    // NUL-terminated name only reads symbol tables.
    let p = unsafe { libc::dlsym(handle, name.as_ptr().cast()) };
    (!p.is_null()).then_some(p)
}

#[cfg(miri)]
fn symbol(_name: &[u8]) -> Option<*mut c_void> {
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
    let f = FUNC.load(Ordering::Acquire);
    if f.is_null() || f == absent() {
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
/// A spinning worker this late picking up a job was kept off the CPU by another
/// thread; twice within [`BORROW`] is contention. Half a millisecond: longer than
/// a spinning worker's pick-up (well under 10 us when it has its CPU) and than
/// most one-off preemptions, shorter than the scheduler's slice (3-4 ms for CFS
/// and EEVDF with a few runnable threads), which a spinning OpenMP worker takes.
pub(crate) const CONTENDED: std::time::Duration = std::time::Duration::from_micros(500);
/// After contention is reported, calls borrow OpenMP's threads for this long
/// before trying parfor's own team again: long against a call, so that a loaded
/// OpenMP runtime is not probed on every call, short enough to notice it go idle.
pub(crate) const BORROW: std::time::Duration = std::time::Duration::from_secs(1);

/// Called by a worker that picked jobs up [`CONTENDED`] late twice in a row.
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
    after_fork_in_parent();
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
            at != 0 && placement::ticks().wrapping_sub(at) < placement::ticks_for(BORROW)
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
