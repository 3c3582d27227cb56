"""Prefix scans with numpy's semantics: ``cumsum``, ``cumprod`` (as ``numpy.cumsum``
and ``numpy.cumprod``), ``cummin``, ``cummax`` (as ``numpy.minimum.accumulate`` and
``numpy.maximum.accumulate``; numpy has no function of that name).

The result dtype is numpy's own (computed by numpy on an empty array, so the
accumulator promotion is exactly numpy's: small integers and bool accumulate in the
platform integer for sums and products). Each 1-D lane along ``axis`` is one call of
``parfor_scan``, with the GIL released. Float sums are bitwise identical for every
team size; their error is bounded by :func:`sum_error_bound` (see ``parfor_scan``
in parfor.h), where numpy's serial cumsum has ``n - 1``. Element types the library
does not scan (float16, complex, object, ...) are handed to numpy.
"""

import functools
import math

from ._errors import error_for
from ._ffi import DType, Op, ffi, lib

__all__ = ["cumsum", "cumprod", "cummin", "cummax", "sum_error_bound"]

_parfor_scan = lib.parfor_scan

#: numpy dtype name -> parfor dtype.
_DTYPES = {
    "float32": DType.F32,
    "float64": DType.F64,
    "int8": DType.I8,
    "int16": DType.I16,
    "int32": DType.I32,
    "int64": DType.I64,
    "uint8": DType.U8,
    "uint16": DType.U16,
    "uint32": DType.U32,
    "uint64": DType.U64,
}

_TILE = 16


def sum_error_bound(n):
    """The coefficient ``c(n)`` of parfor's float cumsum: every output is within
    ``c(n) * u * sum(|x[:i+1]|)`` of the exact prefix (``u`` the unit roundoff),
    ``c = 31 * (L - 1) + 15`` with ``L`` the levels of the 16-ary hierarchy."""
    if n <= 0:
        return 0
    levels, m = 1, n
    while m > _TILE:
        m = -(-m // _TILE)
        levels += 1
    return (2 * _TILE - 1) * (levels - 1) + (_TILE - 1)


_numpy_module = None


def _numpy():
    global _numpy_module
    if _numpy_module is None:
        try:
            import numpy
        except ImportError:  # pragma: no cover - numpy is a test dependency
            raise ImportError("parfor's cumsum/cumprod/cummin/cummax need numpy") from None
        _numpy_module = numpy
    return _numpy_module


def _row_pointers(buf, rows, step):
    """The address of each row of a C-contiguous buffer (``ffi.from_buffer``
    cdata, which holds the buffer for the call), as cffi pointers."""
    return [buf + r * step for r in range(rows)] if rows > 1 else [buf]


def _scan_rows(src, dst, op, dtype):
    """Scans every row of the C-contiguous 2-D arrays ``src`` into ``dst`` (which may
    be ``src``) with one C call each."""
    rows, n = src.shape
    if n == 0 or rows == 0:
        return
    step = n * src.itemsize
    buf_in = ffi.from_buffer(src)
    buf_out = buf_in if dst is src else ffi.from_buffer(dst, require_writable=True)
    for p_in, p_out in zip(_row_pointers(buf_in, rows, step), _row_pointers(buf_out, rows, step)):
        code = _parfor_scan(p_in, n, dtype, op, 0, ffi.NULL, p_out)
        if code:
            raise error_for(code)


# (reference, input dtype, dtype=) -> (numpy's result dtype, parfor dtype or None).
_RESULT_TYPES = {}


def _result_type(np, reference, in_dtype, dtype):
    """numpy's result dtype of ``reference`` (its promotion rules, dtype= included,
    found by running it on an empty array once per combination) and the parfor
    dtype that computes it, or None when the library does not scan that type."""
    try:
        key = (reference, in_dtype, dtype)
        hit = _RESULT_TYPES.get(key)
    except TypeError:  # an unhashable dtype= argument: numpy judges it
        key = hit = None
    if hit is None:
        result = reference(np.empty((0,), in_dtype), dtype=dtype).dtype
        pdtype = _DTYPES.get(result.name) if result.isnative else None
        hit = (result, None if pdtype is None else int(pdtype))
        if key is not None and len(_RESULT_TYPES) < 1024:
            _RESULT_TYPES[key] = hit
    return hit


def _accumulate(a, axis, dtype, out, op, reference, name):
    np = _numpy()
    a = np.asarray(a)
    result_dtype, pdtype = _result_type(np, reference, a.dtype, dtype)
    if pdtype is None:
        return reference(a, axis=axis, dtype=dtype, out=out)
    if axis is None:
        work = a.reshape(-1)
        axis_out = 0
    else:
        axis_out = np.lib.array_utils.normalize_axis_index(axis, a.ndim)
        work = np.moveaxis(a, axis_out, -1) if axis_out != a.ndim - 1 else a
    shape = work.shape
    # A contiguous copy in the result type where needed (a conversion or a strided
    # lane); otherwise the input is read in place.
    src = np.ascontiguousarray(work, dtype=result_dtype)
    # A fresh copy never overlaps `a`, so the bounds check is exact here.
    copied = src is not a and src.base is not a and not np.may_share_memory(src, a)
    rows = src.reshape(math.prod(shape[:-1]), shape[-1])
    if copied:
        res = src
        _scan_rows(rows, rows, int(op), pdtype)
    else:
        res = np.empty(shape, result_dtype)
        _scan_rows(rows, res.reshape(rows.shape), int(op), pdtype)
    if axis is not None and axis_out != a.ndim - 1:
        res = np.moveaxis(res, -1, axis_out)
    if out is None:
        return res
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name}: out must be a numpy array, not {type(out).__name__}")
    expected = a.shape if axis is not None else (a.size,)
    if out.shape != expected:
        raise ValueError(f"{name}: out has shape {out.shape}, the result has {expected}")
    np.copyto(out, res, casting="same_kind")
    return out


def cumsum(a, axis=None, dtype=None, out=None):
    """As ``numpy.cumsum``: cumulative sum along ``axis`` (flattened when None)."""
    np = _numpy()
    return _accumulate(a, axis, dtype, out, Op.SUM, np.cumsum, "parfor.cumsum()")


def cumprod(a, axis=None, dtype=None, out=None):
    """As ``numpy.cumprod``: cumulative product along ``axis`` (flattened when None)."""
    np = _numpy()
    return _accumulate(a, axis, dtype, out, Op.PROD, np.cumprod, "parfor.cumprod()")


def cummin(a, axis=0, dtype=None, out=None):
    """As ``numpy.minimum.accumulate``: running minimum along ``axis`` (default 0;
    None flattens). NaN propagates, as in numpy."""
    np = _numpy()
    return _accumulate(
        a, axis, dtype, out, Op.MIN, _ufunc_reference(np.minimum), "parfor.cummin()"
    )


def cummax(a, axis=0, dtype=None, out=None):
    """As ``numpy.maximum.accumulate``: running maximum along ``axis`` (default 0;
    None flattens). NaN propagates, as in numpy."""
    np = _numpy()
    return _accumulate(
        a, axis, dtype, out, Op.MAX, _ufunc_reference(np.maximum), "parfor.cummax()"
    )


@functools.lru_cache(maxsize=None)
def _ufunc_reference(ufunc):
    """``ufunc.accumulate`` with cumsum's signature (axis None flattens)."""

    def accumulate(a, axis=0, dtype=None, out=None):
        if axis is None:
            a = a.reshape(-1)
            axis = 0
        return ufunc.accumulate(a, axis=axis, dtype=dtype, out=out)

    return accumulate
