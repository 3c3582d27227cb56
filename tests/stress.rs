//! Stress through the C ABI: 8 application threads each make 10,000 mixed calls
//! (loops, built-in reductions, user reductions, calls nested inside bodies and
//! folds, callbacks that fail on purpose, bad arguments), every result checked
//! exactly with integer arithmetic, every loop index counted so that a lost or
//! doubled index fails. A watchdog aborts the process with a message when a test
//! runs past its bound, so a deadlock fails instead of hanging CI.
//!
//! The same file checks that a failing body or fold, and a caller that ignores the
//! error, leave the runtime fully usable.

use std::ffi::{c_void, CStr};
use std::os::raw::c_int;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use parfor::ffi::*;

const APP_THREADS: usize = 8;
const CALLS_PER_THREAD: usize = 10_000;
/// Hang bound: the stress test takes a few seconds on the 2-core machine in release
/// mode and well under a minute in debug; 120 s only catches a deadlock.
const WATCHDOG: Duration = Duration::from_secs(120);

/// Aborts the whole process (a hung test cannot be unwound) unless dropped within
/// `limit`. Dropping it stops the watchdog thread.
struct Watchdog(Option<mpsc::Sender<()>>);

impl Watchdog {
    fn start(what: &'static str, limit: Duration) -> Self {
        let (tx, rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!("watchdog: {what} still running after {limit:?}: deadlock or livelock; aborting");
                std::process::abort();
            }
        });
        Watchdog(Some(tx))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Closing the channel wakes the watchdog with Disconnected.
        self.0.take();
    }
}

/// splitmix64: deterministic per thread, so a failure names a reproducible seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn options(threads: usize, schedule: c_int, chunk: usize) -> parfor_options {
    let mut o = std::mem::MaybeUninit::<parfor_options>::uninit();
    // SAFETY: parfor_options_init writes every field of the struct.
    let mut o = unsafe {
        parfor_options_init(o.as_mut_ptr());
        o.assume_init()
    };
    o.num_threads = threads;
    o.schedule = schedule;
    o.chunk = chunk;
    o
}

fn random_options(rng: &mut Rng) -> parfor_options {
    let chunk = [0, 0, 1, 3, 64, 1000][rng.below(6)];
    options(rng.below(5), rng.below(4) as c_int, chunk)
}

fn last_error() -> String {
    // SAFETY: parfor_last_error never returns NULL and the text stays valid until the
    // next failing call on this thread; it is copied at once.
    unsafe { CStr::from_ptr(parfor_last_error()) }
        .to_string_lossy()
        .into_owned()
}

// ---------------------------------------------------------------------------------
// parfor_for with every index counted.

struct CountCtx {
    begin: usize,
    counts: Vec<AtomicU32>,
    /// Index at which the body returns nonzero (usize::MAX: never).
    fail_at: usize,
    /// Sum of the indices seen, as a second, order-independent check.
    index_sum: AtomicU64,
}

impl CountCtx {
    fn new(begin: usize, end: usize, fail_at: usize) -> Self {
        CountCtx {
            begin,
            counts: (begin..end).map(|_| AtomicU32::new(0)).collect(),
            fail_at,
            index_sum: AtomicU64::new(0),
        }
    }
}

unsafe extern "C-unwind" fn count_body(ctx: *mut c_void, begin: usize, end: usize) -> c_int {
    // SAFETY: every caller passes a live CountCtx, shared read-only apart from atomics.
    let ctx = unsafe { &*(ctx as *const CountCtx) };
    for i in begin..end {
        ctx.counts[i - ctx.begin].fetch_add(1, Ordering::Relaxed);
        ctx.index_sum.fetch_add(i as u64, Ordering::Relaxed);
        if i == ctx.fail_at {
            return 7;
        }
    }
    0
}

