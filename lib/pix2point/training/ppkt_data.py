"""PPKT training samples read scene by scene: the whole-scene loader training used before the per-frame
samples table (io/samples_table.py, streamed by training/frame_stream.py).

One kept RGB-D frame = the scene points it sees, their pixels and the teacher's map. A frame's point cloud
is the set of scan points the `pairs` stage found visible in it (as PointContrast and PPKT pretrain on
per-frame partial scans), so every point of a sample has a pixel to be matched with. This loader reads a
whole scene (every kept frame's map, all pairs, all points) to serve one frame; it stays as the reference
the streamed samples are tested against and as the baseline bench/scale.py replays.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pix2point.io.features_table import feature_metadata, read_scene_features, read_scene_mirrored_features
from pix2point.io.pairs_table import read_scene_pairs
from pix2point.io.samples_table import FrameSample
from pix2point.io.scenes_table import read_frames, read_points


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
