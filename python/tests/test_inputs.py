"""Every kind of input parfor takes in place: numpy arrays of the ten dtypes,
array.array, memoryview (including casts), bytes and bytearray, read-only buffers,
multi-dimensional contiguous arrays, 0-d arrays and empty buffers; results are Python
scalars of the element type's kind, and no buffer is copied or left pinned."""

import array
import ctypes
import math
import operator
import random
import unittest
from functools import reduce as fold

from _support import numpy as np
from _support import parfor, requires_numpy

from parfor import _buffer

NUMPY_DTYPES = ["f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8"]
# Big enough that the library splits the work across the team.
SIZES = [1, 7, 100_003]


def _ref(np_dtype, values):
    """Reference reductions: numpy's, with its accumulator types."""
    x = np.asarray(values, dtype=np_dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        return {
            "sum": x.sum(),
            "prod": x.prod(),
            "min": x.min().item(),
            "max": x.max().item(),
            "argmin": int(x.argmin()),
            "argmax": int(x.argmax()),
        }


@requires_numpy
class NumpyDtypes(unittest.TestCase):
    def data(self, dtype, n, seed):
        rng = np.random.default_rng(seed)
        if dtype.startswith("f"):
            # Small integers: every partial sum is exact, so the tree order of the
            # parallel sum cannot change the result and equality is the right check.
            return rng.integers(-50, 50, n).astype(dtype)
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)

    def test_reductions_match_numpy(self):
        for dtype in NUMPY_DTYPES:
            for n in SIZES:
                with self.subTest(dtype=dtype, n=n):
                    x = self.data(dtype, n, n)
                    ref = _ref(dtype, x)
                    self.assertEqual(parfor.sum(x), ref["sum"])
                    self.assertEqual(parfor.sum(x).dtype, ref["sum"].dtype)
                    self.assertEqual(parfor.min(x), ref["min"])
                    self.assertEqual(parfor.max(x), ref["max"])
                    self.assertEqual(parfor.argmin(x), ref["argmin"])
                    self.assertEqual(parfor.argmax(x), ref["argmax"])
                    if dtype.startswith("f"):
                        # Powers of two keep the float product exact.
                        p = np.where(np.arange(n) % 3 == 0, 2.0, 0.5).astype(dtype)[:40]
                        self.assertEqual(parfor.prod(p), float(np.prod(p)))
                    else:
                        self.assertEqual(parfor.prod(x), ref["prod"])
                        self.assertEqual(parfor.prod(x).dtype, ref["prod"].dtype)

    def test_result_kinds(self):
        # numpy's scalar types, as numpy returns them; the flat reduce() keeps
        # Python scalars of the element type's kind.
        for dtype in NUMPY_DTYPES:
            with self.subTest(dtype=dtype):
                x = np.arange(5, dtype=dtype)
                for fn, ref in ((parfor.sum, np.sum), (parfor.prod, np.prod), (parfor.min, np.min), (parfor.max, np.max), (parfor.argmax, np.argmax)):
                    self.assertIs(type(fn(x)), type(ref(x)))
                self.assertIs(type(parfor.dot(x, x)), type(np.dot(x, x)))
                kind = float if dtype.startswith("f") else int
                self.assertIs(type(parfor.reduce(x, "sum")), kind)

    def test_float32_result_is_the_float32_value(self):
        x = np.full(3, 0.1, dtype=np.float32)
        self.assertEqual(parfor.sum(x), np.float32(0.1) * np.float32(3))
        self.assertEqual(parfor.max(x), float(np.float32(0.1)))

    def test_dot_matches_numpy(self):
        for dtype in NUMPY_DTYPES:
            for n in SIZES:
                with self.subTest(dtype=dtype, n=n):
                    a = self.data(dtype, n, 1)
                    b = self.data(dtype, n, 2)
                    if dtype.startswith("f"):
                        expected = float(np.dot(a.astype(np.int64), b.astype(np.int64)))
                    else:
                        # Products and sum wrap in the element type.
                        expected = (a * b).sum(dtype=a.dtype).item()
                    self.assertEqual(parfor.dot(a, b), expected)

    def test_every_operator(self):
        x = np.array([6, 3, 0, 5, 255, 17, 1], dtype=np.uint8)
        expected = {
            "sum": int(x.sum(dtype=np.uint8)),
            "prod": int(x.prod(dtype=np.uint8)),
            "min": 0,
            "max": 255,
            "bit_and": int(np.bitwise_and.reduce(x)),
            "bit_or": int(np.bitwise_or.reduce(x)),
            "bit_xor": int(np.bitwise_xor.reduce(x)),
            "logical_and": 0,
            "logical_or": 1,
        }
        for name, value in expected.items():
            with self.subTest(op=name):
                self.assertEqual(parfor.reduce(x, name), value)
                self.assertEqual(parfor.reduce(x, name.upper()), value)
                self.assertEqual(parfor.reduce(x, parfor.Op[name.upper()]), value)
                self.assertEqual(parfor.reduce(x, int(parfor.Op[name.upper()])), value)
        f = np.array([1.5, np.nan, 0.0])
        self.assertEqual(parfor.reduce(f, "logical_and"), 0.0)
        self.assertEqual(parfor.reduce(f, "logical_or"), 1.0)
        self.assertIs(type(parfor.reduce(f, "logical_or")), float)
        self.assertTrue(math.isnan(parfor.min(f)))
        self.assertEqual(parfor.argmax(f), 1)

    def test_exact_sum(self):
        x = np.array([1e308, 1.0, -1e308, 1e-300, 3.0])
        self.assertEqual(parfor.sum(x, exact=True), math.fsum(x))
        self.assertEqual(parfor.reduce(x, "sum_exact"), math.fsum(x))
        rng = np.random.default_rng(5)
        y = rng.standard_normal(50_001) * 10.0 ** rng.integers(-20, 20, 50_001)
        self.assertEqual(parfor.sum(y, exact=True), math.fsum(y))
        y32 = y.astype(np.float32)
        self.assertEqual(parfor.sum(y32, exact=True), float(np.float32(math.fsum(y32))))

    def test_read_only_array(self):
        x = np.arange(1000, dtype=np.int32)
        x.flags.writeable = False
        self.assertEqual(parfor.sum(x), 499500)
        self.assertEqual(parfor.dot(x, x), sum(i * i for i in range(1000)))
        self.assertEqual(parfor.argmin(x[::-1].copy()), 999)

    def test_contiguous_multidimensional_and_zero_d(self):
        x = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
        self.assertEqual(parfor.sum(x), 276.0)
        self.assertEqual(parfor.argmax(x), 23)
        self.assertEqual(parfor.sum(np.array(2.5)), 2.5)
        # A contiguous slice is read in place even though it does not start the array.
        self.assertEqual(parfor.sum(np.arange(10, dtype=np.int16)[3:6]), 12)

    def test_no_copy(self):
        for writeable in (True, False):
            with self.subTest(writeable=writeable):
                x = np.arange(16, dtype=np.float64)
                x.flags.writeable = writeable
                address, length, dtype, _keep = _buffer.pin(x, "x")
                self.assertEqual(_buffer.address_of(address), x.ctypes.data)
                self.assertEqual(length, 16)
                self.assertEqual(dtype, parfor.DType.F64)

    def test_empty(self):
        for dtype in NUMPY_DTYPES:
            with self.subTest(dtype=dtype):
                x = np.empty(0, dtype=dtype)
                self.assertEqual(parfor.sum(x), np.sum(x))
                self.assertIs(type(parfor.sum(x)), type(np.sum(x)))
                self.assertEqual(parfor.prod(x), 1)
                self.assertEqual(parfor.dot(x, x), 0)
                for fn in (parfor.min, parfor.max, parfor.argmin, parfor.argmax):
                    with self.assertRaises(ValueError):
                        fn(x)
                # The flat reduce() reports the library's status.
                for op in ("min", "max"):
                    with self.assertRaises(parfor.EmptyError) as cm:
                        parfor.reduce(x, op)
                    self.assertEqual(cm.exception.status, "PARFOR_ERR_EMPTY")
                if not dtype.startswith("f"):
                    all_bits = np.iinfo(dtype).max if dtype.startswith("u") else -1
                    self.assertEqual(parfor.reduce(x, "bit_and"), all_bits)
                self.assertEqual(parfor.reduce(x, "logical_and"), 1)


