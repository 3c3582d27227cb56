"""numpy's reductions with numpy's semantics, computed by the library in place.

Each function takes what its numpy namesake takes (``axis``, ``keepdims``, and where
numpy has them ``dtype``, ``out``, ``ddof``), plus ``num_threads=`` for the one call,
and returns what numpy returns: the same dtype, integer values exactly equal, float
values within the accuracy bound of parfor.h (at least numpy's pairwise summation),
numpy scalars for full reductions, ndarrays (or ``out``) otherwise, and numpy's NaN
handling, warnings and errors.

How a call maps onto the C API (``parfor_reduce_array``, ``parfor_argreduce_array``,
``parfor_moments_array``): the input is described as a ``parfor_array`` (its data
pointer, byte strides and shape, read in place: any strides, Fortran order, negative
steps, broadcasts); the reduced axes become a bit mask; the result is written into a
fresh array of the accumulator type (or straight into ``out`` when it has that type),
described in the same way without the reduced axes. ``keepdims`` and casts to a
``dtype=`` the C accumulator rules do not offer are done here, after the call:
integer sums and products are computed modulo 2^64 and cast, which wraps exactly as
numpy's accumulation in the narrower type does; float ones in float64 and rounded.
"""

from __future__ import annotations

import builtins
import functools
import math
import traceback
import warnings

import cffi
import numpy as np

from . import _errors
from typing import Any, Optional, Tuple, Union

from ._errors import MisalignedError, error_for
from ._ffi import ALL_AXES, DECLARATIONS_SOURCE, MAX_DIMS, MOMENTS_SKIP_NAN, DType, Op, ffi, lib, options

try:  # numpy >= 2.0
    from numpy.lib.array_utils import normalize_axis_index, normalize_axis_tuple
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import normalize_axis_index
    from numpy.core.numeric import normalize_axis_tuple

#: An axis argument: None (all axes), an int, or a tuple of ints.
Axis = Optional[Union[int, Tuple[int, ...]]]
#: What numpy.dtype() accepts.
DTypeLike = Any
#: A numpy array or any object with the buffer protocol.
ArrayLike = Any
#: A numpy scalar (full reduction) or an ndarray (axis reduction, or ``out``).
Result = Any

__all__ = [
    "sum",
    "prod",
    "min",
    "max",
    "any",
    "all",
    "mean",
    "var",
    "std",
    "nansum",
    "nanmin",
    "nanmax",
    "nanmean",
    "nanvar",
    "nanstd",
    "argmin",
    "argmax",
    "nanargmin",
    "nanargmax",
    "count_nonzero",
]

# --- element types -------------------------------------------------------------------

_BOOL = np.dtype(np.bool_)
_I64 = np.dtype(np.int64)
_U64 = np.dtype(np.uint64)
_F64 = np.dtype(np.float64)
_F32 = np.dtype(np.float32)
_U8 = np.dtype(np.uint8)

#: numpy dtype (native byte order) -> parfor dtype code. bool is read as uint8: numpy
#: stores it as one byte holding 0 or 1.
_CODE = {
    np.dtype(np.float32): int(DType.F32),
    np.dtype(np.float64): int(DType.F64),
    np.dtype(np.int8): int(DType.I8),
    np.dtype(np.int16): int(DType.I16),
    np.dtype(np.int32): int(DType.I32),
    np.dtype(np.int64): int(DType.I64),
    np.dtype(np.uint8): int(DType.U8),
    np.dtype(np.uint16): int(DType.U16),
    np.dtype(np.uint32): int(DType.U32),
    np.dtype(np.uint64): int(DType.U64),
    _BOOL: int(DType.U8),
}
_SUPPORTED = "bool, int8, int16, int32, int64, uint8, uint16, uint32, uint64, float32, float64"

_SUM = int(Op.SUM)
_PROD = int(Op.PROD)
_MIN = int(Op.MIN)
_MAX = int(Op.MAX)
_LOGICAL_AND = int(Op.LOGICAL_AND)
_LOGICAL_OR = int(Op.LOGICAL_OR)
_SUM_EXACT = int(Op.SUM_EXACT)
# The N-d API's operators; getattr so that this module imports against a library
# that predates them (the functions needing them then fail at call time).
_NAN_SUM = int(getattr(Op, "NAN_SUM", 10))
_NAN_MIN = int(getattr(Op, "NAN_MIN", 11))
_NAN_MAX = int(getattr(Op, "NAN_MAX", 12))

_I64_CODE = int(DType.I64)
_U64_CODE = int(DType.U64)
_F64_CODE = int(DType.F64)
_F32_CODE = int(DType.F32)
_U8_CODE = int(DType.U8)

_parfor_reduce = lib.parfor_reduce
_FLAT_ARG = {int(Op.MIN): lib.parfor_argmin, int(Op.MAX): lib.parfor_argmax}


def _nd(name):
    """A function of the N-d API, or a stand-in raising ImportError when the loaded
    library is older than it."""
    try:
        return getattr(lib, name)
    except AttributeError:

        def missing(*_args):
            raise ImportError(
                f"the loaded parfor library ({lib!r}) has no {name}: it is older than "
                f"this package; rebuild it"
            )

        return missing


_reduce_array = _nd("parfor_reduce_array")
_argreduce_array = _nd("parfor_argreduce_array")
_moments_array = _nd("parfor_moments_array")


