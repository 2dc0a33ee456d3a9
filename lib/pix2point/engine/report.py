"""`pix2point report`: one page gathering every cached result of a pipeline (the artefacts that hold a
`report.md`: the methods' tables and figures), each section and number beside its stage and artefact key.
A stage whose current key is not built but which has older artefacts is shown from the newest, marked stale.

Writes `report.md` and `report.html` (CommonMark with tables, rendered by markdown-it-py) and copies the
figures next to them, so the page opens anywhere without the artefact root.
"""

from __future__ import annotations

import html
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

from pix2point.engine.pipeline import Pipeline
from pix2point.engine.runner import stage_states
from pix2point.engine.stores import Store

STAGE_REPORT = "report.md"
IMAGES_DIR = "images"
_IMAGE = re.compile(r"!\[(.*?)\]\(([^)\s]+)\)")  # alt text may hold brackets: "seeds [0]"
_HEADING = re.compile(r"^(#{1,4}) ", re.MULTILINE)
_STYLE = """body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.4}
table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #bbb;padding:.2rem .5rem;text-align:right}
th:first-child,td:first-child{text-align:left}img{max-width:100%}code{background:#f3f3f3}"""


@dataclass(frozen=True)
class Section:
    stage: str
    key: str
    location: str
    markdown: str  # the stage's report.md: headings two levels down, figures pointing into images/
    metrics: dict[str, float | int | str]  # the manifest's metrics, flattened to dotted names
    stale: bool  # not the current params or code: the newest artefact of the stage


def write_report(pipeline: Pipeline, store: Store, out: Path, run_command: str = "pix2point run") -> tuple[Path, Path]:
    """Gather the cached results of `pipeline` into `out`/report.md and report.html; returns both paths.
    `run_command` is what the page suggests when nothing is built (the CLI's carries the user's options)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / IMAGES_DIR).mkdir(exist_ok=True)
    sections, absent = [], []
    for name, (key, state) in stage_states(pipeline, store).items():
        if state == "stale":  # params or code changed since: the newest artefact there is, marked as such
            key = max(store.complete_keys(name), key=lambda other: store.manifest(name, other).get("finished_at", ""))
        elif state != "cached":
            absent.append((name, state))
            continue
        directory = store.local_copy(name, key)
        if (directory / STAGE_REPORT).is_file():
            sections.append(_section(name, key, store.location(name, key), directory, store.manifest(name, key), out,
                                     stale=state == "stale"))
    markdown = page_markdown(pipeline, sections, absent, run_command)
    (out / "report.md").write_text(markdown)
    body = MarkdownIt("commonmark").enable("table").render(markdown)
    title = html.escape(f"pix2point report: {pipeline.path} ({pipeline.profile or 'default'} profile)")
    (out / "report.html").write_text(f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{title}</title>'
                                     f"<style>{_STYLE}</style></head>\n<body>\n{body}</body></html>\n")
    return out / "report.md", out / "report.html"


def page_markdown(pipeline: Pipeline, sections: list[Section], absent: list[tuple[str, str]],
                  run_command: str = "pix2point run") -> str:
    parts = [f"# pix2point report: `{pipeline.path}`, {pipeline.profile or 'default'} profile"]
    if not sections:
        parts.append(f"No cached stage of this pipeline has a report yet: run `{run_command}` first.")
    for section in sections:
        note = " (stale: built with other params or code than the current ones)" if section.stale else ""
        parts += [f"## {section.stage} (artefact key `{section.key}`)", f"Artefact: `{section.location}`{note}",
                  section.markdown.strip()]
        if section.metrics:
            rows = [f"| `{section.stage}/{section.key}` | {name} | {value} |" for name, value in section.metrics.items()]
            parts.append("\n".join(["| artefact | metric | value |", "| --- | --- | --- |", *rows]))
    if absent:
        parts.append("Not in this report (no current artefact): "
                     + ", ".join(f"{name} ({state})" for name, state in absent) + ".")
    return "\n\n".join(parts) + "\n"


def _section(stage: str, key: str, location: str, directory: Path, manifest: dict, out: Path, stale: bool) -> Section:
    # Under the page's H1 and the section's H2: the stage's own headings go two levels down.
    text = _HEADING.sub(lambda match: f"##{match.group(1)} ", (directory / STAGE_REPORT).read_text())
    referenced = set()

    def copy_figure(match: re.Match) -> str:
        source = directory / match.group(2)
        if "://" in match.group(2) or not source.is_file():
            return match.group(0)
        referenced.add(source.name)
        return f"![{match.group(1)}]({_copy(source, stage, key, out)})"

    text = _IMAGE.sub(copy_figure, text)
    # Figures the stage wrote but its report.md does not show are still part of its results.
    extra = [path for path in sorted(directory.glob("*.png")) if path.name not in referenced]
    if extra:
        text += "\n\nOther figures of this artefact:\n\n" + "\n\n".join(
            f"![{path.stem}]({_copy(path, stage, key, out)})" for path in extra)
    return Section(stage, key, location, text, _flatten(manifest.get("metrics") or {}), stale)


def _copy(source: Path, stage: str, key: str, out: Path) -> str:
    relative = f"{IMAGES_DIR}/{stage}-{key}-{source.name}"
    shutil.copyfile(source, out / relative)
    return relative


def _flatten(metrics: dict, prefix: str = "") -> dict[str, float | int | str]:
    flat: dict[str, float | int | str] = {}
    for name, value in metrics.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value if isinstance(value, (int, float, str)) else str(value)
    return flat
