"""Shared setup of the Python tests: makes ``import parfor`` load the package of
this checkout (python/parfor) rather than an installed copy, and exposes numpy when
it is installed (tests that need it are skipped otherwise)."""

import os
import shutil
import sys
import unittest
from pathlib import Path

PYTHON_DIR = Path(__file__).resolve().parents[1]
REPO = PYTHON_DIR.parent
HEADER = REPO / "include" / "parfor.h"
EXAMPLES = PYTHON_DIR / "examples"

if str(PYTHON_DIR) not in sys.path:
    sys.path.insert(0, str(PYTHON_DIR))

import parfor  # noqa: E402

try:
    import numpy
except ImportError:
    numpy = None

try:
    import cffi
except ImportError:
    cffi = None

requires_numpy = unittest.skipIf(numpy is None, "numpy is not installed")
requires_cffi = unittest.skipIf(cffi is None, "cffi is not installed")


def c_compiler():
    """The C compiler cffi will use (its default, ``cc``, unless CC is set)."""
    cc = os.environ.get("CC", "cc").split()[0]
    return shutil.which(cc)


def child_env():
    """Environment for a child Python that imports this checkout's parfor with the
    same library as this process."""
    env = dict(os.environ)
    env["PARFOR_LIBRARY"] = str(parfor.LIBRARY_PATH)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(PYTHON_DIR)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    return env


# While the loaded library predates the N-d entry points (issue 12's C side), the
# numpy-named reductions run against a numpy model of them (see _nd_model.py).
import _nd_model  # noqa: E402

_nd_model.install()
