//! The C boundary of the sorts (see `crate::sort`).

use std::ffi::c_void;
use std::os::raw::{c_int, c_uint};

use super::boundary::{self, check, fail, guard, guard_callbacks, UserCtx};
use super::scan::status_of;
use super::status::parfor_status::{self, *};
use super::types::*;
use crate::dtype::with_dtype;
use crate::error::Error;
use crate::sort::SortOrder;

/// Flag of the sorts: largest first (NaN still last).
pub const PARFOR_SORT_DESCENDING: c_uint = 1;
/// Flag of the sorts: equal elements keep their input order (ties by position).
pub const PARFOR_SORT_STABLE: c_uint = 2;

/// Comparator of parfor_sort_with, as qsort_r's: negative when the element at `a`
/// goes before the one at `b`, positive when after, 0 when equal. Called from
/// several threads at once with the same `ctx`; `a` and `b` point into the array
/// being sorted and must not be written. It must return normally (no longjmp, no
/// C++ exception), or end its thread (pthread_exit, cancellation): see parfor_body.
pub type parfor_compare = Option<
    unsafe extern "C-unwind" fn(ctx: *mut c_void, a: *const c_void, b: *const c_void) -> c_int,
>;

/// The order the flags ask for; unknown bits are an error.
fn order(flags: c_uint) -> Result<SortOrder, parfor_status> {
    let known = PARFOR_SORT_DESCENDING | PARFOR_SORT_STABLE;
    if flags & !known != 0 {
        return Err(fail(
            PARFOR_ERR_INVALID_ARGUMENT,
            format!(
                "argument `flags` is {flags:#x}: only PARFOR_SORT_DESCENDING (1) and \
                 PARFOR_SORT_STABLE (2) are defined"
            ),
        ));
    }
    Ok(SortOrder {
        descending: flags & PARFOR_SORT_DESCENDING != 0,
        stable: flags & PARFOR_SORT_STABLE != 0,
    })
}

/// Sorts the `len` elements of type `dtype` at `data` in place, ascending (largest
/// first with PARFOR_SORT_DESCENDING). Floats sort in numpy's order: -inf .. +inf,
/// then every NaN (NaN stays last when descending too); -0.0 and +0.0 are equal.
/// The sort is a parallel radix sort (MSD, then LSD), always stable, so PARFOR_SORT_STABLE
/// changes nothing here. `data` is left unchanged on failure.
/// Errors: PARFOR_ERR_NULL_ARGUMENT (data), PARFOR_ERR_INVALID_ARGUMENT (dtype,
/// unknown flag bits, len * element size overflow, options), PARFOR_ERR_MISALIGNED
/// (data), PARFOR_ERR_RUNTIME (memory for the scratch buffer).
#[no_mangle]
pub unsafe extern "C" fn parfor_sort(
    data: *mut c_void,
    len: usize,
    dtype: RawDtype,
    flags: c_uint,
    opts: *const parfor_options,
) -> parfor_status {
    guard("parfor_sort", || {
        check!(boundary::non_null(data, "data"));
        let dtype = check!(boundary::dtype(dtype));
        let order = check!(order(flags));
        // SAFETY: the caller passes NULL or a valid parfor_options.
        let opts = check!(unsafe { boundary::options(opts) });
        with_dtype!(dtype, T => {
            // SAFETY: only the checks (NULL, overflow, alignment) are used.
            check!(unsafe { boundary::buffer::<T>(data, len, dtype, "data") });
            // SAFETY: checked above; the caller passes `len` writable elements.
            let buf = unsafe { std::slice::from_raw_parts_mut(data.cast::<T>(), len) };
            status_of(crate::sort::sort(buf, order, &opts).map_err(Error::widen), "sort")
        })
    })
}

