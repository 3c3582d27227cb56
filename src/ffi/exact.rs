//! The C ABI of the exact sum: a partial sum as plain words that can cross processes
//! (`parfor_exact_state`), the functions that extend, merge and round it, and the exact
//! dot product. The algorithm lives in `crate::reduce::exact`; this module validates,
//! converts and catches panics, as the rest of `ffi` does.

use std::ffi::c_void;

use super::boundary::{self, check, fail, guard};
use super::finish;
use super::status::parfor_status::{self, *};
use super::types::{parfor_options, RawDtype};
use crate::dtype::DType;
use crate::error::Error;
use crate::reduce::exact::{self, ExactState};

/// Number of int64_t words in a parfor_exact_state.
pub const PARFOR_EXACT_STATE_WORDS: usize = 69;

/// A partial exact sum (see PARFOR_SUM_EXACT): it can be extended with
/// parfor_exact_accumulate and parfor_exact_accumulate_dot, merged with
/// parfor_exact_merge in any order and grouping, and rounded with parfor_exact_result,
/// always with the same result as one exact sum of all the values. It is plain data,
/// sizeof(parfor_exact_state) = 8 * PARFOR_EXACT_STATE_WORDS bytes, 8-byte aligned, so
/// it can be copied, written to a file or sent to another process (as
/// PARFOR_EXACT_STATE_WORDS MPI_INT64_T, or as bytes) between machines of the same
/// byte order.
///
/// Layout (version 1), native-endian int64_t words:
/// - words[0]: the tag 0x5041524645580001 ("PARFEX", layout version 1);
/// - words[1]: flags: bit 0 a +inf was added, bit 1 a -inf, bit 2 a NaN, bit 3 some
///   value, bit 4 some value other than -0.0; the other bits are 0;
/// - words[2 + k], k = 0..66: the exact sum of the finite values, an integer multiple
///   of 2^-1074, in two's complement chunks: the sum is the sum over k of
///   words[2 + k] * 2^(32k - 1074); words[2..67] are each in 0..2^32-1 and words[68]
///   is signed, strictly within +-2^62 (so a state holds sums below 2^1100).
///
/// This form is unique: equal sums give equal bytes. Every function that reads a state
/// checks all of the above and rejects anything else (a state never initialised, from
/// another layout version or byte order, or corrupted in transit) with
/// PARFOR_ERR_INVALID_ARGUMENT.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct parfor_exact_state {
    /// The words described above.
    pub words: [i64; PARFOR_EXACT_STATE_WORDS],
}

/// sizeof(parfor_exact_state), for bindings that cannot read the header (e.g. ctypes).
#[no_mangle]
pub extern "C" fn parfor_exact_state_size() -> usize {
    std::mem::size_of::<parfor_exact_state>()
}

/// Sets *st to the empty sum. Errors: PARFOR_ERR_NULL_ARGUMENT (st),
/// PARFOR_ERR_MISALIGNED (st not 8-byte aligned).
#[no_mangle]
pub unsafe extern "C" fn parfor_exact_init(st: *mut parfor_exact_state) -> parfor_status {
    guard("parfor_exact_init", || {
        let st = check!(state_ptr(st, "st"));
        // SAFETY: non-NULL and aligned (checked); the caller passes a writable state.
        unsafe { write_state(st, &ExactState::new()) };
        PARFOR_OK
    })
}

