//! The "instead of OpenMP" section: what a program that switches from OpenMP to
//! parfor sees. Each implementation runs in its own process (this binary started
//! again with `--worker RUNTIME`), so no runtime's idle spinning slows another, as
//! when one program uses one runtime. The rows:
//!
//! - EPCC overheads: PARALLEL FOR and REDUCTION by the method of the EPCC OpenMP
//!   MicroBenchmark Suite's syncbench (v4.0; see compare/c/epcc.c): a test repeats
//!   the construct `innerreps` times, each of its T iterations (T = the team size)
//!   running a delay calibrated to 0.1 us; `innerreps` doubles from 10 until one
//!   test lasts the target test time (1000 us, the suite's default); after one
//!   untimed test, `outer` timed tests (20, the suite's default) each give the time
//!   per repetition. The same is done for the reference (the delay run serially,
//!   plus an increment for REDUCTION). A sample's overhead is its time minus the
//!   reference's median, so the median overhead is the suite's "median_ovrhd".
//! - fork-join of 2 iterations: back to back, after 2 ms and after 10 ms idle.
//! - the SUM f64 size sweep.
//!
//! A worker prints one tab-separated line per measured implementation (see
//! `Line`); the parent gathers them into rows and attaches the targets.

use std::ffi::c_int;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::data::{exact_sum, Inputs};
use crate::kernels::{self, EpccFn, EpccKernels, ForkJoinFn, ReduceFn};
use crate::measure::{median, run_row, Cond, Measured, Plan, Stats, Subject};
use crate::report::{RowResult, Section};
use crate::suite::{
    fmt_size, forkjoin, reduce, Caller, Expect, Goal, Target, FLOAT_TOLERANCE, SUM_SIZES,
};

/// The worker processes, in the order they run: name for `--worker`, and what it
/// measures.
pub const WORKERS: [(&str, &str); 5] = [
    ("parfor", "parfor through its C ABI (gcc-compiled callers)"),
    ("libgomp", "gcc 12 -fopenmp"),
    ("libomp", "clang -fopenmp=libomp"),
    ("tbb", "oneTBB"),
    ("serial", "one thread, no runtime"),
];

/// Settings of the EPCC method.
#[derive(Clone, Copy, Debug)]
pub struct EpccPlan {
    /// Timed tests per measurement (the suite's --outer-repetitions, default 20).
    pub outer: usize,
    /// Length one test should reach (the suite's --test-time, default 1000 us).
    pub test_time: Duration,
    /// The delay of one iteration (the suite's --delay-time, default 0.1 us).
    pub delay: Duration,
}

/// The suite's defaults (common.h of openmpbench_C_v40).
pub const EPCC_FULL: EpccPlan = EpccPlan {
    outer: 20,
    test_time: Duration::from_micros(1000),
    delay: Duration::from_nanos(100),
};

/// --quick: fewer and shorter tests, the same delay.
pub const EPCC_QUICK: EpccPlan = EpccPlan {
    outer: 7,
    test_time: Duration::from_micros(300),
    delay: Duration::from_nanos(100),
};

/// Idle times of the own-process fork-join rows: issue 3's 2 ms, and 10 ms, after
/// which every runtime here but LLVM libomp (200 ms spin) has parked its workers.
const IDLE_TIMES: [Duration; 2] = [Duration::from_millis(2), Duration::from_millis(10)];

const GROUP_EPCC: &str = "EPCC overhead";
const GROUP_FORK: &str = "fork-join of 2 iterations";
const GROUP_SUM: &str = "SUM f64";

/// The SUM sizes a worker measures: all of them, or up to 1e6 for --quick (the
/// larger ones need 800 MB per process and seconds per row).
fn sum_sizes(quick: bool) -> &'static [usize] {
    if quick {
        &SUM_SIZES[..4]
    } else {
        &SUM_SIZES
    }
}

/// One measured implementation, as a worker prints it.
struct Line {
    group: String,
    workload: String,
    size: usize,
    bytes: f64,
    cond: Cond,
    label: String,
    stats: Stats,
    spread: Option<(u64, u64)>,
}

fn cond_code(c: Cond) -> String {
    match c {
        Cond::BackToBack => "b2b".to_string(),
        Cond::AfterIdle(d) => format!("idle{}us", d.as_micros()),
    }
}

