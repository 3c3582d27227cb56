//! Fuzzes the C entry points with random arguments: dtype, operator and schedule
//! integers (valid or not), lengths (within the buffer, or so large that the byte
//! length overflows), byte offsets into a buffer this target owns (so misaligned
//! pointers), NULL pointers, options structs of random sizes and team sizes, loop
//! and reduction callbacks that fail at a random index.
//!
//! Every call must return a known status other than PARFOR_ERR_PANIC (a caught
//! panic is a library bug), leave its outputs untouched and set a message when it
//! fails, and give the serial reference's result when it succeeds (integers exactly;
//! floats bitwise equal to the same call with default options). The library is built
//! with AddressSanitizer by cargo fuzz, so an out-of-bounds read (a length not
//! rejected, say) is a finding too.
#![no_main]

use std::ffi::{c_void, CStr};
use std::os::raw::c_int;
use std::sync::atomic::{AtomicU8, Ordering};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use parfor::ffi::parfor_status::{self, *};
use parfor::ffi::*;

#[derive(Arbitrary, Debug)]
enum Len {
    /// Elements that fit in the buffer after the offset (taken modulo what fits).
    InBuffer(u16),
    /// Any length. One that does not fit the buffer is raised to one whose byte
    /// length overflows (the library cannot know the buffer's size, only reject
    /// an impossible length), which must be rejected unread.
    Any(usize),
}

#[derive(Arbitrary, Debug)]
struct Opts {
    null: bool,
    /// Added to or subtracted from sizeof(parfor_options).
    size_delta: i8,
    threads: u8,
    schedule: i32,
    chunk: usize,
}

/// A parfor_options followed by room for fields a newer caller might pass.
#[repr(C)]
struct BigOptions {
    opts: parfor_options,
    tail: [u8; 128],
}

impl Opts {
    fn build(&self) -> Box<BigOptions> {
        let mut big = Box::new(BigOptions {
            opts: parfor_options {
                size: 0,
                num_threads: 0,
                schedule: 0,
                chunk: 0,
            },
            tail: [0xEE; 128],
        });
        // SAFETY: a valid, writable parfor_options.
        unsafe { parfor_options_init(&mut big.opts) };
        big.opts.size = big.opts.size.wrapping_add_signed(self.size_delta as isize);
        // Mostly small teams; now and then a size above PARFOR_MAX_THREADS, which
        // must be rejected (never an exactly-maximal team: 1023 threads per input
        // would only slow the fuzzer down).
        big.opts.num_threads = match self.threads {
            0..=239 => usize::from(self.threads % 9),
            t => PARFOR_MAX_THREADS + usize::from(t),
        };
        big.opts.schedule = self.schedule;
        big.opts.chunk = self.chunk;
        big
    }

