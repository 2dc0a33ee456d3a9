"""Stage `finetune_objects`: I2P-MAE's headline protocol, fine-tuning the Point-M2AE encoder end to end with a
classification head on the objects (ScanObjectNN PB-T50-RS 90.11 %, ModelNet40 93.67 % in the paper), from
scratch or from the `pretrain_mae` / `pretrain_i2p_mae` encoders, for every seed.

Defaults are the reference's ScanObjectNN config (ZrrSkywalker/I2P-MAE cfgs/fine-tuning/scan_pb.yaml, tools/
runner_finetune.py): 300 epochs of 32 objects, AdamW 5e-4 with decay 0.05, 10 warm-up epochs then cosine,
gradient norm clipped at 10, drop-path 0.1, 2048 points, groups of 32/16/16 with local attention radii
0.48/0.96/1.92, mean- and max-pooled tokens concatenated, per-axis scale 0.9-1.1 and any rotation about the
up axis, 10 voting copies. The `modelnet40` profile sets the ModelNet40 config. The encoder's widths, depths
and token counts are the pretrained encoders' (read from their artefacts), so all inits train one network.

Writes the contract of pix2point/io/finetune_objects_table.py and a report
(evaluation/finetune_objects_report.py). Runs train side by side, each its own Ray Train run
(training/runtime/trials.py); a killed stage keeps finished runs and resumes the others from their checkpoints.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import ConfigDict, Field, model_validator

from pix2point.evaluation.report_note import ReportNoteParams
from pix2point.io.classify_table import read_history, write_history
from pix2point.io.finetune_objects_table import read_runs, run_name, write_runs
from pix2point.io.objects_table import class_names, objects_metadata, objects_path
from pix2point.models.point_m2ae_spec import PointM2AESpec, load_encoder_spec
from pix2point.training.param_groups import RunGridParams, config_from_params
from pix2point.training.runtime.run_grid import with_drift_repeats

if TYPE_CHECKING:  # the training code (torch, Ray) is imported by run: loading the pipeline stays light
    from pix2point.training.finetuning.object_finetuning import FinetuneObjectsConfig, FinetuneObjectsRunSpec

Init = Literal["scratch", "pretrain_mae", "pretrain_i2p_mae"]  # a pretrained init is the input of that name
SCRATCH = "scratch"


class Params(RunGridParams, ReportNoteParams):
    model_config = ConfigDict(extra="forbid")

    # encoder start: random, or that pretrain input's encoder
    inits: list[Init] = ["scratch", "pretrain_mae", "pretrain_i2p_mae"]
    seeds: list[int] = [0, 1, 2]  # one run per init x seed; it draws the head init, batches and augmentations
    epochs: int = Field(300, ge=1)  # passes over the train split; I2P-MAE: 300
    batch_size: int = Field(32, ge=2)  # objects per step and worker (BatchNorm in the head needs 2)
    learning_rate: float = Field(5e-4, gt=0)  # AdamW's peak
    weight_decay: float = Field(0.05, ge=0)  # on weight matrices only (training/weight_decay.py)
    warmup_epochs: int = Field(10, ge=0)  # linear warm-up, then cosine decay to 0 (stepped per step)
    grad_clip: float = Field(10.0, ge=0)  # max gradient L2 norm; 0: off
    drop_path_rate: float = Field(0.1, ge=0, lt=1)  # stochastic depth, the last block's rate; I2P-MAE: 0.1
    points: int = Field(2048, ge=1)  # per object and step (ModelNet40: 1024); at most the objects' points
    group_sizes: tuple[int, ...] = (32, 16, 16)  # per scale (ModelNet40: 48, 24, 24); pretraining used 16/8/8
    # Per scale, in object radii; 0 = global attention. PB-T50-RS's; OBJ-BG/ONLY 0.32/0.64/1.28, ModelNet40 0.24/0.48/0.96.
    local_radius: tuple[float, ...] = (0.48, 0.96, 1.92)
    pooling: Literal["concat", "sum"] = "concat"  # mean ‖ max of the coarsest tokens (ModelNet40: mean + max)
    label_smoothing: float = Field(0.0, ge=0, lt=1)  # ModelNet40: 0.2 (the reference's smooth_loss)
    scale_range: tuple[float, float] = (0.9, 1.1)  # per axis (ModelNet40: 2/3, 3/2)
    translate: float = Field(0.0, ge=0)  # ModelNet40: 0.2
    rotate: bool = True  # any angle about the objects' up axis (ModelNet40: false)
    voting: int = Field(10, ge=0)  # copies per test object whose logits are averaged after the last epoch; 0: off
    eval_every: int = Field(1, ge=1)  # epochs between test-split scorings (the last epoch is always scored)
    # Re-estimate BatchNorm statistics on the training split before each scoring (not in the reference): short
    # runs from scratch otherwise score near chance (training/finetuning/object_finetuning.py, recalibrate_batchnorm).
    recalibrate_batchnorm: bool = False
    save_models: bool = False  # also write each run's final state dict (rank 0)
    # Without `deterministic`: the first run is trained this many more times with the same seed, and the report
    # gives their spread (run-to-run drift) next to the spread over seeds.
    drift_repeats: int = Field(1, ge=0)

    @model_validator(mode="after")
    def _sane_lists(self) -> Params:
        if not self.inits or not self.seeds:
            raise ValueError("inits and seeds each need at least one entry")
        if len(set(self.inits)) < len(self.inits) or len(set(self.seeds)) < len(self.seeds):
            raise ValueError("inits and seeds must not repeat an entry (run names would collide)")
        if self.scale_range[0] > self.scale_range[1] or self.scale_range[0] <= 0:
            raise ValueError(f"scale_range {list(self.scale_range)} must be (low, high) with 0 < low <= high")
        return self


def run(params: Params, inputs: dict[str, Path], out: Path, scratch: Path) -> dict:
    from pix2point.evaluation.finetune_objects_report import REPORT_FILE, write_report
    from pix2point.training.finetuning.object_finetuning import train_loop
    from pix2point.training.runtime.trials import run_outputs, train_grid_stage

    config = finetune_config(params, inputs, run_outputs(scratch))
    return train_grid_stage(
        train_loop, lambda slot: replace(config, runs=slot), config.runs, params, out=out, scratch=scratch,
        write_runs=lambda results: write_runs(out, results, list(config.class_names), asdict(config.spec),
                                              params.deterministic),
        write_history=lambda history: write_history(out, history),
        report=lambda records: write_report(out, read_runs(out), read_history(out), params.epochs, params.voting,
                                            params.deterministic),
        report_file=out / REPORT_FILE)


def finetune_config(params: Params, inputs: dict[str, Path], out: Path) -> FinetuneObjectsConfig:
    """The workers' config; every problem the params and inputs can show before training is raised here."""
    from pix2point.training.finetuning.object_finetuning import FinetuneObjectsConfig, Voting
    from pix2point.training.finetuning.object_finetuning_data import CloudAugmentation

    objects_dir = inputs["objects"]
    metadata = objects_metadata(objects_dir)
    if params.points > int(metadata["points_per_object"]):
        raise ValueError(f"finetune_objects param points={params.points} exceeds the {metadata['points_per_object']} "
                         f"points per object of {objects_path(objects_dir)}")
    encoders = pretrained_encoders(params, inputs)
    spec = finetune_spec(params, encoders, inputs)
    if spec.num_groups[0] > params.points:
        raise ValueError(f"finetune_objects param points={params.points} is fewer than the encoder's "
                         f"{spec.num_groups[0]} first-scale tokens")
    if len(params.local_radius) != spec.scales:
        raise ValueError(f"finetune_objects param local_radius {list(params.local_radius)} needs one entry per "
                         f"encoder scale ({spec.scales})")
    return config_from_params(
        FinetuneObjectsConfig, params, objects_dir=objects_dir, encoders=encoders, out=out, spec=spec,
        class_names=tuple(class_names(objects_dir)), runs=run_specs(params),
        augmentation=CloudAugmentation(params.scale_range, params.translate,
                                       int(metadata["up_axis"]) if params.rotate else None),
        voting=Voting(params.voting))


