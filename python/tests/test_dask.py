"""parfor.dask against numpy (integers, min/max: equal values and dtypes), math.fsum
(exact sums: equal bits) and the error bound of a float sum, under three chunkings,
with Dask's threaded scheduler and with a real dask.distributed LocalCluster (two
worker processes on 127.0.0.1, one thread each, started and closed here)."""

import logging
import math
from fractions import Fraction
import os
import subprocess
import sys
import unittest

from _support import EXAMPLES, PYTHON_DIR, child_env
from _support import numpy as np

try:
    import dask
    import dask.array as da
except ImportError:
    dask = None

try:
    from dask.distributed import Client, LocalCluster
except ImportError:
    LocalCluster = None

if dask is not None and np is not None:
    import parfor.dask as pdask

requires_dask = unittest.skipIf(dask is None or np is None, "dask.array (and numpy) not installed")

# Startup, computation and shutdown of the cluster are each bounded by this (seconds;
# a cluster on a loaded 2-core machine takes about 12 s to start).
CLUSTER_TIMEOUT_S = 120

def data(shape):
    """Fixed inputs: floats spread over 60 binades (so that the order of additions
    changes the rounded sum), with NaNs for the nan-functions; integers that wrap
    int64 when summed; small ints and bools."""
    rng = np.random.default_rng(17)
    floats = rng.standard_normal(shape) * np.exp2(rng.integers(-30, 30, shape))
    with_nan = floats.copy()
    with_nan[rng.random(shape) < 0.1] = np.nan
    with_nan[5] = np.nan  # an all-NaN row
    big = rng.integers(-(2**62), 2**62, shape, dtype=np.int64)
    small = rng.integers(-100, 100, shape, dtype=np.int32)
    bits = rng.random(shape) < 0.5
    unsigned = rng.integers(0, 255, shape, dtype=np.uint8)
    return floats, with_nan, big, small, bits, unsigned


def fsum_axis(x, axis):
    """math.fsum along one axis of a 2-D array (NaN skipped when nan)."""
    return np.array([math.fsum(v) for v in np.moveaxis(x, axis, -1)])


def float_sum_bound(x):
    """The error bound of a float64 sum of the values x: 2 ceil(log2 n) u sum|x| plus
    half an ulp of the result (issue 12's accuracy contract, which numpy's pairwise
    summation also meets)."""
    n = x.size
    exact = math.fsum(x.ravel())
    magnitude = math.fsum(np.abs(x).ravel())
    return 2 * math.ceil(math.log2(n)) * 2.0**-53 * magnitude + math.ulp(exact) / 2


