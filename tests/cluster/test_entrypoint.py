"""The README's Cluster section, for a head started by `.venv/bin/ray start --head` without activating the venv
(issue 16.8): its jobs do not find the `pix2point` script (exit 127), and the documented remedy, naming the
venv's interpreter (`/abs/.venv/bin/python -m pix2point`), works on that same head."""

import subprocess
import sys
from pathlib import Path

import pytest

import pix2point

pytestmark = pytest.mark.slow
VENV_BIN = Path(sys.executable).parent


def job(cluster, *entrypoint: str) -> subprocess.CompletedProcess:
    command = [str(VENV_BIN / "ray"), "job", "submit", "--address", cluster.dashboard, "--", *entrypoint]
    return subprocess.run(command, env=cluster.env, capture_output=True, text=True, timeout=600)


def test_the_venvs_interpreter_runs_pix2point_where_the_bare_script_is_not_found(head_outside_the_venv):
    named = job(head_outside_the_venv, str(VENV_BIN / "python"), "-m", "pix2point", "--version")
    assert named.returncode == 0 and f"pix2point {pix2point.__version__}" in named.stdout, named.stdout + named.stderr
    bare = job(head_outside_the_venv, "pix2point", "--version")
    assert bare.returncode != 0 and "pix2point: not found" in bare.stdout + bare.stderr, bare.stdout + bare.stderr