/// A loop over a random range with random options: each index exactly once.
fn check_for(rng: &mut Rng, tag: &str) {
    let begin = rng.below(1 << 20);
    let len = if rng.below(8) == 0 {
        rng.below(20_000)
    } else {
        rng.below(300)
    };
    let end = begin + len;
    let ctx = CountCtx::new(begin, end, usize::MAX);
    let o = random_options(rng);
    // SAFETY: `ctx` outlives the call; count_body only touches it through atomics.
    let s = unsafe {
        parfor_for(
            begin,
            end,
            &o,
            Some(count_body),
            &ctx as *const _ as *mut c_void,
        )
    };
    assert_eq!(
        s,
        parfor_status::PARFOR_OK,
        "{tag}: parfor_for({begin}, {end}, {o:?}): {}",
        last_error()
    );
    for (k, c) in ctx.counts.iter().enumerate() {
        let c = c.load(Ordering::Relaxed);
        assert_eq!(c, 1, "{tag}: index {} ran {c} times ({o:?})", begin + k);
    }
    let want: u64 = (begin..end).map(|i| i as u64).sum();
    assert_eq!(ctx.index_sum.load(Ordering::Relaxed), want, "{tag}");
}

/// A loop whose body fails at one index: PARFOR_ERR_CALLBACK, the failing index was
/// run, no index ran twice, and the message names a range holding the failing index.
fn check_failing_for(rng: &mut Rng, tag: &str) {
    let len = 1 + rng.below(2000);
    let begin = rng.below(1000);
    let fail_at = begin + rng.below(len);
    let ctx = CountCtx::new(begin, begin + len, fail_at);
    let o = random_options(rng);
    // SAFETY: as in check_for.
    let s = unsafe {
        parfor_for(
            begin,
            begin + len,
            &o,
            Some(count_body),
            &ctx as *const _ as *mut c_void,
        )
    };
    assert_eq!(s, parfor_status::PARFOR_ERR_CALLBACK, "{tag}: {o:?}");
    let msg = last_error();
    let (lo, hi) = parse_range(&msg).unwrap_or_else(|| panic!("{tag}: no range in {msg:?}"));
    assert!(
        lo <= fail_at && fail_at < hi,
        "{tag}: {msg:?} does not hold index {fail_at}"
    );
    assert!(msg.contains("returned 7"), "{tag}: {msg:?}");
    assert_eq!(
        ctx.counts[fail_at - begin].load(Ordering::Relaxed),
        1,
        "{tag}"
    );
    for (k, c) in ctx.counts.iter().enumerate() {
        assert!(
            c.load(Ordering::Relaxed) <= 1,
            "{tag}: index {} ran twice",
            begin + k
        );
    }
}

