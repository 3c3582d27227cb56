//! Strided N-d views ([`ArrayView`], [`ArrayViewMut`]) and reductions over any set of
//! their axes ([`reduce_array`], [`argreduce_array`], [`moments_array`]).
//!
//! ## Reproducibility
//! Each output element reduces one *slice*: the elements of the reduced axes, taken in
//! logical C order of those axes (the last reduced axis fastest), whatever the strides.
//! A slice of n elements is reduced exactly as `reduce` reduces a contiguous buffer of
//! those n values: the same fixed block partition of the logical index range
//! `0..n` (`reduce::block_len`), the same kernels with their fixed lanes, the same
//! combining tree. Where a kept axis is contiguous and the slices are not, strips of
//! outputs are reduced together row by row, replaying those kernels exactly
//! ([`rows`]); any other block whose elements are not contiguous in memory is first
//! gathered, in logical order, into a per-thread scratch buffer. So the bits of every
//! output depend only on the logical values and the extents, never on the strides,
//! the memory order, the team size or the schedule; a contiguous 1-D `reduce` equals
//! `reduce_array` of the same data bit for bit (it is the same code).
//!
//! Reduced axes are coalesced only where that keeps their logical order (axis k
//! merged into k+1 when stride k = extent k+1 * stride k+1, extents of 1 dropped), so
//! contiguous slices are read in place.
//!
//! ## Sharing the work
//! With many output elements (at least [`OUTPUTS_PER_THREAD`] per thread) the outputs
//! are split across the team, each computed by one thread; with few, each output's
//! blocks are split across the team. Below `reduce::PARALLEL_MIN_BYTES` of input in
//! all, everything runs on the calling thread. None of this changes a bit.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::ops::Range;

use crate::dtype::{with_dtype, DType};
use crate::error::Error;
use crate::kernels::{self, Element, Floats};
use crate::reduce::{self, block_len, exact::ExactState, ReduceOp, PARALLEL_MIN_BYTES};
use crate::schedule::Options;

mod rows;

/// Most dimensions a view may have (numpy's limit since 2.0 is 64; 32 was its limit
/// before and is ample here).
pub const MAX_DIMS: usize = 32;
/// `axes` value meaning every axis.
pub const ALL_AXES: u64 = u64::MAX;

/// With at least this many output elements per thread, outputs are shared out
/// rather than each output's blocks: every thread then gets whole slices, and no
/// partials cross threads. 4 keeps static shares within 25 % of each other.
pub const OUTPUTS_PER_THREAD: usize = 4;

/// Why a view could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewError {
    /// ndim, extents or strides out of range (overflow, too many dimensions, out of
    /// the borrowed slice).
    Invalid(String),
    /// Some element's address is not a multiple of the element size.
    Misaligned(String),
}

impl std::fmt::Display for ViewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ViewError::Invalid(m) | ViewError::Misaligned(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ViewError {}

/// Shape and byte strides of a view, checked.
#[derive(Clone, Copy, Debug)]
struct Layout {
    ndim: usize,
    shape: [usize; MAX_DIMS],
    strides: [isize; MAX_DIMS],
    /// Number of elements.
    len: usize,
    /// Byte offsets, from the first element, of the lowest and one past the highest
    /// byte any element occupies (0..0 when empty).
    span: (isize, isize),
}

impl Layout {
    /// Checks a layout for elements of `dtype` at address `addr`. `name` prefixes the
    /// messages ("x", "out").
    fn new(
        name: &str,
        addr: usize,
        dtype: DType,
        shape: &[usize],
        strides: &[isize],
    ) -> Result<Layout, ViewError> {
        let ndim = shape.len();
        if ndim > MAX_DIMS {
            return Err(ViewError::Invalid(format!(
                "{name}->ndim is {ndim}, more than PARFOR_MAX_DIMS ({MAX_DIMS})"
            )));
        }
        if strides.len() != ndim {
            return Err(ViewError::Invalid(format!(
                "{name}: {} strides for {ndim} dimensions",
                strides.len()
            )));
        }
        let mut len = 1usize;
        for (k, &e) in shape.iter().enumerate() {
            len = len.checked_mul(e).ok_or_else(|| {
                ViewError::Invalid(format!(
                    "{name}: the product of the extents overflows size_t at axis {k} \
                     (shape {shape:?})"
                ))
            })?;
        }
        let size = dtype.size() as isize;
        let (mut lo, mut hi) = (0isize, 0isize);
        if len > 0 {
            for k in 0..ndim {
                if shape[k] == 1 {
                    continue;
                }
                let reach = isize::try_from(shape[k] - 1)
                    .ok()
                    .and_then(|e| e.checked_mul(strides[k]));
                let reach = reach.ok_or_else(|| overflow(name, k, shape[k], strides[k]))?;
                if reach < 0 {
                    lo = lo
                        .checked_add(reach)
                        .ok_or_else(|| overflow(name, k, shape[k], strides[k]))?;
                } else {
                    hi = hi
                        .checked_add(reach)
                        .ok_or_else(|| overflow(name, k, shape[k], strides[k]))?;
                }
                if strides[k] % size != 0 {
                    return Err(ViewError::Misaligned(format!(
                        "{name}->strides[{k}] is {} bytes, not a multiple of the {size}-byte \
                         size of {}: elements would be misaligned",
                        strides[k],
                        dtype.c_name()
                    )));
                }
            }
            hi = hi
                .checked_add(size)
                .ok_or_else(|| overflow(name, 0, shape[0], strides[0]))?;
            // Every address must exist: base + lo and base + hi stay in the address space.
            let (a, lo128, hi128) = (addr as i128, lo as i128, hi as i128);
            if a + lo128 < 0 || a + hi128 > usize::MAX as i128 {
                return Err(ViewError::Invalid(format!(
                    "{name}: the elements reach outside the address space"
                )));
            }
            if addr % dtype.align() != 0 {
                return Err(ViewError::Misaligned(format!(
                    "{name}->data ({addr:#x}) is not aligned to {size} bytes as {} requires",
                    dtype.c_name()
                )));
            }
        }
        let mut l = Layout {
            ndim,
            shape: [0; MAX_DIMS],
            strides: [0; MAX_DIMS],
            len,
            span: (lo, hi),
        };
        l.shape[..ndim].copy_from_slice(shape);
        l.strides[..ndim].copy_from_slice(strides);
        Ok(l)
    }

    fn shape(&self) -> &[usize] {
        &self.shape[..self.ndim]
    }
}

fn overflow(name: &str, k: usize, extent: usize, stride: isize) -> ViewError {
    ViewError::Invalid(format!(
        "{name}: axis {k} (extent {extent}, stride {stride} bytes) reaches beyond PTRDIFF_MAX bytes"
    ))
}

/// A read-only strided N-d view of elements of one dtype: address of element (0, ...,
/// 0), extents, strides in bytes (any sign, 0 for broadcast).
#[derive(Clone, Copy, Debug)]
pub struct ArrayView<'a> {
    ptr: *const u8,
    dtype: DType,
    layout: Layout,
    _life: PhantomData<&'a [u8]>,
}

