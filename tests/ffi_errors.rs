//! Every bad input issue 2 names, through the exported C functions called from Rust:
//! NULL pointers, unknown enum integers, `len * element size` overflow, misaligned
//! buffers, `acc_size == 0`, a too-small `opts->size`, too many threads, begin > end,
//! an operator not defined for the dtype, MIN/MAX/argmin/argmax of zero elements and
//! callbacks that return nonzero.
//!
//! For every case: the exact status, the specific text in `parfor_last_error()`, the
//! output (`*out`, `*index`, the `parfor_reduce_with` bytes) left as it was, and the
//! runtime still usable afterwards. Plus the status messages, the version, NULL
//! options and the thread-local last error.

use std::ffi::{c_void, CStr};
use std::os::raw::c_int;
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use parfor::ffi::parfor_status::*;
use parfor::ffi::*;

/// Byte the output is filled with before each failing call.
const SENTINEL: u8 = 0xA5;

/// Output storage: aligned for every dtype and for size_t, and large enough for the
/// widest output, so a stray write anywhere in it is seen.
#[repr(C, align(64))]
struct Out([u8; 256]);

/// Input storage for the buffer-taking functions: aligned to 64 bytes, so that an
/// offset of k bytes gives a pointer misaligned by exactly k for every dtype. Eight
/// elements of every dtype (at most 64 bytes) fit after any offset below 64.
#[repr(C, align(64))]
struct Data([u8; 256]);

/// Small known values (every byte 1): nonzero in every dtype, no NaN.
static DATA: Data = Data([1; 256]);

const DTYPES: [parfor_dtype; 10] = [
    parfor_dtype::PARFOR_F32,
    parfor_dtype::PARFOR_F64,
    parfor_dtype::PARFOR_I8,
    parfor_dtype::PARFOR_I16,
    parfor_dtype::PARFOR_I32,
    parfor_dtype::PARFOR_I64,
    parfor_dtype::PARFOR_U8,
    parfor_dtype::PARFOR_U16,
    parfor_dtype::PARFOR_U32,
    parfor_dtype::PARFOR_U64,
];

/// Integers C may pass where the header says an enum, outside every enum here.
// 10 is one past the last dtype; 13 one past the last operator (10..=12 are the
// NaN-skipping operators, valid ops but not valid dtypes or schedules).
const UNKNOWN_ENUM_VALUES: [c_int; 6] = [-1, 10, 13, 1000, c_int::MAX, c_int::MIN];

fn size_of_dtype(d: parfor_dtype) -> usize {
    use parfor_dtype::*;
    match d {
        PARFOR_I8 | PARFOR_U8 => 1,
        PARFOR_I16 | PARFOR_U16 => 2,
        PARFOR_F32 | PARFOR_I32 | PARFOR_U32 => 4,
        PARFOR_F64 | PARFOR_I64 | PARFOR_U64 => 8,
    }
}

/// The C spelling the library's messages use.
fn c_name(d: parfor_dtype) -> String {
    format!("{d:?}")
}

fn is_float(d: parfor_dtype) -> bool {
    matches!(d, parfor_dtype::PARFOR_F32 | parfor_dtype::PARFOR_F64)
}

fn last_error() -> String {
    // SAFETY: parfor_last_error returns a NUL-terminated string that stays valid until
    // the next failing call on this thread; it is copied out at once.
    unsafe { CStr::from_ptr(parfor_last_error()) }
        .to_str()
        .expect("last error is UTF-8")
        .to_owned()
}

fn default_options() -> parfor_options {
    let mut opts = parfor_options {
        size: 0,
        num_threads: 0,
        schedule: 0,
        chunk: 0,
    };
    // SAFETY: a valid, writable parfor_options.
    unsafe { parfor_options_init(&mut opts) };
    opts
}

fn options(num_threads: usize, schedule: parfor_schedule, chunk: usize) -> parfor_options {
    parfor_options {
        num_threads,
        schedule: schedule as c_int,
        chunk,
        ..default_options()
    }
}

/// Adds the length of every range to the AtomicUsize at ctx.
unsafe extern "C-unwind" fn count_body(ctx: *mut c_void, begin: usize, end: usize) -> c_int {
    // SAFETY: every caller in this file passes an AtomicUsize as ctx.
    let counter = unsafe { &*ctx.cast::<AtomicUsize>() };
    counter.fetch_add(end - begin, Ordering::Relaxed);
    0
}

