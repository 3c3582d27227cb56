"""parfor.aio: awaitable calls keep the event loop running, give the results of the
plain calls, cancel parallel_for through the library's cancel path, keep buffers
alive until the library is done, run under uvloop, from many tasks, and after fork.

No assertion is on a duration: "the loop keeps running" is checked as ticks of a 1 ms
ticker counted while a call is known to be in flight (a call that held the GIL or
ran on the loop's thread would let no tick through)."""

import array
import asyncio
import ctypes
import gc
import inspect
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
import unittest
import weakref

from _support import EXAMPLES, cffi, child_env, parfor, requires_numpy
from _support import numpy as np

import parfor.aio as aio

try:
    import uvloop
except ImportError:
    uvloop = None

# Every wait in these tests is bounded by this many seconds (a hang fails the test
# instead of stalling the suite); generous because the test machine may be loaded.
WAIT_S = 60


def run(coro):
    async def bounded():
        return await asyncio.wait_for(coro, WAIT_S)

    return asyncio.run(bounded())


async def until(predicate, what):
    """Yields to the loop until predicate() is true (bounded by WAIT_S)."""
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


class Ticker:
    """A coroutine that counts 1 ms sleeps, and how many of them ended while
    ``busy()`` was true."""

    def __init__(self, busy=lambda: False):
        self.ticks = 0
        self.ticks_while_busy = 0
        self.busy = busy

    async def __call__(self):
        while True:
            await asyncio.sleep(0.001)
            self.ticks += 1
            if self.busy():
                self.ticks_while_busy += 1


def supports(fn, keyword):
    try:
        return keyword in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


