"""The Pythonic API: reductions over buffers, the team size, and parallel loops.

Every function pins its buffers (no copy, see ``_buffer``), makes one C call (the GIL
released by ctypes for its whole duration), raises the matching ``parfor.Error`` on
failure, and returns a Python scalar: ``int`` for integer dtypes, ``float`` for
float32/float64.
"""

import contextlib
import ctypes
import operator
import threading

from . import _buffer
from ._errors import CallbackError, check, error_for
from ._ffi import BODY, CTYPE_OF_DTYPE, DType, Op, lib

__all__ = [
    "sum",
    "prod",
    "min",
    "max",
    "dot",
    "argmin",
    "argmax",
    "reduce",
    "num_threads",
    "set_num_threads",
    "threads",
    "parallel_for",
]

_OP_NAMES = {op.name.lower(): op for op in Op}

# Bound once: an attribute lookup on the CDLL per call costs more than the lookup of
# a module global.
_parfor_reduce = lib.parfor_reduce
_parfor_dot = lib.parfor_dot
_parfor_dot_exact = lib.parfor_dot_exact
_SUM = int(Op.SUM)
_SUM_EXACT = int(Op.SUM_EXACT)
_PROD = int(Op.PROD)
_MIN = int(Op.MIN)
_MAX = int(Op.MAX)
_DOT_NAMES = _buffer.argument_names("parfor.dot()")


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
    # PARFOR_ERR_INVALID_ARGUMENT; ctypes would silently truncate anything wider.
    if not -(2**31) <= op < 2**31:
        raise ValueError(f"op {op} is out of the range of a C int")
    return op


def _reduce(x, op, what):
    address, length, dtype, _keep = _buffer.pin(x, what)
    out = CTYPE_OF_DTYPE[dtype]()
    # check() inlined here and below: these calls are the package's hot path.
    code = _parfor_reduce(address, length, dtype, op, None, ctypes.byref(out))
    if code:
        _keep = None  # unpin before the traceback takes this frame (see pin_pair)
        raise error_for(code)
    return out.value


def reduce(x, op):
    """Reduces the buffer ``x`` with ``op``: a name ("sum", "prod", "min", "max",
    "bit_and", "bit_or", "bit_xor", "logical_and", "logical_or", "sum_exact"), an
    :class:`parfor.Op` or its integer. The result has the element type's kind
    (``int`` or ``float``); see ``parfor_op`` in parfor.h for each operator's
    semantics and the result for empty input."""
    return _reduce(x, _op(op), "parfor.reduce() argument x")


def sum(x, exact=False):  # noqa: A001 - the issue names the API after numpy's
    """Sum of the elements of ``x``; 0 when empty. Integers wrap (two's complement);
    floats are summed in a fixed tree, so the result is bitwise identical for every
    team size. ``exact=True`` (float32/float64 only) gives the correctly rounded sum
    of the exact values, as ``math.fsum``."""
    return _reduce(x, _SUM_EXACT if exact else _SUM, "parfor.sum() argument x")


def prod(x):
    """Product of the elements of ``x``; 1 when empty. Integers wrap."""
    return _reduce(x, _PROD, "parfor.prod() argument x")


def min(x):  # noqa: A001
    """Smallest element of ``x`` (NaN if there is one). Empty: ``parfor.EmptyError``,
    a ValueError."""
    return _reduce(x, _MIN, "parfor.min() argument x")


def max(x):  # noqa: A001
    """Largest element of ``x`` (NaN if there is one). Empty: ``parfor.EmptyError``,
    a ValueError."""
    return _reduce(x, _MAX, "parfor.max() argument x")


def _arg_extreme(fn, x, what):
    address, length, dtype, _keep = _buffer.pin(x, what)
    index = ctypes.c_size_t()
    code = fn(address, length, dtype, None, ctypes.byref(index))
    if code:
        _keep = None  # see _reduce
        raise error_for(code)
    return index.value


def argmin(x):
    """Index of the smallest element (the first among equals; the first NaN if any).
    Empty: ``parfor.EmptyError``. The index counts elements in memory order."""
    return _arg_extreme(lib.parfor_argmin, x, "parfor.argmin() argument x")


def argmax(x):
    """Index of the largest element (the first among equals; the first NaN if any).
    Empty: ``parfor.EmptyError``."""
    return _arg_extreme(lib.parfor_argmax, x, "parfor.argmax() argument x")


def dot(a, b, exact=False):
    """Sum of ``a[i] * b[i]`` in the common element type of ``a`` and ``b`` (0 when
    empty). Both must have the same element type and length. ``exact=True``
    (float32/float64) gives the correctly rounded exact dot product."""
    address_a, address_b, length, dtype, _keep = _buffer.pin_pair(a, b, _DOT_NAMES)
    out = CTYPE_OF_DTYPE[dtype]()
    fn = _parfor_dot_exact if exact else _parfor_dot
    code = fn(address_a, address_b, length, dtype, None, ctypes.byref(out))
    if code:
        _keep = None  # unpin before the traceback takes this frame (see pin_pair)
        raise error_for(code)
    return out.value


# --- team size -------------------------------------------------------------------

# The value last given to set_num_threads through this module (0: the environment's
# default), which threads() restores. The C API has no getter for the setting itself
# (parfor_num_threads gives the effective team size), so it is remembered here.
_setting_lock = threading.Lock()
_setting = 0


def num_threads():
    """The team size the next call from this thread will use: the value of
    :func:`set_num_threads`, else ``PARFOR_NUM_THREADS``, else ``OMP_NUM_THREADS``,
    else the CPUs this process may use. 1 inside a parallel_for body."""
    return lib.parfor_num_threads()


