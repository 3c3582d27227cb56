"""parfor: OpenMP-style parallel loops and reductions, with numpy's semantics.

    >>> import numpy as np, parfor
    >>> parfor.sum(np.arange(10.0))
    np.float64(45.0)

The numpy-named reductions (``sum``, ``mean``, ``nanmax``, ``argmin``, ...) take
numpy arrays of any strides and other buffer-protocol objects without copying and
return what numpy returns. Every call releases the GIL; a refused call raises
:class:`parfor.Error` (a RuntimeError, with the C status name and
``parfor_last_error()`` text). The C library is loaded by ``parfor._ffi`` (cffi,
declarations from include/parfor.h): from ``PARFOR_LIBRARY``, else the package
folder, else the repository's ``target/release``.
"""

from ._api import (
    dot,
    num_threads,
    parallel_for,
    reduce,
    set_num_threads,
    threads,
    vdot,
)
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
from ._exact import ExactSum
from ._ffi import BODY, LIBRARY_PATH, MAX_THREADS, DType, Op, Schedule, Status, ffi, lib
from ._reductions import (
    all,
    any,
    argmax,
    argmin,
    count_nonzero,
    max,
    mean,
    min,
    nanargmax,
    nanargmin,
    nanmax,
    nanmean,
    nanmin,
    nanstd,
    nansum,
    nanvar,
    prod,
    std,
    sum,
    var,
)

#: The C library's version (``parfor_version()``), which is also the package's.
__version__ = ffi.string(lib.parfor_version()).decode("ascii")

# The public names, one list (other modules add theirs here: scan/sort, aio, dask).
__all__ = [
    # library and C enums
    "BODY",
    "LIBRARY_PATH",
    "MAX_THREADS",
    "DType",
    "Op",
    "Schedule",
    "Status",
    "ffi",
    "lib",
    # errors
    "CallbackError",
    "EmptyError",
    "Error",
    "InvalidArgumentError",
    "MisalignedError",
    "NullArgumentError",
    "PanicError",
    "RuntimeFailureError",
    # numpy's reductions (_reductions)
    "all",
    "any",
    "argmax",
    "argmin",
    "count_nonzero",
    "max",
    "mean",
    "min",
    "nanargmax",
    "nanargmin",
    "nanmax",
    "nanmean",
    "nanmin",
    "nanstd",
    "nansum",
    "nanvar",
    "prod",
    "std",
    "sum",
    "var",
    # flat buffers, products, exact sums (_api, _exact)
    "ExactSum",
    "dot",
    "reduce",
    "vdot",
    # team and loops (_api)
    "num_threads",
    "parallel_for",
    "set_num_threads",
    "threads",
]

# Prefix scans and sorts with numpy's semantics (parfor_scan, parfor_sort, parfor_argsort).
from ._scan import cummax, cummin, cumprod, cumsum  # noqa: E402
from ._sort import argsort, sort, sort_inplace  # noqa: E402

__all__ += ["argsort", "cummax", "cummin", "cumprod", "cumsum", "sort", "sort_inplace"]
