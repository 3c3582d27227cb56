//! Helpers every exported function uses: the thread-local last error, the panic
//! boundary, and argument checks (NULL, enum integers, length overflow, alignment,
//! options). Each check returns the status to give back and records the detail.

use std::cell::RefCell;
use std::ffi::CString;
use std::os::raw::c_char;

use super::status::parfor_status::{self, *};
use super::types::{parfor_options, RawOp, RawSchedule, PARFOR_OPTIONS_MIN_SIZE};
use crate::dtype::DType;
use crate::reduce::ReduceOp;
use crate::schedule::{Options, Schedule};

thread_local! {
    /// Detail of this thread's last failed call, NUL-terminated for C.
    ///
    /// Calls can come from where this thread's locals are being torn down (an atexit
    /// handler, a C++ static destructor, a pthread key destructor): there `with`
    /// panics, so every access goes through `try_with` and falls back to
    /// [`NO_DETAIL`] (issue 13, row 2). `RefCell` borrows are never held across user
    /// code, so `try_borrow*` cannot fail; it is used anyway so that nothing here can
    /// panic.
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// What `parfor_last_error` gives when this thread's record is gone (its
/// thread-local storage already destroyed) or cannot be read.
pub(crate) const NO_DETAIL: &str =
    "no detail: the call was made while this thread's storage was being destroyed\0";

/// Records `message` as this thread's last error and returns `status`. Where the
/// record cannot be kept (thread-local storage destroyed) only the status is returned.
pub(crate) fn fail(status: parfor_status, message: impl Into<String>) -> parfor_status {
    let mut bytes = message.into().into_bytes();
    bytes.retain(|&b| b != 0);
    // Cannot fail: interior NULs were just removed.
    let text = CString::new(bytes).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|slot| {
        if let Ok(mut s) = slot.try_borrow_mut() {
            *s = Some(text);
        }
    });
    status
}

/// Pointer to this thread's last error text; valid until the next failing call on
/// this thread (the CString's buffer is only replaced by `fail`). Static text when
/// the thread's record is gone.
// A byte string, not `c""`: the cbindgen that maturin bundles cannot parse it.
#[allow(clippy::manual_c_str_literals)]
pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR
        .try_with(|slot| match slot.try_borrow().as_deref() {
            Ok(Some(text)) => text.as_ptr(),
            Ok(None) => b"\0".as_ptr().cast(),
            Err(_) => NO_DETAIL.as_ptr().cast(),
        })
        .unwrap_or(NO_DETAIL.as_ptr().cast())
}

/// Text of a caught panic payload.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Runs `f`, turning a panic into `PARFOR_ERR_PANIC` with the panic's text as the
/// last error, so that no unwind ever crosses into C.
pub(crate) fn guard(name: &str, f: impl FnOnce() -> parfor_status) -> parfor_status {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(status) => status,
        Err(payload) => fail(
            PARFOR_ERR_PANIC,
            format!("{name}: internal panic: {}", panic_text(&*payload)),
        ),
    }
}

/// For an exported function that calls C callbacks: `prepare` (the argument checks)
/// runs under the panic guard, as [`guard`]; `run`, which calls the callbacks, does
/// not, and runs with forced unwinds passing (`runtime::passing_forced_unwinds`). A
/// callback may end its thread with `pthread_exit` or be cancelled (CPython does
/// this to daemon threads at exit); that unwind must reach the thread's start, and
/// `catch_unwind` would swallow it and make glibc abort ("FATAL: exception not
/// rethrown"). parfor's own code inside `run` is written not to panic.
pub(crate) fn guard_callbacks<T>(
    name: &str,
    prepare: impl FnOnce() -> Result<T, parfor_status>,
    run: impl FnOnce(T) -> parfor_status,
) -> parfor_status {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(prepare)) {
        Ok(Ok(prepared)) => crate::runtime::passing_forced_unwinds(|| run(prepared)),
        Ok(Err(status)) => status,
        Err(payload) => fail(
            PARFOR_ERR_PANIC,
            format!("{name}: internal panic: {}", panic_text(&*payload)),
        ),
    }
}

