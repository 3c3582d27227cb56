//! The C face of the strided N-d reductions (`crate::array`): `parfor_array` and the
//! functions taking it. Validation and conversion only.

use std::ffi::c_void;
use std::os::raw::c_uint;

use super::boundary::{self, check, fail, guard};
use super::status::parfor_status::{self, *};
use super::types::{parfor_options, RawDtype, RawOp};
use crate::array::{self, ArrayView, ArrayViewMut, ViewError};
use crate::error::Error;

// Literal values, so that cbindgen writes them into the header; the test at the end
// checks them against the core's constants.
/// Most dimensions a parfor_array may have.
pub const PARFOR_MAX_DIMS: usize = 32;
/// `axes` (parfor_reduce_array, parfor_moments_array) or `axis`
/// (parfor_argreduce_array) meaning every axis.
pub const PARFOR_ALL_AXES: u64 = u64::MAX;
/// Flag of parfor_moments_array: count, mean and m2 of the non-NaN elements only.
pub const PARFOR_MOMENTS_SKIP_NAN: c_uint = 1;

/// A strided N-d array, as numpy describes one: element (i_0, ..., i_{ndim-1}) is at
/// data + sum(i_k * strides[k]) bytes. Strides may be negative or 0 (broadcast).
/// Every element address must be a multiple of the element size (checked from data
/// and strides, never by reading memory: PARFOR_ERR_MISALIGNED otherwise).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct parfor_array {
    /// Address of element (0, ..., 0); never written when the array is an input.
    pub data: *mut c_void,
    /// Element type.
    pub dtype: RawDtype,
    /// 0 ..= PARFOR_MAX_DIMS; 0 is one element.
    pub ndim: usize,
    /// ndim extents; may be NULL when ndim == 0.
    pub shape: *const usize,
    /// ndim strides in BYTES, any sign, 0 allowed (broadcast); may be NULL when ndim == 0.
    pub strides: *const isize,
}

/// The checked parts of a parfor_array.
struct Parts<'a> {
    data: *mut u8,
    dtype: crate::DType,
    shape: &'a [usize],
    strides: &'a [isize],
}

/// Reads and checks `a` (named `name` in messages): non-NULL, data non-NULL, dtype,
/// ndim, shape and strides present.
///
/// # Safety
/// Unless NULL, `a` points to a readable parfor_array whose shape and strides, when
/// non-NULL, hold ndim values.
unsafe fn parts<'a>(a: *const parfor_array, name: &str) -> Result<Parts<'a>, parfor_status> {
    boundary::non_null(a, name)?;
    // SAFETY: non-NULL; the caller passes a readable parfor_array.
    let a = unsafe { a.read_unaligned() };
    if a.data.is_null() {
        return Err(fail(
            PARFOR_ERR_NULL_ARGUMENT,
            format!("argument `{name}->data` is NULL"),
        ));
    }
    let dtype = crate::DType::from_raw(a.dtype).ok_or_else(|| {
        fail(
            PARFOR_ERR_INVALID_ARGUMENT,
            format!(
                "{name}->dtype is {}, not a parfor_dtype (0..={})",
                a.dtype,
                crate::DType::ALL.len() - 1
            ),
        )
    })?;
    if a.ndim > PARFOR_MAX_DIMS {
        return Err(fail(
            PARFOR_ERR_INVALID_ARGUMENT,
            format!(
                "{name}->ndim is {}, more than PARFOR_MAX_DIMS ({PARFOR_MAX_DIMS})",
                a.ndim
            ),
        ));
    }
    let (shape, strides): (&[usize], &[isize]) = if a.ndim == 0 {
        (&[], &[])
    } else {
        if a.shape.is_null() {
            return Err(fail(
                PARFOR_ERR_NULL_ARGUMENT,
                format!("argument `{name}->shape` is NULL with ndim {}", a.ndim),
            ));
        }
        if a.strides.is_null() {
            return Err(fail(
                PARFOR_ERR_NULL_ARGUMENT,
                format!("argument `{name}->strides` is NULL with ndim {}", a.ndim),
            ));
        }
        // SAFETY: non-NULL, ndim values each (the caller's contract); read only.
        unsafe {
            (
                std::slice::from_raw_parts(a.shape, a.ndim),
                std::slice::from_raw_parts(a.strides, a.ndim),
            )
        }
    };
    Ok(Parts {
        data: a.data.cast(),
        dtype,
        shape,
        strides,
    })
}

