"""A multiprocessing pool started with fork, after the parent has used parfor (so its
thread team exists): the workers use parfor at once, get correct results, and
nothing hangs (every wait has a timeout)."""

import array
import multiprocessing
import unittest
import warnings

from _support import parfor

N = 200_003


def _work(seed):
    """Runs in a forked worker: several calls, with a team of 2 as in the parent."""
    data = array.array("q", range(seed, seed + N))
    with parfor.threads(2):
        total = parfor.sum(data)
        low = parfor.min(data)
        hits = []
        parfor.parallel_for(1000, lambda ctx, b, e: hits.append(e - b))
    return total, low, sum(hits)


def _expected(seed):
    return (N * seed + N * (N - 1) // 2, seed, 1000)


class ForkPool(unittest.TestCase):
    def test_pool_workers_use_parfor_after_fork(self):
        # The parent uses a team of 2 first, so worker threads exist when fork happens.
        with parfor.threads(2):
            self.assertEqual(parfor.sum(array.array("q", range(N))), N * (N - 1) // 2)
            parfor.parallel_for(100, lambda ctx, b, e: None)
        ctx = multiprocessing.get_context("fork")
        with warnings.catch_warnings():
            # Python 3.12+ warns that fork() in a multi-threaded process may deadlock:
            # that is exactly the situation under test.
            warnings.simplefilter("ignore", DeprecationWarning)
            pool = ctx.Pool(2)
        try:
            seeds = list(range(8))
            results = pool.map_async(_work, seeds).get(timeout=120)
            self.assertEqual(results, [_expected(s) for s in seeds])
            # The parent still works after its children did.
            with parfor.threads(2):
                self.assertEqual(parfor.sum(array.array("q", range(N))), N * (N - 1) // 2)
        finally:
            pool.terminate()
            pool.join()


if __name__ == "__main__":
    unittest.main()
