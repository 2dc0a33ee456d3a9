"""Worker peak RSS of the streamed training stages other than PPKT (I2P-MAE pretraining, classification,
segmentation finetuning) on N and 2N synthetic objects / scenes; bench/scale.py prints it next to PPKT's.

Each stage runs for real (its `run`, Ray Train, Ray Data) on artefacts built here and cached under the bench's
artefacts folder (built in a `.partial` folder, renamed when complete, so a rerun reuses them); the RSS is the
training worker's own (loss.parquet or trials.parquet `worker_peak_rss_mb`, rank 0). Beside it the bench
prints the bytes of the training split a whole-split loader held in each worker, which is what the streamed
path no longer holds, and what that loader's worker would have grown by: the sizes must make that growth
large, or a flat RSS would prove nothing.

Sizes: many small items, since a worker's own memory grows with the size of a step's items (a batch of
32 objects of 8192 points took a classification worker to 2.4 GB, 2-scene batches of 1 M-point scans a
finetuning worker to 2 GB) while the split grows with their number. I2P-MAE holds per object its points
and 3 views' per-point 2D features (40 fp16 channels) and saliency, ~270 kB at 1024 points; classification
points and normals (24 B a point: 16k-point objects in batches of 8); finetuning xyz, rgb and label (17 B a
point: 250k-point scans, 2 a batch).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pyarrow.parquet as pq

I2P_MAE_MODEL = dict(num_groups=(64, 32, 8), group_sizes=(16, 8, 4), encoder_dims=(24, 48, 96),
                     encoder_depths=(1, 1, 1), num_heads=3, token_embed_dims=(16, 32, 64), warmup_steps=1)
CLASSES = 8
VAL_SCENES = 2  # finetuning's validation scenes, the same number at N and 2N


@dataclass(frozen=True)
class Sizes:
    """The N of each stage's run (its 2N run doubles the objects or scenes, never their size)."""

    mae_objects_per_class: int = 96  # x 8 classes: I2P-MAE's training objects
    mae_object_points: int = 1024
    classify_objects_per_class: int = 64
    classify_object_points: int = 16_384
    scenes: int = 48  # finetuning's training scenes (+ VAL_SCENES)
    scene_points: int = 250_000
    steps: int = 8  # of I2P-MAE and finetuning; classification trains one epoch
    classify_batch: int = 8  # the same batch at N and 2N (a batch that grew with N would grow the RSS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """bench/scale.py's options for these runs, defaults from `Sizes`."""
    default = Sizes()
    for name, help_text in (("mae_objects_per_class", f"I2P-MAE training objects per class ({CLASSES} classes)"),
                            ("mae_object_points", "points per I2P-MAE object"),
                            ("classify_objects_per_class", f"classification training objects per class ({CLASSES} classes)"),
                            ("classify_object_points", "points per classification object"),
                            ("scenes", f"finetuning training scenes (+ {VAL_SCENES} validation)"),
                            ("scene_points", "points per finetuning scan"),
                            ("steps", "steps of the I2P-MAE and finetuning runs"),
                            ("classify_batch", "classification batch (one epoch)")):
        parser.add_argument(f"--rss-{name.replace('_', '-')}", dest=f"rss_{name}", type=int,
                            default=getattr(default, name), help=help_text)


def sizes_from(args: argparse.Namespace) -> Sizes:
    return Sizes(**{name: getattr(args, f"rss_{name}") for name in Sizes.__dataclass_fields__})


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
    seconds: float  # both runs, inputs built included (unless cached)

    @property
    def growth(self) -> float:
        return self.rss_large_mb / self.rss_small_mb

    @property
    def whole_split_growth(self) -> float:
        """The growth a whole-split loader's worker would show, estimated as this worker's RSS plus the split
        it held (its other memory taken as the streamed worker's)."""
        return (self.rss_small_mb + self.split_large_mb) / (self.rss_small_mb + self.split_small_mb)


def measure(root: Path, sizes: Sizes) -> list[StageRss]:
    """I2P-MAE, classification and finetuning on N and 2N items (`sizes`), each run for real."""
    started = time.perf_counter()
    mae = [_i2p_mae_run(root, per_class, sizes) for per_class in (sizes.mae_objects_per_class,
                                                                   2 * sizes.mae_objects_per_class)]
    seconds = [time.perf_counter() - started]
    classify = [_classify_run(root, per_class, sizes) for per_class in (sizes.classify_objects_per_class,
                                                                         2 * sizes.classify_objects_per_class)]
    seconds.append(time.perf_counter() - started - sum(seconds))
    scenes = [_finetune_run(root, count, sizes) for count in (sizes.scenes, 2 * sizes.scenes)]
    seconds.append(time.perf_counter() - started - sum(seconds))
    return [StageRss("i2p_mae", f"training objects of {sizes.mae_object_points} points", *_pair(mae), seconds[0]),
            StageRss("classify", f"training objects of {sizes.classify_object_points} points", *_pair(classify),
                     seconds[1]),
            StageRss("finetune", f"training scenes of {sizes.scene_points} points", *_pair(scenes), seconds[2])]


def _pair(runs: list[tuple[int, float, float]]) -> tuple:
    (n_small, rss_small, split_small), (n_large, rss_large, split_large) = runs
    return n_small, n_large, rss_small, rss_large, split_small, split_large