/// Fold for a u64 accumulator: adds the indices of the range.
unsafe extern "C-unwind" fn sum_fold(
    _ctx: *mut c_void,
    begin: usize,
    end: usize,
    acc: *mut c_void,
) -> c_int {
    // SAFETY: the accumulator is acc_size = 8 bytes, 64-byte aligned (header contract).
    let acc = unsafe { &mut *acc.cast::<u64>() };
    *acc += (begin as u64..end as u64).sum::<u64>();
    0
}

unsafe extern "C-unwind" fn sum_combine(_ctx: *mut c_void, acc: *mut c_void, other: *const c_void) {
    // SAFETY: two distinct accumulators of 8 bytes, 64-byte aligned.
    unsafe { *acc.cast::<u64>() += *other.cast::<u64>() };
}

/// Fails on purpose after checking that a runtime call works: every case must
/// leave the library usable, for reductions and for loops on a team.
fn assert_usable(case: &str) {
    let data: [i32; 5] = [1, 2, 3, 4, 5];
    let mut out = 0i32;
    // SAFETY: five readable i32 and one writable i32.
    let st = unsafe {
        parfor_reduce(
            data.as_ptr().cast(),
            data.len(),
            parfor_dtype::PARFOR_I32 as c_int,
            parfor_op::PARFOR_SUM as c_int,
            null(),
            (&mut out as *mut i32).cast(),
        )
    };
    assert_eq!(
        (st, out),
        (PARFOR_OK, 15),
        "{case}: parfor_reduce after the failure"
    );
    let counter = AtomicUsize::new(0);
    let opts = options(2, parfor_schedule::PARFOR_SCHEDULE_DYNAMIC, 64);
    // SAFETY: count_body takes the AtomicUsize passed as ctx, which outlives the call.
    let st = unsafe {
        parfor_for(
            0,
            10_000,
            &opts,
            Some(count_body),
            (&counter as *const AtomicUsize).cast_mut().cast(),
        )
    };
    assert_eq!(st, PARFOR_OK, "{case}: parfor_for after the failure");
    assert_eq!(
        counter.load(Ordering::Relaxed),
        10_000,
        "{case}: parfor_for coverage"
    );
}

/// Leaves a last error that no case below produces, so that each case must replace it
/// (a stale message from an earlier case cannot pass for the right one).
fn prime_last_error() {
    let mut out = 0u8;
    // SAFETY: one readable byte and one writable byte; the dtype is rejected first.
    let st = unsafe {
        parfor_reduce(
            DATA.0.as_ptr().cast(),
            1,
            -12345,
            0,
            null(),
            (&mut out as *mut u8).cast(),
        )
    };
    assert_eq!(st, PARFOR_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("-12345"));
}

/// Runs one failing call with an output pointer to sentinel bytes, and checks the
/// status, that the last error contains every one of `texts`, that the output was
/// not written, and that the runtime still works.
fn expect_failure(
    case: &str,
    status: parfor_status,
    texts: &[&str],
    call: impl FnOnce(*mut c_void) -> parfor_status,
) {
    prime_last_error();
    let mut out = Box::new(Out([SENTINEL; 256]));
    let got = call(out.0.as_mut_ptr().cast());
    let message = last_error();
    assert_eq!(got, status, "{case}: status (last error {message:?})");
    for text in texts {
        assert!(
            message.contains(text),
            "{case}: last error {message:?} does not contain {text:?}"
        );
    }
    assert!(
        out.0.iter().all(|&b| b == SENTINEL),
        "{case}: the output was written on failure"
    );
    assert_usable(case);
}

/// The four functions that take typed buffers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum BufferApi {
    Reduce,
    Dot,
    Argmin,
    Argmax,
}

const BUFFER_APIS: [BufferApi; 4] = [
    BufferApi::Reduce,
    BufferApi::Dot,
    BufferApi::Argmin,
    BufferApi::Argmax,
];

/// Arguments of a buffer call; `valid()` is a call that succeeds, and each case
/// changes one field.
#[derive(Clone, Copy)]
struct BufferArgs {
    a: *const c_void,
    b: *const c_void,
    len: usize,
    dtype: c_int,
    op: c_int,
    opts: *const parfor_options,
}

impl BufferArgs {
    fn valid() -> Self {
        BufferArgs {
            a: DATA.0.as_ptr().cast(),
            b: DATA.0.as_ptr().cast(),
            len: 4,
            dtype: parfor_dtype::PARFOR_F64 as c_int,
            op: parfor_op::PARFOR_SUM as c_int,
            opts: null(),
        }
    }
}

