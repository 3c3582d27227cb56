//! Prefix scans (inclusive and exclusive) over typed slices, with floating-point
//! results that are bitwise identical for every team size and schedule.
//!
//! ## The fixed structure
//! A scan of `n` elements is defined by a hierarchy that depends on `n` alone:
//! - the elements are cut into tiles of [`TILE`] (16) consecutive elements; each
//!   tile's total is folded serially, left to right, from its first element;
//! - the array of tile totals (`n / 16` rounded up) is scanned inclusively by the
//!   same rule, recursively, until it fits one tile (then it is a serial chain);
//! - the output of tile `j` is a serial chain that starts from the scanned total
//!   of tiles `0..j` (from nothing for tile 0) and adds the tile's elements left to
//!   right: `out[i] = (((S[j-1] + x[16j]) + x[16j+1]) + ...) + x[i]`.
//!
//! Threads only decide who computes which tiles (groups of 256 tiles are the unit of
//! work handed out by the schedule), so the result is the same bit for bit for every
//! team size and schedule, and equal to the one-thread result. Operators that are
//! exact and associative (integer arithmetic, which wraps; MIN/MAX; bitwise
//! operators) give what a serial loop gives.
//!
//! ## Accuracy (SUM, NAN_SUM and PROD on floats)
//! With `L` levels (`L = 1` for `n <= 16`, else `1 +` the levels of `ceil(n/16)`),
//! every output satisfies, to first order in the unit roundoff `u` (2^-53 for f64,
//! 2^-24 for f32):
//!
//! `|out[i] - exact[i]| <= c(n) * u * sum_{k<=i} |x[k]|`, with
//! `c(n) = (2*16 - 1) * (L - 1) + (16 - 1)` ([`sum_error_bound`]).
//!
//! Proof sketch: a tile total is a serial sum of at most 16 terms (15 roundings); the
//! scanned totals carry the recursive bound of the shorter array plus those 15; a
//! tile's output chain adds at most 16 roundings. So `c` grows by 31 per level and
//! the bound is logarithmic in `n`, as for a pairwise-combined scan (c(1e6) = 139,
//! c(1e8) = 201), where a serial scan (numpy's cumsum) has `n - 1`. For PROD the same
//! coefficient bounds the relative error of every output.
//!
//! ## Cost
//! Two passes over the input (tile totals, then the output chains) and a recursion
//! over 1/16 of it; each pass runs on the team from [`PARALLEL_MIN_BYTES`] on.
//! The chains are scalar, but the chains of different tiles are independent, so the
//! CPU overlaps them.

use std::convert::Infallible;
use std::ops::Range;

use crate::dtype::DType;
use crate::error::Error;
use crate::kernels::{self, Element};
use crate::reduce::ReduceOp;
use crate::schedule::Options;

/// Elements per tile of the fixed hierarchy (see the module documentation). 16
/// keeps the recursion's extra work at 1/15 of the input and the error coefficient
/// at 31 per level; 8 would give 15 per level for 1/7 more work.
const TILE: usize = 16;

/// Tiles per unit of work handed out to a thread: 4096 elements, 32 KiB of f64.
const GROUP: usize = 256;

/// Tile totals kept on the stack rather than allocated (inputs up to 4096 elements).
const STACK_TILES: usize = 256;

/// Levels at or above this many bytes run on the team; smaller ones on the calling
/// thread. The same threshold as the reductions (`reduce::PARALLEL_MIN_BYTES`,
/// measured there), since a scan pass costs about what a reduction does.
pub const PARALLEL_MIN_BYTES: usize = crate::reduce::PARALLEL_MIN_BYTES;

/// A scan operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScanOp {
    /// `+` (integers wrap). Exclusive identity 0.
    Sum,
    /// `*` (integers wrap). Exclusive identity 1.
    Prod,
    /// `min`, NaN-propagating (a NaN makes every later output NaN, the first NaN).
    /// Exclusive identity: +inf or the type's largest value.
    Min,
    /// `max`, NaN-propagating. Exclusive identity: -inf or the type's smallest value.
    Max,
    /// `&`, integers only. Exclusive identity all ones.
    BitAnd,
    /// `|`, integers only. Exclusive identity 0.
    BitOr,
    /// `^`, integers only. Exclusive identity 0.
    BitXor,
    /// `+` with NaN inputs counted as 0, as numpy.nancumsum (integers: as `Sum`).
    NanSum,
}