/// The first "[a, b)" in a message.
fn parse_range(msg: &str) -> Option<(usize, usize)> {
    let open = msg.find('[')?;
    let close = open + msg[open..].find(')')?;
    let (a, b) = msg[open + 1..close].split_once(',')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

// ---------------------------------------------------------------------------------
// Built-in reductions over integer buffers, against a serial reference.

trait Int: Copy + PartialEq + std::fmt::Debug {
    const DTYPE: parfor_dtype;
    fn from_u64(v: u64) -> Self;
    fn serial(x: &[Self], op: parfor_op) -> Option<Self>;
}

macro_rules! int {
    ($($t:ty => $d:ident),*) => {$(
        impl Int for $t {
            const DTYPE: parfor_dtype = parfor_dtype::$d;
            fn from_u64(v: u64) -> Self { v as $t }
            fn serial(x: &[Self], op: parfor_op) -> Option<Self> {
                use parfor_op::*;
                let b = |v: bool| if v { 1 } else { 0 };
                Some(match op {
                    // Integers: the NaN-skipping operators are SUM/MIN/MAX.
                    PARFOR_SUM | PARFOR_NAN_SUM => x.iter().fold(0 as $t, |a, &v| a.wrapping_add(v)),
                    PARFOR_PROD => x.iter().fold(1 as $t, |a, &v| a.wrapping_mul(v)),
                    PARFOR_MIN | PARFOR_NAN_MIN => *x.iter().min()?,
                    PARFOR_MAX | PARFOR_NAN_MAX => *x.iter().max()?,
                    PARFOR_BIT_AND => x.iter().fold(!0, |a, &v| a & v),
                    PARFOR_BIT_OR => x.iter().fold(0, |a, &v| a | v),
                    PARFOR_BIT_XOR => x.iter().fold(0, |a, &v| a ^ v),
                    PARFOR_LOGICAL_AND => b(x.iter().all(|&v| v != 0)),
                    PARFOR_LOGICAL_OR => b(x.iter().any(|&v| v != 0)),
                    PARFOR_SUM_EXACT => return None,
                })
            }
        }
    )*};
}
int!(i64 => PARFOR_I64, u32 => PARFOR_U32, i16 => PARFOR_I16, u8 => PARFOR_U8);

const OPS: [parfor_op; 9] = [
    parfor_op::PARFOR_SUM,
    parfor_op::PARFOR_PROD,
    parfor_op::PARFOR_MIN,
    parfor_op::PARFOR_MAX,
    parfor_op::PARFOR_BIT_AND,
    parfor_op::PARFOR_BIT_OR,
    parfor_op::PARFOR_BIT_XOR,
    parfor_op::PARFOR_LOGICAL_AND,
    parfor_op::PARFOR_LOGICAL_OR,
];

/// Reduces a random prefix of `data` (viewed as T) with a random operator. Lengths
/// are mostly small, sometimes above the library's serial threshold (192 KiB) so
/// that the team or the rayon fallback runs the call.
fn check_reduce_typed<T: Int>(rng: &mut Rng, data: &[T], tag: &str) {
    let len = if rng.below(10) == 0 {
        data.len() - rng.below(100)
    } else {
        rng.below(500)
    };
    let x = &data[..len];
    let op = OPS[rng.below(OPS.len())];
    let o = random_options(rng);
    let sentinel = T::from_u64(0x5A5A_5A5A_5A5A_5A5A);
    let mut out = sentinel;
    // SAFETY: `x` holds `len` initialised elements of T's dtype; `out` is one T.
    let s = unsafe {
        parfor_reduce(
            x.as_ptr().cast(),
            len,
            T::DTYPE as c_int,
            op as c_int,
            &o,
            (&mut out as *mut T).cast(),
        )
    };
    match T::serial(x, op) {
        Some(want) => {
            assert_eq!(
                s,
                parfor_status::PARFOR_OK,
                "{tag}: {op:?} len {len}: {}",
                last_error()
            );
            assert_eq!(out, want, "{tag}: {op:?} {:?} len {len} {o:?}", T::DTYPE);
        }
        None => {
            assert_eq!(
                s,
                parfor_status::PARFOR_ERR_EMPTY,
                "{tag}: {op:?} of nothing"
            );
            assert_eq!(out, sentinel, "{tag}: *out written on failure");
        }
    }
}

fn check_reduce(rng: &mut Rng, words: &[u64], tag: &str) {
    // SAFETY: `words` is 8-byte aligned and fully initialised; every integer bit
    // pattern is a valid value of each of these types, and the byte lengths match.
    unsafe {
        let bytes = words.len() * 8;
        match rng.below(4) {
            0 => check_reduce_typed(
                rng,
                std::slice::from_raw_parts(words.as_ptr().cast::<i64>(), bytes / 8),
                tag,
            ),
            1 => check_reduce_typed(
                rng,
                std::slice::from_raw_parts(words.as_ptr().cast::<u32>(), bytes / 4),
                tag,
            ),
            2 => check_reduce_typed(
                rng,
                std::slice::from_raw_parts(words.as_ptr().cast::<i16>(), bytes / 2),
                tag,
            ),
            _ => check_reduce_typed(
                rng,
                std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), bytes),
                tag,
            ),
        }
    }
}

// ---------------------------------------------------------------------------------
// parfor_reduce_with: an ordered accumulator that detects a wrong combine order,
// a gap or an overlap, plus a wrapping sum of squares.

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct Span {
    lo: u64,
    hi: u64,
    count: u64,
    sum_sq: u64,
    /// Nonzero when two pieces were not adjacent (lost, doubled or reordered ranges).
    broken: u64,
}

struct SpanCtx {
    /// Index at which the fold fails (u64::MAX: never).
    fail_at: u64,
    /// When set, each fold also runs a nested parfor_for over its range and checks it.
    nested: bool,
    folds: AtomicUsize,
}

