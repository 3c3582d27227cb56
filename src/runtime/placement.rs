//! Keeping a worker off its leader's CPU.
//!
//! A fork-join only pays off when the leader and its workers run at the same time on
//! different CPUs. Linux places a thread woken from a futex by its waker's side, and
//! measured on the 2-core target machine (a KVM guest) the woken worker often lands
//! on the leader's own CPU and stays there while both spin: then every call costs a
//! hand-off of the CPU (2.8-3.0 us per 2-item loop, against 0.75 us when the worker
//! runs on the other CPU; 2000 calls out of 2000 stayed co-located in some rounds).
//! The load balancer would separate them only after milliseconds.
//!
//! So a worker that sees, on receiving a job, that it runs on the CPU its leader
//! announced moves itself: it narrows its affinity mask to exclude that CPU (the
//! kernel migrates it at once) and then restores the mask it had, so it is never
//! pinned and `taskset` or cgroup changes keep their effect. When the mask allows no
//! other CPU it stays. The check costs one `sched_getcpu` (a read of the rseq area
//! with glibc 2.35 and later); the move, a few microseconds, happens only when the
//! scheduler co-located the two.
//!
//! The other CPU may be taken, though: beside OpenMP, libgomp's workers spin there
//! for milliseconds after each region without yielding. A worker moved there runs
//! only when the scheduler preempts them (measured: 3 ms per parfor call when SUM
//! calls alternate with OpenMP regions). So a worker that was spinning, yet picked
//! a job up late ([`STARVED_TICKS`]), goes back to its leader's CPU, where the leader
//! yields to it while it waits, and stays there for a while: 1 ms the first time,
//! twice as long each time it is starved again right after, up to 0.1 s
//! ([`BACKOFF_MIN_TICKS`]).

/// The CPU the calling thread runs on, or -1 where that cannot be known.
pub(crate) fn current_cpu() -> i32 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sched_getcpu has no preconditions; it returns -1 on failure.
        unsafe { libc::sched_getcpu() }
    }
    #[cfg(not(target_os = "linux"))]
    {
        -1
    }
}

/// Called by a leader that has just woken a parked worker, before it runs its own
/// part. Linux often queues the woken thread on its waker's CPU, where it cannot run
/// until the leader stops computing: the worker's part then starts only after the
/// leader's (measured: the first 1e6 dot after a 0.2 s pause took 0.85-1.9 ms
/// against 0.7 ms for OpenBLAS, the second one 0.45 ms for both). Yielding once lets
/// such a worker run at once, and it then moves itself off this CPU
/// ([`Worker::on_job`]); when it was queued elsewhere the yield returns at once
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
        use std::sync::OnceLock;
        use std::time::Instant;
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// A spinning worker that picks up a job this many ticks after it was posted was
/// kept off its CPU by another thread (about 50-100 us: a spinning worker normally
/// sees a job within a microsecond; parked workers are not judged by this).
const STARVED_TICKS: u64 = 200_000;
/// The first stay of a worker beside its leader after it was starved away from its
/// leader's CPU, in ticks (about 1 ms). Starved again on a job posted within
/// [`AGAIN_TICKS`] or a stay's length (the longer) of the end of the last stay, it
/// stays twice as long, up to [`BACKOFF_MAX_TICKS`].
///
/// Why start short: on the target VM a spinning worker is now and then kept off its
/// CPU for milliseconds with no other user thread running (right after start-up,
/// twice in a row: 3.5 ms each time, at a sched_yield). A fixed 0.1 s stay turned
/// that into 50-100 ms of both threads on one CPU, at one thread's speed: a 1e6 dot
/// from Python took 0.55 instead of 0.23 ms per call. A thread that really holds the
/// other CPU, such as libgomp's spinning workers, starves every pickup, so the stay
/// grows to its maximum within a few calls.
const BACKOFF_MIN_TICKS: u64 = 2_600_000;
/// The longest stay beside the leader (about 0.1 s).
const BACKOFF_MAX_TICKS: u64 = 300_000_000;
/// See [`BACKOFF_MIN_TICKS`] (about 10 ms). Measured while a kernel thread held the
/// other CPU for 20-40 ms after start-up: each return there was starved again 1.1 ms
/// after a 1 ms stay (two calls, then the 2.5 ms wait), so a window of one stay never
/// let the stay grow and every third call waited.
const AGAIN_TICKS: u64 = 26_000_000;

/// How long a job waited for a spinning worker that was ready for it, in ticks: from
/// its post (`posted`, the low 32 bits of [`ticks`]) or from `waiting_since`, when the
/// worker began to wait, if that came later.
///
/// A new thread's first job is posted before the thread first runs (0.4-4 ms on the
/// target VM): counted from the post, that start-up read as starvation.
pub(crate) fn lateness(now: u64, posted: u32, waiting_since: u64) -> u64 {
    // Modulo 2^32 ticks (1.6 s at 2.6 GHz): a spinning worker is never that late.
    let since_post = u64::from((now as u32).wrapping_sub(posted));
    since_post.min(now.wrapping_sub(waiting_since))
}

