use super::radix::SortKey;
use super::*;
use crate::schedule::Options;

/// A linear congruential generator (Knuth's MMIX constants): its state after each
/// step. The tests take the high bits, the better ones.
fn lcg(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state
    }
}

/// Sorts and argsorts `x` with each team size in `threads`, against the standard
/// library's stable sort of the keys and of their positions.
fn check_stable(name: &str, x: &[u64], threads: &[usize]) {
    let n = x.len();
    let mut want = x.to_vec();
    want.sort();
    let mut want_idx: Vec<usize> = (0..n).collect();
    want_idx.sort_by_key(|&i| x[i]);
    for &threads in threads {
        let opts = Options::with_threads(threads).unwrap();
        let mut v = x.to_vec();
        sort(&mut v, SortOrder::default(), &opts).unwrap();
        assert!(v == want, "{name}, n {n}, {threads} threads: not sorted");
        let mut idx = vec![0; n];
        argsort(x, SortOrder::default(), &opts, &mut idx).unwrap();
        assert!(
            idx == want_idx,
            "{name}, n {n}, {threads} threads: not stable"
        );
    }
}

#[test]
fn float_keys_follow_numpy_order() {
    let order = [
        f64::NEG_INFINITY,
        -1e300,
        -1.0,
        -f64::MIN_POSITIVE,
        -0.0,
        0.0,
        f64::MIN_POSITIVE,
        1.0,
        f64::INFINITY,
    ];
    for w in order.windows(2) {
        assert!(w[0].key() <= w[1].key(), "{} {}", w[0], w[1]);
    }
    assert_eq!((-0.0f64).key(), 0.0f64.key());
    assert_eq!(f64::NAN.key(), (-f64::NAN).key());
    assert!(f64::INFINITY.key() < f64::NAN.key());
    assert!(f64::NEG_INFINITY.key_desc() < f64::NAN.key_desc());
    assert!(1.0f64.key_desc() < 0.0f64.key_desc());
}

#[test]
fn signed_keys_in_order() {
    let v = [i32::MIN, -5, -1, 0, 1, 7, i32::MAX];
    for w in v.windows(2) {
        assert!(w[0].key() < w[1].key());
    }
}

#[test]
fn radix_matches_std_sort() {
    let mut next = lcg(12345);
    for n in [0usize, 1, 2, 255, 256, 1000, 40_000] {
        // Under Miri the small sizes only: it runs the big one minutes long.
        if cfg!(miri) && n > 1000 {
            continue;
        }
        let mut v: Vec<i64> = (0..n).map(|_| (next() >> 20) as i64 - (1 << 43)).collect();
        let mut expect = v.clone();
        expect.sort();
        sort(&mut v, SortOrder::default(), &Options::default()).unwrap();
        assert_eq!(v, expect, "n {n}");
    }
}

/// Inputs shaped to take each branch of the parallel radix sort: a top byte that
/// splits into pieces long enough to be split again by the team, a byte that differs
/// across the input but is constant inside each piece (passed over without a move),
/// pieces of equal keys, and pieces sorted by LSD, by MSD or by insertion sort. Each
/// result is checked against the standard library's stable sort, and the positions
/// (argsort) against a stable sort of the positions.
#[test]
fn radix_branches_match_a_stable_reference() {
    if cfg!(miri) {
        // Hundreds of thousands of elements: minutes under Miri; radix_matches_std_sort
        // covers the serial code there.
        return;
    }
    let mut raw = lcg(99);
    let mut next = move || raw() >> 16;
    let n = 200_000;
    let shapes: Vec<(&str, Vec<u64>)> = vec![
        (
            // Two top-byte values; byte 6 set by the top byte (constant in each piece).
            "split twice",
            (0..n)
                .map(|_| {
                    let hi = next() & 1;
                    (hi << 63) | ((hi * 0x5a) << 48) | (next() & 0xff_ffff_ffff)
                })
                .collect(),
        ),
        (
            // One huge piece of equal keys beside small ones of varied keys.
            "equal piece",
            (0..n)
                .map(|i| if i % 8 == 0 { next() & 0xffff } else { 7 << 56 })
                .collect(),
        ),
        (
            // Keys that differ in the top byte only after many equal ones: short
            // pieces below INSERTION_MAX_LEN.
            "short pieces",
            (0..n)
                .map(|_| (next() % 300) << 56 | (next() & 3))
                .collect(),
        ),
    ];
    for (name, x) in shapes {
        check_stable(name, &x, &[1, 2, 3, 4]);
        for threads in [1, 2, 3, 4] {
            let opts = Options::with_threads(threads).unwrap();
            // Signed keys: the same shapes through the sign flip, descending too.
            let xs: Vec<i64> = x.iter().map(|&u| u as i64).collect();
            let mut idx = vec![0; n];
            let desc = SortOrder {
                descending: true,
                stable: true,
            };
            argsort(&xs, desc, &opts, &mut idx).unwrap();
            let mut want_desc: Vec<usize> = (0..n).collect();
            want_desc.sort_by_key(|&i| std::cmp::Reverse(xs[i]));
            assert!(idx == want_desc, "{name}, {threads} threads: descending");
        }
    }
}

