use super::*;

#[test]
fn block_len_depends_only_on_len_and_size() {
    // Small inputs are one block.
    assert_eq!(block_len(0, 8), 1);
    assert_eq!(block_len(1000, 8), 1000);
    assert_eq!(
        block_len(ONE_BLOCK_BYTES / 8 - 1, 8),
        ONE_BLOCK_BYTES / 8 - 1
    );
    assert_eq!(block_len(ONE_BLOCK_BYTES / 8, 8), MIN_BLOCK_BYTES / 8);
    assert_eq!(block_len(100_000_000, 8), MAX_BLOCK_BYTES / 8);
    assert_eq!(block_len(usize::MAX, 8), MAX_BLOCK_BYTES / 8);
    for len in [ONE_BLOCK_BYTES / 4, 123_456, 1 << 20] {
        let b = block_len(len, 4);
        assert!(b.is_power_of_two() && b * 4 >= MIN_BLOCK_BYTES && b * 4 <= MAX_BLOCK_BYTES);
    }
}

#[test]
fn tree_is_level_by_level() {
    let mut parts: Vec<String> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut idx: Vec<usize> = (0..parts.len()).collect();
    let r = tree_combine(&mut idx, |a, b| {
        parts.push(format!("({}{})", parts[a], parts[b]));
        parts.len() - 1
    })
    .unwrap();
    assert_eq!(parts[r], "(((ab)(cd))e)");
    assert_eq!(tree_combine::<u8>(&mut [], |a, _| a), None);
}

#[test]
fn reduce_with_is_independent_of_team_size() {
    // A non-commutative combine (string concatenation) must still come out in order.
    let run = |threads| {
        let opts = Options::with_threads(threads).unwrap();
        reduce_with(
            0..300,
            &opts,
            String::new,
            |r, acc: &mut String| {
                for i in r {
                    acc.push(char::from(b'a' + (i % 26) as u8));
                }
                Ok::<(), ()>(())
            },
            |acc, other| acc.push_str(&other),
        )
        .unwrap()
    };
    let expect: String = (0..300)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    for t in [1, 2, 3, 4, 7] {
        assert_eq!(run(t), expect);
    }
}

#[test]
fn consecutive_passes_alternate_direction_and_agree() {
    // One thread, so one share holds every block: the order it computes them in is
    // the order of the pass.
    let opts = Options::with_threads(1).unwrap();
    let pass = || {
        let order = std::sync::Mutex::new(Vec::new());
        let sum = reduce_blocks(
            1000,
            100,
            8000,
            &opts,
            true,
            |r| {
                order.lock().unwrap().push(r.start / 100);
                r.start as u64
            },
            |a, b| a * 3 + b,
        );
        (order.into_inner().unwrap(), sum)
    };
    let (first, a) = pass();
    let (second, b) = pass();
    let forwards: Vec<usize> = (0..10).collect();
    let backwards: Vec<usize> = (0..10).rev().collect();
    assert!(
        (first == forwards && second == backwards) || (first == backwards && second == forwards),
        "{first:?} then {second:?}"
    );
    // The partials are combined in block order whatever the pass's direction.
    assert_eq!(a, b);
    // Large inputs always go forwards.
    for _ in 0..3 {
        assert!(!next_pass_backwards(ALTERNATE_MAX_BYTES + 1));
    }
}

#[test]
fn alternating_passes_give_the_same_bits() {
    // 4 MiB of f64 (alternating) and 48 MiB (forwards only), on 1-3 threads, several
    // calls in a row: every result equals the first one's bits.
    // Under Miri, one smaller input (still parallel, and alternating).
    let sizes: &[usize] = if cfg!(miri) {
        &[1 << 15]
    } else {
        &[1 << 19, 6 << 20]
    };
    for &n in sizes {
        let data: Vec<f64> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f64 * 0.1 - 50.0)
            .collect();
        let first = reduce(&data, ReduceOp::Sum, &Options::with_threads(1).unwrap()).unwrap();
        let first_dot = dot(&data, &data, &Options::with_threads(1).unwrap()).unwrap();
        let first_arg = argmin(&data, &Options::with_threads(1).unwrap()).unwrap();
        // Under Miri: one parallel team (3 threads on 2 cores: a worker shares a
        // CPU), two calls (one pass either way); 15 passes took minutes there.
        let (teams, calls): (&[usize], usize) = if cfg!(miri) {
            (&[3], 2)
        } else {
            (&[1, 2, 3], 3)
        };
        for &threads in teams {
            let opts = Options::with_threads(threads).unwrap();
            for call in 0..calls {
                let s = reduce(&data, ReduceOp::Sum, &opts).unwrap();
                assert_eq!(s.to_bits(), first.to_bits(), "n {n}, {threads} threads");
                // Under Miri the sum alone is called twice (both directions of the
                // same block walk that dot and argmin use); dot and argmin once each,
                // which took 30 s of its time.
                if cfg!(miri) && call > 0 {
                    continue;
                }
                let d = dot(&data, &data, &opts).unwrap();
                assert_eq!(d.to_bits(), first_dot.to_bits(), "n {n}, {threads} threads");
                assert_eq!(argmin(&data, &opts).unwrap(), first_arg);
            }
        }
    }
}

