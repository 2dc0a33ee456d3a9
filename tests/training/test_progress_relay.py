"""The progress relay: workers' lines reach the driver's log in order, and the relay ends with its block
(the driver marks the end after the workers' last line, instead of polling for it)."""

import logging
import threading

import pytest
import ray

from pix2point.training.runtime import progress


@ray.remote(num_cpus=0)
def put_lines(queue, count: int) -> None:
    for index in range(count):
        queue.put(f"line {index}")


def test_workers_lines_are_logged_in_order_and_the_relay_ends_with_its_block(ray_runtime, caplog):
    finished = threading.Event()

    def stage() -> None:
        with progress.relay() as queue:
            ray.get(put_lines.remote(queue, 5))
        finished.set()

    with caplog.at_level(logging.INFO, logger=progress.log.name):
        thread = threading.Thread(target=stage, daemon=True)
        thread.start()
        thread.join(timeout=progress._WAIT_SECONDS / 2)  # a relay still waiting for lines would hold it
    assert finished.is_set(), "the relay did not end with its block"
    lines = [record.getMessage() for record in caplog.records if record.name == progress.log.name]
    assert lines == [f"line {index}" for index in range(5)]


def test_a_dead_queue_does_not_replace_the_trainings_own_error(ray_runtime):
    with pytest.raises(ValueError, match="fit's own failure"):
        with progress.relay() as queue:
            ray.kill(queue.actor)
            raise ValueError("fit's own failure")
