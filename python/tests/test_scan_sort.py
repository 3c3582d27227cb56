"""parfor.cumsum/cumprod/cummin/cummax, sort, sort_inplace and argsort against numpy:
integer results equal, float sums within the documented bound of the exact prefixes
(fractions), sorts equal to numpy.sort (NaN last, -0.0 == 0.0), argsorts valid
permutations equal to numpy's stable argsort, and the library's refusals."""

import unittest
from fractions import Fraction

from _support import numpy as np, parfor, requires_numpy

from parfor._scan import sum_error_bound

INT_TYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
FLOAT_TYPES = ["float32", "float64"]


@requires_numpy
class Scans(unittest.TestCase):
    def setUp(self):
        self.rng = np.random.default_rng(16)

    def test_integer_scans_equal_numpy(self):
        for name in INT_TYPES + ["bool"]:
            for n in [0, 1, 17, 1000, 70_001]:
                with self.subTest(dtype=name, n=n):
                    if name == "bool":
                        x = self.rng.integers(0, 2, n).astype(bool)
                    else:
                        info = np.iinfo(name)
                        x = self.rng.integers(info.min, info.max, n, dtype=name, endpoint=True)
                    for ours, ref in [
                        (parfor.cumsum, np.cumsum),
                        (parfor.cumprod, np.cumprod),
                    ]:
                        got, want = ours(x), ref(x)
                        self.assertEqual(got.dtype, want.dtype)
                        np.testing.assert_array_equal(got, want)
                    if name != "bool":
                        np.testing.assert_array_equal(parfor.cummin(x), np.minimum.accumulate(x))
                        np.testing.assert_array_equal(parfor.cummax(x), np.maximum.accumulate(x))

    def test_dtype_and_out(self):
        x = self.rng.integers(-100, 100, 5000, dtype=np.int16)
        np.testing.assert_array_equal(
            parfor.cumsum(x, dtype=np.int8), np.cumsum(x, dtype=np.int8)
        )
        self.assertEqual(parfor.cumsum(x, dtype=np.float64).dtype, np.float64)
        out = np.empty(5000, np.int64)
        r = parfor.cumsum(x, out=out)
        self.assertIs(r, out)
        np.testing.assert_array_equal(out, np.cumsum(x))
        with self.assertRaises(ValueError):
            parfor.cumsum(x, out=np.empty(3, np.int64))
        # In place through out=x.
        y = x.astype(np.int64)
        parfor.cumsum(y, out=y)
        np.testing.assert_array_equal(y, np.cumsum(x))

    def test_axes(self):
        x = self.rng.integers(-50, 50, (6, 7, 5), dtype=np.int32)
        for axis in [None, 0, 1, 2, -1]:
            with self.subTest(axis=axis):
                np.testing.assert_array_equal(parfor.cumsum(x, axis=axis), np.cumsum(x, axis=axis))
                np.testing.assert_array_equal(parfor.cumprod(x % 3, axis=axis),
                                              np.cumprod(x % 3, axis=axis))
        for axis in [0, 1, 2, -2]:
            np.testing.assert_array_equal(parfor.cummin(x, axis=axis),
                                          np.minimum.accumulate(x, axis=axis))
            np.testing.assert_array_equal(parfor.cummax(x, axis=axis),
                                          np.maximum.accumulate(x, axis=axis))
        np.testing.assert_array_equal(parfor.cummin(x), np.minimum.accumulate(x))
        with self.assertRaises(np.exceptions.AxisError):
            parfor.cumsum(x, axis=3)
        # Strided input along the scanned axis, and empty lanes.
        np.testing.assert_array_equal(parfor.cumsum(x[:, ::2, 1]), np.cumsum(x[:, ::2, 1]))
        e = np.zeros((3, 0), np.float64)
        self.assertEqual(parfor.cumsum(e, axis=1).shape, (3, 0))
        self.assertEqual(parfor.cumsum(e).shape, (0,))

    def test_float_sum_within_bound(self):
        for name in FLOAT_TYPES:
            for n in [1, 16, 17, 300, 20_000]:
                with self.subTest(dtype=name, n=n):
                    x = (self.rng.standard_normal(n) * np.exp2(self.rng.integers(-20, 20, n))).astype(name)
                    got = parfor.cumsum(x)
                    self.assertEqual(got.dtype, np.dtype(name))
                    u = Fraction(float(np.finfo(name).eps)) / 2
                    c = sum_error_bound(n) + 1
                    exact, absolute = Fraction(0), Fraction(0)
                    for i, v in enumerate(x.tolist()):
                        exact += Fraction(v)
                        absolute += abs(Fraction(v))
                        err = abs(Fraction(float(got[i])) - exact)
                        bound = c * u * absolute + Fraction(float(np.finfo(name).tiny))
                        self.assertLessEqual(err, bound, f"index {i}")

    def test_float_min_max_nan_and_prod(self):
        x = self.rng.standard_normal(10_000)
        x[5000] = np.nan
        np.testing.assert_array_equal(parfor.cummin(x), np.minimum.accumulate(x))
        np.testing.assert_array_equal(parfor.cummax(x), np.maximum.accumulate(x))
        p = 1 + self.rng.standard_normal(10_000) * 1e-3
        np.testing.assert_allclose(parfor.cumprod(p), np.cumprod(p), rtol=1e-12)

    def test_team_size_does_not_change_bits(self):
        x = self.rng.standard_normal(1_000_003)
        with parfor.threads(1):
            one = parfor.cumsum(x)
        for k in [2, 3, 4]:
            with parfor.threads(k):
                self.assertTrue(np.array_equal(parfor.cumsum(x).view(np.uint64), one.view(np.uint64)))

    def test_fallback_types_follow_numpy(self):
        h = np.arange(10, dtype=np.float16)
        np.testing.assert_array_equal(parfor.cumsum(h), np.cumsum(h))
        c = np.arange(5) + 1j
        np.testing.assert_array_equal(parfor.cumsum(c), np.cumsum(c))

    def test_library_refusals(self):
        # The C boundary's checks as Python sees them (through the raw binding).
        x = np.arange(8.0)
        lib, ffi = parfor.lib, parfor.ffi

        def addr_at(offset=0):
            return ffi.cast("void *", x.ctypes.data + offset)

        addr = addr_at()
        self.assertEqual(lib.parfor_scan(addr, 8, 1, 0, 2, ffi.NULL, addr), 2)  # unknown flag
        self.assertEqual(lib.parfor_scan(addr, 8, 1, 7, 0, ffi.NULL, addr), 2)  # LOGICAL_AND
        self.assertEqual(lib.parfor_scan(addr, 4, 1, 0, 0, ffi.NULL, addr_at(8)), 2)  # overlap
        self.assertEqual(lib.parfor_scan(addr_at(1), 4, 1, 0, 0, ffi.NULL, addr_at(40)), 3)  # misaligned
        self.assertEqual(lib.parfor_scan(ffi.NULL, 4, 1, 0, 0, ffi.NULL, addr), 1)
        np.testing.assert_array_equal(x, np.arange(8.0))


