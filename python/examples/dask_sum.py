"""Sum of a large, lazily built, chunked Dask array on a dask.distributed
LocalCluster: parfor.dask.sum (fast and exact) against dask.array.sum.

The array is ``1000 * sin(i)`` for i = 0..n-1, built lazily in chunks (each worker
makes its own chunks; the values do not depend on the chunking). By default it is
first persisted in the workers' memory so that the timings are of the reductions
alone (``--no-persist`` times building + summing; n float64 take 8n bytes spread
over the workers). The example checks that the exact sum has the same bits under a
second chunking, and equals math.fsum when n is small enough to check locally.

    python examples/dask_sum.py --size 1e9 --workers 2 --threads 1      # the README run
    python examples/dask_sum.py --size 1e6 --scheduler threads          # quick, no cluster

Prints "ok" last.
"""

import argparse
import logging
import math
import os
import time

import dask
import dask.array as da
import numpy as np

import parfor
import parfor.dask as pdask

CHECK_LOCALLY_UP_TO = 20_000_000  # elements: math.fsum of 8 bytes each in this process


def build(n, chunk):
    return 1e3 * da.sin(da.arange(0, n, chunks=chunk, dtype=np.float64))


def timed(what, compute, repeat):
    best, value = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        value = compute()
        best = min(best, time.perf_counter() - start)
    print(f"  {what:<34} {best:9.3f} s   {float(value)!r}")
    return float(value), best


def run(args, compute, persist):
    n, chunk = int(args.size), int(args.chunk)
    x = build(n, chunk)
    if persist:
        start = time.perf_counter()
        x = persist(x)
        print(f"built and persisted {n} float64 in chunks of {chunk}: "
              f"{time.perf_counter() - start:.3f} s")
    print(f"best of {args.repeat}:")
    fast, t_fast = timed("parfor.dask.sum", lambda: compute(pdask.sum(x)), args.repeat)
    exact, t_exact = timed(
        "parfor.dask.sum(exact=True)", lambda: compute(pdask.sum(x, exact=True)), args.repeat
    )
    theirs, t_dask = timed("dask.array.sum", lambda: compute(da.sum(x)), args.repeat)
    print(f"  parfor.dask.sum / dask.array.sum: {t_dask / t_fast:.2f}x faster; "
          f"exact: {t_dask / t_exact:.2f}x")
    print(f"  error against the exact sum: parfor.dask.sum {fast - exact:+.3e}, "
          f"dask.array.sum {theirs - exact:+.3e}")

    # The exact sum does not depend on the chunking.
    other = build(n, max(1, chunk // 3 + 1))
    again = float(compute(pdask.sum(other, exact=True)))
    assert again.hex() == exact.hex(), (again, exact)
    if n <= CHECK_LOCALLY_UP_TO:
        reference = math.fsum(1e3 * np.sin(np.arange(0, n, dtype=np.float64)))
        assert exact.hex() == reference.hex(), (exact, reference)
        print("  exact sum == math.fsum, and the same bits for a second chunking")
    else:
        print("  exact sum: the same bits for a second chunking")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=float, default=1e8, help="elements (default 1e8)")
    parser.add_argument(
        "--chunk", type=float, default=2.5e7, help="elements per chunk (default 2.5e7)"
    )
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per sum (best kept)")
    parser.add_argument("--scheduler", choices=["distributed", "threads"], default="distributed")
    parser.add_argument("--no-persist", action="store_true", help="time building + summing")
    args = parser.parse_args()
    print(f"parfor {parfor.__version__}, dask {dask.__version__}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs")

    if args.scheduler == "threads":
        with dask.config.set(scheduler="threads"):
            run(args, lambda a: a.compute(), None if args.no_persist else (lambda a: a.persist()))
        print("ok")
        return

    from dask.distributed import Client, LocalCluster, wait

    # The workers import parfor as this process does (a checkout on PYTHONPATH).
    os.environ["PARFOR_LIBRARY"] = str(parfor.LIBRARY_PATH)
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(parfor.__file__)))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [package_dir] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    )
    # Each worker's parfor team: the worker's threads share its cores, so a team
    # as large as the cores per worker.
    team = max(1, (os.cpu_count() or 1) // args.workers // args.threads)
    os.environ.setdefault("PARFOR_NUM_THREADS", str(team))
    with LocalCluster(
        n_workers=args.workers,
        threads_per_worker=args.threads,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard": False},
        silence_logs=logging.ERROR,
    ) as cluster, Client(cluster) as client:
        print(f"LocalCluster: {args.workers} workers x {args.threads} threads, "
              f"parfor team of {os.environ['PARFOR_NUM_THREADS']} per worker")

        def persist(a):
            a = client.persist(a)
            wait(a)
            return a

        run(args, lambda a: client.compute(a).result(), None if args.no_persist else persist)
    print("ok")


if __name__ == "__main__":
    main()