fn view_error(e: ViewError) -> parfor_status {
    match e {
        ViewError::Invalid(m) => fail(PARFOR_ERR_INVALID_ARGUMENT, m),
        ViewError::Misaligned(m) => fail(PARFOR_ERR_MISALIGNED, m),
    }
}

/// # Safety
/// As [`parts`]; the elements are readable and unwritten during the call.
unsafe fn input<'a>(a: *const parfor_array) -> Result<ArrayView<'a>, parfor_status> {
    // SAFETY: the caller's contract.
    let p = unsafe { parts(a, "x") }?;
    // SAFETY: the caller guarantees readable elements (the header's contract).
    unsafe { ArrayView::from_raw(p.data.cast_const(), p.dtype, p.shape, p.strides) }
        .map_err(view_error)
}

/// # Safety
/// As [`parts`]; the elements are writable and not accessed by others.
unsafe fn output<'a>(
    a: *const parfor_array,
    name: &str,
) -> Result<ArrayViewMut<'a>, parfor_status> {
    // SAFETY: the caller's contract.
    let p = unsafe { parts(a, name) }?;
    // SAFETY: the caller guarantees writable elements (the header's contract).
    unsafe { ArrayViewMut::from_raw_named(name, p.data, p.dtype, p.shape, p.strides) }
        .map_err(view_error)
}

fn done(result: Result<(), Error>) -> parfor_status {
    match result {
        Ok(()) => PARFOR_OK,
        Err(e) => {
            let (status, message) = super::status::from_error(Error::widen(e), "reduction");
            fail(status, message)
        }
    }
}

/// Reduces x over the axes whose bit is set in `axes` (bit k: axis k;
/// PARFOR_ALL_AXES: all), computing and writing in out->dtype. out's shape is x's
/// shape without the reduced axes, in order (ndim 0 for a full reduction); any
/// strides. axes == 0 reduces nothing: each out element is its x element reduced
/// alone (x converted to out->dtype; NAN_SUM turns NaN into 0).
///
/// Accumulator (out->dtype): for SUM, PROD, NAN_SUM and SUM_EXACT the input's type,
/// PARFOR_I64 for a signed integer input, PARFOR_U64 for an unsigned one, or
/// PARFOR_F64 for any input; for LOGICAL_AND/OR the input's type or PARFOR_U8; for the
/// others the input's type. Integers wrap in the accumulator.
///
/// Reproducibility: each out element reduces its slice (the reduced axes in logical C
/// order) exactly as parfor_reduce reduces a contiguous buffer of those values: the
/// same fixed partition of the logical index range, the same lanes and combining
/// tree (non-contiguous blocks are first gathered in logical order). So results do
/// not depend on strides, memory order, team size or schedule, and parfor_reduce of a
/// contiguous buffer equals parfor_reduce_array of the same data bit for bit.
///
/// Errors, with nothing written: PARFOR_ERR_NULL_ARGUMENT (x, out, their data, shape
/// or strides with ndim > 0), PARFOR_ERR_INVALID_ARGUMENT (dtype, op, op not defined
/// for x's dtype, out->dtype not an accumulator (the message names both types), ndim
/// above PARFOR_MAX_DIMS, an axis >= ndim in `axes`, out's ndim or shape, an extent product
/// or byte offset overflowing, out's bytes overlapping x's, options),
/// PARFOR_ERR_MISALIGNED (an element address of x or out not a multiple of its size),
/// PARFOR_ERR_EMPTY (MIN/MAX/NAN_MIN/NAN_MAX with a reduced extent of 0, even when out
/// has no elements).
#[no_mangle]
pub unsafe extern "C" fn parfor_reduce_array(
    x: *const parfor_array,
    axes: u64,
    op: RawOp,
    opts: *const parfor_options,
    out: *const parfor_array,
) -> parfor_status {
    guard("parfor_reduce_array", || {
        // SAFETY (these three): the caller passes valid arrays and options.
        let x = check!(unsafe { input(x) });
        let mut out = check!(unsafe { output(out, "out") });
        let op = check!(boundary::op(op));
        let opts = check!(unsafe { boundary::options(opts) });
        done(array::reduce_array(&x, axes, op, &opts, &mut out))
    })
}

