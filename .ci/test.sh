#!/usr/bin/env bash
# Builds gale and runs the whole test suite (the README's second command).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${GALE_BUILD_DIR:-build}
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" "$@"
cmake --build "$build" -j2
ctest --test-dir "$build" --output-on-failure -j2
