"""What a user meets before a run computes anything: --force's scope, suggested commands, data roots that are
missing, param errors, and keys that do not change when a default is written out (issue 16 items 1-4, 6)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from pix2point.cli import main
from pix2point.engine.artefacts import ArtefactStore
from pix2point.engine.pipeline import PipelineError, load_pipeline
from pix2point.engine.runner import compute_keys, run_pipeline

REPOSITORY = Path(__file__).resolve().parents[2]
PIPELINE = REPOSITORY / "pipeline.yaml"


def statuses(toy, **options) -> dict[str, str]:
    outcomes = run_pipeline(load_pipeline(toy.pipeline), ArtefactStore(toy.artefacts), **options)
    return {outcome.stage: outcome.status for outcome in outcomes}


def test_force_on_a_named_stage_recomputes_it_alone(toy):
    assert statuses(toy, targets=["total"], force=True) == {"numbers": "ran", "total": "ran"}  # missing input: built
    assert statuses(toy, targets=["total"], force=True) == {"numbers": "cached", "total": "ran"}
    assert statuses(toy, only="total", force=True) == {"total": "ran"}
    assert statuses(toy, force=True) == {"numbers": "ran", "total": "ran"}  # nothing named: everything


def test_force_help_says_it_recomputes_the_named_stages_alone(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "recompute the named stages alone" in " ".join(capsys.readouterr().out.split())


def test_a_suggested_command_carries_the_options_of_the_failing_one(toy, capsys):
    artefacts = str(toy.artefacts)
    code = main(["run", str(toy.pipeline), "--only", "total", "--profile", "small", "--set", "total.scale=2",
                 "--artefacts", artefacts])
    assert code == 2
    suggested = re.search(r"run `([^`]+)` first", capsys.readouterr().out).group(1)
    assert shlex.split(suggested) == ["pix2point", "run", str(toy.pipeline), "numbers", "--profile", "small",
                                      "--set=total.scale=2", "--artefacts", artefacts]


@pytest.mark.parametrize("root", ["missing", "empty"])
def test_a_missing_or_empty_data_root_is_one_line_and_exit_2_before_ray_starts(tmp_path, capsys, root):
    (tmp_path / "empty").mkdir()
    overrides = ["scenes.source=scannet", f"scenes.root={tmp_path / root}"]
    with pytest.raises(PipelineError, match=rf"stage 'scenes': param 'root': {tmp_path / root} (does not exist|is an empty folder)"):
        run_pipeline(load_pipeline(PIPELINE, overrides=overrides), ArtefactStore(tmp_path / "artefacts"), targets=["scenes"],
                     before_first_run=lambda: pytest.fail("Ray was started before the data root was checked"))
    code = main(["run", "scenes", *[f"--set={item}" for item in overrides], "--artefacts", str(tmp_path / "artefacts")])
    errors = [line for line in capsys.readouterr().out.splitlines() if "error" in line]
    assert code == 2 and len(errors) == 1 and "param 'root'" in errors[0]


def test_a_mistyped_run_is_one_error_line_and_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPOSITORY)
    for mistake in (["--set", "pretrain.stpes=3"], ["nosuchstage"], ["--profile", "nosuch"], ["--set", "pretrain"]):
        assert main(["run", *mistake, "--artefacts", str(tmp_path / "artefacts")]) == 2
        errors = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("log: ")]
        assert len(errors) == 1 and errors[0].startswith("error: "), errors


def test_a_missing_weights_file_is_named(tmp_path):
    pipeline = load_pipeline(PIPELINE, overrides=["classify.network=resnet18", "classify.teacher_weights=/nowhere/r18.pth"])
    with pytest.raises(PipelineError, match="stage 'classify': param 'teacher_weights': /nowhere/r18.pth does not exist"):
        run_pipeline(pipeline, ArtefactStore(tmp_path / "artefacts"), targets=["classify"],
                     before_first_run=lambda: pytest.fail("Ray was started before the paths were checked"))


@pytest.mark.parametrize(("override", "expected"), [
    ("features2d.layer=stride16", "stage 'features2d': param 'layer': teacher efficientnet_lite0 has no layer 'stride16'; "
                                  "its layers: stage3 (stride 8, 40 channels), stage5"),
    ("pretrain.stpes=3", "stage 'pretrain': unknown param 'stpes' (did you mean 'steps'?); valid params: backbone,"),
    ("scenes.synthetic.num_scnes=3", "unknown param 'synthetic.num_scnes' (did you mean 'synthetic.num_scenes'?); "
                                     "valid params of synthetic: color_size,"),
    ("features2d.teacher=resnet", "param 'teacher': Input should be 'efficientnet_lite0', 'resnet18' or 'resnet50' (got 'resnet')"),
    ("pretrain.method=mae", "param 'method': Input tag 'mae' found using 'method' does not match any of the expected tags"),
])
def test_param_errors_name_the_param_and_what_is_valid(override, expected):
    with pytest.raises(PipelineError) as error:
        load_pipeline(PIPELINE, overrides=[override])
    assert expected in str(error.value)
    assert "{" not in str(error.value), "the params dict is not part of an error"


def test_an_unknown_key_of_one_method_lists_that_methods_params():
    with pytest.raises(PipelineError) as error:
        load_pipeline(PIPELINE, overrides=["pretrain_mae.voxel_size=0.1"])  # a PPKT param on an I2P-MAE stage
    valid = str(error.value).split("valid params: ")[1].split(", ")
    assert "mask_ratio" in valid and "voxel_size" not in valid


def test_the_readme_and_docs_example_commands_have_valid_params():
    """Each `pix2point run` line of the README and of docs/ on pipeline.yaml: its profile and --set overrides validate."""
    documents = [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").glob("*.md"))]
    text = "\n".join(document.read_text() for document in documents).replace("\\\n", " ")
    commands = [line.split("#")[0] for line in text.splitlines() if line.strip().startswith("pix2point run")]
    checked = []
    for command in commands:
        words = shlex.split(command)
        if any(word.endswith(".yaml") for word in words):
            continue  # another pipeline file
        profile = words[words.index("--profile") + 1] if "--profile" in words else None
        overrides = [words[i + 1] for i, word in enumerate(words) if word == "--set"]
        load_pipeline(PIPELINE, profile, overrides)
        checked += overrides
    assert "features2d.layer=stage3" in checked and "finetune.label_unit=points_per_scene" in checked  # README, docs/methods.md


def test_writing_out_every_resolved_param_changes_no_key():
    profiles = [None, *yaml.safe_load(PIPELINE.read_text())["profiles"]]
    for profile in profiles:
        pipeline = load_pipeline(PIPELINE, profile)
        written = [f"{name}.{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"
                   for name, stage in pipeline.stages.items() for key, value in stage.params.model_dump(mode="json").items()]
        assert compute_keys(load_pipeline(PIPELINE, profile, written)) == compute_keys(pipeline), profile


def test_naming_a_default_layer_keeps_every_key_and_another_layer_changes_downstream_only():
    pipeline = load_pipeline(PIPELINE)
    keys = compute_keys(pipeline)
    assert compute_keys(load_pipeline(PIPELINE, overrides=["features2d.layer=stage5", "views2d.layer=stage3"])) == keys
    changed = compute_keys(load_pipeline(PIPELINE, overrides=["features2d.layer=stage3"]))
    downstream = {name for name in pipeline.stages if "features2d" in pipeline.upstream_closure([name])}
    assert {name for name in keys if keys[name] != changed[name]} == downstream
    assert {"features2d", "pretrain", "finetune"} <= downstream and "objects" not in downstream
