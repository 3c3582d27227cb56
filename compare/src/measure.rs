//! How implementations are timed: interleaved rounds, a quiet machine before each
//! batch, medians.
//!
//! A row of the comparison holds several implementations ("subjects") of one
//! workload. Each round runs one batch of every subject, in an order rotated by one
//! each round, so that a slow stretch of the machine (other processes, frequency
//! changes) hits every subject instead of the one that happened to run then. The
//! figure reported is the median over rounds.
//!
//! Before each batch the process waits until it is idle (`settle`): the runtimes
//! here keep their workers spinning for a while after a parallel region (parfor
//! 2 ms, LLVM libomp 200 ms; libgomp parks within a millisecond), and on a 2-core
//! machine a spinning worker of one runtime takes the core that the next subject's
//! worker needs. Measuring each subject on a quiet machine is what "alone" means in
//! the targets; the alternation row measures the interference on purpose.
//!
//! Waiting 200 ms after every libomp batch would double the run, so the subjects
//! whose runtime lingers that long run last in each round, one after the other
//! without settling in between (each finds only its own runtime's workers awake,
//! its normal back-to-back state), and the process settles once after them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What happens between the calls of a batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cond {
    /// One call right after the other: the runtime's workers are still awake.
    BackToBack,
    /// The calling thread sleeps this long before each timed call, so that workers
    /// that park after a short spin have parked.
    AfterIdle(Duration),
}

/// One implementation of a row's workload (or, for the alternation row, a loop
/// that times two implementations at once).
pub trait Subject: Send {
    /// What each figure of a batch measures: usually one label.
    fn labels(&self) -> Vec<String>;
    /// Runs the workload once, untimed, and checks its result; `Err` says what is
    /// wrong (a failed call, or a result that does not agree with the reference).
    fn verify(&mut self) -> Result<(), String>;
    /// Runs one batch of `calls` timed calls under `cond` and returns the seconds per
    /// call for each label.
    fn batch(&mut self, cond: Cond, calls: usize) -> Vec<f64>;
    /// For fork-join subjects: (calls whose two iterations ran on different threads,
    /// calls), counted over every batch.
    fn spread(&self) -> Option<(u64, u64)> {
        None
    }
    /// Whether the subject's runtime keeps its workers spinning for long (hundreds of
    /// milliseconds) after a call; such subjects are grouped at the end of a round.
    fn lingers(&self) -> bool {
        false
    }
}

/// A subject whose runtime lingers (see `Subject::lingers`).
pub struct Lingering(pub Box<dyn Subject>);

impl Subject for Lingering {
    fn labels(&self) -> Vec<String> {
        self.0.labels()
    }
    fn verify(&mut self) -> Result<(), String> {
        self.0.verify()
    }
    fn batch(&mut self, cond: Cond, calls: usize) -> Vec<f64> {
        self.0.batch(cond, calls)
    }
    fn spread(&self) -> Option<(u64, u64)> {
        self.0.spread()
    }
    fn lingers(&self) -> bool {
        true
    }
}

/// The longest a back-to-back batch may run: 5 times the default batch length.
pub const MAX_BATCH: Duration = Duration::from_millis(50);

/// A subject made of two closures: `call` is timed (it returns 1 when a fork-join
/// used two threads, else 0), `verify` checks one call's result.
pub struct FnSubject<C, V> {
    label: String,
    call: C,
    verify: V,
    spread: Option<(u64, u64)>,
}

impl<C, V> FnSubject<C, V>
where
    C: FnMut() -> u32 + Send,
    V: FnMut() -> Result<(), String> + Send,
{
    pub fn new(label: impl Into<String>, call: C, verify: V) -> Self {
        FnSubject {
            label: label.into(),
            call,
            verify,
            spread: None,
        }
    }

    /// Counts, for each call, whether it used two threads.
    pub fn counting_spread(mut self) -> Self {
        self.spread = Some((0, 0));
        self
    }

    fn note(&mut self, used_two: u32) {
        if let Some((two, all)) = &mut self.spread {
            *two += u64::from(used_two);
            *all += 1;
        }
    }
}

