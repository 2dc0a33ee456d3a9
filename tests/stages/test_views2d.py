"""The views2d stage end to end on a tiny objects artefact (real Ray tasks, real EfficientNet-Lite0 weights,
real Parquet), read back with plain pyarrow and with the contract reader."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from stages import objects, pretrain, views2d

from pix2point.geometry.orthographic import project_views
from pix2point.io.arrow import tensor_column, write_table
from pix2point.io.images import standardise_images
from pix2point.io.objects_table import read_objects
from pix2point.io.views_table import read_views, views_metadata
from pix2point.models.view_teachers import build_view_teacher
from tests.reference_loaders import load_object_views, sample_batch

POINTS = 64
SIZE = 64
PARAMS = views2d.Params(image_size=SIZE, batch_size=4, objects_per_task=10)


@pytest.fixture(scope="module")
def objects_dir(ray_runtime, tmp_path_factory):
    out = tmp_path_factory.mktemp("objects")
    synthetic = objects.SyntheticParams(num_classes=8, train_per_class=2, test_per_class=1, seed=3)
    objects.run(objects.Params(synthetic=synthetic, points_per_object=POINTS), {}, out)
    return out


@pytest.fixture(scope="module")
def views_run(objects_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("views")
    return out, views2d.run(PARAMS, {"objects": objects_dir}, out)


def test_the_table_follows_objects_order_with_declared_shapes(objects_dir, views_run):
    out, metrics = views_run
    assert sorted(path.name for path in out.iterdir()) == ["views.parquet"]  # parts joined and removed
    table = pq.read_table(out / "views.parquet")
    source = pq.read_table(objects_dir / "objects.parquet", columns=["shape", "split"])
    assert table["shape"].to_pylist() == source["shape"].to_pylist()
    assert table["split"].to_pylist() == source["split"].to_pylist()
    shapes = {name: table.schema.field(name).type.shape for name in ("features", "saliency", "pixels")}
    assert shapes == {"features": [3, POINTS, 40], "saliency": [3, POINTS], "pixels": [3, POINTS, 2]}
    assert table.schema.field("features").type.value_type == pa.float16()
    # 8 test objects, 16 train in chunks of 10: row groups of at most 4 rows, one split each.
    row_groups = pq.ParquetFile(out / "views.parquet").metadata
    assert [row_groups.row_group(i).num_rows for i in range(row_groups.num_row_groups)] == [4, 4, 4, 4, 2, 4, 2]
    assert metrics["objects"] == 24 and metrics["views"] == 3 and metrics["tasks"] == 3
    assert metrics["feature_shape"] == [3, POINTS, 40]
    metadata = views_metadata(out)
    assert metadata["teacher"] == "efficientnet_lite0" and metadata["layer"] == "stage3"
    assert metadata["views"] == [[0, 1, 2], [2, 0, 1], [1, 2, 0]] and metadata["image_size"] == SIZE
    assert metadata["saliency"]["method"] == "activation_energy"


def test_pixels_and_saliency(objects_dir, views_run):
    out, _ = views_run
    views, train = read_views(out, "train"), read_objects(objects_dir, "train")
    assert views.shapes == train.shapes
    np.testing.assert_array_equal(views.pixels, project_views(train.points, SIZE, PARAMS.splat).pixels)
    assert views.saliency.dtype == np.float32
    assert views.saliency.min() >= 0 and views.saliency.max() <= 1
    # Each view's map is a distribution over its (SIZE / 32)^2 cells; some point of every view sits on a cell
    # above the map's mean, since the object is what the teacher responds to.
    assert (views.saliency.max(axis=2) > 1 / (SIZE // 32) ** 2).all()
    assert np.isfinite(views.features.astype(np.float32)).all()


def test_features_are_the_upsampled_teacher_map_at_each_pixel(objects_dir, views_run):
    out, _ = views_run
    views, test = read_views(out, "test"), read_objects(objects_dir, "test")
    projection = project_views(test.points[:2], SIZE, PARAMS.splat)
    teacher = build_view_teacher("efficientnet_lite0")
    gray = torch.from_numpy(projection.images()).reshape(6, 1, SIZE, SIZE).repeat(1, 3, 1, 1)
    with torch.inference_mode():
        maps, _ = teacher(standardise_images(gray, teacher.mean, teacher.std))
    full = F.interpolate(maps, size=(SIZE, SIZE), mode="bilinear").view(2, 3, 40, SIZE, SIZE)
    for obj in range(2):
        for view in range(3):
            u, v = projection.pixels[obj, view].T
            expected = full[obj, view][:, v, u].T.half().numpy()
            np.testing.assert_allclose(views.features[obj, view], expected, rtol=1e-2, atol=2e-3)


def test_missing_objects_table_is_an_error_naming_it(ray_runtime, tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "objects.parquet")):
        views2d.run(PARAMS, {"objects": tmp_path}, tmp_path / "views")


def test_nan_points_are_an_error_naming_the_file_and_shape(objects_dir, tmp_path):
    broken = tmp_path / "objects"
    shutil.copytree(objects_dir, broken)
    table = pq.read_table(broken / "objects.parquet")
    points = table["points"].combine_chunks().to_numpy_ndarray().copy()
    points[5, 7, 1] = np.nan
    table = table.set_column(table.schema.get_field_index("points"), table.schema.field("points"), tensor_column(points))
    write_table(table, broken / "objects.parquet")
    bad_shape = table["shape"][5].as_py()
    with pytest.raises(ValueError, match=rf"objects\.parquet: 1 objects have non-finite points: {bad_shape}"):
        views2d.run(PARAMS, {"objects": broken}, tmp_path / "views")
    assert not (tmp_path / "views").exists()


def test_params_are_checked():
    with pytest.raises(ValidationError, match="multiple of 32"):
        views2d.Params(image_size=112)
    with pytest.raises(ValidationError, match="odd"):
        views2d.Params(splat=4)
    with pytest.raises(ValidationError, match="needs image_size 224"):
        views2d.Params(teacher="clip_vit_b16", teacher_weights="/weights/clip.pt", image_size=256)
    with pytest.raises(ValidationError, match="needs teacher_weights"):
        views2d.Params(teacher="clip_vit_b16")
    with pytest.raises(ValidationError, match="no layer 'stage4'"):
        views2d.Params(layer="stage4")
    with pytest.raises(ValidationError, match="image_sise"):
        views2d.Params(image_sise=224)


def test_a_training_samples_2d_targets_are_the_views_of_exactly_the_cloud_the_encoder_sees(objects_dir, views_run):
    out, _ = views_run
    params = pretrain.I2PMAEParams()  # the defaults: guided masking and the 2D target
    train, views = read_objects(objects_dir, "train"), read_views(out, "train")
    batch = sample_batch(load_object_views(objects_dir, out), 6, np.random.default_rng(0), params.scale_range,
                         params.translate)
    for cloud, targets, saliency in zip(batch.points.numpy(), batch.features.numpy(), batch.saliency.numpy()):
        (row,) = [i for i, points in enumerate(train.points) if np.array_equal(points, cloud)]
        # Projecting the encoder's cloud again gives the very pixels views2d read its features and saliency at.
        np.testing.assert_array_equal(project_views(cloud[None], SIZE, PARAMS.splat).pixels[0], views.pixels[row])
        np.testing.assert_array_equal(targets, views.features[row].transpose(1, 0, 2).reshape(POINTS, -1))
        np.testing.assert_allclose(saliency, views.saliency[row].mean(axis=0), rtol=1e-6)
    with pytest.raises(ValidationError, match="would not match it"):
        pretrain.I2PMAEParams(scale_range=(2 / 3, 3 / 2), translate=0.2)
    assert pretrain.I2PMAEParams(masking="random", target_2d=False, scale_range=(2 / 3, 3 / 2), translate=0.2)
