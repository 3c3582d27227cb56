"""Reductions of ``dask.array`` arrays with parfor inside each chunk.

    >>> import dask.array as da, parfor.dask
    >>> x = da.random.default_rng(0).standard_normal(10**8, chunks=10**7)
    >>> parfor.dask.sum(x, exact=True).compute()      # same bits for any chunking

Each function has the signature of its ``dask.array`` namesake (``axis=`` an int or
a tuple as in numpy, ``keepdims=``, ``dtype=`` where numpy has it, ``ddof=`` for
var/std, ``split_every=`` and ``out=`` as in dask) and returns a lazy
``dask.array.Array``. It is built with ``dask.array.reduction``: parfor reduces each
chunk on its thread team (the ``chunk`` step, where the data is), and the small
per-chunk partials are combined in Dask's tree reduction (the ``combine`` and
``aggregate`` steps). The functions are plain module-level functions, so they run on
any scheduler: threads, processes, ``dask.distributed`` (the workers must be able to
``import parfor``: install the package there, or set ``PYTHONPATH`` and
``PARFOR_LIBRARY`` for them).

**Results and accuracy.**

- Integer (and bool) sums and products accumulate in int64 / uint64 (or ``dtype=``)
  and wrap modulo 2^64 as numpy's do, so they equal numpy's exactly for every
  chunking. min/max keep the input's type; NaN propagates (use ``nanmin``).
- ``exact=True`` (sum, nansum, mean, nanmean of floats): each chunk's partial is an
  :class:`parfor.ExactSum` state (its 552 bytes, as a numpy ``V552`` element), the
  tree merges states, and the aggregate rounds once: the correctly rounded sum of
  all the values (``math.fsum``), **bitwise identical for any chunking, number of
  workers and scheduler**. The mean is that sum divided by the count (one more
  rounding, so also identical for any chunking).
- Fast float sums (the default): each chunk is summed by parfor in float64 (float32
  and float16 chunks are widened first) in its fixed partition, so a chunk's partial
  is the same on every worker; the partials are combined as double-double pairs
  (``hi``, ``lo``: Neumaier's compensated sum, vectorised over the output elements),
  so the combine adds almost no error and the result's error is that of the
  per-chunk sums. ``dask.array.sum`` has numpy's pairwise error inside each chunk
  and then adds the per-chunk partials with plain float additions in its tree, so
  the error bound here is at least as good as dask's once parfor's per-chunk bound
  is numpy's (issue 12's contract: ``2 ceil(log2 n) u sum|x|``); on one given input
  either may land closer. Not bitwise stable across chunkings: use ``exact=True``.
- mean/var/std: per chunk the count, the mean (parfor's sum / count) and the centred
  second moment (parfor's dot of the deviations); partials are merged with the
  pairwise formula of Chan, Golub and LeVeque (``M2 = sum M2_i + sum n_i (mean_i -
  mean)^2``), which, unlike raw power sums, does not cancel. Results have numpy's
  dtype (float64 for integers; float32 for float32 input, computed in float64).
- nan-functions skip NaN; an all-NaN slice gives NaN (nanmin, nanmax, nanmean,
  nanvar, nanstd) or 0 (nansum) as numpy does.

Only the chunk step reads the data; combines handle one partial per chunk. With the
1-D parfor API a chunk reduced over some axes is moved to a (kept, reduced) matrix
and parfor reduces each row (one call per output element of the chunk).
"""

import functools
import inspect
import math
import operator

import dask.array as da
import numpy as np

from . import ExactSum
from . import dot as _pf_dot
from . import max as _pf_max
from . import min as _pf_min
from . import prod as _pf_prod
from . import sum as _pf_sum

__all__ = [
    "max",
    "mean",
    "min",
    "nanmax",
    "nanmean",
    "nanmin",
    "nanprod",
    "nanstd",
    "nansum",
    "nanvar",
    "prod",
    "std",
    "sum",
    "var",
]

_EXACT_BYTES = ExactSum.nbytes
_STATE = np.dtype((np.void, _EXACT_BYTES))
# Partials of the float sums: count of values summed (for mean), and the sum as an
# unevaluated pair hi + lo.
_FLOAT_PARTIAL = np.dtype([("n", np.int64), ("hi", np.float64), ("lo", np.float64)])
_EXACT_PARTIAL = np.dtype([("n", np.int64), ("state", _STATE)])
_MOMENT_PARTIAL = np.dtype([("n", np.int64), ("mean", np.float64), ("m2", np.float64)])