/// Calls `api` with `args`, writing to `out` (an `Out`, so wide and aligned enough for
/// any result and for size_t).
fn call_buffer(api: BufferApi, args: BufferArgs, out: *mut c_void) -> parfor_status {
    let BufferArgs {
        a,
        b,
        len,
        dtype,
        op,
        opts,
    } = args;
    // SAFETY: the cases only pass pointers into DATA (256 readable bytes, enough for
    // every valid length used here), NULL, or lengths the library must reject before
    // reading; `out` is an `Out` or NULL.
    unsafe {
        match api {
            BufferApi::Reduce => parfor_reduce(a, len, dtype, op, opts, out),
            BufferApi::Dot => parfor_dot(a, b, len, dtype, opts, out),
            BufferApi::Argmin => parfor_argmin(a, len, dtype, opts, out.cast()),
            BufferApi::Argmax => parfor_argmax(a, len, dtype, opts, out.cast()),
        }
    }
}

/// The two functions that take callbacks over an index range.
#[derive(Clone, Copy, Debug, PartialEq)]
enum RangeApi {
    For,
    ReduceWith,
}

/// Identity of the u64 sum reduction (8 bytes).
static ZERO_U64: u64 = 0;

/// A valid call of `api` over [begin, end) with `opts`; `out` receives the
/// reduce_with result.
fn call_range(
    api: RangeApi,
    begin: usize,
    end: usize,
    opts: *const parfor_options,
    out: *mut c_void,
) -> parfor_status {
    let counter = AtomicUsize::new(0);
    let ctx = (&counter as *const AtomicUsize).cast_mut().cast();
    // SAFETY: count_body takes the AtomicUsize ctx, which outlives the call; the
    // reduction's identity is 8 readable bytes and `out` 8 writable ones (or NULL).
    unsafe {
        match api {
            RangeApi::For => parfor_for(begin, end, opts, Some(count_body), ctx),
            RangeApi::ReduceWith => parfor_reduce_with(
                begin,
                end,
                (&ZERO_U64 as *const u64).cast(),
                8,
                opts,
                Some(sum_fold),
                Some(sum_combine),
                null_mut(),
                out,
            ),
        }
    }
}

#[test]
fn valid_baselines_succeed() {
    // Each failing case below changes one argument of these calls; they must succeed
    // as they are, or the cases would prove nothing.
    for api in BUFFER_APIS {
        let mut out = Out([SENTINEL; 256]);
        let st = call_buffer(api, BufferArgs::valid(), out.0.as_mut_ptr().cast());
        assert_eq!(st, PARFOR_OK, "{api:?}: {}", last_error());
    }
    let opts = default_options();
    for api in [RangeApi::For, RangeApi::ReduceWith] {
        let mut out = Out([SENTINEL; 256]);
        let st = call_range(api, 0, 100, &opts, out.0.as_mut_ptr().cast());
        assert_eq!(st, PARFOR_OK, "{api:?}: {}", last_error());
    }
    let mut out = 0u64;
    call_range(
        RangeApi::ReduceWith,
        0,
        100,
        null(),
        (&mut out as *mut u64).cast(),
    );
    assert_eq!(out, 4950);
}

