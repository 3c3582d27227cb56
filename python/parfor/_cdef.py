"""The C header in the form cffi's ``cdef`` accepts.

Used at import by ``parfor._ffi`` (reading ``include/parfor.h`` of a checkout) and at
wheel build time by ``python/_build_backend.py`` (writing the ``header.h`` from which
maturin's cffi mode makes ``parfor/_native/ffi.py``), so that both routes declare the
library from the same text with the same rules. No cffi import here: the build
backend runs before cffi is needed.
"""

import ast
import operator
import re

# Macros from <stdint.h>/<stddef.h> that cbindgen writes as a constant's value; cffi's
# ABI mode needs the integer itself.
_KNOWN_VALUES = {
    "UINT64_MAX": 2**64 - 1,
    "UINT32_MAX": 2**32 - 1,
    "INT64_MAX": 2**63 - 1,
    "INT32_MAX": 2**31 - 1,
    "SIZE_MAX": None,  # platform-dependent: filled in by cdef_from_header's caller
}


_OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
    ast.BitOr: operator.or_,
    ast.BitAnd: operator.and_,
}


def _integer_value(token, size_max, known=None):
    """The integer a ``#define`` value spells, or None if it is not one: a literal
    (also with cbindgen's ``U``/``L`` suffixes), a ``<stdint.h>`` limit, or an
    integer expression (``+ - * << >> | &``, C's ``/`` on integers) of those and of
    the integer macros defined before it (``known``)."""
    known = known or {}
    # C's integer division is Python's // for the non-negative values of a header.
    text = re.sub(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]+\b", r"\1", token.strip()).replace("/", "//")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return None

    def value(node):
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.Name):
            if node.id in known:
                return known[node.id]
            if node.id in _KNOWN_VALUES:
                limit = _KNOWN_VALUES[node.id]
                return size_max if limit is None else limit
            raise ValueError(node.id)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        raise ValueError(ast.dump(node))

    try:
        return value(tree.body)
    except (ValueError, ZeroDivisionError):
        return None


def cdef_from_header(text, defined=(), size_max=2**64 - 1):
    """The declarations of a C header in the form cffi's ``cdef`` accepts.

    Evaluates ``#ifdef``/``#ifndef``/``#else``/``#endif`` with ``__cplusplus``
    undefined (plus the names in ``defined`` and those the header defines), drops
    ``#include`` lines and valueless ``#define``s (the include guard), and keeps
    ``#define NAME <integer>`` lines (also ``UINT64_MAX``-style values,
    ``U``/``L``-suffixed literals and integer expressions of earlier macros), written
    with the plain integer, which cffi turns into constants. Any other directive raises ValueError, so that a header cffi
    would misread fails loudly.
    """
    names = set(defined)
    values = {}
    active = [True]
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            if all(active):
                out.append(line)
            continue
        words = stripped[1:].split(None, 2)
        directive = words[0] if words else ""
        if directive in ("ifdef", "ifndef"):
            is_defined = words[1] in names
            active.append(is_defined if directive == "ifdef" else not is_defined)
        elif directive == "else":
            active[-1] = not active[-1]
        elif directive == "endif":
            active.pop()
        elif not all(active) or directive == "include":
            continue
        elif directive == "define" and len(words) == 2:
            names.add(words[1])
        elif directive == "define" and len(words) >= 3 and words[2].startswith('"'):
            # A string macro (PARFOR_VERSION_STRING): cdef has no string constants;
            # parfor_version() gives the same text at run time.
            names.add(words[1])
        elif directive == "define" and len(words) == 3:
            value = _integer_value(words[2], size_max, values)
            if value is None:
                raise ValueError(f"cannot turn this header line into a cffi cdef: {line!r}")
            names.add(words[1])
            values[words[1]] = value
            out.append(f"#define {words[1]} {value}")
        else:
            raise ValueError(f"cannot turn this header line into a cffi cdef: {line!r}")
    if len(active) != 1:
        raise ValueError("unbalanced #ifdef/#endif in the header")
    return "\n".join(out) + "\n"
