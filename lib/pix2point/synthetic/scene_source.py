"""The scene reader of `source: synthetic` (io/dataset_reader.py `SceneReader`): procedural rooms written in
ScanNet's export layout under the artefact's source/ folder, one per Ray task, and read back by the ScanNet
reader (io/scannet.py), so the synthetic data goes through the code real data does."""

from __future__ import annotations

from pathlib import Path

from pix2point.io import scannet
from pix2point.io.dataset_reader import ReadScene, SceneRef, SceneSourceParams
from pix2point.io.scannet_split import params_split
from pix2point.io.scenes_table import SCANNET20_CLASS_NAMES
from pix2point.synthetic.scene import SyntheticSceneConfig, write_synthetic_scene

ROOT_FOLDER = None  # written into the artefact
FRAMES = True
CLASS_NAMES = SCANNET20_CLASS_NAMES
SEED_STRIDE = 100_003  # room i is drawn from seed * SEED_STRIDE + i


def scene_folders(params: SceneSourceParams) -> dict[str, Path]:
    """`num_scenes` rooms, scene0000_00 on (ScanNet's names, one scan per room); the `scenes` param is ignored."""
    names = (f"scene{i:04d}_00" for i in range(params.synthetic.num_scenes))
    return {name: Path(name) for name in names}


def scene_splits(params: SceneSourceParams, scenes: list[str], warn: bool) -> dict[str, str]:
    return params_split(scenes, params, warn)


def split_remedy(stage: str, params: SceneSourceParams) -> str:
    return f"set {stage}.val_scenes or {stage}.val_fraction, or raise {stage}.synthetic.num_scenes"


def read_source_scene(params: SceneSourceParams, scene: SceneRef) -> ReadScene:
    """Write room `scene.index` under `scene.root`, then read it as a ScanNet scene."""
    synthetic = params.synthetic
    config = SyntheticSceneConfig(
        frames=synthetic.frames, color_size=synthetic.color_size, depth_size=synthetic.depth_size,
        points=synthetic.points, depth_scale=params.depth_scale,
    )
    write_synthetic_scene(scene.root, scene.name, synthetic.seed * SEED_STRIDE + scene.index, config)
    return scannet.read_source_scene(params, scene)
