//! The rows of issue 3's targets table (plus the OpenMP/parfor alternation of issue 5
//! and the exact sum of issue 6): for each, the implementations measured side by
//! side, what their results must equal, and the target parfor must meet.

use std::ffi::{c_int, c_void};
use std::time::{Duration, Instant};

use rayon::ThreadPool;

use crate::data::{abs_sum, digest, exact_sum, Inputs};
use crate::kernels::{
    ForkJoinFn, LoopFn, OmpKernels, ParforClangKernels, ParforKernels, ReduceFn, TbbKernels,
};
use crate::measure::{Cond, FnSubject, Lingering, Subject};
use crate::peers::{rayon_install, rayon_sum, CurrentThreadPool, Floor};

/// Idle time before each call in the "after idle" rows (issue 3: 2 ms).
pub const IDLE: Duration = Duration::from_millis(2);

/// Relative tolerance of floating-point sums against the correctly rounded reference,
/// as a fraction of the sum of the terms' magnitudes. The data are in [0.5, 1.5), so
/// one element lost or counted twice moves a sum of n = 1e8 terms by at least
/// 0.5 / 1.5e8 = 3e-9 of it, 30 times the tolerance; the rounding errors of the
/// summation orders used here (at least 8 independent partial sums, blocks per
/// thread) are of the order of 1e-13 for such data, far below it.
pub const FLOAT_TOLERANCE: f64 = 1e-10;

/// The sizes of the SUM rows (issue 3).
pub const SUM_SIZES: [usize; 6] = [1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];
/// Size of the typed rows, reduce_with and the alternation.
pub const TYPED_N: usize = 1_000_000;
/// Size of the imbalanced schedule rows.
pub const IMBALANCED_N: usize = 100_000;
/// Size of the exact-sum row (issue 6).
pub const EXACT_N: usize = 10_000_000;
/// Size of the alternation row: a medium loop (a few microseconds), where the
/// spinning workers of one runtime most hurt the other.
pub const ALTERNATION_N: usize = 100_000;

/// Everything the rows are built from.
pub struct Ctx {
    pub inputs: &'static Inputs,
    pub refs: References,
    pub pf: ParforKernels,
    /// parfor's compiler-dependent loops compiled by clang, where clang was found.
    pub pf_clang: Option<ParforClangKernels>,
    pub gcc: OmpKernels,
    pub clang: Option<OmpKernels>,
    pub tbb: Option<TbbKernels>,
    /// A rayon pool with parfor's team size, entered from outside.
    pub pool: &'static ThreadPool,
    pub threads: usize,
}

/// Serial references for every checked result.
pub struct References {
    /// Correctly rounded SUM of x[..n] for each of SUM_SIZES.
    pub sums: Vec<f64>,
    pub sum_exact: f64,
    pub dot: f64,
    pub dot_scale: f64,
    pub sumsq: f64,
    pub min_f32: f32,
    pub max_f32: f32,
    pub min_f64: f64,
    pub max_f64: f64,
    pub sum_i32: i32,
    pub sum_i64: i64,
    /// Bitwise OR of x's words, per SUM size.
    pub or_words: Vec<u64>,
    /// Digest of the imbalanced loop's output.
    pub imbalanced: u64,
}

impl References {
    pub fn compute(inputs: &Inputs) -> References {
        let x = inputs.x.as_slice();
        let typed = &x[..TYPED_N];
        let y = inputs.y.as_slice();
        let products: Vec<f64> = typed.iter().zip(y).map(|(a, b)| a * b).collect();
        let squares: Vec<f64> = typed.iter().map(|a| a * a).collect();
        let f = inputs.xf.as_slice();
        let xd = typed;
        let mut or_words = Vec::new();
        let mut acc = 0u64;
        let mut done = 0;
        for &n in &SUM_SIZES {
            acc = x[done..n].iter().fold(acc, |a, v| a | v.to_bits());
            done = n;
            or_words.push(acc);
        }
        let loop_out: Vec<f64> = (0..IMBALANCED_N).map(imbalanced_work).collect();
        References {
            sums: SUM_SIZES.iter().map(|&n| exact_sum(&x[..n])).collect(),
            sum_exact: exact_sum(&x[..EXACT_N]),
            dot: exact_sum(&products),
            dot_scale: abs_sum(&products),
            sumsq: exact_sum(&squares),
            min_f32: f.iter().copied().fold(f32::INFINITY, f32::min),
            max_f32: f.iter().copied().fold(f32::NEG_INFINITY, f32::max),
            min_f64: xd.iter().copied().fold(f64::INFINITY, f64::min),
            max_f64: xd.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            sum_i32: inputs
                .xi
                .as_slice()
                .iter()
                .fold(0i32, |a, &v| a.wrapping_add(v)),
            sum_i64: inputs
                .xl
                .as_slice()
                .iter()
                .fold(0i64, |a, &v| a.wrapping_add(v)),
            or_words,
            imbalanced: digest(&loop_out),
        }
    }
}

