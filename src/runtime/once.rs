//! Lazily initialised process-wide values that survive `fork()` at any moment.
//!
//! `std::sync::OnceLock` is not fork-safe: when one thread forks while another is
//! inside `get_or_init`, the child inherits a cell marked "running" whose runner does
//! not exist there, and the child's first call waits for it for ever (issue 13, row
//! 1: 3 children of 100 hung in `Once::call`). A [`ForkOnce`] has the same three
//! states in one atomic byte, and the `pthread_atfork` child handler
//! ([`super::after_fork_in_child`]) turns a "running" cell back into "empty", so the
//! child's first use runs the initialiser again. See `src/runtime/README.md`, "Fork
//! at any moment".

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU8, Ordering};

const EMPTY: u8 = 0;
const RUNNING: u8 = 1;
const READY: u8 = 2;

/// A value computed on first use, at most once per process (a forked child that
/// inherited a half-finished initialisation computes it again).
pub(crate) struct ForkOnce<T> {
    state: AtomicU8,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the value is written once, by the thread that moved `state` from EMPTY to
// RUNNING, and read only after `state` is READY (release/acquire); T: Sync + Send
// makes sharing the result and having it built on another thread sound.
unsafe impl<T: Send + Sync> Sync for ForkOnce<T> {}

/// Puts a cell back to EMPTY when its initialiser unwinds, so that a later call
/// retries instead of waiting for ever.
struct Unwinding<'a>(&'a AtomicU8);

impl Drop for Unwinding<'_> {
    fn drop(&mut self) {
        self.0.store(EMPTY, Ordering::Release);
    }
}

impl<T> ForkOnce<T> {
    /// An empty cell.
    pub(crate) const fn new() -> Self {
        ForkOnce {
            state: AtomicU8::new(EMPTY),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// The value, computed by `init` if no one has yet. Threads arriving while
    /// another initialises yield until it is done (initialisers here take
    /// microseconds: an environment read, a symbol lookup).
    pub(crate) fn get_or_init(&self, init: impl FnOnce() -> T) -> &T {
        let mut init = Some(init);
        loop {
            match self.state.load(Ordering::Acquire) {
                READY => {
                    // SAFETY: READY is stored (release) only after the value was written.
                    return unsafe { (*self.value.get()).assume_init_ref() };
                }
                EMPTY => {
                    if self
                        .state
                        .compare_exchange(EMPTY, RUNNING, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        let reset = Unwinding(&self.state);
                        let v = init.take().expect("the initialiser runs once")();
                        std::mem::forget(reset);
                        // SAFETY: this thread alone moved the state to RUNNING, so no
                        // one else writes or reads the value until READY is stored.
                        unsafe { (*self.value.get()).write(v) };
                        self.state.store(READY, Ordering::Release);
                    }
                }
                _ => std::thread::yield_now(),
            }
        }
    }

    /// In a forked child: an initialisation that was running in the parent at the
    /// fork will never finish here, so start over. Only an atomic load and store:
    /// async-signal-safe, as a `pthread_atfork` child handler must be.
    pub(crate) fn reset_in_child(&self) {
        if self.state.load(Ordering::Relaxed) == RUNNING {
            self.state.store(EMPTY, Ordering::Relaxed);
        }
    }
}
