//! The fork-join team: a small hand-written fork-join path for the common case,
//! one application thread running a loop or a reduction over all cores.
//!
//! Why not rayon here: a rayon pool called from a thread outside it must inject the
//! job into the pool's queue and block the caller on a latch; measured on the 2-core
//! target machine this costs 14-19 us per call (52-60 us after an idle pause), against
//! 0.6 us for libgomp. OpenMP instead lets the calling thread do its share as thread 0
//! and signals each worker through memory it alone reads, and that is what this team
//! does. Per call, on the critical path, only two cache lines per worker move between
//! cores: the worker's mailbox (job pointer and signal word, written by the leader)
//! and its `done` word (written by the worker). Idle workers spin for the wait
//! policy's time, then park on a futex (see `wait.rs`); so does the leader while it
//! waits for the workers.
//!
//! The team is used by one leader at a time (`busy`); a caller that finds it busy
//! falls back to the rayon pool (see `mod.rs`), so calls from many application
//! threads at once never wait for each other.
//!
//! ## Safety of the mailboxes
//! A worker's `job` cell is written only by the leader holding `busy`, and only while
//! that worker is idle: before the write the leader has seen the worker's `done`
//! equal to the previous epoch (acquire), which the worker stores (release) after its
//! last use of the previous job. The leader then publishes the new job by storing the
//! signal word (SeqCst, a release); the worker reads the cell only after observing the
//! new signal (acquire). The leader does not return, so the job's borrows stay alive,
//! until it has seen every participant's `done` equal to the new epoch.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use super::config::WaitPolicy;
use super::placement;
use super::wait::{WaitWord, SPINS_PER_YIELD};
use super::FirstPanic;

/// The leader, once its own part is done, yields much sooner than an idle worker: a
/// worker woken from a futex is often queued on the leader's CPU (the scheduler's
/// wake-affine placement), and then it runs only when the leader gives way. Spinning
/// 16 pauses (under a microsecond) before each yield bounds that hand-off, while a
/// yield with nobody else runnable costs well under a microsecond.
const LEADER_SPINS_PER_YIELD: u32 = 16;

/// A job as the team sees it: run part `tid`.
pub(crate) type Job<'a> = dyn Fn(usize) + Sync + 'a;

