"""The objects stage end to end (Ray tasks, real Parquet), read back with plain pyarrow and the contract readers."""

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stages import objects

from pix2point.io.modelnet import ObjectReadError
from pix2point.io.objects_table import class_names, objects_metadata, read_objects

POINTS = 64
TINY = objects.SyntheticParams(num_classes=8, train_per_class=2, test_per_class=1, seed=5)


@pytest.fixture(scope="module")
def synthetic_objects(ray_runtime, tmp_path_factory):
    out = tmp_path_factory.mktemp("objects")
    metrics = objects.run(objects.Params(synthetic=TINY, points_per_object=POINTS), {}, out)
    return out, metrics


def test_synthetic_objects_land_in_the_objects_contract(synthetic_objects):
    out, metrics = synthetic_objects
    assert metrics == {"classes": 8, "points_per_object": POINTS, "train_objects": 16, "test_objects": 8}
    table = pq.read_table(out / "objects.parquet")
    assert table.num_rows == 24
    assert table.schema.field("label").type == pa.int16() and table.schema.field("split").type == pa.string()
    cloud = table.schema.field("points").type
    assert cloud.extension_name == "arrow.fixed_shape_tensor" and cloud.shape == [POINTS, 3]
    assert cloud.value_type == pa.float32() and table.schema.field("normals").type == cloud
    names = json.loads(table.schema.metadata[b"class_names"])
    assert names[:3] == ["sphere", "box", "cylinder"] and len(names) == 8
    assert table["split"].to_pylist() == ["test"] * 8 + ["train"] * 16  # grouped by split for row-group skipping
    assert sorted(table["shape"].to_pylist()[:8]) == [f"{name}_0003" for name in sorted(names)]
    # Small row groups (ROW_GROUP_ROWS objects), so a training step can read one object without its split.
    metadata = pq.ParquetFile(out / "objects.parquet").metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [16, 8]


