//! The runtime: who runs a call's parts, and on which threads.
//!
//! [`fork_join`] decides the team size for a call and runs it:
//! - one part (a tiny input, a team of 1, a nested call) runs inline on the caller;
//! - otherwise the caller leads the process's fork-join [`team`](self) and does part 0
//!   itself, as OpenMP's master thread does;
//! - if another application thread is leading the team right now, the call leads
//!   the next free one of [`MAX_TEAMS`] teams, built on first need; when all are
//!   busy it runs every part on the calling thread. So concurrent callers never wait
//!   for each other's bodies, and the threads parfor starts stay bounded.
//!
//! Calls from inside a body, and calls from inside an active OpenMP parallel region,
//! run inline on the calling thread unless `PARFOR_NESTED=1`, as OpenMP itself does
//! with max-active-levels 1: the machine is already busy, and a second team would
//! only oversubscribe it.
//!
//! fork(): worker threads do not survive fork, so the teams live in slots that a
//! `pthread_atfork` child handler empties; the child builds new ones on its next
//! call and never drops (never joins) the parent's, whose threads do not exist there.
//! The design, with its memory orderings, is in `src/runtime/README.md`.

pub mod config;
mod omp;
mod once;
mod placement;
mod team;
mod wait;

use std::any::Any;
use std::cell::Cell;
use std::panic::resume_unwind;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::error::Error;
use team::{Payload, Team, Unwind};

/// The largest team size a call may ask for. Far above any machine parfor targets,
/// low enough that a garbage value from C is an error rather than a thread storm.
pub const MAX_THREADS: usize = 1024;

/// Team size set by `set_num_threads`; 0: from the environment.
static SET_THREADS: AtomicUsize = AtomicUsize::new(0);

#[derive(Clone, Copy, Default)]
struct Context {
    /// Index of this thread in the team of the body it runs.
    index: usize,
    /// How many bodies this thread is inside (nested calls make it > 1).
    depth: usize,
}

thread_local! {
    static CONTEXT: Cell<Context> = const { Cell::new(Context { index: 0, depth: 0 }) };
    /// Set while this thread runs a call whose callbacks may end their thread with a
    /// forced unwind (see [`passing_forced_unwinds`]).
    static PASS_FORCED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, a call whose parts invoke C callbacks, so that a forced unwind
/// (`pthread_exit`, thread cancellation, CPython ending a daemon thread at exit)
/// raised in a callback passes through parfor instead of being caught: the teams run
/// its jobs with [`Unwind::PassForced`]. Rust code of the call must not panic (a
/// panic there is not caught: it ends the process). See `README.md`, "Forced unwinds".
pub(crate) fn passing_forced_unwinds<R>(f: impl FnOnce() -> R) -> R {
    /// Restores the flag, on return and while an unwind leaves `f`.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = PASS_FORCED.try_with(|p| p.set(self.0));
        }
    }
    let _restore = Restore(PASS_FORCED.try_with(|p| p.replace(true)).unwrap_or(false));
    f()
}

/// How this thread's calls treat unwinding now.
fn unwind_mode() -> Unwind {
    if PASS_FORCED.try_with(Cell::get).unwrap_or(false) {
        Unwind::PassForced
    } else {
        Unwind::CatchPanics
    }
}

/// Fails when `n` exceeds [`MAX_THREADS`].
pub fn check_team_size(n: usize) -> Result<(), String> {
    if n > MAX_THREADS {
        Err(format!(
            "{n} threads requested; the most is PARFOR_MAX_THREADS = {MAX_THREADS}"
        ))
    } else {
        Ok(())
    }
}

/// Sets the default team size for later calls (0 restores the environment's).
pub fn set_num_threads(n: usize) -> Result<(), String> {
    check_team_size(n)?;
    SET_THREADS.store(n, Ordering::Relaxed);
    Ok(())
}

/// The team size a call from this thread with no explicit size would use.
pub fn num_threads() -> usize {
    if must_run_inline() {
        1
    } else {
        default_threads()
    }
}

/// Inside a body: this thread's index in the team (0 for the caller). Outside: 0.
pub fn thread_index() -> usize {
    CONTEXT.with(|c| c.get().index)
}

fn default_threads() -> usize {
    match SET_THREADS.load(Ordering::Relaxed) {
        0 => config::config().default_threads,
        n => n,
    }
}

/// True when a call must not use more than the calling thread: nested in a body, or
/// inside an active OpenMP region, unless PARFOR_NESTED=1.
fn must_run_inline() -> bool {
    !config::config().nested && (CONTEXT.with(|c| c.get().depth) > 0 || omp::in_parallel())
}

