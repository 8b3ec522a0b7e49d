#!/usr/bin/env bash
# Quick start 1: set up, build, and run the demo (synthetic 3D dataset -> train a 3D U-Net ->
# segment held-out volumes -> NIfTI + summary.json in ./demo_out). Extra arguments go to
# `voxcl demo` (e.g. --time 60 --device gpu).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh" "$here/build"
exec "$here/build/voxcl" demo "$@"
