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
mod isolated;
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
use report::{PlotInfo, RowResult, Section};
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

/// Which sections a run measures.
#[derive(Clone, Copy, PartialEq)]
enum Sections {
    Both,
    InsteadOf,
    Beside,
}

fn main() -> ExitCode {
    let mut plan = FULL;
    let mut quick = false;
    let mut only: Option<String> = None;
    let mut worker: Option<String> = None;
    let mut sections = Sections::Both;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => {
                plan = QUICK;
                quick = true;
            }
            "--worker" => match args.next() {
                Some(name) => worker = Some(name),
                None => {
                    eprintln!("parfor-compare: --worker needs a runtime name");
                    return ExitCode::from(2);
                }
            },
            "--section" => match args.next().as_deref() {
                Some("instead") => sections = Sections::InsteadOf,
                Some("beside") => sections = Sections::Beside,
                _ => {
                    eprintln!("parfor-compare: --section takes instead or beside (try --help)");
                    return ExitCode::from(2);
                }
            },
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
    if let Some(name) = worker {
        let epcc = if quick {
            isolated::EPCC_QUICK
        } else {
            isolated::EPCC_FULL
        };
        return match isolated::worker(&name, &plan, &epcc, quick, only.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("parfor-compare --worker {name}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match run(plan, quick, sections, only.as_deref()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("parfor-compare: {e}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: parfor-compare [--quick] [--section instead|beside] [--only PATTERN]

Compares parfor with OpenMP (gcc/libgomp, clang/libomp), oneTBB and rayon in
two sections: \"instead of OpenMP\", each implementation in its own process (the
EPCC syncbench method for PARALLEL FOR and REDUCTION overheads, fork-join after
idle, the SUM sweep), and \"beside OpenMP\", every implementation in one process,
interleaved (the rows of issue 3). Checks that the results agree, prints medians,
quartiles and the targets' verdicts (PASS: the ratio holds at the upper quartile;
TIE: only at the median), and writes results/compare.{csv,md,svg}, or
results/compare-quick.{csv,md,svg} for --quick (a quick run never overwrites a
full run's files). PARFOR_ISA=avx512|avx2|baseline picks parfor's kernel level.

  --quick             fewer and shorter rounds (about a minute), for CI
  --section S         only the \"instead\" or the \"beside\" section
  --only PATTERN      only the rows whose group or workload contains PATTERN
                      (for example \"SUM f64\", \"n = 1e5\", \"fork-join\", \"EPCC\")
  --worker RUNTIME    (internal) measure one runtime's \"instead of\" rows";

/// Runs everything; Ok(false) when a result disagreed or a call failed.
fn run(plan: Plan, quick: bool, sections: Sections, only: Option<&str>) -> Result<bool, String> {
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
        machine(),
        available_cpus()
    );
    println!(
        "parfor kernels: {} (PARFOR_ISA={}; this CPU supports {})",
        parfor::kernels::isa(),
        std::env::var("PARFOR_ISA").unwrap_or_else(|_| "unset".into()),
        parfor::kernels::supported_isas()
            .iter()
            .map(|l| l.name())
            .collect::<Vec<_>>()
            .join(", ")
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

    let mut results = Vec::new();
    if sections != Sections::Beside {
        println!("\n{}:", Section::InsteadOf.title());
        results.extend(isolated::run(quick, only)?);
    }
    if sections == Sections::InsteadOf {
        return finish(results, quick, threads, started);
    }
    println!("\n{}:", Section::Beside.title());

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
            section: Section::Beside,
            group: row.group.to_string(),
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

    finish(results, quick, threads, started)
}

/// Prints the table and summary, writes the results files; Ok(false) when a row
/// failed.
fn finish(
    results: Vec<RowResult>,
    quick: bool,
    threads: usize,
    started: Instant,
) -> Result<bool, String> {
    let table = report::table(&results);
    let summary = report::summary(&results);
    print!("{table}");
    println!("\nsummary (ratio = parfor side / best peer in time, or fraction of the best read bandwidth; PASS: holds at the upper quartile, TIE: at the median only):\n");
    print!("{summary}");

    let info = PlotInfo {
        machine: machine(),
        threads,
        commit: commit(),
        date: date(),
        mode: if quick { "quick" } else { "full" }.to_string(),
    };
    let dir = results_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // A quick run (CI) writes its own files: never the full run's.
    let stem = if quick { "compare-quick" } else { "compare" };
    let csv = dir.join(format!("{stem}.csv"));
    report::write_csv(&csv, &results)
        .map_err(|e| format!("cannot write {}: {e}", csv.display()))?;
    let md = dir.join(format!("{stem}.md"));
    std::fs::write(
        &md,
        format!(
            "# parfor-compare ({} run)\n\n{}\n\n{summary}\n```\n{table}```\n",
            info.mode,
            info.header()
        ),
    )
    .map_err(|e| format!("cannot write {}: {e}", md.display()))?;
    let svg = dir.join(format!("{stem}.svg"));
    if results.iter().any(|r| r.outcome.is_ok()) {
        report::write_svg(&svg, &results, &info)
            .map_err(|e| format!("cannot write {}: {e}", svg.display()))?;
        println!(
            "\nwrote {}, {} and {}",
            csv.display(),
            md.display(),
            svg.display()
        );
    } else {
        println!(
            "\nwrote {} and {} (no row measured: no plot)",
            csv.display(),
            md.display()
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

/// A field of the first processor in /proc/cpuinfo (what lscpu shows).
fn cpuinfo(field: &str) -> Option<String> {
    let s = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    s.lines()
        .find(|l| l.split(':').next().is_some_and(|k| k.trim() == field))
        .and_then(|l| l.split(':').nth(1))
        .map(|m| m.trim().to_string())
}

/// "MODEL NAME (family F model M), kernels LEVEL".
fn machine() -> String {
    format!(
        "{} (family {} model {}), parfor kernels {}",
        cpuinfo("model name").unwrap_or_else(|| "unknown CPU".into()),
        cpuinfo("cpu family").unwrap_or_else(|| "?".into()),
        cpuinfo("model").unwrap_or_else(|| "?".into()),
        parfor::kernels::isa()
    )
}

/// The workspace's commit (with "+changes" when the tree differs from it), or
/// "unknown" outside a git checkout.
fn commit() -> String {
    let root = results_dir()
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(c) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{c}+changes")
            } else {
                c
            }
        }
        None => "unknown".to_string(),
    }
}

/// Today's date and time in UTC, "YYYY-MM-DD HH:MM UTC".
fn date() -> String {
    // SAFETY: time(NULL) only returns the clock; gmtime_r writes the tm it is given.
    let tm = unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::gmtime_r(&t, &mut tm).is_null() {
            return "unknown date".to_string();
        }
        tm
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min
    )
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
