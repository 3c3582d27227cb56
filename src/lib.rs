//! parfor: OpenMP-style parallel for-loops and reductions over raw buffers.
//!
//! The crate has two faces. Rust users call the safe API re-exported here
//! ([`parallel_for`], [`reduce`], [`dot`], [`argmin`], [`argmax`], [`reduce_with`]);
//! C and Python users call the C ABI in [`ffi`], described by the generated
//! `include/parfor.h`.
//!
//! Layering, from the top down (each layer uses only the ones below it):
//! - [`ffi`]: the C boundary only: argument checks, status codes, the thread-local
//!   last error, panic catching. No algorithm lives there.
//! - [`reduce`]: built-in and user-defined reductions over a fixed block partition
//!   combined in a fixed tree, which makes floating-point results independent of the
//!   team size and schedule; the exact sum.
//! - [`parallel_for`](mod@parallel_for) and [`schedule`]: index-range loops and how ranges are cut.
//! - [`kernels`]: vectorised per-block kernels per element type and operator; they know
//!   nothing of threads.
//! - [`runtime`]: the team of threads, how the caller takes part, spin and park,
//!   configuration from the environment, OpenMP detection, fork handling.
//! - [`dtype`]: the element types, one table for all.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(unreachable_pub)]

pub mod array;
pub mod dtype;
pub mod error;
pub mod ffi;
pub mod kernels;
pub mod parallel_for;
pub mod reduce;
pub mod runtime;
pub mod schedule;

pub use array::{argreduce_array, moments_array, reduce_array, ArrayView, ArrayViewMut};
pub use dtype::DType;
pub use error::Error;
pub use parallel_for::parallel_for;
pub use reduce::{argmax, argmin, dot, reduce, reduce_with, ReduceOp};
pub use runtime::{num_threads, set_num_threads, thread_index};
pub use schedule::{Options, Schedule};
