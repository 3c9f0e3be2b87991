#!/usr/bin/env bash
# Configures and builds one build tree. Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
# Unity batches (CMAKE_UNITY_BUILD): a fresh build, what CI and a new machine do, takes half the
# compile time. Pass -DCMAKE_UNITY_BUILD=OFF for a tree rebuilt file by file while editing.
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_UNITY_BUILD=ON "$@" >/dev/null
cmake --build "$dir" --parallel "$(nproc)"
