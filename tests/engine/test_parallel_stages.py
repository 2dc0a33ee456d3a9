"""Independent stages run side by side within one run; a failure in one branch starts nothing new and leaves
the other branch's artefacts complete."""

import textwrap

import pytest

from pix2point.engine.artefacts import ArtefactStore
from pix2point.engine.failures import StageFailed
from pix2point.engine.pipeline import load_pipeline
from pix2point.engine.runner import run_pipeline, stage_states

BRANCHES = """
stages:
  numbers:
    module: {package}.numbers
    params: {{sleep_after_write: {sleep}}}
  other:
    module: {package}.numbers
    params: {{count: 3, sleep_after_write: {sleep}}}
  third:
    module: {package}.numbers
    params: {{count: 4}}
  total:
    module: {package}.total
    inputs: [numbers]
"""


def branches(toy, sleep: float = 1.5):
    toy.pipeline.write_text(textwrap.dedent(BRANCHES.format(package=toy.package, sleep=sleep)))
    return toy.pipeline


def overlap(a, b) -> bool:
    return a.started_at < b.finished_at and b.started_at < a.finished_at


def test_independent_stages_overlap_and_the_table_order_is_the_pipelines(toy):
    outcomes = run_pipeline(load_pipeline(branches(toy)), ArtefactStore(toy.artefacts))
    by_stage = {outcome.stage: outcome for outcome in outcomes}
    assert [outcome.stage for outcome in outcomes] == list(load_pipeline(toy.pipeline).stages)
    assert overlap(by_stage["numbers"], by_stage["other"])
    assert by_stage["total"].started_at >= by_stage["numbers"].finished_at  # it needs numbers
    assert {outcome.status for outcome in outcomes} == {"ran"}


def test_max_parallel_one_runs_stages_one_after_another(toy):
    outcomes = run_pipeline(load_pipeline(branches(toy, sleep=0.3)), ArtefactStore(toy.artefacts), max_parallel=1)
    ran = sorted(outcomes, key=lambda outcome: outcome.started_at)
    assert all(earlier.finished_at <= later.started_at for earlier, later in zip(ran, ran[1:]))


def test_a_failed_branch_starts_nothing_new_and_the_running_branch_completes(toy):
    pipeline = load_pipeline(branches(toy, sleep=2.0), overrides=["numbers.fail_after_write=true", "numbers.sleep_after_write=0"])
    store = ArtefactStore(toy.artefacts)
    with pytest.raises(StageFailed, match="stage numbers failed: RuntimeError: numbers stage failed on purpose") as failure:
        run_pipeline(pipeline, store, max_parallel=2)
    assert "stage 'numbers' failed; not started: third, total" in failure.value.__notes__[0]
    states = {name: state for name, (_, state) in stage_states(pipeline, store).items()}
    assert states == {"numbers": "missing", "other": "cached", "third": "missing", "total": "missing"}
    (key,) = store.complete_keys("other")
    assert {entry["path"] for entry in store.manifest("other", key)["files"]} == {"numbers.parquet", "started", "config.yaml"}
