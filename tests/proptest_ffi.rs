//! Property tests of the C entry points with random arguments: dtypes and operators
//! (valid and invalid integers), lengths, byte offsets into an owned buffer (so
//! misaligned pointers), NULL pointers, options (NULL, too small, larger than this
//! library knows, team sizes 0..8 and invalid ones, every schedule and invalid ones,
//! chunks up to usize::MAX).
//!
//! A valid call must give the serial reference's result: integers exactly; floats
//! exactly where the header promises it (MIN/MAX, the logical operators,
//! PARFOR_SUM_EXACT, argmin/argmax) and otherwise within the classic bounds for any
//! summation or product order, computed against an exact or double-double reference:
//! - sum of n values:  |computed - exact| <= gamma(n-1) * sum |x_i|
//! - dot of n pairs:   |computed - exact| <= gamma(n) * sum |a_i * b_i|
//! - product:          |computed - exact| <= gamma(n-1) * |exact|
//!
//! where gamma(k) = k*u / (1 - k*u) and u is the unit roundoff of the element type
//! (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., sections 3.1 and
//! 4.2). Float sums use values that are all multiples of 2^-72 below 2^33, so their
//! exact sum fits an i128 in fixed point and the error is measured exactly.
//!
//! A call with one or more invalid arguments must return one of the statuses those
//! arguments call for (the header does not rank them; with a single invalid argument
//! this is the exact status), leave the output untouched and set a message.

mod common;

use common::{last_error, Rng};
use std::ffi::c_void;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicU32, Ordering};

use parfor::ffi::parfor_status::{self, *};
use parfor::ffi::*;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Every fixed-point value below is a multiple of 2^-FIX_BITS.
const FIX_BITS: i32 = 72;

// ---------------------------------------------------------------------------------
// Options.

#[derive(Clone, Copy, Debug)]
enum SizeField {
    /// sizeof(parfor_options), as parfor_options_init sets it.
    Exact,
    /// A newer caller's larger struct: the library must accept it and read only the
    /// fields it knows.
    Larger(usize),
    /// Smaller than sizeof(parfor_options): invalid.
    Smaller(usize),
}

#[derive(Clone, Copy, Debug)]
enum OptsCase {
    Null,
    Given {
        size: SizeField,
        num_threads: usize,
        schedule: c_int,
        chunk: usize,
    },
}

/// A parfor_options followed by room for fields a newer header might add.
#[repr(C)]
struct BigOptions {
    opts: parfor_options,
    future: [u64; 8],
}

impl OptsCase {
    fn valid(&self) -> bool {
        match *self {
            OptsCase::Null => true,
            OptsCase::Given {
                size,
                num_threads,
                schedule,
                ..
            } => {
                !matches!(size, SizeField::Smaller(_))
                    && num_threads <= PARFOR_MAX_THREADS
                    && (0..4).contains(&schedule)
            }
        }
    }

    fn build(&self) -> Option<Box<BigOptions>> {
        match *self {
            OptsCase::Null => None,
            OptsCase::Given {
                size,
                num_threads,
                schedule,
                chunk,
            } => {
                let mut big = Box::new(BigOptions {
                    opts: parfor_options {
                        size: 0,
                        num_threads: 0,
                        schedule: 0,
                        chunk: 0,
                    },
                    // Garbage in the unknown tail must not matter.
                    future: [0xFFFF_FFFF_FFFF_FFFF; 8],
                });
                // SAFETY: `big.opts` is a valid, writable parfor_options.
                unsafe { parfor_options_init(&mut big.opts) };
                let exact = big.opts.size;
                big.opts.size = match size {
                    SizeField::Exact => exact,
                    SizeField::Larger(extra) => exact + extra,
                    SizeField::Smaller(s) => s % exact,
                };
                big.opts.num_threads = num_threads;
                big.opts.schedule = schedule;
                big.opts.chunk = chunk;
                Some(big)
            }
        }
    }
}

fn ptr_of(o: &Option<Box<BigOptions>>) -> *const parfor_options {
    o.as_ref()
        .map_or(std::ptr::null(), |b| &b.opts as *const parfor_options)
}

fn opts_strategy() -> impl Strategy<Value = OptsCase> {
    let size = prop_oneof![
        8 => Just(SizeField::Exact),
        1 => (1usize..=64).prop_map(SizeField::Larger),
        1 => any::<usize>().prop_map(SizeField::Smaller),
    ];
    let threads = prop_oneof![
        12 => 0usize..=8,
        1 => (PARFOR_MAX_THREADS + 1)..=usize::MAX,
    ];
    let schedule = prop_oneof![
        12 => 0 as c_int..4,
        1 => prop_oneof![Just(-1 as c_int), 4 as c_int..100, any::<c_int>()],
    ];
    let chunk = prop_oneof![
        4 => Just(0usize),
        4 => 1usize..200,
        1 => 200usize..100_000,
        1 => Just(usize::MAX),
    ];
    prop_oneof![
        1 => Just(OptsCase::Null),
        6 => (size, threads, schedule, chunk).prop_map(|(size, num_threads, schedule, chunk)| {
            OptsCase::Given { size, num_threads, schedule, chunk }
        }),
    ]
}