// SAFETY: a view only reads its elements, which the borrow keeps alive and unwritten
// (the contract of its constructors); sharing or sending it is like sharing a `&[T]`.
unsafe impl Send for ArrayView<'_> {}
// SAFETY: as above.
unsafe impl Sync for ArrayView<'_> {}

/// A writable strided N-d view (the output of a reduction).
#[derive(Debug)]
pub struct ArrayViewMut<'a> {
    ptr: *mut u8,
    dtype: DType,
    layout: Layout,
    _life: PhantomData<&'a mut [u8]>,
}

/// Checks that every element of a view with element strides `strides` starting at
/// `offset` lies inside a slice of `len` elements; returns the byte strides.
fn strides_within(
    name: &str,
    len: usize,
    offset: usize,
    shape: &[usize],
    strides: &[isize],
    size: usize,
) -> Result<Vec<isize>, ViewError> {
    if strides.len() != shape.len() {
        return Err(ViewError::Invalid(format!(
            "{name}: {} strides for {} dimensions",
            strides.len(),
            shape.len()
        )));
    }
    if shape.contains(&0) {
        return Ok(strides
            .iter()
            .map(|&s| s.saturating_mul(size as isize))
            .collect());
    }
    let (mut lo, mut hi) = (offset as i128, offset as i128);
    for (&e, &s) in shape.iter().zip(strides) {
        let reach = (e as i128 - 1) * s as i128;
        if reach < 0 {
            lo += reach;
        } else {
            hi += reach;
        }
    }
    if lo < 0 || hi >= len as i128 {
        return Err(ViewError::Invalid(format!(
            "{name}: elements {lo}..={hi} of a slice of {len} elements"
        )));
    }
    strides
        .iter()
        .map(|&s| {
            s.checked_mul(size as isize)
                .ok_or_else(|| ViewError::Invalid(format!("{name}: stride {s} overflows")))
        })
        .collect()
}

impl<'a> ArrayView<'a> {
    /// A view of `data`: element (0, ..., 0) is `data[offset]`, strides are in
    /// elements. Every element must lie inside `data`.
    pub fn new<T: Element>(
        data: &'a [T],
        offset: usize,
        shape: &[usize],
        strides: &[isize],
    ) -> Result<Self, ViewError> {
        let size = std::mem::size_of::<T>();
        let bytes = strides_within("x", data.len(), offset, shape, strides, size)?;
        let ptr = data.as_ptr().wrapping_add(offset).cast::<u8>();
        // SAFETY: every element lies inside `data` (checked), which is borrowed for 'a.
        unsafe { Self::from_raw(ptr, T::DTYPE, shape, &bytes) }
    }

    /// A C-order view of `data` with this shape (its product must be `data.len()`).
    pub fn c_order<T: Element>(data: &'a [T], shape: &[usize]) -> Result<Self, ViewError> {
        Self::new(data, 0, shape, &c_strides(data.len(), shape)?)
    }

    /// A view from raw parts, with strides in bytes. Checks ndim, overflow and
    /// alignment (from `ptr` and the strides, without reading memory).
    ///
    /// # Safety
    /// Every element address `ptr + sum(i_k * strides[k])` must be readable for the
    /// lifetime 'a and hold an initialised value of `dtype`, not written meanwhile.
    pub unsafe fn from_raw(
        ptr: *const u8,
        dtype: DType,
        shape: &[usize],
        strides: &[isize],
    ) -> Result<Self, ViewError> {
        let layout = Layout::new("x", ptr as usize, dtype, shape, strides)?;
        Ok(ArrayView {
            ptr,
            dtype,
            layout,
            _life: PhantomData,
        })
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// Extents.
    pub fn shape(&self) -> &[usize] {
        self.layout.shape()
    }
    /// Strides in bytes.
    pub fn strides(&self) -> &[isize] {
        &self.layout.strides[..self.layout.ndim]
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.layout.len
    }
    /// True when some extent is 0.
    pub fn is_empty(&self) -> bool {
        self.layout.len == 0
    }
}

impl<'a> ArrayViewMut<'a> {
    /// A writable view of `data`, as [`ArrayView::new`]. Elements may repeat (stride
    /// 0); the reductions then write each of them with the same value.
    pub fn new<T: Element>(
        data: &'a mut [T],
        offset: usize,
        shape: &[usize],
        strides: &[isize],
    ) -> Result<Self, ViewError> {
        let size = std::mem::size_of::<T>();
        let bytes = strides_within("out", data.len(), offset, shape, strides, size)?;
        let ptr = data.as_mut_ptr().wrapping_add(offset).cast::<u8>();
        // SAFETY: every element lies inside `data`, mutably borrowed for 'a.
        unsafe { Self::from_raw(ptr, T::DTYPE, shape, &bytes) }
    }

    /// A C-order writable view of `data`.
    pub fn c_order<T: Element>(data: &'a mut [T], shape: &[usize]) -> Result<Self, ViewError> {
        let strides = c_strides(data.len(), shape)?;
        Self::new(data, 0, shape, &strides)
    }

    /// A writable view from raw parts (strides in bytes), checked as
    /// [`ArrayView::from_raw`]; messages name it `name`.
    ///
    /// # Safety
    /// Every element address must be writable for 'a and accessed by no one else.
    pub unsafe fn from_raw_named(
        name: &str,
        ptr: *mut u8,
        dtype: DType,
        shape: &[usize],
        strides: &[isize],
    ) -> Result<Self, ViewError> {
        let layout = Layout::new(name, ptr as usize, dtype, shape, strides)?;
        Ok(ArrayViewMut {
            ptr,
            dtype,
            layout,
            _life: PhantomData,
        })
    }

