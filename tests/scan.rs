//! parfor_scan through the C ABI: every operator and dtype against a serial
//! reference, float sums against exact prefixes (integer arithmetic on scaled
//! values) within the documented bound, float bits identical for every team size,
//! schedule and in place, and every bad input (status, message, out untouched).

mod common;

use common::{last_error, opts, Rng};
use std::ffi::c_void;

use parfor::ffi::parfor_dtype::*;
use parfor::ffi::parfor_op::*;
use parfor::ffi::parfor_schedule::*;
use parfor::ffi::parfor_status::*;
use parfor::ffi::*;

const SCHEDULES: [parfor_schedule; 4] = [
    PARFOR_SCHEDULE_AUTO,
    PARFOR_SCHEDULE_STATIC,
    PARFOR_SCHEDULE_DYNAMIC,
    PARFOR_SCHEDULE_GUIDED,
];

fn scan_raw<T>(
    data: *const T,
    len: usize,
    dtype: parfor_dtype,
    op: i32,
    flags: u32,
    o: *const parfor_options,
    out: *mut T,
) -> parfor_status {
    // SAFETY: callers pass live buffers of `len` elements (or deliberately bad
    // pointers the library must refuse before touching them).
    unsafe {
        parfor_scan(
            data as *const c_void,
            len,
            dtype as i32,
            op,
            flags,
            o,
            out as *mut c_void,
        )
    }
}

fn scan_vec<T: Copy + Default>(
    x: &[T],
    dtype: parfor_dtype,
    op: parfor_op,
    exclusive: bool,
    o: &parfor_options,
) -> Vec<T> {
    let mut out = vec![T::default(); x.len()];
    let flags = if exclusive { PARFOR_SCAN_EXCLUSIVE } else { 0 };
    let s = scan_raw(
        x.as_ptr(),
        x.len(),
        dtype,
        op as i32,
        flags,
        o,
        out.as_mut_ptr(),
    );
    assert_eq!(s, PARFOR_OK, "{op:?} {dtype:?}: {}", last_error());
    out
}

/// Serial reference: inclusive or exclusive scan with `f`, `id` first when exclusive.
fn serial<T: Copy>(x: &[T], id: T, exclusive: bool, f: impl Fn(T, T) -> T) -> Vec<T> {
    let mut out = Vec::with_capacity(x.len());
    let mut acc: Option<T> = None;
    for &v in x {
        let next = match acc {
            None => v,
            Some(a) => f(a, v),
        };
        out.push(if exclusive { acc.unwrap_or(id) } else { next });
        acc = Some(next);
    }
    out
}

macro_rules! int_ops_case {
    ($name:ident, $t:ty, $d:expr) => {
        #[test]
        fn $name() {
            let mut rng = Rng(7);
            for n in [0usize, 1, 2, 15, 16, 17, 300, 4097, 70_001] {
                let x: Vec<$t> = (0..n).map(|_| rng.next() as $t).collect();
                let small: Vec<$t> = (0..n).map(|_| (rng.below(3) + 1) as $t).collect();
                for exclusive in [false, true] {
                    let o = opts(3, PARFOR_SCHEDULE_DYNAMIC, 0);
                    let cases: [(parfor_op, &Vec<$t>, $t, fn($t, $t) -> $t); 8] = [
                        (PARFOR_SUM, &x, 0, |a, b| a.wrapping_add(b)),
                        (PARFOR_NAN_SUM, &x, 0, |a, b| a.wrapping_add(b)),
                        (PARFOR_PROD, &small, 1, |a, b| a.wrapping_mul(b)),
                        (PARFOR_MIN, &x, <$t>::MAX, |a, b| a.min(b)),
                        (PARFOR_MAX, &x, <$t>::MIN, |a, b| a.max(b)),
                        (PARFOR_BIT_AND, &x, !0, |a, b| a & b),
                        (PARFOR_BIT_OR, &x, 0, |a, b| a | b),
                        (PARFOR_BIT_XOR, &x, 0, |a, b| a ^ b),
                    ];
                    for (op, data, id, f) in cases {
                        let got = scan_vec(data, $d, op, exclusive, &o);
                        assert_eq!(
                            got,
                            serial(data, id, exclusive, f),
                            "{op:?} n {n} excl {exclusive}"
                        );
                    }
                }
            }
        }
    };
}

