"""Cost of deterministic mode: each training stage trained with `deterministic: true` against the same stage
with it off, both measured in this run, on the same inputs and params.

    .venv/bin/python bench/determinism.py [--profile smoke] [--artefacts DIR] [--set stage.key=value ...]
                                          [--stages pretrain pretrain_mae finetune classify]

Inputs come from the pipeline's artefact cache (built if missing). Time is read inside the training loop
from the tables' `seconds` columns (pretrain: from the first step's end to the last's, so worker start-up and
the first step's allocations are left out; finetune and classify: every run's time from its start, summed),
so Ray start-up is not counted. Deterministic mode gives each worker one thread, so the ratio grows with
`cpus_per_worker`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import ray

from pix2point.engine.artefacts import ArtefactStore
from pix2point.engine.cluster import start_local_ray
from pix2point.engine.pipeline import load_pipeline
from pix2point.engine.runner import call_stage, run_pipeline

PIPELINE = Path(__file__).resolve().parents[1] / "pipeline.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--artefacts", type=Path, default=Path("artefacts"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="STAGE.KEY=VALUE")
    parser.add_argument("--stages", nargs="+", default=["pretrain", "pretrain_mae", "finetune", "classify"])
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    start_local_ray(num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False)
    pipeline = load_pipeline(PIPELINE, args.profile, args.overrides)
    store = ArtefactStore(args.artefacts)
    rows = []
    for name in args.stages:
        stage = pipeline.stages[name]
        built = {o.stage: o.path for o in run_pipeline(pipeline, store, targets=list(stage.inputs))}
        inputs = {upstream: built[upstream] for upstream in stage.inputs}
        seconds = {mode: training_seconds(stage, inputs, mode) for mode in (False, True)}
        rows.append((name, stage.params.cpus_per_worker, seconds[False], seconds[True]))
    print(f"\ndeterministic mode against normal mode, profile {args.profile}, {os.cpu_count()} CPUs on this machine")
    print(f"{'stage':14} {'cpus/worker':>11} {'normal s':>9} {'determ. s':>10} {'ratio':>6}")
    for name, cpus, normal, deterministic in rows:
        print(f"{name:14} {cpus:11d} {normal:9.2f} {deterministic:10.2f} {deterministic / normal:6.2f}")
    ray.shutdown()


def training_seconds(stage, inputs: dict[str, Path], deterministic: bool) -> float:
    params = stage.params.model_copy(update={"deterministic": deterministic})
    with tempfile.TemporaryDirectory() as tmp:
        out, scratch = Path(tmp) / "out", Path(tmp) / "scratch"
        out.mkdir()
        call_stage(stage.module, params, inputs, out, lambda: scratch)
        if (out / "loss.parquet").is_file():
            seconds = pq.read_table(out / "loss.parquet")["seconds"].to_pylist()
            return seconds[-1] - seconds[0]
        history = pq.read_table(out / "history.parquet").to_pydict()
    last: dict[str, float] = {}
    for run, seconds in zip(history["run"], history["seconds"]):
        last[run] = max(seconds, last.get(run, 0.0))
    return sum(last.values())


if __name__ == "__main__":
    main()