/// Keys with few values in every byte: a few distinct keys (pieces of one value,
/// found from the count of their first constant byte), and independent bytes of
/// four values each (the top-byte split of in-cache ranges, again in each bucket),
/// and random keys whose sampled places hold one key (the few-keys guess wrong).
/// The small size sorts on one thread, the large one on teams.
#[test]
fn few_values_match_a_stable_reference() {
    if cfg!(miri) {
        // The paths it aims at are safe code (slices split in place) and took
        // minutes under Miri; radix_matches_std_sort and the reversal test run the
        // sort's unsafe parts there.
        return;
    }
    let mut raw = lcg(7);
    let mut next = move || raw() >> 16;
    let distinct: Vec<u64> = (0..16).map(|_| next() << 16 ^ next()).collect();
    for n in [3000, 200_000] {
        let shapes: Vec<(&str, Vec<u64>)> = vec![
            (
                "16 distinct",
                (0..n).map(|_| distinct[(next() % 16) as usize]).collect(),
            ),
            (
                "4 values a byte",
                (0..n)
                    .map(|_| (0..8).fold(0u64, |k, d| k | ((next() % 4) * 0x41) << (8 * d)))
                    .collect(),
            ),
            (
                // One key at every place the few-keys sample of a whole-range sort
                // looks (every (n / 64)-th element), random keys elsewhere: the
                // sample says few, the count of the top byte says not.
                "a misleading sample",
                (0..n)
                    .map(|i| {
                        if i % (n / 64) == 0 {
                            distinct[0]
                        } else {
                            next() << 16 ^ next()
                        }
                    })
                    .collect(),
            ),
        ];
        for (name, x) in shapes {
            check_stable(name, &x, &[1, 2, 3]);
        }
    }
}

