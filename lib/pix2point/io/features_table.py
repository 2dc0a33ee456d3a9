"""The `features2d` artefact: frozen-teacher feature maps of the kept frames, one Parquet shard per scene.

    <artefact>/features/<scene>.parquet   columns scene, frame, features (fixed_shape_tensor float16 [C, H, W])

Schema metadata: teacher, layer, stride, channels, input_width, input_height (the size the color image
was resized to before the teacher), mean, std (the teacher's input normalisation), frame_step.
A color pixel (u, v) of a W x H color image lies at feature cell
(u * input_width / W / stride, v * input_height / H / stride).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from pix2point.io.arrow import read_metadata, tensor_column_to_numpy

FEATURES_DIR = "features"


def shard_path(features_dir: Path, scene: str) -> Path:
    return features_dir / FEATURES_DIR / f"{scene}.parquet"


def shard_scenes(features_dir: Path) -> list[str]:
    return sorted(path.stem for path in (features_dir / FEATURES_DIR).glob("*.parquet"))


def kept_frames(features_dir: Path) -> dict[str, list[int]]:
    """Scene -> the frame ids that have teacher features (the frames downstream stages use)."""
    return {
        scene: pq.read_table(shard_path(features_dir, scene), columns=["frame"])["frame"].to_pylist()
        for scene in shard_scenes(features_dir)
    }


def feature_metadata(features_dir: Path) -> dict[str, object]:
    """Teacher, layer, stride, channels, input size and normalisation, decoded from JSON where needed."""
    raw = read_metadata(shard_path(features_dir, shard_scenes(features_dir)[0]))
    return {key: _maybe_json(value) for key, value in raw.items()}


def read_scene_features(features_dir: Path, scene: str) -> tuple[np.ndarray, np.ndarray]:
    """([F] frame ids, [F, C, H, W] float16 features) of one scene."""
    table = pq.read_table(shard_path(features_dir, scene), columns=["frame", "features"])
    return table["frame"].to_numpy(), tensor_column_to_numpy(table["features"])


def _maybe_json(value: str) -> object:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value
