"""Runs a pipeline's stages in dependency order, reusing every artefact whose key is unchanged."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Literal

from pydantic import BaseModel

import pix2point
from pix2point import stage_progress
from pix2point.engine.failures import StageFailed
from pix2point.engine.keys import code_fingerprint, stage_key
from pix2point.engine.live import StageBoard
from pix2point.engine.pipeline import Pipeline, PipelineError, Stage, load_pipeline, profile_names, unknown_stage
from pix2point.engine.provenance import run_provenance
from pix2point.engine.read_paths import read_path_problems
from pix2point.engine.runlog import naming_stage
from pix2point.engine.schedule import run_when_ready
from pix2point.engine.stores import Store
from pix2point.parallel import cluster_cpus, counting_task_nodes, ray_connected

log = logging.getLogger(__name__)

StageState = Literal["cached", "damaged", "running", "stale", "missing"]
# What each state means, for people (`pix2point status` prints it under its table).
STATE_MEANINGS = {
    "cached": "built for the current params, inputs and code",
    "damaged": "built, but its files differ from its manifest; `pix2point run` rebuilds it and what uses it",
    "running": "another run is computing it now (the host and pid holding its lock)",
    "stale": "built only with other params, inputs or code (other keys); `pix2point run` computes it anew",
    "missing": "never built",
}


@dataclass(frozen=True)
class StageOutcome:
    stage: str
    key: str
    status: Literal["cached", "ran"]
    seconds: float
    location: str  # a path, or a URI for an object-store root
    nodes: int = 0  # Ray nodes its fanned-out tasks ran on
    started_at: datetime | None = None  # when it ran (UTC); None when cached
    finished_at: datetime | None = None

    @property
    def path(self) -> Path:
        """The artefact directory, for a local or shared-path root."""
        if "://" in self.location:
            raise ValueError(f"{self.stage}: artefact is at {self.location}, not a local path; use the store's local_copy")
        return Path(self.location)


def compute_keys(pipeline: Pipeline) -> dict[str, str]:
    keys: dict[str, str] = {}
    for name, stage in pipeline.stages.items():
        keys[name] = stage_key(
            name,
            stage.params.model_dump(mode="json"),
            {name: keys[upstream] for name, upstream in stage.input_names.items()},
            code_fingerprint(stage.module.__name__),
        )
    return keys


def stage_states(pipeline: Pipeline, store: Store, verify: bool = False) -> dict[str, tuple[str, StageState]]:
    """Each stage's key and state (STATE_MEANINGS): running while another live run holds its lock, else cached,
    damaged (its files differ from its manifest: sizes, and with `verify` content hashes; `store.damage` says
    how), stale (only other keys exist) or missing."""
    states = {}
    for name, key in compute_keys(pipeline).items():
        if store.lock_holder(name, key) is not None:
            states[name] = (key, "running")
        elif store.is_complete(name, key):
            states[name] = (key, "damaged" if store.damage(name, key, verify) else "cached")
        else:
            states[name] = (key, "stale" if store.complete_keys(name) else "missing")
    return states


def profiles_with_artefacts(path: Path, store: Store, overrides: list[str] = ()) -> dict[str | None, tuple[int, int]]:
    """Each profile of the pipeline file at `path` (None: the stages' own params), with `overrides`, that has
    stages built under `store` for its current keys: (stages built, stages). A profile that does not load
    here (one whose params need data this machine lacks) is left out."""
    found = {}
    for profile in [None, *profile_names(path)]:
        try:
            keys = compute_keys(load_pipeline(path, profile, overrides))
        except PipelineError:
            continue
        if built := sum(store.is_complete(name, key) for name, key in keys.items()):
            found[profile] = (built, len(keys))
    return found


def select_stages(pipeline: Pipeline, targets: list[str], only: str | None) -> list[str]:
    for name in [*targets, *([only] if only else [])]:
        if name not in pipeline.stages:
            raise unknown_stage(name, list(pipeline.stages))
    if only and targets:
        raise PipelineError("--only takes one stage; leave out the other stage names")
    if only:
        return [only]
    return pipeline.upstream_closure(targets) if targets else list(pipeline.stages)


def run_pipeline(
    pipeline: Pipeline,
    store: Store,
    targets: list[str] = (),
    only: str | None = None,
    force: bool = False,
    before_first_run: Callable[[], None] = lambda: None,
    build_command: Callable[..., str] = lambda *stages: f"pix2point run {' '.join(stages)}",
    max_parallel: int | None = None,
    board: StageBoard | None = None,
) -> list[StageOutcome]:
    """Run the selected stages, outcomes in pipeline order; `before_first_run` is called once, only if some
    stage must run (starts Ray).

    `force` recomputes the named stages (`targets`, `only`) alone, or every stage when none is named: the
    inputs of a named stage are reused from the cache, built first only if missing. Before anything runs,
    `preflight` checks every stage that must run (its data paths, the splits it scores) and raises one
    PipelineError listing every problem. `build_command(*stages)` is the command an error suggests to build
    those stages and what they need (the CLI's carries the user's options).

    Every stage whose inputs are done starts at once, the head of the longest chain first, up to
    `max_parallel` side by side (engine/schedule.py). None: one stage per CPU of the Ray cluster once one is
    connected (every ready one without Ray): each stage holds at least one CPU while it runs, so more would only
    queue inside Ray, where the chain the run waits for gets no precedence over a stage nothing needs. A stage that raises ends the run with StageFailed (its root cause), after the
    stages already running have finished; nothing starts after it. A stage is computed under its artefact's
    lock: a concurrent run of the same pipeline on the same root waits for it and then finds it cached.
    `board` (the live view), if given, is told each stage's state and progress.
    """
    selected = select_stages(pipeline, list(targets), only)
    keys = compute_keys(pipeline)
    if only:
        _require_built_inputs(pipeline.stages[only], keys, store, build_command)
    named = {*targets, *([only] if only else [])}
    forced = (named or set(selected)) if force else set()
    preflight(pipeline, [name for name in selected if name in forced or not store.is_complete(name, keys[name])])
    if forced or not all(_intact(store, name, keys[name], say=False) for name in selected):
        before_first_run()
    if max_parallel is None and ray_connected():
        max_parallel = cluster_cpus()
    # Rebuilt because they were damaged, or an input was: what reads them is rebuilt too, since when the
    # damage happened (before or after a downstream stage read the file) cannot be known.
    rebuilt: set[str] = set()
    needs = {name: [upstream for upstream in pipeline.stages[name].inputs if upstream in selected] for name in selected}
    board = board or StageBoard(selected)
    outcomes = run_when_ready(selected, needs, lambda name: _watched(
        name, board, lambda: _run_or_reuse(pipeline, name, keys, store, forced, rebuilt)), max_parallel)
    return [outcomes[name] for name in selected]


def preflight(pipeline: Pipeline, computed: list[str]) -> None:
    """One PipelineError listing every problem, one line each, of the stages `computed` (those a run will
    compute): first every path their params name that is missing (io/paths.py's READ_BY_STAGE); once they all
    exist, what each stage module's own `preflight(params, inputs)` finds (`inputs`: name `run` reads -> the
    upstream Stage, e.g. the scenes stage whose split a scoring stage needs; it raises ValueError)."""
    problems = [problem for name in computed for problem in read_path_problems(name, pipeline.stages[name].params)]
    if not problems:
        for name in computed:
            stage = pipeline.stages[name]
            if (check := getattr(stage.module, "preflight", None)) is None:
                continue
            try:
                check(stage.params, {read_as: pipeline.stages[upstream] for read_as, upstream in stage.input_names.items()})
            except ValueError as error:
                problems.append(f"stage {name!r}: {error}")
    if problems:
        raise PipelineError("\n".join(problems))


def _watched(name: str, board: StageBoard, run: Callable[[], StageOutcome]) -> StageOutcome:
    board.update(name, "running")
    try:
        with stage_progress.reporting_to(lambda kind, text: board.progress(name, kind, text)), naming_stage(name):
            outcome = run()
    except BaseException:
        board.update(name, "failed")
        raise
    board.update(name, "done" if outcome.status == "ran" else "cached", outcome.seconds)
    return outcome


def _run_or_reuse(pipeline: Pipeline, name: str, keys: dict[str, str], store: Store, forced: set[str],
                  rebuilt: set[str]) -> StageOutcome:
    """The cached artefact of stage `name`, or a new one (`rebuilt` names the stages rebuilt over damage)."""
    key = keys[name]
    cached = StageOutcome(name, key, "cached", 0.0, store.location(name, key))
    damaged_input = next((upstream for upstream in pipeline.stages[name].inputs if upstream in rebuilt), None)
    reuse = name not in forced and damaged_input is None
    if reuse and _intact(store, name, key, say=False):
        return cached
    with store.lock(name, key):
        if reuse and _intact(store, name, key, say=True):
            return cached  # another run computed it while this one waited
        if damaged_input is not None:
            log.warning("stage %s (key %s): rebuilding, its input %s was damaged and rebuilt", name, key, damaged_input)
        if damaged_input is not None or (reuse and store.is_complete(name, key)):
            rebuilt.add(name)
        try:
            return _run_stage(pipeline, pipeline.stages[name], keys, store)
        except Exception as error:
            raise StageFailed(name, key, error) from error


def _intact(store: Store, name: str, key: str, say: bool) -> bool:
    """Complete, with every file the size its manifest records; with `say`, a damaged one is logged."""
    if not store.is_complete(name, key):
        return False
    damage = store.damage(name, key)
    if damage and say:
        log.warning("stage %s (key %s): artefact damaged, rebuilding it and what uses it: %s", name, key, "; ".join(damage))
    return not damage


def _require_built_inputs(stage: Stage, keys: dict[str, str], store: Store, build_command: Callable[..., str]) -> None:
    """PipelineError naming every input of `--only stage` that is not built for the current params, or is
    damaged, and the one command that builds them all and what they need in turn."""
    problems = {}
    for upstream in stage.inputs:
        if not store.is_complete(upstream, keys[upstream]):
            problems[upstream] = f"its input stage {upstream!r} is not built for the current params (key {keys[upstream]})"
        elif damage := store.damage(upstream, keys[upstream]):
            problems[upstream] = f"its input stage {upstream!r} (key {keys[upstream]}) is damaged: {'; '.join(damage)}"
    if problems:
        raise PipelineError(
            f"--only {stage.name}: {'; '.join(problems.values())}; run "
            f"`{build_command(*problems)}` first (it builds them and what they need), or leave out --only"
        )


def _run_stage(pipeline: Pipeline, stage: Stage, keys: dict[str, str], store: Store) -> StageOutcome:
    key = keys[stage.name]
    inputs = {name: store.local_copy(upstream, keys[upstream]) for name, upstream in stage.input_names.items()}
    log.info("stage %s (key %s): running", stage.name, key)
    started, started_at = time.perf_counter(), datetime.now(timezone.utc)
    with store.writing(stage.name, key) as temporary:
        with counting_task_nodes() as tasks_per_node:
            metrics = call_stage(stage.module, stage.params, inputs, temporary,
                                 lambda: store.scratch(stage.name, key)) or {}
        seconds = time.perf_counter() - started
        manifest = {
            "stage": stage.name,
            "key": key,
            "module": stage.module.__name__,
            "params": stage.params.model_dump(mode="json"),
            "inputs": {name: keys[upstream] for name, upstream in stage.input_names.items()},
            "code_fingerprint": code_fingerprint(stage.module.__name__),
            "profile": pipeline.profile,
            "metrics": metrics,
            "ray_nodes": dict(tasks_per_node),  # node id -> tasks of this stage it ran
            "seconds": round(seconds, 3),
            "started_at": started_at.isoformat(timespec="seconds"),
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "pix2point_version": pix2point.__version__,
            "provenance": run_provenance(),  # commit, machine, command: for results pages, not keys
        }
        store.commit(temporary, stage.name, key, manifest)
    store.remove_scratch(stage.name, key)
    log.info("stage %s (key %s): done in %.1f s", stage.name, key, seconds)
    return StageOutcome(stage.name, key, "ran", seconds, store.location(stage.name, key), len(tasks_per_node),
                        started_at, datetime.now(timezone.utc))


def call_stage(module: ModuleType, params: BaseModel, inputs: dict[str, Path], out: Path,
               scratch: Callable[[], Path]) -> dict | None:
    """`module.run(params, inputs, out)`; a stage whose `run` also takes `scratch` (to resume from checkpoints)
    gets `scratch()`, a directory that outlives a killed attempt at the same key and is removed once the
    artefact is complete."""
    if "scratch" in inspect.signature(module.run).parameters:
        return module.run(params, inputs, out, scratch=scratch())
    return module.run(params, inputs, out)
