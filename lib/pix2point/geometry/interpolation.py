"""How a low-resolution map is upsampled to image pixels (pixel_sampling.py), named without importing torch."""

from typing import Literal

Interpolation = Literal["bilinear", "bicubic"]  # torch.nn.functional.interpolate's modes of the same names
