//! Options of a call and how a range of work items is cut among a team: OpenMP's
//! static, dynamic and guided schedules.
//!
//! A [`Chunker`] hands each item of `0..n` to exactly one thread. The items are loop
//! iterations for `parallel_for` and blocks of the fixed partition for reductions, so
//! for reductions the schedule decides only which thread computes a block, never the
//! result.

use std::marker::PhantomData;
use std::mem::{align_of, size_of, MaybeUninit};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use crossbeam_utils::CachePadded;

use crate::error::Error;

/// How iterations are shared out, as OpenMP's `schedule` clause.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Schedule {
    /// The runtime chooses; currently [`Schedule::Static`].
    #[default]
    Auto,
    /// chunk 0: one contiguous near-equal range per thread; chunk c: ranges of c
    /// iterations dealt round-robin.
    Static,
    /// Ranges of `chunk` iterations (0 means 1) handed out on demand. Each thread
    /// starts on its own contiguous share and takes its chunks in order; a thread
    /// that runs out takes the later half of the largest share left (work
    /// stealing). Which thread runs which chunk is not fixed, as in OpenMP.
    Dynamic,
    /// Like dynamic, with ranges proportional to the remaining work divided by twice
    /// the team size, never smaller than `chunk`.
    Guided,
}

impl Schedule {
    /// Maps a C enum value to a schedule.
    pub fn from_raw(raw: i32) -> Option<Schedule> {
        match raw {
            0 => Some(Schedule::Auto),
            1 => Some(Schedule::Static),
            2 => Some(Schedule::Dynamic),
            3 => Some(Schedule::Guided),
            _ => None,
        }
    }
}

/// Options of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Options {
    num_threads: usize,
    schedule: Schedule,
    chunk: usize,
}

impl Options {
    /// Options with a team size (0: the runtime default), schedule and chunk (0:
    /// automatic). Fails when `num_threads` exceeds [`crate::runtime::MAX_THREADS`].
    pub fn new(num_threads: usize, schedule: Schedule, chunk: usize) -> Result<Self, String> {
        crate::runtime::check_team_size(num_threads)?;
        Ok(Options {
            num_threads,
            schedule,
            chunk,
        })
    }

    /// Options with this team size and the default schedule.
    pub fn with_threads(num_threads: usize) -> Result<Self, String> {
        Self::new(num_threads, Schedule::Auto, 0)
    }

    /// Requested team size (0: default).
    pub fn num_threads(&self) -> usize {
        self.num_threads
    }

    /// Requested schedule.
    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    /// Requested chunk (0: automatic).
    pub fn chunk(&self) -> usize {
        self.chunk
    }

    /// Whether the schedule gives each thread one contiguous range, as
    /// [`static_block`] cuts it: static (or auto) with an automatic chunk.
    pub(crate) fn one_range_each(&self) -> bool {
        matches!(self.schedule, Schedule::Auto | Schedule::Static) && self.chunk == 0
    }
}

/// Hands the items `0..n` to the threads of a team, each item to
/// exactly one thread, following a schedule.
pub(crate) struct Chunker {
    n: usize,
    schedule: Schedule,
    chunk: usize,
    /// Next unclaimed item, for the guided schedule (and dynamic without `shares`).
    next: CachePadded<AtomicUsize>,
    /// Dynamic schedule: per thread, the chunks of its share not yet taken.
    shares: Vec<CachePadded<Share>>,
    /// The team size this chunker was made for (0: any).
    team: usize,
}

/// A range of chunk indices `lo..hi` in one word (lo in the low half), so that its
/// owner taking from the front and thieves taking from the back agree with one
/// compare-and-swap.
///
/// Why not a shared counter, as libgomp does: with chunks of one cheap iteration
/// every claim moves the counter's cache line between cores (0.1-0.2 us each on the
/// target machine), and an imbalanced loop of 1e5 items that runs in 1 ms on one
/// thread took 8-11 ms on two (libgomp: 9 ms). Taking from one's own share touches a
/// line no other thread uses until it runs out and steals.
#[derive(Default)]
struct Share(AtomicU64);

impl Share {
    fn pack(lo: u32, hi: u32) -> u64 {
        u64::from(lo) | (u64::from(hi) << 32)
    }

