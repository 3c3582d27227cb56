"""parallel_for with each kind of body (Python callable, ctypes function, integer
address, cffi callback) and ctx, cancellation, and the team-size controls."""

import ctypes
import threading
import unittest

from _support import cffi, parfor, requires_cffi
from _support import numpy as np
from _support import requires_numpy


def covered(ranges, n):
    """True when the ranges are disjoint and cover [0, n)."""
    seen = bytearray(n)
    for begin, end in ranges:
        for i in range(begin, end):
            if seen[i]:
                return False
            seen[i] = 1
    return all(seen)


class PythonBodies(unittest.TestCase):
    def test_ranges_cover_the_loop_once(self):
        for n in (0, 1, 5, 1000):
            with self.subTest(n=n):
                ranges = []
                lock = threading.Lock()

                def body(ctx, begin, end):
                    with lock:
                        ranges.append((begin, end))

                parfor.parallel_for(n, body)
                self.assertTrue(covered(ranges, n))
                self.assertEqual(len(ranges) == 0, n == 0)

    def test_ctx_is_the_python_object(self):
        out = [0] * 100

        def body(ctx, begin, end):
            for i in range(begin, end):
                ctx[i] = i * i

        parfor.parallel_for(100, body, out)
        self.assertEqual(out, [i * i for i in range(100)])

    def test_exception_cancels_and_is_reraised(self):
        class Boom(Exception):
            pass

        def body(ctx, begin, end):
            raise Boom(f"range {begin}..{end}")

        with self.assertRaises(Boom) as cm:
            parfor.parallel_for(100, body)
        self.assertIsInstance(cm.exception.__cause__, parfor.CallbackError)
        self.assertEqual(cm.exception.__cause__.status, "PARFOR_ERR_CALLBACK")

    def test_nonzero_return_cancels(self):
        with self.assertRaises(parfor.CallbackError) as cm:
            parfor.parallel_for(10, lambda ctx, b, e: 7)
        self.assertIn("returned 7", cm.exception.detail)
        # A return that would be 0 as a C int still cancels.
        with self.assertRaises(parfor.CallbackError):
            parfor.parallel_for(10, lambda ctx, b, e: 2**32)
        with self.assertRaises(TypeError) as cm:
            parfor.parallel_for(10, lambda ctx, b, e: "stop")
        self.assertIn("must return None or an int", str(cm.exception))

    def test_nested_call_runs_inside_the_body(self):
        # A parfor call from a body runs on that thread alone (team of 1).
        inner = []

        def body(ctx, begin, end):
            inner.append((parfor.num_threads(), parfor.sum(bytes([1]) * (end - begin)), end - begin))

        with parfor.threads(2):
            parfor.parallel_for(64, body)
        self.assertTrue(inner)
        for threads, total, count in inner:
            self.assertEqual(threads, 1)
            self.assertEqual(total, count % 256)

    def test_bad_bodies(self):
        with self.assertRaises(TypeError):
            parfor.parallel_for(4, "not a function")
        with self.assertRaises(TypeError):
            parfor.parallel_for(4, True)
        with self.assertRaises(ValueError):
            parfor.parallel_for(4, -5)
        with self.assertRaises(parfor.NullArgumentError) as cm:
            parfor.parallel_for(4, 0)
        self.assertIn("body", cm.exception.detail)
        wrong = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda x: 0)
        with self.assertRaises(TypeError) as cm:
            parfor.parallel_for(4, wrong)
        self.assertIn("different signature", str(cm.exception))
        with self.assertRaises(ValueError):
            parfor.parallel_for(-1, lambda c, b, e: 0)
        # Beyond size_t: ctypes would wrap it to a small count.
        with self.assertRaises(ValueError):
            parfor.parallel_for(2**64 + 3, lambda c, b, e: 0)
        with self.assertRaises(TypeError):
            parfor.parallel_for(4.0, lambda c, b, e: 0)


