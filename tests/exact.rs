//! The exact sum through the C ABI: adversarial data, random data against an
//! independent big-integer reference and against Python's `math.fsum`, bitwise identity
//! across team sizes and schedules, merging states in any order, and every bad input.

mod common;

use common::{last_error, opts, Rng};
use std::ffi::c_void;
use std::process::Command;

use parfor::ffi::exact::*;
use parfor::ffi::*;

const SCHEDULES: [parfor_schedule; 4] = [
    parfor_schedule::PARFOR_SCHEDULE_AUTO,
    parfor_schedule::PARFOR_SCHEDULE_STATIC,
    parfor_schedule::PARFOR_SCHEDULE_DYNAMIC,
    parfor_schedule::PARFOR_SCHEDULE_GUIDED,
];
const F32: i32 = parfor_dtype::PARFOR_F32 as i32;
const F64: i32 = parfor_dtype::PARFOR_F64 as i32;

impl Rng {
    /// A finite f64 with random sign and fraction and a biased exponent in `exps`.
    fn f64_in(&mut self, exps: std::ops::Range<u64>) -> f64 {
        let exp = exps.start + self.below(exps.end - exps.start);
        f64::from_bits((self.next() & (1 << 63)) | exp << 52 | (self.next() >> 12))
    }
    /// A finite f32 likewise.
    fn f32_in(&mut self, exps: std::ops::Range<u32>) -> f32 {
        let exp = exps.start + self.below(u64::from(exps.end - exps.start)) as u32;
        let r = self.next();
        f32::from_bits((r as u32 & (1 << 31)) | exp << 23 | ((r >> 40) as u32 & 0x7F_FFFF))
    }
}

/// The two float types, for tests written once.
trait Float: Copy + std::fmt::Debug + PartialEq + Default {
    const DTYPE: i32;
}
impl Float for f64 {
    const DTYPE: i32 = F64;
}
impl Float for f32 {
    const DTYPE: i32 = F32;
}

/// PARFOR_SUM_EXACT through parfor_reduce.
fn sum_exact<T: Float>(data: &[T], o: Option<&parfor_options>) -> T {
    let mut out = T::default();
    let o = o.map_or(std::ptr::null(), |o| o as *const parfor_options);
    // SAFETY: `data` is a live slice of the dtype's type; `out` is one element.
    let s = unsafe {
        parfor_reduce(
            data.as_ptr().cast(),
            data.len(),
            T::DTYPE,
            parfor_op::PARFOR_SUM_EXACT as i32,
            o,
            (&mut out as *mut T).cast(),
        )
    };
    assert_eq!(s, parfor_status::PARFOR_OK, "{}", last_error());
    out
}

fn dot_exact<T: Float>(a: &[T], b: &[T], o: Option<&parfor_options>) -> T {
    let mut out = T::default();
    let o = o.map_or(std::ptr::null(), |o| o as *const parfor_options);
    // SAFETY: `a` and `b` are live slices of `len` elements; `out` is one element.
    let s = unsafe {
        parfor_dot_exact(
            a.as_ptr().cast(),
            b.as_ptr().cast(),
            a.len(),
            T::DTYPE,
            o,
            (&mut out as *mut T).cast(),
        )
    };
    assert_eq!(s, parfor_status::PARFOR_OK, "{}", last_error());
    out
}

fn new_state() -> parfor_exact_state {
    let mut st = parfor_exact_state {
        words: [0; PARFOR_EXACT_STATE_WORDS],
    };
    // SAFETY: `st` is a live, aligned state.
    assert_eq!(
        unsafe { parfor_exact_init(&mut st) },
        parfor_status::PARFOR_OK
    );
    st
}

fn accumulate<T: Float>(st: &mut parfor_exact_state, data: &[T], o: Option<&parfor_options>) {
    let o = o.map_or(std::ptr::null(), |o| o as *const parfor_options);
    // SAFETY: `st` is a live state, `data` a live slice of the dtype's type.
    let s = unsafe { parfor_exact_accumulate(st, data.as_ptr().cast(), data.len(), T::DTYPE, o) };
    assert_eq!(s, parfor_status::PARFOR_OK, "{}", last_error());
}

fn merge(acc: &mut parfor_exact_state, other: &parfor_exact_state) {
    // SAFETY: two live states.
    let s = unsafe { parfor_exact_merge(acc, other) };
    assert_eq!(s, parfor_status::PARFOR_OK, "{}", last_error());
}

fn result<T: Float>(st: &parfor_exact_state) -> T {
    let mut out = T::default();
    // SAFETY: `st` is a live state; `out` is one element of the dtype.
    let s = unsafe { parfor_exact_result(st, T::DTYPE, (&mut out as *mut T).cast()) };
    assert_eq!(s, parfor_status::PARFOR_OK, "{}", last_error());
    out
}

// ---------------------------------------------------------------------------------
// An independent reference: a fixed-width two's complement big integer in units of
// 2^-unit, rounded by comparing the discarded part with one half.

