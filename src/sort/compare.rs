//! The comparator sort: a parallel merge sort of element indices, then one gather
//! (see the module documentation of `sort`).
//!
//! The merge sort is written here rather than taken from the standard library or
//! rayon: their sorts may panic when they detect a comparator that is not a total
//! order (Rust 1.81 and later), and a caught panic still prints through the panic
//! hook into the C program's stderr. Insertion sort of short runs and two-way merges
//! never panic and write every index exactly once, whatever the comparator says.

use std::cmp::Ordering;

use super::radix::for_parts;
use super::{alloc_error, SortOrder};
use crate::error::Error;
use crate::runtime;
use crate::schedule::{static_block, Options};

/// Runs sorted by insertion before merging. Insertion sort is the fastest on a few
/// elements; 16 keeps its quadratic cost (at most 120 comparisons a run) below what
/// the merge levels it saves cost.
const RUN: usize = 16;

/// Elements per share below which a comparator sort stays on the calling thread: a
/// share of 1024 takes some tens of microseconds of comparator calls, above the cost
/// of a fork-join.
const SHARE_MIN: usize = 1024;

/// Sorts the `size`-byte elements of `base` with `cmp` (ascending; descending when
/// asked, by swapping the comparator's arguments; stable when asked — this sort is
/// always stable). `cmp` is called from several threads at once, with references
/// into `base`. An inconsistent `cmp` leaves the elements in an unspecified order,
/// each present once. Errors: `InvalidArgument` for `size == 0` or a length that is
/// not a multiple of `size`; `Runtime` when memory runs out.
pub fn sort_bytes_by<C>(
    base: &mut [u8],
    size: usize,
    cmp: C,
    order: SortOrder,
    opts: &Options,
) -> Result<(), Error>
where
    C: Fn(&[u8], &[u8]) -> Ordering + Sync,
{
    if size == 0 || base.len() % size != 0 {
        return Err(Error::InvalidArgument(format!(
            "element size {size} does not divide the buffer of {} bytes",
            base.len()
        )));
    }
    let count = base.len() / size;
    if count < 2 {
        return Ok(());
    }
    let index_bytes = count.saturating_mul(size_of::<usize>());
    let mut idx: Vec<usize> = Vec::new();
    idx.try_reserve_exact(count)
        .map_err(|_| alloc_error("comparator sort's indices", index_bytes))?;
    idx.extend(0..count);
    let mut buf: Vec<usize> = Vec::new();
    buf.try_reserve_exact(count)
        .map_err(|_| alloc_error("comparator sort's merge buffer", index_bytes))?;
    buf.resize(count, 0);
    {
        let elems: &[u8] = base;
        let elem = |i: usize| &elems[i * size..(i + 1) * size];
        let descending = order.descending;
        let less = |a: usize, b: usize| {
            if descending {
                cmp(elem(b), elem(a)) == Ordering::Less
            } else {
                cmp(elem(a), elem(b)) == Ordering::Less
            }
        };
        let k = runtime::team_size(opts.num_threads(), count / SHARE_MIN);
        merge_sort_parallel(&mut idx, &mut buf, k, &less);
    }
    drop(buf);
    // Every index once: true by construction; checked so that no element can be lost
    // or duplicated even if that reasoning were wrong.
    let mut seen = vec![false; count];
    for &i in &idx {
        if i >= count || std::mem::replace(&mut seen[i], true) {
            return Err(Error::Runtime(
                "internal error: the comparator sort lost an element; the buffer is unchanged"
                    .to_string(),
            ));
        }
    }
    drop(seen);
    if idx.iter().enumerate().all(|(p, &i)| p == i) {
        return Ok(());
    }
    let mut sorted: Vec<u8> = Vec::new();
    sorted
        .try_reserve_exact(base.len())
        .map_err(|_| alloc_error("comparator sort's copy of the elements", base.len()))?;
    for &i in &idx {
        sorted.extend_from_slice(&base[i * size..(i + 1) * size]);
    }
    base.copy_from_slice(&sorted);
    Ok(())
}

/// A `*mut usize` shared by the parts of a round, each using its own range.
#[derive(Clone, Copy)]
struct Ptr(*mut usize);
// SAFETY: the parts of a round touch disjoint ranges of the index buffers.
unsafe impl Send for Ptr {}
// SAFETY: as above.
unsafe impl Sync for Ptr {}
impl Ptr {
    fn get(self) -> *mut usize {
        self.0
    }
}

/// A `&F` that crosses to the team's threads.
struct ByRef<'a, F>(&'a F);
impl<F> Clone for ByRef<'_, F> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<F> Copy for ByRef<'_, F> {}

