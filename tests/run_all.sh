#!/usr/bin/env bash
# Every test of parfor: the README's test command (and what .ci/run runs after its
# installs). Lints first, then the whole test suite in release mode (the Rust unit and
# integration tests, which also drive the C examples built both ways, the header
# checks, sanitizers, fork/OpenMP/environment tests, the Python suite and the MPI
# runs), then Miri on the pure-Rust core, then a quick run of the OpenMP comparison.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step prints its wall time, so that a CI log says where the minutes went.
t0=$(date +%s)
step() {
  local s
  s=$(date +%s)
  echo "== $*" >&2
  "$@"
  echo "== $(( $(date +%s) - s )) s (total $(( $(date +%s) - t0 )) s): $*" >&2
}

step cargo fmt --all -- --check
step cargo clippy --workspace --all-targets -- -D warnings
# Debug build of the library's own unit tests (and the header generator's):
# overflow checks and debug assertions on.
step cargo test --lib -p parfor -p parfor-header
# Release: the integration tests (--test '*') and the comparison's own unit tests.
# The library's unit tests ran in
# the debug build above; compiling their harness again with optimisations cost about
# 6 minutes of a 2-core CI run and checks nothing more (Rust does not reorder float
# arithmetic at any opt-level, so the bits are the same).
step cargo test --workspace --release --test '*' --bin parfor-compare -- --include-ignored
# The kernel and reduction bit-identity tests again under every kernel level this CPU
# has (PARFOR_ISA; tests/isa.rs also compares the levels' bits with each other), and
# the sort's unit tests (its survey is compiled for each level too).
isa_levels="baseline"
grep -qw avx2 /proc/cpuinfo && isa_levels="$isa_levels avx2"
for f in avx512f avx512bw avx512vl avx512dq; do grep -qw "$f" /proc/cpuinfo || f=; [ -n "$f" ] || break; done
[ -n "${f:-}" ] && isa_levels="$isa_levels avx512"
# --workspace as above: the same package selection resolves the same dependency
# features, so cargo reuses the builds above instead of compiling parfor again
# (without it each of these steps rebuilt it: 7 minutes in CI).
for isa in $isa_levels; do
  step env PARFOR_ISA=$isa cargo test --lib -p parfor -p parfor-header -- kernels:: sort::
  step env PARFOR_ISA=$isa cargo test --workspace --release --test reduce --test isa
done
if [ "${PARFOR_SKIP_MIRI:-}" = 1 ]; then
  echo "== Miri SKIPPED (PARFOR_SKIP_MIRI=1: no nightly toolchain with Miri)" >&2
else
  step bash tests/miri.sh
fi
# The ABI check against the last release (also in tests/abi.rs), on the library
# `make install` would install, linked from the libparfor.a the release tests built
# (NO_BUILD=1: `cargo build -p parfor` alone resolves other dependency features than
# the workspace build and compiled the whole library again, 6 minutes in CI).
step make abi-check NO_BUILD=1
step cargo run --release -p parfor-compare -- --quick
