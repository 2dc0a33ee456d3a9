"""PPKT: batches map each pair to the right voxel and pixel; flips stay consistent; training lowers the loss."""

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from stages import pretrain

from pix2point.models.backbone import BackboneSpec, load_backbone
from pix2point.models.upl import UpsamplingProjection
from pix2point.training.augment import PointAugmentation, augment_points, flip_horizontal
from pix2point.training.ppkt import PPKTConfig, make_batch
from pix2point.training.ppkt_data import FrameSample, PretrainFrames

NO_AUGMENTATION = PointAugmentation(rotate_up=False, scale_range=(1.0, 1.0))


def config(**changes) -> PPKTConfig:
    defaults = dict(
        scenes_dir=Path("."), features_dir=Path("."), pairs_dir=Path("."), out=Path("."),
        backbone=BackboneSpec("tiny", "rgb", 0.1), dim=8, temperature=0.07, num_pairs=64, frames_per_batch=2,
        steps=1, learning_rate=0.1, momentum=0.9, weight_decay=0.0, augmentation=NO_AUGMENTATION, flip_2d=False,
        checkpoint_every=1, seed=0,
    )
    return PPKTConfig(**{**defaults, **changes})


def frame_sample(rng, points=300, size=(40, 30)) -> FrameSample:
    return FrameSample(
        xyz=rng.uniform(-1, 1, (points, 3)).astype(np.float32),
        rgb=rng.integers(0, 255, (points, 3), dtype=np.uint8),
        pixels=np.stack([rng.integers(0, size[0], points), rng.integers(0, size[1], points)], 1),
        image_size=size,
        features=rng.standard_normal((5, 3, 4)).astype(np.float16),
    )


def test_every_sampled_pair_uses_its_own_points_voxel_and_pixel():
    rng = np.random.default_rng(0)
    samples = [frame_sample(rng), frame_sample(rng)]
    batch = make_batch(samples, config(), np.random.default_rng(1))
    assert len(batch.point) == 64 and set(batch.sample.tolist()) == {0, 1}
    tensor = batch.sparse.sparse_tensor()
    rows = batch.sparse.feature_rows(tensor, batch.sample, batch.point)
    voxel_of_row = tensor.C[rows]
    xyz = np.stack([samples[b].xyz[p] for b, p in zip(batch.sample.tolist(), batch.point.tolist())])
    expected = np.floor(xyz / 0.1).astype(np.int32)
    assert torch.equal(voxel_of_row[:, 0], batch.sample.int())
    np.testing.assert_array_equal(voxel_of_row[:, 1:].numpy(), expected)
    pixels = np.stack([samples[b].pixels[p] for b, p in zip(batch.sample.tolist(), batch.point.tolist())])
    np.testing.assert_array_equal(torch.stack([batch.u, batch.v], 1).numpy(), pixels)


def test_flipping_features_and_columns_together_keeps_each_pixel_embedding():
    rng = np.random.default_rng(2)
    features = rng.standard_normal((6, 4, 5)).astype(np.float32)
    u, v = rng.integers(0, 40, 50), rng.integers(0, 32, 50)
    flipped, flipped_u = flip_horizontal(features, u, image_width=40)
    upl = UpsamplingProjection(6, 3, align_corners=False)
    at = lambda f, cols: upl.project_at_pixels(torch.from_numpy(f)[None], torch.zeros(50), torch.tensor(cols).float(),  # noqa: E731
                                               torch.tensor(v).float(), (40, 32))
    torch.testing.assert_close(at(flipped, flipped_u), at(features, u), rtol=1e-5, atol=1e-5)


def test_augmentation_rotates_about_up_and_scales_within_range():
    xyz = np.random.default_rng(3).uniform(-1, 1, (100, 3)).astype(np.float32)
    out = augment_points(xyz, np.random.default_rng(4), PointAugmentation(rotate_up=True, scale_range=(0.9, 1.1)))
    scale = np.linalg.norm(out, axis=1) / np.linalg.norm(xyz, axis=1)
    assert np.allclose(scale, scale[0], atol=1e-5) and 0.9 <= scale[0] <= 1.1
    np.testing.assert_allclose(out[:, 2], xyz[:, 2] * scale[0], rtol=1e-5)
    assert not np.allclose(out[:, :2], xyz[:, :2] * scale[0])


def test_frames_dataset_reads_smoke_artefacts(smoke_spine):
    frames = PretrainFrames(smoke_spine["scenes"], smoke_spine["features2d"], smoke_spine["pairs"], ["scene0000_00"])
    sample = frames[0]
    assert len(frames) == 3 and sample.features.dtype == np.float16
    assert len(sample.xyz) == len(sample.pixels) > 0
    assert (sample.pixels[:, 0] < sample.image_size[0]).all() and (sample.pixels[:, 1] < sample.image_size[1]).all()


@pytest.mark.slow
def test_pretraining_with_two_ray_train_workers_lowers_the_loss(smoke_spine, tmp_path):
    params = pretrain.PPKTParams(backbone="tiny", voxel_size=0.05, num_pairs=256, frames_per_batch=2, steps=24,
                             learning_rate=0.05, checkpoint_every=12, num_workers=2, cpus_per_worker=1)
    inputs = {name: smoke_spine[name] for name in ("scenes", "features2d", "pairs")}
    (tmp_path / "out").mkdir()
    metrics = pretrain.run(params, inputs, tmp_path / "out", scratch=tmp_path / "scratch")
    loss = pq.read_table(tmp_path / "out" / "loss.parquet")["loss"].to_numpy()
    assert metrics["steps"] == 24 and len(loss) == 24
    assert loss[-6:].mean() < loss[:6].mean() - 0.2, loss
    model, spec = load_backbone(tmp_path / "out")
    assert spec == BackboneSpec("tiny", "rgb", 0.05) and model.out_channels == 16
