//! The fork-join team: a small hand-written fork-join path for the common case,
//! one application thread running a loop or a reduction over all cores.
//!
//! Why not rayon here: a rayon pool called from a thread outside it must inject the
//! job into the pool's queue and block the caller on a latch; measured on the 2-core
//! target machine this costs 14-19 us per call (52-60 us after an idle pause), against
//! 0.6 us for libgomp. OpenMP instead lets the calling thread do its share as thread 0
//! and signals each worker through memory it alone reads, and that is what this team
//! does. Per call, on the critical path, only two cache lines per worker move between
//! cores: the worker's mailbox (signal word and the job itself, written by the
//! leader; see `Payload`) and its `done` word (written by the worker). Idle workers
//! spin for the wait policy's time, then park on a futex (see `wait.rs`); so does the
//! leader while it waits for the workers.
//!
//! A team is used by one leader at a time (`busy`); a caller that finds it busy
//! takes the next of a few teams (see `mod.rs`), so calls from many application
//! threads at once never wait for each other's bodies.
//!
//! ## Safety of the mailboxes
//! A worker's `call` and `payload` cells are written only by the leader holding
//! `busy`, and only while that worker is idle: before the write the leader has seen
//! the worker's `done` equal to the counter value it last sent that worker (acquire),
//! which the worker stores (release) after its last use of the previous job. The leader then publishes the new job by storing the
//! signal word (SeqCst, a release); the worker reads the cells only after observing
//! the new signal (acquire). The leader does not return, so the job's borrows (those
//! of a closure copied into the payload, or the closure a payload points to) stay
//! alive, until it has seen every participant's `done` equal to the value it sent.
//! The whole protocol, with its orderings, is in `src/runtime/README.md`.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use super::config::WaitPolicy;
use super::placement;
use super::wait::{SharedPark, WaitWord, WORKER_YIELD_EVERY};
use super::FirstPanic;
use crate::error::Error;

/// The leader, once its own part is done, yields much sooner than an idle worker: a
/// worker woken from a futex is often queued on the leader's CPU (the scheduler's
/// wake-affine placement), and then it runs only when the leader gives way. A yield
/// every microsecond (it was 16 `pause`s on the Intel VM) bounds that hand-off,
/// while a yield with nobody else runnable costs well under a microsecond.
const LEADER_YIELD_EVERY: Duration = Duration::from_micros(1);

/// Words of a job that travel by value in a worker's mailbox: the first
/// [`LINE_WORDS`] share the signal's cache line, the rest fill the next line.
pub(crate) const PAYLOAD_WORDS: usize = 13;
/// Payload words on the signal's cache line: a job this small costs its worker one
/// line transfer in all.
pub(crate) const LINE_WORDS: usize = 5;

/// A job's data as the team carries it: copied into each worker's mailbox, next to
/// the signal, so that a worker that sees the signal finds the whole job on the same
/// cache line. What a worker reads beyond it is what the job's code reaches through
/// pointers; every line of the leader's stack among those costs a transfer between
/// cores, since the leader rewrites its stack at each call (measured: a 2-part
/// fork-join with nothing behind the payload took 0.37 us, with one stack line behind
/// it 0.70 us, and a `parallel_for` reaching five such lines 0.99 us).
#[derive(Clone, Copy)]
#[repr(C, align(8))]
pub(crate) struct Payload(pub(crate) [MaybeUninit<u64>; PAYLOAD_WORDS]);

impl Payload {
    pub(crate) const fn uninit() -> Self {
        Payload([MaybeUninit::uninit(); PAYLOAD_WORDS])
    }
}

/// Runs part `tid` of a team of `k` threads from a job's payload.
///
/// # Safety
/// The payload must be what the function's creator put there for it, and the data
/// it refers to must be alive (see the module docs).
pub(crate) type Call = unsafe fn(&Payload, usize, usize);

/// What the leader writes for one worker: two cache lines (the mailbox is aligned to
/// 128 bytes), the first with the signal, the packed post word and the first
/// [`LINE_WORDS`] words of the payload, so that for a small job the line that brings
/// the signal brings everything.
#[repr(C)]
struct Mailbox {
    /// The post counter of the last job sent (see `word`); the worker spins on it,
    /// and parks on the team's `park`.
    signal: AtomicU32,
    /// How many payload words the job uses: a worker that forwards the job down the
    /// tree (see [`Team::children`]) copies only those.
    words: UnsafeCell<u32>,
    call: UnsafeCell<Call>,
    post: AtomicU64,
    payload: UnsafeCell<Payload>,
}

