"""Stage `fewshot`: few-shot object classification as Point-BERT and Point-MAE report it on ModelNet40: N-way
K-shot episodes (5 and 10 ways, 10 and 20 shots, 10 folds), each network fine-tuned end to end per episode on
the N x K support objects and scored on 20 query objects per class; mean ± std over folds.

Episodes (training/finetuning/episodes.py) are drawn from the `objects` input's train (support) and test (query) splits,
a pure function of (seed, ways, shots, fold), the same for every network. Networks:

- `point_m2ae`: the Point-M2AE encoder with I2P-MAE's ModelNet40 classification head, its encoder from an I2P-MAE
  pretrain input (`init`: that input's name, e.g. pretrain_mae, pretrain_i2p_mae) or random (`init: scratch`),
  trained as `point_m2ae:` says (defaults: I2P-MAE's ModelNet40 fine-tuning model on Point-MAE's few-shot
  schedule, cfgs/fewshot.yaml: 150 epochs of 32 objects, AdamW 5e-4).
- `image2point`: the sparse twin of a 2D network (classify's), inflated from ImageNet weights (`init: inflated`)
  or random (`init: scratch`), under a FIP mode (`fip`, default all: end to end as the protocol), trained as
  the classify stage trains (`image2point:` block: SGD, Image2Point's augmentation, voxel size).

Each (network, episode) is a Ray task that writes its record into the stage's scratch directory, so a killed
stage started again trains only the episodes without one. Writes episodes.parquet (io/fewshot_table.py),
report.md and metrics.json (evaluation/fewshot_report.py).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pix2point.evaluation.report_note import ReportNoteParams, add_note
from pix2point.io.objects_table import class_names, objects_metadata, objects_path, read_objects
from pix2point.io.paths import AbsolutePath
from pix2point.models.backbone_spec import Rounding
from pix2point.models.classifier_spec import ClassifierNetwork, ClassifierSpec, FipMode
from pix2point.training.finetuning.episodes import Episode, draw_episode, episode_seed
from pix2point.training.param_groups import SGDParams

if TYPE_CHECKING:  # the training code (torch, MinkowskiEngine, Ray) is imported by run: loading the pipeline stays light
    from pix2point.io.fewshot_table import EpisodeRecord
    from pix2point.training.finetuning.fewshot import EpisodeJob
    from pix2point.training.finetuning.fewshot_recipes import Recipe

OBJECTS_INPUT = "objects"
SCRATCH = "scratch"
RECORDS = "episodes"  # <scratch>/episodes/<network>/<ways>way-<shots>shot-fold<fold>.json


class Network(BaseModel):
    """A network evaluated on every episode."""

    model_config = ConfigDict(extra="forbid")

    family: Literal["point_m2ae", "image2point"]
    # point_m2ae: scratch, or the name of the I2P-MAE pretrain input whose encoder it starts from;
    # image2point: scratch or inflated
    init: str = SCRATCH
    fip: FipMode = "all"  # image2point only: which parts train (models/fip.py)

    @model_validator(mode="after")
    def _known_init(self) -> Network:
        if self.family == "image2point" and self.init not in (SCRATCH, "inflated"):
            raise ValueError(f"image2point networks start from scratch or inflated, got init {self.init!r}")
        if self.family == "point_m2ae" and self.fip != "all":
            raise ValueError("fip applies to image2point networks only")
        return self

    @property
    def name(self) -> str:
        return f"{self.family}-{self.init}" + ("" if self.fip == "all" else f"-fip_{self.fip}")


class PointM2AEParams(BaseModel):
    """Defaults: I2P-MAE's ModelNet40 fine-tuning model (cfgs/fine-tuning/modelnet40.yaml) on Point-MAE's
    few-shot optimiser and schedule (cfgs/fewshot.yaml)."""

    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(5e-4, gt=0)  # AdamW's peak
    weight_decay: float = Field(0.05, ge=0)  # on weight matrices only (training/weight_decay.py)
    warmup_epochs: int = Field(10, ge=0)  # linear warm-up, then cosine decay to 0
    grad_clip: float = Field(10.0, ge=0)  # max gradient L2 norm; 0: off
    drop_path_rate: float = Field(0.1, ge=0, lt=1)  # stochastic depth, the last block's rate; I2P-MAE: 0.1
    points: int = Field(1024, ge=1)  # per object and step; at most the objects' points
    group_sizes: tuple[int, ...] = (48, 24, 24)  # per scale; the encoder's widths and token counts are pretrained
    local_radius: tuple[float, ...] = (0.24, 0.48, 0.96)  # per scale, in object radii; 0 = global attention
    pooling: Literal["concat", "sum"] = "sum"  # mean + max of the coarsest tokens (the ModelNet40 model)
    label_smoothing: float = Field(0.2, ge=0, lt=1)  # cross-entropy label smoothing; Point-M2AE/I2P-MAE: 0.2
    scale_range: tuple[float, float] = (2 / 3, 3 / 2)  # per axis (PointcloudScaleAndTranslate)
    # shift uniform in [-t, t] per axis, in object radii (PointcloudScaleAndTranslate)
    translate: float = Field(0.2, ge=0)


class Image2PointParams(SGDParams):
    """Defaults: the classify stage's (Image2Point's training, models/object_classifier.py)."""

    model_config = ConfigDict(extra="forbid")

    network: ClassifierNetwork = "efficientnet_lite0"  # 2D ImageNet network whose sparse 3D twin classifies
    teacher_weights: AbsolutePath | None = None  # 2D weights to inflate; the ResNets need them
    voxel_size: float = Field(0.05, gt=0)  # in object radii
    voxel_rounding: Rounding = "round"  # Image2Point rounds xyz / voxel_size; "floor" as MinkowskiEngine does
    batchnorm_momentum: float | None = Field(0.1, gt=0, le=1)  # the twin's BatchNorm momentum; None: the 2D network's


DEFAULT_NETWORKS = [
    Network(family="point_m2ae", init="pretrain_i2p_mae"), Network(family="point_m2ae", init="pretrain_mae"),
    Network(family="point_m2ae", init=SCRATCH), Network(family="image2point", init="inflated"),
    Network(family="image2point", init=SCRATCH),
]


class Params(ReportNoteParams):
    model_config = ConfigDict(extra="forbid")

    ways: list[int] = [5, 10]  # classes per episode (N); Point-BERT/Point-MAE: 5 and 10
    shots: list[int] = [10, 20]  # support objects per class
    folds: int = Field(10, ge=1)  # episodes per (ways, shots)
    queries: int = Field(20, ge=1)  # query objects per class, from the test split
    seed: int = 0  # the episodes' draw and their training
    networks: list[Network] = DEFAULT_NETWORKS  # each trained and scored on every episode
    epochs: int = Field(150, ge=1)  # per episode; an epoch is floor(N x K / batch_size) steps
    # Steps per episode whatever its support size (warm-up: the same share of them); None: `epochs` epochs.
    steps: int | None = Field(None, ge=1)
    batch_size: int = Field(32, ge=2)  # support objects per step, at most all of them (BatchNorm needs 2)
    point_m2ae: PointM2AEParams = PointM2AEParams()
    image2point: Image2PointParams = Image2PointParams()
    cpus_per_episode: float = Field(1, gt=0)  # Ray CPUs per episode task
    # Ray GPUs per episode task (a fraction packs several episodes on one GPU); > 0: the episode trains on it.
    gpus_per_episode: float = Field(0, ge=0)
    # Re-estimate BatchNorm statistics on the support objects before scoring (not in the reference, whose 150
    # epochs need none): after a few dozen steps the running statistics are still mostly their initial values.
    recalibrate_batchnorm: bool = False
    # Bit-identical reruns: one thread per task and torch's deterministic algorithms (training/runtime/determinism.py);
    # every episode is a one-CPU task, so one thread costs nothing.
    deterministic: bool = True

    @model_validator(mode="after")
    def _sane_lists(self) -> Params:
        if not self.ways or not self.shots or not self.networks:
            raise ValueError("ways, shots and networks each need at least one entry")
        if min(self.ways) < 2 or min(self.shots) < 1:
            raise ValueError(f"ways must be >= 2 and shots >= 1, got ways {self.ways}, shots {self.shots}")
        names = [network.name for network in self.networks]
        if len(set(names)) < len(names) or len(set(self.ways)) < len(self.ways) or len(set(self.shots)) < len(self.shots):
            raise ValueError("ways, shots and networks must not repeat an entry")
        return self


def run(params: Params, inputs: dict[str, Path], out: Path, scratch: Path) -> dict:
    from pix2point.evaluation.fewshot_report import REPORT_FILE, write_report
    from pix2point.io.fewshot_table import write_episodes
    from pix2point.parallel import check_gpus, map_tasks
    from pix2point.training.finetuning.fewshot import EpisodeSettings, read_record, record_path, run_episode

    if OBJECTS_INPUT not in inputs:
        raise ValueError(f"fewshot needs the {OBJECTS_INPUT!r} input, has {sorted(inputs)}")
    train, test = (read_objects(inputs[OBJECTS_INPUT], split) for split in ("train", "test"))
    jobs = episode_jobs(params, train.labels, test.labels, train.shapes, test.shapes)
    settings = EpisodeSettings(recipes(params, inputs), tuple(class_names(inputs[OBJECTS_INPUT])), params.epochs,
                               params.steps, params.batch_size, params.deterministic, params.recalibrate_batchnorm,
                               scratch / RECORDS, use_gpu=params.gpus_per_episode > 0)
    started = time.perf_counter()
    paths = [record_path(settings.records_dir, job.network, job.episode.ways, job.episode.shots, job.episode.fold)
             for job in jobs]
    records: list[EpisodeRecord | None] = [read_record(path) for path in paths]
    pending = [job for job, record in zip(jobs, records) if record is None]
    if pending:
        check_gpus("gpus_per_episode", params.gpus_per_episode)
        map_tasks(run_episode, pending, desc="fewshot episodes", num_cpus=params.cpus_per_episode,
                  num_gpus=params.gpus_per_episode, train=train, test=test, settings=settings)
    records = [read_record(path) for path in paths]
    write_episodes(out, records, {"seed": params.seed, "queries": params.queries, "epochs": params.epochs,
                                  "steps": params.steps})
    metrics = write_report(out, records, baselines(params), params.queries, training_length(params))
    add_note(out / REPORT_FILE, params.report_note)
    return {**metrics, "episodes": len(records), "trained_now": len(pending),
            "seconds": round(time.perf_counter() - started, 1)}


def training_length(params: Params) -> str:
    return f"{params.steps} steps" if params.steps else f"{params.epochs} epochs"


def episode_jobs(params: Params, train_labels, test_labels, train_shapes: list[str],
                 test_shapes: list[str]) -> list[EpisodeJob]:
    """Every (episode, network), episodes outermost so a killed stage has whole episodes of every network.
    Raises ValueError naming the param when an episode cannot be drawn, and when a query object is also a
    support object (an objects source whose splits share a shape)."""
    from pix2point.training.finetuning.fewshot import EpisodeJob

    jobs = []
    for ways in params.ways:
        for shots in params.shots:
            for fold in range(params.folds):
                episode = draw_episode(train_labels, test_labels, seed=params.seed, ways=ways, shots=shots, fold=fold,
                                       queries=params.queries)
                check_disjoint(episode, train_shapes, test_shapes)
                seed = episode_seed(params.seed, ways, shots, fold)
                jobs += [EpisodeJob(network.name, episode, seed) for network in params.networks]
    return jobs


def check_disjoint(episode: Episode, train_shapes: list[str], test_shapes: list[str]) -> None:
    shared = {train_shapes[i] for i in episode.support} & {test_shapes[i] for i in episode.query}
    if shared:
        raise ValueError(f"episode {episode.name}: query objects {sorted(shared)[:5]} are also support objects; the "
                         "objects' train and test splits share shapes")


def baselines(params: Params) -> dict[str, str]:
    """Each network -> its family's scratch network (when evaluated), the one its gain is measured against."""
    scratch = {network.family: network.name for network in params.networks if network.init == SCRATCH and network.fip == "all"}
    return {network.name: scratch[network.family] for network in params.networks
            if network.family in scratch and network.name != scratch[network.family]}


