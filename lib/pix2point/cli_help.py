"""The CLI's help for people: which pipeline file it reads, the stages and profiles in it, a stage's params."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from pix2point.engine.param_docs import param_docs
from pix2point.engine.pipeline import Pipeline, PipelineError, unknown_stage


def console_for(stream=None) -> Console:
    """A console on `stream`, or on whatever sys.stdout is when it prints. Off a terminal (a pipe, `ray job
    logs`) no width is known and rich would assume 80 columns, folding keys and paths mid-word: there lines
    stay whole, however long (tables: print_table)."""
    return Console(file=stream, width=None if (stream or sys.stdout).isatty() else 1_000)


# The width a table is laid out for off a terminal (a pipe, `ray job logs`), where rich would assume 80 columns.
PIPED_TABLE_WIDTH = 120
_ANY_WIDTH = 100_000  # no limit, for measuring how wide a table must be


def print_table(console: Console, table: Table) -> None:
    """`table` at the terminal's width (off a terminal PIPED_TABLE_WIDTH), or wider where its `no_wrap` columns
    (names, keys, paths) need it: those stay whole on one line, which a terminal may show wrapped but copies
    whole, while the other columns (descriptions) wrap within the width."""
    width = console.width if console.is_terminal else PIPED_TABLE_WIDTH
    needed = Measurement.get(console, console.options.update(max_width=_ANY_WIDTH), table).minimum
    wide = Console(file=console.file, width=max(width, needed), force_terminal=console.is_terminal,
                   color_system=console.color_system)
    wide.print(table, crop=False)


def require_pipeline_file(path: Path) -> None:
    """A PipelineError saying where the file was looked for and how to name another one."""
    if not path.is_file():
        raise PipelineError(
            f"no pipeline file {path} (looked for {path.absolute()}); run pix2point from the repository root, "
            f"or name the file before the stages: `pix2point run path/to/pipeline.yaml [STAGE ...]`")


def pipeline_summary(path: Path) -> str:
    """The stages (with their inputs) and profiles of the pipeline file, for `run --help`; read as plain YAML,
    so the help never imports a stage."""
    try:
        document = yaml.safe_load(path.read_text())
        stages = document.get("stages") or {}
        profiles = document.get("profiles") or {}
    except (OSError, yaml.YAMLError, AttributeError):
        return f"(no readable pipeline file at {path.absolute()}: its stages and profiles are not listed)"
    lines = [f"stages of {path}:"]
    known = dict(stages)
    if isinstance(base := document.get("base"), dict):  # they come first
        lines.append(f"  {', '.join(map(str, base.get('stages') or []))}: those of {base.get('pipeline')}"
                     + (f", profile {base['profile']}" if base.get("profile") else ""))
        known = {**_base_entries(path, base), **known}
    lines += [_stage_line(name, entry, known) for name, entry in stages.items() if isinstance(entry, dict)]
    lines.append(f"profiles: {', '.join(profiles) or 'none'} (default: the stages' own params)")
    return "\n".join(lines)


def _stage_line(name: str, entry: dict, known: dict) -> str:
    """`  name  <- inputs`; a variant (`like: <stage>`) reads its stage's inputs unless it gives its own."""
    source = entry.get("like")
    inputs = entry.get("inputs")
    if not inputs and isinstance(source, str) and isinstance(known.get(source), dict):
        inputs = known[source].get("inputs")
    return (f"  {name}" + (f"  <- {_providers(inputs)}" if isinstance(inputs, (list, dict)) and inputs else "")
            + (f"  (like {source})" if source else ""))


def _base_entries(path: Path, base: dict) -> dict:
    """The stage entries of the base pipeline file (relative to `path`), {} when it cannot be read."""
    try:
        document = yaml.safe_load((path.parent / str(base.get("pipeline"))).read_text())
        entries = document.get("stages") or {}
    except (OSError, yaml.YAMLError, AttributeError):
        return {}
    return entries if isinstance(entries, dict) else {}


def _providers(inputs: list | dict) -> str:
    """The stages a stage reads: `a, b`; an input read under another name (`inputs: {objects: fewshot_objects}`)
    as `fewshot_objects (as objects)`."""
    if isinstance(inputs, dict):
        return ", ".join(str(stage) if name == stage else f"{stage} (as {name})" for name, stage in inputs.items())
    return ", ".join(map(str, inputs))


def print_params(pipeline: Pipeline, stage: str, console: Console) -> None:
    """Each param of `stage`: type, default, value in the loaded pipeline (profile and --set applied), description."""
    if stage not in pipeline.stages:
        raise unknown_stage(stage, list(pipeline.stages))
    profile = pipeline.profile or "default"
    table = Table(title=f"{stage} ({pipeline.stages[stage].module.__name__}), {pipeline.path}, profile {profile}")
    for column in ("param", "type", "default", f"value ({profile})", "description"):
        table.add_column(column, no_wrap=column == "param", overflow="fold")  # print_table keeps names whole
    for doc in param_docs(pipeline.stages[stage].params):
        value = f"[bold]{escape(doc.value)}[/]" if doc.changed else escape(doc.value)
        table.add_row(doc.name, escape(doc.type), escape(doc.default), value, escape(doc.description))
    print_table(console, table)
