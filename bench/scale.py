"""ScanNet-shaped rehearsal: what PPKT's data path reads per step, how long a step waits for it, whether a
worker's memory grows with the dataset (PPKT and the other training stages), and what each scene stage would
cost on ScanNet.

    .venv/bin/python bench/scale.py [--scenes 16] [--frames 8] [--steps 30] [--artefacts DIR]
                                    [--profile scale] [--rss-... sizes of the other stages' runs, see --help]

Runs the pipeline's `scale` profile (ScanNet's per-item sizes; see pipeline.yaml) up to `pretrain` on
`--scenes` synthetic scenes, then on twice as many. The teacher is a ResNet-50 with RANDOM weights written
to a file (only costs are measured here). Prints:

- read amplification (bytes read from storage per step / bytes of the samples the step uses): the
  streamed loader's, measured in loss.parquet, and the whole-scene loader's (tests/reference_loaders.py `PretrainFrames`),
  replayed from its sampling (frames drawn with replacement, an LRU of 64 scenes, each miss reading the
  scene's points, pairs and features files whole) at this rehearsal's size and at ScanNet's shape;
- data wait (seconds waiting for the batch / step seconds): against the rehearsal's CPU steps (steps after
  the first), and (bench/data_wait.py) the real PPKT stream on the 2N rehearsal's artefacts against a
  SIMULATED GPU step (a wait of --gpu-steps seconds, 24 frames a step) with the pretrain params' loader
  settings, the readers' time per frame, and the reader actors a missed bound needs (run again with them);
- the training worker's peak RSS with N and 2N scenes, and (bench/training_rss.py) I2P-MAE pretraining's and
  classification's with N and 2N objects and segmentation finetuning's with N and 2N scenes, each beside the
  training split's bytes a whole-split loader held in every worker;
- per stage: seconds per item measured here, extrapolated to ScanNet on 1 and 8 workers, and storage.

It ends with `scale: read_amplification=<old>-><new> data_wait=<fraction> rss_growth=<ratio>`, data_wait
against the first --gpu-steps length with the default loader settings, rss_growth the worst stage's. `--profile smoke` runs PPKT's part on the smoke profile's tiny scenes instead (minutes,
not hours; its ScanNet table is then not at ScanNet's per-item sizes).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

import data_wait  # bench/data_wait.py and bench/training_rss.py, beside this script
import training_rss

PIPELINE = Path(__file__).resolve().parents[1] / "pipeline.yaml"

# ScanNet v2 (its paper; PPKT's use of it in docs/methods.md): 1,513 scenes, 1,201 for training, ~2.5 M frames of which
# PPKT keeps every 25th (~100 k, ~65 per scene), 60 k pretraining steps of 24 frames.
SCANNET_SCENES, SCANNET_TRAIN_SCENES, SCANNET_KEPT_FRAMES = 1513, 1201, 100_000
SCANNET_STEPS, SCANNET_FRAMES_PER_STEP = 60_000, 24
# Rates that need a GPU (none here): assumptions, not measurements.
ASSUMED_GPU_TEACHER_FRAMES_PER_S = 200.0  # ResNet-50 to layer4 at 640x480, fp16, one A100-class GPU (assumed)
ASSUMED_GPU_STEP_S = 0.5  # Res16UNet34C, 24 frames at 2.5 cm, one A100-class GPU (assumed)


@dataclass(frozen=True)
class Rehearsal:
    scenes: int
    outcomes: dict  # stage -> (path, seconds)
    loss: dict  # loss.parquet columns
    pretrain_params: object  # the pretrain stage's params (its loader settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=16)
    parser.add_argument("--frames", type=int, default=8, help="frames per scene (ScanNet keeps ~65; per-frame "
                        "sizes are ScanNet's, fewer frames keep the default run within 30 minutes on 2 cores)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--artefacts", type=Path, default=Path("artefacts-scale"))
    parser.add_argument("--profile", default="scale", help="profile of PPKT's rehearsal (scale: ScanNet's sizes)")
    parser.add_argument("--gpu-steps", type=float, nargs="+", default=[ASSUMED_GPU_STEP_S, ASSUMED_GPU_STEP_S / 2],
                        help="seconds of the SIMULATED GPU step the real PPKT stream is timed against")
    parser.add_argument("--wait-steps", type=int, default=40, help="steps of each simulated-step run")
    training_rss.add_arguments(parser)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    from pix2point.engine.cluster import start_local_ray

    start_local_ray(num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False)
    if args.profile == "scale":
        weights = random_teacher(scale_profile_teacher())
        print(f"teacher: ResNet-50 layer4 with RANDOM weights from {weights} (costs only; features are meaningless)")
    small = rehearse(args, args.scenes)
    large = rehearse(args, 2 * args.scenes)
    waits = data_wait_runs(args, large)
    others = training_rss.measure(args.artefacts.resolve() / "training-rss", training_rss.sizes_from(args))
    report(args, small, large, waits, others)
    ray.shutdown()


def scale_profile_teacher() -> Path:
    from pix2point.engine.pipeline import load_pipeline

    return load_pipeline(PIPELINE, "scale").stages["features2d"].params.teacher_weights


def random_teacher(path: Path) -> Path:
    import torch

    from pix2point.models.resnet import resnet

    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        torch.save(resnet("resnet50").state_dict(), path)
    return path


def rehearse(args: argparse.Namespace, scenes: int) -> Rehearsal:
    from pix2point.engine.artefacts import ArtefactStore
    from pix2point.engine.pipeline import load_pipeline
    from pix2point.engine.runner import run_pipeline

    overrides = [f"scenes.synthetic.num_scenes={scenes}", f"scenes.synthetic.frames={args.frames}",
                 f"pretrain.steps={args.steps}",
                 f"pretrain.checkpoint_every={args.steps}"]
    pipeline = load_pipeline(PIPELINE, args.profile, overrides)
    outcomes = run_pipeline(pipeline, ArtefactStore(args.artefacts), targets=["pretrain"])
    found = {o.stage: (o.path, o.seconds) for o in outcomes}
    loss = pq.read_table(found["pretrain"][0] / "loss.parquet").to_pydict()
    return Rehearsal(scenes, found, loss, pipeline.stages["pretrain"].params)


def data_wait_runs(args: argparse.Namespace, run: Rehearsal) -> tuple[list[data_wait.DataWait], float]:
    """The real PPKT stream on `run`'s artefacts against simulated GPU steps of each --gpu-steps length,
    ScanNet's 24 frames a step (fewer if the split is smaller), with the pretrain params' loader settings; a
    length whose data wait misses 5 % is run again with the reader actors the readers' per-frame time says it
    needs. Returns the runs and the readers' seconds per frame."""
    params = run.pretrain_params
    inputs = {name: run.outcomes[name][0] for name in ("scenes", "features2d", "pairs")}
    config = data_wait.ppkt_stream_config(params, inputs, SCANNET_FRAMES_PER_STEP, args.wait_steps)
    per_frame = data_wait.reader_seconds_per_frame(config)
    root = args.artefacts.resolve()
    rows = [data_wait.measure(config, step_s, args.wait_steps, params.reader_actors, params.reader_cpus, root)
            for step_s in args.gpu_steps]
    for row in [row for row in rows if row.fraction >= 0.05]:
        actors = max(params.reader_actors + 1, data_wait.readers_needed(per_frame, row.frames, row.step_s))
        rows.append(data_wait.measure(config, row.step_s, args.wait_steps, actors, params.reader_cpus, root))
    return rows, per_frame