def recipes(params: Params, inputs: dict[str, Path]) -> dict[str, Recipe]:
    """Network name -> how it trains; every problem of the params and inputs is raised here, before training."""
    from pix2point.training.finetuning.fewshot_recipes import Image2PointRecipe, PointM2AERecipe
    from pix2point.training.finetuning.object_data import ObjectAugmentation
    from pix2point.training.finetuning.object_finetuning_data import CloudAugmentation

    result: dict[str, Recipe] = {}
    m2ae = [network for network in params.networks if network.family == "point_m2ae"]
    if m2ae:
        block = params.point_m2ae
        spec = encoder_spec(params, inputs)
        for network in m2ae:
            result[network.name] = PointM2AERecipe(
                spec, None if network.init == SCRATCH else inputs[network.init], block.pooling, block.local_radius,
                block.drop_path_rate, block.label_smoothing, block.points, block.learning_rate, block.weight_decay,
                block.warmup_epochs, block.grad_clip, CloudAugmentation(block.scale_range, block.translate, None))
    block = params.image2point
    inflated = any(network.family == "image2point" and network.init == "inflated" for network in params.networks)
    if inflated and block.network != "efficientnet_lite0" and block.teacher_weights is None:
        raise ValueError(f"fewshot param image2point.teacher_weights: inflating {block.network} needs its 2D weights "
                         "(a torchvision or MoCo v2 checkpoint file)")
    classifier = ClassifierSpec(network=block.network, num_classes=2, weights_path=block.teacher_weights,
                                batchnorm_momentum=block.batchnorm_momentum)
    for network in (network for network in params.networks if network.family == "image2point"):
        result[network.name] = Image2PointRecipe(
            classifier, network.init, network.fip, block.learning_rate, block.momentum, block.weight_decay,
            block.voxel_size, block.voxel_rounding, ObjectAugmentation())
    return result


