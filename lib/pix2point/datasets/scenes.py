"""`source` of the scenes stage -> its scene reader (io/dataset_reader.py `SceneReader`)."""

from __future__ import annotations

from typing import Literal

from pix2point.io import pointcept_scannet, s3dis, scannet
from pix2point.io.dataset_reader import SceneReader
from pix2point.synthetic import scene_source

SCENE_READERS: dict[str, SceneReader] = {
    "synthetic": scene_source,  # procedural RGB-D rooms written into the artefact
    "scannet": scannet,  # a ScanNet export: RGB-D frames and labelled scans
    "pointcept_scannet": pointcept_scannet,  # Pointcept's preprocessed ScanNet: points only
    "s3dis": s3dis,  # S3DIS rooms: points only
}

SceneSource = Literal[tuple(SCENE_READERS)]  # type: ignore[valid-type]  # the scenes stage's `source` values