    /// [`ArrayViewMut::from_raw_named`] named "out".
    ///
    /// # Safety
    /// As [`ArrayViewMut::from_raw_named`].
    pub unsafe fn from_raw(
        ptr: *mut u8,
        dtype: DType,
        shape: &[usize],
        strides: &[isize],
    ) -> Result<Self, ViewError> {
        // SAFETY: the caller's contract.
        unsafe { Self::from_raw_named("out", ptr, dtype, shape, strides) }
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// Extents.
    pub fn shape(&self) -> &[usize] {
        self.layout.shape()
    }
}

fn c_strides(len: usize, shape: &[usize]) -> Result<Vec<isize>, ViewError> {
    let n: Option<usize> = shape.iter().try_fold(1usize, |a, &e| a.checked_mul(e));
    if n != Some(len) {
        return Err(ViewError::Invalid(format!(
            "shape {shape:?} does not hold {len} elements"
        )));
    }
    let mut strides = vec![0isize; shape.len()];
    let mut s = 1isize;
    for k in (0..shape.len()).rev() {
        strides[k] = s;
        s = s.saturating_mul(shape[k].max(1) as isize);
    }
    Ok(strides)
}

/// The reduced index space of one slice: extents and byte strides of the reduced
/// axes in logical order, coalesced where that keeps the order.
#[derive(Clone, Copy, Debug)]
struct Walk {
    ndim: usize,
    shape: [usize; MAX_DIMS],
    strides: [isize; MAX_DIMS],
    len: usize,
}

impl Walk {
    fn new(axes: impl Iterator<Item = (usize, isize)>) -> Walk {
        let mut w = Walk {
            ndim: 0,
            shape: [0; MAX_DIMS],
            strides: [0; MAX_DIMS],
            len: 1,
        };
        for (e, s) in axes {
            w.len *= e;
            if e == 1 {
                continue;
            }
            if w.ndim > 0 {
                let k = w.ndim - 1;
                // Axis k then this one read as one axis of extent e_k * e with stride s.
                if w.strides[k] == s.wrapping_mul(e as isize) {
                    w.shape[k] *= e;
                    w.strides[k] = s;
                    continue;
                }
            }
            w.shape[w.ndim] = e;
            w.strides[w.ndim] = s;
            w.ndim += 1;
        }
        w
    }

    /// Whether the slice is `len` consecutive elements of `size` bytes, in order.
    fn contiguous(&self, size: usize) -> bool {
        self.ndim == 0 || (self.ndim == 1 && self.strides[0] == size as isize)
    }
}

/// Where a reduction reads one slice.
pub(crate) trait Source<T>: Copy + Send + Sync {
    fn len(&self) -> usize;
    /// The whole slice when it is contiguous in memory.
    fn whole(&self) -> Option<&[T]> {
        None
    }
    /// Calls `f` with the elements `r` of the slice, contiguous.
    fn with_block<R>(&self, r: Range<usize>, f: impl FnOnce(&[T]) -> R) -> R;
}

impl<T: Element> Source<T> for &[T] {
    fn len(&self) -> usize {
        <[T]>::len(self)
    }
    fn whole(&self) -> Option<&[T]> {
        Some(self)
    }
    #[inline]
    fn with_block<R>(&self, r: Range<usize>, f: impl FnOnce(&[T]) -> R) -> R {
        f(&self[r])
    }
}

/// A slice read through a [`Walk`] from `base`.
#[derive(Clone, Copy)]
struct Strided<'w, T> {
    base: *const u8,
    walk: &'w Walk,
    _t: PhantomData<T>,
}

// SAFETY: only reads elements that the view's borrow keeps alive and unwritten.
unsafe impl<T> Send for Strided<'_, T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Strided<'_, T> {}

thread_local! {
    /// Scratch for gathered blocks, in u64 words so that any element type is aligned.
    static SCRATCH: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

impl<T: Element> Strided<'_, T> {
    /// Copies the elements `r` (logical order) into `dst`.
    fn gather(&self, r: Range<usize>, dst: &mut [T]) {
        let w = self.walk;
        debug_assert_eq!(dst.len(), r.len());
        if w.ndim == 0 {
            // One element (len 1).
            if !dst.is_empty() {
                // SAFETY: the view's contract: the element at `base` is readable.
                dst[0] = unsafe { self.base.cast::<T>().read() };
            }
            return;
        }
        let d = w.ndim;
        let mut idx = [0usize; MAX_DIMS];
        let mut rest = r.start;
        for k in (0..d).rev() {
            idx[k] = rest % w.shape[k];
            rest /= w.shape[k];
        }
        let inner = w.strides[d - 1];
        let mut done = 0;
        while done < dst.len() {
            let run = (w.shape[d - 1] - idx[d - 1]).min(dst.len() - done);
            let mut off = 0isize;
            for (&i, &st) in idx[..d].iter().zip(&w.strides[..d]) {
                off += i as isize * st;
            }
            let p = self.base.wrapping_offset(off).cast::<T>();
            let out = &mut dst[done..done + run];
            if inner == std::mem::size_of::<T>() as isize {
                // SAFETY: `run` consecutive elements of the view starting at p.
                unsafe { std::ptr::copy_nonoverlapping(p, out.as_mut_ptr(), run) };
            } else if inner == -(std::mem::size_of::<T>() as isize) {
                // A reversed run (x[::-1]): the `run` elements ending at p, copied
                // and reversed in place, which vectorises where a step of -1 did not.
                // SAFETY: elements p, p - 1, ..., p - (run - 1) of the view.
                unsafe {
                    std::ptr::copy_nonoverlapping(p.sub(run - 1), out.as_mut_ptr(), run);
                }
                out.reverse();
            } else {
                let step = inner / std::mem::size_of::<T>() as isize;
                for (j, o) in out.iter_mut().enumerate() {
                    // SAFETY: element idx + j of the innermost axis, inside the view.
                    *o = unsafe { p.offset(j as isize * step).read() };
                }
            }
            done += run;
            idx[d - 1] += run;
            let mut k = d - 1;
            while k > 0 && idx[k] == w.shape[k] {
                idx[k] = 0;
                idx[k - 1] += 1;
                k -= 1;
            }
        }
    }
}

impl<T: Element> Source<T> for Strided<'_, T> {
    fn len(&self) -> usize {
        self.walk.len
    }
    fn with_block<R>(&self, r: Range<usize>, f: impl FnOnce(&[T]) -> R) -> R {
        let n = r.len();
        let words = (n * std::mem::size_of::<T>()).div_ceil(8);
        with_scratch(words, |buf| {
            // SAFETY: u64 words are aligned for every element type, hold
            // n * size_of::<T>() bytes or more, and any bit pattern is a valid
            // integer or float.
            let dst = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<T>(), n) };
            self.gather(r, dst);
            f(dst)
        })
    }
}

