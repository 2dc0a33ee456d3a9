"""`pix2point run --profile smoke` through the spine, checked with plain pyarrow, then re-run fully cached."""

import json
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pix2point.cli import main

PIPELINE = Path(__file__).resolve().parents[1] / "pipeline.yaml"


@pytest.mark.slow
def test_smoke_spine_runs_then_is_fully_cached(ray_runtime, tmp_path, capsys):
    command = ["run", str(PIPELINE), "pairs", "--profile", "smoke", "--artefacts", str(tmp_path)]
    assert main(command) == 0
    first = capsys.readouterr().out
    assert first.count(" ran ") == 3, first

    manifests = {path.parent.parent.name: json.loads(path.read_text()) for path in tmp_path.glob("*/*/_manifest.json")}
    assert set(manifests) == {"scenes", "features2d", "pairs"}
    scenes_dir = tmp_path / "scenes" / manifests["scenes"]["key"]
    features_dir = tmp_path / "features2d" / manifests["features2d"]["key"]
    pairs_dir = tmp_path / "pairs" / manifests["pairs"]["key"]
    assert manifests["pairs"]["inputs"] == {"scenes": manifests["scenes"]["key"], "features2d": manifests["features2d"]["key"]}

    frames = pq.read_table(scenes_dir / "frames.parquet")
    features = pq.read_table(next((features_dir / "features").glob("*.parquet")))
    tensor = features["features"].combine_chunks().to_numpy_ndarray()
    assert tensor.dtype == np.float16 and tensor.ndim == 4
    assert features.num_rows == 3  # 6 frames, every 2nd

    scene = features["scene"][0].as_py()
    pairs = pq.read_table(pairs_dir / "pairs" / f"{scene}.parquet")
    assert pairs.num_rows > 0
    assert set(pairs["frame"].to_pylist()) <= set(features["frame"].to_pylist())
    color_width = frames.filter(pc.equal(frames["scene"], scene))["color_width"][0].as_py()
    assert 0 <= min(pairs["u"].to_pylist()) and max(pairs["u"].to_pylist()) < color_width
    points = pq.read_table(scenes_dir / "points" / f"{scene}.parquet")
    assert max(pairs["point_index"].to_pylist()) < points.num_rows

    assert main(command) == 0
    second = capsys.readouterr().out
    assert " ran " not in second and second.count("cached") == 3, second
