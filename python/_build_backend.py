"""PEP 517 build backend for the parfor wheel: maturin, plus one preparatory step.

maturin's cffi bindings mode ships the crate's cdylib in the wheel (as
``parfor/_native/_native.so``, where ``parfor._ffi`` finds it) together with cffi
declarations made from a C header. It takes that header from
``<cargo target dir>/header.h`` when the file exists, and otherwise runs its own
bundled cbindgen over ``src/``. That fallback is not usable here: maturin 1.7.4
bundles cbindgen 0.26, whose parser (syn 1) panics on Rust's C-string literals
(``c"..."``, used in src/runtime/omp.rs), and a cbindgen other than the crate's
pinned one would in any case describe the API differently from the committed
``include/parfor.h``. So before handing over to maturin, this backend writes
``header.h`` from the committed header, reduced to what cffi's ``cdef`` accepts:
no ``#include``, no include guard, no ``#ifdef __cplusplus`` blocks.
"""

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import maturin
from maturin import (  # noqa: F401 - re-exported PEP 517 hooks
    build_sdist,
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

HERE = Path(__file__).resolve().parent
MANIFEST = HERE.parent / "Cargo.toml"
HEADER = HERE.parent / "include" / "parfor.h"


def _load_cdef_filter():
    # By path: importing the parfor package would load the library it is building.
    spec = importlib.util.spec_from_file_location("_parfor_cdef", HERE / "parfor" / "_cdef.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.cdef_from_header


#: The header filter, shared with parfor._ffi (one set of rules for both routes).
cdef_from_header = _load_cdef_filter()


def _cargo_target_dir():
    """The target directory cargo (and so maturin) builds into."""
    metadata = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--manifest-path", str(MANIFEST)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return Path(json.loads(metadata)["target_directory"])


def write_cffi_header():
    """Writes ``<target dir>/header.h`` for maturin's cffi mode, if it changed."""
    text = cdef_from_header(HEADER.read_text(encoding="utf-8"))
    target = _cargo_target_dir()
    target.mkdir(parents=True, exist_ok=True)
    path = target / "header.h"
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return path
    # Written under a private name and renamed, so that a concurrent build never
    # reads half a header.
    tmp = target / f".header.h.{os.getpid()}"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    write_cffi_header()
    return maturin.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    write_cffi_header()
    return maturin.build_editable(wheel_directory, config_settings, metadata_directory)
