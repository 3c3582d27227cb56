"""Every bad input: the exact exception type, the status and message it carries, and
that nothing reaches the C library in a form that could crash the interpreter."""

import array
import subprocess
import sys
import textwrap
import unittest

from _support import child_env
from _support import numpy as np
from _support import parfor, requires_numpy

from parfor import _errors


class ErrorClass(unittest.TestCase):
    def test_hierarchy(self):
        self.assertTrue(issubclass(parfor.Error, RuntimeError))
        for cls in (
            parfor.NullArgumentError,
            parfor.InvalidArgumentError,
            parfor.MisalignedError,
            parfor.EmptyError,
        ):
            self.assertTrue(issubclass(cls, parfor.Error))
            self.assertTrue(issubclass(cls, ValueError))
        for cls in (parfor.CallbackError, parfor.PanicError, parfor.RuntimeFailureError):
            self.assertTrue(issubclass(cls, parfor.Error))
            self.assertFalse(issubclass(cls, ValueError))
        # One class per failing status, and each named status is the C name.
        self.assertEqual(
            sorted(s.name for s in _errors.ERROR_CLASSES),
            sorted(s.name for s in parfor.Status if s != parfor.Status.PARFOR_OK),
        )

    def test_error_carries_status_and_last_error(self):
        with self.assertRaises(parfor.EmptyError) as cm:
            parfor.reduce(b"", "min")
        e = cm.exception
        self.assertEqual(e.status, "PARFOR_ERR_EMPTY")
        self.assertEqual(e.code, 4)
        # The detail is parfor_last_error() of the failing call, on this thread.
        self.assertEqual(e.detail, parfor.ffi.string(parfor.lib.parfor_last_error()).decode())
        self.assertIn("zero elements", e.detail)
        self.assertIn("PARFOR_ERR_EMPTY", str(e))

    def test_unknown_status_is_still_an_error(self):
        e = _errors.error_for(42)
        self.assertIsInstance(e, parfor.Error)
        self.assertEqual(e.status, "PARFOR_STATUS_42")
        self.assertIn("unknown parfor_status value", str(e))

    def test_check_raises_the_status_class(self):
        # A C call that fails with a known status, through the one helper.
        with self.assertRaises(parfor.NullArgumentError) as cm:
            _errors.check(parfor.lib.parfor_reduce, parfor.ffi.NULL, 1, 1, 0, parfor.ffi.NULL, parfor.ffi.NULL)
        self.assertEqual(cm.exception.status, "PARFOR_ERR_NULL_ARGUMENT")
        self.assertIn("is NULL", cm.exception.detail)


class BadBuffers(unittest.TestCase):
    def test_not_a_buffer(self):
        for value in ([1.0, 2.0], (1, 2), 3, "abc", None, {1: 2}):
            with self.subTest(value=value):
                with self.assertRaises(TypeError) as cm:
                    parfor.sum(value)
                self.assertIn("buffer protocol", str(cm.exception))
                self.assertIn("parfor.sum()", str(cm.exception))

    def test_unsupported_element_types(self):
        with self.assertRaises(TypeError) as cm:
            parfor.sum(array.array("u", "abc"))
        self.assertIn("parfor reduces bool, int8", str(cm.exception))
        with self.assertRaises(TypeError) as cm:
            parfor.reduce(array.array("u", "abc"), "sum")
        self.assertIn("unsupported element format", str(cm.exception))
        with self.assertRaises(TypeError):
            parfor.sum(memoryview(b"ab").cast("c"))

    def test_misaligned_view(self):
        raw = bytearray(8 * 5)
        view = memoryview(raw)[1:33].cast("d")
        with self.assertRaises(parfor.MisalignedError) as cm:
            parfor.sum(view)
        e = cm.exception
        self.assertIsInstance(e, ValueError)
        self.assertEqual(e.status, "PARFOR_ERR_MISALIGNED")
        self.assertIn("not aligned to 8 bytes", e.detail)
        # Read-only misaligned views fail the same way.
        with self.assertRaises(parfor.MisalignedError):
            parfor.max(memoryview(bytes(raw))[3:35].cast("d"))

    def test_unknown_operator(self):
        x = array.array("i", [1, 2])
        with self.assertRaises(ValueError) as cm:
            parfor.reduce(x, "average")
        self.assertNotIsInstance(cm.exception, parfor.Error)
        self.assertIn("bit_xor", str(cm.exception))
        with self.assertRaises(parfor.InvalidArgumentError) as cm:
            parfor.reduce(x, 42)
        self.assertEqual(cm.exception.status, "PARFOR_ERR_INVALID_ARGUMENT")
        self.assertIn("not a parfor_op", cm.exception.detail)
        with self.assertRaises(ValueError):
            parfor.reduce(x, 2**40)
        with self.assertRaises(TypeError):
            parfor.reduce(x, 1.0)
        with self.assertRaises(TypeError):
            parfor.reduce(x, True)

    def test_operator_not_defined_for_dtype(self):
        with self.assertRaises(parfor.InvalidArgumentError) as cm:
            parfor.reduce(array.array("d", [1.0]), "bit_xor")
        self.assertEqual(cm.exception.status, "PARFOR_ERR_INVALID_ARGUMENT")
        with self.assertRaises(parfor.InvalidArgumentError) as cm:
            parfor.reduce(array.array("i", [1]), "sum_exact")
        self.assertIn("PARFOR_SUM_EXACT", cm.exception.detail)
        with self.assertRaises(TypeError) as cm:
            parfor.sum(array.array("i", [1]), exact=True)
        self.assertIn("float32 or float64", str(cm.exception))

    def test_dot_mismatches(self):
        with self.assertRaises(TypeError) as cm:
            parfor.dot(array.array("d", [1.0]), array.array("f", [1.0]))
        self.assertIn("same element type", str(cm.exception))
        with self.assertRaises(ValueError) as cm:
            parfor.dot(array.array("d", [1.0]), array.array("d", [1.0, 2.0]))
        self.assertIn("1 elements and b has 2", str(cm.exception))
        with self.assertRaises(TypeError):
            parfor.dot(array.array("d", [1.0]), [1.0])

    def test_thread_counts(self):
        with self.assertRaises(ValueError):
            parfor.set_num_threads(-1)
        with self.assertRaises(ValueError):
            parfor.set_num_threads(2**64 + 1)
        with self.assertRaises(TypeError):
            parfor.set_num_threads("2")
        with self.assertRaises(TypeError):
            parfor.set_num_threads(2.0)
        before = parfor.num_threads()
        with self.assertRaises(parfor.InvalidArgumentError) as cm:
            parfor.set_num_threads(parfor.MAX_THREADS + 1)
        self.assertEqual(cm.exception.status, "PARFOR_ERR_INVALID_ARGUMENT")
        self.assertEqual(parfor.num_threads(), before)
        with self.assertRaises(parfor.InvalidArgumentError):
            with parfor.threads(parfor.MAX_THREADS + 1):
                self.fail("the block must not run")
        self.assertEqual(parfor.num_threads(), before)