/// Mostly values in `valid`, sometimes integers outside every parfor enum (13 and up:
/// parfor_op ends at PARFOR_NAN_MAX = 12).
fn enum_strategy(valid: std::ops::Range<c_int>) -> impl Strategy<Value = c_int> {
    prop_oneof![
        12 => valid,
        1 => prop_oneof![Just(-1 as c_int), 13 as c_int..110, any::<c_int>()],
    ]
}

fn len_strategy() -> impl Strategy<Value = usize> {
    // Small lengths exercise the edges; the largest are above the library's 192 KiB
    // serial threshold for every dtype of 4 or 8 bytes, so the team runs them.
    prop_oneof![
        6 => 0usize..70,
        3 => 70usize..5_000,
        1 => 30_000usize..70_000,
    ]
}

// ---------------------------------------------------------------------------------
// Element types, data generation and the serial references.

trait Elem: Copy + PartialEq + PartialOrd + std::fmt::Debug + 'static {
    const DTYPE: parfor_dtype;
    const FLOAT: bool;
    /// Data for one call. `op` lets float products get values near 1, so that no
    /// partial product overflows in any order.
    fn generate(rng: &mut Rng, n: usize, op: c_int, specials: bool) -> Vec<Self>;
    /// Checks a successful reduction's result.
    fn check_reduce(op: c_int, x: &[Self], got: Self) -> Result<(), String>;
    /// Checks a successful dot product.
    fn check_dot(a: &[Self], b: &[Self], got: Self) -> Result<(), String>;
    fn bits(self) -> u64;
}

macro_rules! int_elem {
    ($($t:ty => $d:ident),*) => {$(
        impl Elem for $t {
            const DTYPE: parfor_dtype = parfor_dtype::$d;
            const FLOAT: bool = false;
            fn generate(rng: &mut Rng, n: usize, _op: c_int, _specials: bool) -> Vec<Self> {
                let mode = rng.below(4);
                (0..n).map(|_| match mode {
                    // Full-width values: wrapping sums and products.
                    0 => rng.next() as $t,
                    // Tiny values with zeros: logical operators, ties for argmin.
                    1 => (rng.below(5) as i64 - 2) as $t,
                    // Never zero: LOGICAL_AND is 1, products rarely vanish.
                    2 => (rng.next() | 1) as $t,
                    // Mostly one value: ties everywhere.
                    _ => if rng.below(50) == 0 { rng.next() as $t } else { 7 as $t },
                }).collect()
            }
            fn check_reduce(op: c_int, x: &[Self], got: Self) -> Result<(), String> {
                let b = |v: bool| if v { 1 } else { 0 };
                let want: $t = match op {
                    0 => x.iter().fold(0, |a: $t, &v| a.wrapping_add(v)),
                    1 => x.iter().fold(1, |a: $t, &v| a.wrapping_mul(v)),
                    2 => *x.iter().min().ok_or("MIN of nothing succeeded")?,
                    3 => *x.iter().max().ok_or("MAX of nothing succeeded")?,
                    4 => x.iter().fold(!0, |a, &v| a & v),
                    5 => x.iter().fold(0, |a, &v| a | v),
                    6 => x.iter().fold(0, |a, &v| a ^ v),
                    7 => b(x.iter().all(|&v| v != 0)),
                    8 => b(x.iter().any(|&v| v != 0)),
                    _ => return Err(format!("op {op} succeeded on an integer dtype")),
                };
                if got == want { Ok(()) } else { Err(format!("got {got}, want {want}")) }
            }
            fn check_dot(a: &[Self], b: &[Self], got: Self) -> Result<(), String> {
                let want = a.iter().zip(b).fold(0 as $t, |s, (&x, &y)| s.wrapping_add(x.wrapping_mul(y)));
                if got == want { Ok(()) } else { Err(format!("dot: got {got}, want {want}")) }
            }
            fn bits(self) -> u64 { self as u64 }
        }
    )*};
}
int_elem!(i8 => PARFOR_I8, i16 => PARFOR_I16, i32 => PARFOR_I32, i64 => PARFOR_I64,
          u8 => PARFOR_U8, u16 => PARFOR_U16, u32 => PARFOR_U32, u64 => PARFOR_U64);

/// Double-double helpers for the float references (Dekker/Knuth error-free
/// transformations; `mul_add` is a true fused multiply-add in Rust's std).
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

fn two_prod(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    (p, a.mul_add(b, -p))
}

fn gamma(k: usize, u: f64) -> f64 {
    let ku = k as f64 * u;
    ku / (1.0 - ku)
}

/// The exact value of a float that is a multiple of 2^-FIX_BITS, in fixed point.
fn to_fix(v: f64) -> i128 {
    let scaled = v * 2f64.powi(FIX_BITS);
    assert_eq!(
        scaled.fract(),
        0.0,
        "{v} is not a multiple of 2^-{FIX_BITS}"
    );
    scaled as i128
}