/// Adds the `len` values of type `dtype` (PARFOR_F32 or PARFOR_F64) at `data` to *st,
/// exactly, using the team as `opts` says (NULL: defaults). *st is changed only on
/// success. Errors: PARFOR_ERR_NULL_ARGUMENT (st, data), PARFOR_ERR_MISALIGNED (st,
/// data), PARFOR_ERR_INVALID_ARGUMENT (dtype not a float type, len * element size
/// overflow, options, *st not a valid state, or the sum would leave the state's range).
#[no_mangle]
pub unsafe extern "C" fn parfor_exact_accumulate(
    st: *mut parfor_exact_state,
    data: *const c_void,
    len: usize,
    dtype: RawDtype,
    opts: *const parfor_options,
) -> parfor_status {
    let name = "parfor_exact_accumulate";
    guard(name, || {
        let st = check!(state_ptr(st, "st"));
        let dtype = check!(float_dtype(dtype, name));
        // SAFETY: the caller passes NULL or a valid parfor_options.
        let opts = check!(unsafe { boundary::options(opts) });
        // SAFETY: `st` is non-NULL and aligned (checked) and points to a readable state.
        let mut state = check!(unsafe { read_state(st, "st") });
        with_float!(dtype, T => {
            // SAFETY: the caller passes `len` readable elements of `dtype` at `data`.
            let data = check!(unsafe { boundary::buffer::<T>(data, len, dtype.into(), "data") });
            let result = state.add_slice(data, &opts).map_err(Error::widen);
            // SAFETY: `st` is non-NULL, aligned and writable; `data` is no longer used.
            finish(result, "exact sum", |()| unsafe { write_state(st, &state) })
        })
    })
}

/// Adds the `len` products a[i] * b[i] (type `dtype`, PARFOR_F32 or PARFOR_F64) to *st,
/// exactly for f32, and for f64 while no product overflows or falls below about
/// 2^-969 in magnitude (see parfor_dot_exact). *st is changed only on success.
/// Errors as parfor_exact_accumulate, for `a` and `b`.
#[no_mangle]
pub unsafe extern "C" fn parfor_exact_accumulate_dot(
    st: *mut parfor_exact_state,
    a: *const c_void,
    b: *const c_void,
    len: usize,
    dtype: RawDtype,
    opts: *const parfor_options,
) -> parfor_status {
    let name = "parfor_exact_accumulate_dot";
    guard(name, || {
        let st = check!(state_ptr(st, "st"));
        let dtype = check!(float_dtype(dtype, name));
        // SAFETY: the caller passes NULL or a valid parfor_options.
        let opts = check!(unsafe { boundary::options(opts) });
        // SAFETY: `st` is non-NULL and aligned (checked) and points to a readable state.
        let mut state = check!(unsafe { read_state(st, "st") });
        with_float!(dtype, T => {
            // SAFETY: the caller passes `len` readable elements of `dtype` at `a` and `b`.
            let a = check!(unsafe { boundary::buffer::<T>(a, len, dtype.into(), "a") });
            // SAFETY: as above.
            let b = check!(unsafe { boundary::buffer::<T>(b, len, dtype.into(), "b") });
            let result = state.add_dot(a, b, &opts).map_err(Error::widen);
            // SAFETY: `st` is non-NULL, aligned and writable; `a` and `b` are no longer
            // used.
            finish(result, "exact dot", |()| unsafe { write_state(st, &state) })
        })
    })
}

/// *acc = *acc + *other, exactly (acc and other may be the same state). Merging is
/// commutative and associative, so states can be combined in any order, for example by
/// an MPI reduction with a user-defined op. *acc is changed only on success.
/// Errors: PARFOR_ERR_NULL_ARGUMENT (acc, other), PARFOR_ERR_MISALIGNED (acc, other),
/// PARFOR_ERR_INVALID_ARGUMENT (either is not a valid state, or the sum would leave the
/// state's range).
#[no_mangle]
pub unsafe extern "C" fn parfor_exact_merge(
    acc: *mut parfor_exact_state,
    other: *const parfor_exact_state,
) -> parfor_status {
    guard("parfor_exact_merge", || {
        let acc = check!(state_ptr(acc, "acc"));
        let other = check!(state_ptr(other, "other"));
        // SAFETY: non-NULL and aligned (checked); the caller passes readable states.
        let mut sum = check!(unsafe { read_state(acc, "acc") });
        // SAFETY: as above.
        let other = check!(unsafe { read_state(other, "other") });
        let result = sum.merge(&other).map_err(Error::widen);
        // SAFETY: `acc` is non-NULL, aligned and writable; both states were copied out.
        finish(result, "exact merge", |()| unsafe {
            write_state(acc, &sum)
        })
    })
}

