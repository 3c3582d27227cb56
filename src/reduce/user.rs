//! User-defined reductions: a fold over index ranges and an associative combine,
//! like OpenMP's `declare reduction` or a TBB reduce body.
//!
//! The range is cut into at most [`MAX_BLOCKS`] blocks whose bounds depend only on
//! the range length (and, from C, the accumulator size); each block is folded into
//! its own accumulator, and the accumulators are combined in the same fixed pairwise
//! tree as the built-in reductions. So the result does not depend on the team size
//! or schedule, even for a non-commutative combine or floating-point state.

use std::mem::MaybeUninit;
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

/// Fails when `range` runs backwards.
fn check_range<E>(range: &Range<usize>) -> Result<(), Error<E>> {
    if range.start > range.end {
        return Err(Error::InvalidArgument(format!(
            "begin ({}) is greater than end ({})",
            range.start, range.end
        )));
    }
    Ok(())
}

/// Number of blocks a range of `n` items is cut into: one per item up to
/// `max_blocks` (at least 1), none for an empty range.
fn block_count(n: usize, max_blocks: usize) -> usize {
    n.min(max_blocks.max(1))
}

/// The schedule shared by every user reduction: cuts `range` into `blocks` (from
/// [`block_count`]) bounded by `static_block` and runs `fold_block(b, block b's
/// range)` on the team, each block on exactly one thread; a failed fold cancels the
/// blocks not yet started and is returned with its range. The caller then combines
/// the blocks in the order of [`tree_pairs`].
fn run_blocks<E: Send, F>(
    range: Range<usize>,
    opts: &Options,
    blocks: usize,
    fold_block: F,
) -> Result<(), Error<E>>
where
    F: Fn(usize, Range<usize>) -> Result<(), E> + Copy + Send + Sync,
{
    let (start, n) = (range.start, range.len());
    debug_assert!(blocks >= 1 && blocks <= n);
    let bounds = move |b: usize| {
        let r = static_block(n, blocks, b);
        start + r.start..start + r.end
    };
    let cancel = Cancel::new();
    if opts.one_range_each() {
        // The static schedule: each thread its own run of blocks, as `parallel_for`
        // does. The job is copied into the workers' mailboxes (fork_join_copy), so a
        // worker reads nothing the caller wrote for this call but the line that
        // signalled it; `fold_block` is Copy for that (a C reduction's state is a few
        // words). A thread's first block starts whatever the others did: reading the
        // cancel flag, written by the caller for this call, would cost it a miss.
        // AMD EPYC family 25 model 17 (KVM, 2 vCPUs), a 2-item C reduction on 2
        // threads, back to back: 540-570 ns through the Chunker with the job read
        // by reference, 270-320 ns so (`parfor_for` of 2 items: 200-220 ns).
        let failed = &cancel;
        runtime::fork_join_copy(opts.num_threads(), blocks, move |tid, team| {
            for (k, b) in static_block(blocks, team, tid).enumerate() {
                if k > 0 && failed.stopped() {
                    return;
                }
                let r = bounds(b);
                if let Err(e) = fold_block(b, r.clone()) {
                    failed.fail(r, e);
                    return;
                }
            }
        })
    } else {
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
                    if let Err(e) = fold_block(b, r.clone()) {
                        cancel.fail(r, e);
                        return false;
                    }
                }
                true
            })
        })
    }
    .map_err(Error::widen)?;
    cancel.into_result()
}

/// The fixed pairwise tree over `blocks` block accumulators, as the pairs (i, j) in
/// the order they are combined: block j (the later) into block i; block 0 then holds
/// the result. It is `super::tree_combine`'s tree, in place: at distance s, block i
/// (a multiple of 2s) takes in block i + s. Level L of a level-by-level tree holds at
/// its position j what block j * 2^L holds here, so the pairs, and the odd block
/// carried up unpaired, are the same.
fn tree_pairs(blocks: usize) -> impl Iterator<Item = (usize, usize)> {
    std::iter::successors(Some(1usize), |&s| s.checked_mul(2))
        .take_while(move |&s| s < blocks)
        .flat_map(move |s| (0..blocks - s).step_by(2 * s).map(move |i| (i, i + s)))
}

fn reduce_blocks<A: Send, E: Send>(
    range: Range<usize>,
    opts: &Options,
    max_blocks: usize,
    identity: impl Fn() -> A + Sync,
    fold: impl Fn(Range<usize>, &mut A) -> Result<(), E> + Sync,
    combine: impl Fn(&mut A, A),
) -> Result<A, Error<E>> {
    check_range(&range)?;
    let blocks = block_count(range.len(), max_blocks);
    if blocks == 0 {
        return Ok(identity());
    }
    // The block accumulators: on the stack for the few blocks of a small range, so
    // that a small reduction allocates nothing, on the heap otherwise.
    let mut inline: [Option<A>; INLINE_BLOCKS] = std::array::from_fn(|_| None);
    let mut heap: Vec<Option<A>>;
    let parts: &mut [Option<A>] = if blocks <= INLINE_BLOCKS {
        &mut inline[..blocks]
    } else {
        heap = (0..blocks).map(|_| None).collect();
        &mut heap
    };
    let slots = Slots::new(parts);
    run_blocks(range, opts, blocks, |b, r| {
        let mut acc = identity();
        fold(r, &mut acc)?;
        // SAFETY: `run_blocks` gives block b to exactly one thread, and `parts`
        // is not touched again until every fold is done.
        unsafe { slots.write(b, Some(acc)) };
        Ok(())
    })?;
    for (i, j) in tree_pairs(blocks) {
        let right = parts[j].take().expect("every block was folded");
        combine(parts[i].as_mut().expect("every block was folded"), right);
    }
    Ok(parts[0].take().expect("at least one block"))
}

