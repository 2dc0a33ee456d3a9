"""TensorBoard event files of a training run, in the stage's artefact: `<out>/tensorboard/<run>/events.*`, so
`tensorboard --logdir <artefacts>` shows every run of every training stage (as Pointcept, SLidR and the
Point-MAE family log theirs). Written by rank 0 only; tags `train/loss`, `train/lr`, `val/...`, `test/...`.
"""

from __future__ import annotations

from pathlib import Path

import ray.train
from tensorboardX import SummaryWriter

TENSORBOARD_DIR = "tensorboard"


class Scalars:
    """Scalars of one run, by optimiser step. `first_step` > 0 continues a resumed run: events an earlier
    attempt wrote at or after it are dropped (SummaryWriter's purge_step), so no step appears twice."""

    def __init__(self, out: Path, run: str, first_step: int = 0):
        rank_zero = ray.train.get_context().get_world_rank() == 0
        self._writer = SummaryWriter(str(Path(out) / TENSORBOARD_DIR / run), purge_step=first_step or None) if rank_zero else None

    def add(self, step: int, values: dict[str, float]) -> None:
        if self._writer is not None:
            for tag, value in values.items():
                self._writer.add_scalar(tag, value, step)

    def add_rows(self, rows: list[dict], prefix: str = "train/") -> None:
        """History rows {"step": s, name: value, ...}: every number becomes `<prefix><name>` at step s."""
        for row in rows:
            self.add(row["step"], {f"{prefix}{name}": value for name, value in row.items()
                                   if name != "step" and isinstance(value, (int, float))})

    def close(self) -> None:
        """Flush the event file; call before the artefact is committed."""
        if self._writer is not None:
            self._writer.close()
