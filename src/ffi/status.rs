//! Status codes and their messages: the one place each status is described.

use super::types::RawStatus;
use crate::error::Error;

/// Result of every fallible call. Each value has one static description, returned by
/// `parfor_status_message`; `parfor_last_error` gives the detail of the last failure.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum parfor_status {
    /// Success.
    PARFOR_OK = 0,
    /// A required pointer was NULL.
    PARFOR_ERR_NULL_ARGUMENT = 1,
    /// Unknown dtype/op/schedule, op not defined for the dtype, length overflow, bad options.
    PARFOR_ERR_INVALID_ARGUMENT = 2,
    /// A buffer was not aligned for its element type.
    PARFOR_ERR_MISALIGNED = 3,
    /// MIN/MAX/argmin/argmax of zero elements.
    PARFOR_ERR_EMPTY = 4,
    /// A user callback returned nonzero: the loop was cancelled.
    PARFOR_ERR_CALLBACK = 5,
    /// A Rust panic was caught at the boundary.
    PARFOR_ERR_PANIC = 6,
    /// The thread pool could not be created, and similar.
    PARFOR_ERR_RUNTIME = 7,
}

use parfor_status::*;

impl parfor_status {
    /// Every status, in discriminant order.
    pub const ALL: [parfor_status; 8] = [
        PARFOR_OK,
        PARFOR_ERR_NULL_ARGUMENT,
        PARFOR_ERR_INVALID_ARGUMENT,
        PARFOR_ERR_MISALIGNED,
        PARFOR_ERR_EMPTY,
        PARFOR_ERR_CALLBACK,
        PARFOR_ERR_PANIC,
        PARFOR_ERR_RUNTIME,
    ];

    /// Maps a C integer back to a status.
    pub fn from_raw(raw: RawStatus) -> Option<Self> {
        usize::try_from(raw)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// The static description of this status, NUL-terminated.
    pub fn message(self) -> &'static str {
        match self {
            PARFOR_OK => "success\0",
            PARFOR_ERR_NULL_ARGUMENT => "a required pointer argument was NULL\0",
            PARFOR_ERR_INVALID_ARGUMENT => {
                "invalid argument: unknown dtype, operator or schedule, operator not defined \
                 for the dtype, length overflow or bad options\0"
            }
            PARFOR_ERR_MISALIGNED => "a buffer was not aligned for its element type\0",
            PARFOR_ERR_EMPTY => "min, max, argmin or argmax of zero elements\0",
            PARFOR_ERR_CALLBACK => "a user callback returned nonzero: the loop was cancelled\0",
            PARFOR_ERR_PANIC => "internal error: a Rust panic was caught at the library boundary\0",
            PARFOR_ERR_RUNTIME => "runtime error: the thread pool could not be created or run\0",
        }
    }

    /// The enum constant's name, e.g. "PARFOR_ERR_EMPTY".
    pub fn name(self) -> &'static str {
        match self {
            PARFOR_OK => "PARFOR_OK",
            PARFOR_ERR_NULL_ARGUMENT => "PARFOR_ERR_NULL_ARGUMENT",
            PARFOR_ERR_INVALID_ARGUMENT => "PARFOR_ERR_INVALID_ARGUMENT",
            PARFOR_ERR_MISALIGNED => "PARFOR_ERR_MISALIGNED",
            PARFOR_ERR_EMPTY => "PARFOR_ERR_EMPTY",
            PARFOR_ERR_CALLBACK => "PARFOR_ERR_CALLBACK",
            PARFOR_ERR_PANIC => "PARFOR_ERR_PANIC",
            PARFOR_ERR_RUNTIME => "PARFOR_ERR_RUNTIME",
        }
    }
}

/// Message for a status value C made up.
pub(crate) const UNKNOWN_STATUS_MESSAGE: &str = "unknown parfor_status value\0";

/// The status and detail message for a core error. `what` names the callback kind
/// ("body" or "fold") for cancellation messages.
pub(crate) fn from_error(e: Error<i32>, what: &str) -> (parfor_status, String) {
    match e {
        Error::InvalidArgument(m) => (PARFOR_ERR_INVALID_ARGUMENT, m),
        Error::Empty => (
            PARFOR_ERR_EMPTY,
            "the reduction has zero elements and this operator has no identity".to_string(),
        ),
        Error::Cancelled { range, cause } => (
            PARFOR_ERR_CALLBACK,
            format!(
                "{what} returned {cause} for range [{}, {}); chunks not yet started were skipped",
                range.start, range.end
            ),
        ),
        Error::Runtime(m) => (PARFOR_ERR_RUNTIME, m),
    }
}
