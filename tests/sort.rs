//! parfor_sort, parfor_argsort and parfor_sort_with through the C ABI: every dtype
//! and input pattern against the standard library's stable sort in numpy's order,
//! results equal for every team size, argsorts equal to the stable reference,
//! comparator sorts stable and safe with comparators that are not orderings, and
//! every bad input (status, message, buffers untouched).

mod common;

use common::{last_error, opts, Rng};
use std::cmp::Ordering;
use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use parfor::ffi::parfor_dtype::*;
use parfor::ffi::parfor_schedule::*;
use parfor::ffi::parfor_status::*;
use parfor::ffi::*;

trait Elem: Copy + PartialEq + std::fmt::Debug + Default {
    const DTYPE: parfor_dtype;
    fn from_u64(v: u64) -> Self;
    /// numpy's order: NaN last, -0.0 == 0.0.
    fn order(a: &Self, b: &Self) -> Ordering;
    fn bits(&self) -> u64;
    fn nan(&self) -> bool {
        false
    }
}

macro_rules! int_elem {
    ($($t:ty => $d:expr),*) => {$(
        impl Elem for $t {
            const DTYPE: parfor_dtype = $d;
            fn from_u64(v: u64) -> Self { v as $t }
            fn order(a: &Self, b: &Self) -> Ordering { a.cmp(b) }
            fn bits(&self) -> u64 { *self as u64 }
        }
    )*};
}
int_elem!(i8 => PARFOR_I8, i16 => PARFOR_I16, i32 => PARFOR_I32, i64 => PARFOR_I64,
          u8 => PARFOR_U8, u16 => PARFOR_U16, u32 => PARFOR_U32, u64 => PARFOR_U64);

macro_rules! float_elem {
    ($($t:ident => $d:expr, $s:expr),*) => {$(
        impl Elem for $t {
            const DTYPE: parfor_dtype = $d;
            fn from_u64(v: u64) -> Self {
                // Mostly ordinary values, with NaN (of both signs), infinities and
                // both zeros mixed in.
                match v % 23 {
                    0 => $t::NAN,
                    1 => -$t::NAN,
                    2 => $t::INFINITY,
                    3 => $t::NEG_INFINITY,
                    4 => 0.0,
                    5 => -0.0,
                    _ => ((v >> 8) as i64 % 2001 - 1000) as $t * $s,
                }
            }
            fn order(a: &Self, b: &Self) -> Ordering {
                match (a.is_nan(), b.is_nan()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    _ => a.partial_cmp(b).unwrap(),
                }
            }
            fn bits(&self) -> u64 { self.to_bits() as u64 }
            fn nan(&self) -> bool { self.is_nan() }
        }
    )*};
}
float_elem!(f32 => PARFOR_F32, 0.37, f64 => PARFOR_F64, 1.3e-3);

/// Inputs of each pattern the issue names.
fn patterns<T: Elem>(n: usize, seed: u64) -> Vec<(&'static str, Vec<T>)> {
    let mut rng = Rng(seed);
    let random: Vec<T> = (0..n).map(|_| T::from_u64(rng.next())).collect();
    let mut sorted = random.clone();
    sorted.sort_by(T::order);
    let reversed: Vec<T> = sorted.iter().rev().copied().collect();
    let few: Vec<T> = (0..n)
        .map(|_| T::from_u64(rng.below(4) * 0x1000 + 6))
        .collect();
    let wide: Vec<T> = (0..n).map(|_| T::from_u64(rng.next() | 0x40)).collect();
    vec![
        ("random", random),
        ("sorted", sorted),
        ("reversed", reversed),
        ("few distinct", few),
        ("wide", wide),
    ]
}

/// Stable reference order of positions.
fn reference_argsort<T: Elem>(x: &[T], descending: bool) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| {
        let (va, vb) = (&x[a], &x[b]);
        if descending {
            // NaN still last.
            let nan_a = is_nan(va);
            let nan_b = is_nan(vb);
            match (nan_a, nan_b) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                _ => T::order(vb, va),
            }
        } else {
            T::order(va, vb)
        }
    });
    idx
}