class CBodies(unittest.TestCase):
    """Bodies that parfor calls as C function pointers, with ctx as void *."""

    @staticmethod
    def squares_body():
        # Writes i*i into the int64 array ctx points to.
        def fill(ctx, begin, end):
            out = ctypes.cast(ctx, ctypes.POINTER(ctypes.c_int64))
            for i in range(begin, end):
                out[i] = i * i
            return 0

        return fill

    def check_squares(self, out, n):
        self.assertEqual(list(out), [i * i for i in range(n)])

    def test_ctypes_body_with_ctypes_ctx(self):
        body = parfor.BODY(self.squares_body())
        out = (ctypes.c_int64 * 50)()
        parfor.parallel_for(50, body, out)
        self.check_squares(out, 50)
        out2 = (ctypes.c_int64 * 50)()
        parfor.parallel_for(50, body, ctypes.cast(out2, ctypes.POINTER(ctypes.c_int64)))
        self.check_squares(out2, 50)
        out3 = (ctypes.c_int64 * 50)()
        parfor.parallel_for(50, body, ctypes.c_void_p(ctypes.addressof(out3)))
        self.check_squares(out3, 50)

    def test_other_cfunctype_with_the_same_signature(self):
        proto = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t)
        body = proto(self.squares_body())
        out = (ctypes.c_int64 * 20)()
        parfor.parallel_for(20, body, ctypes.addressof(out))
        self.check_squares(out, 20)

    def test_integer_address_and_buffer_ctx(self):
        body = parfor.BODY(self.squares_body())
        address = ctypes.cast(body, ctypes.c_void_p).value
        out = bytearray(8 * 30)
        parfor.parallel_for(30, address, out)
        self.check_squares(memoryview(out).cast("q"), 30)

    def test_c_body_cancellation(self):
        body = parfor.BODY(lambda ctx, b, e: 3 if b <= 5 < e else 0)
        with self.assertRaises(parfor.CallbackError) as cm:
            parfor.parallel_for(10, body)
        self.assertIn("returned 3", cm.exception.detail)

    def test_bad_ctx(self):
        body = parfor.BODY(lambda ctx, b, e: 0)
        with self.assertRaises(TypeError):
            parfor.parallel_for(1, body, object())
        with self.assertRaises(ValueError):
            parfor.parallel_for(1, body, -1)

    @requires_numpy
    def test_numpy_array_as_ctx(self):
        out = np.zeros(40, dtype=np.int64)
        parfor.parallel_for(40, parfor.BODY(self.squares_body()), out)
        self.assertEqual(out.tolist(), [i * i for i in range(40)])

    @requires_cffi
    def test_cffi_callback(self):
        ffi = cffi.FFI()
        out = ffi.new("int64_t[]", 64)

        @ffi.callback("int(void *, size_t, size_t)")
        def body(ctx, begin, end):
            data = ffi.cast("int64_t *", ctx)
            for i in range(begin, end):
                data[i] = i * i
            return 0

        parfor.parallel_for(64, body, out)
        self.assertEqual(list(out), [i * i for i in range(64)])

    @requires_cffi
    def test_cffi_wrong_signature(self):
        ffi = cffi.FFI()
        body = ffi.callback("int(int)", lambda x: 0)
        with self.assertRaises(TypeError) as cm:
            parfor.parallel_for(4, body)
        self.assertIn("int(*)(int)", str(cm.exception))


class TeamSize(unittest.TestCase):
    def setUp(self):
        self.addCleanup(parfor.set_num_threads, 0)

    def test_set_and_read(self):
        parfor.set_num_threads(1)
        self.assertEqual(parfor.num_threads(), 1)
        parfor.set_num_threads(3)
        self.assertEqual(parfor.num_threads(), 3)
        parfor.set_num_threads(0)
        self.assertGreaterEqual(parfor.num_threads(), 1)

    def test_environment_default(self):
        # PARFOR_NUM_THREADS is read by the library; the child sees it.
        import subprocess
        import sys

        from _support import child_env

        env = child_env()
        env["PARFOR_NUM_THREADS"] = "3"
        out = subprocess.run(
            [sys.executable, "-c", "import parfor; print(parfor.num_threads())"],
            env=env, capture_output=True, text=True, timeout=60,
        )
        self.assertEqual(out.stdout.strip(), "3", out.stderr)

    def test_threads_context_restores(self):
        parfor.set_num_threads(2)
        with parfor.threads(1) as n:
            self.assertEqual(n, 1)
            self.assertEqual(parfor.num_threads(), 1)
            with parfor.threads(3):
                self.assertEqual(parfor.num_threads(), 3)
            self.assertEqual(parfor.num_threads(), 1)
        self.assertEqual(parfor.num_threads(), 2)

    def test_threads_context_restores_the_default_after_an_exception(self):
        parfor.set_num_threads(0)
        default = parfor.num_threads()
        with self.assertRaises(KeyError):
            with parfor.threads(default + 1):
                self.assertEqual(parfor.num_threads(), default + 1)
                raise KeyError("x")
        self.assertEqual(parfor.num_threads(), default)
        self.assertEqual(parfor._api._setting, 0)

    def test_team_size_is_used(self):
        # With a team of k, a static loop over k*8 iterations is cut into k ranges.
        for k in (1, 2, 3):
            with self.subTest(k=k), parfor.threads(k):
                ranges = []
                parfor.parallel_for(8 * k, lambda c, b, e: ranges.append((b, e)))
                self.assertEqual(len(ranges), k)



