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
//! that worker cannot be reading it: the worker reads the cell only after observing
//! a new signal (acquire) and winning the claim of that epoch's part (its `claim`
//! word, see `Worker::decide`). The leader writes the cell for epoch E+1 only after
//! epoch E ended for that worker: either it saw the worker's `done` equal to E
//! (acquire), which the worker stores (release) after its last use of the job, or
//! it took part E back itself, so that the worker's claim of E fails and it never
//! reads the cell for E. The leader publishes the new job by storing the signal
//! word (SeqCst, a release). The leader does not return, so the job's borrows stay
//! alive, until every part is done: by its worker (`done`) or by itself.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

use crossbeam_utils::CachePadded;

use super::config::WaitPolicy;
use super::placement;
use super::wait::{WaitWord, SPINS_PER_YIELD};

/// The leader, once its own part is done, yields much sooner than an idle worker: a
/// worker woken from a futex is often queued on the leader's CPU (the scheduler's
/// wake-affine placement), and then it runs only when the leader gives way. Spinning
/// 16 pauses (under a microsecond) before each yield bounds that hand-off, while a
/// yield with nobody else runnable costs well under a microsecond.
const LEADER_SPINS_PER_YIELD: u32 = 16;

/// The leader, done with its own part, runs a worker's part itself once this long
/// (about 2 us at the target machine's 2.6 GHz) has passed since it posted the job
/// and the worker still has not claimed it. A spinning worker claims within half a
/// microsecond. One that has not claimed by the time the leader finished a part of
/// its own is parked (35-75 us to wake on this machine) or kept off its CPU (by
/// OpenBLAS's or another runtime's spinning threads: 10-20 us per call measured
/// beside numpy.dot): running the part at once costs the leader one part's time,
/// while waiting would cost the delay plus that time.
const TAKE_BACK_TICKS: u64 = 5_200;

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

/// One worker: its mailbox, the epoch of the last job it finished, on its own line
/// because the worker writes it while the leader reads it, and its claim word.
struct Worker {
    mailbox: CachePadded<Mailbox>,
    done: CachePadded<AtomicU32>,
    /// Who runs the part of which epoch: `epoch << 1` once the worker claimed it,
    /// `epoch << 1 | 1` once the leader took it back. Both sides decide with a
    /// compare-and-swap, so exactly one runs each part. The worker claims every job
    /// on this line, which only it writes in the common case, so the claim costs no
    /// crossing between cores; the leader touches it only to take a part back.
    claim: CachePadded<AtomicU64>,
}

