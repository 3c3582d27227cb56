//! Unit tests of the exact sum's internals: the large accumulator's flushes, carry
//! propagation, the serialised form, and the two ways of splitting a product.

use super::*;

/// splitmix64, so that failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A finite f64 with a random sign, fraction and exponent in `exps`.
    fn float(&mut self, exps: Range<u64>) -> f64 {
        let r = self.next();
        let exp = exps.start + (r >> 12) % (exps.end - exps.start);
        f64::from_bits((r & (1 << 63)) | exp << 52 | (self.next() & FRAC_MASK))
    }
}

/// `native` under a normal build, `miri` under Miri, which runs about a thousand times
/// slower (tests/miri.sh runs these tests).
fn size(native: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        native
    }
}

fn direct(data: &[f64]) -> ExactState {
    let mut s = ExactState::new();
    for &x in data {
        s.add_one(x);
    }
    s
}

fn large(data: &[f64]) -> ExactState {
    let mut acc = LargeAcc::new();
    let mut small = ExactState::new();
    for &x in data {
        acc.add(&mut small, x);
    }
    acc.finish(&mut small);
    small
}

fn binned(data: &[f64]) -> ExactState {
    let mut acc = Acc::new();
    acc.add_all(data);
    acc.finish()
}

/// The state after depositing `data` with N lanes, or None when refused; checks that
/// the top of a following block comes back right either way.
fn deposit_with<const N: usize>(data: &[f64]) -> Option<ExactState> {
    let mut s = ExactState::new();
    let next = [3.0, -7.5, 0.25];
    let (done, next_top) = deposit_imp::<N>(data, top_bits(data), &next, &mut s);
    assert_eq!(next_top, 7.5f64.to_bits());
    if done {
        Some(s)
    } else {
        assert_eq!(
            s,
            ExactState::new(),
            "a refused block leaves the state alone"
        );
        None
    }
}

#[test]
fn binned_path_takes_narrow_blocks_and_refuses_wide_ones() {
    let mut rng = Rng(4);
    // Narrow ranges: accepted whole, at the bottom, middle and top of the range, with
    // every lane count giving the same state.
    for exps in [60..90, 1000..1030, 1970..2000] {
        for len in [size(BLOCK, 100), 5] {
            let data: Vec<f64> = (0..len).map(|_| rng.float(exps.clone())).collect();
            let want = Some(direct(&data));
            assert_eq!(deposit_with::<8>(&data), want, "exponents {exps:?}");
            assert_eq!(deposit_with::<16>(&data), want, "exponents {exps:?}");
            assert_eq!(deposit_with::<32>(&data), want, "exponents {exps:?}");
        }
    }
    // Too wide, too large, too small, or special: refused.
    let wide: Vec<f64> = (0..BLOCK).map(|_| rng.float(900..1100)).collect();
    let huge = vec![f64::MAX, 1.0];
    let tiny = vec![f64::MIN_POSITIVE, -5e-324];
    let special = vec![1.0, f64::INFINITY];
    for data in [&wide[..], &huge, &tiny, &special] {
        assert_eq!(deposit_with::<8>(data), None);
        assert_eq!(deposit_with::<32>(data), None);
        assert_eq!(binned(data), direct(data));
    }
    // All zeros: accepted, and the sign flags follow the values.
    for (data, neg) in [(vec![-0.0; 100], true), (vec![-0.0, 0.0], false)] {
        let s = deposit_with::<16>(&data).expect("zeros are accepted");
        assert_eq!(s, direct(&data));
        assert_eq!(s.result::<f64>().is_sign_negative(), neg);
    }
    // Mixed blocks of any length through the whole accumulator.
    for &len in [1, 63, 64, 65, 1000, 5000]
        .iter()
        .filter(|&&n| n <= size(5000, 64))
    {
        let data: Vec<f64> = (0..len)
            .map(|i| rng.float(if i % 3 == 0 { 0..2047 } else { 1020..1025 }))
            .collect();
        assert_eq!(binned(&data), direct(&data), "len {len}");
    }
}

#[test]
fn large_accumulator_flushes_exactly() {
    let mut rng = Rng(1);
    // Few exponents, so that words fill up and flush many times; subnormals (exponent
    // 0) and the top exponent 2046 included.
    for exps in [0..3, 1020..1024, 2040..2047, 0..2047] {
        let data: Vec<f64> = (0..size(20_000, 500))
            .map(|_| rng.float(exps.clone()))
            .collect();
        assert_eq!(large(&data), direct(&data), "exponents {exps:?}");
        assert_eq!(binned(&data), direct(&data), "exponents {exps:?}");
    }
    // One word filled exactly to its limit, and one past it.
    let limits = [LIMIT as usize + 1, LIMIT as usize, 3 * LIMIT as usize];
    for &n in &limits[..size(3, 1)] {
        let data = vec![f64::from_bits(0x7FE0_0000_0000_0000 | FRAC_MASK); n];
        assert_eq!(large(&data), direct(&data), "{n} copies of the largest f64");
    }
}

