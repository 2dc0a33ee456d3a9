"""The results page from real smoke artefacts (issue 22 item 3): `pix2point report --profile smoke` writes
smoke.md with the commit and the commands, says first that smoke numbers mean nothing, carries classify's
verdicts; scripts/check_results.sh accepts the page it reproduces and fails on one changed number."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pix2point.cli import main
from pix2point.engine.provenance import git_commit

REPOSITORY = Path(__file__).resolve().parents[1]


def check_results(*arguments: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable,
           "PYTHONPATH": os.pathsep.join([str(REPOSITORY / "lib"), str(REPOSITORY), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(["bash", str(REPOSITORY / "scripts" / "check_results.sh"), *arguments], capture_output=True,
                          text=True, env=env, timeout=300)


@pytest.mark.slow
def test_report_writes_the_smoke_page_and_check_results_fails_on_one_changed_number(ray_runtime, tmp_path, monkeypatch):
    artefacts, out = tmp_path / "artefacts", tmp_path / "results"
    monkeypatch.chdir(REPOSITORY)  # pipeline.yaml by default, as check_results.sh runs it
    assert main(["run", "classify", "--profile", "smoke", "--artefacts", str(artefacts)]) == 0
    assert main(["report", "--profile", "smoke", "--artefacts", str(artefacts), "--out", str(out)]) == 0
    page = (out / "smoke.md").read_text()
    title, _, note, *_ = page.splitlines()
    assert title == "# pix2point results: smoke profile"
    assert note.startswith("> **Note:** Smoke profile") and "Its numbers mean nothing" in note
    assert "Written by `pix2point report --profile smoke` from the current artefacts of `pix2point run --profile " \
           "smoke`" in page
    assert f"- commit: `{git_commit()}` (every stage)" in page and "cores; GPU: " in page
    assert re.search(r"\| classify \| `[0-9a-f]{16}` \| [0-9.]+ (s|min) ", page)
    assert "## classify" in page and "Verdicts: final test accuracy" in page and "**unresolved**" in page
    assert "| 1 | inflated/io | scratch/io |" in page  # the random-frozen-trunk control
    assert page.count("mean nothing") == 1  # the stages' own copies of the note are not repeated
    assert list((out / "smoke").glob("classify-*.png"))

    fresh = check_results("smoke", "--artefacts", str(artefacts), "--page", str(out / "smoke.md"))
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "agree" in fresh.stdout
    row = next(line for line in page.splitlines() if line.startswith("| scratch | all | 1 |"))
    cells = row.split(" | ")
    number = re.search(r"\d+\.\d", cells[3]).group(0)
    cells[3] = cells[3].replace(number, f"{float(number) + 0.1:.1f}", 1)
    edited = tmp_path / "edited.md"
    edited.write_text(page.replace(row, " | ".join(cells)))
    changed = check_results("smoke", "--artefacts", str(artefacts), "--page", str(edited))
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert f"-{' | '.join(cells)}" in changed.stdout and f"+{row}" in changed.stdout
