"""scripts/patch_minkowski_cuda12.py on a small tree laid out like the MinkowskiEngine 0.5.4 sdist."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "patch_minkowski_cuda12.py"
spec = importlib.util.spec_from_file_location("patch_minkowski_cuda12", SCRIPT)
patcher = importlib.util.module_from_spec(spec)
spec.loader.exec_module(patcher)

# The opening of each file as 0.5.4 has it (licence header cut short).
SOURCES = {
    "src/3rdparty/concurrent_unordered_map.cuh": (
        "#ifndef CONCURRENT_UNORDERED_MAP_CUH\n#define CONCURRENT_UNORDERED_MAP_CUH\n\n"
        "#include <cudf/detail/nvtx/ranges.hpp>\n#include <hash/hash_allocator.cuh>\n#include <thrust/count.h>\n\n"
        "#include <type_traits>\n\n"
        "  static auto create(size_type capacity)\n  {\n    CUDF_FUNC_RANGE();\n    using Self = int;\n  }\n"
        "    if (cudaSuccess == status && isPtrManaged(hashtbl_values_ptr_attributes)) {\n"
        "      CUDA_TRY(\n        cudaMemPrefetchAsync(m_hashtbl_values, m_capacity * sizeof(value_type), dev_id, stream));\n"
        "    }\n    CUDA_TRY(cudaMemPrefetchAsync(this, sizeof(*this), dev_id, stream));\n"
        "        CUDA_TRY(cudaGetDevice(&dev_id));\n"
        "        CUDA_TRY(\n          cudaMemPrefetchAsync(m_hashtbl_values, m_capacity * sizeof(value_type), dev_id, stream));\n"
        "#endif\n"
    ),
    "src/convolution_kernel.cuh": "#ifndef CONVOLUTION_CUH\n#define CONVOLUTION_CUH\n\n#include <array>\n#endif\n",
    "src/convolution_kernel.cu": "#include \"math_functions.cuh\"\n\n#include <ATen/cuda/CUDAUtils.h>\n#include <torch/extension.h>\n",
    "src/coordinate_map_gpu.cu": " * of the code.\n */\n#include \"coordinate_map_functors.cuh\"\n#include <thrust/sort.h>\n",
    "src/coordinate_map_gpu.cuh": (
        "#define COORDINATE_MAP_GPU_CUH\n\n#include \"3rdparty/concurrent_unordered_map.cuh\"\n"
        "      m_map = map_type::create(\n          compute_hash_table_size(size, m_hashtable_occupancy),\n"
        "          m_unused_element, m_unused_key, m_hasher, m_equal, m_map_allocator);\n"
    ),
    "src/spmm.cu": " */\n#include \"gpu.cuh\"\n#include <cusparse.h>\n\n#include <ATen/cuda/CUDAContext.h>\n#include <ATen/cuda/CUDAUtils.h>\n",
    "src/spmm.cuh": "#include \"gpu.cuh\"\n\n#include <ATen/cuda/CUDAContext.h>\n#include <ATen/cuda/CUDAUtils.h>\n",
    "src/convolution_gpu.cu": "#include \"convolution_cpu.cpp\"\n\n#include <ATen/cuda/CUDAUtils.h>\n",
    "src/convolution_transpose_gpu.cu": "#include \"utils.hpp\"\n\n#include <ATen/cuda/CUDAUtils.h>\n",
    "src/broadcast_gpu.cu": "#include \"broadcast_kernel.cuh\"\n\n#include <ATen/cuda/CUDAUtils.h>\n",
    "src/broadcast_kernel.cu": "#define GPU_BROADCAST\n\n#include \"allocators.cuh\"\n",
    "src/coordinate_map_functors.cuh": (
        "#include <thrust/pair.h>\n\ntemplate <typename coordinate_type, typename map_type>\nstruct find_coordinate\n"
        "    : public thrust::unary_function<uint32_t,\n                                    thrust::pair<uint32_t, uint32_t>> {\n"
        "  using mapped_type = typename map_type::mapped_type;\n};\n"
    ),
}


# The lines of 0.5.4's setup.py around its BLAS choice.
SETUP = ('CPU_ONLY, argv = _argparse("--cpu_only", argv)\nBLAS, argv = _argparse("--blas", argv, False)\n'
         'BLAS_INCLUDE_DIRS, argv = _argparse("--blas_include_dirs", argv, False, is_list=True)\n')


def _tree(root: Path) -> Path:
    (root / "setup.py").parent.mkdir(parents=True, exist_ok=True)
    (root / "setup.py").write_text(SETUP)
    for relative, text in SOURCES.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def test_adds_thrust_includes_before_the_first_include_and_drops_the_nvtx_range(tmp_path: Path):
    root = _tree(tmp_path / "MinkowskiEngine-0.5.4")
    changed = patcher.patch(root)
    assert len(changed) == len(SOURCES) + 1  # and setup.py
    spmm = (root / "src/spmm.cu").read_text()
    assert spmm.index("#include <thrust/sort.h>") < spmm.index('#include "gpu.cuh"')
    for relative, headers in patcher.THRUST_INCLUDES.items():
        text = (root / relative).read_text()
        assert all(text.count(f"#include <{header}>") == 1 for header in headers), relative
    hashmap = (root / "src/3rdparty/concurrent_unordered_map.cuh").read_text()
    assert "CUDF_FUNC_RANGE" not in hashmap and "nvtx" not in hashmap
    assert "using Self = int;" in hashmap and "#include <thrust/count.h>" in hashmap
    for relative in ("src/spmm.cu", "src/spmm.cuh", "src/convolution_kernel.cu"):
        text = (root / relative).read_text()
        assert text.index("#include <ATen/core/Tensor.h>") < text.index("#include <ATen/cuda/CUDAUtils.h>"), relative
    assert "cudaMemPrefetchAsync(m_" not in hashmap and hashmap.count("prefetch_to_device(") == 4  # 3 calls, 1 helper
    assert "m_map = std::shared_ptr<map_type>(created.release()" in (root / "src/coordinate_map_gpu.cuh").read_text()
    functors = (root / "src/coordinate_map_functors.cuh").read_text()
    assert "unary_function" not in functors and "struct find_coordinate {\n  using mapped_type" in functors


def test_second_run_changes_nothing(tmp_path: Path):
    root = _tree(tmp_path / "me")
    patcher.patch(root)
    before = {relative: (root / relative).read_text() for relative in [*SOURCES, "setup.py"]}
    assert patcher.patch(root) == []
    assert before == {relative: (root / relative).read_text() for relative in [*SOURCES, "setup.py"]}


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path):
    root = _tree(tmp_path / "me")
    (root / "src/spmm.cu").unlink()
    with pytest.raises(SystemExit, match="spmm.cu: missing"):
        patcher.patch(root)


def test_a_different_nvtx_use_is_an_error(tmp_path: Path):
    root = _tree(tmp_path / "me")
    path = root / "src/3rdparty/concurrent_unordered_map.cuh"
    path.write_text(path.read_text().replace("CUDF_FUNC_RANGE();", "nvtx3::thread_range r{};"))
    with pytest.raises(SystemExit, match="still refers to NVTX"):
        patcher.patch(root)


def test_not_a_source_tree(tmp_path: Path):
    with pytest.raises(SystemExit, match="no setup.py"):
        patcher.patch(tmp_path)


def test_setup_takes_the_blas_choice_from_the_environment_in_every_step(tmp_path: Path):
    """pip's metadata step gets no --build-option, and numpy.distutils (setup.py's BLAS search) is gone on
    Python 3.12: ME_BLAS must reach setup.py there too."""
    root = _tree(tmp_path / "me")
    patcher.patch(root)
    namespace = {"os": __import__("os"), "argv": [], "_argparse": lambda pattern, argv, *rest, **options: (False, argv)}
    import os
    os.environ["ME_BLAS"] = "openblas"
    try:
        exec((root / "setup.py").read_text(), namespace)
    finally:
        del os.environ["ME_BLAS"]
    assert namespace["BLAS"] == "openblas"
