//! The C-facing types: the enums as the header describes them, the integer
//! aliases the functions really take, and `parfor_options`.
//!
//! C can pass any `int` where the header says `parfor_dtype`: holding such a value
//! in a Rust enum would be undefined behaviour, so the exported functions take the
//! `Raw*` integer aliases, which `cbindgen.toml` renames to the enum's C name, and
//! validate them with the `from_raw` conversions. The Rust enums below exist so that
//! the header carries the C enums with their documentation.
#![allow(non_camel_case_types)]

use std::os::raw::c_int;

/// An element type, as C passes it (see `parfor_dtype`).
pub type RawDtype = c_int;
/// A reduction operator, as C passes it (see `parfor_op`).
pub type RawOp = c_int;
/// A schedule, as C passes it (see `parfor_schedule`).
pub type RawSchedule = c_int;
/// A status code, as C passes it back in (see `parfor_status`).
pub type RawStatus = c_int;

/// Element type of a buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum parfor_dtype {
    /// float
    PARFOR_F32 = 0,
    /// double
    PARFOR_F64 = 1,
    /// int8_t
    PARFOR_I8 = 2,
    /// int16_t
    PARFOR_I16 = 3,
    /// int32_t
    PARFOR_I32 = 4,
    /// int64_t
    PARFOR_I64 = 5,
    /// uint8_t
    PARFOR_U8 = 6,
    /// uint16_t
    PARFOR_U16 = 7,
    /// uint32_t
    PARFOR_U32 = 8,
    /// uint64_t
    PARFOR_U64 = 9,
}

/// Reduction operator: OpenMP's reduction operators, plus an exact sum.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum parfor_op {
    /// Sum. Integers wrap (two's complement); floats are accumulated in double (float
    /// input rounded once at the end) in a fixed pairwise tree, so the result is
    /// bitwise identical for every team size, schedule and memory layout, and its error
    /// is within numpy's pairwise bound, 2 * ceil(log2 n) * u * sum |x_i|. Empty: 0.
    PARFOR_SUM = 0,
    /// Product. Integers wrap. Empty: 1.
    PARFOR_PROD = 1,
    /// Minimum; a NaN anywhere gives NaN (the first one, as numpy). Empty: PARFOR_ERR_EMPTY.
    PARFOR_MIN = 2,
    /// Maximum; a NaN anywhere gives NaN (the first one, as numpy). Empty: PARFOR_ERR_EMPTY.
    PARFOR_MAX = 3,
    /// Bitwise and, integers only. Empty: all bits set.
    PARFOR_BIT_AND = 4,
    /// Bitwise or, integers only. Empty: 0.
    PARFOR_BIT_OR = 5,
    /// Bitwise exclusive or, integers only. Empty: 0.
    PARFOR_BIT_XOR = 6,
    /// 1 if every element is nonzero (NaN counts as nonzero), else 0, in the element type. Empty: 1.
    PARFOR_LOGICAL_AND = 7,
    /// 1 if any element is nonzero (NaN counts as nonzero), else 0, in the element type. Empty: 0.
    PARFOR_LOGICAL_OR = 8,
    /// f32/f64 only: the correctly rounded sum of the exact values, independent of order,
    /// team size, schedule and process count. Empty: +0.0.
    PARFOR_SUM_EXACT = 9,
    /// Sum skipping NaNs (integers: as PARFOR_SUM), accumulated as PARFOR_SUM. Empty: 0.
    PARFOR_NAN_SUM = 10,
    /// Minimum skipping NaNs (integers: as PARFOR_MIN); a slice of NaNs only gives NaN
    /// (its first one). Empty: PARFOR_ERR_EMPTY.
    PARFOR_NAN_MIN = 11,
    /// Maximum skipping NaNs, as PARFOR_NAN_MIN. Empty: PARFOR_ERR_EMPTY.
    PARFOR_NAN_MAX = 12,
}

/// How the iterations of a loop (or the blocks of a reduction) are shared out, as
/// OpenMP's schedule clause.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum parfor_schedule {
    /// The runtime chooses: currently STATIC.
    PARFOR_SCHEDULE_AUTO = 0,
    /// chunk 0: one contiguous near-equal range per thread; chunk c: ranges of c
    /// handed out round-robin.
    PARFOR_SCHEDULE_STATIC = 1,
    /// Ranges of `chunk` (0 means 1) taken from a shared counter by whichever thread is free.
    PARFOR_SCHEDULE_DYNAMIC = 2,
    /// Like DYNAMIC with ranges that shrink as the work runs out, never below `chunk`.
    PARFOR_SCHEDULE_GUIDED = 3,
}

/// Options for one call. Initialise with `parfor_options_init`, then change fields.
/// A NULL `const parfor_options *` anywhere means the defaults.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct parfor_options {
    /// sizeof(parfor_options), set by parfor_options_init: lets the struct grow without
    /// breaking old callers. A smaller value is PARFOR_ERR_INVALID_ARGUMENT.
    pub size: usize,
    /// Team size for this call; 0: the runtime default (see parfor_num_threads).
    /// At most PARFOR_MAX_THREADS.
    pub num_threads: usize,
    /// As OpenMP's schedule clause.
    pub schedule: RawSchedule,
    /// Chunk size in iterations (in elements for reductions, rounded up to whole
    /// blocks); 0: automatic.
    pub chunk: usize,
}

/// The largest team size a call may ask for (equal to the runtime's MAX_THREADS; a
/// unit test checks it).
pub const PARFOR_MAX_THREADS: usize = 1024;

#[cfg(test)]
#[test]
fn max_threads_matches_runtime() {
    assert_eq!(PARFOR_MAX_THREADS, crate::runtime::MAX_THREADS);
}