#[test]
fn bounded_partials_give_the_same_tree() {
    // A combine that is neither associative nor commutative: any change in the
    // tree's shape or order changes the result.
    let combine = |a: u64, b: u64| a.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) ^ b;
    let kernel = |r: std::ops::Range<usize>| (r.start as u64) * 1_000_003 + r.end as u64;
    let opts = Options::default();
    // Under Miri, the block counts around the bounds' powers of two (all 199 took
    // minutes there).
    let all_counts: Vec<usize> = if cfg!(miri) {
        vec![1, 2, 3, 5, 8, 9, 17, 64, 65, 199]
    } else {
        (1..200).collect()
    };
    for blocks in all_counts {
        for (block, tail) in [(3, 0), (3, 2)] {
            let len = blocks * block - tail.min(block - 1);
            for parallel in [false, true] {
                let all = reduce_blocks_bounded(
                    1 << 20,
                    len,
                    block,
                    len,
                    &opts,
                    parallel,
                    kernel,
                    combine,
                );
                for max_parts in [1, 2, 4, 8, 64] {
                    let bounded = reduce_blocks_bounded(
                        max_parts, len, block, len, &opts, parallel, kernel, combine,
                    );
                    assert_eq!(
                        bounded, all,
                        "blocks {blocks}, len {len}, max_parts {max_parts}"
                    );
                }
            }
        }
    }
}

/// A small deterministic generator (xorshift), so the tests need no crate.
fn lcg(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn nan_ops_match_a_serial_reference() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for &n in &[1usize, 2, 7, 31, 64, 65, 1000, 20_000, 100_003] {
        // Under Miri the small sizes only (the two large ones took minutes there).
        if cfg!(miri) && n > 1000 {
            continue;
        }
        for nan_every in [0usize, 1, 3, 17] {
            let x: Vec<f64> = (0..n)
                .map(|i| {
                    if nan_every > 0 && i % nan_every == 0 {
                        f64::NAN
                    } else {
                        (lcg(&mut seed) % 2001) as f64 * 0.25 - 250.0
                    }
                })
                .collect();
            let finite: Vec<f64> = x.iter().copied().filter(|v| !v.is_nan()).collect();
            // Under Miri one team size: its inputs are all below the parallel
            // threshold, so every team size runs the same serial path there.
            let teams: &[usize] = if cfg!(miri) { &[1] } else { &[1, 2, 3] };
            for &threads in teams {
                let o = Options::with_threads(threads).unwrap();
                // Quarter-integers below 2^40 in total: every order sums exactly.
                let s = reduce(&x, ReduceOp::NanSum, &o).unwrap();
                assert_eq!(s, finite.iter().sum::<f64>(), "n {n} nan_every {nan_every}");
                let mn = reduce(&x, ReduceOp::NanMin, &o).unwrap();
                let mx = reduce(&x, ReduceOp::NanMax, &o).unwrap();
                if finite.is_empty() {
                    assert!(mn.is_nan() && mx.is_nan());
                } else {
                    assert_eq!(mn, finite.iter().copied().fold(f64::INFINITY, f64::min));
                    assert_eq!(mx, finite.iter().copied().fold(f64::NEG_INFINITY, f64::max));
                }
                let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                let sf = reduce(&xf, ReduceOp::NanSum, &o).unwrap();
                assert_eq!(sf, finite.iter().sum::<f64>() as f32);
                assert_eq!(
                    reduce(&xf, ReduceOp::NanMin, &o).unwrap().is_nan(),
                    finite.is_empty()
                );
            }
        }
    }
    // Integers: as SUM/MIN/MAX.
    let y: Vec<i16> = (0..5000)
        .map(|i| ((i * 7919) % 3001 - 1500) as i16)
        .collect();
    let o = Options::default();
    for (nan, plain) in [
        (ReduceOp::NanSum, ReduceOp::Sum),
        (ReduceOp::NanMin, ReduceOp::Min),
        (ReduceOp::NanMax, ReduceOp::Max),
    ] {
        assert_eq!(reduce(&y, nan, &o).unwrap(), reduce(&y, plain, &o).unwrap());
    }
    // Empty: as SUM/MIN/MAX; inf - inf stays NaN for NAN_SUM.
    assert_eq!(reduce::<f64>(&[], ReduceOp::NanSum, &o).unwrap(), 0.0);
    assert_eq!(reduce::<f64>(&[], ReduceOp::NanMin, &o), Err(Error::Empty));
    assert_eq!(reduce::<u8>(&[], ReduceOp::NanMax, &o), Err(Error::Empty));
    assert!(reduce(
        &[f64::INFINITY, f64::NAN, f64::NEG_INFINITY],
        ReduceOp::NanSum,
        &o
    )
    .unwrap()
    .is_nan());
    assert_eq!(
        reduce(&[f64::NAN, f64::INFINITY, f64::NAN], ReduceOp::NanMin, &o).unwrap(),
        f64::INFINITY
    );
    assert_eq!(ReduceOp::NanSum as i32, 10);
    assert_eq!(ReduceOp::NanMin as i32, 11);
    assert_eq!(ReduceOp::NanMax as i32, 12);
}