fn is_nan<T: Elem>(v: &T) -> bool {
    v.nan()
}

fn check_sorted_equal<T: Elem>(got: &[T], want_order: &[usize], x: &[T], what: &str) {
    // Equal up to ties: the same key sequence, and the same multiset of bits.
    for (i, (&g, &w)) in got.iter().zip(want_order).enumerate() {
        assert_eq!(
            T::order(&g, &x[w]),
            Ordering::Equal,
            "{what}: position {i}: {g:?} vs {:?}",
            x[w]
        );
    }
    let mut a: Vec<u64> = got.iter().map(T::bits).collect();
    let mut b: Vec<u64> = x.iter().map(T::bits).collect();
    a.sort_unstable();
    b.sort_unstable();
    assert!(a == b, "{what}: not a permutation of the input");
}

fn sort_case<T: Elem>(sizes: &[usize]) {
    for &n in sizes {
        for (name, x) in patterns::<T>(n, n as u64 + 1) {
            for descending in [false, true] {
                let want = reference_argsort(&x, descending);
                let mut first: Option<Vec<u64>> = None;
                for threads in [1, 2, 3, 4] {
                    for stable in [false, true] {
                        let flags = (descending as u32) * PARFOR_SORT_DESCENDING
                            + (stable as u32) * PARFOR_SORT_STABLE;
                        let o = opts(threads, PARFOR_SCHEDULE_AUTO, 0);
                        let what = format!(
                            "{:?} n {n} {name} desc {descending} {threads} thr",
                            T::DTYPE
                        );
                        let mut v = x.clone();
                        // SAFETY: a live vector of n elements of the dtype.
                        let s = unsafe {
                            parfor_sort(v.as_mut_ptr().cast(), n, T::DTYPE as i32, flags, &o)
                        };
                        assert_eq!(s, PARFOR_OK, "{what}: {}", last_error());
                        check_sorted_equal(&v, &want, &x, &what);
                        // The typed sort is stable: the bits equal the stable reference's.
                        let bits: Vec<u64> = v.iter().map(T::bits).collect();
                        let want_bits: Vec<u64> = want.iter().map(|&i| x[i].bits()).collect();
                        assert!(bits == want_bits, "{what}: not the stable order");
                        match &first {
                            None => first = Some(bits),
                            Some(f) => assert!(*f == bits, "{what}: differs from 1 thread"),
                        }
                        let mut idx = vec![usize::MAX; n];
                        // SAFETY: live buffers of n elements and n indices.
                        let s = unsafe {
                            parfor_argsort(
                                x.as_ptr().cast(),
                                n,
                                T::DTYPE as i32,
                                flags,
                                &o,
                                idx.as_mut_ptr(),
                            )
                        };
                        assert_eq!(s, PARFOR_OK, "{what}: {}", last_error());
                        assert_eq!(
                            idx, want,
                            "{what}: argsort differs from the stable reference"
                        );
                    }
                }
            }
        }
    }
}

const SIZES: [usize; 7] = [0, 1, 2, 255, 256, 3001, 40_003];

#[test]
fn sort_i8() {
    sort_case::<i8>(&SIZES);
}
#[test]
fn sort_i16() {
    sort_case::<i16>(&SIZES);
}
#[test]
fn sort_i32() {
    sort_case::<i32>(&SIZES);
}
#[test]
fn sort_i64() {
    sort_case::<i64>(&SIZES);
}
#[test]
fn sort_u8() {
    sort_case::<u8>(&SIZES);
}
#[test]
fn sort_u16() {
    sort_case::<u16>(&SIZES);
}
#[test]
fn sort_u32() {
    sort_case::<u32>(&SIZES);
}
#[test]
fn sort_u64() {
    sort_case::<u64>(&SIZES);
}
#[test]
fn sort_f32() {
    sort_case::<f32>(&SIZES);
}
#[test]
fn sort_f64() {
    sort_case::<f64>(&SIZES);
}
#[test]
fn sort_large() {
    sort_case::<f64>(&[300_007]);
    sort_case::<u64>(&[300_007]);
}

