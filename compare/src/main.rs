//! parfor-compare: the OpenMP comparison of issue 3. Runs every row of its targets
//! table side by side in one process (parfor against gcc/libgomp, clang/libomp where
//! installed, oneTBB where installed, rayon and the cache-line floor), checks that
//! every implementation computes the same result, prints medians with parfor/peer
//! ratios and each target's verdict, and writes results/compare.csv and
//! results/compare.svg.
//!
//! Usage: parfor-compare [--quick] [--only PATTERN]
//!   --quick  fewer and shorter rounds (the whole run well under a minute), for CI.
//!   --only   run only the rows whose group or workload contains PATTERN.
//! Exit status: 0 when every result agreed (whatever the targets' verdicts), 1 when
//! a result disagreed, a call failed, or the outputs could not be written.

mod data;
mod kernels;
mod measure;
mod peers;
mod report;
mod suite;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use measure::{run_row, Plan};
use report::RowResult;
use suite::{Caller, Ctx, References, SUM_SIZES, TYPED_N};

/// Default repetitions: 21 rounds of ~10 ms batches give medians whose quartiles
/// stay within a few percent on a quiet 2-core machine, and the whole run takes about
/// three minutes there.
const FULL: Plan = Plan {
    rounds: 21,
    batch: Duration::from_millis(10),
    idle_calls: 5,
};

/// --quick: enough to check every row end to end and see the order of magnitude.
const QUICK: Plan = Plan {
    rounds: 5,
    batch: Duration::from_millis(2),
    idle_calls: 3,
};

fn main() -> ExitCode {
    let mut plan = FULL;
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => plan = QUICK,
            "--only" => match args.next() {
                Some(pattern) => only = Some(pattern),
                None => {
                    eprintln!("parfor-compare: --only needs a pattern (try --help)");
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("parfor-compare: unknown argument {other:?} (try --help)");
                return ExitCode::from(2);
            }
        }
    }
    match run(plan, only.as_deref()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("parfor-compare: {e}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: parfor-compare [--quick] [--only PATTERN]

Runs parfor side by side with OpenMP (gcc/libgomp, clang/libomp), oneTBB
and rayon on the workloads of issue 3, checks that the results agree, prints
medians and the targets' verdicts, and writes results/compare.csv and
results/compare.svg.

  --quick          fewer and shorter rounds (under a minute), for CI
  --only PATTERN   run only the rows whose group or workload contains PATTERN
                   (for example \"SUM f64\", \"n = 1e5\", \"fork-join\")";

/// Runs everything; Ok(false) when a result disagreed or a call failed.
fn run(plan: Plan, only: Option<&str>) -> Result<bool, String> {
    let started = Instant::now();
    let pf = kernels::parfor();
    let pf_clang = kernels::parfor_clang();
    let gcc = kernels::gcc();
    let clang = kernels::clang();
    let tbb = kernels::tbb();
    let threads = parfor::num_threads();

    println!(
        "parfor-compare: parfor {} against OpenMP, oneTBB and rayon",
        version()
    );
    println!(
        "machine: {}, {} CPUs available",
        cpu_model(),
        available_cpus()
    );
    println!("gcc: {}", env!("PARFOR_COMPARE_GCC_VERSION"));
    // SAFETY (max_threads calls): they take no argument and only ask the runtime.
    println!(
        "team sizes: parfor {threads}, gcc/libgomp {}, {}, {}, rayon {threads}",
        unsafe { (gcc.max_threads)() },
        match &clang {
            Ok(k) => format!("clang/libomp {}", unsafe { (k.max_threads)() }),
            Err(e) => format!("clang/libomp skipped ({e})"),
        },
        match &tbb {
            Ok(t) => format!("oneTBB {}", unsafe { (t.max_concurrency)() }),
            Err(e) => format!("oneTBB skipped ({e})"),
        },
    );
    if let Err(e) = &pf_clang {
        println!("parfor-clang columns skipped: {e}");
    }
    if let Ok(note) = std::env::var("OMP_NUM_THREADS") {
        println!("OMP_NUM_THREADS={note}");
    }
    println!(
        "plan: {} interleaved rounds per row, back-to-back batches of ~{} ms, {} calls per idle batch; medians",
        plan.rounds,
        plan.batch.as_millis(),
        plan.idle_calls
    );
    println!("{LEGEND}");
    let load = load_average();
    println!("load average before the run: {load:.2}");
    if load > 0.25 * available_cpus() as f64 {
        println!(
            "warning: other processes are using the CPUs; on a {}-CPU machine every parallel \
             runtime here waits for descheduled threads, so the figures will be noisy and slow",
            available_cpus()
        );
    }

    let pool: &'static rayon::ThreadPool = Box::leak(Box::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| format!("cannot build the rayon pool: {e}"))?,
    ));

    let spinner = ProgressBar::new_spinner();
    spinner.set_message("generating 800 MB of input and the exact references");
    spinner.enable_steady_tick(Duration::from_millis(120));
    let largest = *SUM_SIZES.last().expect("SUM_SIZES is not empty");
    let inputs: &'static data::Inputs =
        Box::leak(Box::new(data::Inputs::generate(largest, TYPED_N)));
    let refs = References::compute(inputs);
    spinner.finish_and_clear();
    println!(
        "inputs and references ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let ctx = Ctx {
        inputs,
        refs,
        pf,
        pf_clang: pf_clang.ok(),
        gcc,
        clang: clang.ok(),
        tbb: tbb.ok(),

        pool,
        threads,
    };
    let mut rows = suite::rows(&ctx)?;
    if let Some(pattern) = only {
        rows.retain(|r| r.group.contains(pattern) || r.workload.contains(pattern));
        if rows.is_empty() {
            return Err(format!("no row matches {pattern:?}"));
        }
    }
    let total: usize = rows.iter().map(|r| r.subjects.len() * plan.rounds).sum();
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} batches  {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );

    let mut results = Vec::new();
    let mut done_batches = 0;
    for mut row in rows {
        let row_start = Instant::now();
        bar.set_message(format!("{}: {}", row.group, row.workload));
        let tick = || bar.inc(1);
        let outcome = match row.caller {
            Caller::Main => run_row(&mut row.subjects, row.cond, &plan, &tick),
            Caller::Second => std::thread::scope(|s| {
                std::thread::Builder::new()
                    .name("second-app-thread".into())
                    .spawn_scoped(s, || run_row(&mut row.subjects, row.cond, &plan, &tick))
                    .map_err(|e| vec![format!("cannot start the second thread: {e}")])
                    .and_then(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(vec!["the second thread panicked".into()]))
                    })
            }),
        };
        if let Err(errors) = &outcome {
            for e in errors {
                bar.println(format!("MISMATCH in {}: {e}", row.workload));
            }
        }
        // A row that failed its checks ran no batch: move the bar past it.
        done_batches += row.subjects.len() * plan.rounds;
        bar.set_position(done_batches as u64);
        results.push(RowResult {
            group: row.group,
            workload: row.workload,
            size: row.size,
            bytes: row.bytes,
            cond: row.cond,
            caller: row.caller,
            outcome,
            targets: row.targets,
            seconds: row_start.elapsed().as_secs_f64(),
        });
        drop(row.subjects);
    }
    bar.finish_and_clear();

    print!("{}", report::table(&results));
    println!("\nsummary (medians; ratio = parfor side / best peer in time, or fraction of the best read bandwidth):\n");
    print!("{}", report::summary(&results));

    let dir = results_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let csv = dir.join("compare.csv");
    report::write_csv(&csv, &results)
        .map_err(|e| format!("cannot write {}: {e}", csv.display()))?;
    let svg = dir.join("compare.svg");
    // The plot shows the SUM f64 rows only: a run that --only left without them
    // writes none rather than failing after every row has run.
    if results
        .iter()
        .any(|r| r.group == "SUM f64" && r.outcome.is_ok())
    {
        report::write_svg(&svg, &results)
            .map_err(|e| format!("cannot write {}: {e}", svg.display()))?;
        println!("\nwrote {} and {}", csv.display(), svg.display());
    } else {
        println!(
            "\nwrote {} ({} not rewritten: no SUM f64 row was measured)",
            csv.display(),
            svg.display()
        );
    }

    let failed: Vec<&str> = results
        .iter()
        .filter(|r| r.outcome.is_err())
        .map(|r| r.workload.as_str())
        .collect();
    println!("load average after the run: {:.2}", load_average());
    println!(
        "total time {:.0} s, of which {:.0} s waiting for idle workers to park between batches",
        started.elapsed().as_secs_f64(),
        measure::settle_seconds()
    );
    if failed.is_empty() {
        println!("every implementation agreed with the serial reference");
        Ok(true)
    } else {
        println!(
            "results disagreed or calls failed in: {}",
            failed.join("; ")
        );
        Ok(false)
    }
}

