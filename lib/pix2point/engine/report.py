"""`pix2point report`: the results page of one profile of a pipeline, written from its current artefacts.

    <out>/<profile>.md      the page (CommonMark with tables): run facts, then every stage's report.md
    <out>/<profile>.html    the same rendered by markdown-it-py, to open in a browser (not for committing)
    <out>/<profile>/        the figures the page shows, copied out of the artefacts

`<out>` defaults to docs/results, so a run's page is a file of the repository (docs/results/default.md). The
page opens with what produced it: the command that computes the artefacts and the one that writes the page,
the commit and the machine the manifests record (engine/provenance.py), and each stage's wall time. Only
current artefacts count (the keys of this profile's params and today's code): an artefact of other params or
code is named, never shown, so a page never carries numbers its title does not stand for. With nothing
current for the profile asked, `write_report` raises a PipelineError naming the profiles whose artefacts are
current. What differs between two runs by nature (commit, machine, recorded command, durations) and the
artefact keys, which follow the code as the commit does (a later commit's keys differ where its numbers do not),
are what `comparable_lines` masks, for scripts/check_results.sh.
"""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from markdown_it import MarkdownIt

from pix2point.engine.pipeline import DEFAULT_PIPELINE, DEFAULT_PROFILE, Pipeline, PipelineError, load_pipeline, profile_names
from pix2point.engine.runner import stage_states
from pix2point.engine.stores import Store

STAGE_REPORT = "report.md"
UNRECORDED = "not recorded (artefact older than the record)"
_IMAGE = re.compile(r"!\[(.*?)\]\(([^)\s]+)\)")  # alt text may hold brackets: "seeds [0]"
_HEADING = re.compile(r"^(#{1,4}) ", re.MULTILINE)
_NOTE = re.compile(r"\A> \*\*Note:\*\* (.*?)\n\n", re.DOTALL)  # evaluation/report_note.py's paragraph
# What differs between two runs of one commit by nature: these lines, and every duration.
VOLATILE_PREFIXES = ("- commit:", "- machine:", "- recorded command:")
_DURATION = re.compile(r"\b\d+ h \d+ min\b|\b\d+ min \d+ s\b|\b\d+(?:\.\d+)? s\b")
_ARTEFACT_KEY = re.compile(r"`[0-9a-f]{16}`")
_STYLE = """body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.4}
table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #bbb;padding:.2rem .5rem;text-align:right}
th:first-child,td:first-child{text-align:left}img{max-width:100%}code{background:#f3f3f3}"""


@dataclass(frozen=True)
class PageCommands:
    run: str  # computes the artefacts: `pix2point run --profile P` with the page's --set options
    report: str  # writes the page, with the same options
    report_here: str  # the same with the artefact root and output folder of this call (what errors suggest)


@dataclass(frozen=True)
class StageRun:
    """A current artefact: its stage, key and what its manifest records."""

    stage: str
    key: str
    seconds: float | None
    provenance: dict[str, str]  # commit, machine, command (engine/provenance.py); empty for older artefacts
    started_at: str | None = None  # ISO 8601 UTC, as the manifest records it; None for older artefacts
    finished_at: str | None = None


@dataclass(frozen=True)
class Section:
    stage: str
    key: str
    markdown: str  # the stage's report.md: headings two levels down, figures pointing into <profile>/


def profile_label(pipeline: Pipeline) -> str:
    return pipeline.profile or DEFAULT_PROFILE


def page_name(pipeline: Pipeline) -> str:
    """The results page's file stem: the profile's label for pipeline.yaml, prefixed by the file's stem for
    another pipeline file (pipelines/i2p_mae_seeds.yaml -> i2p_mae_seeds-default), so that no other pipeline's
    page overwrites pipeline.yaml's committed ones."""
    label = profile_label(pipeline)
    return label if pipeline.path.name == DEFAULT_PIPELINE.name else f"{pipeline.path.stem}-{label}"


