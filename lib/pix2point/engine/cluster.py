"""Connecting to Ray: a given cluster address, or an embedded local Ray on this machine."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def connect_ray(address: str | None) -> None:
    """Connect once: to `address` (or RAY_ADDRESS, as inside `ray job submit`), else start a local Ray."""
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        log.info("connecting to Ray at %s", address)
        ray.init(address=address)
    else:
        log.info("starting an embedded local Ray with %d CPUs", os.cpu_count() or 1)
        ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False)