    fn unpack(v: u64) -> (u32, u32) {
        (v as u32, (v >> 32) as u32)
    }

    fn set(&self, lo: u32, hi: u32) {
        // Relaxed: the word only partitions indices; the data the chunks cover is
        // published by the team's fork and join.
        self.0.store(Self::pack(lo, hi), Ordering::Relaxed);
    }

    /// The first chunk left, taken.
    fn take_front(&self) -> Option<u32> {
        let mut v = self.0.load(Ordering::Relaxed);
        loop {
            let (lo, hi) = Self::unpack(v);
            if lo >= hi {
                return None;
            }
            match self.0.compare_exchange_weak(
                v,
                Self::pack(lo + 1, hi),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(lo),
                Err(now) => v = now,
            }
        }
    }

    /// The later half (rounded up) of the chunks left, taken; `None` when empty.
    fn take_back_half(&self) -> Option<(u32, u32)> {
        let mut v = self.0.load(Ordering::Relaxed);
        loop {
            let (lo, hi) = Self::unpack(v);
            if lo >= hi {
                return None;
            }
            let mid = hi - (hi - lo).div_ceil(2);
            match self.0.compare_exchange_weak(
                v,
                Self::pack(lo, mid),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some((mid, hi)),
                Err(now) => v = now,
            }
        }
    }

    fn left(&self) -> u32 {
        let (lo, hi) = Self::unpack(self.0.load(Ordering::Relaxed));
        hi.saturating_sub(lo)
    }
}

impl Chunker {
    /// A chunker over `0..n`, for any team.
    pub(crate) fn new(n: usize, schedule: Schedule, chunk: usize) -> Self {
        Chunker {
            n,
            schedule,
            chunk,
            next: CachePadded::new(AtomicUsize::new(0)),
            shares: Vec::new(),
            team: 0,
        }
    }

    /// A chunker over `0..n` for the team a call will use: `requested` threads (0:
    /// the default), at most one per item, 1 where the call must run inline. Pass
    /// [`Chunker::team`] to `fork_join` as the request, so that both agree.
    pub(crate) fn for_call(n: usize, schedule: Schedule, chunk: usize, requested: usize) -> Self {
        Self::for_team(n, schedule, chunk, crate::runtime::team_size(requested, n))
    }

    /// The team size given to [`Chunker::for_team`] or chosen by [`Chunker::for_call`].
    pub(crate) fn team(&self) -> usize {
        self.team
    }

    /// A chunker over `0..n` for a team of `team` threads: the dynamic schedule then
    /// gives each thread its own share (see [`Share`]). Used with another team size,
    /// it falls back to a shared counter.
    pub(crate) fn for_team(n: usize, schedule: Schedule, chunk: usize, team: usize) -> Self {
        let mut c = Self::new(n, schedule, chunk);
        c.team = team;
        let chunks = n.div_ceil(chunk.max(1));
        if schedule == Schedule::Dynamic && team > 1 && u32::try_from(chunks).is_ok() {
            c.shares = (0..team)
                .map(|tid| {
                    let r = static_block(chunks, team, tid);
                    let share = CachePadded::new(Share::default());
                    // In range: chunks fits in u32 (checked above).
                    share.set(r.start as u32, r.end as u32);
                    share
                })
                .collect();
        }
        c
    }

    /// Calls `f` with each range that thread `tid` of a team of `team` threads gets,
    /// in order, until the ranges run out or `f` returns false. Every thread of the
    /// team must use the same `team`.
    #[inline]
    pub(crate) fn for_each(
        &self,
        tid: usize,
        team: usize,
        mut f: impl FnMut(Range<usize>) -> bool,
    ) {
        self.each(tid, team, &mut f)
    }

