"""The README's "Using the pretrained backbone" block runs as written on a stored backbone (issue 16 item 11)."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from pix2point.models.backbone import BackboneSpec, build_backbone, save_backbone

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block() -> str:
    section = README.read_text().split("### Using the pretrained backbone in your own code", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_loads_a_stored_backbone_and_embeds_every_point(tmp_path, capsys):
    spec = BackboneSpec("tiny", "rgb", 0.05)
    torch.manual_seed(0)
    stored = build_backbone(spec)
    save_backbone(tmp_path, stored, spec)
    code = readme_block()
    assert 'Path("artefacts/pretrain/<key>")' in code
    namespace: dict = {}
    exec(code.replace('Path("artefacts/pretrain/<key>")', f"Path({str(tmp_path)!r})"), namespace)
    features, model = namespace["features"], namespace["model"]
    assert features.shape == (20_000, stored.out_channels)
    assert torch.isfinite(features).all() and features.abs().sum() > 0
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), stored.state_dict().values()))
    assert "torch.Size([20000," in capsys.readouterr().out