/// What a worker needs besides the job, packed in one word so that it shares the
/// signal's cache line with the start of the payload: the team size `team` (parts
/// 0..team), the `stride` between the parts one participant runs (a worker with
/// index i runs parts i, i + stride, ...: the number of threads taking part, which is
/// less than `team` when some workers could not be started), whether the job lets
/// forced unwinds pass (`Unwind`), and the low 32 bits of `placement::ticks()` at
/// the post.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Post {
    pub(super) team: usize,
    pub(super) stride: usize,
    pub(super) unwind: Unwind,
    pub(super) posted: u32,
}

/// Bit 47 of the post word: the job lets forced unwinds pass. The stride (at most
/// `MAX_THREADS`) takes bits 32..47.
const PASS_FORCED_BIT: u64 = 1 << 47;

impl Post {
    pub(super) fn pack(self) -> u64 {
        let pass = match self.unwind {
            Unwind::CatchPanics => 0,
            Unwind::PassForced => PASS_FORCED_BIT,
        };
        u64::from(self.posted) | ((self.stride as u64) << 32) | pass | ((self.team as u64) << 48)
    }

    pub(super) fn unpack(v: u64) -> Post {
        Post {
            team: (v >> 48) as usize,
            stride: ((v >> 32) & 0x7fff) as usize,
            unwind: if v & PASS_FORCED_BIT != 0 {
                Unwind::PassForced
            } else {
                Unwind::CatchPanics
            },
            posted: v as u32,
        }
    }
}

/// How a job's parts treat unwinding (see `src/runtime/README.md`, "Forced unwinds").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unwind {
    /// A panic in a part is caught on its thread and re-raised on the leader once
    /// every part is done: jobs of Rust code.
    CatchPanics,
    /// Nothing is caught: a job that calls C callbacks, which may end their thread
    /// with a forced unwind (`pthread_exit`, cancellation, CPython ending a daemon
    /// thread). `catch_unwind` would swallow such an unwind and glibc would abort
    /// ("FATAL: exception not rethrown"); instead drop guards keep the protocol
    /// (a worker's part is marked done and the worker retired; the leader waits for
    /// its helpers) while the unwind goes on. The job's own code must not panic.
    PassForced,
}

/// A worker's post counter: the value of its signal word. Each worker has its own,
/// advanced only by the posts it receives, so a worker that several calls skipped
/// still sees the next post change its signal (a team-wide epoch, after a gap of an
/// exact multiple of 2^32 calls, did not: issue 13; see `README.md`,
/// "Wrap-around"). Unit tests use 8 bits so that they wrap every 256 posts.
#[cfg(not(test))]
pub(super) type Seq = u32;
/// See above: 8 bits in unit tests.
#[cfg(test)]
pub(super) type Seq = u8;

/// A post counter as the signal word holds it.
#[allow(clippy::useless_conversion)] // Seq is u32 in builds, u8 in unit tests.
fn word(seq: Seq) -> u32 {
    u32::from(seq)
}

const _: () = assert!(std::mem::size_of::<Mailbox>() == 128);
const _: () = assert!(std::mem::offset_of!(Mailbox, payload) + 8 * LINE_WORDS == 64);
// The team size must fit its 16 bits.
const _: () = assert!(super::MAX_THREADS < 1 << 15);

/// The job a new worker's mailbox holds until its first signal: never run.
unsafe fn no_job(_: &Payload, _: usize, _: usize) {
    unreachable!("a worker ran before its first job was posted");
}

/// One worker: its mailbox, and the counter value of the last job it finished, on
/// its own line because the worker writes it while the leader reads it.
struct Worker {
    mailbox: CachePadded<Mailbox>,
    done: CachePadded<DoneLine>,
    /// Where this worker parks while it waits for its children in the tree (see
    /// [`Team::children`]); they nudge it after their `done`.
    wait: CachePadded<WaitWord>,
    /// Set (before its last `done`) by a worker whose thread a forced unwind ended:
    /// the leader replaces it before its next post.
    ended: AtomicBool,
}

