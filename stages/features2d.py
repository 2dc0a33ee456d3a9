"""Stage `features2d`: feature maps of a frozen 2D teacher for the kept frames of every scene.

The artefact is described in pix2point/io/features_table.py. Work fans out as `num_workers` Ray tasks, each
loading the teacher once for a group of scenes; each task streams back one progress item per batch, so the
driver shows a single bar over all frames. Inside a task, background threads decode and resize the next
batches while the teacher runs on the current one.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationInfo, field_validator, model_validator
from tqdm import tqdm

from pix2point.io.paths import AbsolutePath
from pix2point.io.features_table import FeatureShardWriter, features_schema
from pix2point.io.scenes_table import Frame, read_frames
from pix2point.models.teacher_layers import TeacherLayer, TeacherName, teacher_layer
from pix2point.parallel import check_gpus, cluster_cpus

if TYPE_CHECKING:  # torch and Ray are imported where the work runs: loading the pipeline must stay light
    import ray
    import torch

    from pix2point.models.teachers import Teacher


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # the frozen 2D network; PPKT/SLidR: ImageNet ResNet-50; ResNets need teacher_weights
    teacher: TeacherName = "efficientnet_lite0"
    teacher_weights: AbsolutePath | None = None  # needed by the ResNets: a torchvision state dict or a MoCo v2 checkpoint
    # unset: the teacher's default (efficientnet_lite0: stage5, ResNets: layer4), written in by validation so that
    # naming the default gives the same params, hence the same key
    layer: str | None = Field(None, validate_default=True)
    image_size: tuple[PositiveInt, PositiveInt] = (320, 240)  # (width, height) each color image is resized to
    frame_step: int = Field(1, ge=1)  # keep every k-th frame of each scene, counted in frame order
    batch_size: int = Field(16, ge=1)  # frames per teacher forward pass, never spanning two scenes
    # Frames per Parquet row group. One: a PPKT step reads a frame's map with one targeted row-group read
    # (io/samples_table.py); with 64, reading one frame decoded 64 (Parquet reads whole column chunks).
    row_group_size: int = Field(1, ge=1)
    # Ray tasks, each loading the teacher once; unset: one per `cpus_per_worker` CPUs of the cluster (one per GPU
    # with gpus_per_worker), at most one per scene.
    num_workers: int | None = Field(None, ge=1)
    # One by default: a task asking for k CPUs waits until k are free at once, which a cluster kept busy by 1-CPU
    # trainers never offers (a 2-CPU task waited 55 min in a default run); k 1-thread tasks also beat one k-thread one.
    cpus_per_worker: int = Field(1, ge=1)
    gpus_per_worker: float = Field(0, ge=0)  # > 0: the teacher runs on the task's GPU
    # Also store the teacher's map of each mirrored image (column features_mirrored), which PPKT's 2D flip
    # needs (SLidR flips the image before the teacher). Doubles the artefact's size and the teacher's work.
    mirrored: bool = True

    @field_validator("layer")
    @classmethod
    def _known_layer(cls, layer: str | None, info: ValidationInfo) -> str | None:
        teacher = info.data.get("teacher")  # absent when the teacher itself is invalid (reported on its own)
        return layer if teacher is None else teacher_layer(teacher, layer).name

    @model_validator(mode="after")
    def _check_layer_and_size(self) -> Params:
        layer = teacher_layer(self.teacher, self.layer)
        if any(side % layer.stride for side in self.image_size):
            raise ValueError(
                f"image_size {list(self.image_size)} must be multiples of the stride {layer.stride} "
                f"of {self.teacher} layer {layer.name}"
            )
        if self.teacher != "efficientnet_lite0" and self.teacher_weights is None:
            raise ValueError(f"teacher {self.teacher} needs teacher_weights (a torchvision or MoCo v2 checkpoint)")
        return self


@dataclass(frozen=True)
class FrameBatch:
    scene: str
    frames: np.ndarray  # [B] frame ids
    color_paths: list[Path]


@dataclass(frozen=True)
class BatchDone:
    frames: int


@dataclass(frozen=True)
class WorkerDone:
    frames: int
    seconds: float  # from the teacher being ready to the last shard written
    max_rss_mb: float  # peak resident memory of the task's process


def run(params: Params, inputs: dict[str, Path], out: Path) -> dict:
    import ray

    started = time.perf_counter()
    batches = plan_batches(read_frames(inputs["scenes"]), params.frame_step, params.batch_size)
    check_gpus("gpus_per_worker", params.gpus_per_worker)
    groups = group_scenes(batches, params.num_workers or default_workers(params.cpus_per_worker, params.gpus_per_worker))
    cpus = params.cpus_per_worker
    task = ray.remote(num_cpus=cpus, num_gpus=params.gpus_per_worker, max_retries=0)(extract_features)
    streams = [task.remote(group, params, out, cpus) for group in groups]
    reports = follow_streams(streams, total_frames=frame_count(batches))
    seconds = time.perf_counter() - started
    frames = sum(report.frames for report in reports)
    return {
        "frames": frames,
        "scenes": len({batch.scene for batch in batches}),
        "seconds": round(seconds, 3),
        "frames_per_second": round(frames / seconds, 2),
        "feature_shape": list(feature_shape(teacher_layer(params.teacher, params.layer), params.image_size)),
        "workers": len(groups),
        "cpus_per_worker": cpus,
        "worker_seconds": round(max((report.seconds for report in reports), default=0.0), 3),
        "worker_max_rss_mb": round(max((report.max_rss_mb for report in reports), default=0.0), 1),
    }


def plan_batches(frames: list[Frame], frame_step: int, batch_size: int) -> list[FrameBatch]:
    """Every `frame_step`-th frame of each scene in frame order, cut into batches that never span two scenes."""
    batches = []
    by_scene = sorted(frames, key=lambda frame: (frame.scene, frame.frame))
    for scene, scene_frames in groupby(by_scene, key=lambda frame: frame.scene):
        kept = list(scene_frames)[::frame_step]
        for start in range(0, len(kept), batch_size):
            chunk = kept[start:start + batch_size]
            batches.append(FrameBatch(scene, np.array([f.frame for f in chunk], np.int32), [f.color_path for f in chunk]))
    return batches


def group_scenes(batches: list[FrameBatch], num_groups: int) -> list[list[FrameBatch]]:
    """Whole scenes dealt to at most `num_groups` groups, largest scene first to the lightest group."""
    scenes: dict[str, list[FrameBatch]] = {}
    for batch in batches:
        scenes.setdefault(batch.scene, []).append(batch)
    groups: list[list[FrameBatch]] = [[] for _ in range(min(num_groups, len(scenes)))]
    loads = [0] * len(groups)
    for scene_batches in sorted(scenes.values(), key=frame_count, reverse=True):
        lightest = loads.index(min(loads))
        groups[lightest].extend(scene_batches)
        loads[lightest] += frame_count(scene_batches)
    return groups


def frame_count(batches: list[FrameBatch]) -> int:
    return sum(len(batch.frames) for batch in batches)


def extract_features(batches: list[FrameBatch], params: Params, out: Path,
                     cpus: int) -> Iterator[BatchDone | WorkerDone]:
    """The Ray task: teacher features of `batches` written as one shard per scene; yields progress."""
    import torch

    from pix2point.io.images import prefetched_image_batches
    from pix2point.models.teachers import build_teacher

    torch.set_num_threads(cpus)
    device = torch.device("cuda" if params.gpus_per_worker > 0 else "cpu")
    teacher = build_teacher(params.teacher, params.layer, params.teacher_weights).to(device)
    shape = feature_shape(teacher_layer(params.teacher, params.layer), params.image_size)
    schema = features_schema(shape, shard_metadata(teacher, params), params.mirrored)
    started = time.perf_counter()
    # On a GPU the forward pass is quick and decoding is the bottleneck, so it gets all the task's CPUs.
    decode_threads = cpus if device.type == "cuda" else 1
    images = prefetched_image_batches((batch.color_paths for batch in batches), params.image_size, decode_threads)
    for scene, scene_batches in groupby(zip(batches, images), key=lambda pair: pair[0].scene):
        with FeatureShardWriter(out, scene, schema, params.row_group_size) as shard:
            for batch, pixels in scene_batches:
                maps = [teacher_features(teacher, pixels, device)]
                if params.mirrored:
                    maps.append(teacher_features(teacher, mirror_images(pixels), device))
                shard.write(batch.frames, *maps)
                yield BatchDone(len(batch.frames))
    yield WorkerDone(
        frames=frame_count(batches),
        seconds=time.perf_counter() - started,
        max_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )


def teacher_features(teacher: Teacher, pixels: np.ndarray, device: torch.device) -> np.ndarray:
    """[B, H, W, 3] uint8 RGB -> [B, C, H / stride, W / stride] float16 teacher features."""
    import torch

    from pix2point.io.images import normalise_images

    with torch.inference_mode():
        images = torch.from_numpy(pixels).to(device, non_blocking=True)
        return teacher(normalise_images(images, teacher.mean, teacher.std)).half().cpu().numpy()


def mirror_images(pixels: np.ndarray) -> np.ndarray:
    """[B, H, W, 3] images mirrored left to right: column u becomes column W - 1 - u."""
    return np.ascontiguousarray(pixels[:, :, ::-1])


def shard_metadata(teacher: Teacher, params: Params) -> dict[str, object]:
    width, height = params.image_size
    return {
        "teacher": teacher.name, "layer": teacher.layer, "stride": teacher.stride, "channels": teacher.channels,
        "input_width": width, "input_height": height, "mean": list(teacher.mean), "std": list(teacher.std),
        "frame_step": params.frame_step, "mirrored": params.mirrored,
    }


CANCEL_WAIT_S = 60.0  # how long a failed stage waits for its cancelled tasks to unwind


def follow_streams(streams: list[ray.ObjectRefGenerator], total_frames: int) -> list[WorkerDone]:
    """Drive a progress bar from the tasks' progress items; returns each task's final report.

    A failing task cancels the others, waits (up to CANCEL_WAIT_S) for them to end, so each has removed the
    shard it was writing, and raises its error (a RayTaskError that is also the original type)."""
    import ray

    reports = []
    pending = list(streams)
    try:
        with tqdm(total=total_frames, desc="features2d", unit="frame") as progress:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for stream in ready:
                    item = next(stream, None)
                    if item is None:
                        continue
                    update = ray.get(item)
                    if isinstance(update, WorkerDone):
                        reports.append(update)
                    else:
                        progress.update(update.frames)
                    pending.append(stream)
    except BaseException:
        for stream in streams:
            ray.cancel(stream)
        # A cancelled task removes its half-written shard as it unwinds (FeatureShardWriter); without this
        # wait the error would reach the caller while another task still had a .partial file open.
        ray.wait([stream.completed() for stream in streams], num_returns=len(streams), timeout=CANCEL_WAIT_S)
        raise
    return reports


def feature_shape(layer: TeacherLayer, image_size: tuple[int, int]) -> tuple[int, int, int]:
    width, height = image_size
    return layer.channels, height // layer.stride, width // layer.stride


def default_workers(cpus_per_worker: int, gpus_per_worker: float) -> int:
    """As many tasks as the cluster runs at once: its GPUs / `gpus_per_worker` when the teacher runs on a GPU,
    else its CPUs / `cpus_per_worker` (at least 1)."""
    import ray

    if gpus_per_worker > 0:
        return max(1, int(ray.cluster_resources().get("GPU", 0) // gpus_per_worker))
    return max(1, cluster_cpus() // cpus_per_worker)