_SIZE_MAX = 2 ** (8 * ctypes.sizeof(ctypes.c_size_t)) - 1


def _check_count(n, what):
    """A size_t argument: ctypes would silently wrap a negative or too large int."""
    n = operator.index(n)
    if not 0 <= n <= _SIZE_MAX:
        raise ValueError(f"{what} must be in 0..{_SIZE_MAX}, not {n}")
    return n


def set_num_threads(n):
    """Sets the default team size of later calls from every thread; 0 restores the
    default from the environment. Above ``parfor.MAX_THREADS``:
    ``parfor.InvalidArgumentError``."""
    global _setting
    n = _check_count(n, "set_num_threads(n): n")
    with _setting_lock:
        check(lib.parfor_set_num_threads, n)
        _setting = n


@contextlib.contextmanager
def threads(n):
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

_cffi = None


def _cffi_ffi():
    """A cffi FFI instance, made on first use: cffi is optional."""
    global _cffi
    if _cffi is None:
        import cffi

        _cffi = cffi.FFI()
    return _cffi


def _is_cffi(obj):
    """True for cffi cdata and for functions of a compiled cffi module (``lib.f``)."""
    return type(obj).__module__ == "_cffi_backend" or (
        type(getattr(obj, "__self__", None)).__module__ == "_cffi_backend"
    )


_BODY_ARGTYPES = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t)


def _as_body(body):
    """A ``BODY`` function pointer for a C function given as a ctypes function, a
    cffi function or an integer address; None for a Python callable."""
    if isinstance(body, BODY):
        return body
    if isinstance(body, bool):
        raise TypeError("body must be a function or an address, not bool")
    if isinstance(body, int):
        if body < 0:
            raise ValueError(f"body address {body} is negative")
        # An address: parfor cannot check what is there (0 is reported by the
        # library as PARFOR_ERR_NULL_ARGUMENT).
        return BODY(body)
    if isinstance(body, ctypes._CFuncPtr):
        argtypes = tuple(getattr(body, "argtypes", None) or ())
        restype = getattr(body, "restype", None)
        if restype is not ctypes.c_int or argtypes != _BODY_ARGTYPES:
            raise TypeError(
                "body is a ctypes function with a different signature: it must be "
                "int (*)(void *ctx, size_t begin, size_t end), e.g. parfor.BODY(fn)"
            )
        return BODY(ctypes.cast(body, ctypes.c_void_p).value or 0)
    if _is_cffi(body):
        ffi = _cffi_ffi()
        if type(body).__module__ == "_cffi_backend":
            ctype = ffi.typeof(body)
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
        return BODY(int(ffi.cast("uintptr_t", body)))
    return None


def _ctx_address(ctx, pins):
    """The ``void *`` to pass as ctx to a C body; a buffer's pin is appended to
    ``pins``, which the caller keeps until the call is over."""
    if ctx is None:
        return None
    if isinstance(ctx, bool):
        raise TypeError("ctx must be an address, a ctypes object, cffi cdata or a buffer")
    if isinstance(ctx, int):
        if ctx < 0:
            raise ValueError(f"ctx address {ctx} is negative")
        return ctx
    if isinstance(ctx, (ctypes._Pointer, ctypes.c_void_p, ctypes.c_char_p)):
        return ctypes.cast(ctx, ctypes.c_void_p).value
    if isinstance(ctx, (ctypes.Structure, ctypes.Union, ctypes.Array, ctypes._SimpleCData)):
        return ctypes.addressof(ctx)
    if _is_cffi(ctx):
        return int(_cffi_ffi().cast("uintptr_t", ctx))
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
    """Runs a Python callable as a parfor body. ctypes takes the GIL around every
    call, so the callable is safe to run from parfor's threads; the first exception
    it raises cancels the loop and is re-raised by parallel_for."""

    def __init__(self, fn, ctx):
        self.fn = fn
        self.ctx = ctx
        self.error = None
        self.lock = threading.Lock()
        self.pointer = BODY(self._call)

    def _call(self, _ctx, begin, end):
        try:
            code = self.fn(self.ctx, begin, end)
            if code is None:
                return 0
            if isinstance(code, int):
                # Nonzero cancels and the library reports the value; a value that
                # would wrap to 0 as a C int must still cancel.
                value = ctypes.c_int(code).value
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


def parallel_for(n, body, ctx=None):
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
    ``ctx`` the Python object given. This is correct (ctypes takes the GIL for each
    call) but the calls run one at a time unless the body releases the GIL (numpy on
    a large slice does), and each call costs a few microseconds of GIL and thread
    state handling. An exception in the body cancels the loop and is re-raised.
    """
    n = _check_count(n, "parallel_for(n): n")
    pointer = _as_body(body)
    if pointer is None:
        if not callable(body):
            raise TypeError(
                "body must be a C function (cffi, ctypes, int address) or a Python "
                f"callable, not {type(body).__name__}"
            )
        python_body = _PythonBody(body, ctx)
        try:
            check(lib.parfor_for, 0, n, None, python_body.pointer, None)
        except CallbackError as e:
            if python_body.error is not None:
                raise python_body.error from e
            raise
        if python_body.error is not None:
            # Only reachable if the library ignored the cancellation.
            raise python_body.error
        return
    pins = []  # kept until the call returns
    address = _ctx_address(ctx, pins)
    check(lib.parfor_for, 0, n, None, pointer, address)
