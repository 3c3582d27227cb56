"""The C boundary: finds and loads libparfor and declares its API with cffi (ABI
mode) from the C header itself, the one source of the declarations.

- An installed wheel carries ``parfor/_native/ffi.py``, which maturin's cffi mode
  generated at build time from ``include/parfor.h`` (via ``parfor._cdef``).
- A checkout reads ``include/parfor.h`` at import and hands it to ``ffi.cdef``
  (through the same ``parfor._cdef`` filter).

Nothing in this package spells a C signature, an enum value or a struct layout a
second time: the Python enums below (:class:`DType`, :class:`Op`, :class:`Schedule`,
:class:`Status`) and the constants are read from the declarations.

cffi releases the GIL for the whole duration of every call into the library, and
takes it again in callbacks (``ffi.callback``), so a long reduction does not block
other Python threads and a Python loop body may run on parfor's threads.

This is the only module that touches the shared library's symbols.
"""

import ctypes
import enum
import importlib.util
import os
import sys
from pathlib import Path

import cffi

from ._cdef import cdef_from_header

#: Environment variable naming the shared library to load, overriding the search.
LIBRARY_ENV = "PARFOR_LIBRARY"

_HERE = Path(__file__).resolve().parent
#: The header of the checkout this package sits in (absent in an installed wheel).
HEADER_PATH = _HERE.parent.parent / "include" / "parfor.h"
_NATIVE_FFI = _HERE / "_native" / "ffi.py"


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
    name = _platform_library_name()
    return [
        _HERE / "_native" / "_native.so",
        _HERE / name,
        _HERE.parent.parent / "target" / "release" / name,
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


def _make_ffi():
    """The cffi declarations of the library: the wheel's generated module if there is
    one (loaded by path, so that ``parfor._native/__init__.py`` does not open a second
    copy of the library), else the checkout's header."""
    if _NATIVE_FFI.is_file():
        spec = importlib.util.spec_from_file_location("parfor._native_ffi", _NATIVE_FFI)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.ffi, str(_NATIVE_FFI)
    if not HEADER_PATH.is_file():
        raise ImportError(
            f"cannot declare the parfor API: neither {_NATIVE_FFI} (an installed wheel) "
            f"nor {HEADER_PATH} (a checkout) exists"
        )
    ffi = cffi.FFI()
    size_max = 2 ** (8 * ctypes.sizeof(ctypes.c_size_t)) - 1
    ffi.cdef(cdef_from_header(HEADER_PATH.read_text(encoding="utf-8"), size_max=size_max))
    return ffi, str(HEADER_PATH)


def _load():
    ffi, source = _make_ffi()
    path = find_library()
    try:
        handle = ffi.dlopen(str(path))
    except OSError as e:
        raise ImportError(f"cannot load the parfor shared library {path}: {e}") from e
    # Every function the declarations name must be there: resolving them now turns
    # an older library into an ImportError instead of an AttributeError mid-call.
    for name in _function_names(ffi):
        try:
            getattr(handle, name)
        except AttributeError:
            raise ImportError(
                f"{path} does not export {name} (declared by {source}): it is older than "
                f"this package; rebuild it"
            ) from None
    return ffi, source, path, handle


def _function_names(ffi):
    """Names of the functions the declarations hold (cffi lists them in ``dir`` of
    a library opened in ABI mode, together with the constants)."""
    names = []
    for name in dir(_probe_lib(ffi)):
        if name.startswith("parfor_"):
            names.append(name)
    return names


def _probe_lib(ffi):
    # ffi.dlopen(None) opens the C standard library; dir() of it lists the cdef's
    # names without resolving them.
    return ffi.dlopen(None) if sys.platform != "win32" else ffi.dlopen("msvcrt")


#: The cffi FFI instance, where the declarations came from, the path of the loaded
#: library, and the library itself (``lib.parfor_reduce(...)``).
ffi, DECLARATIONS_SOURCE, LIBRARY_PATH, lib = _load()


# --- enums and constants, all read from the declarations -----------------------------


def _enum(name, c_type, prefix, doc):
    """An IntEnum of the C enum ``c_type``, member names without ``prefix``."""
    members = sorted(ffi.typeof(c_type).elements.items())
    cls = enum.IntEnum(name, [(n[len(prefix):], v) for v, n in members], module=__name__)
    cls.__doc__ = doc
    return cls


DType = _enum("DType", "parfor_dtype", "PARFOR_", "``parfor_dtype``: element type of a buffer.")
Op = _enum("Op", "parfor_op", "PARFOR_", "``parfor_op``: reduction operator.")
Schedule = _enum(
    "Schedule",
    "parfor_schedule",
    "PARFOR_SCHEDULE_",
    "``parfor_schedule``: how loop ranges are shared out.",
)
Status = _enum("Status", "parfor_status", "", "``parfor_status``: result of every fallible call.")

#: ``PARFOR_MAX_THREADS``: the largest team size a call may ask for.
MAX_THREADS = lib.PARFOR_MAX_THREADS
#: ``PARFOR_EXACT_STATE_WORDS``: int64_t words in a ``parfor_exact_state``.
EXACT_STATE_WORDS = lib.PARFOR_EXACT_STATE_WORDS
#: ``PARFOR_MAX_DIMS`` and ``PARFOR_ALL_AXES`` once the library has its N-d API.
MAX_DIMS = getattr(lib, "PARFOR_MAX_DIMS", 32)
ALL_AXES = getattr(lib, "PARFOR_ALL_AXES", 2**64 - 1)
#: ``PARFOR_MOMENTS_SKIP_NAN``: flag of ``parfor_moments_array``.
MOMENTS_SKIP_NAN = getattr(lib, "PARFOR_MOMENTS_SKIP_NAN", 1)
#: Flags of parfor_scan and parfor_sort/parfor_argsort/parfor_sort_with.
SCAN_EXCLUSIVE = lib.PARFOR_SCAN_EXCLUSIVE
SORT_DESCENDING = lib.PARFOR_SORT_DESCENDING
SORT_STABLE = lib.PARFOR_SORT_STABLE

#: The C element type of each dtype, for result slots and per-dtype checks.
CTYPE_OF_DTYPE = {
    DType.F32: "float",
    DType.F64: "double",
    DType.I8: "int8_t",
    DType.I16: "int16_t",
    DType.I32: "int32_t",
    DType.I64: "int64_t",
    DType.U8: "uint8_t",
    DType.U16: "uint16_t",
    DType.U32: "uint32_t",
    DType.U64: "uint64_t",
}

#: ``parfor_body`` as a ctypes type, for users who write their loop body with ctypes
#: (``parfor.BODY(fn)``): parallel_for takes its address. The signature is checked
#: against the header's ``parfor_body`` by tests/test_header.py.
BODY = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t)


