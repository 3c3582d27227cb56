//! The C ABI. Every exported function is written out here literally, so that cbindgen
//! sees it, and its body runs inside [`boundary::guard`]: arguments are validated and
//! converted, the safe core is called, and outputs are written only on success. No
//! algorithm lives in this module.
//!
//! The doc comments of the items in this module are the C reference: they are copied
//! into `include/parfor.h`.
#![allow(clippy::missing_safety_doc, non_camel_case_types)]

pub mod array;
pub mod boundary;
pub mod exact;
pub mod scan;
pub mod sort;
pub mod status;
pub mod types;

use std::ffi::c_void;
use std::os::raw::{c_char, c_int};

pub use self::array::{
    parfor_argreduce_array, parfor_array, parfor_moments_array, parfor_reduce_array,
    PARFOR_ALL_AXES, PARFOR_MAX_DIMS, PARFOR_MOMENTS_SKIP_NAN,
};
use boundary::{check, fail, guard, guard_callbacks, guard_value, UserCtx};
pub use scan::{parfor_scan, PARFOR_SCAN_EXCLUSIVE};
pub use sort::*;
pub use status::parfor_status;
use status::parfor_status::*;
pub use types::*;

use crate::dtype::with_dtype;
use crate::error::Error;

/// Loop body: called with disjoint sub-ranges [begin, end) of the loop's range, from
/// several threads at once (the calling thread included). Return 0 to go on; nonzero
/// cancels the loop: ranges not yet handed to a thread are skipped and the call
/// returns PARFOR_ERR_CALLBACK. With the static schedule and chunk 0 (the default),
/// each thread is handed its one range when the loop starts, as in OpenMP; with a
/// chunk or a dynamic or guided schedule, a thread takes its next range only while
/// no body has failed.
/// A body may end its thread with pthread_exit or be cancelled at a cancellation
/// point: the unwind passes through parfor (which waits, on the calling thread, for
/// the call's other parts first); on a worker thread the call then returns
/// PARFOR_ERR_RUNTIME and a new worker takes its place. The same holds for the
/// callbacks of parfor_reduce_with and parfor_sort_with. Not with PARFOR_OMP_TEAM
/// parts on OpenMP's threads, where OpenMP forbids it. No longjmp out of a callback.
pub type parfor_body =
    Option<unsafe extern "C-unwind" fn(ctx: *mut c_void, begin: usize, end: usize) -> c_int>;

/// Fold of a user-defined reduction: fold the iterations [begin, end) into `acc`, an
/// accumulator of `acc_size` bytes (64-byte aligned) that starts as a copy of the
/// identity. Return 0 to go on; nonzero cancels the reduction.
pub type parfor_fold = Option<
    unsafe extern "C-unwind" fn(
        ctx: *mut c_void,
        begin: usize,
        end: usize,
        acc: *mut c_void,
    ) -> c_int,
>;

/// Combine of a user-defined reduction: acc = acc (+) other. Must be associative
/// (it is applied in a fixed tree, always with the earlier range on the left), with
/// the identity as neutral element; it need not be commutative.
pub type parfor_combine =
    Option<unsafe extern "C-unwind" fn(ctx: *mut c_void, acc: *mut c_void, other: *const c_void)>;

/// Static text describing a status (for example "a required pointer argument was
/// NULL"). Never NULL; an unknown value gives "unknown parfor_status value".
#[no_mangle]
pub extern "C" fn parfor_status_message(s: RawStatus) -> *const c_char {
    let text = parfor_status::from_raw(s)
        .map(parfor_status::message)
        .unwrap_or(status::UNKNOWN_STATUS_MESSAGE);
    text.as_ptr().cast()
}

/// Detail of this thread's last failed call, e.g. "argument `data` is NULL". An empty
/// string when no call has failed on this thread. Never NULL; valid until the next
/// failing call on the same thread. Successful calls do not change it.
#[no_mangle]
pub extern "C" fn parfor_last_error() -> *const c_char {
    boundary::last_error_ptr()
}

