"""The one verdict rule (issue 22 item 1) on constructed scores: a clear gap is ahead or behind, overlapping
seeds and a single seed are unresolved, and the table states the rule with the seed counts."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from pix2point.evaluation.verdict import compare, verdict_document, verdict_table


def test_a_clear_gap_over_seeds_is_ahead_one_way_and_behind_the_other():
    pretrained, scratch = [0.80, 0.82, 0.81], [0.60, 0.61, 0.59]
    ahead, behind = compare(pretrained, scratch), compare(scratch, pretrained)
    assert ahead.outcome == "ahead" and behind.outcome == "behind"
    assert ahead.gap == pytest.approx(0.21) and behind.gap == pytest.approx(-0.21)
    assert ahead.p_value == pytest.approx(stats.ttest_ind(pretrained, scratch, equal_var=False).pvalue)
    assert ahead.p_value < 0.05 and behind.p_value == pytest.approx(ahead.p_value)
    assert (ahead.candidate_seeds, ahead.baseline_seeds) == (3, 3)
    assert ahead.candidate_std == pytest.approx(0.01) and ahead.baseline_std == pytest.approx(0.01)


def test_overlapping_seeds_are_unresolved_even_with_a_gap_in_the_means():
    verdict = compare([0.70, 0.90, 0.75], [0.65, 0.85, 0.72])
    assert verdict.gap > 0 and verdict.p_value >= 0.05 and verdict.outcome == "unresolved"


@pytest.mark.parametrize(("candidate", "baseline"), [([0.9], [0.1, 0.11, 0.12]), ([0.9, 0.91], [0.1]), ([0.9], [0.1])])
def test_one_seed_on_either_side_is_unresolved_however_large_the_gap(candidate, baseline):
    verdict = compare(candidate, baseline)
    assert verdict.outcome == "unresolved" and math.isnan(verdict.p_value) and verdict.gap > 0.7


def test_undefined_scores_are_left_out_before_counting_seeds():
    verdict = compare([0.8, math.nan, 0.81], [0.5, 0.51, math.nan])
    assert (verdict.candidate_seeds, verdict.baseline_seeds) == (2, 2) and verdict.outcome == "ahead"
    assert compare([math.nan], [0.5, 0.6]).outcome == "unresolved"


def test_constant_sides_resolve_when_they_differ_and_not_when_equal():
    assert compare([0.5, 0.5], [0.25, 0.25]).outcome == "ahead"
    assert compare([0.5, 0.5], [0.5, 0.5]).outcome == "unresolved"


def test_the_table_shows_gap_spread_seeds_p_and_verdict_in_points_and_states_the_rule():
    table = verdict_table(["labels"], [(["0.1"], compare([0.80, 0.82, 0.81], [0.60, 0.61, 0.59])),
                                       (["1"], compare([0.9], [0.5]))])
    assert "| labels | gap (points) | spread ± (points) | seeds | p | verdict |" in table
    assert "| 0.1 | +21.0 | 1.0 / 1.0 | 3 / 3 | < 0.001 | **ahead** |" in table
    assert "| 1 | +40.0 | – / – | 1 / 1 | – | **unresolved** |" in table
    assert "Welch's t-test over seeds" in table and "p < 0.05" in table and "fewer than 2 seeds" in table
    assert "over folds" in verdict_table(["setting"], [], samples="folds")
    document = verdict_document(compare([0.9], [0.5]))
    assert document["verdict"] == "unresolved" and document["p_value"] is None and document["candidate_seeds"] == 1
