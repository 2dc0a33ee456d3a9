"""`pix2point report` (issue 15.5): one page of the cached results, opened in headless Chromium."""

import json
import re
import shutil
import subprocess

import pytest

from pix2point.cli import main
from pix2point.engine.artefacts import ArtefactStore
from pix2point.engine.pipeline import load_pipeline
from pix2point.engine.runner import run_pipeline

# Appended to a copy of the page: once everything has loaded, each image's decoded width goes into the DOM.
PROBE = """<script>window.addEventListener("load", () => document.body.setAttribute("data-images",
  JSON.stringify([...document.images].map(image => [image.getAttribute("src"), image.naturalWidth]))));</script>"""


def chromium_dom(page, profile_dir) -> str:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium on PATH (.ci/run installs it)")
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile_dir}",
               "--virtual-time-budget=10000", "--dump-dom", page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout


def test_report_gathers_results_beside_their_keys_and_renders_with_its_images_in_chromium(toy, tmp_path, capsys):
    run_pipeline(load_pipeline(toy.report_pipeline), ArtefactStore(toy.artefacts))
    (key,) = ArtefactStore(toy.artefacts).complete_keys("result")
    out = tmp_path / "report"
    assert main(["report", str(toy.report_pipeline), "--artefacts", str(toy.artefacts), "--out", str(out)]) == 0
    assert f"wrote {out / 'report.html'}" in capsys.readouterr().out

    markdown = (out / "report.md").read_text()
    assert f"## result (artefact key `{key}`)" in markdown
    assert "### Toy result" in markdown and "| sum | 10 |" in markdown  # the stage's own table, one level down
    assert f"| `result/{key}` | sum | 10 |" in markdown and f"| `result/{key}` | scores.best | 0.75 |" in markdown
    assert f"![the curve [seed 0]](images/result-{key}-curve.png)" in markdown
    assert f"images/result-{key}-unreferenced.png" in markdown

    probe = out / "probe.html"  # beside report.html, so its relative image paths resolve the same way
    probe.write_text((out / "report.html").read_text().replace("</body>", PROBE + "</body>"))
    dom = chromium_dom(probe, tmp_path / "chromium-profile")
    assert "<table>" in dom and "Toy result" in dom
    images = json.loads(re.search(r'data-images="([^"]*)"', dom).group(1).replace("&quot;", '"'))
    assert sorted(src for src, _ in images) == [f"images/result-{key}-curve.png", f"images/result-{key}-unreferenced.png"]
    assert all(width > 0 for _, width in images), images  # decoded: the files are there and are images


def test_report_names_what_is_not_built_and_the_run_it_suggests_keeps_the_options(toy, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(toy.report_pipeline), "--set", "result.title=T", "--artefacts", str(toy.artefacts),
                 "--out", str(out)]) == 0
    markdown = (out / "report.md").read_text()
    run = f"pix2point run {toy.report_pipeline} --set=result.title=T --artefacts {toy.artefacts}"
    assert f"No cached stage of this pipeline has a report yet: run `{run}` first." in markdown
    assert "numbers (missing), result (missing)" in markdown


def test_a_stage_built_only_for_other_params_is_shown_from_its_newest_artefact_marked_stale(toy, tmp_path):
    run_pipeline(load_pipeline(toy.report_pipeline), ArtefactStore(toy.artefacts))
    (key,) = ArtefactStore(toy.artefacts).complete_keys("result")
    out = tmp_path / "report"
    arguments = ["report", str(toy.report_pipeline), "--artefacts", str(toy.artefacts), "--out", str(out)]
    assert main([*arguments, "--set", "result.title=Another title"]) == 0
    markdown = (out / "report.md").read_text()
    assert f"## result (artefact key `{key}`)" in markdown and "(stale: built with other params or code" in markdown
    assert "### Toy result" in markdown and f"| `result/{key}` | sum | 10 |" in markdown
