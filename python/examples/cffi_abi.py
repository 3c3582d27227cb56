"""parfor from cffi in ABI mode: no compiler, the declarations come from the shipped
header include/parfor.h, the library is dlopen'ed.

cffi's cdef() takes plain C declarations only, so the header's preprocessor lines
are resolved first (by python/parfor/_cdef.py): #include lines dropped, the include
guard dropped, the `#ifdef __cplusplus` blocks (extern "C") skipped;
`#define NAME <number>` stays (cffi turns it into a constant).

    python3 python/examples/cffi_abi.py
Environment: PARFOR_HEADER (default: include/parfor.h of this repository) and
PARFOR_LIBRARY (default: target/release/libparfor.so of this repository).
"""

import importlib.util
import os
import sys
from pathlib import Path

import cffi

REPO = Path(__file__).resolve().parents[2]
HEADER = Path(os.environ.get("PARFOR_HEADER", REPO / "include" / "parfor.h"))
LIBRARY = Path(os.environ.get("PARFOR_LIBRARY", REPO / "target" / "release" / "libparfor.so"))


def _load_cdef_filter():
    """The package's header filter (python/parfor/_cdef.py), loaded by path so that
    this example does not import the package itself: the same rules the package and
    the wheel build use (preprocessor lines resolved, `UINT64_MAX`-style constants
    written as integers, which cffi's ABI mode needs)."""
    spec = importlib.util.spec_from_file_location(
        "_parfor_cdef", Path(__file__).resolve().parents[1] / "parfor" / "_cdef.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.cdef_from_header


declarations = _load_cdef_filter()


ffi = cffi.FFI()
ffi.cdef(declarations(HEADER.read_text()))
lib = ffi.dlopen(str(LIBRARY))


def check(status):
    """Raises with the library's message unless status is PARFOR_OK."""
    if status != lib.PARFOR_OK:
        raise RuntimeError(
            f"parfor status {status}: {ffi.string(lib.parfor_last_error()).decode()}"
        )


def main():
    n = 1_000_000
    x = ffi.new("double[]", [float(i % 1000) for i in range(n)])
    out = ffi.new("double *")
    check(lib.parfor_reduce(x, n, lib.PARFOR_F64, lib.PARFOR_SUM, ffi.NULL, out))
    print(f"sum of {n} doubles: {out[0]}")
    assert out[0] == sum(float(i % 1000) for i in range(n))

    # Options: a team of two threads, dynamic schedule.
    opts = ffi.new("parfor_options *")
    lib.parfor_options_init(opts)
    opts.num_threads = 2
    opts.schedule = lib.PARFOR_SCHEDULE_DYNAMIC
    check(lib.parfor_dot(x, x, n, lib.PARFOR_F64, opts, out))
    print(f"dot(x, x): {out[0]}")

    index = ffi.new("size_t *")
    check(lib.parfor_argmax(x, n, lib.PARFOR_F64, ffi.NULL, index))
    print(f"argmax: {index[0]}")
    assert index[0] == 999

    # A loop body as a cffi callback (Python code, run under the GIL).
    squares = ffi.new("int64_t[]", 100)

    @ffi.callback("parfor_body")
    def body(ctx, begin, end):
        data = ffi.cast("int64_t *", ctx)
        for i in range(begin, end):
            data[i] = i * i
        return 0

    check(lib.parfor_for(0, 100, ffi.NULL, body, squares))
    assert list(squares) == [i * i for i in range(100)]
    print("parfor_for with a cffi callback: ok")

    # Errors come back as a status, with the detail in parfor_last_error().
    status = lib.parfor_reduce(x, 0, lib.PARFOR_F64, lib.PARFOR_MIN, ffi.NULL, out)
    assert status == lib.PARFOR_ERR_EMPTY
    print(f"min of nothing: status {status}, {ffi.string(lib.parfor_status_message(status)).decode()}")
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
