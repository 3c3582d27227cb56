"""`pip install ./python` into a fresh virtual environment builds a wheel with the
compiled library inside (maturin), and the installed package works from outside the
repository: it finds its own copy of the library and reduces a numpy array.

Slow (it builds the crate in release mode and downloads the build requirements), so
PARFOR_SKIP_VENV_TEST=1 skips it for quick local runs; CI runs it.
"""

import os
import shutil
import subprocess
import tempfile
import textwrap
import unittest
import venv

from _support import PYTHON_DIR, REPO, numpy


@unittest.skipIf(os.environ.get("PARFOR_SKIP_VENV_TEST") == "1", "PARFOR_SKIP_VENV_TEST=1")
@unittest.skipIf(shutil.which("cargo") is None, "cargo is needed to build the wheel")
class PipInstall(unittest.TestCase):
    def test_pip_install_into_a_fresh_venv(self):
        with tempfile.TemporaryDirectory(prefix="parfor-venv-") as tmp:
            env_dir = os.path.join(tmp, "venv")
            venv.EnvBuilder(with_pip=True).create(env_dir)
            python = os.path.join(env_dir, "bin", "python")
            env = dict(os.environ)
            # The installed package must find the library it ships, not one named
            # by the test run or lying in the repository.
            env.pop("PARFOR_LIBRARY", None)
            env.pop("PYTHONPATH", None)
            # A build tree of its own, inside the usual one: the wheel build neither
            # waits for nor rewrites the libparfor.so that cargo (and this process)
            # use, and later runs reuse it.
            target = os.environ.get("CARGO_TARGET_DIR") or str(REPO / "target")
            env["CARGO_TARGET_DIR"] = os.path.join(target, "python-wheel")
            # Same numpy as this interpreter when there is one, so the test does not
            # depend on what PyPI serves today.
            numpy_req = f"numpy=={numpy.__version__}" if numpy is not None else "numpy"
            install = subprocess.run(
                [python, "-m", "pip", "install", "--quiet", str(PYTHON_DIR), numpy_req],
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
            )
            self.assertEqual(install.returncode, 0, install.stdout + install.stderr)
            check = textwrap.dedent(
                """
                import pathlib, sys
                import numpy as np
                import parfor
                lib = pathlib.Path(parfor.LIBRARY_PATH)
                pkg = pathlib.Path(parfor.__file__).parent
                assert str(lib).startswith(str(pkg)), (lib, pkg)
                x = np.arange(1_000_000, dtype=np.float64)
                assert parfor.sum(x) == 499999500000.0, parfor.sum(x)
                assert parfor.min(x[1:]) == 1.0
                # The declarations are the ones maturin generated from the header.
                src = pathlib.Path(parfor._ffi.DECLARATIONS_SOURCE)
                assert src == pkg / "_native" / "ffi.py", src
                print("installed", parfor.__version__, "from", lib)
                """
            )
            # Run from the temporary directory: nothing of the repository on sys.path.
            out = subprocess.run(
                [python, "-c", check], env=env, cwd=tmp, capture_output=True, text=True, timeout=120
            )
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertIn("site-packages", out.stdout)
            self.assertIn(os.path.join("parfor", "_native"), out.stdout)


if __name__ == "__main__":
    unittest.main()
