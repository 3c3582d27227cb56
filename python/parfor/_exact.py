"""``ExactSum``: a partial exact sum over the C ``parfor_exact_state`` API, which can
be extended, merged in any order, serialised to bytes and sent to another process
(for example with MPI), and rounded at the end, always with the result of one exact
sum of all the values (the correctly rounded sum, as ``math.fsum``)."""

from __future__ import annotations

import threading
from typing import Any

from . import _buffer
from ._errors import check, error_for
from ._ffi import CTYPE_OF_DTYPE, DType, ffi, lib

_ADD_DOT_NAMES = _buffer.argument_names("ExactSum.add_dot()")

_RESULT_DTYPES = {
    "float64": DType.F64,
    "f8": DType.F64,
    "f64": DType.F64,
    "float32": DType.F32,
    "f4": DType.F32,
    "f32": DType.F32,
}


class ExactSum:
    """A partial exact sum of float32/float64 values.

        >>> s = parfor.ExactSum()
        >>> s.add(array.array("d", [1e308, 1.0, -1e308]))
        >>> s.result()
        1.0

    ``bytes(s)`` is the state's fixed-size plain-data form (``ExactSum.nbytes``
    bytes, native byte order, layout in parfor.h); ``ExactSum.from_bytes`` reads it
    back, checking it. Equal sums have equal bytes, so ``==`` compares sums exactly.
    Methods may be called from several threads: each takes the object's lock, and
    the C call itself runs with the GIL released.
    """

    __slots__ = ("_state", "_lock")

    #: Size of the state in bytes (``sizeof(parfor_exact_state)``).
    nbytes = ffi.sizeof("parfor_exact_state")

    def __init__(self, values: Any = None) -> None:
        """An empty sum; ``values`` (a buffer of float32 or float64) is added first."""
        self._state = ffi.new("parfor_exact_state *")
        self._lock = threading.Lock()
        check(lib.parfor_exact_init, self._state)
        if values is not None:
            self.add(values)

    def add(self, values: Any) -> None:
        """Adds every element of ``values`` (a buffer of float32 or float64), exactly."""
        address, length, dtype, _keep = _buffer.pin(values, "ExactSum.add() argument values")
        with self._lock:
            code = lib.parfor_exact_accumulate(
                self._state, address, length, dtype, ffi.NULL
            )
        if code:
            _keep = None  # unpin before the traceback takes this frame
            raise error_for(code)

    def add_dot(self, a: Any, b: Any) -> None:
        """Adds the products ``a[i] * b[i]`` (float32 or float64, same type and
        length); exact under the conditions of ``parfor_exact_accumulate_dot``."""
        address_a, address_b, length, dtype, _keep = _buffer.pin_pair(
            a, b, _ADD_DOT_NAMES
        )
        with self._lock:
            code = lib.parfor_exact_accumulate_dot(
                self._state, address_a, address_b, length, dtype, ffi.NULL
            )
        if code:
            _keep = None  # unpin before the traceback takes this frame
            raise error_for(code)

    def merge(self, other: ExactSum) -> None:
        """Adds the sum held by ``other`` (an ExactSum) to this one, exactly."""
        if not isinstance(other, ExactSum):
            raise TypeError(
                f"ExactSum.merge() takes an ExactSum (use ExactSum.from_bytes for bytes), "
                f"not {type(other).__name__}"
            )
        if other is self:
            with self._lock:
                check(lib.parfor_exact_merge, self._state, self._state)
            return
        # A copy of the other state, taken under its lock, so that the two locks are
        # never held together (no lock-order deadlock between a.merge(b), b.merge(a)).
        theirs = other._snapshot()
        with self._lock:
            check(lib.parfor_exact_merge, self._state, theirs)

    def result(self, dtype: Any = "float64") -> float:
        """The sum, correctly rounded to ``dtype`` ("float64" or "float32"), as a
        Python float. Infinities, NaN and signed zeros as ``parfor_exact_result``."""
        code = _RESULT_DTYPES.get(dtype) if isinstance(dtype, str) else dtype
        if code not in (DType.F32, DType.F64):
            raise ValueError(f"ExactSum.result(): dtype must be 'float64' or 'float32', not {dtype!r}")
        out = ffi.new(CTYPE_OF_DTYPE[code] + " *")
        with self._lock:
            check(lib.parfor_exact_result, self._state, code, out)
        return float(out[0])

    def _snapshot(self):
        with self._lock:
            copy = ffi.new("parfor_exact_state *")
            copy[0] = self._state[0]
            return copy

    def __bytes__(self) -> bytes:
        return ffi.buffer(self._snapshot())[:]

    @classmethod
    def from_bytes(cls, data: Any) -> ExactSum:
        """The ExactSum whose state is ``data`` (from ``bytes(state)``, possibly made
        in another process). A wrong length is ValueError; bytes that are not a valid
        state (corrupted, another layout version or byte order) are
        ``parfor.InvalidArgumentError``."""
        data = memoryview(data).cast("B")
        if data.nbytes != cls.nbytes:
            raise ValueError(
                f"ExactSum.from_bytes(): expected {cls.nbytes} bytes, got {data.nbytes}"
            )
        state = ffi.new("parfor_exact_state *")
        ffi.memmove(state, data, cls.nbytes)
        # Every function that reads a state validates it; rounding is the cheapest.
        probe = ffi.new("double *")
        check(lib.parfor_exact_result, state, DType.F64, probe)
        self = cls.__new__(cls)
        self._state = state
        self._lock = threading.Lock()
        return self

    def copy(self) -> ExactSum:
        """An independent ExactSum holding the same sum."""
        return ExactSum.from_bytes(bytes(self))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExactSum):
            return NotImplemented
        return bytes(self) == bytes(other)

    __hash__ = None

    def __repr__(self) -> str:
        return f"<parfor.ExactSum {self.result()!r}>"