macro_rules! float_elem {
    ($t:ty, $d:ident, $mant:expr) => {
        impl Elem for $t {
            const DTYPE: parfor_dtype = parfor_dtype::$d;
            const FLOAT: bool = true;
            fn generate(rng: &mut Rng, n: usize, op: c_int, specials: bool) -> Vec<Self> {
                // Special values at about 3 per call, anywhere.
                let special_odds = (n as u64 / 3).max(1);
                (0..n)
                    .map(|_| {
                        if specials && rng.below(special_odds) == 0 {
                            return [<$t>::NAN, <$t>::INFINITY, <$t>::NEG_INFINITY, 0.0, -0.0]
                                [rng.below(5) as usize];
                        }
                        let sign: $t = if rng.below(2) == 0 { 1.0 } else { -1.0 };
                        if op == parfor_op::PARFOR_PROD as c_int {
                            // 1 + r * 2^-17, |r| <= 2^10: within 1 +- 2^-7. The log of
                            // a product of n such values drifts by about -1e-5 * n and
                            // spreads by about 0.0045 * sqrt(n), so no partial product
                            // of 70,000 of them leaves the normal range (a subnormal
                            // result would void the relative error bound).
                            let r = rng.below(1 << 11) as i64 - (1 << 10);
                            return sign * (1.0 + r as $t * (2.0 as $t).powi(-17));
                        }
                        // m * 2^k, m < 2^mantissa, k in [-72, -20]: a multiple of
                        // 2^-72 below 2^33, over 52 binary orders of magnitude.
                        let m = (rng.next() >> (64 - $mant)) as $t;
                        let k = -FIX_BITS + rng.below(53) as i32;
                        sign * m * (2.0 as $t).powi(k)
                    })
                    .collect()
            }
            fn check_reduce(op: c_int, x: &[Self], got: Self) -> Result<(), String> {
                let u = (<$t>::EPSILON / 2.0) as f64;
                let has_nan = x.iter().any(|v| v.is_nan());
                let has_pinf = x.iter().any(|&v| v == <$t>::INFINITY);
                let has_ninf = x.iter().any(|&v| v == <$t>::NEG_INFINITY);
                let has_zero = x.iter().any(|&v| v == 0.0);
                let expect = |ok: bool, what: &str| {
                    if ok {
                        Ok(())
                    } else {
                        Err(format!("op {op}: got {got:e}, want {what}"))
                    }
                };
                match op {
                    // SUM and SUM_EXACT.
                    0 | 9 => {
                        if has_nan || (has_pinf && has_ninf) {
                            return expect(got.is_nan(), "NaN");
                        }
                        if has_pinf || has_ninf {
                            let inf = if has_pinf {
                                <$t>::INFINITY
                            } else {
                                <$t>::NEG_INFINITY
                            };
                            return expect(got == inf, "an infinity");
                        }
                        let exact: i128 = x.iter().map(|&v| to_fix(v as f64)).sum();
                        let abs: i128 = x.iter().map(|&v| to_fix(v as f64).abs()).sum();
                        if !got.is_finite() {
                            return expect(false, "a finite sum");
                        }
                        let err = (to_fix(got as f64) - exact).abs();
                        if op == 9 {
                            // Correctly rounded: i128 -> float rounds to nearest even,
                            // and the power-of-two scaling is exact.
                            let want = (exact as $t) * (2.0 as $t).powi(-FIX_BITS);
                            return expect(got == want, &format!("{want:e} (correctly rounded)"));
                        }
                        let bound = gamma(x.len().saturating_sub(1), u) * abs as f64;
                        expect(
                            err as f64 <= bound * (1.0 + 1e-9),
                            &format!("within {bound:e} of the exact sum (error {err})"),
                        )
                    }
                    1 => {
                        if has_nan || ((has_pinf || has_ninf) && has_zero) {
                            return expect(got.is_nan(), "NaN");
                        }
                        let negative = x.iter().filter(|v| v.is_sign_negative()).count() % 2 == 1;
                        if has_pinf || has_ninf {
                            let inf = if negative {
                                <$t>::NEG_INFINITY
                            } else {
                                <$t>::INFINITY
                            };
                            return expect(got == inf, "an infinity");
                        }
                        if has_zero {
                            return expect(got == 0.0, "zero");
                        }
                        let (mut hi, mut lo) = (1.0f64, 0.0f64);
                        for &v in x {
                            let (p, e) = two_prod(hi, v as f64);
                            (hi, lo) = two_sum(p, lo * v as f64 + e);
                        }
                        let diff = ((got as f64 - hi) - lo).abs();
                        let bound = gamma(x.len().saturating_sub(1), u) * hi.abs();
                        expect(
                            diff <= bound * (1.0 + 1e-9) + hi.abs() * 1e-30,
                            &format!("within {bound:e} of {hi:e}"),
                        )
                    }
                    2 | 3 => {
                        if x.is_empty() {
                            return Err("MIN/MAX of nothing succeeded".into());
                        }
                        if has_nan {
                            return expect(got.is_nan(), "NaN");
                        }
                        let want = x[1..].iter().fold(x[0], |m, &v| {
                            if (op == 2 && v < m) || (op == 3 && v > m) {
                                v
                            } else {
                                m
                            }
                        });
                        // == : the sign of a zero result is not specified.
                        expect(got == want, &format!("{want:e}"))
                    }
                    7 => expect(
                        got == if x.iter().all(|&v| v != 0.0) {
                            1.0
                        } else {
                            0.0
                        },
                        "LOGICAL_AND",
                    ),
                    8 => expect(
                        got == if x.iter().any(|&v| v != 0.0) {
                            1.0
                        } else {
                            0.0
                        },
                        "LOGICAL_OR",
                    ),
                    _ => Err(format!("op {op} succeeded on a float dtype")),
                }
            }
            fn check_dot(a: &[Self], b: &[Self], got: Self) -> Result<(), String> {
                let u = (<$t>::EPSILON / 2.0) as f64;
                let (mut hi, mut lo, mut abs) = (0.0f64, 0.0f64, 0.0f64);
                for (&x, &y) in a.iter().zip(b) {
                    let (p, e) = two_prod(x as f64, y as f64);
                    let (s, t) = two_sum(hi, p);
                    hi = s;
                    lo += t + e;
                    abs += (x as f64 * y as f64).abs();
                }
                let diff = ((got as f64 - hi) - lo).abs();
                let bound = gamma(a.len(), u) * abs;
                if diff <= bound * (1.0 + 1e-9) + abs * 1e-25 {
                    Ok(())
                } else {
                    Err(format!("dot: got {got:e}, want within {bound:e} of {hi:e}"))
                }
            }
            fn bits(self) -> u64 {
                self.to_bits() as u64
            }
        }
    };
}
float_elem!(f32, PARFOR_F32, 24);
float_elem!(f64, PARFOR_F64, 53);

