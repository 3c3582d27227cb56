//! Sorting: typed keys by a parallel radix sort, and elements of any size with a
//! user comparator by a parallel merge sort.
//!
//! ## Order
//! Integers sort by value. Floats sort in numpy's order: -inf .. +inf, then every NaN
//! (whatever its sign or payload); -0.0 and +0.0 are equal (their relative order is
//! kept by a stable sort). Descending reverses the order of the non-NaN values and
//! keeps NaN last, as sorting the negated values does.
//!
//! ## Typed keys: radix
//! Each element maps to an unsigned key of its own width whose unsigned order is the
//! order above (sign bit flipped for integers; for floats the usual IEEE transform,
//! with -0.0 folded onto +0.0 and every NaN onto the largest key). Floats without
//! NaN or -0.0 that are not already in order are rewritten in place into their keys
//! (the IEEE transform alone is then one to one), sorted as integers and rewritten
//! back, so that no pass computes a float's key. One parallel read
//! then finds whether the keys are already non-decreasing (nothing to do), or
//! non-increasing (reverse, then reverse each run of equal keys back: the stable
//! order; both steps in parallel), and which key bits differ at all. The sort proper is a stable radix sort
//! on the bytes that differ, most significant first where the data is large:
//! - the team splits the input by its most significant differing byte (each thread
//!   counts the byte in its contiguous share, a prefix over (byte value, thread)
//!   gives each thread its output positions, each thread moves its share in order),
//!   and splits again any piece still longer than half a thread's share; a byte
//!   found constant in a piece (its counts fall in one bucket) is passed over
//!   without moving anything, and the and/or of the keys, taken by the same count,
//!   then names exactly the bytes that differ in the piece (a piece of equal keys
//!   is done);
//! - the pieces, largest first, go one to a thread, which sorts each alone: pieces
//!   that fit in a core's cache by LSD passes over the remaining differing bytes
//!   (counts of every byte from one read), larger ones by one more MSD split, pieces
//!   of a few dozen elements by insertion sort, pieces of equal keys not at all;
//! - few distinct keys: an in-cache piece that comes from a split on a byte of at
//!   most 64 values (or the whole input on one thread), and whose sample of 64 keys
//!   holds at most 32 distinct ones, is first surveyed (a piece of one key or in
//!   order is done) and then split on its top differing byte alone while that byte
//!   takes at most 64 values, instead of counting every byte at every level.
//!
//! Every step is stable and every piece's place is fixed by the counts, so the result
//! is the unique stable order whatever the team size and whichever thread sorts which
//! piece. Radix beats comparison sorting on these keys from a few hundred elements:
//! it touches every element a few times instead of `log2(n)` times with an
//! unpredictable branch each; below [`RADIX_MIN_LEN`] the standard library's stable
//! sort runs instead.
//!
//! ## Comparator sort
//! The elements' indices are cut into one contiguous share per thread, each share is
//! sorted with the standard library (stable or not), and shares are merged pairwise
//! in rounds, the merges of a round in parallel. The permutation is then applied to
//! the elements through a copy. A comparator that is not a strict weak ordering only
//! makes the order unspecified: merging writes every index exactly once, a standard
//! library sort that detects the inconsistency and panics leaves its share a
//! permutation (its documented guarantee) and the panic is caught, and the final
//! permutation is checked before any element moves.

mod compare;
mod radix;

pub use compare::sort_bytes_by;
pub use radix::{argsort, sort, SortKey};

/// Below this many elements the typed sorts use the standard library's stable sort
/// on the keys. Set from the shape of the costs, not a measurement on a quiet
/// machine: a radix pass costs a 256-entry count table to clear and prefix, so for a
/// few dozen elements the table dominates.
pub(crate) const RADIX_MIN_LEN: usize = 256;

/// Inputs of at least this many elements are sorted on the team; smaller ones on the
/// calling thread. A counting pass over 32768 8-byte keys takes some tens of
/// microseconds, well above the few microseconds of waking a parked team.
pub(crate) const SORT_PARALLEL_MIN_LEN: usize = 1 << 15;

/// Direction and stability of a sort.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SortOrder {
    /// Largest first (NaN still last).
    pub descending: bool,
    /// Equal elements keep their input order. Typed sorts are always stable; the
    /// comparator sort is stable only when asked.
    pub stable: bool,
}

/// The error for an allocation that failed.
pub(crate) fn alloc_error(what: &str, bytes: usize) -> crate::Error {
    crate::Error::Runtime(format!("cannot allocate {bytes} bytes for the {what}"))
}

#[cfg(test)]
mod test;
