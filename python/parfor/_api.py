"""The low-level API: ``reduce`` over flat buffers, ``dot``/``vdot``, the team size,
and parallel loops. (numpy's reductions with numpy's semantics are in
``_reductions``.)

Every function pins its buffers (no copy, see ``_buffer``), makes one C call through
cffi (the GIL released for its whole duration), and raises the matching
``parfor.Error`` on failure.
"""

from __future__ import annotations

import contextlib
import ctypes
import operator
import threading
from typing import Any, Callable, Iterator, Optional, Union

import numpy as np

from . import _buffer
from ._errors import CallbackError, check, error_for
from ._ffi import CTYPE_OF_DTYPE, DType, Op, ffi, lib, options

__all__ = [
    "dot",
    "vdot",
    "reduce",
    "num_threads",
    "set_num_threads",
    "threads",
    "parallel_for",
]

_OP_NAMES = {op.name.lower(): op for op in Op}

# Bound once: an attribute lookup on the library per call costs more than the lookup
# of a module global.
_parfor_reduce = lib.parfor_reduce
_parfor_dot = lib.parfor_dot
_parfor_dot_exact = lib.parfor_dot_exact
_DOT_NAMES = _buffer.argument_names("parfor.dot()")
_SLOT = {int(d): c + " *" for d, c in CTYPE_OF_DTYPE.items()}
_FLOATS = (int(DType.F32), int(DType.F64))


def _op(op):
    """An ``Op`` from a name ("sum", "bit_xor", ...) or the C integer."""
    if isinstance(op, str):
        try:
            return _OP_NAMES[op.lower()]
        except KeyError:
            raise ValueError(
                f"unknown reduction operator {op!r}; expected one of "
                f"{', '.join(_OP_NAMES)} (or the parfor_op integer)"
            ) from None
    if isinstance(op, bool) or not isinstance(op, int):
        raise TypeError(f"op must be a str or an int, not {type(op).__name__}")
    # Unknown values within C's int range go to the library, whose check reports
    # PARFOR_ERR_INVALID_ARGUMENT; cffi refuses anything wider.
    if not -(2**31) <= op < 2**31:
        raise ValueError(f"op {op} is out of the range of a C int")
    return int(op)


def _scalar(slot, dtype):
    value = slot[0]
    return float(value) if dtype in _FLOATS else int(value)


def reduce(x: Any, op: Union[str, int], *, num_threads: Optional[int] = None) -> Union[int, float]:
    """Reduces the flat, C-contiguous buffer ``x`` with ``op`` in its element type
    (the C ``parfor_reduce``): a name ("sum", "prod", "min", "max", "bit_and",
    "bit_or", "bit_xor", "logical_and", "logical_or", "sum_exact", "nan_sum",
    "nan_min", "nan_max"), a :class:`parfor.Op` or its integer. Integers wrap in the
    element type; the result is a Python ``int`` or ``float``; see ``parfor_op`` in
    parfor.h for each operator and the result for empty input. For numpy's
    semantics use :func:`parfor.sum` and the other numpy-named functions."""
    op = _op(op)
    address, length, dtype, _keep = _buffer.pin(x, "parfor.reduce() argument x")
    out = ffi.new(_SLOT[dtype])
    code = _parfor_reduce(address, length, dtype, op, options(num_threads), out)
    if code:
        _keep = None  # unpin before the traceback takes this frame (see pin_pair)
        raise error_for(code)
    return _scalar(out, dtype)


def _one_d(x, what):
    """A 1-D operand of dot: numpy arrays (and buffers) of ndim 1, else ValueError."""
    ndim = getattr(x, "ndim", None)
    if ndim is None:
        try:
            ndim = memoryview(x).ndim
        except TypeError:
            return x  # pin() reports what is not a buffer
    if ndim != 1:
        raise ValueError(
            f"{what} has {ndim} dimensions; parfor.dot takes 1-D vectors only. For "
            f"matrix products and N-d dot use numpy.dot (or numpy.matmul); "
            f"parfor.vdot flattens its inputs"
        )
    if isinstance(x, np.ndarray) and not x.flags.c_contiguous:
        # A strided vector (x[::2], m[:, j], x[::-1]) is gathered into a contiguous
        # copy first, as numpy.dot does before its BLAS call: the C dot reads flat
        # buffers. The result is that of the same values in the same order.
        x = np.ascontiguousarray(x)
    return x