/// numpy's argmin/argmax: the first NaN if any, else the first extreme element.
fn reference_arg<T: Elem>(x: &[T], max: bool) -> usize {
    #[allow(clippy::eq_op)] // v != v is the generic NaN test
    if let Some(i) = x.iter().position(|v| v != v) {
        return i;
    }
    let mut best = 0;
    for (i, v) in x.iter().enumerate().skip(1) {
        if (max && *v > x[best]) || (!max && *v < x[best]) {
            best = i;
        }
    }
    best
}

// ---------------------------------------------------------------------------------
// The buffer: values written at a byte offset into storage the test owns.

struct Placed {
    /// 8-byte aligned storage; the values start at `offset` bytes in.
    storage: Vec<u64>,
    offset: usize,
}

impl Placed {
    fn new<T: Elem>(values: &[T], offset: usize) -> Self {
        let bytes = std::mem::size_of_val(values) + offset;
        let mut storage = vec![0u64; bytes.div_ceil(8) + 1];
        let base = storage.as_mut_ptr().cast::<u8>();
        for (i, v) in values.iter().enumerate() {
            // SAFETY: `storage` holds `offset + len * size_of::<T>()` bytes; unaligned
            // writes are allowed anywhere in it.
            unsafe { base.add(offset).cast::<T>().add(i).write_unaligned(*v) };
        }
        Placed { storage, offset }
    }

    fn ptr(&self) -> *const c_void {
        // SAFETY: `offset` is inside the allocation (it was written up to there).
        unsafe { self.storage.as_ptr().cast::<u8>().add(self.offset).cast() }
    }
}

/// An output slot: 32 bytes of a known pattern. The call must write exactly the
/// first `size_of::<T>()` bytes on success and nothing on failure.
struct Out([u64; 4]);

const OUT_FILL: u64 = 0xA5A5_A5A5_A5A5_A5A5;

impl Out {
    fn new() -> Self {
        Out([OUT_FILL; 4])
    }

    fn ptr(&mut self) -> *mut c_void {
        self.0.as_mut_ptr().cast()
    }

    fn untouched(&self) -> bool {
        self.0.iter().all(|&w| w == OUT_FILL)
    }

    fn tail_untouched(&self, written: usize) -> bool {
        let bytes: Vec<u8> = self.0.iter().flat_map(|w| w.to_ne_bytes()).collect();
        bytes[written..].iter().all(|&b| b == 0xA5)
    }

    fn read<T: Copy>(&self) -> T {
        // SAFETY: 32 aligned bytes hold any element type or a size_t.
        unsafe { self.0.as_ptr().cast::<T>().read() }
    }
}