/// Exact sums of finite values m * 2^e, in units of 2^-unit.
struct BigSum {
    unit: i32,
    /// Little-endian 64-bit limbs of a two's complement integer.
    limbs: Vec<u64>,
}

impl BigSum {
    /// Room for sums of up to 2^64 values of magnitude below 2^max_exp.
    fn new(unit: i32, max_exp: i32) -> Self {
        let bits = (unit + max_exp + 64 + 2) as usize;
        BigSum {
            unit,
            limbs: vec![0; bits.div_ceil(64)],
        }
    }

    /// Adds sign * m * 2^e, m < 2^128.
    fn add(&mut self, negative: bool, m: u128, e: i32) {
        let shift = (e + self.unit) as usize;
        assert!(e + self.unit >= 0, "value below the reference's unit");
        let mut term = vec![0u64; self.limbs.len()];
        let (q, r) = (shift / 64, shift % 64);
        // m << r spans up to three limbs.
        let lo = m << r;
        let hi = if r == 0 { 0 } else { m >> (128 - r) };
        for (i, part) in [lo as u64, (lo >> 64) as u64, hi as u64]
            .into_iter()
            .enumerate()
        {
            if q + i < term.len() {
                term[q + i] = part;
            }
        }
        if negative {
            // Two's complement: invert and add one.
            for t in term.iter_mut() {
                *t = !*t;
            }
            add_into(&mut term, &one(self.limbs.len()));
        }
        add_into(&mut self.limbs, &term);
    }

    fn add_f64(&mut self, x: f64) {
        let (neg, m, e) = decompose(x);
        self.add(neg, u128::from(m), e);
    }

    /// The sum rounded to nearest-even with `precision` significant bits and least
    /// subnormal 2^min_exp, as sign, significand q and exponent: q * 2^exp.
    fn round(&self, precision: u32, min_exp: i32) -> (bool, u64, i32) {
        let negative = self.limbs.last().unwrap() >> 63 == 1;
        let mut mag = self.limbs.clone();
        if negative {
            for t in mag.iter_mut() {
                *t = !*t;
            }
            let n = mag.len();
            add_into(&mut mag, &one(n));
        }
        let bit = |i: usize| mag.get(i / 64).is_some_and(|l| (l >> (i % 64)) & 1 == 1);
        let len = (0..mag.len() * 64)
            .rev()
            .find(|&i| bit(i))
            .map_or(0, |i| i + 1);
        let min_shift = (min_exp + self.unit).max(0) as usize;
        let shift = len.saturating_sub(precision as usize).max(min_shift);
        let mut q: u64 = 0;
        for i in (shift..len).rev() {
            q = q << 1 | u64::from(bit(i));
        }
        // Compare the discarded part with half a unit of the last kept place.
        let round_up = shift > 0 && bit(shift - 1) && {
            let rest_nonzero = (0..shift - 1).any(bit);
            rest_nonzero || q & 1 == 1
        };
        if round_up {
            q += 1;
        }
        (negative, q, shift as i32 - self.unit)
    }

    fn to_f64(&self) -> f64 {
        let (neg, q, exp) = self.round(53, -1074);
        let v = scale(q as f64, exp);
        if neg {
            -v
        } else {
            v
        }
    }

    fn to_f32(&self) -> f32 {
        let (neg, q, exp) = self.round(24, -149);
        // q has at most 25 bits: exact in f64, and the f64 -> f32 conversion of such a
        // value is exact unless it overflows, when it gives inf as rounding would.
        let v = scale(q as f64, exp) as f32;
        if neg {
            -v
        } else {
            v
        }
    }
}

fn one(n: usize) -> Vec<u64> {
    let mut v = vec![0; n];
    v[0] = 1;
    v
}

fn add_into(acc: &mut [u64], term: &[u64]) {
    let mut carry = false;
    for (a, &t) in acc.iter_mut().zip(term) {
        let (s1, c1) = a.overflowing_add(t);
        let (s2, c2) = s1.overflowing_add(u64::from(carry));
        *a = s2;
        carry = c1 || c2;
    }
}

/// v * 2^exp by exact halvings and doublings (an overflow gives inf, as it should).
fn scale(mut v: f64, exp: i32) -> f64 {
    for _ in 0..exp.max(0) {
        v *= 2.0;
    }
    for _ in 0..(-exp).max(0) {
        v *= 0.5;
    }
    v
}

/// A finite f64 as sign, integer significand and exponent.
fn decompose(x: f64) -> (bool, u64, i32) {
    assert!(x.is_finite());
    let b = x.to_bits();
    let exp = ((b >> 52) & 0x7FF) as i32;
    let frac = b & ((1 << 52) - 1);
    if exp == 0 {
        (b >> 63 == 1, frac, -1074)
    } else {
        (b >> 63 == 1, frac | 1 << 52, exp - 1075)
    }
}