#[test]
fn null_pointers() {
    for len in [0, 4] {
        let case = |api: BufferApi, what: &str| format!("{api:?} len {len}: `{what}` NULL");
        let null_a = BufferArgs {
            a: null(),
            len,
            ..BufferArgs::valid()
        };
        for api in BUFFER_APIS {
            let name = if api == BufferApi::Dot { "a" } else { "data" };
            expect_failure(
                &case(api, name),
                PARFOR_ERR_NULL_ARGUMENT,
                &[&format!("argument `{name}` is NULL")],
                |out| call_buffer(api, null_a, out),
            );
            let out_name = if matches!(api, BufferApi::Argmin | BufferApi::Argmax) {
                "index"
            } else {
                "out"
            };
            let valid = BufferArgs {
                len,
                ..BufferArgs::valid()
            };
            expect_failure(
                &case(api, out_name),
                PARFOR_ERR_NULL_ARGUMENT,
                &[&format!("argument `{out_name}` is NULL")],
                |_| call_buffer(api, valid, null_mut()),
            );
        }
        let null_b = BufferArgs {
            b: null(),
            len,
            ..BufferArgs::valid()
        };
        expect_failure(
            &case(BufferApi::Dot, "b"),
            PARFOR_ERR_NULL_ARGUMENT,
            &["argument `b` is NULL"],
            |out| call_buffer(BufferApi::Dot, null_b, out),
        );
    }

    expect_failure(
        "parfor_for: `body` NULL",
        PARFOR_ERR_NULL_ARGUMENT,
        &["argument `body` is NULL"],
        // SAFETY: a NULL body must be rejected before anything is called.
        |_| unsafe { parfor_for(0, 100, null(), None, null_mut()) },
    );

    let identity = (&ZERO_U64 as *const u64).cast::<c_void>();
    // SAFETY (all four): the pointers given are valid or NULL, and a NULL must be
    // rejected before any is used; `out` is an `Out`.
    expect_failure(
        "parfor_reduce_with: `identity` NULL",
        PARFOR_ERR_NULL_ARGUMENT,
        &["argument `identity` is NULL"],
        |out| unsafe {
            parfor_reduce_with(
                0,
                100,
                null(),
                8,
                null(),
                Some(sum_fold),
                Some(sum_combine),
                null_mut(),
                out,
            )
        },
    );
    expect_failure(
        "parfor_reduce_with: `fold` NULL",
        PARFOR_ERR_NULL_ARGUMENT,
        &["argument `fold` is NULL"],
        |out| unsafe {
            parfor_reduce_with(
                0,
                100,
                identity,
                8,
                null(),
                None,
                Some(sum_combine),
                null_mut(),
                out,
            )
        },
    );
    expect_failure(
        "parfor_reduce_with: `combine` NULL",
        PARFOR_ERR_NULL_ARGUMENT,
        &["argument `combine` is NULL"],
        |out| unsafe {
            parfor_reduce_with(
                0,
                100,
                identity,
                8,
                null(),
                Some(sum_fold),
                None,
                null_mut(),
                out,
            )
        },
    );
    expect_failure(
        "parfor_reduce_with: `out` NULL",
        PARFOR_ERR_NULL_ARGUMENT,
        &["argument `out` is NULL"],
        |_| unsafe {
            parfor_reduce_with(
                0,
                100,
                identity,
                8,
                null(),
                Some(sum_fold),
                Some(sum_combine),
                null_mut(),
                null_mut(),
            )
        },
    );
}

#[test]
fn unknown_enum_values() {
    for v in UNKNOWN_ENUM_VALUES {
        for api in BUFFER_APIS {
            let args = BufferArgs {
                dtype: v,
                ..BufferArgs::valid()
            };
            expect_failure(
                &format!("{api:?}: dtype {v}"),
                PARFOR_ERR_INVALID_ARGUMENT,
                &[&format!("argument `dtype` is {v}, not a parfor_dtype")],
                |out| call_buffer(api, args, out),
            );
            let opts = parfor_options {
                schedule: v,
                ..default_options()
            };
            let args = BufferArgs {
                opts: &opts,
                ..BufferArgs::valid()
            };
            expect_failure(
                &format!("{api:?}: schedule {v}"),
                PARFOR_ERR_INVALID_ARGUMENT,
                &[&format!("opts->schedule is {v}, not a parfor_schedule")],
                |out| call_buffer(api, args, out),
            );
        }
        // Every dtype, so the operator check cannot depend on the dtype branch taken.
        let is_op = usize::try_from(v).is_ok_and(|i| i < parfor::ReduceOp::ALL.len());
        for dtype in DTYPES.into_iter().filter(|_| !is_op) {
            let args = BufferArgs {
                dtype: dtype as c_int,
                op: v,
                ..BufferArgs::valid()
            };
            expect_failure(
                &format!("parfor_reduce: op {v} on {dtype:?}"),
                PARFOR_ERR_INVALID_ARGUMENT,
                &[&format!("argument `op` is {v}, not a parfor_op")],
                |out| call_buffer(BufferApi::Reduce, args, out),
            );
        }
        let opts = parfor_options {
            schedule: v,
            ..default_options()
        };
        for api in [RangeApi::For, RangeApi::ReduceWith] {
            expect_failure(
                &format!("{api:?}: schedule {v}"),
                PARFOR_ERR_INVALID_ARGUMENT,
                &[&format!("opts->schedule is {v}, not a parfor_schedule")],
                |out| call_range(api, 0, 100, &opts, out),
            );
        }
    }
}