/// Checks a call's status against the statuses its invalid arguments allow.
fn check_status(
    what: &str,
    status: parfor_status,
    allowed: &[parfor_status],
    out_untouched: bool,
) -> Result<bool, TestCaseError> {
    if allowed.is_empty() {
        prop_assert_eq!(status, PARFOR_OK, "{}: {}", what, last_error());
        return Ok(true);
    }
    prop_assert!(
        allowed.contains(&status),
        "{what}: status {status:?}, expected one of {allowed:?} ({})",
        last_error()
    );
    prop_assert!(out_untouched, "{what}: output written on failure");
    prop_assert!(
        !last_error().is_empty(),
        "{what}: failure without a message"
    );
    Ok(false)
}

// ---------------------------------------------------------------------------------
// parfor_reduce, parfor_dot, parfor_argmin/argmax.

#[derive(Clone, Debug)]
struct ReduceCase {
    dtype: c_int,
    op: c_int,
    len: usize,
    offset: usize,
    opts: OptsCase,
    null_data: bool,
    null_out: bool,
    specials: bool,
    seed: u64,
}

/// Cases for every operator but PARFOR_SUM_EXACT, which has its own property below
/// so that a failure of one does not hide the other.
fn reduce_case() -> impl Strategy<Value = ReduceCase> {
    reduce_case_with_ops(enum_strategy(0..9))
}

fn reduce_case_with_ops(ops: impl Strategy<Value = c_int>) -> impl Strategy<Value = ReduceCase> {
    (
        enum_strategy(0..10),
        ops,
        len_strategy(),
        prop_oneof![3 => Just(0usize), 1 => 0usize..16],
        opts_strategy(),
        prop::bool::weighted(0.03),
        prop::bool::weighted(0.03),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(dtype, op, len, offset, opts, null_data, null_out, specials, seed)| ReduceCase {
                dtype,
                op,
                len,
                offset,
                opts,
                null_data,
                null_out,
                specials,
                seed,
            },
        )
}

/// Errors common to every typed entry point, in the header's terms.
fn common_errors<T: Elem>(c: &ReduceCase, allowed: &mut Vec<parfor_status>) {
    if c.null_out {
        allowed.push(PARFOR_ERR_NULL_ARGUMENT);
    }
    if !c.opts.valid() {
        allowed.push(PARFOR_ERR_INVALID_ARGUMENT);
    }
    if c.null_data {
        allowed.push(PARFOR_ERR_NULL_ARGUMENT);
    } else if c.offset % std::mem::size_of::<T>() != 0 {
        allowed.push(PARFOR_ERR_MISALIGNED);
    }
}

fn check_reduce<T: Elem>(c: &ReduceCase) -> Result<(), TestCaseError> {
    let mut rng = Rng(c.seed);
    let x = T::generate(&mut rng, c.len, c.op, c.specials);
    let placed = Placed::new(&x, c.offset);
    let opts = c.opts.build();
    let mut out = Out::new();
    let data = if c.null_data {
        std::ptr::null()
    } else {
        placed.ptr()
    };
    let outp = if c.null_out {
        std::ptr::null_mut()
    } else {
        out.ptr()
    };
    // SAFETY: `data` is NULL or points to `len` elements of T (possibly misaligned,
    // which the library must reject before reading); `outp` is NULL or 32 bytes.
    let s = unsafe { parfor_reduce(data, c.len, c.dtype, c.op, ptr_of(&opts), outp) };
    let mut allowed = Vec::new();
    common_errors::<T>(c, &mut allowed);
    let op_ok = (0..10).contains(&c.op)
        && match c.op {
            4..=6 => !T::FLOAT,
            9 => T::FLOAT,
            _ => true,
        };
    if !op_ok {
        allowed.push(PARFOR_ERR_INVALID_ARGUMENT);
    }
    if c.len == 0 && (c.op == 2 || c.op == 3) {
        allowed.push(PARFOR_ERR_EMPTY);
    }
    if check_status("parfor_reduce", s, &allowed, out.untouched())? {
        let got: T = out.read();
        prop_assert!(
            out.tail_untouched(std::mem::size_of::<T>()),
            "wrote past *out"
        );
        if let Err(e) = T::check_reduce(c.op, &x, got) {
            return Err(TestCaseError::fail(format!(
                "{:?} len {}: {e}",
                T::DTYPE,
                c.len
            )));
        }
        // Bitwise identical with one thread and the default options (the header's
        // reproducibility promise, which makes the bound above hold run to run).
        let one = OptsCase::Given {
            size: SizeField::Exact,
            num_threads: 1,
            schedule: 1,
            chunk: 0,
        }
        .build();
        let mut again = Out::new();
        // SAFETY: as above, with a valid aligned buffer and output.
        let s = unsafe {
            parfor_reduce(
                placed.ptr(),
                c.len,
                c.dtype,
                c.op,
                ptr_of(&one),
                again.ptr(),
            )
        };
        prop_assert_eq!(s, PARFOR_OK);
        let again: T = again.read();
        prop_assert_eq!(got.bits(), again.bits(), "result depends on the options");
    }
    Ok(())
}

