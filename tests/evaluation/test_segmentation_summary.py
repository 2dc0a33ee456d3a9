import numpy as np
import pytest

from pix2point.evaluation.segmentation_summary import pretraining_verdicts, score_runs, summarise_cells
from pix2point.io.finetune_table import RunResult, run_name

# Two classes; mIoU of each matrix worked out by hand.
PERFECT = np.array([[2, 0], [0, 2]])  # 1
GOOD = np.array([[1, 1], [0, 2]])  # (1/2 + 2/3) / 2 = 7/12
POOR = np.array([[1, 1], [1, 1]])  # (1/3 + 1/3) / 2 = 1/3
WORST = np.array([[0, 2], [0, 2]])  # (0 + 1/2) / 2 = 1/4


def run(init: str, label_fraction: float, seed: int, confusion: np.ndarray) -> RunResult:
    return RunResult(run_name(init, label_fraction, seed), init, label_fraction, seed, epochs=3,
                     final_val_miou=-1.0, best_val_miou=-1.0, confusion=confusion)


RUNS = [
    run("pretrain", 0.1, 0, GOOD), run("pretrain", 0.1, 1, PERFECT),
    run("scratch", 0.1, 1, WORST), run("scratch", 0.1, 0, POOR),
    run("scratch", 1.0, 0, PERFECT),
]


def test_cells_are_ordered_baseline_first_and_aggregate_seeds():
    cells = summarise_cells(score_runs(RUNS))
    assert [(c.init, c.label_fraction) for c in cells] == [("scratch", 0.1), ("scratch", 1.0), ("pretrain", 0.1)]
    scratch, _, pretrain = cells
    assert scratch.seeds == (0, 1)
    assert scratch.miou_mean == pytest.approx((1 / 3 + 1 / 4) / 2)
    assert scratch.miou_std == pytest.approx(abs(1 / 3 - 1 / 4) / np.sqrt(2))  # sample std of two seeds
    assert pretrain.miou_mean == pytest.approx((7 / 12 + 1) / 2)
    np.testing.assert_allclose(pretrain.iou_mean, [(1 / 2 + 1) / 2, (2 / 3 + 1) / 2])
    np.testing.assert_array_equal(scratch.confusion, POOR + WORST)


def test_a_single_seed_has_no_spread():
    single = summarise_cells(score_runs(RUNS))[1]
    assert single.seeds == (0,) and single.miou_mean == 1.0 and np.isnan(single.miou_std)


def test_gain_is_pretrain_minus_scratch_where_both_ran_with_the_verdict_over_their_seeds():
    verdicts = pretraining_verdicts(summarise_cells(score_runs(RUNS)))
    assert verdicts.keys() == {0.1}
    assert verdicts[0.1].gap == pytest.approx((7 / 12 + 1) / 2 - (1 / 3 + 1 / 4) / 2)
    assert (verdicts[0.1].candidate_seeds, verdicts[0.1].baseline_seeds) == (2, 2)
    # seed order: pretrain's mIoUs are (7/12, 1) for seeds (0, 1) whatever order the runs came in
    assert summarise_cells(score_runs(RUNS))[2].mious == pytest.approx((7 / 12, 1.0))


def test_two_runs_with_one_seed_in_a_cell_are_an_error():
    with pytest.raises(ValueError, match="same seed"):
        summarise_cells(score_runs([run("scratch", 0.1, 0, POOR), run("scratch", 0.1, 0, GOOD)]))
