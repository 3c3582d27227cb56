"""A numpy model of the C N-d entry points (parfor_reduce_array,
parfor_argreduce_array, parfor_moments_array) with the contract of issue 12, used by
the semantics tests only while the loaded library predates those functions.

It reads the ``parfor_array`` descriptors the package builds (data pointer, byte
strides, shape) back into numpy views of the same memory and computes each result
with numpy in the accumulator type the call names, so that the Python layer (dtype
rules, axes, keepdims, out, warnings, errors) is checked now; once the library has
the functions, :func:`install` does nothing and the same tests run against it.
"""

import ctypes

import numpy as np

from _support import parfor
from parfor import _ffi, _reductions

ffi = _ffi.ffi

DECLARATIONS = """
typedef struct parfor_array {
  void *data;
  parfor_dtype dtype;
  size_t ndim;
  const size_t *shape;
  const ptrdiff_t *strides;
} parfor_array;
"""

_NP = {
    int(parfor.DType.F32): np.float32,
    int(parfor.DType.F64): np.float64,
    int(parfor.DType.I8): np.int8,
    int(parfor.DType.I16): np.int16,
    int(parfor.DType.I32): np.int32,
    int(parfor.DType.I64): np.int64,
    int(parfor.DType.U8): np.uint8,
    int(parfor.DType.U16): np.uint16,
    int(parfor.DType.U32): np.uint32,
    int(parfor.DType.U64): np.uint64,
}
class Op:
    """Operator codes (the N-d ones by the issue's numbers if the header lacks them)."""

    SUM, PROD, MIN, MAX = int(parfor.Op.SUM), int(parfor.Op.PROD), int(parfor.Op.MIN), int(parfor.Op.MAX)
    LOGICAL_AND, LOGICAL_OR = int(parfor.Op.LOGICAL_AND), int(parfor.Op.LOGICAL_OR)
    SUM_EXACT = int(parfor.Op.SUM_EXACT)
    NAN_SUM, NAN_MIN, NAN_MAX = _reductions._NAN_SUM, _reductions._NAN_MIN, _reductions._NAN_MAX


_OK, _EMPTY = 0, int(parfor.Status.PARFOR_ERR_EMPTY)
_ALL = 2**64 - 1


def view(desc):
    """The numpy view of the memory a ``parfor_array *`` describes."""
    nd = desc.ndim
    shape = [desc.shape[k] for k in range(nd)]
    strides = [desc.strides[k] for k in range(nd)]
    dt = np.dtype(_NP[desc.dtype])
    if 0 in shape:
        return np.empty(shape, dt)
    addr = int(ffi.cast("uintptr_t", desc.data))
    lo = addr + sum(min(0, (n - 1) * s) for n, s in zip(shape, strides))
    hi = addr + sum(max(0, (n - 1) * s) for n, s in zip(shape, strides)) + dt.itemsize
    buf = (ctypes.c_char * (hi - lo)).from_address(lo)
    return np.ndarray(shape, dt, buffer=buf, offset=addr - lo, strides=strides)


def _axes(mask, ndim):
    return tuple(k for k in range(ndim) if mask >> k & 1)


_INVALID = int(parfor.Status.PARFOR_ERR_INVALID_ARGUMENT)


def _contract_error(what):
    """A call the C contract refuses: the model fails the test at once, so that the
    package's plumbing cannot rely on anything the library will not accept."""
    raise AssertionError(f"the package made a call the C contract refuses: {what}")


def _check_shapes(xv, axes, ov, mask):
    if mask >> xv.ndim and mask != _ALL:
        _contract_error(f"axes mask {mask:#x} names an axis >= ndim {xv.ndim}")
    want = tuple(n for k, n in enumerate(xv.shape) if k not in axes)
    if ov.shape != want:
        _contract_error(f"out shape {ov.shape}, expected {want}")
    if np.shares_memory(xv, ov):
        _contract_error("out overlaps x")


def _accumulator_allowed(op, x_dtype, acc):
    """issue 12: SUM, PROD, NAN_SUM, SUM_EXACT: the input's type, int64 for signed,
    uint64 for unsigned input, float64 for any; others the input's type (LOGICAL_*
    also uint8)."""
    if op in (Op.SUM, Op.PROD, Op.NAN_SUM, Op.SUM_EXACT):
        if op == Op.SUM_EXACT and x_dtype.kind != "f":
            return False
        return (
            acc == x_dtype
            or acc == np.float64
            or (acc == np.int64 and x_dtype.kind == "i")
            or (acc == np.uint64 and x_dtype.kind == "u")
        )
    if op in (Op.LOGICAL_AND, Op.LOGICAL_OR):
        return acc == x_dtype or acc == np.uint8
    return acc == x_dtype


def _bad_options(opts):
    """The library's options check (parfor.h: num_threads at most
    PARFOR_MAX_THREADS)."""
    return opts != ffi.NULL and opts.num_threads > parfor.MAX_THREADS