/// The team size a call will use: the request (0: the default), at most
/// `max_useful`, and 1 when the call must run inline.
pub(crate) fn team_size(requested: usize, max_useful: usize) -> usize {
    let want = if requested > 0 {
        requested
    } else {
        default_threads()
    };
    let k = want.min(max_useful).max(1);
    if k > 1 && must_run_inline() {
        1
    } else {
        k
    }
}

/// Marks this thread as running part `index` of a body until dropped.
struct Enter(Context);

impl Enter {
    fn new(index: usize) -> Self {
        let old = CONTEXT.with(|c| c.get());
        CONTEXT.with(|c| {
            c.set(Context {
                index,
                depth: old.depth + 1,
            })
        });
        Enter(old)
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        let old = self.0;
        CONTEXT.with(|c| c.set(old));
    }
}

/// Runs `f(tid, k)` for every tid in 0..k, where k = [`team_size`]`(requested,
/// max_useful)`, and returns when all are done. Parts may run at the same time on
/// different threads, or one after another: `f` must not wait for another part.
/// A panic in any part is re-raised on the caller once every part has finished.
pub(crate) fn fork_join(
    requested: usize,
    max_useful: usize,
    f: &(dyn Fn(usize, usize) + Sync),
) -> Result<(), Error> {
    // A `&dyn` is itself a small Copy job: the team carries its two words.
    fork_join_copy(requested, max_useful, f)
}

/// Runs part `tid` of a job that `fork_join_copy` posted.
///
/// # Safety
/// `p` holds an `F` (copied bitwise) whose borrows are alive.
unsafe fn call_copy<F: Fn(usize, usize)>(p: &Payload, tid: usize, k: usize) {
    // SAFETY: the function's contract; F is Copy, so reading it in place is a copy.
    let f = unsafe { &*p.0.as_ptr().cast::<F>() };
    let _in = Enter::new(tid);
    f(tid, k);
}

/// As [`fork_join`], for a small closure that can be copied: it travels by value in
/// the workers' mailboxes, so a worker reads the job from the cache line that brought
/// it the signal instead of from the caller's stack (see `team::Payload`). Closures
/// too large for a payload go through `fork_join`, which posts a reference to them.
/// Up to 40 bytes the job shares the signal's cache line; up to 104 bytes it takes
/// one more line.
pub(crate) fn fork_join_copy<F>(requested: usize, max_useful: usize, f: F) -> Result<(), Error>
where
    F: Fn(usize, usize) + Copy + Send + Sync,
{
    if std::mem::size_of::<F>() > std::mem::size_of::<Payload>()
        || std::mem::align_of::<F>() > std::mem::align_of::<Payload>()
    {
        return fork_join(requested, max_useful, &f);
    }
    let k = team_size(requested, max_useful);
    if k == 1 {
        let _in = Enter::new(0);
        f(0, 1);
        return Ok(());
    }
    let mut payload = Payload::uninit();
    // SAFETY: F fits the payload's size and alignment (checked above).
    unsafe { payload.0.as_mut_ptr().cast::<F>().write(f) };
    // SAFETY: `call_copy::<F>` reads the F written above; F is Send + Sync + Copy, so
    // each worker may use its own bitwise copy, and `run` returns only after every
    // part is done, while F's borrows are still alive.
    unsafe { run(k, &f, call_copy::<F>, &payload, std::mem::size_of::<F>()) }
}

/// Runs the `k` parts of a job, on OpenMP's threads when borrowing them, else on the
/// first free team, else on the caller alone; `f` is the same job as `call` with
/// `payload`.
///
/// # Safety
/// `call(payload, tid, k)` must be sound to run on any thread until this returns.
unsafe fn run(
    k: usize,
    f: &(dyn Fn(usize, usize) + Sync),
    call: team::Call,
    payload: &Payload,
    bytes: usize,
) -> Result<(), Error> {
    let part = |tid: usize| {
        let _in = Enter::new(tid);
        f(tid, k);
    };
    // The child handler must be in place before a call borrows OpenMP's threads too.
    register_fork_handler();
    if omp::borrow(k, &part) {
        return Ok(());
    }
    let unwind = unwind_mode();
    for slot in &TEAMS {
        // SAFETY: the caller's contract.
        if let Some(done) = unsafe { team(slot).try_run(k, call, payload, bytes, unwind) } {
            return done;
        }
    }
    // Every team is led by another caller: run all parts here, one after another
    // (`fork_join`'s contract allows it), rather than start more threads.
    (0..k).for_each(part);
    Ok(())
}