unsafe extern "C-unwind" fn span_fold(
    ctx: *mut c_void,
    begin: usize,
    end: usize,
    acc: *mut c_void,
) -> c_int {
    // SAFETY: callers pass a live SpanCtx; `acc` is an exclusive, aligned Span-sized
    // accumulator (acc_size = size_of::<Span>(), 64-byte aligned per the header).
    let (ctx, acc) = unsafe { (&*(ctx as *const SpanCtx), &mut *(acc as *mut Span)) };
    ctx.folds.fetch_add(1, Ordering::Relaxed);
    let (b, e) = (begin as u64, end as u64);
    if ctx.fail_at >= b && ctx.fail_at < e {
        // Leave the accumulator half-updated, as a real fold failing part-way would.
        acc.count = 12345;
        return -3;
    }
    if ctx.nested {
        if parfor_num_threads() != 1 {
            return 99;
        }
        let inner = CountCtx::new(begin, end, usize::MAX);
        // SAFETY: `inner` outlives the nested call.
        let s = unsafe {
            parfor_for(
                begin,
                end,
                std::ptr::null(),
                Some(count_body),
                &inner as *const _ as *mut c_void,
            )
        };
        if s != parfor_status::PARFOR_OK
            || inner.counts.iter().any(|c| c.load(Ordering::Relaxed) != 1)
        {
            return 98;
        }
    }
    if acc.count == 0 {
        acc.lo = b;
    } else if acc.hi != b {
        acc.broken = 1;
    }
    acc.hi = e;
    acc.count += e - b;
    for i in b..e {
        acc.sum_sq = acc.sum_sq.wrapping_add(i.wrapping_mul(i));
    }
    0
}

unsafe extern "C-unwind" fn span_combine(
    _ctx: *mut c_void,
    acc: *mut c_void,
    other: *const c_void,
) {
    // SAFETY: the library passes two distinct live accumulators of size_of::<Span>().
    let (acc, other) = unsafe { (&mut *(acc as *mut Span), &*(other as *const Span)) };
    if other.count == 0 {
        return;
    }
    if acc.count == 0 {
        *acc = *other;
        return;
    }
    if acc.hi != other.lo {
        acc.broken = 1;
    }
    acc.hi = other.hi;
    acc.count += other.count;
    acc.sum_sq = acc.sum_sq.wrapping_add(other.sum_sq);
    acc.broken |= other.broken;
}

fn span_reference(begin: usize, end: usize) -> Span {
    if begin == end {
        return Span::default();
    }
    let mut s = Span {
        lo: begin as u64,
        hi: end as u64,
        count: (end - begin) as u64,
        ..Span::default()
    };
    for i in begin as u64..end as u64 {
        s.sum_sq = s.sum_sq.wrapping_add(i.wrapping_mul(i));
    }
    s
}

fn reduce_with_span(
    begin: usize,
    end: usize,
    ctx: &SpanCtx,
    o: &parfor_options,
    out: &mut Span,
) -> parfor_status {
    let identity = Span::default();
    // SAFETY: identity and out are Span-sized; ctx outlives the call; the callbacks
    // match the library's signatures.
    unsafe {
        parfor_reduce_with(
            begin,
            end,
            (&identity as *const Span).cast(),
            std::mem::size_of::<Span>(),
            o,
            Some(span_fold),
            Some(span_combine),
            ctx as *const SpanCtx as *mut c_void,
            (out as *mut Span).cast(),
        )
    }
}

fn check_reduce_with(rng: &mut Rng, nested: bool, tag: &str) {
    let begin = rng.below(1 << 30);
    let len = if rng.below(8) == 0 {
        rng.below(50_000)
    } else {
        rng.below(700)
    };
    let ctx = SpanCtx {
        fail_at: u64::MAX,
        nested,
        folds: AtomicUsize::new(0),
    };
    let o = random_options(rng);
    let mut out = Span::default();
    let s = reduce_with_span(begin, begin + len, &ctx, &o, &mut out);
    assert_eq!(s, parfor_status::PARFOR_OK, "{tag}: {}", last_error());
    assert_eq!(
        out,
        span_reference(begin, begin + len),
        "{tag}: [{begin}, +{len}) {o:?}"
    );
}