def replay_whole_scene_loader(scene_bytes: np.ndarray, frames_per_scene: np.ndarray, frames_per_batch: int,
                              steps: int, cached_scenes: int = 64, seed: int = 0) -> float:
    """Bytes the whole-scene loader reads per step, replaying its sampling: frames drawn uniformly with
    replacement, a scene read whole (scene_bytes) on each miss of its LRU of `cached_scenes` scenes."""
    rng = np.random.default_rng(seed)
    scene_of_frame = np.repeat(np.arange(len(scene_bytes)), frames_per_scene)
    cache: OrderedDict[int, None] = OrderedDict()
    read = 0
    for _ in range(steps):
        for scene in scene_of_frame[rng.choice(len(scene_of_frame), frames_per_batch)]:
            if scene in cache:
                cache.move_to_end(scene)
                continue
            read += scene_bytes[scene]
            cache[scene] = None
            if len(cache) > cached_scenes:
                cache.popitem(last=False)
    return read / steps


def scene_file_bytes(outcomes: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per training scene: bytes of the files the whole-scene loader reads, and its frames with pairs."""
    from pix2point.io.features_table import shard_path
    from pix2point.io.pairs_table import pairs_path
    from pix2point.io.samples_table import samples_path
    from pix2point.io.scenes_table import points_path
    from pix2point.training.pretraining.ppkt import training_scenes

    scenes_dir, features_dir, pairs_dir = (outcomes[name][0] for name in ("scenes", "features2d", "pairs"))
    names = training_scenes(scenes_dir)
    sizes = [points_path(scenes_dir, s).stat().st_size + pairs_path(pairs_dir, s).stat().st_size
             + shard_path(features_dir, s).stat().st_size for s in names]
    frames = [pq.ParquetFile(samples_path(pairs_dir, s)).metadata.num_rows for s in names]
    return np.array(sizes, np.float64), np.array(frames)


def directory_bytes(path: Path, pattern: str = "**/*") -> int:
    return sum(p.stat().st_size for p in path.glob(pattern) if p.is_file())


def report(args: argparse.Namespace, small: Rehearsal, large: Rehearsal,
           waits: tuple[list[data_wait.DataWait], float], others: list[training_rss.StageRss]) -> None:
    loss = large.loss
    frames_per_batch = len(loss["samples"][0])
    sample_bytes_per_frame = float(np.sum(loss["sample_bytes"])) / (len(loss["sample_bytes"]) * frames_per_batch)
    new_amplification = float(np.sum(loss["bytes_read"]) / np.sum(loss["sample_bytes"]))
    steady = slice(1, None)  # the first step waits for the reader actors to start
    cpu_wait = float(np.sum(loss["data_wait_s"][steady]) / np.sum(loss["step_s"][steady]))
    gpu_wait = next(row.fraction for row in waits[0] if row.step_s == args.gpu_steps[0])
    rss_small, rss_large = max(small.loss["worker_peak_rss_mb"]), max(loss["worker_peak_rss_mb"])

    scene_bytes, frames = scene_file_bytes(large.outcomes)
    old_here = replay_whole_scene_loader(scene_bytes, frames, frames_per_batch, 500) / (
        frames_per_batch * sample_bytes_per_frame)
    # ScanNet's shape: this rehearsal's bytes per kept frame (features + pairs) and per scan, at 65 frames a scene.
    per_frame = float(np.sum(scene_bytes - scan_bytes(large.outcomes)) / np.sum(frames))
    scannet_scene = 65 * per_frame + float(np.mean(scan_bytes(large.outcomes)))
    old_scannet = replay_whole_scene_loader(np.full(SCANNET_TRAIN_SCENES, scannet_scene),
                                            np.full(SCANNET_TRAIN_SCENES, 65), SCANNET_FRAMES_PER_STEP, 300) / (
        SCANNET_FRAMES_PER_STEP * sample_bytes_per_frame)

    print(f"\nPPKT data path, {large.scenes} scenes x {args.frames} frames, {len(loss['step'])} steps of "
          f"{frames_per_batch} frames ({sample_bytes_per_frame / 1e6:.2f} MB of samples a frame)")
    print(f"  read amplification, streamed (measured):           {new_amplification:.2f}")
    print(f"  read amplification, whole-scene loader, replayed here ({large.scenes} scenes): {old_here:.2f}")
    print(f"  read amplification, whole-scene loader, replayed at ScanNet's shape "
          f"({SCANNET_TRAIN_SCENES} scenes x 65 frames, {SCANNET_FRAMES_PER_STEP} a step): {old_scannet:.1f}")
    print(f"  data wait against the CPU step (wait / step, steps 2..): {cpu_wait:.4f}; median wait per step "
          f"{np.median(loss['data_wait_s'][steady]):.3f} (step here {np.median(loss['step_s'][steady]):.2f} s on CPU)")
    print("  data wait against a GPU-speed step: the data path is REAL (Ray Data stream, reader actors, decode), the "
          "step's compute is SIMULATED (a wait of the step's length)")
    data_wait.print_rows(*waits)
    held_small, held_large = (float(np.sum(scene_file_bytes(run.outcomes)[0])) / 2**20 for run in (small, large))
    print(f"  worker peak RSS: {small.scenes} scenes {rss_small:.0f} MB, {large.scenes} scenes {rss_large:.0f} MB "
          f"(x{rss_large / rss_small:.3f}); the training scenes' files the whole-scene loader's LRU of 64 scenes "
          f"held: {held_small:.0f} -> {held_large:.0f} MB compressed on disk (more once decoded)")
    print("\nOther training stages, streamed the same way (worker peak RSS with N and 2N items):")
    training_rss.print_rows(others)
    cost_table(large, args.frames)
    growth = max([rss_large / rss_small, *(row.growth for row in others)])
    print(f"scale: read_amplification={old_scannet:.1f}->{new_amplification:.2f} data_wait={gpu_wait:.4f} "
          f"rss_growth={growth:.3f}")


def scan_bytes(outcomes: dict) -> np.ndarray:
    from pix2point.io.scenes_table import points_path
    from pix2point.training.pretraining.ppkt import training_scenes

    scenes_dir = outcomes["scenes"][0]
    return np.array([points_path(scenes_dir, s).stat().st_size for s in training_scenes(scenes_dir)], np.float64)


def cost_table(run: Rehearsal, frames_per_scene: int) -> None:
    """Per stage: measured seconds per item, ScanNet extrapolation on 1 and 8 workers, storage."""
    scenes_dir, features_dir, pairs_dir = (run.outcomes[name][0] for name in ("scenes", "features2d", "pairs"))
    kept = run.scenes * frames_per_scene
    rows = []
    seconds = run.outcomes["scenes"][1] / run.scenes
    rows.append(("scenes (render + ingest)", f"{seconds:.1f} s/scene", SCANNET_SCENES * seconds,
                 directory_bytes(scenes_dir, "points/*.parquet") / run.scenes * SCANNET_SCENES, "CPU, measured"))
    seconds = run.outcomes["features2d"][1] / kept
    gpu = SCANNET_KEPT_FRAMES / ASSUMED_GPU_TEACHER_FRAMES_PER_S
    rows.append(("features2d (ResNet-50 layer4, 640x480)", f"{seconds:.2f} s/frame", SCANNET_KEPT_FRAMES * seconds,
                 directory_bytes(features_dir, "features/*.parquet") / kept * SCANNET_KEPT_FRAMES,
                 f"CPU measured; GPU assumed {ASSUMED_GPU_TEACHER_FRAMES_PER_S:.0f} frames/s -> {gpu / 3600:.1f} h"))
    seconds = run.outcomes["pairs"][1] / kept
    rows.append(("pairs (+ samples)", f"{seconds:.3f} s/frame", SCANNET_KEPT_FRAMES * seconds,
                 directory_bytes(pairs_dir) / kept * SCANNET_KEPT_FRAMES, "CPU, measured"))
    step = float(np.median(run.loss["step_s"][1:]))
    rows.append(("pretrain (data path)", f"{float(np.median(run.loss['data_wait_s'][1:])):.3f} s/step waited",
                 SCANNET_STEPS * ASSUMED_GPU_STEP_S, 0.0,
                 f"step {step:.2f} s on CPU (tiny UNet); ScanNet assumes {ASSUMED_GPU_STEP_S} s/step on a GPU"))
    print(f"\nWhat ScanNet costs (from {run.scenes} rehearsal scenes; {SCANNET_SCENES} scenes, "
          f"{SCANNET_KEPT_FRAMES} kept frames, {SCANNET_STEPS} steps)")
    print(f"{'stage':42} {'measured':>22} {'1 worker h':>11} {'8 workers h':>12} {'storage GB':>11}  note")
    for name, measured, total_s, storage, note in rows:
        print(f"{name:42} {measured:>22} {total_s / 3600:11.1f} {total_s / 8 / 3600:12.1f} {storage / 1e9:11.1f}  {note}")


if __name__ == "__main__":
    sys.exit(main())