fn reference_sum_f64(data: &[f64]) -> f64 {
    let mut s = BigSum::new(1074, 1024);
    data.iter().for_each(|&x| s.add_f64(x));
    s.to_f64()
}

fn reference_sum_f32(data: &[f32]) -> f32 {
    // f32 values widened to f64 decompose with f64 exponents, so the f64 unit.
    let mut s = BigSum::new(1074, 128);
    data.iter().for_each(|&x| s.add_f64(f64::from(x)));
    s.to_f32()
}

fn reference_dot_f64(a: &[f64], b: &[f64]) -> f64 {
    let mut s = BigSum::new(2148, 2048);
    for (&x, &y) in a.iter().zip(b) {
        let (nx, mx, ex) = decompose(x);
        let (ny, my, ey) = decompose(y);
        s.add(nx != ny, u128::from(mx) * u128::from(my), ex + ey);
    }
    s.to_f64()
}

fn reference_dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut s = BigSum::new(2148, 256);
    for (&x, &y) in a.iter().zip(b) {
        let (nx, mx, ex) = decompose(f64::from(x));
        let (ny, my, ey) = decompose(f64::from(y));
        s.add(nx != ny, u128::from(mx) * u128::from(my), ex + ey);
    }
    s.to_f32()
}

#[test]
fn the_reference_rounds_correctly() {
    // Cases whose answers are known independently of both implementations.
    assert_eq!(reference_sum_f64(&[1e308, 1.0, -1e308]), 1.0);
    assert_eq!(reference_sum_f64(&[1.0, 2f64.powi(-53)]), 1.0);
    assert_eq!(
        reference_sum_f64(&[1.0, 2f64.powi(-53), 2f64.powi(-100)]),
        1.0 + f64::EPSILON
    );
    assert_eq!(reference_sum_f64(&[f64::MAX, f64::MAX]), f64::INFINITY);
    assert_eq!(reference_sum_f64(&[5e-324, 5e-324]), 1e-323);
    assert_eq!(
        reference_sum_f32(&[1.0, 2f32.powi(-24), 2f32.powi(-60)]),
        1.0 + f32::EPSILON
    );
    assert_eq!(reference_dot_f64(&[3.0], &[-0.5]), -1.5);
}

// ---------------------------------------------------------------------------------
// Adversarial data.

fn check_f64(data: &[f64], want: f64) {
    let got = sum_exact(data, None);
    assert_eq!(
        got.to_bits(),
        want.to_bits(),
        "{data:?}: got {got:e}, want {want:e}"
    );
    // The state path gives the same, in both element orders.
    let mut st = new_state();
    accumulate(&mut st, data, None);
    assert_eq!(
        result::<f64>(&st).to_bits(),
        want.to_bits(),
        "state of {data:?}"
    );
    let reversed: Vec<f64> = data.iter().rev().copied().collect();
    assert_eq!(
        sum_exact(&reversed, None).to_bits(),
        want.to_bits(),
        "reversed {data:?}"
    );
}

fn check_f32(data: &[f32], want: f32) {
    let got = sum_exact(data, None);
    assert_eq!(
        got.to_bits(),
        want.to_bits(),
        "{data:?}: got {got:e}, want {want:e}"
    );
}

#[test]
fn cancellation_and_tiny_values_beside_large_ones() {
    check_f64(&[1e308, 1.0, -1e308], 1.0);
    check_f64(&[1e100, 1.0, -1e100, 1e-100], 1.0);
    check_f64(&[2f64.powi(1023), -2f64.powi(1023), 5e-324], 5e-324);
    // 1 + 2^-53 is a tie, rounded to even (1.0); one more tiny value breaks the tie.
    check_f64(&[1.0, 2f64.powi(-53)], 1.0);
    check_f64(&[1.0, 2f64.powi(-53), 5e-324], 1.0 + f64::EPSILON);
    // Many tiny values beside large ones, in long arrays (the blocked paths).
    let mut data = vec![1e-16; 100_000];
    data.push(1.0);
    data.push(-1.0);
    data.insert(50_000, 1e300);
    data.insert(7, -1e300);
    check_f64(&data, reference_sum_f64(&data));
    // The exact sum is 1e5 copies of the double nearest 1e-16, rounded once.
    let mut tiny = BigSum::new(1074, 1024);
    tiny.add_f64(1e-16);
    let (_, m, e) = decompose(1e-16);
    tiny.add(false, u128::from(m) * 99_999, e);
    assert_eq!(sum_exact(&data, None), tiny.to_f64());
    // The same largest value over and over: each bin of the blocked path moves as far
    // as it ever can from where it starts.
    let just_below_one = f64::from_bits(0x3FEF_FFFF_FFFF_FFFF);
    check_f64(
        &vec![just_below_one; 70_000],
        reference_sum_f64(&vec![just_below_one; 70_000]),
    );
    check_f64(&vec![-f64::MAX / 4.0; 3000], -f64::MAX * 750.0);
    // Alternating huge cancellations: the exact sum is the small leftover.
    let mut data = Vec::new();
    for i in 0..20_000 {
        let big = 2f64.powi(900 - (i % 50));
        data.extend_from_slice(&[big, 3.0 * 2f64.powi(-1000), -big]);
    }
    check_f64(&data, 20_000.0 * 3.0 * 2f64.powi(-1000));
}

