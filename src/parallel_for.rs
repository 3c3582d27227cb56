//! Parallel loops over an index range with OpenMP's schedules.

use std::ops::Range;

use crate::error::Error;
use crate::runtime;
use crate::schedule::{Cancel, Chunker, Options};

/// Calls `body` with disjoint sub-ranges that together cover `range`, each index
/// exactly once, on a team of threads (the caller included), following the options'
/// schedule. An error from `body` stops ranges not yet started from starting and is
/// returned with its range (the first recorded if several fail). An empty range is a
/// no-op; `start > end` is `InvalidArgument`.
pub fn parallel_for<E: Send>(
    range: Range<usize>,
    opts: &Options,
    body: impl Fn(Range<usize>) -> Result<(), E> + Sync,
) -> Result<(), Error<E>> {
    if range.start > range.end {
        return Err(Error::InvalidArgument(format!(
            "begin ({}) is greater than end ({})",
            range.start, range.end
        )));
    }
    let n = range.len();
    if n == 0 {
        return Ok(());
    }
    let chunker = Chunker::for_call(n, opts.schedule(), opts.chunk(), opts.num_threads());
    let cancel = Cancel::new();
    runtime::fork_join(chunker.team(), n, &|tid, team| {
        chunker.for_each(tid, team, |r| {
            if cancel.stopped() {
                return false;
            }
            let r = range.start + r.start..range.start + r.end;
            match body(r.clone()) {
                Ok(()) => true,
                Err(e) => {
                    cancel.fail(r, e);
                    false
                }
            }
        })
    })
    .map_err(Error::widen)?;
    cancel.into_result()
}
