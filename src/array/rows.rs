//! Reductions whose slices are strided while a kept axis is contiguous (column sums
//! of a C-order matrix, row sums of a Fortran-order one), read row by row.
//!
//! Compiled for the x86-64 baseline only, unlike the slice kernels (which have AVX2
//! and AVX-512 versions): the loops are element-wise across a row and, for matrices
//! larger than the caches, bound by memory; three versions of every operator x type
//! x accumulator combination tripled this module's share of the library's compile
//! time (with them a release build took 9.5 minutes on the 2-core build machine,
//! though under load, against 6-7.5 minutes before this module).
//!
//! Gathering such a slice reads one element per cache line: a column of a C-order
//! matrix of f64 uses 8 of every 64 bytes it brings in, so a matrix larger than the
//! caches is read from memory eight times over, with a TLB miss per row. Instead, a
//! *strip* of up to W outputs that are adjacent in memory along the contiguous kept
//! axis is reduced together: logical index i of the reduced slice gives, for the
//! strip, one run of W consecutive elements (a "row"), added into W accumulators at
//! once, so memory is read in order, once.
//!
//! ## The same bits as the slice kernels
//! Each output's accumulators replay exactly the operations the kernel of
//! `reduce_slice` does on that output's slice, in the same order, so nothing about
//! the result changes (tests/array.rs checks every operator against the gathered and
//! the contiguous path, bit for bit):
//! - The slice is cut into the blocks of `reduce::block_len`, and the block partials
//!   are combined with `reduce::tree_combine`, as `reduce_blocks` does.
//! - Float sums (`kernels::fsum`): within a block, groups of `kernels::SUM_GROUP`
//!   consecutive indices; index i of a group adds into lane i mod `SUM_LANES` of its
//!   output, each lane from -0.0; at the end of a group the lanes are combined in the
//!   kernels' pairwise lane tree and the group partial goes into the binary-counter
//!   tree of `kernels::Pairwise`, whose shape depends only on the number of groups,
//!   so one level stack serves every output of the strip ([`RowPairwise`]).
//! - Lane kernels (float products, float min and max with or without NaNs): index i
//!   of the block goes to lane i mod N (N as the kernel has it for the type), lanes
//!   start from the kernel's value, and are combined in the same lane tree; the NaN
//!   rules (the first NaN of the block; an all-NaN block gives its first element) are
//!   applied per output afterwards by re-reading that output's column of the block.
//! - Integer and logical operators are exact in any order; they use one lane.
//!
//! ## Sharing the work
//! The tasks are (outer output index, strip, block) triples; the team takes them in
//! turns (`parallel_for`), each writing its strip's results (one block) or block
//! partials (several blocks, combined per output afterwards). Strips narrow when
//! there would be fewer tasks than threads. None of this
//! changes a bit: only which thread computes which block of which output.

use std::ops::Range;

use super::{for_outputs_team, OutPtr, Outputs, Walk, MAX_DIMS};
use crate::kernels::{self, Element, LANES_NARROW, LANES_WIDE, SUM_GROUP, SUM_LANES};
use crate::reduce::{block_len, tree_combine, ReduceOp, Slots, PARALLEL_MIN_BYTES};
use crate::schedule::Options;

/// Bytes of accumulators one strip keeps live (lanes x W), so that they stay in L1:
/// 32 KiB is the L1 data cache of AMD Zen 2-4 and of Intel cores before Ice Lake
/// (48 KiB since). The rows being read stream past them.
const STATE_BYTES: usize = 32 << 10;

/// Widest strip, in outputs: one row of it is then 4096 elements (up to 32 KiB read
/// in order), beyond which wider strips gain nothing on prefetching.
const MAX_STRIP: usize = 4096;

/// Narrowest strip when strips are narrowed to make tasks for the team: 8 outputs
/// (one AVX-512 register of f64, 64 bytes of a row).
const MIN_STRIP: usize = 8;