def _public(fn):
    """Marks a public function: on failure, the locals of the frames below it (which
    hold the input's ndarray view, and with it an export of the caller's buffer) are
    cleared before the exception leaves, so that a stored exception does not keep a
    bytearray from resizing or a memoryview from releasing."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BaseException as e:
            if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                traceback.clear_frames(e.__traceback__.tb_next)
            raise

    return wrapper


# --- inputs --------------------------------------------------------------------------


def _as_array(x, what):
    """``x`` as an ndarray read in place (no copy), or TypeError.

    numpy arrays are taken as they are (a subclass as its base-class view); any
    other object must export a buffer, which numpy wraps without copying.
    MaskedArray is refused: reducing its data would ignore its mask.
    """
    if type(x) is np.ndarray:
        a = x
    elif isinstance(x, np.ma.MaskedArray):
        raise TypeError(
            f"{what} is a numpy.ma.MaskedArray: parfor would ignore its mask; reduce "
            f"x.compressed() or x.filled(value), or use the numpy.ma functions"
        )
    elif isinstance(x, np.ndarray):
        a = x.view(np.ndarray)
    elif isinstance(x, np.generic):
        a = np.asarray(x)
    else:
        try:
            mv = memoryview(x)
        except TypeError:
            raise TypeError(
                f"{what} must be a numpy array or support the buffer protocol "
                f"(array.array, memoryview, bytes, bytearray), not {type(x).__name__}"
            ) from None
        a = np.asarray(mv)
    dt = a.dtype
    if dt not in _CODE:
        if dt.kind in "biuf" and not dt.isnative:
            raise TypeError(
                f"{what} has dtype {dt.str} (not this machine's byte order); parfor "
                f"reads arrays in place: convert it first, e.g. "
                f"x.astype(x.dtype.newbyteorder('='))"
            )
        raise TypeError(f"{what} has dtype {dt}; parfor reduces {_SUPPORTED}")
    return a


def _misaligned(a, what):
    return MisalignedError(
        "PARFOR_ERR_MISALIGNED",
        f"{what}: the view at address {a.__array_interface__['data'][0]:#x} with strides "
        f"{a.strides} is not aligned to {a.itemsize} bytes (its element size); parfor "
        f"reads in place and does not copy: pass x.copy() if a copy is what you want",
        "a buffer was not aligned for its element type",
    )


_SIZES = ffi.typeof("size_t[]")
_STRIDES = ffi.typeof("ptrdiff_t[]")
_VOID_P = ffi.typeof("void *")
_array_type = None  # ffi.typeof("parfor_array *"), on first use


def _parfor_array_type():
    global _array_type
    try:
        _array_type = ffi.typeof("parfor_array *")
    except cffi.CDefError:
        raise ImportError(
            f"the parfor declarations ({DECLARATIONS_SOURCE}) have no parfor_array: the "
            f"library and its header are older than this package; rebuild them"
        ) from None
    return _array_type


def _describe(a, code, keep, drop=()):
    """A ``parfor_array *`` for ndarray ``a`` read as dtype ``code``; the cdata it
    references are appended to ``keep``. Axes in ``drop`` (of length 1) are left out,
    for an ``out`` given with keepdims. The data pointer is the address of element
    (0, ..., 0): ``ffi.from_buffer`` for a C-contiguous array (which pins it),
    numpy's ``__array_interface__`` otherwise (the caller holds ``a``)."""
    if a.flags.c_contiguous:
        data = ffi.from_buffer(a, require_writable=False)
        keep.append(data)
    else:
        data = ffi.cast(_VOID_P, a.__array_interface__["data"][0])
    shape = a.shape
    strides = a.strides
    if drop:
        shape = [n for k, n in enumerate(shape) if k not in drop]
        strides = [s for k, s in enumerate(strides) if k not in drop]
    if shape:
        c_shape = ffi.new(_SIZES, shape)
        c_strides = ffi.new(_STRIDES, strides)
        keep.append(c_shape)
        keep.append(c_strides)
    else:
        c_shape = c_strides = ffi.NULL
    desc = ffi.new(
        _array_type or _parfor_array_type(),
        {"data": data, "dtype": code, "ndim": len(shape), "shape": c_shape, "strides": c_strides},
    )
    keep.append(desc)
    return desc


def _call(fn, *args):
    code = fn(*args)
    if code:
        raise error_for(code)


def _axes(a, axis):
    """``(axes, mask)``: the reduced axes as a sorted tuple and as a bit mask."""
    ndim = a.ndim
    if ndim > MAX_DIMS:
        raise ValueError(f"parfor reduces arrays of at most {MAX_DIMS} dimensions, not {ndim}")
    if axis is None:
        axes = tuple(range(ndim))
    else:
        axes = tuple(sorted(normalize_axis_tuple(axis, ndim)))
    mask = 0
    for k in axes:
        mask |= 1 << k
    return axes, mask


def _shapes(a, axes):
    """(shape without the reduced axes, shape with them as 1)."""
    shape = a.shape
    reduced = [n for k, n in enumerate(shape) if k not in axes]
    kept = [1 if k in axes else n for k, n in enumerate(shape)]
    return tuple(reduced), tuple(kept)


def _check_out(out, shape, keepdims, kept_shape, name):
    if not isinstance(out, np.ndarray):
        raise TypeError(f"output must be an array (got {type(out).__name__})")
    want = kept_shape if keepdims else shape
    if out.ndim != len(want):
        raise ValueError(
            f"output parameter for reduction operation {name} has the wrong number of "
            f"dimensions: Found {out.ndim} but expected {len(want)}"
        )
    if out.shape != tuple(want):
        raise ValueError(
            f"output parameter for reduction operation {name} has a non-matching shape: "
            f"found {out.shape} but expected {tuple(want)}"
        )
    if not out.flags.writeable:
        raise ValueError("output array is read-only")


