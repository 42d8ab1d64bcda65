#!/usr/bin/env bash
# The emulator's tests (CTest label emu) under AddressSanitizer and UndefinedBehaviorSanitizer, in a
# build of their own. Device memory comes from the heap (CAE_EMU_DEVICE_MEMORY=heap), so that ASan
# sees the bounds of every device block; the fibers tell ASan about their stacks (exec.cpp).
#
#   native/emu/tests/asan.sh [BUILD_DIR [CTEST_ARGS...]]
#
# BUILD_DIR defaults to build/emu-asan under the repository root; CTEST_ARGS go to ctest (e.g.
# -R emu_mma). Builds only the executables the emu tests run; CAE_ASAN_JOBS sets the build's
# parallelism (default 2).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
build="${1:-$root/build/emu-asan}"
shift || true
jobs="${CAE_ASAN_JOBS:-2}"

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer" \
  -DCAE_CUDA=OFF -DCAE_EMU=ON -DCAE_BUILD_TESTS=ON

# The targets are the executables of the tests labelled emu that this build makes, whoever
# registers them: ctest names each one, as its command or as the executable it cannot find yet.
build="$(cd "$build" && pwd)"
targets=$(cd "$build" && ctest -N -V -L emu 2>&1 |
  sed -n -E "s#^(Could not find executable|[0-9]+: Test command:) ($build/[^ \"]+).*#\\2#p" |
  xargs -r -n1 basename | sort -u | tr '\n' ' ')
if [[ -z "$targets" ]]; then
  echo "asan.sh: no tests labelled emu in $build" >&2
  exit 1
fi
echo "asan.sh: building $targets"
# shellcheck disable=SC2086
cmake --build "$build" --parallel "$jobs" --target $targets

cd "$build"
CAE_EMU_DEVICE_MEMORY=heap \
ASAN_OPTIONS=detect_leaks=0:detect_stack_use_after_return=0 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest -L emu --output-on-failure "$@"