#[test]
fn length_overflow() {
    for dtype in DTYPES {
        let size = size_of_dtype(dtype);
        // usize::MAX, the first length whose byte count overflows size_t, and the
        // first whose byte count exceeds PTRDIFF_MAX (the largest object C allows).
        let mut lens = vec![usize::MAX, isize::MAX as usize / size + 1];
        if size > 1 {
            lens.push(usize::MAX / size + 1);
        }
        for len in lens {
            for api in BUFFER_APIS {
                let args = BufferArgs {
                    len,
                    dtype: dtype as c_int,
                    ..BufferArgs::valid()
                };
                expect_failure(
                    &format!("{api:?}: {dtype:?} len {len}"),
                    PARFOR_ERR_INVALID_ARGUMENT,
                    &[
                        &format!("argument `len` is {len}"),
                        &format!("elements of {size} bytes overflow"),
                    ],
                    |out| call_buffer(api, args, out),
                );
            }
        }
    }
}

#[test]
fn misaligned_buffers() {
    for dtype in DTYPES {
        let size = size_of_dtype(dtype);
        for offset in 1..size {
            // SAFETY: offset < 8, inside DATA.
            let p = unsafe { DATA.0.as_ptr().add(offset) }.cast::<c_void>();
            let requirement = format!(
                "is not aligned to {size} bytes as {} requires",
                c_name(dtype)
            );
            let misaligned_a = BufferArgs {
                a: p,
                dtype: dtype as c_int,
                ..BufferArgs::valid()
            };
            for api in BUFFER_APIS {
                let name = if api == BufferApi::Dot { "a" } else { "data" };
                expect_failure(
                    &format!("{api:?}: {dtype:?} `{name}` at offset {offset}"),
                    PARFOR_ERR_MISALIGNED,
                    &[&format!("argument `{name}` ({p:p})"), &requirement],
                    |out| call_buffer(api, misaligned_a, out),
                );
            }
            let misaligned_b = BufferArgs {
                b: p,
                dtype: dtype as c_int,
                ..BufferArgs::valid()
            };
            expect_failure(
                &format!("Dot: {dtype:?} `b` at offset {offset}"),
                PARFOR_ERR_MISALIGNED,
                &[&format!("argument `b` ({p:p})"), &requirement],
                |out| call_buffer(BufferApi::Dot, misaligned_b, out),
            );
        }
    }
    // One-byte types have no alignment to miss: an odd address is fine.
    for dtype in [parfor_dtype::PARFOR_I8, parfor_dtype::PARFOR_U8] {
        for api in BUFFER_APIS {
            let args = BufferArgs {
                // SAFETY: offset 1, inside DATA.
                a: unsafe { DATA.0.as_ptr().add(1) }.cast(),
                dtype: dtype as c_int,
                ..BufferArgs::valid()
            };
            let mut out = Out([SENTINEL; 256]);
            let st = call_buffer(api, args, out.0.as_mut_ptr().cast());
            assert_eq!(
                st,
                PARFOR_OK,
                "{api:?} {dtype:?} at an odd address: {}",
                last_error()
            );
        }
    }
}

#[test]
fn acc_size_zero_or_too_large() {
    let identity = [0u8; 64];
    for acc_size in [0, usize::MAX] {
        expect_failure(
            &format!("parfor_reduce_with: acc_size {acc_size}"),
            PARFOR_ERR_INVALID_ARGUMENT,
            &[&format!("argument `acc_size` is {acc_size}")],
            // SAFETY: an acc_size outside 1..=PTRDIFF_MAX/2 must be rejected before the
            // identity is read; `out` is an `Out`.
            |out| unsafe {
                parfor_reduce_with(
                    0,
                    100,
                    identity.as_ptr().cast(),
                    acc_size,
                    null(),
                    Some(sum_fold),
                    Some(sum_combine),
                    null_mut(),
                    out,
                )
            },
        );
    }
}

/// Calls every function with `opts` and expects `status` with `texts`.
fn expect_options_rejected(case: &str, opts: &parfor_options, texts: &[&str]) {
    for api in BUFFER_APIS {
        let args = BufferArgs {
            opts,
            ..BufferArgs::valid()
        };
        expect_failure(
            &format!("{api:?}: {case}"),
            PARFOR_ERR_INVALID_ARGUMENT,
            texts,
            |out| call_buffer(api, args, out),
        );
    }
    for api in [RangeApi::For, RangeApi::ReduceWith] {
        expect_failure(
            &format!("{api:?}: {case}"),
            PARFOR_ERR_INVALID_ARGUMENT,
            texts,
            |out| call_range(api, 0, 100, opts, out),
        );
    }
}

