//! Where workers run, and how late they pick jobs up.
//!
//! parfor does not move its threads between CPUs. It used to: a worker that found
//! itself on its leader's CPU narrowed its affinity mask to leave it and then
//! restored the mask it had saved. An application that pinned parfor's threads
//! between the two calls had its pin undone (issue 13, row 8: 40 of 300 rounds), and
//! no sequence of `sched_getaffinity`/`sched_setaffinity` calls can exclude that
//! race, so parfor never calls `sched_setaffinity` now: the masks are the
//! application's. The cost is where the scheduler co-locates a woken worker with its
//! leader: the leader's yield after a wake ([`after_wake`]) lets such a worker run at
//! once, and the load balancer separates the two later.
//!
//! What stays here is measuring lateness: a spinning worker that picks a job up late
//! was kept off its CPU by another thread, which `omp.rs` uses to decide when to
//! borrow the OpenMP runtime's threads.

/// Called by a leader that has just woken a parked worker, before it runs its own
/// part. Linux often queues the woken thread on its waker's CPU, where it cannot run
/// until the leader stops computing: the worker's part then starts only after the
/// leader's (measured: the first 1e6 dot after a 0.2 s pause took 0.85-1.9 ms
/// against 0.7 ms for OpenBLAS, the second one 0.45 ms for both). Yielding once lets
/// such a worker run at once; when it was queued elsewhere the yield returns at once
/// (one system call, next to the futex wake just made).
pub(crate) fn after_wake() {
    std::thread::yield_now();
}

/// A cheap monotonic tick count for measuring how late a worker picks up a job:
/// the TSC on x86-64 (a few nanoseconds, constant rate on every CPU this targets),
/// nanoseconds from a process-wide origin elsewhere and under Miri (which does not
/// model `rdtsc`).
pub(crate) fn ticks() -> u64 {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        // SAFETY: rdtsc has no preconditions on x86-64.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    {
        ORIGIN
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_nanos() as u64
    }
}

/// How long [`ticks_per_ns`] compares the TSC with the monotonic clock: long
/// enough that the clock's read cost (20-50 ns) is under 0.05 % of it, short enough
/// to hide in the first call's thread starts (100 us or more). Preemption during the
/// measurement does not bias it: both clocks keep running.
const CALIBRATION: std::time::Duration = std::time::Duration::from_micros(200);

/// [`ticks`] per nanosecond as f64 bits; 0 until measured. Racing measurements
/// store nearly the same value; a forked child keeps the parent's (same CPUs).
static TICKS_PER_NS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The rate of [`ticks`], measured once per process against `CLOCK_MONOTONIC`
/// (1 where ticks are nanoseconds). Every duration threshold of the runtime is
/// converted with it (see [`ticks_for`]) instead of assuming a TSC frequency: the
/// TSC runs at a constant rate set by the CPU's nominal clock, which differs
/// between machines (the 2.6 GHz the old constants assumed is one VM's).
pub(crate) fn ticks_per_ns() -> f64 {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        use std::sync::atomic::Ordering;
        let bits = TICKS_PER_NS.load(Ordering::Relaxed);
        if bits != 0 {
            return f64::from_bits(bits);
        }
        let (t0, c0) = (std::time::Instant::now(), ticks());
        let rate = loop {
            let e = t0.elapsed();
            if e >= CALIBRATION {
                let c1 = ticks();
                break c1.wrapping_sub(c0) as f64 / e.as_nanos() as f64;
            }
            std::hint::spin_loop();
        };
        // A TSC between 0.1 and 100 GHz; anything else (a broken virtual TSC) is
        // read as nanoseconds, which keeps every threshold within 100x of its time.
        let rate = if (0.1..100.0).contains(&rate) {
            rate
        } else {
            1.0
        };
        TICKS_PER_NS.store(rate.to_bits(), Ordering::Relaxed);
        rate
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    {
        let _ = (&TICKS_PER_NS, CALIBRATION);
        1.0
    }
}

/// `d` in [`ticks`], at least 1.
pub(crate) fn ticks_for(d: std::time::Duration) -> u64 {
    ((d.as_nanos() as f64 * ticks_per_ns()) as u64).max(1)
}

/// The origin of [`ticks`] where it reads the clock (fork-safe, see `once.rs`).
#[cfg(not(all(target_arch = "x86_64", not(miri))))]
pub(super) static ORIGIN: super::once::ForkOnce<std::time::Instant> = super::once::ForkOnce::new();

/// How long a job waited for a spinning worker that was ready for it, in ticks: from
/// its post (`posted`, the low 32 bits of [`ticks`]) or from `waiting_since`, when the
/// worker began to wait, if that came later.
///
/// A new thread's first job is posted before the thread first runs (0.4-4 ms on the
/// target VM): counted from the post, that start-up read as starvation.
///
/// `posted` was read on the leader's CPU and `now` on the worker's, whose TSCs need
/// not agree: a post that seems to come after `now` (negative skew) is 0 late, not
/// 2^32 ticks minus a little, which read as "starved" (issue 13). The difference is
/// taken modulo 2^32 and read as signed: a spinning worker is never 2^31 ticks
/// (0.2-2 s at the TSC rates of 1-10 GHz) late, so anything past that is skew.
pub(crate) fn lateness(now: u64, posted: u32, waiting_since: u64) -> u64 {
    let since_post = u64::try_from((now as u32).wrapping_sub(posted) as i32).unwrap_or(0);
    since_post.min(now.saturating_sub(waiting_since))
}

/// What a worker remembers between jobs.
#[derive(Default)]
pub(crate) struct Worker {
    /// When this worker last picked a job up very late while spinning (0: never).
    last_crowded: u64,
}

impl Worker {
    /// Called on receiving a job posted at `posted` (the low 32 bits of [`ticks`]);
    /// `waiting_since`: [`ticks`] when this worker began to wait for it; `parked`:
    /// the worker was woken from the futex rather than spinning.
    pub(crate) fn on_job(&mut self, posted: u32, waiting_since: u64, parked: bool) {
        // A parked worker's lateness is the futex wake-up (35-75 us, now and then
        // over a millisecond on the target VM): only a spinning worker's lateness
        // says that another thread holds its CPU.
        if parked {
            return;
        }
        let now = ticks();
        if lateness(now, posted, waiting_since) > ticks_for(super::omp::CONTENDED) {
            // Twice within the borrowing period: not a one-off preemption.
            if self.last_crowded != 0
                && now.saturating_sub(self.last_crowded) < ticks_for(super::omp::BORROW)
            {
                super::omp::note_contention(now);
            }
            self.last_crowded = now;
        }
    }
}
