//! Options of a call and how a range of work items is cut among a team: OpenMP's
//! static, dynamic and guided schedules.
//!
//! A [`Chunker`] hands each item of `0..n` to exactly one thread. The items are loop
//! iterations for `parallel_for` and blocks of the fixed partition for reductions, so
//! for reductions the schedule decides only which thread computes a block, never the
//! result.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
    /// Ranges of `chunk` iterations (0 means 1) taken from a shared counter.
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
}

/// Hands the items `0..n` to the threads of a team, each item to
/// exactly one thread, following a schedule.
pub(crate) struct Chunker {
    n: usize,
    schedule: Schedule,
    chunk: usize,
    /// Next unclaimed item, for the dynamic and guided schedules.
    next: CachePadded<AtomicUsize>,
}

impl Chunker {
    /// A chunker over `0..n`.
    pub(crate) fn new(n: usize, schedule: Schedule, chunk: usize) -> Self {
        Chunker {
            n,
            schedule,
            chunk,
            next: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    /// Calls `f` with each range that thread `tid` of a team of `team` threads gets,
    /// in order, until the ranges run out or `f` returns false. Every thread of the
    /// team must use the same `team`.
    pub(crate) fn for_each(
        &self,
        tid: usize,
        team: usize,
        mut f: impl FnMut(Range<usize>) -> bool,
    ) {
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

#[cfg(test)]
mod test;