_NP_NAMES = {
    int(DType.F32): "float32",
    int(DType.F64): "float64",
    int(DType.I8): "int8",
    int(DType.I16): "int16",
    int(DType.I32): "int32",
    int(DType.I64): "int64",
    int(DType.U8): "uint8",
    int(DType.U16): "uint16",
    int(DType.U32): "uint32",
    int(DType.U64): "uint64",
}


#: numpy's scalar type of each dtype code.
_NP_SCALAR = {code: np.dtype(name).type for code, name in _NP_NAMES.items()}
#: numpy dtype -> dtype code, for dot's hot path.
_DOT_CODES = {np.dtype(name): code for code, name in _NP_NAMES.items()}


def dot(a: Any, b: Any, exact: bool = False, *, num_threads: Optional[int] = None) -> np.generic:
    """Inner product of two 1-D vectors, ``sum(a[i] * b[i])``, in their common
    element type as :func:`numpy.dot` of 1-D arrays (a numpy scalar of that dtype;
    integers wrap). Both must have the same element type and length; strided
    numpy vectors are gathered into a contiguous copy first, as numpy.dot does. N-d
    input is ValueError (use numpy.dot for matrix products).
    ``exact=True`` (float32/float64) gives the correctly rounded exact dot product."""
    if (
        type(a) is np.ndarray
        and type(b) is np.ndarray
        and a.ndim == 1
        and b.ndim == 1
        and a.dtype == b.dtype
        and a.size == b.size
        and a.size
    ):
        code = _DOT_CODES.get(a.dtype)
        if code is not None and a.flags.c_contiguous and b.flags.c_contiguous:
            # The hot path: two contiguous vectors, pinned by ffi.from_buffer.
            out = ffi.new(_SLOT[code])
            fn = _parfor_dot_exact if exact else _parfor_dot
            status = fn(ffi.from_buffer(a), ffi.from_buffer(b), a.size, code, options(num_threads), out)
            if status:
                raise error_for(status)
            return _NP_SCALAR[code](out[0])
    a = _one_d(a, "parfor.dot() argument a")
    b = _one_d(b, "parfor.dot() argument b")
    return _dot(a, b, exact, num_threads)


def _dot(a, b, exact, num_threads):
    address_a, address_b, length, dtype, _keep = _buffer.pin_pair(a, b, _DOT_NAMES)
    out = ffi.new(_SLOT[dtype])
    fn = _parfor_dot_exact if exact else _parfor_dot
    code = fn(address_a, address_b, length, dtype, options(num_threads), out)
    if code:
        _keep = None  # unpin before the traceback takes this frame (see pin_pair)
        raise error_for(code)
    return _NP_SCALAR[dtype](out[0])


def vdot(a: Any, b: Any, exact: bool = False, *, num_threads: Optional[int] = None) -> np.generic:
    """Dot product of the two inputs flattened in C order, as :func:`numpy.vdot`
    for real input (a strided view is flattened into a copy, as numpy does)."""
    a = np.ravel(np.asarray(a if not isinstance(a, (bytes, bytearray)) else memoryview(a)))
    b = np.ravel(np.asarray(b if not isinstance(b, (bytes, bytearray)) else memoryview(b)))
    if a.size != b.size:
        raise ValueError("parfor.vdot(): cannot reshape array: inputs have different sizes")
    return _dot(a, b, exact, num_threads)


# --- team size -------------------------------------------------------------------

# The value last given to set_num_threads through this module (0: the environment's
# default), which threads() restores. The C API has no getter for the setting itself
# (parfor_num_threads gives the effective team size), so it is remembered here.
_setting_lock = threading.Lock()
_setting = 0


def num_threads() -> int:
    """The team size the next call from this thread will use: the value of
    :func:`set_num_threads`, else ``PARFOR_NUM_THREADS``, else ``OMP_NUM_THREADS``,
    else the CPUs this process may use. 1 inside a parallel_for body."""
    return lib.parfor_num_threads()


_SIZE_MAX = 2 ** (8 * ffi.sizeof("size_t")) - 1


