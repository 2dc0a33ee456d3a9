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
#   ME_WHEEL_DIR     a folder of MinkowskiEngine CUDA wheels (scripts/build_cuda_wheel.sh writes them): one
#                    built for this torch and TORCH_CUDA_ARCH_LIST is installed instead of compiling, and a
#                    new build is left there
#   ME_SDIST         the MinkowskiEngine-0.5.4.tar.gz to build from (a machine without network); else from PyPI
#   ME_BUILD_DIR     where the CUDA build unpacks and compiles MinkowskiEngine, kept afterwards: a build that was
#                    stopped resumes there (ninja keeps every object it finished); else a temporary folder
# With an NVIDIA driver (`nvidia-smi` lists a GPU) and neither TORCH_INDEX_URL nor ME_CUDA set, this is
# docker/Dockerfile's path: CUDA 12.8 torch and MinkowskiEngine built with CUDA for the GPUs found. Without an
# nvcc of the torch wheel's CUDA version (CUDA_HOME, PATH, /usr/local/cuda), the toolkit's compiler and headers
# come from PyPI (NVIDIA's nvidia-cuda-nvcc-cu12 etc., cuda-toolkit for CUDA 13) into the venv, and CUDA_HOME
# is laid out from them at $VENV/cuda.
# `install.sh --dry-run [EXTRAS]` prints that plan and changes nothing. Sourced (scripts/build_cuda_wheel.sh,
# scripts/gpu_check.sh), it only defines its functions.
TORCH_INDEX_URL=${TORCH_INDEX_URL:-}
ME_CUDA=${ME_CUDA:-}
ME_VERSION=0.5.4
ME_WHEEL_DIR=${ME_WHEEL_DIR:-}
ME_SDIST=${ME_SDIST:-}
ME_BUILD_DIR=${ME_BUILD_DIR:-}
# The torch CUDA wheels tried, newest first, with the oldest driver CUDA each runs on (docker/Dockerfile: 12.8).
CUDA_WHEELS="cu128:12.8 cu126:12.6"
SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DRY_RUN=0

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

# MinkowskiEngine with CUDA: a wheel of ME_WHEEL_DIR built for this torch and these GPUs, else one built now
# (into ME_WHEEL_DIR when set, so the next install or image reuses it).
build_minkowski_cuda() {
  local dir=${ME_WHEEL_DIR:-$(mktemp -d)}
  if ! BUILT_WHEEL=$(matching_wheel "$dir"); then
    build_minkowski_wheel "$dir"
  fi
  log "installing $(basename "$BUILT_WHEEL")"
  "$VENV/bin/pip" install -q --no-deps "$BUILT_WHEEL"
  [ -n "$ME_WHEEL_DIR" ] || rm -rf "$dir"
}

# What a CUDA wheel is built for: torch's version (its CUDA in the local version or torch.version.cuda) and the
# GPUs' compute capabilities. A wheel's record of it lies beside it (<wheel>.build).
wheel_build_key() {
  local torch_build
  torch_build=$("$VENV/bin/python" -c "import torch; print(torch.__version__, 'cuda', torch.version.cuda)")
  echo "torch $torch_build arch ${TORCH_CUDA_ARCH_LIST:-torch default}"
}

# The wheel in $1 built for wheel_build_key, if any.
matching_wheel() {
  local wheel key
  key=$(wheel_build_key)
  for wheel in "$1"/MinkowskiEngine-"$ME_VERSION"-*.whl; do
    [ -f "$wheel" ] && [ -f "$wheel.build" ] && [ "$(cat "$wheel.build")" = "$key" ] && { echo "$wheel"; return; }
  done
  return 1
}

