"""The CLI anywhere and at any width: `params`, `--version`, `run --help`, `python -m pix2point` without PATH,
a clear message outside the repository, whole rows in piped output (issue 16 items 5, 8, 9)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import pix2point
from pix2point.cli import main
from pix2point.engine.artefacts import ArtefactStore
from pix2point.engine.param_docs import param_docs
from pix2point.engine.pipeline import load_pipeline
from pix2point.engine.runner import run_pipeline

REPOSITORY = Path(__file__).resolve().parents[2]


def table_rows(output: str) -> dict[str, list[str]]:
    """First cell -> cells, for the rows of a rich table; a row wrapped over several lines (its descriptions
    wrap) is joined back, its cells' lines with spaces."""
    rows: list[list[str]] = []
    for line in output.splitlines():
        if line.startswith("│"):
            cells = [cell.strip() for cell in line.strip()[1:-1].split("│")]
            if rows and not cells[0]:
                rows[-1] = [" ".join(part for part in pair if part) for pair in zip(rows[-1], cells)]
            else:
                rows.append(cells)
    return {row[0]: row for row in rows}


def test_params_lists_type_default_profile_value_and_description(capsys, monkeypatch):
    monkeypatch.chdir(REPOSITORY)
    assert main(["params", "features2d", "--profile", "smoke"]) == 0
    rows = table_rows(capsys.readouterr().out)
    assert rows["frame_step"] == ["frame_step", "int >= 1", "1", "2", "keep every k-th frame of each scene, counted in frame order"]
    assert rows["teacher"][1] == "'efficientnet_lite0' | 'resnet18' | 'resnet50'"
    assert rows["image_size"][1:4] == ["tuple[int, int]", "[320, 240]", "[160, 128]"]
    assert main(["params", "scenes", "--set", "scenes.synthetic.num_scenes=3"]) == 0
    assert table_rows(capsys.readouterr().out)["synthetic.num_scenes"][1:4] == ["int >= 2", "8", "3"]
    assert main(["params", "pretrain_mae"]) == 0  # a method of a multi-method stage: that method's params
    rows = table_rows(capsys.readouterr().out)
    assert "mask_ratio" in rows and "voxel_size" not in rows
    assert rows["checkpoint_every"][4] == "steps between checkpoints a killed run resumes from"  # an inherited param
    assert main(["params", "nosuchstage"]) == 2



@pytest.mark.parametrize("path", ["pipeline.yaml", *sorted(str(p.relative_to(REPOSITORY)) for p in (REPOSITORY / "pipelines").glob("*.yaml"))])
def test_every_param_of_every_profile_has_a_description(path):
    """`pix2point params` is the params' documentation: each param of each stage, under each profile (so each
    method a profile picks), has a Field description or a source comment (issue 16.5)."""
    profiles = yaml.safe_load((REPOSITORY / path).read_text()).get("profiles") or {}
    undocumented = {f"{profile or 'default'}: {stage}.{doc.name}"
                    for profile in [None, *profiles]
                    for stage, entry in load_pipeline(REPOSITORY / path, profile).stages.items()
                    for doc in param_docs(entry.params) if not doc.description.strip()}
    assert not undocumented, f"{path}: params without a description: {sorted(undocumented)}"

def test_version_and_the_module_entrypoint_need_no_path(tmp_path):
    """`python -m pix2point` runs with only the interpreter: a Ray head started as .venv/bin/ray has no venv on PATH."""
    env = {**os.environ, "PATH": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "pix2point", "--version"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == f"pix2point {pix2point.__version__}"


def test_run_help_lists_the_stages_and_profiles_of_the_pipeline_file(capsys, monkeypatch):
    monkeypatch.chdir(REPOSITORY)
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    help_text = capsys.readouterr().out
    assert "features2d  <- scenes" in help_text and "classify  <- objects" in help_text
    # An input mapped to another stage (pipeline.yaml: `inputs: {objects: fewshot_objects, ...}`) names that stage.
    assert "fewshot  <- fewshot_objects (as objects), pretrain_mae, pretrain_i2p_mae" in help_text
    assert "profiles: smoke, benchmark, scannet" in help_text
    with pytest.raises(SystemExit):
        main(["run", "pipelines/ppkt_s3dis.yaml", "--help"])  # a pipeline with a base: the stages it takes from it
    help_text = capsys.readouterr().out
    assert "scenes, features2d, pairs, pretrain: those of ../pipeline.yaml, profile scannet" in help_text
    assert "finetune  <- s3dis (as scenes), pretrain" in help_text
    with pytest.raises(SystemExit):
        main(["run", "pipelines/i2p_mae_seeds.yaml", "--help"])  # variants: their stage's inputs, from the base file
    help_text = capsys.readouterr().out
    assert "pretrain_i2p_mae_seed1  <- objects, views2d  (like pretrain_i2p_mae)" in help_text


def test_outside_the_repository_it_says_where_it_looked_and_how_to_name_a_pipeline(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pix2point", "status"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"looked for {tmp_path / 'pipeline.yaml'}" in result.stdout
    assert "pix2point run path/to/pipeline.yaml" in result.stdout


def test_piped_output_keeps_long_paths_and_keys_whole(toy):
    deep = toy.root / ("a_rather_long_folder_name_" * 4) / "artefacts"
    [outcome] = run_pipeline(load_pipeline(toy.pipeline), ArtefactStore(deep), targets=["numbers"])
    command, env = toy.cli("status", str(toy.pipeline), "--artefacts", str(deep))
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert len(str(outcome.path)) > 120
    assert any(outcome.key in line and str(outcome.path) in line for line in result.stdout.splitlines()), result.stdout
