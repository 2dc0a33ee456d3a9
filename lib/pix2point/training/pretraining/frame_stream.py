"""PPKT's sample source for the shared stream (training/runtime/sample_stream.py): the training split's kept frames,
each read with targeted row-group reads (io/samples_table.FrameReader), in the view PPKT's 2D flip drew.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pix2point.io.samples_table import FrameReader, SampleRef
from pix2point.training.runtime.sample_order import rank_flips
from pix2point.training.runtime.sample_stream import Arrays


@dataclass(frozen=True)
class StreamSpec:
    """What the reader actors need to turn a step into samples; small (the sample catalogue is arrays)."""

    pairs_dir: Path
    features_dir: Path
    flip_2d: bool  # the data path draws PPKT's 2D flip and reads only the map of the view it drew
    scenes: tuple[str, ...]
    scene_of: np.ndarray  # [N] int32 index into scenes
    frame: np.ndarray  # [N] int32
    row_group: np.ndarray  # [N] int32
    features_row_group: np.ndarray  # [N] int32
    features_row: np.ndarray  # [N] int32
    seed: int
    per_rank: int
    world: int

    @classmethod
    def from_refs(cls, refs: Sequence[SampleRef], **fields) -> StreamSpec:
        scenes = tuple(sorted({ref.scene for ref in refs}))
        index = {scene: i for i, scene in enumerate(scenes)}
        column = lambda values: np.array(values, np.int32)  # noqa: E731
        return cls(scenes=scenes, scene_of=column([index[r.scene] for r in refs]), frame=column([r.frame for r in refs]),
                   row_group=column([r.row_group for r in refs]),
                   features_row_group=column([r.features_row_group for r in refs]),
                   features_row=column([r.features_row for r in refs]), **fields)

    def ref(self, sample: int) -> SampleRef:
        return SampleRef(self.scenes[self.scene_of[sample]], int(self.frame[sample]), int(self.row_group[sample]),
                         int(self.features_row_group[sample]), int(self.features_row[sample]))

    def __len__(self) -> int:
        return len(self.frame)

    def reader(self) -> FlippedFrames:
        return FlippedFrames(self)


class FlippedFrames:
    """Reads a frame in the view the flip drew for it: (seed, step, rank, slot) decide, as
    training/runtime/sample_order.rank_flips says, so a resumed run meets the same views."""

    def __init__(self, spec: StreamSpec):
        self.spec = spec
        self.frames = FrameReader(spec.pairs_dir, spec.features_dir)

    @property
    def bytes_read(self) -> int:
        return self.frames.bytes_read

    def read(self, sample: int, step: int, rank: int, slot: int) -> Arrays:
        mirrored = self.spec.flip_2d and bool(rank_flips(self.spec.seed, step, rank, self.spec.per_rank)[slot])
        return self.frames.read(self.spec.ref(sample), mirrored).arrays()