/// A lifetime-erased pointer to a job (see the module docs for why the pointee
/// outlives every use).
#[derive(Clone, Copy)]
struct JobPtr(*const Job<'static>);

/// What the leader writes for one worker: on one cache line, so that the worker
/// finds the job where it found the signal.
struct Mailbox {
    signal: WaitWord,
    job: UnsafeCell<JobPtr>,
    /// The CPU the leader ran on when it posted the job, or -1 when the worker need
    /// not avoid it (see `placement`).
    leader_cpu: AtomicI32,
    /// `placement::ticks()` when the leader posted the job.
    posted: AtomicU64,
}

/// One worker: its mailbox, and the epoch of the last job it finished, on its own
/// line because the worker writes it while the leader reads it.
struct Worker {
    mailbox: CachePadded<Mailbox>,
    done: CachePadded<AtomicU32>,
}

/// The team of worker threads 1..n; the leader is thread 0.
pub(crate) struct Team {
    busy: CachePadded<AtomicBool>,
    /// Where the leader parks while workers finish; workers nudge it.
    leader_wait: CachePadded<WaitWord>,
    /// Leader-only state: the workers spawned so far and the epoch.
    leader: UnsafeCell<LeaderState>,
    /// The first panic a worker caught in the current job.
    panic: FirstPanic,
    policy: WaitPolicy,
    /// CPUs the process may use: a team larger than this cannot avoid sharing them,
    /// so its workers do not try to move off the leader's CPU.
    cpus: usize,
}

struct LeaderState {
    workers: Vec<&'static Worker>,
    epoch: u32,
}

// SAFETY: the UnsafeCell fields follow the protocol in the module docs: `leader` is
// touched only by the thread holding `busy`; each mailbox `job` is written by that
// thread while its worker is idle and read by the worker after a new signal.
unsafe impl Sync for Team {}
// SAFETY: as above for the mailbox cell inside each worker.
unsafe impl Sync for Worker {}

/// Releases `busy` when the leader is done, even on unwinding.
struct BusyGuard<'a>(&'a AtomicBool);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Team {
    /// A team with no workers yet, leaked: worker threads borrow it for the life of
    /// the process (and in a forked child it must never be dropped; see `mod.rs`).
    pub(crate) fn new_leaked(policy: WaitPolicy, cpus: usize) -> &'static Team {
        Box::leak(Box::new(Team {
            busy: CachePadded::new(AtomicBool::new(false)),
            leader_wait: CachePadded::new(WaitWord::default()),
            leader: UnsafeCell::new(LeaderState {
                workers: Vec::new(),
                epoch: 0,
            }),
            panic: FirstPanic::default(),
            policy,
            cpus,
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
        leader.epoch = leader.epoch.wrapping_add(1);
        let epoch = leader.epoch;
        let team = &leader.workers[..k - 1];
        let (cpu, posted) = if k <= self.cpus {
            (placement::current_cpu(), placement::ticks())
        } else {
            (-1, 0)
        };
        let mut woke = false;
        for w in team {
            // SAFETY: the worker is idle: the previous leader saw its `done` reach the
            // previous epoch (or it never ran a job); see the module docs.
            unsafe { *w.mailbox.job.get() = JobPtr(erased) };
            // Relaxed: published with the job by the signal store below.
            w.mailbox.leader_cpu.store(cpu, Ordering::Relaxed);
            w.mailbox.posted.store(posted, Ordering::Relaxed);
            woke |= w.mailbox.signal.store_and_wake(epoch);
        }
        if woke && cpu >= 0 {
            placement::after_wake();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| job(0)));
        let all_done = || team.iter().all(|w| w.done.load(Ordering::SeqCst) == epoch);
        if !all_done() {
            self.leader_wait
                .wait_until(self.policy, LEADER_SPINS_PER_YIELD, |_| all_done());
        }
        if let Err(p) = mine {
            // Through the slot, so a worker's panic from this same call is consumed
            // here (whichever came first is raised) and not by the next call.
            self.panic.record(p);
        }
        self.panic.resume();
        Some(Ok(()))
    }

    /// Spawns workers until there are `n`.
    fn grow(&'static self, leader: &mut LeaderState, n: usize) -> Result<(), String> {
        while leader.workers.len() < n {
            let index = leader.workers.len() + 1;
            let worker: &'static Worker = Box::leak(Box::new(Worker {
                mailbox: CachePadded::new(Mailbox {
                    signal: WaitWord::default(),
                    job: UnsafeCell::new(JobPtr(
                        std::ptr::null::<fn(usize)>() as *const Job<'static>
                    )),
                    leader_cpu: AtomicI32::new(-1),
                    posted: AtomicU64::new(0),
                }),
                // A new worker has "finished" every epoch up to now.
                done: CachePadded::new(AtomicU32::new(leader.epoch)),
            }));
            let _ = worker.mailbox.signal.store_and_wake(leader.epoch);
            // The starting epoch is passed in, not read by the new thread: by the time
            // it runs, the leader may already have signalled the next one.
            let start = leader.epoch;
            std::thread::Builder::new()
                .name(format!("parfor-{index}"))
                .spawn(move || self.worker_main(worker, index, start))
                .map_err(|e| format!("could not start worker thread {index}: {e}"))?;
            leader.workers.push(worker);
        }
        Ok(())
    }

    fn worker_main(&'static self, me: &'static Worker, index: usize, start: u32) {
        let mut seen = start;
        let mut placement = placement::Worker::default();
        loop {
            let parked;
            (seen, parked) = me
                .mailbox
                .signal
                .wait_until(self.policy, SPINS_PER_YIELD, |v| v != seen);
            let leader_cpu = me.mailbox.leader_cpu.load(Ordering::Relaxed);
            if leader_cpu >= 0 {
                let posted = me.mailbox.posted.load(Ordering::Relaxed);
                placement.on_job(leader_cpu, posted, parked);
            }
            // SAFETY: a new signal was observed (acquire), so the leader's write of the
            // mailbox is visible and stays unchanged until we store `done`.
            let JobPtr(job) = unsafe { *me.mailbox.job.get() };
            // SAFETY: the leader keeps the job alive until it sees our `done`.
            let job = unsafe { &*job };
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| job(index))) {
                self.panic.record(p);
            }
            me.done.store(seen, Ordering::SeqCst);
            self.leader_wait.nudge();
        }
    }
}