/// Index of the first minimum or maximum along axis number `axis` (0 ..< ndim; out's
/// shape is x's without that axis), or, when axis == PARFOR_ALL_AXES, the flat index
/// in x's logical C order (out has ndim 0). op is PARFOR_MIN, PARFOR_MAX (a NaN is the
/// extreme: the first NaN's index, as numpy), PARFOR_NAN_MIN or PARFOR_NAN_MAX (NaNs
/// skipped); out->dtype is PARFOR_I64 or PARFOR_U64.
/// Errors, with nothing written: as parfor_reduce_array, and PARFOR_ERR_EMPTY when
/// the reduced extent is 0 or, for NAN_MIN/NAN_MAX, some slice is all NaN.
#[no_mangle]
pub unsafe extern "C" fn parfor_argreduce_array(
    x: *const parfor_array,
    axis: u64,
    op: RawOp,
    opts: *const parfor_options,
    out: *const parfor_array,
) -> parfor_status {
    guard("parfor_argreduce_array", || {
        // SAFETY (these three): the caller passes valid arrays and options.
        let x = check!(unsafe { input(x) });
        let mut out = check!(unsafe { output(out, "out") });
        let op = check!(boundary::op(op));
        let opts = check!(unsafe { boundary::options(opts) });
        done(array::argreduce_array(&x, axis, op, &opts, &mut out))
    })
}

/// Count, mean and centred second moment m2 = sum((x - mean)^2) of x over the axes in
/// `axes` (as parfor_reduce_array; axes == 0: each element alone). count (PARFOR_U64
/// or PARFOR_I64, may be NULL), mean (PARFOR_F32 or PARFOR_F64, required) and m2 (mean's
/// dtype, may be NULL) all have the reduced shape. Any input dtype; integers compute
/// in double. Two passes per slice in double, each summed as PARFOR_SUM sums (same
/// partition and tree): the mean, then the squared deviations from it; reproducible
/// like the sums. With flags PARFOR_MOMENTS_SKIP_NAN only non-NaN elements count.
/// An empty slice (or all NaN when skipping) gives count 0, mean NaN, m2 NaN. The
/// variance is m2 / (count - ddof): ddof is the caller's business.
/// Errors, with nothing written: as parfor_reduce_array for x, count, mean and m2
/// (each output checked for shape, alignment and overlap with x and the others),
/// and PARFOR_ERR_INVALID_ARGUMENT for unknown flags or output dtypes.
#[no_mangle]
pub unsafe extern "C" fn parfor_moments_array(
    x: *const parfor_array,
    axes: u64,
    flags: c_uint,
    opts: *const parfor_options,
    count: *const parfor_array,
    mean: *const parfor_array,
    m2: *const parfor_array,
) -> parfor_status {
    guard("parfor_moments_array", || {
        // SAFETY (all below): the caller passes valid arrays and options.
        let x = check!(unsafe { input(x) });
        let mut mean = check!(unsafe { output(mean, "mean") });
        let mut count = if count.is_null() {
            None
        } else {
            Some(check!(unsafe { output(count, "count") }))
        };
        let mut m2 = if m2.is_null() {
            None
        } else {
            Some(check!(unsafe { output(m2, "m2") }))
        };
        let opts = check!(unsafe { boundary::options(opts) });
        done(array::moments_array(
            &x,
            axes,
            flags,
            &opts,
            count.as_mut(),
            &mut mean,
            m2.as_mut(),
        ))
    })
}

#[cfg(test)]
#[test]
fn constants_match_the_core() {
    assert_eq!(PARFOR_MAX_DIMS, array::MAX_DIMS);
    assert_eq!(PARFOR_ALL_AXES, array::ALL_AXES);
    assert_eq!(PARFOR_MOMENTS_SKIP_NAN, array::MOMENTS_SKIP_NAN);
}
