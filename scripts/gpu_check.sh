#!/usr/bin/env bash
# One prepared GPU check (issue 25.4) for a bare GPU machine: Python 3.12 with a CUDA torch, torchvision and nvcc,
# but no Ray, no MinkowskiEngine, no network, little time (scripts/gpu_check.py says what it checks).
#
#   bash scripts/gpu_check.sh --prepare   # here, with network: fills $CARRY with what that machine lacks (~15 MB)
#   bash scripts/gpu_check.sh             # there, $CARRY brought along: installs, then GPU vs CPU and the figures
#   bash scripts/gpu_check.sh --cpu       # with the project's venv: the CPU half only (the test suite runs it)
#
# $CARRY (default .gpu_check, git-ignored) holds wheels/ (pydantic and its parts, plyfile, efficientnet-lite-pytorch,
# for CPython 3.12; and a MinkowskiEngine wheel with its .build record from scripts/build_cuda_wheel.sh, if one
# was built for that machine's torch and GPU), the MinkowskiEngine 0.5.4 sdist, and debs/ (Debian's OpenBLAS and
# libgfortran: MinkowskiEngine's CPU gemms link OpenBLAS, which the machine may lack). On the GPU machine,
# MinkowskiEngine comes from that wheel if it matches, else it is built there by scripts/install.sh's own CUDA
# build with all cores (MAX_JOBS = nproc) for the GPU's compute capability. Env: PYTHON (default python3),
# CARRY, TORCH_CUDA_ARCH_LIST (default: nvidia-smi's).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
CARRY=${CARRY:-$ROOT/.gpu_check}
ME_SDIST_NAME=MinkowskiEngine-0.5.4.tar.gz
BLAS_ROOT=/tmp/gpu_check_blas
# Python packages pix2point imports that the GPU machine's image lacks (its package list: pydantic, plyfile and
# the EfficientNet-Lite code are not there), at the versions of the venv that prepares them.
CARRIED_PACKAGES="pydantic pydantic-core annotated-types typing-inspection plyfile efficientnet-lite-pytorch"
CARRIED_DEBS="libopenblas0-pthread libopenblas-pthread-dev libgfortran5"

log() { printf '[gpu_check] %s\n' "$*"; }

prepare() {
  mkdir -p "$CARRY/wheels" "$CARRY/debs"
  local specs=() package
  for package in $CARRIED_PACKAGES; do
    specs+=("$package==$("$PYTHON" -c "from importlib.metadata import version; print(version('$package'))")")
  done
  log "wheels for CPython 3.12: ${specs[*]}"
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$CARRY/wheels" "${specs[@]}"
  log "the MinkowskiEngine sdist"
  [ -f "$CARRY/$ME_SDIST_NAME" ] || SETUPTOOLS_USE_DISTUTILS=stdlib "$PYTHON" -m pip download -q --no-deps \
    --no-binary :all: --no-build-isolation -d "$CARRY" "minkowskiengine==0.5.4"
  log "Debian packages: $CARRIED_DEBS"
  (cd "$CARRY/debs" && apt-get download $CARRIED_DEBS >/dev/null)
  log "$CARRY: $(du -sh "$CARRY" | cut -f1); bring it along (device run: carry .gpu_check)"
}

# MinkowskiEngine's build and its extension need cblas.h and libopenblas; unpack the carried ones if the
# machine has none (gcc reads CPATH and LIBRARY_PATH, the loader LD_LIBRARY_PATH).
ensure_blas() {
  if ldconfig -p | grep -q 'libopenblas\.so\.0' && { [ -e /usr/include/cblas.h ] || [ -e /usr/include/x86_64-linux-gnu/cblas.h ]; }; then
    return
  fi
  log "no system OpenBLAS: unpacking $CARRY/debs into $BLAS_ROOT"
  local deb
  for deb in "$CARRY"/debs/*.deb; do dpkg -x "$deb" "$BLAS_ROOT"; done
  local lib=$BLAS_ROOT/usr/lib/x86_64-linux-gnu
  export CPATH="$BLAS_ROOT/usr/include/x86_64-linux-gnu/openblas-pthread${CPATH:+:$CPATH}"
  export LIBRARY_PATH="$lib/openblas-pthread${LIBRARY_PATH:+:$LIBRARY_PATH}"
  export LD_LIBRARY_PATH="$lib/openblas-pthread:$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

install_on_gpu_machine() {
  local wheels=() wheel
  export PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1  # nothing can be fetched there
  for wheel in "$CARRY"/wheels/*.whl; do
    case $(basename "$wheel") in MinkowskiEngine-*) ;; *) wheels+=("$wheel") ;; esac
  done
  [ ${#wheels[@]} -eq 0 ] || "$PYTHON" -m pip install -q --no-deps "${wheels[@]}"
  ensure_blas
  VENV=$("$PYTHON" -c 'import sys; print(sys.prefix)')
  # shellcheck source=install.sh
  source "$ROOT/scripts/install.sh"
  export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | sort -u | paste -sd';' -)}
  ME_CUDA=1 ME_WHEEL_DIR="$CARRY/wheels" ME_SDIST="$CARRY/$ME_SDIST_NAME" MAX_JOBS=${MAX_JOBS:-$(nproc)}
  local started=$SECONDS
  ensure_minkowski
  log "MinkowskiEngine ready in $((SECONDS - started)) s"
}

case "${1:-}" in
  --prepare) prepare ;;
  --cpu) exec "$PYTHON" "$ROOT/scripts/gpu_check.py" --cpu ;;
  "") install_on_gpu_machine; exec "$PYTHON" "$ROOT/scripts/gpu_check.py" ;;
  *) echo "usage: gpu_check.sh [--prepare | --cpu]" >&2; exit 2 ;;
esac
