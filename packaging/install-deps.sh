#!/usr/bin/env bash
# Installs the Debian 12 packages DeltaTune needs to build, test and run. Non-interactive and
# idempotent: packages already present are left alone, and apt is only called when one is missing.
# libopenblas0-openmp matters: without it Debian's LibTorch falls back to the reference BLAS and a
# 768x768 linear layer runs about 27x slower. python3 runs tools/fixture_parity.py in the tests. clang and
# its runtime (libFuzzer, ASan, UBSan) build the fuzz targets that .ci/run runs (tools/fuzz.sh).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  qt6-base-dev qt6-qpa-plugins libqt6svg6 libgl-dev fonts-dejavu-core
  libtorch-dev libopenblas0-openmp libgloo-dev
  libqcustomplot-dev nlohmann-json3-dev
  xvfb xauth
  python3
  clang libclang-rt-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
