"""Exceptions, one per failing ``parfor_status``, and :func:`check`, the one helper
through which every fallible C call goes (as sourmash's ``rustcall``): it turns a
status other than ``PARFOR_OK`` into the matching exception, carrying the status
name and the library's ``parfor_last_error()`` text."""

from ._ffi import Status, lib, string


class Error(RuntimeError):
    """A parfor call failed.

    ``status`` is the C status name (for example ``"PARFOR_ERR_MISALIGNED"``),
    ``code`` its integer value, and ``detail`` the text of ``parfor_last_error()``
    at the time of the failure; ``str(error)`` shows both the detail and the
    status's fixed description.
    """

    def __init__(self, status, detail, description=""):
        self.status = status
        self.code = int(Status[status]) if status in Status.__members__ else None
        self.detail = detail
        self.description = description
        text = f"{status}: {detail}" if detail else status
        if description:
            text += f" ({description})"
        super().__init__(text)


# Bad input statuses are also ValueErrors, so that `except ValueError` catches an
# empty MIN, an unknown operator or a misaligned view as with numpy.
class NullArgumentError(Error, ValueError):
    """PARFOR_ERR_NULL_ARGUMENT: a required pointer was NULL."""


class InvalidArgumentError(Error, ValueError):
    """PARFOR_ERR_INVALID_ARGUMENT: unknown dtype/op/schedule, op not defined for
    the dtype, length overflow or bad options."""


class MisalignedError(Error, ValueError):
    """PARFOR_ERR_MISALIGNED: a buffer was not aligned for its element type."""


class EmptyError(Error, ValueError):
    """PARFOR_ERR_EMPTY: min, max, argmin or argmax of zero elements."""


class CallbackError(Error):
    """PARFOR_ERR_CALLBACK: a loop body or fold returned nonzero."""


class PanicError(Error):
    """PARFOR_ERR_PANIC: a Rust panic was caught at the library boundary."""


class RuntimeFailureError(Error):
    """PARFOR_ERR_RUNTIME: the thread pool could not be created or run."""


#: The exception class for each failing status.
ERROR_CLASSES = {
    Status.PARFOR_ERR_NULL_ARGUMENT: NullArgumentError,
    Status.PARFOR_ERR_INVALID_ARGUMENT: InvalidArgumentError,
    Status.PARFOR_ERR_MISALIGNED: MisalignedError,
    Status.PARFOR_ERR_EMPTY: EmptyError,
    Status.PARFOR_ERR_CALLBACK: CallbackError,
    Status.PARFOR_ERR_PANIC: PanicError,
    Status.PARFOR_ERR_RUNTIME: RuntimeFailureError,
}


def error_for(code):
    """The exception for a failing status ``code``, with this thread's last error.

    Must run on the thread that made the failing call, before any other parfor call
    on it: ``parfor_last_error`` is thread-local and overwritten by the next failure.
    """
    detail = string(lib.parfor_last_error())
    description = string(lib.parfor_status_message(code))
    try:
        status = Status(code)
    except ValueError:
        # A status this package does not know: a newer library. Still an Error.
        return Error(f"PARFOR_STATUS_{code}", detail, description)
    return ERROR_CLASSES.get(status, Error)(status.name, detail, description)


def check(fn, *args):
    """Calls the C function ``fn`` with ``args`` and raises the matching
    :class:`Error` subclass unless it returns ``PARFOR_OK``."""
    code = fn(*args)
    if code != 0:
        raise error_for(code)