class Results(unittest.TestCase):
    def test_twins_give_the_plain_results(self):
        rng = random.Random(17)
        floats = array.array("d", (rng.uniform(-1e6, 1e6) for _ in range(100_003)))
        ints = array.array("q", (rng.randrange(-(10**9), 10**9) for _ in range(100_003)))

        async def main():
            return (
                await aio.sum(ints),
                await aio.sum(floats, exact=True),
                await aio.min(ints),
                await aio.max(ints),
                await aio.prod(array.array("q", [3] * 20)),
                await aio.argmin(ints),
                await aio.argmax(ints),
                await aio.dot(ints, ints),
            )

        got = run(main())
        values = list(ints)
        self.assertEqual(got[0], sum(values))
        self.assertEqual(got[1], math.fsum(floats))
        self.assertEqual(got[2], min(values))
        self.assertEqual(got[3], max(values))
        self.assertEqual(got[4], 3**20)
        self.assertEqual(got[5], values.index(min(values)))
        self.assertEqual(got[6], values.index(max(values)))
        squares = sum(v * v for v in values) % 2**64  # int64 wraps
        self.assertEqual(got[7], squares - 2**64 if squares >= 2**63 else squares)

    def test_every_public_function_present_has_a_twin(self):
        for name in aio._WRAPPED:
            with self.subTest(name=name):
                self.assertEqual(hasattr(aio, name), callable(getattr(parfor, name, None)))
                if hasattr(aio, name):
                    self.assertTrue(inspect.iscoroutinefunction(getattr(aio, name)))
                    self.assertIn(name, aio.__all__)
        self.assertTrue(inspect.iscoroutinefunction(aio.parallel_for))

    def test_errors_reach_the_awaiter(self):
        async def main():
            # parfor.EmptyError (a ValueError) from the 1-D API, numpy's ValueError
            # message from the numpy-style one
            with self.assertRaisesRegex(ValueError, "PARFOR_ERR_EMPTY|zero-size array"):
                await aio.min(array.array("d"))
            with self.assertRaises(TypeError):
                await aio.sum(object())

            def body(ctx, begin, end):
                raise KeyError("from the body")

            with self.assertRaisesRegex(KeyError, "from the body"):
                await aio.parallel_for(10, body)

        run(main())
        self.assertEqual(aio.in_flight(), 0)

    def test_each_kind_of_body(self):
        # Python callable, ctypes BODY, integer address, cffi callback: every range
        # reaches the body once, with ctx passed through (a buffer's address for C).
        hits = array.array("q", [0] * 1000)
        lock = threading.Lock()

        def count(begin, end):
            with lock:
                for i in range(begin, end):
                    hits[i] += 1

        def c_body(ctx, begin, end):
            self.assertEqual(ctx, ctypes.addressof(ctypes.c_char.from_buffer(hits)))
            count(begin, end)
            return 0

        ctypes_body = parfor.BODY(c_body)
        bodies = [
            ("python", lambda ctx, b, e: count(b, e), None),
            ("ctypes", ctypes_body, hits),
            ("address", ctypes.cast(ctypes_body, ctypes.c_void_p).value, hits),
        ]
        if cffi is not None:
            ffi = cffi.FFI()
            bodies.append(
                (
                    "cffi",
                    ffi.callback("int(void *, size_t, size_t)", lambda ctx, b, e: count(b, e) or 0),
                    None,
                )
            )

        async def main():
            for name, body, ctx in bodies:
                await aio.parallel_for(1000, body, ctx=ctx)
            with self.assertRaises(parfor.NullArgumentError):
                await aio.parallel_for(10, 0)
            with self.assertRaises(TypeError):
                await aio.parallel_for(10, "not a body")

        run(main())
        self.assertEqual(list(hits), [len(bodies)] * 1000)

    def test_outside_a_running_loop(self):
        coro = aio.sum(array.array("d", [1.0]))
        with self.assertRaisesRegex(RuntimeError, "no running event loop"):
            coro.send(None)
        coro.close()
        self.assertEqual(aio.in_flight(), 0)

    def test_workers_from_the_environment(self):
        code = "import parfor.aio as a; print(a.workers())"
        for value, expected in (("3", "3"), ("", "1")):
            env = child_env()
            env["PARFOR_AIO_WORKERS"] = value
            out = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
            )
            self.assertEqual((out.returncode, out.stdout.strip()), (0, expected), out.stderr)
        for bad in ("0", "two"):
            env = child_env()
            env["PARFOR_AIO_WORKERS"] = bad
            out = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
            )
            self.assertNotEqual(out.returncode, 0)
            self.assertIn(
                f"ValueError: PARFOR_AIO_WORKERS must be a positive integer, not {bad!r}",
                out.stderr,
            )

    def test_set_workers_while_calls_are_queued(self):
        # Calls queued on the old executor still run; later calls use the new one.
        started = threading.Event()
        release = threading.Event()
        names = []

        def blocker(ctx, begin, end):
            started.set()
            release.wait(WAIT_S)

        def which(ctx, begin, end):
            names.append(threading.current_thread().name)

        async def main():
            first = asyncio.ensure_future(aio.parallel_for(1, blocker))
            await until(started.is_set, "the first call")
            queued = asyncio.ensure_future(aio.sum(array.array("q", range(10))))
            await asyncio.sleep(0.01)
            aio.set_workers(2)
            later = await aio.parallel_for(1, which)
            release.set()
            await first
            return await queued, later

        try:
            total, later = run(main())
        finally:
            aio.set_workers(1)
        self.assertEqual((total, later), (45, None))
        self.assertEqual(len(names), 1)
        self.assertTrue(names[0].startswith("parfor-aio"), names)

    def test_set_workers_checks_its_argument(self):
        with self.assertRaisesRegex(ValueError, r"set_workers\(n\): n must be >= 1, not 0"):
            aio.set_workers(0)
        with self.assertRaisesRegex(TypeError, r"set_workers\(n\): n must be an int, not float"):
            aio.set_workers(1.0)
        with self.assertRaises(TypeError):
            aio.set_workers(True)
        self.assertEqual(aio.workers(), 1)


