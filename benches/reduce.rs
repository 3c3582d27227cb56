//! Rust-level figures of parfor (criterion): SUM of f64 from 1e3 to 1e7 elements,
//! dot and MIN at 1e6, a fork-join of a trivial 2-item loop, and a user-defined
//! reduction (sum of squares) at 1e6. The comparison with OpenMP, TBB and rayon is
//! `cargo run --release -p parfor-compare`; these benches track parfor's own figures
//! from one change to the next.
//!
//! Sample counts and times are set low (20 samples, 1.5 s per benchmark after 0.5 s
//! of warm-up) so that a full `cargo bench` stays well under a minute on a 2-core
//! machine: criterion's defaults (100 samples, 5 s) would take five times longer for
//! little gain in precision on figures this stable.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use parfor::{Options, ReduceOp};

/// Doubles in [0.5, 1.5) from a 64-bit linear congruential generator (Knuth's MMIX
/// constants): reproducible, no dependency.
fn data(n: usize) -> Vec<f64> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            0.5 + (state >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

fn sum_f64(c: &mut Criterion) {
    let x = data(10_000_000);
    let opts = Options::default();
    let mut group = c.benchmark_group("reduce_sum_f64");
    for n in [1_000, 10_000, 100_000, 1_000_000, 10_000_000] {
        group.throughput(Throughput::Bytes(8 * n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &x[..n], |b, x| {
            b.iter(|| parfor::reduce(black_box(x), ReduceOp::Sum, &opts).expect("SUM of f64"))
        });
    }
    group.finish();
}

fn dot_and_min(c: &mut Criterion) {
    const N: usize = 1_000_000;
    let x = data(N);
    let y: Vec<f64> = x.iter().map(|v| 2.0 - v).collect();
    let opts = Options::default();
    let mut group = c.benchmark_group("typed_1e6");
    group.throughput(Throughput::Bytes(16 * N as u64));
    group.bench_function("dot_f64", |b| {
        b.iter(|| parfor::dot(black_box(&x), black_box(&y), &opts).expect("dot of f64"))
    });
    group.throughput(Throughput::Bytes(8 * N as u64));
    group.bench_function("min_f64", |b| {
        b.iter(|| parfor::reduce(black_box(&x), ReduceOp::Min, &opts).expect("MIN of f64"))
    });
    group.finish();
}

fn fork_join(c: &mut Criterion) {
    let opts = Options::default();
    c.bench_function("parallel_for_trivial_2_items", |b| {
        b.iter(|| {
            parfor::parallel_for(0..2, &opts, |r| {
                black_box(r);
                Ok::<(), ()>(())
            })
            .expect("a body that never fails")
        })
    });
}

fn reduce_with(c: &mut Criterion) {
    const N: usize = 1_000_000;
    let x = data(N);
    let opts = Options::default();
    let mut group = c.benchmark_group("reduce_with");
    group.throughput(Throughput::Bytes(8 * N as u64));
    group.bench_function("sum_of_squares_1e6", |b| {
        b.iter(|| {
            parfor::reduce_with(
                0..N,
                &opts,
                || 0.0f64,
                |r, acc| {
                    *acc += x[r].iter().map(|v| v * v).sum::<f64>();
                    Ok::<(), ()>(())
                },
                |acc, other| *acc += other,
            )
            .expect("a fold that never fails")
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
}

criterion_group! {
    name = benches;
    config = config();
    targets = sum_f64, dot_and_min, fork_join, reduce_with
}
criterion_main!(benches);
