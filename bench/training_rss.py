"""Worker peak RSS of the streamed training stages other than PPKT (I2P-MAE pretraining, classification,
segmentation finetuning) on N and 2N synthetic objects / scenes; bench/scale.py prints it next to PPKT's.

Each stage runs for real (its `run`, Ray Train, Ray Data) on artefacts built here; the RSS is the training
worker's own (loss.parquet or trials.parquet `worker_peak_rss_mb`, rank 0). Beside it the bench prints the
bytes of the training split a whole-split loader would hold in each worker, which is what the streamed
path no longer holds.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

OBJECT_POINTS = 512
I2P_MAE_MODEL = dict(num_groups=(64, 32, 8), group_sizes=(16, 8, 4), encoder_dims=(24, 48, 96),
                     encoder_depths=(1, 1, 1), num_heads=3, token_embed_dims=(16, 32, 64), warmup_steps=1)


@dataclass(frozen=True)
class StageRss:
    stage: str
    items: str  # what was doubled
    small: int
    large: int
    rss_small_mb: float
    rss_large_mb: float
    split_small_mb: float  # the training split's bytes in memory (what a whole-split loader held)
    split_large_mb: float

    @property
    def growth(self) -> float:
        return self.rss_large_mb / self.rss_small_mb


def measure(root: Path, objects_per_class: int, scenes: int, steps: int) -> list[StageRss]:
    """I2P-MAE and classification on 8 classes x objects_per_class and x 2 training objects, finetuning on
    `scenes` and 2 x `scenes` synthetic scenes, `steps` steps each (classification: one epoch)."""
    small, large = (_object_runs(root, count, steps) for count in (objects_per_class, 2 * objects_per_class))
    scene_small, scene_large = (_scene_run(root, count, steps) for count in (scenes, 2 * scenes))
    rows = [StageRss(stage, "training objects", small["objects"], large["objects"], small[stage], large[stage],
                     small[f"{stage}_split_mb"], large[f"{stage}_split_mb"]) for stage in ("i2p_mae", "classify")]
    rows.append(StageRss("finetune", "training scenes", scene_small["scenes"], scene_large["scenes"],
                         scene_small["finetune"], scene_large["finetune"], scene_small["split_mb"],
                         scene_large["split_mb"]))
    return rows


def _object_runs(root: Path, per_class: int, steps: int) -> dict:
    from stages import classify, objects, pretrain, views2d

    from pix2point.io.objects_table import read_objects
    from pix2point.io.views_table import read_views

    objects_dir, views_dir = root / f"objects-{per_class}", root / f"views2d-{per_class}"
    if not (objects_dir / "objects.parquet").exists():
        synthetic = objects.SyntheticParams(num_classes=8, train_per_class=per_class, test_per_class=2, seed=0)
        objects_dir.mkdir(parents=True, exist_ok=True)
        objects.run(objects.Params(synthetic=synthetic, points_per_object=OBJECT_POINTS), {}, objects_dir)
    if not (views_dir / "views.parquet").exists():
        views_dir.mkdir(parents=True, exist_ok=True)
        views2d.run(views2d.Params(image_size=64, batch_size=16, objects_per_task=64), {"objects": objects_dir}, views_dir)
    inputs = {"objects": objects_dir, "views2d": views_dir}
    train, views = read_objects(objects_dir, "train"), read_views(views_dir, "train")
    result = {"objects": len(train.labels), "classify_split_mb": (train.points.nbytes + train.normals.nbytes) / 2**20,
              "i2p_mae_split_mb": (train.points.nbytes + views.features.nbytes + views.saliency.nbytes) / 2**20}
    del train, views
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        out = Path(tmp) / "i2p_mae"
        out.mkdir()
        params = pretrain.I2PMAEParams(**I2P_MAE_MODEL, batch_size=16, steps=steps, checkpoint_every=steps,
                                       cpus_per_worker=1)
        pretrain.run(params, inputs, out, scratch=Path(tmp) / "scratch-i2p")
        result["i2p_mae"] = max(pq.read_table(out / "loss.parquet")["worker_peak_rss_mb"].to_pylist())
        out = Path(tmp) / "classify"
        out.mkdir()
        params = classify.Params(variants=[{"init": "scratch", "fip": "all"}], shots=["all"], seeds=[0], epochs=1,
                                 batch_size=max(1, result["objects"] // steps), voxel_size=0.1, drift_repeats=0,
                                 checkpoint_every=steps, cpus_per_worker=1)
        classify.run(params, inputs, out, scratch=Path(tmp) / "scratch-classify")
        result["classify"] = max(pq.read_table(out / "trials.parquet")["worker_peak_rss_mb"].to_pylist())
    return result


def _scene_run(root: Path, count: int, steps: int) -> dict:
    import torch

    from stages import finetune, scenes

    from pix2point.io.scenes_table import read_points
    from pix2point.models.backbone import BackboneSpec, build_backbone, save_backbone
    from pix2point.training.segmentation_data import split_scenes

    scenes_dir = root / f"scenes-{count}"
    if not (scenes_dir / "splits.parquet").exists():
        scenes_dir.mkdir(parents=True, exist_ok=True)
        synthetic = scenes.SyntheticParams(num_scenes=count, frames=1, color_size=(160, 120), depth_size=(128, 96),
                                           points=60_000)
        scenes.run(scenes.Params(synthetic=synthetic, val_fraction=0.25), {}, scenes_dir)
    names = split_scenes(scenes_dir, "train")
    split_mb = sum(sum(a.nbytes for a in vars(read_points(scenes_dir, name)).values()) for name in names) / 2**20
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        pretrained = Path(tmp) / "pretrain"  # a random backbone: finetune's scratch runs only read its spec
        pretrained.mkdir()
        spec = BackboneSpec("tiny", "rgb", 0.05)
        torch.manual_seed(0)
        save_backbone(pretrained, build_backbone(spec), spec)
        out = Path(tmp) / "finetune"
        out.mkdir()
        params = finetune.Params(inits=["scratch"], label_fractions=[1.0], seeds=[0], steps=steps, eval_every=steps,
                                 scenes_per_batch=2, drift_repeats=0, checkpoint_every=steps, cpus_per_worker=1)
        finetune.run(params, {"scenes": scenes_dir, "pretrain": pretrained}, out, scratch=Path(tmp) / "scratch")
        rss = max(pq.read_table(out / "trials.parquet")["worker_peak_rss_mb"].to_pylist())
    return {"scenes": len(names), "finetune": rss, "split_mb": split_mb}


def print_rows(rows: list[StageRss]) -> None:
    for row in rows:
        print(f"  {row.stage:9} {row.items}: {row.small} -> {row.large}; worker peak RSS {row.rss_small_mb:.0f} -> "
              f"{row.rss_large_mb:.0f} MB (x{row.growth:.3f}); the training split a whole-split loader held: "
              f"{row.split_small_mb:.1f} -> {row.split_large_mb:.1f} MB")
