//! Rust-level figures of parfor's scan and sort (criterion): SUM scan of f64 and i64
//! from 1e3 to 1e7 elements, and sorts of random f64, i32 and u64 from 1e3 to 1e6.
//! The comparison with OpenMP, TBB, qsort, std::sort and rayon is
//! `cargo run --release -p parfor-compare --bin scan_sort`; these benches track
//! parfor's own figures from one change to the next. Sample counts and times as in
//! benches/reduce.rs (20 samples, 1.5 s), so that the run stays short.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use parfor::scan::ScanOp;
use parfor::sort::SortOrder;
use parfor::Options;

/// Random 64-bit words from an LCG (Knuth's MMIX constants): reproducible.
fn words(n: usize) -> Vec<u64> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state ^ (state >> 29)
        })
        .collect()
}

fn scan(c: &mut Criterion) {
    let w = words(10_000_000);
    let xf: Vec<f64> = w
        .iter()
        .map(|&v| (v >> 11) as f64 / (1u64 << 53) as f64)
        .collect();
    let xi: Vec<i64> = w.iter().map(|&v| (v % 2001) as i64 - 1000).collect();
    let opts = Options::default();
    let mut group = c.benchmark_group("scan_sum");
    for n in [1_000, 10_000, 100_000, 1_000_000, 10_000_000] {
        group.throughput(Throughput::Bytes(16 * n as u64));
        let mut out = vec![0.0f64; n];
        group.bench_with_input(BenchmarkId::new("f64", n), &xf[..n], |b, x| {
            b.iter(|| parfor::scan::scan(black_box(x), &mut out, ScanOp::Sum, false, &opts))
        });
        let mut out = vec![0i64; n];
        group.bench_with_input(BenchmarkId::new("i64", n), &xi[..n], |b, x| {
            b.iter(|| parfor::scan::scan(black_box(x), &mut out, ScanOp::Sum, false, &opts))
        });
    }
    group.finish();
}

fn sort(c: &mut Criterion) {
    let w = words(1_000_000);
    let opts = Options::default();
    let mut group = c.benchmark_group("sort");
    for n in [1_000, 10_000, 100_000, 1_000_000] {
        group.throughput(Throughput::Elements(n as u64));
        let f: Vec<f64> = w[..n]
            .iter()
            .map(|&v| (v >> 11) as f64 - (1u64 << 52) as f64)
            .collect();
        group.bench_with_input(BenchmarkId::new("f64", n), &f, |b, f| {
            b.iter_batched_ref(
                || f.clone(),
                |v| parfor::sort::sort(v, SortOrder::default(), &opts),
                BatchSize::LargeInput,
            )
        });
        let i: Vec<i32> = w[..n].iter().map(|&v| v as i32).collect();
        group.bench_with_input(BenchmarkId::new("i32", n), &i, |b, i| {
            b.iter_batched_ref(
                || i.clone(),
                |v| parfor::sort::sort(v, SortOrder::default(), &opts),
                BatchSize::LargeInput,
            )
        });
        let u: Vec<u64> = w[..n].to_vec();
        group.bench_with_input(BenchmarkId::new("u64", n), &u, |b, u| {
            b.iter_batched_ref(
                || u.clone(),
                |v| parfor::sort::sort(v, SortOrder::default(), &opts),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500));
    targets = scan, sort
}
criterion_main!(benches);
