//! The C boundary of the prefix scans (see `crate::scan`).

use std::ffi::c_void;
use std::os::raw::c_uint;

use super::boundary::{self, check, fail, guard};
use super::status::parfor_status::{self, *};
use super::types::*;
use crate::dtype::with_dtype;
use crate::error::Error;
use crate::scan::ScanOp;

/// Flag of parfor_scan: an exclusive scan (out[0] is the operator's identity).
pub const PARFOR_SCAN_EXCLUSIVE: c_uint = 1;

/// Whether the byte ranges of two buffers of `bytes` bytes overlap.
pub(crate) fn overlaps(a: *const c_void, b: *const c_void, bytes: usize) -> bool {
    let (a, b) = (a as usize, b as usize);
    bytes > 0 && a < b.wrapping_add(bytes) && b < a.wrapping_add(bytes)
}

/// Prefix scan: out[i] = data[0] (op) ... (op) data[i] (inclusive), or, with
/// PARFOR_SCAN_EXCLUSIVE in `flags`, the same over data[0..i) with the operator's
/// identity at out[0] (SUM, NAN_SUM, BIT_OR, BIT_XOR: 0; PROD: 1; BIT_AND: all ones;
/// MIN: +inf or the type's largest value; MAX: -inf or its smallest).
/// op: PARFOR_SUM, PARFOR_PROD, PARFOR_MIN, PARFOR_MAX (NaN propagates to every later
/// output), PARFOR_BIT_AND, PARFOR_BIT_OR, PARFOR_BIT_XOR (integers only),
/// PARFOR_NAN_SUM (NaN counted as 0, as numpy.nancumsum; integers: as SUM).
/// Integers wrap. `out` may equal `data` (in place); any other overlap is refused.
/// Float results are bitwise identical for every team size and schedule: the input
/// is cut into tiles of 16 elements, tile totals are folded left to right, the
/// totals are scanned by the same rule recursively, and each output is the serial
/// chain from the scanned total before its tile; threads only choose which tiles
/// they compute. Accuracy of float SUM/NAN_SUM: |out[i] - exact[i]| <=
/// c(len) * u * sum_{k<=i} |data[k]| with c = 31 * (L - 1) + 15, L the levels of the
/// hierarchy (ceil(log16(len)), at least 1): c(1e6) = 139, c(1e8) = 201, where a
/// serial scan has len - 1. len == 0 writes nothing and succeeds.
/// out is written only on success.
/// Errors: PARFOR_ERR_NULL_ARGUMENT (data, out), PARFOR_ERR_INVALID_ARGUMENT (dtype,
/// op, op not defined for dtype, unknown flag bits, len * element size overflow,
/// overlapping out, options), PARFOR_ERR_MISALIGNED (data, out),
/// PARFOR_ERR_RUNTIME (memory for the tile totals).
#[no_mangle]
pub unsafe extern "C" fn parfor_scan(
    data: *const c_void,
    len: usize,
    dtype: RawDtype,
    op: RawOp,
    flags: c_uint,
    opts: *const parfor_options,
    out: *mut c_void,
) -> parfor_status {
    guard("parfor_scan", || {
        check!(boundary::non_null(data, "data"));
        check!(boundary::non_null(out, "out"));
        let dtype = check!(boundary::dtype(dtype));
        let raw_op = op;
        let op = check!(boundary::op(op));
        let Some(op) = ScanOp::from_reduce_op(op) else {
            return fail(
                PARFOR_ERR_INVALID_ARGUMENT,
                format!(
                    "argument `op` is {raw_op} ({}): parfor_scan takes PARFOR_SUM, PARFOR_PROD, \
                     PARFOR_MIN, PARFOR_MAX, PARFOR_BIT_AND, PARFOR_BIT_OR, PARFOR_BIT_XOR or \
                     PARFOR_NAN_SUM",
                    op.c_name()
                ),
            );
        };
        if !op.accepts(dtype) {
            return fail(
                PARFOR_ERR_INVALID_ARGUMENT,
                format!(
                    "{op:?} scan is not defined for {}: bitwise operators take integer dtypes",
                    dtype.c_name()
                ),
            );
        }
        if flags & !PARFOR_SCAN_EXCLUSIVE != 0 {
            return fail(
                PARFOR_ERR_INVALID_ARGUMENT,
                format!(
                    "argument `flags` is {flags:#x}: only PARFOR_SCAN_EXCLUSIVE (1) is defined"
                ),
            );
        }
        let exclusive = flags & PARFOR_SCAN_EXCLUSIVE != 0;
        // SAFETY: the caller passes NULL or a valid parfor_options.
        let opts = check!(unsafe { boundary::options(opts) });
        with_dtype!(dtype, T => {
            // Validates length and alignment of `data` (the slice is not kept: with
            // out == data the buffer is written through `out`).
            // SAFETY: the caller passes `len` readable elements of `dtype` at `data`.
            check!(unsafe { boundary::buffer::<T>(data, len, dtype, "data") });
            // SAFETY: only the checks (NULL, overflow, alignment) of `out` are used here.
            check!(unsafe { boundary::buffer::<T>(out, len, dtype, "out") });
            let bytes = len * dtype.size();
            let in_place = data == out.cast_const();
            if !in_place && overlaps(data, out, bytes) {
                return fail(
                    PARFOR_ERR_INVALID_ARGUMENT,
                    format!(
                        "arguments `data` ({data:p}) and `out` ({out:p}) overlap over {len} \
                         elements of {} bytes: out must equal data or not overlap it",
                        dtype.size()
                    ),
                );
            }
            let result = if in_place {
                // SAFETY: `out` holds `len` writable elements (caller), checked for NULL,
                // size and alignment above; nothing else uses it during the call.
                let buf = unsafe { std::slice::from_raw_parts_mut(out.cast::<T>(), len) };
                if len == 0 {
                    Ok(())
                } else {
                    crate::scan::scan_in_place(buf, op, exclusive, &opts)
                }
            } else {
                // SAFETY: as above, for `data` (read) and `out` (written), which do not
                // overlap (checked).
                let src = unsafe { std::slice::from_raw_parts(data.cast::<T>(), len) };
                // SAFETY: as above.
                let dst = unsafe { std::slice::from_raw_parts_mut(out.cast::<T>(), len) };
                crate::scan::scan(src, dst, op, exclusive, &opts)
            };
            status_of(result.map_err(Error::widen), "scan")
        })
    })
}

/// PARFOR_OK or the failure's status with its message recorded.
pub(crate) fn status_of(result: Result<(), Error<i32>>, what: &str) -> parfor_status {
    match result {
        Ok(()) => PARFOR_OK,
        Err(e) => {
            let (status, message) = super::status::from_error(e, what);
            fail(status, message)
        }
    }
}
