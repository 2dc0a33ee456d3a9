#!/usr/bin/env bash
# Installs everything pix2point needs into a virtual environment, skipping what is already there.
# Used by `make run`, `make test`, CI and docker/Dockerfile.cpu so that they cannot drift apart.
set -euo pipefail

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
# Switches (the images in docker/ set them; unset, they are chosen for this machine):
#   TORCH_INDEX_URL  an extra wheel index for torch, e.g. https://download.pytorch.org/whl/cu128 (a local
#                    version such as 2.13.0+cu128 sorts above PyPI's 2.13.0, so it wins)
#   ME_CUDA=1|0      build MinkowskiEngine with CUDA (needs nvcc; TORCH_CUDA_ARCH_LIST picks the GPUs) or not
#   PIX2POINT_CPU=1  ignore the GPUs: the CPU build
# With an NVIDIA driver (`nvidia-smi` lists a GPU) and neither TORCH_INDEX_URL nor ME_CUDA set, this is
# docker/Dockerfile's path: CUDA 12.8 torch and MinkowskiEngine built with CUDA for the GPUs found.
# `install.sh --dry-run [EXTRAS]` prints that plan and changes nothing.
TORCH_INDEX_URL=${TORCH_INDEX_URL:-}
ME_CUDA=${ME_CUDA:-}
ME_VERSION=0.5.4
# The torch CUDA wheels tried, newest first, with the oldest driver CUDA each runs on (docker/Dockerfile: 12.8).
CUDA_WHEELS="cu128:12.8 cu126:12.6"
SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DRY_RUN=0
if [ "${1:-}" = "--dry-run" ]; then DRY_RUN=1; shift; fi

log() { printf '[install] %s\n' "$*"; }

ensure_openblas() {
  if [ -e /usr/include/x86_64-linux-gnu/cblas.h ] || [ -e /usr/include/cblas.h ] || dpkg -s libopenblas-dev >/dev/null 2>&1; then
    return
  fi
  log "installing libopenblas-dev (MinkowskiEngine links against BLAS)"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libopenblas-dev >/dev/null
}

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
}

has_module() { "$VENV/bin/python" -c "import $1" >/dev/null 2>&1; }

ensure_torch() {
  has_module torch && return
  log "installing $TORCH_SPEC${TORCH_INDEX_URL:+ (extra index $TORCH_INDEX_URL)}"
  "$VENV/bin/pip" install -q ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} "$TORCH_SPEC" numpy setuptools wheel ninja
}

# MinkowskiEngine 0.5.4 predates Python 3.10: it imports Sequence from `collections` (5 files, Python only).
patch_minkowski_imports() {
  "$VENV/bin/python" - <<'PY'
import importlib.util, pathlib, re
spec = importlib.util.find_spec("MinkowskiEngine")
if spec is None:
    raise SystemExit("MinkowskiEngine is not installed")
pattern = re.compile(r"^from collections import (.+)$", re.MULTILINE)
def split_abc(match):
    names = [name.strip() for name in match.group(1).split(",")]
    abc = [n for n in names if n == "Sequence"]
    rest = [n for n in names if n != "Sequence"]
    lines = ([f"from collections.abc import {', '.join(abc)}"] if abc else []) + ([f"from collections import {', '.join(rest)}"] if rest else [])
    return "\n".join(lines)
for path in pathlib.Path(spec.origin).parent.rglob("*.py"):
    text = path.read_text()
    patched = pattern.sub(split_abc, text)
    if patched != text:
        path.write_text(patched)
PY
}

# stdlib distutils: numpy.distutils crashes under setuptools' bundled distutils.
build_minkowski_cpu() {
  log "building MinkowskiEngine $ME_VERSION (first time ~10 min; pip caches the wheel afterwards)"
  SETUPTOOLS_USE_DISTUTILS=stdlib MAX_JOBS=${MAX_JOBS:-2} \
    "$VENV/bin/pip" install -q --no-build-isolation "minkowskiengine==$ME_VERSION"
}

