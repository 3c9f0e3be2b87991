#!/usr/bin/env bash
# README command 1: set up, build, and run the main job on the embedded default model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build
build/moeq version