class EventLoopKeepsRunning(unittest.TestCase):
    def test_ticks_during_a_call_held_open(self):
        # The body blocks until the test has seen 50 ticks: that can only happen if
        # the loop runs while the library call is in flight.
        started = threading.Event()
        release = threading.Event()

        def body(ctx, begin, end):
            started.set()
            release.wait(WAIT_S)

        async def main():
            ticker = Ticker()
            tick_task = asyncio.ensure_future(ticker())
            call = asyncio.ensure_future(aio.parallel_for(1, body))
            await until(started.is_set, "the body to start")
            first = ticker.ticks
            await until(lambda: ticker.ticks >= first + 50, "50 ticks during the call")
            self.assertFalse(call.done())
            self.assertTrue(started.is_set() and not release.is_set())
            release.set()
            await call
            tick_task.cancel()

        run(main())

    def check_ticks_during_reductions(self):
        # Values whose sum is exact in float64, so the result can be checked.
        # 12e6 elements: an exact sum of several ms on a fast 2-core machine, so that 1 ms
        # ticks can fall inside one call (4e6 took under 3 ms on a quiet Zen 3).
        x = array.array("d", [0.5, 0.25]) * 6_000_000
        running = []

        def observed_sum(values):
            # Runs on the executor thread: marks the C call's duration, which a tick
            # can only fall into if the call does not hold the GIL or the loop.
            running.append(1)
            try:
                return parfor.sum(values, exact=True)
            finally:
                running.clear()

        async def main():
            ticker = Ticker(busy=lambda: bool(running))
            tick_task = asyncio.ensure_future(ticker())
            # Long calls, one after another, until one call has let 3 ticks through
            # (bounded: a call that froze the loop lets none through).
            best = 0
            for _ in range(200):
                before = ticker.ticks_while_busy
                self.assertEqual(await aio.run(observed_sum, x), 4_500_000.0)
                best = max(best, ticker.ticks_while_busy - before)
                if best >= 3:
                    break
            # and the twin itself, through the same executor
            self.assertEqual(await aio.sum(x, exact=True), 4_500_000.0)
            tick_task.cancel()
            self.assertGreaterEqual(best, 3)

        return main

    def test_ticks_during_long_reductions(self):
        run(self.check_ticks_during_reductions()())

    @unittest.skipIf(uvloop is None, "uvloop is not installed")
    def test_under_uvloop(self):
        main = self.check_ticks_during_reductions()

        async def both():
            self.assertIn("uvloop", type(asyncio.get_running_loop()).__module__)
            await main()
            self.assertEqual(await aio.sum(array.array("q", range(1000))), 499500)

        loop = uvloop.new_event_loop()
        try:
            loop.run_until_complete(asyncio.wait_for(both(), WAIT_S))
        finally:
            loop.close()


class ManyTasks(unittest.TestCase):
    def check_gather(self):
        arrays = [array.array("q", range(k, k + 50_000 + k)) for k in range(16)]
        hits = array.array("q", [0] * 1000)
        lock = threading.Lock()

        def body(ctx, begin, end):
            with lock:
                for i in range(begin, end):
                    hits[i] += 1

        async def main():
            sums = asyncio.gather(*(aio.sum(a) for a in arrays))
            loops = asyncio.gather(*(aio.parallel_for(1000, body) for _ in range(4)))
            return await sums, await loops

        sums, loops = run(main())
        self.assertEqual(sums, [sum(a) for a in arrays])
        self.assertEqual(loops, [None] * 4)
        self.assertEqual(list(hits), [4] * 1000)
        self.assertEqual(aio.in_flight(), 0)

    def test_gather_with_one_worker(self):
        self.check_gather()

    def test_gather_with_two_workers(self):
        aio.set_workers(2)
        try:
            self.assertEqual(aio.workers(), 2)
            self.check_gather()
        finally:
            aio.set_workers(1)

    def test_one_call_at_a_time_per_worker(self):
        running = []
        most = []
        lock = threading.Lock()

        def body(ctx, begin, end):
            with lock:
                running.append(1)
                most.append(len(running))
            time.sleep(0.002)
            with lock:
                running.pop()

        async def main():
            await asyncio.gather(*(aio.parallel_for(1, body) for _ in range(8)))

        run(main())
        self.assertEqual(len(most), 8)
        self.assertEqual(max(most), 1)