def _int_partial(acc):
    return np.dtype([("n", np.int64), ("s", acc)])


# --- shapes ----------------------------------------------------------------------


def _check_dtype(dtype, what):
    if dtype.kind not in "biuf":
        raise TypeError(
            f"parfor.dask.{what}: unsupported element type {dtype}; parfor reduces "
            f"bool, int8..int64, uint8..uint64, float16, float32 and float64"
        )


def _as_dask(a, what):
    if not isinstance(a, da.Array):
        a = da.asarray(a)
    _check_dtype(a.dtype, what)
    return a


def _keep_shape(block, axis):
    """The shape of a chunk's partial: the chunk's, with the reduced axes as 1s."""
    return tuple(1 if i in axis else n for i, n in enumerate(block.shape))


def _rows(block, axis):
    """``block`` as a C-contiguous, aligned (kept, reduced) matrix, and the shape of
    the chunk's result with the reduced axes kept as 1s. A full reduction of a
    C-contiguous aligned chunk is a view; otherwise numpy makes the moved copy."""
    kept = [i for i in range(block.ndim) if i not in axis]
    moved = np.transpose(block, kept + sorted(axis))
    m = math.prod(block.shape[i] for i in kept)
    k = math.prod(block.shape[i] for i in axis)
    # Aligned too: a chunk unpickled on a dask.distributed worker can sit at any
    # byte offset of a network frame, which parfor refuses (MisalignedError).
    rows = np.require(moved, requirements=("C", "A")).reshape(m, k)
    return rows, _keep_shape(block, axis)


# True when parfor's reductions take numpy's axis=, dtype=, keepdims= (the N-d API
# of issue 12): a chunk is then reduced over its axes in place, in one call, with
# any strides. Otherwise (the 1-D API) each output element's slice is one call.
_AXIS_API = "axis" in inspect.signature(_pf_sum).parameters


def _reduce_block(fn, block, axis, work):
    """``fn`` (parfor's sum, prod, min or max) of ``block`` over ``axis``, computed
    in ``work``, as an array of the partial's shape."""
    if _AXIS_API:
        aligned = np.require(block, requirements="A")  # see _rows
        if fn is _pf_sum or fn is _pf_prod:
            values = fn(aligned, axis=axis, dtype=work, keepdims=True)
        else:
            values = fn(aligned.astype(work, copy=False), axis=axis, keepdims=True)
        return np.asarray(values, dtype=work)
    rows, keep_shape = _rows(block, axis)
    rows = rows.astype(work, copy=False)
    return np.array([fn(row) for row in rows], dtype=work).reshape(keep_shape)


def _finish(result, axis, keepdims):
    """The aggregate's result: the reduced axes (kept as 1s so far) dropped unless
    keepdims."""
    return result if keepdims else np.squeeze(result, axis=tuple(axis))


def _meta(dtype, ndim):
    return np.empty((0,) * ndim, dtype=dtype)


def _acc_dtype(in_dtype, dtype):
    """numpy's accumulator for sum/prod: ``dtype`` if given, else int64 for bool and
    signed, uint64 for unsigned integers, the input's type for floats."""
    if dtype is not None:
        return np.dtype(dtype)
    if in_dtype.kind in "bi":
        return np.dtype(np.int64)
    if in_dtype.kind == "u":
        return np.dtype(np.uint64)
    return in_dtype


def _integer_acc(acc):
    """The 64-bit type parfor accumulates an integer result ``acc`` in: wrapping
    modulo 2^64 and then casting gives the wrap modulo 2^k of a k-bit ``acc``."""
    return np.dtype(np.int64) if acc.kind in "bi" else np.dtype(np.uint64)


def _float_rows(rows):
    return rows.astype(np.float64, copy=False)


def _not_nan(rows):
    return ~np.isnan(rows) if rows.dtype.kind == "f" else None


# --- sums (sum, nansum, mean, nanmean) ---------------------------------------------


