//! Every dtype x operator through the C ABI against a serial reference, on sizes 0, 1,
//! 2, 7, 1000 and 1e6+3, for team sizes 1..4 and every schedule; floating-point results
//! bitwise identical across team sizes 1, 2, 3, 4, 7 and schedules.

mod common;

use common::{last_error, opts, Rng};
use std::ffi::c_void;

use parfor::ffi::*;

const SIZES: [usize; 6] = [0, 1, 2, 7, 1000, 1_000_003];
const SCHEDULES: [parfor_schedule; 4] = [
    parfor_schedule::PARFOR_SCHEDULE_AUTO,
    parfor_schedule::PARFOR_SCHEDULE_STATIC,
    parfor_schedule::PARFOR_SCHEDULE_DYNAMIC,
    parfor_schedule::PARFOR_SCHEDULE_GUIDED,
];

/// Calls parfor_reduce and returns the status and the value written (or the sentinel).
fn reduce_raw<T: Copy>(
    data: &[T],
    dtype: parfor_dtype,
    op: parfor_op,
    o: &parfor_options,
    sentinel: T,
) -> (parfor_status, T) {
    let mut out = sentinel;
    // A non-NULL, aligned pointer even for empty slices.
    let ptr = data.as_ptr() as *const c_void;
    // SAFETY: `data` is a live slice of `len` elements of the dtype's type.
    let s = unsafe {
        parfor_reduce(
            ptr,
            data.len(),
            dtype as i32,
            op as i32,
            o,
            &mut out as *mut T as *mut c_void,
        )
    };
    (s, out)
}

/// The element types as the test sees them: conversions for making data and the
/// serial reference of each operator.
trait Elem: Copy + PartialEq + std::fmt::Debug + PartialOrd {
    const DTYPE: parfor_dtype;
    const FLOAT: bool;
    fn from_i64(v: i64) -> Self;
    fn bits(self) -> u64;
    fn ref_sum(x: &[Self]) -> Self;
    fn ref_prod(x: &[Self]) -> Self;
    fn ref_bit(x: &[Self], op: parfor_op) -> Self;
    fn is_nan(self) -> bool;
    fn nonzero(self) -> bool;
}

macro_rules! int_elem {
    ($($t:ty => $d:ident),*) => {$(
        impl Elem for $t {
            const DTYPE: parfor_dtype = parfor_dtype::$d;
            const FLOAT: bool = false;
            fn from_i64(v: i64) -> Self { v as $t }
            fn bits(self) -> u64 { self as u64 }
            fn ref_sum(x: &[Self]) -> Self { x.iter().fold(0, |a: $t, &b| a.wrapping_add(b)) }
            fn ref_prod(x: &[Self]) -> Self { x.iter().fold(1, |a: $t, &b| a.wrapping_mul(b)) }
            fn ref_bit(x: &[Self], op: parfor_op) -> Self {
                match op {
                    parfor_op::PARFOR_BIT_AND => x.iter().fold(!0, |a: $t, &b| a & b),
                    parfor_op::PARFOR_BIT_OR => x.iter().fold(0, |a: $t, &b| a | b),
                    _ => x.iter().fold(0, |a: $t, &b| a ^ b),
                }
            }
            fn is_nan(self) -> bool { false }
            fn nonzero(self) -> bool { self != 0 }
        }
    )*};
}
int_elem!(i8 => PARFOR_I8, i16 => PARFOR_I16, i32 => PARFOR_I32, i64 => PARFOR_I64,
          u8 => PARFOR_U8, u16 => PARFOR_U16, u32 => PARFOR_U32, u64 => PARFOR_U64);

macro_rules! float_elem {
    ($($t:ty => $d:ident),*) => {$(
        impl Elem for $t {
            const DTYPE: parfor_dtype = parfor_dtype::$d;
            const FLOAT: bool = true;
            fn from_i64(v: i64) -> Self { v as $t }
            fn bits(self) -> u64 { self.to_bits() as u64 }
            // The float data of the exact checks are small integers (sums) or +-1 and
            // +-2^k (products), so every partial result is exact in any order and the
            // serial loop is an exact reference.
            fn ref_sum(x: &[Self]) -> Self { x.iter().fold(0.0, |a, &b| a + b) }
            fn ref_prod(x: &[Self]) -> Self { x.iter().fold(1.0, |a, &b| a * b) }
            fn ref_bit(_: &[Self], _: parfor_op) -> Self { unreachable!() }
            fn is_nan(self) -> bool { self != self }
            fn nonzero(self) -> bool { self != 0.0 }
        }
    )*};
}
float_elem!(f32 => PARFOR_F32, f64 => PARFOR_F64);