impl ScanOp {
    /// The scan operator of a reduction operator; `None` for those a scan does not take
    /// (LOGICAL_AND, LOGICAL_OR, SUM_EXACT, NAN_MIN, NAN_MAX).
    pub fn from_reduce_op(op: ReduceOp) -> Option<ScanOp> {
        Some(match op {
            ReduceOp::Sum => ScanOp::Sum,
            ReduceOp::Prod => ScanOp::Prod,
            ReduceOp::Min => ScanOp::Min,
            ReduceOp::Max => ScanOp::Max,
            ReduceOp::BitAnd => ScanOp::BitAnd,
            ReduceOp::BitOr => ScanOp::BitOr,
            ReduceOp::BitXor => ScanOp::BitXor,
            ReduceOp::NanSum => ScanOp::NanSum,
            _ => return None,
        })
    }

    /// Whether this operator is defined for `dtype`.
    pub fn accepts(self, dtype: DType) -> bool {
        !matches!(self, ScanOp::BitAnd | ScanOp::BitOr | ScanOp::BitXor) || !dtype.is_float()
    }
}

/// The extreme values of an element type: the identities of MIN and MAX.
pub trait Bounds: Element {
    /// +inf for floats, the largest value for integers.
    const HIGHEST: Self;
    /// -inf for floats, the smallest value for integers.
    const LOWEST: Self;
}

macro_rules! int_bounds {
    ($($t:ty),*) => {$(
        impl Bounds for $t {
            const HIGHEST: Self = <$t>::MAX;
            const LOWEST: Self = <$t>::MIN;
        }
    )*};
}
int_bounds!(i8, i16, i32, i64, u8, u16, u32, u64);
impl Bounds for f32 {
    const HIGHEST: Self = f32::INFINITY;
    const LOWEST: Self = f32::NEG_INFINITY;
}
impl Bounds for f64 {
    const HIGHEST: Self = f64::INFINITY;
    const LOWEST: Self = f64::NEG_INFINITY;
}

/// The error coefficient `c(n)` of a float SUM/NAN_SUM scan of `len` elements: every
/// output is within `c(n) * u * sum_{k<=i} |x[k]|` of the exact prefix, to first
/// order in the unit roundoff `u` (see the module documentation). 0 for `len == 0`.
pub fn sum_error_bound(len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    let mut levels = 1;
    let mut m = len;
    while m > TILE {
        m = m.div_ceil(TILE);
        levels += 1;
    }
    (2 * TILE - 1) * (levels - 1) + (TILE - 1)
}

/// Scans `data` into `out` with `op`: `out[i] = data[0] op ... op data[i]`, or, when
/// `exclusive`, the same over `data[0..i)` with the operator's identity at `out[0]`.
/// Float results are bitwise identical for every team size and schedule.
/// Errors: `InvalidArgument` when the lengths differ or `op` is not defined for `T`;
/// `Runtime` when the tile totals cannot be allocated.
pub fn scan<T: Bounds>(
    data: &[T],
    out: &mut [T],
    op: ScanOp,
    exclusive: bool,
    opts: &Options,
) -> Result<(), Error> {
    if data.len() != out.len() {
        return Err(Error::InvalidArgument(format!(
            "scan of {} elements into {}",
            data.len(),
            out.len()
        )));
    }
    let io = Io {
        src: data.as_ptr(),
        dst: out.as_mut_ptr(),
        len: data.len(),
    };
    // SAFETY: `data` and `out` are distinct borrows of `len` elements each, alive for
    // the whole call.
    unsafe { scan_io(io, op, exclusive, opts) }
}

/// [`scan`] in place: `data` is replaced by its scan. Same bits as [`scan`].
pub fn scan_in_place<T: Bounds>(
    data: &mut [T],
    op: ScanOp,
    exclusive: bool,
    opts: &Options,
) -> Result<(), Error> {
    let io = Io {
        src: data.as_ptr(),
        dst: data.as_mut_ptr(),
        len: data.len(),
    };
    // SAFETY: `src == dst`, one exclusive borrow of `len` elements alive for the call;
    // every element is read before the same thread writes it (see `chain`).
    unsafe { scan_io(io, op, exclusive, opts) }
}

/// Source and destination of one level: `len` elements each, either disjoint or the
/// same memory (`src == dst`, in place).
struct Io<T> {
    src: *const T,
    dst: *mut T,
    len: usize,
}

impl<T> Clone for Io<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Io<T> {}
// SAFETY: the scan writes each destination element from exactly one thread (tiles
// are handed out whole), and reads a source element only before it is written by
// the same thread (in place) or never written (disjoint): shared use is sound.
unsafe impl<T: Send> Send for Io<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Io<T> {}

fn not_for_dtype<T: Element>(op: ScanOp) -> Error {
    Error::InvalidArgument(format!(
        "{op:?} scan is not defined for {}: bitwise operators take integer dtypes",
        T::DTYPE.c_name()
    ))
}