/// A 24-byte record sorted by `key` with a C comparator.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
struct Rec {
    key: i32,
    pos: u32,
    pad: [u64; 2],
}

unsafe extern "C-unwind" fn by_key(_ctx: *mut c_void, a: *const c_void, b: *const c_void) -> i32 {
    // SAFETY: parfor passes pointers to whole Rec elements.
    let (a, b) = unsafe { (&*(a as *const Rec), &*(b as *const Rec)) };
    (a.key > b.key) as i32 - (a.key < b.key) as i32
}

/// Answers at random: not an ordering at all.
unsafe extern "C-unwind" fn random_answer(
    ctx: *mut c_void,
    _a: *const c_void,
    _b: *const c_void,
) -> i32 {
    // SAFETY: ctx is the AtomicU64 the test passes.
    let state = unsafe { &*(ctx as *const AtomicU64) };
    let v = state.fetch_add(0x9E37_79B9_7F4A_7C15, AtomicOrdering::Relaxed);
    let v = (v ^ (v >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9) >> 62;
    v as i32 - 1
}

unsafe extern "C-unwind" fn always_less(
    _c: *mut c_void,
    _a: *const c_void,
    _b: *const c_void,
) -> i32 {
    -1
}

fn records(n: usize, seed: u64) -> Vec<Rec> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| Rec {
            key: rng.below(50) as i32 - 25,
            pos: i as u32,
            pad: [i as u64, !(i as u64)],
        })
        .collect()
}

#[test]
fn sort_with_stable_and_descending() {
    for n in [0usize, 1, 2, 17, 1000, 50_001] {
        let x = records(n, n as u64);
        for descending in [false, true] {
            let mut want = x.clone();
            if descending {
                want.sort_by_key(|r| std::cmp::Reverse(r.key));
            } else {
                want.sort_by_key(|r| r.key);
            }
            for threads in [1, 2, 3] {
                for stable in [false, true] {
                    let flags = (descending as u32) * PARFOR_SORT_DESCENDING
                        + (stable as u32) * PARFOR_SORT_STABLE;
                    let mut v = x.clone();
                    let o = opts(threads, PARFOR_SCHEDULE_AUTO, 0);
                    // SAFETY: n live records of size_of::<Rec>() bytes.
                    let s = unsafe {
                        parfor_sort_with(
                            v.as_mut_ptr().cast(),
                            n,
                            size_of::<Rec>(),
                            Some(by_key),
                            std::ptr::null_mut(),
                            flags,
                            &o,
                        )
                    };
                    assert_eq!(s, PARFOR_OK, "{}", last_error());
                    if stable {
                        assert_eq!(v, want, "n {n} desc {descending} {threads} threads");
                    } else {
                        let keys: Vec<i32> = v.iter().map(|r| r.key).collect();
                        let want_keys: Vec<i32> = want.iter().map(|r| r.key).collect();
                        assert_eq!(keys, want_keys);
                    }
                }
            }
        }
    }
}

#[test]
fn sort_with_inconsistent_comparators_keeps_every_element() {
    for n in [2usize, 33, 5000, 70_001] {
        let x = records(n, 99);
        for (name, cmp) in [
            (
                "random",
                random_answer
                    as unsafe extern "C-unwind" fn(
                        *mut c_void,
                        *const c_void,
                        *const c_void,
                    ) -> i32,
            ),
            ("always less", always_less),
        ] {
            for threads in [1, 2, 4] {
                let state = AtomicU64::new(n as u64);
                let mut v = x.clone();
                let o = opts(threads, PARFOR_SCHEDULE_AUTO, 0);
                // SAFETY: n live records; ctx is the atomic the comparator reads.
                let s = unsafe {
                    parfor_sort_with(
                        v.as_mut_ptr().cast(),
                        n,
                        size_of::<Rec>(),
                        Some(cmp),
                        &state as *const AtomicU64 as *mut c_void,
                        PARFOR_SORT_STABLE,
                        &o,
                    )
                };
                assert_eq!(s, PARFOR_OK, "{name}: {}", last_error());
                let mut seen = vec![false; n];
                for r in &v {
                    assert_eq!(
                        r.pad,
                        [r.pos as u64, !(r.pos as u64)],
                        "{name}: record torn"
                    );
                    assert!(!seen[r.pos as usize], "{name}: record {} twice", r.pos);
                    seen[r.pos as usize] = true;
                }
                assert!(seen.iter().all(|&s| s), "{name}: a record was lost");
            }
        }
    }
}

