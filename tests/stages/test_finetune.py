"""The finetune stage on the smoke data: every (init, label fraction, seed) run lands in the contract."""

import numpy as np
import pytest
import torch

from stages import finetune

from pix2point.io.finetune_table import model_path, read_history, read_runs, runs_metadata
from pix2point.models.backbone import BackboneSpec, build_backbone, save_backbone


@pytest.mark.slow
def test_finetune_runs_scratch_and_pretrained_and_writes_the_contract(smoke_spine, tmp_path):
    pretrain_dir = tmp_path / "pretrain"
    pretrain_dir.mkdir()
    torch.manual_seed(0)
    pretrained = build_backbone(BackboneSpec("tiny", "rgb", 0.05))
    save_backbone(pretrain_dir, pretrained, BackboneSpec("tiny", "rgb", 0.05))
    out = tmp_path / "out"
    out.mkdir()
    params = finetune.Params(label_fractions=[0.5, 1.0], seeds=[0], steps=4, eval_every=2, scenes_per_batch=1,
                             cpus_per_worker=2, drift_repeats=0, deterministic=False)
    metrics = finetune.run(params, {"scenes": smoke_spine["scenes"], "pretrain": pretrain_dir}, out, scratch=tmp_path / "s")

    runs = read_runs(out)
    assert metrics["runs"] == 4 and len(runs) == 4
    assert {(r.init, r.label_fraction) for r in runs} == {(i, f) for i in ("scratch", "pretrain") for f in (0.5, 1.0)}
    class_names, unit = runs_metadata(out)
    assert unit == "scenes" and len(class_names) == 20
    for run in runs:
        assert run.confusion.shape == (20, 20) and run.confusion.sum() > 0
        assert 0 <= run.final_val_miou <= run.best_val_miou <= 1
        assert model_path(out, run.run).is_file()
    history = read_history(out)
    assert sorted({record.run for record in history}) == sorted(r.run for r in runs)
    assert all(np.isfinite(record.train_loss) for record in history)


@pytest.mark.slow
def test_finetune_takes_its_scenes_from_a_point_only_s3dis_artefact(ray_runtime, s3dis_tree, tmp_path):
    from stages import scenes

    scenes.run(scenes.Params(source="s3dis", root=s3dis_tree), {}, tmp_path / "s3dis")
    pretrain_dir = tmp_path / "pretrain"
    pretrain_dir.mkdir()
    spec = BackboneSpec("tiny", "rgb", 0.05)
    save_backbone(pretrain_dir, build_backbone(spec), spec)
    params = finetune.Params(label_fractions=[1.0], seeds=[0], steps=2, eval_every=1, scenes_per_batch=1, cpus_per_worker=2)
    finetune.run(params, {"scenes": tmp_path / "s3dis", "pretrain": pretrain_dir}, tmp_path / "out", scratch=tmp_path / "s")
    class_names, _ = runs_metadata(tmp_path / "out")
    assert len(class_names) == 13 and class_names[-1] == "clutter"
    assert all(run.confusion.shape == (13, 13) and run.confusion.sum() == 80 for run in read_runs(tmp_path / "out"))


def test_label_fractions_outside_zero_one_are_rejected():
    with pytest.raises(ValueError, match=r"label fractions must lie in \(0, 1\]"):
        finetune.Params(label_fractions=[0.0, 1.5])


def test_drift_repeats_rerun_the_first_run_in_normal_mode_only():
    params = finetune.Params(label_fractions=[0.5], seeds=[3, 4], drift_repeats=1, deterministic=False)
    specs = finetune.run_specs(params)
    assert [(spec.name, spec.seed, spec.repeat) for spec in specs[4:]] == [(f"{specs[0].name}-repeat1", 3, 1)]
    assert finetune.run_specs(params.model_copy(update={"deterministic": True})) == specs[:4]


@pytest.mark.slow
def test_steps_on_a_scannet_scene_without_labels_are_skipped_and_counted_never_nan(ray_runtime, tmp_path):
    """ScanNet's layout with the training scene's labels.ply missing (read as all-ignored points, with a
    warning): with one scene per batch every step has no labelled point. The history counts them and holds no
    NaN loss; the scenes stage's manifest counts the scan."""
    from stages import scenes

    from pix2point.synthetic.scene import SyntheticSceneConfig, write_synthetic_scene

    root = tmp_path / "scannet"
    config = SyntheticSceneConfig(frames=2, color_size=(64, 48), depth_size=(64, 48), points=2000)
    for seed, name in enumerate(("scene0000_00", "scene0001_00")):
        write_synthetic_scene(root, name, seed=seed, config=config)
    (root / "scene0000_00" / "scene0000_00_vh_clean_2.labels.ply").unlink()
    metrics = scenes.run(scenes.Params(source="scannet", root=root, val_scenes=["scene0001_00"]), {}, tmp_path / "scenes")
    assert metrics["scans_without_labels"] == 1 and metrics["unknown_nyu40_id_points"] == 0
    pretrain_dir = tmp_path / "pretrain"
    pretrain_dir.mkdir()
    spec = BackboneSpec("tiny", "rgb", 0.05)
    save_backbone(pretrain_dir, build_backbone(spec), spec)
    params = finetune.Params(inits=["scratch"], label_fractions=[1.0], seeds=[0], steps=3, eval_every=2,
                             scenes_per_batch=1, cpus_per_worker=2, drift_repeats=0)
    finetune.run(params, {"scenes": tmp_path / "scenes", "pretrain": pretrain_dir}, tmp_path / "out", scratch=tmp_path / "s")
    history = read_history(tmp_path / "out")
    assert [(record.epoch, record.train_loss, record.skipped_steps) for record in history] == [(1, None, 2), (1, None, 1)]