impl Walk {
    /// Calls `f(k, offset)` for the logical indices `r.start + k` of the slice, in
    /// order, `offset` being the element's byte offset from the slice's first element.
    #[inline(always)]
    fn for_each_offset(&self, r: Range<usize>, mut f: impl FnMut(usize, isize)) {
        if self.ndim == 0 {
            // One element.
            (0..r.len()).for_each(|k| f(k, 0));
            return;
        }
        let d = self.ndim;
        let mut idx = [0usize; MAX_DIMS];
        let mut rest = r.start;
        let mut off = 0isize;
        for k in (0..d).rev() {
            idx[k] = rest % self.shape[k];
            rest /= self.shape[k];
            off = off.wrapping_add((idx[k] as isize).wrapping_mul(self.strides[k]));
        }
        for pos in 0..r.len() {
            f(pos, off);
            // Next index, as an odometer; offsets wrap only past the last element.
            let mut k = d - 1;
            idx[k] += 1;
            off = off.wrapping_add(self.strides[k]);
            while k > 0 && idx[k] == self.shape[k] {
                off = off.wrapping_sub((self.shape[k] as isize).wrapping_mul(self.strides[k]));
                idx[k] = 0;
                k -= 1;
                idx[k] += 1;
                off = off.wrapping_add(self.strides[k]);
            }
        }
    }
}

/// The row of `w` elements at byte offset `off` from `base`.
///
/// # Safety
/// `base + off` is a strip row of the view being reduced: `w` consecutive, aligned,
/// initialised elements of `T` that nothing writes during the reduction.
#[inline(always)]
unsafe fn row<'a, T>(base: *const u8, off: isize, w: usize) -> &'a [T] {
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(base.wrapping_offset(off).cast::<T>(), w) }
}

/// The kernels' lane tree over `lanes` rows of `w` accumulators: row j with row
/// j + h for h = lanes/2, ..., 1 (as `kernels::lane_tree` on each output).
#[inline(always)]
fn lane_tree_rows<P: Copy>(acc: &mut [P], lanes: usize, w: usize, op: impl Fn(P, P) -> P) {
    let mut h = lanes;
    while h > 1 {
        h /= 2;
        let (lo, hi) = acc.split_at_mut(h * w);
        for (a, &b) in lo.iter_mut().zip(&hi[..h * w]) {
            *a = op(*a, b);
        }
    }
}

/// `kernels::Pairwise` for a strip: the level stack is shared (its shape depends
/// only on the number of groups), the values are rows of `w`.
struct RowPairwise<'s> {
    values: &'s mut [f64],
    level: [u8; 64],
    len: usize,
    w: usize,
}

impl RowPairwise<'_> {
    /// Pushes the partial row in slot `len` (written there by the caller).
    #[inline(always)]
    fn push_slot(&mut self) {
        let w = self.w;
        let mut cur = self.len;
        let mut l = 0u8;
        while cur > 0 && self.level[cur - 1] == l {
            // The new partial (slot cur) added to the one below, as `Pairwise::push`
            // adds them (IEEE addition is commutative).
            let (lo, hi) = self.values.split_at_mut(cur * w);
            let old = &mut lo[(cur - 1) * w..];
            for (o, &v) in old.iter_mut().zip(&hi[..w]) {
                *o += v;
            }
            cur -= 1;
            l += 1;
        }
        self.level[cur] = l;
        self.len = cur + 1;
    }

    /// The slot a new partial row is written to before `push_slot`.
    #[inline(always)]
    fn slot(&mut self) -> &mut [f64] {
        let w = self.w;
        &mut self.values[self.len * w..(self.len + 1) * w]
    }

    /// `Pairwise::finish` for each output: s0 + (s1 + (... + s_top)), from -0.0.
    #[inline(always)]
    fn finish(&self, out: &mut [f64]) {
        let w = self.w;
        out.fill(-0.0);
        for i in (0..self.len).rev() {
            for (o, &v) in out.iter_mut().zip(&self.values[i * w..(i + 1) * w]) {
                *o += v;
            }
        }
    }
}

/// Rows of `Pairwise` values a block of `n` indices can need: one more than the
/// binary digits of its number of groups.
fn pairwise_depth(n: usize) -> usize {
    let groups = n.div_ceil(SUM_GROUP).max(1);
    (usize::BITS - groups.leading_zeros()) as usize + 1
}