def write_report(pipeline: Pipeline, store: Store, out: Path, commands: Callable[[str | None], PageCommands],
                 overrides: list[str] = ()) -> tuple[Path, Path]:
    """The results page of `pipeline`'s profile into `out` (module docstring); returns the .md and .html paths.
    `commands(profile)`: the run and report commands of a profile (None: the default) with the page's options;
    `overrides` (its --set options) also apply to the other profiles when naming those with current artefacts.
    Raises PipelineError when no stage of the profile has a current artefact."""
    states = stage_states(pipeline, store)
    current = [name for name, (_, state) in states.items() if state == "cached"]
    if not current:
        raise PipelineError(nothing_current_message(pipeline, store, commands, overrides))
    label = page_name(pipeline)
    figures = out / label
    figures.mkdir(parents=True, exist_ok=True)
    for old in figures.glob("*.png"):  # the page's figures are this run's only
        old.unlink()
    runs = [StageRun(name, states[name][0], (manifest := store.manifest(name, states[name][0])).get("seconds"),
                     manifest.get("provenance") or {}, manifest.get("started_at"), manifest.get("finished_at"))
            for name in current]
    sections = [section for run in runs if (section := _section(run, store, figures)) is not None]
    absent = [(name, state) for name, (_, state) in states.items() if state != "cached"]
    markdown = page_markdown(pipeline, runs, sections, absent, commands(pipeline.profile))
    page = out / f"{label}.md"
    page.write_text(markdown)
    body = MarkdownIt("commonmark").enable("table").render(markdown)
    title = html.escape(f"pix2point results: {pipeline.path} ({label} profile)")
    (out / f"{label}.html").write_text(f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{title}</title>'
                                       f"<style>{_STYLE}</style></head>\n<body>\n{body}</body></html>\n")
    return page, out / f"{label}.html"


def nothing_current_message(pipeline: Pipeline, store: Store, commands: Callable[[str | None], PageCommands],
                            overrides: list[str]) -> str:
    """What to say when the profile asked has no current artefact: the profiles that have some, else the run."""
    root = store.root if hasattr(store, "root") else store.uri
    said = f"no stage of the {profile_label(pipeline)} profile has a current artefact in {root}"
    others = [profile for profile in current_profiles(pipeline.path, store, overrides) if profile != pipeline.profile]
    if not others:
        return f"{said}: run `{commands(pipeline.profile).run}` first"
    names = ", ".join(profile or DEFAULT_PROFILE for profile in others)
    hints = "; ".join(f"`{commands(profile).report_here}`" for profile in others)
    return f"{said}; current artefacts there are of the profile(s) {names}: {hints}"


def current_profiles(pipeline_path: Path, store: Store, overrides: list[str] = ()) -> list[str | None]:
    """The profiles of the pipeline file (None, the default, first) with at least one current artefact in
    `store`; a profile the overrides do not apply to is left out."""
    found = []
    for profile in (None, *profile_names(pipeline_path)):
        try:
            states = stage_states(load_pipeline(pipeline_path, profile, list(overrides)), store)
        except PipelineError:
            continue
        if any(state == "cached" for _, state in states.values()):
            found.append(profile)
    return found


def page_markdown(pipeline: Pipeline, runs: list[StageRun], sections: list[Section], absent: list[tuple[str, str]],
                  commands: PageCommands) -> str:
    label = profile_label(pipeline)
    parts = [f"# pix2point results: {label} profile"]
    parts += [f"> **Note:** {note}" for note in _profile_notes(pipeline)]
    written = f"Written by `{commands.report}` from the current artefacts of `{commands.run}` (pipeline `{pipeline.path.name}`)."
    if pipeline.path.name == DEFAULT_PIPELINE.name:  # check_results.sh runs the profiles of pipeline.yaml only
        written += (f" `scripts/check_results.sh {label}` runs both again and compares the pages, commit, machine "
                    "and times aside.")
    parts.append(written)
    parts += ["## Run", _facts(runs), _wall_times(runs)]
    if absent:
        parts.append("Not on this page (no current artefact: stale = built with other params or code, missing = "
                     "never built): " + ", ".join(f"{name} ({state})" for name, state in absent) + ".")
    for section in sections:
        parts += [f"## {section.stage}", f"Artefact key `{section.key}`.", section.markdown.strip()]
    return "\n\n".join(parts) + "\n"


