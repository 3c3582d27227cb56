//! Built-in reductions over typed slices, and the fixed partition that makes their
//! floating-point results reproducible.
//!
//! ## Reproducibility
//! A slice of `len` elements is cut into blocks whose length depends only on `len`
//! and the element size ([`block_len`]), never on the team size or the schedule. Each
//! block is reduced by a kernel whose lane structure is fixed (see `kernels`), giving
//! one partial per block, and the partials are combined in a fixed pairwise tree in
//! block order ([`tree_combine`]). The team and the schedule only decide which thread
//! computes which block, so the result is the same bit for bit for every team size
//! and schedule, and equal to the one-thread result.
//!
//! ## When to stay on the calling thread
//! Waking the team costs about a quarter of a microsecond when its workers spin, and
//! several microseconds when they are parked. Below [`PARALLEL_MIN_BYTES`] the
//! reduction runs on the caller alone, with the same blocks and tree, so the result
//! does not change.

pub mod exact;
pub mod user;

use std::ops::Range;

use crate::dtype::DType;
use crate::error::Error;
use crate::kernels::{self, Element};
use crate::runtime;
use crate::schedule::{static_block, Chunker, Options, RangeFn};

pub use user::reduce_with;

/// A reduction operator: OpenMP's, plus the exact sum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// `+` (integers wrap). Empty: 0.
    Sum = 0,
    /// `*` (integers wrap). Empty: 1.
    Prod = 1,
    /// `min`, NaN-propagating. Empty: error.
    Min = 2,
    /// `max`, NaN-propagating. Empty: error.
    Max = 3,
    /// `&`, integers only. Empty: all ones.
    BitAnd = 4,
    /// `|`, integers only. Empty: 0.
    BitOr = 5,
    /// `^`, integers only. Empty: 0.
    BitXor = 6,
    /// `&&`: 1 if all nonzero. Empty: 1.
    LogicalAnd = 7,
    /// `||`: 1 if any nonzero. Empty: 0.
    LogicalOr = 8,
    /// Correctly rounded exact sum, floats only. Empty: 0.
    SumExact = 9,
    /// `+` skipping NaNs (integers: as `Sum`). Empty: 0.
    NanSum = 10,
    /// `min` skipping NaNs; all NaN gives NaN (integers: as `Min`). Empty: error.
    NanMin = 11,
    /// `max` skipping NaNs; all NaN gives NaN (integers: as `Max`). Empty: error.
    NanMax = 12,
}

impl ReduceOp {
    /// Every operator, in discriminant order.
    pub const ALL: [ReduceOp; 13] = [
        ReduceOp::Sum,
        ReduceOp::Prod,
        ReduceOp::Min,
        ReduceOp::Max,
        ReduceOp::BitAnd,
        ReduceOp::BitOr,
        ReduceOp::BitXor,
        ReduceOp::LogicalAnd,
        ReduceOp::LogicalOr,
        ReduceOp::SumExact,
        ReduceOp::NanSum,
        ReduceOp::NanMin,
        ReduceOp::NanMax,
    ];

    /// Maps a C enum value to an operator.
    pub fn from_raw(raw: i32) -> Option<ReduceOp> {
        usize::try_from(raw)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// The C spelling, for messages.
    pub fn c_name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "PARFOR_SUM",
            ReduceOp::Prod => "PARFOR_PROD",
            ReduceOp::Min => "PARFOR_MIN",
            ReduceOp::Max => "PARFOR_MAX",
            ReduceOp::BitAnd => "PARFOR_BIT_AND",
            ReduceOp::BitOr => "PARFOR_BIT_OR",
            ReduceOp::BitXor => "PARFOR_BIT_XOR",
            ReduceOp::LogicalAnd => "PARFOR_LOGICAL_AND",
            ReduceOp::LogicalOr => "PARFOR_LOGICAL_OR",
            ReduceOp::SumExact => "PARFOR_SUM_EXACT",
            ReduceOp::NanSum => "PARFOR_NAN_SUM",
            ReduceOp::NanMin => "PARFOR_NAN_MIN",
            ReduceOp::NanMax => "PARFOR_NAN_MAX",
        }
    }

    /// Whether this operator is defined for `dtype`.
    pub fn accepts(self, dtype: DType) -> bool {
        match self {
            ReduceOp::BitAnd | ReduceOp::BitOr | ReduceOp::BitXor => !dtype.is_float(),
            ReduceOp::SumExact => dtype.is_float(),
            _ => true,
        }
    }
}