/// Sorts `v` (using `buf`, as long) with `k` shares sorted in parallel and merged
/// pairwise in rounds.
fn merge_sort_parallel<F>(v: &mut [usize], buf: &mut [usize], k: usize, less: &F)
where
    F: Fn(usize, usize) -> bool + Sync,
{
    let n = v.len();
    let k = k.max(1);
    let (pv, pb) = (Ptr(v.as_mut_ptr()), Ptr(buf.as_mut_ptr()));
    let less = ByRef(less);
    for_parts(k, move |p| {
        let r = static_block(n, k, p);
        // SAFETY: part p alone uses range r of both buffers during this round, and
        // both outlive the call.
        let (s, b) = unsafe {
            (
                std::slice::from_raw_parts_mut(pv.get().add(r.start), r.len()),
                std::slice::from_raw_parts_mut(pb.get().add(r.start), r.len()),
            )
        };
        merge_sort(s, b, less.0);
    });
    // Rounds of merges across the shares, from v into buf and back.
    let mut bounds: Vec<usize> = (0..k).map(|p| static_block(n, k, p).start).collect();
    bounds.push(n);
    let (mut src, mut dst) = (pv, pb);
    let mut in_buf = false;
    while bounds.len() > 2 {
        let runs = bounds.len() - 1;
        let pairs = runs.div_ceil(2);
        let bs = &bounds;
        let bs = ByRef(bs);
        for_parts(pairs.min(k), move |p| {
            let mut q = p;
            while q < pairs {
                let lo = bs.0[2 * q];
                let mid = bs.0[(2 * q + 1).min(runs)];
                let hi = bs.0[(2 * q + 2).min(runs)];
                // SAFETY: pair q alone uses lo..hi of both buffers in this round.
                unsafe {
                    let a = std::slice::from_raw_parts(src.get().add(lo), mid - lo);
                    let b = std::slice::from_raw_parts(src.get().add(mid), hi - mid);
                    let out = std::slice::from_raw_parts_mut(dst.get().add(lo), hi - lo);
                    merge(a, b, out, less.0);
                }
                q += pairs.min(k);
            }
        });
        bounds = bounds.iter().copied().step_by(2).collect();
        if *bounds.last().expect("nonempty") != n {
            bounds.push(n);
        }
        std::mem::swap(&mut src, &mut dst);
        in_buf = !in_buf;
    }
    if in_buf {
        v.copy_from_slice(buf);
    }
}

// SAFETY: `ByRef` only hands out a shared reference to a Sync value.
unsafe impl<F: Sync> Send for ByRef<'_, F> {}
// SAFETY: as above.
unsafe impl<F: Sync> Sync for ByRef<'_, F> {}

/// Stable bottom-up merge sort of `v`, with `buf` (as long) as scratch.
fn merge_sort<F: Fn(usize, usize) -> bool>(v: &mut [usize], buf: &mut [usize], less: &F) {
    let n = v.len();
    for run in v.chunks_mut(RUN) {
        for i in 1..run.len() {
            let x = run[i];
            let mut j = i;
            while j > 0 && less(x, run[j - 1]) {
                run[j] = run[j - 1];
                j -= 1;
            }
            run[j] = x;
        }
    }
    let mut width = RUN;
    let mut in_buf = false;
    while width < n {
        {
            let (src, dst): (&[usize], &mut [usize]) = if in_buf {
                (&*buf, &mut *v)
            } else {
                (&*v, &mut *buf)
            };
            let mut lo = 0;
            while lo < n {
                let mid = (lo + width).min(n);
                let hi = (lo + 2 * width).min(n);
                merge(&src[lo..mid], &src[mid..hi], &mut dst[lo..hi], less);
                lo = hi;
            }
        }
        in_buf = !in_buf;
        width *= 2;
    }
    if in_buf {
        v.copy_from_slice(buf);
    }
}

/// Stable merge of `a` and `b` into `out` (as long as both): an element of `b` goes
/// first only when it is less than the next of `a`. Every slot of `out` is written
/// exactly once, from exactly one input, whatever `less` answers.
fn merge<F: Fn(usize, usize) -> bool>(a: &[usize], b: &[usize], out: &mut [usize], less: &F) {
    let (mut i, mut j) = (0, 0);
    for slot in out.iter_mut() {
        let take_b = j < b.len() && (i == a.len() || less(b[j], a[i]));
        if take_b {
            *slot = b[j];
            j += 1;
        } else {
            *slot = a[i];
            i += 1;
        }
    }
}
