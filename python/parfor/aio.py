"""Awaitable parfor calls for asyncio: ``await parfor.aio.sum(x)``.

Every reduction, ``dot``, scan and sort of the package, and :func:`parallel_for`,
has an ``async`` twin here with the same arguments and result. The call runs on a
thread of a small executor owned by this module (the C call itself with the GIL
released, as every parfor call), so the event loop keeps serving other tasks while
parfor's team works. It works under any running event loop (asyncio's own, uvloop)
and from many tasks at once.

**Executor size.** :func:`workers` threads, 1 by default: parfor already runs each
call on its whole thread team, so two calls at once would only share the same cores
(and each still uses the full team). Calls from several tasks queue and run one at a
time per executor thread, in the order they were awaited. :func:`set_workers`
changes the size (for example when the calls use ``num_threads=`` to split the
cores between them); ``PARFOR_AIO_WORKERS`` sets it at import.

**Cancellation.**

- :func:`parallel_for`: cancelling the awaiting task stops the loop through the
  library's cancel path: each range goes through a wrapper that checks a cancel flag
  before calling the body and, once the flag is set, returns nonzero instead, so the
  ranges not yet started are skipped (ranges already running finish). The awaiter
  gets ``asyncio.CancelledError`` after the library call has returned, so once the
  ``await`` has raised, no body call is running or will start. The wrapper costs one
  Python call per range (for a C body: a few microseconds each, the C body itself
  still runs without the GIL); with the default static schedule there is one range
  per thread.
- every other function (reductions, ``dot``, scans, sorts): a C call that has
  started cannot be interrupted. Cancelling the task raises ``CancelledError`` in
  the awaiter at once; a call still queued is dropped, a call already running
  finishes in the background and its result (or error) is discarded. An in-place
  call (``sort_inplace``) cancelled while running still completes its writes.

**Buffers stay pinned.** Until the library call has returned, this module keeps
references to the function's arguments (see :func:`in_flight`), and the call pins
their buffers as usual, so an array whose task was cancelled and whose last user
reference is gone is freed only after parfor is done with it.

**Fork.** A child made with ``os.fork`` (multiprocessing's fork start method) gets a
fresh executor on its first call: the parent's threads do not exist in the child.
"""

import asyncio
import concurrent.futures
import ctypes
import functools
import importlib
import os
import threading

from . import _api
from ._ffi import BODY

__all__ = ["in_flight", "parallel_for", "run", "set_workers", "workers"]

# Names of the package's functions that get an awaitable twin: every computation of
# the numpy-style API (issue 12), the scans and sorts (issue 16), and reduce, dot and
# vdot, taken from the modules' own __all__ lists so that a function added there gets
# its twin. parallel_for is below.
def _wrapped_names():
    from . import _reductions, _scan, _sort

    names = list(_reductions.__all__) + ["reduce", "dot", "vdot"]
    names += [n for n in _scan.__all__ if n != "sum_error_bound"]
    return names + list(_sort.__all__)


_WRAPPED = tuple(_wrapped_names())


def _default_workers():
    value = os.environ.get("PARFOR_AIO_WORKERS", "").strip()
    if not value:
        return 1
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"PARFOR_AIO_WORKERS must be a positive integer, not {value!r}") from None
    if n < 1:
        raise ValueError(f"PARFOR_AIO_WORKERS must be a positive integer, not {value!r}")
    return n


_lock = threading.Lock()
_workers = _default_workers()
_executor = None
# Futures of calls that have not returned yet, each with the callable and arguments
# it holds (kept alive here until the call is over, whatever the awaiter does).
_pending = {}


def workers():
    """The number of executor threads (calls that run at the same time)."""
    return _workers


def set_workers(n):
    """Sets the number of executor threads to ``n`` (>= 1). Calls already submitted
    finish on the old executor, whose threads then exit; later calls use the new one."""
    global _workers, _executor
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_workers(n): n must be an int, not {type(n).__name__}")
    if n < 1:
        raise ValueError(f"set_workers(n): n must be >= 1, not {n}")
    with _lock:
        old, _executor, _workers = _executor, None, n
    if old is not None:
        old.shutdown(wait=False)


def _get_executor():
    global _executor
    with _lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=_workers, thread_name_prefix="parfor-aio"
            )
        return _executor


def _after_fork_in_child():
    # The parent's executor threads do not exist in the child; its queue may hold
    # the parent's work. Forget both (the lock too: another thread may have held it
    # at fork time).
    global _executor, _lock
    _lock = threading.Lock()
    _executor = None
    _pending.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def in_flight():
    """The number of calls submitted through this module that have not returned yet
    (queued or running), including cancelled ones still finishing in the background."""
    return len(_pending)