/// numpy's bound on pairwise summation: 2 * ceil(log2 n) * u * sum|x| plus half an
/// ulp of the result, u the unit roundoff of the accumulator type.
fn within_pairwise_bound(got: f64, exact: f64, abs_sum: f64, n: usize, u: f64, ulp: f64) -> bool {
    let log = (n.max(2) as f64).log2().ceil();
    (got - exact).abs() <= 2.0 * log * u * abs_sum + 0.5 * ulp
}

#[test]
fn float_sums_are_within_the_pairwise_bound() {
    let o = Options::default();
    // The case: 1e7 times 0.1f32, correctly rounded 1000000.0.
    if !cfg!(miri) {
        let x = vec![0.1f32; 10_000_000];
        assert_eq!(reduce(&x, ReduceOp::Sum, &o).unwrap(), 1_000_000.0);
    }
    let mut seed = 12345u64;
    for &n in &[3usize, 100, 4095, 12_289, 300_001, 2_000_000] {
        if cfg!(miri) && n > 5000 {
            continue;
        }
        // Positive values (the bound is tightest relative to the result) and mixed signs.
        for mixed in [false, true] {
            let x: Vec<f64> = (0..n)
                .map(|_| {
                    let v = 0.1 + (lcg(&mut seed) % 1_000_000) as f64 * 1e-6;
                    if mixed && lcg(&mut seed) % 2 == 0 {
                        -v
                    } else {
                        v
                    }
                })
                .collect();
            let exact = exact::sum(&x, &o);
            let abs: f64 = x.iter().map(|v| v.abs()).sum();
            let got = reduce(&x, ReduceOp::Sum, &o).unwrap();
            let ulp = f64::EPSILON * got.abs();
            assert!(
                within_pairwise_bound(got, exact, abs, n, f64::EPSILON / 2.0, ulp),
                "f64 n {n}: {got} vs {exact}"
            );
            let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let exact_f = {
                let w: Vec<f64> = xf.iter().map(|&v| v as f64).collect();
                exact::sum(&w, &o)
            };
            let got_f = reduce(&xf, ReduceOp::Sum, &o).unwrap();
            let ulp_f = f32::EPSILON as f64 * (got_f as f64).abs();
            assert!(
                within_pairwise_bound(
                    got_f as f64,
                    exact_f,
                    abs,
                    n,
                    f32::EPSILON as f64 / 2.0,
                    ulp_f
                ),
                "f32 n {n}: {got_f} vs {exact_f}"
            );
        }
    }
}

#[test]
fn user_reductions_combine_in_the_level_by_level_tree() {
    // The accumulators name their trees, so the combine order itself is compared,
    // with `tree_combine` (the built-in reductions' tree) as the reference; sizes
    // around the inline-block limit and the block cap.
    let sizes: &[usize] = if cfg!(miri) {
        &[1, 5, 8, 9, 13]
    } else {
        &[
            1, 2, 3, 5, 7, 8, 9, 10, 13, 31, 64, 100, 255, 256, 257, 300, 1000,
        ]
    };
    for &n in sizes {
        for threads in [1, 3] {
            let opts = Options::with_threads(threads).unwrap();
            let got = user::reduce_with(
                0..n,
                &opts,
                String::new,
                |r, acc: &mut String| {
                    *acc = format!("{}", r.start);
                    Ok::<(), ()>(())
                },
                |acc, other| *acc = format!("({acc} {other})"),
            )
            .unwrap();
            let blocks = n.min(user::MAX_BLOCKS);
            let mut names: Vec<String> = (0..blocks)
                .map(|b| {
                    crate::schedule::static_block(n, blocks, b)
                        .start
                        .to_string()
                })
                .collect();
            let mut idx: Vec<usize> = (0..blocks).collect();
            let root = tree_combine(&mut idx, |a, b| {
                names.push(format!("({} {})", names[a], names[b]));
                names.len() - 1
            })
            .unwrap();
            assert_eq!(got, names[root], "n = {n}, {threads} threads");
        }
    }
}