/// Smallest block of the fixed partition, in bytes. Each block ends with a lane
/// tree and a partial (about 40 cycles); at 32 KiB that is under 10 % of the block's
/// work even from L1, where 8 KiB blocks measured 25-48 % slower than a plain
/// vectorised loop at 1e3-1e4 f64.
const MIN_BLOCK_BYTES: usize = 32 << 10;
/// Largest block, in bytes: 256 KiB stays in L2 for the two-pass argmin/argmax
/// kernels, and with TARGET_BLOCKS it is only reached from 16 MiB of input, where
/// 64 blocks or more keep the threads' shares even. Measured against 64 KiB blocks
/// at 1e7 f64: 1-3 % faster (sum 54.8 -> 55.7 GB/s, dot 41.7 -> 42.8 GB/s), the
/// stream of each thread being cut less often.
const MAX_BLOCK_BYTES: usize = 256 << 10;
/// Aim for at least this many blocks, so that static shares are within ~2 % of each
/// other on small teams and dynamic schedules have something to balance.
const TARGET_BLOCKS: usize = 64;

/// Below this many bytes a reduction runs on the calling thread alone. At 1e4 f64
/// (80 KB) a vectorised serial sum takes about 0.7 us on the 2-core target machine,
/// comparable to the cost of waking the team and combining, so only larger inputs are
/// split. See the README's performance section for the measurement.
pub const PARALLEL_MIN_BYTES: usize = 192 << 10;

/// Inputs below this many bytes are one block. Half of [`PARALLEL_MIN_BYTES`], so
/// that a dot product, which reads two inputs, is never split below its own
/// threshold. Such inputs run on the calling thread, where blocks buy nothing: one
/// kernel call instead of three saves two lane trees and the partials (the 1e4
/// SUM row of the comparison, 80 KB, measured 7 % over a plain serial loop before).
const ONE_BLOCK_BYTES: usize = PARALLEL_MIN_BYTES / 2;

/// Length in elements of every block but the last, for `len` elements of
/// `elem_size` bytes. Depends only on its arguments: this is what makes results
/// independent of the team size.
pub fn block_len(len: usize, elem_size: usize) -> usize {
    if len.saturating_mul(elem_size) < ONE_BLOCK_BYTES {
        return len.max(1);
    }
    let bytes = len.saturating_mul(elem_size) / TARGET_BLOCKS;
    let bytes = bytes
        .checked_next_power_of_two()
        .unwrap_or(MAX_BLOCK_BYTES)
        .clamp(MIN_BLOCK_BYTES, MAX_BLOCK_BYTES);
    bytes / elem_size
}

/// Combines `parts` in a fixed pairwise tree, level by level: (0,1), (2,3), ...; an
/// odd last element moves up unchanged. Earlier parts are always on the left.
pub fn tree_combine<P: Copy>(parts: &mut [P], mut combine: impl FnMut(P, P) -> P) -> Option<P> {
    let mut n = parts.len();
    while n > 1 {
        let half = n / 2;
        for i in 0..half {
            parts[i] = combine(parts[2 * i], parts[2 * i + 1]);
        }
        if n % 2 == 1 {
            parts[half] = parts[n - 1];
            n = half + 1;
        } else {
            n = half;
        }
    }
    parts.first().copied()
}

/// Disjoint writes into a slice from several threads.
pub(crate) struct Slots<P> {
    ptr: *mut P,
    len: usize,
}

// Copies name the same slots; the contract of `write` holds for all of them together.
impl<P> Clone for Slots<P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P> Copy for Slots<P> {}

// SAFETY: `Slots` only hands out writes to distinct indices (see `write`), and P is
// Send, so moving values into it from other threads is sound.
unsafe impl<P: Send> Send for Slots<P> {}
// SAFETY: as above; shared use only ever writes distinct indices.
unsafe impl<P: Send> Sync for Slots<P> {}

impl<P> Slots<P> {
    pub(crate) fn new(v: &mut [P]) -> Self {
        Slots {
            ptr: v.as_mut_ptr(),
            len: v.len(),
        }
    }

