"""scripts/gpu_check.sh (issue 25.4): its CPU half on the smoke sizes, here without a GPU, so that only the device
part is new when a GPU machine runs it; and the parts of it a GPU machine without Ray depends on."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
STAGES = ["ppkt", "i2p_mae", "finetune", "detect", "classify", "finetune_objects", "fewshot"]
FIGURES = ["teacher_resnet50", "teacher_efficientnet_lite0", "ppkt_step", "votenet_step", "i2p_mae_step"]


def load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_cpu_half_runs_every_training_stages_step_and_prints_every_figure():
    done = subprocess.run(["bash", "scripts/gpu_check.sh", "--cpu"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHON": sys.executable})
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for stage in STAGES:
        assert any(line.startswith(f"agree {stage} ") and line.endswith(" ok") for line in lines), (stage, done.stdout)
    assert sum(line.startswith("agree teacher ") and line.endswith(" ok") for line in lines) == 2, done.stdout
    for figure in FIGURES:
        assert any(line.startswith(f"figure {figure}: ") for line in lines), (figure, done.stdout)
    assert lines[-1].startswith("gpu_check: 9 agreements ok, 5 figures, 0 failed"), lines[-1]


def test_agreement_passes_the_same_step_and_fails_one_that_differs_by_one_percent():
    gpu_check = load_gpu_check()

    def step(scale_second_run: float):
        runs = []

        def run(device: torch.device) -> tuple[float, torch.nn.Module]:
            runs.append(device)
            torch.manual_seed(0)
            model = torch.nn.Linear(3, 1)
            loss = model(torch.ones(4, 3)).sum() * (scale_second_run if len(runs) == 2 else 1.0)
            loss.backward()
            return loss.item(), model

        return gpu_check.Step("linear", run)

    assert gpu_check.agree(step(1.0), torch.device("cpu")).endswith(" ok")
    # The second run stands for the device: a 1 % error in the loss and every gradient.
    with pytest.raises(AssertionError, match="agree linear"):
        gpu_check.agree(step(1.01), torch.device("cpu"))


def test_the_step_modules_and_the_check_import_without_ray():
    """The GPU machine has no Ray: the stages' step functions and the check itself must import without it."""
    code = ("import sys; sys.modules['ray'] = None\n"  # any `import ray...` now raises ImportError
            "import importlib.util\n"
            f"spec = importlib.util.spec_from_file_location('gpu_check', {str(ROOT / 'scripts' / 'gpu_check.py')!r})\n"
            "module = sys.modules['gpu_check'] = importlib.util.module_from_spec(spec)\n"
            "spec.loader.exec_module(module)\n"
            "for name in ['pix2point.training.pretraining.ppkt', 'pix2point.training.pretraining.i2p_mae',\n"
            "             'pix2point.training.finetuning.segmentation', 'pix2point.training.finetuning.classification',\n"
            "             'pix2point.training.finetuning.object_finetuning', 'pix2point.training.finetuning.fewshot_recipes',\n"
            "             'pix2point.training.finetuning.detection_data', 'stages.features2d']:\n"
            "    importlib.import_module(name)\n"
            "print('imported')\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": f"{ROOT / 'lib'}{os.pathsep}{ROOT}"})
    assert done.returncode == 0 and "imported" in done.stdout, done.stderr
