"""parfor against numpy (and bottleneck) side by side: a size sweep of sum, dot and
min on float64 arrays, then shaped data (strided views, axis sums of C- and F-order
matrices, mean/std, nan-functions, any), then the cost of one small call.

    python3 python/bench.py               # everything (several minutes, ~2 GB)
    python3 python/bench.py --quick       # sizes / 10, short budgets: a smoke run
    python3 python/bench.py --max 1e6     # sweep up to 1e6 only
    python3 python/bench.py --budget 0.1  # seconds of timing per cell (default 0.3)
    python3 python/bench.py --threads 1   # parfor team size (default: the library's)
    python3 python/bench.py --only shaped # one section: sweep, shaped or call

For each size, each cell is the median over several timed batches of calls on the
same array (so the data is in cache whenever it fits); the ratio is numpy's time
over parfor's (above 1: parfor is faster). The shaped rows also give the quartiles
of the batches ([q1 .. q3]) and the issue's target for the row. Then the per-call
overhead of a parfor call from Python on an 8-element array, against numpy's own
call and the bare cffi call of parfor_reduce on the same pointer.

The 1e8 row needs two arrays of 800 MB (for dot). numpy's dot uses its BLAS, whose
speed depends on OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE among others: the header says
whether they were set.
"""

import argparse
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


def side_by_side(ours, theirs, budget, quartiles=False, *others):
    """Median seconds per call of each, over 7 batches taken in turns (with
    ``quartiles``: (q1, median, q3) of each). ``others`` are further functions
    timed in the same turns (bottleneck).

    Taking the batches in turns (ours, theirs, ours, ...) keeps a drift of the shared
    machine's speed from favouring whichever side runs first. A pause before each
    batch lets the other side's threads (parfor's team and OpenBLAS's both spin a
    while after a call) go to sleep first, so that neither is timed against the
    other's spinning on 2 cores."""
    sides = []
    for fn in (ours, theirs) + others:
        time.sleep(PAUSE)
        sides.append((fn, calls_per_batch(fn, budget), []))
    for _ in range(7):
        for fn, calls, samples in sides:
            time.sleep(PAUSE)
            samples.append(batch(fn, calls))
    if quartiles:
        return [tuple(statistics.quantiles(samples, n=4, method="inclusive")) for _, _, samples in sides]
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
    parser.add_argument("--quick", action="store_true", help="sizes / 10, short budgets, sweep to 1e6")
    parser.add_argument("--only", choices=("sweep", "shaped", "call"), help="run one section")
    args = parser.parse_args()
    if args.quick:
        args.budget = min(args.budget, 0.05)
        args.max = min(args.max, 1e6)
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

    if args.only in (None, "sweep"):
        sweep(args)
    if args.only in (None, "shaped"):
        if hasattr(parfor.lib, "parfor_reduce_array"):
            shaped(args)
        else:
            print("(shaped rows skipped: the loaded library has no parfor_reduce_array yet)\n")
    if args.only in (None, "call"):
        call_cost(args)


def sweep(args):
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


def fmt_quartiles(q):
    return f"{fmt_time(q[1]):>10} [{fmt_time(q[0])} .. {fmt_time(q[2])}]"


def _target(n):
    """The issue's speed target for a row of n elements (issue 12: never slower
    than numpy/bottleneck from 1e5 elements, 1.5x faster from 1e7 on 2 cores)."""
    if n >= 10**7:
        return ">= 1.5x"
    if n >= 10**5:
        return ">= 1.0x"
    return "-"


