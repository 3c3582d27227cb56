use super::radix::SortKey;
use super::*;
use crate::schedule::Options;

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
    let mut state = 12345u64;
    for n in [0usize, 1, 2, 255, 256, 1000, 40_000] {
        // Under Miri the small sizes only: it runs the big one minutes long.
        if cfg!(miri) && n > 1000 {
            continue;
        }
        let mut v: Vec<i64> = (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 20) as i64 - (1 << 43)
            })
            .collect();
        let mut expect = v.clone();
        expect.sort();
        sort(&mut v, SortOrder::default(), &Options::default()).unwrap();
        assert_eq!(v, expect, "n {n}");
    }
}
