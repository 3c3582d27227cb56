//! Scan and sort comparison (issue 16): parfor against a serial loop, OpenMP 5's
//! `reduction(inscan, +)` with `#pragma omp scan` (gcc), oneTBB `parallel_scan`,
//! and for sorts `qsort`, `std::sort`, TBB `parallel_sort` and rayon
//! `par_sort_unstable`, on f64/i64 SUM scans and f64/i32/u64 sorts of random,
//! sorted, reversed and few-distinct data. The numpy rows are
//! `python3 python/bench_scan_sort.py`.
//!
//! `cargo run --release -p parfor-compare --bin scan_sort [-- --quick | --max N]`:
//! sizes 1e3 to 1e8 (quick: 1e3 to 1e5, a few seconds; `--max 1e7`: up to 1e7). Prints one CSV line per measurement:
//! workload, dtype, pattern, n, peer, threads, median seconds, elements per second.
//! Each figure is the median of repeated runs (at least 5, and at least 0.2 s of
//! runs); sorts time only the sort, on a fresh copy of the input each run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use parfor::scan::ScanOp;
use parfor::sort::SortOrder;
use parfor::Options;
use rayon::prelude::*;

extern "C" {
    fn pss_scan_serial_f64(x: *const f64, out: *mut f64, n: usize);
    fn pss_scan_serial_i64(x: *const i64, out: *mut i64, n: usize);
    fn pss_scan_omp_f64(x: *const f64, out: *mut f64, n: usize, threads: i32);
    fn pss_scan_omp_i64(x: *const i64, out: *mut i64, n: usize, threads: i32);
    fn pss_qsort_f64(x: *mut f64, n: usize);
    fn pss_qsort_i32(x: *mut i32, n: usize);
    fn pss_qsort_u64(x: *mut u64, n: usize);
}

#[cfg(parfor_scan_sort_tbb)]
extern "C" {
    fn pss_tbb_scan_f64(x: *const f64, out: *mut f64, n: usize, threads: i32);
    fn pss_tbb_scan_i64(x: *const i64, out: *mut i64, n: usize, threads: i32);
    fn pss_std_sort_f64(x: *mut f64, n: usize);
    fn pss_std_sort_i32(x: *mut i32, n: usize);
    fn pss_std_sort_u64(x: *mut u64, n: usize);
    fn pss_tbb_sort_f64(x: *mut f64, n: usize, threads: i32);
    fn pss_tbb_sort_i32(x: *mut i32, n: usize, threads: i32);
    fn pss_tbb_sort_u64(x: *mut u64, n: usize, threads: i32);
}

/// Median seconds of `f` over at least 5 runs and at least 0.2 s, after one warm-up
/// run.
fn time(mut f: impl FnMut()) -> f64 {
    time_with(&mut (), |_| {}, |_| f())
}

/// As [`time`] for a sort: each run (untimed) restores `v` from `input` first.
fn time_sort<T: Copy>(input: &[T], mut f: impl FnMut(&mut [T])) -> f64 {
    let mut v = input.to_vec();
    time_with(&mut v, |v| v.copy_from_slice(input), |v| f(v))
}

fn time_with<S>(state: &mut S, mut prepare: impl FnMut(&mut S), mut f: impl FnMut(&mut S)) -> f64 {
    prepare(state);
    f(state);
    let mut runs = Vec::new();
    let start = Instant::now();
    while runs.len() < 5 || start.elapsed() < Duration::from_millis(200) {
        prepare(state);
        let t = Instant::now();
        f(state);
        runs.push(t.elapsed().as_secs_f64());
        if runs.len() >= 1000 {
            break;
        }
    }
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

/// A 64-bit LCG (Knuth's MMIX constants): reproducible data without a dependency.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 ^ (self.0 >> 29)
    }
}

fn row(workload: &str, dtype: &str, pattern: &str, n: usize, peer: &str, threads: usize, s: f64) {
    println!(
        "{workload},{dtype},{pattern},{n},{peer},{threads},{s:.9},{:.4e}",
        n as f64 / s
    );
}

fn scans(sizes: &[usize], threads: usize) {
    let opts = Options::with_threads(threads).expect("team size");
    let t = threads as i32;
    let max = *sizes.iter().max().expect("sizes");
    let mut rng = Lcg(1);
    let xf: Vec<f64> = (0..max)
        .map(|_| (rng.next() >> 11) as f64 / (1u64 << 53) as f64)
        .collect();
    let xi: Vec<i64> = (0..max)
        .map(|_| (rng.next() % 2001) as i64 - 1000)
        .collect();
    let mut of = vec![0.0f64; max];
    let mut oi = vec![0i64; max];
    for &n in sizes {
        let (x, o) = (&xf[..n], &mut of[..n]);
        let s =
            time(|| parfor::scan::scan(black_box(x), o, ScanOp::Sum, false, &opts).expect("scan"));
        row("scan_sum", "f64", "random", n, "parfor", threads, s);
        // SAFETY (all peer calls): live buffers of n elements.
        let s = time(|| unsafe { pss_scan_serial_f64(x.as_ptr(), o.as_mut_ptr(), n) });
        row("scan_sum", "f64", "random", n, "serial loop (gcc)", 1, s);
        let s = time(|| unsafe { pss_scan_omp_f64(x.as_ptr(), o.as_mut_ptr(), n, t) });
        row("scan_sum", "f64", "random", n, "omp scan (gcc)", threads, s);
        #[cfg(parfor_scan_sort_tbb)]
        {
            let s = time(|| unsafe { pss_tbb_scan_f64(x.as_ptr(), o.as_mut_ptr(), n, t) });
            row(
                "scan_sum",
                "f64",
                "random",
                n,
                "tbb parallel_scan",
                threads,
                s,
            );
        }
        let (x, o) = (&xi[..n], &mut oi[..n]);
        let s =
            time(|| parfor::scan::scan(black_box(x), o, ScanOp::Sum, false, &opts).expect("scan"));
        row("scan_sum", "i64", "random", n, "parfor", threads, s);
        let s = time(|| unsafe { pss_scan_serial_i64(x.as_ptr(), o.as_mut_ptr(), n) });
        row("scan_sum", "i64", "random", n, "serial loop (gcc)", 1, s);
        let s = time(|| unsafe { pss_scan_omp_i64(x.as_ptr(), o.as_mut_ptr(), n, t) });
        row("scan_sum", "i64", "random", n, "omp scan (gcc)", threads, s);
        #[cfg(parfor_scan_sort_tbb)]
        {
            let s = time(|| unsafe { pss_tbb_scan_i64(x.as_ptr(), o.as_mut_ptr(), n, t) });
            row(
                "scan_sum",
                "i64",
                "random",
                n,
                "tbb parallel_scan",
                threads,
                s,
            );
        }
    }
}

