"""Scan and sort rows beside numpy (issue 16): parfor.cumsum vs numpy.cumsum (f64,
i64) and parfor.sort vs numpy.sort (f64, i32, u64; random, sorted, reversed, few
distinct), 1e3..1e8 elements (``--quick``: 1e3..1e5).

    python3 python/bench_scan_sort.py [--quick | --max N]

(``--max 1e7``: sizes up to 1e7 only.)

Prints one CSV line per measurement, in the columns of the Rust comparison
(``cargo run --release -p parfor-compare --bin scan_sort``), so both tables can be
put side by side: workload, dtype, pattern, n, peer, threads, median seconds,
elements per second. Each figure is the median of at least 5 runs and 0.2 s; sorts
time only the sort of a fresh copy.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import parfor  # noqa: E402


def median_time(prepare, run):
    prepare()
    run()
    runs = []
    start = time.perf_counter()
    while len(runs) < 5 or time.perf_counter() - start < 0.2:
        prepare()
        t = time.perf_counter()
        run()
        runs.append(time.perf_counter() - t)
        if len(runs) >= 1000:
            break
    runs.sort()
    return runs[len(runs) // 2]


def row(workload, dtype, pattern, n, peer, threads, s):
    print(f"{workload},{dtype},{pattern},{n},{peer},{threads},{s:.9f},{n / s:.4e}", flush=True)


def patterns(x):
    rng = np.random.default_rng(len(x))
    s = np.sort(x)
    few = rng.choice(x[:16], len(x)) if len(x) >= 16 else x.copy()
    return [("random", x), ("sorted", s), ("reversed", s[::-1].copy()), ("few distinct", few)]


def main():
    quick = "--quick" in sys.argv
    top = 1e5 if quick else 1e8
    if "--max" in sys.argv:
        top = float(sys.argv[sys.argv.index("--max") + 1])
    sizes = [10**k for k in range(3, 9) if 10**k <= top]
    threads = parfor.num_threads()
    rng = np.random.default_rng(16)
    print("workload,dtype,pattern,n,peer,threads,median_s,elements_per_s")
    for n in sizes:
        for name, x in [("f64", rng.random(n)), ("i64", rng.integers(-1000, 1001, n))]:
            out = np.empty_like(x)
            row("scan_sum", name, "random", n, "parfor.cumsum", threads,
                median_time(lambda: None, lambda: parfor.cumsum(x, out=out)))
            row("scan_sum", name, "random", n, "numpy.cumsum", 1,
                median_time(lambda: None, lambda: np.cumsum(x, out=out)))
    for n in sizes:
        inputs = [
            ("f64", rng.random(n) - 0.5),
            ("i32", rng.integers(-(2**31), 2**31, n, dtype=np.int32)),
            ("u64", rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)),
        ]
        for name, x in inputs:
            for pattern, data in patterns(x):
                work = data.copy()
                prep = lambda: np.copyto(work, data)  # noqa: E731
                row("sort", name, pattern, n, "parfor.sort_inplace", threads,
                    median_time(prep, lambda: parfor.sort_inplace(work)))
                row("sort", name, pattern, n, "numpy ndarray.sort", 1,
                    median_time(prep, lambda: work.sort()))


if __name__ == "__main__":
    main()
