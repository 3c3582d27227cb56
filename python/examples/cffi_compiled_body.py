"""A parfor loop whose body is C compiled by cffi (API mode), so that every thread
of the team runs it at full speed without the GIL.

The body is `int saxpy_body(void *ctx, size_t begin, size_t end)`, the parfor_body
signature; cffi compiles it into an extension module in a temporary directory, and
`lib.saxpy_body` is passed to parfor.parallel_for (it becomes the function pointer
parfor_for calls). The same loop with a Python callable body is timed beside it, to
show what the GIL costs.

    python3 python/examples/cffi_compiled_body.py
Needs cffi and a C compiler (cffi uses the compiler Python was built with, or CC).
"""

import array
import importlib
import sys
import tempfile
import time

import cffi

import parfor

C_SOURCE = """
#include <stddef.h>

struct saxpy {
    double a;
    const double *x;
    double *y;
};

/* y[i] += a * x[i] for i in [begin, end): a parfor_body. */
int saxpy_body(void *ctx, size_t begin, size_t end)
{
    struct saxpy *s = ctx;
    for (size_t i = begin; i < end; i++)
        s->y[i] += s->a * s->x[i];
    return 0;
}
"""

C_DECLARATIONS = """
struct saxpy { double a; const double *x; double *y; };
int saxpy_body(void *ctx, size_t begin, size_t end);
"""


def build(tmpdir):
    """Compiles the body into the module _parfor_saxpy in tmpdir and imports it."""
    ffi = cffi.FFI()
    ffi.cdef(C_DECLARATIONS)
    ffi.set_source("_parfor_saxpy", C_SOURCE, extra_compile_args=["-O2", "-std=c99"])
    ffi.compile(tmpdir=tmpdir, verbose=False)
    sys.path.insert(0, tmpdir)
    try:
        return importlib.import_module("_parfor_saxpy")
    finally:
        sys.path.remove(tmpdir)


def main():
    n = 4_000_000
    with tempfile.TemporaryDirectory() as tmpdir:
        module = build(tmpdir)
        ffi, lib = module.ffi, module.lib
        x = array.array("d", [float(i % 7) for i in range(n)])
        y = array.array("d", [1.0]) * n
        # ctx points at the struct; the arrays are shared with cffi without copies.
        ctx = ffi.new("struct saxpy *", {"a": 2.0, "x": ffi.from_buffer("double[]", x),
                                         "y": ffi.from_buffer("double[]", y)})
        t0 = time.perf_counter()
        parfor.parallel_for(n, lib.saxpy_body, ctx)
        compiled = time.perf_counter() - t0
        assert all(y[i] == 1.0 + 2.0 * (i % 7) for i in range(0, n, 9973))
        assert y[n - 1] == 1.0 + 2.0 * ((n - 1) % 7)
        print(f"compiled body over {n} elements: {compiled * 1e3:.1f} ms "
              f"on {parfor.num_threads()} threads")

        # The same function through an explicit cffi function pointer.
        parfor.parallel_for(n, ffi.addressof(lib, "saxpy_body"), ctx)
        assert y[5] == 1.0 + 2 * 2.0 * 5

        # The same loop as a Python callable: correct, but the team takes turns
        # holding the GIL, and each element costs interpreter time.
        m = 200_000
        ys = array.array("d", [1.0]) * m

        def python_body(ctx, begin, end):
            for i in range(begin, end):
                ys[i] += 2.0 * x[i]

        t0 = time.perf_counter()
        parfor.parallel_for(m, python_body)
        python = time.perf_counter() - t0
        assert ys[m - 1] == 1.0 + 2.0 * ((m - 1) % 7)
        print(f"Python body over {m} elements: {python * 1e3:.1f} ms "
              f"({python / m * 1e9:.0f} ns per element vs "
              f"{compiled / n * 1e9:.2f} ns compiled)")
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