/// Calls `f` with this thread's scratch of at least `words` u64 words (contents
/// unspecified).
fn with_scratch<R>(words: usize, f: impl FnOnce(&mut [u64]) -> R) -> R {
    SCRATCH.with(|s| {
        // Gathering and streaming never nest, so the borrow is never taken twice; if
        // it ever were, a fresh buffer keeps it correct.
        let mut own = Vec::new();
        let mut guard = s.try_borrow_mut().ok();
        let buf = guard.as_deref_mut().unwrap_or(&mut own);
        if buf.len() < words {
            buf.resize(words, 0);
        }
        f(&mut buf[..words])
    })
}

/// The value of an empty slice for `op` in `A`, or `None` where there is none.
fn identity<A: Element>(op: ReduceOp) -> Option<A> {
    match op {
        ReduceOp::Sum
        | ReduceOp::NanSum
        | ReduceOp::SumExact
        | ReduceOp::BitOr
        | ReduceOp::BitXor
        | ReduceOp::LogicalOr => Some(A::ZERO),
        ReduceOp::Prod | ReduceOp::LogicalAnd => Some(A::ONE),
        ReduceOp::BitAnd => Some(A::ALL_ONES),
        ReduceOp::Min | ReduceOp::Max | ReduceOp::NanMin | ReduceOp::NanMax => None,
    }
}

/// Reduces the blocks of `src` with `kernel` and `combine` (see `reduce::reduce_blocks`).
fn blocks<T: Element, S: Source<T>, P: Copy + Default + Send + Sync>(
    src: S,
    parallel: bool,
    opts: &Options,
    kernel: impl Fn(&[T]) -> P + Copy + Send + Sync,
    combine: impl FnMut(P, P) -> P,
) -> P {
    let n = src.len();
    let block = block_len(n, std::mem::size_of::<T>());
    let bytes = n * std::mem::size_of::<T>();
    if n <= block {
        return src.with_block(0..n, kernel);
    }
    reduce::reduce_blocks(
        n,
        block,
        bytes,
        opts,
        parallel && bytes >= PARALLEL_MIN_BYTES,
        move |r| src.with_block(r, kernel),
        combine,
    )
}

fn f64_add(a: f64, b: f64) -> f64 {
    a + b
}

/// Reduces one non-empty slice of `T` into accumulator `A` (one of the types
/// [`accumulator_error`] accepts for `op`). This is the one definition of every
/// reduction's bits: `reduce::reduce` calls it too.
pub(crate) fn reduce_slice<T: Element, A: Element>(
    src: impl Source<T>,
    op: ReduceOp,
    parallel: bool,
    opts: &Options,
) -> Result<A, Error> {
    if src.len() == 0 {
        return identity::<A>(op).ok_or(Error::Empty);
    }
    let same = T::DTYPE == A::DTYPE;
    Ok(match op {
        ReduceOp::Sum | ReduceOp::NanSum if A::IS_FLOAT => {
            // Floats and integers into a float accumulator: f64 lanes (kernels::fsum).
            let nan = op == ReduceOp::NanSum && T::IS_FLOAT;
            let s = if nan {
                blocks(src, parallel, opts, kernels::nan_fsum::<T>, f64_add)
            } else {
                blocks(src, parallel, opts, kernels::fsum::<T>, f64_add)
            };
            A::from_f64(s)
        }
        ReduceOp::Sum | ReduceOp::NanSum if same => {
            blocks(src, parallel, opts, kernels::sum::<T>, T::add).cast()
        }
        ReduceOp::Sum | ReduceOp::NanSum => {
            blocks(src, parallel, opts, kernels::sum_as::<T, A>, A::add)
        }
        ReduceOp::Prod if same => blocks(src, parallel, opts, kernels::prod::<T>, T::mul).cast(),
        ReduceOp::Prod => blocks(src, parallel, opts, kernels::prod_as::<T, A>, A::mul),
        ReduceOp::Min => {
            blocks(src, parallel, opts, kernels::min::<T>, kernels::min_combine).cast()
        }
        ReduceOp::Max => {
            blocks(src, parallel, opts, kernels::max::<T>, kernels::max_combine).cast()
        }
        ReduceOp::NanMin => blocks(
            src,
            parallel,
            opts,
            kernels::nan_min::<T>,
            kernels::nan_min_combine,
        )
        .cast(),
        ReduceOp::NanMax => blocks(
            src,
            parallel,
            opts,
            kernels::nan_max::<T>,
            kernels::nan_max_combine,
        )
        .cast(),
        ReduceOp::BitAnd => blocks(src, parallel, opts, kernels::bit_and::<T>, T::bit_and).cast(),
        ReduceOp::BitOr => blocks(src, parallel, opts, kernels::bit_or::<T>, T::bit_or).cast(),
        ReduceOp::BitXor => blocks(src, parallel, opts, kernels::bit_xor::<T>, T::bit_xor).cast(),
        ReduceOp::LogicalAnd => A::from_bool(blocks(
            src,
            parallel,
            opts,
            kernels::all_nonzero::<T>,
            |a, b| a && b,
        )),
        ReduceOp::LogicalOr => A::from_bool(blocks(
            src,
            parallel,
            opts,
            kernels::any_nonzero::<T>,
            |a, b| a || b,
        )),
        ReduceOp::SumExact => exact_sum::<T, A>(src, parallel, opts)?,
    })
}

/// The exact sum of a float slice, correctly rounded to the float type `A`. Exact,
/// so the order of the blocks does not matter; contiguous slices use the team.
fn exact_sum<T: Element, A: Element>(
    src: impl Source<T>,
    parallel: bool,
    opts: &Options,
) -> Result<A, Error> {
    let serial = Options::with_threads(1).expect("1 is a valid team size");
    let inner = if parallel { *opts } else { serial };
    let mut state = ExactState::new();
    let add = |state: &mut ExactState, x: &[T], o: &Options| match T::as_floats(x) {
        Some(Floats::F32(x)) => state.add_slice(x, o),
        Some(Floats::F64(x)) => state.add_slice(x, o),
        None => Err(Error::InvalidArgument(
            "PARFOR_SUM_EXACT takes PARFOR_F32 or PARFOR_F64".to_string(),
        )),
    };
    if let Some(x) = src.whole() {
        add(&mut state, x, &inner)?;
        return Ok(round_exact(&state));
    }
    let n = src.len();
    let block = block_len(n, std::mem::size_of::<T>()).max(1);
    let mut start = 0;
    while start < n {
        let end = (start + block).min(n);
        // Gathered blocks are small: each is added on this thread.
        src.with_block(start..end, |x| add(&mut state, x, &serial))?;
        start = end;
    }
    Ok(round_exact(&state))
}

