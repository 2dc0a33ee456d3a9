"""`pix2point run`, `pix2point status`, `pix2point params` and `pix2point report`."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext, suppress
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

import pix2point
from pix2point.cli_help import console_for, pipeline_summary, print_params, print_table, require_pipeline_file
from pix2point.engine.cluster import connect_ray, no_implicit_ray, release_ray
from pix2point.engine.failures import StageFailed, describe, root_cause
from pix2point.engine.pipeline import DEFAULT_PIPELINE, PipelineError, load_pipeline
from pix2point.engine.runlog import append_traceback, new_log_path, quiet_console
from pix2point.engine.live import StageBoard, showing
from pix2point.engine.runner import (
    STATE_MEANINGS, StageOutcome, profiles_with_artefacts, run_pipeline, select_stages, stage_states,
)
from pix2point.engine.stores import Store, open_store

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
        states = _print_status(pipeline, store, args.verify)
        _print_where_other_profiles_are(args, pipeline_path, pipeline, store, states)
    except PipelineError as error:
        _print_error(console, error)
        return 2
    return 0


def _run(args: argparse.Namespace, pipeline_path: Path, stage_names: list[str]) -> int:
    """`run`: Ray's and the stages' own output goes to a log file under the artefact root (runlog.py), kept
    once a stage starts computing (its path is printed then, and at the end); the console gets the stages,
    training progress, each warning once, and on failure the root cause. A command that starts no stage (a
    mistyped one, or one that finds everything cached) leaves no log file."""
    try:
        store = open_store(args.artefacts, args.cache)
    except PipelineError as error:
        _print_error(console, error)
        return 2
    log_path = new_log_path(_local_root(store))
    started = []  # an entry once a stage starts computing

    # What importing the stage modules prints goes to the log too; ray is first imported in there.
    with no_implicit_ray(), quiet_console(log_path, args.verbose) as stream:
        shown = console_for(stream)

        def before_first_run() -> None:
            started.append(True)
            shown.print(f"log: {log_path}", highlight=False, soft_wrap=True)
            connect_ray(args.address)

        code = _run_logged(args, pipeline_path, stage_names, store, log_path, shown, before_first_run)
        if code == 0 and started:
            shown.print(f"log: {log_path}", highlight=False, soft_wrap=True)
    if not started and code in (0, 2):  # nothing ran and nothing failed: the log holds nothing to read
        log_path.unlink(missing_ok=True)
        with suppress(OSError):
            log_path.parent.rmdir()  # only if empty
    return code


def _run_logged(args: argparse.Namespace, pipeline_path: Path, stage_names: list[str], store: Store, log_path: Path,
                shown: Console, before_first_run: Callable[[], None]) -> int:
    board = None
    try:
        require_pipeline_file(pipeline_path)
        pipeline = load_pipeline(pipeline_path, args.profile, args.set)
        board = StageBoard(select_stages(pipeline, stage_names, args.only))
        with showing(board, shown) if not args.verbose else nullcontext():  # --verbose: every line as it comes
            outcomes = run_pipeline(
                pipeline, store, targets=stage_names, only=args.only, force=args.force,
                before_first_run=before_first_run, max_parallel=args.max_parallel_stages, board=board,
                build_command=lambda *stages: _command(args, pipeline_path, stages),
            )
    except StageFailed as error:
        append_traceback(log_path)
        shown.print(f"[bold red]error:[/] {escape(str(error))}\n  full log: {log_path}\n  rerun: "
                    f"{_going_on_command(args, pipeline_path, stage_names, board)}", highlight=False, soft_wrap=True)
        return 1
    except PipelineError as error:
        _print_error(shown, error)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: what the user needs is what survives and how to go on, not a traceback
        append_traceback(log_path)
        shown.print(f"interrupted: finished stages stay cached, a stage that was running is redone (training "
                    f"stages from their last checkpoint) by\n  {_going_on_command(args, pipeline_path, stage_names, board)}"
                    f"\n  full log: {log_path}", highlight=False, soft_wrap=True)
        return 130
    except Exception as error:  # the engine's own failure: its traceback to the log, its cause to the console
        append_traceback(log_path)
        shown.print(f"[bold red]error:[/] {escape(describe(root_cause(error)))}\n  full log: {log_path}", highlight=False,
                    soft_wrap=True)
        return 1
    finally:
        release_ray()
    _print_outcomes(outcomes, shown)
    from pix2point.engine.report import page_name  # markdown-it: only once the run is done

    page = DEFAULT_RESULTS / f"{page_name(pipeline)}.md"
    shown.print(f"results: {_command(args, pipeline_path, command='report')}\n  writes {page} (.html and "
                f"figures beside it)", highlight=False, soft_wrap=True)
    return 0


def _print_error(console: Console, error: PipelineError) -> None:
    """Each line of the error as its own `error:` line, never wrapped (paths in it stay whole)."""
    for line in str(error).splitlines():
        console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)


def _local_root(store: Store) -> Path:
    """The artefact root, or for an object-store root its local mirror."""
    return store.root if hasattr(store, "root") else store.cache.root


def _going_on_command(args: argparse.Namespace, pipeline_path: Path, stage_names: list[str],
                      board: StageBoard | None) -> str:
    """The command that does what this run was asked and did not do: its stages, --only, --force and every
    other option. With --force, only the forced stages this run did not finish (`board` says which it
    finished): computing the finished ones again would be wasted, and the unfinished ones must stay forced,
    or the run would find their old artefacts cached and never recompute them."""
    if not args.force or board is None:
        return _command(args, pipeline_path, stage_names, only=args.only, force=args.force)
    done = {stage for stage, state, _ in board.rows() if state == "done"}
    forced = [args.only] if args.only else stage_names or [stage for stage, _, _ in board.rows()]
    left = [stage for stage in forced if stage not in done]
    if not left:
        return _command(args, pipeline_path, stage_names, only=args.only)
    if args.only or left == forced:
        return _command(args, pipeline_path, stage_names, only=args.only, force=True)
    return _command(args, pipeline_path, left, force=True)


def _command(args: argparse.Namespace, pipeline_path: Path, stages: Sequence[str] = (), only: str | None = None,
             force: bool = False, command: str = "run") -> str:
    """`pix2point <command>` with this invocation's pipeline file, params, artefact root and (for run) Ray and
    console options, plus `stages`, `--only` and `--force` as given."""
    words = ["pix2point", command, *([str(pipeline_path)] if pipeline_path != DEFAULT_PIPELINE else []), *stages]
    words += [*(["--only", only] if only else []), *(["--force"] if force else [])]
    words += [*(["--profile", args.profile] if args.profile else []), *[f"--set={item}" for item in args.set]]
    words += ["--artefacts", args.artefacts, *(["--cache", str(args.cache)] if args.cache else [])]
    if command == "run":  # options only `run` has, when this invocation was a run
        address, parallel = getattr(args, "address", None), getattr(args, "max_parallel_stages", None)
        words += [*(["--address", address] if address else []),
                  *(["--max-parallel-stages", str(parallel)] if parallel else []),
                  *(["--verbose"] if getattr(args, "verbose", False) else [])]
    return shlex.join(words)


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
                     help="stages run side by side at most, the longest chain's first (default: the Ray cluster's CPUs)")
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
        command.add_argument("--profile", help="a profile of pipeline.yaml (default, or `default`: the stages' own params)")
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


def _print_status(pipeline, store: Store, verify: bool = False) -> dict[str, tuple[str, str]]:
    """The status table and what its states mean; returns stage -> (key, state)."""
    table = Table(title=f"{pipeline.path} (profile: {pipeline.profile or 'default'})")
    for column in ("stage", "key", "state", "path"):
        table.add_column(column, no_wrap=column != "state")  # print_table keeps names, keys and paths whole
    colours = {"cached": "green", "damaged": "red", "running": "cyan", "stale": "yellow", "missing": "red"}
    damaged = {}
    states = stage_states(pipeline, store, verify)
    for name, (key, state) in states.items():
        label = state
        if state == "running" and (holder := store.lock_holder(name, key)) is not None:
            label = f"running ({holder.host}, {holder.pid})"
        table.add_row(name, key, f"[{colours[state]}]{label}[/]", store.location(name, key) if state in ("cached", "damaged") else "")
        if state == "damaged":
            damaged[name] = (key, store.damage(name, key, verify))
    print_table(console, table)
    for name, (key, problems) in damaged.items():
        for problem in problems:
            console.print(f"damaged: stage {name}, key {key}, file {problem}", highlight=False, soft_wrap=True)
    for state, meaning in STATE_MEANINGS.items():
        console.print(f"  {state}: {meaning}", highlight=False)
    return states


def _print_where_other_profiles_are(args: argparse.Namespace, pipeline_path: Path, pipeline, store: Store,
                                    states: dict[str, tuple[str, str]]) -> None:
    """When nothing of the profile asked is built under the root (status without the run's --profile or
    --artefacts): that the root does not exist, or which other profiles have current artefacts there and the
    status command that shows each."""
    if any(state not in ("missing", "stale") for _, state in states.values()):
        return
    root = _local_root(store)
    if hasattr(store, "root") and not root.is_dir():
        console.print(f"no artefact root {root}: name the run's with --artefacts (default: $PIX2POINT_ARTEFACTS or "
                      f"./artefacts)", highlight=False, soft_wrap=True)
        return
    asked = pipeline.profile or "default"
    for profile, (built, total) in profiles_with_artefacts(pipeline_path, store, args.set).items():
        if profile != pipeline.profile:
            other = argparse.Namespace(**{**vars(args), "profile": profile})
            console.print(f"nothing of profile {asked} is built under {args.artefacts}; profile "
                          f"{profile or 'default'} has {built} of its {total} stages there: "
                          f"{_command(other, pipeline_path, command='status')}", highlight=False, soft_wrap=True)


def _print_outcomes(outcomes: list[StageOutcome], console: Console) -> None:
    table = Table(title="pix2point run")
    for column in ("stage", "key", "status", "seconds", "nodes", "output", "started", "ended"):
        table.add_column(column, no_wrap=True)  # print_table keeps every cell whole
    clock = lambda moment: moment.astimezone().strftime("%H:%M:%S") if moment else ""  # noqa: E731 (local time)
    for outcome in outcomes:
        status = "[green]ran[/]" if outcome.status == "ran" else "[dim]cached[/]"
        nodes = str(outcome.nodes) if outcome.nodes else ""
        table.add_row(outcome.stage, outcome.key, status, f"{outcome.seconds:.1f}", nodes, outcome.location,
                      clock(outcome.started_at), clock(outcome.finished_at))
    print_table(console, table)
    ran = [outcome for outcome in outcomes if outcome.status == "ran" and outcome.started_at and outcome.finished_at]
    if ran:
        seconds = (max(o.finished_at for o in ran) - min(o.started_at for o in ran)).total_seconds()
        console.print(f"wall time: {int(seconds // 60)} min {seconds % 60:04.1f} s from the first stage's start to the "
                      f"last one's end ({len(ran)} ran, {len(outcomes) - len(ran)} cached)", soft_wrap=True)


if __name__ == "__main__":
    sys.exit(main())
