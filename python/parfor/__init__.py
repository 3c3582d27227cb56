"""parfor: OpenMP-style parallel loops and reductions over raw buffers.

    >>> import numpy as np, parfor
    >>> parfor.sum(np.arange(10.0))
    45.0

Takes numpy arrays, ``array.array``, ``memoryview``, ``bytes`` and ``bytearray``
without copying; releases the GIL during every call; raises :class:`parfor.Error`
(a RuntimeError, with the C status name and ``parfor_last_error()`` text) when the
library refuses a call. The C library is loaded by ``parfor._ffi``: from
``PARFOR_LIBRARY``, else the package folder, else the repository's
``target/release``.
"""

from ._api import (
    argmax,
    argmin,
    dot,
    max,
    min,
    num_threads,
    parallel_for,
    prod,
    reduce,
    set_num_threads,
    sum,
    threads,
)
from ._exact import ExactSum
from ._errors import (
    CallbackError,
    EmptyError,
    Error,
    InvalidArgumentError,
    MisalignedError,
    NullArgumentError,
    PanicError,
    RuntimeFailureError,
)
from ._ffi import BODY, LIBRARY_PATH, MAX_THREADS, DType, Op, Schedule, Status, lib

#: The C library's version (``parfor_version()``), which is also the package's.
__version__ = lib.parfor_version().decode("ascii")

__all__ = [
    "BODY",
    "LIBRARY_PATH",
    "MAX_THREADS",
    "CallbackError",
    "DType",
    "EmptyError",
    "Error",
    "ExactSum",
    "InvalidArgumentError",
    "MisalignedError",
    "NullArgumentError",
    "Op",
    "PanicError",
    "RuntimeFailureError",
    "Schedule",
    "Status",
    "argmax",
    "argmin",
    "dot",
    "max",
    "min",
    "num_threads",
    "parallel_for",
    "prod",
    "reduce",
    "set_num_threads",
    "sum",
    "threads",
]

# Prefix scans and sorts with numpy's semantics (parfor_scan, parfor_sort, parfor_argsort).
from ._scan import cummax, cummin, cumprod, cumsum  # noqa: E402
from ._sort import argsort, sort, sort_inplace  # noqa: E402

__all__ += ["argsort", "cummax", "cummin", "cumprod", "cumsum", "sort", "sort_inplace"]