/// The line a worker writes: `done`, and the flag it sets while parked, which its
/// poster loads after the post (see `wait.rs`, "One futex word for many waiters").
struct DoneLine {
    /// The counter value of the last job this worker finished.
    done: AtomicU32,
    sleeping: AtomicBool,
}

impl DoneLine {
    fn new() -> Self {
        DoneLine {
            done: AtomicU32::new(0),
            sleeping: AtomicBool::new(false),
        }
    }
}

/// How long a team that could not start a worker thread runs on the threads it has
/// before trying again: a failed `pthread_create` costs a system call and, under
/// RLIMIT_NPROC, keeps failing; once a second makes that cost negligible while a
/// limit raised later is still noticed soon.
const SPAWN_RETRY: Duration = Duration::from_secs(1);

/// Set once a worker thread could not be started: the message is printed once per
/// process, not once per failing call.
static SPAWN_FAILURE_REPORTED: AtomicBool = AtomicBool::new(false);

/// The team of worker threads 1..n; the leader is thread 0.
pub(crate) struct Team {
    busy: CachePadded<AtomicBool>,
    /// Where the leader parks while workers finish; workers nudge it.
    leader_wait: CachePadded<WaitWord>,
    /// Where idle workers park: one futex wake after a post reaches the posted ones.
    park: CachePadded<SharedPark>,
    /// Leader-only state: the workers started so far and their post counters.
    leader: UnsafeCell<LeaderState>,
    /// The first panic a worker caught in the current job.
    panic: FirstPanic,
    /// The index (1..) of a worker whose thread a forced unwind ended during the
    /// current job, 0 when none: the call then fails with `Error::Runtime`.
    ended: AtomicUsize,
    policy: WaitPolicy,
    /// CPUs the process may use: a team larger than this cannot avoid sharing them,
    /// so its workers do not try to move off the leader's CPU.
    cpus: usize,
    /// Children per node of the post-and-join tree for calls of more than
    /// [`FLAT_HELPERS`] helpers; 0: the leader posts to and joins every helper itself.
    fanout: usize,
    /// Worker `i` of the team at index `i` (index 0 unused), for workers that forward
    /// a job to their children: written by the leader when it starts or replaces a
    /// worker, before any post that makes that worker someone's child.
    nodes: Box<[AtomicPtr<Worker>]>,
}

/// Up to this many helpers the leader posts to and joins each one itself: a post is
/// a few plain stores into the helper's line and the join polls independent lines,
/// so at 8 helpers the leader's O(P) work costs less than the extra hand-off of a
/// tree level (one line transfer, 0.1-0.2 us between cores of a socket). Past it the
/// leader posts to `fanout` children, each of which forwards the job to its own
/// children before its part and joins them after it: O(fanout x log P) on the
/// critical path instead of O(P) (see `README.md`, "Many threads").
pub(super) const FLAT_HELPERS: usize = 8;

/// The widest tree node: a forwarding worker keeps its children's counters on its
/// stack.
pub(crate) const MAX_FANOUT: usize = 16;