/// Blocks whose accumulators live on the stack (see `reduce_blocks`).
const INLINE_BLOCKS: usize = 8;

/// One cache line of a [`reduce_bytes`] slab.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// Lines of block accumulators a C reduction keeps on the stack (see [`reduce_bytes`]).
const INLINE_LINES: usize = 8;

/// A reduction over accumulators of raw bytes, for the C ABI: accumulators of `size`
/// bytes, 64-byte aligned, each set by `init(acc)` (which writes the identity there),
/// folded by `fold(range, acc)` and merged by `combine(acc, other)`; on success
/// `deliver` gets the result's bytes (the identity's for an empty range) and its
/// value is returned. The number of blocks is also bounded so that all block
/// accumulators together stay under 64 MiB.
///
/// The accumulators are one slab, each block's starting on its own cache line (so
/// that two threads' folds never share a line), allocated once per call (fallibly:
/// a C accumulator may be of any size) and on the stack up to [`INLINE_LINES`]
/// lines: the EPCC REDUCTION case, one 8-byte accumulator per thread, allocates
/// nothing. Written by hand rather than as `reduce_with` over owned byte buffers,
/// which cost a 128-byte value moved several times per block (memmove calls, and
/// store-forwarding stalls reading back a line just built) and, past one line, an
/// allocation per block: 165 against 19 ns for `parfor_for` on one thread (AMD EPYC
/// family 25 model 17), 606 against 227 ns on two; now 43-55 and 270-320 ns (with the
/// static schedule's copied job, see `run_blocks`).
pub fn reduce_bytes<T, E: Send>(
    range: Range<usize>,
    opts: &Options,
    size: usize,
    init: impl Fn(*mut u8) + Copy + Send + Sync,
    fold: impl Fn(Range<usize>, *mut u8) -> Result<(), E> + Copy + Send + Sync,
    combine: impl Fn(*mut u8, *const u8),
    deliver: impl FnOnce(&[u8]) -> T,
) -> Result<T, Error<E>> {
    check_range(&range)?;
    let lines = size.div_ceil(64).max(1);
    let max_blocks = (MAX_ACC_BYTES / (lines * 64)).clamp(1, MAX_BLOCKS);
    let blocks = block_count(range.len(), max_blocks);
    // An empty range still needs one accumulator: the identity it delivers.
    let total = blocks.max(1) * lines; // <= MAX_ACC_BYTES / 64 + lines: no overflow
    let mut inline = [const { MaybeUninit::<Line>::uninit() }; INLINE_LINES];
    let mut heap: Vec<MaybeUninit<Line>> = Vec::new();
    let slab: &mut [MaybeUninit<Line>] = if total <= INLINE_LINES {
        &mut inline[..total]
    } else {
        heap.try_reserve_exact(total).map_err(|_| {
            Error::Runtime(format!(
                "cannot allocate the accumulators ({} of {size} bytes)",
                blocks.max(1)
            ))
        })?;
        heap.resize_with(total, MaybeUninit::uninit);
        &mut heap
    };
    let base = SlabPtr(slab.as_mut_ptr().cast::<u8>());
    let stride = lines * 64;
    if blocks == 0 {
        // SAFETY: the slab holds one accumulator of `stride` >= `size` bytes, which
        // `init` writes and nothing else touches.
        let acc = unsafe { base.at(0) };
        init(acc);
        // SAFETY: the `size` bytes at `acc` were just written by `init`.
        return Ok(deliver(unsafe { std::slice::from_raw_parts(acc, size) }));
    }
    run_blocks(range, opts, blocks, move |b, r| {
        // SAFETY: block b's accumulator is the `stride` bytes at b * stride, in
        // the slab (b < blocks), 64-byte aligned (the slab is of `Line`s, the
        // stride whole lines); `run_blocks` gives block b to exactly one thread,
        // so no other thread reads or writes them during the folds.
        let acc = unsafe { base.at(b * stride) };
        init(acc);
        fold(r, acc)
    })?;
    for (i, j) in tree_pairs(blocks) {
        // SAFETY: after every fold, on this thread alone: two distinct blocks'
        // accumulators in the slab, each initialised by `init` and its fold.
        let (acc, other) = unsafe { (base.at(i * stride), base.at(j * stride)) };
        combine(acc, other);
    }
    // SAFETY: block 0's `size` bytes were initialised by `init` and its fold.
    let result = unsafe { std::slice::from_raw_parts(base.at(0), size) };
    Ok(deliver(result))
}

/// The start of a [`reduce_bytes`] slab, shared by the team's folds.
#[derive(Clone, Copy)]
struct SlabPtr(*mut u8);

// SAFETY: the folds write disjoint accumulators of the slab (one block each, see
// `reduce_bytes`), which outlives the call that shares the pointer.
unsafe impl Send for SlabPtr {}
// SAFETY: as above.
unsafe impl Sync for SlabPtr {}

impl SlabPtr {
    /// The byte `offset` bytes into the slab.
    ///
    /// # Safety
    /// `offset` lies within the slab.
    unsafe fn at(self, offset: usize) -> *mut u8 {
        // SAFETY: the caller's contract.
        unsafe { self.0.add(offset) }
    }
}