class StdlibBuffers(unittest.TestCase):
    """Inputs without numpy."""

    def test_format_strings(self):
        import struct
        import sys

        native = "<" if sys.byteorder == "little" else ">"
        cases = {
            "d": parfor.DType.F64,
            "@f": parfor.DType.F32,
            "=q": parfor.DType.I64,
            native + "H": parfor.DType.U16,
            "b": parfor.DType.I8,
            "B": parfor.DType.U8,
            "n": parfor.DType.I64 if struct.calcsize("n") == 8 else parfor.DType.I32,
            "N": parfor.DType.U64 if struct.calcsize("N") == 8 else parfor.DType.U32,
            # Native sizes: 'l' is 8 bytes on LP64, 4 on LLP64, and '=l' is always 4.
            "l": parfor.DType.I64 if struct.calcsize("l") == 8 else parfor.DType.I32,
            "=l": parfor.DType.I32,
            "=L": parfor.DType.U32,
        }
        for fmt, dtype in cases.items():
            with self.subTest(format=fmt):
                self.assertEqual(_buffer.dtype_of_format(fmt, "x"), dtype)

    def test_array_array_every_typecode(self):
        rnd = random.Random(3)
        for code in "bBhHiIlLqQfd":
            with self.subTest(typecode=code):
                size = array.array(code).itemsize
                if code in "fd":
                    values = [float(rnd.randint(-100, 100)) for _ in range(5001)]
                else:
                    lo, hi = (0, 2 ** (8 * size) - 1) if code.isupper() else (
                        -(2 ** (8 * size - 1)), 2 ** (8 * size - 1) - 1)
                    values = [rnd.randint(lo, hi) for _ in range(5001)]
                a = array.array(code, values)
                if code in "fd":
                    self.assertEqual(parfor.sum(a), math.fsum(values))
                else:
                    # numpy's accumulator: 64 bits, wrapping only beyond them.
                    bits = 64
                    total = sum(values) % 2**bits
                    if code.islower() and total >= 2 ** (bits - 1):
                        total -= 2**bits
                    self.assertEqual(parfor.sum(a), total)
                self.assertIs(type(parfor.sum(a)), type(np.sum(np.asarray(a))))
                self.assertEqual(parfor.sum(a).dtype, np.sum(np.asarray(a)).dtype)
                self.assertEqual(parfor.min(a), min(values))
                self.assertEqual(parfor.max(a), max(values))
                self.assertEqual(parfor.argmin(a), values.index(min(values)))
                self.assertEqual(parfor.argmax(a), values.index(max(values)))

    def test_bytes_and_bytearray(self):
        data = bytes(range(256)) * 3
        # uint8 accumulates in uint64, as numpy's sum; reduce() wraps in uint8.
        self.assertEqual(parfor.sum(data), sum(data))
        self.assertEqual(parfor.reduce(data, "sum"), sum(data) % 256)
        self.assertEqual(parfor.max(bytearray(data)), 255)
        self.assertEqual(parfor.reduce(data, "bit_or"), 255)
        self.assertEqual(parfor.reduce(b"\x01\x02\x04", "bit_xor"), 7)
        self.assertEqual(parfor.dot(b"\x02\x03", bytearray(b"\x04\x05")), 23)

    def test_memoryview_casts_of_bytes(self):
        values = [1.5, -2.25, 1e10, 3.0]
        raw = array.array("d", values).tobytes()
        self.assertEqual(parfor.sum(memoryview(raw).cast("d")), math.fsum(values))
        self.assertEqual(parfor.min(memoryview(bytearray(raw)).cast("d")), -2.25)
        ints = memoryview(bytearray(array.array("i", range(100)).tobytes())).cast("i")
        self.assertEqual(parfor.sum(ints), 4950)
        self.assertEqual(parfor.sum(ints[10:20]), sum(range(10, 20)))
        # A 2-D cast of contiguous memory is read whole.
        self.assertEqual(parfor.sum(memoryview(bytes(range(12))).cast("B", (3, 4))), 66)

    def test_read_only_views(self):
        a = array.array("q", range(1000))
        ro = memoryview(a).toreadonly()
        self.assertTrue(ro.readonly)
        self.assertEqual(parfor.sum(ro), 499500)
        self.assertEqual(parfor.argmax(ro), 999)

    def test_bytes_are_not_copied(self):
        data = bytes(range(64))
        address, _length, _dtype, _keep = _buffer.pin(data, "x")
        self.assertEqual(
            _buffer.address_of(address), ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value
        )

    def test_buffers_are_released_after_the_call(self):
        # An exporter cannot resize while a view is pinned (BufferError): after each
        # call, writable and read-only paths alike must have let go.
        ba = bytearray(b"\x01" * 100)
        parfor.sum(ba)
        parfor.sum(memoryview(ba).toreadonly())
        ba.append(1)
        a = array.array("d", [1.0, 2.0])
        parfor.sum(a)
        parfor.sum(memoryview(a).toreadonly())
        with self.assertRaises(ValueError):
            parfor.min(array.array("d"))
        a.append(3.0)
        self.assertEqual(parfor.sum(a), 6.0)

    def test_buffers_are_released_after_a_failure(self):
        # A stored exception keeps its traceback, and with it the frames of the
        # failed call and their locals: the pins must be gone anyway. mv.release()
        # raises BufferError while parfor still holds an export of mv, as
        # bytearray.append does. (assertRaises drops the traceback, so it is not used.)
        for failing in (
            lambda mv: parfor.sum(mv),  # the library's MISALIGNED, after pinning
            lambda mv: parfor.dot(mv, array.array("d", [1.0])),  # lengths differ
            lambda mv: parfor.dot(mv, array.array("f", [1.0, 2.0])),  # types differ
            lambda mv: parfor.dot(mv, [1.0, 2.0]),  # b is not a buffer
            lambda mv: parfor.ExactSum().add_dot(mv, array.array("d", [1.0])),
        ):
            buf = bytearray(17)
            mv = memoryview(buf)[1:].cast("d")
            try:
                failing(mv)
            except (ValueError, TypeError) as e:
                kept = e
            else:
                self.fail("the call did not fail")
            self.assertIsNotNone(kept.__traceback__)
            mv.release()
            buf.append(0)

    def test_empty_stdlib_buffers(self):
        self.assertEqual(parfor.sum(b""), 0)
        self.assertEqual(parfor.sum(array.array("d")), 0.0)
        self.assertEqual(parfor.prod(array.array("i")), 1)
        with self.assertRaises(ValueError):
            parfor.min(bytearray())
        with self.assertRaises(parfor.EmptyError):
            parfor.reduce(bytearray(), "min")

    def test_large_unsigned_values_wrap(self):
        a = array.array("Q", [2**64 - 1, 2, 2**63])
        self.assertEqual(parfor.sum(a), (2**64 - 1 + 2 + 2**63) % 2**64)
        self.assertEqual(parfor.prod(array.array("Q", [2**32, 2**32 + 1])), (2**64 + 2**32) % 2**64)
        self.assertEqual(parfor.reduce(a, "bit_and"), fold(operator.and_, a))


if __name__ == "__main__":
    unittest.main()
