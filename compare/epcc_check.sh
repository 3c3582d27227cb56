#!/usr/bin/env bash
# Checks the comparison's EPCC-method figures for libgomp against EPCC syncbench
# itself on this machine: PARALLEL FOR and REDUCTION median overheads must agree
# within 15 % (issue 14).
#
# Usage: compare/epcc_check.sh EPCC_DIR [RUNS]
#   EPCC_DIR  the suite's openmpbench_C_v40 directory (syncbench.c, common.c, ...),
#             from github.com/EPCCed/epcc-openmp-microbenchmarks; this script
#             downloads nothing.
#   RUNS      alternating runs of each program (default 5); the medians over runs
#             are compared.
# Environment: OMP_NUM_THREADS (default: every CPU this process may use) is the
#   team of both; EPCC_CFLAGS (default "-fopenmp", the suite's Makefile.defs.gcc)
#   the flags syncbench is built with; EPCC_KEEP=1 keeps the temporary directory
#   (the raw figures of every run: epcc_pfor, epcc_red, ours_pfor, ours_red).
# Builds syncbench in a temporary directory (removed at exit) and the comparison
# with cargo. Run it on a quiet machine: on a loaded one both programs measure the
# scheduler. Exit status 0 when both rows agree, 1 when one does not, 2 on misuse.
set -euo pipefail

if [ $# -lt 1 ] || [ ! -f "$1/syncbench.c" ] || [ ! -f "$1/common.c" ]; then
    echo "usage: $0 EPCC_DIR [RUNS]  (EPCC_DIR holds syncbench.c and common.c)" >&2
    exit 2
fi
src=$(cd "$1" && pwd)
runs=${2:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
# The same team for parfor's side of the comparison (not used by this check, but
# the worker reports it).
export PARFOR_NUM_THREADS=$OMP_NUM_THREADS

tmp=$(mktemp -d)
trap '[ -n "${EPCC_KEEP:-}" ] && echo "kept $tmp" >&2 || rm -rf "$tmp"' EXIT
cp "$src"/syncbench.c "$src"/syncbench.h "$src"/common.c "$src"/common.h "$tmp"/
# shellcheck disable=SC2086  # EPCC_CFLAGS is a list of flags
if ! (cd "$tmp" && gcc ${EPCC_CFLAGS:--fopenmp} -o syncbench syncbench.c common.c -lm 2>"$tmp/ld.log"); then
    # Some libgomp builds (Debian 12's libgomp1, with gcc 12's omp.h) lack the
    # OpenMP 4.5 omp_init_lock_with_hint that syncbench's lock tests call. Those
    # tests are not run here: stand in plain locks and link again.
    grep -q omp_init_lock_with_hint "$tmp/ld.log" || { cat "$tmp/ld.log" >&2; exit 1; }
    cat >"$tmp/hint_shim.c" <<'SHIM'
#include <omp.h>
void omp_init_lock_with_hint(omp_lock_t *l, omp_sync_hint_t h) { (void)h; omp_init_lock(l); }
void omp_init_nest_lock_with_hint(omp_nest_lock_t *l, omp_sync_hint_t h) { (void)h; omp_init_nest_lock(l); }
SHIM
    echo "note: this libgomp lacks omp_init_lock_with_hint; linked a plain-lock stand-in" >&2
    (cd "$tmp" && gcc ${EPCC_CFLAGS:--fopenmp} -o syncbench syncbench.c common.c hint_shim.c -lm)
fi
(cd "$root" && cargo build --release -q -p parfor-compare)
compare="$root/target/release/parfor-compare"

# Median of the numbers on stdin.
median() { sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

: >"$tmp/epcc_pfor"
: >"$tmp/epcc_red"
: >"$tmp/ours_pfor"
: >"$tmp/ours_red"
for i in $(seq "$runs"); do
    # syncbench prints "<NAME> median_ovrhd = <us> microseconds".
    "$tmp/syncbench" --measureonly PARALLEL_FOR |
        awk '/PARALLEL FOR median_ovrhd/ {print $(NF-1)}' >>"$tmp/epcc_pfor"
    "$tmp/syncbench" --measureonly REDUCTION |
        awk '/REDUCTION median_ovrhd/ {print $(NF-1)}' >>"$tmp/epcc_red"
    # The comparison's libgomp worker: PFC lines, field 8 the median in seconds.
    "$compare" --worker libgomp --only EPCC >"$tmp/ours"
    awk -F'\t' '$1=="PFC" && $3 ~ /^PARALLEL FOR/ && $7=="gcc" {print $8*1e6}' "$tmp/ours" >>"$tmp/ours_pfor"
    awk -F'\t' '$1=="PFC" && $3 ~ /^REDUCTION/ && $7=="gcc" {print $8*1e6}' "$tmp/ours" >>"$tmp/ours_red"
    echo "run $i of $runs done" >&2
done

status=0
echo "EPCC syncbench ($src) against parfor-compare's libgomp worker, OMP_NUM_THREADS=$OMP_NUM_THREADS, $runs runs, medians of the median overheads:"
printf '%-14s %14s %14s %8s %s\n' construct "syncbench (us)" "compare (us)" ratio verdict
for row in pfor red; do
    name=$([ $row = pfor ] && echo "PARALLEL FOR" || echo "REDUCTION")
    theirs=$(median <"$tmp/epcc_$row")
    ours=$(median <"$tmp/ours_$row")
    if [ -z "$theirs" ] || [ -z "$ours" ]; then
        echo "$name: no figure (syncbench: '${theirs}', compare: '${ours}')"
        status=1
        continue
    fi
    verdict=$(awk -v a="$ours" -v b="$theirs" 'BEGIN {r = a / b; printf "%.3f %s", r, (r >= 0.85 && r <= 1.15) ? "agree (within 15 %)" : "DISAGREE"}')
    printf '%-14s %14.3f %14.3f %s\n' "$name" "$theirs" "$ours" "$verdict"
    case $verdict in *DISAGREE*) status=1 ;; esac
done
exit $status