/// Writes the sum held by *st, correctly rounded (to nearest, ties to even) to
/// `dtype` (PARFOR_F32 or PARFOR_F64), to *out: a NaN or both infinities added give
/// NaN, else an infinity added gives itself; a finite sum beyond the type's range
/// gives +-inf; an exact zero is -0.0 when every value added was -0.0, else +0.0 (the
/// empty sum is +0.0). The same state can be rounded to either type. *out (which
/// need not be aligned) is written only on success. Errors: PARFOR_ERR_NULL_ARGUMENT
/// (st, out), PARFOR_ERR_MISALIGNED (st), PARFOR_ERR_INVALID_ARGUMENT (dtype not a
/// float type, *st not a valid state).
#[no_mangle]
pub unsafe extern "C" fn parfor_exact_result(
    st: *const parfor_exact_state,
    dtype: RawDtype,
    out: *mut c_void,
) -> parfor_status {
    let name = "parfor_exact_result";
    guard(name, || {
        let st = check!(state_ptr(st, "st"));
        check!(boundary::non_null(out, "out"));
        let dtype = check!(float_dtype(dtype, name));
        // SAFETY: non-NULL and aligned (checked); the caller passes a readable state.
        let state = check!(unsafe { read_state(st, "st") });
        with_float!(dtype, T => {
            let value: T = state.result();
            // SAFETY: `out` is non-NULL and points to storage for one `dtype` element.
            unsafe { out.cast::<T>().write_unaligned(value) };
            PARFOR_OK
        })
    })
}

/// Exact dot product: the sum over i of a[i] * b[i], correctly rounded to `dtype`
/// (PARFOR_F32 or PARFOR_F64), written to *out; independent of the team size and
/// schedule, special values as parfor_exact_result. f32 inputs are exact always (each
/// product is exact in double). For f64 each product is split exactly into its rounded
/// value and its rounding error, with a fused multiply-add where the CPU has one, else
/// by Dekker's splitting; this is exact unless a product overflows (it then counts as
/// +-inf, as in IEEE arithmetic) or is below about 2^-969 in magnitude (its rounding
/// error is then itself rounded), and without FMA unless a factor exceeds 2^995 in
/// magnitude (its product's rounding error is then dropped). *out is written only on
/// success. Errors as parfor_dot, and PARFOR_ERR_INVALID_ARGUMENT for a dtype that is
/// not a float type.
#[no_mangle]
pub unsafe extern "C" fn parfor_dot_exact(
    a: *const c_void,
    b: *const c_void,
    len: usize,
    dtype: RawDtype,
    opts: *const parfor_options,
    out: *mut c_void,
) -> parfor_status {
    let name = "parfor_dot_exact";
    guard(name, || {
        check!(boundary::non_null(a, "a"));
        check!(boundary::non_null(b, "b"));
        check!(boundary::non_null(out, "out"));
        let dtype = check!(float_dtype(dtype, name));
        // SAFETY: the caller passes NULL or a valid parfor_options.
        let opts = check!(unsafe { boundary::options(opts) });
        with_float!(dtype, T => {
            // SAFETY: the caller passes `len` readable elements of `dtype` at `a` and `b`.
            let a = check!(unsafe { boundary::buffer::<T>(a, len, dtype.into(), "a") });
            // SAFETY: as above.
            let b = check!(unsafe { boundary::buffer::<T>(b, len, dtype.into(), "b") });
            let value: T = exact::dot(a, b, &opts);
            // SAFETY: `out` is non-NULL and points to storage for one `dtype` element.
            unsafe { out.cast::<T>().write_unaligned(value) };
            PARFOR_OK
        })
    })
}

/// The float types the exact functions take.
#[derive(Clone, Copy)]
enum FloatDtype {
    F32,
    F64,
}

impl From<FloatDtype> for DType {
    fn from(d: FloatDtype) -> DType {
        match d {
            FloatDtype::F32 => DType::F32,
            FloatDtype::F64 => DType::F64,
        }
    }
}