#[test]
fn subnormals_and_signed_zeros() {
    check_f64(&[5e-324; 10], 5e-323);
    check_f64(&[f64::MIN_POSITIVE, -5e-324], f64::MIN_POSITIVE - 5e-324);
    let subs: Vec<f64> = (1..5000u64).map(|i| f64::from_bits(i * 977)).collect();
    check_f64(&subs, reference_sum_f64(&subs));
    check_f64(&[], 0.0);
    check_f64(&[-0.0], -0.0);
    check_f64(&[-0.0, -0.0, -0.0], -0.0);
    check_f64(&[-0.0, 0.0], 0.0);
    check_f64(&[0.0, -0.0], 0.0);
    check_f64(&[1.0, -1.0], 0.0);
    check_f64(&[-1.0, 1.0, -0.0], 0.0);
    check_f64(&[5e-324, -5e-324], 0.0);
    // Long arrays of zeros take the blocked paths.
    check_f64(&vec![-0.0; 100_000], -0.0);
    let mut zeros = vec![-0.0; 100_000];
    zeros[77_777] = 0.0;
    check_f64(&zeros, 0.0);
    check_f32(&[], 0.0);
    check_f32(&[-0.0; 3], -0.0);
    check_f32(&[-0.0, 0.0], 0.0);
    check_f32(&[f32::from_bits(1); 4], f32::from_bits(4));
}

#[test]
fn infinities_nan_and_overflow() {
    let inf = f64::INFINITY;
    check_f64(&[inf, 1.0], inf);
    check_f64(&[-inf, 1e308, 1e308], -inf);
    check_f64(&[inf, inf], inf);
    assert!(sum_exact(&[inf, -inf], None).is_nan());
    assert!(sum_exact(&[1.0, f64::NAN], None).is_nan());
    assert!(sum_exact(&[f64::NAN, inf], None).is_nan());
    // Overflow of the result, but not of the exact intermediate sums.
    check_f64(&[f64::MAX, f64::MAX], inf);
    check_f64(&[-f64::MAX, -f64::MAX], -inf);
    check_f64(&[f64::MAX, f64::MAX, -f64::MAX], f64::MAX);
    // MAX + half an ulp is a tie; MAX's significand is odd, so it rounds up to inf.
    check_f64(&[f64::MAX, 2f64.powi(970)], inf);
    check_f64(&[f64::MAX, 2f64.powi(969)], f64::MAX);
    check_f64(&[f64::MAX, 2f64.powi(970), -5e-324], f64::MAX);
    // Specials in long arrays (the blocked paths).
    let mut data = vec![1.0; 50_000];
    data[49_999] = -inf;
    check_f64(&data, -inf);
    data[3] = inf;
    assert!(sum_exact(&data, None).is_nan());
    check_f32(&[f32::MAX, f32::MAX], f32::INFINITY);
    check_f32(&[f32::MAX, f32::MAX, -f32::MAX], f32::MAX);
    check_f32(&[f32::NEG_INFINITY, 1.0], f32::NEG_INFINITY);
    assert!(sum_exact(&[f32::NAN, 1.0], None).is_nan());
}

#[test]
fn f32_rounds_once() {
    // Rounding to f64 first would lose 2^-60 and then round the tie 1 + 2^-24 to even.
    check_f32(&[1.0, 2f32.powi(-24), 2f32.powi(-60)], 1.0 + f32::EPSILON);
    check_f32(&[1.0, 2f32.powi(-24)], 1.0);
    check_f32(&[1e30, 1.0, -1e30], 1.0);
    let mut rng = Rng(5);
    for len in [3, 100, 5000, 300_000] {
        let data: Vec<f32> = (0..len).map(|_| rng.f32_in(0..255)).collect();
        check_f32(&data, reference_sum_f32(&data));
        let data: Vec<f32> = (0..len).map(|_| rng.f32_in(100..140)).collect();
        check_f32(&data, reference_sum_f32(&data));
    }
}

// ---------------------------------------------------------------------------------
// Random data against the reference.

/// Random data of several shapes: narrow ranges (the binned path), all exponents
/// (the large accumulator), and cancelling pairs.
fn random_f64(rng: &mut Rng, len: usize, shape: u64) -> Vec<f64> {
    match shape {
        0 => (0..len).map(|_| rng.f64_in(1000..1040)).collect(),
        // Up to 2^1013, so that the sum of a few hundred thousand cannot overflow.
        1 => (0..len).map(|_| rng.f64_in(0..2036)).collect(),
        _ => {
            let mut v: Vec<f64> = (0..len / 2)
                .flat_map(|_| {
                    let x = rng.f64_in(1500..1600);
                    [x, -x]
                })
                .collect();
            v.extend((0..len - v.len()).map(|_| rng.f64_in(900..1000)));
            // Shuffle so that cancelling pairs are far apart.
            for i in (1..v.len()).rev() {
                v.swap(i, rng.below(i as u64 + 1) as usize);
            }
            v
        }
    }
}