impl<C, V> Subject for FnSubject<C, V>
where
    C: FnMut() -> u32 + Send,
    V: FnMut() -> Result<(), String> + Send,
{
    fn labels(&self) -> Vec<String> {
        vec![self.label.clone()]
    }

    fn verify(&mut self) -> Result<(), String> {
        (self.verify)()
    }

    fn batch(&mut self, cond: Cond, calls: usize) -> Vec<f64> {
        match cond {
            Cond::BackToBack => {
                // An untimed call first wakes parked workers and warms the caches, so
                // that the batch measures the steady state.
                std::hint::black_box((self.call)());
                // The batch stops early once it has run for MAX_BATCH (a calibration
                // fooled by a lucky call, or a loaded machine, would otherwise stretch
                // it without bound). The clock is read every 64 calls at most: a read
                // costs about 20 ns, under 1 % of 64 of the fastest calls here (50 ns).
                let step = (calls / 16).clamp(1, 64);
                let mut used = 0;
                let mut done = 0;
                let start = Instant::now();
                while done < calls && start.elapsed() < MAX_BATCH {
                    let k = step.min(calls - done);
                    for _ in 0..k {
                        used += std::hint::black_box((self.call)());
                    }
                    done += k;
                }
                let per_call = start.elapsed().as_secs_f64() / done as f64;
                if let Some((two, all)) = &mut self.spread {
                    *two += u64::from(used);
                    *all += done as u64;
                }
                vec![per_call]
            }
            Cond::AfterIdle(idle) => {
                // The runtime was used, then idles before each timed call.
                std::hint::black_box((self.call)());
                let mut times = Vec::with_capacity(calls);
                for _ in 0..calls {
                    std::thread::sleep(idle);
                    let start = Instant::now();
                    let used = std::hint::black_box((self.call)());
                    times.push(start.elapsed().as_secs_f64());
                    self.note(used);
                }
                vec![median(&mut times)]
            }
        }
    }

    fn spread(&self) -> Option<(u64, u64)> {
        self.spread
    }
}

/// Repetition settings.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Rounds per row; each gives one figure per subject.
    pub rounds: usize,
    /// Wanted length of a back-to-back batch: calls are repeated until a batch lasts
    /// about this long (at least one call).
    pub batch: Duration,
    /// Timed calls per batch after idling (each preceded by the idle sleep).
    pub idle_calls: usize,
}

/// Waits until this process uses (almost) no CPU: sleeps in 1 ms steps until a step
/// costs the process less than 0.1 ms of CPU time (under 10 % of one core), for at
/// most 0.5 s (libomp's 200 ms spin is the longest one here).
pub fn settle() {
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(500) {
        let before = cpu_time();
        std::thread::sleep(Duration::from_millis(1));
        if cpu_time() - before < Duration::from_micros(100) {
            break;
        }
    }
    SETTLE_NANOS.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
}

/// Total time spent in `settle`, reported at the end of a run.
static SETTLE_NANOS: AtomicU64 = AtomicU64::new(0);

/// Seconds spent so far waiting for the process to become idle.
pub fn settle_seconds() -> f64 {
    SETTLE_NANOS.load(Ordering::Relaxed) as f64 * 1e-9
}

/// CPU time used so far by all threads of this process.
fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write; the clock id is a constant Linux has.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "CLOCK_PROCESS_CPUTIME_ID is available on Linux");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Summary of one label's per-round figures.
#[derive(Clone, Debug)]
pub struct Stats {
    pub median: f64,
    /// First and third quartile: how much the rounds disagree.
    pub q1: f64,
    pub q3: f64,
    pub rounds: usize,
}