def _finish(res, axes, keepdims, kept_shape, out, result_dtype):
    """Casts, reshapes for keepdims, copies into ``out``; a numpy scalar for a full
    reduction without keepdims."""
    if result_dtype is not None and res.dtype != result_dtype:
        with np.errstate(all="ignore"):
            res = res.astype(result_dtype)
    if keepdims:
        res = res.reshape(kept_shape)
    if out is not None:
        if res is not out:
            np.copyto(out, res, casting="unsafe")
        return out
    if res.ndim == 0:
        return res[()]
    return res


def _run_reduce(a, axes, mask, op, acc, out, keepdims, kept_shape, num_threads, what):
    """One ``parfor_reduce_array`` call reducing ``a`` over ``mask`` with accumulator
    dtype ``acc`` (a numpy dtype). Returns the result array (``out`` itself when the
    library wrote into it)."""
    if not a.flags.aligned:
        raise _misaligned(a, what)
    shape, _ = _shapes(a, axes)
    keep = []
    x_desc = _describe(a, _CODE[a.dtype], keep)
    direct = (
        out is not None
        and out.dtype == acc
        and out.flags.aligned
        and not np.may_share_memory(out, a)
    )
    if direct:
        res = out
        drop = frozenset(axes) if keepdims else ()
    else:
        res = np.empty(shape, dtype=acc)
        drop = ()
    out_desc = _describe(res, _CODE[acc], keep, drop)
    _call(_reduce_array, x_desc, mask, op, options(num_threads), out_desc)
    return res


# --- sum, prod, nansum ---------------------------------------------------------------


# The hot path of small calls: a full reduction of a C-contiguous array goes through
# the 1-D entry points (equal to the N-d ones on the same data, parfor.h) with its
# result written into a preallocated one-element numpy array, which skips building
# descriptors and cdata per call (each ffi.new costs about as much as the call
# itself). Indexing that array gives the numpy scalar numpy returns.
#
# _FLAT: the dtypes whose 1-D result has the element type (every reducible dtype;
# bool is read as uint8 and its 0 or 1 lands in a bool array); _FLAT_SUM: those
# whose numpy sum/prod has the element type itself.
_FLAT = frozenset(_CODE)
_FLAT_SUM = frozenset((_F32, _F64, _I64, _U64))
# The NaN operators in the 1-D parfor_reduce once the header has them.
_HAVE_NAN_OPS = hasattr(Op, "NAN_SUM")


class _Scratch:
    """The result slots of one hot-path call: a one-element array (and the cdata
    pointing into it) per result dtype, the index of argmin/argmax, and prebuilt
    ``parfor_array`` descriptors for mean/var/std. A call takes a scratch from
    ``_free_scratch`` and puts it back when done, so that calls running at once
    (Python threads, the GIL released during the C call; a signal handler between
    the call and the read) never share one."""

    __slots__ = ("results", "index", "index_ptr", "x_descs", "count", "wide", "moments", "keep")

    def __init__(self):
        keep = []
        self.keep = keep
        self.results = {}
        for dt in _CODE:
            arr = np.empty(1, dt)
            self.results[dt] = (arr, ffi.from_buffer(arr))
        arr = np.empty(1, np.intp)
        self.index = arr
        self.index_ptr = ffi.from_buffer("size_t[]", arr)
        # x as a 1-D array of each dtype (data and length set per call).
        self.x_descs = {}
        for dt, code in _CODE.items():
            shape = ffi.new(_SIZES, 1)
            strides = ffi.new(_STRIDES, [dt.itemsize])
            desc = ffi.new(_array_type or _parfor_array_type(), {
                "data": ffi.NULL, "dtype": code, "ndim": 1, "shape": shape, "strides": strides,
            })
            keep += (shape, strides)
            self.x_descs[dt] = (desc, shape)
        # count, mean and m2 as 0-d arrays: count in uint64, mean/m2 per float type.
        self.count = self._scalar_desc(_U64, _U64_CODE)
        # The int64/uint64 accumulators of narrow integer and bool sums and products.
        self.wide = {acc: self._scalar_desc(acc, _CODE[acc]) for acc in (_I64, _U64)}
        # A bool count: written as uint64, read through an int64 view of the same
        # element (numpy's type for it; the count is below 2^63, so the bits agree).
        count_arr, count_desc = self.wide[_U64]
        self.wide[_BOOL] = (count_arr.view(_I64), count_desc)
        self.moments = {
            acc: (self._scalar_desc(acc, _CODE[acc]), self._scalar_desc(acc, _CODE[acc]))
            for acc in (_F32, _F64)
        }

    def flat(self, x, dt):
        """``x`` (C-contiguous) as a 1-D array of ``dt`` in this scratch's prebuilt
        descriptor: (the descriptor, the buffer cdata that holds ``x`` for the call)."""
        desc, length = self.x_descs[dt]
        buf = ffi.from_buffer(x)
        desc.data = buf
        length[0] = x.size
        return desc, buf

    def _scalar_desc(self, dt, code):
        arr = np.empty(1, dt)
        data = ffi.from_buffer(arr)
        desc = ffi.new(_array_type or _parfor_array_type(), {
            "data": data, "dtype": code, "ndim": 0, "shape": ffi.NULL, "strides": ffi.NULL,
        })
        self.keep.append(data)
        return arr, desc


_free_scratch = []


def _take_scratch():
    try:
        return _free_scratch.pop()
    except IndexError:
        return _Scratch()


def _flat_ok(x, table):
    """Whether ``x`` takes the hot path: an ndarray (not a subclass) of a dtype in
    ``table``, C-contiguous and aligned."""
    if type(x) is not np.ndarray or x.dtype not in table:
        return False
    flags = x.flags
    return flags.c_contiguous and flags.aligned


