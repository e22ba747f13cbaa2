#!/usr/bin/env bash
# The whole test suite: every test on every backend and runner, in three builds:
#   check  optimized, warnings as errors
#   asan   AddressSanitizer + UndefinedBehaviorSanitizer (leaks included)
#   tsan   ThreadSanitizer
# Pass preset names to run only some, e.g. cmake/check.sh check
set -euo pipefail
cd "$(dirname "$0")/.."
cmake/install-deps.sh
presets=("$@")
((${#presets[@]} > 0)) || presets=(check asan tsan)
for preset in "${presets[@]}"; do
  echo "=== $preset"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
  # TSan needs the narrower address layout of older kernels; setarch -R turns ASLR off.
  if [[ $preset == tsan ]] && command -v setarch >/dev/null; then
    setarch "$(uname -m)" -R ctest --preset "$preset"
  else
    ctest --preset "$preset"
  fi
done
echo "all test builds passed: ${presets[*]}"