/// Dispatches on the operator.
///
/// # Safety
/// `io` describes live buffers as [`Io`] says, not used by anyone else during the call.
unsafe fn scan_io<T: Bounds>(
    io: Io<T>,
    op: ScanOp,
    exclusive: bool,
    opts: &Options,
) -> Result<(), Error> {
    if !op.accepts(T::DTYPE) {
        return Err(not_for_dtype::<T>(op));
    }
    if io.len == 0 {
        return Ok(());
    }
    // SAFETY (every arm): the function's contract.
    unsafe {
        match op {
            ScanOp::Sum => level(io, same, T::add, T::ZERO, exclusive, opts),
            ScanOp::NanSum => level(io, nan_to_zero, T::add, T::ZERO, exclusive, opts),
            ScanOp::Prod => level(io, same, T::mul, T::ONE, exclusive, opts),
            ScanOp::Min => level(io, same, kernels::min_combine, T::HIGHEST, exclusive, opts),
            ScanOp::Max => level(io, same, kernels::max_combine, T::LOWEST, exclusive, opts),
            ScanOp::BitAnd => level(io, same, T::bit_and, T::ALL_ONES, exclusive, opts),
            ScanOp::BitOr => level(io, same, T::bit_or, T::ZERO, exclusive, opts),
            ScanOp::BitXor => level(io, same, T::bit_xor, T::ZERO, exclusive, opts),
        }
    }
}

#[inline(always)]
fn same<T>(x: T) -> T {
    x
}

#[inline(always)]
fn nan_to_zero<T: Element>(x: T) -> T {
    if x.is_nan() {
        T::ZERO
    } else {
        x
    }
}

/// Runs `body` over the tile indices `0..tiles` in groups of [`GROUP`], on the team
/// when `parallel` (following the options' schedule), else on this thread.
fn for_tiles<B>(tiles: usize, opts: &Options, parallel: bool, body: B)
where
    B: Fn(Range<usize>) + Copy + Send + Sync,
{
    if !parallel {
        body(0..tiles);
        return;
    }
    let groups = tiles.div_ceil(GROUP);
    // The options' chunk counts elements, as for reductions; here a unit is a group.
    let group_opts = Options::new(
        opts.num_threads(),
        opts.schedule(),
        opts.chunk().div_ceil(GROUP * TILE),
    )
    .unwrap_or(*opts);
    let ran =
        crate::parallel_for::parallel_for_copy(0..groups, &group_opts, move |gs: Range<usize>| {
            body(gs.start * GROUP..(gs.end * GROUP).min(tiles));
            Ok::<(), Infallible>(())
        });
    if let Err(e) = ran {
        // The team could not start a worker, before any part ran: compute here rather
        // than fail, as the reductions do.
        eprintln!("parfor: {e}; scanning on the calling thread");
        body(0..tiles);
    }
}

/// Tile total: `load`ed elements of tile `j` folded left to right from the first.
///
/// # Safety
/// `io.src` holds `io.len` readable elements; tile `j` is not being written.
#[inline(always)]
unsafe fn tile_total<T: Copy>(
    io: Io<T>,
    j: usize,
    load: impl Fn(T) -> T,
    comb: impl Fn(T, T) -> T,
) -> T {
    let (b, e) = (j * TILE, ((j + 1) * TILE).min(io.len));
    // SAFETY: b < e <= len: in bounds of the source (contract).
    let mut acc = load(unsafe { io.src.add(b).read() });
    for i in b + 1..e {
        // SAFETY: as above.
        acc = comb(acc, load(unsafe { io.src.add(i).read() }));
    }
    acc
}

/// Writes the output chain of the elements `r` (one tile or less), starting from
/// `off` (or from nothing). Each element is read before it is written, so `src` may
/// equal `dst`.
///
/// # Safety
/// `r` is in bounds of `io`; this thread alone reads and writes `r` meanwhile.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn chain<T: Copy>(
    io: Io<T>,
    r: Range<usize>,
    off: Option<T>,
    load: impl Fn(T) -> T,
    comb: impl Fn(T, T) -> T,
    identity: T,
    exclusive: bool,
) {
    // SAFETY (all reads and writes): `i` in `r`, in bounds and exclusive (contract).
    let read = |i: usize| load(unsafe { io.src.add(i).read() });
    let write = |i: usize, v: T| unsafe { io.dst.add(i).write(v) };
    let mut start = r.start;
    let mut acc = match off {
        Some(a) => a,
        None => {
            let x = read(start);
            write(start, if exclusive { identity } else { x });
            start += 1;
            x
        }
    };
    if exclusive {
        for i in start..r.end {
            let next = comb(acc, read(i));
            write(i, acc);
            acc = next;
        }
    } else {
        for i in start..r.end {
            acc = comb(acc, read(i));
            write(i, acc);
        }
    }
}