fn parse_cond(s: &str) -> Option<Cond> {
    if s == "b2b" {
        return Some(Cond::BackToBack);
    }
    let us = s.strip_prefix("idle")?.strip_suffix("us")?.parse().ok()?;
    Some(Cond::AfterIdle(Duration::from_micros(us)))
}

impl Line {
    fn print(&self) {
        let (two, all) = self.spread.unwrap_or((u64::MAX, 0));
        println!(
            "PFC\t{}\t{}\t{}\t{}\t{}\t{}\t{:e}\t{:e}\t{:e}\t{}\t{}\t{}",
            self.group,
            self.workload,
            self.size,
            self.bytes,
            cond_code(self.cond),
            self.label,
            self.stats.median,
            self.stats.q1,
            self.stats.q3,
            self.stats.rounds,
            two,
            all
        );
    }

    fn parse(line: &str) -> Option<Line> {
        let f: Vec<&str> = line.strip_prefix("PFC\t")?.split('\t').collect();
        if f.len() != 12 {
            return None;
        }
        let two: u64 = f[10].parse().ok()?;
        let all: u64 = f[11].parse().ok()?;
        Some(Line {
            group: f[0].to_string(),
            workload: f[1].to_string(),
            size: f[2].parse().ok()?,
            bytes: f[3].parse().ok()?,
            cond: parse_cond(f[4])?,
            label: f[5].to_string(),
            stats: Stats {
                median: f[6].parse().ok()?,
                q1: f[7].parse().ok()?,
                q3: f[8].parse().ok()?,
                rounds: f[9].parse().ok()?,
            },
            spread: (two != u64::MAX).then_some((two, all)),
        })
    }
}

