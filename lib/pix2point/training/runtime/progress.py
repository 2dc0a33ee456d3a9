"""Training progress for the console: one line per checkpoint or epoch (step, loss, steps/s, ETA), sent by
rank 0 only, so each line appears once however many workers train.

Workers run in Ray actors whose output goes to Ray's logs, so `distributed.fit` opens a `relay`: a Ray
queue the workers put their lines into and a driver thread that logs each one as `pix2point.progress`
(which the engine's console shows). A training loop run outside `fit` prints its lines instead.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import ray
import ray.train
from ray.util.queue import Empty, Queue

from pix2point import stage_progress

log = logging.getLogger(__name__)
_WAIT_SECONDS = 60.0  # a get that saw no line returns after this and waits again
_END = "\0end"  # put by the driver after the workers' last line
_sink: Queue | None = None  # set in a worker by the loop `sending_to` wraps


@dataclass
class Progress:
    """A run of `total_steps` optimiser steps, continued from `first_step` (0, or a resumed checkpoint's)."""

    run: str
    total_steps: int
    first_step: int = 0
    started: float = field(default_factory=time.perf_counter)

    def line(self, step: int, **values: float) -> str:
        """`<run>: step s/S, loss 1.234, ..., 2.5 steps/s, ETA 1m05s`; rate and ETA over the steps this process ran."""
        elapsed = time.perf_counter() - self.started
        rate = (step - self.first_step) / elapsed if elapsed > 0 and step > self.first_step else 0.0
        eta = _duration((self.total_steps - step) / rate) if rate else "?"
        shown = ", ".join(f"{name} {value:.4g}" for name, value in values.items())
        return f"{self.run}: step {step}/{self.total_steps}, {shown}, {rate:.2f} steps/s, ETA {eta}"

    def report(self, step: int, **values: float) -> None:
        """Send `line(...)` to the console, from rank 0 only."""
        if ray.train.get_context().get_world_rank() == 0:
            send(self.line(step, **values))


def send(line: str) -> None:
    if _sink is None:
        print(line, flush=True)
    else:
        _sink.put(line)


def sending_to(sink: Queue, train_loop: Callable[[Any], None]) -> Callable[[Any], None]:
    """`train_loop` that, in each worker, sends its progress lines into `sink`."""

    def train_loop_with_progress(config: Any) -> None:
        _install(sink)
        train_loop(config)

    return train_loop_with_progress


def _install(sink: Queue | None) -> None:
    global _sink
    _sink = sink


@contextmanager
def relay() -> Iterator[Queue]:
    """A queue for workers' lines; a driver thread logs them (INFO, `pix2point.progress`) until the block ends."""
    queue = Queue(actor_options={"num_cpus": 0})  # no CPU: it must never wait behind the workers' placement group
    # In the caller's context: the lines also reach the live view of the stage that trains (stage_progress.py).
    thread = threading.Thread(target=contextvars.copy_context().run, args=(_log_lines, queue),
                              name="pix2point-progress", daemon=True)
    thread.start()
    try:
        yield queue
    finally:
        # After Ctrl-C the driver may have shut Ray down already: a call into it then ends the process with
        # exit code 1 (Ray's core worker), so the relay leaves Ray alone.
        if ray.is_initialized():
            try:
                queue.put(_END, timeout=_WAIT_SECONDS)  # after every line the workers put: they are done by now
            except Exception:  # noqa: BLE001 - a dead queue actor must not replace the training's own error
                log.debug("progress relay: the end marker could not be put; the relay thread ends with the process",
                          exc_info=True)
            else:
                thread.join()
            queue.shutdown()


def _log_lines(queue: Queue) -> None:
    # A blocking get returns as soon as a line arrives; the end marker ends it. A short timeout would only add
    # polls: at 0.5 s they cost the queue actor 51 CPU-s of the default run's 2,927 (one in 60).
    while (line := _next(queue)) != _END:
        if line is not None:
            log.info(line)
            stage_progress.say(line)


def _next(queue: Queue) -> str | None:
    """The next line, None after a wait without one, `_END` at the end or once the queue (or Ray) is gone."""
    if not ray.is_initialized():  # shut down after Ctrl-C: calling into it would end the process
        return _END
    try:
        return queue.get(timeout=_WAIT_SECONDS)
    except Empty:
        return None
    except Exception:  # noqa: BLE001 - the queue actor died (or was shut down): no more lines can come
        log.debug("progress relay: the queue is gone", exc_info=True)
        return _END


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"