#[test]
fn carries_propagate_when_pending_reaches_the_limit() {
    let mut s = ExactState::new();
    s.add_one(1.5);
    // Pretend many additions happened, so that the next one normalises.
    s.pending = NORMALISE_EVERY - 1;
    s.chunks[40] = (1 << 33) + 5;
    s.add_one(1.0);
    assert_eq!(s.pending, 0);
    assert!(s.chunks[..TOP].iter().all(|c| (0..1 << 32).contains(c)));
    assert_eq!(s.chunks[41], 2);
}

#[test]
fn words_round_trip_and_reject_corruption() {
    let mut rng = Rng(2);
    let data: Vec<f64> = (0..size(5000, 200)).map(|_| rng.float(0..2047)).collect();
    let s = large(&data);
    let words = s.to_words();
    assert_eq!(ExactState::from_words(&words).unwrap(), s);
    let mut bad = words;
    bad[0] = 0;
    assert!(ExactState::from_words(&bad)
        .unwrap_err()
        .contains("parfor_exact_init"));
    let mut swapped = words;
    for w in swapped.iter_mut() {
        *w = w.swap_bytes();
    }
    assert!(ExactState::from_words(&swapped)
        .unwrap_err()
        .contains("byte order"));
    let mut bad = words;
    bad[1] |= 1 << 40;
    assert!(ExactState::from_words(&bad).unwrap_err().contains("flags"));
    let mut bad = words;
    bad[7] = 1 << 32;
    assert!(ExactState::from_words(&bad).unwrap_err().contains("word 7"));
    let mut bad = words;
    bad[STATE_WORDS - 1] = TOP_LIMIT;
    assert!(ExactState::from_words(&bad).unwrap_err().contains("2^62"));
}

#[test]
fn merge_refuses_to_leave_the_range() {
    let mut words = ExactState::new().to_words();
    words[STATE_WORDS - 1] = TOP_LIMIT - 1;
    let big = ExactState::from_words(&words).unwrap();
    let mut acc = big.clone();
    assert!(acc.merge(&big).is_err());
    assert_eq!(acc, big, "a failed merge leaves the state unchanged");
    assert_eq!(acc.result::<f64>(), f64::INFINITY);
    let mut neg = ExactState::new();
    neg.chunks[TOP] = -(TOP_LIMIT - 1);
    acc.merge(&neg).unwrap();
    assert_eq!(acc.result::<f64>(), 0.0);
}

#[test]
fn dekker_and_fma_agree_where_both_are_exact() {
    let mut rng = Rng(3);
    for _ in 0..size(100_000, 200) {
        // Exponents that keep products away from overflow and underflow and factors
        // below 2^995.
        let a = rng.float(600..1500);
        let b = rng.float(600..1500);
        let (p, e) = two_product_dekker(a, b);
        assert_eq!((p.to_bits(), e.to_bits()), {
            let (p, e) = two_product_fma(a, b);
            (p.to_bits(), e.to_bits())
        });
    }
    // Exact products give a -0.0 error term both ways.
    for (a, b) in [(2.0, 3.0), (-0.0, 1.0), (0.0, 5.0), (-1.5, -0.0)] {
        assert_eq!(two_product_dekker(a, b).1.to_bits(), (-0.0f64).to_bits());
        assert_eq!(two_product_fma(a, b).1.to_bits(), (-0.0f64).to_bits());
    }
    // Overflow: p is infinite and the error term is dropped, not NaN.
    assert_eq!(two_product_dekker(1e300, 1e300), (f64::INFINITY, -0.0));
    assert_eq!(two_product_fma(1e300, -1e300), (f64::NEG_INFINITY, -0.0));
}

#[test]
fn rounding_helpers() {
    let mut limbs = [0u32; LIMBS];
    assert_eq!(highest_bit(&limbs), None);
    limbs[3] = 0b1011 << 4;
    assert_eq!(highest_bit(&limbs), Some(3 * 32 + 7));
    assert_eq!(bits_at(&limbs, 3 * 32 + 4, 4), 0b1011);
    assert_eq!(bits_at(&limbs, 3 * 32 + 5, 53), 0b101);
    assert!(any_below(&limbs, 3 * 32 + 5));
    assert!(!any_below(&limbs, 3 * 32 + 4));
    assert!(!any_below(&limbs, 0));
    limbs[LIMBS - 1] = 1;
    assert_eq!(bits_at(&limbs, (LIMBS as u32 - 1) * 32, 53), 1);
    assert!(any_below(&limbs, 5000));
}