/// The four input patterns of `n` values made by `make` from random bits.
fn patterns<T: Copy + PartialOrd>(
    n: usize,
    make: impl Fn(u64) -> T,
) -> Vec<(&'static str, Vec<T>)> {
    let mut rng = Lcg(n as u64);
    let random: Vec<T> = (0..n).map(|_| make(rng.next())).collect();
    let mut sorted = random.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).expect("no NaN in benchmark data"));
    let reversed: Vec<T> = sorted.iter().rev().copied().collect();
    let distinct: Vec<T> = (0..16).map(|_| make(rng.next())).collect();
    let few: Vec<T> = (0..n)
        .map(|_| distinct[(rng.next() % 16) as usize])
        .collect();
    vec![
        ("random", random),
        ("sorted", sorted),
        ("reversed", reversed),
        ("few distinct", few),
    ]
}

macro_rules! sort_rows {
    ($sizes:expr, $threads:expr, $t:ty, $name:literal, $make:expr, $qsort:ident, $std:ident, $tbb:ident) => {{
        let opts = Options::with_threads($threads).expect("team size");
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads($threads)
            .build()
            .expect("rayon pool");
        for &n in $sizes {
            for (pattern, input) in patterns::<$t>(n, $make) {
                let s = time_sort(&input, |v: &mut [$t]| {
                    parfor::sort::sort(v, SortOrder::default(), &opts).expect("sort")
                });
                row("sort", $name, pattern, n, "parfor", $threads, s);
                let s = time_sort(&input, |v: &mut [$t]| unsafe { $qsort(v.as_mut_ptr(), n) });
                row("sort", $name, pattern, n, "qsort", 1, s);
                #[cfg(parfor_scan_sort_tbb)]
                {
                    let s = time_sort(&input, |v: &mut [$t]| unsafe { $std(v.as_mut_ptr(), n) });
                    row("sort", $name, pattern, n, "std::sort", 1, s);
                    let s = time_sort(&input, |v: &mut [$t]| unsafe {
                        $tbb(v.as_mut_ptr(), n, $threads as i32)
                    });
                    row("sort", $name, pattern, n, "tbb parallel_sort", $threads, s);
                }
                let s = time_sort(&input, |v: &mut [$t]| {
                    pool.install(|| {
                        v.par_sort_unstable_by(|a, b| a.partial_cmp(b).expect("no NaN"))
                    })
                });
                row(
                    "sort",
                    $name,
                    pattern,
                    n,
                    "rayon par_sort_unstable",
                    $threads,
                    s,
                );
            }
        }
    }};
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    // --max N: the largest size (a number such as 1e7), to bound the run's time.
    let max = match args.iter().position(|a| a == "--max") {
        Some(i) => {
            let v = args.get(i + 1).and_then(|s| s.parse::<f64>().ok());
            match v {
                Some(v) if v >= 1.0 => v as usize,
                _ => {
                    eprintln!("scan_sort: --max needs a size (for example 1e7)");
                    std::process::exit(2);
                }
            }
        }
        None if quick => 100_000,
        None => 100_000_000,
    };
    let sizes: Vec<usize> = [1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000]
        .into_iter()
        .filter(|&n| n <= max)
        .collect();
    let threads = parfor::num_threads();
    println!("workload,dtype,pattern,n,peer,threads,median_s,elements_per_s");
    scans(&sizes, threads);
    sort_rows!(
        &sizes,
        threads,
        f64,
        "f64",
        |r| (r >> 11) as f64 / (1u64 << 53) as f64 - 0.5,
        pss_qsort_f64,
        pss_std_sort_f64,
        pss_tbb_sort_f64
    );
    sort_rows!(
        &sizes,
        threads,
        i32,
        "i32",
        |r| r as i32,
        pss_qsort_i32,
        pss_std_sort_i32,
        pss_tbb_sort_i32
    );
    sort_rows!(
        &sizes,
        threads,
        u64,
        "u64",
        |r| r,
        pss_qsort_u64,
        pss_std_sort_u64,
        pss_tbb_sort_u64
    );
}
