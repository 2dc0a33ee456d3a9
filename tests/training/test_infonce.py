import math

import pytest
import torch
import torch.nn.functional as F

from pix2point.training.pretraining.infonce import info_nce


def test_two_orthogonal_pairs_give_the_closed_form_loss():
    # Logits are [[1/T, 0], [0, 1/T]]: each row's loss is log(1 + exp(-1/T)).
    identity = torch.eye(2)
    assert info_nce(identity, identity, temperature=0.5).item() == pytest.approx(math.log(1 + math.exp(-2.0)))


def test_matches_an_explicit_log_softmax_of_the_diagonal():
    points = [[1.0, 0.0], [0.6, 0.8], [0.0, -1.0]]
    pixels = [[0.8, 0.6], [0.0, 1.0], [-0.6, -0.8]]
    temperature = 0.1
    row_losses = []
    for i, point in enumerate(points):
        logits = [sum(a * b for a, b in zip(point, pixel)) / temperature for pixel in pixels]
        log_partition = math.log(sum(math.exp(logit) for logit in logits))
        row_losses.append(log_partition - logits[i])
    expected = sum(row_losses) / len(row_losses)

    loss = info_nce(torch.tensor(points), torch.tensor(pixels), temperature)

    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_matched_pairs_cost_less_than_shuffled_pairs():
    generator = torch.Generator().manual_seed(0)
    points = F.normalize(torch.randn(32, 16, generator=generator), dim=1)
    pixels = F.normalize(points + 0.3 * torch.randn(32, 16, generator=generator), dim=1)
    shuffled = pixels[torch.roll(torch.arange(32), 1)]
    assert info_nce(points, pixels, 0.07) < info_nce(points, shuffled, 0.07) - 1.0


def test_rejects_unpaired_inputs():
    with pytest.raises(ValueError, match="row for row"):
        info_nce(torch.zeros(4, 8), torch.zeros(3, 8), 0.07)
