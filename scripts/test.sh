#!/usr/bin/env bash
# Quick start 2: set up, build and run the whole test suite: every test on PoCL (and the kernel
# tests under Oclgrind), then the suite again built with AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)

# Tests never touch the user's program cache.
export VOXCL_CACHE_DIR=$(mktemp -d /tmp/voxcl-test-cache.XXXXXX)
trap 'rm -rf "$VOXCL_CACHE_DIR"' EXIT

# The Python tests compare with PyTorch and nibabel (Debian's packages; skipped when absent).
export VOXCL_EXTRA_PACKAGES="python3-numpy python3-nibabel python3-torch"

echo "== build (Release)"
"$here/scripts/setup.sh" "$here/build"
echo "== tests (Release; 'ctest -L slow' runs the long network-level Oclgrind check too)"
(cd "$here/build" && ctest --output-on-failure -j 1 -LE slow)

echo "== build (ASan + UBSan)"
"$here/scripts/setup.sh" "$here/build-asan" -DVOXCL_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVOXCL_BUILD_BENCH=OFF
echo "== tests (ASan + UBSan; Oclgrind runs are in the Release pass)"
# PoCL and LLVM leak a little inside their compilers; only those are suppressed.
# use_sigaltstack=0: PoCL's LLVM replaces threads' signal stacks, which ASan otherwise trips on at thread exit
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:use_sigaltstack=0
export LSAN_OPTIONS=suppressions=$here/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd "$here/build-asan" && ctest --output-on-failure -j 1 -E oclgrind)
echo "== all tests passed"
