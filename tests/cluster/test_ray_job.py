"""`ray job submit` of the smoke pipeline to a two-node cluster: the README's cluster workflow, end to end, and
finetune runs spread over both nodes at once."""

import json
import subprocess
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pix2point.engine.artefacts import MANIFEST
from pix2point.io.finetune_table import read_runs
from pix2point.io.trials_table import read_trials

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SPINE = ("scenes", "features2d", "pairs")


def submit(cluster, *pix2point_args: str, submission_id: str | None = None) -> subprocess.CompletedProcess:
    command = ["ray", "job", "submit", "--address", cluster.dashboard, "--runtime-env", "docker/runtime_env.yaml",
               *(["--submission-id", submission_id] if submission_id else []),
               "--", "python", "-m", "pix2point", "run", "pipeline.yaml", *pix2point_args]  # the README's job command
    return subprocess.run(command, cwd=REPO, env=cluster.env, capture_output=True, text=True, timeout=900)


def table_row(output: str, stage: str) -> dict[str, str]:
    """The first line of `stage`'s row in the run table (long paths wrap onto further lines)."""
    (row,) = [line for line in output.splitlines() if line.startswith(f"│ {stage} ")]
    cells = [cell.strip() for cell in row.strip("│").split("│")]
    return dict(zip(("stage", "key", "status", "seconds", "nodes", "output"), cells))


def test_a_job_runs_the_spine_on_both_nodes_and_a_second_job_finds_it_cached(two_node_cluster, tmp_path):
    artefacts = tmp_path / "artefacts"  # absolute: the job runs in a copy of the working dir
    first = submit(two_node_cluster, "pairs", "--profile", "smoke", "--artefacts", str(artefacts))
    assert first.returncode == 0, first.stdout + first.stderr
    for stage in SPINE:
        assert table_row(first.stdout, stage)["status"] == "ran"
        (artefact,) = [path.parent for path in (artefacts / stage).glob(f"*/{MANIFEST}")]
        manifest = json.loads((artefact / MANIFEST).read_text())
        assert manifest["files"] and all((artefact / entry["path"]).stat().st_size == entry["bytes"] for entry in manifest["files"])
        for entry in manifest["files"]:
            if entry["path"].endswith(".parquet"):
                assert pq.ParquetFile(artefact / entry["path"]).metadata.num_rows > 0, entry["path"]

    # Two 1-CPU nodes, two one-CPU scene tasks: each node ran one, and the manifest says which.
    scenes_manifest = json.loads(next((artefacts / "scenes").glob(f"*/{MANIFEST}")).read_text())
    assert scenes_manifest["ray_nodes"] and set(scenes_manifest["ray_nodes"]) == two_node_cluster.node_ids()
    assert table_row(first.stdout, "scenes")["nodes"] == "2"

    second = submit(two_node_cluster, "pairs", "--profile", "smoke", "--artefacts", str(artefacts))
    assert second.returncode == 0, second.stdout + second.stderr
    assert [table_row(second.stdout, stage)["status"] for stage in SPINE] == ["cached"] * 3, second.stdout


def test_a_failing_stage_fails_the_job_and_the_job_logs_name_the_error(two_node_cluster, tmp_path):
    # A root that exists and is not empty passes the checks made before Ray starts; the stage itself fails.
    not_scannet = tmp_path / "not_scannet"
    (not_scannet / "scene0000_00").mkdir(parents=True)
    (not_scannet / "scene0000_00" / "notes.txt").write_text("no color/ folder here")
    submission_id = f"pix2point-failing-{uuid.uuid4().hex[:8]}"
    failed = submit(two_node_cluster, "scenes", "--profile", "smoke", "--artefacts", str(tmp_path / "artefacts"),
                    "--set", "scenes.source=scannet", "--set", f"scenes.root={not_scannet}", submission_id=submission_id)
    assert failed.returncode != 0
    logs = subprocess.run(["ray", "job", "logs", "--address", two_node_cluster.dashboard, submission_id],
                          env=two_node_cluster.env, capture_output=True, text=True, timeout=120, check=True).stdout
    assert f"error: stage scenes failed: SceneReadError: no scenes (directories with a color/ folder) under {not_scannet}" in logs
    assert not list((tmp_path / "artefacts").glob(f"scenes/*/{MANIFEST}"))


def finetune_artefact(artefacts: Path, max_concurrent_runs: int | None) -> Path:  # None: as many as fit
    (artefact,) = [path.parent for path in (artefacts / "finetune").glob(f"*/{MANIFEST}")
                   if json.loads(path.read_text())["params"]["max_concurrent_runs"] == max_concurrent_runs]
    return artefact


def test_finetune_runs_train_side_by_side_on_two_nodes_and_equal_runs_one_after_another(two_node_cluster, tmp_path):
    artefacts = tmp_path / "artefacts"
    grid = ["--set", "finetune.inits=[scratch]", "--set", "finetune.label_fractions=[1.0]", "--set", "finetune.seeds=[0, 1]",
            "--set", "finetune.cpus_per_worker=1", "--set", "pretrain.cpus_per_worker=1",  # the nodes have 1 CPU each
            # Runs long against a trainer's start, so each trainer holds its node's CPU while the other places.
            "--set", "finetune.steps=24", "--set", "finetune.eval_every=12"]
    together = submit(two_node_cluster, "finetune", "--profile", "smoke", "--artefacts", str(artefacts), *grid,
                      "--set", "finetune.max_concurrent_runs=null")  # the smoke profile's 1: one trainer start per stage
    assert together.returncode == 0, together.stdout + together.stderr
    apart = submit(two_node_cluster, "finetune", "--profile", "smoke", "--artefacts", str(artefacts), *grid,
                   "--set", "finetune.max_concurrent_runs=1")
    assert apart.returncode == 0, apart.stdout + apart.stderr
    assert table_row(apart.stdout, "pretrain")["status"] == "cached"

    # Side by side: one trainer per run, one on each node. (Not wall-clock overlap: on a loaded machine one
    # trainer's start can outlast the other's whole run, as it did in CI.)
    together = read_trials(finetune_artefact(artefacts, None))
    assert len({trial.trainer for trial in together}) == 2 and len({trial.node for trial in together}) == 2, together
    first, second = apart = read_trials(finetune_artefact(artefacts, 1))
    assert len({trial.trainer for trial in apart}) == 1 and first.finished_at <= second.started_at, apart
    runs = [read_runs(finetune_artefact(artefacts, limit)) for limit in (None, 1)]
    assert [(r.run, r.final_val_miou, r.best_val_miou, r.confusion.tolist()) for r in runs[0]] == \
        [(r.run, r.final_val_miou, r.best_val_miou, r.confusion.tolist()) for r in runs[1]]