thread_local! {
    /// The worker's --only pattern.
    static ONLY: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Whether the worker measures a row of `group` and `workload` (see `worker`).
fn wanted(group: &str, workload: &str) -> bool {
    ONLY.with(|o| {
        o.borrow()
            .as_deref()
            .is_none_or(|p| group.contains(p) || workload.contains(p))
    })
}

/// An error a worker reports for one row (the row then shows it).
fn print_error(group: &str, workload: &str, msg: &str) {
    println!(
        "PFC-ERR\t{group}\t{workload}\t{}",
        msg.replace(['\t', '\n'], " ")
    );
}

/// A line of information the parent passes on as it is.
fn print_note(msg: &str) {
    println!("PFC-NOTE\t{msg}");
}

/// The two EPCC tests of one runtime: (label, test, expected count per repetition
/// as a multiple of the team size, or 1 for a count per repetition).
struct EpccSide {
    kernels: EpccKernels,
    team: c_int,
    pfor: Vec<(String, EpccFn)>,
    red: Vec<(String, EpccFn)>,
}

/// Runs `f` for `reps` repetitions and returns its seconds, checking the count of
/// delays it reports against `expected`.
fn run_test(f: EpccFn, reps: u64, len: c_int, team: c_int, expected: i64) -> Result<f64, String> {
    let mut count: libc::c_long = -1;
    let start = Instant::now();
    // SAFETY: count is a valid long to write; the test only reads its arguments.
    let status = unsafe { f(reps as libc::c_ulong, len, team, &mut count) };
    let seconds = start.elapsed().as_secs_f64();
    if status != 0 {
        return Err(format!("status {status}"));
    }
    // c_long is i64 here, i32 on 32-bit targets: the conversion is not useless there.
    #[allow(clippy::useless_conversion)]
    let count = i64::from(count);
    if count != expected {
        return Err(format!("counted {count}, expected {expected}"));
    }
    Ok(seconds)
}

/// The suite's procedure for one test: innerreps doubled from 10 until a test lasts
/// `test_time`, one untimed test, then `outer` timed tests; seconds per repetition.
fn epcc_times(
    f: EpccFn,
    len: c_int,
    team: c_int,
    per_rep: i64,
    plan: &EpccPlan,
) -> Result<Vec<f64>, String> {
    let mut reps: u64 = 10;
    while run_test(f, reps, len, team, per_rep * reps as i64)? < plan.test_time.as_secs_f64() {
        reps *= 2;
        if reps > 1 << 40 {
            return Err("the test never reached its target time".into());
        }
    }
    run_test(f, reps, len, team, per_rep * reps as i64)?;
    (0..plan.outer)
        .map(|_| run_test(f, reps, len, team, per_rep * reps as i64).map(|s| s / reps as f64))
        .collect()
}

/// The EPCC rows of one runtime.
fn epcc_rows(side: &EpccSide, plan: &EpccPlan) {
    // SAFETY: delay_length only runs the delay loop.
    let len = unsafe { (side.kernels.delay_length)(plan.delay.as_secs_f64()) };
    let team = side.team;
    for (workload, reference, tests) in [
        (
            format!("PARALLEL FOR, T = {team}"),
            side.kernels.refer,
            &side.pfor,
        ),
        (
            format!("REDUCTION, T = {team}"),
            side.kernels.referred,
            &side.red,
        ),
    ] {
        if !wanted(GROUP_EPCC, &workload) {
            continue;
        }
        let reference_times = match epcc_times(reference, len, team, 1, plan) {
            Ok(t) => t,
            Err(e) => {
                print_error(GROUP_EPCC, &workload, &format!("reference: {e}"));
                continue;
            }
        };
        let ref_median = median(&mut reference_times.clone());
        print_note(&format!(
            "{workload}: delay {len} steps, reference {:.3} us per repetition",
            ref_median * 1e6
        ));
        for (label, test) in tests {
            match epcc_times(*test, len, team, i64::from(team), plan) {
                Ok(times) => {
                    let mut overheads: Vec<f64> = times.iter().map(|t| t - ref_median).collect();
                    Line {
                        group: GROUP_EPCC.to_string(),
                        workload: workload.clone(),
                        size: team as usize,
                        bytes: 0.0,
                        cond: Cond::BackToBack,
                        label: label.clone(),
                        stats: Stats::of(&mut overheads),
                        spread: None,
                    }
                    .print();
                }
                Err(e) => print_error(GROUP_EPCC, &workload, &format!("{label}: {e}")),
            }
        }
    }
}

/// Measures one subject in `cond` and prints its line (or the error).
fn measure_one(
    group: &str,
    workload: &str,
    size: usize,
    bytes: f64,
    cond: Cond,
    subject: Box<dyn Subject>,
    plan: &Plan,
) {
    if !wanted(group, workload) {
        return;
    }
    let mut subjects = vec![subject];
    match run_row(&mut subjects, cond, plan, &|| {}) {
        Ok(measured) => {
            for Measured {
                label,
                stats,
                spread,
            } in measured
            {
                Line {
                    group: group.to_string(),
                    workload: workload.to_string(),
                    size,
                    bytes,
                    cond,
                    label,
                    stats,
                    spread,
                }
                .print();
            }
        }
        Err(errors) => print_error(group, workload, &errors.join("; ")),
    }
}

fn fork_rows(label: &str, f: ForkJoinFn, plan: &Plan) {
    let mut conds = vec![(Cond::BackToBack, "back to back".to_string())];
    for d in IDLE_TIMES {
        conds.push((
            Cond::AfterIdle(d),
            format!("after {} ms idle", d.as_millis()),
        ));
    }
    for (cond, what) in conds {
        measure_one(
            GROUP_FORK,
            &format!("{what}, own process"),
            2,
            0.0,
            cond,
            forkjoin(label, f),
            plan,
        );
    }
}

/// The SUM inputs of a worker: x and, per size, its correctly rounded sum and the
/// OR of its words (for the read-bandwidth loops).
struct SumData {
    x: &'static [f64],
    sums: Vec<f64>,
    or_words: Vec<u64>,
}

fn sum_data(quick: bool) -> SumData {
    // Nothing to generate when --only leaves no SUM row.
    let sizes = if sum_sizes(quick).iter().any(|&n| {
        wanted(
            GROUP_SUM,
            &format!("SUM f64, n = {}, own process", fmt_size(n)),
        )
    }) {
        sum_sizes(quick)
    } else {
        &SUM_SIZES[..1]
    };
    let largest = *sizes.last().expect("sizes");
    let inputs: &'static Inputs = Box::leak(Box::new(Inputs::generate(largest, 1)));
    let x = inputs.x.as_slice();
    SumData {
        x,
        sums: sizes.iter().map(|&n| exact_sum(&x[..n])).collect(),
        or_words: sizes
            .iter()
            .map(|&n| x[..n].iter().fold(0u64, |a, v| a | v.to_bits()))
            .collect(),
    }
}

/// The SUM rows of one runtime: (label, kernel, is it the read-bandwidth loop).
fn sum_rows(kernels: &[(String, ReduceFn, bool)], data: &SumData, quick: bool, plan: &Plan) {
    for (i, &n) in sum_sizes(quick).iter().enumerate().take(data.sums.len()) {
        let workload = format!("SUM f64, n = {}, own process", fmt_size(n));
        for (label, f, readbw) in kernels {
            let expect = if *readbw {
                Expect::U64(data.or_words[i])
            } else {
                Expect::F64Near {
                    reference: data.sums[i],
                    tol: FLOAT_TOLERANCE * data.sums[i].abs(),
                }
            };
            measure_one(
                GROUP_SUM,
                &workload,
                n,
                8.0 * n as f64,
                Cond::BackToBack,
                reduce(label, *f, data.x, None, n, expect),
                plan,
            );
        }
    }
}

/// `parfor-compare --worker RUNTIME`: measures one runtime's rows and prints them.
///
/// `only` keeps the rows whose group or workload contains it (what the parent's
/// --only does after the fact, here before, so that compare/epcc_check.sh can run
/// the EPCC rows alone).
pub fn worker(
    runtime: &str,
    plan: &Plan,
    epcc: &EpccPlan,
    quick: bool,
    only: Option<&str>,
) -> Result<(), String> {
    ONLY.with(|o| *o.borrow_mut() = only.map(str::to_string));
    let gcc = kernels::gcc();
    print_note(&format!(
        "{runtime}: pid {}, kernels {}",
        std::process::id(),
        parfor::kernels::isa()
    ));
    match runtime {
        "parfor" => {
            let pf = kernels::parfor();
            let team = parfor::num_threads() as c_int;
            epcc_rows(
                &EpccSide {
                    kernels: gcc.epcc,
                    team,
                    pfor: vec![("parfor".into(), pf.epcc.pfor)],
                    red: vec![("parfor-reduce_with".into(), pf.epcc.red)],
                },
                epcc,
            );
            fork_rows("parfor", pf.forkjoin2, plan);
            let data = sum_data(quick);
            sum_rows(&[("parfor".into(), pf.sum_f64, false)], &data, quick, plan);
        }
        "libgomp" | "libomp" => {
            let (name, k) = if runtime == "libgomp" {
                ("gcc", gcc)
            } else {
                match kernels::clang() {
                    Ok(k) => ("clang", k),
                    Err(e) => {
                        print_note(&format!("libomp skipped: {e}"));
                        return Ok(());
                    }
                }
            };
            // SAFETY: max_threads takes no argument and only asks the runtime.
            let team = unsafe { (k.max_threads)() };
            epcc_rows(
                &EpccSide {
                    kernels: k.epcc,
                    team,
                    pfor: vec![(name.to_string(), k.epcc.omp_pfor)],
                    red: vec![
                        (name.to_string(), k.epcc.omp_red),
                        (format!("{name}-for"), k.epcc.omp_red_for),
                    ],
                },
                epcc,
            );
            fork_rows(name, k.forkjoin2, plan);
            let data = sum_data(quick);
            sum_rows(
                &[
                    (format!("{name}-simd"), k.sum_f64_simd, false),
                    (format!("{name}-hand"), k.sum_f64_hand, false),
                    (format!("{name}-readbw"), k.read_or_u64, true),
                ],
                &data,
                quick,
                plan,
            );
        }
        "tbb" => match kernels::tbb() {
            Ok(t) => {
                fork_rows("tbb", t.forkjoin2, plan);
                let data = sum_data(quick);
                sum_rows(&[("tbb".into(), t.sum_f64, false)], &data, quick, plan);
            }
            Err(e) => print_note(&format!("tbb skipped: {e}")),
        },
        "serial" => {
            let data = sum_data(quick);
            sum_rows(
                &[("serial".into(), gcc.sum_f64_serial, false)],
                &data,
                quick,
                plan,
            );
        }
        other => return Err(format!("unknown worker {other:?}")),
    }
    Ok(())
}

/// The targets of an "instead of OpenMP" row.
fn targets(group: &str, workload: &str, size: usize) -> Vec<Target> {
    match group {
        GROUP_EPCC if workload.starts_with("PARALLEL FOR") => vec![Target::new(
            "parfor",
            &["gcc", "clang"],
            Goal::AtMost(0.4),
            "EPCC PARALLEL FOR overhead <= 0.4 x libgomp (or libomp)",
        )],
        GROUP_EPCC => vec![Target::new(
            "parfor-reduce_with",
            &["gcc", "gcc-for", "clang", "clang-for"],
            Goal::AtMost(1.0),
            "EPCC REDUCTION overhead <= omp parallel (for) reduction",
        )],
        GROUP_FORK if workload.starts_with("back to back") => vec![Target::new(
            "parfor",
            &["gcc"],
            Goal::AtMost(0.4),
            "<= 0.4 x libgomp (gcc)",
        )
        .on_two_threads()],
        GROUP_FORK => vec![
            Target::new("parfor", &["gcc"], Goal::AtMost(1.0), "<= libgomp (gcc)").on_two_threads(),
        ],
        _ if size <= 10_000 => vec![Target::new(
            "parfor",
            &["serial"],
            Goal::AtMost(1.0),
            "<= serial vectorised loop",
        )],
        _ if size <= 1_000_000 => vec![Target::new(
            "parfor",
            &["gcc-simd", "gcc-hand", "clang-simd", "clang-hand"],
            Goal::AtMost(1.0),
            "<= best OpenMP (gcc, clang; simd, hand)",
        )],
        _ => vec![Target::new(
            "parfor",
            &["gcc-readbw", "clang-readbw"],
            Goal::AtLeastThroughput(0.9),
            ">= 90% of best read bandwidth",
        )],
    }
}

/// Runs every worker in turn and returns the section's rows (and prints the
/// workers' notes). `only` keeps the rows whose group or workload contains it.
pub fn run(quick: bool, only: Option<&str>) -> Result<Vec<RowResult>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut rows: Vec<RowResult> = Vec::new();
    let row_of = |rows: &mut Vec<RowResult>, group: &str, workload: &str| -> usize {
        if let Some(i) = rows
            .iter()
            .position(|r| r.group == group && r.workload == workload)
        {
            return i;
        }
        rows.push(RowResult {
            section: Section::InsteadOf,
            group: group.to_string(),
            workload: workload.to_string(),
            size: 0,
            bytes: 0.0,
            cond: Cond::BackToBack,
            caller: Caller::Main,
            outcome: Ok(Vec::new()),
            targets: Vec::new(),
            seconds: 0.0,
        });
        rows.len() - 1
    };
    for (name, what) in WORKERS {
        let start = Instant::now();
        let mut cmd = Command::new(&exe);
        cmd.args(["--worker", name]);
        if quick {
            cmd.arg("--quick");
        }
        let out = cmd
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot start the {name} worker: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut lines = 0;
        for l in stdout.lines() {
            if let Some(note) = l.strip_prefix("PFC-NOTE\t") {
                println!("  [{name}] {note}");
            } else if let Some(err) = l.strip_prefix("PFC-ERR\t") {
                let f: Vec<&str> = err.splitn(3, '\t').collect();
                if f.len() == 3 {
                    let i = row_of(&mut rows, f[0], f[1]);
                    let msg = format!("{name}: {}", f[2]);
                    match &mut rows[i].outcome {
                        Err(v) => v.push(msg),
                        o => *o = Err(vec![msg]),
                    }
                }
            } else if let Some(line) = Line::parse(l) {
                lines += 1;
                let i = row_of(&mut rows, &line.group, &line.workload);
                let r = &mut rows[i];
                r.size = line.size;
                r.bytes = line.bytes;
                r.cond = line.cond;
                if let Ok(m) = &mut r.outcome {
                    m.push(Measured {
                        label: line.label,
                        stats: line.stats,
                        spread: line.spread,
                    });
                }
            }
        }
        println!(
            "  {name} ({what}): {lines} figures in {:.1} s, its own process",
            start.elapsed().as_secs_f64()
        );
        if !out.status.success() {
            return Err(format!("the {name} worker failed ({})", out.status));
        }
    }
    for r in &mut rows {
        r.targets = targets(&r.group, &r.workload, r.size);
    }
    if let Some(p) = only {
        rows.retain(|r| r.group.contains(p) || r.workload.contains(p));
    }
    Ok(rows)
}