/// The first panic caught in the parts of a call, kept to be re-raised on the
/// calling thread once every part has finished (a panic must not unwind out of a
/// worker thread, nor through an OpenMP runtime's frames).
#[derive(Default)]
pub(crate) struct FirstPanic {
    /// Set once a payload is stored: the caller skips the lock when none was.
    caught: AtomicBool,
    payload: Mutex<Option<Box<dyn Any + Send>>>,
}

impl FirstPanic {
    /// Keeps `payload` unless an earlier one is kept already.
    pub(crate) fn record(&self, payload: Box<dyn Any + Send>) {
        let mut slot = self.payload.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(payload);
        self.caught.store(true, Ordering::Release);
    }

    /// Re-raises the kept panic, if any, leaving the slot empty for the next call.
    pub(crate) fn resume(&self) {
        if self.caught.load(Ordering::Acquire) {
            self.caught.store(false, Ordering::Relaxed);
            let kept = self
                .payload
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(p) = kept {
                resume_unwind(p);
            }
        }
    }
}

/// A slot holding a leaked, process-wide object that a forked child must replace.
struct ForkSlot<T: 'static> {
    ptr: AtomicPtr<T>,
    initialising: AtomicBool,
}

impl<T> ForkSlot<T> {
    const fn new() -> Self {
        ForkSlot {
            ptr: AtomicPtr::new(std::ptr::null_mut()),
            initialising: AtomicBool::new(false),
        }
    }

    /// The object, built by `make` on first use in this process.
    fn get(&self, make: impl FnOnce() -> &'static T) -> &'static T {
        let p = self.ptr.load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: non-null pointers in the slot come from leaked `&'static T`.
            return unsafe { &*p };
        }
        // A spin lock rather than a Mutex: a Mutex held by another thread at fork()
        // would stay locked forever in the child; this flag the child handler resets.
        while self
            .initialising
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::thread::yield_now();
        }
        let result = match self.ptr.load(Ordering::Acquire) {
            // SAFETY: as above.
            p if !p.is_null() => unsafe { &*p },
            _ => {
                let t = make();
                self.ptr.store(t as *const T as *mut T, Ordering::Release);
                t
            }
        };
        self.initialising.store(false, Ordering::Release);
        result
    }

    /// In a forked child: forget (leak) the parent's object.
    fn forget(&self) {
        self.ptr.store(std::ptr::null_mut(), Ordering::Relaxed);
        self.initialising.store(false, Ordering::Relaxed);
    }
}

/// How many teams concurrent callers may lead at once. The first serves the common
/// case (one application thread calling); the others let a few application threads
/// call at the same time, each with a whole team, without waiting for each other.
/// Beyond that, callers run their parts alone: at most MAX_TEAMS x (team size - 1)
/// worker threads exist, however many threads call (issue 13, row 6).
pub(crate) const MAX_TEAMS: usize = 8;

static TEAMS: [ForkSlot<Team>; MAX_TEAMS] = [const { ForkSlot::new() }; MAX_TEAMS];

fn team(slot: &'static ForkSlot<Team>) -> &'static Team {
    slot.get(|| {
        register_fork_handler();
        let c = config::config();
        Team::new_leaked(c.wait, c.cpus, c.tree_fanout)
    })
}

/// Registers the `pthread_atfork` child handler, once per process in the common case.
///
/// Not a `Once`: a fork while another thread ran `call_once` would leave the child's
/// `Once` "running" for ever (issue 13, row 1). Two threads racing here, or a fork
/// between the registration and the flag's store, register the handler twice; the
/// handler is idempotent, so that costs nothing but a second run of it in a child.
/// glibc's `pthread_atfork` takes the same lock as `fork()`, so a registration is
/// either wholly before a fork (the child inherits it) or wholly after.
pub(super) fn register_fork_handler() {
    static REGISTERED: AtomicBool = AtomicBool::new(false);
    if !REGISTERED.load(Ordering::Acquire) {
        // SAFETY: registering a handler has no preconditions; `after_fork_in_child`
        // only does atomic loads and stores, which are async-signal-safe.
        unsafe {
            libc::pthread_atfork(
                Some(before_fork),
                Some(after_fork_in_parent),
                Some(after_fork_in_child),
            )
        };
        REGISTERED.store(true, Ordering::Release);
    }
}

/// `fork()`'s prepare handler: no walk of the loaded objects may be under way at
/// the fork (see `omp::before_fork`).
extern "C" fn before_fork() {
    omp::before_fork();
}

extern "C" fn after_fork_in_parent() {
    omp::after_fork_in_parent();
}

extern "C" fn after_fork_in_child() {
    for slot in &TEAMS {
        slot.forget();
    }
    config::CONFIG.reset_in_child();
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    placement::ORIGIN.reset_in_child();
    omp::after_fork_in_child();
}

#[cfg(test)]
mod test;