/// A `*mut T` shared by the threads of a pass, each writing distinct indices.
struct Shared<T>(*mut T);
impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Shared<T> {}
// SAFETY: each tile total is written by the one thread computing that tile.
unsafe impl<T: Send> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// The pointer, by method so that closures capture the whole (Sync) wrapper.
    fn get(self) -> *mut T {
        self.0
    }
}

/// Scans one level of the hierarchy (see the module documentation): `load` maps the
/// elements as they are read (NaN to 0 for NAN_SUM at level 0), `comb` is the
/// operator, `identity` its identity (written only by exclusive scans).
///
/// # Safety
/// As [`scan_io`].
unsafe fn level<T, L, C>(
    io: Io<T>,
    load: L,
    comb: C,
    identity: T,
    exclusive: bool,
    opts: &Options,
) -> Result<(), Error>
where
    T: Element,
    L: Fn(T) -> T + Copy + Send + Sync,
    C: Fn(T, T) -> T + Copy + Send + Sync,
{
    let n = io.len;
    if n <= TILE {
        // SAFETY: the whole range, this thread alone (contract).
        unsafe { chain(io, 0..n, None, load, comb, identity, exclusive) };
        return Ok(());
    }
    let parallel = n.saturating_mul(std::mem::size_of::<T>()) >= PARALLEL_MIN_BYTES;
    let tiles = n.div_ceil(TILE);
    let mut stack = [T::ZERO; STACK_TILES];
    let mut heap = Vec::new();
    let totals: &mut [T] = if tiles <= STACK_TILES {
        &mut stack[..tiles]
    } else {
        heap.try_reserve_exact(tiles).map_err(|_| {
            Error::Runtime(format!(
                "cannot allocate {} bytes for the scan's tile totals",
                tiles.saturating_mul(std::mem::size_of::<T>())
            ))
        })?;
        heap.resize(tiles, T::ZERO);
        &mut heap[..]
    };
    // One raw pointer for all uses of `totals` below (two passes and the recursion).
    let tp = totals.as_mut_ptr();
    let shared = Shared(tp);
    for_tiles(tiles, opts, parallel, move |ts| {
        for j in ts {
            // SAFETY: tile j is read only here; totals[j] is written by this thread
            // alone (each tile goes to one thread) and `totals` outlives the pass.
            unsafe { shared.get().add(j).write(tile_total(io, j, load, comb)) };
        }
    });
    let up = Io {
        src: tp.cast_const(),
        dst: tp,
        len: tiles,
    };
    // SAFETY: `totals` is ours alone, scanned in place.
    unsafe { level(up, same, comb, identity, false, opts)? };
    let totals = Shared(tp);
    for_tiles(tiles, opts, parallel, move |ts| {
        for j in ts {
            // SAFETY: totals[j - 1] was written before this pass and is only read now.
            let off = (j > 0).then(|| unsafe { totals.get().add(j - 1).read() });
            // SAFETY: tile j goes to this thread alone (contract of scan_io for io).
            unsafe {
                chain(
                    io,
                    j * TILE..((j + 1) * TILE).min(n),
                    off,
                    load,
                    comb,
                    identity,
                    exclusive,
                )
            };
        }
    });
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn bound_levels() {
        assert_eq!(sum_error_bound(1), 15);
        assert_eq!(sum_error_bound(16), 15);
        assert_eq!(sum_error_bound(17), 46);
        assert_eq!(sum_error_bound(256), 46);
        assert_eq!(sum_error_bound(257), 77);
        assert_eq!(sum_error_bound(1_000_000), 139);
        assert_eq!(sum_error_bound(100_000_000), 201);
    }

    #[test]
    fn small_matches_serial_integers() {
        for n in [1usize, 2, 15, 16, 17, 255, 256, 257, 5000] {
            let x: Vec<i64> = (0..n as i64).map(|i| (i * 7919) % 1001 - 500).collect();
            let mut out = vec![0; n];
            scan(&x, &mut out, ScanOp::Sum, false, &Options::default()).unwrap();
            let mut acc = 0i64;
            for i in 0..n {
                acc += x[i];
                assert_eq!(out[i], acc, "n {n} i {i}");
            }
            scan(&x, &mut out, ScanOp::Sum, true, &Options::default()).unwrap();
            let mut acc = 0i64;
            for i in 0..n {
                assert_eq!(out[i], acc, "exclusive n {n} i {i}");
                acc += x[i];
            }
        }
    }
}