/// The library version, "MAJOR.MINOR.PATCH". Static text, never NULL.
#[no_mangle]
pub extern "C" fn parfor_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Sets *opts to the defaults: num_threads = 0 (the runtime default), schedule =
/// PARFOR_SCHEDULE_AUTO, chunk = 0 (automatic), size = PARFOR_OPTIONS_MIN_SIZE.
/// It writes exactly the PARFOR_OPTIONS_MIN_SIZE bytes of the first published
/// struct, in this and every later version, so a program built against any header
/// is never overrun; fields added later keep their defaults unless the struct is
/// initialised with parfor_options_init_size, which new code should prefer.
/// NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn parfor_options_init(opts: *mut parfor_options) {
    if opts.is_null() {
        return;
    }
    let defaults = boundary::default_options(PARFOR_OPTIONS_MIN_SIZE);
    // SAFETY: non-NULL; the caller passes a writable struct of at least the first
    // published size, which is all this writes.
    unsafe {
        std::ptr::copy_nonoverlapping(
            (&defaults as *const parfor_options).cast::<u8>(),
            opts.cast::<u8>(),
            PARFOR_OPTIONS_MIN_SIZE,
        )
    }
}

/// Sets the `size` bytes at opts to the defaults for a struct of that size (pass
/// sizeof *opts): opts->size = size, every field this library knows to its default
/// (see parfor_options_init), and bytes of a newer header's struct beyond what this
/// library knows to zero. Writes nothing beyond `size` bytes, so a program built
/// against an older, smaller header is never overrun.
/// Errors: PARFOR_ERR_NULL_ARGUMENT (opts), PARFOR_ERR_INVALID_ARGUMENT (size below
/// PARFOR_OPTIONS_MIN_SIZE; nothing is written).
#[no_mangle]
pub unsafe extern "C" fn parfor_options_init_size(
    opts: *mut parfor_options,
    size: usize,
) -> parfor_status {
    guard("parfor_options_init_size", || {
        check!(boundary::non_null(opts, "opts"));
        if size < PARFOR_OPTIONS_MIN_SIZE {
            return fail(
                PARFOR_ERR_INVALID_ARGUMENT,
                format!(
                    "argument `size` is {size}, smaller than PARFOR_OPTIONS_MIN_SIZE = \
                     {PARFOR_OPTIONS_MIN_SIZE}"
                ),
            );
        }
        let defaults = boundary::default_options(size);
        let known = size.min(boundary::OPTIONS_SIZE);
        // SAFETY: the caller passes `size` writable bytes at opts; `known` <= both
        // `size` and the size of `defaults`, and the tail written is within `size`.
        unsafe {
            let dst = opts.cast::<u8>();
            std::ptr::copy_nonoverlapping(
                (&defaults as *const parfor_options).cast::<u8>(),
                dst,
                known,
            );
            std::ptr::write_bytes(dst.add(known), 0, size - known);
        }
        PARFOR_OK
    })
}

/// Runs body(ctx, b, e) over disjoint sub-ranges covering [begin, end): every index is
/// given to exactly one body call. The calling thread takes part. begin == end is a
/// no-op returning PARFOR_OK; begin > end is PARFOR_ERR_INVALID_ARGUMENT.
/// The sub-ranges follow opts->schedule and opts->chunk (see parfor_schedule).
/// Inside the body, parfor_thread_index() gives 0..team-1. A call made from inside a
/// body runs on that thread alone (as a nested OpenMP region with max-active-levels 1).
/// The parts run on parfor's own threads or, while those are crowded out by a
/// loaded OpenMP runtime's spinning workers, on that runtime's threads
/// (PARFOR_OMP_TEAM=auto|always|never; body calls are the same either way).
/// A body returning nonzero stops further ranges from being started; the call returns
/// PARFOR_ERR_CALLBACK and parfor_last_error() names the failing range.
/// Errors: PARFOR_ERR_NULL_ARGUMENT (body), PARFOR_ERR_INVALID_ARGUMENT (range,
/// options), PARFOR_ERR_CALLBACK, PARFOR_ERR_RUNTIME.
#[no_mangle]
pub unsafe extern "C-unwind" fn parfor_for(
    begin: usize,
    end: usize,
    opts: *const parfor_options,
    body: parfor_body,
    ctx: *mut c_void,
) -> parfor_status {
    guard_callbacks(
        "parfor_for",
        || {
            let Some(body) = body else {
                return Err(fail(PARFOR_ERR_NULL_ARGUMENT, "argument `body` is NULL"));
            };
            let range = boundary::range(begin, end)?;
            // SAFETY: the caller passes NULL or a valid parfor_options.
            let opts = unsafe { boundary::options(opts) }?;
            Ok((body, range, opts))
        },
        |(body, range, opts)| {
            let ctx = UserCtx(ctx);
            let result = crate::parallel_for::parallel_for_copy(range, &opts, move |r| {
                // SAFETY: `body` is the caller's function for this ctx; the header
                // documents that it is called concurrently with disjoint ranges.
                let code = unsafe { body(ctx.get(), r.start, r.end) };
                if code == 0 {
                    Ok(())
                } else {
                    Err(code)
                }
            });
            finish(result, "body", |()| {})
        },
    )
}