/// The length of the next stay beside the leader for a worker starved on a job
/// posted at `posted_at`, whose last stay (0: none) lasted `backoff` and ended at
/// `stay_until` (see [`BACKOFF_MIN_TICKS`]).
pub(crate) fn next_backoff(backoff: u64, stay_until: u64, posted_at: u64) -> u64 {
    let again = backoff != 0 && posted_at.saturating_sub(stay_until) < backoff.max(AGAIN_TICKS);
    if again {
        (2 * backoff).min(BACKOFF_MAX_TICKS)
    } else {
        BACKOFF_MIN_TICKS
    }
}

/// What a worker remembers between jobs to decide where it runs.
#[derive(Default)]
pub(crate) struct Worker {
    /// Until when (in ticks) this worker stays beside its leader.
    stay_until: u64,
    /// The length of the last stay (0: none yet).
    backoff: u64,
    /// When this worker last picked a job up very late while spinning (0: never).
    last_crowded: u64,
}

impl Worker {
    /// Called on receiving a job that a leader on `leader_cpu` posted at `posted`
    /// (the low 32 bits of [`ticks`]); `waiting_since`: [`ticks`] when this worker
    /// began to wait for it; `parked`: the worker was woken from the futex rather than
    /// spinning.
    pub(crate) fn on_job(
        &mut self,
        leader_cpu: i32,
        posted: u32,
        waiting_since: u64,
        parked: bool,
    ) {
        let now = ticks();
        let here = current_cpu();
        // A parked worker's lateness is the futex wake-up (35-75 us, now and then
        // over a millisecond on the target VM): only a spinning worker's lateness
        // says that another thread holds its CPU.
        if !parked {
            let late = lateness(now, posted, waiting_since);
            if late > super::omp::CONTENDED_TICKS {
                // Twice within the borrowing period: not a one-off preemption.
                if self.last_crowded != 0
                    && now.saturating_sub(self.last_crowded) < super::omp::BORROW_TICKS
                {
                    super::omp::note_contention(now);
                }
                self.last_crowded = now;
            }
            if here != leader_cpu && late > STARVED_TICKS {
                self.backoff = next_backoff(self.backoff, self.stay_until, now - late);
                self.stay_until = now + self.backoff;
                move_to(leader_cpu);
            }
        }
        // Spinning or just woken onto the leader's CPU: the case the move is for.
        if here == leader_cpu && now >= self.stay_until {
            move_off(leader_cpu);
        }
    }
}

/// Moves the calling thread off `cpu` if its affinity mask allows another CPU, then
/// restores the mask. Returns whether it moved.
fn move_off(cpu: i32) -> bool {
    hop(cpu, false)
}

/// Moves the calling thread onto `cpu` if its affinity mask allows it, then restores
/// the mask. Returns whether it moved.
fn move_to(cpu: i32) -> bool {
    hop(cpu, true)
}

/// Narrows the affinity mask to `cpu` alone (`onto`) or to every allowed CPU but
/// `cpu`, which migrates the thread at once, then restores the mask.
fn hop(cpu: i32, onto: bool) -> bool {
    #[cfg(target_os = "linux")]
    {
        let Ok(cpu) = usize::try_from(cpu) else {
            return false;
        };
        let set_size = std::mem::size_of::<libc::cpu_set_t>();
        if cpu >= 8 * set_size {
            return false;
        }
        // SAFETY: cpu_set_t is a plain bit array, valid when zeroed.
        let mut mask: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `mask` is a writable cpu_set_t of `set_size` bytes; pid 0 is this thread.
        if unsafe { libc::sched_getaffinity(0, set_size, &mut mask) } != 0 {
            return false;
        }
        // SAFETY: cpu < CPU_SETSIZE (checked above), the bound these macros need;
        // they only read and write the sets passed.
        let narrow = unsafe {
            let allowed = libc::CPU_ISSET(cpu, &mask);
            let mut narrow: libc::cpu_set_t = std::mem::zeroed();
            if onto {
                libc::CPU_SET(cpu, &mut narrow);
            } else {
                narrow = mask;
                libc::CPU_CLR(cpu, &mut narrow);
            }
            let useful = if onto {
                allowed
            } else {
                libc::CPU_COUNT(&narrow) > 0
            };
            if !useful {
                return false;
            }
            narrow
        };
        // SAFETY: both masks are valid cpu_set_t values of `set_size` bytes. The first
        // call migrates this thread to a CPU of `narrow`; the second only widens the
        // mask again, which does not move it back.
        unsafe {
            if libc::sched_setaffinity(0, set_size, &narrow) != 0 {
                return false;
            }
            libc::sched_setaffinity(0, set_size, &mask);
        }
        true
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (cpu, onto);
        false
    }
}
