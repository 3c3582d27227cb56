"""The C boundary: finds and loads libparfor, and declares the C types, the enum
values and the ``argtypes``/``restype`` of every function in ``include/parfor.h``.

This is the only module that touches the shared library's symbols. Everything here
mirrors the header, and ``tests/test_header.py`` parses the header and compares it
with the declarations below, so a change to the C API that is not reflected here
fails a test instead of corrupting memory.

The library is loaded with :class:`ctypes.CDLL`, which releases the GIL for the
duration of every foreign call: a long reduction does not block other Python threads.
"""

import ctypes
import enum
import os
import sys
from pathlib import Path

#: Environment variable naming the shared library to load, overriding the search.
LIBRARY_ENV = "PARFOR_LIBRARY"


def _platform_library_name():
    """The file name cargo gives the cdylib on this platform."""
    if sys.platform == "win32":
        return "parfor.dll"
    if sys.platform == "darwin":
        return "libparfor.dylib"
    return "libparfor.so"


def library_candidates():
    """The paths tried in order when ``PARFOR_LIBRARY`` is not set.

    1. The package folder: maturin (cffi bindings, module ``parfor._native``) ships
       the cdylib in the wheel as ``parfor/_native/_native.so``; a library copied
       next to this file by hand is found too.
    2. ``target/release`` of the repository this package sits in, so that the
       package works straight from a checkout after ``cargo build --release``.
    """
    here = Path(__file__).resolve().parent
    name = _platform_library_name()
    return [
        here / "_native" / "_native.so",
        here / name,
        here.parent.parent / "target" / "release" / name,
    ]


def find_library():
    """The path of the shared library to load, or ImportError saying what was tried."""
    override = os.environ.get(LIBRARY_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            # An explicit choice that does not exist is an error, never a silent
            # fallback to some other build.
            raise ImportError(
                f"{LIBRARY_ENV}={override!r} does not name an existing file; point it at "
                f"a built {_platform_library_name()} or unset it"
            )
        return path
    candidates = library_candidates()
    for path in candidates:
        if path.is_file():
            return path
    tried = "\n  ".join(str(p) for p in candidates)
    raise ImportError(
        "cannot find the parfor shared library. Tried:\n  "
        + tried
        + f"\nBuild it with `cargo build --release` in the repository, install the "
        f"package with `pip install ./python`, or set {LIBRARY_ENV} to its path."
    )


# --- enums (values as in include/parfor.h) -----------------------------------------


class DType(enum.IntEnum):
    """``parfor_dtype``: element type of a buffer."""

    F32 = 0
    F64 = 1
    I8 = 2
    I16 = 3
    I32 = 4
    I64 = 5
    U8 = 6
    U16 = 7
    U32 = 8
    U64 = 9


class Op(enum.IntEnum):
    """``parfor_op``: reduction operator."""

    SUM = 0
    PROD = 1
    MIN = 2
    MAX = 3
    BIT_AND = 4
    BIT_OR = 5
    BIT_XOR = 6
    LOGICAL_AND = 7
    LOGICAL_OR = 8
    SUM_EXACT = 9
    NAN_SUM = 10
    NAN_MIN = 11
    NAN_MAX = 12


class Schedule(enum.IntEnum):
    """``parfor_schedule``: how loop ranges are shared out."""

    AUTO = 0
    STATIC = 1
    DYNAMIC = 2
    GUIDED = 3


class Status(enum.IntEnum):
    """``parfor_status``: result of every fallible call."""

    PARFOR_OK = 0
    PARFOR_ERR_NULL_ARGUMENT = 1
    PARFOR_ERR_INVALID_ARGUMENT = 2
    PARFOR_ERR_MISALIGNED = 3
    PARFOR_ERR_EMPTY = 4
    PARFOR_ERR_CALLBACK = 5
    PARFOR_ERR_PANIC = 6
    PARFOR_ERR_RUNTIME = 7


#: ``PARFOR_MAX_THREADS``: the largest team size a call may ask for.
MAX_THREADS = 1024

#: ``PARFOR_EXACT_STATE_WORDS``: int64_t words in a ``parfor_exact_state``.
EXACT_STATE_WORDS = 69

#: The C element type of each dtype, for result slots and per-dtype checks.
CTYPE_OF_DTYPE = {
    DType.F32: ctypes.c_float,
    DType.F64: ctypes.c_double,
    DType.I8: ctypes.c_int8,
    DType.I16: ctypes.c_int16,
    DType.I32: ctypes.c_int32,
    DType.I64: ctypes.c_int64,
    DType.U8: ctypes.c_uint8,
    DType.U16: ctypes.c_uint16,
    DType.U32: ctypes.c_uint32,
    DType.U64: ctypes.c_uint64,
}

# --- types -------------------------------------------------------------------------

# C enums are passed as int (the library takes them as plain ints and validates them).
c_enum = ctypes.c_int


class Options(ctypes.Structure):
    """``struct parfor_options``."""

    _fields_ = [
        ("size", ctypes.c_size_t),
        ("num_threads", ctypes.c_size_t),
        ("schedule", c_enum),
        ("chunk", ctypes.c_size_t),
    ]


class ExactState(ctypes.Structure):
    """``struct parfor_exact_state``: a partial exact sum, plain bytes (the layout
    is documented in parfor.h; only the library reads the words)."""

    _fields_ = [("words", ctypes.c_int64 * EXACT_STATE_WORDS)]


#: ``parfor_body``: int (*)(void *ctx, size_t begin, size_t end)
BODY = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t)
#: ``parfor_fold``: int (*)(void *ctx, size_t begin, size_t end, void *acc)
FOLD = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p
)
#: ``parfor_combine``: void (*)(void *ctx, void *acc, const void *other)
COMBINE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)

