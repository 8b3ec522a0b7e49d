#!/usr/bin/env bash
# Shared by demo.sh and test.sh: installs the Debian packages voxcl needs (when missing and when
# we may: as root or through sudo), then configures and builds into the given directory.
# Usage: scripts/setup.sh BUILD_DIR [extra cmake args...]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}; shift || true

pkgs=(cmake ninja-build gcc pkg-config ocl-icd-opencl-dev opencl-headers pocl-opencl-icd libclblast-dev
      libnifti2-dev zlib1g-dev libpng-dev libjansson-dev oclgrind clinfo ${VOXCL_EXTRA_PACKAGES:-})
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"
  else echo "setup: missing Debian packages: ${missing[*]} (run as root or install them)" >&2; exit 1; fi
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$here" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
else
  cmake -S "$here" -B "$build" "$@" >/dev/null
fi
cmake --build "$build" --parallel "$(nproc)"