/// A fold that fails part-way: PARFOR_ERR_CALLBACK and `out` untouched.
fn check_failing_fold(rng: &mut Rng, tag: &str) {
    let len = 1 + rng.below(5000);
    let fail_at = rng.below(len) as u64;
    let ctx = SpanCtx {
        fail_at,
        nested: false,
        folds: AtomicUsize::new(0),
    };
    let o = random_options(rng);
    let sentinel = Span {
        lo: 1,
        hi: 2,
        count: 3,
        sum_sq: 4,
        broken: 5,
    };
    let mut out = sentinel;
    let s = reduce_with_span(0, len, &ctx, &o, &mut out);
    assert_eq!(s, parfor_status::PARFOR_ERR_CALLBACK, "{tag}: {o:?}");
    assert_eq!(out, sentinel, "{tag}: out written on failure");
    let msg = last_error();
    let (lo, hi) = parse_range(&msg).unwrap_or_else(|| panic!("{tag}: no range in {msg:?}"));
    assert!(
        lo as u64 <= fail_at && fail_at < hi as u64,
        "{tag}: {msg:?} vs {fail_at}"
    );
}

// ---------------------------------------------------------------------------------
// Nested calls from inside a loop body.

struct NestCtx<'a> {
    words: &'a [u64],
    /// Per outer index: the inner reduction's result, written once.
    results: Vec<AtomicU64>,
    problems: AtomicUsize,
}

unsafe extern "C-unwind" fn nest_body(ctx: *mut c_void, begin: usize, end: usize) -> c_int {
    // SAFETY: callers pass a live NestCtx.
    let ctx = unsafe { &*(ctx as *const NestCtx) };
    for i in begin..end {
        // Inside a body the team size is 1 (header: nested calls run inline).
        if parfor_num_threads() != 1 {
            ctx.problems.fetch_add(1, Ordering::Relaxed);
        }
        // An inner reduction over a slice of the shared buffer, asking for 4 threads.
        let slice = &ctx.words[i * 64..i * 64 + 64 + i];
        let mut out = 0u64;
        let o = options(4, 2, 0);
        // SAFETY: `slice` is live and initialised; `out` is one u64.
        let s = unsafe {
            parfor_reduce(
                slice.as_ptr().cast(),
                slice.len(),
                parfor_dtype::PARFOR_U64 as c_int,
                parfor_op::PARFOR_SUM as c_int,
                &o,
                (&mut out as *mut u64).cast(),
            )
        };
        if s != parfor_status::PARFOR_OK {
            ctx.problems.fetch_add(1, Ordering::Relaxed);
        }
        ctx.results[i].store(out, Ordering::Relaxed);
        // An inner loop and an inner user reduction too.
        let inner = CountCtx::new(0, 100 + i, usize::MAX);
        // SAFETY: `inner` outlives the call.
        let s = unsafe {
            parfor_for(
                0,
                100 + i,
                &o,
                Some(count_body),
                &inner as *const _ as *mut c_void,
            )
        };
        if s != parfor_status::PARFOR_OK
            || inner.counts.iter().any(|c| c.load(Ordering::Relaxed) != 1)
        {
            ctx.problems.fetch_add(1, Ordering::Relaxed);
        }
        let span_ctx = SpanCtx {
            fail_at: u64::MAX,
            nested: false,
            folds: AtomicUsize::new(0),
        };
        let mut span = Span::default();
        if reduce_with_span(i, i + 300, &span_ctx, &o, &mut span) != parfor_status::PARFOR_OK
            || span != span_reference(i, i + 300)
        {
            ctx.problems.fetch_add(1, Ordering::Relaxed);
        }
    }
    0
}

fn check_nested(rng: &mut Rng, words: &[u64], tag: &str) {
    let outer = 1 + rng.below(12);
    let ctx = NestCtx {
        words,
        results: (0..outer).map(|_| AtomicU64::new(u64::MAX)).collect(),
        problems: AtomicUsize::new(0),
    };
    let o = random_options(rng);
    // SAFETY: `ctx` outlives the call.
    let s = unsafe {
        parfor_for(
            0,
            outer,
            &o,
            Some(nest_body),
            &ctx as *const _ as *mut c_void,
        )
    };
    assert_eq!(s, parfor_status::PARFOR_OK, "{tag}: {}", last_error());
    assert_eq!(
        ctx.problems.load(Ordering::Relaxed),
        0,
        "{tag}: a nested call misbehaved"
    );
    for i in 0..outer {
        let want = words[i * 64..i * 64 + 64 + i]
            .iter()
            .fold(0u64, |a, &v| a.wrapping_add(v));
        assert_eq!(
            ctx.results[i].load(Ordering::Relaxed),
            want,
            "{tag}: nested reduce {i}"
        );
    }
    // A nested call from inside a fold, too.
    check_reduce_with(rng, true, tag);
}

