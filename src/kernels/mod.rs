//! Per-block kernels: one contiguous slice in, one value out. They know nothing of
//! threads; the reductions in `reduce` run them on the blocks of a fixed partition.
//!
//! Every kernel keeps `N` independent accumulators ("lanes"), element i of the slice
//! going to lane i mod N, and combines the lanes in a fixed pairwise tree. The lanes
//! give the CPU independent dependency chains (an f64 add has a latency of 4 cycles
//! and two issue per cycle, so eight vector accumulators keep it busy) and let the
//! compiler use vector registers without reassociating anything. Because the order
//! of operations is spelled out, the result is the same bit for bit whichever
//! instruction set runs it: each kernel is compiled for AVX-512, AVX2 and the x86-64
//! baseline and the best one the CPU has is picked at run time, or the one the
//! `PARFOR_ISA` environment variable names (see [`isa`]).

mod element;

pub use element::{Element, Floats};

use std::ops::Range;

/// Lanes for 8-byte elements: 32 lanes = 8 AVX2 or 4 AVX-512 registers.
pub(crate) const LANES_WIDE: usize = 32;
/// Lanes for smaller elements: 64 lanes (8 AVX2 registers of f32).
pub(crate) const LANES_NARROW: usize = 64;

/// Defines a public kernel that dispatches on the CPU's vector extensions. `$imp`
/// is the portable body: `fn k<T>` instantiates it for `T`'s lane count (see
/// `lanes!`), `fn k<T, A>` (an input and an accumulator type) calls `$imp::<T, A>`.
macro_rules! kernel {
    (@dispatch $(#[$doc:meta])* fn $name:ident<$($G:ident),+>($($arg:ident : $ty:ty),*) -> $ret:ty $body:block) => {
        $(#[$doc])*
        pub fn $name<$($G: Element),+>($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
                unsafe fn v4<$($G: Element),+>($($arg: $ty),*) -> $ret $body
                #[target_feature(enable = "avx2")]
                unsafe fn v3<$($G: Element),+>($($arg: $ty),*) -> $ret $body
                match isa() {
                    // SAFETY: `isa` never returns a level above what the CPU has.
                    Isa::Avx512 => return unsafe { v4::<$($G),+>($($arg),*) },
                    // SAFETY: as above.
                    Isa::Avx2 => return unsafe { v3::<$($G),+>($($arg),*) },
                    Isa::Baseline => {}
                }
            }
            $body
        }
    };
    ($(#[$doc:meta])* fn $name:ident<$T:ident>($($arg:ident : $ty:ty),*) -> $ret:ty = $imp:ident) => {
        kernel! {
            @dispatch $(#[$doc])* fn $name<$T>($($arg: $ty),*) -> $ret {
                lanes!($T, $imp($($arg),*))
            }
        }
    };
    ($(#[$doc:meta])* fn $name:ident<$T:ident, $A:ident>($($arg:ident : $ty:ty),*) -> $ret:ty = $imp:ident) => {
        kernel! {
            @dispatch $(#[$doc])* fn $name<$T, $A>($($arg: $ty),*) -> $ret {
                $imp::<$T, $A>($($arg),*)
            }
        }
    };
}

/// Calls `$imp::<T, N>` with the lane count for `T`'s size.
macro_rules! lanes {
    ($T:ident, $imp:ident($($arg:expr),*)) => {
        if std::mem::size_of::<$T>() == 8 {
            $imp::<$T, LANES_WIDE>($($arg),*)
        } else {
            $imp::<$T, LANES_NARROW>($($arg),*)
        }
    };
}

mod isa;

pub use isa::{best_isa, isa, supported_isas, Isa};

/// Elements of `x` before its first 64-byte boundary (all of `x` if it has none).
/// Every element type's alignment equals its size, so the distance divides evenly.
#[inline(always)]
fn head_len<T>(x: &[T]) -> usize {
    let misalign = x.as_ptr() as usize % 64;
    let head = if misalign == 0 {
        0
    } else {
        (64 - misalign) / std::mem::size_of::<T>()
    };
    head.min(x.len())
}

/// How far ahead of the chunk being read the streaming loops ask for data, in bytes.
///
/// Origin: a prefetch must be issued about one memory latency before the data is
/// used, so the distance is latency x one core's streaming rate. Measured on the
/// Intel Xeon KVM guest of the README (see `prefetch_ahead`): 512 to 1536 bytes
/// alike, 4 KiB slower. There dot of 1e8 f64 read 1.6 GB in 43.5 ms on 2 threads,
/// ~18 GB/s per core, so 1 KiB is ~55 ns of reading, and the flat 512-1536 byte
/// range is ~30-85 ns: the order of one DRAM latency (typically 70-100 ns on
/// servers, Intel and AMD alike). On AMD Zen 3 (EPYC, 1 MiB L2 per core) the same
/// time gives a distance in that range if a core streams at a similar rate; not yet
/// measured on a quiet Zen 3 machine: the "SUM f64 ... own process" rows of
/// parfor-compare at 1e7 and 1e8 against `*-readbw` are the check (issue 14).
#[cfg_attr(miri, allow(dead_code))]
const PREFETCH_AHEAD: usize = 1024;

/// Slices of fewer bytes are read without prefetching. Small slices come from L1 or
/// L2, where the extra instructions take load slots and give nothing: a 1,000-element
/// f64 dot took 106 -> 119 ns with them, a 1e4 f64 SUM (one 80 KB block) 1.28 ->
/// 1.33 us. Reductions cut their input into blocks of at least this size only from
/// 4 MiB of input (see `reduce::block_len`), beyond one core's L2 on the target
/// machine; there SUM and MAX of 1e8 f64 took 16-25 % less time with them, dot 15 %.
/// In time: 128 KiB is ~2 us of one core's reading at the cache-resident rate
/// measured there (80 KB in 1.28 us, ~62 GB/s). It lies below the L2 of current x86
/// server cores (1 MiB on Zen 3, 2 MiB on that Xeon), so a block that fits in L2 is
/// never prefetched whichever of them runs. Measured on the Intel machine only.
const PREFETCH_MIN_BYTES: usize = 128 << 10;

/// Whether a loop over `x` should call [`prefetch_ahead`] (see
/// [`PREFETCH_MIN_BYTES`]).
#[inline(always)]
fn worth_prefetching<T>(x: &[T]) -> bool {
    std::mem::size_of_val(x) >= PREFETCH_MIN_BYTES
}

/// Asks the CPU to start loading, into L1, the cache lines `PREFETCH_AHEAD` bytes
/// past each line of `chunk` (one `prefetcht0` per 64-byte line), so that a loop
/// streaming from L3 or memory has more lines in flight than the hardware prefetchers
/// alone keep. Measured on the target machine, dot f64 on 2 threads, both builds in
/// one process with calls interleaved: 1e7 3.80 -> 3.58 ms back to back and 5.55 ->
/// 4.81 ms after a 0.2 s pause, 1e8 50.9 -> 43.5 ms. 512 to 1536 bytes ahead measured
/// alike; 4 KiB was slower. It changes no value: only when data arrives.
///
/// Written by hand because no crate wraps this one instruction; `core::arch` is the
/// interface. Not under Miri, which does not model prefetches.
#[inline(always)]
fn prefetch_ahead<T>(chunk: &[T]) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let start = chunk.as_ptr().cast::<i8>();
        let bytes = std::mem::size_of_val(chunk);
        let mut offset = PREFETCH_AHEAD;
        while offset < PREFETCH_AHEAD + bytes {
            // wrapping_add: the address may lie past the end of the slice, even of
            // its allocation, so it must not be formed with `add`.
            let line = start.wrapping_add(offset);
            // SAFETY: a prefetch is only a hint: it never faults, whatever the
            // address, and reads or writes nothing the program can observe. SSE, which
            // it needs, is part of the x86-64 baseline.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line) };
            offset += 64;
        }
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = chunk;
}

/// Feeds every element of `x` to `step(slot, value)`, where slot k holds lane
/// (p + k) mod N for the returned p, element i belonging to lane i mod N and the
/// elements of each lane coming in index order. The bulk is read from a 64-byte
/// aligned address whatever the alignment of `x`: measured on the target machine,
/// AVX-512 loads that straddle cache lines make an L2-resident sum 60 % slower
/// (3.5 against 2.2 us for 50,000 f64). The lanes, and so the result, do not
/// depend on the address; `rotate_right(p)` on slots gives lanes.
///
/// When `x` is misaligned, the slots that get no head element are first stepped
/// with `filler` once: it must leave a slot's starting value unchanged.
#[inline(always)]
fn for_each_rotated<T: Copy, const N: usize>(
    x: &[T],
    filler: T,
    mut step: impl FnMut(usize, T),
) -> usize {
    let p = head_len(x);
    debug_assert!(p < N || p == x.len());
    let (head, body) = x.split_at(p);
    // Element i < p is the first of lane i, whose next element, x[i + N], is at body
    // position i + N - p: the slot of lane i is i + N - p. The head goes in as one
    // whole chunk padded with `filler` in front, so that every step has a constant
    // slot and the lanes stay in registers (stepping the slots one by one at
    // variable indices kept them in memory: 58 against 37 ns for 1,000 f64).
    // The padded chunk is built in a local array rather than by selecting
    // `head[k + p - N]` or `filler` per slot: LLVM compiled that select into masked
    // vector loads (vmaskmovpd) starting N - p elements before `x`, and where that
    // address lies on the page before a fresh mapping (large malloc blocks and
    // numpy arrays start 16 bytes into one) the masked-off lanes cost a fault
    // suppression assist each call (issue 14: 0.35-0.40 against 0.12 us for a
    // 1,000-element f64 SUM on AMD Zen 3).
    if p > 0 {
        let mut pad = [filler; N];
        pad[N - p..].copy_from_slice(head);
        for (k, &v) in pad.iter().enumerate() {
            step(k, v);
        }
    }
    let prefetch = worth_prefetching(body);
    let mut chunks = body.chunks_exact(N);
    for c in &mut chunks {
        if prefetch {
            prefetch_ahead(c);
        }
        let c: &[T; N] = c.try_into().expect("chunks_exact yields N elements");
        for (k, &v) in c.iter().enumerate() {
            step(k, v);
        }
    }
    for (k, &v) in chunks.remainder().iter().enumerate() {
        step(k, v);
    }
    p % N
}

/// Folds `x` into N lanes starting at `init` with `op`, then combines the lanes in a
/// fixed pairwise tree. N must be a power of two.
///
/// Integer operations (wrapping add and multiply, bitwise ops, min and max) are
/// associative and commutative exactly, so any order gives the same bits: for them
/// a plain fold lets the compiler pick its own vector layout, which it does much
/// better than with 32 explicit 64-bit lanes (measured 0.13 against 0.03 ns per i64).
#[inline(always)]
fn fold_lanes<T: Element, const N: usize>(x: &[T], init: T, op: impl Fn(T, T) -> T) -> T {
    if !T::IS_FLOAT {
        // Head first, so that the bulk is read from an aligned address.
        let (head, body) = x.split_at(head_len(x));
        let h = head.iter().fold(init, |a, &b| op(a, b));
        return body.iter().fold(h, |a, &b| op(a, b));
    }
    let mut acc = [init; N];
    // The filler `init` leaves a slot at `init`: op(init, init) == init holds for
    // the float operators (0 + 0, 1 * 1).
    let p = for_each_rotated::<T, N>(x, init, |k, v| acc[k] = op(acc[k], v));
    // See `wide_chains`: the float products' loop was 2-lane xmm multiplies without it.
    let mut acc = wide_chains(acc);
    acc.rotate_right(p);
    lane_tree(acc, op)
}

/// Combines N lanes pairwise: lane j with lane j + w for w = N/2, N/4, ..., 1.
#[inline(always)]
fn lane_tree<T: Copy, const N: usize>(mut acc: [T; N], op: impl Fn(T, T) -> T) -> T {
    let mut w = N;
    while w > 1 {
        w /= 2;
        for j in 0..w {
            acc[j] = op(acc[j], acc[j + w]);
        }
    }
    acc[0]
}

#[inline(always)]
fn sum_imp<T: Element, const N: usize>(x: &[T]) -> T {
    fold_lanes::<T, N>(x, T::ZERO, T::add)
}

#[inline(always)]
fn prod_imp<T: Element, const N: usize>(x: &[T]) -> T {
    fold_lanes::<T, N>(x, T::ONE, T::mul)
}

#[inline(always)]
fn bit_and_imp<T: Element, const N: usize>(x: &[T]) -> T {
    fold_lanes::<T, N>(x, T::ALL_ONES, T::bit_and)
}

#[inline(always)]
fn bit_or_imp<T: Element, const N: usize>(x: &[T]) -> T {
    fold_lanes::<T, N>(x, T::ZERO, T::bit_or)
}

#[inline(always)]
fn bit_xor_imp<T: Element, const N: usize>(x: &[T]) -> T {
    fold_lanes::<T, N>(x, T::ZERO, T::bit_xor)
}

/// Min or max of a non-empty `x` with OpenMP's meaning plus NaN propagation: the
/// first NaN of `x` if it has one, else the extreme value, the first among equals
/// in lane order (this only matters for -0.0 and +0.0).
///
/// `better(v, m)` is `v < m` for min and `v > m` for max. The value lanes step with
/// `if better(v, m) { v } else { m }`, which is exactly one `minpd`/`maxpd` (those
/// return their second operand when either is NaN, so NaNs are skipped there). A
/// second set of lanes adds up the elements only to see whether a NaN went by: one
/// more add per register, where a NaN-sticky select costs three operations (measured
/// 0.077 against 0.042 ns per f64 from L1). The sum can also turn NaN without a NaN
/// in the input (inf + -inf); then the block is scanned and, finding no NaN, the
/// lane result stands.
#[inline(always)]
fn extreme_lanes<T: Element, const N: usize>(x: &[T], better: impl Fn(T, T) -> bool) -> T {
    if !T::IS_FLOAT {
        // Integers: exact in any order, so let the compiler pick the layout.
        return x[1..]
            .iter()
            .fold(x[0], |m, &v| if better(v, m) { v } else { m });
    }
    let mut acc = [x[0]; N];
    // Slot k is NaN once a NaN went through it (or inf met -inf); which NaN does not
    // matter, as the answer is then looked up in `x`.
    let mut probe = [T::ZERO; N];
    // The filler x[0] leaves a value slot at x[0]; a probe slot then holds x[0]
    // instead of 0, which can only turn a probe NaN (inf + -inf) and cost a scan.
    let p = for_each_rotated::<T, N>(x, x[0], |k, v| {
        acc[k] = if better(v, acc[k]) { v } else { acc[k] };
        probe[k] = probe[k].add(v);
    });
    acc.rotate_right(p);
    if probe.iter().any(|v| v.is_nan()) {
        if let Some(&v) = x.iter().find(|v| v.is_nan()) {
            return v;
        }
    }
    lane_tree(acc, |a, b| if better(b, a) { b } else { a })
}

#[inline(always)]
fn min_imp<T: Element, const N: usize>(x: &[T]) -> T {
    extreme_lanes::<T, N>(x, |v, m| v < m)
}

#[inline(always)]
fn max_imp<T: Element, const N: usize>(x: &[T]) -> T {
    extreme_lanes::<T, N>(x, |v, m| v > m)
}

#[inline(always)]
fn dot_imp<T: Element, const N: usize>(a: &[T], b: &[T]) -> T {
    assert_eq!(a.len(), b.len());
    if !T::IS_FLOAT {
        // Exact in any order (wrapping arithmetic); see `fold_lanes`.
        return a.iter().zip(b).fold(T::ZERO, |s, (&x, &y)| s.add(x.mul(y)));
    }
    // Lanes as in `for_each_rotated`, aligned on `a` (b may be aligned differently).
    let p = head_len(a);
    let (ha, ba) = a.split_at(p);
    let (hb, bb) = b.split_at(p);
    let mut acc = [T::ZERO; N];
    if p > 0 {
        // The head as one padded chunk, built in local arrays so that no load
        // reaches before `a` or `b` (see `for_each_rotated`); 0 * 0 + 0 is 0.
        let (mut pa, mut pb) = ([T::ZERO; N], [T::ZERO; N]);
        pa[N - p..].copy_from_slice(ha);
        pb[N - p..].copy_from_slice(hb);
        for ((s, &x), &y) in acc.iter_mut().zip(&pa).zip(&pb) {
            *s = s.add(x.mul(y));
        }
    }
    let mut ca = ba.chunks_exact(N);
    let mut cb = bb.chunks_exact(N);
    let prefetch = worth_prefetching(ba);
    for (x, y) in (&mut ca).zip(&mut cb) {
        if prefetch {
            prefetch_ahead(x);
            prefetch_ahead(y);
        }
        let x: &[T; N] = x.try_into().expect("N elements");
        let y: &[T; N] = y.try_into().expect("N elements");
        for j in 0..N {
            acc[j] = acc[j].add(x[j].mul(y[j]));
        }
    }
    for ((s, &x), &y) in acc.iter_mut().zip(ca.remainder()).zip(cb.remainder()) {
        *s = s.add(x.mul(y));
    }
    acc.rotate_right(p % N);
    lane_tree(acc, T::add)
}

/// Lanes of the float sums: 32 f64 accumulators (8 AVX2 or 4 AVX-512 registers),
/// whatever the input type. Part of the bit contract (tests/golden.rs).
pub const SUM_LANES: usize = 32;
/// Elements each lane adds in sequence within a group before the lanes are combined.
pub const SUM_CHAIN: usize = 8;
/// Elements per group of the float sums: [`SUM_CHAIN`] chunks of [`SUM_LANES`].
pub const SUM_GROUP: usize = SUM_LANES * SUM_CHAIN;

/// The fixed pairwise tree over the group partials of a float sum: a binary counter.
/// A new partial merges with the top of the stack while the top holds as many groups
/// as it does (earlier on the left); at the end the stack is folded from its top,
/// `s0 + (s1 + (... + s_top))`. The shape depends only on the number of groups.
struct Pairwise {
    value: [f64; 64],
    level: [u8; 64],
    len: usize,
}

impl Pairwise {
    #[inline(always)]
    fn new() -> Self {
        Pairwise {
            value: [0.0; 64],
            level: [0; 64],
            len: 0,
        }
    }

    #[inline(always)]
    fn push(&mut self, mut v: f64) {
        let mut l = 0u8;
        while self.len > 0 && self.level[self.len - 1] == l {
            self.len -= 1;
            v += self.value[self.len];
            // (a + b with a earlier: `+` is commutative, so the order of the operands
            // in the expression does not change the bits.)
            l += 1;
        }
        self.value[self.len] = v;
        self.level[self.len] = l;
        self.len += 1;
    }

    #[inline(always)]
    fn finish(&self) -> f64 {
        let mut acc = -0.0;
        for i in (0..self.len).rev() {
            acc += self.value[i];
        }
        acc
    }
}

/// Lanes passed through `black_box` on x86-64 for the code it makes, never for the
/// value. In the float sums (the lanes of each group), without it LLVM's SLP
/// vectoriser builds the chains of a group and its lane tree as one tree of 2-lane
/// (xmm) operations, 128 adds a group where 32 zmm (AVX-512) or 64 ymm (AVX2) ones
/// do, as the v4 and v3 assembly showed; in the NaN-skipping min/max the loop's
/// selects came out 2 lanes wide the same way. With it the lanes go through memory
/// once (a group, or a call). Intel VM, one process, f64 SUM: 1e3 180 -> 137 ns, 1e4
/// 1.54 -> 1.02 us (avx2 level 1.38 -> 1.11 us), 1e5 on two threads 11.0 -> 7.6 us.
/// At the x86-64 baseline (SSE2, xmm only) it costs 10 % (1e4: 1.49 -> 1.64 us), and
/// 128-bit NEON is in the same position, so other architectures keep the plain form.
#[inline(always)]
fn wide_chains<A>(acc: A) -> A {
    if cfg!(target_arch = "x86_64") {
        std::hint::black_box(acc)
    } else {
        acc
    }
}

/// Float sum of `f(x[i])` over a slice, accumulated in f64 however narrow the input:
/// groups of [`SUM_GROUP`] consecutive elements (the last may be shorter); in a group,
/// element i goes to lane i mod [`SUM_LANES`], each lane adding its elements in index
/// order from -0.0 (the exact additive identity, so that a sum of -0.0 stays -0.0),
/// then the lanes are combined in the fixed pairwise lane tree; the group partials
/// are combined by [`Pairwise`].
///
/// Why this shape: error. A sum whose every term passes through at most d roundings
/// is off by at most about d * u * sum|x_i|. Here d <= SUM_CHAIN + log2(SUM_LANES) +
/// ceil(log2(groups)) + 1 <= ceil(log2 n) + 5, within numpy's pairwise bound of
/// 2 * ceil(log2 n) * u from n = 32 on (below, the chains are shorter and the bound
/// holds too); the blocks of `reduce` add ceil(log2 blocks) more levels on top of
/// ceil(log2 n). For f32 input, u is the f64 unit: the f32 result is then the f64
/// sum rounded once (within half an ulp plus a negligible 2^-29 relative error).
/// Cost, measured roughly on the loaded 2-vCPU Zen 3 build machine (so only a
/// ratio, and only indicative): 1e4 f64 from L1/L2, the lane tree after every 256
/// elements against the former one lane tree per block: about 10-15 % more time per
/// call; from memory (1e7) no visible difference, the loop being bandwidth-bound.
/// f32 converted to f64 lanes reads the same bytes and does twice the adds.
#[inline(always)]
fn pairwise_map<T: Copy>(x: &[T], f: impl Fn(T) -> f64) -> f64 {
    let mut tree = Pairwise::new();
    let mut groups = x.chunks_exact(SUM_GROUP);
    for g in &mut groups {
        let g: &[T; SUM_GROUP] = g.try_into().expect("SUM_GROUP elements");
        let mut acc = [-0.0f64; SUM_LANES];
        for c in 0..SUM_CHAIN {
            for k in 0..SUM_LANES {
                acc[k] += f(g[c * SUM_LANES + k]);
            }
        }
        tree.push(lane_tree(wide_chains(acc), |a, b| a + b));
    }
    let rest = groups.remainder();
    if !rest.is_empty() {
        let mut acc = [-0.0f64; SUM_LANES];
        let mut chunks = rest.chunks_exact(SUM_LANES);
        for c in &mut chunks {
            for k in 0..SUM_LANES {
                acc[k] += f(c[k]);
            }
        }
        for (k, &v) in chunks.remainder().iter().enumerate() {
            acc[k] += f(v);
        }
        tree.push(lane_tree(acc, |a, b| a + b));
    }
    tree.finish()
}

#[inline(always)]
fn fsum_imp<T: Element, const N: usize>(x: &[T]) -> f64 {
    pairwise_map(x, T::num_f64)
}

#[inline(always)]
fn nan_fsum_imp<T: Element, const N: usize>(x: &[T]) -> f64 {
    // -0.0 for a NaN: the identity, so a skipped NaN changes nothing.
    pairwise_map(x, |v| if v.is_nan() { -0.0 } else { v.num_f64() })
}

#[inline(always)]
fn sq_dev_imp<T: Element, const N: usize>(x: &[T], mean: f64) -> f64 {
    pairwise_map(x, |v| {
        let d = v.num_f64() - mean;
        d * d
    })
}

#[inline(always)]
fn nan_sq_dev_imp<T: Element, const N: usize>(x: &[T], mean: f64) -> f64 {
    pairwise_map(x, |v| {
        let d = v.num_f64() - mean;
        if v.is_nan() {
            -0.0
        } else {
            d * d
        }
    })
}

#[inline(always)]
fn count_not_nan_imp<T: Element, const N: usize>(x: &[T]) -> usize {
    if !T::IS_FLOAT {
        return x.len();
    }
    x.iter().map(|v| usize::from(!v.is_nan())).sum()
}

/// NaN-skipping min or max: lanes start at `start` (+inf for min, -inf for max) and
/// step with `if better(v, m) { v } else { m }`, which never takes a NaN `v`. When the
/// result is still `start`, the slice is scanned: all NaN gives its first NaN.
#[inline(always)]
fn nan_extreme_lanes<T: Element, const N: usize>(
    x: &[T],
    start: T,
    better: impl Fn(T, T) -> bool,
) -> T {
    if !T::IS_FLOAT {
        return extreme_lanes::<T, N>(x, better);
    }
    let mut acc = [start; N];
    let p = for_each_rotated::<T, N>(x, start, |k, v| {
        acc[k] = if better(v, acc[k]) { v } else { acc[k] };
    });
    // As in the sums (see `wide_chains`): without it the loop's selects compiled to
    // 2-lane vmaxpd/vminpd at the avx512 level.
    let mut acc = wide_chains(acc);
    acc.rotate_right(p);
    let m = lane_tree(acc, |a, b| if better(b, a) { b } else { a });
    if m == start && x.iter().all(|v| v.is_nan()) {
        return x[0];
    }
    m
}

#[inline(always)]
fn nan_min_imp<T: Element, const N: usize>(x: &[T]) -> T {
    nan_extreme_lanes::<T, N>(x, T::from_f64(f64::INFINITY), |v, m| v < m)
}

#[inline(always)]
fn nan_max_imp<T: Element, const N: usize>(x: &[T]) -> T {
    nan_extreme_lanes::<T, N>(x, T::from_f64(f64::NEG_INFINITY), |v, m| v > m)
}

kernel! {
    /// Float sum of `x` in f64 (see [`pairwise_map`] for the order); NaN propagates.
    /// For integer input each element is first rounded to f64. -0.0 for an empty slice.
    fn fsum<T>(x: &[T]) -> f64 = fsum_imp
}
kernel! {
    /// [`fsum`] skipping NaNs.
    fn nan_fsum<T>(x: &[T]) -> f64 = nan_fsum_imp
}
kernel! {
    /// Sum of (x[i] - mean)^2 in f64, in the order of [`fsum`].
    fn sq_dev<T>(x: &[T], mean: f64) -> f64 = sq_dev_imp
}
kernel! {
    /// [`sq_dev`] skipping NaNs.
    fn nan_sq_dev<T>(x: &[T], mean: f64) -> f64 = nan_sq_dev_imp
}
kernel! {
    /// Number of elements that are not NaN.
    fn count_not_nan<T>(x: &[T]) -> usize = count_not_nan_imp
}
kernel! {
    /// Minimum of a non-empty `x` skipping NaNs; the first NaN when all are NaN.
    fn nan_min<T>(x: &[T]) -> T = nan_min_imp
}
kernel! {
    /// Maximum of a non-empty `x` skipping NaNs; the first NaN when all are NaN.
    fn nan_max<T>(x: &[T]) -> T = nan_max_imp
}

#[inline(always)]
fn sum_as_imp<T: Element, A: Element>(x: &[T]) -> A {
    x.iter().fold(A::ZERO, |s, &v| s.add(v.cast::<A>()))
}

#[inline(always)]
fn prod_as_imp<T: Element, A: Element>(x: &[T]) -> A {
    if !A::IS_FLOAT {
        return x.iter().fold(A::ONE, |s, &v| s.mul(v.cast::<A>()));
    }
    let mut acc = [A::ONE; LANES_WIDE];
    let mut chunks = x.chunks_exact(LANES_WIDE);
    for c in &mut chunks {
        for k in 0..LANES_WIDE {
            acc[k] = acc[k].mul(c[k].cast::<A>());
        }
    }
    for (k, &v) in chunks.remainder().iter().enumerate() {
        acc[k] = acc[k].mul(v.cast::<A>());
    }
    // See `wide_chains`: the loop's multiplies were 2-lane xmm ones without it.
    lane_tree(wide_chains(acc), A::mul)
}

kernel! {
    /// Sum of `x` converted to the integer accumulator `A`, wrapping. Integer
    /// addition is associative, so the compiler may vectorise in any order.
    fn sum_as<T, A>(x: &[T]) -> A = sum_as_imp
}
kernel! {
    /// Product of `x` converted to `A`: integers wrap (any order); floats in
    /// [`LANES_WIDE`] lanes of `A`, element i in lane i mod 32, then the lane tree.
    fn prod_as<T, A>(x: &[T]) -> A = prod_as_imp
}

/// Combines two partial NaN-skipping minima, `a` from the earlier range: a NaN (an
/// all-NaN range) loses to any number; among equal values the earlier.
#[inline]
pub fn nan_min_combine<T: Element>(a: T, b: T) -> T {
    if b.is_nan() || (!a.is_nan() && b >= a) {
        a
    } else {
        b
    }
}

/// Combines two partial NaN-skipping maxima, as [`nan_min_combine`].
#[inline]
pub fn nan_max_combine<T: Element>(a: T, b: T) -> T {
    if b.is_nan() || (!a.is_nan() && b <= a) {
        a
    } else {
        b
    }
}

/// Combines (value, index) partials of a NaN-skipping argmin (a NaN value: the range
/// was all NaN), `a` from the earlier range.
#[inline]
pub fn nan_argmin_combine<T: Element>(a: (T, usize), b: (T, usize)) -> (T, usize) {
    if b.0.is_nan() || (!a.0.is_nan() && b.0 >= a.0) {
        a
    } else {
        b
    }
}

/// Combines (value, index) partials of a NaN-skipping argmax, as [`nan_argmin_combine`].
#[inline]
pub fn nan_argmax_combine<T: Element>(a: (T, usize), b: (T, usize)) -> (T, usize) {
    if b.0.is_nan() || (!a.0.is_nan() && b.0 <= a.0) {
        a
    } else {
        b
    }
}

/// NaN-skipping minimum of a non-empty `x` and the index of its first occurrence;
/// an all-NaN `x` gives (its first NaN, 0).
pub fn nan_argmin<T: Element>(x: &[T]) -> (T, usize) {
    let m = nan_min(x);
    if m.is_nan() {
        return (m, 0);
    }
    (m, position_of(x, m))
}

/// NaN-skipping maximum of a non-empty `x` and its first index, as [`nan_argmin`].
pub fn nan_argmax<T: Element>(x: &[T]) -> (T, usize) {
    let m = nan_max(x);
    if m.is_nan() {
        return (m, 0);
    }
    (m, position_of(x, m))
}

kernel! {
    /// Sum of `x` (integers wrap); 0 for an empty slice.
    fn sum<T>(x: &[T]) -> T = sum_imp
}
kernel! {
    /// Product of `x` (integers wrap); 1 for an empty slice.
    fn prod<T>(x: &[T]) -> T = prod_imp
}
kernel! {
    /// Bitwise and of `x` (integers); all ones for an empty slice.
    fn bit_and<T>(x: &[T]) -> T = bit_and_imp
}
kernel! {
    /// Bitwise or of `x` (integers); 0 for an empty slice.
    fn bit_or<T>(x: &[T]) -> T = bit_or_imp
}
kernel! {
    /// Bitwise exclusive or of `x` (integers); 0 for an empty slice.
    fn bit_xor<T>(x: &[T]) -> T = bit_xor_imp
}
kernel! {
    /// Minimum of a non-empty `x`; the first NaN if there is one.
    fn min<T>(x: &[T]) -> T = min_imp
}
kernel! {
    /// Maximum of a non-empty `x`; the first NaN if there is one.
    fn max<T>(x: &[T]) -> T = max_imp
}
kernel! {
    /// Sum of a[i] * b[i] (integers wrap); the slices must have equal lengths.
    fn dot<T>(a: &[T], b: &[T]) -> T = dot_imp
}

/// Elements `any_nonzero` and `all_nonzero` test before they look at the answer so
/// far. Within a chunk there is no early exit, so the compiler vectorises the test
/// (a byte loop that could stop at every element read 100 MB of bool at 2.5 GB/s on
/// AMD Zen 3, against numpy's 34 GB/s); 256 elements are 256 bytes to 2 KiB, a few
/// dozen vector operations, so an answer found early still stops the scan soon.
const TEST_CHUNK: usize = 256;

/// True when every element is nonzero (NaN counts as nonzero).
pub fn all_nonzero<T: Element>(x: &[T]) -> bool {
    let mut chunks = x.chunks_exact(TEST_CHUNK);
    for c in &mut chunks {
        if !c.iter().fold(true, |a, v| a & v.is_nonzero()) {
            return false;
        }
    }
    chunks.remainder().iter().all(|v| v.is_nonzero())
}

/// True when some element is nonzero (NaN counts as nonzero).
pub fn any_nonzero<T: Element>(x: &[T]) -> bool {
    let mut chunks = x.chunks_exact(TEST_CHUNK);
    for c in &mut chunks {
        if c.iter().fold(false, |a, v| a | v.is_nonzero()) {
            return true;
        }
    }
    chunks.remainder().iter().any(|v| v.is_nonzero())
}

/// Minimum of a non-empty `x` and the index of its first occurrence (of the first
/// NaN, if any). Indices are relative to `x`.
pub fn argmin<T: Element>(x: &[T]) -> (T, usize) {
    let m = min(x);
    (m, position_of(x, m))
}

/// Maximum of a non-empty `x` and the index of its first occurrence (of the first
/// NaN, if any).
pub fn argmax<T: Element>(x: &[T]) -> (T, usize) {
    let m = max(x);
    (m, position_of(x, m))
}

/// Index of the first element equal to `m` (the first NaN when `m` is NaN).
fn position_of<T: Element>(x: &[T], m: T) -> usize {
    let found = if m.is_nan() {
        x.iter().position(|v| v.is_nan())
    } else {
        x.iter().position(|&v| v == m)
    };
    found.expect("the extreme value comes from the slice")
}

/// Combines two partial minima, `a` from the earlier range: NaN wins, the first
/// NaN first; among equal values the earlier.
#[inline]
pub fn min_combine<T: Element>(a: T, b: T) -> T {
    if a.is_nan() || (!b.is_nan() && b >= a) {
        a
    } else {
        b
    }
}

/// Combines two partial maxima, as [`min_combine`].
#[inline]
pub fn max_combine<T: Element>(a: T, b: T) -> T {
    if a.is_nan() || (!b.is_nan() && b <= a) {
        a
    } else {
        b
    }
}

/// Combines (value, index) partials of argmin, `a` from the earlier range.
#[inline]
pub fn argmin_combine<T: Element>(a: (T, usize), b: (T, usize)) -> (T, usize) {
    if a.0.is_nan() || (!b.0.is_nan() && b.0 >= a.0) {
        a
    } else {
        b
    }
}

/// Combines (value, index) partials of argmax, `a` from the earlier range.
#[inline]
pub fn argmax_combine<T: Element>(a: (T, usize), b: (T, usize)) -> (T, usize) {
    if a.0.is_nan() || (!b.0.is_nan() && b.0 <= a.0) {
        a
    } else {
        b
    }
}

/// Shifts the index of a partial by the start of its block.
#[inline]
pub fn offset<T>(p: (T, usize), block: &Range<usize>) -> (T, usize) {
    (p.0, p.1 + block.start)
}

#[cfg(test)]
mod test;