/// cmp_imbalanced_work of omp_kernels.h, in Rust, for the reference.
fn imbalanced_work(i: usize) -> f64 {
    let mut u = i as u64;
    for _ in 0..1 + i / 1024 {
        u = u
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
    }
    (u >> 11) as f64
}

/// What a row's figure is compared with.
#[derive(Clone, Debug)]
pub enum Goal {
    /// subject time <= limit x the fastest peer's time.
    AtMost(f64),
    /// subject throughput >= limit x the fastest peer's (the peers read the same
    /// bytes, so this is peer time / subject time >= limit).
    AtLeastThroughput(f64),
}

/// One target: `subject` against the best of `peers` (those that were measured).
#[derive(Clone, Debug)]
pub struct Target {
    pub subject: String,
    pub peers: Vec<String>,
    pub goal: Goal,
    /// The target as issue 3 (or 5, 6) states it.
    pub text: String,
    /// For the fork-join rows ("both threads really used"): the subject must have
    /// run the two iterations on two threads in at least this fraction of its calls.
    pub min_two_thread_calls: Option<f64>,
}

/// Fork-join targets hold only when parfor really used both threads: in at least 90 %
/// of the calls (a call may run alone now and then when a worker is late, which is
/// the runtime's right; doing so as a rule would make the figure meaningless).
const TWO_THREAD_CALLS: f64 = 0.9;

impl Target {
    pub(crate) fn new(subject: &str, peers: &[&str], goal: Goal, text: &str) -> Target {
        Target {
            subject: subject.to_string(),
            peers: peers.iter().map(|p| p.to_string()).collect(),
            goal,
            text: text.to_string(),
            min_two_thread_calls: None,
        }
    }

    pub(crate) fn on_two_threads(mut self) -> Target {
        self.min_two_thread_calls = Some(TWO_THREAD_CALLS);
        self
    }
}

/// Which application thread runs a row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Caller {
    Main,
    /// A thread started for this row, which has never called parfor (or OpenMP)
    /// before.
    Second,
}

/// One row of the comparison.
pub struct Row {
    /// Rows of a group share a plot (SUM f64) and a heading in the table.
    pub group: &'static str,
    pub workload: String,
    pub size: usize,
    /// Bytes read by one call, for GB/s (0: not a streaming workload).
    pub bytes: f64,
    pub cond: Cond,
    pub caller: Caller,
    pub subjects: Vec<Box<dyn Subject>>,
    pub targets: Vec<Target>,
}

/// A reduction's expected result.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Expect {
    /// Within `tol` of the reference.
    F64Near {
        reference: f64,
        tol: f64,
    },
    F64(f64),
    F32(f32),
    I32(i32),
    I64(i64),
    U64(u64),
}

impl Expect {
    fn check(self, out: &[u8; 8]) -> Result<(), String> {
        let f64_of = || f64::from_ne_bytes(*out);
        let ok_or = |ok: bool, got: String, want: String| {
            if ok {
                Ok(())
            } else {
                Err(format!("result {got}, expected {want}"))
            }
        };
        match self {
            Expect::F64Near { reference, tol } => {
                let v = f64_of();
                ok_or(
                    (v - reference).abs() <= tol,
                    format!("{v:.17e}"),
                    format!("{reference:.17e} +- {tol:.1e}"),
                )
            }
            Expect::F64(r) => {
                let v = f64_of();
                ok_or(
                    v.to_bits() == r.to_bits(),
                    format!("{v:.17e}"),
                    format!("{r:.17e} exactly"),
                )
            }
            Expect::F32(r) => {
                let v = f32::from_ne_bytes([out[0], out[1], out[2], out[3]]);
                ok_or(
                    v.to_bits() == r.to_bits(),
                    format!("{v:.9e}"),
                    format!("{r:.9e} exactly"),
                )
            }
            Expect::I32(r) => {
                let v = i32::from_ne_bytes([out[0], out[1], out[2], out[3]]);
                ok_or(v == r, v.to_string(), r.to_string())
            }
            Expect::I64(r) => {
                let v = i64::from_ne_bytes(*out);
                ok_or(v == r, v.to_string(), r.to_string())
            }
            Expect::U64(r) => {
                let v = u64::from_ne_bytes(*out);
                ok_or(v == r, format!("{v:#x}"), format!("{r:#x}"))
            }
        }
    }
}