struct LeaderState {
    workers: Vec<&'static Worker>,
    /// The post counter value last sent to each of the leader's own children (in the
    /// tree, the others' are kept by their parents).
    seqs: Vec<u32>,
    /// A worker allocated for a thread that could not be started, kept for the next
    /// attempt (allocating one per failed attempt leaked it).
    spare: Option<&'static Worker>,
    /// After a failed start: no new attempt before this time.
    retry_at: Option<Instant>,
    /// A call lost a worker to a forced unwind: `grow` replaces ended workers.
    some_ended: bool,
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
    pub(crate) fn new_leaked(policy: WaitPolicy, cpus: usize, fanout: usize) -> &'static Team {
        Box::leak(Box::new(Team {
            busy: CachePadded::new(AtomicBool::new(false)),
            leader_wait: CachePadded::new(WaitWord::default()),
            park: CachePadded::new(SharedPark::default()),
            leader: UnsafeCell::new(LeaderState {
                workers: Vec::new(),
                seqs: Vec::new(),
                spare: None,
                retry_at: None,
                some_ended: false,
            }),
            panic: FirstPanic::default(),
            ended: AtomicUsize::new(0),
            policy,
            cpus,
            fanout,
            nodes: (0..=super::MAX_THREADS)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
        }))
    }

    /// The workers that node `node` (0: the leader, i: worker i) posts to and joins in
    /// a call with `helpers` helpers (workers 1..=helpers): up to [`FLAT_HELPERS`]
    /// helpers (or with no tree configured) the leader's children are all of them;
    /// past that, the nodes form a `fanout`-ary heap (node n's children are
    /// n*fanout+1 ..= n*fanout+fanout), as in libomp's tree barrier.
    fn children(&self, node: usize, helpers: usize) -> Range<usize> {
        let end = helpers + 1;
        if self.fanout < 2 || helpers <= FLAT_HELPERS {
            return if node == 0 { 1..end } else { end..end };
        }
        let first = node * self.fanout + 1;
        first.min(end)..(first + self.fanout).min(end)
    }

    /// Where worker `index` nudges its parent after its `done`: the leader's word, or
    /// in the tree its parent worker's.
    fn parent_wait(&self, index: usize, helpers: usize) -> &WaitWord {
        if self.fanout < 2 || helpers <= FLAT_HELPERS || index <= self.fanout {
            return &self.leader_wait;
        }
        &self.node((index - 1) / self.fanout).wait
    }

    /// After posting to `posted` (index, worker): wakes those of them that are
    /// parked, with one system call for all; whether any was. The fence orders the
    /// posts' signal stores before the loads of the `sleeping` flags (see `wait.rs`,
    /// "One futex word for many waiters"): one fence for all posts instead of a
    /// SeqCst store (a full fence on x86) per worker.
    fn wake_parked(&self, posted: impl Iterator<Item = (usize, &'static Worker)>) -> bool {
        fence(Ordering::SeqCst);
        let mask = posted
            .filter(|(_, w)| w.done.sleeping.load(Ordering::SeqCst))
            .fold(0, |m, (i, _)| m | SharedPark::bit(i));
        if mask != 0 {
            self.park.wake(mask);
        }
        mask != 0
    }

    /// Worker `index`, for a worker of the current call (its parent or child).
    fn node(&self, index: usize) -> &'static Worker {
        let w = self.nodes[index].load(Ordering::Acquire);
        // SAFETY: the leader stores worker `index` here (a leaked, never freed
        // `Worker`) before any post to a call with `index` helpers or more, and that
        // post happens before this load (signal release, acquire); see `record`.
        unsafe { &*w }
    }

    /// Makes worker `w` the team's worker `index` for forwarding workers.
    fn record(&self, index: usize, w: &'static Worker) {
        self.nodes[index].store(std::ptr::from_ref(w).cast_mut(), Ordering::Release);
    }

    /// Runs `call(payload, tid, k)` for every tid in 0..k, part 0 on the calling
    /// thread, and returns when all parts are done; `call` reads only the first
    /// `bytes` bytes of the payload, and only those are copied to the workers. `None`
    /// when another leader holds the team. With [`Unwind::CatchPanics`] a panic in
    /// any part is re-raised here after every part has finished; with
    /// [`Unwind::PassForced`] nothing is caught, and a forced unwind of the leader's
    /// own part leaves only after every helper is done. `Some(Err)` when a forced
    /// unwind ended a worker's thread during the call (its remaining parts did not
    /// run).
    ///
    /// # Safety
    /// `call` must be sound to run with a copy of `payload` on any thread until this
    /// function returns.
    pub(crate) unsafe fn try_run(
        &'static self,
        k: usize,
        call: Call,
        payload: &Payload,
        bytes: usize,
        unwind: Unwind,
    ) -> Option<Result<(), Error>> {
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
        self.grow(leader, k - 1);
        // The workers that take part: all the call wants, or all there are when some
        // could not be started (the parts are then shared out by `stride`).
        let helpers = leader.workers.len().min(k - 1);
        let stride = helpers + 1;
        let post = Post {
            team: k,
            stride,
            unwind,
            posted: placement::ticks() as u32,
        }
        .pack();
        // Only the bytes the job uses: the payload's second line is written, and so
        // moves to the worker, only for a job that needs it.
        let words = bytes.div_ceil(8).min(PAYLOAD_WORDS);
        let kids = self.children(0, helpers);
        for i in kids.clone() {
            // SAFETY: the worker is idle: the last call that posted to it saw its
            // `done` (directly or through its parent's) before returning, and that
            // call's `busy` release precedes our acquire (or it never ran a job).
            leader.seqs[i - 1] =
                unsafe { post_to(leader.workers[i - 1], call, payload, words, post) };
        }
        let woke = self.wake_parked(kids.clone().map(|i| (i, leader.workers[i - 1])));
        if woke && k <= self.cpus {
            placement::after_wake();
        }
        // Waits for the helpers when dropped: on return, and also while a forced
        // unwind leaves the leader's part, since the helpers may still use what the
        // job borrows from the leader's stack.
        let join = Join {
            team: self,
            wait: &self.leader_wait,
            workers: &leader.workers[kids.start.saturating_sub(1)..kids.end - 1],
            seqs: &leader.seqs[kids.start.saturating_sub(1)..kids.end - 1],
        };
        let mine = || {
            let mut tid = 0;
            while tid < k {
                // SAFETY: the caller's contract.
                unsafe { call(payload, tid, k) };
                tid += stride;
            }
        };
        match unwind {
            Unwind::CatchPanics => {
                let mine = catch_unwind(AssertUnwindSafe(mine));
                drop(join);
                if let Err(p) = mine {
                    // Through the slot, so a worker's panic from this same call is
                    // consumed here (whichever came first is raised) and not by the
                    // next call.
                    self.panic.record(p);
                }
            }
            Unwind::PassForced => {
                mine();
                drop(join);
            }
        }
        let ended = self.ended.swap(0, Ordering::Relaxed);
        leader.some_ended |= ended != 0;
        self.panic.resume();
        if ended != 0 {
            return Some(Err(Error::Runtime(format!(
                "a callback ended worker thread parfor-{ended} (pthread_exit or thread \
                 cancellation); the parts left on that thread did not run"
            ))));
        }
        Some(Ok(()))
    }

    /// Starts workers until there are `n`, unless a start failed less than
    /// [`SPAWN_RETRY`] ago, and first replaces any worker whose thread a forced
    /// unwind ended. A thread that cannot be started is not an error: the call runs
    /// on the threads there are (down to the caller alone), the failure is reported
    /// once per process, and the start is retried after `SPAWN_RETRY` (see
    /// `README.md`, "Thread-creation failure").
    fn grow(&'static self, leader: &mut LeaderState, n: usize) {
        if !leader.some_ended && leader.workers.len() >= n {
            return;
        }
        if let Some(at) = leader.retry_at {
            if Instant::now() < at {
                return;
            }
            leader.retry_at = None;
        }
        // An ended worker is retired (leaked: its thread may still be unwinding past
        // its last store to it) and a new one takes its index. Looked for only after
        // a call that lost one, so a normal call does not scan the workers.
        if std::mem::take(&mut leader.some_ended) {
            self.replace_ended(leader);
        }
        while leader.workers.len() < n {
            match self.start_worker(leader, leader.workers.len() + 1) {
                Some(w) => {
                    self.record(leader.workers.len() + 1, w);
                    leader.workers.push(w);
                    leader.seqs.push(0);
                }
                None => return,
            }
        }
    }

    /// Starts a new worker in the place of each one whose thread a forced unwind
    /// ended; where a start fails, the workers from there on get no more posts.
    fn replace_ended(&'static self, leader: &mut LeaderState) {
        for i in 0..leader.workers.len() {
            if leader.workers[i].ended.load(Ordering::Acquire) {
                match self.start_worker(leader, i + 1) {
                    Some(w) => {
                        self.record(i + 1, w);
                        leader.workers[i] = w;
                        leader.seqs[i] = 0;
                    }
                    None => {
                        // Workers past it keep their threads but get no more posts.
                        leader.workers.truncate(i);
                        leader.seqs.truncate(i);
                        return;
                    }
                }
            }
        }
    }

    /// Starts worker thread `index` on a new (or the spare) mailbox; `None` when the
    /// thread could not be started, the failure reported and the retry time set.
    fn start_worker(
        &'static self,
        leader: &mut LeaderState,
        index: usize,
    ) -> Option<&'static Worker> {
        let worker: &'static Worker = leader.spare.take().unwrap_or_else(|| {
            Box::leak(Box::new(Worker {
                mailbox: CachePadded::new(Mailbox {
                    signal: AtomicU32::new(0),
                    words: UnsafeCell::new(0),
                    call: UnsafeCell::new(no_job),
                    payload: UnsafeCell::new(Payload::uninit()),
                    post: AtomicU64::new(0),
                }),
                // A new worker has "finished" counter value 0, its signal's.
                done: CachePadded::new(DoneLine::new()),
                wait: CachePadded::new(WaitWord::default()),
                ended: AtomicBool::new(false),
            }))
        });
        match spawn_worker(Start {
            team: self,
            worker,
            index,
        }) {
            Ok(()) => Some(worker),
            Err(e) => {
                leader.spare = Some(worker);
                leader.retry_at = Some(Instant::now() + SPAWN_RETRY);
                if !SPAWN_FAILURE_REPORTED.swap(true, Ordering::Relaxed) {
                    super::config::warn(&format!(
                        "could not start worker thread {index} ({e}); calls run on the \
                         {index} threads there are, and a start is retried at most \
                         once every {SPAWN_RETRY:?}"
                    ));
                }
                None
            }
        }
    }

    fn worker_main(&'static self, me: &'static Worker, index: usize) -> ! {
        let mut seen = 0;
        let mut placement = placement::Worker::default();
        loop {
            let waiting_since = placement::ticks();
            let parked;
            (seen, parked) = self.park.wait_until(
                &me.mailbox.signal,
                &me.done.sleeping,
                SharedPark::bit(index),
                self.policy,
                WORKER_YIELD_EVERY,
                |v| v != seen,
            );
            let packed = me.mailbox.post.load(Ordering::Relaxed);
            let post = Post::unpack(packed);
            let helpers = post.stride - 1;
            // In the tree, the job goes on to this worker's children before its own
            // part runs, and they are joined after it.
            let kids = self.children(index, helpers);
            let mut sent = [0u32; MAX_FANOUT];
            if !kids.is_empty() {
                // SAFETY: a new signal was observed (acquire): the mailbox holds the
                // job, unchanged until our `done`. The children are idle: the call
                // that last posted to them saw their `done` before it returned.
                unsafe {
                    let (call, payload) = (*me.mailbox.call.get(), &*me.mailbox.payload.get());
                    let words = *me.mailbox.words.get() as usize;
                    for (i, slot) in kids.clone().zip(&mut sent) {
                        *slot = post_to(self.node(i), call, payload, words, packed);
                    }
                }
                self.wake_parked(kids.clone().map(|i| (i, self.node(i))));
            }
            let children = Children {
                team: self,
                wait: &me.wait,
                first: kids.start,
                seqs: &sent[..kids.len()],
            };
            // Everything up to `done` runs under catch_unwind (for a job that passes
            // forced unwinds: under the `Ended` guard), the placement step too: a
            // worker that died here would leave its leader waiting for ever.
            let mut job = || {
                placement.on_job(post.posted, waiting_since, parked);
                // SAFETY: a new signal was observed (acquire), so the leader's write of
                // the mailbox is visible and stays unchanged until we store `done`.
                let (call, payload) =
                    unsafe { (*me.mailbox.call.get(), &*me.mailbox.payload.get()) };
                // SAFETY: the leader posted this call with this payload and keeps what
                // it refers to alive until it sees our `done` (try_run's contract).
                let mut tid = index;
                while tid < post.team {
                    // SAFETY: as above.
                    unsafe { call(payload, tid, post.team) };
                    tid += post.stride;
                }
            };
            match post.unwind {
                Unwind::CatchPanics => {
                    if let Err(p) = catch_unwind(AssertUnwindSafe(job)) {
                        self.panic.record(p);
                    }
                }
                Unwind::PassForced => {
                    let ended = Ended {
                        team: self,
                        me,
                        index,
                        seen,
                        helpers,
                        children: &children,
                    };
                    job();
                    std::mem::forget(ended);
                }
            }
            children.join();
            me.done.done.store(seen, Ordering::SeqCst);
            self.parent_wait(index, helpers).nudge();
        }
    }
}