# Builds MinkowskiEngine with CUDA into a wheel in $1 (BUILT_WHEEL names it) for the venv's torch: the sdist
# (ME_SDIST, else PyPI's) unpacked, given the CUDA 12/13 source fixes (patch_minkowski_cuda12.py says which and
# why) and compiled with --force_cuda (an image build sees no GPU) by MAX_JOBS parallel nvcc/g++ jobs.
build_minkowski_wheel() {
  local out=$1 src=${ME_BUILD_DIR:-$(mktemp -d)}
  ensure_nvcc
  mkdir -p "$out" "$src"
  # --config-settings needs pip >= 22.1; a distribution's ensurepip may bring an older one.
  "$VENV/bin/pip" install -q "pip>=23.1"
  log "building MinkowskiEngine $ME_VERSION with CUDA for TORCH_CUDA_ARCH_LIST='${TORCH_CUDA_ARCH_LIST:-torch default}' ($(nvcc_verdict)), MAX_JOBS=${MAX_JOBS:-2}, in $src"
  unpack_minkowski_sdist "$src"
  # Idempotent, so a kept tree's sources keep their times and ninja rebuilds nothing it had finished.
  "$VENV/bin/python" "$SCRIPTS/patch_minkowski_cuda12.py" "$src/MinkowskiEngine-$ME_VERSION"
  local started=$SECONDS
  # ME_BLAS: patch_minkowski_cuda12.py's fix 3 (pip's metadata step gets no --build-option).
  ME_BLAS=openblas MAX_JOBS=${MAX_JOBS:-2} \
    "$VENV/bin/pip" wheel -q --no-deps --no-build-isolation --use-pep517 -w "$out" \
    --config-settings=--build-option=--force_cuda "$src/MinkowskiEngine-$ME_VERSION"
  BUILT_WHEEL=$(ls -t "$out"/MinkowskiEngine-"$ME_VERSION"-*.whl | head -n1)
  wheel_build_key >"$BUILT_WHEEL.build"
  log "built $BUILT_WHEEL ($(du -h "$BUILT_WHEEL" | cut -f1)) in $((SECONDS - started)) s"
  [ -n "$ME_BUILD_DIR" ] || rm -rf "$src"
}

# The sdist (ME_SDIST, else PyPI's) unpacked into $1, unless an earlier build left it there: pip builds a local
# folder in place, so its build/ folder, and every object ninja finished in it, survive a stopped build.
unpack_minkowski_sdist() {
  local src=$1
  if [ -f "$src/MinkowskiEngine-$ME_VERSION/setup.py" ]; then
    log "resuming the build in $src/MinkowskiEngine-$ME_VERSION (objects finished before are kept)"
    return
  fi
  if [ -n "$ME_SDIST" ]; then
    cp "$ME_SDIST" "$src/"
  else
    SETUPTOOLS_USE_DISTUTILS=stdlib "$VENV/bin/pip" download -q --no-deps --no-binary :all: --no-build-isolation \
      -d "$src" "minkowskiengine==$ME_VERSION"
  fi
  # Unpacked beside and moved in whole, so that a stopped unpack is not taken for a tree to resume.
  local unpacked
  unpacked=$(mktemp -d "$src/.unpack.XXXXXX")
  tar -xzf "$src/MinkowskiEngine-$ME_VERSION.tar.gz" -C "$unpacked"
  mv "$unpacked/MinkowskiEngine-$ME_VERSION" "$src/"
  rmdir "$unpacked"
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

# Where a system toolkit is looked for after CUDA_HOME and PATH (the tests point it elsewhere).
CUDA_LOCATIONS=${CUDA_LOCATIONS:-/usr/local/cuda}

# $CUDA_HOME's nvcc first (how a host with several toolkits picks one), then PATH's, then /usr/local/cuda's,
# then the PyPI toolkit's an earlier install laid out in the venv.
find_nvcc() {
  local candidate
  for candidate in ${CUDA_HOME:+"$CUDA_HOME/bin/nvcc"} "$(command -v nvcc 2>/dev/null)" "$CUDA_LOCATIONS/bin/nvcc" \
      "$VENV/cuda/bin/nvcc"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] && { echo "$candidate"; return; }
  done
  return 1
}

nvcc_release() { "$1" --version 2>/dev/null | sed -n 's/.*release \([0-9][0-9.]*\).*/\1/p' | head -n1; }

