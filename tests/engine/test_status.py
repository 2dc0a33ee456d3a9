"""`pix2point status`: light (no torch, MinkowskiEngine or Ray), quiet, and it shows runs in progress."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import yaml

from pix2point.cli import main
from pix2point.engine.artefacts import ArtefactStore
from pix2point.engine.pipeline import load_pipeline
from pix2point.engine.runner import compute_keys, stage_states

REPOSITORY = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "MinkowskiEngine", "ray")


def test_stage_modules_and_status_import_no_torch_minkowskiengine_or_ray(tmp_path):
    """Every stage module of pipeline.yaml imports light, and `status` on the real pipeline prints only its table."""
    modules = sorted({entry["module"] for entry in yaml.safe_load((REPOSITORY / "pipeline.yaml").read_text())["stages"].values()})
    script = textwrap.dedent(f"""
        import importlib, json, sys
        for module in {modules!r}:
            importlib.import_module(module)
        after_import = sorted(name for name in sys.modules if name.split(".")[0] in {HEAVY!r})
        from pix2point.cli import main
        code = main(["status", "--profile", "smoke", "--artefacts", {str(tmp_path)!r}])
        after_status = sorted(name for name in sys.modules if name.split(".")[0] in {HEAVY!r})
        print(json.dumps({{"code": code, "after_import": after_import, "after_status": after_status}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPOSITORY, capture_output=True, text=True, timeout=120)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "after_import": [], "after_status": []}
    assert result.stderr == "", "status must be quiet (no MinkowskiEngine or Ray warnings, no logs)"
    for stage in ("scenes", "pretrain", "classify", "evaluate_objects"):
        assert stage in result.stdout


def test_status_shows_a_stage_another_run_computes_as_running_with_its_host_and_pid(toy, capsys):
    key = compute_keys(load_pipeline(toy.pipeline))["numbers"]
    holder_script = textwrap.dedent(f"""
        import time
        from pix2point.engine.artefacts import ArtefactStore
        with ArtefactStore({str(toy.artefacts)!r}).lock("numbers", {key!r}):
            print("holding", flush=True)
            time.sleep(60)
    """)
    other_run = subprocess.Popen([sys.executable, "-c", holder_script], stdout=subprocess.PIPE, text=True)
    try:
        assert other_run.stdout.readline().strip() == "holding"
        states = stage_states(load_pipeline(toy.pipeline), ArtefactStore(toy.artefacts))
        assert states["numbers"] == (key, "running")
        assert states["total"][1] == "missing"
        assert main(["status", str(toy.pipeline), "--artefacts", str(toy.artefacts)]) == 0
        output = capsys.readouterr().out
        assert f"running ({socket.gethostname()}, {other_run.pid})" in output
        assert "stale: built only with other params" in output
    finally:
        other_run.kill()
        other_run.wait()
    # A holder that died on this host no longer counts as running.
    time.sleep(0.1)
    assert stage_states(load_pipeline(toy.pipeline), ArtefactStore(toy.artefacts))["numbers"][1] == "missing"
