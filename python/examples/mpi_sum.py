"""Hybrid MPI + parfor from Python, with mpi4py: the Python twin of
c_examples/mpi_reduce.c, on the same data.

Each rank builds its share of one global array, whose element i depends on i alone
(never on the number of ranks): triples (big, small, -big), big up to 2^950 cancelling
exactly against an element that may live on another rank, small in [-0.5, 0.5) or now
and then a subnormal. Each rank then

- sums its share with parfor.sum (the fast sum; MPI adds the ranks' doubles, and the
  result changes with the number of ranks and is far from the true sum here), and
- accumulates its share in a parfor.ExactSum, whose state (bytes(state), a
  parfor_exact_state) travels to every rank with allgather and is merged there: the
  correctly rounded exact sum, bitwise the same for any number of ranks and threads,
  and equal to math.fsum of the whole array.

Run from the repository root after `cargo build --release`:

    PYTHONPATH=python PARFOR_NUM_THREADS=2 mpirun -np 4 python3 python/examples/mpi_sum.py 1200000

(as root add --allow-run-as-root; with more ranks than cores add --oversubscribe).
The argument is the number of elements in all (default 1200000, a multiple of 3 so that
every big value cancels). Rank 0 prints the results and each rank's timings.
"""

import array
import math
import struct
import sys
import time

from mpi4py import MPI

import parfor

MASK = (1 << 64) - 1


def mix(z):
    """splitmix64's output function, as in mpi_reduce.c."""
    z = (z + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def big(k):
    """+-[1, 2) * 2^e with e in 600..949: element 3k, and negated, element 3k+2."""
    r = mix(2 * k)
    v = math.ldexp(1.0 + (r >> 11) * 2.0**-53, 600 + r % 350)
    return -v if (r >> 10) & 1 else v


def element(i):
    """Element i of the global array: a function of i alone."""
    k, which = divmod(i, 3)
    if which == 0:
        return big(k)
    if which == 2:
        return -big(k)
    r = mix(2 * k + 1)
    if r % 97 == 0:
        # A subnormal: 40 random bits, below 2^-1034.
        return struct.unpack("<d", struct.pack("<Q", (r >> 24) | (r & (1 << 63))))[0]
    return (r >> 11) * 2.0**-53 - 0.5


def share(n, size, rank):
    """This rank's [lo, hi) of the static block partition of [0, n)."""
    q, r = divmod(n, size)
    lo = q * rank + min(rank, r)
    return lo, lo + q + (1 if rank < r else 0)


def main(argv):
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    n = int(argv[1]) if len(argv) > 1 else 1_200_000
    lo, hi = share(n, size, rank)

    t0 = time.perf_counter()
    local = array.array("d", (element(i) for i in range(lo, hi)))
    t_gen = time.perf_counter() - t0

    t0 = time.perf_counter()
    local_sum = parfor.sum(local)
    t_fast = time.perf_counter() - t0

    t0 = time.perf_counter()
    state = parfor.ExactSum()
    state.add(local)
    t_exact = time.perf_counter() - t0

    t0 = time.perf_counter()
    fast_sum = comm.allreduce(local_sum, op=MPI.SUM)
    t_comb_fast = time.perf_counter() - t0

    # The exact states as plain bytes: every rank gets all of them and merges them.
    # Merging is exact, so the order (here rank order) does not matter.
    t0 = time.perf_counter()
    total = parfor.ExactSum()
    for blob in comm.allgather(bytes(state)):
        total.merge(parfor.ExactSum.from_bytes(blob))
    exact_sum = total.result()
    t_comb_exact = time.perf_counter() - t0

    timings = comm.gather((t_gen, t_fast, t_exact), root=0)
    if rank == 0:
        print(f"mpi_sum: {size} ranks x {parfor.num_threads()} threads, n = {n}")
        for r, (g, f, e) in enumerate(timings):
            print(
                f"rank {r}: generate {g * 1e3:.3f} ms, parfor SUM {f * 1e3:.3f} ms, "
                f"parfor exact {e * 1e3:.3f} ms"
            )
        print(
            f"combine: allreduce of SUM {t_comb_fast * 1e3:.3f} ms, "
            f"allgather and merge of exact states {t_comb_exact * 1e3:.3f} ms"
        )
        print(f"fast sum  = {fast_sum.hex()} = {fast_sum:.17g}")
        print(f"exact sum = {exact_sum.hex()} = {exact_sum:.17g}")
        bits = struct.unpack("<Q", struct.pack("<d", exact_sum))[0]
        print(f"exact bits = 0x{bits:016x}")


if __name__ == "__main__":
    main(sys.argv)