def _cached(path: Path, build: Callable[[Path], None]) -> Path:
    """`path`, built by `build` into a sibling `.partial` folder and renamed once complete (a killed build
    leaves no folder that looks finished)."""
    if not path.exists():
        partial = path.with_name(path.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        build(partial)
        partial.rename(path)
    return path


def _objects(root: Path, per_class: int, points: int) -> Path:
    from stages import objects

    synthetic = objects.SyntheticParams(num_classes=CLASSES, train_per_class=per_class, test_per_class=2, seed=0)
    return _cached(root / f"objects-{per_class}x{points}",
                   lambda out: objects.run(objects.Params(synthetic=synthetic, points_per_object=points), {}, out))


def _views(root: Path, objects_dir: Path) -> Path:
    from stages import views2d

    params = views2d.Params(image_size=64, batch_size=16, objects_per_task=64)
    return _cached(root / objects_dir.name.replace("objects", "views2d"),
                   lambda out: views2d.run(params, {"objects": objects_dir}, out))


def _i2p_mae_run(root: Path, per_class: int, sizes: Sizes) -> tuple[int, float, float]:
    from stages import pretrain

    from pix2point.io.objects_table import read_objects
    from pix2point.io.views_table import read_views

    objects_dir = _objects(root, per_class, sizes.mae_object_points)
    views_dir = _views(root, objects_dir)
    train, views = read_objects(objects_dir, "train"), read_views(views_dir, "train")
    count, split_mb = len(train.labels), (train.points.nbytes + views.features.nbytes + views.saliency.nbytes) / 2**20
    del train, views
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        out = Path(tmp) / "i2p_mae"
        out.mkdir()
        params = pretrain.I2PMAEParams(**I2P_MAE_MODEL, batch_size=16, steps=sizes.steps,
                                       checkpoint_every=sizes.steps, cpus_per_worker=1)
        pretrain.run(params, {"objects": objects_dir, "views2d": views_dir}, out, scratch=Path(tmp) / "scratch")
        rss = max(pq.read_table(out / "loss.parquet")["worker_peak_rss_mb"].to_pylist())
    return count, rss, split_mb


def _classify_run(root: Path, per_class: int, sizes: Sizes) -> tuple[int, float, float]:
    from stages import classify

    from pix2point.io.objects_table import read_objects

    objects_dir = _objects(root, per_class, sizes.classify_object_points)
    train = read_objects(objects_dir, "train")
    count, split_mb = len(train.labels), (train.points.nbytes + train.normals.nbytes) / 2**20
    del train
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        out = Path(tmp) / "classify"
        out.mkdir()
        params = classify.Params(variants=[{"init": "scratch", "fip": "all"}], shots=["all"], seeds=[0], epochs=1,
                                 batch_size=sizes.classify_batch, voxel_size=0.1, drift_repeats=0,
                                 checkpoint_every=10_000, cpus_per_worker=1)
        classify.run(params, {"objects": objects_dir}, out, scratch=Path(tmp) / "scratch")
        rss = max(pq.read_table(out / "trials.parquet")["worker_peak_rss_mb"].to_pylist())
    return count, rss, split_mb


def _scenes(root: Path, count: int, points: int) -> Path:
    from stages import scenes

    synthetic = scenes.SyntheticParams(num_scenes=count + VAL_SCENES, frames=1, color_size=(160, 120),
                                       depth_size=(128, 96), points=points)
    val = [f"scene{i:04d}_00" for i in range(VAL_SCENES)]
    return _cached(root / f"scenes-{count}x{points}",
                   lambda out: scenes.run(scenes.Params(synthetic=synthetic, val_scenes=val), {}, out))


def _finetune_run(root: Path, count: int, sizes: Sizes) -> tuple[int, float, float]:
    import torch

    from stages import finetune

    from pix2point.io.scenes_table import read_points
    from pix2point.models.backbone import BackboneSpec, build_backbone, save_backbone
    from pix2point.training.finetuning.segmentation_data import split_scenes

    scenes_dir = _scenes(root, count, sizes.scene_points)
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
        params = finetune.Params(inits=["scratch"], label_fractions=[1.0], seeds=[0], steps=sizes.steps,
                                 eval_every=sizes.steps, scenes_per_batch=2, drift_repeats=0,
                                 checkpoint_every=sizes.steps, cpus_per_worker=1)
        finetune.run(params, {"scenes": scenes_dir, "pretrain": pretrained}, out, scratch=Path(tmp) / "scratch")
        rss = max(pq.read_table(out / "trials.parquet")["worker_peak_rss_mb"].to_pylist())
    return len(names), rss, split_mb


def print_rows(rows: list[StageRss]) -> None:
    for row in rows:
        extra = row.split_large_mb - row.split_small_mb
        print(f"  {row.stage:9} {row.items}: {row.small} -> {row.large}; worker peak RSS {row.rss_small_mb:.0f} -> "
              f"{row.rss_large_mb:.0f} MB (x{row.growth:.3f}); the training split a whole-split loader held: "
              f"{row.split_small_mb:.0f} -> {row.split_large_mb:.0f} MB (+{extra:.0f} MB = "
              f"{100 * extra / row.rss_small_mb:.0f} % of this worker's RSS; that loader's worker ~"
              f"x{row.whole_split_growth:.2f}, estimated as RSS + split; {row.seconds:.0f} s)")