/// The exact sum rounded once to the float type `A`.
fn round_exact<A: Element>(state: &ExactState) -> A {
    if A::DTYPE == DType::F32 {
        A::from_f64(state.result::<f32>() as f64)
    } else {
        A::from_f64(state.result::<f64>())
    }
}

/// `None` when `out` is an accumulator `op` may write for input `input`; else the
/// message. SUM, PROD, NAN_SUM, SUM_EXACT: the input type, I64 for a signed integer
/// input, U64 for an unsigned one, F64 for any; LOGICAL_*: the input type or U8;
/// others: the input type.
pub fn accumulator_error(op: ReduceOp, input: DType, out: DType) -> Option<String> {
    let ok = out == input
        || match op {
            ReduceOp::Sum | ReduceOp::Prod | ReduceOp::NanSum | ReduceOp::SumExact => {
                out == DType::F64
                    || (!input.is_float() && out == DType::I64 && is_signed(input))
                    || (!input.is_float() && out == DType::U64 && !is_signed(input))
            }
            ReduceOp::LogicalAnd | ReduceOp::LogicalOr => out == DType::U8,
            _ => false,
        };
    if ok {
        return None;
    }
    let allowed = match op {
        ReduceOp::Sum | ReduceOp::Prod | ReduceOp::NanSum | ReduceOp::SumExact => {
            if input.is_float() {
                format!("{} or PARFOR_F64", input.c_name())
            } else if is_signed(input) {
                format!("{}, PARFOR_I64 or PARFOR_F64", input.c_name())
            } else {
                format!("{}, PARFOR_U64 or PARFOR_F64", input.c_name())
            }
        }
        ReduceOp::LogicalAnd | ReduceOp::LogicalOr => format!("{} or PARFOR_U8", input.c_name()),
        _ => input.c_name().to_string(),
    };
    Some(format!(
        "out->dtype {} cannot hold {} of {}: it takes {allowed}",
        out.c_name(),
        op.c_name(),
        input.c_name()
    ))
}

fn is_signed(d: DType) -> bool {
    matches!(d, DType::I8 | DType::I16 | DType::I32 | DType::I64)
}

/// The axes of `x` set in `axes` (ALL_AXES: every axis) as a bit mask, checked.
fn axis_mask(ndim: usize, axes: u64) -> Result<u64, Error> {
    let all = if ndim == 64 {
        u64::MAX
    } else {
        (1u64 << ndim) - 1
    };
    if axes == ALL_AXES {
        return Ok(all);
    }
    if axes & !all != 0 {
        let k = (axes & !all).trailing_zeros();
        return Err(Error::InvalidArgument(format!(
            "axes has bit {k} set, but x has {ndim} dimensions (axes 0..{ndim})"
        )));
    }
    Ok(axes)
}

/// Checks that `out` has x's shape without the axes in `mask`.
fn check_out_shape(x: &Layout, mask: u64, out: &Layout, name: &str) -> Result<(), Error> {
    let kept: Vec<usize> = (0..x.ndim)
        .filter(|&k| mask & (1 << k) == 0)
        .map(|k| x.shape[k])
        .collect();
    if out.shape() != kept.as_slice() {
        return Err(Error::InvalidArgument(format!(
            "{name} has shape {:?} (ndim {}), but x of shape {:?} reduced over axes mask \
             {mask:#x} has shape {kept:?} (ndim {})",
            out.shape(),
            out.ndim,
            x.shape(),
            kept.len()
        )));
    }
    Ok(())
}

/// Fails when the bytes spanned by the two views intersect (a conservative test on
/// the address ranges, as numpy's `may_share_memory`).
fn check_overlap(
    a: (*const u8, &Layout),
    b: (*const u8, &Layout),
    names: (&str, &str),
) -> Result<(), Error> {
    if a.1.len == 0 || b.1.len == 0 {
        return Ok(());
    }
    let lo_a = a.0 as isize + a.1.span.0;
    let hi_a = a.0 as isize + a.1.span.1;
    let lo_b = b.0 as isize + b.1.span.0;
    let hi_b = b.0 as isize + b.1.span.1;
    if lo_a < hi_b && lo_b < hi_a {
        return Err(Error::InvalidArgument(format!(
            "{} overlaps {}: the bytes they span intersect",
            names.1, names.0
        )));
    }
    Ok(())
}

/// The output elements of a reduction: x's kept axes with x's and out's strides.
struct Outputs {
    ndim: usize,
    shape: [usize; MAX_DIMS],
    x_strides: [isize; MAX_DIMS],
    out_strides: [[isize; MAX_DIMS]; 3],
    len: usize,
}

impl Outputs {
    /// No axes: one output element.
    fn scalar() -> Outputs {
        Outputs {
            ndim: 0,
            shape: [0; MAX_DIMS],
            x_strides: [0; MAX_DIMS],
            out_strides: [[0; MAX_DIMS]; 3],
            len: 1,
        }
    }

    fn new(x: &Layout, mask: u64, outs: &[&Layout]) -> Outputs {
        let mut o = Outputs::scalar();
        for k in (0..x.ndim).filter(|&k| mask & (1 << k) == 0) {
            o.shape[o.ndim] = x.shape[k];
            o.x_strides[o.ndim] = x.strides[k];
            for (j, out) in outs.iter().enumerate() {
                o.out_strides[j][o.ndim] = out.strides[o.ndim];
            }
            o.len *= x.shape[k];
            o.ndim += 1;
        }
        o
    }

    /// Byte offsets in x and in each output of output element `i` (C order).
    fn offsets(&self, mut i: usize) -> (isize, [isize; 3]) {
        let (mut xo, mut oo) = (0isize, [0isize; 3]);
        for k in (0..self.ndim).rev() {
            let c = (i % self.shape[k]) as isize;
            i /= self.shape[k];
            xo += c * self.x_strides[k];
            for (o, st) in oo.iter_mut().zip(&self.out_strides) {
                *o += c * st[k];
            }
        }
        (xo, oo)
    }
}