const LEGEND: &str = "implementations:
  parfor         parfor through its C ABI (C callers in omp_compare.c, compiled by gcc)
  parfor-clang   the same parfor loop with its C body compiled by clang (loop-body rows only;
                 each is held against the OpenMP loop from the same compiler)
  parfor-reduce_with, parfor-clang-reduce_with   the sum of squares as a parfor_reduce_with fold
  gcc, clang     the same loop with `#pragma omp parallel for` (gcc 12 / libgomp, clang / LLVM libomp)
  *-simd         `omp parallel for simd reduction`      *-plain  `omp parallel for reduction` (scalar)
  *-hand         `omp parallel` + 64 partial sums per thread (hand-vectorised)
  serial         one thread, 64 partial sums (vectorised)   *-readbw  parallel OR of the words: read bandwidth
  tbb            oneTBB parallel_for / parallel_reduce      rayon*  rayon called from Rust
  rayon-install  pool.install from a non-pool thread        rayon-current  pool built with use_current_thread
  floor-spin     cache line round trip to a spinning thread floor-futex   ... to a thread woken by futex
checks: floats within 1e-10 x sum|terms| of the correctly rounded sum; integers, MIN/MAX,
  loop outputs and the exact sum bitwise";

/// The workspace's results/ directory (gitignored).
fn results_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("results"), |root| root.join("results"))
}

fn version() -> String {
    // SAFETY: parfor_version returns static NUL-terminated text.
    unsafe { std::ffi::CStr::from_ptr(parfor::ffi::parfor_version()) }
        .to_string_lossy()
        .into_owned()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string())
}

/// The 1-minute load average (0 where /proc/loadavg cannot be read).
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