# The sdist needs source fixes for CUDA 12 (patch_minkowski_cuda12.py says which and why), so it is unpacked,
# patched and built from the tree. --force_cuda because an image build sees no GPU.
build_minkowski_cuda() {
  local nvcc
  nvcc=$(nvcc_verdict) || { echo "ME_CUDA=1 but nvcc: $nvcc" >&2; exit 1; }
  local src; src=$(mktemp -d)
  # --config-settings needs pip >= 22.1; a distribution's ensurepip may bring an older one.
  "$VENV/bin/pip" install -q "pip>=23.1"
  log "building MinkowskiEngine $ME_VERSION with CUDA for TORCH_CUDA_ARCH_LIST='${TORCH_CUDA_ARCH_LIST:-torch default}'"
  SETUPTOOLS_USE_DISTUTILS=stdlib "$VENV/bin/pip" download -q --no-deps --no-binary :all: --no-build-isolation \
    -d "$src" "minkowskiengine==$ME_VERSION"
  tar -xzf "$src/MinkowskiEngine-$ME_VERSION.tar.gz" -C "$src"
  "$VENV/bin/python" "$SCRIPTS/patch_minkowski_cuda12.py" "$src/MinkowskiEngine-$ME_VERSION"
  SETUPTOOLS_USE_DISTUTILS=stdlib MAX_JOBS=${MAX_JOBS:-2} \
    "$VENV/bin/pip" install -q --no-build-isolation --use-pep517 \
    --config-settings=--build-option="--force_cuda --blas=openblas" "$src/MinkowskiEngine-$ME_VERSION"
  rm -rf "$src"
}

ensure_minkowski() {
  has_module MinkowskiEngine && return
  if ! "$VENV/bin/pip" show minkowskiengine >/dev/null 2>&1; then
    if [ "$ME_CUDA" = 1 ]; then build_minkowski_cuda; else build_minkowski_cpu; fi
  fi
  patch_minkowski_imports
  has_module MinkowskiEngine || { echo "MinkowskiEngine installed but does not import" >&2; "$VENV/bin/python" -c "import MinkowskiEngine"; exit 1; }
}

ensure_package() {
  local extras=${1:-}
  local stamp="$VENV/.pix2point-installed$extras"
  if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then return; fi
  log "installing pix2point$extras and its dependencies"
  "$VENV/bin/pip" install -q -e ".$extras"
  touch "$stamp"
}

# Sets GPU_NAMES, GPU_CAPS ("8.6;9.0") and DRIVER_CUDA ("12.8") when nvidia-smi answers; fails otherwise.
detect_gpu() {
  [ "${PIX2POINT_CPU:-0}" != 1 ] && command -v nvidia-smi >/dev/null 2>&1 || return 1
  GPU_NAMES=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | sort -u | paste -sd, -) || return 1
  [ -n "$GPU_NAMES" ] || return 1
  GPU_CAPS=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | sort -u | paste -sd';' -)
  DRIVER_CUDA=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9][0-9.]*\).*/\1/p' | head -n1)
}

version_at_least() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

# $CUDA_HOME's nvcc first (how a host with several toolkits picks one), then PATH's, then /usr/local/cuda's.
find_nvcc() {
  local candidate
  for candidate in ${CUDA_HOME:+"$CUDA_HOME/bin/nvcc"} "$(command -v nvcc 2>/dev/null)" /usr/local/cuda/bin/nvcc; do
    [ -n "$candidate" ] && [ -x "$candidate" ] && { echo "$candidate"; return; }
  done
  return 1
}

nvcc_release() { "$1" --version 2>/dev/null | sed -n 's/.*release \([0-9][0-9.]*\).*/\1/p' | head -n1; }

# The nvcc to build MinkowskiEngine with, or why there is none: torch's extension builder needs the CUDA major
# version of nvcc and of the torch wheel (TORCH_INDEX_URL's cuXYZ) to agree.
nvcc_verdict() {
  local nvcc release wheel_major
  nvcc=$(find_nvcc) || { echo "NOT FOUND (install the CUDA 12 toolkit and set CUDA_HOME, or build docker/Dockerfile)"; return 1; }
  release=$(nvcc_release "$nvcc")
  wheel_major=$(printf '%s' "$TORCH_INDEX_URL" | sed -n 's/.*cu\([0-9][0-9]\)[0-9]$/\1/p')
  if [ -n "$wheel_major" ] && [ "${release%%.*}" != "$wheel_major" ]; then
    echo "$nvcc is CUDA ${release:-unknown}, the torch wheel CUDA $wheel_major: set CUDA_HOME to a CUDA $wheel_major toolkit"
    return 1
  fi
  echo "$nvcc (CUDA ${release:-unknown})"
}

