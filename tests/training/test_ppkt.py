"""PPKT: batches map each pair to the right voxel and pixel; the 2D flip meets the mirrored image's teacher map;
global batch params split among workers; training lowers the loss."""

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pydantic
import pytest
import torch

from stages import pretrain

from pix2point.models.backbone import BackboneSpec, load_backbone
from pix2point.models.upl import UpsamplingProjection
from stages.features2d import mirror_images, teacher_features

from pix2point.models.teachers import build_teacher
from pix2point.training.augment import PairCrop, PointAugmentation, augment_points, crop_window, cuboid_dropped, pairs_in_crop
from pix2point.training.pretraining.ppkt import PPKTConfig, make_batch
from pix2point.io.samples_table import FrameSample
from tests.reference_loaders import PretrainFrames

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


def test_under_the_flip_a_point_meets_the_teacher_map_of_the_mirrored_image():
    # A real teacher on a real-looking image (left-right asymmetric gradients and blocks), so that the map of
    # the mirrored image is not the mirrored map: SLidR flips the image before the teacher runs.
    rng = np.random.default_rng(2)
    width, height = 96, 64
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.linspace(0, 255, width)[None, :]
    image[10:40, 5:30, 1], image[30:60, 50:90, 2] = 220, 180
    teacher = build_teacher("efficientnet_lite0", "stage3")
    plain = teacher_features(teacher, image[None], torch.device("cpu"))[0]
    mirrored = teacher_features(teacher, mirror_images(image[None]), torch.device("cpu"))[0]
    points = 200
    pixels = np.stack([rng.integers(0, width, points), rng.integers(0, height, points)], 1)
    sample = FrameSample(xyz=rng.uniform(-1, 1, (points, 3)).astype(np.float32),
                         rgb=np.zeros((points, 3), np.uint8), pixels=pixels, image_size=(width, height),
                         features=plain, features_mirrored=mirrored)
    batch = make_batch([sample] * 8, config(flip_2d=True, num_pairs=8 * points), np.random.default_rng(5))
    upl = UpsamplingProjection(plain.shape[0], 8, align_corners=False)

    def embed(features: np.ndarray, u: np.ndarray, v: np.ndarray) -> torch.Tensor:
        return upl.project_at_pixels(torch.from_numpy(features.astype(np.float32))[None], torch.zeros(len(u)),
                                     torch.from_numpy(u).float(), torch.from_numpy(v).float(), (width, height))

    flips = []
    with torch.no_grad():
        for b in range(8):
            rows = (batch.sample == b).numpy()
            u, v = batch.u.numpy()[rows], batch.v.numpy()[rows]
            original_u = pixels[batch.point.numpy()[rows], 0]
            met = upl.project_at_pixels(batch.teacher_features, batch.sample[rows], batch.u[rows], batch.v[rows],
                                        (width, height))
            flipped = not np.array_equal(u, original_u)
            flips.append(flipped)
            if flipped:
                np.testing.assert_array_equal(u, width - 1 - original_u)
                torch.testing.assert_close(met, embed(mirrored, width - 1 - original_u, v), rtol=1e-4, atol=1e-4)
                unflipped = embed(plain, original_u, v)
                assert (met - unflipped).norm(dim=1).mean() > 0.1  # the flip changes what a point meets
            else:
                torch.testing.assert_close(met, embed(plain, original_u, v), rtol=1e-4, atol=1e-4)
    assert any(flips) and not all(flips)  # p = 0.5 over 8 frames


def test_flip_without_mirrored_maps_is_an_error_naming_the_param():
    sample = frame_sample(np.random.default_rng(6))
    with pytest.raises(ValueError, match="flip_2d needs .* mirrored: true"):
        for seed in range(10):  # the first flip draw raises
            make_batch([sample], config(flip_2d=True), np.random.default_rng(seed))


def test_batch_params_are_global_and_split_among_workers(smoke_spine, tmp_path):
    params = pretrain.PPKTParams(frames_per_batch=24, num_pairs=4096, num_workers=8)
    inputs = {name: smoke_spine[name] for name in ("scenes", "features2d", "pairs")}
    per_worker = pretrain.ppkt_config(params, inputs, tmp_path)
    assert (per_worker.frames_per_batch, per_worker.num_pairs) == (3, 512)
    with pytest.raises(pydantic.ValidationError, match="frames_per_batch=24 .* num_workers=5"):
        pretrain.PPKTParams(frames_per_batch=24, num_pairs=4100, num_workers=5)
    with pytest.raises(pydantic.ValidationError, match="num_pairs=4097 .* num_workers=3"):
        pretrain.PPKTParams(frames_per_batch=24, num_pairs=4097, num_workers=3)


def test_scannet_profile_draws_the_papers_batch_per_step_in_total():
    from pix2point.engine.pipeline import load_pipeline

    stage = load_pipeline(Path(__file__).resolve().parents[2] / "pipeline.yaml", "scannet").stages["pretrain"]
    params = stage.params
    assert (params.frames_per_batch, params.num_pairs, params.num_workers) == (24, 4096, 8)


