"""`source` of the objects stage -> its object reader (io/dataset_reader.py `ObjectReader`)."""

from __future__ import annotations

from typing import Literal

from pix2point.io import modelnet, scanobjectnn, shapenet55
from pix2point.io.dataset_reader import ObjectReader
from pix2point.synthetic import object_source

OBJECT_READERS: dict[str, ObjectReader] = {
    "synthetic": object_source,  # procedural shapes written into the artefact
    "modelnet40": modelnet,  # modelnet40_normal_resampled, with normals
    "shapenet55": shapenet55,  # Point-BERT's ShapeNet55-34 (I2P-MAE's pretraining set)
    "scanobjectnn": scanobjectnn,  # ScanObjectNN's h5 files, one variant
}

ObjectSource = Literal[tuple(OBJECT_READERS)]  # type: ignore[valid-type]  # the objects stage's `source` values
