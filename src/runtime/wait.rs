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
//! on one word the whole team shares ([`SharedPark`]), each with its own bit of a
//! futex bitset (`FUTEX_WAIT_BITSET`; worker i has bit i mod 32) and its own
//! `sleeping` flag. A poster stores the words of the workers it posts, then (one
//! SeqCst fence for all of them) loads their flags, and when some are parked
//! advances the shared `epoch` and wakes the bits of exactly those with one
//! `FUTEX_WAKE_BITSET`: one system call, however many are parked (libgomp and libomp
//! likewise wake a team through one barrier word), and it wakes only the workers the
//! call posted. A plain wake of the shared word woke every parked worker, posted or
//! not: with 14 parked workers a 2-part call took 8.9 us instead of 0.9 (16-CPU
//! Xeon, 2026-12-04), each needless wake-up about 0.5 us inside the leader's system
//! call. The waiter stores its flag, loads `epoch`, then its own word; the poster's
//! fence orders its word stores before its flag loads (all SeqCst or fenced), so at
//! least one side sees the other: a waiter that missed its new word is seen parked,
//! and having loaded `epoch` before the poster advanced it, its futex wait returns
//! at once or is woken. Workers whose bits alias (i and i + 32) may wake for each
//! other's posts; they find their word unchanged and park again.

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
/// (see "One futex word for many waiters" above): one wake reaches the parked ones
/// among those a poster names, and no others.
#[derive(Default)]
pub(crate) struct SharedPark {
    epoch: AtomicU32,
}

impl SharedPark {
    /// The futex bitset bit of waiter `index`.
    pub(crate) fn bit(index: usize) -> u32 {
        1 << (index % 32)
    }

    /// Wakes the waiters parked with a bit in `mask` (a poster calls it after storing
    /// their words and, behind a SeqCst fence, seeing their `sleeping` flags set).
    pub(crate) fn wake(&self, mask: u32) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        futex::wake_bits(&self.epoch, mask);
    }

    /// Waits until `done(word)` holds, spinning as `policy` says and then parked on
    /// the shared word with bit `bit`, `sleeping` set while parked; returns the value
    /// and whether this thread parked. The word's writers store it, issue a SeqCst
    /// fence, load `sleeping` (SeqCst) and, when it is set, call [`SharedPark::wake`]
    /// with `bit` in the mask.
    pub(crate) fn wait_until(
        &self,
        word: &AtomicU32,
        sleeping: &AtomicBool,
        bit: u32,
        policy: WaitPolicy,
        yield_every: Duration,
        done: impl Fn(u32) -> bool,
    ) -> (u32, bool) {
        if let Some(v) = spin(word, policy, yield_every, &done) {
            return (v, false);
        }
        sleeping.store(true, Ordering::SeqCst);
        let v = loop {
            let epoch = self.epoch.load(Ordering::SeqCst);
            let v = word.load(Ordering::SeqCst);
            if done(v) {
                break v;
            }
            futex::wait_bits(&self.epoch, epoch, bit);
        };
        sleeping.store(false, Ordering::Relaxed);
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

    /// As [`wait`], as a waiter with bit set `bits` (woken only by a
    /// [`wake_bits`] whose mask shares a bit with it).
    pub(super) fn wait_bits(word: &AtomicU32, expected: u32, bits: u32) {
        // SAFETY: as FUTEX_WAIT above; the second address is unused (NULL) and the
        // bit set is passed by value.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT_BITSET | libc::FUTEX_PRIVATE_FLAG,
                expected,
                std::ptr::null::<libc::timespec>(),
                std::ptr::null::<u32>(),
                bits,
            )
        };
    }

    /// Wakes every thread sleeping on the word whose bit set meets `bits`.
    pub(super) fn wake_bits(word: &AtomicU32, bits: u32) {
        // SAFETY: FUTEX_WAKE_BITSET does not access the memory; the address is only
        // a key, the timeout and second address are unused (NULL).
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAKE_BITSET | libc::FUTEX_PRIVATE_FLAG,
                i32::MAX,
                std::ptr::null::<libc::timespec>(),
                std::ptr::null::<u32>(),
                bits,
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
    use std::sync::atomic::{fence, AtomicBool, AtomicU32, Ordering};
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
        sleeping: [AtomicBool; 4],
        /// What each waiter returned: its word's value, 0 while it waits.
        got: [AtomicU32; 4],
        /// How often each waiter looked at its word: once before parking, then once
        /// per wake-up (spurious ones included).
        looks: [AtomicU32; 4],
    }

    impl Shared {
        /// A poster's side: stores the posts, then (fenced) wakes the parked ones.
        fn post(&self, posts: &[(usize, u32)]) {
            for &(i, v) in posts {
                self.words[i].store(v, Ordering::Release);
            }
            fence(Ordering::SeqCst);
            let mask = posts
                .iter()
                .filter(|&&(i, _)| self.sleeping[i].load(Ordering::SeqCst))
                .fold(0, |m, &(i, _)| m | SharedPark::bit(i));
            if mask != 0 {
                self.park.wake(mask);
            }
        }
    }

    #[test]
    fn one_wake_reaches_the_posted_parked_waiters_and_no_others() {
        let s = Arc::new(Shared::default());
        for i in 0..4 {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                let mut seen = 0;
                loop {
                    let parked;
                    (seen, parked) = s.park.wait_until(
                        &s.words[i],
                        &s.sleeping[i],
                        SharedPark::bit(i),
                        WaitPolicy::Passive,
                        Duration::ZERO,
                        |v| {
                            s.looks[i].fetch_add(1, Ordering::SeqCst);
                            v != seen
                        },
                    );
                    assert!(parked, "a passive waiter parks");
                    s.got[i].store(seen, Ordering::SeqCst);
                    if seen >= 100 {
                        return;
                    }
                }
            });
        }
        assert!(eventually(|| s
            .sleeping
            .iter()
            .all(|f| f.load(Ordering::SeqCst))));
        // Ten posts to waiters 0 and 2, each acknowledged, while 1 and 3 stay
        // parked: a wake of the whole word (the old design) would make them look at
        // their words ten more times; a race with their first futex wait allows one.
        for round in 1..=10 {
            s.post(&[(0, round), (2, round)]);
            assert!(eventually(|| s.got[0].load(Ordering::SeqCst) == round
                && s.got[2].load(Ordering::SeqCst) == round));
        }
        for i in [1, 3] {
            assert_eq!(s.got[i].load(Ordering::SeqCst), 0);
            let looks = s.looks[i].load(Ordering::SeqCst);
            assert!(
                looks <= 3,
                "waiter {i} woke {looks} times for others' posts"
            );
        }
        s.post(&[(0, 100), (1, 100), (2, 100), (3, 100)]);
        assert!(eventually(|| s
            .got
            .iter()
            .all(|g| g.load(Ordering::SeqCst) == 100)));
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
                        &s.sleeping[0],
                        SharedPark::bit(0),
                        WaitPolicy::Spin(Duration::ZERO),
                        Duration::ZERO,
                        |v| v != seen,
                    );
                    s.got[0].store(seen, Ordering::SeqCst);
                }
            })
        };
        for round in 1..=rounds {
            s.post(&[(0, round)]);
            assert!(
                eventually(|| s.got[0].load(Ordering::SeqCst) == round),
                "round {round}: the waiter was never woken"
            );
        }
        waiter.join().unwrap();
    }
}