fn check_dot<T: Elem>(c: &ReduceCase) -> Result<(), TestCaseError> {
    let mut rng = Rng(c.seed);
    // No special values: the dot bound is for finite inputs.
    let a = T::generate(&mut rng, c.len, 0, false);
    let b = T::generate(&mut rng, c.len, 0, false);
    let pa = Placed::new(&a, c.offset);
    let pb = Placed::new(&b, 0);
    let opts = c.opts.build();
    let mut out = Out::new();
    let ap = if c.null_data {
        std::ptr::null()
    } else {
        pa.ptr()
    };
    let outp = if c.null_out {
        std::ptr::null_mut()
    } else {
        out.ptr()
    };
    // SAFETY: as in check_reduce, for both inputs.
    let s = unsafe { parfor_dot(ap, pb.ptr(), c.len, c.dtype, ptr_of(&opts), outp) };
    let mut allowed = Vec::new();
    common_errors::<T>(c, &mut allowed);
    if check_status("parfor_dot", s, &allowed, out.untouched())? {
        prop_assert!(
            out.tail_untouched(std::mem::size_of::<T>()),
            "wrote past *out"
        );
        if let Err(e) = T::check_dot(&a, &b, out.read()) {
            return Err(TestCaseError::fail(format!(
                "{:?} len {}: {e}",
                T::DTYPE,
                c.len
            )));
        }
    }
    Ok(())
}

fn check_arg<T: Elem>(c: &ReduceCase, max: bool) -> Result<(), TestCaseError> {
    let mut rng = Rng(c.seed);
    let x = T::generate(&mut rng, c.len, 0, c.specials);
    let placed = Placed::new(&x, c.offset);
    let opts = c.opts.build();
    let mut out = Out::new();
    let data = if c.null_data {
        std::ptr::null()
    } else {
        placed.ptr()
    };
    let outp: *mut usize = if c.null_out {
        std::ptr::null_mut()
    } else {
        out.ptr().cast()
    };
    // SAFETY: as in check_reduce; `outp` is NULL or room for a size_t.
    let s = unsafe {
        if max {
            parfor_argmax(data, c.len, c.dtype, ptr_of(&opts), outp)
        } else {
            parfor_argmin(data, c.len, c.dtype, ptr_of(&opts), outp)
        }
    };
    let mut allowed = Vec::new();
    common_errors::<T>(c, &mut allowed);
    if c.len == 0 {
        allowed.push(PARFOR_ERR_EMPTY);
    }
    if check_status("parfor_argmin/argmax", s, &allowed, out.untouched())? {
        let got: usize = out.read();
        prop_assert_eq!(
            got,
            reference_arg(&x, max),
            "{:?} len {} max {}",
            T::DTYPE,
            c.len,
            max
        );
    }
    Ok(())
}

/// Dispatches a case on its dtype; an invalid dtype must be rejected whatever else.
fn run_typed(
    c: &ReduceCase,
    f: &dyn Fn(&ReduceCase, c_int) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    if (0..10).contains(&c.dtype) {
        return f(c, c.dtype);
    }
    let words = [1u64; 16];
    let opts = c.opts.build();
    let mut out = Out::new();
    let mut index = Out::new();
    // SAFETY: `words` is readable for the small lengths passed; outputs are 32 bytes.
    let statuses = unsafe {
        [
            parfor_reduce(
                words.as_ptr().cast(),
                3,
                c.dtype,
                0,
                ptr_of(&opts),
                out.ptr(),
            ),
            parfor_dot(
                words.as_ptr().cast(),
                words.as_ptr().cast(),
                3,
                c.dtype,
                ptr_of(&opts),
                out.ptr(),
            ),
            parfor_argmin(
                words.as_ptr().cast(),
                3,
                c.dtype,
                ptr_of(&opts),
                index.ptr().cast(),
            ),
        ]
    };
    for s in statuses {
        prop_assert_eq!(s, PARFOR_ERR_INVALID_ARGUMENT, "dtype {}", c.dtype);
    }
    prop_assert!(out.untouched() && index.untouched());
    Ok(())
}

macro_rules! by_dtype {
    ($raw:expr, $f:ident, $c:expr $(, $arg:expr)*) => {
        match $raw {
            0 => $f::<f32>($c $(, $arg)*),
            1 => $f::<f64>($c $(, $arg)*),
            2 => $f::<i8>($c $(, $arg)*),
            3 => $f::<i16>($c $(, $arg)*),
            4 => $f::<i32>($c $(, $arg)*),
            5 => $f::<i64>($c $(, $arg)*),
            6 => $f::<u8>($c $(, $arg)*),
            7 => $f::<u16>($c $(, $arg)*),
            8 => $f::<u32>($c $(, $arg)*),
            _ => $f::<u64>($c $(, $arg)*),
        }
    };
}

// ---------------------------------------------------------------------------------
// parfor_for: every index exactly once, or the exact status.

struct Counts {
    begin: usize,
    counts: Vec<AtomicU32>,
}