/// Reduces `len` elements of type `dtype` at `data` with `op` and writes the result,
/// of type `dtype`, to *out. See parfor_op for each operator's semantics and empty
/// result. Floating-point results are bitwise identical for every team size and
/// schedule (fixed partition, fixed combine tree). *out is written only on success.
/// Errors: PARFOR_ERR_NULL_ARGUMENT (data, out), PARFOR_ERR_INVALID_ARGUMENT (dtype,
/// op, op not defined for dtype, len * element size overflow, options),
/// PARFOR_ERR_MISALIGNED (data), PARFOR_ERR_EMPTY (MIN/MAX of zero elements).
#[no_mangle]
pub unsafe extern "C" fn parfor_reduce(
    data: *const c_void,
    len: usize,
    dtype: RawDtype,
    op: RawOp,
    opts: *const parfor_options,
    out: *mut c_void,
) -> parfor_status {
    guard("parfor_reduce", || {
        check!(boundary::non_null(out, "out"));
        let dtype = check!(boundary::dtype(dtype));
        let op = check!(boundary::op(op));
        // SAFETY: the caller passes NULL or a valid parfor_options.
        let opts = check!(unsafe { boundary::options(opts) });
        with_dtype!(dtype, T => {
            // SAFETY: the caller passes `len` readable elements of `dtype` at `data`.
            let data = check!(unsafe { boundary::buffer::<T>(data, len, dtype, "data") });
            let result = crate::reduce::reduce(data, op, &opts).map_err(Error::widen);
            // SAFETY: `out` is non-NULL (checked) and points to writable storage for one
            // element of `dtype`; it need not be aligned.
            finish(result, "reduction", |v| unsafe { out.cast::<T>().write_unaligned(v) })
        })
    })
}

/// Dot product: sum over i of a[i] * b[i], in type `dtype`, written to *out (0 for
/// len == 0). Integers wrap. Floats are bitwise reproducible as for PARFOR_SUM.
/// Errors as parfor_reduce, for `a` and `b`.
#[no_mangle]
pub unsafe extern "C" fn parfor_dot(
    a: *const c_void,
    b: *const c_void,
    len: usize,
    dtype: RawDtype,
    opts: *const parfor_options,
    out: *mut c_void,
) -> parfor_status {
    guard("parfor_dot", || {
        check!(boundary::non_null(a, "a"));
        check!(boundary::non_null(b, "b"));
        check!(boundary::non_null(out, "out"));
        let dtype = check!(boundary::dtype(dtype));
        // SAFETY: the caller passes NULL or a valid parfor_options.
        let opts = check!(unsafe { boundary::options(opts) });
        with_dtype!(dtype, T => {
            // SAFETY: the caller passes `len` readable elements of `dtype` at `a` and `b`.
            let a = check!(unsafe { boundary::buffer::<T>(a, len, dtype, "a") });
            // SAFETY: as above.
            let b = check!(unsafe { boundary::buffer::<T>(b, len, dtype, "b") });
            let result = crate::reduce::dot(a, b, &opts).map_err(Error::widen);
            // SAFETY: `out` is non-NULL and points to storage for one element of `dtype`.
            finish(result, "dot", |v| unsafe { out.cast::<T>().write_unaligned(v) })
        })
    })
}

