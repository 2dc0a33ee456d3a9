"""`pix2point report`: the profile's results page from its current artefacts (issue 15.5, issue 22 item 3,
issue 26 items 7 and 8), opened in headless Chromium; the page check of scripts/check_results.sh."""

import json
import re
import shutil
import subprocess
from datetime import datetime

import pytest

from pix2point.cli import main
from pix2point.engine.artefacts import ArtefactStore
from pix2point.engine.pipeline import load_pipeline
from pix2point.engine.provenance import git_commit, machine
from pix2point.engine.report import comparable_lines, format_duration
from pix2point.engine.results_diff import main as results_diff
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


def report(toy, out, *options):
    return main(["report", str(toy.report_pipeline), "--artefacts", str(toy.artefacts), "--out", str(out), *options])


def test_the_page_gathers_results_under_their_stage_and_key_with_run_facts(toy, tmp_path, capsys):
    run_pipeline(load_pipeline(toy.report_pipeline), ArtefactStore(toy.artefacts))
    store = ArtefactStore(toy.artefacts)
    (key,) = store.complete_keys("result")
    out = tmp_path / "results"
    assert report(toy, out) == 0
    assert f"wrote {out / 'default.md'}" in capsys.readouterr().out

    markdown = (out / "default.md").read_text()
    assert markdown.startswith("# pix2point results: default profile\n")
    assert f"Written by `pix2point report {toy.report_pipeline}` from the current artefacts of " \
           f"`pix2point run {toy.report_pipeline}`" in markdown
    assert f"- commit: `{git_commit()}` (every stage)" in markdown and f"- machine: {machine()} (every stage)" in markdown
    assert "cores; GPU: " in markdown
    seconds = store.manifest("result", key)["seconds"]
    assert f"| result | `{key}` | {format_duration(seconds)} |" in markdown
    manifests = [store.manifest(stage, store.complete_keys(stage)[0]) for stage in ("numbers", "result")]
    elapsed = max(datetime.fromisoformat(m["finished_at"]) for m in manifests) - \
        min(datetime.fromisoformat(m["started_at"]) for m in manifests)
    assert f"| elapsed (first stage's start to the last one's end) | | {format_duration(elapsed.total_seconds())} |" in markdown
    assert f"## result\n\nArtefact key `{key}`." in markdown
    assert "### Toy result" in markdown and "| sum | 10 |" in markdown  # the stage's own table, one level down
    assert "![the curve [seed 0]](default/result-curve.png)" in markdown
    assert "default/result-unreferenced.png" in markdown
    assert sorted(path.name for path in (out / "default").iterdir()) == ["result-curve.png", "result-unreferenced.png"]


def test_the_html_page_renders_with_its_images_in_chromium(toy, tmp_path):
    run_pipeline(load_pipeline(toy.report_pipeline), ArtefactStore(toy.artefacts))
    out = tmp_path / "results"
    assert report(toy, out) == 0
    probe = out / "probe.html"  # beside default.html, so its relative image paths resolve the same way
    probe.write_text((out / "default.html").read_text().replace("</body>", PROBE + "</body>"))
    dom = chromium_dom(probe, tmp_path / "chromium-profile")
    assert "<table>" in dom and "Toy result" in dom
    images = json.loads(re.search(r'data-images="([^"]*)"', dom).group(1).replace("&quot;", '"'))
    assert sorted(src for src, _ in images) == ["default/result-curve.png", "default/result-unreferenced.png"]
    assert all(width > 0 for _, width in images), images  # decoded: the files are there and are images


def test_the_page_shows_no_raw_manifest_numbers(toy, tmp_path):
    """Issue 26 item 8: a manifest metric such as -5.879490601712334e-05 never reaches the page unformatted."""
    run_pipeline(load_pipeline(toy.report_pipeline), ArtefactStore(toy.artefacts))
    assert report(toy, tmp_path) == 0
    markdown = (tmp_path / "default.md").read_text()
    assert "e-05" not in markdown and "0.75" not in markdown and "scores." not in markdown


