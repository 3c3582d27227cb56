"""parfor.ExactSum over the C exact-state API, parfor.sum(exact=True) and
parfor.dot(exact=True): correctly rounded results (math.fsum and exact rationals as
references), merging in any order, bytes that cross processes, and bad states."""

import array
import math
import random
import struct
import subprocess
import sys
import threading
import unittest
from fractions import Fraction

from _support import child_env
from _support import numpy as np
from _support import parfor, requires_numpy


def adversarial(seed, n=20_000):
    """Values with huge cancellation and tiny values beside large ones."""
    rnd = random.Random(seed)
    values = []
    for _ in range(n // 4):
        big = rnd.uniform(-1, 1) * 10.0 ** rnd.randint(250, 307)
        values += [big, rnd.uniform(-1, 1) * 10.0 ** rnd.randint(-300, 5), -big, 5e-324 * rnd.randint(1, 9)]
    rnd.shuffle(values)
    return values


def round_to_float32(q):
    """The float32 nearest to the rational q (ties to even), as a Python float.
    Rounding through float64 first could round twice; this compares exactly."""
    candidate = array.array("f", [float(q)])[0]
    bits = struct.unpack("<i", struct.pack("<f", candidate))[0]
    options = [struct.unpack("<f", struct.pack("<i", bits + d))[0] for d in (-1, 0, 1)]
    options = [v for v in options if math.isfinite(v)]
    return min(options, key=lambda v: (abs(Fraction(v) - q), struct.pack("<f", v)[0] & 1))


class ExactSumBasics(unittest.TestCase):
    def test_matches_fsum(self):
        for seed in range(3):
            values = adversarial(seed)
            with self.subTest(seed=seed):
                s = parfor.ExactSum()
                s.add(array.array("d", values))
                self.assertEqual(s.result(), math.fsum(values))
                self.assertEqual(parfor.sum(array.array("d", values), exact=True), math.fsum(values))

    def test_classic_cancellation(self):
        self.assertEqual(parfor.ExactSum(array.array("d", [1e308, 1.0, -1e308])).result(), 1.0)
        self.assertEqual(parfor.ExactSum(array.array("d", [1e100, 1.0, -1e100, 1e-100])).result(), 1.0)

    def test_merge_in_any_order_equals_one_sum(self):
        values = adversarial(7, 8_000)
        whole = parfor.ExactSum(array.array("d", values))
        parts = [parfor.ExactSum(array.array("d", values[i::5])) for i in range(5)]
        for order in ([0, 1, 2, 3, 4], [4, 2, 0, 3, 1]):
            acc = parfor.ExactSum()
            for i in order:
                acc.merge(parts[i])
            # Equal sums have equal bytes: the state form is unique.
            self.assertEqual(bytes(acc), bytes(whole))
            self.assertEqual(acc, whole)
            self.assertEqual(acc.result(), math.fsum(values))
        # A tree of merges as MPI would do.
        left, right = parts[0].copy(), parts[2].copy()
        left.merge(parts[1])
        right.merge(parts[3])
        right.merge(parts[4])
        left.merge(right)
        self.assertEqual(left, whole)

    def test_merge_self_doubles(self):
        s = parfor.ExactSum(array.array("d", [0.1, 0.2]))
        s.merge(s)
        self.assertEqual(s.result(), math.fsum([0.1, 0.2, 0.1, 0.2]))

    def test_special_values(self):
        inf, nan = math.inf, math.nan
        self.assertEqual(parfor.ExactSum(array.array("d", [inf, 1.0])).result(), inf)
        self.assertEqual(parfor.ExactSum(array.array("d", [-inf, 1.0])).result(), -inf)
        self.assertTrue(math.isnan(parfor.ExactSum(array.array("d", [inf, -inf])).result()))
        self.assertTrue(math.isnan(parfor.ExactSum(array.array("d", [nan, 1.0])).result()))
        # Finite values whose exact sum is beyond double range round to infinity.
        self.assertEqual(parfor.ExactSum(array.array("d", [1.7e308, 1.7e308])).result(), inf)
        neg_zero = parfor.ExactSum(array.array("d", [-0.0, -0.0])).result()
        self.assertEqual(math.copysign(1.0, neg_zero), -1.0)
        empty = parfor.ExactSum().result()
        self.assertEqual((empty, math.copysign(1.0, empty)), (0.0, 1.0))

    def test_float32(self):
        rnd = random.Random(3)
        f32 = array.array("f", [rnd.uniform(-1, 1) * 10.0 ** rnd.randint(-30, 30) for _ in range(4_000)])
        s = parfor.ExactSum(f32)
        exact = sum(Fraction(v) for v in f32)
        self.assertEqual(s.result(), float(exact))
        self.assertEqual(s.result("float32"), round_to_float32(exact))
        self.assertEqual(parfor.sum(f32, exact=True), round_to_float32(exact))
        with self.assertRaises(ValueError):
            s.result("float16")

    def test_bytes_round_trip_and_size(self):
        s = parfor.ExactSum(array.array("d", [1.5, 2.25]))
        data = bytes(s)
        self.assertEqual(len(data), parfor.ExactSum.nbytes)
        self.assertEqual(parfor.ExactSum.nbytes, parfor.lib.parfor_exact_state_size())
        t = parfor.ExactSum.from_bytes(data)
        self.assertEqual(t.result(), 3.75)
        t.add(array.array("d", [1.0]))
        self.assertEqual(s.result(), 3.75, "from_bytes must not share state")
        self.assertEqual(parfor.ExactSum.from_bytes(bytearray(data)).result(), 3.75)
        self.assertEqual(parfor.ExactSum.from_bytes(memoryview(data)).result(), 3.75)

    def test_bad_bytes(self):
        good = bytes(parfor.ExactSum(array.array("d", [1.0])))
        with self.assertRaises(ValueError) as cm:
            parfor.ExactSum.from_bytes(good[:-1])
        self.assertIn(f"expected {parfor.ExactSum.nbytes} bytes", str(cm.exception))
        with self.assertRaises(parfor.InvalidArgumentError) as cm:
            parfor.ExactSum.from_bytes(bytes(len(good)))
        self.assertEqual(cm.exception.status, "PARFOR_ERR_INVALID_ARGUMENT")
        corrupted = bytearray(good)
        corrupted[20] ^= 0x40  # a bit in the flags word outside the defined ones
        with self.assertRaises(parfor.InvalidArgumentError):
            parfor.ExactSum.from_bytes(bytes(corrupted))

    def test_bad_inputs(self):
        s = parfor.ExactSum()
        with self.assertRaises(parfor.InvalidArgumentError) as cm:
            s.add(array.array("i", [1, 2]))
        self.assertEqual(cm.exception.status, "PARFOR_ERR_INVALID_ARGUMENT")
        with self.assertRaises(TypeError):
            s.add([1.0])
        with self.assertRaises(TypeError):
            s.merge(bytes(s))
        with self.assertRaises(parfor.MisalignedError):
            s.add(memoryview(bytearray(17))[1:].cast("d"))
        with self.assertRaises(ValueError):
            s.add_dot(array.array("d", [1.0]), array.array("d", [1.0, 2.0]))
        # Failed calls left the state unchanged.
        self.assertEqual(s, parfor.ExactSum())

    def test_concurrent_adds(self):
        s = parfor.ExactSum()
        chunk = array.array("d", [0.1] * 10_000)

        def work():
            for _ in range(20):
                s.add(chunk)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(s.result(), math.fsum([0.1] * 800_000))

    def test_state_crosses_processes(self):
        # A child process sums half the data and prints its state; the parent merges.
        values = adversarial(11, 4_000)
        code = (
            "import array, sys, parfor\n"
            f"values = {values[:2000]!r}\n"
            "sys.stdout.write(bytes(parfor.ExactSum(array.array('d', values))).hex())\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, timeout=60
        )
        self.assertEqual(out.returncode, 0, out.stderr)
        mine = parfor.ExactSum(array.array("d", values[2000:]))
        mine.merge(parfor.ExactSum.from_bytes(bytes.fromhex(out.stdout)))
        self.assertEqual(mine.result(), math.fsum(values))


class ExactDot(unittest.TestCase):
    def exact_dot(self, a, b):
        return float(sum(Fraction(x) * Fraction(y) for x, y in zip(a, b)))

    def test_dot_exact_is_correctly_rounded(self):
        rnd = random.Random(2)
        a = [rnd.uniform(-1, 1) * 10.0 ** rnd.randint(-100, 100) for _ in range(3000)]
        b = [rnd.uniform(-1, 1) * 10.0 ** rnd.randint(-100, 100) for _ in range(3000)]
        expected = self.exact_dot(a, b)
        self.assertEqual(parfor.dot(array.array("d", a), array.array("d", b), exact=True), expected)
        s = parfor.ExactSum()
        s.add_dot(array.array("d", a), array.array("d", b))
        self.assertEqual(s.result(), expected)

    def test_dot_exact_cancellation(self):
        a = array.array("d", [1e200, 1.0, -1e200])
        b = array.array("d", [1e100, 3.0, 1e100])
        self.assertEqual(parfor.dot(a, b, exact=True), 3.0)

    def test_dot_exact_float32_and_ints(self):
        a = array.array("f", [0.1, 0.2, 0.3])
        b = array.array("f", [3.0, -1.5, 7.25])
        exact = sum(Fraction(x) * Fraction(y) for x, y in zip(a, b))
        self.assertEqual(parfor.dot(a, b, exact=True), round_to_float32(exact))
        with self.assertRaises(parfor.InvalidArgumentError):
            parfor.dot(array.array("i", [1]), array.array("i", [1]), exact=True)


@requires_numpy
class ExactNumpy(unittest.TestCase):
    def test_numpy_arrays(self):
        rng = np.random.default_rng(4)
        x = rng.standard_normal(100_001) * 10.0 ** rng.integers(-30, 30, 100_001)
        self.assertEqual(parfor.sum(x, exact=True), math.fsum(x))
        s = parfor.ExactSum()
        for part in np.array_split(x, 7):
            s.add(part)
        self.assertEqual(s.result(), math.fsum(x))
        # The team size does not change the state.
        with parfor.threads(1):
            one = bytes(parfor.ExactSum(x))
        with parfor.threads(2):
            two = bytes(parfor.ExactSum(x))
        self.assertEqual(one, two)


if __name__ == "__main__":
    unittest.main()