/// How a block of one strip is reduced.
trait StripKernel<T>: Sync {
    /// Block partial of one output.
    type P: Element;
    /// The widest strip, in outputs.
    fn max_strip(&self) -> usize;
    /// u64 words of scratch for a strip of `w` over a block of `n` indices.
    fn scratch_words(&self, w: usize, n: usize) -> usize;
    /// Writes the partials of the block `r` of the strip at `base` (row width `w`).
    ///
    /// # Safety
    /// Every row `base + offset(i)`, i in `r`, holds `w` readable elements of T (see
    /// [`row`]).
    unsafe fn block(
        &self,
        base: *const u8,
        walk: &Walk,
        r: Range<usize>,
        scratch: &mut [u64],
        out: &mut [Self::P],
    );
}

/// `kernels::fsum` / `nan_fsum`: f64 lanes in groups, see the module documentation.
struct FSum<M>(M);

impl<T: Element, M: Fn(T) -> f64 + Sync> StripKernel<T> for FSum<M> {
    type P = f64;
    /// 512: one lane's row of accumulators (4 KiB) stays in L1 while its rows are
    /// added, and the group's 32 lane rows (128 KiB) in L2 until the lane tree;
    /// rows are read 4 KiB at a time.
    fn max_strip(&self) -> usize {
        512
    }
    fn scratch_words(&self, w: usize, n: usize) -> usize {
        (SUM_LANES + pairwise_depth(n)) * w
    }
    #[inline(always)]
    unsafe fn block(
        &self,
        base: *const u8,
        walk: &Walk,
        r: Range<usize>,
        scratch: &mut [u64],
        out: &mut [f64],
    ) {
        let w = out.len();
        let n = r.len();
        let scratch = as_typed::<f64>(scratch);
        let (lanes, values) = scratch.split_at_mut(SUM_LANES * w);
        let mut tree = RowPairwise {
            values,
            level: [0; 64],
            len: 0,
            w,
        };
        let map = &self.0;
        let mut offs = [0isize; SUM_GROUP];
        let mut g0 = 0;
        while g0 < n {
            let glen = SUM_GROUP.min(n - g0);
            let g = r.start + g0..r.start + g0 + glen;
            walk.for_each_offset(g, |k, off| offs[k] = off);
            // Lane by lane: lane k of the group adds the rows k, k + SUM_LANES, ...
            // in order, into one row of accumulators that stays in L1 (the order
            // within each lane is the kernel's; lanes are independent).
            for (k, lane) in lanes.chunks_exact_mut(w).enumerate() {
                lane.fill(-0.0);
                for &off in offs[..glen].iter().skip(k).step_by(SUM_LANES) {
                    // SAFETY: the function's contract.
                    let x = unsafe { row::<T>(base, off, w) };
                    for (a, &v) in lane.iter_mut().zip(x) {
                        *a += map(v);
                    }
                }
            }
            lane_tree_rows(lanes, SUM_LANES, w, |a, b| a + b);
            tree.slot().copy_from_slice(&lanes[..w]);
            tree.push_slot();
            g0 += glen;
        }
        tree.finish(out);
    }
}

/// What a lane kernel does about NaNs after its lanes are combined.
#[derive(Clone, Copy, PartialEq)]
enum NanRule<T> {
    /// Nothing (integers, products).
    None,
    /// The block's first NaN, if it has one, is the result (`kernels::min`/`max`).
    First,
    /// A result still at this start value with every element NaN gives the block's
    /// first element (`kernels::nan_min`/`nan_max`).
    AllNanFirst(T),
}

/// A kernel of N lanes of accumulator `P`, each output's index i of the block in
/// lane i mod N (one lane: any order, for the exact operators).
struct Lanes<T, P, I, S, C, K> {
    lanes: usize,
    /// The lanes' start value from the block's first element.
    init: I,
    step: S,
    tree: C,
    nan: NanRule<T>,
    /// An element as a partial, for the NaN rules (the identity where they apply).
    keep: K,
    _p: std::marker::PhantomData<fn() -> P>,
}