// ---------------------------------------------------------------------------------
// Bad arguments: the exact status, and *out untouched.

unsafe extern "C-unwind" fn never_body(_: *mut c_void, _: usize, _: usize) -> c_int {
    // Reaching a body for a call that must fail validation is itself an error.
    std::process::abort()
}

fn check_bad_argument(rng: &mut Rng, words: &[u64], tag: &str) {
    use parfor_status::*;
    let data: *const c_void = words.as_ptr().cast();
    let mut out = 0xDEAD_BEEF_u64;
    let outp: *mut c_void = (&mut out as *mut u64).cast();
    let good = options(0, 0, 0);
    let mut small = good;
    small.size -= 1;
    let too_many = options(PARFOR_MAX_THREADS + 1, 0, 0);
    let bad_sched = options(2, 4 + rng.below(1000) as c_int, 0);
    let (i64d, u32d, f64d) = (
        parfor_dtype::PARFOR_I64 as c_int,
        parfor_dtype::PARFOR_U32 as c_int,
        parfor_dtype::PARFOR_F64 as c_int,
    );
    let sum = parfor_op::PARFOR_SUM as c_int;
    let kind = rng.below(12);
    // SAFETY: every pointer passed is NULL, or points into `words` (readable for the
    // lengths given where the library would read them), or to `out`; the library must
    // reject each call before touching the data.
    let (s, want) = unsafe {
        match kind {
            0 => (
                parfor_reduce(std::ptr::null(), 10, i64d, sum, &good, outp),
                PARFOR_ERR_NULL_ARGUMENT,
            ),
            1 => (
                parfor_reduce(data, 10, i64d, sum, &good, std::ptr::null_mut()),
                PARFOR_ERR_NULL_ARGUMENT,
            ),
            2 => (
                parfor_reduce(
                    data,
                    10,
                    [10, -1, 1000, i32::MIN][rng.below(4)],
                    sum,
                    &good,
                    outp,
                ),
                PARFOR_ERR_INVALID_ARGUMENT,
            ),
            3 => (
                parfor_reduce(
                    data,
                    10,
                    i64d,
                    [parfor::ReduceOp::ALL.len() as c_int, -1, 77, i32::MAX][rng.below(4)],
                    &good,
                    outp,
                ),
                PARFOR_ERR_INVALID_ARGUMENT,
            ),
            4 => (
                parfor_reduce(
                    data.cast::<u8>().add(1 + rng.below(7)).cast(),
                    10,
                    i64d,
                    sum,
                    &good,
                    outp,
                ),
                PARFOR_ERR_MISALIGNED,
            ),
            5 => (
                parfor_reduce(data, 10, u32d, sum, &small, outp),
                PARFOR_ERR_INVALID_ARGUMENT,
            ),
            6 => (
                parfor_reduce(data, usize::MAX / 2, i64d, sum, &good, outp),
                PARFOR_ERR_INVALID_ARGUMENT,
            ),
            7 => (
                parfor_reduce(
                    data,
                    10,
                    f64d,
                    parfor_op::PARFOR_BIT_XOR as c_int,
                    &good,
                    outp,
                ),
                PARFOR_ERR_INVALID_ARGUMENT,
            ),
            8 => (
                parfor_reduce(data, 0, i64d, parfor_op::PARFOR_MIN as c_int, &good, outp),
                PARFOR_ERR_EMPTY,
            ),
            9 => (
                parfor_for(10, 5, &good, Some(never_body), std::ptr::null_mut()),
                PARFOR_ERR_INVALID_ARGUMENT,
            ),
            10 => (
                parfor_for(
                    0,
                    10,
                    [&too_many, &bad_sched, &small][rng.below(3)],
                    Some(never_body),
                    std::ptr::null_mut(),
                ),
                PARFOR_ERR_INVALID_ARGUMENT,
            ),
            _ => {
                let id = 0u64;
                let (fold, combine): (parfor_fold, parfor_combine) =
                    (Some(span_fold), Some(span_combine));
                match rng.below(4) {
                    0 => (
                        parfor_reduce_with(
                            0,
                            10,
                            (&id as *const u64).cast(),
                            0,
                            &good,
                            fold,
                            combine,
                            std::ptr::null_mut(),
                            outp,
                        ),
                        PARFOR_ERR_INVALID_ARGUMENT,
                    ),
                    1 => (
                        parfor_reduce_with(
                            0,
                            10,
                            std::ptr::null(),
                            8,
                            &good,
                            fold,
                            combine,
                            std::ptr::null_mut(),
                            outp,
                        ),
                        PARFOR_ERR_NULL_ARGUMENT,
                    ),
                    2 => (
                        parfor_reduce_with(
                            0,
                            10,
                            (&id as *const u64).cast(),
                            8,
                            &good,
                            None,
                            combine,
                            std::ptr::null_mut(),
                            outp,
                        ),
                        PARFOR_ERR_NULL_ARGUMENT,
                    ),
                    _ => (
                        parfor_reduce_with(
                            9,
                            3,
                            (&id as *const u64).cast(),
                            8,
                            &good,
                            fold,
                            combine,
                            std::ptr::null_mut(),
                            outp,
                        ),
                        PARFOR_ERR_INVALID_ARGUMENT,
                    ),
                }
            }
        }
    };
    assert_eq!(s, want, "{tag}: bad-argument case {kind}: {}", last_error());
    assert!(
        !last_error().is_empty(),
        "{tag}: case {kind} left no message"
    );
    assert_eq!(out, 0xDEAD_BEEF, "{tag}: case {kind} wrote *out");
}