    fn ptr(&self, built: &BigOptions) -> *const parfor_options {
        if self.null {
            std::ptr::null()
        } else {
            &built.opts
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Call {
    Reduce {
        dtype: i32,
        op: i32,
        offset: u8,
        len: Len,
        null_data: bool,
        null_out: bool,
    },
    Dot {
        dtype: i32,
        offset_a: u8,
        offset_b: u8,
        len: Len,
        null_a: bool,
        null_out: bool,
    },
    Arg {
        max: bool,
        dtype: i32,
        offset: u8,
        len: Len,
        null_index: bool,
    },
    For {
        begin: u32,
        len: u16,
        reversed: bool,
        fail_at: Option<u16>,
        null_body: bool,
    },
    ReduceWith {
        begin: u32,
        len: u16,
        reversed: bool,
        acc_size: u16,
        huge_acc: bool,
        fail_at: Option<u16>,
        nulls: u8,
    },
    SetThreads(u16),
}

#[derive(Arbitrary, Debug)]
struct Input {
    calls: Vec<(Call, Opts)>,
    bytes: Vec<u8>,
}

const OUT_FILL: u8 = 0xA5;

fn fail_msg() -> String {
    // SAFETY: parfor_last_error never returns NULL.
    unsafe { CStr::from_ptr(parfor_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// The status must be a known one and not a caught panic; a failure must explain
/// itself and leave the output alone. Returns true on success.
fn judge(call: &str, s: parfor_status, out_untouched: bool) -> bool {
    let raw = s as c_int;
    assert!((0..=7).contains(&raw), "{call}: unknown status {raw}");
    assert_ne!(
        s,
        PARFOR_ERR_PANIC,
        "{call}: internal panic: {}",
        fail_msg()
    );
    if s == PARFOR_OK {
        return true;
    }
    assert!(out_untouched, "{call}: output written on failure {s:?}");
    assert!(!fail_msg().is_empty(), "{call}: {s:?} without a message");
    false
}

fn element_size(dtype: i32) -> Option<usize> {
    Some(match dtype {
        0 | 4 | 8 => 4,
        1 | 5 | 9 => 8,
        2 | 6 => 1,
        3 | 7 => 2,
        _ => return None,
    })
}

/// The buffer the calls read: the input's bytes in 8-byte aligned storage, plus
/// 16 bytes of slack for offsets.
struct Buffer {
    words: Vec<u64>,
    bytes: usize,
}

impl Buffer {
    fn new(bytes: &[u8]) -> Self {
        let mut words = vec![0u64; bytes.len().div_ceil(8) + 2];
        // SAFETY: `words` holds at least bytes.len() bytes and does not overlap it.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), words.as_mut_ptr().cast(), bytes.len())
        };
        Buffer {
            bytes: words.len() * 8,
            words,
        }
    }

    /// Pointer at `offset` (mod 16) and a length in elements of `size` bytes: one
    /// that fits, or the caller's arbitrary one (then `fits` is false).
    fn place(&self, offset: u8, len: &Len, size: usize) -> (*const c_void, usize, bool) {
        let offset = usize::from(offset % 16);
        // SAFETY: offset < 16 <= the allocation's size.
        let ptr = unsafe { self.words.as_ptr().cast::<u8>().add(offset) };
        let room = (self.bytes - offset) / size;
        match *len {
            Len::InBuffer(n) => (ptr.cast(), usize::from(n) % (room + 1), true),
            Len::Any(n) if n <= room => (ptr.cast(), n, true),
            Len::Any(n) => (ptr.cast(), n.max(isize::MAX as usize / size + 1), false),
        }
    }
}

macro_rules! by_dtype {
    ($d:expr, $T:ident => $body:expr) => {
        match $d {
            0 => {
                type $T = f32;
                $body
            }
            1 => {
                type $T = f64;
                $body
            }
            2 => {
                type $T = i8;
                $body
            }
            3 => {
                type $T = i16;
                $body
            }
            4 => {
                type $T = i32;
                $body
            }
            5 => {
                type $T = i64;
                $body
            }
            6 => {
                type $T = u8;
                $body
            }
            7 => {
                type $T = u16;
                $body
            }
            8 => {
                type $T = u32;
                $body
            }
            _ => {
                type $T = u64;
                $body
            }
        }
    };
}

/// Serial references: exact for integers; `None` for floats, which are checked for
/// bitwise reproducibility against the same call with default options instead.
trait Elem: Copy + PartialOrd + std::fmt::Debug {
    fn reference(x: &[Self], op: i32) -> Option<Self>;
    fn dot(a: &[Self], b: &[Self]) -> Option<Self>;
}

macro_rules! int_elem {
    ($($t:ty),*) => {$(
        impl Elem for $t {
            fn reference(x: &[Self], op: i32) -> Option<Self> {
                Some(match op {
                    0 => x.iter().fold(0 as $t, |a, &v| a.wrapping_add(v)),
                    1 => x.iter().fold(1 as $t, |a, &v| a.wrapping_mul(v)),
                    2 => *x.iter().min()?,
                    3 => *x.iter().max()?,
                    4 => x.iter().fold(!0, |a, &v| a & v),
                    5 => x.iter().fold(0, |a, &v| a | v),
                    6 => x.iter().fold(0, |a, &v| a ^ v),
                    7 => x.iter().all(|&v| v != 0) as $t,
                    8 => x.iter().any(|&v| v != 0) as $t,
                    _ => return None,
                })
            }
            fn dot(a: &[Self], b: &[Self]) -> Option<Self> {
                Some(a.iter().zip(b).fold(0 as $t, |s, (&x, &y)| s.wrapping_add(x.wrapping_mul(y))))
            }
        }
    )*};
}
int_elem!(i8, i16, i32, i64, u8, u16, u32, u64);

impl Elem for f32 {
    fn reference(_: &[Self], _: i32) -> Option<Self> {
        None
    }
    fn dot(_: &[Self], _: &[Self]) -> Option<Self> {
        None
    }
}

impl Elem for f64 {
    fn reference(_: &[Self], _: i32) -> Option<Self> {
        None
    }
    fn dot(_: &[Self], _: &[Self]) -> Option<Self> {
        None
    }
}

/// Reads the element the library wrote at the start of `out`.
fn read<T: Copy>(out: &[u8; 16]) -> T {
    assert!(std::mem::size_of::<T>() <= 16);
    // SAFETY: 16 bytes hold any element type; the read is unaligned.
    unsafe { out.as_ptr().cast::<T>().read_unaligned() }
}

/// Compares bit patterns, so that a reproducible NaN counts as equal.
fn same_bits<T: Copy>(a: T, b: T) -> bool {
    let size = std::mem::size_of::<T>();
    // SAFETY: both are plain values of `size` bytes.
    unsafe {
        std::slice::from_raw_parts((&a as *const T).cast::<u8>(), size)
            == std::slice::from_raw_parts((&b as *const T).cast::<u8>(), size)
    }
}

fn check<T: Elem>(got: T, again: T, want: Option<T>, what: &str) {
    match want {
        Some(w) => assert_eq!(got, w, "{what}: wrong result"),
        None => assert!(
            same_bits(got, again),
            "{what}: {got:?} vs {again:?} with default options"
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn reduce(
    buf: &Buffer,
    o: &Opts,
    dtype: i32,
    op: i32,
    offset: u8,
    len: &Len,
    null_data: bool,
    null_out: bool,
) {
    let size = element_size(dtype).unwrap_or(1);
    let (ptr, n, fits) = buf.place(offset, len, size);
    let data = if null_data { std::ptr::null() } else { ptr };
    let opts = o.build();
    let mut out = [OUT_FILL; 16];
    let outp: *mut c_void = if null_out {
        std::ptr::null_mut()
    } else {
        out.as_mut_ptr().cast()
    };
    // SAFETY: `data` is NULL, or points to `n` elements inside `buf` when `fits`;
    // otherwise the byte length passes the buffer and the call must reject it
    // before reading (ASan reports it if not). `out` has room for any element.
    let s = unsafe { parfor_reduce(data, n, dtype, op, o.ptr(&opts), outp) };
    if !judge("parfor_reduce", s, out.iter().all(|&b| b == OUT_FILL)) {
        return;
    }
    assert!(fits, "parfor_reduce accepted {n} elements past the buffer");
    assert!(
        out[size..].iter().all(|&b| b == OUT_FILL),
        "parfor_reduce wrote past *out"
    );
    let mut again = [OUT_FILL; 16];
    // SAFETY: as above; the first call succeeded, so its arguments are valid.
    let s = unsafe {
        parfor_reduce(
            ptr,
            n,
            dtype,
            op,
            std::ptr::null(),
            again.as_mut_ptr().cast(),
        )
    };
    assert_eq!(s, PARFOR_OK);
    by_dtype!(dtype, T => {
        // SAFETY: the call succeeded, so `ptr` is aligned for T; `n` elements fit.
        let x = unsafe { std::slice::from_raw_parts(ptr.cast::<T>(), n) };
        check::<T>(read(&out), read(&again), T::reference(x, op), "parfor_reduce")
    });
}

#[allow(clippy::too_many_arguments)]
fn dot(
    buf: &Buffer,
    o: &Opts,
    dtype: i32,
    offset_a: u8,
    offset_b: u8,
    len: &Len,
    null_a: bool,
    null_out: bool,
) {
    let size = element_size(dtype).unwrap_or(1);
    let (pa, n, fits) = buf.place(offset_a, len, size);
    let (pb, _, _) = buf.place(offset_b, len, size);
    // Both inputs must fit; a length that fits `a` but not `b` becomes 0.
    let room_b = (buf.bytes - usize::from(offset_b % 16)) / size;
    let n = if fits && n > room_b { 0 } else { n };
    let a = if null_a { std::ptr::null() } else { pa };
    let opts = o.build();
    let mut out = [OUT_FILL; 16];
    let outp: *mut c_void = if null_out {
        std::ptr::null_mut()
    } else {
        out.as_mut_ptr().cast()
    };
    // SAFETY: as in `reduce`, for both inputs.
    let s = unsafe { parfor_dot(a, pb, n, dtype, o.ptr(&opts), outp) };
    if !judge("parfor_dot", s, out.iter().all(|&b| b == OUT_FILL)) {
        return;
    }
    assert!(fits, "parfor_dot accepted {n} elements past the buffer");
    let mut again = [OUT_FILL; 16];
    // SAFETY: as above.
    let s = unsafe {
        parfor_dot(
            pa,
            pb,
            n,
            dtype,
            std::ptr::null(),
            again.as_mut_ptr().cast(),
        )
    };
    assert_eq!(s, PARFOR_OK);
    by_dtype!(dtype, T => {
        // SAFETY: the call succeeded: both pointers are aligned and `n` elements fit.
        let x = unsafe { std::slice::from_raw_parts(pa.cast::<T>(), n) };
        // SAFETY: as above.
        let y = unsafe { std::slice::from_raw_parts(pb.cast::<T>(), n) };
        check::<T>(read(&out), read(&again), T::dot(x, y), "parfor_dot")
    });
}

#[allow(clippy::too_many_arguments)]
fn arg(buf: &Buffer, o: &Opts, max: bool, dtype: i32, offset: u8, len: &Len, null_index: bool) {
    let size = element_size(dtype).unwrap_or(1);
    let (ptr, n, fits) = buf.place(offset, len, size);
    let opts = o.build();
    let mut index = usize::MAX;
    let ip: *mut usize = if null_index {
        std::ptr::null_mut()
    } else {
        &mut index
    };
    // SAFETY: as in `reduce`; `ip` is NULL or a size_t.
    let s = unsafe {
        if max {
            parfor_argmax(ptr, n, dtype, o.ptr(&opts), ip)
        } else {
            parfor_argmin(ptr, n, dtype, o.ptr(&opts), ip)
        }
    };
    if !judge("parfor_argmin/argmax", s, index == usize::MAX) {
        return;
    }
    assert!(fits && index < n, "argmin/argmax: index {index} of {n}");
    by_dtype!(dtype, T => {
        // SAFETY: the call succeeded: aligned, `n` elements fit.
        let x = unsafe { std::slice::from_raw_parts(ptr.cast::<T>(), n) };
        // numpy's rule: the first NaN, else the first extreme element.
        #[allow(clippy::eq_op)]
        let want = x.iter().position(|v| v != v).unwrap_or_else(|| {
            let mut best = 0;
            for i in 1..n {
                if (max && x[i] > x[best]) || (!max && x[i] < x[best]) {
                    best = i;
                }
            }
            best
        });
        assert_eq!(index, want, "argmin/argmax (max: {max})");
    });
}

struct Counts {
    begin: usize,
    hits: Vec<AtomicU8>,
    fail_at: usize,
}

unsafe extern "C" fn count_body(ctx: *mut c_void, begin: usize, end: usize) -> c_int {
    // SAFETY: the target passes a live Counts.
    let c = unsafe { &*(ctx as *const Counts) };
    assert!(
        begin < end && begin >= c.begin && end - c.begin <= c.hits.len(),
        "body got [{begin}, {end})"
    );
    for i in begin..end {
        c.hits[i - c.begin].fetch_add(1, Ordering::Relaxed);
        if i == c.fail_at {
            return 1;
        }
    }
    0
}

fn parallel_for(
    o: &Opts,
    begin: u32,
    len: u16,
    reversed: bool,
    fail_at: Option<u16>,
    null_body: bool,
) {
    let begin = begin as usize;
    let len = usize::from(len);
    let c = Counts {
        begin,
        hits: (0..len).map(|_| AtomicU8::new(0)).collect(),
        fail_at: fail_at.map_or(usize::MAX, |f| begin + usize::from(f)),
    };
    let opts = o.build();
    let (b, e) = if reversed {
        (begin + len, begin)
    } else {
        (begin, begin + len)
    };
    let body: parfor_body = if null_body { None } else { Some(count_body) };
    // SAFETY: `c` outlives the call; count_body only uses atomics.
    let s = unsafe { parfor_for(b, e, o.ptr(&opts), body, &c as *const Counts as *mut c_void) };
    let none_ran = c.hits.iter().all(|h| h.load(Ordering::Relaxed) == 0);
    let failing = c.fail_at < begin + len;
    if s == PARFOR_ERR_CALLBACK {
        assert!(
            failing,
            "parfor_for: a callback error without a failing body"
        );
    }
    if s == PARFOR_ERR_CALLBACK || judge("parfor_for", s, none_ran) {
        assert!(
            c.hits.iter().all(|h| h.load(Ordering::Relaxed) <= 1),
            "an index ran twice"
        );
        if s == PARFOR_OK {
            assert!(!failing, "parfor_for: the failing body was not reported");
            assert!(
                c.hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                "an index did not run"
            );
        }
    }
}

/// Context of the byte reduction: a (+) b = a + b - k bytewise, identity k.
struct ByteCtx {
    identity: Vec<u8>,
    fail_at: usize,
}

unsafe extern "C" fn byte_fold(
    ctx: *mut c_void,
    begin: usize,
    end: usize,
    acc: *mut c_void,
) -> c_int {
    // SAFETY: a live ByteCtx; `acc` holds identity.len() exclusive bytes.
    let c = unsafe { &*(ctx as *const ByteCtx) };
    // SAFETY: as above.
    let acc = unsafe { std::slice::from_raw_parts_mut(acc.cast::<u8>(), c.identity.len()) };
    for i in begin..end {
        if i == c.fail_at {
            return -1;
        }
        let j = i % acc.len();
        acc[j] = acc[j].wrapping_add(i as u8 | 1);
    }
    0
}

unsafe extern "C" fn byte_combine(ctx: *mut c_void, acc: *mut c_void, other: *const c_void) {
    // SAFETY: a live ByteCtx; two distinct accumulators of identity.len() bytes.
    let c = unsafe { &*(ctx as *const ByteCtx) };
    let n = c.identity.len();
    // SAFETY: as above.
    let (acc, other) = unsafe {
        (
            std::slice::from_raw_parts_mut(acc.cast::<u8>(), n),
            std::slice::from_raw_parts(other.cast::<u8>(), n),
        )
    };
    for ((a, o), k) in acc.iter_mut().zip(other).zip(&c.identity) {
        *a = a.wrapping_add(*o).wrapping_sub(*k);
    }
}

#[allow(clippy::too_many_arguments)]
fn reduce_with(
    o: &Opts,
    begin: u32,
    len: u16,
    reversed: bool,
    acc_size: u16,
    huge_acc: bool,
    fail_at: Option<u16>,
    nulls: u8,
    seed: &[u8],
) {
    let begin = begin as usize;
    let len = usize::from(len);
    let n = usize::from(acc_size % 300);
    let identity: Vec<u8> = (0..n.max(1))
        .map(|i| seed.get(i).copied().unwrap_or(i as u8))
        .collect();
    let ctx = ByteCtx {
        identity: identity.clone(),
        fail_at: fail_at.map_or(usize::MAX, |f| begin + usize::from(f)),
    };
    // acc_size as passed: in 0..300 (0 is invalid), or above PTRDIFF_MAX / 2.
    let passed = if huge_acc {
        usize::MAX - usize::from(acc_size)
    } else {
        n
    };
    let mut out = vec![OUT_FILL; n.max(1) + 16];
    let opts = o.build();
    let (b, e) = if reversed {
        (begin + len, begin)
    } else {
        (begin, begin + len)
    };
    // SAFETY: identity and out hold at least `n` bytes; a huge or zero acc_size
    // must be rejected before any read. The callbacks get a live ByteCtx.
    let s = unsafe {
        parfor_reduce_with(
            b,
            e,
            if nulls & 1 != 0 {
                std::ptr::null()
            } else {
                identity.as_ptr().cast()
            },
            passed,
            o.ptr(&opts),
            if nulls & 2 != 0 {
                None
            } else {
                Some(byte_fold)
            },
            if nulls & 4 != 0 {
                None
            } else {
                Some(byte_combine)
            },
            &ctx as *const ByteCtx as *mut c_void,
            if nulls & 8 != 0 {
                std::ptr::null_mut()
            } else {
                out.as_mut_ptr().cast()
            },
        )
    };
    let failing = ctx.fail_at < begin + len;
    let untouched = out.iter().all(|&x| x == OUT_FILL);
    if s == PARFOR_ERR_CALLBACK {
        assert!(failing && untouched, "parfor_reduce_with: callback error");
        return;
    }
    if !judge("parfor_reduce_with", s, untouched) {
        return;
    }
    assert!(
        !huge_acc && n > 0,
        "parfor_reduce_with accepted acc_size {passed}"
    );
    assert!(!failing, "a failing fold was not reported");
    let mut want = identity.clone();
    for i in begin..begin + len {
        let j = i % n;
        want[j] = want[j].wrapping_add(i as u8 | 1);
    }
    assert_eq!(&out[..n], &want[..], "parfor_reduce_with result");
    assert!(out[n..].iter().all(|&x| x == OUT_FILL), "wrote past out");
}

fuzz_target!(|input: Input| {
    let buf = Buffer::new(&input.bytes);
    // A few calls per input keeps each run short; runtime state (the team, its
    // growth, the rayon pool) carries over between calls and inputs anyway.
    for (call, o) in input.calls.iter().take(6) {
        match *call {
            Call::Reduce {
                dtype,
                op,
                offset,
                ref len,
                null_data,
                null_out,
            } => reduce(&buf, o, dtype, op, offset, len, null_data, null_out),
            Call::Dot {
                dtype,
                offset_a,
                offset_b,
                ref len,
                null_a,
                null_out,
            } => dot(&buf, o, dtype, offset_a, offset_b, len, null_a, null_out),
            Call::Arg {
                max,
                dtype,
                offset,
                ref len,
                null_index,
            } => arg(&buf, o, max, dtype, offset, len, null_index),
            Call::For {
                begin,
                len,
                reversed,
                fail_at,
                null_body,
            } => parallel_for(o, begin, len, reversed, fail_at, null_body),
            Call::ReduceWith {
                begin,
                len,
                reversed,
                acc_size,
                huge_acc,
                fail_at,
                nulls,
            } => reduce_with(
                o,
                begin,
                len,
                reversed,
                acc_size,
                huge_acc,
                fail_at,
                nulls,
                &input.bytes,
            ),
            Call::SetThreads(n) => {
                let n = usize::from(n);
                let s = parfor_set_num_threads(
                    n % 9 + if n > 60000 { PARFOR_MAX_THREADS + 1 } else { 0 },
                );
                judge("parfor_set_num_threads", s, true);
                assert_eq!(s == PARFOR_OK, n <= 60000);
            }
        }
    }
    // Back to the default team size, so that inputs do not depend on each other.
    assert_eq!(parfor_set_num_threads(0), PARFOR_OK);
});
