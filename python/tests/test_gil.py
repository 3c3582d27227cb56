"""The GIL is released during parfor calls: another Python thread makes progress
while a long reduction runs."""

import array
import sys
import threading
import time
import unittest

from _support import parfor


class GilReleased(unittest.TestCase):
    def test_other_thread_runs_during_a_reduction(self):
        # 32 MB of float64: one SUM over it takes milliseconds.
        data = array.array("d", bytes(8 * 4_000_000))
        marks = []
        stop = threading.Event()

        def counter():
            while not stop.is_set():
                marks.append(time.perf_counter())
                # Gives the GIL back at once, so that the main thread gets it as soon
                # as it wants it and the measurement windows below stay tight.
                time.sleep(0)

        # A switch interval far longer than the test means the interpreter never
        # forces the main thread to hand over the GIL: the counter can only run while
        # the main thread has released it, that is, inside a parfor call if (and only
        # if) the call releases the GIL. With the GIL held across the call (as
        # ctypes.PyDLL would) the count below is exactly 0.
        old_interval = sys.getswitchinterval()
        sys.setswitchinterval(30.0)
        thread = threading.Thread(target=counter)
        try:
            # One parfor thread leaves the other core to the counter.
            with parfor.threads(1):
                thread.start()
                while not marks:
                    time.sleep(0.001)
                windows = []
                for _ in range(10):
                    t0 = time.perf_counter()
                    parfor.sum(data)
                    t1 = time.perf_counter()
                    windows.append((t0, t1))
        finally:
            stop.set()
            sys.setswitchinterval(old_interval)
            thread.join()
        per_call = [sum(1 for m in marks if t0 < m < t1) for t0, t1 in windows]
        durations = ", ".join(f"{(t1 - t0) * 1e3:.1f}" for t0, t1 in windows)
        self.assertGreaterEqual(
            sum(1 for n in per_call if n > 0),
            5,
            f"the other thread ran during too few parfor calls: marks per call {per_call}, "
            f"call durations (ms) {durations}",
        )

    def test_python_body_runs_with_the_gil(self):
        # A Python body touches Python objects from parfor's threads: cffi takes the
        # GIL around each call, so a shared list grows by exactly one item per range.
        items = []
        with parfor.threads(2):
            parfor.parallel_for(10_000, lambda ctx, b, e: items.extend(range(b, e)))
        self.assertEqual(sorted(items), list(range(10_000)))


if __name__ == "__main__":
    unittest.main()
