"""`pix2point run`, `pix2point status`, `pix2point params` and `pix2point report`."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from contextlib import nullcontext
from pathlib import Path

from rich.console import Console
from rich.table import Table

import pix2point
from pix2point.cli_help import console_for, pipeline_summary, print_params, require_pipeline_file
from pix2point.engine.cluster import connect_ray, release_ray
from pix2point.engine.errors import PipelineError
from pix2point.engine.failures import StageFailed, describe, root_cause
from pix2point.engine.pipeline import load_pipeline
from pix2point.engine.runlog import append_traceback, new_log_path, quiet_console
from pix2point.engine.live import StageBoard, showing
from pix2point.engine.runner import STATE_MEANINGS, StageOutcome, run_pipeline, select_stages, stage_states
from pix2point.engine.stores import Store, open_store

DEFAULT_PIPELINE = Path("pipeline.yaml")
DEFAULT_RESULTS = Path("docs/results")
console = console_for()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser(_help_pipeline(argv)).parse_args(argv)
    pipeline_path, stage_names = _split_pipeline_and_targets(args.names)
    if args.command == "run":
        return _run(args, pipeline_path, stage_names)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        require_pipeline_file(pipeline_path)
        pipeline = load_pipeline(pipeline_path, args.profile, args.set)
        if args.command == "params":
            if len(stage_names) != 1:
                raise PipelineError(f"params takes one stage name; stages: {', '.join(pipeline.stages)}")
            print_params(pipeline, stage_names[0], console)
            return 0
        store = open_store(args.artefacts, args.cache)
        if args.command == "report":
            from pix2point.engine.report import write_report  # markdown-it and the figures: not for status

            commands = lambda profile: _page_commands(args, pipeline_path, profile)  # noqa: E731
            for path in write_report(pipeline, store, args.out, commands, args.set):
                console.print(f"wrote {path}", highlight=False, soft_wrap=True)
            return 0
        _print_status(pipeline, store, args.verify)
    except PipelineError as error:
        console.print(f"[bold red]error:[/] {error}", highlight=False)
        return 2
    return 0


def _run(args: argparse.Namespace, pipeline_path: Path, stage_names: list[str]) -> int:
    """`run`: Ray's and the stages' own output goes to a log file under the artefact root (runlog.py); the
    console gets the stages, training progress, each warning once, and on failure the root cause."""
    try:
        store = open_store(args.artefacts, args.cache)
    except PipelineError as error:
        console.print(f"[bold red]error:[/] {error}", highlight=False)
        return 2
    log_path = new_log_path(_local_root(store))
    console.print(f"log: {log_path}", highlight=False, soft_wrap=True)  # first: before what loading the stages says
    with quiet_console(log_path, args.verbose) as stream:  # what importing the stage modules prints goes there too
        shown = console_for(stream)
        try:
            require_pipeline_file(pipeline_path)
            pipeline = load_pipeline(pipeline_path, args.profile, args.set)
            board = StageBoard(select_stages(pipeline, stage_names, args.only))
        except PipelineError as error:
            shown.print(f"[bold red]error:[/] {error}", highlight=False)
            return 2
        return _run_logged(args, pipeline_path, stage_names, pipeline, store, board, log_path, shown)


def _run_logged(args: argparse.Namespace, pipeline_path: Path, stage_names: list[str], pipeline, store: Store,
                board: StageBoard, log_path: Path, shown: Console) -> int:
    try:
        with showing(board, shown) if not args.verbose else nullcontext():  # --verbose: every line as it comes
            outcomes = run_pipeline(
                pipeline, store, targets=stage_names, only=args.only, force=args.force,
                before_first_run=lambda: connect_ray(args.address), max_parallel=args.max_parallel_stages,
                rerun_command=lambda stage: _rerun_command(args, pipeline_path, stage), board=board,
            )
    except StageFailed as error:
        append_traceback(log_path)
        shown.print(f"[bold red]error:[/] {error}\n  full log: {log_path}\n  rerun: {_rerun_command(args, pipeline_path, error.stage)}",
                    highlight=False, soft_wrap=True)
        return 1
    except PipelineError as error:
        shown.print(f"[bold red]error:[/] {error}", highlight=False)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: what the user needs is what survives and how to go on, not a traceback
        append_traceback(log_path)
        shown.print(f"interrupted: finished stages stay cached, a stage that was running is redone (training "
                    f"stages from their last checkpoint) by\n  {_rerun_command(args, pipeline_path, *stage_names)}"
                    f"\n  full log: {log_path}", highlight=False, soft_wrap=True)
        return 130
    except Exception as error:  # the engine's own failure: its traceback to the log, its cause to the console
        append_traceback(log_path)
        shown.print(f"[bold red]error:[/] {describe(root_cause(error))}\n  full log: {log_path}", highlight=False,
                    soft_wrap=True)
        return 1
    finally:
        release_ray()
    _print_outcomes(outcomes, shown)
    shown.print(f"log: {log_path}", highlight=False, soft_wrap=True)
    return 0


def _local_root(store: Store) -> Path:
    """The artefact root, or for an object-store root its local mirror."""
    return store.root if hasattr(store, "root") else store.cache.root


def _rerun_command(args: argparse.Namespace, pipeline_path: Path, *stages: str) -> str:
    """The command that runs `stages` (none: the whole pipeline) again with this run's pipeline, params and
    artefact root."""
    command = ["pix2point", "run", *([str(pipeline_path)] if pipeline_path != DEFAULT_PIPELINE else []), *stages]
    command += [*(["--profile", args.profile] if args.profile else []), *[f"--set={item}" for item in args.set]]
    command += ["--artefacts", args.artefacts, *(["--cache", str(args.cache)] if args.cache else [])]
    address = getattr(args, "address", None)  # `run` only
    return shlex.join(command + (["--address", address] if address else []))


def _page_commands(args: argparse.Namespace, pipeline_path: Path, profile: str | None):
    """A results page's commands for `profile`: the run that computes its artefacts and the report that writes
    the page, with the params' options only (so the page reads the same whatever the artefact root), and the
    report with every option of this one (what an error suggests)."""
    from pix2point.engine.report import PageCommands

    pipeline = [str(pipeline_path)] if pipeline_path != DEFAULT_PIPELINE else []
    params = [*(["--profile", profile] if profile else []), *[f"--set={item}" for item in args.set]]
    where = ["--artefacts", args.artefacts, *(["--cache", str(args.cache)] if args.cache else [])]
    out = [] if args.out == DEFAULT_RESULTS else ["--out", str(args.out)]
    return PageCommands(run=shlex.join(["pix2point", "run", *pipeline, *params]),
                        report=shlex.join(["pix2point", "report", *pipeline, *params]),
                        report_here=shlex.join(["pix2point", "report", *pipeline, *params, *where, *out]))


def _help_pipeline(argv: list[str]) -> Path:
    """The pipeline file a `--help` lists the stages and profiles of (the first *.yaml argument, else the default)."""
    return next((Path(word) for word in argv if word.endswith((".yaml", ".yml"))), DEFAULT_PIPELINE)


def _parser(pipeline_path: Path = DEFAULT_PIPELINE) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pix2point", description=__doc__)
    parser.add_argument("--version", action="version", version=f"pix2point {pix2point.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run stages (all, or the named ones and what they need)",
                              epilog=pipeline_summary(pipeline_path),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("names", nargs="*", metavar="[PIPELINE] [TARGET ...]", help="pipeline file (default pipeline.yaml), then stage names")
    run.add_argument("--only", metavar="STAGE", help="run just this stage on its cached inputs")
    run.add_argument("--force", action="store_true",
                     help="recompute the named stages alone even if cached (their inputs come from the cache, built "
                          "first only if missing); with no stage named, recompute every stage")
    run.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else an embedded local Ray)")
    run.add_argument("--verbose", action="store_true", help="show Ray's and the stages' own output on the console too")
    run.add_argument("--max-parallel-stages", type=_positive_int, metavar="N",
                     help="stages run side by side at most (default: every stage whose inputs are ready)")
    status = commands.add_parser("status", help="each stage's key and whether it is cached, stale or missing")
    status.add_argument("names", nargs="*", metavar="[PIPELINE]")
    status.add_argument("--verify", action="store_true", help="also check every file's content hash (reads all of them)")
    params = commands.add_parser("params", help="a stage's params: type, default, value in the chosen profile, description")
    params.add_argument("names", nargs="+", metavar="[PIPELINE] STAGE")
    report = commands.add_parser("report", help="the profile's results page (Markdown and HTML) from its current artefacts")
    report.add_argument("names", nargs="*", metavar="[PIPELINE]")
    report.add_argument("--out", type=Path, default=DEFAULT_RESULTS, metavar="DIR",
                        help="folder of the page: writes DIR/<profile>.md, DIR/<profile>.html and the figures in "
                             "DIR/<profile>/ (default: docs/results)")
    for command in (run, status, params, report):
        command.add_argument("--profile", help="a profile of pipeline.yaml (default: the stages' own params)")
        command.add_argument("--set", action="append", default=[], metavar="STAGE.KEY=VALUE", help="override a param (repeatable)")
        command.add_argument("--artefacts", default=os.environ.get("PIX2POINT_ARTEFACTS", "artefacts"),
                             help="artefact root: a path, or an object store URI such as s3://bucket/prefix (default: $PIX2POINT_ARTEFACTS or ./artefacts)")
        command.add_argument("--cache", type=Path, help="local mirror of an s3:// root's artefacts (default: $PIX2POINT_CACHE or ~/.cache/pix2point)")
    return parser


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return int(text)


def _split_pipeline_and_targets(names: list[str]) -> tuple[Path, list[str]]:
    if names and (names[0].endswith((".yaml", ".yml")) or Path(names[0]).is_file()):
        return Path(names[0]), names[1:]
    return DEFAULT_PIPELINE, names


def _print_status(pipeline, store: Store, verify: bool = False) -> None:
    table = Table(title=f"{pipeline.path} (profile: {pipeline.profile or 'default'})")
    for column in ("stage", "key", "state", "path"):
        table.add_column(column, overflow="fold")  # job logs are 80 columns wide: wrap paths, never cut them
    colours = {"cached": "green", "damaged": "red", "running": "cyan", "stale": "yellow", "missing": "red"}
    damaged = {}
    for name, (key, state) in stage_states(pipeline, store, verify).items():
        label = state
        if state == "running" and (holder := store.lock_holder(name, key)) is not None:
            label = f"running ({holder.host}, {holder.pid})"
        table.add_row(name, key, f"[{colours[state]}]{label}[/]", store.location(name, key) if state in ("cached", "damaged") else "")
        if state == "damaged":
            damaged[name] = (key, store.damage(name, key, verify))
    console.print(table)
    for name, (key, problems) in damaged.items():
        for problem in problems:
            console.print(f"damaged: stage {name}, key {key}, file {problem}", highlight=False, soft_wrap=True)
    for state, meaning in STATE_MEANINGS.items():
        console.print(f"  {state}: {meaning}", highlight=False)


def _print_outcomes(outcomes: list[StageOutcome], console: Console) -> None:
    table = Table(title="pix2point run")
    for column in ("stage", "key", "status", "seconds", "nodes", "output", "started", "ended"):
        table.add_column(column, overflow="fold")  # job logs are 80 columns wide: wrap paths, never cut them
    clock = lambda moment: moment.astimezone().strftime("%H:%M:%S") if moment else ""  # noqa: E731 (local time)
    for outcome in outcomes:
        status = "[green]ran[/]" if outcome.status == "ran" else "[dim]cached[/]"
        nodes = str(outcome.nodes) if outcome.nodes else ""
        table.add_row(outcome.stage, outcome.key, status, f"{outcome.seconds:.1f}", nodes, outcome.location,
                      clock(outcome.started_at), clock(outcome.finished_at))
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
