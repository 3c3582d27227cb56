//! Spin-then-park waiting on a 32-bit word, with the wake side.
//!
//! ## Protocol
//! A waiter spins on the word for the policy's spin time, then announces itself in
//! a `sleeping` flag and parks on the word with a futex (see [`futex`]). A
//! waker first changes the word, then looks at the flag and issues a wake only when
//! someone may be parked, so the fast path (a spinning waiter) costs no system call.
//!
//! ## Memory ordering
//! Waiter: store `sleeping = true`, then load the word. Waker: store the word, then
//! load `sleeping`. All four are SeqCst, so in the single total order at least one
//! side sees the other's store: either the waiter sees the new word and does not
//! park, or the waker sees the flag and wakes. The futex itself re-checks the word
//! atomically before sleeping, so a wake between the check and the sleep is not lost.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use super::placement::{ticks, ticks_for};

use super::config::WaitPolicy;

/// How often a spinning worker yields the CPU, so that a thread sharing its core
/// can run: the other half of the team, an OpenMP or TBB worker, another pool.
/// Yielding much less often (about every 160 us, 4096 spins on the Intel VM) gave
/// bimodal calls of 87-230 us whenever the leader and its worker were queued on the
/// same CPU; a `sched_yield` with nobody else runnable costs well under a
/// microsecond, so 5 us keeps its cost a few percent of the spin. A duration, read
/// from the TSC (see `placement::ticks_per_ns`), not a count of `pause`
/// instructions, whose cost differs about 10x between CPUs (Skylake's 140 cycles,
/// Zen's and older Intel's 10-65).
pub(crate) const WORKER_YIELD_EVERY: Duration = Duration::from_micros(5);

/// A word that threads wait on, with the flag that says whether anyone is parked.
#[derive(Default)]
pub(crate) struct WaitWord {
    word: AtomicU32,
    sleeping: AtomicBool,
}

impl WaitWord {
    /// The current value (acquire: what the writer published before storing it is visible).
    pub(crate) fn load(&self) -> u32 {
        self.word.load(Ordering::Acquire)
    }

    /// Stores `value` and wakes every parked waiter; true when one was parked.
    pub(crate) fn store_and_wake(&self, value: u32) -> bool {
        self.word.store(value, Ordering::SeqCst);
        let parked = self.sleeping.load(Ordering::SeqCst);
        if parked {
            futex::wake_all(&self.word);
        }
        parked
    }

    /// Changes the word and wakes its waiters if any is parked: for waiters whose
    /// condition lies elsewhere (stored with SeqCst before this call and loaded with
    /// SeqCst in their `done`), so that the Dekker argument above still holds.
    pub(crate) fn nudge(&self) {
        if self.sleeping.load(Ordering::SeqCst) {
            self.word.fetch_add(1, Ordering::SeqCst);
            futex::wake_all(&self.word);
        }
    }

    /// Waits until `done(value)` holds and returns that value, and whether this
    /// thread parked on the way. `done` may also look at other state, provided its
    /// writers call [`WaitWord::nudge`] afterwards. `yield_every`: how often to yield
    /// the CPU while spinning.
    pub(crate) fn wait_until(
        &self,
        policy: WaitPolicy,
        yield_every: Duration,
        done: impl Fn(u32) -> bool,
    ) -> (u32, bool) {
        let v = self.load();
        if done(v) {
            return (v, false);
        }
        if let Some(v) = self.spin(policy, yield_every, &done) {
            return (v, false);
        }
        self.sleeping.store(true, Ordering::SeqCst);
        let v = loop {
            let v = self.word.load(Ordering::SeqCst);
            if done(v) {
                break v;
            }
            futex::wait(&self.word, v);
        };
        self.sleeping.store(false, Ordering::Relaxed);
        (v, true)
    }

    /// The spin phase; `None` when it ran out without `done`. Time is read from
    /// the TSC at each turn (a few nanoseconds, next to the `pause`).
    fn spin(
        &self,
        policy: WaitPolicy,
        yield_every: Duration,
        done: &impl Fn(u32) -> bool,
    ) -> Option<u32> {
        let limit = match policy {
            WaitPolicy::Passive => return None,
            WaitPolicy::Active => None,
            WaitPolicy::Spin(d) if d.is_zero() => return None,
            WaitPolicy::Spin(d) => Some(ticks_for(d)),
        };
        let yield_ticks = ticks_for(yield_every);
        let start = ticks();
        let mut last_yield = start;
        loop {
            let v = self.load();
            if done(v) {
                return Some(v);
            }
            std::hint::spin_loop();
            let now = ticks();
            if now.wrapping_sub(last_yield) >= yield_ticks {
                std::thread::yield_now();
                last_yield = ticks();
            }
            if let Some(limit) = limit {
                if now.wrapping_sub(start) >= limit {
                    return None;
                }
            }
        }
    }
}

/// Linux futex wait and wake on a word. Written here rather than taken from the
/// `atomic-wait` crate, which passes `&AtomicU32` where the variadic system call
/// takes `*mut u32`: Miri (nightly 2026-10) rejects that as undefined behaviour, so
/// the whole runtime could not run under it. `AtomicU32::as_ptr` gives the same
/// address with the right type.
mod futex {
    use std::sync::atomic::AtomicU32;

    /// Sleeps while the word holds `expected` (returns at once when it does not), until
    /// a wake; may also return spuriously (a signal), so callers re-check in a loop.
    pub(super) fn wait(word: &AtomicU32, expected: u32) {
        // SAFETY: FUTEX_WAIT only reads the aligned, live u32 at this address (an
        // atomic read inside the kernel) and takes no other pointer but the NULL
        // timeout; its failures (EAGAIN: value changed, EINTR) need no handling here.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                expected,
                std::ptr::null::<libc::timespec>(),
            )
        };
    }

    /// Wakes every thread sleeping on the word.
    pub(super) fn wake_all(word: &AtomicU32) {
        // SAFETY: FUTEX_WAKE does not access the memory; the address is only a key.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                i32::MAX,
            )
        };
    }
}
