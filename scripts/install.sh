#!/usr/bin/env bash
# Installs everything pix2point needs into a virtual environment, skipping what is already there.
# Used by `make run`, `make test`, CI and docker/Dockerfile.cpu so that they cannot drift apart.
set -euo pipefail

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
# Switches for the images (docker/); the defaults are what `make run` does.
#   TORCH_INDEX_URL  an extra wheel index for torch, e.g. https://download.pytorch.org/whl/cu128 (a local
#                    version such as 2.13.0+cu128 sorts above PyPI's 2.13.0, so it wins)
#   ME_CUDA=1        build MinkowskiEngine with CUDA (needs nvcc; TORCH_CUDA_ARCH_LIST picks the GPUs)
TORCH_INDEX_URL=${TORCH_INDEX_URL:-}
ME_CUDA=${ME_CUDA:-0}
ME_VERSION=0.5.4
SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

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
  command -v nvcc >/dev/null || [ -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ] \
    || { echo "ME_CUDA=1 but no nvcc (PATH or \$CUDA_HOME/bin)" >&2; exit 1; }
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

main() {
  ensure_openblas
  ensure_venv
  ensure_torch
  ensure_minkowski
  if [ -f pyproject.toml ]; then ensure_package "${1:-}"; fi
}

main "$@"
