"""`pix2point run` and `pix2point status`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pix2point.engine.cluster import connect_ray
from pix2point.engine.errors import PipelineError
from pix2point.engine.pipeline import load_pipeline
from pix2point.engine.runner import StageOutcome, run_pipeline, stage_states
from pix2point.engine.stores import Store, open_store

DEFAULT_PIPELINE = Path("pipeline.yaml")
console = Console(stderr=False)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    pipeline_path, stage_names = _split_pipeline_and_targets(args.names)
    try:
        pipeline = load_pipeline(pipeline_path, args.profile, args.set)
        store = open_store(args.artefacts, args.cache)
        if args.command == "status":
            _print_status(pipeline, store)
            return 0
        outcomes = run_pipeline(
            pipeline, store, targets=stage_names, only=args.only, force=args.force,
            before_first_run=lambda: connect_ray(args.address),
        )
    except PipelineError as error:
        console.print(f"[bold red]error:[/] {error}", highlight=False)
        return 2
    _print_outcomes(outcomes)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pix2point", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run stages (all, or the named ones and what they need)")
    run.add_argument("names", nargs="*", metavar="[PIPELINE] [TARGET ...]", help="pipeline file (default pipeline.yaml), then stage names")
    run.add_argument("--only", metavar="STAGE", help="run just this stage on its cached inputs")
    run.add_argument("--force", action="store_true", help="recompute the selected stages even if cached")
    run.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else an embedded local Ray)")
    status = commands.add_parser("status", help="each stage's key and whether it is cached, stale or missing")
    status.add_argument("names", nargs="*", metavar="[PIPELINE]")
    for command in (run, status):
        command.add_argument("--profile", help="a profile of pipeline.yaml (default: the stages' own params)")
        command.add_argument("--set", action="append", default=[], metavar="STAGE.KEY=VALUE", help="override a param (repeatable)")
        command.add_argument("--artefacts", default=os.environ.get("PIX2POINT_ARTEFACTS", "artefacts"),
                             help="artefact root: a path, or an object store URI such as s3://bucket/prefix (default: $PIX2POINT_ARTEFACTS or ./artefacts)")
        command.add_argument("--cache", type=Path, help="local mirror of an s3:// root's artefacts (default: $PIX2POINT_CACHE or ~/.cache/pix2point)")
    return parser


def _split_pipeline_and_targets(names: list[str]) -> tuple[Path, list[str]]:
    if names and (names[0].endswith((".yaml", ".yml")) or Path(names[0]).is_file()):
        return Path(names[0]), names[1:]
    return DEFAULT_PIPELINE, names


def _print_status(pipeline, store: Store) -> None:
    table = Table(title=f"{pipeline.path} (profile: {pipeline.profile or 'default'})")
    for column in ("stage", "key", "state", "path"):
        table.add_column(column, overflow="fold")  # job logs are 80 columns wide: wrap paths, never cut them
    colours = {"cached": "green", "stale": "yellow", "missing": "red"}
    for name, (key, state) in stage_states(pipeline, store).items():
        table.add_row(name, key, f"[{colours[state]}]{state}[/]", store.location(name, key) if state == "cached" else "")
    console.print(table)


def _print_outcomes(outcomes: list[StageOutcome]) -> None:
    table = Table(title="pix2point run")
    for column in ("stage", "key", "status", "seconds", "nodes", "output"):
        table.add_column(column, overflow="fold")  # job logs are 80 columns wide: wrap paths, never cut them
    for outcome in outcomes:
        status = "[green]ran[/]" if outcome.status == "ran" else "[dim]cached[/]"
        nodes = str(outcome.nodes) if outcome.nodes else ""
        table.add_row(outcome.stage, outcome.key, status, f"{outcome.seconds:.1f}", nodes, outcome.location)
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
