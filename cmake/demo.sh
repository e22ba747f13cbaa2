#!/usr/bin/env bash
# From a fresh clone: install the dependencies, build in Release, run `weft demo`.
# Extra arguments go to the demo, e.g. cmake/demo.sh --backend libevent --runner threaded
set -euo pipefail
cd "$(dirname "$0")/.."
cmake/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release
build/release/examples/weft backends
build/release/examples/weft demo "$@"