def _flat(x, op, num_threads, table=_FLAT):
    """The full reduction of a C-contiguous array through the 1-D ``parfor_reduce``,
    computed and returned in the element type (a numpy scalar); None when ``x`` does
    not take the hot path (see _flat_ok)."""
    if not _flat_ok(x, table):
        return None
    scratch = _take_scratch()
    arr, slot = scratch.results[x.dtype]
    status = _parfor_reduce(ffi.from_buffer(x), x.size, _CODE[x.dtype], op, options(num_threads), slot)
    r = arr[0]
    _free_scratch.append(scratch)
    if status:
        raise error_for(status)
    return r


def _default_sum_dtype(dt):
    """numpy's accumulator for add/multiply.reduce without dtype=: bool and integers
    narrower than 64 bits widen to int64 (signed, bool) or uint64 (unsigned)."""
    kind = dt.kind
    if kind == "b" or (kind == "i" and dt.itemsize < 8):
        return _I64
    if kind == "u" and dt.itemsize < 8:
        return _U64
    return dt


# _WIDE_SUM: input dtype -> (accumulator, numpy's result dtype) for the sums and
# products numpy widens without dtype= (bool and integers narrower than 64 bits): the
# C accumulator is uint64 for unsigned and bool input (bool goes to C as uint8), int64
# for signed, as _sum_like chooses.
_WIDE_SUM = {
    dt: (_U64 if dt.kind in "bu" else _I64, _default_sum_dtype(dt))
    for dt in _CODE
    if dt.kind in "biu" and dt.itemsize < 8
}


def _flat_sum(x, op, num_threads):
    """The hot path of sum, prod and nansum without axis, dtype, out or keepdims: the
    element type's own accumulator through _flat, or for the dtypes numpy widens
    (_WIDE_SUM) one ``parfor_reduce_array`` call on the prebuilt 1-D descriptor into
    a 0-d int64/uint64 slot, the call _sum_like makes with fresh descriptors. None
    when ``x`` takes neither."""
    r = _flat(x, op, num_threads, _FLAT_SUM)
    if r is not None or not _flat_ok(x, _WIDE_SUM):
        return r
    acc, _result = _WIDE_SUM[x.dtype]
    scratch = _take_scratch()
    x_desc, _buf = scratch.flat(x, x.dtype)
    # bool: the uint64 slot read as numpy's int64 (see _Scratch; converting the
    # scalar instead cost a fifth of the call).
    arr, out_desc = scratch.wide[_BOOL if x.dtype == _BOOL else acc]
    status = _reduce_array(x_desc, 1, op, options(num_threads), out_desc)
    r = arr[0]
    _free_scratch.append(scratch)
    if status:
        raise error_for(status)
    return r


def _sum_like(x, axis, dtype, out, keepdims, num_threads, op, name, what, np_fn, exact=False):
    a = _as_array(x, what)
    axes, mask = _axes(a, axis)
    shape, kept_shape = _shapes(a, axes)
    if out is not None:
        _check_out(out, shape, keepdims, kept_shape, name)
    in_dt = a.dtype
    if dtype is None:
        result = _default_sum_dtype(in_dt)
    else:
        result = np.dtype(dtype)
    kind = result.kind
    if exact:
        if in_dt.kind != "f":
            raise TypeError(f"{what}: exact=True sums float32 or float64, not {in_dt}")
        op = _SUM_EXACT
    # The accumulator the library computes in, and what the result is cast to.
    if kind == "b" and op == _NAN_SUM and in_dt.kind == "f":
        # numpy drops the NaNs before or-ing; LOGICAL_OR would count them as true.
        return np_fn(a, axis=axis, dtype=dtype, out=out, keepdims=keepdims)
    if kind == "b":
        # numpy adds bools as logical or and multiplies them as logical and.
        op = _LOGICAL_OR if op in (_SUM, _NAN_SUM) else _LOGICAL_AND
        acc = _U8
    elif kind in "iu":
        if in_dt.kind == "f":
            # numpy casts every element to the integer type first (truncating): so
            # does this, with one copy, as no C accumulator reads floats as integers.
            with np.errstate(all="ignore"):
                a = a.astype(result)
            in_dt = result
        if in_dt.kind == "b":
            # bool goes to C as uint8, whose wide accumulator is uint64; the count
            # is then cast (exactly, or modulo 2^k as numpy's narrower types wrap).
            acc = _U64
        else:
            # Integer sums and products modulo 2^64, cast after: the same residue as
            # numpy's accumulation in any integer type of 2^k, k <= 64.
            acc = _I64 if in_dt.kind == "i" else _U64
            if result == in_dt:
                acc = in_dt
    elif kind in "fc" or kind == "V":
        acc = in_dt if (result == in_dt and in_dt.kind == "f") else _F64
    else:
        # object, datetime, strings: numpy's own semantics (Python ints that do not
        # wrap, ...), which no C accumulator has.
        return np_fn(a, axis=axis, dtype=dtype, out=out, keepdims=keepdims)
    res = _run_reduce(a, axes, mask, op, acc, out, keepdims, kept_shape, num_threads, what)
    if kind == "b":
        res = res.view(_BOOL)
    return _finish(res, axes, keepdims, kept_shape, out, result)