def exact_sum(values):
    """The exact sum of float32/float64 values, as a Fraction: each value is an
    integer multiple of 2^-1074 (the smallest subnormal), summed as Python ints."""
    scale = 2**1074
    total = 0
    for v in values.tolist():
        num, den = v.as_integer_ratio()
        total += num * (scale // den)
    return Fraction(total, scale)


def round_to_float32(exact):
    """The float32 nearest to the Fraction ``exact`` (ties to even), by exact
    comparison of the neighbours of a first guess."""
    guess = np.float32(float(exact))
    candidates = [
        np.nextafter(guess, np.float32(-np.inf)),
        guess,
        np.nextafter(guess, np.float32(np.inf)),
    ]

    def key(c):
        return abs(Fraction(float(c)) - exact), int(c.view(np.uint32)) & 1

    return builtins_min(candidates, key=key)


builtins_min = min
builtins_max = max


class Checks:
    """The checks, run under a scheduler set by the subclass (``self.compute``)."""

    def compute(self, *arrays):
        raise NotImplementedError

    # The data's shape, and three chunkings of it: irregular small blocks, whole rows,
    # one block.
    shape = (301, 217)
    chunkings = [(37, 29), (100, 217), (301, 217)]

    @classmethod
    def setUpClass(cls):
        cls.floats, cls.with_nan, cls.big, cls.small, cls.bits, cls.unsigned = data(cls.shape)

    def each_chunking(self):
        for chunks in self.chunkings:
            with self.subTest(chunks=chunks):
                yield chunks

    def test_exact_sums_equal_fsum_bits_for_every_chunking(self):
        whole = math.fsum(self.floats.ravel())
        nan_whole = math.fsum(self.with_nan[~np.isnan(self.with_nan)])
        cols = fsum_axis(self.floats, 0)
        rows = fsum_axis(self.floats, 1)
        f32 = self.floats.astype(np.float32)
        whole32 = round_to_float32(exact_sum(f32.ravel()))
        seen = set()
        for chunks in self.each_chunking():
            x = da.from_array(self.floats, chunks=chunks)
            xn = da.from_array(self.with_nan, chunks=chunks)
            x32 = da.from_array(f32, chunks=chunks)
            s, s0, s1, sn, s32, m = self.compute(
                pdask.sum(x, exact=True),
                pdask.sum(x, axis=0, exact=True),
                pdask.sum(x, axis=(1,), exact=True, keepdims=True),
                pdask.nansum(xn, exact=True),
                pdask.sum(x32, exact=True),
                pdask.mean(x, exact=True),
            )
            self.assertEqual(s.dtype, np.float64)
            self.assertEqual(float(s).hex(), whole.hex())
            self.assertTrue(np.array_equal(s0, cols))
            self.assertEqual(s1.shape, (self.shape[0], 1))
            self.assertTrue(np.array_equal(s1[:, 0], rows))
            self.assertEqual(float(sn).hex(), nan_whole.hex())
            self.assertEqual(s32.dtype, np.float32)
            # float32 result: the exact sum of the float32 values rounded once.
            self.assertEqual(s32, whole32)
            self.assertEqual(float(m), whole / self.floats.size)
            seen.add((float(s).hex(), float(m).hex(), bytes(s0)))
        self.assertEqual(len(seen), 1)

    def test_integer_results_equal_numpy(self):
        for chunks in self.each_chunking():
            big = da.from_array(self.big, chunks=chunks)
            small = da.from_array(self.small, chunks=chunks)
            bits = da.from_array(self.bits, chunks=chunks)
            unsigned = da.from_array(self.unsigned, chunks=chunks)
            cases = [
                (pdask.sum(big), self.big.sum()),  # wraps int64, as numpy's
                (pdask.sum(big, axis=0), self.big.sum(axis=0)),
                (pdask.sum(small, axis=1, keepdims=True), self.small.sum(axis=1, keepdims=True)),
                (pdask.sum(small, dtype=np.int8), self.small.sum(dtype=np.int8)),
                (pdask.sum(bits), self.bits.sum()),
                (pdask.sum(unsigned), self.unsigned.sum()),
                (pdask.prod(small[:40, :3], axis=0), self.small[:40, :3].prod(axis=0)),
                (pdask.prod(big[:7]), self.big[:7].prod()),
                (pdask.min(big), self.big.min()),
                (pdask.max(small, axis=0), self.small.max(axis=0)),
                (pdask.min(bits, axis=1), self.bits.min(axis=1)),
                (pdask.max(unsigned, axis=(0, 1), keepdims=True), self.unsigned.max(keepdims=True)),
            ]
            got = self.compute(*(c[0] for c in cases))
            for k, (value, (lazy, expected)) in enumerate(zip(got, cases)):
                self.assertEqual(lazy.dtype, expected.dtype, k)
                self.assertEqual(np.asarray(value).dtype, expected.dtype, k)
                self.assertEqual(np.shape(value), np.shape(expected), k)
                self.assertTrue(np.array_equal(value, expected), k)

    def test_float_results(self):
        x, xn = self.floats, self.with_nan
        exact = math.fsum(x.ravel())
        for chunks in self.each_chunking():
            dx = da.from_array(x, chunks=chunks)
            dn = da.from_array(xn, chunks=chunks)
            fast, ref, lo, hi, nlo, nhi, nlo0 = self.compute(
                pdask.sum(dx),
                da.sum(dx),
                pdask.min(dx, axis=0),
                pdask.max(dx),
                pdask.nanmin(dn),
                pdask.nanmax(dn, axis=1),
                pdask.min(dn),
            )
            self.assertLessEqual(abs(float(fast) - exact), float_sum_bound(x))
            self.assertLessEqual(abs(float(ref) - exact), float_sum_bound(x))  # the reference
            self.assertTrue(np.array_equal(lo, x.min(axis=0)))
            self.assertEqual(hi, x.max())
            self.assertEqual(nlo, np.nanmin(xn))
            with np.errstate(invalid="ignore"), self.assertWarns(RuntimeWarning):
                expected = np.nanmax(xn, axis=1)  # row 5 is all NaN: NaN, with a warning
            self.assertTrue(np.array_equal(nhi, expected, equal_nan=True))
            self.assertTrue(np.isnan(nlo0))  # min propagates NaN

    def test_moments_match_numpy(self):
        x, xn = self.floats, self.with_nan
        with np.errstate(invalid="ignore", divide="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                expected = [
                    x.mean(),
                    x.mean(axis=0),
                    x.var(),
                    x.var(axis=1, ddof=1),
                    x.std(keepdims=True),
                    np.nanmean(xn, axis=1),
                    np.nanvar(xn),
                    np.nanstd(xn, axis=0, ddof=1),
                    self.small.mean(),
                    self.small.astype(np.float32).var(),
                ]
        for chunks in self.each_chunking():
            dx = da.from_array(x, chunks=chunks)
            dn = da.from_array(xn, chunks=chunks)
            ds = da.from_array(self.small, chunks=chunks)
            got = self.compute(
                pdask.mean(dx),
                pdask.mean(dx, axis=0),
                pdask.var(dx),
                pdask.var(dx, axis=1, ddof=1),
                pdask.std(dx, keepdims=True),
                pdask.nanmean(dn, axis=1),
                pdask.nanvar(dn),
                pdask.nanstd(dn, axis=0, ddof=1),
                pdask.mean(ds),
                pdask.var(ds.astype(np.float32)),
            )
            for k, (value, want) in enumerate(zip(got, expected)):
                self.assertEqual(np.asarray(value).dtype, np.asarray(want).dtype, k)
                self.assertEqual(np.shape(value), np.shape(want), k)
                rtol = 1e-5 if np.asarray(want).dtype == np.float32 else 1e-10
                self.assertTrue(
                    np.allclose(value, want, rtol=rtol, atol=0, equal_nan=True), (k, value, want)
                )
            # the all-NaN row of nanmean is NaN, as numpy's
            self.assertTrue(np.isnan(got[5][5]))

    def test_nan_sum_and_prod(self):
        xn = self.with_nan
        for chunks in self.each_chunking():
            dn = da.from_array(xn, chunks=chunks)
            s, s1, p = self.compute(
                pdask.nansum(dn),
                pdask.nansum(dn, axis=1, exact=True),
                pdask.nanprod(dn[:3, :20] / 8, axis=1),
            )
            self.assertLessEqual(
                abs(float(s) - math.fsum(xn[~np.isnan(xn)])), float_sum_bound(np.nan_to_num(xn))
            )
            self.assertTrue(
                np.array_equal(s1, np.array([math.fsum(r[~np.isnan(r)]) for r in xn]))
            )
            self.assertEqual(s1[5], 0.0)
            self.assertTrue(np.allclose(p, np.nanprod(xn[:3, :20] / 8, axis=1), rtol=1e-12))


@requires_dask
class ThreadedScheduler(Checks, unittest.TestCase):
    def compute(self, *arrays):
        return dask.compute(*arrays, scheduler="threads")

    def test_fast_sum_combine_is_as_accurate_as_dask(self):
        # Chunks of two values: each chunk's sum is one rounded addition, the same
        # whatever the kernel, so the per-chunk partials are known (p) and what is
        # left is the combine. The partials are large and cancel: dask adds them with
        # plain additions, parfor.dask as double-double pairs.
        values = np.tile(np.array([5e15, 5e15, 0.5, 0.5, -5e15, -5e15, 0.25, 0.75]), 250)
        p = values[0::2] + values[1::2]  # 1e16, 1, -1e16, 1, ...: exact 500
        target = math.fsum(p)
        x = da.from_array(values, chunks=2)
        errors = []
        for split_every in (4, 32):
            with self.subTest(split_every=split_every):
                ours, theirs = self.compute(
                    pdask.sum(x, split_every=split_every), da.sum(x, split_every=split_every)
                )
                self.assertEqual(float(ours), target)
                self.assertLessEqual(abs(float(ours) - target), abs(float(theirs) - target))
                errors.append(abs(float(theirs) - target))
        self.assertGreater(builtins_max(errors), 0)  # dask's plain combine does lose here
        # chunks of one element: each partial is exact, so the sum is fsum's
        x = da.from_array(values[:200], chunks=1)
        self.assertEqual(
            float(self.compute(pdask.sum(x, split_every=8))[0]), math.fsum(values[:200])
        )
        # larger chunks: the error is within the bound of a float sum
        x = da.from_array(values, chunks=500)
        error = abs(float(self.compute(pdask.sum(x))[0]) - math.fsum(values))
        self.assertLessEqual(error, float_sum_bound(values))

    def test_misaligned_chunks(self):
        # numpy arrays over an odd offset of a buffer (as unpickled on a distributed
        # worker): parfor refuses misaligned data, so the chunks are realigned.
        raw = bytearray(8 * 1000 + 1)
        x = np.frombuffer(raw, dtype=np.float64, offset=1, count=1000)
        self.assertFalse(x.flags.aligned)
        np.copyto(x, np.arange(1000.0))
        got = self.compute(pdask.sum(da.from_array(x, chunks=99), exact=True))[0]
        self.assertEqual(got, 499500.0)

    def test_infinities_and_overflow(self):
        x = np.array([1.0, np.inf, 2.0, 3.0])
        self.assertEqual(self.compute(pdask.sum(da.from_array(x, chunks=1)))[0], np.inf)
        y = np.array([np.inf, -np.inf, 1.0])
        self.assertTrue(np.isnan(self.compute(pdask.sum(da.from_array(y, chunks=1)))[0]))
        z = np.array([1.7e308, 1.7e308, -1.0])
        with np.errstate(over="ignore"):
            expected = z.sum()
        self.assertEqual(self.compute(pdask.sum(da.from_array(z, chunks=1)))[0], expected)
        self.assertEqual(self.compute(pdask.sum(da.from_array(z, chunks=1), exact=True))[0], np.inf)

    def test_bad_inputs(self):
        x = da.from_array(np.arange(10.0), chunks=3)
        with self.assertRaisesRegex(
            TypeError, r"parfor.dask.sum: unsupported element type complex128; parfor reduces bool"
        ):
            pdask.sum(da.from_array(np.ones(4, dtype=complex), chunks=2))
        with self.assertRaisesRegex(
            TypeError, r"parfor.dask.sum\(exact=True\) needs a float result"
        ):
            pdask.sum(da.from_array(np.arange(4), chunks=2), exact=True)
        with self.assertRaisesRegex(ValueError, "zero-size array to reduction operation minimum"):
            pdask.min(da.from_array(np.ones(0), chunks=2))
        with self.assertRaisesRegex(ValueError, "zero-size array to reduction operation maximum"):
            pdask.max(da.from_array(np.ones((3, 0)), chunks=2), axis=1)
        with self.assertRaises(np.exceptions.AxisError):
            pdask.sum(x, axis=1)
        with self.assertRaisesRegex(ValueError, "duplicate value in 'axis'"):
            pdask.sum(x, axis=(0, -1))
        # Empty sums are 0 (and an empty mean is NaN), as numpy's.
        empty = da.from_array(np.ones((0, 3)), chunks=2)
        s, m = self.compute(pdask.sum(empty, axis=0, exact=True), pdask.mean(empty))
        self.assertTrue(np.array_equal(s, np.zeros(3)))
        self.assertTrue(np.isnan(m))

    def test_numpy_input_and_lazy_graph(self):
        lazy = pdask.sum(np.arange(100, dtype=np.int16))
        self.assertIsInstance(lazy, da.Array)
        self.assertEqual(lazy.dtype, np.int64)
        self.assertEqual(self.compute(lazy)[0], 4950)

    def test_example_runs(self):
        # The README's example, small and on the threaded scheduler (its cluster
        # mode is what DistributedCluster tests).
        out = subprocess.run(
            [sys.executable, str(EXAMPLES / "dask_sum.py"), "--size", "1e6", "--chunk",
             "1e5", "--repeat", "1", "--scheduler", "threads"],
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=180,
        )
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.strip().splitlines()[-1], "ok")
        self.assertIn("exact sum == math.fsum, and the same bits for a second chunking", out.stdout)


