use super::*;

#[test]
fn sum_matches_serial_for_integers() {
    let x: Vec<i32> = (0..1000).map(|i| (i * 7919) % 1000 - 500).collect();
    assert_eq!(sum(&x), x.iter().copied().fold(0i32, i32::wrapping_add));
    let y: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 256) as u8).collect();
    assert_eq!(sum(&y), y.iter().fold(0u8, |a, &b| a.wrapping_add(b)));
}

#[test]
fn lane_order_is_spelled_out() {
    // 65 f32 values: lane j holds x[j] (+ x[64] in lane 0), then the pairwise lane tree.
    let x: Vec<f32> = (0..65).map(|i| 1.0 + i as f32 * 1e-3).collect();
    let mut lanes = [0.0f32; 64];
    for (i, v) in x.iter().enumerate() {
        lanes[i % 64] += v;
    }
    let mut w = 64;
    while w > 1 {
        w /= 2;
        for j in 0..w {
            lanes[j] += lanes[j + w];
        }
    }
    assert_eq!(sum(&x).to_bits(), lanes[0].to_bits());
}

#[test]
fn min_max_propagate_the_first_nan() {
    let a = f64::from_bits(0x7ff8_0000_0000_0001);
    let b = f64::from_bits(0x7ff8_0000_0000_0002);
    let mut x = vec![1.0f64; 100];
    x[40] = a;
    x[70] = b;
    assert_eq!(min(&x).to_bits(), a.to_bits());
    assert_eq!(max(&x).to_bits(), a.to_bits());
    assert_eq!(argmin(&x).1, 40);
    assert_eq!(argmax(&x).1, 40);
    assert_eq!(min_combine(1.0, a).to_bits(), a.to_bits());
    assert_eq!(min_combine(a, b).to_bits(), a.to_bits());
}

#[test]
fn arg_extremes_take_the_first_tie() {
    let x = [3i16, 1, 5, 1, 5, 0, 0, 9, 9];
    assert_eq!(argmin(&x), (0, 5));
    assert_eq!(argmax(&x), (9, 7));
    assert_eq!(argmin_combine((1, 3), (1, 0)), (1, 3));
    assert_eq!(argmax_combine((2, 3), (5, 9)), (5, 9));
}

#[test]
fn dot_and_bits() {
    let a: Vec<u64> = (1..=100).collect();
    assert_eq!(dot(&a, &a), (1..=100u64).map(|v| v * v).sum());
    assert_eq!(bit_xor(&a), a.iter().fold(0, |x, y| x ^ y));
    assert_eq!(bit_and(&[0xF0u8, 0xFF, 0xF3]), 0xF0);
    assert_eq!(bit_or(&[0x01u8, 0x10]), 0x11);
    assert!(all_nonzero(&[1.0f32, f32::NAN]));
    assert!(!any_nonzero(&[0.0f32, -0.0]));
}

#[test]
fn infinities_of_both_signs_are_not_taken_for_nan() {
    // Lane 0 sees +inf then -inf, so its NaN probe turns NaN without a NaN in x.
    let mut x = vec![2.0f32; 200];
    x[0] = f32::INFINITY;
    x[64] = f32::NEG_INFINITY;
    x[130] = -5.0;
    assert_eq!(min(&x), f32::NEG_INFINITY);
    assert_eq!(max(&x), f32::INFINITY);
    assert_eq!(argmin(&x), (f32::NEG_INFINITY, 64));
    let y: Vec<f64> = (0..100)
        .map(|i| if i % 2 == 0 { f64::MAX } else { 1.0 })
        .collect();
    assert_eq!(min(&y), 1.0);
    assert_eq!(max(&y), f64::MAX);
}

#[test]
fn min_max_match_a_serial_scan_with_signed_zeros() {
    // Every lane count and remainder; -0.0 and +0.0 compare equal, so the first one
    // in lane order wins, and the value must equal a serial scan's numerically.
    // Under Miri, lengths up to three times the widest lane count (32) still cover
    // every lane count and remainder.
    for n in 1..if cfg!(miri) { 100 } else { 300 } {
        let x: Vec<f64> = (0..n)
            .map(|i| match (i * 37) % 11 {
                0 => -0.0,
                1 => 0.0,
                k => (k as f64 - 5.0) * 0.25,
            })
            .collect();
        let lo = x.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(min(&x), lo, "n = {n}");
        assert_eq!(max(&x), hi, "n = {n}");
    }
}

/// The lane definition written out plainly: element i into lane i mod `n`, each lane
/// in index order from `init`, then the pairwise lane tree.
fn reference_lanes<T: Element>(x: &[T], n: usize, init: T, op: impl Fn(T, T) -> T) -> T {
    let mut lanes = vec![init; n];
    for (i, &v) in x.iter().enumerate() {
        lanes[i % n] = op(lanes[i % n], v);
    }
    let mut w = n;
    while w > 1 {
        w /= 2;
        for j in 0..w {
            lanes[j] = op(lanes[j], lanes[j + w]);
        }
    }
    lanes[0]
}