def shaped(args):
    """The rows of issue 12's benchmark: each parfor call against numpy (and
    bottleneck for the nan-functions) on the same data, in one run."""
    try:
        import bottleneck as bn
    except ImportError:
        bn = None
    scale = 10 if args.quick else 1
    n7 = 10**7 // scale
    rng = np.random.default_rng(12)
    x2 = rng.standard_normal(2 * n7)
    x = x2[:n7]
    nan_x = rng.standard_normal(n7)
    nan_x[rng.random(n7) < 0.1] = np.nan
    flags = np.zeros(10**8 // scale, dtype=bool)  # all False: every element is read
    rows = [
        (f"sum(x[::2]), x[::2] of {n7:.0e}", n7, lambda: parfor.sum(x2[::2]), lambda: np.sum(x2[::2]), None),
        (f"sum(x[::-1]), {n7:.0e}", n7, lambda: parfor.sum(x[::-1]), lambda: np.sum(x[::-1]), None),
    ]
    for rows_, cols in ((1000, 1000), (10000 // scale, 1000)):
        c = rng.standard_normal((rows_, cols))
        f = np.asfortranarray(c)
        for name, m in (("C", c), ("F", f)):
            for axis in (0, 1):
                rows.append((
                    f"sum(axis={axis}) {name} {rows_}x{cols}", m.size,
                    (lambda m=m, axis=axis: parfor.sum(m, axis=axis)),
                    (lambda m=m, axis=axis: np.sum(m, axis=axis)), None,
                ))
    rows += [
        (f"mean {n7:.0e}", n7, lambda: parfor.mean(x), lambda: np.mean(x), None),
        (f"std {n7:.0e}", n7, lambda: parfor.std(x), lambda: np.std(x), None),
        (f"nansum {n7:.0e}, 10% NaN", n7, lambda: parfor.nansum(nan_x), lambda: np.nansum(nan_x),
         (lambda: bn.nansum(nan_x)) if bn else None),
        (f"nanmax {n7:.0e}, 10% NaN", n7, lambda: parfor.nanmax(nan_x), lambda: np.nanmax(nan_x),
         (lambda: bn.nanmax(nan_x)) if bn else None),
        (f"any {flags.size:.0e} bool", flags.size, lambda: parfor.any(flags), lambda: np.any(flags), None),
    ]
    header = (f"{'row':<30} | {'parfor median [q1 .. q3]':>34} | {'numpy median [q1 .. q3]':>34} | "
              f"{'ratio':>6} | {'bottleneck':>10} {'ratio':>6} | target")
    print(header)
    print("-" * len(header))
    for label, n, ours, theirs, bneck in rows:
        others = (bneck,) if bneck else ()
        qs = side_by_side(ours, theirs, args.budget, True, *others)
        q_ours, q_theirs = qs[0], qs[1]
        extra = f"{fmt_time(qs[2][1]):>10} {qs[2][1] / q_ours[1]:>6.2f}" if bneck else f"{'-':>10} {'':>6}"
        print(f"{label:<30} | {fmt_quartiles(q_ours):>34} | {fmt_quartiles(q_theirs):>34} | "
              f"{q_theirs[1] / q_ours[1]:>6.2f} | {extra} | {_target(n)}", flush=True)
    if bn is None:
        print("(bottleneck is not installed: its columns are empty)")
    print()


def call_cost(args):
    x = np.arange(8.0)
    out = parfor.ffi.new("double *")
    pointer = parfor.ffi.from_buffer(x)
    reduce_fn = parfor.lib.parfor_reduce
    null = parfor.ffi.NULL
    budget = 0.2 if args.quick else 1.0

    def bare():
        reduce_fn(pointer, 8, 1, 0, null, out)

    t_bare = time_per_call(bare, budget)
    t_sum = time_per_call(lambda: parfor.sum(x), budget)
    t_np = time_per_call(lambda: np.sum(x), budget)
    print("Per-call cost on 8 float64 elements (target: parfor.sum at most 1.5x numpy.sum):")
    print(f"  bare cffi call of parfor_reduce: {fmt_time(t_bare)}")
    print(f"  parfor.sum(x):                   {fmt_time(t_sum)}  "
          f"(overhead over the bare call: {fmt_time(t_sum - t_bare)})")
    print(f"  numpy.sum(x):                    {fmt_time(t_np)}  (parfor / numpy: {t_sum / t_np:.2f})")
    index = parfor.ffi.new("size_t *")
    argmin_fn = parfor.lib.parfor_argmin

    def bare_argmin():
        argmin_fn(pointer, 8, 1, null, index)

    print(f"  bare cffi call of parfor_argmin: {fmt_time(time_per_call(bare_argmin, budget))}")
    names = ("max", "min", "prod", "any", "all", "mean", "var", "std", "nansum", "nanmax", "nanmean",
             "argmin", "argmax", "count_nonzero")
    if not hasattr(parfor.lib, "parfor_reduce_array"):
        names = ("max",)
    if hasattr(parfor, "cumsum"):
        names += ("cumsum", "sort", "argsort")
    for name in names:
        t_p = time_per_call(lambda name=name: getattr(parfor, name)(x), budget)
        t_n = time_per_call(lambda name=name: getattr(np, name)(x), budget)
        print(f"  parfor.{name}(x): {fmt_time(t_p)}, numpy.{name}(x): {fmt_time(t_n)} "
              f"(parfor / numpy: {t_p / t_n:.2f})")
    # The sums numpy widens (bool and narrow integers into int64/uint64).
    for dtype in ("int32", "uint8", "bool"):
        y = x.astype(dtype)
        t_p = time_per_call(lambda y=y: parfor.sum(y), budget)
        t_n = time_per_call(lambda y=y: np.sum(y), budget)
        print(f"  parfor.sum(x as {dtype}): {fmt_time(t_p)}, numpy.sum: {fmt_time(t_n)} "
              f"(parfor / numpy: {t_p / t_n:.2f})")


if __name__ == "__main__":
    main()