def reduce_array(x, mask, op, _opts, out):
    if _bad_options(_opts):
        return _INVALID
    xv, ov = view(x), view(out)
    axes = _axes(mask, xv.ndim)
    acc = ov.dtype
    _check_shapes(xv, axes, ov, mask)
    if not _accumulator_allowed(op, xv.dtype, acc):
        _contract_error(f"op {op} with input {xv.dtype} and accumulator {acc}")
    if op in (Op.MIN, Op.MAX, Op.NAN_MIN, Op.NAN_MAX) and any(xv.shape[k] == 0 for k in axes):
        return _EMPTY
    with np.errstate(all="ignore"):
        if op == Op.SUM_EXACT:
            # The library's own exact sum of each slice, copied contiguous.
            moved = np.moveaxis(xv, axes, tuple(range(xv.ndim - len(axes), xv.ndim)))
            rows = moved.reshape(moved.shape[: xv.ndim - len(axes)] + (-1,)).astype(acc)
            r = np.empty(rows.shape[:-1], acc)
            for idx in np.ndindex(r.shape):
                r[idx] = parfor.reduce(np.ascontiguousarray(rows[idx]), "sum_exact")
        elif op in (Op.SUM, Op.PROD, Op.NAN_SUM):
            # float32 accumulates in float64 lanes and is rounded once (the C contract).
            lanes = np.dtype(np.float64) if acc == np.float32 else acc
            v = xv.astype(lanes)
            if op == Op.NAN_SUM and acc.kind == "f":
                v = np.where(np.isnan(v), 0, v)
            r = (np.multiply if op == Op.PROD else np.add).reduce(v, axis=axes, dtype=lanes)
        elif op in (Op.MIN, Op.MAX):
            r = (np.minimum if op == Op.MIN else np.maximum).reduce(xv, axis=axes)
        elif op in (Op.NAN_MIN, Op.NAN_MAX):
            r = (np.fmin if op == Op.NAN_MIN else np.fmax).reduce(xv, axis=axes)
        elif op in (Op.LOGICAL_OR, Op.LOGICAL_AND):
            r = (np.logical_or if op == Op.LOGICAL_OR else np.logical_and).reduce(xv != 0, axis=axes)
        else:
            raise AssertionError(f"the model has no op {op}")
        ov[...] = np.asarray(r).astype(acc)
    return _OK


def argreduce_array(x, axis, op, _opts, out):
    if _bad_options(_opts):
        return _INVALID
    xv, ov = view(x), view(out)
    if ov.dtype not in (np.int64, np.uint64):
        _contract_error(f"argreduce out dtype {ov.dtype}")
    if axis == _ALL:
        if ov.ndim != 0:
            _contract_error("a flat argreduce writes a 0-d out")
    else:
        _check_shapes(xv, (axis,), ov, 1 << axis)
    fn = {Op.MIN: np.argmin, Op.MAX: np.argmax, Op.NAN_MIN: np.nanargmin, Op.NAN_MAX: np.nanargmax}[op]
    try:
        r = fn(xv) if axis == _ALL else fn(xv, axis=axis)
    except ValueError:
        return _EMPTY
    ov[...] = r
    return _OK


def moments_array(x, mask, flags, _opts, count, mean, m2):
    if _bad_options(_opts):
        return _INVALID
    xv = view(x).astype(np.float64)
    axes = _axes(mask, xv.ndim)
    mv = view(mean)
    if mv.dtype not in (np.float32, np.float64):
        _contract_error(f"moments mean dtype {mv.dtype}")
    _check_shapes(view(x), axes, mv, mask)
    if count != ffi.NULL and (view(count).dtype != np.uint64 or view(count).shape != mv.shape):
        _contract_error("moments count must be uint64 of mean's shape")
    if m2 != ffi.NULL and (view(m2).dtype != mv.dtype or view(m2).shape != mv.shape):
        _contract_error("moments m2 must have mean's dtype and shape")
    keep = ~np.isnan(xv) if flags & 1 else np.ones(xv.shape, bool)
    with np.errstate(all="ignore"):
        n = keep.sum(axis=axes)
        s = np.where(keep, xv, 0).sum(axis=axes)
        mu = s / n
        if count != ffi.NULL:
            view(count)[...] = n
        view(mean)[...] = mu
        if m2 != ffi.NULL:
            mub = np.expand_dims(mu, axes)
            view(m2)[...] = np.where(keep, (xv - mub) ** 2, 0).sum(axis=axes)
    return _OK


#: True when the tests run against this model, not the library.
ACTIVE = False


def install():
    """Puts the model in place of the N-d functions the loaded library lacks."""
    global ACTIVE
    if hasattr(parfor.lib, "parfor_reduce_array") or ACTIVE:
        return
    ffi.cdef(DECLARATIONS)
    _reductions._reduce_array = reduce_array
    _reductions._argreduce_array = argreduce_array
    _reductions._moments_array = moments_array
    ACTIVE = True
