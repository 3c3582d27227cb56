"""An asyncio event loop stays responsive while parfor reduces a large array.

A ticker coroutine sleeps 1 ms in a loop and records the interval between its ticks.
First the loop awaits ``parfor.aio.sum`` (the call runs on parfor.aio's executor
with the GIL released), then, for contrast, it calls ``parfor.sum`` directly, which
blocks the loop for the whole call. The example prints the tick intervals seen in
each case and checks that the loop kept ticking during the awaited calls.

    python examples/aio_ticker.py                 # 1e8 float64 values (800 MB)
    python examples/aio_ticker.py --size 1e6      # quick

Prints "ok" last.
"""

import argparse
import array
import asyncio
import statistics
import time

import parfor
import parfor.aio


class Ticker:
    def __init__(self):
        self.last = time.perf_counter()
        self.intervals = []
        self.recording = False

    async def run(self):
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            if self.recording:
                self.intervals.append(now - self.last)
            self.last = now

    def window(self):
        """Starts a new recording window."""
        self.intervals = []
        self.last = time.perf_counter()  # a loop blocked from here shows as one long gap
        self.recording = True


def describe(intervals):
    if not intervals:
        return "no tick"
    ms = sorted(1e3 * t for t in intervals)
    return (
        f"{len(ms)} ticks, interval median {statistics.median(ms):.2f} ms, "
        f"max {ms[-1]:.2f} ms"
    )


async def main(size, repeat):
    values = array.array("d", [0.5, 0.25]) * (size // 2)
    expected = 0.75 * (size // 2)
    ticker = Ticker()
    task = asyncio.ensure_future(ticker.run())
    await asyncio.sleep(0.01)

    ticker.window()
    start = time.perf_counter()
    for _ in range(repeat):
        assert await parfor.aio.sum(values) == expected
    awaited = time.perf_counter() - start
    during_awaited = list(ticker.intervals)

    ticker.window()
    start = time.perf_counter()
    for _ in range(repeat):
        assert parfor.sum(values) == expected  # blocks the event loop
    blocking = time.perf_counter() - start
    await asyncio.sleep(0.005)  # let the ticker record the gap it saw
    during_blocking = list(ticker.intervals)
    ticker.recording = False
    task.cancel()

    print(f"{repeat} sums of {size} float64 values, {parfor.num_threads()} threads")
    print(f"await parfor.aio.sum: {awaited * 1e3:.1f} ms; event loop: {describe(during_awaited)}")
    print(
        f"parfor.sum in the loop: {blocking * 1e3:.1f} ms; "
        f"event loop: {describe(during_blocking)}"
    )
    # The loop ran during the awaited calls: ticks at least every few call lengths.
    assert during_awaited, "the event loop did not tick during the awaited calls"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=float, default=1e8, help="elements (default 1e8)")
    parser.add_argument("--repeat", type=int, default=5, help="calls per case (default 5)")
    args = parser.parse_args()
    asyncio.run(main(int(args.size), args.repeat))
    print("ok")