/// Writes a job into worker `w`'s mailbox (`words` words of `payload`) and signals
/// it; returns the counter value sent, which the worker stores in `done` when it has
/// finished (its children included).
///
/// # Safety
/// `w` must be idle (it stored `done` for the last value sent to it, and that store
/// happens before this call), and the caller must be the only one posting to it.
unsafe fn post_to(w: &Worker, call: Call, payload: &Payload, words: usize, post: u64) -> u32 {
    // SAFETY: the worker reads these cells only after loading the new signal below
    // (release / acquire), and not again after its `done` (the caller's contract).
    unsafe {
        *w.mailbox.call.get() = call;
        *w.mailbox.words.get() = words as u32;
        std::ptr::copy_nonoverlapping(
            payload.0.as_ptr(),
            (*w.mailbox.payload.get()).0.as_mut_ptr(),
            words,
        );
    }
    // Relaxed: published with the job by the signal store below.
    w.mailbox.post.store(post, Ordering::Relaxed);
    // The last value sent to this worker, by this poster or by whoever posted to it
    // last: that store happens before the worker's `done`, which happens before
    // this call (the caller's contract), so the load sees it. As `Seq`, so that the
    // counter wraps at the width the unit tests choose.
    #[allow(clippy::unnecessary_cast)] // Seq is u32 in builds, u8 in unit tests.
    let next = word((w.mailbox.signal.load(Ordering::Relaxed) as Seq).wrapping_add(1));
    // Release: publishes the job; the caller's SeqCst fence after its posts orders
    // this store before its loads of the `sleeping` flags (see `wait.rs`).
    w.mailbox.signal.store(next, Ordering::Release);
    next
}