/// Non-increasing input is reversed in parallel and each run of equal keys reversed
/// back, each part taking the runs that begin in its share: runs that cross a
/// share's end, a run longer than a whole share (a part with no beginning), equal
/// pairs only here and there (the block test of the fix-up, at and beside block
/// edges) and no equal pair at all (the reversal alone) must all come out in the
/// stable order, for every team size.
#[test]
fn non_increasing_inputs_keep_equal_keys_in_order() {
    // Under Miri one size below the parallel threshold: the big one takes minutes.
    let n = if cfg!(miri) { 600 } else { 100_000 };
    // Equal neighbours at positions q, q + 1 of the reversed input. The fix-up tests
    // neighbours in blocks of 64 from the first run beginning of a share: 64 is the
    // edge of a clean first block for one thread, n / 2 + 65 for two (whose second
    // share starts at n / 2, inside the pair at n / 2 - 1), 200 a run of three.
    let mut rare: Vec<u32> = (0..n).map(|i| 2 * (n - i) as u32).collect();
    for q in [64, 200, 201, 577, n / 2 - 1, n / 2 + 65, n - 3] {
        let i = n - q - 2;
        rare[i + 1] = rare[i];
    }
    let shapes: Vec<(&str, Vec<u32>)> = vec![
        ("runs of 7", (0..n).map(|i| (n - i) as u32 / 7).collect()),
        (
            "runs of 600",
            (0..n).map(|i| (n - i) as u32 / 600).collect(),
        ),
        (
            "runs longer than a share",
            (0..n)
                .map(|i| (n - i) as u32 / (n as u32 / 3 + 1))
                .collect(),
        ),
        ("rare equal pairs", rare),
        (
            "strictly decreasing",
            (0..n).map(|i| (n - i) as u32).collect(),
        ),
    ];
    for (name, x) in shapes {
        let mut want: Vec<usize> = (0..n).collect();
        want.sort_by_key(|&i| x[i]);
        let mut want_values = x.clone();
        want_values.sort();
        // Under Miri one thread: the size is below the parallel threshold anyway.
        let teams = if cfg!(miri) { 1..=1 } else { 1..=5 };
        for threads in teams {
            let opts = Options::with_threads(threads).unwrap();
            let mut idx = vec![0; n];
            argsort(&x, SortOrder::default(), &opts, &mut idx).unwrap();
            assert!(idx == want, "{name}, {threads} threads: not stable");
            let mut v = x.clone();
            sort(&mut v, SortOrder::default(), &opts).unwrap();
            assert!(v == want_values, "{name}, {threads} threads: not sorted");
        }
    }
}

/// Floats take the plain-key path (rewritten in place into integers, sorted, rewritten
/// back) unless a NaN or -0.0 is present or the input is in order; both paths must
/// give the bits of the stable reference, in both directions, for every team size.
#[test]
fn float_plain_key_path_matches_the_key_path() {
    fn check<T: SortKey + Copy>(v: &[T], to_bits: impl Fn(T) -> u64) {
        for descending in [false, true] {
            let mut expect = v.to_vec();
            if descending {
                expect.sort_by_key(|x| x.key_desc());
            } else {
                expect.sort_by_key(|x| x.key());
            }
            let order = SortOrder {
                descending,
                stable: true,
            };
            for threads in [1, 2, 3] {
                let mut got = v.to_vec();
                sort(&mut got, order, &Options::with_threads(threads).unwrap()).unwrap();
                let same = got
                    .iter()
                    .zip(&expect)
                    .all(|(a, b)| to_bits(*a) == to_bits(*b));
                assert!(
                    same,
                    "n {} descending {descending} threads {threads}",
                    v.len()
                );
            }
        }
    }
    let mut raw = lcg(99);
    let mut next = move || raw() >> 11;
    // Under Miri one size below the parallel threshold: the big one takes minutes.
    let sizes: &[usize] = if cfg!(miri) { &[300] } else { &[300, 70_000] };
    for &n in sizes {
        let plain: Vec<f64> = (0..n)
            .map(|_| next() as f64 / (1u64 << 53) as f64 - 0.5)
            .collect();
        check(&plain, f64::to_bits);
        // -0.0 next to 0.0 (must keep their order), then a NaN of each sign.
        let mut zeros = plain.clone();
        for i in (0..n).step_by(7) {
            zeros[i] = if i % 2 == 0 { -0.0 } else { 0.0 };
        }
        check(&zeros, f64::to_bits);
        let mut nans = plain.clone();
        nans[n / 3] = f64::NAN;
        nans[n / 2] = -f64::NAN;
        check(&nans, f64::to_bits);
        // In order either way (nothing to do, or the key path's reversal), with ties.
        // (+ 0.0: no -0.0, so that the plain path sees it.)
        let mut sorted: Vec<f64> = plain.iter().map(|&x| (x * 64.0).round() + 0.0).collect();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
        check(&sorted, f64::to_bits);
        sorted.reverse();
        check(&sorted, f64::to_bits);
        let small: Vec<f32> = plain.iter().map(|&x| (x * 1e3) as f32).collect();
        check(&small, |x| x.to_bits() as u64);
    }
}
