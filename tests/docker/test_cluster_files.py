"""docker/compose.yaml, docker/runtime_env.yaml and .dockerignore parse and agree with each other and the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = re.compile(r"\$\{(\w+):-([^}]*)\}")
MUST_NOT_SHIP = {".git", ".venv", "artefacts", "data"}


def _with_defaults(value):
    """Compose's ${VAR:-default} with every variable unset."""
    if isinstance(value, str):
        return DEFAULT.sub(lambda match: match.group(2), value)
    if isinstance(value, dict):
        return {key: _with_defaults(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_defaults(item) for item in value]
    return value


@pytest.fixture(scope="module")
def compose() -> dict:
    return _with_defaults(yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text()))


@pytest.fixture(scope="module")
def runtime_env() -> dict:
    return yaml.safe_load((ROOT / "docker" / "runtime_env.yaml").read_text())


def _artefact_mount(service: dict) -> str:
    mounts = [volume.split(":") for volume in service["volumes"]]
    targets = [target for source, target, *_ in mounts if source == "artefacts"]
    assert len(targets) == 1, service["volumes"]
    return targets[0]


def _flag(command: str, name: str) -> str:
    match = re.search(rf"--{name}=(\S+)", command)
    assert match, f"--{name} missing from {command!r}"
    return match.group(1)


def test_every_node_mounts_the_artefact_volume_at_one_absolute_path(compose):
    services = compose["services"]
    assert set(services) == {"head", "worker"}
    mounts = {name: _artefact_mount(service) for name, service in services.items()}
    assert len(set(mounts.values())) == 1, mounts
    mount = mounts["head"]
    assert mount.startswith("/")
    assert "artefacts" in compose["volumes"]
    for service in services.values():
        assert service["environment"]["PIX2POINT_ARTEFACTS"] == mount
        assert service["image"] == services["head"]["image"]


def test_readme_cluster_commands_write_into_the_shared_volume(compose):
    mount = _artefact_mount(compose["services"]["head"])
    for document in [ROOT / "README.md", ROOT / "docs" / "cluster.md"]:
        used = re.findall(r"--artefacts\s+(/[^\s`'\"]+)", document.read_text())
        assert used, f"{document.name} shows no cluster command with an absolute --artefacts"
        outside = [path for path in used if not (path == mount or path.startswith(mount.rstrip("/") + "/"))]
        assert not outside, f"{document.name} --artefacts {outside} not under the compose volume mounted at {mount}"


def test_head_serves_jobs_and_workers_join_it(compose):
    head, worker = compose["services"]["head"], compose["services"]["worker"]
    assert "--head" in head["command"] and "--block" in head["command"]
    assert _flag(head["command"], "dashboard-host") == "0.0.0.0"
    container_ports = {port.rsplit(":", 1)[-1] for port in head["ports"]}
    assert {_flag(head["command"], "dashboard-port"), _flag(head["command"], "ray-client-server-port")} <= container_ports
    assert "8265" in container_ports  # the README's `ray job submit --address http://HEAD:8265`
    host, port = _flag(worker["command"], "address").split(":")
    assert host == "head" and port == _flag(head["command"], "port")
    assert "--block" in worker["command"]
    assert int(worker["deploy"]["replicas"]) >= 1
    assert worker["depends_on"]["head"]["condition"] == "service_healthy"


def test_gpu_override_names_existing_services(compose):
    gpu = yaml.safe_load((ROOT / "docker" / "compose.gpu.yaml").read_text())
    assert set(gpu["services"]) <= set(compose["services"])
    devices = gpu["services"]["head"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]


def test_runtime_env_ships_the_code_and_nothing_local(runtime_env):
    working_dir = ROOT / runtime_env["working_dir"]
    assert (working_dir / "pipeline.yaml").is_file() and (working_dir / "stages" / "__init__.py").is_file()
    for module in runtime_env["py_modules"]:
        assert (ROOT / module / "__init__.py").is_file(), module
    assert [Path(module).name for module in runtime_env["py_modules"]] == ["pix2point"]
    excluded = {pattern.strip("/") for pattern in runtime_env["excludes"]}
    assert MUST_NOT_SHIP <= excluded, MUST_NOT_SHIP - excluded
    # Ray rejects a runtime env whose env var values are not strings.
    assert all(isinstance(value, str) for value in runtime_env["env_vars"].values()), runtime_env["env_vars"]


def test_dockerignore_and_runtime_env_leave_out_the_same(runtime_env):
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = {line.strip().strip("/") for line in lines if line.strip() and not line.startswith("#")}
    excluded = {pattern.strip("/") for pattern in runtime_env["excludes"]}
    assert MUST_NOT_SHIP <= ignored
    assert ignored == excluded, f"only in .dockerignore: {ignored - excluded}; only in runtime_env: {excluded - ignored}"