#[test]
fn random_data_matches_the_reference() {
    let mut rng = Rng(7);
    for len in [1, 2, 7, 1000, 1023, 1025, 4096, 100_003] {
        for shape in 0..3 {
            let data = random_f64(&mut rng, len, shape);
            let want = reference_sum_f64(&data);
            let got = sum_exact(&data, None);
            assert_eq!(got.to_bits(), want.to_bits(), "len {len}, shape {shape}");
        }
    }
}

#[test]
fn dot_matches_the_reference() {
    let mut rng = Rng(8);
    for len in [0, 1, 5, 1000, 1025, 50_000] {
        // Products within 2^-900..2^900: no overflow, no underflow of the error terms.
        let a: Vec<f64> = (0..len).map(|_| rng.f64_in(600..1450)).collect();
        let b: Vec<f64> = (0..len).map(|_| rng.f64_in(600..1450)).collect();
        let want = reference_dot_f64(&a, &b);
        assert_eq!(
            dot_exact(&a, &b, None).to_bits(),
            want.to_bits(),
            "len {len}"
        );
        let a: Vec<f32> = (0..len).map(|_| rng.f32_in(1..255)).collect();
        let b: Vec<f32> = (0..len).map(|_| rng.f32_in(1..255)).collect();
        let want = reference_dot_f32(&a, &b);
        assert_eq!(
            dot_exact(&a, &b, None).to_bits(),
            want.to_bits(),
            "f32 len {len}"
        );
    }
    // Hard cancellation: a . b where the products cancel to a tiny remainder.
    let a = [1e200, 1.0, -1e200, 3.0];
    let b = [1e100, 1e-300, 1e100, 1.0];
    assert_eq!(dot_exact(&a, &b, None), 3.0 + 1e-300);
    // Specials: an overflowing product counts as inf, as in IEEE arithmetic.
    assert_eq!(
        dot_exact(&[1e300f64, 1.0], &[1e300, 1.0], None),
        f64::INFINITY
    );
    assert!(dot_exact(&[1e300f64, -1e300], &[1e300, 1e300], None).is_nan());
    assert!(dot_exact(&[0.0f64], &[f64::INFINITY], None).is_nan());
    assert_eq!(
        dot_exact(&[-0.0f64, 0.0], &[1.0, -2.0], None).to_bits(),
        (-0.0f64).to_bits()
    );
    assert_eq!(dot_exact(&[-0.0f64, 0.0], &[1.0, 2.0], None).to_bits(), 0);
    // The state path agrees.
    let a: Vec<f64> = (0..3000).map(|_| rng.f64_in(900..1100)).collect();
    let b: Vec<f64> = (0..3000).map(|_| rng.f64_in(900..1100)).collect();
    let mut st = new_state();
    // SAFETY: a live state and two live slices of 3000 f64.
    let s = unsafe {
        parfor_exact_accumulate_dot(
            &mut st,
            a.as_ptr().cast(),
            b.as_ptr().cast(),
            3000,
            F64,
            std::ptr::null(),
        )
    };
    assert_eq!(s, parfor_status::PARFOR_OK);
    assert_eq!(
        result::<f64>(&st).to_bits(),
        reference_dot_f64(&a, &b).to_bits()
    );
}

// ---------------------------------------------------------------------------------
// Reproducibility and merging.

fn teams_and_schedules() -> Vec<parfor_options> {
    let mut all = Vec::new();
    for threads in [1, 2, 3, 4, 7] {
        for schedule in SCHEDULES {
            for chunk in [0, 1, 5000] {
                all.push(opts(threads, schedule, chunk));
            }
        }
    }
    all
}

#[test]
fn identical_across_team_sizes_and_schedules() {
    let mut rng = Rng(9);
    #[cfg(debug_assertions)]
    let len = 300_007;
    #[cfg(not(debug_assertions))]
    let len = 3_000_007;
    for shape in 0..3 {
        let data = random_f64(&mut rng, len, shape);
        let want = sum_exact(&data, Some(&opts(1, SCHEDULES[0], 0)));
        let mut st = new_state();
        accumulate(&mut st, &data, Some(&opts(1, SCHEDULES[0], 0)));
        for o in teams_and_schedules() {
            assert_eq!(
                sum_exact(&data, Some(&o)).to_bits(),
                want.to_bits(),
                "{o:?}"
            );
            // The state itself, not just its rounding, is the same.
            let mut other = new_state();
            accumulate(&mut other, &data, Some(&o));
            assert_eq!(other, st, "{o:?}");
        }
        if shape == 1 {
            assert_eq!(want.to_bits(), reference_sum_f64(&data).to_bits());
        }
    }
    let a: Vec<f32> = (0..len).map(|_| rng.f32_in(50..200)).collect();
    let want = sum_exact(&a, None);
    let dot_want = dot_exact(&a, &a, None);
    for o in teams_and_schedules() {
        assert_eq!(sum_exact(&a, Some(&o)).to_bits(), want.to_bits(), "{o:?}");
        assert_eq!(
            dot_exact(&a, &a, Some(&o)).to_bits(),
            dot_want.to_bits(),
            "{o:?}"
        );
    }
}