/// Data for `op`: small values whose serial reduction is exact (see float_elem!).
fn data_for<T: Elem>(op: parfor_op, n: usize, rng: &mut Rng) -> Vec<T> {
    (0..n)
        .map(|_| match op {
            parfor_op::PARFOR_PROD if T::FLOAT => {
                // Mostly +-1; rare 2 and 0.5 keep the exponent small.
                match rng.below(1000) {
                    0 => T::from_i64(2),
                    1 => T::from_i64(-2),
                    _ => T::from_i64(if rng.below(2) == 0 { 1 } else { -1 }),
                }
            }
            parfor_op::PARFOR_PROD => T::from_i64((rng.below(200) as i64) * 2 + 1 - 200),
            parfor_op::PARFOR_LOGICAL_AND | parfor_op::PARFOR_LOGICAL_OR => {
                // Mostly one value, rarely the other, so both outcomes occur.
                let common = if op == parfor_op::PARFOR_LOGICAL_AND {
                    3
                } else {
                    0
                };
                T::from_i64(if rng.below(n as u64 * 2 + 1) == 0 {
                    3 - common
                } else {
                    common
                })
            }
            _ if T::FLOAT => T::from_i64(rng.below(41) as i64 - 20),
            _ => T::from_i64(rng.next() as i64),
        })
        .collect()
}

fn reference<T: Elem>(x: &[T], op: parfor_op) -> Option<T> {
    use parfor_op::*;
    let first = |pick: fn(T, T) -> bool| -> Option<T> {
        let mut it = x.iter().copied();
        let mut m = it.next()?;
        for v in it {
            if m.is_nan() {
                break;
            }
            if v.is_nan() || pick(v, m) {
                m = v;
            }
        }
        Some(m)
    };
    match op {
        PARFOR_SUM => Some(T::ref_sum(x)),
        PARFOR_PROD => Some(T::ref_prod(x)),
        PARFOR_MIN => first(|v, m| v < m),
        PARFOR_MAX => first(|v, m| v > m),
        PARFOR_BIT_AND | PARFOR_BIT_OR | PARFOR_BIT_XOR => Some(T::ref_bit(x, op)),
        PARFOR_LOGICAL_AND => Some(T::from_i64(x.iter().all(|v| v.nonzero()) as i64)),
        PARFOR_LOGICAL_OR => Some(T::from_i64(x.iter().any(|v| v.nonzero()) as i64)),
        // Not in OPS: the NaN-skipping operators have their own serial-reference tests
        // (src/reduce/test.rs, tests/array.rs).
        PARFOR_SUM_EXACT | PARFOR_NAN_SUM | PARFOR_NAN_MIN | PARFOR_NAN_MAX => None,
    }
}

const OPS: [parfor_op; 9] = [
    parfor_op::PARFOR_SUM,
    parfor_op::PARFOR_PROD,
    parfor_op::PARFOR_MIN,
    parfor_op::PARFOR_MAX,
    parfor_op::PARFOR_BIT_AND,
    parfor_op::PARFOR_BIT_OR,
    parfor_op::PARFOR_BIT_XOR,
    parfor_op::PARFOR_LOGICAL_AND,
    parfor_op::PARFOR_LOGICAL_OR,
];

