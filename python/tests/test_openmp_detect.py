"""parfor sees an OpenMP runtime that Python loaded RTLD_LOCAL (issue 13).

CPython loads extension modules, and ctypes loads libraries, with RTLD_LOCAL: a
libgomp brought by numpy/OpenBLAS, scikit-learn or PyTorch is invisible to
``dlsym(RTLD_DEFAULT)``. Inside an active OpenMP region a parfor call must still run
on the calling thread alone (``parfor_num_threads() == 1``), as it does when the
runtime is linked in. Each case runs in a fresh interpreter so that the library's
configuration and OpenMP lookup start from nothing."""

import ctypes.util
import os
import subprocess
import sys
import unittest

from _support import PYTHON_DIR

_CHILD = r"""
import ctypes, sys
sys.path.insert(0, sys.argv[1])
from parfor._ffi import find_library
pf = ctypes.CDLL(str(find_library()))
pf.parfor_num_threads.restype = ctypes.c_size_t
gomp = ctypes.CDLL(sys.argv[2])  # RTLD_LOCAL, as ctypes and CPython load libraries
if sys.argv[3] == "after":
    # The runtime was looked up (and missed) before: the lookup is retried.
    import time
    for _ in range(200):
        pf.parfor_num_threads()
    time.sleep(0.15)
outside = pf.parfor_num_threads()
CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
gomp.GOMP_parallel.argtypes = [CB, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
gomp.GOMP_parallel.restype = None
gomp.omp_get_thread_num.restype = ctypes.c_int
seen = []

def body(_):
    # Enough calls that the every-64th-call retry of a missed lookup comes round.
    sizes = {pf.parfor_num_threads() for _ in range(200)}
    seen.append((gomp.omp_get_thread_num(), sorted(sizes)))

cb = CB(body)
gomp.GOMP_parallel(cb, None, 2, 0)
print(outside, sorted(seen))
"""


def _libgomp():
    return ctypes.util.find_library("gomp")


@unittest.skipIf(_libgomp() is None, "libgomp is not installed")
class OpenMPLoadedLocal(unittest.TestCase):
    def run_child(self, when):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "PARFOR_"))}
        env["PARFOR_NUM_THREADS"] = "2"
        env["OMP_NUM_THREADS"] = "2"
        lib = os.environ.get("PARFOR_LIBRARY")
        if lib:
            env["PARFOR_LIBRARY"] = lib
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(PYTHON_DIR), _libgomp(), when],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.strip()

    def test_inside_region_runs_inline(self):
        self.assertEqual(self.run_child("before"), "2 [(0, [1]), (1, [1])]")

    def test_runtime_loaded_after_a_missed_lookup(self):
        # The first lookup found no runtime; after the retry interval, the calls
        # inside the region see it. Every call inside must be 1: the first one after
        # the region began may still be 2 only if the retry had not come round, and
        # 200 calls guarantee it has (every 64th call, 100 ms after the miss).
        out = self.run_child("after")
        self.assertTrue(out.startswith("2 "), out)
        self.assertIn("(0, [1", out)


if __name__ == "__main__":
    unittest.main()