def test_nothing_built_is_an_error_that_suggests_the_run_with_the_options(toy, tmp_path, capsys):
    assert report(toy, tmp_path, "--set", "result.title=T") == 2
    error = capsys.readouterr().out
    assert "no stage of the default profile has a current artefact" in error
    assert f"pix2point run {toy.report_pipeline} --set=result.title=T" in error
    assert not (tmp_path / "default.md").exists()


def test_without_profile_a_report_of_other_profiles_artefacts_says_so_and_names_them(toy, tmp_path, capsys):
    """Issue 26 item 7: only the `small` profile was run; the default one has no current artefact."""
    run_pipeline(load_pipeline(toy.report_pipeline, "small"), ArtefactStore(toy.artefacts))
    assert report(toy, tmp_path) == 2
    error = " ".join(capsys.readouterr().out.split())
    assert "no stage of the default profile has a current artefact" in error
    assert "current artefacts there are of the profile(s) small" in error
    assert f"pix2point report {toy.report_pipeline} --profile small --artefacts {toy.artefacts}" in error
    assert not (tmp_path / "default.md").exists()
    assert report(toy, tmp_path, "--profile", "small") == 0
    assert (tmp_path / "small.md").read_text().startswith("# pix2point results: small profile")


def test_a_stage_built_only_for_other_params_is_named_not_shown(toy, tmp_path):
    run_pipeline(load_pipeline(toy.report_pipeline), ArtefactStore(toy.artefacts))
    assert report(toy, tmp_path, "--set", "result.title=Another title") == 0
    markdown = (tmp_path / "default.md").read_text()
    assert "Not on this page (no current artefact" in markdown and "result (stale)" in markdown
    assert "Toy result" not in markdown and "## result" not in markdown
    assert "| numbers |" in markdown  # still current: its wall time is listed


def test_the_page_check_ignores_commit_machine_times_and_keys_and_fails_on_one_changed_number(toy, tmp_path, capsys):
    run_pipeline(load_pipeline(toy.report_pipeline), ArtefactStore(toy.artefacts))
    assert report(toy, tmp_path / "first") == 0
    page = (tmp_path / "first" / "default.md").read_text()
    other_run = re.sub(r"- commit: .*", "- commit: `0000000` (every stage)", page)
    other_run = re.sub(r"- machine: .*", "- machine: Another CPU, 64 cores; GPU: none (every stage)", other_run)
    other_run = re.sub(r"\| \d+\.\d s \|", "| 1 min 07 s |", other_run)
    other_run = re.sub(r"`[0-9a-f]{16}`", "`0123456789abcdef`", other_run)  # a later commit's code: other keys
    assert other_run != page and comparable_lines(other_run) == comparable_lines(page)
    (tmp_path / "same.md").write_text(other_run)
    (tmp_path / "edited.md").write_text(page.replace("| sum | 10 |", "| sum | 11 |"))
    capsys.readouterr()
    assert results_diff([str(tmp_path / "same.md"), str(tmp_path / "first" / "default.md")]) == 0
    assert results_diff([str(tmp_path / "edited.md"), str(tmp_path / "first" / "default.md")]) == 1
    printed = capsys.readouterr().out
    assert "-| sum | 11 |" in printed and "+| sum | 10 |" in printed and "differ" in printed


@pytest.mark.parametrize(("seconds", "text"), [(None, "–"), (4.26, "4.3 s"), (61, "1 min 01 s"), (3725, "1 h 02 min")])
def test_durations_read_in_their_unit(seconds, text):
    assert format_duration(seconds) == text


def test_another_pipeline_files_page_is_named_after_it_and_never_overwrites_pipeline_yamls(toy, tmp_path):
    """pipelines/i2p_mae_seeds.yaml has no profile: its page must not be docs/results/default.md."""
    seeds = toy.report_pipeline.parent / "seeds.yaml"
    seeds.write_text(toy.report_pipeline.read_text())
    run_pipeline(load_pipeline(seeds), ArtefactStore(toy.artefacts))
    assert main(["report", str(seeds), "--artefacts", str(toy.artefacts), "--out", str(tmp_path)]) == 0
    assert sorted(path.name for path in tmp_path.glob("*.md")) == ["seeds-default.md"]
    # check_results.sh runs pipeline.yaml's profiles only: this page does not send its reader there.
    assert "check_results.sh" not in (tmp_path / "seeds-default.md").read_text()
