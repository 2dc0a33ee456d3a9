"""Connecting to Ray: a given cluster address, or an embedded local Ray on this machine."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)
_started_here = False  # whether connect_ray started the Ray it connected to (release_ray then stops it)


def connect_ray(address: str | None) -> None:
    """Connect once: to `address` (or RAY_ADDRESS, as inside `ray job submit`), else start a local Ray."""
    global _started_here
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        log.info("connecting to Ray at %s", address)
        ray.init(address=address)
    else:
        log.info("starting an embedded local Ray with %d CPUs", os.cpu_count() or 1)
        # The dashboard process serves Ray's state API, which Ray Train's placement-group cleaner polls; without
        # it the cleaner logs "Failed to query Ray Train Controller actor state" every few seconds.
        with _own_address() as own:
            ray.init(address="local", num_cpus=os.cpu_count() or 1, _node_ip_address=own, include_dashboard=True,
                     dashboard_host=own, dashboard_port=_free_port(own))
        _started_here = True


@contextmanager
def _own_address() -> Iterator[str]:
    """While an embedded Ray starts: its GCS port chosen here, and RAY_ADDRESS naming it in the environment its
    processes inherit. Ray's state API, which Ray Train's placement-group cleaner calls inside the cluster,
    otherwise looks for "the" local Ray and fails when another run's embedded Ray is up on the same host."""
    host = "127.0.0.1"
    port = _free_port(host)
    chosen = {"RAY_GCS_SERVER_PORT": str(port), "RAY_ADDRESS": f"{host}:{port}"}
    before = {name: os.environ.get(name) for name in chosen}
    os.environ.update(chosen)
    try:
        yield host
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def release_ray() -> None:
    """Stop the embedded Ray that connect_ray started, if any (a Ray it joined, or found running, stays)."""
    global _started_here
    if _started_here:
        import ray

        ray.shutdown()
        _started_here = False


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]
