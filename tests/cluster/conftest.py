"""A real two-node Ray cluster on this machine, started with the `ray` CLI as a user would (`ray start`).

Each node is a `ray start --block` process in its own process group with its own temp dir. Teardown
signals those two processes (they stop what they started) and then ends any process still naming one
of the temp dirs, by pid. `ray stop` is never used: it stops every Ray process on the machine,
including the test session's own embedded Ray and anyone else's.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent
START_TIMEOUT_SECONDS = 180
START_LOG = "ray-start.log"


@dataclass(frozen=True)
class RayCluster:
    dashboard: str  # http://127.0.0.1:<port>, what `ray job submit --address` takes
    env: dict[str, str]

    def node_ids(self) -> set[str]:
        from ray.util.state import list_nodes

        return {node.node_id for node in list_nodes(address=self.dashboard) if node.state == "ALIVE"}


@pytest.fixture(scope="module")
def two_node_cluster():
    # Started from the activated venv, as the README says: the job's entrypoint (`python -m pix2point`) is the
    # venv's, found on the PATH the raylet passes down to the job.
    with ray_cluster({"PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}, nodes=2) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def head_outside_the_venv():
    """A one-node cluster started as `.venv/bin/ray start --head` with the venv not activated (not on PATH)."""
    path = os.pathsep.join(folder for folder in os.environ.get("PATH", "").split(os.pathsep)
                           if folder and Path(folder).resolve() != VENV_BIN.resolve())
    with ray_cluster({"PATH": path}, nodes=1) as cluster:
        yield cluster


@contextmanager
def ray_cluster(env_overrides: dict[str, str], nodes: int) -> Iterator[RayCluster]:
    """A head and `nodes - 1` workers, each `ray start`ed (by the venv's `ray`) with os.environ plus `env_overrides`."""
    # Short paths: Ray's Unix sockets live under the temp dir and socket paths are limited to ~100 bytes.
    temp_dirs = [Path(tempfile.mkdtemp(prefix="p2p-ray-", dir="/tmp")) for _ in range(nodes)]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", **env_overrides}
    gcs_port, dashboard_port = _free_port(), _free_port()
    cluster = RayCluster(f"http://127.0.0.1:{dashboard_port}", env)
    started: list[subprocess.Popen] = []
    try:
        started.append(_start_node(temp_dirs[0], env, "--head", f"--port={gcs_port}", f"--dashboard-port={dashboard_port}",
                                   f"--ray-client-server-port={_free_port()}", "--include-dashboard=true"))
        _wait_until(lambda: _answers(f"{cluster.dashboard}/api/version"), "the head's dashboard", started)
        for temp_dir in temp_dirs[1:]:
            started.append(_start_node(temp_dir, env, f"--address=127.0.0.1:{gcs_port}"))
        _wait_until(lambda: len(cluster.node_ids()) == nodes, f"{nodes} alive nodes", started)
    except Exception as error:
        _stop(started, temp_dirs, keep_logs=True)
        raise RuntimeError(f"{error}; `ray start` logs: {[str(temp_dir / START_LOG) for temp_dir in temp_dirs]}") from error
    try:
        yield cluster
    finally:
        _stop(started, temp_dirs)


def _start_node(temp_dir: Path, env: dict[str, str], *options: str) -> subprocess.Popen:
    # Ports that would otherwise default to fixed numbers (and clash with any other Ray on the machine).
    ports = [f"--dashboard-agent-listen-port={_free_port()}", f"--dashboard-agent-grpc-port={_free_port()}",
             f"--runtime-env-agent-port={_free_port()}", f"--metrics-export-port={_free_port()}"]
    command = [str(VENV_BIN / "ray"), "start", "--block", "--num-cpus=1", "--node-ip-address=127.0.0.1",
               f"--temp-dir={temp_dir}", "--disable-usage-stats", *ports, *options]
    with open(temp_dir / START_LOG, "w") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(nodes: list[subprocess.Popen], temp_dirs: list[Path], keep_logs: bool = False) -> None:
    for node in reversed(nodes):
        if node.poll() is None:
            node.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started
    for node in nodes:
        try:
            node.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(node.pid, signal.SIGKILL)  # its own process group (start_new_session)
    for pid in _pids_naming(temp_dirs):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for temp_dir in temp_dirs if not keep_logs else ():
        shutil.rmtree(temp_dir, ignore_errors=True)


def _pids_naming(temp_dirs: list[Path]) -> list[int]:
    """Processes whose command line names one of the temp dirs (Ray passes its session dir to each)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command_line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(str(temp_dir) in command_line for temp_dir in temp_dirs):
            found.append(int(cmdline.parent.name))
    return found


def _wait_until(condition, what: str, nodes: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        for node in nodes:
            if node.poll() is not None:
                raise RuntimeError(f"`{' '.join(node.args)}` exited with {node.returncode} while waiting for {what}")
        try:
            if condition():
                return
        except Exception:
            pass  # not up yet
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} after {START_TIMEOUT_SECONDS} s")
        time.sleep(1)


def _answers(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status == 200


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
