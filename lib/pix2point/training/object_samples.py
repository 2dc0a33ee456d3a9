"""Object samples for the shared stream (training/runtime/sample_stream.py): one row of the objects artefact (and,
for I2P-MAE, the same row of the views2d artefact), read alone with a targeted row-group read.

objects.parquet and views.parquet are written with small row groups (io/objects_table.ROW_GROUP_ROWS,
io/views_table.VIEWS_ROW_GROUP_ROWS), so
reading an object costs its group, and a worker holds a few steps' objects however many the split has.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pix2point.io.arrow import tensor_column_to_numpy
from pix2point.io.objects_table import objects_path
from pix2point.io.row_groups import RowGroupReader
from pix2point.io.views_table import views_path
from pix2point.training.i2p_mae_data import point_views
from pix2point.training.param_groups import SaliencyDistribution
from pix2point.training.runtime.sample_stream import Arrays


@dataclass(frozen=True)
class ObjectSource:
    """A catalogue of objects: `rows[i]` is catalogue sample i's row in objects.parquet (0-based over the
    file; views.parquet's rows are the same objects in the same order)."""

    objects_dir: Path
    rows: np.ndarray  # [N] int64
    seed: int
    per_rank: int
    world: int
    views_dir: Path | None = None  # with views: each sample also carries its points' saliency and 2D features
    saliency_distribution: SaliencyDistribution = "reference"

    def __len__(self) -> int:
        return len(self.rows)

    def reader(self) -> ObjectReader:
        return ObjectReader(self)


class ObjectReader:
    """Reads one object: {"points": [N, 3] float32, "label": [] int16} and, with views, "saliency" [N]
    float32 and "features" [N, V * C] float16 (i2p_mae_data.point_views)."""

    def __init__(self, source: ObjectSource):
        self.source = source
        self._rows = RowGroupReader()

    @property
    def bytes_read(self) -> int:
        return self._rows.bytes_read

    def read(self, sample: int, step: int, rank: int, slot: int) -> Arrays:
        row = int(self.source.rows[sample])
        table = self._rows.read_row(objects_path(self.source.objects_dir), row, ["points", "label"])
        arrays = {"points": tensor_column_to_numpy(table["points"])[0],
                  "label": np.asarray(table["label"][0].as_py(), np.int16)}
        if self.source.views_dir is None:
            return arrays
        views = self._rows.read_row(views_path(self.source.views_dir), row, ["features", "saliency"])
        saliency, features = point_views(tensor_column_to_numpy(views["features"])[0],
                                         tensor_column_to_numpy(views["saliency"])[0], self.source.saliency_distribution)
        return {**arrays, "saliency": saliency, "features": features}