class Cancellation(unittest.TestCase):
    def test_parallel_for_stops_ranges_not_started(self):
        if not supports(parfor.parallel_for, "chunk"):
            self.skipTest("parfor.parallel_for has no chunk= / schedule= yet (issue 12)")
        calls = []
        lock = threading.Lock()
        first = threading.Event()
        release = threading.Event()

        def body(ctx, begin, end):
            with lock:
                calls.append((begin, end))
            first.set()
            release.wait(WAIT_S)

        async def main():
            task = asyncio.ensure_future(
                aio.parallel_for(10_000, body, num_threads=2, schedule="dynamic", chunk=1)
            )
            await until(first.is_set, "the first range")
            task.cancel()
            await asyncio.sleep(0.01)
            self.assertFalse(task.done())  # the awaiter waits for the library to stop
            release.set()
            with self.assertRaises(asyncio.CancelledError):
                await task
            return len(calls)

        count = run(main())
        # Only the ranges running when the task was cancelled ran (one per thread).
        self.assertLessEqual(count, 2)
        self.assertEqual(len(calls), count)  # nothing ran after the await raised
        self.assertEqual(aio.in_flight(), 0)

    def check_cancel_stops_later_ranges(self, make_body):
        # Works with any parallel_for: the body of range k blocks until the task is
        # cancelled; every range entered after the cancel is skipped by the gate.
        calls = []
        lock = threading.Lock()
        started = threading.Event()
        release = threading.Event()

        def record(begin, end):
            with lock:
                calls.append((begin, end))
            started.set()
            release.wait(WAIT_S)

        body = make_body(record)

        async def main():
            task = asyncio.ensure_future(aio.parallel_for(1000, body))
            await until(started.is_set, "a range to start")
            task.cancel()
            self.assertFalse(task.done())
            release.set()
            with self.assertRaises(asyncio.CancelledError):
                await task
            count = len(calls)
            await asyncio.sleep(0.01)
            return count

        count = run(main())
        self.assertEqual(len(calls), count)  # no body call after the await raised
        covered = builtins_sum(end - begin for begin, end in calls)
        self.assertLessEqual(covered, 1000)
        self.assertGreater(covered, 0)
        self.assertEqual(aio.in_flight(), 0)

    def test_cancel_a_python_body(self):
        self.check_cancel_stops_later_ranges(lambda record: lambda ctx, b, e: record(b, e))

    def test_cancel_a_c_body(self):
        def make(record):
            return parfor.BODY(lambda ctx, b, e: record(b, e) or 0)

        self.check_cancel_stops_later_ranges(make)

    def test_cancelled_while_queued_never_runs(self):
        started = threading.Event()
        release = threading.Event()
        ran = []

        def blocker(ctx, begin, end):
            started.set()
            release.wait(WAIT_S)

        def never(ctx, begin, end):
            ran.append(begin)

        async def main():
            first = asyncio.ensure_future(aio.parallel_for(1, blocker))
            await until(started.is_set, "the first call")
            queued_loop = asyncio.ensure_future(aio.parallel_for(10, never))
            queued_sum = asyncio.ensure_future(aio.sum(array.array("d", [1.0])))
            await asyncio.sleep(0.01)
            queued_loop.cancel()
            queued_sum.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await queued_loop
            with self.assertRaises(asyncio.CancelledError):
                await queued_sum
            release.set()
            await first
            await until(lambda: aio.in_flight() == 0, "the executor to drain")

        run(main())
        self.assertEqual(ran, [])

    def test_cancelled_reduction_keeps_its_buffer_until_done(self):
        # A reduction cancelled while running finishes in the background: its array
        # must outlive the call even when the awaiter's reference is gone.
        started = threading.Event()
        release = threading.Event()
        results = []

        def slow_sum(x):
            started.set()
            release.wait(WAIT_S)
            results.append(parfor.sum(x, exact=True))
            return results[-1]

        async def main():
            x = array.array("d", [0.5] * 100_000)
            alive = weakref.ref(x)
            task = asyncio.ensure_future(aio.run(slow_sum, x))
            await until(started.is_set, "the call to start")
            task.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await task  # at once: the reduction goes on in the background
            del x
            gc.collect()
            self.assertIsNotNone(alive())
            self.assertEqual(aio.in_flight(), 1)
            release.set()
            await until(lambda: aio.in_flight() == 0, "the background call")
            gc.collect()
            return alive

        alive = run(main())
        self.assertEqual(results, [50_000.0])
        self.assertIsNone(alive())

    def test_cancelled_loop_keeps_its_ctx_buffer_pinned(self):
        # A C body writing through ctx (the buffer's address) after the task was
        # cancelled and the last user reference dropped: the buffer is still there.
        started = threading.Event()
        release = threading.Event()
        seen = []

        def c_body(ctx, begin, end):
            started.set()
            release.wait(WAIT_S)
            view = (ctypes.c_double * 4).from_address(ctx)
            view[0] = 7.0
            seen.append(list(view))
            return 0

        body = parfor.BODY(c_body)

        async def main():
            x = array.array("d", [1.0, 2.0, 3.0, 4.0])
            alive = weakref.ref(x)
            task = asyncio.ensure_future(aio.parallel_for(1, body, ctx=x))
            await until(started.is_set, "the body")
            task.cancel()
            del x
            gc.collect()
            self.assertIsNotNone(alive())
            release.set()
            with self.assertRaises(asyncio.CancelledError):
                await task
            gc.collect()
            return alive

        alive = run(main())
        self.assertEqual(seen, [[7.0, 2.0, 3.0, 4.0]])
        self.assertIsNone(alive())

    @requires_numpy
    def test_real_reductions_cancelled_at_random_points(self):
        x = np.arange(2_000_000, dtype=np.float64)

        async def main():
            for k in range(20):
                task = asyncio.ensure_future(aio.sum(x))
                for _ in range(k % 4):
                    await asyncio.sleep(0)
                task.cancel()
                try:
                    self.assertEqual(await task, float(x.sum()))
                except asyncio.CancelledError:
                    pass
            await until(lambda: aio.in_flight() == 0, "the background calls")
            self.assertEqual(await aio.sum(x), 1999999000000.0)

        run(main())