int_ops_case!(ops_i8, i8, PARFOR_I8);
int_ops_case!(ops_i16, i16, PARFOR_I16);
int_ops_case!(ops_i32, i32, PARFOR_I32);
int_ops_case!(ops_i64, i64, PARFOR_I64);
int_ops_case!(ops_u8, u8, PARFOR_U8);
int_ops_case!(ops_u16, u16, PARFOR_U16);
int_ops_case!(ops_u32, u32, PARFOR_U32);
int_ops_case!(ops_u64, u64, PARFOR_U64);

/// Float MIN/MAX are exact: equal to the serial reference bit for bit, with NaN
/// propagating from the first NaN on.
#[test]
fn float_min_max_with_nan() {
    let mut rng = Rng(11);
    for n in [1usize, 17, 5000, 300_000] {
        let mut x: Vec<f64> = (0..n).map(|_| rng.next() as f64 / 3e18 - 3.0).collect();
        if n > 100 {
            x[n / 2] = f64::NAN;
        }
        for exclusive in [false, true] {
            let o = opts(2, PARFOR_SCHEDULE_AUTO, 0);
            let got = scan_vec(&x, PARFOR_F64, PARFOR_MIN, exclusive, &o);
            let want = serial(&x, f64::INFINITY, exclusive, |a, b| {
                if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else {
                    a.min(b)
                }
            });
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    g == w || (g.is_nan() && w.is_nan()),
                    "min i {i}: {g} vs {w}"
                );
            }
            let got = scan_vec(&x, PARFOR_F64, PARFOR_MAX, exclusive, &o);
            let want = serial(&x, f64::NEG_INFINITY, exclusive, |a, b| {
                if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else {
                    a.max(b)
                }
            });
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    g == w || (g.is_nan() && w.is_nan()),
                    "max i {i}: {g} vs {w}"
                );
            }
        }
    }
}

/// Values k * 2^-30 with |k| < 2^40 of mixed signs and magnitudes: their prefixes are
/// exact in i128 units of 2^-30. Every output must be within the documented bound.
fn check_sum_bound(n: usize, nan_sum: bool) {
    let mut rng = Rng(n as u64 + 3);
    let scale = (-30f64).exp2();
    let ks: Vec<i64> = (0..n)
        .map(|_| {
            let mag = rng.below(40) as u32;
            let k = (rng.next() >> (64 - mag.max(1))) as i64;
            if rng.below(2) == 0 {
                k
            } else {
                -k
            }
        })
        .collect();
    let mut x: Vec<f64> = ks.iter().map(|&k| k as f64 * scale).collect();
    if nan_sum {
        for i in (0..n).step_by(97) {
            x[i] = f64::NAN;
        }
    }
    let op = if nan_sum { PARFOR_NAN_SUM } else { PARFOR_SUM };
    let got = scan_vec(&x, PARFOR_F64, op, false, &opts(0, PARFOR_SCHEDULE_AUTO, 0));
    let c = parfor::scan::sum_error_bound(n) as f64 + 1.0;
    let u = f64::EPSILON / 2.0;
    let (mut exact, mut abs) = (0i128, 0i128);
    for i in 0..n {
        if !x[i].is_nan() {
            exact += ks[i] as i128;
            abs += (ks[i] as i128).abs();
        }
        let want = exact as f64 * scale;
        let bound = c * u * (abs as f64 * scale) + f64::MIN_POSITIVE;
        let err = (got[i] - want).abs();
        assert!(
            err <= bound,
            "n {n} i {i}: error {err:e} above bound {bound:e}"
        );
    }
}

#[test]
fn sum_within_bound_small() {
    for n in [1, 16, 17, 1000, 65_537] {
        check_sum_bound(n, false);
    }
}

#[test]
fn sum_within_bound_large() {
    check_sum_bound(2_000_003, false);
}

#[test]
fn nan_sum_within_bound() {
    check_sum_bound(100_003, true);
    let x = [1.0, f64::NAN, 2.0, f64::INFINITY, f64::NEG_INFINITY, 1.0];
    let got = scan_vec(
        &x,
        PARFOR_F64,
        PARFOR_NAN_SUM,
        false,
        &opts(1, PARFOR_SCHEDULE_AUTO, 0),
    );
    assert_eq!(&got[..4], &[1.0, 1.0, 3.0, f64::INFINITY]);
    assert!(
        got[4].is_nan() && got[5].is_nan(),
        "inf - inf is NaN as in numpy: {got:?}"
    );
}

