"""Benchmark of a training stage's grid of runs one after another versus side by side (training/runtime/trials.py):
wall time of `finetune` and `classify` with `max_concurrent_runs: 1` and with the default (as many as the
CPUs hold), every run given one worker with 1 CPU, and the ratio, both measured in this one run.

    .venv/bin/python bench/concurrent_runs.py [--profile smoke] [--finetune-steps 10] [--artefacts DIR]

The inputs are the pipeline's `scenes` and `objects` artefacts of the profile (built if missing); finetune
starts from a random backbone (the pretrained weights do not change its speed). The grids are the stages'
own params of the profile, cut to 2 runs each (finetune: scratch at label fraction 1, seeds 0 and 1;
classify: its two first variants, 1 shot, seed 0, 1 epoch): on a 2-CPU machine 2 runs is all that fits at
once. Then, on paper, a 12-run grid on 1, 4 and 12 GPUs (one run per GPU, each as long as one run here).
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

import ray
import torch

from stages import classify, finetune
from pix2point.engine.artefacts import ArtefactStore
from pix2point.engine.cluster import start_local_ray
from pix2point.engine.pipeline import load_pipeline
from pix2point.engine.runner import run_pipeline
from pix2point.models.backbone import BackboneSpec, build_backbone, save_backbone

PIPELINE = Path(__file__).resolve().parents[1] / "pipeline.yaml"
ONE_CPU_RUNS = {"num_workers": 1, "cpus_per_worker": 1}
RUNS = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="smoke", help="pipeline profile for the inputs and params (default: smoke)")
    parser.add_argument("--finetune-steps", type=int, default=10)
    parser.add_argument("--artefacts", type=Path, default=Path("artefacts"))
    args = parser.parse_args()
    pipeline, inputs, cpus = object_and_scene_inputs(args.profile, args.artefacts)
    print(f"{cpus} CPUs; every run: 1 worker x 1 CPU; profile {args.profile}")
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        finetune_params = pipeline.stages["finetune"].params.model_copy(update={
            **ONE_CPU_RUNS, "inits": ["scratch"], "label_fractions": [1.0], "seeds": [0, 1],
            "steps": args.finetune_steps, "eval_every": args.finetune_steps})
        classify_params = pipeline.stages["classify"].params.model_copy(update={
            **ONE_CPU_RUNS, "variants": pipeline.stages["classify"].params.variants[:2], "shots": [1], "seeds": [0],
            "epochs": 1})
        stage_inputs = {
            "finetune": (finetune, finetune_params, {"scenes": inputs["scenes"], "pretrain": random_pretrain(work, pipeline)}),
            "classify": (classify, classify_params, {"objects": inputs["objects"]}),
        }
        for name, (module, params, stage_input) in stage_inputs.items():
            apart = timed(module, params.model_copy(update={"max_concurrent_runs": 1}), stage_input, work / f"{name}-apart")
            together = timed(module, params, stage_input, work / f"{name}-together")
            run = apart / RUNS
            print(f"{name}: {RUNS} runs one after another {apart:.1f} s, side by side {together:.1f} s "
                  f"-> {apart / together:.2f}x faster; one run {run:.1f} s")
            paper = ", ".join(f"{gpus} GPU(s) {math.ceil(12 / gpus)} x {run:.0f} s = {math.ceil(12 / gpus) * run:.0f} s"
                              for gpus in (1, 4, 12))
            print(f"  on paper, 12 runs, one run per GPU at this run's time: {paper}")
    ray.shutdown()


def object_and_scene_inputs(profile: str | None, artefacts: Path):
    """A local Ray with this machine's CPUs, then the profile's pipeline, its `scenes` and `objects` artefacts
    (built if missing) and the cluster's CPU count: what the grid benches start from."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    start_local_ray(num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False)
    pipeline = load_pipeline(PIPELINE, profile)
    inputs = {outcome.stage: outcome.path for outcome in
              run_pipeline(pipeline, ArtefactStore(artefacts), targets=["scenes", "objects"])}
    return pipeline, inputs, int(ray.cluster_resources()["CPU"])


def random_pretrain(work: Path, pipeline) -> Path:
    """A pretrain artefact's backbone files with random weights, of the profile's backbone spec."""
    directory = work / "pretrain"
    directory.mkdir()
    params = pipeline.stages["pretrain"].params
    spec = BackboneSpec(params.backbone, params.input_features, params.voxel_size)
    torch.manual_seed(0)
    save_backbone(directory, build_backbone(spec), spec)
    return directory


def timed(module, params, inputs: dict[str, Path], root: Path) -> float:
    out = root / "out"
    out.mkdir(parents=True)
    started = time.perf_counter()
    module.run(params, inputs, out, scratch=root / "scratch")
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
