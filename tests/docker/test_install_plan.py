"""scripts/install.sh chooses the CUDA build on a host with an NVIDIA driver (issue 15.7): its --dry-run plan,
with a stub `nvidia-smi` (and `nvcc`) on PATH. No GPU here; the plan is what `make run` would do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)  # the venv running the tests: torch is a CPU build here

NVIDIA_SMI = """#!/bin/sh
case "$*" in
  *query-gpu=name*) printf 'NVIDIA H200\\nNVIDIA H200\\n' ;;
  *query-gpu=compute_cap*) printf '9.0\\n9.0\\n' ;;
  *) printf '| NVIDIA-SMI 570.86.15    Driver Version: 570.86.15    CUDA Version: %s |\\n' "{cuda}" ;;
esac
"""


def plan(tmp_path: Path, cuda: str | None, nvcc: str | None = "12.8", **env: str) -> str:
    """The --dry-run plan with a stub nvidia-smi reporting driver CUDA `cuda` (None: no nvidia-smi) and a stub
    nvcc of release `nvcc` (None: no nvcc)."""
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    if cuda is not None:
        (stubs / "nvidia-smi").write_text(NVIDIA_SMI.replace("{cuda}", cuda))
    if nvcc is not None:
        (stubs / "nvcc").write_text(f"#!/bin/sh\necho 'Cuda compilation tools, release {nvcc}, V{nvcc}.93'\n")
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("ME_CUDA", "TORCH_INDEX_URL", "TORCH_CUDA_ARCH_LIST", "PIX2POINT_CPU", "CUDA_HOME")}
    # This machine has a CUDA toolkit: its nvcc is hidden (PATH and CUDA_LOCATIONS) so that only the stub counts.
    system_path = [folder for folder in os.environ["PATH"].split(os.pathsep) if not (Path(folder) / "nvcc").exists()]
    environment.update(PATH=os.pathsep.join([str(stubs), *system_path]), VENV=str(VENV),
                       CUDA_LOCATIONS=str(tmp_path / "no-cuda"), **env)
    done = subprocess.run(["bash", "scripts/install.sh", "--dry-run"], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "installing" not in done.stdout and "building" not in done.stdout  # a dry run changes nothing
    return done.stdout


def test_a_gpu_host_gets_cuda_torch_and_minkowskiengine_built_for_its_gpus(tmp_path):
    output = plan(tmp_path, cuda="12.8")
    assert "GPU: NVIDIA H200 (compute capability 9.0), driver CUDA 12.8: CUDA build (cu128)" in output
    assert "torch torch==2.13.0 from https://download.pytorch.org/whl/cu128" in output
    assert "(installed: 2.13.0+cpu cpu): the CPU build is replaced, MinkowskiEngine rebuilt" in output
    assert f"MinkowskiEngine 0.5.4 with CUDA for TORCH_CUDA_ARCH_LIST='9.0', nvcc: {tmp_path / 'bin' / 'nvcc'} (CUDA 12.8)" in output


def test_an_older_driver_gets_the_older_wheel_and_a_too_old_one_the_cpu_build(tmp_path):
    assert "download.pytorch.org/whl/cu126" in plan(tmp_path, cuda="12.6")
    output = plan(tmp_path, cuda="12.2")
    assert "driver's CUDA '12.2' is older than 12.6" in output and "MinkowskiEngine 0.5.4 CPU-only build" in output


def test_no_driver_or_an_explicit_choice_keeps_what_was_asked(tmp_path):
    output = plan(tmp_path, cuda=None)
    assert "GPU: none found" in output and "torch torch==2.13.0 from PyPI" in output and "CPU-only build" in output
    assert "CPU-only build" in plan(tmp_path, cuda="12.8", PIX2POINT_CPU="1")
    # The CUDA image sets ME_CUDA=1 at build time, where no GPU is visible: its choice stands.
    output = plan(tmp_path, cuda=None, ME_CUDA="1", TORCH_INDEX_URL="https://download.pytorch.org/whl/cu128")
    assert "not looked for" in output and "with CUDA for TORCH_CUDA_ARCH_LIST='torch default'" in output


def test_an_nvcc_of_another_cuda_major_version_than_the_wheel_is_replaced_by_the_pypi_toolkit(tmp_path):
    output = plan(tmp_path, "13.0", nvcc="13.0")  # a CUDA 13 driver runs the cu128 wheel; CUDA 13's nvcc cannot build for it
    assert (f"nvcc: {tmp_path / 'bin' / 'nvcc'} is CUDA 13.0, the torch wheel CUDA 12: the CUDA 12.8 toolkit from PyPI "
            "(nvidia-cuda-nvcc-cu12==12.8.* nvidia-cuda-runtime-cu12==12.8.* nvidia-cuda-cccl-cu12==12.8.*") in output


def test_a_gpu_host_without_nvcc_plans_the_toolkit_from_pypi_with_cuda_home_in_the_venv(tmp_path):
    """Issue 25.1: `make run` on a GPU node without a CUDA toolkit builds MinkowskiEngine with CUDA all the same,
    with nvcc and the headers from NVIDIA's PyPI packages laid out as CUDA_HOME inside the venv."""
    assert not (VENV / "cuda" / "bin" / "nvcc").exists()
    output = plan(tmp_path, cuda="12.8", nvcc=None)
    assert "MinkowskiEngine 0.5.4 with CUDA for TORCH_CUDA_ARCH_LIST='9.0'" in output
    assert (f"nvcc: NOT FOUND: the CUDA 12.8 toolkit from PyPI (nvidia-cuda-nvcc-cu12==12.8.* "
            f"nvidia-cuda-runtime-cu12==12.8.* nvidia-cuda-cccl-cu12==12.8.* nvidia-cublas-cu12 nvidia-cusparse-cu12 "
            f"nvidia-cusolver-cu12 nvidia-curand-cu12) into {VENV}, CUDA_HOME={VENV}/cuda") in output
    # A CUDA 13 wheel (TORCH_INDEX_URL .../cu130) takes the CUDA 13 packages, one tree behind the cuda-toolkit metapackage.
    output = plan(tmp_path, cuda=None, nvcc=None, ME_CUDA="1", TORCH_INDEX_URL="https://download.pytorch.org/whl/cu130")
    assert "the CUDA 13.0 toolkit from PyPI (cuda-toolkit[nvcc,cccl,cudart,cublas,cusparse,cusolver,curand]==13.0.*)" in output