fn expect_status(what: &str, s: parfor_status, want: parfor_status, needle: &str) {
    assert_eq!(s, want, "{what}: {}", last_error());
    let msg = last_error();
    assert!(
        msg.contains(needle),
        "{what}: message {msg:?} lacks {needle:?}"
    );
}

#[test]
fn bad_input() {
    let null = std::ptr::null();
    let orig: Vec<f64> = (0..64).map(|i| (64 - i) as f64).collect();
    let mut x = orig.clone();
    let p = x.as_mut_ptr() as *mut c_void;
    let f64d = PARFOR_F64 as i32;
    unsafe {
        expect_status(
            "sort NULL",
            parfor_sort(std::ptr::null_mut(), 4, f64d, 0, null),
            PARFOR_ERR_NULL_ARGUMENT,
            "`data` is NULL",
        );
        for v in [-1, 10, i32::MAX] {
            expect_status(
                "sort dtype",
                parfor_sort(p, 64, v, 0, null),
                PARFOR_ERR_INVALID_ARGUMENT,
                "not a parfor_dtype",
            );
        }
        for f in [4u32, 7, 0x8000_0000] {
            expect_status(
                "sort flags",
                parfor_sort(p, 64, f64d, f, null),
                PARFOR_ERR_INVALID_ARGUMENT,
                "argument `flags`",
            );
        }
        expect_status(
            "sort overflow",
            parfor_sort(p, usize::MAX / 2, f64d, 0, null),
            PARFOR_ERR_INVALID_ARGUMENT,
            "overflow",
        );
        expect_status(
            "sort misaligned",
            parfor_sort((p as *mut u8).add(4).cast(), 8, f64d, 0, null),
            PARFOR_ERR_MISALIGNED,
            "not aligned",
        );
        let mut small = opts(0, PARFOR_SCHEDULE_AUTO, 0);
        small.size = 1;
        expect_status(
            "sort opts",
            parfor_sort(p, 64, f64d, 0, &small),
            PARFOR_ERR_INVALID_ARGUMENT,
            "opts->size",
        );
        let mut big = opts(0, PARFOR_SCHEDULE_AUTO, 0);
        big.num_threads = 1_000_000;
        expect_status(
            "sort threads",
            parfor_sort(p, 64, f64d, 0, &big),
            PARFOR_ERR_INVALID_ARGUMENT,
            "opts->num_threads",
        );
        assert_eq!(x, orig, "a refused sort wrote");

        let mut idx = vec![777usize; 64];
        let ip = idx.as_mut_ptr();
        expect_status(
            "argsort NULL data",
            parfor_argsort(std::ptr::null(), 64, f64d, 0, null, ip),
            PARFOR_ERR_NULL_ARGUMENT,
            "`data` is NULL",
        );
        expect_status(
            "argsort NULL indices",
            parfor_argsort(p, 64, f64d, 0, null, std::ptr::null_mut()),
            PARFOR_ERR_NULL_ARGUMENT,
            "`indices` is NULL",
        );
        expect_status(
            "argsort dtype",
            parfor_argsort(p, 64, 11, 0, null, ip),
            PARFOR_ERR_INVALID_ARGUMENT,
            "not a parfor_dtype",
        );
        expect_status(
            "argsort flags",
            parfor_argsort(p, 64, f64d, 8, null, ip),
            PARFOR_ERR_INVALID_ARGUMENT,
            "argument `flags`",
        );
        expect_status(
            "argsort overflow",
            parfor_argsort(p, usize::MAX / 4, f64d, 0, null, ip),
            PARFOR_ERR_INVALID_ARGUMENT,
            "overflow",
        );
        expect_status(
            "argsort misaligned data",
            parfor_argsort((p as *mut u8).add(1).cast(), 8, f64d, 0, null, ip),
            PARFOR_ERR_MISALIGNED,
            "`data`",
        );
        expect_status(
            "argsort misaligned indices",
            parfor_argsort(p, 8, f64d, 0, null, (ip as *mut u8).add(4).cast()),
            PARFOR_ERR_MISALIGNED,
            "`indices`",
        );
        expect_status(
            "argsort overlap",
            parfor_argsort(p, 64, f64d, 0, null, p.cast()),
            PARFOR_ERR_INVALID_ARGUMENT,
            "overlap",
        );
        assert!(idx.iter().all(|&i| i == 777), "a refused argsort wrote");
        assert_eq!(x, orig, "a refused argsort wrote the data");

        let size = size_of::<f64>();
        expect_status(
            "sort_with NULL base",
            parfor_sort_with(
                std::ptr::null_mut(),
                4,
                size,
                Some(by_key),
                std::ptr::null_mut(),
                0,
                null,
            ),
            PARFOR_ERR_NULL_ARGUMENT,
            "`base` is NULL",
        );
        expect_status(
            "sort_with NULL cmp",
            parfor_sort_with(p, 64, size, None, std::ptr::null_mut(), 0, null),
            PARFOR_ERR_NULL_ARGUMENT,
            "`cmp` is NULL",
        );
        expect_status(
            "sort_with size 0",
            parfor_sort_with(p, 64, 0, Some(by_key), std::ptr::null_mut(), 0, null),
            PARFOR_ERR_INVALID_ARGUMENT,
            "`size` is 0",
        );
        expect_status(
            "sort_with overflow",
            parfor_sort_with(
                p,
                usize::MAX / 3,
                4,
                Some(by_key),
                std::ptr::null_mut(),
                0,
                null,
            ),
            PARFOR_ERR_INVALID_ARGUMENT,
            "overflow",
        );
        expect_status(
            "sort_with flags",
            parfor_sort_with(p, 64, size, Some(by_key), std::ptr::null_mut(), 0x10, null),
            PARFOR_ERR_INVALID_ARGUMENT,
            "argument `flags`",
        );
        expect_status(
            "sort_with opts",
            parfor_sort_with(p, 64, size, Some(by_key), std::ptr::null_mut(), 0, &small),
            PARFOR_ERR_INVALID_ARGUMENT,
            "opts->size",
        );
        assert_eq!(x, orig, "a refused sort_with wrote");
        // Empty input is fine and calls nothing.
        assert_eq!(parfor_sort(p, 0, f64d, 0, null), PARFOR_OK);
        assert_eq!(
            parfor_sort_with(p, 0, size, Some(always_less), std::ptr::null_mut(), 0, null),
            PARFOR_OK
        );
        assert_eq!(x, orig);
    }
}

/// Not a check of speed (timing is never asserted): prints how long the parallel
/// sort of 1e5 few-distinct doubles takes, for a look with --nocapture.
#[test]
#[ignore]
fn print_sort_time() {
    let mut rng = Rng(3);
    let distinct: Vec<f64> = (0..16).map(|_| rng.next() as f64).collect();
    let x: Vec<f64> = (0..100_000)
        .map(|_| distinct[rng.below(16) as usize])
        .collect();
    for threads in [1, 2] {
        let o = opts(threads, PARFOR_SCHEDULE_AUTO, 0);
        for _ in 0..3 {
            let mut v = x.clone();
            let t = std::time::Instant::now();
            // SAFETY: live vector.
            unsafe { parfor_sort(v.as_mut_ptr().cast(), v.len(), PARFOR_F64 as i32, 0, &o) };
            println!("{threads} threads: {:?}", t.elapsed());
        }
    }
}