/// Runs `$body` with `$T` bound to the Rust type of a [`FloatDtype`].
macro_rules! with_float {
    ($dt:expr, $T:ident => $body:expr) => {
        match $dt {
            FloatDtype::F32 => {
                type $T = f32;
                $body
            }
            FloatDtype::F64 => {
                type $T = f64;
                $body
            }
        }
    };
}
use with_float;

/// A dtype argument that must be PARFOR_F32 or PARFOR_F64.
fn float_dtype(raw: RawDtype, function: &str) -> Result<FloatDtype, parfor_status> {
    match boundary::dtype(raw)? {
        DType::F32 => Ok(FloatDtype::F32),
        DType::F64 => Ok(FloatDtype::F64),
        other => Err(fail(
            PARFOR_ERR_INVALID_ARGUMENT,
            format!(
                "{function} takes PARFOR_F32 or PARFOR_F64, not {}",
                other.c_name()
            ),
        )),
    }
}

/// A state pointer argument: non-NULL and aligned for its int64_t words.
fn state_ptr<P>(st: *const P, name: &str) -> Result<*mut parfor_exact_state, parfor_status> {
    let st = boundary::non_null(st, name)?;
    let align = std::mem::align_of::<parfor_exact_state>();
    if (st as usize) % align != 0 {
        return Err(fail(
            PARFOR_ERR_MISALIGNED,
            format!("argument `{name}` ({st:p}) is not aligned to {align} bytes as parfor_exact_state requires"),
        ));
    }
    Ok(st.cast_mut().cast())
}

/// Copies a state out of C memory and validates it.
///
/// # Safety
/// `st` must be non-NULL, aligned, and point to `sizeof(parfor_exact_state)` readable
/// bytes.
unsafe fn read_state(
    st: *const parfor_exact_state,
    name: &str,
) -> Result<ExactState, parfor_status> {
    // SAFETY: the caller's contract; every bit pattern is a valid array of i64.
    let raw = unsafe { st.read() };
    ExactState::from_words(&raw.words).map_err(|why| {
        fail(
            PARFOR_ERR_INVALID_ARGUMENT,
            format!("argument `{name}` is not a valid parfor_exact_state: {why}"),
        )
    })
}

/// Stores `state` in its C layout.
///
/// # Safety
/// `st` must be non-NULL, aligned, and point to `sizeof(parfor_exact_state)` writable
/// bytes.
unsafe fn write_state(st: *mut parfor_exact_state, state: &ExactState) {
    let words = state.to_words();
    // SAFETY: the caller's contract.
    unsafe { st.write(parfor_exact_state { words }) };
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn layout_matches_the_core() {
        assert_eq!(PARFOR_EXACT_STATE_WORDS, exact::STATE_WORDS);
        assert_eq!(parfor_exact_state_size(), 8 * PARFOR_EXACT_STATE_WORDS);
        assert_eq!(std::mem::align_of::<parfor_exact_state>(), 8);
    }

    #[test]
    fn f32_results_come_from_the_same_state() {
        let mut st = parfor_exact_state {
            words: [0; PARFOR_EXACT_STATE_WORDS],
        };
        // SAFETY: `st` is a live, aligned state; the data outlives the calls.
        unsafe {
            assert_eq!(parfor_exact_init(&mut st), PARFOR_OK);
            // 2^-30, spelled exactly (Miri perturbs powi's results on purpose).
            let tiny = f32::from_bits((127 - 30) << 23);
            let data = [1.0f32, tiny, -1.0];
            assert_eq!(
                parfor_exact_accumulate(&mut st, data.as_ptr().cast(), 3, 0, std::ptr::null()),
                PARFOR_OK
            );
            let mut out = 0.0f32;
            assert_eq!(
                parfor_exact_result(&st, 0, (&mut out as *mut f32).cast()),
                PARFOR_OK
            );
            assert_eq!(out, tiny);
        }
    }
}