def test_readers_return_one_split_as_arrays(synthetic_objects):
    out, _ = synthetic_objects
    train = read_objects(out, "train")
    assert train.points.shape == train.normals.shape == (16, POINTS, 3) and train.points.dtype == np.float32
    assert np.bincount(train.labels, minlength=8).tolist() == [2] * 8
    assert train.shapes[:2] == ["sphere_0001", "sphere_0002"]
    np.testing.assert_allclose(np.linalg.norm(train.normals, axis=2), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(train.points, axis=2).max(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(train.points.mean(axis=1), 0.0, atol=1e-5)
    assert class_names(out)[train.labels[-1]] == "lamp"
    assert objects_metadata(out) | {"class_names": None} == {
        "class_names": None, "points_per_object": POINTS, "up_axis": 1, "normalized": True,
    }
    with pytest.raises(ValueError, match="no split 'val'"):
        read_objects(out, "val")


def test_synthetic_source_is_a_modelnet_tree_in_the_artefact(synthetic_objects):
    out, _ = synthetic_objects
    source = out / "source"
    assert (source / "modelnet40_shape_names.txt").read_text().split() == class_names(out)
    assert (source / "modelnet40_test.txt").read_text().split()[0] == "sphere_0003"
    assert len(np.loadtxt(source / "chair" / "chair_0002.txt", delimiter=",")) == POINTS


def test_modelnet_source_reads_a_tree_and_samples_rows(synthetic_objects, tmp_path):
    root = synthetic_objects[0] / "source"
    params = objects.Params(source="modelnet40", root=root, points_per_object=32, normalize=False)
    objects.run(params, {}, tmp_path / "first")
    first = read_objects(tmp_path / "first", "test")
    raw = np.loadtxt(root / "box" / "box_0003.txt", delimiter=",", dtype=np.float32)
    np.testing.assert_allclose(first.points[first.shapes.index("box_0003")], raw[:32, :3])
    objects.run(params.model_copy(update={"sampling": "random"}), {}, tmp_path / "random")
    drawn = read_objects(tmp_path / "random", "test")
    assert drawn.shapes == first.shapes and not np.allclose(drawn.points, first.points)


def test_malformed_shape_file_fails_the_stage_naming_it(synthetic_objects, tmp_path):
    root = tmp_path / "modelnet"
    shutil.copytree(synthetic_objects[0] / "source", root)
    (root / "cone" / "cone_0001.txt").write_text("0.1,0.2,0.3,0,0,1\n" * 10)
    with pytest.raises(ObjectReadError, match=f"{root / 'cone' / 'cone_0001.txt'}: has 10 points, {POINTS} are needed"):
        objects.run(objects.Params(source="modelnet40", root=root, points_per_object=POINTS), {}, tmp_path / "out")
    (root / "cone" / "cone_0001.txt").unlink()
    with pytest.raises(ObjectReadError, match="modelnet40_train.txt names shape 'cone_0001'"):
        objects.run(objects.Params(source="modelnet40", root=root, points_per_object=POINTS), {}, tmp_path / "out2")


def test_params_reject_a_missing_or_relative_root_and_too_few_classes():
    with pytest.raises(ValueError, match="needs `root`"):
        objects.Params(source="modelnet40")
    with pytest.raises(ValueError, match="absolute path"):
        objects.Params(source="modelnet40", root="data/modelnet40_normal_resampled")
    with pytest.raises(ValueError, match="num_classes"):
        objects.Params(synthetic={"num_classes": 4})
    with pytest.raises(ValueError, match="points_per_objects"):
        objects.Params(points_per_objects=1024)


def test_shapenet55_source_reads_point_bert_layout_without_normals(ray_runtime, tmp_path):
    root = tmp_path / "ShapeNet55-34"
    names = {"train": ["02691156-aa.npy", "03001627-bb.npy", "03001627-cc.npy"], "test": ["02691156-dd.npy"]}
    (root / "shapenet_pc").mkdir(parents=True)
    (root / "ShapeNet-55").mkdir()
    for split, files in names.items():
        (root / "ShapeNet-55" / f"{split}.txt").write_text("\n".join(files) + "\n")
        for i, name in enumerate(files):
            np.save(root / "shapenet_pc" / name, np.random.default_rng(i).normal(size=(40, 3)).astype(np.float32))
    objects.run(objects.Params(source="shapenet55", root=root, points_per_object=32, normalize=False), {}, tmp_path / "out")
    train = read_objects(tmp_path / "out", "train")
    assert train.normals is None and "normals" not in pq.read_schema(tmp_path / "out" / "objects.parquet").names
    assert train.shapes == ["02691156-aa", "03001627-bb", "03001627-cc"] and train.labels.tolist() == [0, 1, 1]
    np.testing.assert_array_equal(train.points[1], np.load(root / "shapenet_pc" / "03001627-bb.npy")[:32])
    assert class_names(tmp_path / "out") == ["02691156", "03001627"] and objects_metadata(tmp_path / "out")["up_axis"] == 1
    np.save(root / "shapenet_pc" / "02691156-dd.npy", np.zeros((40, 2), np.float32))
    with pytest.raises(ObjectReadError, match="02691156-dd.npy: expected float points of shape"):
        objects.run(objects.Params(source="shapenet55", root=root, points_per_object=32), {}, tmp_path / "bad")


def test_scanobjectnn_source_reads_the_variant_files_sampled_and_normalised(tmp_path):
    import h5py

    root = tmp_path / "h5_files"
    (root / "main_split_nobg").mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    for split, prefix, count in (("train", "training", 4), ("test", "test", 2)):
        written[split] = rng.normal(size=(count, 48, 3)).astype(np.float32)
        with h5py.File(root / "main_split_nobg" / f"{prefix}_objectdataset.h5", "w") as h5:
            h5.create_dataset("data", data=written[split])
            h5.create_dataset("label", data=np.arange(count, dtype=np.uint8) + 10)
    params = objects.Params(source="scanobjectnn", root=root, variant="OBJ-ONLY", points_per_object=32)
    metrics = objects.run(params, {}, tmp_path / "out")
    assert metrics == {"classes": 15, "points_per_object": 32, "train_objects": 4, "test_objects": 2}
    test = read_objects(tmp_path / "out", "test")
    assert test.shapes == ["test_00000", "test_00001"] and test.labels.tolist() == [10, 11] and test.normals is None
    np.testing.assert_allclose(test.points[1], objects.normalize_to_unit_sphere(written["test"][1:2, :32])[0], atol=1e-6)
    assert class_names(tmp_path / "out")[10:] == ["bed", "pillow", "sink", "sofa", "toilet"]
    drawn = objects.run(params.model_copy(update={"sampling": "random"}), {}, tmp_path / "random")
    assert drawn == metrics and not np.allclose(read_objects(tmp_path / "random", "test").points, test.points)
    with pytest.raises(ObjectReadError, match=f"missing file: {root / 'main_split' / 'training_objectdataset_augmentedrot_scale75.h5'}"):
        objects.run(params.model_copy(update={"variant": "PB-T50-RS"}), {}, tmp_path / "hardest")