/// Runs `f` for a function that returns a plain value; a panic gives `fallback`.
pub(crate) fn guard_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// Early return of a failing status from an exported function body.
macro_rules! check {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(status) => return status,
        }
    };
}
pub(crate) use check;

/// A required pointer argument.
pub(crate) fn non_null<T>(p: *const T, name: &str) -> Result<*const T, parfor_status> {
    if p.is_null() {
        Err(fail(
            PARFOR_ERR_NULL_ARGUMENT,
            format!("argument `{name}` is NULL"),
        ))
    } else {
        Ok(p)
    }
}

/// A dtype passed as an integer.
pub(crate) fn dtype(raw: i32) -> Result<DType, parfor_status> {
    DType::from_raw(raw).ok_or_else(|| {
        fail(
            PARFOR_ERR_INVALID_ARGUMENT,
            format!("argument `dtype` is {raw}, not a parfor_dtype (0..=9)"),
        )
    })
}

/// An operator passed as an integer.
pub(crate) fn op(raw: RawOp) -> Result<ReduceOp, parfor_status> {
    ReduceOp::from_raw(raw).ok_or_else(|| {
        fail(
            PARFOR_ERR_INVALID_ARGUMENT,
            format!(
                "argument `op` is {raw}, not a parfor_op (0..={})",
                ReduceOp::ALL.len() - 1
            ),
        )
    })
}

/// No user-space buffer ends above this address: 2^56 is the top of the largest user
/// address space 64-bit Linux offers (x86-64 with 5-level paging; aarch64's is 2^52),
/// so a buffer claimed to reach beyond it cannot exist, and is refused before
/// anything is sized from its length (issue 13, row 4: u8 x (2^63 - 1) aborted
/// while allocating per-block partials).
#[cfg(target_pointer_width = "64")]
const USER_ADDRESS_END: usize = 1 << 56;
/// On 32-bit targets the `isize::MAX` bound below is the tighter one.
#[cfg(not(target_pointer_width = "64"))]
const USER_ADDRESS_END: usize = usize::MAX;

/// Checks a typed buffer argument: non-NULL, `len * size` representable and within
/// the user address space, aligned.
/// Returns it as a slice.
///
/// # Safety
/// Unless NULL, `ptr` must point to `len` readable, initialised elements of `T` that
/// are not written by anyone while the returned slice is alive.
pub(crate) unsafe fn buffer<'a, T>(
    ptr: *const std::ffi::c_void,
    len: usize,
    dtype: DType,
    name: &str,
) -> Result<&'a [T], parfor_status> {
    debug_assert_eq!(std::mem::size_of::<T>(), dtype.size());
    let ptr = non_null(ptr, name)?;
    let end = len
        .checked_mul(dtype.size())
        .and_then(|bytes| (ptr as usize).checked_add(bytes));
    if len > isize::MAX as usize / dtype.size() || end.is_none_or(|e| e > USER_ADDRESS_END) {
        return Err(fail(
            PARFOR_ERR_INVALID_ARGUMENT,
            format!(
                "argument `len` is {len}: {len} elements of {} bytes overflow the address space",
                dtype.size()
            ),
        ));
    }
    if (ptr as usize) % dtype.align() != 0 {
        return Err(fail(
            PARFOR_ERR_MISALIGNED,
            format!(
                "argument `{name}` ({ptr:p}) is not aligned to {} bytes as {} requires",
                dtype.align(),
                dtype.c_name()
            ),
        ));
    }
    // SAFETY: non-NULL and aligned (checked above), the byte length fits in isize
    // (checked above), and the caller guarantees `len` initialised elements that stay
    // unmodified while the slice lives.
    Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<T>(), len) })
}

/// Size of the options struct this library knows.
pub(crate) const OPTIONS_SIZE: usize = std::mem::size_of::<parfor_options>();

