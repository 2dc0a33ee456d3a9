"""The fewshot stage on tiny objects with real networks (a Point-M2AE encoder artefact, EfficientNet-Lite0
inflated from its ImageNet weights) on Ray: every episode lands in episodes.parquet and the report, a killed
stage retrains only the episodes without a record, and bad params fail before any training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from stages import fewshot

from pix2point.io.fewshot_table import EPISODES_FILE, episodes_metadata, read_episodes
from pix2point.io.objects_table import read_objects
from pix2point.training.finetuning.episodes import draw_episode
from pix2point.training.finetuning.fewshot import record_path

NETWORKS = [{"family": "point_m2ae", "init": "pretrain_mae"}, {"family": "point_m2ae"},
            {"family": "image2point", "init": "inflated"}, {"family": "image2point"}]
TINY = dict(ways=[2, 3], shots=[1], folds=2, queries=2, steps=2, batch_size=4, networks=NETWORKS,
            point_m2ae={"points": 256, "group_sizes": [16, 8, 4]}, image2point={"voxel_size": 0.1}, deterministic=True)


@pytest.fixture(scope="module")
def encoder_dir(tiny_encoders) -> Path:
    return tiny_encoders["pretrain_mae"]


@pytest.fixture(scope="module")
def ran(tiny_objects, encoder_dir, tmp_path_factory):
    out, scratch = tmp_path_factory.mktemp("fewshot"), tmp_path_factory.mktemp("fewshot-scratch")
    params = fewshot.Params(**TINY)
    metrics = fewshot.run(params, {"objects": tiny_objects, "pretrain_mae": encoder_dir}, out, scratch=scratch)
    return params, out, scratch, metrics


def test_every_network_and_episode_lands_in_the_table_and_the_report(ran, tiny_objects):
    params, out, _, metrics = ran
    records = read_episodes(out)
    names = ["point_m2ae-pretrain_mae", "point_m2ae-scratch", "image2point-inflated", "image2point-scratch"]
    assert metrics["episodes"] == len(records) == 16 and metrics["trained_now"] == 16
    assert sorted({(r.network, r.ways, r.shots, r.fold) for r in records}) == sorted(
        (name, ways, 1, fold) for name in names for ways in (2, 3) for fold in (0, 1))
    train, test = read_objects(tiny_objects, "train"), read_objects(tiny_objects, "test")
    for record in records:
        episode = draw_episode(train.labels, test.labels, seed=0, ways=record.ways, shots=1, fold=record.fold, queries=2)
        assert record.support_objects == record.ways and record.query_objects == 2 * record.ways
        assert len(set(record.classes)) == record.ways and record.steps == 2 and np.isfinite(record.final_loss)
        assert record.accuracy * record.query_objects == pytest.approx(round(record.accuracy * record.query_objects))
        # The classes the record names are the ones the sampler drew for that (seed, ways, shots, fold).
        assert record.classes == [json.loads(pq.read_schema(tiny_objects / "objects.parquet").metadata[b"class_names"])[c]
                                  for c in episode.classes]
    assert episodes_metadata(out) == {"seed": 0, "queries": 2, "epochs": 150, "steps": 2}
    report = (out / "report.md").read_text()
    assert "| network | 2-way 1-shot | 3-way 1-shot |" in report and all(f"| {name} |" in report for name in names)
    assert "| 2-way 1-shot | point_m2ae-pretrain_mae | point_m2ae-scratch |" in report
    assert "| 3-way 1-shot | image2point-inflated | image2point-scratch |" in report
    assert "Welch's t-test over folds" in report and "| 2 / 2 |" in report  # 2 folds a side
    cells = json.loads((out / "metrics.json").read_text())["cells"]
    assert len(cells) == 8 and all(cell["folds"] == 2 for cell in cells)
    by_cell = {(c["network"], c["ways"]): c["mean"] for c in cells}
    for name in names:
        for ways in (2, 3):
            folds = [r.accuracy for r in records if r.network == name and r.ways == ways]
            assert by_cell[(name, ways)] == pytest.approx(np.mean(folds))
            assert metrics[f"accuracy_{name}_{ways}way_1shot"] == pytest.approx(np.mean(folds), abs=1e-4)


def test_a_killed_stage_trains_only_the_episodes_without_a_record(ran, tiny_objects, encoder_dir, tmp_path):
    params, out, scratch, _ = ran
    first = {(r.network, r.ways, r.fold): r.accuracy for r in read_episodes(out)}
    for network, ways, fold in (("point_m2ae-pretrain_mae", 3, 1), ("image2point-inflated", 2, 0)):
        record_path(scratch / fewshot.RECORDS, network, ways, 1, fold).unlink()
    metrics = fewshot.run(params, {"objects": tiny_objects, "pretrain_mae": encoder_dir}, tmp_path, scratch=scratch)
    assert metrics["trained_now"] == 2 and metrics["episodes"] == 16
    # deterministic: the retrained episodes score what they scored the first time
    assert {(r.network, r.ways, r.fold): r.accuracy for r in read_episodes(tmp_path)} == first
    assert (tmp_path / EPISODES_FILE).is_file()


@pytest.mark.parametrize(("change", "message"), [
    ({"ways": [10]}, r"param 'ways' = 10 exceeds the 8 classes"),
    ({"shots": [4]}, r"param 'shots' = 4 exceeds the 3 train objects"),
    ({"queries": 3}, r"param 'queries' = 3 exceeds the 2 test objects"),
    ({"networks": [{"family": "point_m2ae", "init": "pretrain_i2p_mae"}]}, r"inputs \['pretrain_i2p_mae'\], which are not"),
    ({"point_m2ae": {"points": 512}}, r"point_m2ae.points=512 exceeds the 256 points per object"),
])
def test_bad_params_fail_before_any_training(tiny_objects, encoder_dir, tmp_path, change, message):
    params = fewshot.Params(**{**TINY, **change})
    with pytest.raises(ValueError, match=message):
        fewshot.run(params, {"objects": tiny_objects, "pretrain_mae": encoder_dir}, tmp_path, scratch=tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_params_refuse_unknown_inits_and_repeats():
    with pytest.raises(ValueError, match="scratch or inflated"):
        fewshot.Network(family="image2point", init="pretrain_mae")
    with pytest.raises(ValueError, match="must not repeat"):
        fewshot.Params(networks=[{"family": "point_m2ae"}, {"family": "point_m2ae"}])