impl<T, P, I, S, C, K> StripKernel<T> for Lanes<T, P, I, S, C, K>
where
    T: Element,
    P: Element,
    I: Fn(T) -> P + Sync,
    S: Fn(P, T) -> P + Sync,
    C: Fn(P, P) -> P + Sync,
    K: Fn(T) -> P + Sync,
{
    type P = P;
    fn max_strip(&self) -> usize {
        (STATE_BYTES / (self.lanes * std::mem::size_of::<P>())).clamp(MIN_STRIP, MAX_STRIP)
    }
    fn scratch_words(&self, w: usize, _n: usize) -> usize {
        // Lanes, then a probe row of T; both at most 8 bytes per element.
        (self.lanes + 1) * w
    }
    #[inline(always)]
    unsafe fn block(
        &self,
        base: *const u8,
        walk: &Walk,
        r: Range<usize>,
        scratch: &mut [u64],
        out: &mut [P],
    ) {
        let w = out.len();
        let n_lanes = self.lanes;
        let (acc, probe) = scratch.split_at_mut(n_lanes * w);
        let acc = &mut as_typed::<P>(acc)[..n_lanes * w];
        let probe = &mut as_typed::<T>(probe)[..w];
        let start = r.start;
        let first = |off| {
            // SAFETY: the function's contract (the block's first row).
            unsafe { row::<T>(base, off, w) }
        };
        let mut first_off = 0;
        walk.for_each_offset(start..start + 1, |_, off| first_off = off);
        for lane in acc.chunks_exact_mut(w) {
            for (a, &v) in lane.iter_mut().zip(first(first_off)) {
                *a = (self.init)(v);
            }
        }
        probe.fill(T::ZERO);
        let (step, nan_first) = (&self.step, self.nan == NanRule::First);
        walk.for_each_offset(r.clone(), |pos, off| {
            // SAFETY: the function's contract.
            let x = unsafe { row::<T>(base, off, w) };
            let k = pos & (n_lanes - 1);
            for (a, &v) in acc[k * w..(k + 1) * w].iter_mut().zip(x) {
                *a = step(*a, v);
            }
            if nan_first {
                for (p, &v) in probe.iter_mut().zip(x) {
                    *p = p.add(v);
                }
            }
        });
        lane_tree_rows(acc, n_lanes, w, &self.tree);
        out.copy_from_slice(&acc[..w]);
        // The NaN rules, per output, re-reading only the columns that need it.
        let column = |j: usize, f: &mut dyn FnMut(T) -> bool| {
            let mut go = true;
            walk.for_each_offset(r.clone(), |_, off| {
                if go {
                    // SAFETY: the function's contract; j < w.
                    go = f(unsafe { row::<T>(base, off, w) }[j]);
                }
            });
        };
        match self.nan {
            NanRule::None => {}
            NanRule::First => {
                for (j, o) in out.iter_mut().enumerate() {
                    if probe[j].is_nan() {
                        column(j, &mut |v| {
                            if v.is_nan() {
                                *o = (self.keep)(v);
                                return false;
                            }
                            true
                        });
                    }
                }
            }
            NanRule::AllNanFirst(s) => {
                for (j, o) in out.iter_mut().enumerate() {
                    if *o == (self.keep)(s) {
                        let mut all = true;
                        column(j, &mut |v| {
                            all = v.is_nan();
                            all
                        });
                        if all {
                            *o = (self.keep)(first(first_off)[j]);
                        }
                    }
                }
            }
        }
    }
}

/// Reinterprets u64 words as elements of `T`.
fn as_typed<T: Element>(words: &mut [u64]) -> &mut [T] {
    let n = std::mem::size_of_val(words) / std::mem::size_of::<T>();
    // SAFETY: u64 words are aligned for every element type (sizes 1 to 8, alignment
    // equal to the size), the bytes are initialised, and any bit pattern is a valid
    // integer or float; the borrow is carried over.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<T>(), n) }
}

/// The contiguous kept axis a reduction streams along: (position among the kept
/// axes, extent, out's byte stride), or None when no kept axis of more than one
/// element has x stride `size`.
fn inner_axis(outputs: &Outputs, size: usize) -> Option<(usize, usize, isize)> {
    (0..outputs.ndim)
        .rev()
        .find(|&p| outputs.x_strides[p] == size as isize && outputs.shape[p] > 1)
        .map(|p| (p, outputs.shape[p], outputs.out_strides[0][p]))
}

