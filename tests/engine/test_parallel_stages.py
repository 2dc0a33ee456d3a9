"""Independent stages run side by side within one run; a failure in one branch starts nothing new and leaves
the other branch's artefacts complete."""

import io
import textwrap

import pytest
from rich.console import Console

from pix2point.cli import _print_outcomes

from pix2point.engine.artefacts import ArtefactStore
from pix2point.engine.failures import StageFailed
from pix2point.engine.pipeline import load_pipeline
from pix2point.engine.runner import run_pipeline, stage_states
from pix2point.engine.schedule import critical_path_first

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


def test_the_run_table_shows_when_each_stage_that_ran_started_and_ended(toy):
    pipeline, store = load_pipeline(branches(toy, sleep=0.2)), ArtefactStore(toy.artefacts)
    run_pipeline(pipeline, store, targets=["numbers"])
    outcomes = {outcome.stage: outcome for outcome in run_pipeline(pipeline, store)}
    stream = io.StringIO()
    _print_outcomes(list(outcomes.values()), Console(file=stream, width=1000))
    lines = [line.strip() for line in stream.getvalue().splitlines()]
    header = next(line for line in lines if line.startswith("┃"))
    assert [cell.strip() for cell in header[1:-1].split("┃")][-2:] == ["started", "ended"]
    # Cells between the row's first and last border (an empty last cell must stay a cell).
    rows = {cells[0]: cells for cells in ([cell.strip() for cell in line[1:-1].split("│")] for line in lines
                                          if line.startswith("│"))}
    assert rows["numbers"][2:] == ["cached", "0.0", "", outcomes["numbers"].location, "", ""]
    for stage in ("other", "third", "total"):
        local = [moment.astimezone().strftime("%H:%M:%S") for moment in (outcomes[stage].started_at, outcomes[stage].finished_at)]
        assert rows[stage][2] == "ran" and rows[stage][-2:] == local
    ran = [outcomes[stage] for stage in ("other", "third", "total")]
    seconds = (max(o.finished_at for o in ran) - min(o.started_at for o in ran)).total_seconds()
    assert f"wall time: 0 min {seconds:04.1f} s from the first stage's start to the last one's end (3 ran, 1 cached)" in lines


def test_under_a_limit_the_ready_stage_heading_the_longest_chain_starts_first(toy):
    # `third` comes first in the file, but `numbers` heads a chain (`total` needs it): numbers goes first.
    text = textwrap.dedent(BRANCHES.format(package=toy.package, sleep=0.2))
    third = text[text.index("  third:"):text.index("  total:")]
    toy.pipeline.write_text(text.replace(third, "").replace("stages:\n", "stages:\n" + third))
    outcomes = {outcome.stage: outcome for outcome in
                run_pipeline(load_pipeline(toy.pipeline), ArtefactStore(toy.artefacts), max_parallel=1)}
    assert list(load_pipeline(toy.pipeline).stages)[0] == "third"
    assert outcomes["numbers"].finished_at <= outcomes["third"].started_at
    assert outcomes["numbers"].finished_at <= outcomes["other"].started_at


def test_critical_path_first_orders_by_the_longest_chain_that_needs_each_node_ties_in_order():
    needs = {"leaf": [], "scenes": [], "features": ["scenes"], "pretrain": ["features"], "objects": [],
             "views": ["objects"], "classify": ["objects"]}
    assert critical_path_first(list(needs), needs) == ["scenes", "features", "objects", "leaf", "pretrain", "views",
                                                        "classify"]


def test_with_ray_connected_the_stages_side_by_side_are_at_most_the_clusters_cpus(toy, ray_runtime):
    import ray

    outcomes = run_pipeline(load_pipeline(branches(toy, sleep=0.5)), ArtefactStore(toy.artefacts))
    at_once = max(sum(other.started_at <= outcome.started_at < other.finished_at for other in outcomes)
                  for outcome in outcomes)
    assert at_once == min(3, int(ray.cluster_resources()["CPU"]))  # numbers, other and third are ready at once
