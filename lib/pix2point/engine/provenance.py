"""Where an artefact was made: the code's git commit, the machine and the command, recorded in each manifest
(`provenance`) so that a results page (engine/report.py) can say what produced its numbers.

Not part of any key: two runs of the same params and code on other machines share their artefacts. The
machine is the driver's (the process that ran `pix2point run`); on a Ray cluster the manifest's `ray_nodes`
says how many nodes ran the stage's tasks.
"""

from __future__ import annotations

import functools
import os
import platform
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

UNKNOWN = "unknown"
_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # lib/pix2point: its git work tree is the code that runs


def run_provenance() -> dict[str, str]:
    """{"commit", "machine", "command"} of this process, for a manifest."""
    return {"commit": git_commit(), "machine": machine(), "command": command_line()}


def command_line() -> str:
    """This process's command, `pix2point ...` when it is the CLI (console script or `python -m pix2point`)."""
    program = Path(sys.argv[0])
    if program.name == "pix2point" or (program.name == "__main__.py" and program.parent.name == "pix2point"):
        return shlex.join(["pix2point", *sys.argv[1:]])
    return shlex.join(sys.argv)


@functools.cache
def git_commit(directory: Path = _PACKAGE_DIR) -> str:
    """The HEAD commit of the git work tree holding `directory`, with " (uncommitted changes)" when a tracked
    file differs from it; "unknown" outside a work tree (an installed package, a Ray job's uploaded copy)."""
    head = _git(directory, "rev-parse", "HEAD")
    if head is None:
        return UNKNOWN
    changed = _git(directory, "status", "--porcelain", "--untracked-files=no")
    return f"{head} (uncommitted changes)" if changed else head


@functools.cache
def machine() -> str:
    """"<CPU model>, <n> cores; GPU: <names or none>" of this host (n: the CPUs the OS reports)."""
    return f"{cpu_model()}, {os.cpu_count() or 0} cores; GPU: {', '.join(gpu_names()) or 'none'}"


def cpu_model() -> str:
    """The `model name` of /proc/cpuinfo (Linux), else what the platform module says."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "model name" and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or UNKNOWN


def gpu_names() -> list[str]:
    """NVIDIA GPUs as nvidia-smi names them; none without nvidia-smi (or when it fails)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                 text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in listing.splitlines() if line.strip()]


def _git(directory: Path, *arguments: str) -> str | None:
    if shutil.which("git") is None:
        return None
    try:
        result = subprocess.run(["git", "-C", str(directory), *arguments], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None