/// Bits of float scans for every team size, schedule and chunk, and in place.
fn bits_case<T: Copy + Default + PartialEq + std::fmt::Debug>(
    x: &[T],
    dtype: parfor_dtype,
    op: parfor_op,
    bits: impl Fn(&T) -> u64,
) {
    for exclusive in [false, true] {
        let reference = scan_vec(x, dtype, op, exclusive, &opts(1, PARFOR_SCHEDULE_AUTO, 0));
        let want: Vec<u64> = reference.iter().map(&bits).collect();
        for threads in [2, 3, 4, 7] {
            for schedule in SCHEDULES {
                for chunk in [0, 1, 5000, 1 << 20] {
                    let o = opts(threads, schedule, chunk);
                    let got = scan_vec(x, dtype, op, exclusive, &o);
                    let got: Vec<u64> = got.iter().map(&bits).collect();
                    assert!(
                        got == want,
                        "{op:?} {threads} threads {schedule:?} chunk {chunk} excl {exclusive}"
                    );
                }
            }
            let mut inplace = x.to_vec();
            let flags = if exclusive { PARFOR_SCAN_EXCLUSIVE } else { 0 };
            let o = opts(threads, PARFOR_SCHEDULE_AUTO, 0);
            let p = inplace.as_mut_ptr();
            assert_eq!(
                scan_raw(p, x.len(), dtype, op as i32, flags, &o, p),
                PARFOR_OK
            );
            let got: Vec<u64> = inplace.iter().map(&bits).collect();
            assert!(
                got == want,
                "{op:?} in place, {threads} threads, excl {exclusive}"
            );
        }
    }
}

#[test]
fn float_bits_independent_of_team() {
    let mut rng = Rng(5);
    for n in [1000usize, 1_000_003] {
        let mut x: Vec<f64> = (0..n)
            .map(|_| (rng.next() as f64 / 1e18 - 9.0) * (rng.below(60) as f64 - 30.0).exp2())
            .collect();
        bits_case(&x, PARFOR_F64, PARFOR_SUM, |v| v.to_bits());
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        bits_case(&xf, PARFOR_F32, PARFOR_SUM, |v| v.to_bits() as u64);
        let p: Vec<f64> = (0..n)
            .map(|_| 1.0 + (rng.next() as f64 / 1.8e19 - 0.5) * 1e-3)
            .collect();
        bits_case(&p, PARFOR_F64, PARFOR_PROD, |v| v.to_bits());
        for i in (0..n).step_by(13) {
            x[i] = f64::NAN;
        }
        bits_case(&x, PARFOR_F64, PARFOR_NAN_SUM, |v| v.to_bits());
    }
}

#[test]
fn empty_is_ok_and_writes_nothing() {
    let x = [1.0f64];
    let mut out = [42.0f64];
    let s = scan_raw(
        x.as_ptr(),
        0,
        PARFOR_F64,
        PARFOR_SUM as i32,
        0,
        std::ptr::null(),
        out.as_mut_ptr(),
    );
    assert_eq!(s, PARFOR_OK);
    assert_eq!(out, [42.0]);
}

#[test]
fn exclusive_identities() {
    let o = opts(1, PARFOR_SCHEDULE_AUTO, 0);
    let x = [3.0f64, 1.0, 2.0];
    assert_eq!(
        scan_vec(&x, PARFOR_F64, PARFOR_SUM, true, &o),
        [0.0, 3.0, 4.0]
    );
    assert_eq!(
        scan_vec(&x, PARFOR_F64, PARFOR_PROD, true, &o),
        [1.0, 3.0, 3.0]
    );
    assert_eq!(
        scan_vec(&x, PARFOR_F64, PARFOR_MIN, true, &o),
        [f64::INFINITY, 3.0, 1.0]
    );
    assert_eq!(
        scan_vec(&x, PARFOR_F64, PARFOR_MAX, true, &o),
        [f64::NEG_INFINITY, 3.0, 3.0]
    );
    // -0.0 stays -0.0 in an inclusive sum (no +0.0 identity is added).
    let z = scan_vec(&[-0.0f64], PARFOR_F64, PARFOR_SUM, false, &o);
    assert!(z[0] == 0.0 && z[0].is_sign_negative());
}

/// A bad call: its status, a message containing `needle`, and `out` untouched.
fn expect_bad(
    what: &str,
    want: parfor_status,
    needle: &str,
    call: impl FnOnce(*mut f64) -> parfor_status,
) {
    let mut out = [7.5f64; 64];
    let s = call(out.as_mut_ptr());
    assert_eq!(s, want, "{what}: {}", last_error());
    let msg = last_error();
    assert!(
        msg.contains(needle),
        "{what}: message {msg:?} lacks {needle:?}"
    );
    assert!(out.iter().all(|&v| v == 7.5), "{what}: out was written");
}

