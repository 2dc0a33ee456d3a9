"""A pretrain run killed midway and started again continues from its last checkpoint, not from step 0, and
trains on the same samples, step for step, as a run that never stopped."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pix2point.engine.artefacts import ArtefactStore
from pix2point.engine.pipeline import load_pipeline
from pix2point.engine.runner import run_pipeline
from pix2point.io.samples_table import sample_refs
from pix2point.training.pretraining.ppkt import training_scenes
from pix2point.training.runtime.sample_order import rank_samples

PIPELINE = Path(__file__).resolve().parents[2] / "pipeline.yaml"
OVERRIDES = ["pretrain.steps=60", "pretrain.checkpoint_every=5", "pretrain.cpus_per_worker=1"]


@pytest.mark.slow
def test_killed_pretraining_resumes_from_its_last_checkpoint(ray_runtime, smoke_spine, tmp_path):
    artefacts = tmp_path / "artefacts"
    store = ArtefactStore(artefacts)
    pipeline = load_pipeline(PIPELINE, "smoke", OVERRIDES)
    spine = {o.stage: o.path for o in run_pipeline(pipeline, store, targets=["pairs"])}  # the killed run only trains

    # The killed driver runs its own embedded Ray in its own process group, so killing the group takes down
    # the driver, its Ray and its Train workers at once, as a lost head node or a Ctrl-C'd job would.
    command = [sys.executable, "-c", "import sys; from pix2point.cli import main; sys.exit(main(sys.argv[1:]))",
               "run", str(PIPELINE), "pretrain", "--profile", "smoke", "--artefacts", str(artefacts),
               *[arg for override in OVERRIDES for arg in ("--set", override)]]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while len(list(artefacts.glob("pretrain/.scratch-*/ppkt/checkpoint_*"))) < 2:
        assert driver.poll() is None, "the driver ended before checkpointing"
        assert time.monotonic() < deadline, "no checkpoint within 5 minutes"
        time.sleep(0.5)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    assert not store.complete_keys("pretrain")

    (outcome,) = run_pipeline(pipeline, store, only="pretrain")
    manifest = store.manifest("pretrain", outcome.key)
    assert manifest["metrics"]["resumed_from_step"] >= 5
    loss = pq.read_table(outcome.path / "loss.parquet")
    assert loss["step"].to_pylist() == list(range(1, 61))
    samples = len(sample_refs(spine["pairs"], training_scenes(spine["scenes"])))
    frames_per_batch = pipeline.stages["pretrain"].params.frames_per_batch
    scheduled = [rank_samples(0, step, 0, 1, frames_per_batch, samples).tolist() for step in range(60)]
    assert loss["samples"].to_pylist() == scheduled