/// Describes a nonzero status of a parfor call (the OpenMP kernels return 0).
fn status_error(status: c_int) -> String {
    let message = |p: *const std::ffi::c_char| {
        // SAFETY: parfor returns static or thread-local NUL-terminated text, never NULL.
        unsafe { std::ffi::CStr::from_ptr(p) }
            .to_string_lossy()
            .into_owned()
    };
    format!(
        "status {status}: {} ({})",
        message(parfor::ffi::parfor_status_message(status)),
        message(parfor::ffi::parfor_last_error())
    )
}

/// A subject calling a `cmp_reduce_fn` on `a` (and `b`) of length `n`.
pub(crate) fn reduce<T: Sync + 'static>(
    label: &str,
    f: ReduceFn,
    a: &'static [T],
    b: Option<&'static [T]>,
    n: usize,
    expect: Expect,
) -> Box<dyn Subject> {
    let call = move |out: &mut [u8; 8]| -> c_int {
        let bp = b.map_or(std::ptr::null(), |b| b.as_ptr() as *const c_void);
        // SAFETY: a (and b) hold at least n elements of the kernel's type; out has
        // room and alignment for one element of any type used here.
        unsafe {
            f(
                a.as_ptr() as *const c_void,
                bp,
                n,
                out.as_mut_ptr() as *mut c_void,
            )
        }
    };
    Box::new(FnSubject::new(
        label,
        move || {
            let mut out = Out::default();
            std::hint::black_box(call(&mut out.0));
            0
        },
        move || {
            let mut out = Out::default();
            match call(&mut out.0) {
                0 => expect.check(&out.0),
                s => Err(status_error(s)),
            }
        },
    ))
}

/// An 8-byte result slot aligned for any element type.
#[derive(Default)]
#[repr(align(8))]
struct Out([u8; 8]);

/// A subject running a `cmp_forkjoin_fn`; it counts calls that used two threads.
pub(crate) fn forkjoin(label: &str, f: ForkJoinFn) -> Box<dyn Subject> {
    let run = move || -> Result<[c_int; 2], c_int> {
        let mut who: [c_int; 2] = [-1, -1];
        // SAFETY: who has the 2 elements the kernel writes.
        match unsafe { f(who.as_mut_ptr()) } {
            0 => Ok(who),
            s => Err(s),
        }
    };
    Box::new(
        FnSubject::new(
            label,
            move || match run() {
                Ok([a, b]) => u32::from(a != b),
                Err(_) => 0,
            },
            move || match run() {
                Ok([a, b]) if a >= 0 && b >= 0 => Ok(()),
                Ok(_) => Err("an iteration of the 2-iteration loop did not run".to_string()),
                Err(s) => Err(status_error(s)),
            },
        )
        .counting_spread(),
    )
}

/// A subject running a `cmp_loop_fn` over `n` iterations into its own buffer.
fn imbalanced(label: &str, f: LoopFn, n: usize, expected: u64) -> Box<dyn Subject> {
    let mut out = vec![0.0f64; n];
    let mut check_out = vec![0.0f64; n];
    Box::new(FnSubject::new(
        label,
        move || {
            // SAFETY: out holds n doubles.
            std::hint::black_box(unsafe { f(out.as_mut_ptr(), n) });
            0
        },
        move || {
            check_out.fill(0.0);
            // SAFETY: check_out holds n doubles.
            match unsafe { f(check_out.as_mut_ptr(), n) } {
                0 if digest(&check_out) == expected => Ok(()),
                0 => Err("the loop wrote different values from the serial loop".to_string()),
                s => Err(status_error(s)),
            }
        },
    ))
}