/// A forwarding worker's children in the current call and the counter values it
/// sent them: it waits for them after its own part, before its `done`.
struct Children<'a> {
    team: &'static Team,
    /// The forwarding worker's own wait word, which its children nudge.
    wait: &'a WaitWord,
    /// The first child's index; the others follow.
    first: usize,
    seqs: &'a [u32],
}

impl Children<'_> {
    fn join(&self) {
        if self.seqs.is_empty() {
            return;
        }
        let all_done = || {
            self.seqs.iter().enumerate().all(|(i, &seq)| {
                self.team
                    .node(self.first + i)
                    .done
                    .done
                    .load(Ordering::SeqCst)
                    == seq
            })
        };
        if !all_done() {
            self.wait
                .wait_until(self.team.policy, LEADER_YIELD_EVERY, |_| all_done());
        }
    }
}

/// Waits, when dropped, until each of the leader's children in the current job is
/// done (in the tree, a child's `done` covers its own children).
struct Join<'a> {
    team: &'static Team,
    wait: &'a WaitWord,
    workers: &'a [&'static Worker],
    seqs: &'a [u32],
}

impl Drop for Join<'_> {
    fn drop(&mut self) {
        let all_done = || {
            self.workers
                .iter()
                .zip(self.seqs)
                .all(|(w, &seq)| w.done.done.load(Ordering::SeqCst) == seq)
        };
        if !all_done() {
            self.wait
                .wait_until(self.team.policy, LEADER_YIELD_EVERY, |_| all_done());
        }
    }
}

