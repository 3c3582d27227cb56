"""`pip install ./python` as a user runs it: a wheel is built (maturin, through
python/_build_backend.py) in a cargo target directory of its own, tagged manylinux,
with the compiled library inside; installed into a fresh virtual environment it works
from outside the repository, finding its own copy of the library.

Checked here: the wheel's file name carries the manylinux_2_34 tag (maturin's
auditwheel check passed), the build did not touch the repository's
target/release/libparfor.so, the build went to $CARGO_TARGET_DIR when given one (or
python/build/cargo-target), and the installed package reduces a numpy array.

Slow (it builds the crate in release mode and downloads the build requirements), so
PARFOR_SKIP_VENV_TEST=1 skips it for quick local runs; CI runs it.
"""

import glob
import os
import shutil
import subprocess
import tempfile
import textwrap
import unittest
import venv

from _support import PYTHON_DIR, REPO, numpy

#: The tag pyproject.toml asks maturin for (see _build_backend.py for why 2_34).
MANYLINUX_TAG = "manylinux_2_34_x86_64"


def _stat(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


@unittest.skipIf(os.environ.get("PARFOR_SKIP_VENV_TEST") == "1", "PARFOR_SKIP_VENV_TEST=1")
@unittest.skipIf(shutil.which("cargo") is None, "cargo is needed to build the wheel")
class PipInstall(unittest.TestCase):
    def test_wheel_is_isolated_tagged_and_installs_into_a_fresh_venv(self):
        repo_lib = REPO / "target" / "release" / "libparfor.so"
        before = _stat(repo_lib)
        with tempfile.TemporaryDirectory(prefix="parfor-venv-") as tmp:
            env_dir = os.path.join(tmp, "venv")
            venv.EnvBuilder(with_pip=True).create(env_dir)
            python = os.path.join(env_dir, "bin", "python")
            env = dict(os.environ)
            # The installed package must find the library it ships, not one named
            # by the test run or lying in the repository.
            env.pop("PARFOR_LIBRARY", None)
            env.pop("PYTHONPATH", None)
            # A build tree of the wheel's own. Under `cargo test` it lies inside this
            # run's target directory (reused by later runs); the backend's default
            # (python/build/cargo-target) is what a plain `pip install ./python` gets.
            target = os.environ.get("CARGO_TARGET_DIR")
            wheel_target = (
                os.path.join(target, "python-wheel")
                if target
                else str(PYTHON_DIR / "build" / "cargo-target")
            )
            env["CARGO_TARGET_DIR"] = wheel_target
            # What this test checks is the packaging (the tag, the build tree, the
            # install, the import), not the code's speed: the wheel's library is
            # compiled without optimisation (cargo's profile override by environment),
            # about 1 minute on 2 cores instead of 6. A user's `pip install` gets the
            # release profile.
            env.setdefault("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0")
            env.setdefault("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")
            wheels = os.path.join(tmp, "wheels")
            build = subprocess.run(
                [python, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels, str(PYTHON_DIR)],
                env=env,
                capture_output=True,
                text=True,
                timeout=1200,
            )
            self.assertEqual(build.returncode, 0, build.stdout + build.stderr)
            built = glob.glob(os.path.join(wheels, "parfor-*.whl"))
            self.assertEqual(len(built), 1, built)
            self.assertIn(MANYLINUX_TAG, os.path.basename(built[0]))
            self.assertTrue(
                glob.glob(os.path.join(wheel_target, "release", "libparfor.so")),
                f"the wheel was not built in {wheel_target}",
            )
            # The repository's own library is neither replaced nor rewritten.
            self.assertEqual(_stat(repo_lib), before, f"{repo_lib} changed")

            # Same numpy as this interpreter when there is one, so the test does not
            # depend on what PyPI serves today.
            numpy_req = f"numpy=={numpy.__version__}" if numpy is not None else "numpy"
            install = subprocess.run(
                [python, "-m", "pip", "install", "--quiet", built[0], numpy_req],
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