def encoder_spec(params: Params, inputs: dict[str, Path]):
    """The Point-M2AE spec of the pretrain inputs (they must agree) with the fine-tuning's group sizes."""
    from pix2point.models.point_m2ae_spec import common_spec

    pretrained = {network.init for network in params.networks if network.family == "point_m2ae" and network.init != SCRATCH}
    missing = sorted(pretrained - inputs.keys())
    if missing:
        raise ValueError(f"fewshot point_m2ae networks start from the inputs {missing}, which are not among its inputs "
                         f"{sorted(inputs)}: add them to `inputs:` or drop those networks")
    sources = {name: path for name, path in inputs.items() if name != OBJECTS_INPUT}
    if not sources:
        raise ValueError(f"fewshot point_m2ae networks need an I2P-MAE pretrain input for the encoder's spec, has "
                         f"{sorted(inputs)}")
    block, points = params.point_m2ae, int(objects_metadata(inputs[OBJECTS_INPUT])["points_per_object"])
    if block.points > points:
        raise ValueError(f"fewshot param point_m2ae.points={block.points} exceeds the {points} points per object of "
                         f"{objects_path(inputs[OBJECTS_INPUT])}")
    try:
        spec = replace(common_spec(sources), group_sizes=block.group_sizes)
    except ValueError as error:
        raise ValueError(f"fewshot param point_m2ae.group_sizes {list(block.group_sizes)}: {error}") from error
    if len(block.local_radius) != spec.scales or spec.num_groups[0] > block.points:
        raise ValueError(f"fewshot params point_m2ae.local_radius {list(block.local_radius)} and points {block.points} "
                         f"need one radius per scale ({spec.scales}) and at least {spec.num_groups[0]} points")
    return spec