/// The defaults, as `parfor_options_init` documents them, with `size` set.
pub(crate) fn default_options(size: usize) -> parfor_options {
    parfor_options {
        size,
        num_threads: 0,
        schedule: crate::ffi::types::parfor_schedule::PARFOR_SCHEDULE_AUTO as RawSchedule,
        chunk: 0,
    }
}

/// Reads and validates an optional options struct; NULL means the defaults.
///
/// Versioning rule: the caller's struct has `opts->size` bytes, at least
/// [`PARFOR_OPTIONS_MIN_SIZE`] (the first published layout). Only the fields within
/// both that size and this library's struct are read; fields this library has and
/// the caller's older struct lacks take their defaults, and bytes of a newer
/// caller's struct beyond this library's are not read.
///
/// # Safety
/// Unless NULL, `opts` must point to at least `opts->size` readable bytes.
pub(crate) unsafe fn options(opts: *const parfor_options) -> Result<Options, parfor_status> {
    if opts.is_null() {
        return Ok(Options::default());
    }
    // SAFETY: non-NULL, and the caller guarantees a readable struct. The `size` field is
    // read first and checked before any other byte is touched.
    let size = unsafe { std::ptr::addr_of!((*opts).size).read_unaligned() };
    if size < PARFOR_OPTIONS_MIN_SIZE {
        return Err(fail(
            PARFOR_ERR_INVALID_ARGUMENT,
            format!(
                "opts->size is {size}, smaller than PARFOR_OPTIONS_MIN_SIZE = \
                 {PARFOR_OPTIONS_MIN_SIZE}; initialise options with \
                 parfor_options_init_size(opts, sizeof *opts)"
            ),
        ));
    }
    let mut raw = default_options(size);
    // SAFETY: the caller's struct holds `size` readable bytes, and `raw` has
    // OPTIONS_SIZE writable bytes; the copy takes the smaller. Every field is an
    // integer, so any bytes are valid values.
    unsafe {
        std::ptr::copy_nonoverlapping(
            opts.cast::<u8>(),
            (&mut raw as *mut parfor_options).cast::<u8>(),
            size.min(OPTIONS_SIZE),
        )
    };
    let schedule = schedule(raw.schedule)?;
    Options::new(raw.num_threads, schedule, raw.chunk).map_err(|e| {
        fail(
            PARFOR_ERR_INVALID_ARGUMENT,
            format!("opts->num_threads: {e}"),
        )
    })
}

fn schedule(raw: RawSchedule) -> Result<Schedule, parfor_status> {
    Schedule::from_raw(raw).ok_or_else(|| {
        fail(
            PARFOR_ERR_INVALID_ARGUMENT,
            format!("opts->schedule is {raw}, not a parfor_schedule (0..=3)"),
        )
    })
}

/// `begin <= end` for an index range.
pub(crate) fn range(begin: usize, end: usize) -> Result<std::ops::Range<usize>, parfor_status> {
    if begin > end {
        Err(fail(
            PARFOR_ERR_INVALID_ARGUMENT,
            format!("begin ({begin}) is greater than end ({end})"),
        ))
    } else {
        Ok(begin..end)
    }
}

/// A `void *` the user passes through to callbacks. The user promises, as with an
/// OpenMP shared variable, that the callbacks may use it from several threads.
#[derive(Clone, Copy)]
pub(crate) struct UserCtx(pub(crate) *mut std::ffi::c_void);
// SAFETY: parfor only passes the pointer back to the user's callbacks; the header
// documents that callbacks run concurrently on several threads with the same ctx.
unsafe impl Send for UserCtx {}
// SAFETY: as above.
unsafe impl Sync for UserCtx {}

impl UserCtx {
    /// The pointer. A method rather than field access, so that closures capture the
    /// whole (Sync) wrapper and not the raw pointer inside it.
    pub(crate) fn get(self) -> *mut std::ffi::c_void {
        self.0
    }
}
