#!/usr/bin/env bash
# Builds the plugin and its C++ tests with AddressSanitizer (leaks included) and
# UndefinedBehaviorSanitizer, CPU kernels only, and runs the C++ tests (the CUDA ones skip without a
# GPU). Any report fails the run, leaks at exit included (no suppressions; libtorch itself is not
# instrumented, but its allocations are still tracked by LeakSanitizer).
#   BUILD_DIR  build folder (default: build-sanitizers)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export BUILD_DIR="${SANITIZER_BUILD_DIR:-build-sanitizers}"
# The flags are the "sanitizers" preset's (CMakePresets.json).
CMAKE_PRESET=sanitizers scripts/build.sh >/dev/null
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_odr_violation=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
"$BUILD_DIR/tests/cpp/custom_ops_tests" --gtest_brief=1 2>&1 | tail -n 25
echo "[sanitizers] AddressSanitizer + LeakSanitizer + UndefinedBehaviorSanitizer: C++ tests clean"