/// `outputs` without kept axis `p`.
fn without(outputs: &Outputs, p: usize) -> Outputs {
    let mut o = Outputs::scalar();
    for k in (0..outputs.ndim).filter(|&k| k != p) {
        o.shape[o.ndim] = outputs.shape[k];
        o.x_strides[o.ndim] = outputs.x_strides[k];
        for j in 0..3 {
            o.out_strides[j][o.ndim] = outputs.out_strides[j][k];
        }
        o.len *= outputs.shape[k];
        o.ndim += 1;
    }
    o
}

/// Streams the reduction of the slices `walk` (from `base`) into `dst` when the
/// layout allows (see the module documentation) and returns true; false leaves it to
/// the per-slice path (no contiguous kept axis, an empty slice, or no memory for the
/// block partials).
#[allow(clippy::too_many_arguments)]
fn stream<T: Element, K: StripKernel<T>, A: Element>(
    base: *const u8,
    walk: &Walk,
    outputs: &Outputs,
    opts: &Options,
    dst: OutPtr,
    kernel: K,
    combine: impl Fn(K::P, K::P) -> K::P + Sync,
    finish: impl Fn(K::P) -> A + Sync,
) -> bool {
    let size = std::mem::size_of::<T>();
    let n = walk.len;
    let Some((p, extent, out_stride)) = inner_axis(outputs, size) else {
        return false;
    };
    if n == 0 || outputs.len == 0 || walk.contiguous(size) {
        return false;
    }
    let outer = without(outputs, p);
    let block = block_len(n, size);
    let blocks = n.div_ceil(block);
    let mut strip = kernel.max_strip();
    let team = for_outputs_team(opts);
    let total = outputs.len.saturating_mul(n).saturating_mul(size);
    let parallel = team > 1 && total >= PARALLEL_MIN_BYTES;
    if parallel {
        // A task for every thread at least (tasks are of equal size but the last).
        let want = team;
        let per_strip_tasks = outer.len * blocks;
        let strips = want.div_ceil(per_strip_tasks);
        let narrow = extent.div_ceil(strips).next_multiple_of(MIN_STRIP);
        strip = strip.min(narrow.max(MIN_STRIP));
    }
    let strips = extent.div_ceil(strip);
    let tasks = outer.len * strips * blocks;
    let mut partials: Vec<K::P> = Vec::new();
    if blocks > 1 {
        let len = outer.len * extent * blocks;
        if partials.try_reserve_exact(len).is_err() {
            return false;
        }
        partials.resize(len, K::P::default());
    }
    let slots = Slots::new(&mut partials);
    let base = OutPtr(base.cast_mut());
    let words = kernel.scratch_words(strip, block.min(n)) + strip;
    let task = |t: usize, scratch: &mut [u64]| {
        let (o, s, b) = (t / (strips * blocks), (t / blocks) % strips, t % blocks);
        let (xo, oo) = outer.offsets(o);
        let c0 = s * strip;
        let w = strip.min(extent - c0);
        let r = b * block..((b + 1) * block).min(n);
        let (state, row_out) = scratch.split_at_mut(words - strip);
        let row_out = &mut as_typed::<K::P>(row_out)[..w];
        let start = base.at(xo + (c0 * size) as isize);
        // SAFETY: outputs c0..c0 + w of outer index o read, at each index of the
        // slice, w consecutive elements (x stride `size` along the inner axis) of the
        // view, which the caller's borrow keeps readable and unwritten.
        unsafe { kernel.block(start, walk, r, state, row_out) };
        for (j, &v) in row_out.iter().enumerate() {
            let c = c0 + j;
            if blocks == 1 {
                // SAFETY: output (o, c) is computed by this task alone.
                unsafe { dst.write(oo[0] + c as isize * out_stride, finish(v)) };
            } else {
                // SAFETY: slot ((o, c), b) is written by this task alone, and
                // `partials` outlives the loop.
                unsafe { slots.write((o * extent + c) * blocks + b, v) };
            }
        }
    };
    let run = |r: Range<usize>| {
        super::with_scratch(words, |scratch| r.for_each(|t| task(t, scratch)));
        Ok::<(), std::convert::Infallible>(())
    };
    if !parallel || crate::parallel_for::parallel_for(0..tasks, opts, run).is_err() {
        // One thread, or the team could not start: compute here (as `reduce`).
        let _ = run(0..tasks);
    }
    if blocks > 1 {
        for (i, parts) in partials.chunks_exact_mut(blocks).enumerate() {
            let (o, c) = (i / extent, i % extent);
            let (_, oo) = outer.offsets(o);
            let v = tree_combine(parts, &combine).expect("a block per output");
            // SAFETY: every task has finished; output (o, c) is written once, here.
            unsafe { dst.write(oo[0] + c as isize * out_stride, finish(v)) };
        }
    }
    true
}