/// The alternation of issue 5: one OpenMP region, then one parfor call, in a loop;
/// each side is timed on its own.
struct Alternation {
    omp: ReduceFn,
    pf: ReduceFn,
    x: &'static [f64],
    n: usize,
    expect: Expect,
}

impl Alternation {
    fn call(f: ReduceFn, x: &[f64], n: usize) -> (c_int, Out) {
        let mut out = Out::default();
        // SAFETY: x holds at least n doubles; out has room for one.
        let s = unsafe {
            f(
                x.as_ptr() as *const c_void,
                std::ptr::null(),
                n,
                out.0.as_mut_ptr() as *mut c_void,
            )
        };
        (s, out)
    }
}

impl Subject for Alternation {
    fn labels(&self) -> Vec<String> {
        vec!["gcc-alternating".into(), "parfor-alternating".into()]
    }

    fn verify(&mut self) -> Result<(), String> {
        for f in [self.omp, self.pf] {
            match Self::call(f, self.x, self.n) {
                (0, out) => self.expect.check(&out.0)?,
                (s, _) => return Err(status_error(s)),
            }
        }
        Ok(())
    }

    fn batch(&mut self, _cond: Cond, calls: usize) -> Vec<f64> {
        let (mut t_omp, mut t_pf) = (0.0, 0.0);
        Self::call(self.omp, self.x, self.n);
        Self::call(self.pf, self.x, self.n);
        for _ in 0..calls {
            let t0 = Instant::now();
            std::hint::black_box(Self::call(self.omp, self.x, self.n));
            let t1 = Instant::now();
            std::hint::black_box(Self::call(self.pf, self.x, self.n));
            let t2 = Instant::now();
            t_omp += (t1 - t0).as_secs_f64();
            t_pf += (t2 - t1).as_secs_f64();
        }
        vec![t_omp / calls as f64, t_pf / calls as f64]
    }
}

/// The OpenMP builds that are present, with their label prefixes.
fn omp_builds(ctx: &Ctx) -> Vec<(&'static str, OmpKernels)> {
    let mut v = vec![("gcc", ctx.gcc)];
    if let Some(c) = ctx.clang {
        v.push(("clang", c));
    }
    v
}

/// Marks a subject of OpenMP build `k` as lingering when its runtime does.
fn of_build(k: &OmpKernels, s: Box<dyn Subject>) -> Box<dyn Subject> {
    if k.lingers {
        Box::new(Lingering(s))
    } else {
        s
    }
}

