"""Patch an unpacked MinkowskiEngine 0.5.4 sdist so that its CUDA sources compile with CUDA 12.x and 13.x.

Usage: python scripts/patch_minkowski_cuda12.py SOURCE_DIR   (run by scripts/install.sh when ME_CUDA=1)

Known breakages, all in ME's sources rather than in pix2point:

1. The thrust shipped with CUDA 12 (CCCL) no longer includes its algorithm headers transitively, so
   `thrust::device`, `remove_if`, `unique`, `sort_by_key`, `reduce_by_key`, ... are undeclared
   ("namespace thrust has no member device"). Fix: include what each file uses.
   NVIDIA/MinkowskiEngine#543, #594, #601 (the list of files), #638 (CUDA 12.8), PR #607 and #626;
   facebookresearch/ConvNeXt-V2#20.
2. ME vendors an old, unversioned copy of cuDF's nvtx3.hpp; CUDA >= 12.2 thrust/CUB include the versioned
   NVTX3 headers, so `nvtx3::domain` etc. become ambiguous (NVIDIA/MinkowskiEngine#614, #621). ME uses it
   for one profiling range (CUDF_FUNC_RANGE in concurrent_unordered_map.cuh), so drop that range and the
   include rather than disabling NVTX for the whole build.

3. setup.py finds BLAS through numpy.distutils unless `--blas=` is given, and pip hands `--build-option`s to
   the wheel build only, not to the metadata step before it; numpy.distutils is gone from numpy 2 on Python
   >= 3.12 (numpy's "Status of numpy.distutils and migration advice") and fails under setuptools' own
   distutils on 3.11. Fix: setup.py also takes the choice from the environment, ME_BLAS=openblas
   (scripts/install.sh sets it), in every step.
4. CUDA 13's CCCL 3.0 removed `thrust::unary_function` and `binary_function` (deprecated like C++17's
   std::unary_function), the base of `find_coordinate` in coordinate_map_functors.cuh ("namespace thrust has
   no member class unary_function"); the base only declared typedefs that nothing reads, so it goes.
   microsoft/onnxruntime#23506 did the same; NVIDIA/MinkowskiEngine#632 and PR #637 port ME to CUDA 13.
5. torch 2.13's ATen/cuda/CUDAUtils.h uses at::Tensor without including its definition ("incomplete type
   at::Tensor is not allowed", through c10::HeaderOnlyArrayRef<at::Tensor>); spmm.cu (and spmm.cuh, the
   convolution kernels) include it before any torch header that defines at::Tensor. Fix: include
   <ATen/core/Tensor.h> first. Seen here, compiling spmm.cu with nvcc 13.0 against PyPI's torch 2.13.0.
6. CCCL 3.0's cuda::std declares its own __to_address, which argument-dependent lookup finds for the hash map
   (its allocator's value type is a cuda::std::pair), so libstdc++'s unqualified __to_address call in
   shared_ptr's unique_ptr constructor is ambiguous ("more than one instance of overloaded function
   std::__to_address"; coordinate_map_gpu.cuh, CoordinateMapGPU::reserve assigns map_type::create()'s
   unique_ptr to a shared_ptr). Fix: build the shared_ptr from the released pointer and the unique_ptr's
   deleter, a constructor without that call. Seen here (nvcc 13.0, g++ 12).
7. CUDA 13's cudaMemPrefetchAsync takes the destination as a cudaMemLocation plus flags instead of a device
   id ("argument of type cudaStream_t is incompatible with parameter of type unsigned int"; the form CUDA
   12.2 added as cudaMemPrefetchAsync_v2). Fix: one helper in the vendored hash map (3 calls) that picks the
   form by CUDART_VERSION. Seen here (nvcc 13.0).

Idempotent: a second run changes nothing. A file or line that is not where 0.5.4 has it is an error
naming the file, so a different ME version fails here instead of halfway through a 10-minute nvcc build.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

THRUST_INCLUDES: dict[str, tuple[str, ...]] = {
    "src/3rdparty/concurrent_unordered_map.cuh": ("thrust/execution_policy.h",),
    "src/convolution_kernel.cuh": ("thrust/execution_policy.h",),
    "src/coordinate_map_gpu.cu": (
        "thrust/remove.h",
        "thrust/unique.h",
        "thrust/sequence.h",
        "thrust/for_each.h",
        "thrust/scan.h",
        "thrust/transform.h",
        "thrust/iterator/zip_iterator.h",
        "thrust/tuple.h",
    ),
    "src/coordinate_map_gpu.cuh": ("thrust/execution_policy.h", "thrust/reduce.h", "thrust/sequence.h", "thrust/sort.h"),
    "src/spmm.cu": (
        "thrust/execution_policy.h",
        "thrust/reduce.h",
        "thrust/sort.h",
        "thrust/iterator/zip_iterator.h",
        "thrust/tuple.h",
    ),
    "src/broadcast_kernel.cu": ("thrust/execution_policy.h", "thrust/fill.h", "thrust/sort.h"),
}

NVTX_FILE = "src/3rdparty/concurrent_unordered_map.cuh"
NVTX_LINES = (re.compile(r"^#include <cudf/detail/nvtx/ranges\.hpp>\n", re.M), re.compile(r"^\s*CUDF_FUNC_RANGE\(\);\n", re.M))

FIRST_INCLUDE = re.compile(r"^#include .*$", re.M)

CUDA_UTILS = "#include <ATen/cuda/CUDAUtils.h>\n"
PREFETCH_HELPER = """
// pix2point: patch_minkowski_cuda12.py fix 7. CUDA 13 takes the destination as a cudaMemLocation plus flags.
inline cudaError_t prefetch_to_device(const void *pointer, size_t bytes, int device, cudaStream_t stream)
{
#if CUDART_VERSION >= 13000
  cudaMemLocation location{};
  location.type = cudaMemLocationTypeDevice;
  location.id   = device;
  return cudaMemPrefetchAsync(pointer, bytes, location, 0, stream);
#else
  return cudaMemPrefetchAsync(pointer, bytes, device, stream);
#endif
}
"""

# Exact edits, file -> ((0.5.4's text, the fixed text), ...): fixes 3 to 7.
EDITS: dict[str, tuple[tuple[str, str], ...]] = {
    "setup.py": ((
        'BLAS, argv = _argparse("--blas", argv, False)\n',
        'BLAS, argv = _argparse("--blas", argv, False)\n'
        'if BLAS is False and os.environ.get("ME_BLAS"):  # pix2point: patch_minkowski_cuda12.py fix 3\n'
        '    BLAS = os.environ["ME_BLAS"]\n',
    ),),
    "src/coordinate_map_functors.cuh": ((
        "struct find_coordinate\n    : public thrust::unary_function<uint32_t,\n"
        "                                    thrust::pair<uint32_t, uint32_t>> {\n",
        "struct find_coordinate {\n",
    ),),
    "src/coordinate_map_gpu.cuh": ((
        "      m_map = map_type::create(\n"
        "          compute_hash_table_size(size, m_hashtable_occupancy),\n"
        "          m_unused_element, m_unused_key, m_hasher, m_equal, m_map_allocator);\n",
        "      {  // pix2point: patch_minkowski_cuda12.py fix 6\n"
        "        auto created = map_type::create(\n"
        "            compute_hash_table_size(size, m_hashtable_occupancy),\n"
        "            m_unused_element, m_unused_key, m_hasher, m_equal, m_map_allocator);\n"
        "        auto deleter = created.get_deleter();\n"
        "        m_map = std::shared_ptr<map_type>(created.release(), std::move(deleter));\n"
        "      }\n",
    ),),
    "src/3rdparty/concurrent_unordered_map.cuh": (
        ("#include <type_traits>\n", "#include <type_traits>\n" + PREFETCH_HELPER),
        ("      CUDA_TRY(\n        cudaMemPrefetchAsync(m_hashtbl_values, m_capacity * sizeof(value_type), dev_id, stream));\n"
         "    }\n    CUDA_TRY(cudaMemPrefetchAsync(this, sizeof(*this), dev_id, stream));\n",
         "      CUDA_TRY(\n        prefetch_to_device(m_hashtbl_values, m_capacity * sizeof(value_type), dev_id, stream));\n"
         "    }\n    CUDA_TRY(prefetch_to_device(this, sizeof(*this), dev_id, stream));\n"),
        ("        CUDA_TRY(\n          cudaMemPrefetchAsync(m_hashtbl_values, m_capacity * sizeof(value_type), dev_id, stream));\n",
         "        CUDA_TRY(\n          prefetch_to_device(m_hashtbl_values, m_capacity * sizeof(value_type), dev_id, stream));\n"),
    ),
    **{relative: ((CUDA_UTILS, "#include <ATen/core/Tensor.h>  // pix2point: patch_minkowski_cuda12.py fix 5\n" + CUDA_UTILS),)
       for relative in ("src/spmm.cu", "src/spmm.cuh", "src/convolution_kernel.cu", "src/convolution_gpu.cu",
                        "src/convolution_transpose_gpu.cu", "src/broadcast_gpu.cu")},
}


def add_includes(text: str, headers: tuple[str, ...], path: Path) -> str:
    missing = [h for h in headers if f"#include <{h}>" not in text]
    if not missing:
        return text
    anchor = FIRST_INCLUDE.search(text)
    if anchor is None:
        raise SystemExit(f"{path}: no #include line to put the thrust includes before")
    block = "".join(f"#include <{h}>\n" for h in missing)
    return text[: anchor.start()] + block + text[anchor.start() :]


def drop_nvtx_range(text: str, path: Path) -> str:
    for line in NVTX_LINES:
        text, count = line.subn("", text)
        if count > 1:
            raise SystemExit(f"{path}: expected one line matching {line.pattern!r}, found {count}")
    if "CUDF_FUNC_RANGE" in text or "nvtx" in text.lower():
        raise SystemExit(f"{path}: still refers to NVTX after patching; not the MinkowskiEngine 0.5.4 source")
    return text


def apply_edits(text: str, edits: tuple[tuple[str, str], ...], path: Path) -> str:
    for before, after in edits:
        if after in text:
            continue
        if text.count(before) != 1:
            raise SystemExit(f"{path}: expected once {before.splitlines()[0]!r}...; not the MinkowskiEngine 0.5.4 source")
        text = text.replace(before, after)
    return text


def patch(source: Path) -> list[Path]:
    """Patch the tree in place; returns the files that changed."""
    if not (source / "setup.py").is_file():
        raise SystemExit(f"{source}: not a MinkowskiEngine source tree (no setup.py)")
    changed = []
    for relative in sorted(set(THRUST_INCLUDES) | {NVTX_FILE} | set(EDITS)):
        path = source / relative
        if not path.is_file():
            raise SystemExit(f"{path}: missing; expected in the MinkowskiEngine 0.5.4 sdist")
        text = path.read_text()
        patched = apply_edits(text, EDITS.get(relative, ()), path)
        patched = add_includes(patched, THRUST_INCLUDES.get(relative, ()), path)
        if relative == NVTX_FILE:
            patched = drop_nvtx_range(patched, path)
        if patched != text:
            path.write_text(patched)
            changed.append(path)
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="unpacked MinkowskiEngine-0.5.4 directory")
    changed = patch(parser.parse_args().source)
    print(f"[patch_minkowski_cuda12] patched {len(changed)} files: {', '.join(p.name for p in changed) or 'none (already patched)'}")


if __name__ == "__main__":
    main()
