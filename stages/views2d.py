"""Stage `views2d`: I2P-MAE's 2D targets. Each object of the `objects` artefact is seen in 3 orthographic
depth views (pix2point.geometry.orthographic); a frozen 2D teacher (pix2point.models.view_teachers) turns
each view into a feature map and a saliency map, both read at every point's pixel as if upsampled to the
image size. The artefact is described in pix2point/io/views_table.py.

Objects are cut into chunks of `objects_per_task` within a split, in objects.parquet's order; one Ray task
per chunk loads the teacher (a fraction of a second for EfficientNet-Lite0) and writes its chunk as a part
file; the driver then joins the parts, in order, into views.parquet (one row group per chunk), so neither
the driver nor a task ever holds more than a chunk of features.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from pix2point.geometry.camera import Interpolation
from pix2point.geometry.orthographic import VIEW_AXES, check_image_size, project_views
from pix2point.io.objects_table import objects_path, read_objects
from pix2point.io.paths import AbsolutePath
from pix2point.io.views_table import Views, ViewsWriter, views_path, views_schema
from pix2point.models.teacher_layers import (
    CLIP_IMAGE_SIZE,
    ViewTeacherName,
    is_clip_teacher,
    saliency_stride,
    view_teacher_layer,
)
from pix2point.parallel import check_gpus, map_tasks

if TYPE_CHECKING:  # torch is imported by the tasks that run the teacher: loading the pipeline stays light
    import torch

    from pix2point.models.view_teachers import ViewTeacher

PARTS_DIR = ".parts"


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    teacher: ViewTeacherName = "efficientnet_lite0"  # the frozen 2D network on the depth views; I2P-MAE: CLIP ViT-B/16
    teacher_weights: AbsolutePath | None = None  # CLIP: an open_clip ViT-B-16 checkpoint; ResNets: torchvision/MoCo
    # unset: efficientnet_lite0 stage3 (stride 8, 40 channels), ResNets layer4, CLIP its patch tokens; written in
    # by validation so that naming the default gives the same params, hence the same key
    layer: str | None = Field(None, validate_default=True)
    image_size: int = Field(224, ge=8)  # side of each square depth view
    splat: int = Field(5, ge=1)  # each point paints splat x splat pixels (odd)
    interpolation: Interpolation = "bilinear"  # how the maps are upsampled to the image (the paper: bicubic)
    batch_size: int = Field(16, ge=1)  # objects per teacher forward pass (3 images each)
    objects_per_task: int = Field(64, ge=1)  # one Ray task and one Parquet row group
    cpus_per_task: int = Field(1, ge=1)  # torch threads of each task
    gpus_per_task: float = Field(0, ge=0)  # Ray GPUs per task (a fraction shares one); > 0: the teacher runs on it

    @field_validator("layer")
    @classmethod
    def _known_layer(cls, layer: str | None, info: ValidationInfo) -> str | None:
        teacher = info.data.get("teacher")  # absent when the teacher itself is invalid (reported on its own)
        return layer if teacher is None else view_teacher_layer(teacher, layer).name

    @model_validator(mode="after")
    def _check_teacher_and_size(self) -> Params:
        layer = view_teacher_layer(self.teacher, self.layer)
        check_image_size(self.image_size, self.splat)
        stride = max(layer.stride, saliency_stride(self.teacher, self.layer))
        if self.image_size % stride:
            raise ValueError(f"image_size {self.image_size} must be a multiple of {stride}, the largest stride of "
                             f"teacher {self.teacher}'s feature layer {layer.name} and its saliency layer")
        if is_clip_teacher(self.teacher) and self.image_size != CLIP_IMAGE_SIZE:
            raise ValueError(f"teacher {self.teacher} needs image_size {CLIP_IMAGE_SIZE}, got {self.image_size}")
        if self.teacher != "efficientnet_lite0" and self.teacher_weights is None:
            raise ValueError(f"teacher {self.teacher} needs teacher_weights (a local weights file)")
        return self


@dataclass(frozen=True)
class ObjectChunk:
    index: int  # position among all chunks: parts are joined in this order
    split: str
    shapes: list[str]
    points: np.ndarray  # [M, N, 3] float32


def run(params: Params, inputs: dict[str, Path], out: Path) -> dict:
    started = time.perf_counter()
    chunks = plan_chunks(inputs["objects"], params.objects_per_task)
    check_gpus("gpus_per_task", params.gpus_per_task)
    parts = map_tasks(write_part, chunks, desc="views2d", num_cpus=params.cpus_per_task, num_gpus=params.gpus_per_task,
                      params=params, parts_dir=out / PARTS_DIR)
    join_parts(parts, views_path(out))
    shutil.rmtree(out / PARTS_DIR)
    seconds = time.perf_counter() - started
    objects = sum(len(chunk.shapes) for chunk in chunks)
    layer = view_teacher_layer(params.teacher, params.layer)
    return {
        "objects": objects,
        "views": len(VIEW_AXES),
        "seconds": round(seconds, 3),
        "objects_per_second": round(objects / seconds, 2),
        "feature_shape": [len(VIEW_AXES), int(chunks[0].points.shape[1]), layer.channels],
        "tasks": len(chunks),
        "size_mb": round(views_path(out).stat().st_size / 2**20, 2),
    }


def plan_chunks(objects_dir: Path, objects_per_task: int) -> list[ObjectChunk]:
    """The objects in objects.parquet's row order, cut into chunks of at most `objects_per_task` that never
    span two splits; a missing file or a non-finite point is an error naming the file (and the shapes)."""
    path = objects_path(objects_dir)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no objects table (is {objects_dir} an objects artefact?)")
    split_runs = [split for split, _ in groupby(pq.read_table(path, columns=["split"])["split"].to_pylist())]
    if len(split_runs) != len(set(split_runs)):
        raise ValueError(f"{path}: rows of a split are not contiguous ({split_runs}); rewrite it with stage objects")
    chunks: list[ObjectChunk] = []
    for split in split_runs:
        objects = read_objects(objects_dir, split)
        bad = ~np.isfinite(objects.points).all(axis=(1, 2))
        if bad.any():
            names = [shape for shape, is_bad in zip(objects.shapes, bad) if is_bad]
            raise ValueError(f"{path}: {len(names)} objects have non-finite points: {', '.join(names[:5])}")
        for start in range(0, len(objects.shapes), objects_per_task):
            stop = start + objects_per_task
            chunks.append(ObjectChunk(len(chunks), split, objects.shapes[start:stop], objects.points[start:stop]))
    if not chunks:
        raise ValueError(f"{path}: no objects")
    return chunks


def write_part(chunk: ObjectChunk, params: Params, parts_dir: Path) -> Path:
    """The Ray task: one chunk's views, written as a part file (one row group); returns its path."""
    import torch

    from pix2point.models.view_teachers import build_view_teacher

    torch.set_num_threads(params.cpus_per_task)
    device = torch.device("cuda" if params.gpus_per_task > 0 else "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("views2d: gpus_per_task > 0 but torch sees no CUDA device in this task")
    teacher = build_view_teacher(params.teacher, params.layer, params.teacher_weights).to(device)
    features, saliency, pixels = teacher_views(chunk.points, teacher, params, device)
    schema = views_schema(len(VIEW_AXES), chunk.points.shape[1], teacher.layer.channels, views_metadata(teacher, params))
    path = parts_dir / f"{chunk.index:06d}.parquet"
    with ViewsWriter(path, schema) as writer:
        writer.write(Views(features, saliency, pixels, chunk.shapes), [chunk.split] * len(chunk.shapes))
    return path


def teacher_views(points: np.ndarray, teacher: ViewTeacher, params: Params,
                  device: torch.device | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[M, N, 3] clouds -> features [M, V, N, C] float16, saliency [M, V, N] float32, pixels [M, V, N, 2] int16;
    the views are projected on the CPU and the teacher runs on `device` (default: the CPU)."""
    results = []
    for start in range(0, len(points), params.batch_size):
        views = project_views(points[start:start + params.batch_size], params.image_size, params.splat)
        results.append((*views_at_points(teacher, views.images(), views.pixels, params.interpolation, device),
                        views.pixels))
    features, saliency, pixels = zip(*results)
    return np.concatenate(features), np.concatenate(saliency), np.concatenate(pixels)


def views_at_points(teacher: ViewTeacher, images: np.ndarray, pixels: np.ndarray, interpolation: Interpolation,
                    device: torch.device | None = None) -> tuple[np.ndarray, np.ndarray]:
    """[B, V, S, S] depth images in (0, 1) and [B, V, N, 2] (u, v) pixels -> the teacher's features
    [B, V, N, C] (float16) and saliency [B, V, N] (float32, non-negative) at those pixels. The images and
    pixels go to `device` (the teacher's; default the CPU) once, the sampled values come back."""
    import torch

    device = device or torch.device("cpu")

    from pix2point.geometry.pixel_sampling import sample_at_pixels
    from pix2point.io.images import standardise_images

    batch, views, size = images.shape[:3]
    with torch.inference_mode():
        gray = torch.from_numpy(images).to(device).reshape(batch * views, 1, size, size)
        feature_maps, saliency_maps = teacher(standardise_images(gray.repeat(1, 3, 1, 1), teacher.mean, teacher.std))
        at = torch.from_numpy(pixels.astype(np.int64)).to(device).reshape(batch * views, -1, 2)
        u, v = at[..., 0], at[..., 1]
        features = sample_at_pixels(feature_maps, u, v, (size, size), interpolation)
        # Bilinear weights are convex, so maps stay within their cells' range; bicubic can overshoot a little.
        saliency = sample_at_pixels(saliency_maps[:, None], u, v, (size, size), interpolation)[..., 0].clamp(0, 1)
    count = pixels.shape[2]
    return (features.reshape(batch, views, count, -1).half().cpu().numpy(),
            saliency.reshape(batch, views, count).float().cpu().numpy())


def views_metadata(teacher: ViewTeacher, params: Params) -> dict[str, object]:
    return {
        "teacher": teacher.name, "layer": teacher.layer.name, "channels": teacher.layer.channels,
        "image_size": params.image_size, "splat": params.splat, "views": [list(axes) for axes in VIEW_AXES],
        "saliency": {"method": teacher.saliency.name, "description": teacher.saliency.description},
        "mean": list(teacher.mean), "std": list(teacher.std), "interpolation": params.interpolation,
    }


def join_parts(parts: list[Path], path: Path) -> None:
    """The part files, in order, as one table at `path` (one row group per part)."""
    schema = pq.read_schema(parts[0])
    with ViewsWriter(path, schema) as writer:
        for part in parts:
            writer.append(pq.read_table(part, schema=schema))