/// Asserts that the f64 and f32 sums of `x` and `xf` and the dot product of `x` and
/// `y` have the bits of the lane definition ([`reference_lanes`]); `at` names the case.
fn assert_sums_and_dot_follow_the_lanes(x: &[f64], xf: &[f32], y: &[f64], at: &str) {
    assert_eq!(
        sum(x).to_bits(),
        reference_lanes(x, 32, 0.0, |a, b| a + b).to_bits(),
        "{at}"
    );
    assert_eq!(
        sum(xf).to_bits(),
        reference_lanes(xf, 64, 0.0, |a, b| a + b).to_bits(),
        "{at}"
    );
    let products: Vec<f64> = x.iter().zip(y).map(|(a, b)| a * b).collect();
    assert_eq!(
        dot(x, y).to_bits(),
        reference_lanes(&products, 32, 0.0, |a, b| a + b).to_bits(),
        "{at}"
    );
}

#[test]
fn results_do_not_depend_on_the_address() {
    // The kernels read their bulk from 64-byte aligned addresses, starting lanes
    // part-way for a misaligned slice: the bits must still be those of the plain lane
    // definition, at every offset and length around the lane and alignment sizes.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.3
    };
    let d: Vec<f64> = (0..700).map(|_| next() * 1e3).collect();
    let e: Vec<f64> = (0..700).map(|_| next()).collect();
    let f: Vec<f32> = d.iter().map(|&v| v as f32).collect();
    // Miri interprets every element: a sample of offsets and lengths there.
    let (offsets, lengths): (&[usize], &[usize]) = if cfg!(miri) {
        (&[0, 3, 8], &[0, 9, 65, 129])
    } else {
        (
            &[
                0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
            ],
            &[0, 1, 5, 7, 8, 9, 31, 32, 33, 63, 64, 65, 100, 129, 300, 640],
        )
    };
    for &off in offsets {
        for &len in lengths {
            let x = &d[off..off + len];
            let y = &e[off / 2..off / 2 + len];
            let xf = &f[off..off + len];
            let at = format!("offset {off}, length {len}");
            assert_sums_and_dot_follow_the_lanes(x, xf, y, &at);
            assert_eq!(
                prod(y).to_bits(),
                reference_lanes(y, 32, 1.0, |a, b| a * b).to_bits(),
                "{at}"
            );
            if len > 0 {
                let lo = x.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = xf.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                assert_eq!(min(x), lo, "{at}");
                assert_eq!(max(xf), hi, "{at}");
                let first_lo = x.iter().position(|&v| v == lo).expect("present");
                assert_eq!(argmin(x), (lo, first_lo), "{at}");
            }
            let ints: Vec<i64> = x.iter().map(|&v| v as i64).collect();
            assert_eq!(sum(&ints), ints.iter().sum::<i64>(), "{at}");
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "the prefetching loops are compiled out under Miri")]
fn large_slices_read_with_prefetch_match_the_lane_definition() {
    // Slices from 128 KiB take the loops that prefetch ahead, whose hints reach past
    // the end of the slice: the bits must still be those of the lane definition.
    let d: Vec<f64> = (0..40_000)
        .map(|i| ((i * 7919) % 10_007) as f64 * 0.37 - 1_500.0)
        .collect();
    let e: Vec<f64> = (0..40_000).map(|i| ((i * 31) % 97) as f64 * 0.01).collect();
    let f: Vec<f32> = d.iter().map(|&v| v as f32).collect();
    for &off in &[0, 3] {
        for &len in &[16_383, 16_384, 16_400, 39_990] {
            let x = &d[off..off + len];
            let y = &e[off..off + len];
            let xf = &f[off..off + len.min(f.len() - off)];
            let at = format!("offset {off}, length {len}");
            assert_sums_and_dot_follow_the_lanes(x, xf, y, &at);
            assert_eq!(
                max(x),
                x.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                "{at}"
            );
            assert_eq!(
                min(xf),
                xf.iter().copied().fold(f32::INFINITY, f32::min),
                "{at}"
            );
        }
    }
}

#[test]
fn any_and_all_see_every_position_of_every_chunk() {
    // Lengths through the 256-element test chunks; one odd element at each position.
    let lens: &[usize] = if cfg!(miri) {
        &[0, 1, 257]
    } else {
        &[0, 1, 255, 256, 257, 600]
    };
    for &n in lens {
        let zeros = vec![0u8; n];
        assert!(!any_nonzero(&zeros));
        assert_eq!(all_nonzero(&zeros), n == 0);
        let ones = vec![1.0f64; n];
        assert!(all_nonzero(&ones));
        assert_eq!(any_nonzero(&ones), n > 0);
        for i in 0..n {
            let mut z = zeros.clone();
            z[i] = 3;
            assert!(any_nonzero(&z), "n {n} at {i}");
            let mut o = ones.clone();
            o[i] = -0.0;
            assert!(!all_nonzero(&o), "n {n} at {i}");
        }
    }
}