unsafe extern "C-unwind" fn count_body(ctx: *mut c_void, begin: usize, end: usize) -> c_int {
    // SAFETY: the test passes a live Counts, touched only through atomics.
    let ctx = unsafe { &*(ctx as *const Counts) };
    if begin >= end || begin < ctx.begin || end - ctx.begin > ctx.counts.len() {
        // An empty or out-of-range sub-range is a library bug: report it by failing.
        return 1;
    }
    for i in begin..end {
        ctx.counts[i - ctx.begin].fetch_add(1, Ordering::Relaxed);
    }
    0
}

#[derive(Clone, Debug)]
struct ForCase {
    /// Where the range starts: low, or within `len` of usize::MAX so that chunk
    /// arithmetic near the top of the index space is exercised.
    near_top: bool,
    start: usize,
    len: usize,
    reversed: bool,
    null_body: bool,
    opts: OptsCase,
}

fn for_case() -> impl Strategy<Value = ForCase> {
    (
        prop::bool::weighted(0.2),
        0usize..1 << 40,
        prop_oneof![6 => 0usize..100, 3 => 100usize..20_000],
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.03),
        opts_strategy(),
    )
        .prop_map(
            |(near_top, start, len, reversed, null_body, opts)| ForCase {
                near_top,
                start,
                len,
                reversed,
                null_body,
                opts,
            },
        )
}

