"""The whole-in-memory loaders training used before the streamed samples, kept as the references the streamed
paths are tested against (production trains on the streamed paths only):

- `PretrainFrames`: PPKT samples read scene by scene (every kept frame's map, all pairs, all points of a
  scene to serve one frame); the streamed path is io/samples_table.py + training/pretraining/frame_stream.py. A frame's
  point cloud is the set of scan points the `pairs` stage found visible in it, so every point of a sample
  has a pixel to be matched with.
- `load_object_views` / `sample_batch`: I2P-MAE's whole training split in memory and a batch drawn from it;
  the streamed path is training/object_samples.py + training/i2p_mae_data.streamed_batch.
- `limited_labels`: the segmentation training scenes with their label budget, all in memory; the streamed
  path is training/finetuning/segmentation_data.SceneSource.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pix2point.io.features_table import feature_metadata, read_scene_features, read_scene_mirrored_features
from pix2point.io.objects_table import read_objects
from pix2point.io.pairs_table import read_scene_pairs
from pix2point.io.samples_table import FrameSample
from pix2point.io.scenes_table import ScenePoints, read_frames, read_points
from pix2point.io.views_table import read_views
from pix2point.training.i2p_mae_data import MAEBatch, check_views_match, point_views, stacked_batch
from pix2point.training.finetuning.label_budget import LabelUnit
from pix2point.training.param_groups import SaliencyDistribution
from pix2point.training.finetuning.segmentation_data import budget_scenes, with_label_budget


@dataclass(frozen=True)
class _SceneData:
    xyz: np.ndarray
    rgb: np.ndarray
    frame_rows: dict[int, slice]  # frame id -> its rows in the (frame-sorted) pairs
    point_index: np.ndarray
    pixels: np.ndarray
    features: dict[int, np.ndarray]
    features_mirrored: dict[int, np.ndarray] | None
    image_size: dict[int, tuple[int, int]]


class PretrainFrames:
    """The kept frames of `scenes` that have pairs; scene data is loaded on first use and cached."""

    def __init__(self, scenes_dir: Path, features_dir: Path, pairs_dir: Path, scenes: list[str], cached_scenes: int = 64):
        self.scenes_dir, self.features_dir, self.pairs_dir = scenes_dir, features_dir, pairs_dir
        metadata = feature_metadata(features_dir)
        self.teacher_channels = int(metadata["channels"])
        self.mirrored = bool(metadata.get("mirrored", False))
        self._load = functools.lru_cache(maxsize=cached_scenes)(self._load_scene)
        self.index = [(scene, frame) for scene in scenes for frame in self._frames_with_pairs(scene)]
        if not self.index:
            raise ValueError(f"no kept frame of scenes {scenes} has pixel-point pairs in {pairs_dir}")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, position: int) -> FrameSample:
        scene, frame = self.index[position]
        data = self._load(scene)
        rows = data.frame_rows[frame]
        points = data.point_index[rows]
        return FrameSample(
            xyz=data.xyz[points], rgb=data.rgb[points], pixels=data.pixels[rows],
            image_size=data.image_size[frame], features=data.features[frame],
            features_mirrored=None if data.features_mirrored is None else data.features_mirrored[frame],
        )

    def _frames_with_pairs(self, scene: str) -> list[int]:
        return [frame for frame, rows in self._load(scene).frame_rows.items() if rows.stop > rows.start]

    def _load_scene(self, scene: str) -> _SceneData:
        points = read_points(self.scenes_dir, scene)
        pairs = read_scene_pairs(self.pairs_dir, scene)
        frame_ids, feature_maps = read_scene_features(self.features_dir, scene)
        # Pairs are sorted by frame: each frame's rows are one contiguous slice.
        starts = np.searchsorted(pairs.frame, frame_ids, side="left")
        stops = np.searchsorted(pairs.frame, frame_ids, side="right")
        sizes = {f.frame: f.color_size for f in read_frames(self.scenes_dir, [scene])}
        return _SceneData(
            xyz=points.xyz, rgb=points.rgb,
            frame_rows={int(f): slice(int(a), int(b)) for f, a, b in zip(frame_ids, starts, stops)},
            point_index=pairs.point_index.astype(np.int64), pixels=pairs.pixel.astype(np.int64),
            features=dict(zip(frame_ids.tolist(), feature_maps)),
            features_mirrored=(dict(zip(frame_ids.tolist(), read_scene_mirrored_features(self.features_dir, scene)))
                               if self.mirrored else None),
            image_size={int(f): sizes[int(f)] for f in frame_ids},
        )


@dataclass(frozen=True)
class ObjectViews:
    points: np.ndarray  # [M, N, 3] float32
    saliency: np.ndarray | None  # [M, N] float32: the mean of the 3 views' saliency at each point
    features: np.ndarray | None  # [M, N, V * C] float16: view 0's C channels, then view 1's, then view 2's

    @property
    def feature_channels(self) -> int | None:
        return None if self.features is None else self.features.shape[-1]


def load_object_views(objects_dir: Path, views_dir: Path | None,
                      saliency_distribution: SaliencyDistribution = "reference") -> ObjectViews:
    """The whole training split in memory."""
    objects = read_objects(objects_dir, "train")
    if views_dir is None:
        return ObjectViews(objects.points, None, None)
    check_views_match(objects_dir, views_dir)
    views = read_views(views_dir, "train")
    saliency, features = point_views(views.features, views.saliency, saliency_distribution)
    return ObjectViews(objects.points, saliency, features)


def sample_batch(data: ObjectViews, size: int, rng: np.random.Generator, scale_range: tuple[float, float],
                 translate: float) -> MAEBatch:
    """A batch drawn from the whole split in memory (the pre-streaming path, kept for tests)."""
    picks = np.sort(rng.choice(len(data.points), size=min(size, len(data.points)), replace=False))
    return stacked_batch(data.points[picks], None if data.saliency is None else data.saliency[picks],
                         None if data.features is None else data.features[picks], rng, scale_range, translate)


@dataclass(frozen=True)
class LabelledScene:
    name: str
    points: ScenePoints  # labels already reduced to the kept share (IGNORE_LABEL elsewhere)


def limited_labels(scenes_dir: Path, budget: float, unit: LabelUnit, seed: int) -> list[LabelledScene]:
    """The training scenes with a label budget, all in memory (the reference the streamed scenes are tested
    against): a fraction of whole scenes, a fraction of each scene's points, or a number of labelled points
    per scene."""
    return [LabelledScene(name, with_label_budget(name, read_points(scenes_dir, name), budget, unit, seed))
            for name in budget_scenes(scenes_dir, budget, unit, seed)]
