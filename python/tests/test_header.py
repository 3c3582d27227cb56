"""The ctypes declarations in parfor._ffi against include/parfor.h: every exported
function with its return and argument types, the callback typedefs, the options
struct, the enum values and PARFOR_MAX_THREADS. A change to the C API that is not
mirrored in _ffi.py fails here instead of corrupting memory at run time."""

import ctypes
import importlib.util
import re
import unittest

from _support import HEADER, PYTHON_DIR, cffi, parfor, requires_cffi

from parfor import _ffi

# Declarations only: comments removed, whitespace collapsed, preprocessor lines gone.
_TEXT = HEADER.read_text(encoding="utf-8")
_CODE = re.sub(r"/\*.*?\*/", " ", _TEXT, flags=re.S)
_CODE = re.sub(r"//[^\n]*", " ", _CODE)
_DEFINES = dict(re.findall(r"^\s*#\s*define\s+(\w+)\s+(\S+)\s*$", _CODE, flags=re.M))
_CODE = re.sub(r"^\s*#[^\n]*", " ", _CODE, flags=re.M)
_CODE = re.sub(r"\s+", " ", _CODE)

_ENUM_TYPES = {"parfor_status", "parfor_dtype", "parfor_op", "parfor_schedule"}


def ctype_of(c_type):
    """The ctypes type this package must use for a C type spelled in the header."""
    t = re.sub(r"\s+", " ", c_type).strip()
    t = re.sub(r"\s*\*", " *", t)
    bare = t.replace("const ", "").replace("enum ", "").replace("struct ", "").strip()
    table = {
        "void": None,
        "size_t": ctypes.c_size_t,
        "int": ctypes.c_int,
        "unsigned int": ctypes.c_uint,
        "char *": ctypes.c_char_p,
        "void *": ctypes.c_void_p,
        "size_t *": ctypes.POINTER(ctypes.c_size_t),
        "parfor_options *": ctypes.POINTER(_ffi.Options),
        "parfor_exact_state *": ctypes.POINTER(_ffi.ExactState),
        "parfor_body": _ffi.BODY,
        "parfor_fold": _ffi.FOLD,
        "parfor_combine": _ffi.COMBINE,
        "parfor_compare": _ffi.COMPARE,
    }
    if bare in _ENUM_TYPES:
        return _ffi.c_enum
    if bare in table:
        return table[bare]
    raise AssertionError(f"no ctypes mapping for the C type {c_type!r}: extend the test and _ffi.py")


def split_param(param):
    """'const void *data' -> 'const void *' (the type without the name)."""
    param = param.strip()
    if param == "void":
        return None
    m = re.match(r"^(.*?[\s\*])(\w+)$", param)
    assert m, f"cannot parse parameter {param!r}"
    return m.group(1)


def header_functions():
    """name -> (return type, [parameter types]) for every function in the header."""
    functions = {}
    code = _CODE.replace('extern "C" {', " ")
    for statement in code.split(";"):
        m = re.fullmatch(
            r"\s*}?\s*((?:const |enum |struct )*\w+(?: ?\*)*) ?\b(parfor_\w+) ?\(([^()]*)\)\s*",
            statement,
        )
        if not m or m.group(1).startswith("typedef"):
            continue
        ret, name, params = m.groups()
        types = [split_param(p) for p in params.split(",")] if params.strip() else []
        functions[name] = (ret.strip(), [t for t in types if t is not None])
    return functions


def header_enum(name):
    body = re.search(r"typedef enum %s \{(.*?)\}" % name, _CODE).group(1)
    return {k: int(v) for k, v in re.findall(r"(\w+) = (-?\d+)", body)}


