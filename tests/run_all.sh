#!/usr/bin/env bash
# Every test of parfor: the README's test command (and what .ci/run runs after its
# installs). Lints first, then the whole test suite in release mode (the Rust unit and
# integration tests, which also drive the C examples built both ways, the header
# checks, sanitizers, fork/OpenMP/environment tests, the Python suite and the MPI
# runs), then Miri on the pure-Rust core, then a quick run of the OpenMP comparison.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# Debug build of the library's own unit tests: overflow checks and debug assertions on.
cargo test --lib
cargo test --workspace --release -- --include-ignored
if [ "${PARFOR_SKIP_MIRI:-}" = 1 ]; then
  echo "== Miri SKIPPED (PARFOR_SKIP_MIRI=1: no nightly toolchain with Miri)" >&2
else
  bash tests/miri.sh
fi
# The ABI check against the last release (also in tests/abi.rs), on the library
# `make install` would install.
make abi-check
cargo run --release -p parfor-compare -- --quick