def _sum_chunk(block, axis, keepdims, kind, nan, acc=None, computing_meta=False):
    """Per-chunk partial of a sum: kind "int" (wrapping in ``acc``), "float" (parfor's
    float64 sum, as a hi/lo pair with lo 0), "exact" (an ExactSum state)."""
    if computing_meta:
        return block  # dask's probe for the type; partials are records (see _reduction)
    if kind == "int":
        partial = _int_partial(acc)
    else:
        partial = _FLOAT_PARTIAL if kind == "float" else _EXACT_PARTIAL
    if kind != "exact" and not (nan and block.dtype.kind == "f"):
        out = np.zeros(_keep_shape(block, axis), dtype=partial)
        out["n"] = math.prod(block.shape[i] for i in axis)
        if kind == "int":
            out["s"] = _reduce_block(_pf_sum, block, axis, acc)
        else:
            out["hi"] = _reduce_block(_pf_sum, block, axis, np.dtype(np.float64))
        return out
    rows, keep_shape = _rows(block, axis)
    out = np.zeros(rows.shape[0], dtype=partial)
    counts = rows.shape[1]
    if nan:
        present = _not_nan(rows)
        if present is not None:
            counts = np.count_nonzero(present, axis=1)
            rows = np.where(present, rows, 0)
    out["n"] = counts
    if kind == "float":  # NaNs replaced by 0 above
        out["hi"] = [_pf_sum(row) for row in _float_rows(rows)]
    else:
        if rows.dtype == np.float16:
            rows = rows.astype(np.float32)  # exact widening
        elif rows.dtype.kind != "f":
            rows = rows.astype(np.float64)
        states = out["state"]
        for i, row in enumerate(rows):
            states[i] = bytes(ExactSum(row))
    return out.reshape(keep_shape)


def _partial_matrix(parts, axis):
    """Partials concatenated along ``axis`` by Dask, as a (kept, partials) matrix."""
    return _rows(parts, axis)


def _two_sum(a, b):
    """Knuth's error-free sum: a + b == s + e exactly (when no overflow)."""
    s = a + b
    bv = s - a
    e = (a - (s - bv)) + (b - bv)
    return s, e


def _sum_combine(parts, axis, keepdims, kind):
    matrix, keep_shape = _partial_matrix(parts, axis)
    out = np.zeros(matrix.shape[0], dtype=parts.dtype)
    out["n"] = matrix["n"].sum(axis=1)
    if kind == "int":
        # Integer sums modulo 2^64: numpy's wrapping add is parfor's.
        out["s"] = matrix["s"].sum(axis=1, dtype=parts.dtype["s"])
    elif kind == "float":
        hi = np.zeros(matrix.shape[0])
        lo = np.zeros(matrix.shape[0])
        with np.errstate(invalid="ignore", over="ignore"):
            for j in range(matrix.shape[1]):
                hi, e = _two_sum(hi, matrix["hi"][:, j])
                lo = lo + e + matrix["lo"][:, j]
        out["hi"], out["lo"] = hi, lo
    else:
        states = out["state"]
        for i, row in enumerate(matrix["state"]):
            total = ExactSum()
            for state in row:
                total.merge(ExactSum.from_bytes(state.tobytes()))
            states[i] = bytes(total)
    return out.reshape(keep_shape)


def _sum_value(parts, kind, result_dtype):
    """The sums (an array) held by combined partials."""
    if kind == "int":
        return parts["s"].astype(result_dtype)
    if kind == "float":
        hi, lo = parts["hi"], parts["lo"]
        with np.errstate(invalid="ignore", over="ignore"):
            # Once hi is inf or NaN (an inf or NaN was added, or the sum
            # overflowed), lo is meaningless: the plain sum of the his is numpy's.
            total = np.where(np.isfinite(hi), hi + lo, hi)
        return total.astype(result_dtype)
    rounding = "float32" if result_dtype in (np.float32, np.float16) else "float64"
    flat = [ExactSum.from_bytes(s.tobytes()).result(rounding) for s in parts["state"].ravel()]
    return np.array(flat, dtype=np.float64).reshape(parts.shape).astype(result_dtype)