def pretrained_encoders(params: Params, inputs: dict[str, Path]) -> dict[str, Path]:
    """init -> pretrain artefact, for every pretrained init; an init whose input is missing is an error."""
    missing = [init for init in params.inits if init != SCRATCH and init not in inputs]
    if missing:
        raise ValueError(f"finetune_objects inits {missing} start from the stages of those names, which are not among "
                         f"its inputs {sorted(inputs)}: add them to `inputs:` or drop them from `inits`")
    return {init: inputs[init] for init in params.inits if init != SCRATCH}


def finetune_spec(params: Params, encoders: dict[str, Path], inputs: dict[str, Path]) -> PointM2AESpec:
    """The pretrained encoders' spec (they must agree) with the fine-tuning's group sizes; a scratch-only grid
    takes it from any pretrain input, so scratch trains the same network as the pretrained inits would."""
    sources = encoders or {name: path for name, path in inputs.items() if name in ("pretrain_mae", "pretrain_i2p_mae")}
    if not sources:
        raise ValueError(f"finetune_objects needs a pretrain_mae or pretrain_i2p_mae input for the encoder's spec, "
                         f"has {sorted(inputs)}")
    specs = {name: load_encoder_spec(path) for name, path in sources.items()}
    first, spec = next(iter(specs.items()))
    differing = [name for name, other in specs.items() if other != spec]
    if differing:
        raise ValueError(f"the encoders of {first} and {differing} differ ({spec} vs {specs[differing[0]]}): "
                         f"fine-tuning compares inits of one network")
    try:
        return replace(spec, group_sizes=params.group_sizes)
    except ValueError as error:
        raise ValueError(f"finetune_objects param group_sizes {list(params.group_sizes)}: {error}") from error


def run_specs(params: Params) -> tuple[FinetuneObjectsRunSpec, ...]:
    """Seeds outermost, so a killed stage has every init of the first seeds; the drift repeats last."""
    from pix2point.training.finetuning.object_finetuning import FinetuneObjectsRunSpec

    grid = tuple(FinetuneObjectsRunSpec(run_name(init, seed), init, seed) for seed in params.seeds for init in params.inits)
    return with_drift_repeats(grid, params.drift_repeats, params.deterministic)