@requires_numpy
class BadNumpyArrays(unittest.TestCase):
    def test_non_contiguous_is_read_in_place_by_reductions(self):
        x = np.arange(20.0)
        for view in (x[::2], x.reshape(4, 5).T, np.asfortranarray(x.reshape(4, 5)), x[::-1]):
            with self.subTest(strides=view.strides):
                self.assertEqual(parfor.sum(view), np.sum(view))
                # The flat-buffer functions still refuse to copy.
                with self.assertRaises(ValueError) as cm:
                    parfor.reduce(view, "sum")
                self.assertIn("not C-contiguous", str(cm.exception))
                self.assertIn("never copies", str(cm.exception))
                self.assertNotIsInstance(cm.exception, parfor.Error)

    def test_unsupported_dtypes(self):
        for dtype, hint in (
            (np.float16, "float16"),
            (np.complex128, "complex128"),
            (np.dtype([("a", "i4")]), "('a', '<i4')"),
        ):
            with self.subTest(dtype=dtype):
                for fn in (parfor.sum, parfor.mean, parfor.argmax, parfor.nanmin):
                    with self.assertRaises(TypeError) as cm:
                        fn(np.zeros(3, dtype=dtype))
                    self.assertIn(hint, str(cm.exception))
                    # The message names what is supported.
                    self.assertIn("bool, int8, int16, int32, int64, uint8", str(cm.exception))
                    self.assertIn("float32, float64", str(cm.exception))
        for dtype in (object, "M8[s]", "U3"):
            with self.subTest(dtype=dtype):
                with self.assertRaises(TypeError):
                    parfor.max(np.zeros(3, dtype=dtype))

    def test_foreign_byte_order(self):
        swapped = np.arange(4, dtype=np.dtype("f8").newbyteorder("S"))
        with self.assertRaises(TypeError) as cm:
            parfor.sum(swapped)
        self.assertIn("byte order", str(cm.exception))

    def test_misaligned_array(self):
        raw = np.zeros(41, dtype=np.uint8)
        view = raw[1:].view(np.float64)
        with self.assertRaises(parfor.MisalignedError) as cm:
            parfor.argmin(view)
        self.assertEqual(cm.exception.status, "PARFOR_ERR_MISALIGNED")


class NoCrash(unittest.TestCase):
    def test_bad_inputs_in_a_child_exit_cleanly(self):
        # The whole battery in a fresh interpreter: a crash there (a signal) would be
        # invisible to assertRaises in this one.
        code = textwrap.dedent(
            """
            import array, parfor
            cases = [
                lambda: parfor.sum([1]),
                lambda: parfor.min(b""),
                lambda: parfor.sum(memoryview(bytearray(17))[1:].cast("d")),
                lambda: parfor.reduce(b"x", 99),
                lambda: parfor.reduce(array.array("f", [1]), "bit_and"),
                lambda: parfor.parallel_for(4, 0),
                lambda: parfor.parallel_for(4, "body"),
                lambda: parfor.parallel_for(-1, lambda c, b, e: 0),
                lambda: parfor.set_num_threads(10**6),
                lambda: parfor.dot(b"ab", b"abc"),
            ]
            kinds = []
            for case in cases:
                try:
                    case()
                except (TypeError, ValueError, parfor.Error) as e:
                    kinds.append(type(e).__name__)
            print(",".join(kinds))
            """
        )
        out = subprocess.run(
            [sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, timeout=60
        )
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(
            out.stdout.strip().split(","),
            [
                "TypeError",
                "ValueError",
                "MisalignedError",
                "InvalidArgumentError",
                "InvalidArgumentError",
                "NullArgumentError",
                "TypeError",
                "ValueError",
                "InvalidArgumentError",
                "ValueError",
            ],
        )


if __name__ == "__main__":
    unittest.main()
