"""The examples in python/examples run to completion and check their own results
(each asserts what it computes and prints "ok" last)."""

import subprocess
import sys
import unittest

from _support import EXAMPLES, HEADER, c_compiler, child_env, requires_cffi


def run_example(name):
    env = child_env()
    env["PARFOR_HEADER"] = str(HEADER)
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@requires_cffi
class Examples(unittest.TestCase):
    def assert_ran(self, out):
        self.assertEqual(out.returncode, 0, f"stdout:\n{out.stdout}\nstderr:\n{out.stderr}")
        self.assertEqual(out.stdout.strip().splitlines()[-1], "ok", out.stdout)

    def test_cffi_abi_mode_over_the_header(self):
        out = run_example("cffi_abi.py")
        self.assert_ran(out)
        self.assertIn("sum of 1000000 doubles: 499500000.0", out.stdout)

    @unittest.skipIf(c_compiler() is None, "no C compiler for cffi's API mode")
    def test_body_compiled_by_cffi(self):
        out = run_example("cffi_compiled_body.py")
        self.assert_ran(out)
        self.assertIn("compiled body over", out.stdout)


if __name__ == "__main__":
    unittest.main()
