//! The fork-join team: a small hand-written fork-join path for the common case,
//! one application thread running a loop or a reduction over all cores.
//!
//! Why not rayon here: a rayon pool called from a thread outside it must inject the
//! job into the pool's queue and block the caller on a latch; measured on the 2-core
//! target machine this costs 14-19 us per call (52-60 us after an idle pause), against
//! 0.6 us for libgomp. OpenMP instead lets the calling thread do its share as thread 0
//! and signals each worker through its own cache line, and that is what this team
//! does: the caller publishes the job, flips each participating worker's signal word,
//! runs part 0 itself, and waits for a count of finished workers. Idle workers spin
//! for the wait policy's time, then park on a futex (see `wait.rs`).
//!
//! The team is used by one leader at a time (`busy`); a caller that finds it busy
//! falls back to the rayon pool (see `mod.rs`), so calls from many application
//! threads at once never wait for each other.
//!
//! ## Safety of the shared job slot
//! `job` is written only by the leader, which holds `busy`, and only while no worker
//! runs a job: the leader writes it, sets `pending`, and then publishes it through
//! each worker's signal word (SeqCst store, so a release). A worker reads it only
//! after observing a new signal (acquire), and stops using it before it decrements
//! `pending` (SeqCst RMW, a release); the leader does not return, nor touch the slot,
//! until it has observed `pending == 0` (acquire). So every access to the slot and to
//! what the job borrows is ordered by happens-before, and the job's borrowed data
//! outlives every use of it.

use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crossbeam_utils::CachePadded;

use super::config::WaitPolicy;
use super::wait::WaitWord;

/// A job as the team sees it: run part `tid`.
pub(crate) type Job<'a> = dyn Fn(usize) + Sync + 'a;

/// A lifetime-erased pointer to the current job (see the module docs for why the
/// pointee outlives every use).
#[derive(Clone, Copy)]
struct JobPtr(*const Job<'static>);

/// One worker's signal word, on its own cache line so that signalling worker i does
/// not disturb the others.
struct Worker {
    signal: CachePadded<WaitWord>,
}

/// The team of worker threads 1..n; the leader is thread 0.
pub(crate) struct Team {
    busy: CachePadded<AtomicBool>,
    /// Workers still running the current job; the leader waits for 0.
    pending: CachePadded<WaitWord>,
    /// The current job. See the module docs.
    job: UnsafeCell<JobPtr>,
    /// Leader-only state: the workers spawned so far and the signal epoch.
    leader: UnsafeCell<LeaderState>,
    /// First panic caught on a worker during the current job.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    policy: WaitPolicy,
}

struct LeaderState {
    workers: Vec<&'static Worker>,
    epoch: u32,
}

// SAFETY: the UnsafeCell fields are accessed under the protocol in the module docs:
// `leader` only by the thread holding `busy`; `job` written by that thread while no
// worker runs and read by workers between a signal and their `pending` decrement.
unsafe impl Sync for Team {}

/// Releases `busy` when the leader is done, even on unwinding.
struct BusyGuard<'a>(&'a AtomicBool);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Team {
    /// A team with no workers yet, leaked: worker threads borrow it for the life of
    /// the process (and in a forked child it must never be dropped; see `fork`).
    pub(crate) fn new_leaked(policy: WaitPolicy) -> &'static Team {
        Box::leak(Box::new(Team {
            busy: CachePadded::new(AtomicBool::new(false)),
            pending: CachePadded::new(WaitWord::default()),
            job: UnsafeCell::new(JobPtr(std::ptr::null::<fn(usize)>() as *const Job<'static>)),
            leader: UnsafeCell::new(LeaderState {
                workers: Vec::new(),
                epoch: 0,
            }),
            panic: Mutex::new(None),
            policy,
        }))
    }

    /// Runs `job(tid)` for every tid in 0..k, part 0 on the calling thread, and
    /// returns when all parts are done. `None` when another leader holds the team.
    /// A panic in any part is re-raised here after every part has finished.
    pub(crate) fn try_run(&'static self, k: usize, job: &Job<'_>) -> Option<Result<(), String>> {
        if self
            .busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        let _busy = BusyGuard(&self.busy);
        // SAFETY: this thread holds `busy`, the only permission to touch `leader`.
        let leader = unsafe { &mut *self.leader.get() };
        if let Err(e) = self.grow(leader, k - 1) {
            return Some(Err(e));
        }
        let erased: *const Job<'_> = job;
        // SAFETY: only the lifetime is erased (same fat-pointer layout); this function
        // does not return before every worker is done with the job (module docs).
        let erased: *const Job<'static> = unsafe { std::mem::transmute(erased) };
        // SAFETY: no worker runs a job now (the previous leader saw pending == 0), and
        // we hold `busy`; see the module docs.
        unsafe { *self.job.get() = JobPtr(erased) };
        self.pending.store_quiet((k - 1) as u32);
        leader.epoch = leader.epoch.wrapping_add(1);
        for w in &leader.workers[..k - 1] {
            w.signal.store_and_wake(leader.epoch);
        }
        let mine = catch_unwind(AssertUnwindSafe(|| job(0)));
        self.pending.wait_until(self.policy, |v| v == 0);
        if let Err(p) = mine {
            resume_unwind(p);
        }
        let theirs = self.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(p) = theirs {
            resume_unwind(p);
        }
        Some(Ok(()))
    }

    /// Spawns workers until there are `n`.
    fn grow(&'static self, leader: &mut LeaderState, n: usize) -> Result<(), String> {
        while leader.workers.len() < n {
            let index = leader.workers.len() + 1;
            let worker: &'static Worker = Box::leak(Box::new(Worker {
                signal: CachePadded::new(WaitWord::default()),
            }));
            std::thread::Builder::new()
                .name(format!("parfor-{index}"))
                .spawn(move || self.worker_main(worker, index))
                .map_err(|e| format!("could not start worker thread {index}: {e}"))?;
            leader.workers.push(worker);
        }
        Ok(())
    }

    fn worker_main(&'static self, me: &'static Worker, index: usize) {
        let mut seen = 0;
        loop {
            seen = me.signal.wait_until(self.policy, |v| v != seen);
            // SAFETY: a new signal was observed (acquire), so the leader's write of the
            // slot is visible and stays unchanged until we decrement `pending`.
            let JobPtr(job) = unsafe { *self.job.get() };
            // SAFETY: the leader keeps the job alive until `pending` reaches 0.
            let job = unsafe { &*job };
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| job(index))) {
                let mut slot = self.panic.lock().unwrap_or_else(|e| e.into_inner());
                slot.get_or_insert(p);
            }
            self.pending.decrement_and_wake_at_zero();
        }
    }
}
