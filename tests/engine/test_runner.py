import json
import signal
import subprocess
import time

import pytest

from pix2point.cli import main
from pix2point.engine.artefacts import MANIFEST, ArtefactStore
from pix2point.engine.failures import StageFailed
from pix2point.engine.pipeline import PipelineError, load_pipeline
from pix2point.engine.runner import run_pipeline, stage_states


def run(toy, *overrides, **options):
    return {o.stage: o.status for o in run_pipeline(load_pipeline(toy.pipeline, overrides=list(overrides)), ArtefactStore(toy.artefacts), **options)}


def test_second_run_is_cached_and_first_run_writes_manifest_and_config(toy):
    assert run(toy) == {"numbers": "ran", "total": "ran"}
    assert run(toy) == {"numbers": "cached", "total": "cached"}
    store = ArtefactStore(toy.artefacts)
    (key,) = store.complete_keys("total")
    manifest = store.manifest("total", key)
    assert manifest["metrics"] == {"total": 10}
    assert manifest["params"] == {"scale": 1, "fail": False}
    assert manifest["inputs"] == {"numbers": store.complete_keys("numbers")[0]}
    assert {f["path"] for f in manifest["files"]} == {"total.txt", "config.yaml"}
    assert "scale: 1" in (store.path("total", key) / "config.yaml").read_text()


def test_downstream_param_change_reruns_only_downstream(toy):
    run(toy)
    assert run(toy, "total.scale=2") == {"numbers": "cached", "total": "ran"}


def test_upstream_param_change_reruns_upstream_and_downstream(toy):
    run(toy)
    assert run(toy, "numbers.count=3") == {"numbers": "ran", "total": "ran"}


def test_code_change_in_an_imported_module_reruns_the_stage_that_uses_it(toy):
    run(toy)
    toy.edit_helper("def scaled_sum(values, scale):\n    return sum(values) * scale + 1\n")
    assert run(toy) == {"numbers": "cached", "total": "ran"}


def test_targets_run_only_what_they_need(toy):
    assert run(toy, targets=["numbers"]) == {"numbers": "ran"}


def test_only_needs_built_inputs_and_names_the_missing_one(toy):
    with pytest.raises(PipelineError, match=r"--only total: its input stage 'numbers' is not built"):
        run(toy, only="total")
    run(toy, targets=["numbers"])
    assert run(toy, only="total") == {"total": "ran"}
    assert run(toy, only="total", force=True) == {"total": "ran"}


def test_force_recomputes_and_replaces_the_artefact(toy):
    run(toy)
    assert run(toy, force=True) == {"numbers": "ran", "total": "ran"}
    store = ArtefactStore(toy.artefacts)
    assert len(store.complete_keys("numbers")) == 1
    assert not list((toy.artefacts / "numbers").glob(".tmp-*"))


def test_failing_stage_leaves_no_artefact_and_no_temporary(toy):
    with pytest.raises(StageFailed, match="stage numbers failed: RuntimeError: numbers stage failed on purpose"):
        run(toy, "numbers.fail_after_write=true")
    assert not (toy.artefacts / "numbers").exists() or not any((toy.artefacts / "numbers").iterdir())
    assert run(toy) == {"numbers": "ran", "total": "ran"}


def test_killed_run_leaves_nothing_that_counts_and_next_run_redoes_it(toy):
    command, env = toy.cli("run", str(toy.pipeline), "--artefacts", str(toy.artefacts), "--set", "numbers.sleep_after_write=60")
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(toy.artefacts.glob("numbers/.tmp-*/started")):
        assert process.poll() is None and time.monotonic() < deadline, "the stage never started"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    leftovers = list(toy.artefacts.glob("numbers/.tmp-*"))
    assert leftovers and (leftovers[0] / "numbers.parquet").exists()
    assert not list(toy.artefacts.glob(f"numbers/*/{MANIFEST}"))
    pipeline = load_pipeline(toy.pipeline, overrides=["numbers.sleep_after_write=60"])
    assert stage_states(pipeline, ArtefactStore(toy.artefacts))["numbers"][1] == "missing"
    assert run(toy) == {"numbers": "ran", "total": "ran"}
    assert not list(toy.artefacts.glob("numbers/.tmp-*")), "the killed run's temporary directory was not cleaned"