/// A raw output pointer shared by the threads that write disjoint elements.
#[derive(Clone, Copy)]
struct OutPtr(*mut u8);
// SAFETY: each output element is written by exactly one thread (the element ranges
// handed out are disjoint) while the view's mutable borrow keeps it exclusive.
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The address `off` bytes on (a method, so closures capture the Sync wrapper).
    fn at(self, off: isize) -> *const u8 {
        self.0.wrapping_offset(off).cast_const()
    }

    /// # Safety
    /// `off` is the offset of an element of type `A` of the view this came from, and
    /// no other thread writes that element now.
    unsafe fn write<A>(self, off: isize, v: A) {
        // SAFETY: the caller's contract; the view checked alignment.
        unsafe { self.0.wrapping_offset(off).cast::<A>().write(v) }
    }
}

/// The team size a call with `opts` runs on.
fn for_outputs_team(opts: &Options) -> usize {
    if opts.num_threads() == 0 {
        crate::runtime::num_threads()
    } else {
        opts.num_threads()
    }
}

/// Runs `each(i, parallel_inside)` for every output element i, sharing the outputs
/// across the team when there are many, else giving each output the team.
fn for_outputs(
    outputs: usize,
    slice_bytes: usize,
    opts: &Options,
    each: impl Fn(usize, bool) + Sync,
) {
    let total = outputs.saturating_mul(slice_bytes);
    let team = for_outputs_team(opts);
    if outputs <= 1 || total < PARALLEL_MIN_BYTES || team <= 1 {
        (0..outputs).for_each(|i| each(i, true));
        return;
    }
    if outputs >= OUTPUTS_PER_THREAD * team || slice_bytes < PARALLEL_MIN_BYTES {
        let ran = crate::parallel_for::parallel_for(0..outputs, opts, |r| {
            r.for_each(|i| each(i, false));
            Ok::<(), std::convert::Infallible>(())
        });
        if ran.is_err() {
            // The team could not start: compute here rather than fail (as `reduce`).
            (0..outputs).for_each(|i| each(i, false));
        }
    } else {
        (0..outputs).for_each(|i| each(i, true));
    }
}

/// Reduces `x` over the axes set in `axes` (bit k: axis k; [`ALL_AXES`]: all) with
/// `op`, computing in and writing to `out`'s dtype (see [`accumulator_error`]).
/// `out` has x's shape without the reduced axes. `axes == 0` writes x converted.
/// Errors (nothing is written): `InvalidArgument` (axes, op for the dtype, out's
/// dtype or shape, out overlapping x), `Empty` (MIN/MAX/NAN_MIN/NAN_MAX with a
/// reduced extent of 0).
pub fn reduce_array(
    x: &ArrayView<'_>,
    axes: u64,
    op: ReduceOp,
    opts: &Options,
    out: &mut ArrayViewMut<'_>,
) -> Result<(), Error> {
    let mask = axis_mask(x.layout.ndim, axes)?;
    if !op.accepts(x.dtype) {
        return Err(reduce::bad_op_message(op, x.dtype));
    }
    if let Some(m) = accumulator_error(op, x.dtype, out.dtype) {
        return Err(Error::InvalidArgument(m));
    }
    check_out_shape(&x.layout, mask, &out.layout, "out")?;
    check_overlap((x.ptr, &x.layout), (out.ptr, &out.layout), ("x", "out"))?;
    let reduced_empty = (0..x.layout.ndim).any(|k| mask & (1 << k) != 0 && x.layout.shape[k] == 0);
    if reduced_empty && identity::<u8>(op).is_none() {
        return Err(Error::Empty);
    }
    let walk = Walk::new(
        (0..x.layout.ndim)
            .filter(|&k| mask & (1 << k) != 0)
            .map(|k| (x.layout.shape[k], x.layout.strides[k])),
    );
    let outputs = Outputs::new(&x.layout, mask, &[&out.layout]);
    let dst = OutPtr(out.ptr);
    with_dtype!(x.dtype, T => {
        if out.dtype == x.dtype {
            run_reduce::<T, T>(x.ptr, &walk, &outputs, op, opts, dst);
        } else {
            match out.dtype {
                DType::I64 => run_reduce::<T, i64>(x.ptr, &walk, &outputs, op, opts, dst),
                DType::U64 => run_reduce::<T, u64>(x.ptr, &walk, &outputs, op, opts, dst),
                DType::F64 => run_reduce::<T, f64>(x.ptr, &walk, &outputs, op, opts, dst),
                // LOGICAL_* into U8: the 0/1 result of the input type, converted.
                _ => run_reduce::<T, u8>(x.ptr, &walk, &outputs, op, opts, dst),
            }
        }
    });
    Ok(())
}

fn run_reduce<T: Element, A: Element>(
    base: *const u8,
    walk: &Walk,
    outputs: &Outputs,
    op: ReduceOp,
    opts: &Options,
    dst: OutPtr,
) {
    let size = std::mem::size_of::<T>();
    if rows::reduce::<T, A>(base, walk, outputs, op, opts, dst) {
        return;
    }
    let base = OutPtr(base.cast_mut());
    for_outputs(outputs.len, walk.len * size, opts, |i, parallel| {
        let (xo, oo) = outputs.offsets(i);
        let start = base.at(xo);
        let v: A = if walk.contiguous(size) {
            // SAFETY: the slice's `walk.len` elements are consecutive from `start`
            // (checked by `contiguous`) and inside the view.
            let s = unsafe { std::slice::from_raw_parts(start.cast::<T>(), walk.len) };
            slice_value::<T, A>(s, op, parallel, opts)
        } else {
            let src = Strided::<T> {
                base: start,
                walk,
                _t: PhantomData,
            };
            slice_value::<T, A>(src, op, parallel, opts)
        };
        // SAFETY: output element i is written only here, by this thread.
        unsafe { dst.write(oo[0], v) };
    });
}

/// [`reduce_slice`], where errors were excluded by the caller's checks; LOGICAL_*
/// into U8 computes in T.
fn slice_value<T: Element, A: Element>(
    src: impl Source<T>,
    op: ReduceOp,
    parallel: bool,
    opts: &Options,
) -> A {
    let r = if A::DTYPE != T::DTYPE && matches!(op, ReduceOp::LogicalAnd | ReduceOp::LogicalOr) {
        reduce_slice::<T, T>(src, op, parallel, opts).map(|v| A::from_bool(v.is_nonzero()))
    } else {
        reduce_slice::<T, A>(src, op, parallel, opts)
    };
    r.expect("checked before the reduction: every slice has a value")
}