# The torch wheel's CUDA version (12.8): TORCH_INDEX_URL's cuXYZ, else the venv's torch; empty if neither says.
wheel_cuda() {
  local tag
  tag=$(printf '%s' "$TORCH_INDEX_URL" | sed -n 's/.*cu\([0-9][0-9]\)\([0-9]\)$/\1.\2/p')
  if [ -z "$tag" ] && [ -x "$VENV/bin/python" ]; then
    tag=$("$VENV/bin/python" -c "import torch; print(torch.version.cuda or '')" 2>/dev/null || true)
  fi
  printf '%s' "$tag"
}

# The nvcc to build MinkowskiEngine with, or why there is none: torch's extension builder needs the CUDA major
# version of nvcc and of the torch wheel to agree.
nvcc_verdict() {
  local nvcc release wheel_major
  nvcc=$(find_nvcc) || { echo "NOT FOUND"; return 1; }
  release=$(nvcc_release "$nvcc")
  wheel_major=$(wheel_cuda); wheel_major=${wheel_major%%.*}
  if [ -n "$wheel_major" ] && [ "${release%%.*}" != "$wheel_major" ]; then
    echo "$nvcc is CUDA ${release:-unknown}, the torch wheel CUDA $wheel_major"
    return 1
  fi
  echo "$nvcc (CUDA ${release:-unknown})"
}

# The PyPI packages of the toolkit parts MinkowskiEngine's build needs (nvcc, cudart, thrust/cub, the headers
# of the libraries torch's headers include) for CUDA $1 (12.8): NVIDIA's -cu12 packages; CUDA 13 ships them as
# one tree (nvidia/cu13) behind the cuda-toolkit metapackage's extras.
pypi_toolkit() {
  local cuda=$1 major=${1%%.*}
  if [ "$major" -ge 13 ]; then
    echo "cuda-toolkit[nvcc,cccl,cudart,cublas,cusparse,cusolver,curand]==$cuda.*"
  else
    echo "nvidia-cuda-nvcc-cu$major==$cuda.* nvidia-cuda-runtime-cu$major==$cuda.* nvidia-cuda-cccl-cu$major==$cuda.*" \
      "nvidia-cublas-cu$major nvidia-cusparse-cu$major nvidia-cusolver-cu$major nvidia-curand-cu$major"
  fi
}

# The toolkit an nvcc belongs to, in its own word (`nvcc --dryrun` prints _HERE_, its bin folder): PATH's nvcc
# may be a wrapper script outside the toolkit.
toolkit_root() {
  "$1" --dryrun -c -x cu /dev/null -o /dev/null 2>&1 | sed -n 's|^#\$ _HERE_=\(.*\)/bin/*$|\1|p' | head -n1
}

# Headers beyond nvcc's own that torch's CUDA headers (ATen/cuda/CUDAContext.h) and MinkowskiEngine include; a
# toolkit of nvcc and cudart alone (this project's build machine has one) lacks them.
BUILD_HEADERS="cuda_runtime.h cublas_v2.h cusparse.h cusolverDn.h"

missing_headers() {
  local header
  for header in $BUILD_HEADERS; do [ -e "$1/include/$header" ] || printf '%s ' "$header"; done
}

# nvcc for the build and CUDA_HOME for torch's extension builder (which otherwise takes PATH's nvcc's parent, then
# /usr/local/cuda): a matching toolkit found (nvcc_verdict) if it has the headers; one without them completed
# from the venv's nvidia packages (the CUDA torch wheel's dependencies bring cuBLAS's, cuSPARSE's, ...); else
# the toolkit of the wheel's CUDA version from PyPI.
ensure_nvcc() {
  local root cuda
  if nvcc_verdict >/dev/null; then
    root=$(toolkit_root "$(find_nvcc)")
    if [ -n "$root" ] && [ -z "$(missing_headers "$root")" ]; then
      export CUDA_HOME="$root" PATH="$root/bin:$PATH"
      return
    fi
    if [ -n "$root" ] && [ "$root" != "$VENV/cuda" ]; then
      log "$root lacks $(missing_headers "$root"): CUDA_HOME=$VENV/cuda, it and the venv's nvidia packages"
      lay_out_cuda_home "$root"
      [ -n "$(missing_headers "$CUDA_HOME")" ] || return 0
    fi
  fi
  cuda=$(wheel_cuda)
  [ -n "$cuda" ] || { echo "no nvcc matches the torch wheel, whose CUDA version is unknown: $(nvcc_verdict)" >&2; exit 1; }
  install_pypi_toolkit "$cuda"
  nvcc_verdict >/dev/null && [ -z "$(missing_headers "$CUDA_HOME")" ] \
    || { echo "the CUDA $cuda toolkit from PyPI is incomplete: $(nvcc_verdict); missing $(missing_headers "$CUDA_HOME")" >&2; exit 1; }
}