    /// [`Chunker::for_each`] behind one indirect call per range: the scheduling code
    /// is compiled once, not once per loop body (it was instantiated for every
    /// reduction kernel of every dtype and layout: 1743 copies, 12 % of the
    /// library's LLVM IR). A range is a chunk of work, so the call costs nothing
    /// measurable.
    fn each(&self, tid: usize, team: usize, f: &mut dyn FnMut(Range<usize>) -> bool) {
        let (n, team) = (self.n, team.max(1));
        match self.schedule {
            Schedule::Auto | Schedule::Static if self.chunk == 0 => {
                let r = static_block(n, team, tid);
                if !r.is_empty() {
                    f(r);
                }
            }
            Schedule::Auto | Schedule::Static => {
                let c = self.chunk;
                let mut start = tid.saturating_mul(c);
                while start < n {
                    let end = start.saturating_add(c).min(n);
                    if !f(start..end) {
                        return;
                    }
                    start = start.saturating_add(team.saturating_mul(c));
                }
            }
            Schedule::Dynamic if self.shares.len() == team => self.stealing(tid, f),
            Schedule::Dynamic => {
                let c = self.chunk.max(1);
                loop {
                    // Relaxed: the counter only partitions indices; the data the
                    // ranges cover is published by the team's fork and join.
                    let start = self.next.fetch_add(c, Ordering::Relaxed);
                    if start >= n {
                        return;
                    }
                    // fetch_add may overshoot n by at most team * c; usize::MAX items
                    // cannot be reached by a real loop, but saturate anyway.
                    let end = start.saturating_add(c).min(n);
                    if !f(start..end) {
                        return;
                    }
                }
            }
            Schedule::Guided => {
                let min = self.chunk.max(1);
                let mut start = self.next.load(Ordering::Relaxed);
                loop {
                    if start >= n {
                        return;
                    }
                    let size = ((n - start) / (2 * team)).max(min).min(n - start);
                    match self.next.compare_exchange_weak(
                        start,
                        start + size,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => {
                            if !f(start..start + size) {
                                return;
                            }
                            start = self.next.load(Ordering::Relaxed);
                        }
                        Err(now) => start = now,
                    }
                }
            }
        }
    }

    /// The dynamic schedule over per-thread shares: own chunks first, then steal.
    fn stealing(&self, tid: usize, f: &mut dyn FnMut(Range<usize>) -> bool) {
        let c = self.chunk.max(1);
        let mine = &self.shares[tid];
        loop {
            while let Some(k) = mine.take_front() {
                let start = k as usize * c;
                if !f(start..(start + c).min(self.n)) {
                    return;
                }
            }
            // Out of work: the fullest other share gives up its later half. A range
            // being moved by another thief is briefly in no share; missing it only
            // means that thief runs it.
            let victim = self
                .shares
                .iter()
                .enumerate()
                .filter(|&(t, s)| t != tid && s.left() > 0)
                .max_by_key(|(_, s)| s.left());
            let Some((_, victim)) = victim else { return };
            if let Some((lo, hi)) = victim.take_back_half() {
                // Only this thread takes from the front of its own share, and thieves
                // leave an empty share alone, so a plain store cannot lose chunks.
                mine.set(lo, hi);
            }
        }
    }
}

/// Cancellation shared by the threads of one loop or user reduction: the flag that
/// stops ranges not yet started, and the first failure recorded.
pub(crate) struct Cancel<E> {
    stop: AtomicBool,
    failure: Mutex<Option<(Range<usize>, E)>>,
}

impl<E> Cancel<E> {
    pub(crate) fn new() -> Self {
        Cancel {
            stop: AtomicBool::new(false),
            failure: Mutex::new(None),
        }
    }

    /// True once a callback has failed: ranges not yet started must be skipped.
    pub(crate) fn stopped(&self) -> bool {
        // Relaxed: only a hint to stop early; the failure itself is read after the
        // join, which orders it.
        self.stop.load(Ordering::Relaxed)
    }

    /// Records that the callback for `range` failed with `cause` (the first failure
    /// recorded wins) and stops the ranges not yet started.
    pub(crate) fn fail(&self, range: Range<usize>, cause: E) {
        self.stop.store(true, Ordering::Relaxed);
        let mut f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        f.get_or_insert((range, cause));
    }

    /// After the join: `Err(Cancelled)` with the recorded failure, if any.
    pub(crate) fn into_result(self) -> Result<(), Error<E>> {
        match self.failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some((range, cause)) => Err(Error::Cancelled { range, cause }),
            None => Ok(()),
        }
    }
}