def _check_count(n, what):
    """A size_t argument, checked here so that the message names it."""
    n = operator.index(n)
    if not 0 <= n <= _SIZE_MAX:
        raise ValueError(f"{what} must be in 0..{_SIZE_MAX}, not {n}")
    return n


def set_num_threads(n: int) -> None:
    """Sets the default team size of later calls from every thread; 0 restores the
    default from the environment. Above ``parfor.MAX_THREADS``:
    ``parfor.InvalidArgumentError``."""
    global _setting
    n = _check_count(n, "set_num_threads(n): n")
    with _setting_lock:
        check(lib.parfor_set_num_threads, n)
        _setting = n


@contextlib.contextmanager
def threads(n: int) -> Iterator[int]:
    """``with parfor.threads(n): ...`` runs the block with the default team size
    ``n`` and then restores the previous setting (made with :func:`set_num_threads`,
    or the environment's default). The setting is process-wide, like
    ``omp_set_num_threads`` called from the main thread: blocks of concurrent
    Python threads overlap."""
    previous = _setting
    set_num_threads(n)
    try:
        yield n
    finally:
        set_num_threads(previous)


# --- parallel loops ----------------------------------------------------------------


def _is_cffi(obj):
    """True for cffi cdata and for functions of a compiled cffi module (``lib.f``)."""
    return type(obj).__module__ == "_cffi_backend" or (
        type(getattr(obj, "__self__", None)).__module__ == "_cffi_backend"
    )


_BODY_ARGTYPES = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t)
_BODY_TYPE = ffi.typeof("parfor_body")


def _as_body(body):
    """A cffi ``parfor_body`` for a C function given as a ctypes function, a cffi
    function or an integer address; None for a Python callable."""
    if isinstance(body, bool):
        raise TypeError("body must be a function or an address, not bool")
    if isinstance(body, int):
        if body < 0:
            raise ValueError(f"body address {body} is negative")
        # An address: parfor cannot check what is there (0 is reported by the
        # library as PARFOR_ERR_NULL_ARGUMENT).
        return ffi.cast(_BODY_TYPE, body)
    if isinstance(body, ctypes._CFuncPtr):
        argtypes = tuple(getattr(body, "argtypes", None) or ())
        restype = getattr(body, "restype", None)
        if restype is not ctypes.c_int or argtypes != _BODY_ARGTYPES:
            raise TypeError(
                "body is a ctypes function with a different signature: it must be "
                "int (*)(void *ctx, size_t begin, size_t end), e.g. parfor.BODY(fn)"
            )
        return ffi.cast(_BODY_TYPE, ctypes.cast(body, ctypes.c_void_p).value or 0)
    if _is_cffi(body):
        if type(body).__module__ == "_cffi_backend":
            ctype = ffi.typeof(body)
            if ctype.kind == "pointer" and ctype.item.kind == "function":
                ctype = ctype.item
            signature = (
                ctype.kind == "function"
                and ctype.result.cname == "int"
                and [a.cname for a in ctype.args] == ["void *", "size_t", "size_t"]
                and not ctype.ellipsis
            )
            if not signature:
                raise TypeError(
                    f"body is a cffi {ctype.cname}; it must be "
                    f"int (*)(void *ctx, size_t begin, size_t end)"
                )
        # A function of a compiled cffi module carries no type cffi can report: its
        # declaration in the module's cdef is the user's promise, as for an address.
        return ffi.cast(_BODY_TYPE, int(ffi.cast("uintptr_t", body)))
    return None


def _ctx_pointer(ctx, pins):
    """The ``void *`` to pass as ctx to a C body; a buffer's pin is appended to
    ``pins``, which the caller keeps until the call is over."""
    if ctx is None:
        return ffi.NULL
    if isinstance(ctx, bool):
        raise TypeError("ctx must be an address, a ctypes object, cffi cdata or a buffer")
    if isinstance(ctx, int):
        if ctx < 0:
            raise ValueError(f"ctx address {ctx} is negative")
        return ffi.cast("void *", ctx)
    if isinstance(ctx, (ctypes._Pointer, ctypes.c_void_p, ctypes.c_char_p)):
        return ffi.cast("void *", ctypes.cast(ctx, ctypes.c_void_p).value or 0)
    if isinstance(ctx, (ctypes.Structure, ctypes.Union, ctypes.Array, ctypes._SimpleCData)):
        return ffi.cast("void *", ctypes.addressof(ctx))
    if _is_cffi(ctx):
        return ffi.cast("void *", int(ffi.cast("uintptr_t", ctx)))
    try:
        address, _length, _dtype, keep = _buffer.pin(ctx, "parfor.parallel_for() argument ctx")
    except TypeError:
        raise TypeError(
            "ctx for a C body must be None, an int address, a ctypes object, cffi "
            f"cdata or a buffer, not {type(ctx).__name__}"
        ) from None
    pins.append(keep)
    return address