/// Every row, in the order they run.
pub fn rows(ctx: &Ctx) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for (cond, caller, workload, target) in [
        (
            Cond::BackToBack,
            Caller::Main,
            "back to back, main thread",
            Target::new(
                "parfor",
                &["gcc"],
                Goal::AtMost(0.4),
                "<= 0.25 us: beat libgomp by 2.5x (<= 0.4 x gcc), match TBB",
            )
            .on_two_threads(),
        ),
        (
            Cond::AfterIdle(IDLE),
            Caller::Main,
            "after 2 ms idle, main thread",
            Target::new("parfor", &["gcc"], Goal::AtMost(1.0), "<= libgomp (gcc)").on_two_threads(),
        ),
        (
            Cond::BackToBack,
            Caller::Second,
            "back to back, second thread",
            Target::new(
                "parfor",
                &["gcc"],
                Goal::AtMost(2.0),
                "<= 2 x libgomp (gcc)",
            ),
        ),
    ] {
        let mut subjects = vec![forkjoin("parfor", ctx.pf.forkjoin2)];
        for (name, k) in omp_builds(ctx) {
            subjects.push(of_build(&k, forkjoin(name, k.forkjoin2)));
        }
        if let Some(t) = ctx.tbb {
            subjects.push(forkjoin("tbb", t.forkjoin2));
        }
        subjects.push(rayon_install("rayon-install", ctx.pool));
        if caller == Caller::Main {
            subjects.push(Box::new(CurrentThreadPool::new(
                "rayon-current",
                ctx.threads,
            )?));
            subjects.push(Box::new(Floor::new("floor-spin", false)));
            subjects.push(Box::new(Floor::new("floor-futex", true)));
        }
        rows.push(Row {
            group: "fork-join of 2 iterations",
            workload: workload.to_string(),
            size: 2,
            bytes: 0.0,
            cond,
            caller,
            subjects,
            targets: vec![target],
        });
    }

    let x: &'static [f64] = ctx.inputs.x.as_slice();
    let omp_all = [
        "gcc-simd",
        "gcc-hand",
        "gcc-plain",
        "clang-simd",
        "clang-hand",
        "clang-plain",
    ];
    for (i, &n) in SUM_SIZES.iter().enumerate() {
        let reference = ctx.refs.sums[i];
        let near = Expect::F64Near {
            reference,
            tol: FLOAT_TOLERANCE * reference.abs(),
        };
        let mut subjects = vec![
            reduce("parfor", ctx.pf.sum_f64, x, None, n, near),
            reduce("serial", ctx.gcc.sum_f64_serial, x, None, n, near),
        ];
        for (name, k) in omp_builds(ctx) {
            subjects.push(of_build(
                &k,
                reduce(&format!("{name}-simd"), k.sum_f64_simd, x, None, n, near),
            ));
            subjects.push(of_build(
                &k,
                reduce(&format!("{name}-hand"), k.sum_f64_hand, x, None, n, near),
            ));
            subjects.push(of_build(
                &k,
                reduce(&format!("{name}-plain"), k.sum_f64_plain, x, None, n, near),
            ));
            subjects.push(of_build(
                &k,
                reduce(
                    &format!("{name}-readbw"),
                    k.read_or_u64,
                    x,
                    None,
                    n,
                    Expect::U64(ctx.refs.or_words[i]),
                ),
            ));
        }
        if let Some(t) = ctx.tbb {
            subjects.push(reduce("tbb", t.sum_f64, x, None, n, near));
        }
        let tol = FLOAT_TOLERANCE * reference.abs();
        subjects.push(rayon_sum("rayon", ctx.pool, &x[..n], move |v| {
            if (v - reference).abs() <= tol {
                Ok(())
            } else {
                Err(format!(
                    "result {v:.17e}, expected {reference:.17e} +- {tol:.1e}"
                ))
            }
        }));
        let target = if n <= 10_000 {
            Target::new(
                "parfor",
                &["serial"],
                Goal::AtMost(1.0),
                "<= serial vectorised loop",
            )
        } else if n <= 1_000_000 {
            Target::new(
                "parfor",
                &omp_all,
                Goal::AtMost(1.0),
                "<= best OpenMP (gcc, clang; simd, hand, plain)",
            )
        } else {
            Target::new(
                "parfor",
                &["gcc-readbw", "clang-readbw"],
                Goal::AtLeastThroughput(0.9),
                ">= 90% of best read bandwidth",
            )
        };
        rows.push(Row {
            group: "SUM f64",
            workload: format!("SUM f64, n = {}", fmt_size(n)),
            size: n,
            bytes: 8.0 * n as f64,
            cond: Cond::BackToBack,
            caller: Caller::Main,
            subjects,
            targets: vec![target],
        });
    }

    rows.extend(address_rows(ctx));
    rows.extend(typed_rows(ctx));

    let r = &ctx.refs;
    let sumsq = Expect::F64Near {
        reference: r.sumsq,
        tol: FLOAT_TOLERANCE * r.sumsq,
    };
    let mut subjects = vec![reduce(
        "parfor-reduce_with",
        ctx.pf.sumsq_f64_reduce_with,
        x,
        None,
        TYPED_N,
        sumsq,
    )];
    if let Some(c) = ctx.pf_clang {
        subjects.push(reduce(
            "parfor-clang-reduce_with",
            c.sumsq_f64_reduce_with,
            x,
            None,
            TYPED_N,
            sumsq,
        ));
    }
    for (name, k) in omp_builds(ctx) {
        subjects.push(of_build(
            &k,
            reduce(
                &format!("{name}-plain"),
                k.sumsq_f64_plain,
                x,
                None,
                TYPED_N,
                sumsq,
            ),
        ));
    }
    rows.push(Row {
        group: "reduce_with",
        workload: "sum of squares, user fold (reduce_with) vs inlined body".to_string(),
        size: TYPED_N,
        bytes: 8.0 * TYPED_N as f64,
        cond: Cond::BackToBack,
        caller: Caller::Main,
        subjects,
        targets: same_compiler_targets(
            ctx,
            ["parfor-reduce_with", "parfor-clang-reduce_with"],
            ["gcc-plain", "clang-plain"],
            Goal::AtMost(1.2),
            "<= 1.2 x omp parallel for reduction, body inlined",
        ),
    });

    type Pick = fn(&OmpKernels) -> LoopFn;
    type PickClang = fn(&ParforClangKernels) -> LoopFn;
    let schedules: [(&str, LoopFn, PickClang, Pick); 2] = [
        (
            "dynamic",
            ctx.pf.imbalanced_dynamic,
            |c| c.imbalanced_dynamic,
            |k| k.imbalanced_dynamic,
        ),
        (
            "guided",
            ctx.pf.imbalanced_guided,
            |c| c.imbalanced_guided,
            |k| k.imbalanced_guided,
        ),
    ];
    for (schedule, pf, pick_clang, pick) in schedules {
        let mut subjects = vec![imbalanced("parfor", pf, IMBALANCED_N, r.imbalanced)];
        if let Some(c) = ctx.pf_clang {
            subjects.push(imbalanced(
                "parfor-clang",
                pick_clang(&c),
                IMBALANCED_N,
                r.imbalanced,
            ));
        }
        for (name, k) in omp_builds(ctx) {
            subjects.push(of_build(
                &k,
                imbalanced(name, pick(&k), IMBALANCED_N, r.imbalanced),
            ));
        }
        rows.push(Row {
            group: "schedules",
            workload: format!("imbalanced loop, schedule {schedule}, default chunk"),
            size: IMBALANCED_N,
            bytes: 0.0,
            cond: Cond::BackToBack,
            caller: Caller::Main,
            subjects,
            targets: same_compiler_targets(
                ctx,
                ["parfor", "parfor-clang"],
                ["gcc", "clang"],
                Goal::AtMost(1.0),
                "<= OpenMP, same schedule",
            ),
        });
    }

    let alt_ref = exact_sum(&x[..ALTERNATION_N]);
    let alt_expect = Expect::F64Near {
        reference: alt_ref,
        tol: FLOAT_TOLERANCE * alt_ref,
    };
    rows.push(Row {
        group: "interop",
        workload: format!(
            "gcc simd SUM and parfor SUM alternating, n = {}",
            fmt_size(ALTERNATION_N)
        ),
        size: ALTERNATION_N,
        bytes: 8.0 * ALTERNATION_N as f64,
        cond: Cond::BackToBack,
        caller: Caller::Main,
        subjects: vec![
            reduce(
                "gcc-alone",
                ctx.gcc.sum_f64_simd,
                x,
                None,
                ALTERNATION_N,
                alt_expect,
            ),
            reduce(
                "parfor-alone",
                ctx.pf.sum_f64,
                x,
                None,
                ALTERNATION_N,
                alt_expect,
            ),
            Box::new(Alternation {
                omp: ctx.gcc.sum_f64_simd,
                pf: ctx.pf.sum_f64,
                x,
                n: ALTERNATION_N,
                expect: alt_expect,
            }),
        ],
        targets: vec![
            Target::new(
                "gcc-alternating",
                &["gcc-alone"],
                Goal::AtMost(1.1),
                "OpenMP side <= 1.1 x alone (issue 5)",
            ),
            Target::new(
                "parfor-alternating",
                &["parfor-alone"],
                Goal::AtMost(1.1),
                "parfor side <= 1.1 x alone (issue 5)",
            ),
        ],
    });

    let fast_ref = exact_sum(&x[..EXACT_N]);
    rows.push(Row {
        group: "exact sum",
        workload: format!("SUM_EXACT vs SUM, f64, n = {}", fmt_size(EXACT_N)),
        size: EXACT_N,
        bytes: 8.0 * EXACT_N as f64,
        cond: Cond::BackToBack,
        caller: Caller::Main,
        subjects: vec![
            reduce(
                "parfor-exact",
                ctx.pf.sum_exact_f64,
                x,
                None,
                EXACT_N,
                Expect::F64(r.sum_exact),
            ),
            reduce(
                "parfor-sum",
                ctx.pf.sum_f64,
                x,
                None,
                EXACT_N,
                Expect::F64Near {
                    reference: fast_ref,
                    tol: FLOAT_TOLERANCE * fast_ref,
                },
            ),
        ],
        targets: vec![Target::new(
            "parfor-exact",
            &["parfor-sum"],
            Goal::AtMost(2.0),
            "<= 2 x fast SUM (issue 6)",
        )],
    });
    Ok(rows)
}