impl Worker {
    /// Decides who runs part `epoch`; true when the caller (the leader when
    /// `by_leader`, else the worker) got it. Fails as well when a later epoch was
    /// already decided: a worker that saw epoch E only after the leader took back E
    /// and posted (and took back) E+1 must not claim E, whose job is gone.
    fn decide(&self, epoch: u32, by_leader: bool) -> bool {
        let mut cur = self.claim.load(Ordering::Acquire);
        loop {
            // Epochs wrap: "at or after" is a wrapping difference below 2^31.
            let decided = (cur >> 1) as u32;
            if decided.wrapping_sub(epoch) < 1 << 31 {
                return false;
            }
            let want = (u64::from(epoch) << 1) | u64::from(by_leader);
            match self
                .claim
                .compare_exchange_weak(cur, want, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }
}

/// The team of worker threads 1..n; the leader is thread 0.
pub(crate) struct Team {
    busy: CachePadded<AtomicBool>,
    /// Where the leader parks while workers finish; workers nudge it.
    leader_wait: CachePadded<WaitWord>,
    /// Leader-only state: the workers spawned so far and the epoch.
    leader: UnsafeCell<LeaderState>,
    /// Set when a worker caught a panic in the current job; the payload is in `panic`.
    panicked: AtomicBool,
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
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
            panicked: AtomicBool::new(false),
            panic: Mutex::new(None),
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
        let posted_at = placement::ticks();
        let (cpu, posted) = if k <= self.cpus {
            (placement::current_cpu(), posted_at)
        } else {
            (-1, 0)
        };
        for w in team {
            // SAFETY: the worker is idle: the previous leader saw its `done` reach the
            // previous epoch (or it never ran a job); see the module docs.
            unsafe { *w.mailbox.job.get() = JobPtr(erased) };
            // Relaxed: published with the job by the signal store below.
            w.mailbox.leader_cpu.store(cpu, Ordering::Relaxed);
            w.mailbox.posted.store(posted, Ordering::Relaxed);
            w.mailbox.signal.store_and_wake(epoch);
        }
        let mut mine = catch_unwind(AssertUnwindSafe(|| job(0)));
        // Parts the leader took back (see `take_back`), for the first 64 workers.
        let taken = std::cell::Cell::new(0u64);
        let finished = |i: usize, w: &Worker| {
            w.done.load(Ordering::SeqCst) == epoch || (i < 64 && taken.get() >> i & 1 == 1)
        };
        let all_done = || team.iter().enumerate().all(|(i, w)| finished(i, w));
        if !all_done() && self.policy != WaitPolicy::Passive {
            if let Err(p) = self.take_back(team, epoch, job, posted_at, &taken, &all_done) {
                if mine.is_ok() {
                    mine = Err(p);
                }
            }
        }
        if !all_done() {
            self.leader_wait
                .wait_until(self.policy, LEADER_SPINS_PER_YIELD, |_| all_done());
        }
        if let Err(p) = mine {
            resume_unwind(p);
        }
        if self.panicked.load(Ordering::Acquire) {
            self.panicked.store(false, Ordering::Relaxed);
            let theirs = self.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(p) = theirs {
                resume_unwind(p);
            }
        }
        Some(Ok(()))
    }

    /// Waits until [`TAKE_BACK_TICKS`] after `posted_at` for the workers to claim
    /// their parts, then runs each part not yet claimed on this thread (checking
    /// again before each, as a worker may claim meanwhile), marking it in `taken`. A
    /// worker kept off the CPUs then costs the call that part's time instead of an
    /// unbounded wait. Returns the first panic of a part run here.
    fn take_back(
        &self,
        team: &[&'static Worker],
        epoch: u32,
        job: &Job<'_>,
        posted_at: u64,
        taken: &std::cell::Cell<u64>,
        all_done: &dyn Fn() -> bool,
    ) -> Result<(), Box<dyn std::any::Any + Send>> {
        let mut spins = 0u32;
        while !all_done() {
            if placement::ticks().wrapping_sub(posted_at) > TAKE_BACK_TICKS {
                let mut first_panic = Ok(());
                for (i, w) in team.iter().enumerate().take(64) {
                    if w.done.load(Ordering::SeqCst) != epoch && w.decide(epoch, true) {
                        taken.set(taken.get() | 1 << i);
                        if let Err(p) = catch_unwind(AssertUnwindSafe(|| job(i + 1))) {
                            if first_panic.is_ok() {
                                first_panic = Err(p);
                            }
                        }
                    }
                }
                return first_panic;
            }
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins % LEADER_SPINS_PER_YIELD == 0 {
                std::thread::yield_now();
            }
        }
        Ok(())
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
                claim: CachePadded::new(AtomicU64::new(u64::from(leader.epoch) << 1)),
            }));
            worker.mailbox.signal.store_and_wake(leader.epoch);
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
        // Until when (in ticks) this worker stays beside its leader; see `placement`.
        let mut stay_until = 0;
        // When this worker last picked a job up very late while spinning (0: never).
        let mut last_crowded = 0;
        loop {
            let parked;
            (seen, parked) = me
                .mailbox
                .signal
                .wait_until(self.policy, SPINS_PER_YIELD, |v| v != seen);
            let leader_cpu = me.mailbox.leader_cpu.load(Ordering::Relaxed);
            // A parked worker's lateness is the futex wake-up (35-75 us, now and then
            // over a millisecond on the target VM): only a spinning worker's lateness
            // says that another thread holds its CPU.
            if leader_cpu >= 0 && !parked {
                let now = placement::ticks();
                let here = placement::current_cpu();
                let late = now.saturating_sub(me.mailbox.posted.load(Ordering::Relaxed));
                if late > super::omp::CONTENDED_TICKS {
                    // Twice within the borrowing period: not a one-off preemption.
                    if last_crowded != 0 && now - last_crowded < super::omp::BORROW_TICKS {
                        super::omp::note_contention(now);
                    }
                    last_crowded = now;
                }
                if here == leader_cpu {
                    if now >= stay_until {
                        placement::move_off(leader_cpu);
                    }
                } else if late > placement::STARVED_TICKS {
                    stay_until = now + placement::BACKOFF_TICKS;
                    placement::move_to(leader_cpu);
                }
            } else if leader_cpu >= 0 && placement::current_cpu() == leader_cpu {
                // Just woken onto the leader's CPU: the common case the move is for.
                if placement::ticks() >= stay_until {
                    placement::move_off(leader_cpu);
                }
            }
            if !me.decide(seen, false) {
                // The leader took this part back and ran it; the job may be gone.
                me.done.store(seen, Ordering::SeqCst);
                self.leader_wait.nudge();
                continue;
            }
            // SAFETY: a new signal was observed (acquire) and this worker claimed its
            // part, so the leader's write of the mailbox is visible and stays
            // unchanged until we store `done`.
            let JobPtr(job) = unsafe { *me.mailbox.job.get() };
            // SAFETY: the leader keeps the job alive until it sees our `done`.
            let job = unsafe { &*job };
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| job(index))) {
                let mut slot = self.panic.lock().unwrap_or_else(|e| e.into_inner());
                slot.get_or_insert(p);
                self.panicked.store(true, Ordering::Release);
            }
            me.done.store(seen, Ordering::SeqCst);
            self.leader_wait.nudge();
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn worker_at(epoch: u32) -> Worker {
        Worker {
            mailbox: CachePadded::new(Mailbox {
                signal: WaitWord::default(),
                job: UnsafeCell::new(JobPtr(std::ptr::null::<fn(usize)>() as *const Job<'static>)),
                leader_cpu: AtomicI32::new(-1),
                posted: AtomicU64::new(0),
            }),
            done: CachePadded::new(AtomicU32::new(epoch)),
            claim: CachePadded::new(AtomicU64::new(u64::from(epoch) << 1)),
        }
    }

    #[test]
    fn each_part_is_decided_once() {
        let w = worker_at(7);
        // Epoch 8: the worker claims first; the leader cannot take it back.
        assert!(w.decide(8, false));
        assert!(!w.decide(8, true));
        // Epoch 9: the leader takes it back first; the worker's claim fails.
        assert!(w.decide(9, true));
        assert!(!w.decide(9, false));
    }

    #[test]
    fn a_late_worker_cannot_claim_an_old_epoch() {
        // The leader took back 10 and 11 while the worker slept; the worker then
        // wakes having seen 10: its claim must fail (job 10 is gone), as must 11.
        let w = worker_at(9);
        assert!(w.decide(10, true));
        assert!(w.decide(11, true));
        assert!(!w.decide(10, false));
        assert!(!w.decide(11, false));
        assert!(w.decide(12, false));
    }

    #[test]
    fn epochs_wrap() {
        let w = worker_at(u32::MAX - 1);
        assert!(w.decide(u32::MAX, false));
        assert!(w.decide(0, true));
        assert!(!w.decide(u32::MAX, false));
        assert!(w.decide(1, false));
        assert!(!w.decide(1, true));
    }
}