@_public
def sum(  # noqa: A001
    x: ArrayLike,
    axis: Axis = None,
    dtype: DTypeLike = None,
    out: Optional[np.ndarray] = None,
    keepdims: bool = False,
    *,
    num_threads: Optional[int] = None,
    exact: bool = False,
) -> Result:
    """Sum of array elements over the given axes, as :func:`numpy.sum`.

    Integers accumulate as numpy's do (bool and int8..int32 in int64, uint8..uint32
    in uint64, wrapping), floats in a fixed tree whose result does not depend on
    strides, team size or schedule. ``exact=True`` (float32/float64 input) gives the
    correctly rounded sum of the exact values of each slice, as ``math.fsum``.
    ``num_threads`` sets the team size of this call (default: the runtime's).
    """
    if axis is None and dtype is None and out is None and not keepdims and not exact:
        r = _flat_sum(x, _SUM, num_threads)
        if r is not None:
            return r
    return _sum_like(
        x, axis, dtype, out, keepdims, num_threads, _SUM, "add", "parfor.sum() argument x", np.sum, exact
    )


@_public
def prod(
    x: ArrayLike,
    axis: Axis = None,
    dtype: DTypeLike = None,
    out: Optional[np.ndarray] = None,
    keepdims: bool = False,
    *,
    num_threads: Optional[int] = None,
) -> Result:
    """Product of array elements over the given axes, as :func:`numpy.prod`."""
    if axis is None and dtype is None and out is None and not keepdims:
        r = _flat_sum(x, _PROD, num_threads)
        if r is not None:
            return r
    return _sum_like(
        x, axis, dtype, out, keepdims, num_threads, _PROD, "multiply", "parfor.prod() argument x", np.prod
    )


@_public
def nansum(
    x: ArrayLike,
    axis: Axis = None,
    dtype: DTypeLike = None,
    out: Optional[np.ndarray] = None,
    keepdims: bool = False,
    *,
    num_threads: Optional[int] = None,
) -> Result:
    """Sum treating NaN as zero, as :func:`numpy.nansum` (all-NaN slices give 0)."""
    if _HAVE_NAN_OPS and axis is None and dtype is None and out is None and not keepdims:
        r = _flat_sum(x, _NAN_SUM, num_threads)
        if r is not None:
            return r
    return _sum_like(
        x, axis, dtype, out, keepdims, num_threads, _NAN_SUM, "add", "parfor.nansum() argument x", np.nansum
    )


# --- min, max, nanmin, nanmax, any, all ------------------------------------------------


def _extreme(x, axis, out, keepdims, num_threads, op, name, what, nan_warning=False):
    if (
        axis is None and out is None and not keepdims
        and (_HAVE_NAN_OPS or not nan_warning)
        and type(x) is np.ndarray and x.size
    ):
        r = _flat(x, op, num_threads)
        if r is not None:
            if nan_warning and r != r:
                warnings.warn("All-NaN slice encountered", RuntimeWarning, stacklevel=4)
            return r
    a = _as_array(x, what)
    axes, mask = _axes(a, axis)
    shape, kept_shape = _shapes(a, axes)
    if out is not None:
        _check_out(out, shape, keepdims, kept_shape, name)
    if builtins.any(a.shape[k] == 0 for k in axes):
        raise ValueError(f"zero-size array to reduction operation {name} which has no identity")
    if a.dtype.kind != "f" and op in (_NAN_MIN, _NAN_MAX):
        op = _MIN if op == _NAN_MIN else _MAX
    acc = a.dtype
    res = _run_reduce(
        a, axes, mask, op, _U8 if acc == _BOOL else acc, out if acc != _BOOL else None,
        keepdims, kept_shape, num_threads, what,
    )
    if acc == _BOOL:
        res = res.view(_BOOL)
    if nan_warning and acc.kind == "f" and np.isnan(res).any():
        warnings.warn("All-NaN slice encountered", RuntimeWarning, stacklevel=4)
    return _finish(res, axes, keepdims, kept_shape, out, None)


@_public
def min(  # noqa: A001
    x: ArrayLike,
    axis: Axis = None,
    out: Optional[np.ndarray] = None,
    keepdims: bool = False,
    *,
    num_threads: Optional[int] = None,
) -> Result:
    """Minimum over the given axes, as :func:`numpy.min` (NaN propagates; an empty
    slice is ValueError)."""
    return _extreme(x, axis, out, keepdims, num_threads, _MIN, "minimum", "parfor.min() argument x")


@_public
def max(  # noqa: A001
    x: ArrayLike,
    axis: Axis = None,
    out: Optional[np.ndarray] = None,
    keepdims: bool = False,
    *,
    num_threads: Optional[int] = None,
) -> Result:
    """Maximum over the given axes, as :func:`numpy.max`."""
    return _extreme(x, axis, out, keepdims, num_threads, _MAX, "maximum", "parfor.max() argument x")


@_public
def nanmin(
    x: ArrayLike,
    axis: Axis = None,
    out: Optional[np.ndarray] = None,
    keepdims: bool = False,
    *,
    num_threads: Optional[int] = None,
) -> Result:
    """Minimum ignoring NaN, as :func:`numpy.nanmin`: an all-NaN slice gives NaN
    with a RuntimeWarning."""
    return _extreme(
        x, axis, out, keepdims, num_threads, _NAN_MIN, "fmin", "parfor.nanmin() argument x", True
    )


@_public
def nanmax(
    x: ArrayLike,
    axis: Axis = None,
    out: Optional[np.ndarray] = None,
    keepdims: bool = False,
    *,
    num_threads: Optional[int] = None,
) -> Result:
    """Maximum ignoring NaN, as :func:`numpy.nanmax`."""
    return _extreme(
        x, axis, out, keepdims, num_threads, _NAN_MAX, "fmax", "parfor.nanmax() argument x", True
    )