@requires_numpy
class Sorts(unittest.TestCase):
    def setUp(self):
        self.rng = np.random.default_rng(61)

    def data(self, name, n):
        if name in FLOAT_TYPES:
            x = self.rng.standard_normal(n).astype(name)
            if n > 10:
                x[:: 7] = np.nan
                x[3:: 11] = -0.0
                x[5:: 13] = 0.0
                x[1] = np.inf
                x[2] = -np.inf
                x[4] = -np.nan
            return x
        info = np.iinfo(name)
        return self.rng.integers(info.min, info.max, n, dtype=name, endpoint=True)

    def test_sort_equals_numpy(self):
        for name in INT_TYPES + FLOAT_TYPES:
            for n in [0, 1, 2, 255, 256, 5000, 100_003]:
                for pattern in ["random", "sorted", "reversed", "few"]:
                    with self.subTest(dtype=name, n=n, pattern=pattern):
                        x = self.data(name, n)
                        if pattern == "sorted":
                            x = np.sort(x)
                        elif pattern == "reversed":
                            x = np.sort(x)[::-1].copy()
                        elif pattern == "few":
                            x = x[self.rng.integers(0, min(n, 4), n)] if n else x
                        got = parfor.sort(x)
                        np.testing.assert_array_equal(got, np.sort(x))
                        self.assertIsNot(got, x)
                        idx = parfor.argsort(x)
                        self.assertEqual(idx.dtype, np.intp)
                        self.assertTrue(np.array_equal(np.sort(idx), np.arange(n)))
                        np.testing.assert_array_equal(idx, np.argsort(x, stable=True))
                        y = x.copy()
                        self.assertIsNone(parfor.sort_inplace(y))
                        np.testing.assert_array_equal(y, np.sort(x))

    def test_axes_and_bool(self):
        x = self.rng.standard_normal((5, 6, 7))
        for axis in [None, 0, 1, -1]:
            np.testing.assert_array_equal(parfor.sort(x, axis=axis), np.sort(x, axis=axis))
            np.testing.assert_array_equal(parfor.argsort(x, axis=axis),
                                          np.argsort(x, axis=axis, stable=True))
        y = x.copy()
        parfor.sort_inplace(y, axis=0)
        np.testing.assert_array_equal(y, np.sort(x, axis=0))
        b = self.rng.integers(0, 2, 1000).astype(bool)
        np.testing.assert_array_equal(parfor.sort(b), np.sort(b))
        np.testing.assert_array_equal(parfor.argsort(b), np.argsort(b, stable=True))
        s = np.array(["b", "a"])
        np.testing.assert_array_equal(parfor.sort(s), np.sort(s))

    def test_signed_zero_is_stable(self):
        x = np.array([0.0, -0.0, 0.0, -0.0, -1.0])
        got = parfor.sort(x)
        self.assertEqual(list(np.signbit(got)), [True, False, True, False, True])

    def test_descending_through_the_library(self):
        x = np.array([3.0, np.nan, -1.0, 2.0])
        lib, ffi = parfor.lib, parfor.ffi
        data = ffi.cast("void *", x.ctypes.data)
        idx = ffi.new("size_t[4]")
        self.assertEqual(lib.parfor_argsort(data, 4, 1, 1, ffi.NULL, idx), 0)
        self.assertEqual(list(idx), [0, 3, 2, 1])
        self.assertEqual(lib.parfor_sort(data, 4, 1, 4, ffi.NULL), 2)  # unknown flag


if __name__ == "__main__":
    unittest.main()