/// Writes to indices[i] the position in `data` of the i-th element in sorted order
/// (the order of parfor_sort, with its flags), so that data[indices[0]],
/// data[indices[1]], ... is sorted. Ties are broken by position: the result is
/// stable, with or without PARFOR_SORT_STABLE. `data` is not modified; `indices`
/// (len size_t) is written only on success and must not overlap `data`.
/// Errors: PARFOR_ERR_NULL_ARGUMENT (data, indices), PARFOR_ERR_INVALID_ARGUMENT
/// (dtype, unknown flag bits, overflow, overlap, options), PARFOR_ERR_MISALIGNED
/// (data, indices), PARFOR_ERR_RUNTIME (memory for the keys).
#[no_mangle]
pub unsafe extern "C" fn parfor_argsort(
    data: *const c_void,
    len: usize,
    dtype: RawDtype,
    flags: c_uint,
    opts: *const parfor_options,
    indices: *mut usize,
) -> parfor_status {
    guard("parfor_argsort", || {
        check!(boundary::non_null(data, "data"));
        check!(boundary::non_null(indices, "indices"));
        let dtype = check!(boundary::dtype(dtype));
        let order = check!(order(flags));
        // SAFETY: the caller passes NULL or a valid parfor_options.
        let opts = check!(unsafe { boundary::options(opts) });
        if len > isize::MAX as usize / size_of::<usize>() {
            return fail(
                PARFOR_ERR_INVALID_ARGUMENT,
                format!("argument `len` is {len}: {len} indices overflow the address space"),
            );
        }
        if (indices as usize) % align_of::<usize>() != 0 {
            return fail(
                PARFOR_ERR_MISALIGNED,
                format!(
                    "argument `indices` ({indices:p}) is not aligned to {} bytes as size_t \
                     requires",
                    align_of::<usize>()
                ),
            );
        }
        with_dtype!(dtype, T => {
            // SAFETY: the caller passes `len` readable elements of `dtype` at `data`.
            let src = check!(unsafe { boundary::buffer::<T>(data, len, dtype, "data") });
            let data_bytes = len * dtype.size();
            let index_bytes = len * size_of::<usize>();
            let (d, i) = (data as usize, indices as usize);
            if len > 0 && d < i.wrapping_add(index_bytes) && i < d.wrapping_add(data_bytes) {
                return fail(
                    PARFOR_ERR_INVALID_ARGUMENT,
                    format!("arguments `data` ({data:p}) and `indices` ({indices:p}) overlap"),
                );
            }
            let mut result = Vec::new();
            if result.try_reserve_exact(len).is_err() {
                return fail(
                    PARFOR_ERR_RUNTIME,
                    format!("cannot allocate {index_bytes} bytes for the argsort's result"),
                );
            }
            result.resize(len, 0usize);
            let r = crate::sort::argsort(src, order, &opts, &mut result);
            if r.is_ok() {
                // SAFETY: `indices` holds `len` writable, aligned size_t (checked) that
                // do not overlap `data` nor `result`.
                unsafe { std::ptr::copy_nonoverlapping(result.as_ptr(), indices, len) };
            }
            status_of(r.map_err(Error::widen), "argsort")
        })
    })
}

/// Sorts `count` elements of `size` bytes at `base` in place with `cmp`, like
/// qsort_r (ascending in cmp's order; reversed with PARFOR_SORT_DESCENDING).
/// The sort is a parallel merge sort of the elements' indices followed by one
/// gather, so it is stable (PARFOR_SORT_STABLE is always honoured); cmp runs on
/// several threads at once. A comparator that is not a strict weak ordering leaves
/// the elements in an unspecified order, every element still present exactly once.
/// count == 0 or 1 succeeds without calling cmp.
/// Errors: PARFOR_ERR_NULL_ARGUMENT (base, cmp), PARFOR_ERR_INVALID_ARGUMENT (size
/// == 0, count * size overflow, unknown flag bits, options), PARFOR_ERR_RUNTIME
/// (memory for the indices or the copy; base is then unchanged).
#[no_mangle]
pub unsafe extern "C-unwind" fn parfor_sort_with(
    base: *mut c_void,
    count: usize,
    size: usize,
    cmp: parfor_compare,
    ctx: *mut c_void,
    flags: c_uint,
    opts: *const parfor_options,
) -> parfor_status {
    guard_callbacks(
        "parfor_sort_with",
        || {
            boundary::non_null(base, "base")?;
            let Some(cmp) = cmp else {
                return Err(fail(PARFOR_ERR_NULL_ARGUMENT, "argument `cmp` is NULL"));
            };
            if size == 0 {
                return Err(fail(
                    PARFOR_ERR_INVALID_ARGUMENT,
                    "argument `size` is 0: elements must have at least one byte",
                ));
            }
            let Some(bytes) = count
                .checked_mul(size)
                .filter(|&b| b <= isize::MAX as usize)
            else {
                return Err(fail(
                    PARFOR_ERR_INVALID_ARGUMENT,
                    format!(
                        "arguments `count` ({count}) and `size` ({size}) overflow the address \
                         space"
                    ),
                ));
            };
            let order = order(flags)?;
            // SAFETY: the caller passes NULL or a valid parfor_options.
            let opts = unsafe { boundary::options(opts) }?;
            Ok((cmp, bytes, order, opts))
        },
        |(cmp, bytes, order, opts)| {
            // SAFETY: the caller passes `count * size` writable bytes at `base`,
            // checked non-NULL, with a length that fits isize.
            let buf = unsafe { std::slice::from_raw_parts_mut(base.cast::<u8>(), bytes) };
            let ctx = UserCtx(ctx);
            let compare = move |a: &[u8], b: &[u8]| {
                // SAFETY: `cmp` is the caller's comparator for this ctx; a and b point
                // to whole elements of the array, which is not written while cmp runs.
                let r = unsafe { cmp(ctx.get(), a.as_ptr().cast(), b.as_ptr().cast()) };
                r.cmp(&0)
            };
            let r = crate::sort::sort_bytes_by(buf, size, compare, order, &opts);
            status_of(r.map_err(Error::widen), "comparator sort")
        },
    )
}