class PerCallOptions(unittest.TestCase):
    """parallel_for's num_threads=, schedule= and chunk= apply to that call only."""

    def ranges(self, n, **options):
        seen = []
        lock = threading.Lock()

        def body(_ctx, begin, end):
            with lock:
                seen.append((begin, end))

        parfor.parallel_for(n, body, **options)
        seen.sort()
        # Disjoint and covering [0, n).
        covered = [i for b, e in seen for i in range(b, e)]
        self.assertEqual(covered, list(range(n)), options)
        return seen

    def test_one_thread_gets_one_range(self):
        self.assertEqual(self.ranges(1000, num_threads=1), [(0, 1000)])

    def test_every_schedule_and_chunk(self):
        for schedule in ("static", "dynamic", "guided", "auto", parfor.Schedule.DYNAMIC, int(parfor.Schedule.STATIC)):
            for chunk in (None, 0, 1, 7, 1000):
                with self.subTest(schedule=schedule, chunk=chunk):
                    seen = self.ranges(200, num_threads=3, schedule=schedule, chunk=chunk)
                    if chunk and schedule in ("static", "dynamic", parfor.Schedule.DYNAMIC, int(parfor.Schedule.STATIC)):
                        self.assertTrue(all(e - b <= chunk for b, e in seen), seen)
        # Static without a chunk: one range per thread at most.
        self.assertLessEqual(len(self.ranges(900, num_threads=2, schedule="static")), 2)

    def test_options_do_not_change_the_setting(self):
        before = parfor.num_threads()
        self.ranges(100, num_threads=1, schedule="dynamic", chunk=3)
        self.assertEqual(parfor.num_threads(), before)

    def test_bad_options(self):
        body = lambda c, b, e: 0  # noqa: E731
        with self.assertRaises(ValueError):
            parfor.parallel_for(10, body, schedule="fastest")
        with self.assertRaises(TypeError):
            parfor.parallel_for(10, body, schedule=1.5)
        with self.assertRaises(parfor.InvalidArgumentError):
            parfor.parallel_for(10, body, schedule=17)
        with self.assertRaises(ValueError):
            parfor.parallel_for(10, body, chunk=-1)
        with self.assertRaises(ValueError):
            parfor.parallel_for(10, body, num_threads=-2)
        with self.assertRaises(parfor.InvalidArgumentError):
            parfor.parallel_for(10, body, num_threads=parfor.MAX_THREADS + 1)
        with self.assertRaises(TypeError):
            parfor.parallel_for(10, body, num_threads=True)

if __name__ == "__main__":
    unittest.main()


class DaemonThreadAtExit(unittest.TestCase):
    """Issue 13, row 7: Python exits while a daemon thread is inside parallel_for
    with a Python body. CPython (3.8 and later) ends every thread that wants the GIL
    after finalisation began with pthread_exit, a forced unwind through parfor's
    frames; parfor used to catch it and glibc aborted ("FATAL: exception not
    rethrown", SIGABRT in 4 of 6 runs). The exit must be clean every time."""

    SCRIPT = r"""
import threading, time, parfor
started = threading.Event()
def body(ctx, begin, end):
    started.set()
    for _ in range(begin, end):
        time.sleep(0.002)
def run():
    parfor.parallel_for(10**6, body, num_threads=2)
threading.Thread(target=run, daemon=True).start()
started.wait(30)
time.sleep(0.05)
print("main exits")
"""

    def test_interpreter_exit_ends_the_call_cleanly(self):
        import subprocess
        import sys

        from _support import child_env

        for run in range(8):
            with self.subTest(run=run):
                out = subprocess.run(
                    [sys.executable, "-c", self.SCRIPT],
                    env=child_env(), capture_output=True, text=True, timeout=120,
                )
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertIn("main exits", out.stdout)
                self.assertNotIn("FATAL", out.stderr)