fn check_for(c: &ForCase) -> Result<(), TestCaseError> {
    let begin = if c.near_top {
        usize::MAX - c.len
    } else {
        c.start
    };
    let end = begin + c.len;
    let counts = Counts {
        begin,
        counts: (0..c.len).map(|_| AtomicU32::new(0)).collect(),
    };
    let opts = c.opts.build();
    let (b, e) = if c.reversed {
        (end, begin)
    } else {
        (begin, end)
    };
    let body: parfor_body = if c.null_body { None } else { Some(count_body) };
    // SAFETY: `counts` outlives the call; count_body only uses atomics.
    let s = unsafe {
        parfor_for(
            b,
            e,
            ptr_of(&opts),
            body,
            &counts as *const Counts as *mut c_void,
        )
    };
    let mut allowed = Vec::new();
    if c.null_body {
        allowed.push(PARFOR_ERR_NULL_ARGUMENT);
    }
    if c.reversed && c.len > 0 {
        allowed.push(PARFOR_ERR_INVALID_ARGUMENT);
    }
    if !c.opts.valid() {
        allowed.push(PARFOR_ERR_INVALID_ARGUMENT);
    }
    let none_ran = counts.counts.iter().all(|n| n.load(Ordering::Relaxed) == 0);
    if check_status("parfor_for", s, &allowed, none_ran)? {
        for (k, n) in counts.counts.iter().enumerate() {
            let n = n.load(Ordering::Relaxed);
            prop_assert_eq!(n, 1, "index {} ran {} times", begin + k, n);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// parfor_reduce_with over byte accumulators of random sizes.

/// Byte `j` of the accumulator sums (wrapping) f(i) over the indices i = j mod size.
fn byte_of(i: usize) -> u8 {
    (i.wrapping_mul(31).wrapping_add(7) >> 2) as u8
}

/// The callbacks' context: the accumulator size and the identity's bytes k. The
/// combine is a (+) b = a + b - k bytewise (mod 256): associative, with identity k, so
/// a library that starts a block from anything but a copy of the identity, or
/// combines a block twice or not at all, gives a wrong result.
struct ByteCtx {
    identity: Vec<u8>,
}

unsafe extern "C-unwind" fn byte_fold(
    ctx: *mut c_void,
    begin: usize,
    end: usize,
    acc: *mut c_void,
) -> c_int {
    // SAFETY: the test passes a live ByteCtx; `acc` holds identity.len() exclusive
    // bytes (the header's contract for acc_size).
    let ctx = unsafe { &*(ctx as *const ByteCtx) };
    let size = ctx.identity.len();
    // SAFETY: as above.
    let acc = unsafe { std::slice::from_raw_parts_mut(acc.cast::<u8>(), size) };
    if (acc.as_ptr() as usize) % 64 != 0 {
        // The header promises 64-byte aligned accumulators.
        return 2;
    }
    for i in begin..end {
        acc[i % size] = acc[i % size].wrapping_add(byte_of(i));
    }
    0
}

unsafe extern "C-unwind" fn byte_combine(ctx: *mut c_void, acc: *mut c_void, other: *const c_void) {
    // SAFETY: as in byte_fold; `other` is a distinct accumulator of the same size.
    let ctx = unsafe { &*(ctx as *const ByteCtx) };
    let size = ctx.identity.len();
    // SAFETY: as above.
    let (acc, other) = unsafe {
        (
            std::slice::from_raw_parts_mut(acc.cast::<u8>(), size),
            std::slice::from_raw_parts(other.cast::<u8>(), size),
        )
    };
    for ((a, o), k) in acc.iter_mut().zip(other).zip(&ctx.identity) {
        *a = a.wrapping_add(*o).wrapping_sub(*k);
    }
}

#[derive(Clone, Debug)]
struct ReduceWithCase {
    begin: usize,
    len: usize,
    reversed: bool,
    acc_size: usize,
    /// Seed of the identity's bytes.
    identity_seed: u64,
    /// Write the result over the identity (the header allows out == identity).
    alias_out: bool,
    nulls: [bool; 4],
    opts: OptsCase,
}

fn reduce_with_case() -> impl Strategy<Value = ReduceWithCase> {
    (
        0usize..1 << 40,
        prop_oneof![5 => 0usize..100, 4 => 100usize..30_000],
        prop::bool::weighted(0.05),
        prop_oneof![
            10 => 1usize..300,
            1 => Just(0usize),
            1 => (isize::MAX as usize / 2 + 1)..=usize::MAX,
        ],
        any::<u64>(),
        any::<bool>(),
        prop::array::uniform4(prop::bool::weighted(0.03)),
        opts_strategy(),
    )
        .prop_map(
            |(begin, len, reversed, acc_size, identity_seed, alias_out, nulls, opts)| {
                ReduceWithCase {
                    begin,
                    len,
                    reversed,
                    acc_size,
                    identity_seed,
                    alias_out,
                    nulls,
                    opts,
                }
            },
        )
}

fn check_reduce_with(c: &ReduceWithCase) -> Result<(), TestCaseError> {
    let valid_size = (1..300).contains(&c.acc_size);
    // Only a valid size is ever read; otherwise a small buffer stands in.
    let n = if valid_size { c.acc_size } else { 8 };
    let mut rng = Rng(c.identity_seed);
    let mut identity: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
    let ctx = ByteCtx {
        identity: identity.clone(),
    };
    let mut out = vec![0xA5u8; n + 16];
    let (b, e) = if c.reversed {
        (c.begin + c.len, c.begin)
    } else {
        (c.begin, c.begin + c.len)
    };
    let opts = c.opts.build();
    let [null_identity, null_fold, null_combine, null_out] = c.nulls;
    let id_ptr: *const c_void = if null_identity {
        std::ptr::null()
    } else {
        identity.as_ptr().cast()
    };
    let out_ptr: *mut c_void = if null_out {
        std::ptr::null_mut()
    } else if c.alias_out {
        identity.as_mut_ptr().cast()
    } else {
        out.as_mut_ptr().cast()
    };
    let identity_before = identity.clone();
    // SAFETY: identity and out hold `n` bytes (n = acc_size whenever acc_size is
    // valid; an invalid size must be rejected before any read); the callbacks get a
    // pointer to `ctx`, which outlives the call.
    let s = unsafe {
        parfor_reduce_with(
            b,
            e,
            id_ptr,
            c.acc_size,
            ptr_of(&opts),
            if null_fold { None } else { Some(byte_fold) },
            if null_combine {
                None
            } else {
                Some(byte_combine)
            },
            &ctx as *const ByteCtx as *mut c_void,
            out_ptr,
        )
    };
    let mut allowed = Vec::new();
    if c.nulls.iter().any(|&x| x) {
        allowed.push(PARFOR_ERR_NULL_ARGUMENT);
    }
    if !valid_size || (c.reversed && c.len > 0) || !c.opts.valid() {
        allowed.push(PARFOR_ERR_INVALID_ARGUMENT);
    }
    let untouched = out.iter().all(|&x| x == 0xA5) && identity == identity_before;
    if check_status("parfor_reduce_with", s, &allowed, untouched)? {
        let got = if c.alias_out {
            identity.clone()
        } else {
            out[..n].to_vec()
        };
        prop_assert!(out[n..].iter().all(|&x| x == 0xA5), "wrote past out");
        let mut want = ctx.identity.clone();
        for i in c.begin..c.begin + c.len {
            want[i % n] = want[i % n].wrapping_add(byte_of(i));
        }
        prop_assert_eq!(got, want, "acc_size {} range [{}, +{})", n, c.begin, c.len);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Failures print their minimal case; no regression files in the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn reduce_matches_reference(c in reduce_case()) {
        run_typed(&c, &|c, d| by_dtype!(d, check_reduce, c))?;
    }

    #[test]
    fn sum_exact_is_correctly_rounded(c in reduce_case_with_ops(Just(9))) {
        run_typed(&c, &|c, d| by_dtype!(d, check_reduce, c))?;
    }

    #[test]
    fn for_covers_each_index_once(c in for_case()) {
        check_for(&c)?;
    }

    #[test]
    fn reduce_with_matches_reference(c in reduce_with_case()) {
        check_reduce_with(&c)?;
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn dot_matches_reference(c in reduce_case()) {
        run_typed(&c, &|c, d| by_dtype!(d, check_dot, c))?;
    }

    #[test]
    fn argmin_argmax_match_reference(c in reduce_case(), max in any::<bool>()) {
        run_typed(&c, &|c, d| by_dtype!(d, check_arg, c, max))?;
    }
}