// ---------------------------------------------------------------------------------

fn random_words(seed: u64, n: usize) -> Vec<u64> {
    let mut rng = Rng(seed);
    // Mostly small values with some all-ones and zero words, so that MIN/MAX, the
    // logical and the bitwise operators all see interesting inputs.
    (0..n)
        .map(|_| match rng.below(16) {
            0 => 0,
            1 => u64::MAX,
            2..=9 => rng.next() | 0x0101_0101_0101_0101,
            _ => rng.next(),
        })
        .collect()
}

fn one_app_thread(t: usize) {
    let mut rng = Rng(0xC0FFEE + t as u64);
    // 40,000 u64 = 320 KiB: prefixes above the 192 KiB serial threshold go parallel.
    let words = random_words(t as u64, 40_000);
    for call in 0..CALLS_PER_THREAD {
        let tag = format!("thread {t} call {call}");
        match rng.below(20) {
            0..=5 => check_for(&mut rng, &tag),
            6..=10 => check_reduce(&mut rng, &words, &tag),
            11..=12 => check_reduce_with(&mut rng, false, &tag),
            13 => check_nested(&mut rng, &words, &tag),
            14..=15 => check_failing_for(&mut rng, &tag),
            16 => check_failing_fold(&mut rng, &tag),
            _ => check_bad_argument(&mut rng, &words, &tag),
        }
    }
}

#[test]
fn eight_threads_of_mixed_calls() {
    let _dog = Watchdog::start("eight_threads_of_mixed_calls", WATCHDOG);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..APP_THREADS)
            .map(|t| {
                std::thread::Builder::new()
                    .name(format!("app-{t}"))
                    .spawn_scoped(s, move || one_app_thread(t))
                    .unwrap()
            })
            .collect();
        for h in handles {
            // Re-raise the first assertion failure with its message.
            if let Err(p) = h.join() {
                std::panic::resume_unwind(p);
            }
        }
    });
}