_options_p = ctypes.POINTER(Options)
_size_p = ctypes.POINTER(ctypes.c_size_t)
_state_p = ctypes.POINTER(ExactState)

#: name -> (restype, argtypes), in header order. The one place signatures live.
SIGNATURES = {
    "parfor_status_message": (ctypes.c_char_p, [c_enum]),
    "parfor_last_error": (ctypes.c_char_p, []),
    "parfor_version": (ctypes.c_char_p, []),
    "parfor_options_init": (None, [_options_p]),
    "parfor_options_init_size": (c_enum, [_options_p, ctypes.c_size_t]),
    "parfor_for": (
        c_enum,
        [ctypes.c_size_t, ctypes.c_size_t, _options_p, BODY, ctypes.c_void_p],
    ),
    "parfor_reduce": (
        c_enum,
        [ctypes.c_void_p, ctypes.c_size_t, c_enum, c_enum, _options_p, ctypes.c_void_p],
    ),
    "parfor_dot": (
        c_enum,
        [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, c_enum, _options_p, ctypes.c_void_p],
    ),
    "parfor_argmin": (
        c_enum,
        [ctypes.c_void_p, ctypes.c_size_t, c_enum, _options_p, _size_p],
    ),
    "parfor_argmax": (
        c_enum,
        [ctypes.c_void_p, ctypes.c_size_t, c_enum, _options_p, _size_p],
    ),
    "parfor_reduce_with": (
        c_enum,
        [
            ctypes.c_size_t,
            ctypes.c_size_t,
            ctypes.c_void_p,
            ctypes.c_size_t,
            _options_p,
            FOLD,
            COMBINE,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ],
    ),
    "parfor_num_threads": (ctypes.c_size_t, []),
    "parfor_set_num_threads": (c_enum, [ctypes.c_size_t]),
    "parfor_thread_index": (ctypes.c_size_t, []),
    "parfor_exact_state_size": (ctypes.c_size_t, []),
    "parfor_exact_init": (c_enum, [_state_p]),
    "parfor_exact_accumulate": (
        c_enum,
        [_state_p, ctypes.c_void_p, ctypes.c_size_t, c_enum, _options_p],
    ),
    "parfor_exact_accumulate_dot": (
        c_enum,
        [_state_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, c_enum, _options_p],
    ),
    "parfor_exact_merge": (c_enum, [_state_p, _state_p]),
    "parfor_exact_result": (c_enum, [_state_p, c_enum, ctypes.c_void_p]),
    "parfor_dot_exact": (
        c_enum,
        [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, c_enum, _options_p, ctypes.c_void_p],
    ),
}


# --- scan and sort (issue 16) --------------------------------------------------------

#: ``PARFOR_SCAN_EXCLUSIVE``, ``PARFOR_SORT_DESCENDING``, ``PARFOR_SORT_STABLE``: flag bits.
SCAN_EXCLUSIVE = 1
SORT_DESCENDING = 1
SORT_STABLE = 2

#: ``parfor_compare``: int (*)(void *ctx, const void *a, const void *b)
COMPARE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)

SIGNATURES.update(
    {
        "parfor_scan": (
            c_enum,
            [
                ctypes.c_void_p,
                ctypes.c_size_t,
                c_enum,
                c_enum,
                ctypes.c_uint,
                _options_p,
                ctypes.c_void_p,
            ],
        ),
        "parfor_sort": (
            c_enum,
            [ctypes.c_void_p, ctypes.c_size_t, c_enum, ctypes.c_uint, _options_p],
        ),
        "parfor_argsort": (
            c_enum,
            [ctypes.c_void_p, ctypes.c_size_t, c_enum, ctypes.c_uint, _options_p, _size_p],
        ),
        "parfor_sort_with": (
            c_enum,
            [
                ctypes.c_void_p,
                ctypes.c_size_t,
                ctypes.c_size_t,
                COMPARE,
                ctypes.c_void_p,
                ctypes.c_uint,
                _options_p,
            ],
        ),
    }
)

def _load():
    path = find_library()
    try:
        handle = ctypes.CDLL(str(path))
    except OSError as e:
        raise ImportError(f"cannot load the parfor shared library {path}: {e}") from e
    for name, (restype, argtypes) in SIGNATURES.items():
        try:
            fn = getattr(handle, name)
        except AttributeError:
            raise ImportError(
                f"{path} does not export {name}: it is older than this package; rebuild it"
            ) from None
        fn.restype = restype
        fn.argtypes = argtypes
    return path, handle


#: Path of the loaded library, and the library itself.
LIBRARY_PATH, lib = _load()