/// Index of the smallest element (the first among equal ones; the first NaN if there
/// is one, as numpy). Errors as parfor_reduce; PARFOR_ERR_EMPTY when len == 0.
#[no_mangle]
pub unsafe extern "C" fn parfor_argmin(
    data: *const c_void,
    len: usize,
    dtype: RawDtype,
    opts: *const parfor_options,
    index: *mut usize,
) -> parfor_status {
    // SAFETY: forwarded with the caller's guarantees.
    unsafe { arg_extreme("parfor_argmin", data, len, dtype, opts, index, false) }
}

/// Index of the largest element (the first among equal ones; the first NaN if there
/// is one, as numpy). Errors as parfor_reduce; PARFOR_ERR_EMPTY when len == 0.
#[no_mangle]
pub unsafe extern "C" fn parfor_argmax(
    data: *const c_void,
    len: usize,
    dtype: RawDtype,
    opts: *const parfor_options,
    index: *mut usize,
) -> parfor_status {
    // SAFETY: forwarded with the caller's guarantees.
    unsafe { arg_extreme("parfor_argmax", data, len, dtype, opts, index, true) }
}

/// Shared body of parfor_argmin and parfor_argmax.
unsafe fn arg_extreme(
    name: &str,
    data: *const c_void,
    len: usize,
    dtype: RawDtype,
    opts: *const parfor_options,
    index: *mut usize,
    max: bool,
) -> parfor_status {
    guard(name, || {
        check!(boundary::non_null(index, "index"));
        let dtype = check!(boundary::dtype(dtype));
        // SAFETY: the caller passes NULL or a valid parfor_options.
        let opts = check!(unsafe { boundary::options(opts) });
        with_dtype!(dtype, T => {
            // SAFETY: the caller passes `len` readable elements of `dtype` at `data`.
            let data = check!(unsafe { boundary::buffer::<T>(data, len, dtype, "data") });
            let result = if max {
                crate::reduce::argmax(data, &opts)
            } else {
                crate::reduce::argmin(data, &opts)
            };
            // SAFETY: `index` is non-NULL and points to a writable size_t.
            finish(result.map_err(Error::widen), "reduction", |i| unsafe {
                index.write_unaligned(i)
            })
        })
    })
}

/// User-defined reduction over the iterations [begin, end), like OpenMP's
/// `declare reduction` or a TBB reduce body. The range is cut into a fixed set of
/// blocks that depends only on end - begin and acc_size (never on the team size or
/// schedule); each block gets its own accumulator, a copy of the `acc_size` bytes at
/// `identity`, and is folded with fold(ctx, b, e, acc); the block accumulators are then
/// combined with combine(ctx, acc, other) in a fixed pairwise tree, earlier blocks on
/// the left. The result is therefore bitwise identical for every team size and
/// schedule. The result is copied to the `acc_size` bytes at `out` (which may be the
/// identity) only on success; begin == end copies the identity.
/// Errors: PARFOR_ERR_NULL_ARGUMENT (identity, fold, combine, out),
/// PARFOR_ERR_INVALID_ARGUMENT (begin > end, acc_size == 0 or too large, options),
/// PARFOR_ERR_CALLBACK (a fold returned nonzero), PARFOR_ERR_RUNTIME (the block
/// accumulators could not be allocated; nothing is written).
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C-unwind" fn parfor_reduce_with(
    begin: usize,
    end: usize,
    identity: *const c_void,
    acc_size: usize,
    opts: *const parfor_options,
    fold: parfor_fold,
    combine: parfor_combine,
    ctx: *mut c_void,
    out: *mut c_void,
) -> parfor_status {
    guard_callbacks(
        "parfor_reduce_with",
        || {
            boundary::non_null(identity, "identity")?;
            let Some(fold) = fold else {
                return Err(fail(PARFOR_ERR_NULL_ARGUMENT, "argument `fold` is NULL"));
            };
            let Some(combine) = combine else {
                return Err(fail(PARFOR_ERR_NULL_ARGUMENT, "argument `combine` is NULL"));
            };
            boundary::non_null(out, "out")?;
            if acc_size == 0 || acc_size > isize::MAX as usize / 2 {
                return Err(fail(
                    PARFOR_ERR_INVALID_ARGUMENT,
                    format!("argument `acc_size` is {acc_size}: it must be in 1..=PTRDIFF_MAX/2"),
                ));
            }
            let range = boundary::range(begin, end)?;
            // SAFETY: the caller passes NULL or a valid parfor_options.
            let opts = unsafe { boundary::options(opts) }?;
            Ok((fold, combine, range, opts))
        },
        |(fold, combine, range, opts)| {
            // The identity is read only while the blocks' accumulators are set, all
            // before `out` (which may be the identity) is written; reads of it from
            // several threads at once are what the header promises the caller.
            let identity = UserCtx(identity.cast_mut());
            let ctx = UserCtx(ctx);
            let result = crate::reduce::user::reduce_bytes(
                range,
                &opts,
                acc_size,
                move |acc| {
                    // SAFETY: the caller passes `acc_size` readable bytes at
                    // `identity`; `acc` is a fresh accumulator of at least acc_size
                    // bytes in the library's memory, so the two do not overlap.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            identity.get().cast::<u8>().cast_const(),
                            acc,
                            acc_size,
                        )
                    }
                },
                move |r, acc| {
                    // SAFETY: `acc` is a live, exclusive, 64-byte aligned buffer of
                    // acc_size bytes; fold is the caller's function for this ctx.
                    let code = unsafe { fold(ctx.get(), r.start, r.end, acc.cast()) };
                    if code == 0 {
                        Ok(())
                    } else {
                        Err(code)
                    }
                },
                |acc, other| {
                    // SAFETY: two distinct live accumulators of acc_size bytes.
                    unsafe { combine(ctx.get(), acc.cast(), other.cast()) }
                },
                |bytes| {
                    // SAFETY: `out` is non-NULL with acc_size writable bytes; `bytes`
                    // (acc_size of them) are the library's own accumulator, so the
                    // two do not overlap.
                    unsafe {
                        std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.cast::<u8>(), acc_size)
                    }
                },
            );
            finish(result, "fold", |()| ())
        },
    )
}

