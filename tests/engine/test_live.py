"""The live view: one line per stage with its state and progress, drawn on a terminal instead of log lines."""

import io
import logging
import textwrap

from rich.console import Console

from pix2point.engine.artefacts import ArtefactStore
from pix2point.engine.live import StageBoard, showing
from pix2point.engine.pipeline import load_pipeline
from pix2point.engine.runner import run_pipeline

COUNTING_STAGE = '''
"""Reports progress the way map_tasks and the training trials do, and records what the board said meanwhile."""
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from pix2point import stage_progress


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: int = 3


BOARD = []  # the test puts its board here


def run(params: Params, inputs: dict, out: Path) -> dict:
    seen = []
    for done in range(1, params.items + 1):
        stage_progress.report(done, params.items, "tasks")
        stage_progress.say(f"item {done}")
        seen.append(dict((stage, (state, detail)) for stage, state, detail in BOARD[0].rows()))
    (out / "seen.txt").write_text(repr(seen))
    return {"items": params.items}
'''


def test_the_board_follows_each_stage_from_waiting_to_done_or_cached_with_its_progress(toy):
    (toy.package_dir / "counting.py").write_text(COUNTING_STAGE)
    toy.pipeline.write_text(toy.pipeline.read_text().replace("profiles:", textwrap.dedent(f"""\
          counting:
            module: {toy.package}.counting
            inputs: [total]
        profiles:""")))
    counting = __import__(f"{toy.package}.counting", fromlist=["BOARD"])
    pipeline = load_pipeline(toy.pipeline)
    board = StageBoard(list(pipeline.stages))
    counting.BOARD.append(board)
    assert {stage: state for stage, state, _ in board.rows()} == dict.fromkeys(pipeline.stages, "waiting")

    run_pipeline(pipeline, ArtefactStore(toy.artefacts), targets=["numbers"])
    counting.BOARD[0] = board = StageBoard(list(pipeline.stages))
    run_pipeline(pipeline, ArtefactStore(toy.artefacts), board=board)

    rows = {stage: (state, detail) for stage, state, detail in board.rows()}
    assert rows["numbers"] == ("cached", "") and rows["total"][0] == "done" and rows["total"][1].endswith(" s")
    seen = eval((next(toy.artefacts.glob("counting/*/seen.txt"))).read_text())  # noqa: S307 (a repr we wrote)
    assert [view["counting"][0] for view in seen] == ["running"] * 3
    assert seen[-1]["counting"][1].endswith("tasks 3/3  item 3") and seen[-1]["total"][0] == "done"


def test_on_a_terminal_the_board_replaces_info_lines_and_warnings_print_above_it():
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=100)
    handler = logging.StreamHandler(stream)
    root, level = logging.getLogger(), logging.getLogger().level
    root.addHandler(handler)
    root.setLevel(logging.INFO)  # as the run's console sets it: info lines would be shown without the board
    board = StageBoard(["scenes", "objects"])
    try:
        with showing(board, console):
            board.update("scenes", "running")
            board.progress("scenes", "count", "tasks 1/2")
            logging.getLogger("pix2point.test").warning("disk almost full")
            logging.getLogger("pix2point.test").info("stage scenes: running")
            board.update("scenes", "done", 1.5)
            board.update("objects", "cached")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    shown = stream.getvalue()
    assert "disk almost full" in shown and "stage scenes: running" not in shown
    final = shown.rsplit("disk almost full", 1)[1]
    assert "scenes" in final and "done" in final and "1.5 s" in final and "cached" in final


def test_off_a_terminal_nothing_changes():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger().addHandler(handler)
    try:
        with showing(StageBoard(["scenes"]), Console(file=stream)):
            logging.getLogger("pix2point.test").warning("plain line")
    finally:
        logging.getLogger().removeHandler(handler)
    assert stream.getvalue() == "plain line\n"


def test_a_long_progress_line_is_cut_and_the_stage_names_stay_whole():
    """At 80 columns a training line longer than the terminal used to cut the stage names (pretrain_i2p_m…)."""
    stream = io.StringIO()
    board = StageBoard(["pretrain_i2p_mae", "finetune_objects", "classify"])
    board.update("pretrain_i2p_mae", "done", 148.1)
    board.update("classify", "running")
    board.progress("classify", "line", "run inflated-io-shots1-seed0: step 4/4, epoch 1, loss 2.44, " * 3)
    Console(file=stream, width=80).print(board)
    lines = stream.getvalue().splitlines()
    assert [line.split()[:2] for line in lines] == [["pretrain_i2p_mae", "done"], ["finetune_objects", "waiting"],
                                                    ["classify", "running"]]
    assert all(len(line) <= 80 for line in lines) and "run inflated-io-shots1-seed0: step 4/4" in lines[2]