def comparable_lines(page: str) -> list[str]:
    """The page's lines with what two runs cannot share masked: the commit, machine and recorded command lines,
    every duration, and every artefact key (a function of params and code: a commit that changes no number
    still changes the keys of the stages whose code it touches)."""
    lines = []
    for line in page.splitlines():
        if line.startswith(VOLATILE_PREFIXES):
            line = line.split(":", 1)[0] + ": <differs by run>"
        lines.append(_ARTEFACT_KEY.sub("`<key>`", _DURATION.sub("<time>", line)))
    return lines


def format_duration(seconds: float | None) -> str:
    """`12.3 s`, `5 min 03 s` or `1 h 02 min`; a dash when not recorded."""
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _facts(runs: list[StageRun]) -> str:
    lines = [f"- {name}: {_by_value(runs, lambda run: run.provenance.get(name, UNRECORDED), quote)}"
             for name, quote in (("commit", True), ("machine", False))]
    lines.append(f"- recorded command: {_by_value(runs, lambda run: run.provenance.get('command', UNRECORDED), True)}")
    return "\n".join(lines)


def _by_value(runs: list[StageRun], value: Callable[[StageRun], str], quote: bool) -> str:
    """One value, or each value with the stages that record it."""
    groups: dict[str, list[str]] = {}
    for run in runs:
        groups.setdefault(value(run), []).append(run.stage)
    shown = {text: f"`{text}`" if quote and text != UNRECORDED else text for text in groups}
    if len(groups) == 1:
        return f"{next(iter(shown.values()))} (every stage)"
    return "; ".join(f"{shown[text]} ({', '.join(stages)})" for text, stages in groups.items())


def _wall_times(runs: list[StageRun]) -> str:
    rows = [f"| {run.stage} | `{run.key}` | {format_duration(run.seconds)} |" for run in runs]
    total = sum(run.seconds or 0.0 for run in runs)
    return "\n".join(["| stage | artefact key | wall time |", "|---|---|---|", *rows,
                      f"| all stages (sum; stages that ran side by side overlap) | | {format_duration(total)} |",
                      *_elapsed_row(runs)])


def _elapsed_row(runs: list[StageRun]) -> list[str]:
    """The run's elapsed time, first stage's start to last stage's end, when every stage records both (older
    manifests do not, and stages from separate runs would count the time between them)."""
    if not runs or any(run.started_at is None or run.finished_at is None for run in runs):
        return []
    start = min(datetime.fromisoformat(run.started_at) for run in runs)
    end = max(datetime.fromisoformat(run.finished_at) for run in runs)
    return [f"| elapsed (first stage's start to the last one's end) | | {format_duration((end - start).total_seconds())} |"]


def _profile_notes(pipeline: Pipeline) -> list[str]:
    """The distinct report notes the profile's stages carry (evaluation/report_note.py), in pipeline order."""
    notes = (getattr(stage.params, "report_note", "").strip() for stage in pipeline.stages.values())
    return list(dict.fromkeys(note for note in notes if note))


def _section(run: StageRun, store: Store, figures: Path) -> Section | None:
    directory = store.local_copy(run.stage, run.key)
    if not (directory / STAGE_REPORT).is_file():
        return None
    text = _NOTE.sub("", (directory / STAGE_REPORT).read_text())  # the page says it once, at its top
    # Under the page's H1 and the section's H2: the stage's own headings go two levels down.
    text = _HEADING.sub(lambda match: f"##{match.group(1)} ", text)
    referenced = set()

    def copy_figure(match: re.Match) -> str:
        source = directory / match.group(2)
        if "://" in match.group(2) or not source.is_file():
            return match.group(0)
        referenced.add(source.name)
        return f"![{match.group(1)}]({_copy(source, run.stage, figures)})"

    text = _IMAGE.sub(copy_figure, text)
    # Figures the stage wrote but its report.md does not show are still part of its results.
    extra = [path for path in sorted(directory.glob("*.png")) if path.name not in referenced]
    if extra:
        text += "\n\nOther figures of this artefact:\n\n" + "\n\n".join(
            f"![{path.stem}]({_copy(path, run.stage, figures)})" for path in extra)
    return Section(run.stage, run.key, text)


def _copy(source: Path, stage: str, figures: Path) -> str:
    """Copy a figure into the page's folder; its path relative to the page."""
    name = f"{stage}-{source.name}"
    shutil.copyfile(source, figures / name)
    return f"{figures.name}/{name}"