/// The targets of a row whose speed depends on the compiler of a C loop body (the
/// imbalanced loops, reduce_with's fold): clang vectorises some bodies that gcc does
/// not, so parfor against the best OpenMP build would compare compilers, not
/// runtimes. Instead the gcc-compiled parfor side meets `goal` against the gcc
/// OpenMP loop, and the clang-compiled one against the clang loop, each target's
/// text naming its compiler. The clang target is left out when neither clang build
/// exists, and says "not measured" when only one does.
fn same_compiler_targets(
    ctx: &Ctx,
    [pf_gcc, pf_clang]: [&str; 2],
    [omp_gcc, omp_clang]: [&str; 2],
    goal: Goal,
    text: &str,
) -> Vec<Target> {
    let mut targets = vec![Target::new(
        pf_gcc,
        &[omp_gcc],
        goal.clone(),
        &format!("{text}, gcc body"),
    )];
    if ctx.pf_clang.is_some() || ctx.clang.is_some() {
        targets.push(Target::new(
            pf_clang,
            &[omp_clang],
            goal,
            &format!("{text}, clang body"),
        ));
    }
    targets
}

/// dot f64, MIN/MAX f32/f64, SUM i32/i64 at 1e6 against the OpenMP simd loops.
fn typed_rows(ctx: &Ctx) -> Vec<Row> {
    let r = &ctx.refs;
    let inp = ctx.inputs;
    let x = &inp.x.as_slice()[..TYPED_N];
    let (y, xf, xi, xl) = (
        inp.y.as_slice(),
        inp.xf.as_slice(),
        inp.xi.as_slice(),
        inp.xl.as_slice(),
    );
    type PickOmp = fn(&OmpKernels) -> ReduceFn;
    // (workload, element bytes read per index, parfor kernel, OpenMP kernel, how to
    // build a subject on the right buffer, expected result)
    let dot = Expect::F64Near {
        reference: r.dot,
        tol: FLOAT_TOLERANCE * r.dot_scale,
    };
    let mut rows = Vec::new();
    let mut row = |workload: &str,
                   bytes_per: f64,
                   pf: ReduceFn,
                   omp: PickOmp,
                   mk: &dyn Fn(&str, ReduceFn) -> Box<dyn Subject>| {
        let mut subjects = vec![mk("parfor", pf)];
        for (name, k) in omp_builds(ctx) {
            subjects.push(of_build(&k, mk(&format!("{name}-simd"), omp(&k))));
        }
        rows.push(Row {
            group: "typed reductions",
            workload: format!("{workload}, n = {}", fmt_size(TYPED_N)),
            size: TYPED_N,
            bytes: bytes_per * TYPED_N as f64,
            cond: Cond::BackToBack,
            caller: Caller::Main,
            subjects,
            targets: vec![Target::new(
                "parfor",
                &["gcc-simd", "clang-simd"],
                Goal::AtMost(1.0),
                "<= OpenMP simd equivalent",
            )],
        });
    };
    row(
        "dot f64",
        16.0,
        ctx.pf.dot_f64,
        |k| k.dot_f64_simd,
        &|l, f| reduce(l, f, x, Some(y), TYPED_N, dot),
    );
    row(
        "MIN f32",
        4.0,
        ctx.pf.min_f32,
        |k| k.min_f32_simd,
        &|l, f| reduce(l, f, xf, None, TYPED_N, Expect::F32(r.min_f32)),
    );
    row(
        "MAX f32",
        4.0,
        ctx.pf.max_f32,
        |k| k.max_f32_simd,
        &|l, f| reduce(l, f, xf, None, TYPED_N, Expect::F32(r.max_f32)),
    );
    row(
        "MIN f64",
        8.0,
        ctx.pf.min_f64,
        |k| k.min_f64_simd,
        &|l, f| reduce(l, f, x, None, TYPED_N, Expect::F64(r.min_f64)),
    );
    row(
        "MAX f64",
        8.0,
        ctx.pf.max_f64,
        |k| k.max_f64_simd,
        &|l, f| reduce(l, f, x, None, TYPED_N, Expect::F64(r.max_f64)),
    );
    row(
        "SUM i32",
        4.0,
        ctx.pf.sum_i32,
        |k| k.sum_i32_simd,
        &|l, f| reduce(l, f, xi, None, TYPED_N, Expect::I32(r.sum_i32)),
    );
    row(
        "SUM i64",
        8.0,
        ctx.pf.sum_i64,
        |k| k.sum_i64_simd,
        &|l, f| reduce(l, f, xl, None, TYPED_N, Expect::I64(r.sum_i64)),
    );
    rows
}