def _submit(fn, args, kwargs):
    future = _get_executor().submit(fn, *args, **kwargs)
    _pending[future] = (fn, args, kwargs)
    future.add_done_callback(_forget)
    return future


def _forget(future):
    _pending.pop(future, None)


async def run(fn, *args, **kwargs):
    """Runs ``fn(*args, **kwargs)`` on this module's executor and returns its result;
    for parfor calls this module has no twin for (``ExactSum.add``, a ``threads``
    block). Cancellation as for the reductions (see the module's documentation)."""
    asyncio.get_running_loop()  # RuntimeError outside a running loop, before submitting
    return await asyncio.wrap_future(_submit(fn, args, kwargs))


def _make_twin(name, fn):
    @functools.wraps(fn)
    async def twin(*args, **kwargs):
        asyncio.get_running_loop()
        return await asyncio.wrap_future(_submit(fn, args, kwargs))

    twin.__doc__ = (
        f"Awaitable :func:`parfor.{name}`: same arguments and result, run on the "
        f"parfor.aio executor. Cancelling the task drops the call if it has not "
        f"started, else lets it finish in the background and discards its result.\n\n"
        + (fn.__doc__ or "")
    )
    twin.__qualname__ = twin.__name__ = name
    twin.__module__ = __name__
    return twin


def _install_twins():
    package = importlib.import_module(__package__)
    for name in _WRAPPED:
        fn = getattr(package, name, None)
        if callable(fn):
            globals()[name] = _make_twin(name, fn)
            __all__.append(name)


# --- parallel_for ------------------------------------------------------------------

# What a cancelled range returns: any nonzero value cancels (parfor.h, parfor_body).
_CANCELLED = 1


class _PythonGate:
    """A Python body behind the cancel flag."""

    def __init__(self, body, flag):
        self.body = body
        self.flag = flag

    def __call__(self, ctx, begin, end):
        if self.flag.is_set():
            return _CANCELLED
        return self.body(ctx, begin, end)


def _c_address(body):
    """The address of a C body (any form ``parfor.parallel_for`` accepts, checked by
    it), or None for a Python callable."""
    # parfor's own conversion checks the body's signature; what it returns (a ctypes
    # or a cffi function pointer, depending on the binding layer) is read back as an
    # address, so that the gate below calls the body the same way with either.
    pointer = _api._as_body(body)
    if pointer is None:
        return None
    if isinstance(pointer, ctypes._CFuncPtr):
        return ctypes.cast(pointer, ctypes.c_void_p).value or 0
    global _cffi
    if _cffi is None:
        import cffi

        _cffi = cffi.FFI()
    return int(_cffi.cast("uintptr_t", pointer))


_cffi = None


def _c_gate(address, flag):
    """A ctypes ``BODY`` that checks the flag and then calls the C body at
    ``address`` (ctypes releases the GIL for that call, so C bodies still run in
    parallel). An address of 0 goes to the library, which refuses it."""
    if address == 0:
        return 0
    target = BODY(address)

    def gate(ctx, begin, end):
        if flag.is_set():
            return _CANCELLED
        return target(ctx, begin, end)

    return BODY(gate)


async def parallel_for(n, body, ctx=None, **kwargs):
    """Awaitable :func:`parfor.parallel_for`: same arguments (``kwargs`` such as
    ``num_threads=``, ``schedule=``, ``chunk=`` go through when the package has
    them), run on the parfor.aio executor.

    Cancelling the awaiting task sets a flag that every range checks before calling
    ``body``: ranges not yet started are skipped, running ones finish, and
    ``asyncio.CancelledError`` is raised once the library call has returned. A body
    that fails (nonzero return, exception) raises as in ``parfor.parallel_for``."""
    asyncio.get_running_loop()
    flag = threading.Event()
    address = _c_address(body)
    if address is None:
        if not callable(body):
            raise TypeError(
                "body must be a C function (cffi, ctypes, int address) or a Python "
                f"callable, not {type(body).__name__}"
            )
        gated = _PythonGate(body, flag)
    else:
        gated = _c_gate(address, flag)

    call = functools.partial(_api.parallel_for, n, gated, ctx, **kwargs)

    # The C gate and the body are referenced by `call` (and so by _pending) until
    # the library call has returned.
    future = _submit(call, (), {})
    awaitable = asyncio.wrap_future(future)
    try:
        result = await asyncio.shield(awaitable)
    except asyncio.CancelledError:
        flag.set()
        future.cancel()  # succeeds only while the call is still queued
        try:
            # Wait for the loop to stop; a second cancel ends the wait early.
            await awaitable
        except BaseException:  # noqa: BLE001 - the cancellation is what we raise
            pass
        raise
    return result


_install_twins()