def _logical(x, axis, out, keepdims, num_threads, op, what):
    if axis is None and out is None and not keepdims:
        r = _flat(x, op, num_threads)
        if r is not None:
            # 1 or 0 in the element type (a bool array's is already np.bool_).
            return r if x.dtype == _BOOL else (np.True_ if r else np.False_)
    a = _as_array(x, what)
    axes, mask = _axes(a, axis)
    shape, kept_shape = _shapes(a, axes)
    if out is not None:
        _check_out(out, shape, keepdims, kept_shape, "logical_or" if op == _LOGICAL_OR else "logical_and")
    res = _run_reduce(a, axes, mask, op, _U8, None, keepdims, kept_shape, num_threads, what)
    return _finish(res.view(_BOOL), axes, keepdims, kept_shape, out, None)


@_public
def any(  # noqa: A001
    x: ArrayLike,
    axis: Axis = None,
    out: Optional[np.ndarray] = None,
    keepdims: bool = False,
    *,
    num_threads: Optional[int] = None,
) -> Result:
    """Whether any element over the given axes is nonzero (NaN counts), as
    :func:`numpy.any`."""
    return _logical(x, axis, out, keepdims, num_threads, _LOGICAL_OR, "parfor.any() argument x")


@_public
def all(  # noqa: A001
    x: ArrayLike,
    axis: Axis = None,
    out: Optional[np.ndarray] = None,
    keepdims: bool = False,
    *,
    num_threads: Optional[int] = None,
) -> Result:
    """Whether every element over the given axes is nonzero, as :func:`numpy.all`."""
    return _logical(x, axis, out, keepdims, num_threads, _LOGICAL_AND, "parfor.all() argument x")


@_public
def count_nonzero(
    x: ArrayLike, axis: Axis = None, *, keepdims: bool = False, num_threads: Optional[int] = None
) -> Union[int, np.ndarray]:
    """Number of nonzero elements over the given axes, as
    :func:`numpy.count_nonzero`: a Python int for ``axis=None`` without keepdims,
    else an int64 (intp) array.

    A bool array is summed in place; any other dtype is first compared with zero by
    numpy (one bool temporary), as no C operator counts."""
    a = _as_array(x, "parfor.count_nonzero() argument x")
    if a.dtype != _BOOL:
        a = np.asarray(np.not_equal(a, 0))
    if axis is None and not keepdims and _flat_ok(a, _CODE):
        # The hot path: the bools as a 1-D uint8 array summed into uint64.
        scratch = _take_scratch()
        x_desc, _buf = scratch.flat(a, _BOOL)
        count_arr, count_desc = scratch.count
        status = _reduce_array(x_desc, ALL_AXES, _SUM, options(num_threads), count_desc)
        count = int(count_arr[0])
        _free_scratch.append(scratch)
        if status:
            raise error_for(status)
        return count
    axes, mask = _axes(a, axis)
    shape, kept_shape = _shapes(a, axes)
    res = _run_reduce(
        a, axes, mask, _SUM, _U64, None, keepdims, kept_shape, num_threads,
        "parfor.count_nonzero() argument x",
    )
    res = res.astype(np.intp)
    if keepdims:
        res = res.reshape(kept_shape)
    elif axis is None:
        return int(res)
    return res if res.ndim else res[()]


# --- argmin, argmax --------------------------------------------------------------------


def _arg(x, axis, out, keepdims, num_threads, op, name, what):
    if (
        axis is None and out is None and not keepdims and op in _FLAT_ARG
        and type(x) is np.ndarray and x.size
    ):
        # The hot path: the 1-D parfor_argmin/argmax of a contiguous array, whose
        # memory order is the logical C order (same index, same first NaN).
        if _flat_ok(x, _CODE):
            scratch = _take_scratch()
            status = _FLAT_ARG[op](
                ffi.from_buffer(x), x.size, _CODE[x.dtype], options(num_threads), scratch.index_ptr
            )
            r = scratch.index[0]
            _free_scratch.append(scratch)
            if status:
                raise error_for(status)
            return r
    a = _as_array(x, what)
    if a.ndim > MAX_DIMS:
        raise ValueError(f"parfor reduces arrays of at most {MAX_DIMS} dimensions, not {a.ndim}")
    if axis is not None and a.ndim == 0:
        # numpy's argmin reads a 0-d array as 1-d here: axis 0 or -1, index 0.
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"'{type(axis).__name__}' object cannot be interpreted as an integer")
        normalize_axis_index(int(axis), 1)
        axis = None
    if axis is None:
        c_axis = ALL_AXES
        axes = tuple(range(a.ndim))
        if a.size == 0:
            raise ValueError(f"attempt to get {name} of an empty sequence")
    else:
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"'{type(axis).__name__}' object cannot be interpreted as an integer")
        c_axis = normalize_axis_index(int(axis), a.ndim)
        axes = (c_axis,)
        if a.shape[c_axis] == 0:
            raise ValueError(f"attempt to get {name} of an empty sequence")
    shape, kept_shape = _shapes(a, axes)
    if axis is None:
        shape = ()
    if out is not None:
        want = kept_shape if keepdims else shape
        if not isinstance(out, np.ndarray):
            raise TypeError(f"output must be an array (got {type(out).__name__})")
        if out.shape != tuple(want) or out.dtype != np.intp:
            raise ValueError("output array does not match result of np.argmax.")
    if a.dtype.kind != "f" and op in (_NAN_MIN, _NAN_MAX):
        op = _MIN if op == _NAN_MIN else _MAX
    if not a.flags.aligned:
        raise _misaligned(a, what)
    keep = []
    x_desc = _describe(a, _CODE[a.dtype], keep)
    res = np.empty(shape, dtype=_I64)
    out_desc = _describe(res, _I64_CODE, keep)
    code = _argreduce_array(x_desc, c_axis, op, options(num_threads), out_desc)
    if code:
        err = error_for(code)
        if op in (_NAN_MIN, _NAN_MAX) and isinstance(err, _errors.EmptyError):
            raise ValueError("All-NaN slice encountered") from err
        raise err
    if axis is None and keepdims:
        res = res.reshape((1,) * a.ndim)
    elif keepdims:
        res = res.reshape(kept_shape)
    res = res.astype(np.intp, copy=False)
    if out is not None:
        np.copyto(out, res)
        return out
    return res[()] if res.ndim == 0 else res


