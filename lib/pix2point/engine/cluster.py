"""Connecting to Ray: a given cluster address, or an embedded local Ray on this machine."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any

log = logging.getLogger(__name__)
_started_here = False  # whether connect_ray started the Ray it connected to (release_ray then stops it)
_started_at = 0.0  # when it started it (time.time()): the processes created since are that Ray's
# How long release_ray waits for the processes of the Ray it stopped (its workers and agents exit once they
# see their raylet gone) before it kills the ones left.
_EXIT_GRACE_SECONDS = 5.0


def no_implicit_ray() -> AbstractContextManager[None]:
    """While the block runs, RAY_ENABLE_AUTO_CONNECT=0: a Ray API called while no Ray is connected raises
    instead of starting a local Ray of its own (ray/_private/auto_init_hook.py). After Ctrl-C has stopped the
    run's Ray, a stage's thread that goes on calling Ray would otherwise start a second one and train on in it.
    Ray reads the variable when it is first imported, so the block must be where ray is first imported; the
    process keeps the setting after it, the environment of processes started later does not."""
    return _environment(RAY_ENABLE_AUTO_CONNECT="0")


def start_local_ray(**init_options: Any) -> None:
    """`ray.init(address="local", **init_options)`: a new Ray on this machine, whatever RAY_ADDRESS, another
    run's Ray or the address file a `ray start` left in Ray's temp folder (/tmp/ray/ray_current_cluster, still
    there after its processes were killed) say. A bare `ray.init(num_cpus=...)` would try to join those, and
    fails with "When connecting to an existing cluster, num_cpus and num_gpus must not be provided"."""
    import ray

    ray.init(address="local", **init_options)


def connect_ray(address: str | None) -> None:
    """Connect once: to `address` (or RAY_ADDRESS, as inside `ray job submit`), else start a local Ray."""
    global _started_here, _started_at
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        log.info("connecting to Ray at %s", address)
        ray.init(address=address)
    else:
        log.info("starting an embedded local Ray with %d CPUs", os.cpu_count() or 1)
        _started_here, _started_at = True, time.time()  # before it starts: Ctrl-C meanwhile must stop it too
        # The dashboard process serves Ray's state API, which Ray Train's placement-group cleaner polls; without
        # it the cleaner logs "Failed to query Ray Train Controller actor state" every few seconds.
        with _own_address() as own:
            start_local_ray(num_cpus=os.cpu_count() or 1, _node_ip_address=own, include_dashboard=True,
                            dashboard_host=own, dashboard_port=_free_port(own))


def _own_address() -> AbstractContextManager[str]:
    """While an embedded Ray starts: its GCS port chosen here, and RAY_ADDRESS naming it in the environment its
    processes inherit. Ray's state API, which Ray Train's placement-group cleaner calls inside the cluster,
    otherwise looks for "the" local Ray and fails when another run's embedded Ray is up on the same host.
    Yields the host to bind."""
    host = "127.0.0.1"
    port = _free_port(host)
    return _environment(RAY_GCS_SERVER_PORT=str(port), RAY_ADDRESS=f"{host}:{port}", yielding=host)


@contextmanager
def _environment(yielding: Any = None, **values: str) -> Iterator[Any]:
    """os.environ with `values` set while the block runs, as it was after; yields `yielding`."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield yielding
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def release_ray() -> None:
    """Stop the embedded Ray that connect_ray started, if any (a Ray it joined, or found running, stays), and
    return once every process it ran is gone: ray.shutdown waits for the processes it started itself (raylet,
    GCS, dashboard), not for what those started (workers, the raylet's agents, the dashboard's modules),
    which otherwise outlive the run by up to a minute."""
    global _started_here
    if _started_here:
        import ray
        import psutil  # after ray, which brings a copy (ray/thirdparty_files) where it is not installed

        ours = [process for process in psutil.Process().children(recursive=True) if _created_since(process, _started_at)]
        ray.shutdown(wait_for_processes=True)
        _started_here = False
        left = _still_running(ours, _EXIT_GRACE_SECONDS)
        if left:  # not a console line: nothing the user has to act on
            log.debug("killing the processes the stopped Ray left: pids %s", [process.pid for process in left])
        for process in left:
            with suppress(psutil.NoSuchProcess):
                process.kill()
        _still_running(left, _EXIT_GRACE_SECONDS)


def _created_since(process, moment: float) -> bool:
    """Whether the psutil.Process started at `moment` or later (one gone meanwhile: no)."""
    import psutil

    try:
        return process.create_time() >= moment - 1  # create_time has a clock tick's resolution
    except psutil.NoSuchProcess:
        return False


def _still_running(processes: list, seconds: float) -> list:
    """The psutil.Processes still running after up to `seconds` (an exited one its parent has not reaped yet, a
    zombie, counts as gone: it holds nothing)."""
    import psutil

    def running(process) -> bool:
        try:
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + seconds
    while (alive := [process for process in processes if running(process)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]
