#!/bin/sh
# ABI check of a libparfor.so against a release's ABI description, with libabigail's
# abidiff (Debian: abigail-tools). Fails (exit 1) on any change the ABI policy in
# README.md forbids within a SONAME major:
#   - a removed or renamed function or variable (abidiff bit 8, "incompatible");
#   - a changed function signature or a changed type reachable from the API (bit 4),
#     except what abi/suppressions.abignore allows: fields appended to
#     parfor_options (its `size` field lets it grow);
# and passes added functions (--no-added-syms) and appended enumerators (harmless to
# libabigail by default).
#
#   sh abi/check.sh OLD NEW [HEADERS_DIR]
# OLD and NEW are a library or an `abidw` XML file (abi/parfor-<version>.abi is the
# committed description of the last release); HEADERS_DIR, where NEW's public header
# lives, restricts the comparison to the types the header declares.
set -u
if [ $# -lt 2 ]; then
  echo "usage: sh abi/check.sh OLD NEW [HEADERS_DIR]" >&2
  exit 2
fi
old=$1 new=$2
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v abidiff >/dev/null 2>&1; then
  echo "abi/check.sh: abidiff not found: install it (Debian/Ubuntu: apt-get install abigail-tools)" >&2
  exit 1
fi
set -- --no-added-syms --suppressions "$here/suppressions.abignore"
if [ $# -ge 3 ] && [ -n "${3:-}" ]; then
  set -- "$@" --headers-dir2 "$3"
fi
abidiff "$@" "$old" "$new"
rc=$?
if [ $rc -eq 0 ]; then
  echo "abi/check.sh: $new is ABI compatible with $old"
  exit 0
fi
if [ $((rc & 3)) -ne 0 ]; then
  echo "abi/check.sh: abidiff could not compare $old and $new (exit $rc)" >&2
  exit 1
fi
if [ $((rc & 8)) -ne 0 ]; then
  echo "abi/check.sh: INCOMPATIBLE: $new removes or changes what $old exported (exit $rc)" >&2
else
  echo "abi/check.sh: ABI CHANGE: $new changes a type or signature of $old (exit $rc)" >&2
fi
echo "abi/check.sh: see README.md, 'ABI policy': this needs a new SONAME major, or a fix" >&2
exit 1