/// Team size the next call from this thread will use with num_threads == 0: the value
/// of parfor_set_num_threads, else PARFOR_NUM_THREADS, else OMP_NUM_THREADS (its first
/// value), else the CPUs this process may run on (affinity mask and cgroup quota).
/// Inside a body, or inside an active OpenMP parallel region without PARFOR_NESTED=1,
/// this is 1.
#[no_mangle]
pub extern "C" fn parfor_num_threads() -> usize {
    guard_value(1, crate::runtime::num_threads)
}

/// Sets the default team size for later calls from every thread; 0 restores the
/// default from the environment. Errors: PARFOR_ERR_INVALID_ARGUMENT above
/// PARFOR_MAX_THREADS.
#[no_mangle]
pub extern "C" fn parfor_set_num_threads(n: usize) -> parfor_status {
    guard(
        "parfor_set_num_threads",
        || match crate::runtime::set_num_threads(n) {
            Ok(()) => PARFOR_OK,
            Err(e) => fail(PARFOR_ERR_INVALID_ARGUMENT, e),
        },
    )
}

/// Inside a body, fold or combine: this thread's index in the team, 0..team-1 (the
/// calling thread is 0), like omp_get_thread_num. Outside: 0.
#[no_mangle]
pub extern "C" fn parfor_thread_index() -> usize {
    guard_value(0, crate::runtime::thread_index)
}

/// Maps a core result to a status: on success runs `write` with the value and returns
/// PARFOR_OK; on failure records the detail and returns the status.
fn finish<T>(result: Result<T, Error<i32>>, what: &str, write: impl FnOnce(T)) -> parfor_status {
    match result {
        Ok(v) => {
            write(v);
            PARFOR_OK
        }
        Err(e) => {
            let (status, message) = status::from_error(e, what);
            fail(status, message)
        }
    }
}

/// The kernel instruction-set level in use: "avx512", "avx2" or "baseline" (the CPU's
/// best, or the lower one PARFOR_ISA names). Static text, never NULL.
#[no_mangle]
pub extern "C" fn parfor_isa() -> *const c_char {
    guard_value(c"baseline".as_ptr(), || {
        crate::kernels::isa().c_name().as_ptr()
    })
}
