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
//!
//! ## One futex word for many waiters
//! A team's workers each spin on their own word (their mailbox's signal), but park
//! on one word the whole team shares ([`SharedPark`]): the leader then wakes every
//! parked worker with one system call after posting them all, instead of one wake
//! per worker (what libgomp and libomp do, with a team barrier word). The waiter
//! counts itself in `parked`, then loads the shared `epoch`, then its own word; the
//! waker stores every own word, then loads `parked` and, when some are parked,
//! advances `epoch` and wakes all. All SeqCst: a waiter that missed its new word
//! loaded `epoch` before the waker advanced it, so its futex wait returns at once or
//! is woken. A parked worker that was not posted wakes, finds its word unchanged and
//! parks again, without spinning.

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
        if let Some(v) = spin(&self.word, policy, yield_every, &done) {
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
}

/// The futex word that many waiters park on, each waiting for a word of its own
/// (see "One futex word for many waiters" above): one wake reaches them all.
#[derive(Default)]
pub(crate) struct SharedPark {
    /// Advanced by every wake; the futex word.
    epoch: AtomicU32,
    /// Waiters parked (or about to park) here.
    parked: AtomicU32,
}

impl SharedPark {
    /// Wakes every waiter parked here, if any: call after storing (SeqCst) the words
    /// they wait for. True when one was parked (one system call, whatever their number).
    pub(crate) fn wake_all(&self) -> bool {
        if self.parked.load(Ordering::SeqCst) == 0 {
            return false;
        }
        self.epoch.fetch_add(1, Ordering::SeqCst);
        futex::wake_all(&self.epoch);
        true
    }

    /// Waits until `done(word)` holds, spinning on `word` for the policy's time and
    /// then parking here, and returns the word's value and whether this thread parked.
    /// The word's writers store it with SeqCst and then call [`SharedPark::wake_all`].
    pub(crate) fn wait_until(
        &self,
        word: &AtomicU32,
        policy: WaitPolicy,
        yield_every: Duration,
        done: impl Fn(u32) -> bool,
    ) -> (u32, bool) {
        if let Some(v) = spin(word, policy, yield_every, &done) {
            return (v, false);
        }
        self.parked.fetch_add(1, Ordering::SeqCst);
        let v = loop {
            let epoch = self.epoch.load(Ordering::SeqCst);
            let v = word.load(Ordering::SeqCst);
            if done(v) {
                break v;
            }
            futex::wait(&self.epoch, epoch);
        };
        self.parked.fetch_sub(1, Ordering::SeqCst);
        (v, true)
    }
}

/// The spin phase of a wait on `word`, after one look at it whatever the policy;
/// `None` when it ran out without `done`. Time is read from the TSC at each turn (a
/// few nanoseconds, next to the `pause`).
fn spin(
    word: &AtomicU32,
    policy: WaitPolicy,
    yield_every: Duration,
    done: &impl Fn(u32) -> bool,
) -> Option<u32> {
    let v = word.load(Ordering::Acquire);
    if done(v) {
        return Some(v);
    }
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
        let v = word.load(Ordering::Acquire);
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

#[cfg(test)]
mod test {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::{SharedPark, WaitPolicy};

    /// Spins (yielding) until `cond` holds; false after 20 s, so a lost wake fails
    /// the test instead of hanging it.
    fn eventually(cond: impl Fn() -> bool) -> bool {
        let end = Instant::now() + Duration::from_secs(20);
        while !cond() {
            if Instant::now() > end {
                return false;
            }
            std::thread::yield_now();
        }
        true
    }

    #[derive(Default)]
    struct Shared {
        park: SharedPark,
        words: [AtomicU32; 4],
        /// What each waiter returned: its word's value, 0 while it waits.
        got: [AtomicU32; 4],
    }

    #[test]
    fn one_wake_reaches_every_parked_waiter_and_only_posted_ones_return() {
        let s = Arc::new(Shared::default());
        assert!(!s.park.wake_all(), "nobody is parked yet");
        for i in 0..4 {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                let (v, parked) =
                    s.park
                        .wait_until(&s.words[i], WaitPolicy::Passive, Duration::ZERO, |v| v != 0);
                assert!(parked, "a passive waiter parks");
                s.got[i].store(v, Ordering::SeqCst);
            });
        }
        assert!(eventually(|| s.park.parked.load(Ordering::SeqCst) == 4));
        // Stores the posts, wakes once, and waits until each posted waiter returned
        // its value.
        let post = |posts: [(usize, u32); 2]| {
            for (i, v) in posts {
                s.words[i].store(v, Ordering::SeqCst);
            }
            assert!(s.park.wake_all());
            assert!(eventually(|| posts
                .iter()
                .all(|&(i, v)| s.got[i].load(Ordering::SeqCst) == v)));
        };
        // Post two of the four; one wake.
        post([(0, 7), (2, 9)]);
        // The other two, woken as well, found their words unchanged: they are still
        // parked and returned nothing.
        assert!(eventually(|| s.park.parked.load(Ordering::SeqCst) == 2));
        assert_eq!(s.got[1].load(Ordering::SeqCst), 0);
        assert_eq!(s.got[3].load(Ordering::SeqCst), 0);
        post([(1, 1), (3, 3)]);
        assert!(eventually(|| s.park.parked.load(Ordering::SeqCst) == 0));
    }

    /// The race the Dekker pair closes: a waiter that parks at once (no spin) while
    /// the waker stores and wakes, round after round; a lost wake leaves a round
    /// unacknowledged.
    #[test]
    fn no_wake_is_lost_when_parking_races_the_post() {
        let rounds = if cfg!(miri) { 20 } else { 20_000 };
        let s = Arc::new(Shared::default());
        let waiter = {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                let mut seen = 0;
                for _ in 0..rounds {
                    (seen, _) = s.park.wait_until(
                        &s.words[0],
                        WaitPolicy::Spin(Duration::ZERO),
                        Duration::ZERO,
                        |v| v != seen,
                    );
                    s.got[0].store(seen, Ordering::SeqCst);
                }
            })
        };
        for round in 1..=rounds {
            s.words[0].store(round, Ordering::SeqCst);
            s.park.wake_all();
            assert!(
                eventually(|| s.got[0].load(Ordering::SeqCst) == round),
                "round {round}: the waiter was never woken"
            );
        }
        waiter.join().unwrap();
    }
}