// The operations of the kernels below, as plain generic functions rather than
// closures: a closure defined in a function generic over the accumulator would make
// every kernel a new type, compiled again for each accumulator type (and each ISA
// level), which the operators that only ever accumulate in their input type do not
// need.

fn keep<T>(v: T) -> T {
    v
}
fn zero<T, P: Element>(_: T) -> P {
    P::ZERO
}
fn one<T, P: Element>(_: T) -> P {
    P::ONE
}
fn all_ones<T, P: Element>(_: T) -> P {
    P::ALL_ONES
}
fn pos_inf<T: Element>(_: T) -> T {
    T::from_f64(f64::INFINITY)
}
fn neg_inf<T: Element>(_: T) -> T {
    T::from_f64(f64::NEG_INFINITY)
}
/// The select of `kernels::extreme_lanes` for min: `if better(v, m) { v } else { m }`.
fn min_step<T: Element>(m: T, v: T) -> T {
    if v < m {
        v
    } else {
        m
    }
}
fn max_step<T: Element>(m: T, v: T) -> T {
    if v > m {
        v
    } else {
        m
    }
}
/// The lane tree's combine of `kernels::extreme_lanes`: `if better(b, a) { b } else { a }`.
fn min_tree<T: Element>(a: T, b: T) -> T {
    if b < a {
        b
    } else {
        a
    }
}
fn max_tree<T: Element>(a: T, b: T) -> T {
    if b > a {
        b
    } else {
        a
    }
}
fn add_as<T: Element, A: Element>(a: A, v: T) -> A {
    a.add(v.cast::<A>())
}
fn mul_as<T: Element, A: Element>(a: A, v: T) -> A {
    a.mul(v.cast::<A>())
}
fn and_nonzero<T: Element>(a: u8, v: T) -> u8 {
    a & u8::from(v.is_nonzero())
}
fn or_nonzero<T: Element>(a: u8, v: T) -> u8 {
    a | u8::from(v.is_nonzero())
}
fn and_u8(a: u8, b: u8) -> u8 {
    a & b
}
fn or_u8(a: u8, b: u8) -> u8 {
    a | b
}
fn from_flag<A: Element>(v: u8) -> A {
    A::from_bool(v != 0)
}
fn cast_to<P: Element, A: Element>(v: P) -> A {
    v.cast::<A>()
}
fn f64_add(a: f64, b: f64) -> f64 {
    a + b
}
/// `kernels::nan_fsum`'s map: -0.0 (the identity) for a NaN.
fn nan_to_identity<T: Element>(v: T) -> f64 {
    if v.is_nan() {
        -0.0
    } else {
        v.num_f64()
    }
}

/// A lane kernel without NaN rules.
fn plain<T: Element, P: Element, I, S, C>(
    lanes: usize,
    init: I,
    step: S,
    tree: C,
) -> impl StripKernel<T, P = P>
where
    I: Fn(T) -> P + Sync,
    S: Fn(P, T) -> P + Sync,
    C: Fn(P, P) -> P + Sync,
{
    Lanes {
        lanes,
        init,
        step,
        tree,
        nan: NanRule::None,
        keep: zero::<T, P>,
        _p: std::marker::PhantomData,
    }
}