/// Armed while a worker runs a job that passes forced unwinds; dropped only when
/// such an unwind ends the worker's thread inside a callback. It retires the worker
/// and tells the leader, then lets the unwind go on to the thread's start, where
/// glibc ends the thread.
struct Ended<'a> {
    team: &'static Team,
    me: &'static Worker,
    index: usize,
    seen: u32,
    helpers: usize,
    /// Joined before `done`: the children may still use what the job borrows.
    children: &'a Children<'a>,
}

impl Drop for Ended<'_> {
    fn drop(&mut self) {
        self.children.join();
        self.me.ended.store(true, Ordering::Release);
        self.team.ended.store(self.index, Ordering::Relaxed);
        // The last use of the mailbox: the leader may reuse nothing of it (it
        // retires the worker), but reads `ended` after this (SeqCst, a release).
        self.me.done.done.store(self.seen, Ordering::SeqCst);
        self.team.parent_wait(self.index, self.helpers).nudge();
    }
}

/// What a new worker thread needs, handed to it through `pthread_create`.
struct Start {
    team: &'static Team,
    worker: &'static Worker,
    index: usize,
}

/// Starts a worker thread with `pthread_create`, not `std::thread`: std wraps every
/// thread's function in `catch_unwind`, which would swallow a forced unwind ending
/// the thread inside a callback and make glibc abort. The thread is detached (never
/// joined; see `README.md`, "Exit") and gets glibc's default stack size, as
/// OpenMP's threads do.
fn spawn_worker(start: Start) -> std::io::Result<()> {
    let arg = Box::into_raw(Box::new(start));
    let mut thread: libc::pthread_t = 0;
    // SAFETY: `worker_start` matches the start routine's signature (its unwind ABI
    // lets a forced unwind reach glibc's frame, where it ends the thread); `arg` is a
    // Box handed over to the new thread, which frees it. NULL attributes: defaults.
    let rc =
        unsafe { pthread_create_unwind(&mut thread, std::ptr::null(), worker_start, arg.cast()) };
    if rc != 0 {
        // SAFETY: no thread was created, so `arg` is still ours.
        drop(unsafe { Box::from_raw(arg) });
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    // SAFETY: `thread` is a joinable thread just created; detaching it once is valid.
    unsafe { libc::pthread_detach(thread) };
    Ok(())
}

extern "C" {
    /// glibc's `pthread_create`, declared with a start routine of the unwind ABI
    /// (libc's declaration takes an `extern "C"` one, through which an unwind must not
    /// pass). The symbol and its calling convention are the same.
    #[link_name = "pthread_create"]
    fn pthread_create_unwind(
        thread: *mut libc::pthread_t,
        attr: *const libc::pthread_attr_t,
        start: extern "C-unwind" fn(*mut libc::c_void) -> *mut libc::c_void,
        arg: *mut libc::c_void,
    ) -> libc::c_int;
}

/// A worker thread's start routine. `extern "C-unwind"`: a forced unwind of the
/// thread passes through it to glibc's `start_thread`.
extern "C-unwind" fn worker_start(arg: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: `arg` is the `Box<Start>` that `spawn_worker` handed to this thread.
    let start = unsafe { Box::from_raw(arg.cast::<Start>()) };
    let Start {
        team,
        worker,
        index,
    } = *start;
    // The name tools show (top -H, gdb); at most 15 bytes plus the NUL.
    let name = format!("parfor-{index}\0");
    // SAFETY: `name` is NUL-terminated and within the 16-byte limit for indexes up
    // to MAX_THREADS; naming the calling thread has no other preconditions.
    unsafe { libc::pthread_setname_np(libc::pthread_self(), name.as_ptr().cast()) };
    team.worker_main(worker, index)
}

#[cfg(test)]
mod tree_test {
    use super::*;

    #[test]
    fn every_helper_has_one_parent_and_nudges_it() {
        for fanout in [0, 2, 3, 4, 8, 16] {
            let team = Team::new_leaked(WaitPolicy::Passive, 2, fanout);
            let workers: Vec<&'static Worker> = (0..=70)
                .map(|_| {
                    let w: &'static Worker = Box::leak(Box::new(Worker {
                        mailbox: CachePadded::new(Mailbox {
                            signal: AtomicU32::new(0),
                            words: UnsafeCell::new(0),
                            call: UnsafeCell::new(no_job),
                            payload: UnsafeCell::new(Payload::uninit()),
                            post: AtomicU64::new(0),
                        }),
                        done: CachePadded::new(DoneLine::new()),
                        wait: CachePadded::new(WaitWord::default()),
                        ended: AtomicBool::new(false),
                    }));
                    w
                })
                .collect();
            for (i, w) in workers.iter().enumerate().skip(1) {
                team.record(i, w);
            }
            for helpers in 0..=70 {
                let mut parent = vec![usize::MAX; helpers + 1];
                for node in 0..=helpers {
                    let kids = team.children(node, helpers);
                    assert!(kids.len() <= MAX_FANOUT.max(FLAT_HELPERS) || node == 0);
                    for c in kids {
                        assert!((1..=helpers).contains(&c), "fanout {fanout}: child {c}");
                        assert_eq!(parent[c], usize::MAX, "fanout {fanout}: {c} twice");
                        parent[c] = node;
                    }
                }
                for (c, &p) in parent.iter().enumerate().skip(1) {
                    assert_ne!(
                        p,
                        usize::MAX,
                        "fanout {fanout}, {helpers} helpers: {c} orphaned"
                    );
                    let expected: *const WaitWord = if p == 0 {
                        &*team.leader_wait
                    } else {
                        &*workers[p].wait
                    };
                    assert!(std::ptr::eq(team.parent_wait(c, helpers), expected));
                }
                if fanout >= 2 && helpers > FLAT_HELPERS {
                    assert_eq!(team.children(0, helpers).len(), fanout.min(helpers));
                } else {
                    assert_eq!(team.children(0, helpers).len(), helpers);
                }
            }
        }
    }
}
