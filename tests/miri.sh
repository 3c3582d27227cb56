#!/usr/bin/env bash
# Runs the library's unit tests (kernels, schedules, the fixed partition and combine
# tree, user reductions, the team runtime, configuration parsing) under Miri, which
# checks the unsafe code for undefined behaviour: out-of-bounds and misaligned
# accesses, use after free, invalid values, aliasing violations, data races.
#
# Needs the nightly toolchain with Miri:
#   rustup toolchain install nightly --component miri,rust-src
# The tests size their inputs down under cfg!(miri) (Miri runs roughly a thousand
# times slower than native code): the corners of every case, not its bulk. Before
# the last round of cuts (kernels min/max lengths, the schedule coverage matrix, the
# alternating-pass reductions) this took about 21 minutes of a 44-minute CI run.
# Measured for two of them (Miri's virtual clock, --report-time, which does not
# depend on the machine's load): kernels::test::min_max_match_a_serial_scan_with_
# signed_zeros 56.7 s -> 8.6 s; schedule::test::every_item_exactly_once now 11.8 s,
# and before the cut it did not finish within 15 minutes of wall time on the loaded
# 2-core machine (after: both tests, Miri build included, in 4.5 minutes). The whole
# script was re-timed on 2026-12-03 (below).
# Run from anywhere:
#   bash tests/miri.sh
#
# Flags, and why:
# - -Zmiri-ignore-leaks: the team's worker threads and the rayon pool live for the
#   life of the process by design (they are leaked so that a forked child never
#   joins threads that do not exist there); without the flag Miri fails every test
#   that starts them with "the main thread terminated without waiting for all
#   remaining threads".
# - -Zmiri-deterministic-floats: Miri otherwise adds a random error of a few ulps to
#   functions whose precision Rust leaves unspecified (powi, exp, ...), as a libm
#   might. The library uses none of them (only +, -, *, / and fma, which IEEE 754
#   specifies exactly), but tests use powi to build constants and then compare bits.
# - Pass 1 uses Miri's default aliasing model, Stacked Borrows, and skips the one
#   test whose calls fall back to the rayon pool: rayon's deques use crossbeam-epoch,
#   whose intrusive list (`Local::element_of`, a cast from a field pointer to its
#   containing struct) violates Stacked Borrows, a known limitation of that crate
#   and not parfor's code.
# - Pass 2 runs that test under Tree Borrows, the newer model, which accepts that
#   pattern, so the fallback path is still checked for races and invalid accesses.
set -euo pipefail
cd "$(dirname "$0")/.."

export MIRIFLAGS="-Zmiri-ignore-leaks -Zmiri-deterministic-floats ${MIRIFLAGS:-}"
# No backtraces: the panic tests' panics would each walk and symbolise the stack
# under Miri, which took minutes per test when RUST_BACKTRACE=1 was set around it.
export RUST_BACKTRACE=0
FALLBACK_TEST=runtime::test::concurrent_callers_all_complete

# Miri interprets on one thread; the two halves of pass 1 run side by side (CI has
# two cores), each in its own process on the one build. Measured on a 2-core Intel
# Xeon (KVM) VM, 2026-12-03: all of pass 1 in one process 270 s of Miri's virtual
# clock and about 10 minutes of wall time; the `reduce::` and `sort::` tests are
# about half of it.
cargo +nightly miri test --lib --no-run
log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT
GROUP_A=(reduce:: sort::)

echo "== miri pass 1 (Stacked Borrows), two processes: tests matching ${GROUP_A[*]}; all others but ${FALLBACK_TEST}"
cargo +nightly miri test --lib -- "${GROUP_A[@]}" >"$log_dir/a" 2>&1 &
pid_a=$!
status_b=0
cargo +nightly miri test --lib -- --skip "${FALLBACK_TEST}" \
    $(printf -- '--skip %s ' "${GROUP_A[@]}") >"$log_dir/b" 2>&1 || status_b=$?
# Pass 2 beside the rest of the first half.
echo "== miri pass 2: Tree Borrows, ${FALLBACK_TEST}"
status_c=0
MIRIFLAGS="${MIRIFLAGS} -Zmiri-tree-borrows" \
    cargo +nightly miri test --lib -- --exact "${FALLBACK_TEST}" >"$log_dir/c" 2>&1 || status_c=$?
status_a=0
wait "$pid_a" || status_a=$?
for g in a b c; do
  echo "== miri log $g"
  cat "$log_dir/$g"
done
if [ "$status_a" != 0 ] || [ "$status_b" != 0 ] || [ "$status_c" != 0 ]; then
  echo "== miri FAILED (exit statuses: ${GROUP_A[*]}: $status_a, the others: $status_b, pass 2: $status_c)" >&2
  exit 1
fi