# Fills in TORCH_INDEX_URL, ME_CUDA and TORCH_CUDA_ARCH_LIST where the caller left them unset; PLAN_GPU says why.
choose_build() {
  PLAN_GPU="none found (no nvidia-smi, or it lists no GPU): CPU build"
  if [ -n "$ME_CUDA" ] || [ -n "$TORCH_INDEX_URL" ]; then
    PLAN_GPU="not looked for: ME_CUDA='${ME_CUDA}' TORCH_INDEX_URL='${TORCH_INDEX_URL}' given"
  elif detect_gpu; then
    local entry wheel needs
    for entry in $CUDA_WHEELS; do
      wheel=${entry%%:*}; needs=${entry#*:}
      if [ -n "$DRIVER_CUDA" ] && version_at_least "$DRIVER_CUDA" "$needs"; then
        TORCH_INDEX_URL="https://download.pytorch.org/whl/$wheel"
        ME_CUDA=1
        TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$GPU_CAPS}
        export TORCH_CUDA_ARCH_LIST
        PLAN_GPU="$GPU_NAMES (compute capability $GPU_CAPS), driver CUDA $DRIVER_CUDA: CUDA build ($wheel)"
        break
      fi
    done
    if [ -z "$TORCH_INDEX_URL" ]; then
      PLAN_GPU="$GPU_NAMES, but the driver's CUDA '${DRIVER_CUDA:-unknown}' is older than 12.6, which the torch CUDA wheels need: CPU build (update the driver for the GPU build)"
    fi
  fi
  ME_CUDA=${ME_CUDA:-0}
}

# "<version> cpu|cuda" of the venv's torch, from its metadata (importing torch takes seconds): the CPU wheels carry
# a +cpu local version; PyPI's plain Linux wheel and the +cuXYZ ones are CUDA builds.
torch_build() {
  "$VENV/bin/python" -c "from importlib.metadata import version; v = version('torch'); print(v, 'cpu' if v.endswith('+cpu') else 'cuda')" 2>/dev/null
}

print_plan() {
  local extras=${1:-}
  log "plan: GPU: $PLAN_GPU"
  [ -x "$VENV/bin/python" ] && log "plan: virtual environment $VENV (exists)" || log "plan: virtual environment $VENV (create with $PYTHON)"
  log "plan: torch $TORCH_SPEC from ${TORCH_INDEX_URL:-PyPI}${TORCH_BUILD:+ (installed: $TORCH_BUILD)}$(cpu_torch_in_cuda_plan && echo ': the CPU build is replaced, MinkowskiEngine rebuilt')"
  if [ "$ME_CUDA" = 1 ]; then
    log "plan: MinkowskiEngine $ME_VERSION with CUDA for TORCH_CUDA_ARCH_LIST='${TORCH_CUDA_ARCH_LIST:-torch default}', nvcc: $(nvcc_verdict)"
  else
    log "plan: MinkowskiEngine $ME_VERSION CPU-only build"
  fi
  log "plan: pix2point$extras and its dependencies (pyproject.toml)"
}

# True when this run installs CUDA torch into a venv that holds a CPU torch (a workstation's first GPU install).
cpu_torch_in_cuda_plan() { [ "$ME_CUDA" = 1 ] && [ -n "$TORCH_INDEX_URL" ] && [ "${TORCH_BUILD##* }" = cpu ]; }

replace_cpu_torch() {
  cpu_torch_in_cuda_plan || return 0
  log "replacing the CPU torch with $TORCH_SPEC from $TORCH_INDEX_URL; MinkowskiEngine is rebuilt for it"
  "$VENV/bin/pip" uninstall -q -y torch minkowskiengine
}

main() {
  choose_build
  TORCH_BUILD=$(torch_build || true)  # "<version> <cuda version|cpu>", empty without a venv or torch
  print_plan "${1:-}"
  if [ "$DRY_RUN" = 1 ]; then return; fi
  ensure_openblas
  ensure_venv
  replace_cpu_torch
  ensure_torch
  ensure_minkowski
  if [ -f pyproject.toml ]; then ensure_package "${1:-}"; fi
}

main "$@"