/// Index of the first minimum or maximum (op MIN, MAX, NAN_MIN, NAN_MAX) along axis
/// `axis` of `x`, or with [`ALL_AXES`] the flat index in x's logical C order (out
/// has ndim 0); written as `out`'s dtype, I64 or U64. Errors (nothing written):
/// `InvalidArgument` (axis, op, out), `Empty` (a reduced extent of 0, or an all-NaN
/// slice for NAN_MIN/NAN_MAX).
pub fn argreduce_array(
    x: &ArrayView<'_>,
    axis: u64,
    op: ReduceOp,
    opts: &Options,
    out: &mut ArrayViewMut<'_>,
) -> Result<(), Error> {
    let ndim = x.layout.ndim;
    let mask = if axis == ALL_AXES {
        axis_mask(ndim, ALL_AXES)?
    } else if axis < ndim as u64 {
        1u64 << axis
    } else {
        return Err(Error::InvalidArgument(format!(
            "axis is {axis}, but x has {ndim} dimensions (axes 0..{ndim}, or PARFOR_ALL_AXES)"
        )));
    };
    if !matches!(
        op,
        ReduceOp::Min | ReduceOp::Max | ReduceOp::NanMin | ReduceOp::NanMax
    ) {
        return Err(Error::InvalidArgument(format!(
            "{} has no index: argreduce takes PARFOR_MIN, PARFOR_MAX, PARFOR_NAN_MIN or \
             PARFOR_NAN_MAX",
            op.c_name()
        )));
    }
    if !matches!(out.dtype, DType::I64 | DType::U64) {
        return Err(Error::InvalidArgument(format!(
            "out->dtype {} cannot hold an index of {}: it takes PARFOR_I64 or PARFOR_U64",
            out.dtype.c_name(),
            x.dtype.c_name()
        )));
    }
    check_out_shape(&x.layout, mask, &out.layout, "out")?;
    check_overlap((x.ptr, &x.layout), (out.ptr, &out.layout), ("x", "out"))?;
    if (0..ndim).any(|k| mask & (1 << k) != 0 && x.layout.shape[k] == 0) {
        return Err(Error::Empty);
    }
    let walk = Walk::new(
        (0..ndim)
            .filter(|&k| mask & (1 << k) != 0)
            .map(|k| (x.layout.shape[k], x.layout.strides[k])),
    );
    let outputs = Outputs::new(&x.layout, mask, &[&out.layout]);
    // Indices first, written only when every slice has one (an all-NaN slice fails).
    let mut found = vec![0usize; outputs.len];
    let all_nan = std::sync::atomic::AtomicBool::new(false);
    let slots = reduce::Slots::new(&mut found);
    with_dtype!(x.dtype, T => {
        let size = std::mem::size_of::<T>();
        let base = OutPtr(x.ptr.cast_mut());
        for_outputs(outputs.len, walk.len * size, opts, |i, parallel| {
            let (xo, _) = outputs.offsets(i);
            let start = base.at(xo);
            let r = if walk.contiguous(size) {
                // SAFETY: consecutive elements inside the view (see run_reduce).
                let s = unsafe { std::slice::from_raw_parts(start.cast::<T>(), walk.len) };
                arg_slice::<T>(s, op, parallel, opts)
            } else {
                arg_slice::<T>(Strided::<T> { base: start, walk: &walk, _t: PhantomData }, op, parallel, opts)
            };
            match r {
                // SAFETY: slot i is written only here, by this thread; `found`
                // outlives the loop.
                Some(k) => unsafe { slots.write(i, k) },
                None => all_nan.store(true, std::sync::atomic::Ordering::Relaxed),
            }
        });
    });
    if all_nan.into_inner() {
        return Err(Error::Empty);
    }
    let (dst, signed) = (OutPtr(out.ptr), out.dtype == DType::I64);
    for (i, &k) in found.iter().enumerate() {
        let (_, oo) = outputs.offsets(i);
        // SAFETY: element i of `out`, exclusively borrowed; checked alignment.
        unsafe {
            if signed {
                dst.write(oo[0], k as i64)
            } else {
                dst.write(oo[0], k as u64)
            }
        }
    }
    Ok(())
}

/// The index of the first extreme of a non-empty slice; `None` for an all-NaN slice
/// with NAN_MIN/NAN_MAX.
fn arg_slice<T: Element>(
    src: impl Source<T>,
    op: ReduceOp,
    parallel: bool,
    opts: &Options,
) -> Option<usize> {
    type Kernel<U> = fn(&[U]) -> (U, usize);
    type Combine<U> = fn((U, usize), (U, usize)) -> (U, usize);
    let (kernel, combine): (Kernel<T>, Combine<T>) = match op {
        ReduceOp::Min => (kernels::argmin, kernels::argmin_combine),
        ReduceOp::Max => (kernels::argmax, kernels::argmax_combine),
        ReduceOp::NanMin => (kernels::nan_argmin, kernels::nan_argmin_combine),
        _ => (kernels::nan_argmax, kernels::nan_argmax_combine),
    };
    let n = src.len();
    let block = block_len(n, std::mem::size_of::<T>());
    let bytes = n * std::mem::size_of::<T>();
    let (v, k) = reduce::reduce_blocks(
        n,
        block,
        bytes,
        opts,
        parallel && bytes >= PARALLEL_MIN_BYTES,
        move |r: Range<usize>| {
            let start = r.start;
            src.with_block(r, |x| {
                let (v, k) = kernel(x);
                (v, k + start)
            })
        },
        combine,
    );
    if v.is_nan() && matches!(op, ReduceOp::NanMin | ReduceOp::NanMax) {
        None
    } else {
        Some(k)
    }
}

/// Flag of [`moments_array`]: skip NaNs (count, mean and m2 of the other elements).
pub const MOMENTS_SKIP_NAN: u32 = 1;