def test_flip_on_features_without_mirrored_maps_is_rejected_before_training(smoke_spine, tmp_path):
    plain = tmp_path / "features2d"
    features_dir = smoke_spine["features2d"] / "features"
    (plain / "features").mkdir(parents=True)
    for shard in features_dir.glob("*.parquet"):
        table = pq.read_table(shard)
        metadata = {**table.schema.metadata, b"mirrored": b"false"}
        pq.write_table(table.drop_columns(["features_mirrored"]).replace_schema_metadata(metadata),
                       plain / "features" / shard.name)
    inputs = {"scenes": smoke_spine["scenes"], "features2d": plain, "pairs": smoke_spine["pairs"]}
    with pytest.raises(ValueError, match="flip_2d needs .* mirrored: true, or set flip_2d: false"):
        pretrain.ppkt_config(pretrain.PPKTParams(), inputs, tmp_path)
    assert pretrain.ppkt_config(pretrain.PPKTParams(flip_2d=False), inputs, tmp_path).flip_2d is False


def test_crop_windows_have_slidrs_area_and_ratio_and_stay_in_the_image():
    rng, crop, size = np.random.default_rng(7), PairCrop(), (640, 480)
    for _ in range(200):
        left, top, w, h = crop_window(size, rng, crop)
        assert 0 <= left and left + w <= 640 and 0 <= top and top + h <= 480
        assert 14 / 9 - 0.02 <= w / h <= 17 / 9 + 0.02
        assert w * h >= 0.3 * 640 * 480 * 0.98


def test_the_crop_keeps_exactly_the_pairs_inside_its_window_or_all_when_none_is_good_enough():
    rng = np.random.default_rng(8)
    pixels = np.stack([rng.integers(0, 640, 5000), rng.integers(0, 480, 5000)], 1)
    crop = PairCrop(min_pairs=1024)
    kept = pairs_in_crop(pixels, (640, 480), np.random.default_rng(9), crop)
    left, top, w, h = crop_window((640, 480), np.random.default_rng(9), crop)  # the same first draw
    inside = (pixels[:, 0] >= left) & (pixels[:, 0] < left + w) & (pixels[:, 1] >= top) & (pixels[:, 1] < top + h)
    np.testing.assert_array_equal(kept, np.flatnonzero(inside))
    assert 1024 < len(kept) < 5000
    hopeless = PairCrop(min_pairs=10 ** 6, min_fraction=1.0, attempts=3)
    np.testing.assert_array_equal(pairs_in_crop(pixels, (640, 480), rng, hopeless), np.arange(5000))


def test_dropped_cuboid_points_are_exactly_those_inside_a_small_box():
    rng = np.random.default_rng(10)
    xyz = rng.uniform(0, 4, (20000, 3)).astype(np.float32)
    dropped_any = False
    for _ in range(20):
        keep = cuboid_dropped(xyz, rng, min_kept=100)
        dropped = xyz[~keep]
        if len(dropped) == 0:
            continue
        dropped_any = True
        low, high = dropped.min(0), dropped.max(0)
        assert (high - low <= 0.2 * 4 + 1e-6).all()  # half-extent at most 0.1 of the cloud's extent
        assert not np.all((xyz[keep] > low) & (xyz[keep] < high), axis=1).any()  # nothing left inside
    assert dropped_any
    assert cuboid_dropped(xyz, rng, min_kept=len(xyz) + 1).all()  # too few would remain: the cloud stays whole


def test_crop_and_cuboid_drop_in_a_batch_keep_pairs_on_their_own_points():
    rng = np.random.default_rng(11)
    sample = frame_sample(rng, points=3000, size=(64, 48))
    batch = make_batch([sample], config(num_pairs=3000, crop_2d=PairCrop(min_pairs=200), drop_cuboids=100),
                       np.random.default_rng(12))
    assert 0 < len(batch.point) < 3000  # only pairs inside the window (and outside the cuboid) train
    assert batch.sparse.point_offsets[-1] <= 3000


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
    assert sample.features_mirrored.shape == sample.features.shape  # the smoke profile stores mirrored maps
    assert len(sample.xyz) == len(sample.pixels) > 0
    assert (sample.pixels[:, 0] < sample.image_size[0]).all() and (sample.pixels[:, 1] < sample.image_size[1]).all()


@pytest.mark.slow
def test_pretraining_with_two_ray_train_workers_lowers_the_loss(smoke_spine, tmp_path):
    params = pretrain.PPKTParams(backbone="tiny", voxel_size=0.05, num_pairs=512, frames_per_batch=4, steps=24,
                             learning_rate=0.05, checkpoint_every=12, num_workers=2, cpus_per_worker=1)
    inputs = {name: smoke_spine[name] for name in ("scenes", "features2d", "pairs")}
    (tmp_path / "out").mkdir()
    metrics = pretrain.run(params, inputs, tmp_path / "out", scratch=tmp_path / "scratch")
    loss = pq.read_table(tmp_path / "out" / "loss.parquet")["loss"].to_numpy()
    assert metrics["steps"] == 24 and len(loss) == 24
    assert loss[-6:].mean() < loss[:6].mean() - 0.2, loss
    model, spec = load_backbone(tmp_path / "out")
    assert spec == BackboneSpec("tiny", "rgb", 0.05) and model.out_channels == 16