#[test]
fn byte_reductions_match_the_typed_ones() {
    // `reduce_bytes` (the C ABI's slab of accumulators) against `reduce_with` on the
    // same state: a sum and an order-sensitive hash in the first 16 bytes of an
    // accumulator of one line (inline slab) or of 100 bytes (two lines a block),
    // under the static schedule (the copied job) and the dynamic one (the chunker).
    use crate::schedule::Schedule;
    let hash = |h: u64, other: u64| h.wrapping_mul(1_000_003).rotate_left(7) ^ other;
    let sizes: &[usize] = if cfg!(miri) {
        &[1, 5, 9]
    } else {
        &[1, 2, 4, 5, 8, 9, 100, 256, 300, 1000]
    };
    for size in [24usize, 100] {
        let mut identity = vec![0u8; size];
        identity[size - 1] = 0xA5;
        for &n in sizes {
            for threads in [1, 3] {
                for schedule in [Schedule::Static, Schedule::Dynamic] {
                    let opts = Options::new(threads, schedule, 0).unwrap();
                    let what = format!("size {size}, n {n}, {threads} threads, {schedule:?}");
                    let typed = user::reduce_with(
                        0..n,
                        &opts,
                        || (0u64, 0u64),
                        |r, acc: &mut (u64, u64)| {
                            acc.0 += r.clone().map(|i| i as u64).sum::<u64>();
                            acc.1 = r.start as u64 + 1;
                            Ok::<(), ()>(())
                        },
                        |acc, other| *acc = (acc.0 + other.0, hash(acc.1, other.1)),
                    )
                    .unwrap();
                    let read = |p: *const u8, k: usize| {
                        // SAFETY: accumulators hold at least 16 bytes.
                        u64::from_ne_bytes(unsafe { *p.add(8 * k).cast::<[u8; 8]>() })
                    };
                    let write = |p: *mut u8, k: usize, v: u64| {
                        // SAFETY: as above.
                        unsafe { *p.add(8 * k).cast::<[u8; 8]>() = v.to_ne_bytes() }
                    };
                    let bytes = user::reduce_bytes(
                        0..n,
                        &opts,
                        size,
                        |acc| {
                            assert_eq!(acc as usize % 64, 0, "{what}: alignment");
                            // SAFETY: a fresh accumulator of `size` bytes.
                            unsafe { std::ptr::copy_nonoverlapping(identity.as_ptr(), acc, size) }
                        },
                        |r, acc| {
                            write(
                                acc,
                                0,
                                read(acc, 0) + r.clone().map(|i| i as u64).sum::<u64>(),
                            );
                            write(acc, 1, r.start as u64 + 1);
                            Ok::<(), ()>(())
                        },
                        |acc, other| {
                            write(acc, 0, read(acc, 0) + read(other, 0));
                            write(acc, 1, hash(read(acc, 1), read(other, 1)));
                        },
                        |result| {
                            assert_eq!(result.len(), size);
                            assert_eq!(result[size - 1], 0xA5, "{what}: bytes past the state");
                            (read(result.as_ptr(), 0), read(result.as_ptr(), 1))
                        },
                    )
                    .unwrap();
                    assert_eq!(bytes, typed, "{what}");
                }
            }
        }
        // An empty range delivers the identity; a failing fold is returned with its
        // block's range, and nothing is delivered.
        let opts = Options::with_threads(2).unwrap();
        let empty = user::reduce_bytes(
            5..5,
            &opts,
            size,
            // SAFETY: as above.
            |acc| unsafe { std::ptr::copy_nonoverlapping(identity.as_ptr(), acc, size) },
            |_, _| Ok::<(), ()>(()),
            |_, _| {},
            |result| result.to_vec(),
        )
        .unwrap();
        assert_eq!(empty, identity);
        let failed = user::reduce_bytes(
            0..40,
            &opts,
            size,
            // SAFETY: as above.
            |acc| unsafe { std::ptr::copy_nonoverlapping(identity.as_ptr(), acc, size) },
            |r, _| if r.contains(&17) { Err(17u32) } else { Ok(()) },
            |_, _| {},
            |_| panic!("delivered after a failed fold"),
        );
        match failed {
            Err(Error::Cancelled { range, cause: 17 }) => assert!(range.contains(&17)),
            other => panic!("size {size}: {other:?}"),
        }
    }
}