/// Count, mean and centred second moment (sum of squared deviations from the mean)
/// of `x` over the axes in `axes`, each output of x's shape without them. `mean`
/// (required) and `m2` are F32 or F64, the same dtype; `count` is U64 or I64.
/// Two passes over each slice, both in f64 in the fixed order of the float sums
/// (kernels::fsum): the mean, then the squared deviations from it, so the results
/// are reproducible like the sums. An empty slice (or, skipping NaNs, one of NaNs
/// only) gives count 0, mean NaN, m2 NaN. Errors (nothing written):
/// `InvalidArgument` (axes, flags, dtypes, shapes, overlaps).
pub fn moments_array(
    x: &ArrayView<'_>,
    axes: u64,
    flags: u32,
    opts: &Options,
    count: Option<&mut ArrayViewMut<'_>>,
    mean: &mut ArrayViewMut<'_>,
    m2: Option<&mut ArrayViewMut<'_>>,
) -> Result<(), Error> {
    let mask = axis_mask(x.layout.ndim, axes)?;
    if flags & !MOMENTS_SKIP_NAN != 0 {
        return Err(Error::InvalidArgument(format!(
            "flags is {flags:#x}: only PARFOR_MOMENTS_SKIP_NAN ({MOMENTS_SKIP_NAN:#x}) is defined"
        )));
    }
    let skip_nan = flags & MOMENTS_SKIP_NAN != 0;
    if !mean.dtype.is_float() {
        return Err(Error::InvalidArgument(format!(
            "mean->dtype is {}: it takes PARFOR_F32 or PARFOR_F64",
            mean.dtype.c_name()
        )));
    }
    if let Some(m2) = &m2 {
        if m2.dtype != mean.dtype {
            return Err(Error::InvalidArgument(format!(
                "m2->dtype is {}: it must be mean's dtype, {}",
                m2.dtype.c_name(),
                mean.dtype.c_name()
            )));
        }
    }
    if let Some(c) = &count {
        if !matches!(c.dtype, DType::U64 | DType::I64) {
            return Err(Error::InvalidArgument(format!(
                "count->dtype is {}: it takes PARFOR_U64 or PARFOR_I64",
                c.dtype.c_name()
            )));
        }
    }
    let mut outs: Vec<(&str, *const u8, &Layout)> = vec![("mean", mean.ptr, &mean.layout)];
    if let Some(c) = &count {
        outs.push(("count", c.ptr, &c.layout));
    }
    if let Some(m) = &m2 {
        outs.push(("m2", m.ptr, &m.layout));
    }
    for (i, &(name, p, l)) in outs.iter().enumerate() {
        check_out_shape(&x.layout, mask, l, name)?;
        check_overlap((x.ptr, &x.layout), (p, l), ("x", name))?;
        for &(other, q, m) in &outs[..i] {
            check_overlap((q, m), (p, l), (other, name))?;
        }
    }
    let walk = Walk::new(
        (0..x.layout.ndim)
            .filter(|&k| mask & (1 << k) != 0)
            .map(|k| (x.layout.shape[k], x.layout.strides[k])),
    );
    let layouts = [
        &mean.layout,
        count.as_ref().map_or(&mean.layout, |c| &c.layout),
        m2.as_ref().map_or(&mean.layout, |m| &m.layout),
    ];
    let outputs = Outputs::new(&x.layout, mask, &layouts);
    let targets = Targets {
        mean: (OutPtr(mean.ptr), mean.dtype),
        count: count.as_ref().map(|c| (OutPtr(c.ptr), c.dtype)),
        m2: m2.as_ref().map(|m| (OutPtr(m.ptr), m.dtype)),
    };
    with_dtype!(x.dtype, T => {
        let size = std::mem::size_of::<T>();
        let base = OutPtr(x.ptr.cast_mut());
        for_outputs(outputs.len, walk.len * size, opts, |i, parallel| {
            let (xo, oo) = outputs.offsets(i);
            let start = base.at(xo);
            let want_m2 = targets.m2.is_some();
            let m = if walk.contiguous(size) {
                // SAFETY: consecutive elements inside the view (see run_reduce).
                let s = unsafe { std::slice::from_raw_parts(start.cast::<T>(), walk.len) };
                moments_slice::<T>(s, skip_nan, want_m2, parallel, opts)
            } else {
                let src = Strided::<T> { base: start, walk: &walk, _t: PhantomData };
                moments_slice::<T>(src, skip_nan, want_m2, parallel, opts)
            };
            // SAFETY: output element i of each target, written only here.
            unsafe { targets.write(oo, m) };
        });
    });
    Ok(())
}

/// Where [`moments_array`] writes.
#[derive(Clone, Copy)]
struct Targets {
    mean: (OutPtr, DType),
    count: Option<(OutPtr, DType)>,
    m2: Option<(OutPtr, DType)>,
}

impl Targets {
    /// # Safety
    /// `oo` are the offsets of one output element, written by this thread alone.
    unsafe fn write(&self, oo: [isize; 3], (n, mean, m2): (usize, f64, f64)) {
        // SAFETY (all three): the caller's contract; dtypes checked.
        unsafe {
            let put = |(p, d): (OutPtr, DType), off: isize, v: f64| {
                if d == DType::F32 {
                    p.write(off, v as f32)
                } else {
                    p.write(off, v)
                }
            };
            put(self.mean, oo[0], mean);
            if let Some((p, d)) = self.count {
                if d == DType::I64 {
                    p.write(oo[1], n as i64)
                } else {
                    p.write(oo[1], n as u64)
                }
            }
            if let Some(t) = self.m2 {
                put(t, oo[2], m2);
            }
        }
    }
}

/// (count, mean, m2) of one slice, in f64.
fn moments_slice<T: Element>(
    src: impl Source<T>,
    skip_nan: bool,
    want_m2: bool,
    parallel: bool,
    opts: &Options,
) -> (usize, f64, f64) {
    let n = src.len();
    if n == 0 {
        return (0, f64::NAN, f64::NAN);
    }
    let (sum, count) = if skip_nan && T::IS_FLOAT {
        blocks(
            src,
            parallel,
            opts,
            |x: &[T]| (kernels::nan_fsum(x), kernels::count_not_nan(x)),
            |a: (f64, usize), b: (f64, usize)| (a.0 + b.0, a.1 + b.1),
        )
    } else {
        (blocks(src, parallel, opts, kernels::fsum::<T>, f64_add), n)
    };
    if count == 0 {
        return (0, f64::NAN, f64::NAN);
    }
    let mean = sum / count as f64;
    if !want_m2 {
        return (count, mean, f64::NAN);
    }
    let m2 = if skip_nan && T::IS_FLOAT {
        blocks(
            src,
            parallel,
            opts,
            move |x: &[T]| kernels::nan_sq_dev(x, mean),
            f64_add,
        )
    } else {
        blocks(
            src,
            parallel,
            opts,
            move |x: &[T]| kernels::sq_dev(x, mean),
            f64_add,
        )
    };
    (count, mean, m2)
}
