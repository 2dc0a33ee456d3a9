"""The object reader of `source: synthetic` (io/dataset_reader.py `ObjectFileReader`): procedural objects
(synthetic/objects.py) written as a ModelNet tree under the artefact's source/ folder, one Ray task per
class, and read back by the ModelNet reader (io/modelnet.py)."""

from __future__ import annotations

from pathlib import Path

from pix2point.io import modelnet
from pix2point.io.dataset_reader import ObjectSourceParams
from pix2point.parallel import map_tasks
from pix2point.synthetic import objects as synthetic_objects

ROOT_FOLDER = None  # written into the artefact
UP_AXIS = modelnet.UP_AXIS
LAYOUT = "file_per_object"
object_index = modelnet.object_index
read_object = modelnet.read_object


def write_source(root: Path, params: ObjectSourceParams) -> Path:
    """A ModelNet-layout tree of synthetic objects: shape numbers 1..train_per_class train, the next test."""
    synthetic = params.synthetic
    classes = synthetic_objects.CLASSES[: synthetic.num_classes]
    numbers = {
        "train": list(range(1, synthetic.train_per_class + 1)),
        "test": list(range(synthetic.train_per_class + 1, synthetic.train_per_class + synthetic.test_per_class + 1)),
    }
    split_shapes = {split: [modelnet.shape_id(c.name, n) for c in classes for n in nums] for split, nums in numbers.items()}
    synthetic_objects.write_index(root, [c.name for c in classes], split_shapes)
    map_tasks(
        synthetic_objects.write_class_shapes, list(range(len(classes))), desc="synthetic objects",
        root=root, numbers=numbers["train"] + numbers["test"], count=params.points_per_object, seed=synthetic.seed,
    )
    return root