#[test]
fn options_size_too_small() {
    let full = std::mem::size_of::<parfor_options>();
    for size in [0, 1, full - 1] {
        let opts = parfor_options {
            size,
            ..default_options()
        };
        expect_options_rejected(
            &format!("opts->size {size}"),
            &opts,
            &[&format!(
                "opts->size is {size}, smaller than PARFOR_OPTIONS_MIN_SIZE = {full}"
            )],
        );
    }
}

#[test]
fn too_many_threads() {
    for n in [PARFOR_MAX_THREADS + 1, 1 << 20, usize::MAX] {
        let opts = parfor_options {
            num_threads: n,
            ..default_options()
        };
        expect_options_rejected(
            &format!("num_threads {n}"),
            &opts,
            &[
                "opts->num_threads",
                &format!("{n} threads requested; the most is PARFOR_MAX_THREADS = 1024"),
            ],
        );
        let before = parfor_num_threads();
        expect_failure(
            &format!("parfor_set_num_threads({n})"),
            PARFOR_ERR_INVALID_ARGUMENT,
            &[&format!(
                "{n} threads requested; the most is PARFOR_MAX_THREADS = 1024"
            )],
            |_| parfor_set_num_threads(n),
        );
        assert_eq!(
            parfor_num_threads(),
            before,
            "a rejected size must not be kept"
        );
    }
}

#[test]
fn begin_greater_than_end() {
    for (begin, end) in [(5, 3), (1, 0), (usize::MAX, 0)] {
        let text = format!("begin ({begin}) is greater than end ({end})");
        expect_failure(
            &format!("parfor_reduce_with({begin}, {end})"),
            PARFOR_ERR_INVALID_ARGUMENT,
            &[&text],
            |out| call_range(RangeApi::ReduceWith, begin, end, null(), out),
        );
        let calls = AtomicUsize::new(0);
        expect_failure(
            &format!("parfor_for({begin}, {end})"),
            PARFOR_ERR_INVALID_ARGUMENT,
            &[&text],
            // SAFETY: count_body takes the AtomicUsize ctx, which outlives the call.
            |_| unsafe {
                parfor_for(
                    begin,
                    end,
                    null(),
                    Some(count_body),
                    (&calls as *const AtomicUsize).cast_mut().cast(),
                )
            },
        );
        assert_eq!(
            calls.load(Ordering::Relaxed),
            0,
            "body called for an invalid range"
        );
    }
}

#[test]
fn operator_not_defined_for_dtype() {
    let bitwise = [
        parfor_op::PARFOR_BIT_AND,
        parfor_op::PARFOR_BIT_OR,
        parfor_op::PARFOR_BIT_XOR,
    ];
    // len 0 too: an operator that is not defined has no identity to return either.
    for len in [0, 4] {
        for dtype in DTYPES {
            let ops: &[parfor_op] = if is_float(dtype) {
                &bitwise
            } else {
                &[parfor_op::PARFOR_SUM_EXACT]
            };
            for &op in ops {
                let why = if is_float(dtype) {
                    "bitwise operators take integer dtypes"
                } else {
                    "the exact sum takes PARFOR_F32 or PARFOR_F64"
                };
                let args = BufferArgs {
                    len,
                    dtype: dtype as c_int,
                    op: op as c_int,
                    ..BufferArgs::valid()
                };
                expect_failure(
                    &format!("parfor_reduce: {op:?} on {dtype:?}, len {len}"),
                    PARFOR_ERR_INVALID_ARGUMENT,
                    &[&format!("{op:?} is not defined for {}", c_name(dtype)), why],
                    |out| call_buffer(BufferApi::Reduce, args, out),
                );
            }
        }
    }
}

#[test]
fn extremes_of_zero_elements() {
    let text = "the reduction has zero elements and this operator has no identity";
    for dtype in DTYPES {
        for op in [parfor_op::PARFOR_MIN, parfor_op::PARFOR_MAX] {
            let args = BufferArgs {
                len: 0,
                dtype: dtype as c_int,
                op: op as c_int,
                ..BufferArgs::valid()
            };
            expect_failure(
                &format!("parfor_reduce: {op:?} of no {dtype:?}"),
                PARFOR_ERR_EMPTY,
                &[text],
                |out| call_buffer(BufferApi::Reduce, args, out),
            );
        }
        for api in [BufferApi::Argmin, BufferApi::Argmax] {
            let args = BufferArgs {
                len: 0,
                dtype: dtype as c_int,
                ..BufferArgs::valid()
            };
            expect_failure(
                &format!("{api:?} of no {dtype:?}"),
                PARFOR_ERR_EMPTY,
                &[text],
                |out| call_buffer(api, args, out),
            );
        }
    }
}

