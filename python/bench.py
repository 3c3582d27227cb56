"""parfor against numpy on float64 arrays: sum, dot and min, side by side.

    python3 python/bench.py               # 1e3 .. 1e8 elements (about 1-2 minutes)
    python3 python/bench.py --max 1e6     # smaller and quicker
    python3 python/bench.py --budget 0.1  # seconds of timing per cell (default 0.3)
    python3 python/bench.py --threads 1   # parfor team size (default: the library's)

For each size, each cell is the median over several timed batches of calls on the
same array (so the data is in cache whenever it fits); the ratio is numpy's time
over parfor's (above 1: parfor is faster). Then the per-call overhead of a parfor
call from Python on an 8-element array, against the bare ctypes call of
parfor_reduce on the same pointer (no buffer handling, no result conversion).

The 1e8 row needs two arrays of 800 MB (for dot). numpy's dot uses its BLAS, whose
speed depends on OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE among others: the header says
whether they were set.
"""

import argparse
import ctypes
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import parfor  # noqa: E402


# Seconds to wait before timing each side, so that the other side's threads have gone
# to sleep: numpy's OpenBLAS threads keep spinning for 0.1-0.15 s after a call
# (measured here: a parfor.dot of 1e5 takes 22 us while they spin, 8.7 us after), and
# parfor's workers spin for up to a few ms.
PAUSE = 0.2


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def calls_per_batch(fn, budget):
    """How many calls of fn take about budget/7 (after a warm-up call)."""
    fn()  # warm-up: page faults, thread team start, caches
    calls = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        if time.perf_counter() - t0 >= budget / 7 or calls >= 1 << 20:
            return calls
        calls *= 2


def batch(fn, calls):
    """Seconds per call of fn over one batch of calls."""
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def side_by_side(ours, theirs, budget):
    """Median seconds per call of each, over 7 batches taken in turns.

    Taking the batches in turns (ours, theirs, ours, ...) keeps a drift of the shared
    machine's speed from favouring whichever side runs first. A pause before each
    batch lets the other side's threads (parfor's team and OpenBLAS's both spin a
    while after a call) go to sleep first, so that neither is timed against the
    other's spinning on 2 cores."""
    sides = []
    for fn in (ours, theirs):
        time.sleep(PAUSE)
        sides.append((fn, calls_per_batch(fn, budget), []))
    for _ in range(7):
        for fn, calls, samples in sides:
            time.sleep(PAUSE)
            samples.append(batch(fn, calls))
    return [statistics.median(samples) for _, _, samples in sides]


def time_per_call(fn, budget):
    """Median seconds per call of fn over 7 batches of about budget/7 each."""
    calls = calls_per_batch(fn, budget)
    return statistics.median(batch(fn, calls) for _ in range(7))


def fmt_time(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} us"
    return f"{seconds * 1e3:.2f} ms"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max", type=float, default=1e8, help="largest size (default 1e8)")
    parser.add_argument("--min", type=float, default=1e3, help="smallest size (default 1e3)")
    parser.add_argument("--budget", type=float, default=0.3, help="seconds of timing per cell")
    parser.add_argument("--threads", type=int, default=0, help="parfor team size (default: the library's)")
    args = parser.parse_args()
    parfor.set_num_threads(args.threads)

    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs")
    print(f"Python {platform.python_version()}, numpy {np.__version__}, parfor {parfor.__version__} "
          f"({parfor.LIBRARY_PATH}), parfor team: {parfor.num_threads()} threads")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                "PARFOR_NUM_THREADS"):
        value = os.environ.get(var)
        print(f"  {var}: {'set to ' + repr(value) if value is not None else 'not set'}")
    if hasattr(os, "getloadavg"):
        print(f"  load average at start: {os.getloadavg()[0]:.2f} (other work on the machine skews timings)")
    print()

    header = (f"{'n':>6} | {'parfor.sum':>11} {'numpy.sum':>11} {'ratio':>6} | "
              f"{'parfor.dot':>11} {'numpy.dot':>11} {'ratio':>6} | "
              f"{'parfor.min':>11} {'numpy.min':>11} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    exponent = round(np.log10(args.min))
    while 10 ** exponent <= args.max:
        n = 10 ** exponent
        rng = np.random.default_rng(exponent)
        a = rng.standard_normal(n)
        b = rng.standard_normal(n)
        cells = []
        for ours, theirs in (
            (lambda: parfor.sum(a), lambda: np.sum(a)),
            (lambda: parfor.dot(a, b), lambda: np.dot(a, b)),
            (lambda: parfor.min(a), lambda: np.min(a)),
        ):
            t_ours, t_theirs = side_by_side(ours, theirs, args.budget)
            cells.append(f"{fmt_time(t_ours):>11} {fmt_time(t_theirs):>11} {t_theirs / t_ours:>6.2f}")
        print(f"  1e{exponent} | " + " | ".join(cells), flush=True)
        del a, b
        exponent += 1

    print()
    x = np.arange(8.0)
    out = ctypes.c_double()
    address = x.ctypes.data
    reduce_fn = parfor.lib.parfor_reduce

    def bare():
        reduce_fn(address, 8, 1, 0, None, ctypes.byref(out))

    t_bare = time_per_call(bare, 1.0)
    t_sum = time_per_call(lambda: parfor.sum(x), 1.0)
    t_np = time_per_call(lambda: np.sum(x), 1.0)
    print("Per-call cost on 8 float64 elements:")
    print(f"  bare ctypes call of parfor_reduce: {fmt_time(t_bare)}")
    print(f"  parfor.sum(x):                     {fmt_time(t_sum)}  "
          f"(overhead over the bare call: {fmt_time(t_sum - t_bare)})")
    print(f"  numpy.sum(x):                      {fmt_time(t_np)}")


if __name__ == "__main__":
    main()