@requires_dask
@unittest.skipIf(LocalCluster is None, "dask.distributed is not installed")
class DistributedCluster(Checks, unittest.TestCase):
    # Smaller than for the threaded scheduler: each task costs milliseconds of
    # scheduling and transfer here, and the point is the processes, not the size.
    shape = (61, 47)
    chunkings = [(21, 16), (30, 47), (61, 47)]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The worker processes import this checkout's parfor with this library.
        env = child_env()
        cls.saved_env = {k: os.environ.get(k) for k in ("PYTHONPATH", "PARFOR_LIBRARY")}
        os.environ["PYTHONPATH"] = env["PYTHONPATH"]
        os.environ["PARFOR_LIBRARY"] = env["PARFOR_LIBRARY"]
        with dask.config.set({"distributed.comm.timeouts.connect": "60s"}):
            cls.cluster = LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                scheduler_kwargs={"dashboard": False},
                silence_logs=logging.ERROR,
                timeout=CLUSTER_TIMEOUT_S,
            )
        cls.client = Client(cls.cluster, timeout=CLUSTER_TIMEOUT_S)
        cls.client.wait_for_workers(2, timeout=CLUSTER_TIMEOUT_S)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.client.close(timeout=CLUSTER_TIMEOUT_S)
            cls.cluster.close(timeout=CLUSTER_TIMEOUT_S)
        finally:
            for k, v in cls.saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def compute(self, *arrays):
        futures = self.client.compute(list(arrays))
        return self.client.gather(futures, asynchronous=False)

    def test_cluster_is_two_processes_on_loopback(self):
        info = self.client.scheduler_info()
        self.assertEqual(len(info["workers"]), 2)
        for address, worker in info["workers"].items():
            self.assertTrue(address.startswith("tcp://127.0.0.1:"), address)
            self.assertEqual(worker["nthreads"], 1)
        pids = self.client.run(os.getpid)
        self.assertEqual(len(set(pids.values())), 2)
        self.assertNotIn(os.getpid(), pids.values())
        # and they run this checkout's parfor
        paths = self.client.run(lambda: __import__("parfor").__file__)
        for path in paths.values():
            self.assertTrue(path.startswith(str(PYTHON_DIR)), path)


if __name__ == "__main__":
    unittest.main()
