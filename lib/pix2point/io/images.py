"""Color images as a teacher sees them: decoded (OpenCV), resized, normalised; loaded ahead of their use."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch


def read_color_image(path: Path) -> np.ndarray:
    """[H, W, 3] uint8 RGB; a missing or undecodable file is a ValueError naming it."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read color image {path}: missing, unreadable or not an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to size = (width, height): area averaging when shrinking (no aliasing), bilinear when enlarging."""
    height, width = image.shape[:2]
    if (width, height) == tuple(size):
        return image
    shrinking = size[0] <= width and size[1] <= height
    return cv2.resize(image, tuple(size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def read_resized_images(paths: Sequence[Path], size: tuple[int, int]) -> np.ndarray:
    """[B, height, width, 3] uint8 RGB images of `paths`, each resized to size = (width, height)."""
    return np.stack([resize_image(read_color_image(path), size) for path in paths])


def normalise_images(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """[B, H, W, 3] uint8 RGB -> [B, 3, H, W] float32 (pixel / 255 - mean) / std, on the images' device."""
    return standardise_images(images.permute(0, 3, 1, 2).float().div_(255), mean, std)


def standardise_images(pixels: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """[B, 3, H, W] float32 pixels in [0, 1] -> (pixels - mean) / std per channel, in place."""
    mean_t = torch.tensor(mean, dtype=torch.float32, device=pixels.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=pixels.device).view(1, 3, 1, 1)
    return pixels.sub_(mean_t).div_(std_t)


def prefetched_image_batches(path_batches: Iterable[Sequence[Path]], size: tuple[int, int],
                             threads: int = 1, ahead: int = 2) -> Iterator[np.ndarray]:
    """read_resized_images of each batch, in order, decoded by `threads` background threads up to `ahead`
    batches per thread before they are asked for, so that decoding overlaps the consumer's work
    (OpenCV releases the GIL while it decodes and resizes). A decode error is raised at its batch."""
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="image-decode")
    pending: deque[Future[np.ndarray]] = deque()
    try:
        for paths in path_batches:
            pending.append(pool.submit(read_resized_images, paths, size))
            if len(pending) > threads * ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        # A consumer that stops early (an error downstream) must not wait for batches it will never use.
        pool.shutdown(wait=True, cancel_futures=True)
