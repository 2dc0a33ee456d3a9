"""TensorBoard event files of a training run, in the stage's artefact: `<out>/tensorboard/<run>/events.*`, so
`tensorboard --logdir <artefacts>` shows every run of every training stage (as Pointcept, SLidR and the
Point-MAE family log theirs). Written by rank 0 only; tags `train/loss`, `train/lr`, `val/...`, `test/...`.

Each step's event is on disk (flushed to the OS) before `add` returns, not in tensorboardX's SummaryWriter queue,
which writes every 120 s: a run killed after a checkpoint would otherwise lose the curve up to that checkpoint,
which its resumed attempt does not write again.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import ray.train
from tensorboardX.event_file_writer import EventsWriter
from tensorboardX.proto.event_pb2 import Event, SessionLog
from tensorboardX.proto.summary_pb2 import Summary

TENSORBOARD_DIR = "tensorboard"


class Scalars:
    """Scalars of one run, by optimiser step. `steps_done` > 0 continues a run resumed from a checkpoint taken
    after that many steps: events an earlier attempt wrote for later steps are dropped (TensorBoard's purge at
    step `steps_done` + 1, the first step the resumed attempt writes), so no step appears twice or goes missing."""

    def __init__(self, out: Path, run: str, steps_done: int = 0):
        self._events = None
        if ray.train.get_context().get_world_rank() == 0:
            directory = Path(out) / TENSORBOARD_DIR / run
            directory.mkdir(parents=True, exist_ok=True)
            # The pid in the name: a resumed attempt never reopens (and truncates) its predecessor's file.
            self._events = EventsWriter(str(directory / "events"), filename_suffix=f".{os.getpid()}")
            if steps_done:
                self._append(Event(step=steps_done + 1, session_log=SessionLog(status=SessionLog.START)))
                self._events.flush()

    def add(self, step: int, values: dict[str, float]) -> None:
        """`values` (tag -> number) at `step`, on disk when this returns."""
        if self._events is not None:
            self._append_values(step, values)
            self._events.flush()

    def add_rows(self, rows: list[dict], prefix: str = "train/") -> None:
        """History rows {"step": s, name: value, ...}: every number becomes `<prefix><name>` at step s."""
        if self._events is not None:
            for row in rows:
                self._append_values(row["step"], {f"{prefix}{name}": value for name, value in row.items()
                                                  if name != "step" and isinstance(value, (int, float))})
            self._events.flush()

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
            self._events = None

    def _append_values(self, step: int, values: dict[str, float]) -> None:
        if values:
            self._append(Event(step=step, summary=Summary(value=[
                Summary.Value(tag=tag, simple_value=float(value)) for tag, value in values.items()])))

    def _append(self, event: Event) -> None:
        event.wall_time = time.time()
        self._events.write_event(event)