@_public
def argmin(
    x: ArrayLike,
    axis: Optional[int] = None,
    out: Optional[np.ndarray] = None,
    *,
    keepdims: bool = False,
    num_threads: Optional[int] = None,
) -> Result:
    """Index of the first minimum (flat, in C order, for ``axis=None``), as
    :func:`numpy.argmin`; a NaN is the minimum."""
    return _arg(x, axis, out, keepdims, num_threads, _MIN, "argmin", "parfor.argmin() argument x")


@_public
def argmax(
    x: ArrayLike,
    axis: Optional[int] = None,
    out: Optional[np.ndarray] = None,
    *,
    keepdims: bool = False,
    num_threads: Optional[int] = None,
) -> Result:
    """Index of the first maximum, as :func:`numpy.argmax`."""
    return _arg(x, axis, out, keepdims, num_threads, _MAX, "argmax", "parfor.argmax() argument x")


@_public
def nanargmin(
    x: ArrayLike,
    axis: Optional[int] = None,
    out: Optional[np.ndarray] = None,
    *,
    keepdims: bool = False,
    num_threads: Optional[int] = None,
) -> Result:
    """Index of the first minimum ignoring NaN, as :func:`numpy.nanargmin`: an
    all-NaN slice is ValueError."""
    return _arg(
        x, axis, out, keepdims, num_threads, _NAN_MIN, "argmin", "parfor.nanargmin() argument x"
    )


@_public
def nanargmax(
    x: ArrayLike,
    axis: Optional[int] = None,
    out: Optional[np.ndarray] = None,
    *,
    keepdims: bool = False,
    num_threads: Optional[int] = None,
) -> Result:
    """Index of the first maximum ignoring NaN, as :func:`numpy.nanargmax`."""
    return _arg(
        x, axis, out, keepdims, num_threads, _NAN_MAX, "argmax", "parfor.nanargmax() argument x"
    )


# --- mean, var, std and their nan- forms -------------------------------------------------