builtins_sum = sum


class Fork(unittest.TestCase):
    @unittest.skipUnless(hasattr(os, "fork"), "no os.fork")
    def test_child_gets_a_fresh_executor(self):
        # The parent's only executor thread is busy at fork time; a child that reused
        # the parent's executor would queue behind work that never runs there.
        started = threading.Event()
        release = threading.Event()

        def blocker(ctx, begin, end):
            started.set()
            release.wait(WAIT_S)

        async def parent():
            task = asyncio.ensure_future(aio.parallel_for(1, blocker))
            await until(started.is_set, "the parent's call")
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    async def child():
                        return await aio.sum(array.array("q", range(1000)))

                    loop = asyncio.new_event_loop()
                    if loop.run_until_complete(asyncio.wait_for(child(), WAIT_S)) == 499500:
                        code = 0
                finally:
                    os._exit(code)
            release.set()
            await task
            return pid

        pid = run(parent())
        deadline = time.monotonic() + WAIT_S
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                self.fail("the forked child hung")
            time.sleep(0.01)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)


class Example(unittest.TestCase):
    def test_ticker_example_runs(self):
        out = subprocess.run(
            [sys.executable, str(EXAMPLES / "aio_ticker.py"), "--size", "1e6", "--repeat", "2"],
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.strip().splitlines()
        self.assertEqual(lines[-1], "ok")
        self.assertRegex(out.stdout, r"await parfor.aio.sum: .* event loop: \d+ ticks")


if __name__ == "__main__":
    unittest.main()