#[test]
fn merging_in_any_split_and_order_equals_the_whole() {
    let mut rng = Rng(10);
    let data = random_f64(&mut rng, 200_000, 1);
    let mut whole = new_state();
    accumulate(&mut whole, &data, None);
    let want = reference_sum_f64(&data);
    assert_eq!(result::<f64>(&whole).to_bits(), want.to_bits());
    for trial in 0..20 {
        // Random cut points, one state per piece.
        let pieces = 1 + rng.below(12) as usize;
        let mut cuts: Vec<usize> = (0..pieces - 1)
            .map(|_| rng.below(data.len() as u64) as usize)
            .collect();
        cuts.extend([0, data.len()]);
        cuts.sort_unstable();
        let mut states: Vec<parfor_exact_state> = cuts
            .windows(2)
            .map(|w| {
                let mut st = new_state();
                let o = opts(1 + trial % 3, SCHEDULES[trial % 4], 0);
                accumulate(&mut st, &data[w[0]..w[1]], Some(&o));
                st
            })
            .collect();
        // Merge in a random order and grouping: repeatedly merge two random states.
        while states.len() > 1 {
            let i = rng.below(states.len() as u64) as usize;
            let other = states.swap_remove(i);
            let j = rng.below(states.len() as u64) as usize;
            merge(&mut states[j], &other);
        }
        assert_eq!(states[0], whole, "trial {trial}: {pieces} pieces");
        // The bytes would survive a trip through another process.
        let bytes: Vec<u8> = states[0]
            .words
            .iter()
            .flat_map(|w| w.to_ne_bytes())
            .collect();
        assert_eq!(bytes.len(), parfor_exact_state_size());
    }
    // A state merged with itself doubles.
    let mut st = new_state();
    accumulate(&mut st, &[1.5, 2f64.powi(-60)], None);
    let copy = st;
    merge(&mut st, &copy);
    let p: *mut parfor_exact_state = &mut st;
    // SAFETY: the same live state as both arguments, which the API allows.
    assert_eq!(
        unsafe { parfor_exact_merge(p, p) },
        parfor_status::PARFOR_OK
    );
    assert_eq!(result::<f64>(&st), 6.0 + 2f64.powi(-58));
    // One state rounds to both types.
    assert_eq!(result::<f32>(&st), 6.0);
}

// ---------------------------------------------------------------------------------
// Python's math.fsum, an implementation independent of ours.