class HeaderSignatures(unittest.TestCase):
    def test_parser_finds_the_api(self):
        # Guards the parser itself: if it found nothing, every comparison would pass.
        functions = header_functions()
        for name in ("parfor_reduce", "parfor_for", "parfor_last_error", "parfor_num_threads"):
            self.assertIn(name, functions)
        self.assertEqual(functions["parfor_reduce"][0], "enum parfor_status")
        self.assertEqual(len(functions["parfor_reduce"][1]), 6)

    def test_every_function_is_declared(self):
        self.assertEqual(sorted(header_functions()), sorted(_ffi.SIGNATURES))

    def test_signatures_match(self):
        for name, (ret, params) in header_functions().items():
            with self.subTest(function=name):
                restype, argtypes = _ffi.SIGNATURES[name]
                self.assertIs(restype, ctype_of(ret), f"restype of {name}")
                self.assertEqual(
                    list(argtypes), [ctype_of(p) for p in params], f"argtypes of {name}"
                )
                fn = getattr(parfor.lib, name)
                self.assertIs(fn.restype, restype)
                self.assertEqual(list(fn.argtypes), list(argtypes))

    def test_callback_typedefs(self):
        for typedef, proto in (
            ("parfor_body", _ffi.BODY),
            ("parfor_fold", _ffi.FOLD),
            ("parfor_combine", _ffi.COMBINE),
            ("parfor_compare", _ffi.COMPARE),
        ):
            with self.subTest(typedef=typedef):
                m = re.search(r"typedef (\w+) \(\*%s\) ?\(([^()]*)\);" % typedef, _CODE)
                self.assertIsNotNone(m, typedef)
                self.assertIs(proto._restype_, ctype_of(m.group(1)))
                params = [split_param(p) for p in m.group(2).split(",")]
                self.assertEqual(list(proto._argtypes_), [ctype_of(p) for p in params])

    def test_options_struct(self):
        body = re.search(r"typedef struct parfor_options \{(.*?)\} parfor_options;", _CODE).group(1)
        fields = [split_param(f) + " " + f.split()[-1] for f in body.split(";") if f.strip()]
        header_fields = [(f.split()[-1], ctype_of(split_param(f))) for f in fields]
        self.assertEqual(header_fields, [(n, t) for n, t in _ffi.Options._fields_])
        # The size the library checks (opts->size) must be the one ctypes lays out.
        opts = _ffi.Options()
        parfor.lib.parfor_options_init(ctypes.byref(opts))
        self.assertEqual(opts.size, ctypes.sizeof(_ffi.Options))

    def test_exact_state_struct(self):
        m = re.search(
            r"typedef struct parfor_exact_state \{ int64_t words\[(\w+)\]; \} parfor_exact_state;",
            _CODE,
        )
        self.assertIsNotNone(m, "struct parfor_exact_state is no longer int64_t words[N]")
        self.assertEqual(int(_DEFINES[m.group(1)]), _ffi.EXACT_STATE_WORDS)
        self.assertEqual(_ffi.ExactState._fields_, [("words", ctypes.c_int64 * _ffi.EXACT_STATE_WORDS)])
        self.assertEqual(parfor.lib.parfor_exact_state_size(), ctypes.sizeof(_ffi.ExactState))

    def test_enums(self):
        self.assertEqual(
            header_enum("parfor_dtype"), {f"PARFOR_{m.name}": m.value for m in _ffi.DType}
        )
        self.assertEqual(header_enum("parfor_op"), {f"PARFOR_{m.name}": m.value for m in _ffi.Op})
        self.assertEqual(
            header_enum("parfor_schedule"),
            {f"PARFOR_SCHEDULE_{m.name}": m.value for m in _ffi.Schedule},
        )
        self.assertEqual(header_enum("parfor_status"), {m.name: m.value for m in _ffi.Status})
        self.assertEqual(int(_DEFINES["PARFOR_MAX_THREADS"]), _ffi.MAX_THREADS)

    def test_status_messages_come_from_the_library(self):
        for status in _ffi.Status:
            text = parfor.lib.parfor_status_message(status).decode()
            self.assertTrue(text and text != "unknown parfor_status value", status)
        self.assertEqual(parfor.lib.parfor_status_message(99), b"unknown parfor_status value")


def _load_build_backend():
    # By path: python/ is not a package, and importing the backend must not need maturin
    # for the part tested here, so its maturin import is satisfied by a stub only when
    # maturin is absent.
    import sys
    import types

    if importlib.util.find_spec("maturin") is None:
        stub = types.ModuleType("maturin")
        for hook in (
            "build_wheel",
            "build_editable",
            "build_sdist",
            "get_requires_for_build_editable",
            "get_requires_for_build_sdist",
            "get_requires_for_build_wheel",
            "prepare_metadata_for_build_editable",
            "prepare_metadata_for_build_wheel",
        ):
            setattr(stub, hook, None)
        sys.modules.setdefault("maturin", stub)
    spec = importlib.util.spec_from_file_location("_build_backend", PYTHON_DIR / "_build_backend.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CffiHeader(unittest.TestCase):
    """The header maturin's cffi mode is given (python/_build_backend.py)."""

    def test_preprocessor_lines_are_resolved(self):
        backend = _load_build_backend()
        text = backend.cdef_from_header(_TEXT)
        self.assertNotIn("#include", text)
        self.assertNotIn("#ifdef", text)
        self.assertNotIn('extern "C"', text)
        self.assertIn("#define PARFOR_MAX_THREADS 1024", text)
        self.assertIn("parfor_reduce(", text)
        with self.assertRaises(ValueError):
            backend.cdef_from_header("#if X > 1\nint f(void);\n#endif\n")
        with self.assertRaises(ValueError):
            backend.cdef_from_header("#ifdef X\nint f(void);\n")

    @requires_cffi
    def test_cffi_accepts_it_and_sees_every_function(self):
        backend = _load_build_backend()
        ffi = cffi.FFI()
        ffi.cdef(backend.cdef_from_header(_TEXT))
        lib = ffi.dlopen(str(parfor.LIBRARY_PATH))
        for name in header_functions():
            self.assertTrue(callable(getattr(lib, name)), name)
        self.assertEqual(lib.PARFOR_MAX_THREADS, 1024)
        self.assertEqual(ffi.sizeof("parfor_options"), ctypes.sizeof(_ffi.Options))
        self.assertEqual(ffi.sizeof("parfor_exact_state"), ctypes.sizeof(_ffi.ExactState))


if __name__ == "__main__":
    unittest.main()
