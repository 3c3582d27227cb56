"""Sorting with numpy's semantics: :func:`sort` (a sorted copy, as ``numpy.sort``),
:func:`sort_inplace` (as ``ndarray.sort``) and :func:`argsort` (as
``numpy.argsort``), along ``axis`` (default -1; None flattens).

Floats sort in numpy's order: NaN last, -0.0 equal to 0.0. The library's typed sort
is a parallel radix sort and always stable, so ``stable=True`` costs nothing and
argsort's ties are broken by position, as numpy's ``kind="stable"``. Each 1-D lane
is one C call with the GIL released; bool arrays sort as uint8. Element types the
library does not sort (float16, complex, object, strings, ...) are handed to numpy.
"""


from ._errors import error_for
from ._ffi import SORT_STABLE, ffi, lib
from ._scan import _DTYPES, _numpy, _row_pointers

__all__ = ["sort", "sort_inplace", "argsort"]

_parfor_sort = lib.parfor_sort
_parfor_argsort = lib.parfor_argsort


def _lanes(np, a, axis):
    """(array with the sorted axis last, the axis) for ``axis`` (None flattens)."""
    if axis is None:
        return a.reshape(-1), None
    axis = np.lib.array_utils.normalize_axis_index(axis, a.ndim)
    return (a if axis == a.ndim - 1 else np.moveaxis(a, axis, -1)), axis


# dtype -> (parfor dtype, the view dtype that sorts like it) or None.
_SORTABLE = {}


def _sortable(np, dtype):
    """The parfor dtype and the view dtype that sorts like ``dtype``, or None."""
    try:
        return _SORTABLE[dtype]
    except KeyError:
        pass
    if dtype == np.bool_:
        kinds = int(_DTYPES["uint8"]), np.dtype(np.uint8)
    elif not dtype.isnative or dtype.name not in _DTYPES:
        kinds = None
    else:
        kinds = int(_DTYPES[dtype.name]), dtype
    if len(_SORTABLE) < 256:
        _SORTABLE[dtype] = kinds
    return kinds


def _sort_rows(rows, pdtype, flags):
    count, n = rows.shape
    if n < 2 or count == 0:
        return
    buf = ffi.from_buffer(rows, require_writable=True)
    for p in _row_pointers(buf, count, n * rows.itemsize):
        code = _parfor_sort(p, n, pdtype, flags, ffi.NULL)
        if code:
            raise error_for(code)


def sort(a, axis=-1):
    """A sorted copy of ``a`` along ``axis``, equal to ``numpy.sort(a, axis)``."""
    np = _numpy()
    a = np.asarray(a)
    if a.ndim == 0 and axis is not None:
        return np.sort(a, axis=axis)
    kinds = _sortable(np, a.dtype)
    if kinds is None:
        return np.sort(a, axis=axis)
    pdtype, view = kinds
    work, axis = _lanes(np, a, axis)
    res = np.array(work, order="C", copy=True)
    lanes = res.view(view)
    _sort_rows(lanes.reshape(-1, lanes.shape[-1]) if lanes.size else lanes.reshape(0, 0),
               pdtype, SORT_STABLE)
    return res if axis is None or axis == a.ndim - 1 else np.moveaxis(res, -1, axis)


def sort_inplace(a, axis=-1):
    """Sorts the numpy array ``a`` in place along ``axis``, as ``a.sort(axis)``.
    A C-contiguous array sorted along its last axis is sorted where it lies."""
    np = _numpy()
    if not isinstance(a, np.ndarray):
        raise TypeError(f"parfor.sort_inplace(): a must be a numpy array, not {type(a).__name__}")
    if not a.flags.writeable:
        raise ValueError("parfor.sort_inplace(): the array is read-only")
    kinds = _sortable(np, a.dtype)
    if a.ndim == 0 or kinds is None:
        a.sort(axis=axis)
        return None
    pdtype, view = kinds
    last = np.lib.array_utils.normalize_axis_index(axis, a.ndim) == a.ndim - 1
    if last and a.flags.c_contiguous:
        lanes = a.view(view)
        _sort_rows(lanes.reshape(-1, lanes.shape[-1]) if lanes.size else lanes.reshape(0, 0),
                   pdtype, SORT_STABLE)
        return None
    a[...] = sort(a, axis=axis)
    return None


def argsort(a, axis=-1, stable=False):
    """Indices that sort ``a`` along ``axis``, as ``numpy.argsort(a, axis)``; ties
    by position (the sort is stable whatever ``stable`` says), so the result equals
    ``numpy.argsort(a, axis, stable=True)``."""
    np = _numpy()
    a = np.asarray(a)
    kinds = _sortable(np, a.dtype)
    if a.ndim == 0 or kinds is None:
        return np.argsort(a, axis=axis, stable=bool(stable) or None)
    pdtype, view = kinds
    work, axis_n = _lanes(np, a, axis)
    src = np.ascontiguousarray(work).view(view)
    n = src.shape[-1]
    rows = src.reshape(-1, n) if src.size else src.reshape(0, n)
    out = np.empty(rows.shape, dtype=np.uintp)
    if n and rows.shape[0]:
        ins = _row_pointers(ffi.from_buffer(rows), rows.shape[0], n * src.itemsize)
        outs = _row_pointers(ffi.from_buffer("size_t[]", out, require_writable=True), rows.shape[0], n)
        for p_in, p_out in zip(ins, outs):
            code = _parfor_argsort(p_in, n, pdtype, SORT_STABLE, ffi.NULL, p_out)
            if code:
                raise error_for(code)
    res = out.view(np.intp).reshape(work.shape)
    return res if axis_n is None or axis_n == a.ndim - 1 else np.moveaxis(res, -1, axis_n)