def _sum_aggregate(parts, axis, keepdims, kind, result_dtype, mean=False):
    parts = _sum_combine(parts, axis, True, kind)
    if not mean:
        return _finish(_sum_value(parts, kind, result_dtype), axis, keepdims)
    total = _sum_value(parts, kind, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = (total / parts["n"]).astype(result_dtype)
    return _finish(value, axis, keepdims)


def _reduction(a, chunk, combine, aggregate, axis, keepdims, result_dtype, split_every, out):
    result = da.reduction(
        a,
        chunk,
        aggregate,
        combine=combine,
        axis=axis,
        keepdims=keepdims,
        dtype=result_dtype,
        split_every=split_every,
        out=out,
        concatenate=True,
        # The result's type, given: dask would otherwise infer it from the chunk
        # function, whose partials are records.
        meta=_meta(result_dtype, _out_ndim(a, axis, keepdims)),
    )
    return result


def _out_ndim(a, axis, keepdims):
    return a.ndim if keepdims else a.ndim - len(axis)


def _normalise_axis(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (list, tuple)):
        axes = tuple(operator.index(x) for x in axis)
    else:
        axes = (operator.index(axis),)
    normal = []
    for x in axes:
        if not -ndim <= x < ndim:
            raise np.exceptions.AxisError(x, ndim)
        normal.append(x % ndim)
    if len(set(normal)) != len(normal):
        raise ValueError("duplicate value in 'axis'")
    return tuple(normal)


def _sum_like(what, a, axis, dtype, keepdims, split_every, out, exact, nan, mean):
    a = _as_dask(a, what)
    axis = _normalise_axis(axis, a.ndim)
    if mean:
        if dtype is not None:
            result_dtype = np.dtype(dtype)
        else:
            result_dtype = a.dtype if a.dtype.kind == "f" else np.dtype(np.float64)
        kind = "float"
    else:
        result_dtype = _acc_dtype(a.dtype, dtype)
        kind = "float" if result_dtype.kind == "f" else "int"
    if kind == "int" and result_dtype.kind not in "biu":
        raise TypeError(f"parfor.dask.{what}: unsupported dtype {result_dtype}")
    if exact:
        if result_dtype.kind != "f":
            raise TypeError(
                f"parfor.dask.{what}(exact=True) needs a float result (float32 or "
                f"float64); integer sums are exact already (modulo 2^64, as numpy's)"
            )
        if result_dtype not in (np.float16, np.float32, np.float64):
            raise TypeError(f"parfor.dask.{what}(exact=True): unsupported dtype {result_dtype}")
        kind = "exact"
    acc = _integer_acc(result_dtype) if kind == "int" else None
    chunk = functools.partial(_sum_chunk, kind=kind, nan=nan, acc=acc)
    combine = functools.partial(_sum_combine, kind=kind)
    aggregate = functools.partial(
        _sum_aggregate, kind=kind, result_dtype=result_dtype, mean=mean
    )
    return _reduction(
        a, chunk, combine, aggregate, axis, keepdims, result_dtype, split_every, out
    )


def sum(  # noqa: A001
    a, axis=None, dtype=None, keepdims=False, split_every=None, out=None, exact=False
):
    """Sum over ``axis`` (numpy's semantics; integers wrap modulo 2^64 as numpy's).
    ``exact=True``: the correctly rounded sum (floats), identical bits for any
    chunking and scheduler. See the module's documentation for the combine."""
    return _sum_like("sum", a, axis, dtype, keepdims, split_every, out, exact, False, False)


def nansum(a, axis=None, dtype=None, keepdims=False, split_every=None, out=None, exact=False):
    """Sum treating NaN as 0 (``numpy.nansum``); ``exact=`` as :func:`sum`."""
    return _sum_like("nansum", a, axis, dtype, keepdims, split_every, out, exact, True, False)


def mean(a, axis=None, dtype=None, keepdims=False, split_every=None, out=None, exact=False):
    """Mean (``numpy.mean``: float64 for integers). ``exact=True``: the correctly
    rounded sum divided by the count, identical bits for any chunking."""
    return _sum_like("mean", a, axis, dtype, keepdims, split_every, out, exact, False, True)


def nanmean(a, axis=None, dtype=None, keepdims=False, split_every=None, out=None, exact=False):
    """Mean of the non-NaN values (``numpy.nanmean``; NaN for an all-NaN slice)."""
    return _sum_like("nanmean", a, axis, dtype, keepdims, split_every, out, exact, True, True)


# --- products --------------------------------------------------------------------


def _prod_chunk(block, axis, keepdims, acc, nan, computing_meta=False):
    if computing_meta:
        return block  # dask's probe for the type; partials are records (see _reduction)
    if nan and block.dtype.kind == "f":
        block = np.where(np.isnan(block), 1, block)
    work = _integer_acc(acc) if acc.kind in "biu" else np.dtype(np.float64)
    return _reduce_block(_pf_prod, block, axis, work)


def _prod_combine(parts, axis, keepdims, acc):
    work = _integer_acc(acc) if acc.kind in "biu" else np.dtype(np.float64)
    return np.prod(parts, axis=axis, keepdims=True, dtype=work)


def _prod_aggregate(parts, axis, keepdims, acc):
    return _finish(_prod_combine(parts, axis, True, acc).astype(acc), axis, keepdims)


def _prod_like(what, a, axis, dtype, keepdims, split_every, out, nan):
    a = _as_dask(a, what)
    axis = _normalise_axis(axis, a.ndim)
    acc = _acc_dtype(a.dtype, dtype)
    if acc.kind not in "biuf":
        raise TypeError(f"parfor.dask.{what}: unsupported dtype {acc}")
    chunk = functools.partial(_prod_chunk, acc=acc, nan=nan)
    combine = functools.partial(_prod_combine, acc=acc)
    aggregate = functools.partial(_prod_aggregate, acc=acc)
    return _reduction(a, chunk, combine, aggregate, axis, keepdims, acc, split_every, out)


def prod(a, axis=None, dtype=None, keepdims=False, split_every=None, out=None):
    """Product over ``axis`` (numpy's semantics; integers wrap modulo 2^64)."""
    return _prod_like("prod", a, axis, dtype, keepdims, split_every, out, False)


def nanprod(a, axis=None, dtype=None, keepdims=False, split_every=None, out=None):
    """Product treating NaN as 1 (``numpy.nanprod``)."""
    return _prod_like("nanprod", a, axis, dtype, keepdims, split_every, out, True)


# --- min / max -------------------------------------------------------------------

_NAME_OF = {"min": "minimum", "max": "maximum"}


def _extreme_chunk(block, axis, keepdims, which, nan, computing_meta=False):
    if computing_meta:
        return block  # dask's probe for the type; partials are records (see _reduction)
    if block.size == 0 and math.prod(_keep_shape(block, axis)) != 0:
        raise ValueError(
            f"zero-size array to reduction operation {_NAME_OF[which]} which has no identity"
        )
    fn = _pf_min if which == "min" else _pf_max
    work = block
    if block.dtype == np.bool_:
        work = block.view(np.uint8)
    elif block.dtype == np.float16:
        work = block.astype(np.float32)  # exact widening
    if not (nan and block.dtype.kind == "f"):
        return _reduce_block(fn, work, axis, work.dtype).astype(block.dtype)
    work, keep_shape = _rows(work, axis)
    values = np.empty(work.shape[0], dtype=work.dtype)
    for i, row in enumerate(work):
        row = row[~np.isnan(row)]
        if row.size == 0:
            values[i] = np.nan  # all NaN so far: numpy's answer for the slice
            continue
        values[i] = fn(row)
    return values.astype(block.dtype).reshape(keep_shape)


def _extreme_combine(parts, axis, keepdims, which, nan):
    if nan:
        ufunc = np.fmin if which == "min" else np.fmax
    else:
        ufunc = np.minimum if which == "min" else np.maximum
    return ufunc.reduce(parts, axis=axis, keepdims=True)


def _extreme_aggregate(parts, axis, keepdims, which, nan):
    return _finish(_extreme_combine(parts, axis, True, which, nan), axis, keepdims)


def _extreme_like(what, a, axis, keepdims, split_every, out, which, nan):
    a = _as_dask(a, what)
    axis = _normalise_axis(axis, a.ndim)
    if a.size == 0 or any(a.shape[i] == 0 for i in axis):
        raise ValueError(
            f"zero-size array to reduction operation {_NAME_OF[which]} which has no identity"
        )
    chunk = functools.partial(_extreme_chunk, which=which, nan=nan)
    combine = functools.partial(_extreme_combine, which=which, nan=nan)
    aggregate = functools.partial(_extreme_aggregate, which=which, nan=nan)
    return _reduction(a, chunk, combine, aggregate, axis, keepdims, a.dtype, split_every, out)


def min(a, axis=None, keepdims=False, split_every=None, out=None):  # noqa: A001
    """Smallest element over ``axis`` (NaN propagates, as ``numpy.min``)."""
    return _extreme_like("min", a, axis, keepdims, split_every, out, "min", False)


def max(a, axis=None, keepdims=False, split_every=None, out=None):  # noqa: A001
    """Largest element over ``axis`` (NaN propagates, as ``numpy.max``)."""
    return _extreme_like("max", a, axis, keepdims, split_every, out, "max", False)


def nanmin(a, axis=None, keepdims=False, split_every=None, out=None):
    """Smallest non-NaN element (``numpy.nanmin``; NaN for an all-NaN slice)."""
    return _extreme_like("nanmin", a, axis, keepdims, split_every, out, "min", True)


def nanmax(a, axis=None, keepdims=False, split_every=None, out=None):
    """Largest non-NaN element (``numpy.nanmax``; NaN for an all-NaN slice)."""
    return _extreme_like("nanmax", a, axis, keepdims, split_every, out, "max", True)


# --- var / std ---------------------------------------------------------------------


def _moment_chunk(block, axis, keepdims, nan, computing_meta=False):
    if computing_meta:
        return block  # dask's probe for the type; partials are records (see _reduction)
    rows, keep_shape = _rows(block, axis)
    rows = _float_rows(rows)
    out = np.zeros(rows.shape[0], dtype=_MOMENT_PARTIAL)
    for i, row in enumerate(rows):
        if nan:
            row = row[~np.isnan(row)]
        n = row.size
        if n == 0:
            continue
        centre = _pf_sum(row) / n
        deviations = row - centre
        out[i] = (n, centre, _pf_dot(deviations, deviations))
    return out.reshape(keep_shape)


def _moment_combine(parts, axis, keepdims):
    matrix, keep_shape = _partial_matrix(parts, axis)
    n = matrix["n"]
    total = n.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.where(total > 0, (n * matrix["mean"]).sum(axis=1) / total, 0.0)
        spread = (n * (matrix["mean"] - centre[:, None]) ** 2).sum(axis=1)
    out = np.zeros(matrix.shape[0], dtype=_MOMENT_PARTIAL)
    out["n"], out["mean"] = total, centre
    out["m2"] = matrix["m2"].sum(axis=1) + np.where(total > 0, spread, 0.0)
    return out.reshape(keep_shape)


def _moment_aggregate(parts, axis, keepdims, ddof, root, result_dtype):
    parts = _moment_combine(parts, axis, True)
    divisor = np.maximum(parts["n"] - ddof, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = parts["m2"] / divisor
        if root:
            value = np.sqrt(value)
    return _finish(value.astype(result_dtype), axis, keepdims)


def _moment_like(what, a, axis, dtype, keepdims, ddof, split_every, out, nan, root):
    a = _as_dask(a, what)
    axis = _normalise_axis(axis, a.ndim)
    if dtype is not None:
        result_dtype = np.dtype(dtype)
    else:
        result_dtype = a.dtype if a.dtype.kind == "f" else np.dtype(np.float64)
    chunk = functools.partial(_moment_chunk, nan=nan)
    aggregate = functools.partial(
        _moment_aggregate, ddof=ddof, root=root, result_dtype=result_dtype
    )
    return _reduction(
        a, chunk, _moment_combine, aggregate, axis, keepdims, result_dtype, split_every, out
    )


def var(a, axis=None, dtype=None, keepdims=False, ddof=0, split_every=None, out=None):
    """Variance (``numpy.var``), from per-chunk centred moments merged pairwise."""
    return _moment_like("var", a, axis, dtype, keepdims, ddof, split_every, out, False, False)


def std(a, axis=None, dtype=None, keepdims=False, ddof=0, split_every=None, out=None):
    """Standard deviation (``numpy.std``)."""
    return _moment_like("std", a, axis, dtype, keepdims, ddof, split_every, out, False, True)


def nanvar(a, axis=None, dtype=None, keepdims=False, ddof=0, split_every=None, out=None):
    """Variance of the non-NaN values (``numpy.nanvar``)."""
    return _moment_like("nanvar", a, axis, dtype, keepdims, ddof, split_every, out, True, False)


def nanstd(a, axis=None, dtype=None, keepdims=False, ddof=0, split_every=None, out=None):
    """Standard deviation of the non-NaN values (``numpy.nanstd``)."""
    return _moment_like("nanstd", a, axis, dtype, keepdims, ddof, split_every, out, True, True)