fn python_fsum(data: &[f64]) -> u64 {
    let dir = std::env::temp_dir().join(format!("parfor-exact-fsum-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("data-{}.bin", data.len()));
    let bytes: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(&path, bytes).unwrap();
    let script = "import array, math, struct, sys\n\
                  a = array.array('d')\n\
                  a.frombytes(open(sys.argv[1], 'rb').read())\n\
                  if sys.byteorder != 'little': a.byteswap()\n\
                  print(struct.unpack('<Q', struct.pack('<d', math.fsum(a)))[0])";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .output()
        .expect("python3 runs (it is part of the test environment)");
    assert!(
        out.status.success(),
        "python3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&path).ok();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn matches_python_fsum() {
    let mut rng = Rng(11);
    let mut cases: Vec<Vec<f64>> = vec![
        vec![1e308, 1.0, -1e308],
        vec![0.1; 10],
        // Not all -0.0: fsum gives +0.0 there, where we follow IEEE addition (-0.0).
        vec![-0.0, 0.0, -0.0],
        vec![1.0, 2f64.powi(-53), 5e-324],
        (1..3000u64)
            .map(|i| f64::from_bits(i * 1_000_003))
            .collect(),
    ];
    for shape in 0..3 {
        cases.push(random_f64(&mut rng, 100_000, shape));
    }
    // Mixed magnitudes below 2^1000, so that fsum's own partial sums cannot overflow
    // (it raises OverflowError where we would still be exact).
    cases.push((0..50_000).map(|_| rng.f64_in(0..2000)).collect());
    for data in &cases {
        let ours = sum_exact(data, None).to_bits();
        assert_eq!(ours, python_fsum(data), "len {}", data.len());
    }
}

// ---------------------------------------------------------------------------------
// Bad input: the status, the message, and an untouched output.

const SENTINEL: f64 = -123.25;

fn expect(status: parfor_status, want: parfor_status, words: &[&str]) {
    assert_eq!(status, want, "last error: {}", last_error());
    let msg = last_error();
    for w in words {
        assert!(msg.contains(w), "message {msg:?} lacks {w:?}");
    }
}

#[test]
fn bad_arguments_are_rejected() {
    use parfor_status::*;
    let data = [1.0f64, 2.0];
    let d = data.as_ptr() as *const c_void;
    let mut out = SENTINEL;
    let o: *mut c_void = (&mut out as *mut f64).cast();
    let null: *const c_void = std::ptr::null();
    let defaults: *const parfor_options = std::ptr::null();
    let mut st = new_state();
    accumulate(&mut st, &[7.0f64], None);
    let before = st;
    // SAFETY (whole block): every pointer is NULL, misaligned on purpose, or points to
    // live memory of the size the function reads or writes.
    unsafe {
        // NULLs.
        expect(
            parfor_exact_init(std::ptr::null_mut()),
            PARFOR_ERR_NULL_ARGUMENT,
            &["`st`"],
        );
        expect(
            parfor_exact_accumulate(std::ptr::null_mut(), d, 2, F64, defaults),
            PARFOR_ERR_NULL_ARGUMENT,
            &["`st`"],
        );
        expect(
            parfor_exact_accumulate(&mut st, null, 2, F64, defaults),
            PARFOR_ERR_NULL_ARGUMENT,
            &["`data`"],
        );
        expect(
            parfor_exact_accumulate_dot(&mut st, d, null, 2, F64, defaults),
            PARFOR_ERR_NULL_ARGUMENT,
            &["`b`"],
        );
        expect(
            parfor_exact_merge(&mut st, std::ptr::null()),
            PARFOR_ERR_NULL_ARGUMENT,
            &["`other`"],
        );
        expect(
            parfor_exact_merge(std::ptr::null_mut(), &before),
            PARFOR_ERR_NULL_ARGUMENT,
            &["`acc`"],
        );
        expect(
            parfor_exact_result(std::ptr::null(), F64, o),
            PARFOR_ERR_NULL_ARGUMENT,
            &["`st`"],
        );
        expect(
            parfor_exact_result(&st, F64, std::ptr::null_mut()),
            PARFOR_ERR_NULL_ARGUMENT,
            &["`out`"],
        );
        expect(
            parfor_dot_exact(d, d, 2, F64, defaults, std::ptr::null_mut()),
            PARFOR_ERR_NULL_ARGUMENT,
            &["`out`"],
        );
        expect(
            parfor_dot_exact(null, d, 2, F64, defaults, o),
            PARFOR_ERR_NULL_ARGUMENT,
            &["`a`"],
        );
        // Dtypes: out of the enum, or not a float type.
        for (dt, word) in [
            (-1, "-1, not a parfor_dtype"),
            (10, "10, not a parfor_dtype"),
            (5, "PARFOR_I64"),
        ] {
            expect(
                parfor_exact_accumulate(&mut st, d, 2, dt, defaults),
                PARFOR_ERR_INVALID_ARGUMENT,
                &[word],
            );
            expect(
                parfor_exact_accumulate_dot(&mut st, d, d, 2, dt, defaults),
                PARFOR_ERR_INVALID_ARGUMENT,
                &[word],
            );
            expect(
                parfor_exact_result(&st, dt, o),
                PARFOR_ERR_INVALID_ARGUMENT,
                &[word],
            );
            expect(
                parfor_dot_exact(d, d, 2, dt, defaults, o),
                PARFOR_ERR_INVALID_ARGUMENT,
                &[word],
            );
        }
        expect(
            parfor_dot_exact(d, d, 2, 4, defaults, o),
            PARFOR_ERR_INVALID_ARGUMENT,
            &["parfor_dot_exact takes PARFOR_F32 or PARFOR_F64, not PARFOR_I32"],
        );
        let mut r = 0.0f64;
        expect(
            parfor_reduce(
                d,
                2,
                4,
                parfor_op::PARFOR_SUM_EXACT as i32,
                defaults,
                (&mut r as *mut f64).cast(),
            ),
            PARFOR_ERR_INVALID_ARGUMENT,
            &["PARFOR_SUM_EXACT is not defined for PARFOR_I32"],
        );
        // Length overflow and misaligned data.
        expect(
            parfor_exact_accumulate(&mut st, d, usize::MAX / 4, F64, defaults),
            PARFOR_ERR_INVALID_ARGUMENT,
            &["`len`", "overflow"],
        );
        expect(
            parfor_dot_exact(d, d, usize::MAX / 2, F32, defaults, o),
            PARFOR_ERR_INVALID_ARGUMENT,
            &["`len`"],
        );
        let odd = (d as *const u8).add(1) as *const c_void;
        expect(
            parfor_exact_accumulate(&mut st, odd, 1, F64, defaults),
            PARFOR_ERR_MISALIGNED,
            &["`data`", "8 bytes"],
        );
        expect(
            parfor_dot_exact(d, odd, 1, F64, defaults, o),
            PARFOR_ERR_MISALIGNED,
            &["`b`"],
        );
        // Bad options.
        let mut bad = opts(1, SCHEDULES[0], 0);
        bad.size = 3;
        expect(
            parfor_exact_accumulate(&mut st, d, 2, F64, &bad),
            PARFOR_ERR_INVALID_ARGUMENT,
            &["opts->size is 3"],
        );
        let mut bad = opts(1, SCHEDULES[0], 0);
        bad.schedule = 99;
        expect(
            parfor_dot_exact(d, d, 2, F64, &bad, o),
            PARFOR_ERR_INVALID_ARGUMENT,
            &["opts->schedule is 99"],
        );
        let mut bad = opts(1, SCHEDULES[0], 0);
        bad.num_threads = 5000;
        expect(
            parfor_exact_accumulate_dot(&mut st, d, d, 2, F64, &bad),
            PARFOR_ERR_INVALID_ARGUMENT,
            &["num_threads"],
        );
        // Misaligned states.
        let mut raw = vec![0u64; PARFOR_EXACT_STATE_WORDS + 1];
        let bytes = raw.as_mut_ptr() as *mut u8;
        let skew = bytes.add(4) as *mut parfor_exact_state;
        expect(
            parfor_exact_init(skew),
            PARFOR_ERR_MISALIGNED,
            &["`st`", "aligned to 8 bytes"],
        );
        expect(
            parfor_exact_merge(&mut st, skew),
            PARFOR_ERR_MISALIGNED,
            &["`other`"],
        );
        expect(
            parfor_exact_result(skew, F64, o),
            PARFOR_ERR_MISALIGNED,
            &["`st`"],
        );
    }
    assert_eq!(out, SENTINEL, "*out written by a failing call");
    assert_eq!(st, before, "state changed by a failing call");
    assert_eq!(result::<f64>(&st), 7.0);
}

#[test]
fn corrupted_states_are_rejected() {
    use parfor_status::*;
    let mut good = new_state();
    accumulate(&mut good, &[1.0f64, -3.5, 2f64.powi(-1000)], None);
    let top = PARFOR_EXACT_STATE_WORDS - 1;
    let mut swapped = good;
    swapped.words.iter_mut().for_each(|w| *w = w.swap_bytes());
    let corruptions: Vec<(parfor_exact_state, &str)> = vec![
        (
            parfor_exact_state {
                words: [0; PARFOR_EXACT_STATE_WORDS],
            },
            "parfor_exact_init",
        ),
        (swapped, "byte order"),
        (
            {
                let mut s = good;
                s.words[0] += 1;
                s
            },
            "not the tag",
        ),
        (
            {
                let mut s = good;
                s.words[1] = 1 << 5;
                s
            },
            "flags",
        ),
        (
            {
                let mut s = good;
                s.words[1] = -1;
                s
            },
            "flags",
        ),
        (
            {
                let mut s = good;
                s.words[20] = -1;
                s
            },
            "word 20",
        ),
        (
            {
                let mut s = good;
                s.words[3] = 1 << 32;
                s
            },
            "word 3",
        ),
        (
            {
                let mut s = good;
                s.words[top] = 1 << 62;
                s
            },
            "2^62",
        ),
        (
            {
                let mut s = good;
                s.words[top] = i64::MIN;
                s
            },
            "2^62",
        ),
    ];
    for (bad, why) in &corruptions {
        let mut acc = good;
        let mut out = SENTINEL;
        let o: *mut c_void = (&mut out as *mut f64).cast();
        let data = [1.0f64];
        // SAFETY: live, aligned states and buffers.
        unsafe {
            let mut target = *bad;
            expect(
                parfor_exact_result(bad, F64, o),
                PARFOR_ERR_INVALID_ARGUMENT,
                &["`st` is not a valid parfor_exact_state", why],
            );
            expect(
                parfor_exact_merge(&mut acc, bad),
                PARFOR_ERR_INVALID_ARGUMENT,
                &["`other`", why],
            );
            expect(
                parfor_exact_merge(&mut target, &good),
                PARFOR_ERR_INVALID_ARGUMENT,
                &["`acc`", why],
            );
            expect(
                parfor_exact_accumulate(
                    &mut target,
                    data.as_ptr().cast(),
                    1,
                    F64,
                    std::ptr::null(),
                ),
                PARFOR_ERR_INVALID_ARGUMENT,
                &["`st`", why],
            );
            assert_eq!(target, *bad, "a rejected state is left as it was");
        }
        assert_eq!(out, SENTINEL);
        assert_eq!(acc, good);
    }
    // A merge whose result would leave the state's range fails and changes nothing.
    let mut near = new_state();
    near.words[top] = (1 << 62) - 1;
    let copy = near;
    // SAFETY: two live states.
    expect(
        unsafe { parfor_exact_merge(&mut near, &copy) },
        PARFOR_ERR_INVALID_ARGUMENT,
        &["range"],
    );
    assert_eq!(near, copy);
    assert_eq!(result::<f64>(&near), f64::INFINITY);
}
