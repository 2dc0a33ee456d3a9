#!/usr/bin/env bash
# Builds MinkowskiEngine 0.5.4 with CUDA into a wheel, so that a GPU machine or an image installs it without
# compiling (~10-40 min):
#
#   VENV=.venv TORCH_CUDA_ARCH_LIST="9.0" MAX_JOBS=16 bash scripts/build_cuda_wheel.sh wheels/
#
# writes wheels/MinkowskiEngine-0.5.4-<python>-linux_x86_64.whl and, beside it, <wheel>.build: the torch
# version, its CUDA version and TORCH_CUDA_ARCH_LIST it was built for. It is scripts/install.sh's own CUDA
# build (its functions, sourced): the same sdist fixes (patch_minkowski_cuda12.py), the same nvcc choice (CUDA_HOME,
# PATH, /usr/local/cuda, else the toolkit of the torch wheel's CUDA version from PyPI into the venv), built
# against the venv's torch, which must be the CUDA build the wheel is for. `ME_WHEEL_DIR=wheels/ bash
# scripts/install.sh` (docker/Dockerfile, scripts/gpu_check.sh) then installs that wheel when the venv's torch
# and TORCH_CUDA_ARCH_LIST match its .build record, and builds one there otherwise. ME_SDIST: a local sdist.
set -euo pipefail

# shellcheck source=install.sh
source "$(dirname "${BASH_SOURCE[0]}")/install.sh"

OUT=${1:?usage: build_cuda_wheel.sh OUT_DIR}
[ -x "$VENV/bin/python" ] && has_module torch || { echo "VENV=$VENV has no torch: install the CUDA torch the wheel is for first" >&2; exit 1; }
if wheel=$(matching_wheel "$OUT"); then
  log "$wheel is already built for $(wheel_build_key)"
  exit 0
fi
build_minkowski_wheel "$OUT"
