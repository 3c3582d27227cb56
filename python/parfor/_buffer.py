"""Buffers in, pointers out: turns any object with the buffer protocol (numpy arrays,
``array.array``, ``memoryview``, ``bytes``, ``bytearray``, ...) into the address,
element count and ``parfor_dtype`` the C functions take, without copying.

The element type comes from the buffer's struct format character (with its native
size, so ``'l'`` is int64 on LP64 Linux and int32 on Windows). Anything parfor cannot
read in place (non-contiguous, foreign byte order, an element type it does not
reduce) is refused with TypeError or ValueError: a silent copy of a large array would
hide exactly the cost a user calls parfor to avoid.
"""

import struct
import sys

from ._ffi import DType, ffi

# Struct format characters by kind; the size comes from struct.calcsize, so that the
# platform's C type sizes decide (the buffer protocol uses native sizes).
_SIGNED = "bhilqn"
_UNSIGNED = "BHILQN"
_FLOAT = "fd"

_DTYPE_OF_KIND_SIZE = {
    ("f", 4): DType.F32,
    ("f", 8): DType.F64,
    ("i", 1): DType.I8,
    ("i", 2): DType.I16,
    ("i", 4): DType.I32,
    ("i", 8): DType.I64,
    ("u", 1): DType.U8,
    ("u", 2): DType.U16,
    ("u", 4): DType.U32,
    ("u", 8): DType.U64,
}

# Byte-order prefixes that mean the machine's own order.
_NATIVE_ORDER = {"", "@", "="} | ({"<"} if sys.byteorder == "little" else {">", "!"})

# Known formats (format string -> dtype as an int), filled on first use: the common
# case costs one dict lookup.
_format_cache = {}

_SUPPORTED = "float32, float64, int8..int64, uint8..uint64"


def dtype_of_format(fmt, what):
    """The parfor dtype of a buffer format string, or TypeError naming ``what``."""
    dtype = _format_cache.get(fmt)
    if dtype is not None:
        return dtype
    prefix, code = fmt[:-1], fmt[-1:]
    if prefix not in {"", "@", "=", "<", ">", "!"} or not code:
        raise TypeError(
            f"{what}: unsupported buffer format {fmt!r}: parfor reduces flat arrays of "
            f"{_SUPPORTED}"
        )
    if code in _SIGNED:
        kind = "i"
    elif code in _UNSIGNED:
        kind = "u"
    elif code in _FLOAT:
        kind = "f"
    else:
        hint = " (bool: view it as uint8)" if code == "?" else ""
        raise TypeError(
            f"{what}: unsupported element format {fmt!r}{hint}; parfor reduces "
            f"{_SUPPORTED}"
        )
    if prefix not in _NATIVE_ORDER:
        raise TypeError(
            f"{what}: buffer format {fmt!r} is not in this machine's byte order "
            f"({sys.byteorder}); parfor does not copy: convert it first, e.g. "
            f"x.astype(x.dtype.newbyteorder('='))"
        )
    dtype = _DTYPE_OF_KIND_SIZE.get((kind, struct.calcsize(fmt)))
    if dtype is None:
        raise TypeError(f"{what}: unsupported element size for format {fmt!r}")
    # Plain ints: cheaper to pass to C than the IntEnum.
    _format_cache[fmt] = int(dtype)
    return int(dtype)


# An empty buffer may have a NULL or unaligned data pointer (an empty array.array has
# no allocation), which the C library would report as NULL_ARGUMENT or MISALIGNED.
# Empty input instead gets this aligned, never-read address, so that it follows the C
# semantics of len == 0 (0 for SUM, PARFOR_ERR_EMPTY for MIN).
_EMPTY_STORAGE = ffi.new("uint64_t[2]")
_EMPTY_ADDRESS = ffi.cast("void *", _EMPTY_STORAGE)


def _not_a_buffer(obj, what, error):
    """The TypeError for an object whose buffer cannot be taken."""
    if isinstance(error, TypeError):
        return TypeError(
            f"{what} must support the buffer protocol (numpy array, array.array, "
            f"memoryview, bytes, bytearray), not {type(obj).__name__}"
        )
    # numpy refuses to export e.g. object or datetime arrays as buffers.
    return TypeError(f"{what}: cannot be read as a buffer: {error}")


def pin(obj, what):
    """Pins ``obj``'s buffer for a C call: returns ``(address, length, dtype, keep)``:
    the address as a cffi ``char[]`` (``ffi.from_buffer``, no copy), the length in
    elements and the dtype as a plain int. The buffer stays pinned (its exporter may
    not resize or free it) as long as ``keep`` lives: hold it in a local variable
    until the call is over. ``what`` names the argument in error messages (e.g.
    ``"parfor.reduce() argument x"``).
    """
    try:
        mv = memoryview(obj)
    except (TypeError, ValueError, BufferError) as e:
        raise _not_a_buffer(obj, what, e) from None
    dtype = _format_cache.get(mv.format)
    if dtype is None:
        dtype = dtype_of_format(mv.format, what)
    if not mv.c_contiguous:
        raise ValueError(
            f"{what} is not C-contiguous (shape {mv.shape}, strides {mv.strides}); this "
            f"function reads flat buffers in place and never copies them: pass a "
            f"contiguous array (e.g. numpy.ascontiguousarray(x)) if a copy is what you want"
        )
    length = mv.nbytes // mv.itemsize
    if length == 0:
        return _EMPTY_ADDRESS, 0, dtype, None
    # ffi.from_buffer holds the buffer (read-only ones too) until the cdata goes.
    keep = ffi.from_buffer(mv)
    return keep, length, dtype, keep


def address_of(cdata):
    """The integer address of a pinned buffer (for tests and messages)."""
    return int(ffi.cast("uintptr_t", cdata))


def argument_names(function):
    """``(function, its argument a, its argument b)``: the ``what`` of :func:`pin_pair`,
    made once per caller so that the hot path formats no strings."""
    return function, f"{function} argument a", f"{function} argument b"


def pin_pair(a, b, what):
    """Pins the two inputs of a dot product: returns ``(address_a, address_b, length,
    dtype, keep)``. ``what`` comes from :func:`argument_names`. Different element
    types raise TypeError and different lengths ValueError.

    On any failure nothing stays pinned: a traceback keeps the frames it passes
    through alive, with their locals, so the pins are dropped before raising (a
    caller that stores the exception can still resize its bytearray).
    """
    function, what_a, what_b = what
    pinned_a = pin(a, what_a)
    try:
        pinned_b = pin(b, what_b)
    except BaseException:
        pinned_a = None
        raise
    (address_a, length, dtype, keep_a), (address_b, length_b, dtype_b, keep_b) = (
        pinned_a,
        pinned_b,
    )
    if dtype != dtype_b or length != length_b:
        # The addresses are the pins themselves (ffi.from_buffer): drop them all.
        pinned_a = pinned_b = keep_a = keep_b = address_a = address_b = None
        if dtype != dtype_b:
            raise TypeError(
                f"{function}: a is {DType(dtype).name.lower()} and b is "
                f"{DType(dtype_b).name.lower()}; both must have the same element type "
                f"(parfor does not convert)"
            )
        raise ValueError(f"{function}: a has {length} elements and b has {length_b}")
    return address_a, address_b, length, dtype, (keep_a, keep_b)