/// A min or max lane kernel with its NaN rule.
fn extreme<T: Element, I, S, C>(
    lanes: usize,
    init: I,
    step: S,
    tree: C,
    nan: NanRule<T>,
) -> impl StripKernel<T, P = T>
where
    I: Fn(T) -> T + Sync,
    S: Fn(T, T) -> T + Sync,
    C: Fn(T, T) -> T + Sync,
{
    Lanes {
        lanes,
        init,
        step,
        tree,
        nan,
        keep: keep::<T>,
        _p: std::marker::PhantomData,
    }
}

/// Streams `op` from T into accumulator A where the layout allows (see [`stream`]),
/// with the kernel `reduce_slice` uses for that case replayed row by row. False:
/// not streamed (the caller reduces slice by slice).
pub(super) fn reduce<T: Element, A: Element>(
    base: *const u8,
    walk: &Walk,
    outputs: &Outputs,
    op: ReduceOp,
    opts: &Options,
    dst: OutPtr,
) -> bool {
    if T::DTYPE == A::DTYPE {
        return reduce_same::<T>(base, walk, outputs, op, opts, dst);
    }
    macro_rules! go {
        ($kernel:expr, $combine:expr, $finish:expr) => {
            stream::<T, _, A>(base, walk, outputs, opts, dst, $kernel, $combine, $finish)
        };
    }
    match op {
        ReduceOp::Sum | ReduceOp::NanSum if A::IS_FLOAT => {
            if op == ReduceOp::NanSum && T::IS_FLOAT {
                go!(FSum(nan_to_identity::<T>), f64_add, A::from_f64)
            } else {
                go!(FSum(T::num_f64), f64_add, A::from_f64)
            }
        }
        // Integer accumulators (`kernels::sum_as`, `prod_as`): exact, one lane.
        ReduceOp::Sum | ReduceOp::NanSum => go!(
            plain(1, zero::<T, A>, add_as::<T, A>, A::add),
            A::add,
            keep::<A>
        ),
        ReduceOp::Prod => {
            // `kernels::prod_as`: LANES_WIDE lanes of a float A, one of an integer A.
            let lanes = if A::IS_FLOAT { LANES_WIDE } else { 1 };
            go!(
                plain(lanes, one::<T, A>, mul_as::<T, A>, A::mul),
                A::mul,
                keep::<A>
            )
        }
        ReduceOp::LogicalAnd => go!(
            plain(1, one::<T, u8>, and_nonzero::<T>, and_u8),
            and_u8,
            from_flag::<A>
        ),
        ReduceOp::LogicalOr => go!(
            plain(1, zero::<T, u8>, or_nonzero::<T>, or_u8),
            or_u8,
            from_flag::<A>
        ),
        // The other operators accumulate in their input type only.
        _ => false,
    }
}