fn check_dtype<T: Elem>(seed: u64) {
    let mut rng = Rng(seed);
    for &n in &SIZES {
        for op in OPS {
            let is_bit = matches!(
                op,
                parfor_op::PARFOR_BIT_AND | parfor_op::PARFOR_BIT_OR | parfor_op::PARFOR_BIT_XOR
            );
            let x: Vec<T> = data_for(op, n, &mut rng);
            let sentinel = T::from_i64(99);
            for threads in 1..=4 {
                for schedule in SCHEDULES {
                    for chunk in [0, 3000] {
                        let o = opts(threads, schedule, chunk);
                        let (s, got) = reduce_raw(&x, T::DTYPE, op, &o, sentinel);
                        let ctx = format!(
                            "{:?} {op:?} n={n} threads={threads} {schedule:?} chunk={chunk}",
                            T::DTYPE
                        );
                        if T::FLOAT && is_bit {
                            assert_eq!(s, parfor_status::PARFOR_ERR_INVALID_ARGUMENT, "{ctx}");
                            assert!(
                                last_error().contains("not defined for"),
                                "{ctx}: {}",
                                last_error()
                            );
                            assert_eq!(
                                got.bits(),
                                sentinel.bits(),
                                "{ctx}: out written on failure"
                            );
                            continue;
                        }
                        match reference(&x, op) {
                            Some(want) => {
                                assert_eq!(s, parfor_status::PARFOR_OK, "{ctx}: {}", last_error());
                                assert_eq!(
                                    got.bits(),
                                    want.bits(),
                                    "{ctx}: got {got:?}, want {want:?}"
                                );
                            }
                            None => {
                                assert_eq!(s, parfor_status::PARFOR_ERR_EMPTY, "{ctx}");
                                assert_eq!(
                                    got.bits(),
                                    sentinel.bits(),
                                    "{ctx}: out written on failure"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn f32_every_op() {
    check_dtype::<f32>(1);
}
#[test]
fn f64_every_op() {
    check_dtype::<f64>(2);
}
#[test]
fn i8_every_op() {
    check_dtype::<i8>(3);
}
#[test]
fn i16_every_op() {
    check_dtype::<i16>(4);
}
#[test]
fn i32_every_op() {
    check_dtype::<i32>(5);
}
#[test]
fn i64_every_op() {
    check_dtype::<i64>(6);
}
#[test]
fn u8_every_op() {
    check_dtype::<u8>(7);
}
#[test]
fn u16_every_op() {
    check_dtype::<u16>(8);
}
#[test]
fn u32_every_op() {
    check_dtype::<u32>(9);
}
#[test]
fn u64_every_op() {
    check_dtype::<u64>(10);
}

/// Random-valued floats (no exact serial reference): the sum is checked against a
/// compensated (Neumaier) sum in f64 within a bound, and must be bitwise identical for
/// every team size and schedule.
#[test]
fn float_results_are_bitwise_reproducible() {
    let mut rng = Rng(42);
    for n in [1000usize, 65_537, 1_000_003] {
        let x: Vec<f64> = (0..n)
            .map(|_| {
                (rng.next() as f64 / u64::MAX as f64 - 0.5) * 10f64.powi(rng.below(12) as i32 - 6)
            })
            .collect();
        let y: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let (mut s, mut c) = (0.0f64, 0.0f64);
        let mut abs = 0.0f64;
        for &v in &x {
            let t = s + v;
            c += if s.abs() >= v.abs() {
                (s - t) + v
            } else {
                (v - t) + s
            };
            s = t;
            abs += v.abs();
        }
        let exact = s + c;
        let mut first: Option<(u64, u64, u64, u64, u64)> = None;
        for threads in [1, 2, 3, 4, 7] {
            for schedule in SCHEDULES {
                for chunk in [0, 1, 50_000] {
                    let o = opts(threads, schedule, chunk);
                    let (st, sum64) =
                        reduce_raw(&x, parfor_dtype::PARFOR_F64, parfor_op::PARFOR_SUM, &o, 0.0);
                    assert_eq!(st, parfor_status::PARFOR_OK);
                    let (_, sum32) =
                        reduce_raw(&y, parfor_dtype::PARFOR_F32, parfor_op::PARFOR_SUM, &o, 0.0);
                    let (_, min64) =
                        reduce_raw(&x, parfor_dtype::PARFOR_F64, parfor_op::PARFOR_MIN, &o, 0.0);
                    let (_, prod32) = reduce_raw(
                        &y,
                        parfor_dtype::PARFOR_F32,
                        parfor_op::PARFOR_PROD,
                        &o,
                        0.0,
                    );
                    let mut dot = 0.0f64;
                    // SAFETY: both slices hold n f64 values.
                    let st = unsafe {
                        parfor_dot(
                            x.as_ptr() as *const c_void,
                            x.as_ptr() as *const c_void,
                            n,
                            parfor_dtype::PARFOR_F64 as i32,
                            &o,
                            &mut dot as *mut f64 as *mut c_void,
                        )
                    };
                    assert_eq!(st, parfor_status::PARFOR_OK);
                    // Every partial sum is within n * eps of the exact one times sum |x|.
                    let bound = n as f64 * f64::EPSILON * abs;
                    assert!(
                        (sum64 - exact).abs() <= bound,
                        "n={n} sum {sum64} vs {exact}"
                    );
                    let got = (
                        sum64.to_bits(),
                        sum32.to_bits() as u64,
                        min64.to_bits(),
                        prod32.to_bits() as u64,
                        dot.to_bits(),
                    );
                    match first {
                        None => first = Some(got),
                        Some(f) => {
                            assert_eq!(f, got, "n={n} threads={threads} {schedule:?} chunk={chunk}")
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn nan_is_propagated_and_argmin_takes_first() {
    let mut x = vec![5.0f64; 300_000];
    x[123_456] = -1.0;
    x[200_000] = -1.0;
    for threads in [1, 2, 3] {
        let o = opts(threads, parfor_schedule::PARFOR_SCHEDULE_DYNAMIC, 1);
        let mut idx = usize::MAX;
        // SAFETY: valid buffer and output.
        let s = unsafe {
            parfor_argmin(
                x.as_ptr() as *const c_void,
                x.len(),
                parfor_dtype::PARFOR_F64 as i32,
                &o,
                &mut idx,
            )
        };
        assert_eq!((s, idx), (parfor_status::PARFOR_OK, 123_456));
        // SAFETY: as above.
        let s = unsafe {
            parfor_argmax(
                x.as_ptr() as *const c_void,
                x.len(),
                parfor_dtype::PARFOR_F64 as i32,
                &o,
                &mut idx,
            )
        };
        assert_eq!((s, idx), (parfor_status::PARFOR_OK, 0));
    }
    x[250_000] = f64::NAN;
    x[260_000] = f64::NAN;
    let o = opts(2, parfor_schedule::PARFOR_SCHEDULE_STATIC, 0);
    let (_, m) = reduce_raw(&x, parfor_dtype::PARFOR_F64, parfor_op::PARFOR_MIN, &o, 0.0);
    assert!(m.is_nan());
    let mut idx = 0;
    // SAFETY: as above.
    unsafe {
        parfor_argmax(
            x.as_ptr() as *const c_void,
            x.len(),
            parfor_dtype::PARFOR_F64 as i32,
            &o,
            &mut idx,
        )
    };
    assert_eq!(idx, 250_000);
}
