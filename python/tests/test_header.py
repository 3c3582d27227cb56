"""parfor._ffi's cffi declarations against include/parfor.h, read by an independent
parser: every exported function with its return and argument types, the enum values,
the struct sizes the library checks and PARFOR_MAX_THREADS; and the header filter
(parfor._cdef) that both the checkout and maturin's wheel build use."""

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


def _normalise(c_type):
    """'const enum parfor_status *' -> 'parfor_status *': how cffi spells a type."""
    t = re.sub(r"\s+", " ", c_type).strip()
    t = re.sub(r"\s*\*", " *", t)
    return t.replace("const ", "").replace("enum ", "").replace("struct ", "").strip()


def _cffi_name(c_type):
    """cffi's spelling of a type as the header writes it (typedefs resolved)."""
    return parfor.ffi.typeof(_normalise(c_type)).cname


class HeaderDeclarations(unittest.TestCase):
    """parfor._ffi declares the library with cffi from the header itself; these
    checks read the header with an independent parser and compare."""

    def test_parser_finds_the_api(self):
        # Guards the parser itself: if it found nothing, every comparison would pass.
        functions = header_functions()
        for name in ("parfor_reduce", "parfor_for", "parfor_last_error", "parfor_num_threads"):
            self.assertIn(name, functions)
        self.assertEqual(functions["parfor_reduce"][0], "enum parfor_status")
        self.assertEqual(len(functions["parfor_reduce"][1]), 6)

    def test_every_function_is_declared_with_the_header_signature(self):
        functions = header_functions()
        declared = sorted(n for n in dir(parfor.lib) if n.startswith("parfor_") and callable(getattr(parfor.lib, n)))
        self.assertEqual(sorted(functions), declared)
        for name, (ret, params) in functions.items():
            with self.subTest(function=name):
                ctype = parfor.ffi.typeof(getattr(parfor.lib, name))
                self.assertEqual(ctype.kind, "function")
                self.assertEqual(ctype.result.cname, _cffi_name(ret))
                self.assertEqual([a.cname for a in ctype.args], [_cffi_name(p) for p in params])

    def test_ctypes_body_type_matches_the_typedef(self):
        # parfor.BODY is the one ctypes type left, for users writing bodies with ctypes.
        m = re.search(r"typedef (\w+) \(\*parfor_body\) ?\(([^()]*)\);", _CODE)
        self.assertIsNotNone(m)
        self.assertEqual(m.group(1), "int")
        self.assertEqual([_normalise(split_param(p)) for p in m.group(2).split(",")], ["void *", "size_t", "size_t"])
        self.assertIs(_ffi.BODY._restype_, ctypes.c_int)
        self.assertEqual(list(_ffi.BODY._argtypes_), [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t])
        self.assertEqual(parfor.ffi.typeof("parfor_body").cname, "int(*)(void *, size_t, size_t)")

    def test_options_and_exact_state_sizes(self):
        opts = parfor.ffi.new("parfor_options *")
        parfor.lib.parfor_options_init(opts)
        self.assertEqual(opts.size, parfor.ffi.sizeof("parfor_options"))
        self.assertEqual(parfor.lib.parfor_exact_state_size(), parfor.ffi.sizeof("parfor_exact_state"))
        self.assertEqual(int(_DEFINES["PARFOR_EXACT_STATE_WORDS"]), _ffi.EXACT_STATE_WORDS)

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

    def test_no_signature_is_written_by_hand(self):
        # The one binding layer: no ctypes argtypes anywhere in the package.
        for path in (PYTHON_DIR / "parfor").glob("*.py"):
            with self.subTest(module=path.name):
                text = path.read_text(encoding="utf-8")
                self.assertIsNone(re.search(r"\.(argtypes|restype)\s*=", text))
                self.assertNotIn("CDLL(", text)

    def test_status_messages_come_from_the_library(self):
        for status in _ffi.Status:
            text = _ffi.string(parfor.lib.parfor_status_message(status))
            self.assertTrue(text and text != "unknown parfor_status value", status)
        self.assertEqual(_ffi.string(parfor.lib.parfor_status_message(99)), "unknown parfor_status value")


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
        self.assertEqual(ffi.sizeof("parfor_options"), parfor.ffi.sizeof("parfor_options"))

    def test_constant_values_cbindgen_may_write(self):
        from parfor._cdef import cdef_from_header

        text = cdef_from_header(
            "#define A UINT64_MAX\n#define B 18446744073709551615ULL\n#define C (7)\n#define D SIZE_MAX\n",
            size_max=2**32 - 1,
        )
        self.assertEqual(
            text.split("\n")[:4],
            [f"#define A {2**64 - 1}", f"#define B {2**64 - 1}", "#define C 7", f"#define D {2**32 - 1}"],
        )
        self.assertEqual(
            cdef_from_header("#define L 32\n#define C 8\n#define G (L * C)\n#define H (1U << 4) | 3\n").split("\n")[2:4],
            ["#define G 256", "#define H 19"],
        )
        # A string macro (PARFOR_VERSION_STRING) is dropped: cdef has no string constants.
        self.assertEqual(cdef_from_header('#define V "0.2.0"\n#define C 7\n').strip(), "#define C 7")
        for bad in ("#define A B + 1\n", "#define A 1.5\n", "#define A f(2)\n"):
            with self.assertRaises(ValueError):
                cdef_from_header(bad)


if __name__ == "__main__":
    unittest.main()