    /// Stores `value` at `i`, dropping the old value.
    ///
    /// # Safety
    /// No other thread may access index `i` during the lifetime of this `Slots`, and
    /// the slice it was made from must outlive it (the caller keeps it borrowed).
    pub(crate) unsafe fn write(&self, i: usize, value: P) {
        assert!(i < self.len, "slot {i} out of {}", self.len);
        // SAFETY: in bounds (checked), exclusive to this thread (caller's contract).
        unsafe { *self.ptr.add(i) = value };
    }
}

/// Most blocks a calling-thread reduction can have: inputs below
/// [`PARALLEL_MIN_BYTES`] span at most 6 blocks of [`MIN_BLOCK_BYTES`]. Their partials
/// live on the stack, so a small reduction allocates nothing.
const STACK_PARTS: usize = PARALLEL_MIN_BYTES.div_ceil(MIN_BLOCK_BYTES);

thread_local! {
    /// Whether this thread's last parallel reduction took its blocks backwards.
    static LAST_BACKWARDS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Inputs up to this many bytes (all inputs of the call together) alternate the
/// direction of their passes (see [`next_pass_backwards`]). Beyond it the caches keep
/// too small a part of a pass to matter, and at 1e8 f64 the backward order measured
/// 1-3 % slower than the forward one (the prefetchers start over at each block).
const ALTERNATE_MAX_BYTES: usize = 32 << 20;

/// Whether the threads of a parallel reduction reading `bytes` in all, called from
/// this thread, take their blocks backwards: the opposite of the previous such
/// reduction from this thread, up to [`ALTERNATE_MAX_BYTES`]; forwards above.
///
/// Why: a thread streaming through a share larger than its cache keeps only the
/// share's end cached, and a next pass in the same direction evicts that end before
/// it gets there, so every block comes from the next level again. Taking the blocks
/// the other way round starts on what is still cached. Measured on the target
/// machine (2 MiB of L2 per core), repeated reductions of one array on 2 threads:
/// SUM f64 of 1e6 (4 MiB per thread) 134 -> 84 us, dot f64 of 1e6 278 -> 226 us;
/// no change at 1e5 (all cached) or 1e7. Only the order in which blocks are
/// computed changes: each block's partial and the combining tree are the same, so
/// the results are bitwise the same either way.
fn next_pass_backwards(bytes: usize) -> bool {
    if bytes > ALTERNATE_MAX_BYTES {
        return false;
    }
    LAST_BACKWARDS.with(|last| {
        let now = !last.get();
        last.set(now);
        now
    })
}

/// Stores `compute(b)` into slot b for every block b of `bs`, the last first when
/// `backwards` (see [`next_pass_backwards`]).
///
/// # Safety
/// As [`Slots::write`] for every index of `bs`: no other thread touches them, and the
/// slots' slice outlives the call.
unsafe fn compute_blocks<P>(
    slots: Slots<P>,
    bs: Range<usize>,
    backwards: bool,
    compute: impl Fn(usize) -> P,
) {
    // SAFETY: the function's contract.
    let run = |b: usize| unsafe { slots.write(b, compute(b)) };
    if backwards {
        bs.rev().for_each(run);
    } else {
        bs.for_each(run);
    }
}

/// Runs `kernel` on every block of `0..len` (blocks of `block` elements), on the
/// team when `parallel`, and combines the partials with [`tree_combine`] in block
/// order. `bytes`: what the kernels read in all. `len` must be positive.
pub(crate) fn reduce_blocks<P: Copy + Default + Send + Sync>(
    len: usize,
    block: usize,
    bytes: usize,
    opts: &Options,
    parallel: bool,
    kernel: impl Fn(Range<usize>) -> P + Copy + Send + Sync,
    combine: impl FnMut(P, P) -> P,
) -> P {
    reduce_blocks_bounded(
        MAX_PARTS, len, block, bytes, opts, parallel, kernel, combine,
    )
}

/// The most block partials a reduction keeps at once: 2^16 (512 KiB of f64
/// partials, 16 GiB of input at the largest blocks). Partials must not grow with the
/// length without bound (issue 13, row 4: a huge length aborted while allocating
/// them before any data was read).
const MAX_PARTS: usize = 1 << 16;

/// [`reduce_blocks`] keeping at most `max_parts` partials (a power of two). Longer
/// inputs are reduced in batches of `max_parts` blocks, one after another, and the
/// batch results are merged as a binary counter merges: equal-sized neighbours at
/// once, the rest from the right at the end. That gives exactly the tree
/// [`tree_combine`] builds over all blocks: a full batch is an aligned power-of-two
/// node of that tree, and the level-by-level tree of any n leaves equals its binary
/// decomposition's subtrees merged from the right (unit test:
/// `bounded_partials_give_the_same_tree`). So results stay bitwise the same.
#[allow(clippy::too_many_arguments)]
fn reduce_blocks_bounded<P: Copy + Default + Send + Sync>(
    max_parts: usize,
    len: usize,
    block: usize,
    bytes: usize,
    opts: &Options,
    parallel: bool,
    kernel: impl Fn(Range<usize>) -> P + Copy + Send + Sync,
    mut combine: impl FnMut(P, P) -> P,
) -> P {
    let shape = Batches {
        max_parts,
        len,
        block,
        bytes,
        parallel,
    };
    shape.reduce(opts, RangeFn::new(&kernel), &mut combine)
}

/// How [`reduce_blocks_bounded`] cuts its input (its arguments but the closures).
#[derive(Clone, Copy)]
struct Batches {
    max_parts: usize,
    len: usize,
    block: usize,
    bytes: usize,
    parallel: bool,
}

impl Batches {
    fn reduce<P: Copy + Default + Send + Sync>(
        self,
        opts: &Options,
        kernel: RangeFn<'_, P>,
        combine: &mut dyn FnMut(P, P) -> P,
    ) -> P {
        let (max_parts, len, block) = (self.max_parts, self.len, self.block);
        debug_assert!(max_parts.is_power_of_two());
        let blocks = len.div_ceil(block);
        if blocks <= max_parts {
            return self.batch(opts, 0, len, kernel, combine);
        }
        let batch_len = max_parts * block;
        // (value, blocks it covers); sizes strictly decrease from bottom to top,
        // so the stack holds at most log2(blocks) + 1 entries.
        let mut stack: Vec<(P, usize)> = Vec::with_capacity(usize::BITS as usize);
        let mut start = 0;
        while start < len {
            let n = (len - start).min(batch_len);
            let value = self.batch(opts, start, n, kernel, combine);
            let mut top = (value, n.div_ceil(block));
            while let Some(&(left, size)) = stack.last() {
                if size != top.1 {
                    break;
                }
                stack.pop();
                top = (combine(left, top.0), size + top.1);
            }
            stack.push(top);
            start += n;
        }
        let (mut acc, _) = stack.pop().expect("a positive length has a block");
        while let Some((left, _)) = stack.pop() {
            acc = combine(left, acc);
        }
        acc
    }

    /// The blocks of `start..start + len` (at most `max_parts`): all partials at once.
    fn batch<P: Copy + Default + Send + Sync>(
        self,
        opts: &Options,
        start: usize,
        len: usize,
        kernel: RangeFn<'_, P>,
        combine: &mut dyn FnMut(P, P) -> P,
    ) -> P {
        let block = self.block;
        let blocks = len.div_ceil(block);
        // By value (three words), so that the copied job below carries it.
        let range = move |b: usize| start + b * block..start + ((b + 1) * block).min(len);
        let serial = |parts: &mut [P]| {
            for (b, p) in parts.iter_mut().enumerate() {
                *p = kernel.run(range(b));
            }
        };
        let mut stack = [P::default(); STACK_PARTS];
        let mut heap = Vec::new();
        let parts = if blocks <= STACK_PARTS {
            &mut stack[..blocks]
        } else {
            heap.resize(blocks, P::default());
            &mut heap[..]
        };
        if blocks == 1 || !self.parallel {
            serial(parts);
        } else {
            let slots = Slots::new(parts);
            let backwards = next_pass_backwards(self.bytes);
            let ran = if opts.one_range_each() {
                // Everything the job needs is copied into the workers' mailboxes (about
                // 96 bytes), so that a worker reads nothing of this thread's stack: at
                // 1e5 f64 that is a few hundred nanoseconds of a 3 us call.
                runtime::fork_join_copy(opts.num_threads(), blocks, move |tid, team| {
                    // SAFETY: static_block gives each block to exactly one thread, and
                    // `parts` stays borrowed by `slots` until fork_join_copy returns.
                    unsafe {
                        compute_blocks(slots, static_block(blocks, team, tid), backwards, |b| {
                            kernel.run(range(b))
                        })
                    };
                })
            } else {
                let chunk_blocks = opts.chunk().div_ceil(block);
                let chunker =
                    Chunker::for_call(blocks, opts.schedule(), chunk_blocks, opts.num_threads());
                runtime::fork_join(chunker.team(), blocks, &|tid, team| {
                    chunker.for_each(tid, team, |bs| {
                        // SAFETY: the chunker gives each block to exactly one thread,
                        // and `parts` stays borrowed by `slots` until fork_join returns.
                        unsafe { compute_blocks(slots, bs, backwards, |b| kernel.run(range(b))) };
                        true
                    })
                })
            };
            if let Err(e) = ran {
                // The team could not start a worker: compute here rather than fail.
                eprintln!("parfor: {e}; reducing on the calling thread");
                serial(parts);
            }
        }
        tree_combine(parts, combine).expect("a positive length has a block")
    }
}

/// The error for an operator not defined for `dtype`.
pub(crate) fn bad_op_message(op: ReduceOp, dtype: DType) -> Error {
    let why = if op == ReduceOp::SumExact {
        "the exact sum takes PARFOR_F32 or PARFOR_F64"
    } else {
        "bitwise operators take integer dtypes"
    };
    Error::InvalidArgument(format!(
        "{} is not defined for {}: {why}",
        op.c_name(),
        dtype.c_name()
    ))
}

/// Reduces `data` with `op`. Floating-point results are bitwise identical for every
/// team size and schedule, and equal to `array::reduce_array` of the same values in
/// any layout (both are `array::reduce_slice`). Float sums accumulate in f64 (see
/// `kernels::fsum`). Errors: `InvalidArgument` when `op` is not defined for `T`,
/// `Empty` for MIN/MAX/NAN_MIN/NAN_MAX of an empty slice.
pub fn reduce<T: Element>(data: &[T], op: ReduceOp, opts: &Options) -> Result<T, Error> {
    if !op.accepts(T::DTYPE) {
        return Err(bad_op_message(op, T::DTYPE));
    }
    crate::array::reduce_slice::<T, T>(data, op, true, opts)
}

/// Dot product of `a` and `b` (integers wrap), bitwise reproducible like `reduce`.
/// Errors: `InvalidArgument` when the lengths differ.
pub fn dot<T: Element>(a: &[T], b: &[T], opts: &Options) -> Result<T, Error> {
    if a.len() != b.len() {
        return Err(Error::InvalidArgument(format!(
            "dot of slices of different lengths ({} and {})",
            a.len(),
            b.len()
        )));
    }
    if a.is_empty() {
        return Ok(T::ZERO);
    }
    let block = block_len(a.len(), std::mem::size_of::<T>());
    // Two inputs: count both towards the threshold.
    let bytes = 2 * std::mem::size_of_val(a);
    let parallel = bytes >= PARALLEL_MIN_BYTES;
    Ok(reduce_blocks(
        a.len(),
        block,
        bytes,
        opts,
        parallel,
        move |r| kernels::dot(&a[r.clone()], &b[r]),
        T::add,
    ))
}

/// A block's extreme value and its index.
type Extreme<T> = (T, usize);

fn arg_extreme<T: Element>(
    data: &[T],
    opts: &Options,
    kernel: fn(&[T]) -> Extreme<T>,
    combine: fn(Extreme<T>, Extreme<T>) -> Extreme<T>,
) -> Result<usize, Error> {
    if data.is_empty() {
        return Err(Error::Empty);
    }
    let block = block_len(data.len(), std::mem::size_of::<T>());
    let parallel = std::mem::size_of_val(data) >= PARALLEL_MIN_BYTES;
    let (_, index) = reduce_blocks(
        data.len(),
        block,
        std::mem::size_of_val(data),
        opts,
        parallel,
        move |r| kernels::offset(kernel(&data[r.clone()]), &r),
        combine,
    );
    Ok(index)
}

/// Index of the minimum (the first among equal values; the first NaN if any).
/// Errors: `Empty` for an empty slice.
pub fn argmin<T: Element>(data: &[T], opts: &Options) -> Result<usize, Error> {
    arg_extreme(data, opts, kernels::argmin, kernels::argmin_combine)
}

/// Index of the maximum (the first among equal values; the first NaN if any).
/// Errors: `Empty` for an empty slice.
pub fn argmax<T: Element>(data: &[T], opts: &Options) -> Result<usize, Error> {
    arg_extreme(data, opts, kernels::argmax, kernels::argmax_combine)
}

#[cfg(test)]
mod test;
