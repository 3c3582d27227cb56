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
    // The block accumulators: on the stack for the few blocks of a small range, so
    // that a small reduction allocates nothing (the EPCC REDUCTION case: one block
    // per thread), on the heap otherwise.
    let mut inline: [Option<A>; INLINE_BLOCKS] = std::array::from_fn(|_| None);
    let mut heap: Vec<Option<A>>;
    let parts: &mut [Option<A>] = if blocks <= INLINE_BLOCKS {
        &mut inline[..blocks]
    } else {
        heap = (0..blocks).map(|_| None).collect();
        &mut heap
    };
    let slots = Slots::new(parts);
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
    // The pairwise tree of `super::tree_combine`, in place: at distance s, block i
    // (a multiple of 2s) takes in block i + s. Level L of a level-by-level tree holds
    // at its position j what block j * 2^L holds here, so the pairs, and the odd block
    // carried up unpaired, are the same.
    let mut s = 1;
    while s < blocks {
        let mut i = 0;
        while i + s < blocks {
            let right = parts[i + s].take().expect("every block was folded");
            combine(parts[i].as_mut().expect("every block was folded"), right);
            i += 2 * s;
        }
        s *= 2;
    }
    Ok(parts[0].take().expect("at least one block"))
}

/// Blocks whose accumulators live on the stack (see `reduce_blocks`).
const INLINE_BLOCKS: usize = 8;

/// An accumulator of a C reduction: `size` bytes, 64-byte aligned, owned; up to one
/// cache line inline (no allocation for the accumulators C programs mostly use: a
/// number, a few counters), more on the heap.
pub struct AccBytes {
    store: Store,
    size: usize,
}

enum Store {
    Line(Line),
    Lines(Vec<Line>),
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

impl AccBytes {
    /// A copy of `bytes`, or `None` when the memory cannot be allocated (a C
    /// accumulator may be of any size: an allocation failure must become a status,
    /// not an abort; issue 13, row 3).
    pub fn try_from_bytes(bytes: &[u8]) -> Option<Self> {
        let store = if bytes.len() <= 64 {
            let mut line = Line([0; 64]);
            line.0[..bytes.len()].copy_from_slice(bytes);
            Store::Line(line)
        } else {
            let n = bytes.len().div_ceil(64);
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
            Store::Lines(lines)
        };
        Some(AccBytes {
            store,
            size: bytes.len(),
        })
    }

    /// Start of the bytes.
    pub fn as_ptr(&self) -> *const u8 {
        match &self.store {
            Store::Line(line) => line.0.as_ptr(),
            Store::Lines(lines) => lines.as_ptr().cast(),
        }
    }

    /// Start of the bytes, writable.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        match &mut self.store {
            Store::Line(line) => line.0.as_mut_ptr(),
            Store::Lines(lines) => lines.as_mut_ptr().cast(),
        }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: the store holds at least `size` initialised bytes at `as_ptr()`.
        unsafe { std::slice::from_raw_parts(self.as_ptr(), self.size) }
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
