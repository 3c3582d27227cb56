//! User-defined reductions: a fold over index ranges and an associative combine,
//! like OpenMP's `declare reduction` or a TBB reduce body.
//!
//! The range is cut into at most [`MAX_BLOCKS`] blocks whose bounds depend only on
//! the range length (and, from C, the accumulator size); each block is folded into
//! its own accumulator, and the accumulators are combined in the same fixed pairwise
//! tree as the built-in reductions. So the result does not depend on the team size
//! or schedule, even for a non-commutative combine or floating-point state.

use std::ops::Range;

use super::Slots;
use crate::error::Error;
use crate::runtime;
use crate::schedule::{static_block, Cancel, Chunker, Options};

/// Most blocks a user reduction is cut into: enough for dynamic balancing on any
/// team parfor targets, few enough that the per-block fold and combine calls (a few
/// nanoseconds each) stay negligible.
pub const MAX_BLOCKS: usize = 256;

/// Bound on the memory the block accumulators of a C reduction may take together.
const MAX_ACC_BYTES: usize = 64 << 20;

/// Reduces `range`: each block's accumulator starts as `identity()`, `fold` folds a
/// block's sub-range into it, and `combine(acc, other)` merges `other` (the later
/// block) into `acc`. A fold error cancels the blocks not yet started and is returned
/// with its range. An empty range gives `identity()`.
pub fn reduce_with<A: Send, E: Send>(
    range: Range<usize>,
    opts: &Options,
    identity: impl Fn() -> A + Sync,
    fold: impl Fn(Range<usize>, &mut A) -> Result<(), E> + Sync,
    combine: impl Fn(&mut A, A),
) -> Result<A, Error<E>> {
    reduce_blocks(range, opts, MAX_BLOCKS, identity, fold, combine)
}

fn reduce_blocks<A: Send, E: Send>(
    range: Range<usize>,
    opts: &Options,
    max_blocks: usize,
    identity: impl Fn() -> A + Sync,
    fold: impl Fn(Range<usize>, &mut A) -> Result<(), E> + Sync,
    combine: impl Fn(&mut A, A),
) -> Result<A, Error<E>> {
    if range.start > range.end {
        return Err(Error::InvalidArgument(format!(
            "begin ({}) is greater than end ({})",
            range.start, range.end
        )));
    }
    let n = range.len();
    let blocks = n.min(max_blocks.max(1));
    if blocks == 0 {
        return Ok(identity());
    }
    let bounds = |b: usize| {
        let r = static_block(n, blocks, b);
        range.start + r.start..range.start + r.end
    };
    let mut parts: Vec<Option<A>> = (0..blocks).map(|_| None).collect();
    let slots = Slots::new(&mut parts);
    let cancel = Cancel::new();
    // The chunk is given in iterations; convert it to whole blocks.
    let chunk_blocks = opts.chunk().div_ceil(n.div_ceil(blocks));
    let chunker = Chunker::for_call(blocks, opts.schedule(), chunk_blocks, opts.num_threads());
    runtime::fork_join(chunker.team(), blocks, &|tid, team| {
        chunker.for_each(tid, team, |bs| {
            for b in bs {
                if cancel.stopped() {
                    return false;
                }
                let r = bounds(b);
                let mut acc = identity();
                match fold(r.clone(), &mut acc) {
                    // SAFETY: the chunker gives block b to exactly one thread, and
                    // `parts` stays borrowed by `slots` until fork_join returns.
                    Ok(()) => unsafe { slots.write(b, Some(acc)) },
                    Err(e) => {
                        cancel.fail(r, e);
                        return false;
                    }
                }
            }
            true
        })
    })
    .map_err(Error::widen)?;
    cancel.into_result()?;
    // Level-by-level pairwise tree, as `super::tree_combine`, on owned accumulators.
    let mut level: Vec<A> = parts
        .into_iter()
        .map(|p| p.expect("every block was folded"))
        .collect();
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        let mut it = level.into_iter();
        while let Some(mut left) = it.next() {
            if let Some(right) = it.next() {
                combine(&mut left, right);
            }
            next.push(left);
        }
        level = next;
    }
    Ok(level.pop().expect("at least one block"))
}

/// An accumulator of a C reduction: `size` bytes, 64-byte aligned, owned.
pub struct AccBytes {
    lines: Vec<Line>,
    size: usize,
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

impl AccBytes {
    /// A copy of `bytes`, or `None` when the memory cannot be allocated (a C
    /// accumulator may be of any size: an allocation failure must become a status,
    /// not an abort; issue 13, row 3).
    fn try_from_bytes(bytes: &[u8]) -> Option<Self> {
        let n = bytes.len().div_ceil(64).max(1);
        let mut lines = Vec::new();
        lines.try_reserve_exact(n).ok()?;
        lines.resize(n, Line([0; 64]));
        // SAFETY: `lines` holds at least bytes.len() bytes, and a fresh allocation
        // cannot overlap `bytes`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                lines.as_mut_ptr().cast::<u8>(),
                bytes.len(),
            )
        };
        Some(AccBytes {
            lines,
            size: bytes.len(),
        })
    }

    /// Start of the bytes.
    pub fn as_ptr(&self) -> *const u8 {
        self.lines.as_ptr().cast()
    }

    /// Start of the bytes, writable.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.lines.as_mut_ptr().cast()
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.size
    }

    /// True for a zero-size accumulator (never made by this module).
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
}

/// A reduction over accumulators of raw bytes, for the C ABI: `fold(range, acc)` and
/// `combine(acc, other)` get pointers to 64-byte aligned buffers of
/// `identity.len()` bytes. The number of blocks is also bounded so that all block
/// accumulators together stay under 64 MiB.
pub fn reduce_bytes<E: Send>(
    range: Range<usize>,
    opts: &Options,
    identity: &[u8],
    fold: impl Fn(Range<usize>, *mut u8) -> Result<(), E> + Sync,
    combine: impl Fn(*mut u8, *const u8),
) -> Result<AccBytes, Error<E>> {
    /// Why a block failed: its fold, or its accumulator could not be allocated.
    enum Failed<E> {
        Fold(E),
        NoMemory,
    }
    let no_memory = || {
        Error::Runtime(format!(
            "cannot allocate an accumulator of {} bytes",
            identity.len()
        ))
    };
    let max_blocks = (MAX_ACC_BYTES / identity.len().max(1)).clamp(1, MAX_BLOCKS);
    let result = reduce_blocks(
        range,
        opts,
        max_blocks,
        || AccBytes::try_from_bytes(identity),
        |r, acc: &mut Option<AccBytes>| match acc {
            Some(acc) => fold(r, acc.as_mut_ptr()).map_err(Failed::Fold),
            None => Err(Failed::NoMemory),
        },
        |acc, other| {
            // Every accumulator that reaches the combine was allocated: a block
            // whose allocation failed cancelled the call.
            if let (Some(acc), Some(other)) = (acc.as_mut(), other.as_ref()) {
                combine(acc.as_mut_ptr(), other.as_ptr())
            }
        },
    );
    match result {
        Ok(Some(acc)) => Ok(acc),
        Ok(None) => Err(no_memory()),
        Err(Error::Cancelled {
            range,
            cause: Failed::Fold(cause),
        }) => Err(Error::Cancelled { range, cause }),
        Err(Error::Cancelled {
            cause: Failed::NoMemory,
            ..
        }) => Err(no_memory()),
        Err(Error::InvalidArgument(m)) => Err(Error::InvalidArgument(m)),
        Err(Error::Empty) => Err(Error::Empty),
        Err(Error::Runtime(m)) => Err(Error::Runtime(m)),
    }
}
