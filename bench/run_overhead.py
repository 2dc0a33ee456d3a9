"""Benchmark of a grid run's fixed cost: what a run costs beyond its training steps (starting trainers,
building models, checkpoints, evaluation setup), on the smoke grid of `finetune` and `classify`.

    .venv/bin/python bench/run_overhead.py [--profile smoke] [--steps 4] [--stages finetune classify] [--artefacts DIR]

Each stage's grid (the profile's, deterministic, one worker of one CPU a run, as many runs at once as the
CPUs hold) is trained twice, with S and with 2S steps a run (classify: S and 2S epochs). A slot of the
cluster trains its share of the runs one after another, so a grid's wall time is T(S) = F + S x t, where
F is the fixed cost of its slots and t a step's time in a slot. Then F = 2 T(S) - T(2S), and the fixed cost
per run is F x slots / runs. No model of where the time goes is needed, and the same script measures any
commit (run it with PYTHONPATH pointing at another checkout to get that commit's figure).

Prints one line per stage: runs, slots, T(S), T(2S), fixed cost per run.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import ray

from concurrent_runs import object_and_scene_inputs, random_pretrain, timed  # bench/ is on the path of a bench script
from stages import classify, finetune

ONE_CPU_RUNS = {"num_workers": 1, "cpus_per_worker": 1, "deterministic": True, "max_concurrent_runs": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="smoke", help="pipeline profile for the inputs and grids (default: smoke)")
    parser.add_argument("--steps", type=int, default=4, help="S: finetune steps a run (classify: epochs = S / 2, at least 1)")
    parser.add_argument("--stages", nargs="+", default=["finetune", "classify"], choices=["finetune", "classify"])
    parser.add_argument("--artefacts", type=Path, default=Path("artefacts"))
    args = parser.parse_args()
    pipeline, inputs, cpus = object_and_scene_inputs(args.profile, args.artefacts)
    print(f"{cpus} CPUs; profile {args.profile}; every run: 1 worker x 1 CPU, deterministic")
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        for name in args.stages:
            module, params, stage_inputs, length = stage_setup(name, pipeline, inputs, work, args.steps)
            runs = len(module.run_specs(params))
            slots = min(runs, cpus)
            short = timed(module, params.model_copy(update={length: length_value(name, args.steps)}), stage_inputs,
                          work / f"{name}-short")
            long = timed(module, params.model_copy(update={length: 2 * length_value(name, args.steps)}), stage_inputs,
                         work / f"{name}-long")
            fixed = 2 * short - long
            print(f"{name}: {runs} runs in {slots} slots; T(S) {short:.1f} s, T(2S) {long:.1f} s; "
                  f"fixed cost {fixed * slots / runs:.1f} s a run")
    ray.shutdown()


def length_value(stage: str, steps: int) -> int:
    return steps if stage == "finetune" else max(1, steps // 2)


def stage_setup(name: str, pipeline, inputs: dict[str, Path], work: Path, steps: int):
    if name == "finetune":
        params = pipeline.stages["finetune"].params.model_copy(update={**ONE_CPU_RUNS, "eval_every": steps})
        return finetune, params, {"scenes": inputs["scenes"], "pretrain": random_pretrain(work, pipeline)}, "steps"
    params = pipeline.stages["classify"].params.model_copy(update=ONE_CPU_RUNS)
    return classify, params, {"objects": inputs["objects"]}, "epochs"


if __name__ == "__main__":
    main()
