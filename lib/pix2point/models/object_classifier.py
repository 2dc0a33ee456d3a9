"""The sparse object classifiers Image2Point compares: a 2D network's 3D twin, random or inflated from 2D.

    init scratch    the twin with random weights (the baseline)
    init inflated   the twin's trunk filled from the 2D ImageNet weights (models/inflation.py); the stem and
                    the classifier are new in both cases
"""

from __future__ import annotations

from torch.nn.modules.batchnorm import _BatchNorm

from pix2point.models.classifier_spec import ClassifierSpec, Init  # noqa: F401 (re-exported)
from pix2point.models.inflated_efficientnet import (
    SparseObjectClassifier, inflated_efficientnet_lite0, sparse_efficientnet_lite0,
)
from pix2point.models.inflated_resnet import SparseResNet, inflated_resnet
from pix2point.models.inflation import InflationReport
from pix2point.models.resnet import resnet

def build_classifier(spec: ClassifierSpec, init: Init) -> tuple[SparseObjectClassifier, InflationReport | None]:
    """The twin of `spec.network`, and the inflation report when its trunk came from 2D weights."""
    model, report = _twin(spec, init)
    if spec.batchnorm_momentum is not None:
        for module in model.modules():
            if isinstance(module, _BatchNorm):
                module.momentum = spec.batchnorm_momentum
    return model, report


def _twin(spec: ClassifierSpec, init: Init) -> tuple[SparseObjectClassifier, InflationReport | None]:
    if init not in ("scratch", "inflated"):
        raise ValueError(f"unknown init {init!r}; known: scratch, inflated")
    if spec.network == "efficientnet_lite0":
        if init == "scratch":
            return sparse_efficientnet_lite0(spec.in_channels, spec.num_classes, spec.pooling), None
        return inflated_efficientnet_lite0(spec.in_channels, spec.num_classes, spec.inflation, spec.pooling,
                                           spec.weights_path)
    if init == "scratch":
        return SparseResNet(resnet(spec.network), spec.in_channels, spec.num_classes, spec.pooling), None
    if spec.weights_path is None:
        raise ValueError(f"inflating {spec.network} needs its 2D weights: set `teacher_weights` to a torchvision "
                         "or MoCo v2 checkpoint file")
    return inflated_resnet(spec.network, spec.weights_path, spec.in_channels, spec.num_classes, spec.inflation,
                           spec.pooling)
