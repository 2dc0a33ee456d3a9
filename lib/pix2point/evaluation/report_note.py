"""A note a profile puts at the top of every report.md (the smoke profile: its numbers mean nothing).

A param of each report-writing stage, not a property of the profile's name: an artefact is a function of its
params, and two profiles with the same params share it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict


class ReportNoteParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    report_note: str = ""  # a paragraph put at the top of report.md, before its title


def add_note(report: Path, note: str) -> None:
    """Put `note` as a quoted paragraph at the top of the Markdown file `report` (nothing when empty)."""
    if note.strip():
        report.write_text(f"> **Note:** {note.strip()}\n\n{report.read_text()}")