# The toolkit from PyPI into the venv, laid out as CUDA_HOME.
install_pypi_toolkit() {
  local cuda=$1
  log "installing the CUDA $cuda toolkit from PyPI: $(pypi_toolkit "$cuda")"
  # shellcheck disable=SC2046  # one word per package
  "$VENV/bin/pip" install -q $(pypi_toolkit "$cuda")
  lay_out_cuda_home ""
}

# CUDA_HOME=$VENV/cuda as torch's extension builder reads it (bin/nvcc, include/, lib/ with unversioned .so names
# for -lcudart -lcusparse): symlinks to the files of the toolkit $1 (if any; its folders become real ones, so
# nothing is ever written into it) and, over them, of the venv's nvidia/* packages, merged (CUDA 12 has one
# package folder per part, CUDA 13 one nvidia/cu13 tree).
lay_out_cuda_home() {
  local base=$1 nvidia part lib
  rm -rf "$VENV/cuda"
  mkdir -p "$VENV/cuda"
  [ -z "$base" ] || cp -rsL --remove-destination "$base/." "$VENV/cuda/"
  nvidia=$("$VENV/bin/python" -c "import nvidia; print(list(nvidia.__path__)[0])" 2>/dev/null || true)
  for part in ${nvidia:+"$nvidia"/*/}; do
    [ -d "$part/include" ] || [ -d "$part/bin" ] || continue
    cp -rsL --remove-destination "$part." "$VENV/cuda/"
  done
  # torch links against lib64 when there is one (a system toolkit's layout): the packages' libraries go there too.
  if [ -d "$VENV/cuda/lib64" ] && [ -d "$VENV/cuda/lib" ]; then
    cp -rsL --remove-destination "$VENV/cuda/lib/." "$VENV/cuda/lib64/"
  fi
  for lib in "$VENV"/cuda/lib*/lib*.so.[0-9]*; do
    [ -e "$lib" ] || continue
    [ -e "${lib%.so.*}.so" ] || ln -s "$(basename "$lib")" "${lib%.so.*}.so"
  done
  export CUDA_HOME="$VENV/cuda" PATH="$VENV/cuda/bin:$PATH"
}

# The plan's nvcc: the one found, or the PyPI toolkit that will be installed.
nvcc_plan() {
  local verdict cuda
  if verdict=$(nvcc_verdict); then echo "$verdict"; return; fi
  cuda=$(wheel_cuda)
  if [ -z "$cuda" ]; then
    echo "$verdict: the toolkit of the torch wheel's CUDA version from PyPI into $VENV, CUDA_HOME=$VENV/cuda"
    return
  fi
  echo "$verdict: the CUDA $cuda toolkit from PyPI ($(pypi_toolkit "$cuda")) into $VENV, CUDA_HOME=$VENV/cuda"
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
    log "plan: MinkowskiEngine $ME_VERSION with CUDA for TORCH_CUDA_ARCH_LIST='${TORCH_CUDA_ARCH_LIST:-torch default}'${ME_WHEEL_DIR:+ (a wheel of $ME_WHEEL_DIR built for them, if any)}, nvcc: $(nvcc_plan)"
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

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  if [ "${1:-}" = "--dry-run" ]; then DRY_RUN=1; shift; fi
  main "$@"
fi
