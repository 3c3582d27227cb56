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

Two more things it settles before maturin runs:

- The wheel is built in a cargo target directory of its own, never the repository's
  ``target/``: ``$CARGO_TARGET_DIR`` when the caller sets one, otherwise
  ``python/build/cargo-target`` (ignored by git). A ``pip install ./python`` thus
  neither waits for the lock of a developer's ``cargo build`` nor replaces
  ``target/release/libparfor.so`` with the wheel's stripped copy.
- The platform tag: ``compatibility = "manylinux_2_34"`` in pyproject.toml, which this
  backend passes to maturin as ``--compatibility`` (see ``with_compatibility``) and
  maturin's built-in auditwheel checks. 2_34 because the library, built against Debian 12's
  glibc 2.36, references ``GLIBC_2.34`` symbols (libpthread merged into libc in 2.34:
  ``pthread_*``, ``dlsym``); 2_28 would need an older glibc to build against
  (a manylinux_2_28 container, or zig via ``maturin --zig``).
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


#: Where the wheel's cargo build goes unless $CARGO_TARGET_DIR says otherwise.
ISOLATED_TARGET = HERE / "build" / "cargo-target"


def use_isolated_target_dir():
    """Points cargo (and so maturin) at a target directory of the wheel's own."""
    if not os.environ.get("CARGO_TARGET_DIR"):
        os.environ["CARGO_TARGET_DIR"] = str(ISOLATED_TARGET)
    return Path(os.environ["CARGO_TARGET_DIR"])


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


def with_compatibility(config_settings):
    """``config_settings`` asking maturin for the platform tag of pyproject.toml.

    maturin's PEP 517 hooks pass ``--compatibility off`` (a plain ``linux_x86_64``
    tag) unless the build arguments name a compatibility, and ignore
    ``[tool.maturin] compatibility`` there. So the tag written in pyproject.toml is
    added to the build arguments here, unless the caller chose one (``pip install
    --config-settings build-args='--compatibility off' ./python``, or
    ``MATURIN_PEP517_ARGS``), for example on a distribution whose glibc is newer
    than the tag allows.
    """
    args = list(maturin.get_maturin_pep517_args(config_settings))
    if "--compatibility" in args or "--manylinux" in args:
        return config_settings
    tag = maturin.get_config().get("compatibility")
    if not tag:
        return config_settings
    settings = dict(config_settings or {})
    settings["build-args"] = [*args, "--compatibility", tag]
    return settings


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    use_isolated_target_dir()
    write_cffi_header()
    return maturin.build_wheel(wheel_directory, with_compatibility(config_settings), metadata_directory)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    use_isolated_target_dir()
    write_cffi_header()
    return maturin.build_editable(wheel_directory, with_compatibility(config_settings), metadata_directory)