def string(cdata):
    """A ``const char *`` result as str (empty for NULL)."""
    if cdata == ffi.NULL:
        return ""
    return ffi.string(cdata).decode("utf-8", "replace")


# Options structs by (num_threads, schedule, chunk), made once: the library only reads
# them, so one struct may serve calls from every thread at once.
_options_cache = {}


def options(num_threads=None, schedule=None, chunk=None):
    """A ``parfor_options *`` for one call, or ``ffi.NULL`` for the defaults.

    Values are checked by the library (which reports PARFOR_ERR_INVALID_ARGUMENT);
    here only their range as C types is checked, since cffi would refuse or wrap them.
    """
    if num_threads is None and schedule is None and chunk is None:
        return ffi.NULL
    # The types too: True == 1 (and hashes alike) but is refused.
    key = (num_threads, schedule, chunk, type(num_threads), type(schedule), type(chunk))
    opts = _options_cache.get(key)
    if opts is not None:
        return opts
    opts = ffi.new("parfor_options *")
    lib.parfor_options_init(opts)
    if num_threads is not None:
        opts.num_threads = _size(num_threads, "num_threads")
    if schedule is not None:
        opts.schedule = _schedule(schedule)
    if chunk is not None:
        opts.chunk = _size(chunk, "chunk")
    if len(_options_cache) < 4096:
        _options_cache[key] = opts
    return opts


_SIZE_MAX = 2 ** (8 * ffi.sizeof("size_t")) - 1


def _size(n, what):
    import operator

    if isinstance(n, bool):
        raise TypeError(f"{what} must be an int, not bool")
    n = operator.index(n)
    if not 0 <= n <= _SIZE_MAX:
        raise ValueError(f"{what} must be in 0..{_SIZE_MAX}, not {n}")
    return n


_SCHEDULE_NAMES = {s.name.lower(): int(s) for s in Schedule}


def _schedule(schedule):
    if isinstance(schedule, str):
        try:
            return _SCHEDULE_NAMES[schedule.lower()]
        except KeyError:
            raise ValueError(
                f"unknown schedule {schedule!r}; expected one of {', '.join(_SCHEDULE_NAMES)}"
            ) from None
    if isinstance(schedule, bool) or not isinstance(schedule, int):
        raise TypeError(f"schedule must be a str or a parfor.Schedule, not {type(schedule).__name__}")
    if not -(2**31) <= schedule < 2**31:
        raise ValueError(f"schedule {schedule} is out of the range of a C int")
    # Unknown values within C's int range go to the library, which reports them.
    return int(schedule)