class _PythonBody:
    """Runs a Python callable as a parfor body. cffi takes the GIL around every
    call of a callback, so the callable is safe to run from parfor's threads; the
    first exception it raises cancels the loop and is re-raised by parallel_for."""

    def __init__(self, fn, ctx):
        self.fn = fn
        self.ctx = ctx
        self.error = None
        self.lock = threading.Lock()
        self.pointer = ffi.callback(_BODY_TYPE, self._call, error=1)

    def _call(self, _ctx, begin, end):
        try:
            code = self.fn(self.ctx, begin, end)
            if code is None:
                return 0
            if isinstance(code, int):
                # Nonzero cancels and the library reports the value; a value that
                # would wrap to 0 as a C int must still cancel.
                value = (code + 2**31) % 2**32 - 2**31
                return value if value != 0 or code == 0 else 1
            raise TypeError(
                f"parallel_for body returned {type(code).__name__}; it must return "
                f"None or an int (nonzero cancels the loop)"
            )
        except BaseException as e:  # noqa: BLE001 - re-raised by parallel_for
            with self.lock:
                if self.error is None:
                    self.error = e
            return 1


def parallel_for(
    n: int,
    body: Union[Callable[[Any, int, int], Optional[int]], Any],
    ctx: Any = None,
    *,
    num_threads: Optional[int] = None,
    schedule: Union[str, int, None] = None,
    chunk: Optional[int] = None,
) -> None:
    """Runs ``body`` over disjoint sub-ranges ``[begin, end)`` covering
    ``[0, n)``, on the parfor team (the calling thread takes part).

    ``body`` is a C function ``int body(void *ctx, size_t begin, size_t end)``:
    a cffi function (``ffi.callback``, ``lib.f`` of a compiled module, or a cffi
    function pointer), a ctypes ``parfor.BODY`` (or another ``CFUNCTYPE`` with that
    signature), or an integer address (e.g. a numba ``cfunc``'s ``.address``).
    ``ctx`` is then passed through as ``void *``: None, an int address, a ctypes
    object, cffi cdata, or a buffer (pinned for the call). A nonzero return cancels
    the loop: ``parfor.CallbackError``.

    ``body`` may also be a Python callable, called as ``body(ctx, begin, end)`` with
    ``ctx`` the Python object given. This is correct (cffi takes the GIL for each
    call) but the calls run one at a time unless the body releases the GIL (numpy on
    a large slice does), and each call costs a few microseconds of GIL and thread
    state handling. An exception in the body cancels the loop and is re-raised.

    ``num_threads`` (team size), ``schedule`` (a :class:`parfor.Schedule` or its
    name: "static", "dynamic", "guided", "auto") and ``chunk`` (iterations per
    range; 0 automatic) apply to this call only, as OpenMP's clauses.
    """
    n = _check_count(n, "parallel_for(n): n")
    opts = options(num_threads, schedule, chunk)
    pointer = _as_body(body)
    if pointer is None:
        if not callable(body):
            raise TypeError(
                "body must be a C function (cffi, ctypes, int address) or a Python "
                f"callable, not {type(body).__name__}"
            )
        python_body = _PythonBody(body, ctx)
        try:
            check(lib.parfor_for, 0, n, opts, python_body.pointer, ffi.NULL)
        except CallbackError as e:
            if python_body.error is not None:
                raise python_body.error from e
            raise
        if python_body.error is not None:
            # Only reachable if the library ignored the cancellation.
            raise python_body.error
        return
    pins = []  # kept until the call returns
    address = _ctx_pointer(ctx, pins)
    check(lib.parfor_for, 0, n, opts, pointer, address)