/// Context of a callback that fails on the range holding `index` (every range when
/// it is usize::MAX), returning `code`, and records the ranges it was given.
struct FailAt {
    index: usize,
    code: c_int,
    ranges: Mutex<Vec<(usize, usize)>>,
    failed: Mutex<Vec<(usize, usize)>>,
}

impl FailAt {
    fn new(index: usize, code: c_int) -> Self {
        FailAt {
            index,
            code,
            ranges: Mutex::new(Vec::new()),
            failed: Mutex::new(Vec::new()),
        }
    }

    fn visit(&self, begin: usize, end: usize) -> c_int {
        self.ranges.lock().unwrap().push((begin, end));
        if self.index == usize::MAX || (begin..end).contains(&self.index) {
            self.failed.lock().unwrap().push((begin, end));
            self.code
        } else {
            0
        }
    }

    fn ctx(&self) -> *mut c_void {
        (self as *const FailAt).cast_mut().cast()
    }
}

unsafe extern "C-unwind" fn failing_body(ctx: *mut c_void, begin: usize, end: usize) -> c_int {
    // SAFETY: every caller passes a FailAt as ctx.
    unsafe { &*ctx.cast::<FailAt>() }.visit(begin, end)
}

unsafe extern "C-unwind" fn failing_fold(
    ctx: *mut c_void,
    begin: usize,
    end: usize,
    acc: *mut c_void,
) -> c_int {
    // SAFETY: as sum_fold for `acc`; ctx is a FailAt.
    let code = unsafe { &*ctx.cast::<FailAt>() }.visit(begin, end);
    // SAFETY: as above.
    unsafe { sum_fold(null_mut(), begin, end, acc) };
    code
}

/// The range the last error names, checked to be one the callback failed on.
fn assert_names_failed_range(case: &str, what: &str, code: c_int, f: &FailAt) {
    let failed = f.failed.lock().unwrap().clone();
    let message = last_error();
    assert!(
        failed.iter().any(|&(b, e)| {
            message.contains(&format!("{what} returned {code} for range [{b}, {e})"))
        }),
        "{case}: last error {message:?} names none of the failing ranges {failed:?}"
    );
}

fn schedules_to_try() -> Vec<(usize, parfor_schedule, usize)> {
    use parfor_schedule::*;
    let mut v = Vec::new();
    for threads in 1..=3 {
        v.push((threads, PARFOR_SCHEDULE_STATIC, 0));
        v.push((threads, PARFOR_SCHEDULE_STATIC, 7));
        v.push((threads, PARFOR_SCHEDULE_DYNAMIC, 5));
        v.push((threads, PARFOR_SCHEDULE_GUIDED, 1));
    }
    v
}

#[test]
fn body_returning_nonzero() {
    for (threads, schedule, chunk) in schedules_to_try() {
        let opts = options(threads, schedule, chunk);
        for index in [0, 617, 999, usize::MAX] {
            let case = format!(
                "parfor_for fails at {index}, {threads} threads {schedule:?} chunk {chunk}"
            );
            let f = FailAt::new(index, 3);
            expect_failure(
                &case,
                PARFOR_ERR_CALLBACK,
                &["chunks not yet started were skipped"],
                // SAFETY: failing_body takes the FailAt ctx, which outlives the call.
                |_| unsafe { parfor_for(0, 1000, &opts, Some(failing_body), f.ctx()) },
            );
            // expect_failure ran assert_usable, which fails nothing: the message is
            // still this call's.
            assert_names_failed_range(&case, "body", 3, &f);
        }
    }
    // One thread taking ranges of 1 in order: after the failing range, no other may
    // start.
    let f = FailAt::new(617, -1);
    let opts = options(1, parfor_schedule::PARFOR_SCHEDULE_DYNAMIC, 1);
    expect_failure(
        "parfor_for, one thread, dynamic chunk 1",
        PARFOR_ERR_CALLBACK,
        &["body returned -1 for range [617, 618)"],
        // SAFETY: failing_body takes the FailAt ctx, which outlives the call.
        |_| unsafe { parfor_for(0, 1000, &opts, Some(failing_body), f.ctx()) },
    );
    let ranges = f.ranges.lock().unwrap().clone();
    assert_eq!(
        ranges.last(),
        Some(&(617, 618)),
        "ranges started after the failure"
    );
    assert_eq!(ranges.len(), 618);
}