/// A full-team loop and a large reduction that must both be exactly right.
fn assert_runtime_healthy(tag: &str) {
    let mut rng = Rng(42);
    for threads in [0, 1, 2, 3, 4, 7] {
        let ctx = CountCtx::new(0, 100_000, usize::MAX);
        let o = options(threads, 1, 0);
        // SAFETY: `ctx` outlives the call.
        let s = unsafe {
            parfor_for(
                0,
                100_000,
                &o,
                Some(count_body),
                &ctx as *const _ as *mut c_void,
            )
        };
        assert_eq!(s, parfor_status::PARFOR_OK, "{tag}: {}", last_error());
        assert!(
            ctx.counts.iter().all(|c| c.load(Ordering::Relaxed) == 1),
            "{tag}: {threads} threads"
        );
        let words = random_words(rng.next(), 50_000);
        let mut out = 0u64;
        // SAFETY: `words` is live; `out` is one u64.
        let s = unsafe {
            parfor_reduce(
                words.as_ptr().cast(),
                words.len(),
                parfor_dtype::PARFOR_U64 as c_int,
                parfor_op::PARFOR_BIT_XOR as c_int,
                &o,
                (&mut out as *mut u64).cast(),
            )
        };
        assert_eq!(s, parfor_status::PARFOR_OK, "{tag}");
        assert_eq!(
            out,
            words.iter().fold(0, |a, &v| a ^ v),
            "{tag}: {threads} threads"
        );
    }
}

#[test]
fn failing_body_and_fold_leave_runtime_usable() {
    let _dog = Watchdog::start("failing_body_and_fold_leave_runtime_usable", WATCHDOG);
    let mut rng = Rng(7);
    for round in 0..200 {
        let tag = format!("round {round}");
        // Large ranges with a team, the failure early, late or in the middle.
        let len = 50_000;
        let fail_at = [0, len / 2, len - 1, rng.below(len)][round % 4];
        let ctx = CountCtx::new(0, len, fail_at);
        let o = options(1 + round % 4, (round % 4) as c_int, [0, 1, 100][round % 3]);
        // SAFETY: `ctx` outlives the call.
        let s = unsafe {
            parfor_for(
                0,
                len,
                &o,
                Some(count_body),
                &ctx as *const _ as *mut c_void,
            )
        };
        assert_eq!(s, parfor_status::PARFOR_ERR_CALLBACK, "{tag}");
        check_failing_fold(&mut rng, &tag);
        check_for(&mut rng, &tag);
        check_reduce_with(&mut rng, false, &tag);
    }
    assert_runtime_healthy("after failures");
}

#[test]
fn caller_ignoring_errors_keeps_runtime_usable() {
    let _dog = Watchdog::start("caller_ignoring_errors_keeps_runtime_usable", WATCHDOG);
    let words = random_words(3, 1000);
    let mut sink = [0u8; 64];
    for round in 0..500usize {
        // Every kind of failure, its status thrown away as a careless C caller would,
        // and parfor_last_error never read.
        let ctx = CountCtx::new(0, 5000, round % 5000);
        let o = options(round % 5, (round % 4) as c_int, round % 7);
        let span_ctx = SpanCtx {
            fail_at: (round % 900) as u64,
            nested: false,
            folds: AtomicUsize::new(0),
        };
        let mut span = Span::default();
        // SAFETY: as in the tests above; `sink` is large enough for any one element.
        unsafe {
            let _ = parfor_for(
                0,
                5000,
                &o,
                Some(count_body),
                &ctx as *const _ as *mut c_void,
            );
            let _ = reduce_with_span(0, 900, &span_ctx, &o, &mut span);
            let _ = parfor_reduce(std::ptr::null(), 3, 0, 0, &o, sink.as_mut_ptr().cast());
            let _ = parfor_reduce(
                words.as_ptr().cast(),
                3,
                99,
                0,
                &o,
                sink.as_mut_ptr().cast(),
            );
            let _ = parfor_reduce(
                words.as_ptr().cast::<u8>().add(4).cast(),
                3,
                5,
                0,
                &o,
                sink.as_mut_ptr().cast(),
            );
            let _ = parfor_argmin(words.as_ptr().cast(), 0, 5, &o, std::ptr::null_mut());
            let _ = parfor_for(3, 1, &o, Some(count_body), std::ptr::null_mut());
            let _ = parfor_set_num_threads(PARFOR_MAX_THREADS + 1);
        }
    }
    assert_runtime_healthy("after ignored errors");
}