#[test]
fn bad_input() {
    let x = [1.0f64; 64];
    let d = x.as_ptr();
    let n = x.len();
    let null = std::ptr::null();
    let f64d = PARFOR_F64;
    let sum = PARFOR_SUM as i32;
    expect_bad(
        "NULL data",
        PARFOR_ERR_NULL_ARGUMENT,
        "`data` is NULL",
        |o| scan_raw(std::ptr::null::<f64>(), n, f64d, sum, 0, null, o),
    );
    expect_bad(
        "NULL out",
        PARFOR_ERR_NULL_ARGUMENT,
        "`out` is NULL",
        |_| scan_raw(d, n, f64d, sum, 0, null, std::ptr::null_mut::<f64>()),
    );
    for v in [-1, 10, 1000, i32::MIN] {
        expect_bad(
            "dtype",
            PARFOR_ERR_INVALID_ARGUMENT,
            "not a parfor_dtype",
            |o| unsafe { parfor_scan(d.cast(), n, v, sum, 0, null, o.cast()) },
        );
    }
    for v in [-1, 13, 1000, i32::MAX] {
        expect_bad("op", PARFOR_ERR_INVALID_ARGUMENT, "not a parfor_op", |o| {
            scan_raw(d, n, f64d, v, 0, null, o)
        });
    }
    for op in [
        PARFOR_LOGICAL_AND,
        PARFOR_LOGICAL_OR,
        PARFOR_SUM_EXACT,
        PARFOR_NAN_MIN,
        PARFOR_NAN_MAX,
    ] {
        expect_bad(
            "op not a scan",
            PARFOR_ERR_INVALID_ARGUMENT,
            "parfor_scan takes",
            |o| scan_raw(d, n, f64d, op as i32, 0, null, o),
        );
    }
    for op in [PARFOR_BIT_AND, PARFOR_BIT_OR, PARFOR_BIT_XOR] {
        expect_bad(
            "bit op on float",
            PARFOR_ERR_INVALID_ARGUMENT,
            "integer dtypes",
            |o| scan_raw(d, n, f64d, op as i32, 0, null, o),
        );
    }
    for flags in [2u32, 3, 0x8000_0000] {
        expect_bad(
            "flags",
            PARFOR_ERR_INVALID_ARGUMENT,
            "argument `flags`",
            |o| scan_raw(d, n, f64d, sum, flags, null, o),
        );
    }
    expect_bad("overflow", PARFOR_ERR_INVALID_ARGUMENT, "overflow", |o| {
        scan_raw(d, usize::MAX / 4, f64d, sum, 0, null, o)
    });
    let bytes = d as *const u8;
    expect_bad("misaligned data", PARFOR_ERR_MISALIGNED, "`data`", |o| {
        scan_raw(
            bytes.wrapping_add(1) as *const f64,
            8,
            f64d,
            sum,
            0,
            null,
            o,
        )
    });
    expect_bad("misaligned out", PARFOR_ERR_MISALIGNED, "`out`", |o| {
        scan_raw(
            d,
            8,
            f64d,
            sum,
            0,
            null,
            (o as *mut u8).wrapping_add(1) as *mut f64,
        )
    });
    // Overlap: out shifted by one element within the same buffer, both ways.
    let mut buf = [7.5f64; 64];
    let p = buf.as_mut_ptr();
    for (src, dst) in [(p, p.wrapping_add(1)), (p.wrapping_add(1), p)] {
        let s = scan_raw(src, 32, f64d, sum, 0, null, dst);
        assert_eq!(s, PARFOR_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains("overlap"), "{}", last_error());
        assert!(buf.iter().all(|&v| v == 7.5), "overlapping call wrote");
    }
    let mut small = opts(0, PARFOR_SCHEDULE_AUTO, 0);
    small.size = 8;
    expect_bad(
        "opts size",
        PARFOR_ERR_INVALID_ARGUMENT,
        "opts->size",
        |o| scan_raw(d, n, f64d, sum, 0, &small, o),
    );
    let mut sched = opts(0, PARFOR_SCHEDULE_AUTO, 0);
    sched.schedule = 99;
    expect_bad(
        "opts schedule",
        PARFOR_ERR_INVALID_ARGUMENT,
        "opts->schedule",
        |o| scan_raw(d, n, f64d, sum, 0, &sched, o),
    );
}