#[test]
fn fold_returning_nonzero() {
    let identity = [0u8; 8];
    for (threads, schedule, chunk) in schedules_to_try() {
        let opts = options(threads, schedule, chunk);
        for index in [0, 617, 99_999, usize::MAX] {
            let case = format!(
                "parfor_reduce_with fails at {index}, {threads} threads {schedule:?} chunk {chunk}"
            );
            let f = FailAt::new(index, 7);
            expect_failure(
                &case,
                PARFOR_ERR_CALLBACK,
                &["chunks not yet started were skipped"],
                // SAFETY: 8 readable identity bytes; failing_fold takes the FailAt ctx
                // and an 8-byte accumulator; `out` is an `Out`.
                |out| unsafe {
                    parfor_reduce_with(
                        0,
                        100_000,
                        identity.as_ptr().cast(),
                        8,
                        &opts,
                        Some(failing_fold),
                        Some(sum_combine),
                        f.ctx(),
                        out,
                    )
                },
            );
            assert_names_failed_range(&case, "fold", 7, &f);
        }
    }
}

#[test]
fn status_messages() {
    let unknown = "unknown parfor_status value";
    let expected: [(parfor_status, &str); 8] = [
        (PARFOR_OK, "success"),
        (PARFOR_ERR_NULL_ARGUMENT, "NULL"),
        (PARFOR_ERR_INVALID_ARGUMENT, "invalid argument"),
        (PARFOR_ERR_MISALIGNED, "not aligned"),
        (PARFOR_ERR_EMPTY, "zero elements"),
        (PARFOR_ERR_CALLBACK, "callback returned nonzero"),
        (PARFOR_ERR_PANIC, "panic"),
        (PARFOR_ERR_RUNTIME, "runtime"),
    ];
    let mut seen = Vec::new();
    for (i, (status, keyword)) in expected.iter().enumerate() {
        assert_eq!(
            *status as c_int, i as c_int,
            "statuses are numbered in order"
        );
        let p = parfor_status_message(*status as c_int);
        assert!(!p.is_null());
        // SAFETY: non-NULL, static NUL-terminated text.
        let text = unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned();
        assert!(text.contains(keyword), "{status:?}: {text:?}");
        assert_ne!(text, unknown);
        // Static text: the same pointer every time.
        assert_eq!(p, parfor_status_message(*status as c_int));
        seen.push(text);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 8, "each status has its own message");
    for v in [-1, 8, 9, 100, c_int::MAX, c_int::MIN] {
        let p = parfor_status_message(v);
        assert!(!p.is_null());
        // SAFETY: non-NULL, static NUL-terminated text.
        assert_eq!(
            unsafe { CStr::from_ptr(p) }.to_str().unwrap(),
            unknown,
            "status {v}"
        );
    }
}

#[test]
fn version_is_the_package_version() {
    // SAFETY: static NUL-terminated text.
    let version = unsafe { CStr::from_ptr(parfor_version()) };
    assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn options_init() {
    // SAFETY: NULL is documented as a no-op.
    unsafe { parfor_options_init(null_mut()) };
    let opts = default_options();
    assert_eq!(opts.size, std::mem::size_of::<parfor_options>());
    assert_eq!(opts.num_threads, 0);
    assert_eq!(
        opts.schedule,
        parfor_schedule::PARFOR_SCHEDULE_AUTO as c_int
    );
    assert_eq!(opts.chunk, 0);
    assert_usable("after parfor_options_init(NULL)");
}

#[test]
fn last_error_is_per_thread() {
    // A thread that has made no failing call sees "".
    let fresh = std::thread::spawn(last_error).join().unwrap();
    assert_eq!(fresh, "");
    // A thread whose calls all succeed still sees "".
    let after_success = std::thread::spawn(|| {
        assert_usable("fresh thread");
        last_error()
    })
    .join()
    .unwrap();
    assert_eq!(after_success, "");
    // A failure on one thread is not seen by another, and successful calls leave it.
    let failing = std::thread::spawn(|| {
        assert_eq!(
            parfor_set_num_threads(usize::MAX),
            PARFOR_ERR_INVALID_ARGUMENT
        );
        let other = std::thread::spawn(last_error).join().unwrap();
        let first = last_error();
        assert_usable("after a failure");
        (other, first, last_error())
    })
    .join()
    .unwrap();
    assert_eq!(failing.0, "", "another thread saw this thread's error");
    assert!(failing.1.contains("threads requested"), "{:?}", failing.1);
    assert_eq!(
        failing.1, failing.2,
        "a successful call changed the last error"
    );
    // Outside a body the thread index is 0.
    assert_eq!(parfor_thread_index(), 0);
}
