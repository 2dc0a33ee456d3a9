"""Public entry point: write one procedural indoor scene as an exported ScanNet scene."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pix2point.synthetic import scannet_writer
from pix2point.synthetic.cameras import camera_path, color_camera, depth_camera
from pix2point.synthetic.layout import generate_layout
from pix2point.synthetic.render import render_color, render_depth
from pix2point.synthetic.scan import sample_scan

DEPTH_NOISE_PER_METRE = 0.0015  # standard deviation of depth noise grows with depth, < 1 cm in a room


@dataclass(frozen=True)
class SyntheticSceneConfig:
    frames: int = 30  # RGB-D frames along the camera path
    color_size: tuple[int, int] = (320, 240)  # (width, height)
    depth_size: tuple[int, int] = (224, 168)  # differs from color, as in ScanNet (1296x968 vs 640x480)
    points: int = 60_000  # points sampled on the surfaces for the scan PLY
    depth_scale: float = 1000.0  # png value = metres * depth_scale

    def __post_init__(self) -> None:
        if self.frames < 1 or self.points < 1 or self.depth_scale <= 0:
            raise ValueError(f"frames, points and depth_scale must be positive: {self}")
        if min(*self.color_size, *self.depth_size) < 2:
            raise ValueError(f"image sizes must be at least 2x2: {self}")


def noisy_depth(depth_m: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noise = rng.normal(0.0, 1.0, depth_m.shape) * DEPTH_NOISE_PER_METRE * depth_m
    return np.where(depth_m > 0, depth_m + noise, 0.0)


def scanner_frame(rng: np.random.Generator) -> np.ndarray:
    """[4, 4] room -> scan frame: a turn about the up axis and a shift, as a ScanNet scan starts wherever the
    sensor did; the scene's axisAlignment is its inverse, so the pipeline's axis_align has real work to do."""
    angle, shift = rng.uniform(0, 2 * np.pi), rng.uniform(-2.0, 2.0, 2)
    transform = np.eye(4)
    transform[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    transform[:2, 3] = shift
    return transform


def write_synthetic_scene(root: Path, scene: str, seed: int, config: SyntheticSceneConfig) -> Path:
    """Write <root>/<scene>/ (see scannet_writer for the layout) and return it; deterministic in (seed, config).

    The room layout depends on the seed alone, so scenes written with other image sizes, frame or
    point counts show the same room. An existing <root>/<scene> is a FileExistsError: stale frames
    of an earlier, longer run must not mix in.
    """
    scene_dir = Path(root) / scene
    scene_dir.mkdir(parents=True, exist_ok=False)
    # spawn(5)'s first four children are spawn(4)'s: rooms written before the scan frame existed stay the same.
    layout_rng, path_rng, noise_rng, scan_rng, frame_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5))
    layout = generate_layout(layout_rng)
    scan_frame = scanner_frame(frame_rng)
    color, depth = color_camera(config.color_size), depth_camera(config.depth_size)
    for frame, pose in enumerate(camera_path(layout.room_size, config.frames, path_rng)):
        scannet_writer.write_color(scene_dir, frame, render_color(layout, color, pose))
        depth_m = noisy_depth(render_depth(layout, depth, pose), noise_rng)
        scannet_writer.write_depth(scene_dir, frame, depth_m, config.depth_scale)
        scannet_writer.write_pose(scene_dir, frame, scan_frame @ pose)
    scannet_writer.write_intrinsics(scene_dir, color.intrinsics, depth.intrinsics)
    scan = sample_scan(layout, config.points, scan_rng)
    scan_xyz = (scan.xyz @ scan_frame[:3, :3].T + scan_frame[:3, 3]).astype(np.float32)
    scannet_writer.write_scan(scene_dir, scene, scan_xyz, scan.rgb, scan.label, scan.label_rgb)
    scannet_writer.write_axis_alignment(scene_dir, scene, np.linalg.inv(scan_frame))
    # One segment per layout box; each piece of furniture is one object made of its parts' segments, those
    # the scan has points on (as in ScanNet, an object names only segments of the mesh).
    owner = np.where(np.isin(np.arange(len(layout.boxes)), scan.box_index), layout.box_owner(), -1)
    objects = [(p.kind.surface_class.name, np.flatnonzero(owner == i).tolist()) for i, p in enumerate(layout.placements)]
    objects = [(label, segments) for label, segments in objects if segments]
    scannet_writer.write_annotations(scene_dir, scene, scan.box_index, objects)
    return scene_dir