/// The `tid`-th of `team` contiguous near-equal parts of `0..n`; the first `n % team`
/// parts are one longer, as in OpenMP's static schedule.
pub(crate) fn static_block(n: usize, team: usize, tid: usize) -> Range<usize> {
    let q = n / team;
    let r = n % team;
    let start = tid * q + tid.min(r);
    let len = q + usize::from(tid < r);
    start.min(n)..(start + len).min(n)
}

/// Machine words of a closure that [`RangeFn`] carries by value.
const RANGE_FN_WORDS: usize = 5;

/// The bytes of a closure (or of a reference to one), aligned as a word.
#[derive(Clone, Copy)]
struct RangeFnState(MaybeUninit<[usize; RANGE_FN_WORDS]>);

/// A `Fn(Range<usize>) -> R` with its type erased, so that the drivers taking one
/// (`reduce::reduce_blocks`' batches, team job and serial fallback;
/// `parallel_for_copy`) are compiled once per result type instead of once per
/// closure. They were instantiated for every dtype, accumulator, operator and
/// layout of the array reductions: about 1,700 copies, which with the scheduler
/// under them made 60 % of the library's 6.4 million lines of LLVM IR and most of
/// a 9-minute release compile. A closure of up to `RANGE_FN_WORDS` words travels by
/// value (its bytes and the function that calls it), so a team's job still carries
/// everything a worker reads (see `runtime::fork_join_copy`); a larger one travels
/// as a reference to it. Costs one indirect call per range (a block or chunk of
/// work).
pub(crate) struct RangeFn<'a, P> {
    /// Calls the closure whose bytes (or reference) `state` holds.
    call: unsafe fn(&RangeFnState, Range<usize>) -> P,
    state: RangeFnState,
    /// The closure (or the reference) borrows for `'a`.
    _borrow: PhantomData<&'a ()>,
}

// Copies call the same closure: a bitwise copy of a Copy closure, or the same reference.
impl<P> Clone for RangeFn<'_, P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P> Copy for RangeFn<'_, P> {}

// SAFETY: a RangeFn holds a copy of, or a shared reference to, a closure that is
// Send + Sync (`RangeFn::new` requires it), and only ever calls it by `&`.
unsafe impl<P> Send for RangeFn<'_, P> {}
// SAFETY: as above.
unsafe impl<P> Sync for RangeFn<'_, P> {}

impl<'a, P> RangeFn<'a, P> {
    /// Erases `f`'s type (copying it when it is small enough).
    pub(crate) fn new<F: Fn(Range<usize>) -> P + Copy + Send + Sync + 'a>(f: &'a F) -> Self {
        let mut state = RangeFnState(MaybeUninit::uninit());
        let slot = state.0.as_mut_ptr();
        let call: unsafe fn(&RangeFnState, Range<usize>) -> P = if size_of::<F>()
            <= size_of::<RangeFnState>()
            && align_of::<F>() <= align_of::<RangeFnState>()
        {
            // SAFETY: F fits in the state's words and is aligned for them (checked);
            // F is Copy, so the bitwise copy is a valid F with nothing to drop.
            unsafe { slot.cast::<F>().write(*f) };
            call_inline::<F, P>
        } else {
            // SAFETY: a reference is one word.
            unsafe { slot.cast::<&'a F>().write(f) };
            call_ref::<F, P>
        };
        RangeFn {
            call,
            state,
            _borrow: PhantomData,
        }
    }

    /// Calls the closure.
    #[inline]
    pub(crate) fn run(&self, r: Range<usize>) -> P {
        // SAFETY: `call` was chosen by `new` for what it wrote into `state`.
        unsafe { (self.call)(&self.state, r) }
    }
}

/// # Safety
/// `s` holds an `F`, written by [`RangeFn::new`].
unsafe fn call_inline<F: Fn(Range<usize>) -> P, P>(s: &RangeFnState, r: Range<usize>) -> P {
    // SAFETY: the function's contract.
    let f = unsafe { &*s.0.as_ptr().cast::<F>() };
    f(r)
}

/// # Safety
/// `s` holds a live `&F`, written by [`RangeFn::new`].
unsafe fn call_ref<F: Fn(Range<usize>) -> P, P>(s: &RangeFnState, r: Range<usize>) -> P {
    // SAFETY: the function's contract.
    let f = unsafe { *s.0.as_ptr().cast::<&F>() };
    f(r)
}

#[cfg(test)]
mod test;