def _moments(x, axis, dtype, out, ddof, keepdims, num_threads, skip_nan, kind, what):
    """mean (kind "mean"), var or std through one ``parfor_moments_array`` call."""
    if (
        axis is None and dtype is None and out is None and not keepdims
        and type(ddof) is int and _flat_ok(x, _CODE)
    ):
        return _moments_flat(x, ddof, num_threads, skip_nan and x.dtype.kind == "f", kind)
    a = _as_array(x, what)
    if skip_nan and a.dtype.kind != "f":
        skip_nan = False  # numpy: the nan- forms of integer arrays are the plain ones
    axes, mask = _axes(a, axis)
    shape, kept_shape = _shapes(a, axes)
    if out is not None:
        _check_out(out, shape, keepdims, kept_shape, "add")
    if dtype is None:
        result = a.dtype if a.dtype.kind == "f" else _F64
    else:
        result = np.dtype(dtype)
    if result.kind != "f":
        # An integer or complex dtype= (numpy computes mean/var in it, truncating
        # as it goes): numpy's own semantics, which no C entry point has.
        np_fn = {
            (False, "mean"): np.mean, (False, "var"): np.var, (False, "std"): np.std,
            (True, "mean"): np.nanmean, (True, "var"): np.nanvar, (True, "std"): np.nanstd,
        }[(skip_nan, kind)]
        extra = {} if kind == "mean" else {"ddof": ddof}
        return np_fn(a, axis=axis, dtype=dtype, out=out, keepdims=keepdims, **extra)
    acc = _F32 if result == _F32 else _F64
    if not a.flags.aligned:
        raise _misaligned(a, what)
    keep = []
    x_desc = _describe(a, _CODE[a.dtype], keep)
    count = np.empty(shape, dtype=_U64)
    mean_ = np.empty(shape, dtype=acc)
    count_desc = _describe(count, _U64_CODE, keep)
    mean_desc = _describe(mean_, _CODE[acc], keep)
    if kind == "mean":
        m2_desc = ffi.NULL
        m2 = None
    else:
        m2 = np.empty(shape, dtype=acc)
        m2_desc = _describe(m2, _CODE[acc], keep)
    flags = MOMENTS_SKIP_NAN if skip_nan else 0
    _call(_moments_array, x_desc, mask, flags, options(num_threads), count_desc, mean_desc, m2_desc)
    # numpy's warnings: the plain forms look at the number of reduced items (so an
    # empty output may still warn), the nan- forms at each output's count.
    if skip_nan:
        counts = count
    else:
        counts = np.asarray(math.prod(a.shape[k] for k in axes))
    if kind == "mean":
        if (counts == 0).any():
            warnings.warn("Mean of empty slice", RuntimeWarning, stacklevel=4)
        res = mean_
    else:
        if (counts.astype(np.int64) - ddof <= 0).any():
            warnings.warn("Degrees of freedom <= 0 for slice.", RuntimeWarning, stacklevel=4)
        rcount = count.astype(np.int64) - ddof
        bad = rcount <= 0
        rcount = np.maximum(rcount, 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            res = (m2 / rcount).astype(acc, copy=False)
            if skip_nan and bad.any():
                # numpy's nanvar gives NaN where n - ddof <= 0 (var: m2 / 0, inf).
                res = np.where(bad, np.nan, res).astype(acc, copy=False)
            if kind == "std":
                res = np.sqrt(res)
    return _finish(np.asarray(res), axes, keepdims, kept_shape, out, result)


def _moments_flat(x, ddof, num_threads, skip_nan, kind):
    """The full mean/var/std of a C-contiguous array: x described as 1-D in a
    prebuilt descriptor (the same logical order, so the same bits as the N-d call,
    parfor.h), count/mean/m2 written into the scratch's one-element arrays, and the
    result finished on scalars exactly as _moments finishes its arrays."""
    acc = _F32 if x.dtype == _F32 else _F64
    scratch = _take_scratch()
    x_desc, _buf = scratch.flat(x, x.dtype)
    count_arr, count_desc = scratch.count
    (mean_arr, mean_desc), (m2_arr, m2_desc) = scratch.moments[acc]
    status = _moments_array(
        x_desc, ALL_AXES, MOMENTS_SKIP_NAN if skip_nan else 0, options(num_threads),
        count_desc, mean_desc, ffi.NULL if kind == "mean" else m2_desc,
    )
    count = int(count_arr[0])
    mean_ = mean_arr[0]
    m2 = m2_arr[0]
    _free_scratch.append(scratch)
    if status:
        raise error_for(status)
    # numpy's warnings: the plain forms look at the number of elements, the nan- forms
    # at the count of non-NaN ones.
    n = count if skip_nan else x.size
    if kind == "mean":
        if n == 0:
            warnings.warn("Mean of empty slice", RuntimeWarning, stacklevel=5)
        return mean_
    rcount = count - ddof
    if n - ddof <= 0:
        warnings.warn("Degrees of freedom <= 0 for slice.", RuntimeWarning, stacklevel=5)
    m2 = float(m2)
    if rcount > 0:
        # float / int: the int converted to double (correctly rounded), one IEEE
        # division: numpy's float64 division of m2 by the int64 count.
        v = m2 / rcount
    elif skip_nan:
        v = math.nan  # numpy's nanvar: NaN where n - ddof <= 0
    else:
        v = math.nan if m2 == 0 or m2 != m2 else math.inf  # numpy's m2 / 0
    if kind == "std":
        # For float32 the double square root of the float32 variance, rounded once
        # to float32, is the correctly rounded float32 square root (53 >= 2 * 24 + 2
        # bits: the double rounding is innocuous), i.e. numpy's np.sqrt.
        v = math.sqrt(float(acc.type(v)))
    return acc.type(v)


@_public
def mean(
    x: ArrayLike,
    axis: Axis = None,
    dtype: DTypeLike = None,
    out: Optional[np.ndarray] = None,
    keepdims: bool = False,
    *,
    num_threads: Optional[int] = None,
) -> Result:
    """Arithmetic mean over the given axes, as :func:`numpy.mean` (float64 for
    integer input, the input's float type otherwise; an empty slice gives NaN with a
    RuntimeWarning)."""
    return _moments(x, axis, dtype, out, 0, keepdims, num_threads, False, "mean", "parfor.mean() argument x")


@_public
def var(
    x: ArrayLike,
    axis: Axis = None,
    dtype: DTypeLike = None,
    out: Optional[np.ndarray] = None,
    ddof: int = 0,
    keepdims: bool = False,
    *,
    num_threads: Optional[int] = None,
) -> Result:
    """Variance (centred second moment over ``n - ddof``), as :func:`numpy.var`,
    from one pass of the library."""
    return _moments(x, axis, dtype, out, ddof, keepdims, num_threads, False, "var", "parfor.var() argument x")


@_public
def std(
    x: ArrayLike,
    axis: Axis = None,
    dtype: DTypeLike = None,
    out: Optional[np.ndarray] = None,
    ddof: int = 0,
    keepdims: bool = False,
    *,
    num_threads: Optional[int] = None,
) -> Result:
    """Standard deviation, as :func:`numpy.std`."""
    return _moments(x, axis, dtype, out, ddof, keepdims, num_threads, False, "std", "parfor.std() argument x")


@_public
def nanmean(
    x: ArrayLike,
    axis: Axis = None,
    dtype: DTypeLike = None,
    out: Optional[np.ndarray] = None,
    keepdims: bool = False,
    *,
    num_threads: Optional[int] = None,
) -> Result:
    """Mean ignoring NaN, as :func:`numpy.nanmean` (an all-NaN slice gives NaN with a
    RuntimeWarning)."""
    return _moments(x, axis, dtype, out, 0, keepdims, num_threads, True, "mean", "parfor.nanmean() argument x")


@_public
def nanvar(
    x: ArrayLike,
    axis: Axis = None,
    dtype: DTypeLike = None,
    out: Optional[np.ndarray] = None,
    ddof: int = 0,
    keepdims: bool = False,
    *,
    num_threads: Optional[int] = None,
) -> Result:
    """Variance ignoring NaN, as :func:`numpy.nanvar`."""
    return _moments(x, axis, dtype, out, ddof, keepdims, num_threads, True, "var", "parfor.nanvar() argument x")


@_public
def nanstd(
    x: ArrayLike,
    axis: Axis = None,
    dtype: DTypeLike = None,
    out: Optional[np.ndarray] = None,
    ddof: int = 0,
    keepdims: bool = False,
    *,
    num_threads: Optional[int] = None,
) -> Result:
    """Standard deviation ignoring NaN, as :func:`numpy.nanstd`."""
    return _moments(x, axis, dtype, out, ddof, keepdims, num_threads, True, "std", "parfor.nanstd() argument x")
