#!/usr/bin/env bash
# The whole test suite: every test on every backend and runner, in three builds:
#   check  optimized with assertions, warnings as errors: every test; then again the suites
#          that reach a portable fallback, with the fallbacks forced (WEFT_PORTABLE=1)
#   asan   AddressSanitizer + UndefinedBehaviorSanitizer (leaks included): every test but the
#          install-and-build-a-consumer packaging steps (label `install`), which run no weft code
#   tsan   ThreadSanitizer: the programs that exercise a thread-safe entry point (cross-thread
#          calls, runners, net, reactors on many threads, the plugin loader; the labels listed
#          in CMakePresets.json), not the single-threaded backend, example and CLI tests
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
  if [[ $preset == check ]]; then
    # The portable paths (pipe wake-ups, poll, the libraries' own timers, socket+fcntl) that
    # macOS and the BSDs take, forced on Linux: the suites that reach them (docs/portability.md).
    echo "=== check with WEFT_PORTABLE=1"
    WEFT_PORTABLE=1 ctest --preset check -L 'portable|runners|backends|net' -LE peers -E '^VirtualTime/'
  fi
done
echo "all test builds passed: ${presets[*]}"