/// [`reduce`] with the input type as accumulator: every operator but the exact sum.
fn reduce_same<T: Element>(
    base: *const u8,
    walk: &Walk,
    outputs: &Outputs,
    op: ReduceOp,
    opts: &Options,
    dst: OutPtr,
) -> bool {
    // The kernels' lane count for a float T (`kernels::lanes!`); integers: one lane,
    // their operators being exact in any order.
    let lanes = match (T::IS_FLOAT, std::mem::size_of::<T>()) {
        (false, _) => 1,
        (true, 8) => LANES_WIDE,
        (true, _) => LANES_NARROW,
    };
    let first = if T::IS_FLOAT {
        NanRule::First
    } else {
        NanRule::None
    };
    let pos = T::from_f64(f64::INFINITY);
    let neg = T::from_f64(f64::NEG_INFINITY);
    // NaN-skipping extremes of integers are the plain ones (as `kernels::nan_min`).
    let op = match op {
        ReduceOp::NanMin if !T::IS_FLOAT => ReduceOp::Min,
        ReduceOp::NanMax if !T::IS_FLOAT => ReduceOp::Max,
        op => op,
    };
    macro_rules! go {
        ($kernel:expr, $combine:expr, $finish:expr) => {
            stream::<T, _, T>(base, walk, outputs, opts, dst, $kernel, $combine, $finish)
        };
    }
    match op {
        ReduceOp::Sum | ReduceOp::NanSum if T::IS_FLOAT => {
            if op == ReduceOp::NanSum {
                go!(FSum(nan_to_identity::<T>), f64_add, T::from_f64)
            } else {
                go!(FSum(T::num_f64), f64_add, T::from_f64)
            }
        }
        ReduceOp::Sum | ReduceOp::NanSum => {
            go!(
                plain(1, zero::<T, T>, T::add, T::add),
                T::add,
                cast_to::<T, T>
            )
        }
        ReduceOp::Prod => go!(
            plain(lanes, one::<T, T>, T::mul, T::mul),
            T::mul,
            cast_to::<T, T>
        ),
        ReduceOp::Min => go!(
            extreme(lanes, keep::<T>, min_step::<T>, min_tree::<T>, first),
            kernels::min_combine,
            cast_to::<T, T>
        ),
        ReduceOp::Max => go!(
            extreme(lanes, keep::<T>, max_step::<T>, max_tree::<T>, first),
            kernels::max_combine,
            cast_to::<T, T>
        ),
        ReduceOp::NanMin => go!(
            extreme(
                lanes,
                pos_inf::<T>,
                min_step::<T>,
                min_tree::<T>,
                NanRule::AllNanFirst(pos)
            ),
            kernels::nan_min_combine,
            cast_to::<T, T>
        ),
        ReduceOp::NanMax => go!(
            extreme(
                lanes,
                neg_inf::<T>,
                max_step::<T>,
                max_tree::<T>,
                NanRule::AllNanFirst(neg)
            ),
            kernels::nan_max_combine,
            cast_to::<T, T>
        ),
        ReduceOp::BitAnd => go!(
            plain(1, all_ones::<T, T>, T::bit_and, T::bit_and),
            T::bit_and,
            cast_to::<T, T>
        ),
        ReduceOp::BitOr => go!(
            plain(1, zero::<T, T>, T::bit_or, T::bit_or),
            T::bit_or,
            cast_to::<T, T>
        ),
        ReduceOp::BitXor => go!(
            plain(1, zero::<T, T>, T::bit_xor, T::bit_xor),
            T::bit_xor,
            cast_to::<T, T>
        ),
        ReduceOp::LogicalAnd => go!(
            plain(1, one::<T, u8>, and_nonzero::<T>, and_u8),
            and_u8,
            from_flag::<T>
        ),
        ReduceOp::LogicalOr => go!(
            plain(1, zero::<T, u8>, or_nonzero::<T>, or_u8),
            or_u8,
            from_flag::<T>
        ),
        // Exact: the order does not matter, and slices go through `ExactState`.
        ReduceOp::SumExact => false,
    }
}

#[cfg(test)]
mod test {
    use super::super::{reduce_array, ArrayView, ArrayViewMut};
    use crate::reduce::{reduce, ReduceOp};
    use crate::schedule::Options;

    /// The streamed column reductions of a small C-order matrix (3-D, two reduced
    /// axes, a kept axis before and after) against each slice reduced alone; small
    /// enough for Miri, which checks the row pointers and the scratch casts.
    #[test]
    fn columns_match_each_slice_alone() {
        let (a, r, c) = (2usize, 37usize, 11usize);
        let v: Vec<f64> = (0..a * r * c)
            .map(|i| match i % 13 {
                0 => -0.0,
                5 if i % 3 == 0 => f64::NAN,
                k => (k as f64 - 6.5) * 0.37,
            })
            .collect();
        let x = ArrayView::c_order(&v, &[a, r, c]).unwrap();
        let one = Options::with_threads(1).unwrap();
        for op in [
            ReduceOp::Sum,
            ReduceOp::Min,
            ReduceOp::NanMax,
            ReduceOp::Prod,
        ] {
            let mut out = vec![0.0f64; a * c];
            let mut y = ArrayViewMut::c_order(&mut out, &[a, c]).unwrap();
            reduce_array(&x, 0b010, op, &one, &mut y).unwrap();
            for i in 0..a {
                for j in 0..c {
                    let col: Vec<f64> = (0..r).map(|k| v[(i * r + k) * c + j]).collect();
                    let want = reduce(&col[..], op, &one).unwrap();
                    let got = out[i * c + j];
                    assert!(
                        got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                        "{op:?} ({i}, {j}): {got} against {want}"
                    );
                }
            }
        }
    }
}