/// 1000 -> "1e3", 100000000 -> "1e8"; other numbers as they are.
pub fn fmt_size(n: usize) -> String {
    let mut p = 0;
    let mut m = n;
    while m >= 10 && m % 10 == 0 {
        m /= 10;
        p += 1;
    }
    if m == 1 && p >= 3 {
        format!("1e{p}")
    } else {
        n.to_string()
    }
}

/// Elements of the SUM-at-addresses rows (issue 14: 1,000 f64).
const ADDRESS_N: usize = 1_000;

/// Byte offsets from the start of a mapping at which the SUM-at-addresses rows put
/// their data, with what each stands for. The page before the mapping is
/// inaccessible (PROT_NONE), as before most large malloc blocks (glibc serves them
/// with a fresh mmap and returns the page start + 16) and numpy arrays.
const ADDRESSES: [(usize, &str); 4] = [
    (16, "mmap block + 16 B (large malloc, numpy)"),
    (64, "mmap block + 64 B (line-aligned)"),
    (1024 + 16, "mmap block + 1 KiB + 16 B"),
    (
        4096 + 16,
        "mmap block + 4 KiB + 16 B (page before untouched)",
    ),
];

/// SUM f64 of 1,000 elements at the addresses of `ADDRESSES`: parfor against the
/// serial loop, both on one thread (the input is far below the parallel threshold).
fn address_rows(ctx: &Ctx) -> Vec<Row> {
    let x = &ctx.inputs.x.as_slice()[..ADDRESS_N];
    let reference = ctx.refs.sums[0];
    let near = Expect::F64Near {
        reference,
        tol: FLOAT_TOLERANCE * reference.abs(),
    };
    let mut rows = Vec::new();
    for (offset, what) in ADDRESSES {
        let Some(data) = guarded_copy(x, offset) else {
            continue;
        };
        rows.push(Row {
            group: "SUM f64 at addresses",
            workload: format!("SUM f64, n = 1e3, {what}"),
            size: ADDRESS_N,
            bytes: 8.0 * ADDRESS_N as f64,
            cond: Cond::BackToBack,
            caller: Caller::Main,
            subjects: vec![
                reduce("parfor", ctx.pf.sum_f64, data, None, ADDRESS_N, near),
                reduce(
                    "serial",
                    ctx.gcc.sum_f64_serial,
                    data,
                    None,
                    ADDRESS_N,
                    near,
                ),
            ],
            targets: vec![Target::new(
                "parfor",
                &["serial"],
                Goal::AtMost(1.0),
                "<= serial vectorised loop at every address",
            )],
        });
    }
    rows
}

/// A copy of `x` at `offset` bytes (a multiple of 8) into a fresh mapping whose
/// page before it is inaccessible; never unmapped. None when mmap or mprotect fail.
fn guarded_copy(x: &[f64], offset: usize) -> Option<&'static [f64]> {
    let page = 4096;
    let bytes = offset + std::mem::size_of_val(x);
    let len = page + bytes.div_ceil(page) * page;
    // SAFETY: a fresh anonymous private mapping; nothing else refers to it.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: the first page of the mapping made above becomes a guard page.
    if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } != 0 {
        return None;
    }
    // SAFETY: [page + offset, page + offset + 8 len) lies inside the writable part
    // of the mapping, is 8-aligned (offset is a multiple of 8, the mapping
    // page-aligned), and is never unmapped or written again, so it may be 'static.
    unsafe {
        let p = (base as *mut u8).add(page + offset) as *mut f64;
        std::ptr::copy_nonoverlapping(x.as_ptr(), p, x.len());
        Some(std::slice::from_raw_parts(p, x.len()))
    }
}