impl Stats {
    pub fn of(samples: &mut [f64]) -> Stats {
        let median = median(samples);
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Stats {
            median,
            q1: at(0.25),
            q3: at(0.75),
            rounds: samples.len(),
        }
    }
}

/// The median of `v` (the mean of the middle two for an even count).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// One label's result: its statistics, and for fork-joins how often two threads ran.
#[derive(Clone, Debug)]
pub struct Measured {
    pub label: String,
    pub stats: Stats,
    pub spread: Option<(u64, u64)>,
}

/// The order of the subjects in round `round`: the others rotated by one each
/// round (so that none always follows the same one), then the lingering ones, also
/// rotated.
fn order(subjects: &[Box<dyn Subject>], round: usize) -> Vec<usize> {
    let rotate = |ids: Vec<usize>| -> Vec<usize> {
        let n = ids.len().max(1);
        (0..ids.len()).map(|k| ids[(round + k) % n]).collect()
    };
    let (lingering, others): (Vec<usize>, Vec<usize>) =
        (0..subjects.len()).partition(|&i| subjects[i].lingers());
    let mut v = rotate(others);
    v.extend(rotate(lingering));
    v
}

/// Verifies every subject, then runs `plan.rounds` interleaved rounds and returns one
/// `Measured` per label, in the subjects' order. `tick` is called after each batch.
/// A failed verification is returned as `Err` before anything is timed.
pub fn run_row(
    subjects: &mut [Box<dyn Subject>],
    cond: Cond,
    plan: &Plan,
    tick: &(dyn Fn() + Sync),
) -> Result<Vec<Measured>, Vec<String>> {
    let errors: Vec<String> = subjects
        .iter_mut()
        .filter_map(|s| s.verify().err())
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    // Settle before a batch unless this batch and the one before both linger.
    let mut previous_lingers = false;
    let mut prepare = |s: &dyn Subject| {
        if !(previous_lingers && s.lingers()) {
            settle();
        }
        previous_lingers = s.lingers();
    };
    let mut calls = vec![plan.idle_calls; subjects.len()];
    if cond == Cond::BackToBack {
        for i in order(subjects, 0) {
            prepare(subjects[i].as_ref());
            calls[i] = calibrate(subjects[i].as_mut(), plan.batch);
        }
    }
    let mut samples: Vec<Vec<Vec<f64>>> = subjects
        .iter()
        .map(|s| vec![Vec::with_capacity(plan.rounds); s.labels().len()])
        .collect();
    for round in 0..plan.rounds {
        for i in order(subjects, round) {
            prepare(subjects[i].as_ref());
            let figures = subjects[i].batch(cond, calls[i]);
            for (per_label, v) in samples[i].iter_mut().zip(figures) {
                per_label.push(v);
            }
            tick();
        }
    }
    // The results must still agree after the timing (a runtime that breaks after
    // many calls is a failure too).
    let errors: Vec<String> = subjects
        .iter_mut()
        .filter_map(|s| s.verify().err())
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut out = Vec::new();
    for (s, per_subject) in subjects.iter().zip(samples.iter_mut()) {
        for (label, v) in s.labels().into_iter().zip(per_subject.iter_mut()) {
            out.push(Measured {
                label,
                stats: Stats::of(v),
                spread: s.spread(),
            });
        }
    }
    Ok(out)
}

/// Calls per back-to-back batch so that a batch lasts about `target`, estimated from
/// single calls: one when that call alone lasts longer than the target, else the
/// median of three.
fn calibrate(s: &mut dyn Subject, target: Duration) -> usize {
    let first = s.batch(Cond::BackToBack, 1)[0];
    if first >= target.as_secs_f64() {
        return 1;
    }
    let mut t = [
        first,
        s.batch(Cond::BackToBack, 1)[0],
        s.batch(Cond::BackToBack, 1)[0],
    ];
    let one = median(&mut t).max(1e-9);
    ((target.as_secs_f64() / one) as usize).clamp(1, 1_000_000)
}