def test_status_reports_cached_stale_and_missing(toy):
    store = ArtefactStore(toy.artefacts)
    states = stage_states(load_pipeline(toy.pipeline), store)
    assert {name: state for name, (_, state) in states.items()} == {"numbers": "missing", "total": "missing"}
    run(toy)
    states = stage_states(load_pipeline(toy.pipeline, overrides=["total.scale=5"]), store)
    assert {name: state for name, (_, state) in states.items()} == {"numbers": "cached", "total": "stale"}


def test_cli_exit_codes_and_messages(toy, capsys):
    base = ["--artefacts", str(toy.artefacts)]
    assert main(["run", str(toy.pipeline), *base, "--set", "total.bogus=1"]) == 2
    assert "stage 'total': unknown param 'bogus'" in capsys.readouterr().out
    assert main(["run", str(toy.pipeline), "numbers", *base]) == 0
    output = capsys.readouterr().out
    assert "numbers" in output and "ran" in output and "total" not in output
    assert main(["status", str(toy.pipeline), *base]) == 0
    output = capsys.readouterr().out
    assert "cached" in output and "missing" in output
    manifest = json.loads(next(toy.artefacts.glob(f"numbers/*/{MANIFEST}")).read_text())
    assert manifest["stage"] == "numbers" and manifest["metrics"] == {"rows": 5}


def test_a_stage_that_takes_scratch_keeps_it_across_failed_attempts_until_complete(toy):
    stage_file = toy.package_dir / "numbers.py"
    stage_file.write_text(stage_file.read_text().replace(
        "def run(params: Params, inputs: dict, out: Path) -> dict:",
        "def run(params: Params, inputs: dict, out: Path, scratch: Path) -> dict:\n"
        "    counter = scratch / 'attempts'\n"
        "    counter.write_text(str(int(counter.read_text()) + 1 if counter.exists() else 1))\n"
        "    (out / 'attempts.txt').write_text(counter.read_text())\n"
        "    if int(counter.read_text()) == 1:\n"
        "        raise RuntimeError('first attempt fails')",
    ))
    with pytest.raises(StageFailed, match="first attempt fails"):
        run(toy, targets=["numbers"])
    assert [p.read_text() for p in toy.artefacts.glob("numbers/.scratch-*/attempts")] == ["1"]
    assert run(toy, targets=["numbers"]) == {"numbers": "ran"}
    store = ArtefactStore(toy.artefacts)
    (key,) = store.complete_keys("numbers")
    assert (store.path("numbers", key) / "attempts.txt").read_text() == "2"
    assert not list(toy.artefacts.glob("numbers/.scratch-*"))


def test_a_mapped_input_hands_another_stages_artefact_under_the_name_the_stage_reads(toy):
    text = toy.pipeline.read_text().replace("profiles:", (
        f"  few:\n    module: {toy.package}.numbers\n    params: {{count: 3}}\n"
        f"  total_of_few:\n    module: {toy.package}.total\n    inputs: {{numbers: few}}\nprofiles:"))
    toy.pipeline.write_text(text)
    assert run(toy, only=None, targets=["total_of_few"]) == {"few": "ran", "total_of_few": "ran"}
    store = ArtefactStore(toy.artefacts)
    (key,) = store.complete_keys("total_of_few")
    assert store.manifest("total_of_few", key)["metrics"] == {"total": 3}  # 0 + 1 + 2: `few`'s numbers, not `numbers`'
    assert store.manifest("total_of_few", key)["inputs"] == {"numbers": store.complete_keys("few")[0]}
    assert run(toy) == {"numbers": "ran", "total": "ran", "few": "cached", "total_of_few": "cached"}