def unpack(build_dir: Path, sdist: Path) -> str:
    """install.sh's unpack_minkowski_sdist into `build_dir`, the functions sourced as build_cuda_wheel.sh does."""
    done = subprocess.run(["bash", "-c", 'source scripts/install.sh && unpack_minkowski_sdist "$1"', "unpack",
                           str(build_dir)], cwd=ROOT, env={**os.environ, "ME_SDIST": str(sdist)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_kept_build_folder_resumes_with_the_objects_it_finished(tmp_path):
    """ME_BUILD_DIR: the CUDA build takes 10-40 min; a stopped one resumes in the same tree, whose build/ folder
    holds what ninja finished, instead of unpacking a fresh copy over it."""
    import tarfile

    tree = tmp_path / "sdist" / "MinkowskiEngine-0.5.4"
    tree.mkdir(parents=True)
    (tree / "setup.py").write_text("# MinkowskiEngine's setup.py\n")
    sdist = tmp_path / "MinkowskiEngine-0.5.4.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        archive.add(tree, arcname=tree.name)

    build_dir = tmp_path / "build"
    (build_dir / ".unpack.stopped" / "MinkowskiEngine-0.5.4").mkdir(parents=True)  # left by a stopped unpack: no tree
    assert "resuming" not in unpack(build_dir, sdist)
    unpacked = build_dir / "MinkowskiEngine-0.5.4"
    assert (unpacked / "setup.py").read_text() == "# MinkowskiEngine's setup.py\n"
    assert not list(build_dir.glob(".unpack.[!s]*"))  # its own unpack folder is gone once moved in

    (unpacked / "setup.py").write_text("# patched\n")
    (unpacked / "build").mkdir()
    (unpacked / "build" / "spmm.o").write_bytes(b"object")
    assert "resuming the build in" in unpack(build_dir, sdist)
    assert (unpacked / "setup.py").read_text() == "# patched\n"
    assert (unpacked / "build" / "spmm.o").read_bytes() == b"object"
