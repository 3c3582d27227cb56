//! The error type of the safe Rust API. The C boundary maps each variant to a
//! `parfor_status` and a message (see `ffi::status`).

use std::fmt;
use std::ops::Range;

/// Why a parfor call failed. `E` is the error type a loop body or fold returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Error<E = std::convert::Infallible> {
    /// An argument is out of its domain (operator not defined for the dtype, bad range, ...).
    InvalidArgument(String),
    /// MIN/MAX/argmin/argmax of zero elements.
    Empty,
    /// A body or fold returned an error for `range`; chunks not yet started were skipped.
    Cancelled {
        /// The range whose callback failed (the first failure recorded).
        range: Range<usize>,
        /// What the callback returned.
        cause: E,
    },
    /// The runtime could not run the call (for example a thread could not be spawned).
    Runtime(String),
}

impl<E> Error<E> {
    /// Turns an error that cannot carry a callback cause into one of any cause type.
    pub fn widen(e: Error) -> Self {
        match e {
            Error::InvalidArgument(m) => Error::InvalidArgument(m),
            Error::Empty => Error::Empty,
            Error::Runtime(m) => Error::Runtime(m),
            Error::Cancelled { cause, .. } => match cause {},
        }
    }
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::Empty => f.write_str("reduction of zero elements has no identity"),
            Error::Cancelled { range, cause } => write!(
                f,
                "callback failed with {cause:?} on range [{}, {})",
                range.start, range.end
            ),
            Error::Runtime(m) => write!(f, "runtime error: {m}"),
        }
    }
}

impl<E: fmt::Debug> std::error::Error for Error<E> {}
